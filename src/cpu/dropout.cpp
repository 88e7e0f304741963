// CPU dropout: a row kernel for float32 reads inside the source (one Philox call per four mask
// elements along contiguous rows), and a plain loop for everything else (any format, edge modes).
#include <omp.h>

#include "kernels/dropout_impl.h"

namespace mpsnn::detail {
namespace {

constexpr int64_t kParallelThreshold = 8192;  // elements; each costs a share of a Philox call

/// Remembers the last Philox block so that neighbouring elements sharing it do not recompute it.
struct MaskCache {
  int64_t group = -1;
  Philox4x32Words words{};
  bool keep(const DropoutParams& p, int64_t n, int64_t element) {
    const int64_t g = element >> 2;
    if (g != group) {
      group = g;
      words = maskWords(p, n, g);
    }
    return keeps(p, words.w[element & 3]);
  }
};

bool rowsSupports(const DropoutProblem& p) {
  return p.io.src.format == ImageFeatureChannelFormat::Float32 &&
         p.io.dst.format == ImageFeatureChannelFormat::Float32 && dropoutReadsInside(p.io);
}

void rowsRun(const DropoutProblem& p, QueueContext&) {
  const ImageView& s = p.io.src;
  const ImageView& d = p.io.dst;
  const DropoutParams& m = p.dropout;
  const float* src = static_cast<const float*>(s.data());
  float* dst = static_cast<float*>(d.data());
  const int64_t rows = d.n * d.h;
  // Rows whose mask elements and pixels both run contiguously: x·C + c is the flat index in the row.
  const bool contiguous = s.pixelStride == s.c && d.pixelStride == d.c && m.maskStrideX && m.maskStrideC;
#pragma omp parallel for schedule(static) if (rows * d.w * d.c > kParallelThreshold)
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t k = r / d.h, y = r % d.h;
    const int64_t n = m.batchBase + k;
    const float* in = src + s.index(k, p.io.offsetY + y, p.io.offsetX, 0);
    float* out = dst + d.index(k, y, 0, 0);
    if (contiguous) {
      const int64_t count = d.w * d.c;
      int64_t element = maskElement(m, y, 0, 0);
      for (int64_t i = 0; i < count;) {
        const Philox4x32Words words = maskWords(m, n, element >> 2);
        for (int64_t lane = element & 3; lane < 4 && i < count; ++lane, ++i, ++element)
          out[i] = dropoutValue(in[i], keeps(m, words.w[lane]), m.keepProbability);
      }
      continue;
    }
    MaskCache cache;
    for (int64_t x = 0; x < d.w; ++x)
      for (int64_t c = 0; c < d.c; ++c)
        out[x * d.pixelStride + c] = dropoutValue(
            in[x * s.pixelStride + c], cache.keep(m, n, maskElement(m, y, x, c)), m.keepProbability);
  }
}

bool plainSupports(const DropoutProblem&) { return true; }

void plainRun(const DropoutProblem& p, QueueContext&) {
  const ImageView& s = p.io.src;
  const ImageView& d = p.io.dst;
  const DropoutParams& m = p.dropout;
  const void* src = s.data();
  void* dst = d.data();
  const int64_t rows = d.n * d.h;
#pragma omp parallel for schedule(static) if (rows * d.w * d.c > kParallelThreshold)
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t k = r / d.h, y = r % d.h;
    MaskCache cache;
    for (int64_t x = 0; x < d.w; ++x) {
      int64_t sy = p.io.offsetY + y, sx = p.io.offsetX + x;
      const bool inside = resolveEdge(sy, s.h, p.io.edgeMode) & resolveEdge(sx, s.w, p.io.edgeMode);
      for (int64_t c = 0; c < d.c; ++c) {
        const float v = inside ? loadAsFloat(src, s.index(k, sy, sx, c), s.format) : 0.0f;
        const bool keep = cache.keep(m, m.batchBase + k, maskElement(m, y, x, c));
        storeFromFloat(dst, d.index(k, y, x, c), d.format, dropoutValue(v, keep, m.keepProbability));
      }
    }
  }
}

}  // namespace

ImplementationList<DropoutProblem>& cpuDropoutImplementations() {
  static ImplementationList<DropoutProblem> list = {
      {"cpu:rows", rowsSupports, rowsRun},
      {"cpu:plain", plainSupports, plainRun},
  };
  return list;
}

}  // namespace mpsnn::detail
