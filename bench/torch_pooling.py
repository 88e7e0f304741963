"""PyTorch side of bench/shapes/pooling.txt: max_pool2d / avg_pool2d, the faster of NCHW and channels_last."""
import torch
import torch.nn.functional as F


def make(row, batch, device):
    _, h, w, c, k, s, p = row[0], *map(int, row[1:7])
    kind = row[7]
    x = torch.rand(batch, c, h, w, device=device) * 2 - 1
    pool = F.max_pool2d if kind == "max" else F.avg_pool2d
    candidates = []
    for memory_format in (torch.contiguous_format, torch.channels_last):
        xf = x.contiguous(memory_format=memory_format)
        candidates.append(lambda xf=xf: pool(xf, k, stride=s, padding=p))
    # Pick the layout PyTorch runs faster, so the comparison is with its best.
    from compare import time_torch
    times = [time_torch(fn, device, min_time=0.05) for fn in candidates]
    return candidates[times.index(min(times))]
