// Float64 reference of CNNSoftMax and CNNLogSoftMax (spec 04 §1–§2), as the spec writes them.
#include <cmath>
#include <limits>

#include "ref/ref.h"

namespace mpsnn::ref {

void softMaxKernel(bool logarithm, const UnaryPlacement& p, const RefImage& src, RefImage& dst) {
  const int64_t c0 = int64_t(p.sourceFeatureChannelOffset);
  const int64_t channels = std::min<int64_t>(
      int64_t(std::min<uint64_t>(p.sourceFeatureChannelMaxCount, uint64_t(src.c))), src.c - c0);
  std::vector<double> x(static_cast<size_t>(channels));
  forEachDestinationPixel(p, src, dst, [&](int64_t k, int64_t px, int64_t py, int64_t X, int64_t Y) {
    for (int64_t q = 0; q < channels; ++q)
      x[size_t(q)] = src.read(p.offset.z + k, p.offset.y + py, p.offset.x + px, c0 + q, p.edgeMode);
    // m = max_q X(q); a NaN is never the maximum, and exp(NaN − m) makes the sum NaN.
    double m = -std::numeric_limits<double>::infinity();
    for (double v : x) m = v > m ? v : m;
    double sum = 0;
    for (double v : x) sum += std::exp(v - m);
    for (int64_t q = 0; q < channels; ++q) {
      const double v = x[size_t(q)];
      dst.at(int64_t(p.clipRect.origin.z) + k, Y, X, int64_t(p.destinationFeatureChannelOffset) + q) =
          logarithm ? v - m - std::log(sum) : std::exp(v - m) / sum;
    }
  });
}

}  // namespace mpsnn::ref
