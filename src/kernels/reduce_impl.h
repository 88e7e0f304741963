// Internal: the interface between the reduction kernels (spec 06 §4) and the backends, and the
// float32 combining rules every implementation shares (host and CUDA device code).
#pragma once
#include <cstdint>

#include "core/format.h"
#include "kernels/dispatch.h"
#include "kernels/problem.h"

namespace mpsnn::detail {

enum class ReduceAxis : uint32_t { Row, Column, FeatureChannels, Spatial };
enum class ReduceOperation : uint32_t { Min, Max, Sum, Mean, ArgumentMin, ArgumentMax };

/// One unary reduction. `src` is the reduced region R (n images × h × w × C_read channels); `dst` is
/// the part of the result that is written, which clipRect may have cut short:
///   Row              n × h' × 1  × C_read   (h' ≤ h; row y of dst reduces row y of src)
///   Column           n × 1  × w' × C_read   (w' ≤ w)
///   FeatureChannels  n × h' × w' × 1
///   Spatial          n × 1  × 1  × C_read
/// Mean divides by the full extent reduced (w, h, C_read or w·h), never by the part written.
struct ReduceProblem {
  ImageView src, dst;
  ReduceAxis axis = ReduceAxis::Row;
  ReduceOperation operation = ReduceOperation::Sum;
  float weight = 1.0f;  // NNReduceFeatureChannelsSum's weight; 1 for every other kernel
};

/// The weighted feature-channel reductions: `data` n × h × w × C, `weights` n × h × w × C or
/// n × 1 × 1 × C (one weight vector per image), `dst` n × h' × w' × 1.
enum class WeightsDivisor : uint32_t { None, NonZeroWeights, Channels };
struct WeightsReduceProblem {
  ImageView data, weights, dst;
  WeightsDivisor divisor = WeightsDivisor::None;
};

// ---- combining rules ----------------------------------------------------------------------------

MPSNN_HD float positiveInfinity() { return bitsFloat(0x7f800000u); }
MPSNN_HD float negativeInfinityValue() { return bitsFloat(0xff800000u); }

/// The value a Min / Max / Sum / Mean accumulation starts from.
MPSNN_HD float reduceIdentity(ReduceOperation op) {
  return op == ReduceOperation::Min   ? positiveInfinity()
         : op == ReduceOperation::Max ? negativeInfinityValue()
                                      : 0.0f;
}

/// acc ⊕ v for Min, Max (a NaN on either side wins and then stays, spec 06 §4.1 CHOICE) and Sum/Mean.
MPSNN_HD float reduceCombine(ReduceOperation op, float acc, float v) {
  switch (op) {
    case ReduceOperation::Min:
      return (v < acc || v != v) ? v : acc;
    case ReduceOperation::Max:
      return (v > acc || v != v) ? v : acc;
    default:
      return acc + v;
  }
}

/// The result from the accumulated value: Mean divides by `count`, Sum multiplies by `weight`.
MPSNN_HD float reduceFinish(ReduceOperation op, float acc, int64_t count, float weight) {
  if (op == ReduceOperation::Mean) return acc / float(count);
  if (op == ReduceOperation::Sum) return weight == 1.0f ? acc : weight * acc;
  return acc;
}

/// A candidate of an argument reduction: a value and its channel index.
struct ArgumentCandidate {
  float value;
  int64_t index;
};
MPSNN_HD ArgumentCandidate argumentIdentity(ReduceOperation op) {
  return {op == ReduceOperation::ArgumentMax ? negativeInfinityValue() : positiveInfinity(), INT64_MAX};
}
/// The better of two candidates (order-independent, so partial results may be merged in any order):
/// a NaN beats every number (spec 06 §4.1 CHOICE: NaN is the maximum for ArgumentMax and the minimum
/// for ArgumentMin), the larger (ArgumentMax) / smaller (ArgumentMin) value beats the other, and equal
/// values — two NaNs included — go to the smaller index.
MPSNN_HD ArgumentCandidate argumentBetter(ReduceOperation op, ArgumentCandidate a, ArgumentCandidate b) {
  const bool aNaN = a.value != a.value, bNaN = b.value != b.value;
  if (aNaN || bNaN) {
    if (aNaN && bNaN) return a.index <= b.index ? a : b;
    return aNaN ? a : b;
  }
  if (a.value == b.value) return a.index <= b.index ? a : b;
  const bool aWins = op == ReduceOperation::ArgumentMax ? a.value > b.value : a.value < b.value;
  return aWins ? a : b;
}

MPSNN_HD bool isArgument(ReduceOperation op) {
  return op == ReduceOperation::ArgumentMin || op == ReduceOperation::ArgumentMax;
}

/// The weighted result from the dot product, the non-zero weight count and the channel count.
MPSNN_HD float weightsFinish(WeightsDivisor divisor, float dot, int64_t nonZero, int64_t channels) {
  switch (divisor) {
    case WeightsDivisor::NonZeroWeights:
      return nonZero == 0 ? 0.0f : dot / float(nonZero);
    case WeightsDivisor::Channels:
      return dot / float(channels);
    default:
      return dot;
  }
}

/// True when `v`'s images, rows and pixels are float32.
inline bool isFloat32View(const ImageView& v) { return v.format == ImageFeatureChannelFormat::Float32; }

ImplementationList<ReduceProblem>& cpuReduceImplementations();
ImplementationList<WeightsReduceProblem>& cpuWeightsReduceImplementations();
#if defined(MPSNN_HAVE_CUDA)
ImplementationList<ReduceProblem>& cudaReduceImplementations();
ImplementationList<WeightsReduceProblem>& cudaWeightsReduceImplementations();
#endif

}  // namespace mpsnn::detail
