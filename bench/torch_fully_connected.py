"""PyTorch side of bench/shapes/fully_connected.txt: linear with bias on the flattened NCHW input."""
import torch
import torch.nn.functional as F


def make(row, batch, device):
    _, h, w, ci, co = row[0], *map(int, row[1:])
    x = torch.rand(batch, ci, h, w, device=device) * 2 - 1
    weight = (torch.rand(co, ci * h * w, device=device) * 2 - 1) * 0.1
    bias = torch.full((co,), 0.01, device=device)
    return lambda: F.linear(x.flatten(1), weight, bias)
