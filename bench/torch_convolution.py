"""PyTorch side of bench/shapes/convolution.txt: conv2d with bias, the faster of NCHW and channels_last."""
import torch
import torch.nn.functional as F


def make(row, batch, device):
    _, h, w, ci, co, kh, kw, s, p = row[0], *map(int, row[1:])
    x = torch.rand(batch, ci, h, w, device=device) * 2 - 1
    weight = (torch.rand(co, ci, kh, kw, device=device) * 2 - 1) * 0.1
    bias = torch.full((co,), 0.01, device=device)
    candidates = []
    for memory_format in (torch.contiguous_format, torch.channels_last):
        xf, wf = x.contiguous(memory_format=memory_format), weight.contiguous(memory_format=memory_format)
        candidates.append(lambda xf=xf, wf=wf: F.conv2d(xf, wf, bias, stride=s, padding=p))
    # Pick the layout PyTorch runs faster, so the comparison is with its best.
    from compare import time_torch
    times = [time_torch(c, device, min_time=0.05) for c in candidates]
    return candidates[times.index(min(times))]
