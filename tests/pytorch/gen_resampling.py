"""PyTorch parity cases for resampling (spec 05). Layout: input/output NHWC, float64.

Scalars: op, sX/sY (integer factors, ops 0 and 1), alignCorners (op 1), tX/tY (scale factors, op 3).
Only mappings that are exact are generated; the C++ tests (<Class>.PyTorchParity) rebuild each one:
  op 0  F.interpolate(x, scale_factor=(sY, sX), mode='nearest')
        == CNNUpsamplingNearest(sX, sY), offset 0, destination W*sX x H*sY (spec 05 §1.1)
  op 1  F.interpolate(x, scale_factor=(sY, sX), mode='bilinear', align_corners=ac)
        == CNNUpsamplingBilinear(sX, sY, ac), offset 0, destination W*sX x H*sY (§1.2: both of
        spec 05's formulas are PyTorch's; PyTorch clamps a negative position to 0 and pairs the last
        pixel with itself, which is sample()'s clamp)
  op 2  F.interpolate(x, size=(Ho, Wo), mode='bilinear', align_corners=False)
        == ImageBilinearScale without scaleTransform into a Wo x Ho destination (§4: the source is
        stretched over the destination, u = (x + 0.5) * W / Wo - 0.5, PyTorch's source index)
  op 3  F.interpolate(x, scale_factor=(tY, tX), mode='bilinear', align_corners=False,
        recompute_scale_factor=False)
        == ImageBilinearScale with scaleTransform {tX, tY, 0, 0} into a floor(W*tX) x floor(H*tY)
        destination (PyTorch then samples at (x + 0.5) / tX - 0.5, the §4 inverse map)
Not generated, because the semantics differ: Lanczos (PyTorch has none; PIL's drops out-of-image
taps where §4.2 clamps them to the edge), nearest with non-integer factors ('nearest' floors
x * (1/s) in float32), 'nearest-exact' (samples pixel centres), antialias=True (a prefilter).
"""
import numpy as np
import torch
import torch.nn.functional as F

NEAREST, BILINEAR, STRETCH, SCALE = 0, 1, 2, 3


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
        return (int(rng.integers(1, 4)), int(rng.integers(1, 7)), int(rng.integers(1, 8)),
                int(rng.choice([1, 3, 5, 7])))

    factors = [(1, 1), (2, 2), (3, 3), (4, 4), (2, 3), (3, 1), (1, 4), (4, 2)]
    for i, (sx, sy) in enumerate(factors):
        x = random_input(rng, *shape())
        y = F.interpolate(nchw(x), scale_factor=(float(sy), float(sx)), mode='nearest')
        cases.append((f"nearest_{i}", {"op": NEAREST, "sX": sx, "sY": sy, "alignCorners": 0.0,
                                       "input": x, "output": nhwc(y)}))
        for ac in (False, True):
            x = random_input(rng, *shape())
            y = F.interpolate(nchw(x), scale_factor=(float(sy), float(sx)), mode='bilinear', align_corners=ac)
            cases.append((f"bilinear_{i}_{'aligned' if ac else 'half_pixel'}",
                           {"op": BILINEAR, "sX": sx, "sY": sy, "alignCorners": float(ac),
                            "input": x, "output": nhwc(y)}))
    # Stretch to arbitrary sizes, up and down, odd ratios.
    for i in range(8):
        n, h, w, c = shape()
        h, w = h + 2, w + 2
        ho, wo = int(rng.integers(1, 15)), int(rng.integers(1, 15))
        x = random_input(rng, n, h, w, c)
        y = F.interpolate(nchw(x), size=(ho, wo), mode='bilinear', align_corners=False)
        cases.append((f"stretch_{i}", {"op": STRETCH, "input": x, "output": nhwc(y)}))
    # Explicit scale factors (a transform without translation), up and down.
    for i, (tx, ty) in enumerate([(1.7, 0.6), (0.45, 2.3), (3.25, 1.5), (0.8, 0.8)]):
        n, h, w, c = shape()
        h, w = h + 3, w + 3
        x = random_input(rng, n, h, w, c)
        y = F.interpolate(nchw(x), scale_factor=(ty, tx), mode='bilinear', align_corners=False,
                          recompute_scale_factor=False)
        cases.append((f"scale_{i}", {"op": SCALE, "tX": tx, "tY": ty, "input": x, "output": nhwc(y)}))
    return [("resampling.txt", cases)]
