"""PyTorch parity cases for CNNAdd, CNNSubtract, CNNMultiply, CNNDivide and NNCompare (spec 06 §1-§2).

Layout: primary, secondary and output NHWC, float64 holding float32-exact values (the C++ images are
float32). An operand with extent 1 on an axis where the output is larger is broadcast along it, as
torch broadcasting does and as the kernels do with a stride of 0 on that axis.
Scalars: kind (0 add, 1 subtract, 2 multiply, 3 divide, 4 compare), primaryScale, secondaryScale,
bias, minimum, maximum, comparison (NNComparisonType value), threshold.
"""
import numpy as np
import torch

ADD, SUBTRACT, MULTIPLY, DIVIDE, COMPARE = range(5)
FLT_MAX = float(np.finfo(np.float32).max)


def f32(v):
    return float(np.float32(v))


def operand(rng, shape, away_from_zero=False):
    if away_from_zero:  # divisors: magnitudes in [0.5, 2]
        x = rng.uniform(0.5, 2.0, size=shape) * rng.choice([-1.0, 1.0], size=shape)
    else:
        x = rng.uniform(-2.0, 2.0, size=shape)
        x[np.abs(x) < 1e-3] = 0.5
    return x.astype(np.float32).astype(np.float64)


def nchw(x):
    return torch.from_numpy(x).permute(0, 3, 1, 2)


def nhwc(t):
    return t.permute(0, 2, 3, 1).contiguous().numpy()


def generate(rng):
    n, h, w, c = int(rng.integers(1, 4)), int(rng.integers(2, 6)), int(rng.integers(2, 7)), int(rng.choice([3, 5, 7, 8]))
    full = (n, h, w, c)
    # (name, primary shape, secondary shape): torch's broadcasting of NHWC operands.
    shapes = [
        ("same", full, full),
        ("per_channel", full, (n, 1, 1, c)),
        ("per_pixel", full, (n, h, w, 1)),
        ("scalar", full, (n, 1, 1, 1)),
        ("row", full, (n, 1, w, c)),
        ("column", full, (n, h, 1, 1)),
        ("primary_per_channel", (n, 1, 1, c), full),
        ("outer", (n, h, 1, 1), (n, 1, w, c)),
    ]
    ops = {
        ADD: ("add", lambda a, b: a + b),
        SUBTRACT: ("sub", lambda a, b: a - b),
        MULTIPLY: ("mul", lambda a, b: a * b),
        DIVIDE: ("div", lambda a, b: a / b),
    }
    cases = []
    for kind, (opname, fn) in ops.items():
        for shape_name, pshape, sshape in shapes:
            for variant in ("plain", "scaled"):
                a = operand(rng, pshape)
                b = operand(rng, sshape, away_from_zero=kind == DIVIDE)
                if variant == "plain":
                    ps, ss, bias, lo, hi = 1.0, 1.0, 0.0, -FLT_MAX, FLT_MAX
                else:
                    ps, ss, bias = f32(rng.uniform(0.5, 2.0)), f32(-rng.uniform(0.5, 2.0)), f32(rng.uniform(-0.5, 0.5))
                    lo, hi = f32(rng.uniform(-2.0, -0.5)), f32(rng.uniform(0.5, 2.0))
                r = fn(ps * nchw(a), ss * nchw(b)) + bias
                out = nhwc(torch.clamp(r, min=lo, max=hi))
                cases.append((f"{opname}_{shape_name}_{variant}", {
                    "kind": float(kind), "primaryScale": ps, "secondaryScale": ss, "bias": bias,
                    "minimum": lo, "maximum": hi, "comparison": 0.0, "threshold": 0.0,
                    "primary": a, "secondary": b, "output": out}))
    # NNCompare: one case per comparison type and broadcasting pattern, with some exact ties.
    comparisons = [
        (0, "eq", lambda a, b, t: (a - b).abs() <= t),
        (1, "ne", lambda a, b, t: ~((a - b).abs() <= t)),
        (2, "lt", lambda a, b, t: torch.lt(a, b)),
        (3, "le", lambda a, b, t: torch.le(a, b)),
        (4, "gt", lambda a, b, t: torch.gt(a, b)),
        (5, "ge", lambda a, b, t: torch.ge(a, b)),
    ]
    for value, cname, fn in comparisons:
        for shape_name, pshape, sshape in shapes[:4]:
            a = operand(rng, pshape)
            b = operand(rng, sshape)
            if pshape == sshape:
                ties = rng.random(size=pshape) < 0.3
                b[ties] = a[ties]
            threshold = f32(rng.choice([0.0, 0.25]))
            out = nhwc(fn(nchw(a), nchw(b), threshold).to(torch.float64))
            cases.append((f"compare_{cname}_{shape_name}", {
                "kind": float(COMPARE), "primaryScale": 1.0, "secondaryScale": 1.0, "bias": 0.0,
                "minimum": -FLT_MAX, "maximum": FLT_MAX, "comparison": float(value), "threshold": threshold,
                "primary": a, "secondary": b, "output": out}))
    return [("arithmetic.txt", cases)]
