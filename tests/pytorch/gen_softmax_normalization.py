"""PyTorch parity cases for softmax and normalization (spec 04). Layout: input/output NHWC, float64.

Scalar `op` selects the kernel:
  0 CNNSoftMax                     torch.softmax(x, dim=1)
  1 CNNLogSoftMax                  torch.log_softmax(x, dim=1)
  2 CNNCrossChannelNormalization   F.local_response_norm(x, size, alpha, beta, k)
  3 CNNBatchNormalization          F.batch_norm(x, mean, variance, gamma, beta, training=False, eps),
                                   then `neuron` (0 none, 1 ReLU) as a fused neuron
  4 CNNInstanceNormalization       F.instance_norm(x, weight=gamma, bias=beta, eps=eps)

local_response_norm ↔ spec 04 §3, parameter for parameter (size = kernelSize N, alpha = alpha,
beta = beta, k = delta): PyTorch pads the squared input with size // 2 channels before and
(size − 1) // 2 after, averages `size` channels (the padding counts, so the divisor is always
size) and multiplies by alpha, so its window for channel c is [c − floor(N/2), c + floor((N−1)/2)]
clipped to the channels, with divisor N: exactly Q(k) and alpha / N of the spec, even N included.
"""
import numpy as np
import torch
import torch.nn.functional as F

SOFTMAX, LOG_SOFTMAX, LRN, BATCH_NORM, INSTANCE_NORM = range(5)


def random_input(rng, shape, lo=-3.0, hi=3.0):
    x = rng.uniform(lo, hi, size=shape)
    x[np.abs(x) < 1e-3] = 0.5  # never zero
    return x


def nchw(x):
    return torch.from_numpy(x).permute(0, 3, 1, 2)


def nhwc(t):
    return t.permute(0, 2, 3, 1).contiguous().numpy()


def generate(rng):
    cases = []

    def shape(channels=None):
        c = channels if channels is not None else int(rng.choice([1, 3, 5, 7, 13, 17, 40]))
        return (int(rng.integers(1, 4)), int(rng.integers(1, 6)), int(rng.integers(1, 7)), c)

    for i in range(4):
        x = random_input(rng, shape(), -10.0, 10.0)
        cases.append((f"softmax_{i}", {"op": SOFTMAX, "input": x, "output": nhwc(torch.softmax(nchw(x), dim=1))}))
        x = random_input(rng, shape(), -10.0, 10.0)
        cases.append((f"log_softmax_{i}",
                      {"op": LOG_SOFTMAX, "input": x, "output": nhwc(torch.log_softmax(nchw(x), dim=1))}))

    for i, size in enumerate([1, 2, 3, 4, 5, 7, 11]):
        x = random_input(rng, shape(int(rng.choice([3, 5, 8, 13, 17]))))
        alpha = float(rng.uniform(0.0, 2.0))
        beta = float(rng.choice([0.75, 1.0, float(rng.uniform(0.3, 3.0))]))
        k = float(rng.uniform(0.5, 2.0))
        y = F.local_response_norm(nchw(x), size, alpha=alpha, beta=beta, k=k)
        cases.append((f"lrn_{i}_size{size}", {"op": LRN, "size": size, "alpha": alpha, "beta": beta, "delta": k,
                                               "input": x, "output": nhwc(y)}))

    for i in range(4):
        n, h, w, c = shape()
        x = random_input(rng, (n, h, w, c))
        gamma, beta = rng.uniform(0.5, 2.0, size=c), rng.uniform(-1.0, 1.0, size=c)
        mean, variance = rng.uniform(-1.0, 1.0, size=c), rng.uniform(0.25, 3.0, size=c)
        eps = float(rng.choice([1e-5, 1e-3]))
        neuron = i % 2
        y = F.batch_norm(nchw(x), torch.from_numpy(mean), torch.from_numpy(variance), torch.from_numpy(gamma),
                         torch.from_numpy(beta), training=False, eps=eps)
        if neuron:
            y = torch.relu(y)
        cases.append((f"batch_norm_{i}", {"op": BATCH_NORM, "epsilon": eps, "neuron": neuron, "gamma": gamma,
                                          "beta": beta, "mean": mean, "variance": variance, "input": x,
                                          "output": nhwc(y)}))

    for i in range(4):
        n, c = int(rng.integers(1, 4)), int(rng.choice([1, 3, 5, 7, 13]))
        h, w = int(rng.integers(2, 9)), int(rng.integers(2, 9))
        x = random_input(rng, (n, h, w, c)) + rng.uniform(-2.0, 2.0, size=(1, 1, 1, c))  # off-centre means
        gamma, beta = rng.uniform(0.5, 2.0, size=c), rng.uniform(-1.0, 1.0, size=c)
        eps = float(rng.choice([1e-5, 1e-3]))
        y = F.instance_norm(nchw(x), weight=torch.from_numpy(gamma), bias=torch.from_numpy(beta), eps=eps)
        cases.append((f"instance_norm_{i}", {"op": INSTANCE_NORM, "epsilon": eps, "gamma": gamma, "beta": beta,
                                             "input": x, "output": nhwc(y)}))
    return [("softmax_normalization.txt", cases)]
