"""PyTorch parity cases for CNNBinaryConvolution (tests/test_binary_convolution.cpp,
CNNBinaryConvolution.PyTorchParity).

Spec 01 §7 computed with torch in float64: the input is zero-padded first (edge mode Zero; the edge
value is substituted before the input bias — CHOICE), then in' = (x + inputBias) · inputScale;
BinaryWeights: conv2d(in', ±1 weights); XNOR: conv2d(bin(in'), ±1 weights) with bin(v) = −1 where
v < 0 else +1 (torch.where, not sign(): sign(0) = 0); AND: conv2d([in' ≥ 0], {0, 1} weights);
beta: the mean of |in'| over channels, average-pooled over the kernel window (dilation 1 only);
out = S · outputScale · beta + outputBias. Weight bits are random; they are packed into uint32 words
[Co][kH][kW][ceil(Ci/32)] (bit i % 32 of word i / 32), bits beyond Ci random too. Values are float32
numbers, so binarization in float32 and float64 agree.
Layouts written: x NHWC, w words (as doubles), the term arrays, y NHWC.
"""
import numpy as np
import torch
import torch.nn.functional as F


def _f32(a):
    return np.asarray(a, dtype=np.float32).astype(np.float64)


def _case(rng, kind):
    n = int(rng.integers(1, 3))
    ci, co = int(rng.choice([1, 3, 8, 31, 32, 33, 45])), int(rng.integers(1, 6))
    kh, kw = int(rng.choice([1, 2, 3])), int(rng.choice([1, 2, 3]))
    sy, sx = int(rng.integers(1, 3)), int(rng.integers(1, 3))
    beta = bool(rng.integers(0, 2))
    dy, dx = (1, 1) if beta else (int(rng.integers(1, 3)), int(rng.integers(1, 3)))
    khd, kwd = (kh - 1) * dy + 1, (kw - 1) * dx + 1
    py, px = int(rng.integers(0, khd // 2 + 1)), int(rng.integers(0, kwd // 2 + 1))
    h = int(rng.integers(max(1, khd - 2 * py), max(1, khd - 2 * py) + 6))
    w = int(rng.integers(max(1, kwd - 2 * px), max(1, kwd - 2 * px) + 6))
    x = torch.from_numpy(_f32(rng.uniform(-1, 1, (n, ci, h, w))))
    ib = torch.from_numpy(_f32(rng.uniform(-0.3, 0.3, ci)))
    isc = torch.from_numpy(_f32(rng.uniform(0.5, 2, ci)))
    ob = torch.from_numpy(_f32(rng.uniform(-0.5, 0.5, co)))
    osc = torch.from_numpy(_f32(rng.uniform(-0.2, 0.2, co)))
    bits = rng.integers(0, 2, (co, kh, kw, ci))
    words_per_tap = (ci + 31) // 32
    words = rng.integers(0, 2**32, (co, kh, kw, words_per_tap), dtype=np.uint64)
    for f in range(ci):
        word, bit = f // 32, f % 32
        words[..., word] &= ~np.uint64(1 << bit)
        words[..., word] |= bits[..., f].astype(np.uint64) << np.uint64(bit)
    wbits = torch.from_numpy(bits.astype(np.float64)).permute(0, 3, 1, 2)  # [Co][Ci][kH][kW]

    padded = F.pad(x, (px, px, py, py))  # zeros first: the edge value comes before the bias
    inp = (padded + ib.view(1, -1, 1, 1)) * isc.view(1, -1, 1, 1)
    if kind == 0:  # BinaryWeights
        s = F.conv2d(inp, 2 * wbits - 1, stride=(sy, sx), dilation=(dy, dx))
    elif kind == 1:  # XNOR
        s = F.conv2d(torch.where(inp < 0, -1.0, 1.0).double(), 2 * wbits - 1, stride=(sy, sx), dilation=(dy, dx))
    else:  # AND
        s = F.conv2d((inp >= 0).double(), wbits, stride=(sy, sx), dilation=(dy, dx))
    if beta:
        a = inp.abs().mean(dim=1, keepdim=True)
        s = s * F.avg_pool2d(a, (kh, kw), stride=(sy, sx))
    y = s * osc.view(1, -1, 1, 1) + ob.view(1, -1, 1, 1)
    return {
        "x": x.permute(0, 2, 3, 1).numpy(),
        "w": words.astype(np.float64),
        "inputBias": ib.numpy(),
        "inputScale": isc.numpy(),
        "outputBias": ob.numpy(),
        "outputScale": osc.numpy(),
        "y": y.permute(0, 2, 3, 1).numpy(),
        "type": kind,
        "beta": 1 if beta else 0,
        "kernelY": kh,
        "kernelX": kw,
        "strideY": sy,
        "strideX": sx,
        "dilationY": dy,
        "dilationX": dx,
        "padY": py,
        "padX": px,
    }


def generate(rng):
    cases = []
    for i in range(24):
        cases.append((f"binary_{i}", _case(rng, i % 3)))
    return [("binary_convolution.txt", cases)]
