"""PyTorch parity cases for the reductions, reshape, slice, pad and concatenation (spec 06 §4-§8).

Layout: every array NHWC, float64; inputs are float32-representable so that a float32 image holds them
exactly. Scalar `op` selects the class:
  0-14   the unary reductions in ref::ReduceKind order (RowMin, RowMax, RowSum, RowMean, ColumnMin,
         ColumnMax, ColumnSum, ColumnMean, FeatureChannelsMin, FeatureChannelsMax, FeatureChannelsSum,
         FeatureChannelsMean, FeatureChannelsArgumentMin, FeatureChannelsArgumentMax, SpatialMean), over the
         region x0, y0, w, h of `input` (clipRectSource); `weight` for FeatureChannelsSum
  20-22  NNReduceFeatureChannelsAndWeightsSum, ...Sum with doWeightedSumByNonZeroWeights, ...Mean:
         `input` data, `weights` (same size or one pixel per image)
  30     NNReshape to H2 x W2 x C2 (torch.reshape of the NHWC tensor: row-major HWC order)
  31     NNSlice: input[:, y0:y0+h, x0:x0+w, c0:c0+cc]
  32     NNPad: mode = ImageEdgeMode (0 Zero, 1 Clamp = replicate, 2 Mirror = reflect, 3 MirrorWithEdge =
         numpy 'symmetric', 4 Constant with `fill`), padding bx/by/bc before and ax/ay/ac after
  33     NNConcatenation of input0..input{count-1}: torch.cat of the inputs, each zero-padded to a
         multiple of 4 channels
"""
import numpy as np
import torch
import torch.nn.functional as F


def f32(x):
    return np.asarray(x, dtype=np.float32).astype(np.float64)


def random_input(rng, n, h, w, c, lo=-1.0, hi=1.0):
    x = rng.uniform(lo, hi, size=(n, h, w, c))
    x[np.abs(x) < 1e-3] = 0.5  # never zero
    return f32(x)


def generate(rng):
    cases = []
    t = torch.from_numpy

    def shape(max_hw=9):
        return (int(rng.integers(1, 4)), int(rng.integers(1, max_hw + 1)), int(rng.integers(1, max_hw + 1)),
                int(rng.choice([1, 3, 5, 7, 13, 17])))

    # ---- unary reductions over a region ----
    for op in range(15):
        for i in range(3):
            n, h, w, c = shape()
            x = random_input(rng, n, h, w, c)
            if op in (12, 13) and i == 2:
                x = f32(np.round(x * 2) / 2)  # few levels: ties, torch returns the first index
                x[x == 0] = 0.5
            x0, y0 = int(rng.integers(0, w)), int(rng.integers(0, h))
            rw, rh = int(rng.integers(1, w - x0 + 1)), int(rng.integers(1, h - y0 + 1))
            r = t(x[:, y0:y0 + rh, x0:x0 + rw, :])
            weight = 1.0
            if op < 4:  # rows: over x (dim 2)
                y = [torch.amin, torch.amax, torch.sum, torch.mean][op](r, dim=2, keepdim=True)
            elif op < 8:  # columns: over y (dim 1)
                y = [torch.amin, torch.amax, torch.sum, torch.mean][op - 4](r, dim=1, keepdim=True)
            elif op < 12:  # feature channels (dim 3)
                if op == 10:
                    weight = float(f32(rng.uniform(-2.0, 2.0)))
                y = [torch.amin, torch.amax, torch.sum, torch.mean][op - 8](r, dim=3, keepdim=True) * weight
            elif op < 14:
                y = (torch.argmin if op == 12 else torch.argmax)(r, dim=3, keepdim=True).to(torch.float64)
            else:
                y = torch.mean(r, dim=(1, 2), keepdim=True)
            cases.append((f"reduce_{op}_{i}", {"op": op, "x0": x0, "y0": y0, "w": rw, "h": rh, "weight": weight,
                                               "input": x, "output": y.numpy()}))

    # ---- weighted feature-channel reductions ----
    for op in (20, 21, 22):
        for single in (False, True):
            n, h, w, c = shape()
            x = random_input(rng, n, h, w, c)
            wt = random_input(rng, n, 1 if single else h, 1 if single else w, c)
            wt[rng.uniform(size=wt.shape) < 0.3] = 0.0  # exact zeros for the non-zero divisor
            dot = torch.sum(t(x) * t(wt), dim=3)
            if op == 21:
                count = torch.count_nonzero(t(wt), dim=3).to(torch.float64)
                dot = torch.where(count > 0, dot / torch.clamp(count, min=1.0), torch.zeros_like(dot))
            elif op == 22:
                dot = dot / c
            cases.append((f"weights_{op}_{int(single)}", {"op": op, "input": x, "weights": wt,
                                                         "output": dot.numpy()}))

    # ---- reshape: torch.reshape of the NHWC tensor ----
    for i in range(4):
        n = int(rng.integers(1, 4))
        factors = [int(v) for v in rng.choice([1, 2, 3, 5], size=4)]
        total = int(np.prod(factors))
        h, w, c = factors[0], factors[1] * factors[2], factors[3]
        order = rng.permutation(4)
        h2 = int(np.prod([factors[k] for k in order[:1]]))
        w2 = int(np.prod([factors[k] for k in order[1:3]]))
        c2 = total // (h2 * w2)
        x = random_input(rng, n, h, w, c)
        y = torch.reshape(t(x), (n, h2, w2, c2))
        cases.append((f"reshape_{i}", {"op": 30, "H2": h2, "W2": w2, "C2": c2, "input": x, "output": y.numpy()}))

    # ---- slice ----
    for i in range(4):
        n, h, w, c = shape()
        x = random_input(rng, n, h, w, c)
        x0, y0, c0 = int(rng.integers(0, w)), int(rng.integers(0, h)), int(rng.integers(0, c))
        sw, sh, sc = int(rng.integers(1, w - x0 + 1)), int(rng.integers(1, h - y0 + 1)), int(rng.integers(1, c - c0 + 1))
        y = x[:, y0:y0 + sh, x0:x0 + sw, c0:c0 + sc]
        cases.append((f"slice_{i}", {"op": 31, "x0": x0, "y0": y0, "c0": c0, "w": sw, "h": sh, "cc": sc,
                                     "input": x, "output": y}))

    # ---- pad ----
    for mode in range(5):
        for i in range(2):
            n = int(rng.integers(1, 3))
            h, w, c = int(rng.integers(2, 6)), int(rng.integers(2, 6)), int(rng.integers(2, 6))
            x = random_input(rng, n, h, w, c)
            by, ay = int(rng.integers(0, h)), int(rng.integers(0, h))  # below the extent: reflect's limit
            bx, ax = int(rng.integers(0, w)), int(rng.integers(0, w))
            bc, ac = int(rng.integers(0, c)), int(rng.integers(0, c))
            fill = float(f32(rng.uniform(-2.0, 2.0)))
            pads = (bc, ac, bx, ax, by, ay)  # last dimension first
            x5 = t(x).unsqueeze(0)
            if mode == 0:
                y = F.pad(x5, pads, mode="constant", value=0.0)[0].numpy()
            elif mode == 1:
                y = F.pad(x5, pads, mode="replicate")[0].numpy()
            elif mode == 2:
                y = F.pad(x5, pads, mode="reflect")[0].numpy()
            elif mode == 3:
                y = np.pad(x, ((0, 0), (by, ay), (bx, ax), (bc, ac)), mode="symmetric")
            else:
                y = F.pad(x5, pads, mode="constant", value=fill)[0].numpy()
            cases.append((f"pad_{mode}_{i}", {"op": 32, "mode": mode, "bx": bx, "by": by, "bc": bc, "ax": ax,
                                              "ay": ay, "ac": ac, "fill": fill, "input": x, "output": y}))

    # ---- concatenation ----
    for i in range(2):
        n, h, w = int(rng.integers(1, 3)), int(rng.integers(1, 6)), int(rng.integers(1, 6))
        channels = [int(v) for v in rng.choice([1, 3, 4, 5, 7, 23], size=int(rng.integers(2, 5)))]
        inputs = [random_input(rng, n, h, w, c) for c in channels]
        padded = [F.pad(t(v), (0, (c + 3) // 4 * 4 - c)) for v, c in zip(inputs, channels)]
        y = torch.cat(padded, dim=3).numpy()
        values = {"op": 33, "count": len(inputs), "output": y}
        for j, v in enumerate(inputs):
            values[f"input{j}"] = v
        cases.append((f"concat_{i}", values))
    return [("reduce.txt", cases)]
