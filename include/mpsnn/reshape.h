// mpsnn — kernels that move values without computing on them (spec 06 §5–§8): reshape, slice, pad,
// and concatenation along the feature channels.
#pragma once
#include <cstdint>
#include <memory>
#include <vector>

#include "mpsnn/kernel.h"

namespace mpsnn {

/// Copies each image into a new shape (MPSNNReshape). Per image the source's values are taken in
/// row-major height × width × channel order (TensorFlow / NHWC order, channels fastest; C = C_read
/// channels from sourceFeatureChannelOffset) and laid out in the same order in the new shape: the
/// element with linear index L = (y·W + x)·C + c goes to (y', x', c') with L = (y'·W' + x')·C' + c'.
/// W·H·C must equal W'·H'·C'. The whole image is always reshaped: offset and clipRect must keep their
/// defaults. Manual encode(cb, source, destination) reshapes into the destination's width, height and
/// C' = featureChannels − destinationFeatureChannelOffset; encode(cb, source, w, h, c) allocates a
/// w × h × (destinationFeatureChannelOffset + c) image. The plain encode(cb, source) keeps the shape.
/// (A PyTorch reshape of an NCHW tensor orders channels slowest: permute first to reproduce it.)
class NNReshape : public CNNKernel {
 public:
  explicit NNReshape(DevicePtr device);
  static std::shared_ptr<NNReshape> make(DevicePtr device) {
    return std::make_shared<NNReshape>(std::move(device));
  }
  const char* className() const override { return "NNReshape"; }

  using CNNKernel::encode;
  using CNNKernel::encodeBatch;
  /// Auto mode with a target shape: allocates the result with destinationImageAllocator.
  ImagePtr encode(CommandBufferPtr commandBuffer, ImagePtr source, uint64_t reshapedWidth,
                  uint64_t reshapedHeight, uint64_t reshapedFeatureChannels);
  ImageBatch encodeBatch(CommandBufferPtr commandBuffer, const ImageBatch& sources, uint64_t reshapedWidth,
                         uint64_t reshapedHeight, uint64_t reshapedFeatureChannels);
  /// The source's own shape (width, height, destinationFeatureChannelOffset + C_read), one image.
  ImageDescriptor destinationImageDescriptor(const ImageBatch& sourceImages,
                                             const StateBatch& sourceStates) override;
  /// The same for a target shape; throws InvalidArgument when it does not hold W·H·C_read values.
  ImageDescriptor destinationImageDescriptor(const ImageBatch& sourceImages, uint64_t reshapedWidth,
                                             uint64_t reshapedHeight, uint64_t reshapedFeatureChannels);

 protected:
  uint64_t destinationFeatureChannelsWritten(uint64_t cRead, const Image& destination) const override;
  void validateImages(const Image& source, const Image& destination) const override;
  void encodeProblem(CommandBuffer& commandBuffer, const detail::UnaryProblem& problem) override;
};

/// Copies a box of the source into the destination (MPSNNSlice; TensorFlow tf.slice over H, W, C):
///   dst(clipRect.origin.y + y, clipRect.origin.x + x, destinationFeatureChannelOffset + c)
///     = src(offset.y + y, offset.x + x, sourceFeatureChannelOffset + c)
/// for the clip rectangle's pixels and c < min(sourceFeatureChannelMaxCount, C_src −
/// sourceFeatureChannelOffset, C_dst − destinationFeatureChannelOffset). sourceFeatureChannelOffset may
/// be any value, also under strict validation. Reads outside the source follow edgeMode (Zero, Clamp).
/// Auto mode keeps `offset` as set and allocates a clipRect.size image (the slice starts at its
/// top-left) when a clipRect is set, else (W_src − offset.x) × (H_src − offset.y); channels
/// destinationFeatureChannelOffset + C_read.
class NNSlice : public CNNKernel {
 public:
  explicit NNSlice(DevicePtr device);
  static std::shared_ptr<NNSlice> make(DevicePtr device) {
    return std::make_shared<NNSlice>(std::move(device));
  }
  const char* className() const override { return "NNSlice"; }
  ImageDescriptor destinationImageDescriptor(const ImageBatch& sourceImages,
                                             const StateBatch& sourceStates) override;

 protected:
  uint64_t destinationFeatureChannelsWritten(uint64_t cRead, const Image& destination) const override;
  bool acceptsAnySourceFeatureChannelOffset() const override { return true; }
  IntRegion autoModeClipRect() const override { return RectNoClip; }
  void validateImages(const Image& source, const Image& destination) const override;
  void encodeProblem(CommandBuffer& commandBuffer, const detail::UnaryProblem& problem) override;
};

/// Copies the source into a larger destination and fills the border (MPSNNPad), in x/y through
/// `offset` and clipRect as every unary kernel (a negative offset pads before), and in the channels
/// through paddingSizeBefore.channel / paddingSizeAfter.channel: destination channel
/// destinationFeatureChannelOffset + j reads slice position t = j − before.channel of the C_read source
/// channels from sourceFeatureChannelOffset (any value). Out-of-range positions, spatial or in the
/// channel slice, follow edgeMode — all five modes are valid here: Zero → 0, Clamp → nearest,
/// Mirror → reflection without repeating the edge, MirrorWithEdge → with it, Constant → the fill
/// value (fillValueArray[j] when an array was given, else fillValue). Auto mode sizes the destination
/// W + before.x + after.x by H + before.y + after.y, sets offset = (−before.x, −before.y) and writes
/// the whole new image. paddingSizeBefore/After.x/y are used only by auto mode.
class NNPad : public CNNKernel {
 public:
  using FillValues = std::shared_ptr<const std::vector<float>>;
  explicit NNPad(DevicePtr device);
  NNPad(DevicePtr device, ImageCoordinate paddingSizeBefore, ImageCoordinate paddingSizeAfter);
  /// `fillValueArray` (may be null) holds the Constant fill of each destination channel written.
  NNPad(DevicePtr device, ImageCoordinate paddingSizeBefore, ImageCoordinate paddingSizeAfter,
        FillValues fillValueArray);
  static std::shared_ptr<NNPad> make(DevicePtr device) { return std::make_shared<NNPad>(std::move(device)); }
  static std::shared_ptr<NNPad> make(DevicePtr device, ImageCoordinate before, ImageCoordinate after) {
    return std::make_shared<NNPad>(std::move(device), before, after);
  }
  static std::shared_ptr<NNPad> make(DevicePtr device, ImageCoordinate before, ImageCoordinate after,
                                     FillValues fillValueArray) {
    return std::make_shared<NNPad>(std::move(device), before, after, std::move(fillValueArray));
  }
  const char* className() const override { return "NNPad"; }

  /// Left / top / lower-channel padding (default 0,0,0). Each component at most 2^31 − 1.
  ImageCoordinate paddingSizeBefore() const { return before_; }
  void setPaddingSizeBefore(ImageCoordinate v);
  /// Right / bottom / higher-channel padding (default 0,0,0). Each component at most 2^31 − 1.
  ImageCoordinate paddingSizeAfter() const { return after_; }
  void setPaddingSizeAfter(ImageCoordinate v);
  /// The Constant fill when no array was given (default 0).
  float fillValue() const { return fillValue_; }
  void setFillValue(float v) { fillValue_ = v; }
  const FillValues& fillValueArray() const { return fillValueArray_; }

 protected:
  uint64_t destinationFeatureChannels(uint64_t cRead) const override;
  bool acceptsAnySourceFeatureChannelOffset() const override { return true; }
  IntRegion autoModeClipRect() const override { return RectNoClip; }
  void validateImages(const Image& source, const Image& destination) const override;
  void autoGeometry(const Image& source, NNPaddingMethod method, uint64_t& width, uint64_t& height,
                    Offset& offset) const override;
  void encodeProblem(CommandBuffer& commandBuffer, const detail::UnaryProblem& problem) override;

 private:
  ImageCoordinate before_{}, after_{};
  float fillValue_ = 0.0f;
  FillValues fillValueArray_;
  std::shared_ptr<detail::Storage> fillOnDevice_;  // fillValueArray_ in the device's memory
};

/// Concatenation along the feature channels (the semantics of MPSNNConcatenationNode, spec 06 §8).
///
/// Inputs I_0 … I_{m−1} of equal width, height and numberOfImages with C_j channels: input j occupies
/// channels [off_j, off_j + C_j) of the result, off_j = Σ_{i<j} roundUp(C_i, 4), and the channels
/// [off_j + C_j, off_j + roundUp(C_j, 4)) are 0 (QUIRK: a 23-channel input takes 24 channels).
///
/// The copy-free way, for inputs still to be computed: make a destination with
/// featureChannelOffsets(C).back() channels (zero-filled, as every new Image) and encode each producer
/// with destinationFeatureChannelOffset = featureChannelOffsets(C)[j]. This class copies images that
/// already exist into such a destination (and writes the zero channels), reading each input once.
class NNConcatenation : public Kernel {
 public:
  explicit NNConcatenation(DevicePtr device);
  static std::shared_ptr<NNConcatenation> make(DevicePtr device) {
    return std::make_shared<NNConcatenation>(std::move(device));
  }
  const char* className() const override { return "NNConcatenation"; }

  /// off_0 … off_{m−1} and, last, the result's channel count Σ roundUp(C_j, 4). Throws for no inputs,
  /// a zero channel count or a sum that overflows.
  static std::vector<uint64_t> featureChannelOffsets(const std::vector<uint64_t>& featureChannels);
  /// The result of concatenating `inputs`: their width, height and numberOfImages, the first one's format.
  ImageDescriptor destinationImageDescriptor(const ImageBatch& inputs) const;
  /// Copies every input into its channel range of `destination` (same width, height and
  /// numberOfImages, at least featureChannelOffsets(C).back() channels; channels beyond are untouched).
  void encode(CommandBufferPtr commandBuffer, const ImageBatch& inputs, ImagePtr destination);
  /// As above into a new image from destinationImageAllocator.
  ImagePtr encode(CommandBufferPtr commandBuffer, const ImageBatch& inputs);
  ImageAllocatorPtr destinationImageAllocator() const { return allocator_; }
  void setDestinationImageAllocator(ImageAllocatorPtr allocator);

 private:
  ImageAllocatorPtr allocator_;
};

}  // namespace mpsnn
