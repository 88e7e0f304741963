// CNNArithmetic, CNNAdd, CNNSubtract, CNNMultiply, CNNDivide and NNCompare (spec 06 §1–§2):
// validation, broadcasting destination sizing and dispatch.
#include "mpsnn/arithmetic.h"

#include <algorithm>
#include <cmath>
#include <sstream>

#include "kernels/arithmetic_impl.h"
#include "kernels/describe.h"
#include "mpsnn/error.h"

namespace mpsnn {

using namespace detail;

std::string toString(NNComparisonType type) {
  static const char* names[] = {"Equal", "NotEqual", "Less", "LessOrEqual", "Greater", "GreaterOrEqual"};
  uint32_t v = uint32_t(type);
  return v < 6 ? names[v] : "NNComparisonType(" + std::to_string(v) + ")";
}

namespace detail {
const char* toString(ArithmeticOperator op) {
  static const char* names[] = {"Add",      "Subtract", "Multiply",    "Divide",  "Equal",
                                "NotEqual", "Less",     "LessOrEqual", "Greater", "GreaterOrEqual"};
  return uint32_t(op) < 10 ? names[uint32_t(op)] : "?";
}
}  // namespace detail

namespace {

std::string str(uint64_t v) { return std::to_string(v); }
std::string str(float v) {
  std::ostringstream s;
  s.precision(9);
  s << v;
  return s.str();
}

bool isComparison(ArithmeticOperator op) { return uint32_t(op) >= uint32_t(ArithmeticOperator::Equal); }

/// Channels an operand provides from its channel offset (spec 00 §4.1 C_read); the offset itself is
/// checked by the base class before this is used at encode, and here for destinationImageDescriptor.
uint64_t channelsRead(const std::string& who, const Image& image, uint64_t offset, uint64_t maxCount,
                      const char* role) {
  if (offset >= image.featureChannels())
    throw InvalidArgument(who + ": " + role + "SourceFeatureChannelOffset = " + str(offset) + " >= " + role +
                          " featureChannels = " + str(image.featureChannels()));
  if (maxCount == 0) throw InvalidArgument(who + ": " + role + "SourceFeatureChannelMaxCount = 0");
  return std::min(maxCount, image.featureChannels() - offset);
}

std::string describeBinaryWork(const char* kernel, const char* implementation, const BinaryProblem& p,
                               const std::string& extra) {
  return std::string(kernel) + ",impl=" + implementation + ",primary=" + describeView(p.primary) +
         ",secondary=" + describeView(p.secondary) + ",dst=" + describeView(p.dst) + "," + extra;
}

}  // namespace

CNNArithmetic::CNNArithmetic(DevicePtr device) : CNNBinaryKernel(std::move(device)) {}

void CNNArithmetic::validateParameters() const {
  const std::string who = className();
  const std::pair<const char*, uint64_t> strides[] = {
      {"primaryStrideInPixelsX", primaryStrideX_},
      {"primaryStrideInPixelsY", primaryStrideY_},
      {"primaryStrideInFeatureChannels", primaryStrideInFeatureChannels_},
      {"secondaryStrideInPixelsX", secondaryStrideX_},
      {"secondaryStrideInPixelsY", secondaryStrideY_},
      {"secondaryStrideInFeatureChannels", secondaryStrideInFeatureChannels_},
  };
  for (const auto& [name, value] : strides)
    if (value > 1) throw InvalidArgument(who + ": " + name + " = " + str(value) + " (must be 0 or 1)");
  if (isComparison(arithmeticOperator())) return;  // the clamp limits are not used by comparisons
  if (std::isnan(minimumValue_)) throw InvalidArgument(who + ": minimumValue = NaN");
  if (std::isnan(maximumValue_)) throw InvalidArgument(who + ": maximumValue = NaN");
  if (minimumValue_ > maximumValue_)
    throw InvalidArgument(who + ": minimumValue = " + str(minimumValue_) +
                          " > maximumValue = " + str(maximumValue_));
}

uint64_t CNNArithmetic::destinationFeatureChannels(uint64_t primaryRead, uint64_t secondaryRead) const {
  // Spec 06 §1.3 CHOICE: the operand that is not broadcast along the channels decides.
  return primaryStrideInFeatureChannels_ == 1 ? primaryRead : secondaryRead;
}

void CNNArithmetic::validateImages(const Image& primary, const Image& secondary,
                                   const Image& destination) const {
  CNNBinaryKernel::validateImages(primary, secondary, destination);  // edge modes
  validateParameters();
  if (primaryStrideInFeatureChannels_ == 1 && secondaryStrideInFeatureChannels_ == 1) {
    // Both operands walk the channels: the smaller one would be read past its end.
    const uint64_t cp = std::min(primarySourceFeatureChannelMaxCount_,
                                 primary.featureChannels() - primarySourceFeatureChannelOffset_);
    const uint64_t cs = std::min(secondarySourceFeatureChannelMaxCount_,
                                 secondary.featureChannels() - secondarySourceFeatureChannelOffset_);
    if (cp != cs)
      throw InvalidArgument(std::string(className()) + ": primary reads " + str(cp) +
                            " feature channels and secondary reads " + str(cs) +
                            " with primaryStrideInFeatureChannels = secondaryStrideInFeatureChannels = 1 "
                            "(they must be equal; set a channel stride to 0 to broadcast)");
  }
}

ImageDescriptor CNNArithmetic::destinationImageDescriptor(const ImageBatch& sourceImages,
                                                          const StateBatch& sourceStates) {
  const std::string who = className();
  if (sourceImages.size() < 2 || !sourceImages[0] || !sourceImages[1])
    throw InvalidArgument(who + ": destinationImageDescriptor needs primary and secondary source images");
  validateParameters();
  const Image& p = *sourceImages[0];
  const Image& s = *sourceImages[1];
  NNPaddingMethod method = padding_->paddingMethod();
  validatePaddingMethod(method, className());
  // Spec 06 §1.3 CHOICE: per axis the operand that is not broadcast along it gives the extent; the
  // window is 1×1, so the padding policy's size option changes nothing and the offsets are 0.
  const uint64_t width = primaryStrideX_ == 1 ? p.width() : s.width();
  const uint64_t height = primaryStrideY_ == 1 ? p.height() : s.height();
  primaryOffset_.x = primaryOffset_.y = 0;
  secondaryOffset_.x = secondaryOffset_.y = 0;
  const uint64_t cp = channelsRead(who, p, primarySourceFeatureChannelOffset_,
                                   primarySourceFeatureChannelMaxCount_, "primary");
  const uint64_t cs = channelsRead(who, s, secondarySourceFeatureChannelOffset_,
                                   secondarySourceFeatureChannelMaxCount_, "secondary");
  if (primaryStrideInFeatureChannels_ == 1 && secondaryStrideInFeatureChannels_ == 1 && cp != cs)
    throw InvalidArgument(who + ": primary reads " + str(cp) + " feature channels and secondary reads " +
                          str(cs) +
                          " with primaryStrideInFeatureChannels = secondaryStrideInFeatureChannels = 1");
  const uint64_t cOut = destinationFeatureChannels(cp, cs);
  if (destinationFeatureChannelOffset_ > UINT64_MAX - cOut)
    throw InvalidArgument(who + ": destinationFeatureChannelOffset = " +
                          str(destinationFeatureChannelOffset_) + " is too large");
  ImageDescriptor d = ImageDescriptor::make(p.featureChannelFormat(), width, height,
                                            destinationFeatureChannelOffset_ + cOut, 1);
  if (any(method & NNPaddingMethod::Custom))
    d = padding_->destinationImageDescriptor(sourceImages, sourceStates, *this, d);
  return d;
}

void CNNArithmetic::encodeProblem(CommandBuffer& cb, const BinaryProblem& problem) {
  ArithmeticProblem p;
  p.io = problem;
  p.primaryStride = {int64_t(primaryStrideX_), int64_t(primaryStrideY_),
                     int64_t(primaryStrideInFeatureChannels_)};
  p.secondaryStride = {int64_t(secondaryStrideX_), int64_t(secondaryStrideY_),
                       int64_t(secondaryStrideInFeatureChannels_)};
  p.params.op = arithmeticOperator();
  p.params.primaryScale = primaryScale_;
  p.params.secondaryScale = secondaryScale_;
  p.params.bias = bias_;
  p.params.minimumValue = minimumValue_;
  p.params.maximumValue = maximumValue_;
  p.params.threshold = comparisonThreshold();
#if defined(MPSNN_HAVE_CUDA)
  auto& list =
      device_->kind() == DeviceKind::CUDA ? cudaArithmeticImplementations() : cpuArithmeticImplementations();
#else
  auto& list = cpuArithmeticImplementations();
#endif
  const auto& impl = chooseImplementation(list, p, className());
  auto run = impl.run;
  const std::string extra = std::string(toString(p.params.op)) +
                            ",strides=" + str(uint64_t(p.primaryStride.x)) +
                            str(uint64_t(p.primaryStride.y)) + str(uint64_t(p.primaryStride.c)) + "/" +
                            str(uint64_t(p.secondaryStride.x)) + str(uint64_t(p.secondaryStride.y)) +
                            str(uint64_t(p.secondaryStride.c));
  cb.encodeWork(describeBinaryWork(className(), impl.name, problem, extra),
                [p, run](QueueContext& ctx) { run(p, ctx); });
}

ArithmeticOperator CNNAdd::arithmeticOperator() const { return ArithmeticOperator::Add; }
ArithmeticOperator CNNSubtract::arithmeticOperator() const { return ArithmeticOperator::Subtract; }
ArithmeticOperator CNNMultiply::arithmeticOperator() const { return ArithmeticOperator::Multiply; }
ArithmeticOperator CNNDivide::arithmeticOperator() const { return ArithmeticOperator::Divide; }

ArithmeticOperator NNCompare::arithmeticOperator() const {
  // Validated at encode before the operator is used; the numbering follows NNComparisonType.
  return ArithmeticOperator(uint32_t(ArithmeticOperator::Equal) +
                            std::min<uint32_t>(uint32_t(comparisonType_), 5));
}

void NNCompare::validateImages(const Image& primary, const Image& secondary, const Image& destination) const {
  if (uint32_t(comparisonType_) > uint32_t(NNComparisonType::GreaterOrEqual))
    throw InvalidArgument(std::string(className()) + ": comparisonType = " + toString(comparisonType_) +
                          " is not a comparison type");
  CNNArithmetic::validateImages(primary, secondary, destination);
}

}  // namespace mpsnn
