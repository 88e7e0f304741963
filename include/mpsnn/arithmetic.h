// mpsnn — element-wise arithmetic and comparison of two images, spec 06 §1–§2.
#pragma once
#include <cfloat>
#include <memory>
#include <string>

#include "mpsnn/kernel.h"

namespace mpsnn {

namespace detail {
enum class ArithmeticOperator : uint32_t;  // the backends' numbering, arithmetic_impl.h
}

/// What NNCompare tests (MPSNNComparisonType).
enum class NNComparisonType : uint32_t {
  Equal = 0,           ///< |a − b| ≤ threshold
  NotEqual = 1,        ///< not (|a − b| ≤ threshold)
  Less = 2,            ///< a < b
  LessOrEqual = 3,     ///< a ≤ b
  Greater = 4,         ///< a > b
  GreaterOrEqual = 5,  ///< a ≥ b
};
std::string toString(NNComparisonType type);

/// Base of the element-wise binary operators (MPSCNNArithmetic); not constructible itself.
///
/// For every destination element (x, y relative to the clip origin, image k, output channel p) it
/// reads a = primary(primaryOffset.z + k, primaryOffset.y + y·sPy, primaryOffset.x + x·sPx,
/// primarySourceFeatureChannelOffset + p·sPc) and b likewise from the secondary, then computes in
/// float32  clamp((primaryScale·a) ⊙ (secondaryScale·b) + bias, minimumValue, maximumValue).
/// A stride of 0 (x, y or feature channels) broadcasts that operand along the axis; reads outside an
/// image follow its edge mode (Zero or Clamp). ±inf are clamped to the limits, NaN stays NaN.
/// Output channels: the primary's channels read when primaryStrideInFeatureChannels is 1, else the
/// secondary's. The auto-allocating encode sizes each spatial axis from the operand with stride 1 on
/// it (the primary when both are 1, the secondary when the primary's is 0) and sets the x/y offsets
/// to 0. Strides (pixel and channel) must be 0 or 1 and minimumValue ≤ maximumValue: checked at encode.
class CNNArithmetic : public CNNBinaryKernel {
 public:
  float primaryScale() const { return primaryScale_; }
  void setPrimaryScale(float v) { primaryScale_ = v; }
  float secondaryScale() const { return secondaryScale_; }
  void setSecondaryScale(float v) { secondaryScale_ = v; }
  float bias() const { return bias_; }
  void setBias(float v) { bias_ = v; }
  float minimumValue() const { return minimumValue_; }
  void setMinimumValue(float v) { minimumValue_ = v; }
  float maximumValue() const { return maximumValue_; }
  void setMaximumValue(float v) { maximumValue_ = v; }
  /// 1: channel p reads the operand's channel p; 0: every channel reads its first channel read.
  uint64_t primaryStrideInFeatureChannels() const { return primaryStrideInFeatureChannels_; }
  void setPrimaryStrideInFeatureChannels(uint64_t v) { primaryStrideInFeatureChannels_ = v; }
  uint64_t secondaryStrideInFeatureChannels() const { return secondaryStrideInFeatureChannels_; }
  void setSecondaryStrideInFeatureChannels(uint64_t v) { secondaryStrideInFeatureChannels_ = v; }

  /// Broadcasting auto-mode sizing (spec 06 §1.3), then the padding policy's custom hook if it has one.
  ImageDescriptor destinationImageDescriptor(const ImageBatch& sourceImages,
                                             const StateBatch& sourceStates) override;

 protected:
  explicit CNNArithmetic(DevicePtr device);
  /// Which operator the subclass applies.
  virtual detail::ArithmeticOperator arithmeticOperator() const = 0;
  /// Tolerance of the Equal / NotEqual comparisons (NNCompare); unused by the arithmetic operators.
  virtual float comparisonThreshold() const { return 0.0f; }
  uint64_t destinationFeatureChannels(uint64_t primaryRead, uint64_t secondaryRead) const override;
  void validateImages(const Image& primary, const Image& secondary, const Image& destination) const override;
  void encodeProblem(CommandBuffer& commandBuffer, const detail::BinaryProblem& problem) override;
  /// Throws unless every stride is 0 or 1 and (for the arithmetic operators, which clamp) the limits
  /// are ordered and not NaN.
  void validateParameters() const;

  float primaryScale_ = 1.0f, secondaryScale_ = 1.0f, bias_ = 0.0f;
  float minimumValue_ = -FLT_MAX, maximumValue_ = FLT_MAX;
  uint64_t primaryStrideInFeatureChannels_ = 1, secondaryStrideInFeatureChannels_ = 1;
};

/// r = (primaryScale·a) + (secondaryScale·b) + bias, clamped (MPSCNNAdd).
class CNNAdd : public CNNArithmetic {
 public:
  explicit CNNAdd(DevicePtr device) : CNNArithmetic(std::move(device)) {}
  static std::shared_ptr<CNNAdd> make(DevicePtr device) {
    return std::make_shared<CNNAdd>(std::move(device));
  }
  const char* className() const override { return "CNNAdd"; }

 protected:
  detail::ArithmeticOperator arithmeticOperator() const override;
};

/// r = (primaryScale·a) − (secondaryScale·b) + bias, clamped (MPSCNNSubtract).
class CNNSubtract : public CNNArithmetic {
 public:
  explicit CNNSubtract(DevicePtr device) : CNNArithmetic(std::move(device)) {}
  static std::shared_ptr<CNNSubtract> make(DevicePtr device) {
    return std::make_shared<CNNSubtract>(std::move(device));
  }
  const char* className() const override { return "CNNSubtract"; }

 protected:
  detail::ArithmeticOperator arithmeticOperator() const override;
};

/// r = (primaryScale·a) · (secondaryScale·b) + bias, clamped (MPSCNNMultiply).
class CNNMultiply : public CNNArithmetic {
 public:
  explicit CNNMultiply(DevicePtr device) : CNNArithmetic(std::move(device)) {}
  static std::shared_ptr<CNNMultiply> make(DevicePtr device) {
    return std::make_shared<CNNMultiply>(std::move(device));
  }
  const char* className() const override { return "CNNMultiply"; }

 protected:
  detail::ArithmeticOperator arithmeticOperator() const override;
};

/// r = (primaryScale·a) / (secondaryScale·b) + bias, clamped (MPSCNNDivide). Division by zero gives the
/// IEEE ±inf / NaN, which the clamp then maps to the limits (inf) or keeps (NaN).
class CNNDivide : public CNNArithmetic {
 public:
  explicit CNNDivide(DevicePtr device) : CNNArithmetic(std::move(device)) {}
  static std::shared_ptr<CNNDivide> make(DevicePtr device) {
    return std::make_shared<CNNDivide>(std::move(device));
  }
  const char* className() const override { return "CNNDivide"; }

 protected:
  detail::ArithmeticOperator arithmeticOperator() const override;
};

/// 1.0 where the comparison of a and b holds, else 0.0 (MPSNNCompare). Broadcasting as CNNArithmetic;
/// the scales, bias and clamp limits are not used. NaN operands give 0 for every type except
/// NotEqual, which is the negation of Equal and so gives 1.
class NNCompare : public CNNArithmetic {
 public:
  explicit NNCompare(DevicePtr device) : CNNArithmetic(std::move(device)) {}
  static std::shared_ptr<NNCompare> make(DevicePtr device) {
    return std::make_shared<NNCompare>(std::move(device));
  }
  const char* className() const override { return "NNCompare"; }
  /// Default Equal. A value outside Equal…GreaterOrEqual is rejected at encode.
  NNComparisonType comparisonType() const { return comparisonType_; }
  void setComparisonType(NNComparisonType t) { comparisonType_ = t; }
  /// Tolerance of Equal / NotEqual; default 0.
  float threshold() const { return threshold_; }
  void setThreshold(float v) { threshold_ = v; }

 protected:
  detail::ArithmeticOperator arithmeticOperator() const override;
  float comparisonThreshold() const override { return threshold_; }
  void validateImages(const Image& primary, const Image& secondary, const Image& destination) const override;

 private:
  NNComparisonType comparisonType_ = NNComparisonType::Equal;
  float threshold_ = 0.0f;
};

}  // namespace mpsnn
