"""PyTorch parity cases for the neurons (spec 03 §5). Layout: input/output NHWC, float64."""
import numpy as np
import torch
import torch.nn.functional as F

# (case name, mpsnn CNNNeuronType value, a, b, c, torch function of an NCHW tensor, input range)
NONE, RELU, LINEAR, SIGMOID, HARDSIGMOID, TANH, ABSOLUTE, SOFTPLUS, SOFTSIGN, ELU, PRELU, RELUN, POWER, EXP, LOG, GELU = range(16)


def generate(rng):
    cases = []
    n, h, w, c = int(rng.integers(1, 4)), int(rng.integers(1, 6)), int(rng.integers(1, 7)), int(rng.choice([1, 3, 5, 7]))
    slope = float(rng.uniform(0.05, 0.5))
    alpha = float(rng.uniform(0.5, 2.0))
    beta = float(rng.uniform(0.5, 3.0))
    scale = float(rng.uniform(0.5, 2.0))
    expo = float(rng.uniform(1.5, 3.0))
    specs = [
        ("relu", RELU, 0.0, 0.0, 0.0, F.relu, (-3, 3)),
        ("leaky_relu", RELU, slope, 0.0, 0.0, lambda t: F.leaky_relu(t, slope), (-3, 3)),
        ("linear", LINEAR, scale, 0.25, 0.0, lambda t: scale * t + 0.25, (-3, 3)),
        ("sigmoid", SIGMOID, 0.0, 0.0, 0.0, torch.sigmoid, (-8, 8)),
        ("hardsigmoid", HARDSIGMOID, 1.0 / 6.0, 0.5, 0.0, F.hardsigmoid, (-5, 5)),
        ("tanh", TANH, scale, beta, 0.0, lambda t: scale * torch.tanh(beta * t), (-3, 3)),
        ("abs", ABSOLUTE, 0.0, 0.0, 0.0, torch.abs, (-3, 3)),
        ("softplus", SOFTPLUS, 1.0 / beta, beta, 0.0, lambda t: F.softplus(t, beta=beta, threshold=1e9), (-5, 5)),
        ("softsign", SOFTSIGN, 0.0, 0.0, 0.0, F.softsign, (-5, 5)),
        ("elu", ELU, alpha, 0.0, 0.0, lambda t: F.elu(t, alpha), (-3, 3)),
        ("relu6", RELUN, 0.0, 6.0, 0.0, F.relu6, (-4, 10)),
        ("pow", POWER, scale, 0.5, expo, lambda t: torch.pow(scale * t + 0.5, expo), (0, 3)),
        ("exp", EXP, scale, 0.25, -1.0, lambda t: torch.exp(scale * t + 0.25), (-3, 3)),
        ("exp2", EXP, scale, 0.25, 2.0, lambda t: torch.pow(2.0, scale * t + 0.25), (-3, 3)),
        ("log", LOG, scale, 0.5, -1.0, lambda t: torch.log(scale * t + 0.5), (0.01, 3)),
        ("log10", LOG, scale, 0.5, 10.0, lambda t: torch.log10(scale * t + 0.5), (0.01, 3)),
        ("gelu", GELU, 0.0, 0.0, 0.0, lambda t: F.gelu(t), (-4, 4)),
    ]
    for name, kind, a, b, cc, fn, (lo, hi) in specs:
        x = rng.uniform(lo, hi, size=(n, h, w, c))
        x[np.abs(x) < 1e-3] = 0.5
        t = torch.from_numpy(x).permute(0, 3, 1, 2)  # NCHW view for torch
        y = fn(t).permute(0, 2, 3, 1).numpy()
        cases.append((name, {"type": kind, "a": a, "b": b, "c": cc, "input": x, "output": y}))
    # PReLU with one slope per channel
    x = rng.uniform(-3, 3, size=(n, h, w, c))
    weight = rng.uniform(0.05, 0.9, size=(c,))
    y = F.prelu(torch.from_numpy(x).permute(0, 3, 1, 2), torch.from_numpy(weight)).permute(0, 2, 3, 1).numpy()
    cases.append(("prelu", {"type": PRELU, "a": 0.0, "b": 0.0, "c": 0.0, "input": x, "output": y, "slopes": weight}))
    return [("neuron.txt", cases)]
