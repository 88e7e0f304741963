"""PyTorch parity cases for CNNConvolution (tests/test_convolution.cpp, CNNConvolution.PyTorchParity).

torch.nn.functional.conv2d in float64 on fresh random data: groups, depthwise, stride, dilation,
zero padding, bias. Layouts written: x NHWC [n][h][w][Ci], w OHWI [Co][kH][kW][Ci/groups],
b [Co], y NHWC. Scalars: groups, depthwise (1: groups = Ci, read as a depthwise descriptor),
strideY/X, dilationY/X, padY/X (PyTorch zero padding), hasBias.
"""
import numpy as np
import torch
import torch.nn.functional as F


def _case(rng, depthwise):
    n = int(rng.integers(1, 3))
    if depthwise:
        ci = int(rng.integers(1, 6))
        groups = ci
        co = ci * int(rng.integers(1, 4))
    else:
        groups = int(rng.choice([1, 1, 2, 3]))
        ci = groups * int(rng.integers(1, 5))
        co = groups * int(rng.integers(1, 5))
    kh, kw = int(rng.choice([1, 2, 3, 5])), int(rng.choice([1, 2, 3, 4]))
    sy, sx = int(rng.integers(1, 4)), int(rng.integers(1, 4))
    dy, dx = int(rng.integers(1, 3)), int(rng.integers(1, 3))
    khd, kwd = (kh - 1) * dy + 1, (kw - 1) * dx + 1
    py, px = int(rng.integers(0, khd // 2 + 2)), int(rng.integers(0, kwd // 2 + 2))
    # Source at least as large as the padded window.
    h = int(rng.integers(max(1, khd - 2 * py), max(1, khd - 2 * py) + 10))
    w = int(rng.integers(max(1, kwd - 2 * px), max(1, kwd - 2 * px) + 10))
    has_bias = bool(rng.integers(0, 2))
    x = torch.from_numpy(rng.uniform(-1, 1, (n, ci, h, w)))
    weight = torch.from_numpy(rng.uniform(-1, 1, (co, ci // groups, kh, kw)) / np.sqrt(kh * kw * ci // groups))
    bias = torch.from_numpy(rng.uniform(-0.5, 0.5, (co,))) if has_bias else None
    y = F.conv2d(x, weight, bias, stride=(sy, sx), padding=(py, px), dilation=(dy, dx), groups=groups)
    values = {
        "x": x.permute(0, 2, 3, 1).numpy(),
        "w": weight.permute(0, 2, 3, 1).numpy(),
        "y": y.permute(0, 2, 3, 1).numpy(),
        "groups": groups,
        "depthwise": 1 if depthwise else 0,
        "strideY": sy,
        "strideX": sx,
        "dilationY": dy,
        "dilationX": dx,
        "padY": py,
        "padX": px,
        "hasBias": 1 if has_bias else 0,
    }
    if has_bias:
        values["b"] = bias.numpy()
    return values


def generate(rng):
    cases = []
    for i in range(24):
        cases.append((f"conv2d_{i}", _case(rng, depthwise=False)))
    for i in range(6):
        cases.append((f"depthwise_{i}", _case(rng, depthwise=True)))
    return [("convolution.txt", cases)]
