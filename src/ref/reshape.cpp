// Float64 reference of NNReshape, NNSlice, NNPad and NNConcatenation (spec 06 §5–§8).
#include <algorithm>
#include <cstdlib>

#include "ref/ref.h"

namespace mpsnn::ref {

void reshapeKernel(uint64_t sourceFeatureChannelOffset, uint64_t sourceFeatureChannelMaxCount,
                   uint64_t destinationFeatureChannelOffset, const RefImage& src, RefImage& dst) {
  const int64_t c0 = int64_t(sourceFeatureChannelOffset), d0 = int64_t(destinationFeatureChannelOffset);
  const int64_t C = int64_t(std::min<uint64_t>(sourceFeatureChannelMaxCount, uint64_t(src.c - c0)));
  const int64_t C2 = dst.c - d0;
  const int64_t images = std::min(src.n, dst.n);
  const int64_t count = src.h * src.w * C;
  for (int64_t k = 0; k < images; ++k)
    for (int64_t L = 0; L < count; ++L) {
      // L = (y·W + x)·C + c over the source and (y'·W' + x')·C' + c' over the destination.
      const int64_t c = L % C, x = L / C % src.w, y = L / C / src.w;
      const int64_t c2 = L % C2, x2 = L / C2 % dst.w, y2 = L / C2 / dst.w;
      dst.at(k, y2, x2, d0 + c2) = src.at(k, y, x, c0 + c);
    }
}

void sliceKernel(const UnaryPlacement& p, const RefImage& src, RefImage& dst) {
  const int64_t c0 = int64_t(p.sourceFeatureChannelOffset), d0 = int64_t(p.destinationFeatureChannelOffset);
  const int64_t channels = std::min(
      {int64_t(std::min<uint64_t>(p.sourceFeatureChannelMaxCount, uint64_t(src.c))), src.c - c0, dst.c - d0});
  forEachDestinationPixel(p, src, dst, [&](int64_t k, int64_t x, int64_t y, int64_t X, int64_t Y) {
    for (int64_t c = 0; c < channels; ++c)
      dst.at(int64_t(p.clipRect.origin.z) + k, Y, X, d0 + c) =
          src.read(p.offset.z + k, p.offset.y + y, p.offset.x + x, c0 + c, p.edgeMode);
  });
}

int64_t padCoordinate(int64_t p, int64_t length, ImageEdgeMode mode) {
  if (p >= 0 && p < length) return p;
  switch (mode) {
    case ImageEdgeMode::Clamp:
      return std::clamp<int64_t>(p, 0, length - 1);
    case ImageEdgeMode::Mirror: {  // q = |p| mod (2L − 2); q ≥ L → 2L − 2 − q; L = 1 → 0
      if (length == 1) return 0;
      int64_t q = std::llabs(p) % (2 * length - 2);
      return q >= length ? 2 * length - 2 - q : q;
    }
    case ImageEdgeMode::MirrorWithEdge: {  // q = p mod 2L (non-negative); q ≥ L → 2L − 1 − q
      int64_t q = ((p % (2 * length)) + 2 * length) % (2 * length);
      return q >= length ? 2 * length - 1 - q : q;
    }
    default:
      return -1;  // Zero, Constant
  }
}

void padKernel(const PadSpec& s, const UnaryPlacement& p, const RefImage& src, RefImage& dst) {
  const int64_t c0 = int64_t(p.sourceFeatureChannelOffset), d0 = int64_t(p.destinationFeatureChannelOffset);
  const int64_t Cs = int64_t(std::min<uint64_t>(p.sourceFeatureChannelMaxCount, uint64_t(src.c - c0)));
  const int64_t written = int64_t(s.channelsBefore) + Cs + int64_t(s.channelsAfter);
  forEachDestinationPixel(p, src, dst, [&](int64_t k, int64_t x, int64_t y, int64_t X, int64_t Y) {
    const int64_t sy = padCoordinate(p.offset.y + y, src.h, p.edgeMode);
    const int64_t sx = padCoordinate(p.offset.x + x, src.w, p.edgeMode);
    for (int64_t j = 0; j < written; ++j) {
      const int64_t t = padCoordinate(j - int64_t(s.channelsBefore), Cs, p.edgeMode);
      double v;
      if (sy >= 0 && sx >= 0 && t >= 0)
        v = src.at(p.offset.z + k, sy, sx, c0 + t);
      else if (p.edgeMode == ImageEdgeMode::Constant)
        v = s.fillValueArray.empty() ? s.fillValue : s.fillValueArray[size_t(j)];
      else
        v = 0.0;
      dst.at(int64_t(p.clipRect.origin.z) + k, Y, X, d0 + j) = v;
    }
  });
}

void concatenationKernel(const std::vector<RefImage>& inputs, RefImage& dst) {
  int64_t offset = 0;
  for (const RefImage& in : inputs) {
    const int64_t occupied = (in.c + 3) / 4 * 4;
    for (int64_t n = 0; n < in.n; ++n)
      for (int64_t y = 0; y < in.h; ++y)
        for (int64_t x = 0; x < in.w; ++x)
          for (int64_t c = 0; c < occupied; ++c)
            dst.at(n, y, x, offset + c) = c < in.c ? in.at(n, y, x, c) : 0.0;
    offset += occupied;
  }
}

}  // namespace mpsnn::ref
