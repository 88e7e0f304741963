// CNNFullyConnected (spec 01 §5): a CNNConvolution whose window covers the whole source. The
// descriptor and image rules of §5, the weight order, auto-mode geometry, and the offset that is
// ignored; everything else is the convolution's (the backends' GEMM paths recognise the shape).
#include <algorithm>

#include "kernels/convolution_weights.h"
#include "mpsnn/error.h"

namespace mpsnn {

using namespace detail;

namespace {
std::string str(uint64_t v) { return std::to_string(v); }
}  // namespace

namespace detail {

void validateFullyConnectedDescriptor(const std::string& who, const CNNConvolutionDescriptor& d) {
  const std::string w = who + ": " + d.descriptorClassName() + ".";
  auto one = [&](const char* property, uint64_t value) {
    if (value != 1)
      throw InvalidArgument(w + property + " = " + str(value) + " (a fully connected layer needs 1)");
  };
  one("strideInPixelsX", d.strideInPixelsX());
  one("strideInPixelsY", d.strideInPixelsY());
  one("dilationRateX", d.dilationRateX());
  one("dilationRateY", d.dilationRateY());
  one("groups", d.groups());
  one("subPixelScaleFactor", d.subPixelScaleFactor());
  if (d.isDepthWise())
    throw InvalidArgument(who +
                          ": descriptor is a CNNDepthWiseConvolutionDescriptor (a fully connected layer "
                          "mixes every input channel)");
}

void validateFullyConnectedImages(const std::string& who, const Image& source, const Image& destination,
                                  uint64_t kernelWidth, uint64_t kernelHeight, const IntRegion& clip) {
  if (source.width() != kernelWidth)
    throw InvalidArgument(who + ": source width = " + str(source.width()) + ", kernelWidth = " +
                          str(kernelWidth) + " (a fully connected layer's kernel covers the whole source)");
  if (source.height() != kernelHeight)
    throw InvalidArgument(who + ": source height = " + str(source.height()) + ", kernelHeight = " +
                          str(kernelHeight) + " (a fully connected layer's kernel covers the whole source)");
  // The effective clip (spec 00 §4.5), computed without overflow.
  auto extent = [](uint64_t origin, uint64_t size, uint64_t limit) -> uint64_t {
    if (origin >= limit) return 0;
    return std::min(size, limit - origin);
  };
  const uint64_t w = extent(clip.origin.x, clip.size.width, destination.width());
  const uint64_t h = extent(clip.origin.y, clip.size.height, destination.height());
  if (w > 1 || h > 1)
    throw InvalidArgument(who + ": clipRect covers " + str(w) + " x " + str(h) +
                          " destination pixels (a fully connected layer writes 1 x 1; destination is " +
                          str(destination.width()) + " x " + str(destination.height()) + ")");
}

}  // namespace detail

CNNFullyConnected::CNNFullyConnected(DevicePtr device, CNNConvolutionDataSourcePtr dataSource)
    : CNNConvolution(std::move(device), std::move(dataSource), "CNNFullyConnected") {
  checkFullyConnectedDescriptor();
}

CNNFullyConnected::CNNFullyConnected(DevicePtr device, const CNNConvolutionDescriptor& descriptor,
                                     const float* weights, const float* biases, CNNConvolutionFlags)
    : CNNConvolution(std::move(device), descriptor, weights, biases, "CNNFullyConnected") {
  checkFullyConnectedDescriptor();
}

void CNNFullyConnected::checkFullyConnectedDescriptor() {
  validateFullyConnectedDescriptor("CNNFullyConnected", descriptor_);
  // CHOICE (spec 01 §5): MPS says fully connected overrides the default without naming it.
  padding_ = NNDefaultPadding::paddingWithMethod(NNPaddingMethod::AlignCentered |
                                                 NNPaddingMethod::AddRemainderToTopLeft |
                                                 NNPaddingMethod::SizeValidOnly);
}

void CNNFullyConnected::setWeightOrder(FullyConnectedWeightOrder order) {
  const std::string who = std::string(className()) + ": setWeightOrder: order = " + str(uint64_t(order));
  if (order != FullyConnectedWeightOrder::OHWI && order != FullyConnectedWeightOrder::OWHI)
    throw InvalidArgument(who + " is not a FullyConnectedWeightOrder");
  if (order == weightOrder_) return;
  if (weightsOnDeviceOnly_)
    throw InvalidArgument(who +
                          " after reloadWeightsAndBiases put weights on the device that the host has not "
                          "seen (set the order before reloading, or reload from the data source)");
  // The kernel's weights back to the data source's order as read so far, then read in the new order.
  // Batch-norm folding and float16 rounding act per value and per output channel, so they commute.
  std::vector<float> source =
      weightsToSourceOrder(weights_, weightLayoutOf(descriptor_, weightsWidthMajor()));
  const FullyConnectedWeightOrder previous = weightOrder_;
  weightOrder_ = order;
  try {
    std::vector<float> weights =
        weightsToKernelOrder(std::move(source), weightLayoutOf(descriptor_, weightsWidthMajor()));
    auto next = std::make_shared<ConvolutionState>();
    next->weights = uploadToDevice(device_, weights.data(), weights.size() * sizeof(float));
    next->biases = state_->biases;
    next->prelu = state_->prelu;
    next->neuron = state_->neuron;
    weights_ = std::move(weights);
    state_ = std::move(next);
  } catch (...) {
    weightOrder_ = previous;
    throw;
  }
}

void CNNFullyConnected::validateImages(const Image& source, const Image& destination) const {
  // offset is ignored (spec 01 §5), so its range is not checked.
  CNNKernel::validateImages(source, destination);
  validateConvolutionFormats(className(), source, destination);
  validateFullyConnectedImages(className(), source, destination, kernelWidth_, kernelHeight_, clipRect_);
}

void CNNFullyConnected::autoGeometry(const Image&, NNPaddingMethod, uint64_t& width, uint64_t& height,
                                     Offset& offset) const {
  width = height = 1;  // spec 01 §5: a 1 × 1 × Co result whatever the policy
  offset.x = int64_t(kernelWidth_ / 2);
  offset.y = int64_t(kernelHeight_ / 2);
}

void CNNFullyConnected::encodeProblem(CommandBuffer& commandBuffer, const UnaryProblem& problem) {
  // CHOICE: offset is treated as (kW/2, kH/2): the window covers the whole source.
  UnaryProblem whole = problem;
  whole.offsetX = int64_t(kernelWidth_ / 2);
  whole.offsetY = int64_t(kernelHeight_ / 2);
  CNNConvolution::encodeProblem(commandBuffer, whole);
}

}  // namespace mpsnn
