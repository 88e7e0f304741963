"""PyTorch side of bench/shapes/elementwise.txt (NCHW; layout does not matter to these ops)."""
import torch
import torch.nn.functional as F


def make(row, batch, device):
    op, h, w, c = row[1], int(row[2]), int(row[3]), int(row[4])
    a = torch.rand(batch, c, h, w, device=device) * 2 - 1
    b = torch.rand(batch, c, h, w, device=device) * 2 - 1
    bias = torch.rand(batch, c, 1, 1, device=device) * 2 - 1
    out = torch.empty_like(a)
    ops = {
        "copy": lambda: out.copy_(a),
        "relu": lambda: torch.relu(a, out=out) if hasattr(torch, "relu") else F.relu(a),
        "add": lambda: torch.add(a, b, out=out),
        "addchannel": lambda: torch.add(a, bias, out=out),
        "multiply": lambda: torch.mul(a, b, out=out),
        "dropout": lambda: F.dropout(a, 0.5, training=True),
    }
    if op == "relu":
        return lambda: torch.clamp_min(a, 0.0, out=out)
    return ops[op]
