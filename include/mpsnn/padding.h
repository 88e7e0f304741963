// mpsnn — padding policies (spec 00 §5): how auto-allocating encodes size their destination.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "mpsnn/image.h"
#include "mpsnn/state.h"

namespace mpsnn {

class Kernel;

/// Bit field selecting alignment, remainder placement, size rule and flags (MPSNNPaddingMethod).
enum class NNPaddingMethod : uint32_t {
  AlignCentered = 0,
  AlignTopLeft = 1,
  AlignBottomRight = 2,
  Align_reserved = 3,
  AlignMask = 3,
  AddRemainderToTopLeft = 0,
  AddRemainderToTopRight = 4,
  AddRemainderToBottomLeft = 8,
  AddRemainderToBottomRight = 12,
  AddRemainderToMask = 12,
  SizeValidOnly = 0,
  SizeSame = 16,
  SizeFull = 32,
  Size_reserved = 48,
  SizeMask = 0x7f0,
  CustomAllowForNodeFusion = 8192,
  CustomWhitelistForNodeFusion = 8192,
  Custom = 16384,
  ExcludeEdges = 32768,
};
constexpr NNPaddingMethod operator|(NNPaddingMethod a, NNPaddingMethod b) {
  return NNPaddingMethod(uint32_t(a) | uint32_t(b));
}
constexpr NNPaddingMethod operator&(NNPaddingMethod a, NNPaddingMethod b) {
  return NNPaddingMethod(uint32_t(a) & uint32_t(b));
}
constexpr bool any(NNPaddingMethod m) { return uint32_t(m) != 0; }

/// A padding policy (MPSNNPadding protocol). Implement paddingMethod(); set the Custom bit and
/// override destinationImageDescriptor to adjust the result descriptor and kernel properties.
class NNPadding {
 public:
  virtual ~NNPadding() = default;
  virtual NNPaddingMethod paddingMethod() const = 0;
  virtual std::string label() const;
  /// Called after the default computation when paddingMethod() has Custom. May change kernel
  /// properties (offset, edgeMode); returns the final descriptor. The default throws InvalidArgument.
  virtual ImageDescriptor destinationImageDescriptor(const ImageBatch& sourceImages, const StateBatch& sourceStates,
                                                     Kernel& kernel, const ImageDescriptor& suggested) const;
  /// The policy of the reverse filter (ValidOnly ↔ Full); null when not provided.
  virtual std::shared_ptr<NNPadding> inverse() const { return nullptr; }
};
using NNPaddingPtr = std::shared_ptr<NNPadding>;

/// Built-in stateless policies (MPSNNDefaultPadding).
class NNDefaultPadding : public NNPadding {
 public:
  /// A policy returning `method`, which must not contain Custom.
  static std::shared_ptr<NNDefaultPadding> paddingWithMethod(NNPaddingMethod method);
  /// TensorFlow average pooling: SizeSame, centered, remainder bottom-right; sets edgeMode = Clamp.
  static std::shared_ptr<NNDefaultPadding> paddingForTensorflowAveragePooling();
  /// As above with SizeValidOnly.
  static std::shared_ptr<NNDefaultPadding> paddingForTensorflowAveragePoolingValidOnly();

  NNPaddingMethod paddingMethod() const override { return method_; }
  std::string label() const override;
  ImageDescriptor destinationImageDescriptor(const ImageBatch& sourceImages, const StateBatch& sourceStates,
                                             Kernel& kernel, const ImageDescriptor& suggested) const override;
  std::shared_ptr<NNPadding> inverse() const override;

 private:
  NNDefaultPadding(NNPaddingMethod method, bool tensorflowPooling) : method_(method), tfPooling_(tensorflowPooling) {}
  NNPaddingMethod method_;
  bool tfPooling_;
};

/// Spec 00 §5.2: destination extent of one dimension; `style` −1 ValidOnly, 0 Same, +1 Full.
/// Throws InvalidArgument (naming `who`) when the result is ≤ 0.
int64_t paddingDestinationSize(int64_t sourceSize, int64_t stride, int64_t window, NNPaddingMethod method,
                               bool backwards, const char* who);
/// Spec 00 §5.3: offset (window centre of the first output) for one dimension; `isX` selects which
/// remainder bit applies.
int64_t paddingOffset(int64_t sourceSize, int64_t stride, int64_t window, NNPaddingMethod method, bool isX);
/// Throws InvalidArgument when `method` has a reserved alignment or size.
void validatePaddingMethod(NNPaddingMethod method, const char* who);
std::string describePaddingMethod(NNPaddingMethod method);

}  // namespace mpsnn
