"""PyTorch parity cases for CNNConvolutionTranspose (tests/test_convolution_transpose.cpp,
CNNConvolutionTranspose.PyTorchParity).

torch.nn.functional.conv_transpose2d in float64 on fresh random data: groups, stride, dilation,
padding, output_padding, bias. Spec 01 §6.2 (informative): MPS uses the weights as given, so the
PyTorch weight Wpt[i][o][ky][kx] ([Cin][Cout/G][kH][kW]) becomes W[o][ky][kx][i] =
Wpt[i][o][kH−1−ky][kW−1−kx] (within each group), with offset 0 and
kernelOffset = p − (k − 1)·d + floor(((k − 1)·d + 1) / 2); the destination is PyTorch's output size.
Layouts written: x NHWC, w OHWI (mapped as above), b [Co], y NHWC.
"""
import numpy as np
import torch
import torch.nn.functional as F


def _case(rng):
    n = int(rng.integers(1, 3))
    groups = int(rng.choice([1, 1, 2, 3]))
    cig, cog = int(rng.integers(1, 5)), int(rng.integers(1, 5))
    ci, co = groups * cig, groups * cog
    kh, kw = int(rng.choice([1, 2, 3, 4, 5])), int(rng.choice([1, 2, 3, 4]))
    sy, sx = int(rng.integers(1, 4)), int(rng.integers(1, 4))
    dy, dx = int(rng.integers(1, 3)), int(rng.integers(1, 3))
    py, px = int(rng.integers(0, (kh - 1) * dy + 1)), int(rng.integers(0, (kw - 1) * dx + 1))
    opy, opx = int(rng.integers(0, max(sy, dy))), int(rng.integers(0, max(sx, dx)))
    h, w = int(rng.integers(1, 7)), int(rng.integers(1, 7))
    # PyTorch needs a positive output size.
    while (h - 1) * sy - 2 * py + dy * (kh - 1) + opy + 1 < 1:
        h += 1
    while (w - 1) * sx - 2 * px + dx * (kw - 1) + opx + 1 < 1:
        w += 1
    has_bias = bool(rng.integers(0, 2))
    x = torch.from_numpy(rng.uniform(-1, 1, (n, ci, h, w)))
    wpt = torch.from_numpy(rng.uniform(-1, 1, (ci, cog, kh, kw)) / np.sqrt(kh * kw * cig))
    bias = torch.from_numpy(rng.uniform(-0.5, 0.5, (co,))) if has_bias else None
    y = F.conv_transpose2d(x, wpt, bias, stride=(sy, sx), padding=(py, px), output_padding=(opy, opx),
                           groups=groups, dilation=(dy, dx))
    # W[g·Cog + o][ky][kx][i] = Wpt[g·Cig + i][o][kH−1−ky][kW−1−kx]
    mps = np.zeros((co, kh, kw, cig))
    for g in range(groups):
        block = wpt[g * cig:(g + 1) * cig].flip(2, 3)  # [Cig][Cog][kH][kW], rotated by 180°
        mps[g * cog:(g + 1) * cog] = block.permute(1, 2, 3, 0).numpy()
    khd, kwd = (kh - 1) * dy + 1, (kw - 1) * dx + 1
    values = {
        "x": x.permute(0, 2, 3, 1).numpy(),
        "w": mps,
        "y": y.permute(0, 2, 3, 1).numpy(),
        "groups": groups,
        "strideY": sy,
        "strideX": sx,
        "dilationY": dy,
        "dilationX": dx,
        "kernelOffsetY": py - (kh - 1) * dy + khd // 2,
        "kernelOffsetX": px - (kw - 1) * dx + kwd // 2,
        "hasBias": 1 if has_bias else 0,
    }
    if has_bias:
        values["b"] = bias.numpy()
    return values


def generate(rng):
    return [("convolution_transpose.txt", [(f"conv_transpose2d_{i}", _case(rng)) for i in range(30)])]
