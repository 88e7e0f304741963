// CNNConvolutionTranspose (spec 01 §6): data-source loading as the convolution's, auto-mode sizing
// (DestSizeReverse) and kernel offsets, validation, and the resolution of the transpose to a
// convolution problem over the zero-inserted source (convolution_impl.h), which every convolution
// backend runs.
#include "kernels/convolution_weights.h"
#include "kernels/describe.h"
#include "mpsnn/error.h"

namespace mpsnn {

using namespace detail;

namespace {

std::string str(uint64_t v) { return std::to_string(v); }
std::string str(int64_t v) { return std::to_string(v); }

// Coordinates in the zero-inserted image stay within ±2^50: far from int64 overflow in any index
// computation, far beyond real images.
constexpr __int128 kMaxZCoordinate = __int128(1) << 50;

/// (S − 1)·s + 1, the zero-inserted extent; InvalidArgument when it leaves the supported range.
int64_t zeroInsertedExtent(const std::string& who, uint64_t extent, uint64_t stride, const char* axis) {
  const __int128 z = (__int128(extent) - 1) * __int128(stride) + 1;
  if (z > kMaxZCoordinate)
    throw InvalidArgument(who + ": source " + axis + " = " + str(extent) + " with strideInPixels" +
                          (axis[0] == 'w' ? "X" : "Y") + " = " + str(stride) +
                          " makes a zero-inserted image beyond the supported size");
  return int64_t(z);
}

}  // namespace

CNNConvolutionTranspose::CNNConvolutionTranspose(DevicePtr device, CNNConvolutionDataSourcePtr dataSource)
    : CNNKernel(std::move(device)), dataSource_(std::move(dataSource)) {
  isBackwards_ = true;  // strides are in destination units; auto mode sizes with DestSizeReverse
  if (!dataSource_) throw InvalidArgument(std::string(className()) + ": dataSource = null");
  loadFromDataSource(false);
}

CNNConvolutionTranspose::~CNNConvolutionTranspose() = default;

void CNNConvolutionTranspose::loadFromDataSource(bool reload) {
  const std::string who = className();
  LoadedConvolution loaded =
      loadConvolutionDataSource(who, *dataSource_, accumulatorPrecision_, reload ? &descriptor_ : nullptr);
  const CNNConvolutionDescriptor& d = loaded.descriptor;
  if (d.subPixelScaleFactor() != 1)
    throw InvalidArgument(who + ": " + d.descriptorClassName() + ".subPixelScaleFactor = " +
                          str(d.subPixelScaleFactor()) + " (a transposed convolution has no sub-pixel form)");
  if (!reload) {
    descriptor_ = d;
    kernelWidth_ = d.kernelWidth();
    kernelHeight_ = d.kernelHeight();
    strideX_ = d.strideInPixelsX();
    strideY_ = d.strideInPixelsY();
    dilationX_ = d.dilationRateX();
    dilationY_ = d.dilationRateY();
    label_ = loaded.label;
  }
  // Batch norm and the neuron come from the kernel's own copy of the descriptor (spec 01 §2.1).
  auto state = makeConvolutionState(device_, descriptor_, loaded.weights, loaded.biases, loaded.roundToHalf);
  weights_ = std::move(loaded.weights);
  biases_ = std::move(loaded.biases);
  roundWeightsToHalf_ = loaded.roundToHalf;
  state_ = std::move(state);
}

void CNNConvolutionTranspose::reloadWeightsAndBiasesFromDataSource() { loadFromDataSource(true); }

void CNNConvolutionTranspose::reloadWeightsAndBiases(CommandBufferPtr commandBuffer,
                                                     const CNNConvolutionWeightsAndBiasesState& state) {
  const std::string who = className();
  checkCommandBuffer(who, commandBuffer, device_);
  state_ = encodeReloadWeightsAndBiases(*commandBuffer, who, device_, *state_, state,
                                        weightLayoutOf(descriptor_, false), roundWeightsToHalf_);
}

CNNConvolutionWeightsAndBiasesStatePtr CNNConvolutionTranspose::exportWeightsAndBiases(
    CommandBufferPtr commandBuffer, bool) {
  const std::string who = className();
  checkCommandBuffer(who, commandBuffer, device_);
  return encodeExportWeightsAndBiases(*commandBuffer, who, device_, descriptor_, *state_,
                                      weightLayoutOf(descriptor_, false));
}

void CNNConvolutionTranspose::autoGeometry(const Image& source, NNPaddingMethod method, uint64_t& width,
                                           uint64_t& height, Offset& offset) const {
  // Spec 01 §6.2: DestSizeReverse per axis, offset 0 (the kernel offsets do the placement, set by
  // destinationImageDescriptor). Not CNNKernel's: its forward offset rule would reject sources that
  // are valid for the transpose.
  const int64_t kWd = int64_t((kernelWidth_ - 1) * dilationX_ + 1),
                kHd = int64_t((kernelHeight_ - 1) * dilationY_ + 1);
  width = uint64_t(
      paddingDestinationSize(int64_t(source.width()), int64_t(strideX_), kWd, method, true, className()));
  height = uint64_t(
      paddingDestinationSize(int64_t(source.height()), int64_t(strideY_), kHd, method, true, className()));
  offset.x = 0;
  offset.y = 0;
}

ImageDescriptor CNNConvolutionTranspose::destinationImageDescriptor(const ImageBatch& sourceImages,
                                                                    const StateBatch& sourceStates) {
  const std::string who = className();
  if (sourceImages.empty() || !sourceImages[0])
    throw InvalidArgument(who + ": destinationImageDescriptor needs a source image");
  const Image& src = *sourceImages[0];
  const NNPaddingMethod m = padding_->paddingMethod();
  validatePaddingMethod(m, who.c_str());
  // CHOICE (spec 01 §6.2): kernelOffset = Offset(Zw, 1, kWd, ...) of spec 00 §5.3 on the
  // zero-inserted extent with stride 1 — the placement of a stride-1 convolution over Z.
  const int64_t zw = zeroInsertedExtent(who, src.width(), strideX_, "width");
  const int64_t zh = zeroInsertedExtent(who, src.height(), strideY_, "height");
  const int64_t kWd = int64_t((kernelWidth_ - 1) * dilationX_ + 1),
                kHd = int64_t((kernelHeight_ - 1) * dilationY_ + 1);
  // The sizes first: their errors name this kernel (a stride-1 convolution over Z has the same size).
  paddingDestinationSize(zw, 1, kWd, m, false, who.c_str());
  paddingDestinationSize(zh, 1, kHd, m, false, who.c_str());
  const int64_t kx = paddingOffset(zw, 1, kWd, m, true);
  const int64_t ky = paddingOffset(zh, 1, kHd, m, false);
  kernelOffsetX_ = kx;
  kernelOffsetY_ = ky;
  return CNNKernel::destinationImageDescriptor(sourceImages, sourceStates);
}

void CNNConvolutionTranspose::validateImages(const Image& source, const Image& destination) const {
  CNNKernel::validateImages(source, destination);
  const std::string who = className();
  validateConvolutionFormats(who, source, destination);
  zeroInsertedExtent(who, source.width(), strideX_, "width");
  zeroInsertedExtent(who, source.height(), strideY_, "height");
  // The total centre offset in Z, offset·stride + kernelOffset, must stay in range.
  auto centre = [&](int64_t offset, uint64_t stride, int64_t kernelOffset, const char* axis) {
    const __int128 t = __int128(offset) * __int128(stride) + kernelOffset;
    if (t > kMaxZCoordinate || t < -kMaxZCoordinate)
      throw InvalidArgument(who + ": offset." + axis + " = " + str(offset) + " with kernelOffset" +
                            (axis[0] == 'x' ? "X" : "Y") + " = " + str(kernelOffset) +
                            " is out of the supported range");
  };
  centre(offset_.x, strideX_, kernelOffsetX_, "x");
  centre(offset_.y, strideY_, kernelOffsetY_, "y");
}

void CNNConvolutionTranspose::encodeProblem(CommandBuffer& commandBuffer, const UnaryProblem& problem) {
  const CNNConvolutionDescriptor& d = descriptor_;
  ConvolutionProblem p;
  p.io = problem;
  // Spec 01 §6.1: a stride-1 convolution over Z, centre offset t = offset·s + kernelOffset.
  p.io.offsetX = problem.offsetX * int64_t(d.strideInPixelsX()) + kernelOffsetX_;
  p.io.offsetY = problem.offsetY * int64_t(d.strideInPixelsY()) + kernelOffsetY_;
  p.zeroInsertX = int64_t(d.strideInPixelsX());
  p.zeroInsertY = int64_t(d.strideInPixelsY());
  p.strideX = p.strideY = 1;
  p.kernelWidth = int64_t(d.kernelWidth());
  p.kernelHeight = int64_t(d.kernelHeight());
  p.dilationX = int64_t(d.dilationRateX());
  p.dilationY = int64_t(d.dilationRateY());
  p.inputChannels = int64_t(d.inputFeatureChannels());
  p.outputChannels = int64_t(d.outputFeatureChannels());
  p.groups = d.isDepthWise() ? p.inputChannels : int64_t(d.groups());
  p.allowTF32 = allowTF32_;
  const std::string extra = "k=" + str(d.kernelWidth()) + "x" + str(d.kernelHeight()) +
                            ",s=" + str(d.strideInPixelsX()) + "x" + str(d.strideInPixelsY()) +
                            ",d=" + str(d.dilationRateX()) + "x" + str(d.dilationRateY()) +
                            ",g=" + str(p.groups) + ",kernelOffset=" + str(kernelOffsetX_) + "x" +
                            str(kernelOffsetY_) + ",neuron=" + toString(state_->neuron.type);
  encodeConvolutionProblem(commandBuffer, device_, className(), p, state_, extra);
}

}  // namespace mpsnn
