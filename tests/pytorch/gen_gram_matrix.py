"""PyTorch parity cases for NNGramMatrixCalculation (tests/test_gram_matrix.cpp).

alpha · einsum('nchw,ndhw->ncd') in float64 on fresh random data (spec 01 §10: dst(n, 0, f, c) =
alpha · Σ_{y,x} src(n, y, x, f) · src(n, y, x, c)). Layouts written: x NHWC, y [n][1][f][c].
"""
import torch


def _case(rng):
    n, c = int(rng.integers(1, 4)), int(rng.integers(1, 20))
    h, w = int(rng.integers(1, 10)), int(rng.integers(1, 10))
    alpha = float(rng.choice([1.0, 0.5, -2.0, 1.0 / (h * w)]))
    x = torch.from_numpy(rng.uniform(-1, 1, (n, c, h, w)))
    y = alpha * torch.einsum("nchw,ndhw->ncd", x, x)
    return {"x": x.permute(0, 2, 3, 1).numpy(), "y": y.reshape(n, 1, c, c).numpy(), "alpha": alpha}


def generate(rng):
    return [("gram_matrix.txt", [(f"gram_{i}", _case(rng)) for i in range(12)])]
