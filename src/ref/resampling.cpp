// Float64 reference of the resampling kernels (spec 05 §1, §4), formula by formula.
#include <algorithm>
#include <cmath>
#include <vector>

#include "ref/ref.h"

namespace mpsnn::ref {

namespace {

int64_t channelsRead(const UnaryPlacement& p, const RefImage& src) {
  const int64_t c0 = int64_t(p.sourceFeatureChannelOffset);
  return std::min<int64_t>(int64_t(std::min<uint64_t>(p.sourceFeatureChannelMaxCount, uint64_t(src.c))),
                           src.c - c0);
}

double sinc(double t) {
  if (t == 0) return 1.0;
  const double pt = M_PI * t;
  return std::sin(pt) / pt;
}

/// §4.2: L(t) = sinc(t)·sinc(t/a) for |t| < a, else 0, a = 3.
double lanczos(double t) {
  constexpr double a = 3.0;
  return std::fabs(t) < a ? sinc(t) * sinc(t / a) : 0.0;
}

/// §4.2 along one axis: the source pixels i ∈ [ceil(u − a/f), floor(u + a/f)] and their weights
/// L((i − u)·f); `index` holds i clamped to the edge.
void lanczosTaps(double u, double scale, int64_t extent, std::vector<int64_t>& index,
                 std::vector<double>& weight) {
  const double f = std::min(1.0, scale), a = 3.0;
  index.clear();
  weight.clear();
  for (int64_t i = int64_t(std::ceil(u - a / f)); i <= int64_t(std::floor(u + a / f)); ++i) {
    index.push_back(std::clamp<int64_t>(i, 0, extent - 1));
    weight.push_back(lanczos((double(i) - u) * f));
  }
}

}  // namespace

double bilinearSample(const RefImage& src, int64_t n, int64_t ch, double fx, double fy) {
  const int64_t W = src.w, H = src.h;
  fx = std::clamp(fx, 0.0, double(W - 1));
  fy = std::clamp(fy, 0.0, double(H - 1));
  const int64_t x0 = int64_t(std::floor(fx)), y0 = int64_t(std::floor(fy));
  const int64_t x1 = std::min<int64_t>(x0 + 1, W - 1), y1 = std::min<int64_t>(y0 + 1, H - 1);
  const double ax = fx - double(x0), ay = fy - double(y0);
  return (1 - ay) * ((1 - ax) * src.at(n, y0, x0, ch) + ax * src.at(n, y0, x1, ch)) +
         ay * ((1 - ax) * src.at(n, y1, x0, ch) + ax * src.at(n, y1, x1, ch));
}

void upsamplingKernel(const UpsamplingSpec& s, const UnaryPlacement& p, const RefImage& src, RefImage& dst) {
  const int64_t c0 = int64_t(p.sourceFeatureChannelOffset), cRead = channelsRead(p, src);
  const int64_t sX = s.scaleFactorX, sY = s.scaleFactorY;
  const double wOut = double(src.w) * double(sX), hOut = double(src.h) * double(sY);  // §1: W_in·sX, H_in·sY
  forEachDestinationPixel(p, src, dst, [&](int64_t k, int64_t x, int64_t y, int64_t X, int64_t Y) {
    const int64_t n = p.offset.z + k;
    for (int64_t ch = 0; ch < cRead; ++ch) {
      double v;
      if (!s.bilinear) {
        // §1.1: the block of source pixel (offset.x + floor(x / sX), offset.y + floor(y / sY)); a read
        // outside the source follows edgeMode (spec 00 §1.5).
        v = src.read(n, p.offset.y + y / sY, p.offset.x + x / sX, c0 + ch, p.edgeMode);
      } else {
        double fx, fy;
        if (!s.alignCorners) {  // §1.2
          fx = (double(x) + 0.5) / double(sX) - 0.5;
          fy = (double(y) + 0.5) / double(sY) - 0.5;
        } else {
          fx = wOut == 1 ? 0.0 : double(x) * double(src.w - 1) / (wOut - 1);
          fy = hOut == 1 ? 0.0 : double(y) * double(src.h - 1) / (hOut - 1);
        }
        v = bilinearSample(src, n, c0 + ch, double(p.offset.x) + fx, double(p.offset.y) + fy);
      }
      dst.at(int64_t(p.clipRect.origin.z) + k, Y, X, int64_t(p.destinationFeatureChannelOffset) + ch) = v;
    }
  });
}

void imageScaleKernel(ImageScaleFilter filter, const ScaleTransform* transform, const UnaryPlacement& p,
                      const RefImage& src, RefImage& dst) {
  const int64_t c0 = int64_t(p.sourceFeatureChannelOffset), cRead = channelsRead(p, src);
  // §4: no transform stretches the source over the destination image.
  const ScaleTransform t =
      transform ? *transform
                : ScaleTransform{double(dst.w) / double(src.w), double(dst.h) / double(src.h), 0, 0};
  std::vector<int64_t> ix, iy;
  std::vector<double> wx, wy;
  forEachDestinationPixel(p, src, dst, [&](int64_t k, int64_t x, int64_t y, int64_t X, int64_t Y) {
    const int64_t n = p.offset.z + k;
    // §4 inverse map, x and y relative to the clip origin; offset shifts the source position.
    const double u = double(p.offset.x) + ((double(x) + 0.5 - t.translateX) / t.scaleX - 0.5);
    const double v = double(p.offset.y) + ((double(y) + 0.5 - t.translateY) / t.scaleY - 0.5);
    if (filter == ImageScaleFilter::Lanczos) {
      lanczosTaps(u, t.scaleX, src.w, ix, wx);
      lanczosTaps(v, t.scaleY, src.h, iy, wy);
    }
    for (int64_t ch = 0; ch < cRead; ++ch) {
      double value;
      if (filter == ImageScaleFilter::Bilinear) {
        value = bilinearSample(src, n, c0 + ch, u, v);
      } else {
        // Separable: each row's horizontal pass normalised by Σ wx, then the vertical pass by Σ wy.
        double sumX = 0, sumY = 0, acc = 0;
        for (double w : wx) sumX += w;
        for (double w : wy) sumY += w;
        for (size_t j = 0; j < iy.size(); ++j) {
          double row = 0;
          for (size_t i = 0; i < ix.size(); ++i) row += wx[i] * src.at(n, iy[j], ix[i], c0 + ch);
          acc += wy[j] * (row / sumX);
        }
        value = acc / sumY;
      }
      dst.at(int64_t(p.clipRect.origin.z) + k, Y, X, int64_t(p.destinationFeatureChannelOffset) + ch) = value;
    }
  });
}

}  // namespace mpsnn::ref
