"""PyTorch parity cases for pooling (spec 02 §1.2). Layout: input/output NHWC, float64.

Scalars: op (0 max_pool2d, 1 avg_pool2d, 2 lp_pool2d with p = 2), kernel kW/kH, stride sW/sH,
padding pW/pH, dilation dW/dH, countIncludePad, ceil. The C++ test maps each case to MPS: offset =
floor(effective kernel / 2) - padding, destination size = PyTorch's output size, and
  max            -> edgeMode Clamp (PyTorch pads with -inf; windows always overlap the image);
                    dilated windows stay inside the image (spec 02 §5), so padding is 0 there
  avg include    -> edgeMode Zero, or Clamp with zeroPadSize = padding
  avg exclude    -> edgeMode Clamp with zeroPadSize = 0
  lp_pool2d(2)   -> CNNPoolingL2Norm with no padding (PyTorch's lp_pool2d has none)
"""
import numpy as np
import torch
import torch.nn.functional as F

MAX, AVG, LP2 = 0, 1, 2


def random_input(rng, n, h, w, c):
    x = rng.uniform(-1.0, 1.0, size=(n, h, w, c))
    x[np.abs(x) < 1e-3] = 0.5  # never zero
    return x


def nchw(x):
    return torch.from_numpy(x).permute(0, 3, 1, 2)


def nhwc(t):
    return t.permute(0, 2, 3, 1).contiguous().numpy()


def generate(rng):
    cases = []

    def shape():
        return (int(rng.integers(1, 4)), int(rng.integers(4, 12)), int(rng.integers(4, 13)),
                int(rng.choice([1, 3, 5, 7])))

    def add(name, op, kw, kh, sw, sh, pw, ph, dw, dh, include, ceil, x, y):
        cases.append((name, {"op": op, "kW": kw, "kH": kh, "sW": sw, "sH": sh, "pW": pw, "pH": ph, "dW": dw,
                             "dH": dh, "countIncludePad": float(include), "ceil": float(ceil),
                             "input": x, "output": y}))

    windows = [(2, 2), (3, 3), (3, 2), (2, 3), (1, 3), (4, 4)]
    # max_pool2d: padding up to half the window, floor and ceil mode, strides below/at/above the window.
    for i, (kw, kh) in enumerate(windows):
        for ceil in (False, True):
            sw, sh = int(rng.integers(1, 4)), int(rng.integers(1, 4))
            pw, ph = int(rng.integers(0, kw // 2 + 1)), int(rng.integers(0, kh // 2 + 1))
            x = random_input(rng, *shape())
            y = F.max_pool2d(nchw(x), (kh, kw), (sh, sw), (ph, pw), ceil_mode=ceil)
            add(f"max_{i}_{'ceil' if ceil else 'floor'}", MAX, kw, kh, sw, sh, pw, ph, 1, 1, 0, ceil, x, nhwc(y))
    # Dilated max_pool2d with windows inside the image.
    for i, (kw, kh, dw, dh) in enumerate([(2, 2, 2, 2), (3, 2, 2, 1), (2, 3, 1, 3), (3, 3, 2, 2)]):
        sw, sh = int(rng.integers(1, 3)), int(rng.integers(1, 3))
        n, h, w, c = shape()
        x = random_input(rng, n, max(h, (kh - 1) * dh + 1), max(w, (kw - 1) * dw + 1), c)
        y = F.max_pool2d(nchw(x), (kh, kw), (sh, sw), 0, dilation=(dh, dw))
        add(f"dilated_max_{i}", MAX, kw, kh, sw, sh, 0, 0, dw, dh, 0, False, x, nhwc(y))
    # avg_pool2d with count_include_pad both ways.
    for i, (kw, kh) in enumerate(windows):
        for include in (True, False):
            sw, sh = int(rng.integers(1, 4)), int(rng.integers(1, 4))
            pw, ph = int(rng.integers(0, kw // 2 + 1)), int(rng.integers(0, kh // 2 + 1))
            x = random_input(rng, *shape())
            y = F.avg_pool2d(nchw(x), (kh, kw), (sh, sw), (ph, pw), count_include_pad=include)
            add(f"avg_{i}_{'include' if include else 'exclude'}", AVG, kw, kh, sw, sh, pw, ph, 1, 1, include, False,
                x, nhwc(y))
    # lp_pool2d(p = 2): sqrt of the window's sum of squares.
    for i, (kw, kh) in enumerate(windows):
        sw, sh = int(rng.integers(1, 4)), int(rng.integers(1, 4))
        x = random_input(rng, *shape())
        y = F.lp_pool2d(nchw(x), 2.0, (kh, kw), (sh, sw))
        add(f"lp2_{i}", LP2, kw, kh, sw, sh, 0, 0, 1, 1, 0, False, x, nhwc(y))
    return [("pooling.txt", cases)]
