// mpsnn — kernel base classes (spec 00 §3, §4, §6; spec 10 §10.2).
#pragma once
#include <memory>
#include <string>

#include "mpsnn/image.h"
#include "mpsnn/padding.h"
#include "mpsnn/runtime.h"
#include "mpsnn/state.h"
#include "mpsnn/types.h"

namespace mpsnn {

namespace detail {
struct UnaryProblem;
struct BinaryProblem;
}  // namespace detail

/// Base of every kernel (MPSKernel): the device it runs on, options and a label. Kernels are held by
/// shared pointers (make / std::make_shared), so states can refer back to the kernel that made them.
class Kernel : public std::enable_shared_from_this<Kernel> {
 public:
  virtual ~Kernel() = default;
  DevicePtr device() const { return device_; }
  KernelOptions options() const { return options_; }
  void setOptions(KernelOptions options) { options_ = options; }
  std::string label() const { return label_; }
  void setLabel(std::string label) { label_ = std::move(label); }
  /// The C++ class name, used in error messages ("CNNConvolution").
  virtual const char* className() const = 0;

 protected:
  explicit Kernel(DevicePtr device);
  DevicePtr device_;
  KernelOptions options_ = KernelOptions::None;
  std::string label_;
};

/// One source image → one destination image (MPSCNNKernel). Offsets, clip rectangle, channel
/// offsets, edge mode and padding policy as spec 00 §4; subclasses supply the computation.
class CNNKernel : public Kernel {
 public:
  Offset offset() const { return offset_; }
  void setOffset(Offset offset) { offset_ = offset; }
  IntRegion clipRect() const { return clipRect_; }
  void setClipRect(IntRegion clip) { clipRect_ = clip; }
  uint64_t destinationFeatureChannelOffset() const { return destinationFeatureChannelOffset_; }
  void setDestinationFeatureChannelOffset(uint64_t v) { destinationFeatureChannelOffset_ = v; }
  uint64_t sourceFeatureChannelOffset() const { return sourceFeatureChannelOffset_; }
  void setSourceFeatureChannelOffset(uint64_t v) { sourceFeatureChannelOffset_ = v; }
  uint64_t sourceFeatureChannelMaxCount() const { return sourceFeatureChannelMaxCount_; }
  void setSourceFeatureChannelMaxCount(uint64_t v) { sourceFeatureChannelMaxCount_ = v; }
  ImageEdgeMode edgeMode() const { return edgeMode_; }
  void setEdgeMode(ImageEdgeMode mode) { edgeMode_ = mode; }
  uint64_t kernelWidth() const { return kernelWidth_; }
  uint64_t kernelHeight() const { return kernelHeight_; }
  uint64_t strideInPixelsX() const { return strideX_; }
  uint64_t strideInPixelsY() const { return strideY_; }
  uint64_t dilationRateX() const { return dilationX_; }
  uint64_t dilationRateY() const { return dilationY_; }
  bool isBackwards() const { return isBackwards_; }
  NNPaddingPtr padding() const { return padding_; }
  void setPadding(NNPaddingPtr padding);
  ImageAllocatorPtr destinationImageAllocator() const { return allocator_; }
  void setDestinationImageAllocator(ImageAllocatorPtr allocator);

  /// Sizes the destination for `sourceImages[0]` by the padding policy and sets offset (spec 00 §4.7).
  virtual ImageDescriptor destinationImageDescriptor(const ImageBatch& sourceImages, const StateBatch& sourceStates);

  /// Manual mode: uses offset, clipRect, ... as set; writes only the clip region of `destination`.
  void encode(CommandBufferPtr commandBuffer, ImagePtr source, ImagePtr destination);
  /// Auto mode: sizes and allocates the destination through the padding policy and the allocator.
  ImagePtr encode(CommandBufferPtr commandBuffer, ImagePtr source);
  void encodeBatch(CommandBufferPtr commandBuffer, const ImageBatch& sources, const ImageBatch& destinations);
  ImageBatch encodeBatch(CommandBufferPtr commandBuffer, const ImageBatch& sources);

  // --- Training (spec 10 §10.1.4). The result state records, at encode, what the gradient kernel
  // needs; it is an NNGradientState unless the kernel documents a subclass.

  /// A new persistent result state for one source/destination pair (null for kernels without one).
  StatePtr resultStateForSourceImage(ImagePtr sourceImage, const StateBatch& sourceStates, ImagePtr destinationImage);
  /// One state per image, or the same object repeated when isResultStateReusedAcrossBatch().
  StateBatch resultStateBatchForSourceImage(const ImageBatch& sourceImages,
                                            const std::vector<StateBatch>& sourceStates,
                                            const ImageBatch& destinationImages);
  /// Temporary variants (readCount 1, valid on `commandBuffer` only).
  StatePtr temporaryResultState(CommandBufferPtr commandBuffer, ImagePtr sourceImage, const StateBatch& sourceStates,
                                ImagePtr destinationImage);
  StateBatch temporaryResultStateBatch(CommandBufferPtr commandBuffer, const ImageBatch& sourceImages,
                                       const std::vector<StateBatch>& sourceStates,
                                       const ImageBatch& destinationImages);
  /// True when one state accumulates over the whole batch (convolution, batch norm, dropout).
  virtual bool isResultStateReusedAcrossBatch() const { return false; }
  /// True when the whole batch must pass this kernel before dependents run.
  virtual bool appendBatchBarrier() const { return false; }
  /// True when encode writes into the state it is given.
  virtual bool isStateModified() const { return false; }

  /// Forward encode that also fills `destinationState` (made by this kernel's resultState… methods)
  /// for the gradient kernel. Writing a state does not change its readCount.
  void encode(CommandBufferPtr commandBuffer, ImagePtr sourceImage, StatePtr destinationState,
              ImagePtr destinationImage);
  void encodeBatch(CommandBufferPtr commandBuffer, const ImageBatch& sourceImages,
                   const StateBatch& destinationStates, const ImageBatch& destinationImages);
  /// Sizes and allocates the destination, makes the result state (temporary or persistent) into
  /// `*destinationState`, encodes; returns the destination.
  ImagePtr encode(CommandBufferPtr commandBuffer, ImagePtr sourceImage, StatePtr* destinationState,
                  bool destinationStateIsTemporary);
  ImageBatch encodeBatch(CommandBufferPtr commandBuffer, const ImageBatch& sourceImages, StateBatch* destinationStates,
                         bool destinationStateIsTemporary);

 protected:
  explicit CNNKernel(DevicePtr device);
  /// Makes this kernel's result state: temporary on `temporaryOn`, persistent when it is null.
  /// Default: a plain NNGradientState. Kernels without a result state return null.
  virtual StatePtr makeResultState(const CommandBufferPtr& temporaryOn, const Image& source, const Image& destination);
  /// Throws InvalidArgument unless `state` is of the type this kernel's result state has.
  virtual void validateResultState(const State& state) const;
  /// The state-filling counterpart of encodeProblem, called after the generic record was written into
  /// `state` (when it is an NNGradientState). Default: encodeProblem.
  virtual void encodeProblemWithState(CommandBuffer& commandBuffer, const detail::UnaryProblem& problem,
                                      State& state);
  /// Channels the kernel writes for `cRead` source channels read (C_out).
  virtual uint64_t destinationFeatureChannels(uint64_t cRead) const { return cRead; }
  /// Fixed number of input channels the kernel consumes, 0 when it takes any number.
  virtual uint64_t requiredSourceFeatureChannels() const { return 0; }
  /// Image-dependent checks beyond the common ones (formats, sizes). Throws InvalidArgument.
  virtual void validateImages(const Image& source, const Image& destination) const;
  /// Destination width/height for auto mode, and the offset to use (default: spec 00 §5.2/5.3).
  virtual void autoGeometry(const Image& source, NNPaddingMethod method, uint64_t& width, uint64_t& height,
                            Offset& offset) const;
  /// Enqueue the computation; the problem is validated and resolved to views.
  virtual void encodeProblem(CommandBuffer& commandBuffer, const detail::UnaryProblem& problem) = 0;
  /// Where an encode reads the source: x, y = source position of the clip origin, z = first source
  /// image. `offset` except for kernels that take it from another property (NNReduceUnary's
  /// clipRectSource); may reject `source` with InvalidArgument.
  virtual Offset sourceOffset(const Image& source) const {
    (void)source;
    return offset_;
  }
  /// Channels written into `destination` for `cRead` channels read, for kernels whose output channel
  /// count depends on the destination (NNSlice, NNReshape). Default destinationFeatureChannels(cRead).
  virtual uint64_t destinationFeatureChannelsWritten(uint64_t cRead, const Image& destination) const {
    (void)destination;
    return destinationFeatureChannels(cRead);
  }
  /// True for the kernels whose sourceFeatureChannelOffset MPS allows to be any value (NNSlice, NNPad),
  /// so that strict validation does not ask for a multiple of 4 (spec 00 §4.1).
  virtual bool acceptsAnySourceFeatureChannelOffset() const { return false; }
  /// The clip rectangle of the auto-allocating encodes: clipRect, except for kernels that place their
  /// result differently in a new image (NNSlice: the clip's size at the new image's origin).
  virtual IntRegion autoModeClipRect() const { return clipRect_; }
  /// Throws unless edgeMode is Zero or Clamp.
  void requireZeroOrClampEdge() const;
  /// Called once at the end of every successful manual encode / encodeBatch call, after all of its
  /// work was encoded (the auto-allocating variants go through those): for kernels whose result
  /// depends on how many calls came before (CNNDropout's training step).
  virtual void didEncode(CommandBuffer& commandBuffer) { (void)commandBuffer; }

  Offset offset_{};
  IntRegion clipRect_ = RectNoClip;
  uint64_t destinationFeatureChannelOffset_ = 0;
  uint64_t sourceFeatureChannelOffset_ = 0;
  uint64_t sourceFeatureChannelMaxCount_ = UINT64_MAX;
  ImageEdgeMode edgeMode_ = ImageEdgeMode::Zero;
  uint64_t kernelWidth_ = 1, kernelHeight_ = 1, strideX_ = 1, strideY_ = 1, dilationX_ = 1, dilationY_ = 1;
  bool isBackwards_ = false;
  NNPaddingPtr padding_;
  ImageAllocatorPtr allocator_;

 private:
  detail::UnaryProblem resolve(CommandBuffer& commandBuffer, const ImagePtr& source, const ImagePtr& destination,
                               const IntRegion& clip);
  void encodeWithStates(CommandBufferPtr commandBuffer, const ImageBatch& sources, const StateBatch& states,
                        const ImageBatch& destinations, const IntRegion& clip);
  StateBatch makeResultStates(const CommandBufferPtr& temporaryOn, const ImageBatch& sources,
                              const ImageBatch& destinations);
  void commitProblem(CommandBuffer& commandBuffer, const ImagePtr& source, const detail::UnaryProblem& problem);
  void encodeWithClipRect(CommandBufferPtr commandBuffer, const ImagePtr& source, const ImagePtr& destination,
                          const IntRegion& clip);
  void encodeBatchWithClipRect(CommandBufferPtr commandBuffer, const ImageBatch& sources,
                               const ImageBatch& destinations, const IntRegion& clip);
};

/// Two source images → one destination image (MPSCNNBinaryKernel). Each source has its own offset,
/// stride, channel offset, max count and edge mode.
class CNNBinaryKernel : public Kernel {
 public:
  Offset primaryOffset() const { return primaryOffset_; }
  void setPrimaryOffset(Offset v) { primaryOffset_ = v; }
  Offset secondaryOffset() const { return secondaryOffset_; }
  void setSecondaryOffset(Offset v) { secondaryOffset_ = v; }
  IntRegion clipRect() const { return clipRect_; }
  void setClipRect(IntRegion clip) { clipRect_ = clip; }
  uint64_t destinationFeatureChannelOffset() const { return destinationFeatureChannelOffset_; }
  void setDestinationFeatureChannelOffset(uint64_t v) { destinationFeatureChannelOffset_ = v; }
  uint64_t primarySourceFeatureChannelOffset() const { return primarySourceFeatureChannelOffset_; }
  void setPrimarySourceFeatureChannelOffset(uint64_t v) { primarySourceFeatureChannelOffset_ = v; }
  uint64_t secondarySourceFeatureChannelOffset() const { return secondarySourceFeatureChannelOffset_; }
  void setSecondarySourceFeatureChannelOffset(uint64_t v) { secondarySourceFeatureChannelOffset_ = v; }
  uint64_t primarySourceFeatureChannelMaxCount() const { return primarySourceFeatureChannelMaxCount_; }
  void setPrimarySourceFeatureChannelMaxCount(uint64_t v) { primarySourceFeatureChannelMaxCount_ = v; }
  uint64_t secondarySourceFeatureChannelMaxCount() const { return secondarySourceFeatureChannelMaxCount_; }
  void setSecondarySourceFeatureChannelMaxCount(uint64_t v) { secondarySourceFeatureChannelMaxCount_ = v; }
  ImageEdgeMode primaryEdgeMode() const { return primaryEdgeMode_; }
  void setPrimaryEdgeMode(ImageEdgeMode m) { primaryEdgeMode_ = m; }
  ImageEdgeMode secondaryEdgeMode() const { return secondaryEdgeMode_; }
  void setSecondaryEdgeMode(ImageEdgeMode m) { secondaryEdgeMode_ = m; }
  uint64_t primaryKernelWidth() const { return primaryKernelWidth_; }
  uint64_t primaryKernelHeight() const { return primaryKernelHeight_; }
  uint64_t secondaryKernelWidth() const { return secondaryKernelWidth_; }
  uint64_t secondaryKernelHeight() const { return secondaryKernelHeight_; }
  uint64_t primaryStrideInPixelsX() const { return primaryStrideX_; }
  uint64_t primaryStrideInPixelsY() const { return primaryStrideY_; }
  uint64_t secondaryStrideInPixelsX() const { return secondaryStrideX_; }
  uint64_t secondaryStrideInPixelsY() const { return secondaryStrideY_; }
  void setPrimaryStrideInPixelsX(uint64_t v) { primaryStrideX_ = v; }
  void setPrimaryStrideInPixelsY(uint64_t v) { primaryStrideY_ = v; }
  void setSecondaryStrideInPixelsX(uint64_t v) { secondaryStrideX_ = v; }
  void setSecondaryStrideInPixelsY(uint64_t v) { secondaryStrideY_ = v; }
  uint64_t primaryDilationRateX() const { return primaryDilationX_; }
  uint64_t primaryDilationRateY() const { return primaryDilationY_; }
  uint64_t secondaryDilationRateX() const { return secondaryDilationX_; }
  uint64_t secondaryDilationRateY() const { return secondaryDilationY_; }
  bool isBackwards() const { return isBackwards_; }
  NNPaddingPtr padding() const { return padding_; }
  void setPadding(NNPaddingPtr padding);
  ImageAllocatorPtr destinationImageAllocator() const { return allocator_; }
  void setDestinationImageAllocator(ImageAllocatorPtr allocator);

  /// Sizes the destination from the primary source by the padding policy (spec 00 §6).
  virtual ImageDescriptor destinationImageDescriptor(const ImageBatch& sourceImages, const StateBatch& sourceStates);

  void encode(CommandBufferPtr commandBuffer, ImagePtr primary, ImagePtr secondary, ImagePtr destination);
  ImagePtr encode(CommandBufferPtr commandBuffer, ImagePtr primary, ImagePtr secondary);
  void encodeBatch(CommandBufferPtr commandBuffer, const ImageBatch& primaries, const ImageBatch& secondaries,
                   const ImageBatch& destinations);
  ImageBatch encodeBatch(CommandBufferPtr commandBuffer, const ImageBatch& primaries, const ImageBatch& secondaries);

  // --- Training (spec 10 §10.1.4), as CNNKernel's with two sources; the result state is an
  // NNBinaryGradientState unless the kernel documents a subclass.
  StatePtr resultStateForPrimaryImage(ImagePtr primaryImage, ImagePtr secondaryImage, const StateBatch& sourceStates,
                                      ImagePtr destinationImage);
  StateBatch resultStateBatchForPrimaryImage(const ImageBatch& primaryImages, const ImageBatch& secondaryImages,
                                             const std::vector<StateBatch>& sourceStates,
                                             const ImageBatch& destinationImages);
  StatePtr temporaryResultState(CommandBufferPtr commandBuffer, ImagePtr primaryImage, ImagePtr secondaryImage,
                                const StateBatch& sourceStates, ImagePtr destinationImage);
  StateBatch temporaryResultStateBatch(CommandBufferPtr commandBuffer, const ImageBatch& primaryImages,
                                       const ImageBatch& secondaryImages, const std::vector<StateBatch>& sourceStates,
                                       const ImageBatch& destinationImages);
  virtual bool isResultStateReusedAcrossBatch() const { return false; }
  virtual bool appendBatchBarrier() const { return false; }
  virtual bool isStateModified() const { return false; }
  void encode(CommandBufferPtr commandBuffer, ImagePtr primaryImage, ImagePtr secondaryImage, StatePtr destinationState,
              ImagePtr destinationImage);
  void encodeBatch(CommandBufferPtr commandBuffer, const ImageBatch& primaryImages, const ImageBatch& secondaryImages,
                   const StateBatch& destinationStates, const ImageBatch& destinationImages);
  ImagePtr encode(CommandBufferPtr commandBuffer, ImagePtr primaryImage, ImagePtr secondaryImage,
                  StatePtr* destinationState, bool destinationStateIsTemporary);
  ImageBatch encodeBatch(CommandBufferPtr commandBuffer, const ImageBatch& primaryImages,
                         const ImageBatch& secondaryImages, StateBatch* destinationStates,
                         bool destinationStateIsTemporary);

 protected:
  explicit CNNBinaryKernel(DevicePtr device);
  /// As CNNKernel's: default a plain NNBinaryGradientState; null for kernels without one.
  virtual StatePtr makeResultState(const CommandBufferPtr& temporaryOn, const Image& primary, const Image& secondary,
                                   const Image& destination);
  virtual void validateResultState(const State& state) const;
  virtual void encodeProblemWithState(CommandBuffer& commandBuffer, const detail::BinaryProblem& problem,
                                      State& state);
  /// Validates and resolves one invocation (for subclasses with encode forms of their own).
  detail::BinaryProblem resolve(CommandBuffer& commandBuffer, const ImagePtr& primary, const ImagePtr& secondary,
                                const ImagePtr& destination);
  virtual uint64_t destinationFeatureChannels(uint64_t primaryRead, uint64_t secondaryRead) const {
    (void)secondaryRead;
    return primaryRead;
  }
  virtual void validateImages(const Image& primary, const Image& secondary, const Image& destination) const;
  virtual void encodeProblem(CommandBuffer& commandBuffer, const detail::BinaryProblem& problem) = 0;
  /// Where an encode reads each source (x, y of the clip origin, z = first image): primaryOffset /
  /// secondaryOffset except for kernels that take it from other properties (NNReduceBinary's source
  /// clip rectangles); may reject the image with InvalidArgument.
  virtual Offset primarySourceOffset(const Image& primary) const {
    (void)primary;
    return primaryOffset_;
  }
  virtual Offset secondarySourceOffset(const Image& secondary) const {
    (void)secondary;
    return secondaryOffset_;
  }

  Offset primaryOffset_{}, secondaryOffset_{};
  IntRegion clipRect_ = RectNoClip;
  uint64_t destinationFeatureChannelOffset_ = 0;
  uint64_t primarySourceFeatureChannelOffset_ = 0, secondarySourceFeatureChannelOffset_ = 0;
  uint64_t primarySourceFeatureChannelMaxCount_ = UINT64_MAX, secondarySourceFeatureChannelMaxCount_ = UINT64_MAX;
  ImageEdgeMode primaryEdgeMode_ = ImageEdgeMode::Zero, secondaryEdgeMode_ = ImageEdgeMode::Zero;
  uint64_t primaryKernelWidth_ = 1, primaryKernelHeight_ = 1, secondaryKernelWidth_ = 1, secondaryKernelHeight_ = 1;
  uint64_t primaryStrideX_ = 1, primaryStrideY_ = 1, secondaryStrideX_ = 1, secondaryStrideY_ = 1;
  uint64_t primaryDilationX_ = 1, primaryDilationY_ = 1, secondaryDilationX_ = 1, secondaryDilationY_ = 1;
  bool isBackwards_ = false;
  NNPaddingPtr padding_;
  ImageAllocatorPtr allocator_;

 private:
  void encodeWithStates(CommandBufferPtr commandBuffer, const ImageBatch& primaries, const ImageBatch& secondaries,
                        const StateBatch& states, const ImageBatch& destinations);
  StateBatch makeResultStates(const CommandBufferPtr& temporaryOn, const ImageBatch& primaries,
                              const ImageBatch& secondaries, const ImageBatch& destinations);
};

/// Base of every gradient kernel (MPSCNNGradientKernel, spec 10 §10.2): primary = incoming gradient
/// dL/dY, secondary = forward source X (softmax: the forward result; multiply: the other operand),
/// plus the gradient state the forward encode filled. Every encode copies the forward parameters
/// from the state into the secondary properties, checks the image sizes against the recorded ones,
/// and decrements the read counts of temporary inputs (images per use, states once per call).
/// The state-free binary encodes inherited from CNNBinaryKernel are rejected.
class CNNGradientKernel : public CNNBinaryKernel {
 public:
  int64_t kernelOffsetX() const { return kernelOffsetX_; }
  int64_t kernelOffsetY() const { return kernelOffsetY_; }
  void setKernelOffsetX(int64_t v) { kernelOffsetX_ = v; }
  void setKernelOffsetY(int64_t v) { kernelOffsetY_ = v; }

  /// Sizes dL/dX from the state (forward source size), allocates it with the allocator, encodes.
  ImagePtr encode(CommandBufferPtr commandBuffer, ImagePtr sourceGradient, ImagePtr sourceImage,
                  StatePtr gradientState);
  void encode(CommandBufferPtr commandBuffer, ImagePtr sourceGradient, ImagePtr sourceImage, StatePtr gradientState,
              ImagePtr destinationGradient);
  /// Per image; the batches have equal length ≥ 1 (a state may repeat: it is read once per call).
  ImageBatch encodeBatch(CommandBufferPtr commandBuffer, const ImageBatch& sourceGradients,
                         const ImageBatch& sourceImages, const StateBatch& gradientStates);
  void encodeBatch(CommandBufferPtr commandBuffer, const ImageBatch& sourceGradients, const ImageBatch& sourceImages,
                   const StateBatch& gradientStates, const ImageBatch& destinationGradients);
  using CNNBinaryKernel::destinationImageDescriptor;

 protected:
  explicit CNNGradientKernel(DevicePtr device);
  /// Throws InvalidArgument unless `state` is the state type this kernel reads, filled by a forward
  /// encode of the matching kernel class. Default: an NNGradientState with a record.
  virtual void validateGradientState(const State& state) const;
  /// Copies the forward parameters of the record into the secondary properties (kernel size,
  /// strides, dilation, edge mode, offset). Subclasses add their own.
  virtual void applyGradientState(const State& state);
  /// Checks image sizes against the record: sourceGradient = the region the forward wrote,
  /// sourceImage = the forward source (width and height).
  virtual void validateGradientImages(const Image& sourceGradient, const Image& sourceImage, const State& state) const;
  /// Descriptor of the auto-allocated dL/dX: sourceGradient's format, sourceImage's width and height,
  /// destinationFeatureChannelOffset + destinationFeatureChannels(…) channels.
  virtual ImageDescriptor gradientDestinationDescriptor(const Image& sourceGradient, const Image& sourceImage,
                                                        const State& state) const;
  /// Enqueue the gradient computation for one resolved pair.
  virtual void encodeGradient(CommandBuffer& commandBuffer, const detail::BinaryProblem& problem, State& state) = 0;
  /// dL/dX has the channels of the forward source (the secondary image).
  uint64_t destinationFeatureChannels(uint64_t primaryRead, uint64_t secondaryRead) const override {
    (void)primaryRead;
    return secondaryRead;
  }
  /// The state-free binary encodes end here: rejected.
  void encodeProblem(CommandBuffer& commandBuffer, const detail::BinaryProblem& problem) override;
  /// The record of an NNGradientState (validateGradientState has accepted it).
  static const ForwardRecord& recordOf(const State& state);
  int64_t kernelOffsetX_ = 0, kernelOffsetY_ = 0;
};

}  // namespace mpsnn
