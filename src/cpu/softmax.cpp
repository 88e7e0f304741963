// CPU softmax and log-softmax over feature channels: an OpenMP float32 loop (any placement and edge
// mode) and a plain loop for every format.
//
// oneDNN's softmax is not used: where one channel is NaN or +inf it makes only that channel NaN and
// returns 0 (softmax) or −inf (log-softmax) for the others, where spec 04 §1 wants the whole pixel
// NaN, so its semantics do not map exactly.
#include <omp.h>

#include <vector>

#include "kernels/softmax_impl.h"

namespace mpsnn::detail {
namespace {

bool isFloat32(const SoftMaxProblem& p) {
  return p.io.src.format == ImageFeatureChannelFormat::Float32 &&
         p.io.dst.format == ImageFeatureChannelFormat::Float32;
}

/// True when the work is big enough for the OpenMP team to pay off.
bool worthThreads(const ImageView& d) {
  return double(d.n) * double(d.h) * double(d.w) * double(d.c) > 16384.0;
}

// ---- float32: one pixel's channels are contiguous; exp values go straight into the output ------

bool rowsSupports(const SoftMaxProblem& p) { return isFloat32(p); }

void rowsRun(const SoftMaxProblem& p, QueueContext&) {
  const ImageView& s = p.io.src;
  const ImageView& d = p.io.dst;
  const float* src = static_cast<const float*>(s.data());
  float* dst = static_cast<float*>(d.data());
  const int64_t rows = d.n * d.h, channels = d.c;
  const bool logarithm = p.logarithm;
#pragma omp parallel if (worthThreads(d))
  {
    const std::vector<float> zeros(static_cast<size_t>(channels), 0.0f);  // a pixel outside in Zero mode
#pragma omp for schedule(static)
    for (int64_t r = 0; r < rows; ++r) {
      const int64_t n = r / d.h, y = r % d.h;
      int64_t sy = p.io.offsetY + y;
      const bool rowInside = resolveEdge(sy, s.h, p.io.edgeMode);
      for (int64_t x = 0; x < d.w; ++x) {
        int64_t sx = p.io.offsetX + x;
        const bool inside = rowInside & resolveEdge(sx, s.w, p.io.edgeMode);
        const float* in = inside ? src + s.index(n, sy, sx, 0) : zeros.data();
        float* out = dst + d.index(n, y, x, 0);
        float m = -INFINITY;
        for (int64_t k = 0; k < channels; ++k)
          m = in[k] > m ? in[k] : m;  // NaN never wins; the sum catches it
        if (logarithm) {
          float sum = 0.0f;
          for (int64_t k = 0; k < channels; ++k) sum += expf(in[k] - m);
          const float logSum = logf(sum);
          for (int64_t k = 0; k < channels; ++k) out[k] = (in[k] - m) - logSum;
        } else {
          float sum = 0.0f;
          for (int64_t k = 0; k < channels; ++k) {
            out[k] = expf(in[k] - m);
            sum += out[k];
          }
          for (int64_t k = 0; k < channels; ++k) out[k] /= sum;
        }
      }
    }
  }
}

// ---- plain: every format through loadAsFloat/storeFromFloat --------------------------------------

bool plainSupports(const SoftMaxProblem&) { return true; }

void plainRun(const SoftMaxProblem& p, QueueContext&) {
  const RawView s = p.io.src.raw();
  const RawView d = p.io.dst.raw();
  const int64_t rows = d.n * d.h;
#pragma omp parallel for schedule(static) if (worthThreads(p.io.dst))
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t n = r / d.h, y = r % d.h;
    for (int64_t x = 0; x < d.w; ++x) {
      int64_t sy = p.io.offsetY + y, sx = p.io.offsetX + x;
      const bool inside = resolveEdge(sy, s.h, p.io.edgeMode) & resolveEdge(sx, s.w, p.io.edgeMode);
      softMaxPixel(
          d.c, p.logarithm, [&](int64_t k) { return inside ? s.load(s.index(n, sy, sx, k)) : 0.0f; },
          [&](int64_t k, float v) { d.store(d.index(n, y, x, k), v); });
    }
  }
}

}  // namespace

ImplementationList<SoftMaxProblem>& cpuSoftMaxImplementations() {
  static ImplementationList<SoftMaxProblem> list = {
      {"cpu:rows", rowsSupports, rowsRun},
      {"cpu:plain", plainSupports, plainRun},
  };
  return list;
}

}  // namespace mpsnn::detail
