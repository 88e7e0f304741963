// Float64 reference of the normalization kernels (spec 04 §3–§7), tap by tap as the spec writes them.
#include <algorithm>
#include <cmath>

#include "ref/ref.h"

namespace mpsnn::ref {

namespace {

/// C_read of spec 00 §4.1.
int64_t channelsRead(const UnaryPlacement& p, const RefImage& src) {
  return std::min<int64_t>(int64_t(std::min<uint64_t>(p.sourceFeatureChannelMaxCount, uint64_t(src.c))),
                           src.c - int64_t(p.sourceFeatureChannelOffset));
}

}  // namespace

void crossChannelNormalizationKernel(const CrossChannelNormalizationSpec& s, const UnaryPlacement& p,
                                     const RefImage& src, RefImage& dst) {
  const int64_t c0 = int64_t(p.sourceFeatureChannelOffset), d = channelsRead(p, src), n = s.kernelSize;
  forEachDestinationPixel(p, src, dst, [&](int64_t k, int64_t x, int64_t y, int64_t X, int64_t Y) {
    auto value = [&](int64_t q) {
      return src.read(p.offset.z + k, p.offset.y + y, p.offset.x + x, c0 + q, p.edgeMode);
    };
    for (int64_t ch = 0; ch < d; ++ch) {
      // Q(k) = [max(0, k − floor(N/2)), min(D − 1, k + floor((N − 1)/2))]; the divisor is always N.
      const int64_t lo = std::max<int64_t>(0, ch - n / 2), hi = std::min<int64_t>(d - 1, ch + (n - 1) / 2);
      double sum = 0;
      for (int64_t q = lo; q <= hi; ++q) sum += value(q) * value(q);
      const double l = s.delta + s.alpha / double(n) * sum;
      dst.at(int64_t(p.clipRect.origin.z) + k, Y, X, int64_t(p.destinationFeatureChannelOffset) + ch) =
          value(ch) / std::pow(l, s.beta);
    }
  });
}

void windowNormalizationKernel(const WindowNormalizationSpec& s, const UnaryPlacement& p, const RefImage& src,
                               RefImage& dst) {
  const int64_t c0 = int64_t(p.sourceFeatureChannelOffset), d = channelsRead(p, src);
  const double taps = double(s.kernelWidth * s.kernelHeight);
  forEachDestinationPixel(p, src, dst, [&](int64_t k, int64_t x, int64_t y, int64_t X, int64_t Y) {
    const int64_t n = p.offset.z + k, cx = p.offset.x + x, cy = p.offset.y + y;
    for (int64_t ch = 0; ch < d; ++ch) {
      // Window: columns [cx − floor(kw/2), cx + floor((kw − 1)/2)], rows likewise; edge mode per tap.
      double sum = 0, squares = 0;
      for (int64_t v = cy - s.kernelHeight / 2; v <= cy + (s.kernelHeight - 1) / 2; ++v)
        for (int64_t u = cx - s.kernelWidth / 2; u <= cx + (s.kernelWidth - 1) / 2; ++u) {
          const double t = src.read(n, v, u, c0 + ch, p.edgeMode);
          sum += t;
          squares += t * t;
        }
      const double centre = src.read(n, cy, cx, c0 + ch, p.edgeMode);
      double result;
      if (!s.localContrast) {
        result = centre / std::pow(s.delta + s.alpha / taps * squares, s.beta);
      } else {
        const double mean = sum / taps;
        const double variance = std::max(0.0, squares / taps - mean * mean);  // CHOICE: clamp at ≥ 0
        result = s.pm + s.ps * (centre - s.p0 * mean) / std::pow(s.delta + s.alpha * variance, s.beta);
      }
      dst.at(int64_t(p.clipRect.origin.z) + k, Y, X, int64_t(p.destinationFeatureChannelOffset) + ch) =
          result;
    }
  });
}

void batchNormalizationKernel(const BatchNormalizationSpec& s, const UnaryPlacement& p, const RefImage& src,
                              RefImage& dst) {
  const int64_t c0 = int64_t(p.sourceFeatureChannelOffset), channels = int64_t(s.gamma.size());
  forEachDestinationPixel(p, src, dst, [&](int64_t k, int64_t x, int64_t y, int64_t X, int64_t Y) {
    for (int64_t c = 0; c < channels; ++c) {
      const size_t i = size_t(c);
      const double v = src.read(p.offset.z + k, p.offset.y + y, p.offset.x + x, c0 + c, p.edgeMode);
      const double normalized =
          (v - s.mean[i]) * s.gamma[i] / std::sqrt(s.variance[i] + s.epsilon) + s.beta[i];
      dst.at(int64_t(p.clipRect.origin.z) + k, Y, X, int64_t(p.destinationFeatureChannelOffset) + c) =
          neuron(s.neuron, normalized, c);
    }
  });
}

void instanceNormalizationKernel(const InstanceNormalizationSpec& s, const UnaryPlacement& p,
                                 const RefImage& src, RefImage& dst) {
  const int64_t c0 = int64_t(p.sourceFeatureChannelOffset), channels = int64_t(s.gamma.size());
  const double pixels = double(src.h * src.w);
  // Statistics over every pixel of each channel of each source image (biased variance).
  std::vector<double> mean(size_t(src.n * channels)), variance(size_t(src.n * channels));
  for (int64_t n = 0; n < src.n; ++n)
    for (int64_t c = 0; c < channels; ++c) {
      double sum = 0;
      for (int64_t v = 0; v < src.h; ++v)
        for (int64_t u = 0; u < src.w; ++u) sum += src.at(n, v, u, c0 + c);
      const double m = sum / pixels;
      double squares = 0;
      for (int64_t v = 0; v < src.h; ++v)
        for (int64_t u = 0; u < src.w; ++u)
          squares += (src.at(n, v, u, c0 + c) - m) * (src.at(n, v, u, c0 + c) - m);
      mean[size_t(n * channels + c)] = m;
      variance[size_t(n * channels + c)] = squares / pixels;
    }
  forEachDestinationPixel(p, src, dst, [&](int64_t k, int64_t x, int64_t y, int64_t X, int64_t Y) {
    const int64_t n = p.offset.z + k;
    for (int64_t c = 0; c < channels; ++c) {
      const size_t i = size_t(n * channels + c);
      const double value = src.read(n, p.offset.y + y, p.offset.x + x, c0 + c, p.edgeMode);
      dst.at(int64_t(p.clipRect.origin.z) + k, Y, X, int64_t(p.destinationFeatureChannelOffset) + c) =
          (value - mean[i]) * s.gamma[size_t(c)] / std::sqrt(variance[i] + s.epsilon) + s.beta[size_t(c)];
    }
  });
}

}  // namespace mpsnn::ref
