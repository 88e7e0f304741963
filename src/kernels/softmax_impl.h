// Internal: the interface between CNNSoftMax / CNNLogSoftMax and the backends, and the per-pixel
// float32 computation (spec 04 §1–§2) that the plain CPU and CUDA implementations share.
#pragma once
#include <cstdint>

#include "kernels/dispatch.h"
#include "kernels/problem.h"

namespace mpsnn::detail {

/// `io.src.c == io.dst.c` is the channel count D the softmax runs over.
struct SoftMaxProblem {
  UnaryProblem io;
  bool logarithm = false;  // CNNLogSoftMax
};

/// True when every source pixel the destination reads lies inside the source image.
inline bool softMaxReadsInside(const UnaryProblem& p) {
  return p.offsetX >= 0 && p.offsetY >= 0 && p.offsetX + p.dst.w <= p.src.w && p.offsetY + p.dst.h <= p.src.h;
}

/// One pixel, straight from the spec: m = max (a NaN never becomes the maximum, but it makes the sum
/// NaN, so every output of the pixel is NaN, as the spec requires), then Σ exp(x − m), then the
/// outputs. `load(k)` returns channel k, `store(k, v)` writes output channel k.
template <class Load, class Store>
MPSNN_HD void softMaxPixel(int64_t channels, bool logarithm, const Load& load, const Store& store) {
  float m = bitsFloat(0xff800000u);  // −inf
  for (int64_t k = 0; k < channels; ++k) {
    const float v = load(k);
    m = v > m ? v : m;
  }
  float sum = 0.0f;
  for (int64_t k = 0; k < channels; ++k) sum += expf(load(k) - m);
  if (logarithm) {
    const float logSum = logf(sum);
    for (int64_t k = 0; k < channels; ++k) store(k, (load(k) - m) - logSum);
  } else {
    for (int64_t k = 0; k < channels; ++k) store(k, expf(load(k) - m) / sum);
  }
}

ImplementationList<SoftMaxProblem>& cpuSoftMaxImplementations();
#if defined(MPSNN_HAVE_CUDA)
ImplementationList<SoftMaxProblem>& cudaSoftMaxImplementations();
#endif

}  // namespace mpsnn::detail
