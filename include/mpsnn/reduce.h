// mpsnn — reductions (spec 06 §4): minimum, maximum, sum, mean and argument min/max along rows,
// columns or feature channels, the spatial mean, and the feature-channel dot product with weights.
#pragma once
#include <cstdint>
#include <memory>

#include "mpsnn/kernel.h"

namespace mpsnn {

/// Base of the one-source reductions (MPSNNReduceUnary); abstract.
///
/// The reduced region R is clipRectSource intersected with the source: columns [x0, x0 + w), rows
/// [y0, y0 + h), source images from clipRectSource.origin.z (at most clipRectSource.size.depth of
/// them), channels [sourceFeatureChannelOffset, + C_read). clipRectSource replaces `offset`, which
/// reductions ignore. The result (shape per subclass) is written with its top-left pixel at
/// clipRect.origin, channels from destinationFeatureChannelOffset, destination images from
/// clipRect.origin.z; clipRect.size may cut it short, never the destination (the destination must
/// hold the whole result). Auto mode allocates exactly the result's shape. Everything is computed in
/// float32; a NaN in the reduced values makes Min, Max, Sum and Mean NaN.
class NNReduceUnary : public CNNKernel {
 public:
  /// The source rectangle reduced (default RectNoClip: the whole source).
  IntRegion clipRectSource() const { return clipRectSource_; }
  void setClipRectSource(IntRegion region) { clipRectSource_ = region; }

 protected:
  enum class Axis : uint32_t { Row, Column, FeatureChannels, Spatial };
  enum class Operation : uint32_t { Min, Max, Sum, Mean, ArgumentMin, ArgumentMax };
  NNReduceUnary(DevicePtr device, Axis axis, Operation operation);
  /// The weight applied to the result (NNReduceFeatureChannelsSum); 1 otherwise.
  virtual float resultWeight() const { return 1.0f; }
  uint64_t destinationFeatureChannels(uint64_t cRead) const override;
  Offset sourceOffset(const Image& source) const override;
  void validateImages(const Image& source, const Image& destination) const override;
  void autoGeometry(const Image& source, NNPaddingMethod method, uint64_t& width, uint64_t& height,
                    Offset& offset) const override;
  void encodeProblem(CommandBuffer& commandBuffer, const detail::UnaryProblem& problem) override;

  IntRegion clipRectSource_ = RectNoClip;
  Axis axis_;
  Operation operation_;
};

// The concrete unary reductions: constructor (device) and make(device) each.
#define MPSNN_REDUCE_UNARY(Name, AxisValue, OperationValue)                                          \
  class Name : public NNReduceUnary {                                                                \
   public:                                                                                           \
    explicit Name(DevicePtr device) : NNReduceUnary(std::move(device), AxisValue, OperationValue) {} \
    static std::shared_ptr<Name> make(DevicePtr device) {                                            \
      return std::make_shared<Name>(std::move(device));                                              \
    }                                                                                                \
    const char* className() const override { return #Name; }                                         \
  };
// Row reductions (min, max, sum, sum / w) over x: one value per row of R and channel; the result is
// 1 × h × C_read.
/// NNReduceRowMin: reduction over the Row axis, operation Min.
MPSNN_REDUCE_UNARY(NNReduceRowMin, Axis::Row, Operation::Min)
/// NNReduceRowMax: reduction over the Row axis, operation Max.
MPSNN_REDUCE_UNARY(NNReduceRowMax, Axis::Row, Operation::Max)
/// NNReduceRowSum: reduction over the Row axis, operation Sum.
MPSNN_REDUCE_UNARY(NNReduceRowSum, Axis::Row, Operation::Sum)
/// NNReduceRowMean: reduction over the Row axis, operation Mean.
MPSNN_REDUCE_UNARY(NNReduceRowMean, Axis::Row, Operation::Mean)
// Column reductions (min, max, sum, sum / h) over y: one value per column of R and channel; the
// result is w × 1 × C_read.
/// NNReduceColumnMin: reduction over the Column axis, operation Min.
MPSNN_REDUCE_UNARY(NNReduceColumnMin, Axis::Column, Operation::Min)
/// NNReduceColumnMax: reduction over the Column axis, operation Max.
MPSNN_REDUCE_UNARY(NNReduceColumnMax, Axis::Column, Operation::Max)
/// NNReduceColumnSum: reduction over the Column axis, operation Sum.
MPSNN_REDUCE_UNARY(NNReduceColumnSum, Axis::Column, Operation::Sum)
/// NNReduceColumnMean: reduction over the Column axis, operation Mean.
MPSNN_REDUCE_UNARY(NNReduceColumnMean, Axis::Column, Operation::Mean)
// Feature-channel reductions (min, max, sum / C_read) over the C_read channels of each pixel of R;
// the result is w × h × 1. (NNReduceFeatureChannelsSum, with its weight, is below.)
/// NNReduceFeatureChannelsMin: reduction over the FeatureChannels axis, operation Min.
MPSNN_REDUCE_UNARY(NNReduceFeatureChannelsMin, Axis::FeatureChannels, Operation::Min)
/// NNReduceFeatureChannelsMax: reduction over the FeatureChannels axis, operation Max.
MPSNN_REDUCE_UNARY(NNReduceFeatureChannelsMax, Axis::FeatureChannels, Operation::Max)
/// NNReduceFeatureChannelsMean: reduction over the FeatureChannels axis, operation Mean.
MPSNN_REDUCE_UNARY(NNReduceFeatureChannelsMean, Axis::FeatureChannels, Operation::Mean)
// Argument reductions: the channel index (0-based from sourceFeatureChannelOffset) of the smallest /
// largest value of each pixel, stored as a float; the result is w × h × 1. Ties give the smallest
// index; a NaN counts as the extreme value, so the first NaN wins (as PyTorch's argmin / argmax).
/// NNReduceFeatureChannelsArgumentMin: reduction over the FeatureChannels axis, operation ArgumentMin.
MPSNN_REDUCE_UNARY(NNReduceFeatureChannelsArgumentMin, Axis::FeatureChannels, Operation::ArgumentMin)
/// NNReduceFeatureChannelsArgumentMax: reduction over the FeatureChannels axis, operation ArgumentMax.
MPSNN_REDUCE_UNARY(NNReduceFeatureChannelsArgumentMax, Axis::FeatureChannels, Operation::ArgumentMax)
// The mean over all pixels of R, per channel; the result is 1 × 1 × C_read. MPS has it only as the
// graph node MPSNNReductionSpatialMeanNode (spec 06 §4.1 CHOICE: also a kernel).
/// NNReduceSpatialMean: reduction over the Spatial axis, operation Mean.
MPSNN_REDUCE_UNARY(NNReduceSpatialMean, Axis::Spatial, Operation::Mean)
#undef MPSNN_REDUCE_UNARY

/// weight · Σ_c X(c) over the C_read channels of each pixel of R (MPSNNReduceFeatureChannelsSum): the
/// result is w × h × 1. `weight` defaults to 1.
class NNReduceFeatureChannelsSum : public NNReduceUnary {
 public:
  explicit NNReduceFeatureChannelsSum(DevicePtr device)
      : NNReduceUnary(std::move(device), Axis::FeatureChannels, Operation::Sum) {}
  static std::shared_ptr<NNReduceFeatureChannelsSum> make(DevicePtr device) {
    return std::make_shared<NNReduceFeatureChannelsSum>(std::move(device));
  }
  const char* className() const override { return "NNReduceFeatureChannelsSum"; }
  float weight() const { return weight_; }
  void setWeight(float weight) { weight_ = weight; }

 protected:
  float resultWeight() const override { return weight_; }

 private:
  float weight_ = 1.0f;
};

/// Base of the two-source reductions (MPSNNReduceBinary); abstract. primarySourceClipRect and
/// secondarySourceClipRect (default RectNoClip) select each source's region as clipRectSource does
/// for NNReduceUnary (x, y and the first image); they replace primaryOffset / secondaryOffset, which
/// are ignored. The result is written at clipRect.origin as for NNReduceUnary.
class NNReduceBinary : public CNNBinaryKernel {
 public:
  IntRegion primarySourceClipRect() const { return primarySourceClipRect_; }
  void setPrimarySourceClipRect(IntRegion region) { primarySourceClipRect_ = region; }
  IntRegion secondarySourceClipRect() const { return secondarySourceClipRect_; }
  void setSecondarySourceClipRect(IntRegion region) { secondarySourceClipRect_ = region; }

 protected:
  explicit NNReduceBinary(DevicePtr device);
  Offset primarySourceOffset(const Image& primary) const override;
  Offset secondarySourceOffset(const Image& secondary) const override;

  IntRegion primarySourceClipRect_ = RectNoClip, secondarySourceClipRect_ = RectNoClip;
};

/// Base of the two weighted feature-channel reductions: primary P = data, secondary S = weights with
/// the same C_read channels, S's region either the size of P's or 1 × 1 (one weight vector for every
/// pixel). Per pixel dot = Σ_c P(c)·S(c); the result is w × h × 1 (w × h = P's region). Each image of
/// P reads the image of S at the same position (secondarySourceClipRect.origin.z + k).
class NNReduceFeatureChannelsAndWeights : public NNReduceBinary {
 public:
  /// Auto mode: a w × h × (destinationFeatureChannelOffset + 1) image in P's format.
  ImageDescriptor destinationImageDescriptor(const ImageBatch& sourceImages,
                                             const StateBatch& sourceStates) override;

 protected:
  enum class Divisor : uint32_t { None, NonZeroWeights, Channels };
  NNReduceFeatureChannelsAndWeights(DevicePtr device, Divisor divisor);
  uint64_t destinationFeatureChannels(uint64_t primaryRead, uint64_t secondaryRead) const override;
  void validateImages(const Image& primary, const Image& secondary, const Image& destination) const override;
  void encodeProblem(CommandBuffer& commandBuffer, const detail::BinaryProblem& problem) override;

  Divisor divisor_;
};

/// dot, or with doWeightedSumByNonZeroWeights dot / #{c : S(c) ≠ 0} (0 when every weight is 0)
/// (MPSNNReduceFeatureChannelsAndWeightsSum).
class NNReduceFeatureChannelsAndWeightsSum : public NNReduceFeatureChannelsAndWeights {
 public:
  explicit NNReduceFeatureChannelsAndWeightsSum(DevicePtr device)
      : NNReduceFeatureChannelsAndWeightsSum(std::move(device), false) {}
  NNReduceFeatureChannelsAndWeightsSum(DevicePtr device, bool doWeightedSumByNonZeroWeights)
      : NNReduceFeatureChannelsAndWeights(
            std::move(device), doWeightedSumByNonZeroWeights ? Divisor::NonZeroWeights : Divisor::None) {}
  static std::shared_ptr<NNReduceFeatureChannelsAndWeightsSum> make(DevicePtr device) {
    return std::make_shared<NNReduceFeatureChannelsAndWeightsSum>(std::move(device));
  }
  static std::shared_ptr<NNReduceFeatureChannelsAndWeightsSum> make(DevicePtr device,
                                                                    bool doWeightedSumByNonZeroWeights) {
    return std::make_shared<NNReduceFeatureChannelsAndWeightsSum>(std::move(device),
                                                                  doWeightedSumByNonZeroWeights);
  }
  const char* className() const override { return "NNReduceFeatureChannelsAndWeightsSum"; }
  bool doWeightedSumByNonZeroWeights() const { return divisor_ == Divisor::NonZeroWeights; }
};

/// dot / C_read (MPSNNReduceFeatureChannelsAndWeightsMean).
class NNReduceFeatureChannelsAndWeightsMean : public NNReduceFeatureChannelsAndWeights {
 public:
  explicit NNReduceFeatureChannelsAndWeightsMean(DevicePtr device)
      : NNReduceFeatureChannelsAndWeights(std::move(device), Divisor::Channels) {}
  static std::shared_ptr<NNReduceFeatureChannelsAndWeightsMean> make(DevicePtr device) {
    return std::make_shared<NNReduceFeatureChannelsAndWeightsMean>(std::move(device));
  }
  const char* className() const override { return "NNReduceFeatureChannelsAndWeightsMean"; }
};

}  // namespace mpsnn
