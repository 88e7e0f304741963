// Float64 reference of the pooling kernels (spec 02), tap by tap as the spec writes them.
#include <algorithm>
#include <cmath>
#include <limits>

#include "ref/ref.h"

namespace mpsnn::ref {

void poolingKernel(PoolingKind kind, const PoolingWindow& win, const UnaryPlacement& p, const RefImage& src,
                   RefImage& dst) {
  const int64_t c0 = int64_t(p.sourceFeatureChannelOffset);
  const int64_t cRead = std::min<int64_t>(
      int64_t(std::min<uint64_t>(p.sourceFeatureChannelMaxCount, uint64_t(src.c))), src.c - c0);
  // Effective (dilated) window, spec 02 §1.1.
  const int64_t kWd = (win.kernelWidth - 1) * win.dilationX + 1;
  const int64_t kHd = (win.kernelHeight - 1) * win.dilationY + 1;
  const int64_t padX = int64_t(win.zeroPadSizeX), padY = int64_t(win.zeroPadSizeY);
  forEachDestinationPixel(p, src, dst, [&](int64_t k, int64_t x, int64_t y, int64_t X, int64_t Y) {
    const int64_t n = p.offset.z + k;
    const int64_t centreX = p.offset.x + win.strideX * x, centreY = p.offset.y + win.strideY * y;
    const int64_t firstX = centreX - kWd / 2, firstY = centreY - kHd / 2;
    for (int64_t ch = 0; ch < cRead; ++ch) {
      double result = 0;
      if (kind == PoolingKind::Max) {
        // §3: max over the taps, out-of-image taps resolved by the edge mode; NaN propagates.
        double m = -std::numeric_limits<double>::infinity();
        bool sawNaN = false;
        for (int64_t j = 0; j < win.kernelHeight; ++j)
          for (int64_t i = 0; i < win.kernelWidth; ++i) {
            double v =
                src.read(n, firstY + j * win.dilationY, firstX + i * win.dilationX, c0 + ch, p.edgeMode);
            if (std::isnan(v)) sawNaN = true;
            m = std::max(m, v);
          }
        result = sawNaN ? std::numeric_limits<double>::quiet_NaN() : m;
      } else if (kind == PoolingKind::L2Norm) {
        // §4: sqrt of the sum of squares; Clamp reads the nearest edge pixel for every outside tap.
        double sum = 0;
        for (int64_t j = 0; j < win.kernelHeight; ++j)
          for (int64_t i = 0; i < win.kernelWidth; ++i) {
            double v =
                src.read(n, firstY + j * win.dilationY, firstX + i * win.dilationX, c0 + ch, p.edgeMode);
            sum += v * v;
          }
        result = std::sqrt(sum);
      } else if (p.edgeMode == ImageEdgeMode::Clamp) {
        // §2.2: average over the taps inside A = image extended by the zero band; band taps read 0.
        double sum = 0;
        int64_t count = 0;
        for (int64_t j = 0; j < win.kernelHeight; ++j)
          for (int64_t i = 0; i < win.kernelWidth; ++i) {
            const int64_t sx = firstX + i * win.dilationX, sy = firstY + j * win.dilationY;
            const bool inA = sx >= -padX && sx <= src.w - 1 + padX && sy >= -padY && sy <= src.h - 1 + padY;
            if (!inA) continue;
            ++count;
            if (sx >= 0 && sx < src.w && sy >= 0 && sy < src.h) sum += src.at(n, sy, sx, c0 + ch);
          }
        result = count == 0 ? 0.0 : sum / double(count);
      } else {
        // §2.1: the window's sum (out-of-image taps 0) over kernelWidth·kernelHeight.
        double sum = 0;
        for (int64_t j = 0; j < win.kernelHeight; ++j)
          for (int64_t i = 0; i < win.kernelWidth; ++i)
            sum += src.read(n, firstY + j * win.dilationY, firstX + i * win.dilationX, c0 + ch,
                            ImageEdgeMode::Zero);
        result = sum / double(win.kernelWidth * win.kernelHeight);
      }
      dst.at(int64_t(p.clipRect.origin.z) + k, Y, X, int64_t(p.destinationFeatureChannelOffset) + ch) =
          result;
    }
  });
}

}  // namespace mpsnn::ref
