// Float64 reference of CNNAdd, CNNSubtract, CNNMultiply, CNNDivide and NNCompare (spec 06 §1–§2).
#include <algorithm>
#include <cmath>

#include "ref/ref.h"

namespace mpsnn::ref {

double arithmetic(const ArithmeticSpec& s, double a, double b) {
  if (s.kind == ArithmeticKind::Compare) {
    const bool equal = std::fabs(a - b) <= s.threshold;  // false for NaN
    bool result = false;
    switch (s.comparison) {
      case NNComparisonType::Equal:
        result = equal;
        break;
      case NNComparisonType::NotEqual:
        result = !equal;
        break;
      case NNComparisonType::Less:
        result = a < b;
        break;
      case NNComparisonType::LessOrEqual:
        result = a <= b;
        break;
      case NNComparisonType::Greater:
        result = a > b;
        break;
      case NNComparisonType::GreaterOrEqual:
        result = a >= b;
        break;
    }
    return result ? 1.0 : 0.0;
  }
  const double pa = s.primaryScale * a, sb = s.secondaryScale * b;
  double r = 0;
  switch (s.kind) {
    case ArithmeticKind::Add:
      r = pa + sb;
      break;
    case ArithmeticKind::Subtract:
      r = pa - sb;
      break;
    case ArithmeticKind::Multiply:
      r = pa * sb;
      break;
    case ArithmeticKind::Divide:
      r = pa / sb;
      break;
    case ArithmeticKind::Compare:
      break;
  }
  r += s.bias;
  if (std::isnan(r)) return r;  // CHOICE: NaN is not clamped
  return std::min(std::max(r, s.minimumValue), s.maximumValue);
}

void arithmeticKernel(const ArithmeticSpec& s, const BinaryPlacement& p, const RefImage& primary,
                      const RefImage& secondary, RefImage& dst) {
  // Channels read (spec 00 §4.1) and written (spec 06 §1.3).
  const int64_t cPrimary =
      std::min<int64_t>(int64_t(std::min<uint64_t>(p.primarySourceFeatureChannelMaxCount, 1u << 30)),
                        primary.c - int64_t(p.primarySourceFeatureChannelOffset));
  const int64_t cSecondary =
      std::min<int64_t>(int64_t(std::min<uint64_t>(p.secondarySourceFeatureChannelMaxCount, 1u << 30)),
                        secondary.c - int64_t(p.secondarySourceFeatureChannelOffset));
  const int64_t cOut = s.primaryStrideC == 1 ? cPrimary : cSecondary;
  // Clip region (spec 00 §4.5) and images processed (§4.4).
  const bool noClip = isRectNoClip(p.clipRect);
  const int64_t x0 = int64_t(p.clipRect.origin.x), y0 = int64_t(p.clipRect.origin.y),
                z0 = int64_t(p.clipRect.origin.z);
  const int64_t x1 =
      noClip ? dst.w
             : std::min<int64_t>(dst.w,
                                 x0 + int64_t(std::min<uint64_t>(p.clipRect.size.width, uint64_t(dst.w))));
  const int64_t y1 =
      noClip ? dst.h
             : std::min<int64_t>(dst.h,
                                 y0 + int64_t(std::min<uint64_t>(p.clipRect.size.height, uint64_t(dst.h))));
  const int64_t depth =
      noClip || p.clipRect.size.depth == UINT64_MAX
          ? std::min({dst.n - z0, primary.n - p.primaryOffset.z, secondary.n - p.secondaryOffset.z})
          : int64_t(p.clipRect.size.depth);
  for (int64_t k = 0; k < depth; ++k)
    for (int64_t Y = y0; Y < y1; ++Y)
      for (int64_t X = x0; X < x1; ++X) {
        const int64_t x = X - x0, y = Y - y0;  // relative to the clip origin (spec 06 §1.1)
        for (int64_t ch = 0; ch < cOut; ++ch) {
          const double a =
              primary.read(p.primaryOffset.z + k, p.primaryOffset.y + y * int64_t(s.primaryStrideY),
                           p.primaryOffset.x + x * int64_t(s.primaryStrideX),
                           int64_t(p.primarySourceFeatureChannelOffset) + ch * int64_t(s.primaryStrideC),
                           p.primaryEdgeMode);
          const double b = secondary.read(
              p.secondaryOffset.z + k, p.secondaryOffset.y + y * int64_t(s.secondaryStrideY),
              p.secondaryOffset.x + x * int64_t(s.secondaryStrideX),
              int64_t(p.secondarySourceFeatureChannelOffset) + ch * int64_t(s.secondaryStrideC),
              p.secondaryEdgeMode);
          dst.at(z0 + k, Y, X, int64_t(p.destinationFeatureChannelOffset) + ch) = arithmetic(s, a, b);
        }
      }
}

}  // namespace mpsnn::ref
