// Float64 reference of NNGramMatrixCalculation (spec 01 §10), straight from the formula.
#include <algorithm>

#include "ref/ref.h"

namespace mpsnn::ref {

void gramMatrixKernel(double alpha, const UnaryPlacement& p, const RefImage& src, RefImage& dst) {
  const int64_t srcC0 = int64_t(p.sourceFeatureChannelOffset),
                dstC0 = int64_t(p.destinationFeatureChannelOffset);
  const int64_t cRead = std::min<int64_t>(
      int64_t(std::min<uint64_t>(p.sourceFeatureChannelMaxCount, uint64_t(src.c))), src.c - srcC0);
  const int64_t depth = std::min(dst.n, src.n - p.offset.z);
  for (int64_t k = 0; k < depth; ++k)
    for (int64_t f = 0; f < cRead; ++f)
      for (int64_t c = 0; c < cRead; ++c) {
        double sum = 0.0;
        for (int64_t y = 0; y < src.h; ++y)
          for (int64_t x = 0; x < src.w; ++x)
            sum += src.at(p.offset.z + k, y, x, srcC0 + f) * src.at(p.offset.z + k, y, x, srcC0 + c);
        dst.at(k, 0, f, dstC0 + c) = alpha * sum;
      }
}

}  // namespace mpsnn::ref
