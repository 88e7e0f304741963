"""PyTorch parity cases for CNNFullyConnected (tests/test_fully_connected.cpp, CNNFullyConnected.PyTorchParity).

torch.nn.functional.linear in float64 on fresh random data, applied to the NCHW input flattened as
PyTorch flattens it: weight[o][(i·H + y)·W + x]. Spec 01 §5: permuting that weight to [o][y][x][i]
gives the layer's default OHWI order; [o][x][y][i] the OWHI order (scalar owhi = 1).
Layouts written: x NHWC [n][h][w][Ci], w in the data source's order, b [Co], y [n][Co].
"""
import numpy as np
import torch
import torch.nn.functional as F


def _case(rng, owhi):
    n = int(rng.integers(1, 4))
    ci, co = int(rng.integers(1, 9)), int(rng.integers(1, 12))
    h, w = int(rng.integers(1, 6)), int(rng.integers(1, 6))
    x = torch.from_numpy(rng.uniform(-1, 1, (n, ci, h, w)))
    weight = torch.from_numpy(rng.uniform(-1, 1, (co, ci * h * w)) / np.sqrt(ci * h * w))
    bias = torch.from_numpy(rng.uniform(-0.5, 0.5, (co,)))
    y = F.linear(x.flatten(1), weight, bias)
    per_channel = weight.reshape(co, ci, h, w)
    mps = per_channel.permute(0, 3, 2, 1) if owhi else per_channel.permute(0, 2, 3, 1)
    return {
        "x": x.permute(0, 2, 3, 1).numpy(),
        "w": mps.contiguous().numpy(),
        "b": bias.numpy(),
        "y": y.numpy(),
        "owhi": 1 if owhi else 0,
    }


def generate(rng):
    cases = [(f"linear_{i}", _case(rng, owhi=False)) for i in range(12)]
    cases += [(f"linear_owhi_{i}", _case(rng, owhi=True)) for i in range(6)]
    return [("fully_connected.txt", cases)]
