// CNNBinaryConvolution and CNNBinaryFullyConnected (spec 01 §7, §8): validation, data-source loading
// (UInt32 bit weights), the input/output terms of both constructors, the fully-connected geometry,
// and dispatch to the backend implementation lists.
#include <algorithm>

#include "core/image_access.h"
#include "kernels/binary_convolution_impl.h"
#include "kernels/convolution_weights.h"
#include "kernels/describe.h"
#include "mpsnn/error.h"

namespace mpsnn {

namespace detail {
/// What a kernel's work items keep alive: bit weights, the four term arrays and PReLU slopes.
struct BinaryConvolutionState {
  StoragePtr weights, outputBias, outputScale, inputBias, inputScale, prelu;
  NeuronParams neuron;
};
}  // namespace detail

using namespace detail;

namespace {

std::string str(uint64_t v) { return std::to_string(v); }

std::vector<float> copyOrFill(const float* values, uint64_t count, float fallback) {
  return values ? std::vector<float>(values, values + count) : std::vector<float>(count, fallback);
}

}  // namespace

CNNBinaryConvolution::CNNBinaryConvolution(DevicePtr device, CNNConvolutionDataSourcePtr dataSource,
                                           float scaleValue, CNNBinaryConvolutionType type,
                                           CNNBinaryConvolutionFlags flags)
    : CNNBinaryConvolution(std::move(device), std::move(dataSource), &scaleValue, nullptr, nullptr, nullptr,
                           nullptr, type, flags, "CNNBinaryConvolution", false) {}

CNNBinaryConvolution::CNNBinaryConvolution(DevicePtr device, CNNConvolutionDataSourcePtr dataSource,
                                           const float* outputBiasTerms, const float* outputScaleTerms,
                                           const float* inputBiasTerms, const float* inputScaleTerms,
                                           CNNBinaryConvolutionType type, CNNBinaryConvolutionFlags flags)
    : CNNBinaryConvolution(std::move(device), std::move(dataSource), nullptr, outputBiasTerms,
                           outputScaleTerms, inputBiasTerms, inputScaleTerms, type, flags,
                           "CNNBinaryConvolution", false) {}

CNNBinaryConvolution::CNNBinaryConvolution(DevicePtr device, CNNConvolutionDataSourcePtr dataSource,
                                           const float* scaleValue, const float* outputBiasTerms,
                                           const float* outputScaleTerms, const float* inputBiasTerms,
                                           const float* inputScaleTerms, CNNBinaryConvolutionType type,
                                           CNNBinaryConvolutionFlags flags, const char* whoName,
                                           bool fullyConnected)
    : CNNKernel(std::move(device)), dataSource_(std::move(dataSource)), type_(type), flags_(flags) {
  const std::string who = whoName;
  if (!dataSource_) throw InvalidArgument(who + ": dataSource = null");
  if (uint32_t(type) > uint32_t(CNNBinaryConvolutionType::AND))
    throw InvalidArgument(who + ": type = " + str(uint32_t(type)) + " is not a CNNBinaryConvolutionType");
  if (uint32_t(flags) > uint32_t(CNNBinaryConvolutionFlags::UseBetaScaling))
    throw InvalidArgument(who + ": flags = " + str(uint32_t(flags)) +
                          " is not a CNNBinaryConvolutionFlags value");

  CNNConvolutionDataSource& ds = *dataSource_;
  if (!ds.load()) throw InvalidArgument(who + ": dataSource.load() returned false");
  struct PurgeOnExit {  // every successful load() is balanced by a purge()
    CNNConvolutionDataSource& ds;
    ~PurgeOnExit() {
      try {
        ds.purge();
      } catch (...) {
      }
    }
  } purgeOnExit{ds};

  const CNNConvolutionDescriptor desc = ds.descriptor();
  desc.validate(who.c_str());
  const std::string w = who + ": " + desc.descriptorClassName() + ".";
  if (desc.groups() != 1)
    throw InvalidArgument(w + "groups = " + str(desc.groups()) + " (a binary convolution needs 1)");
  if (desc.subPixelScaleFactor() != 1)
    throw InvalidArgument(w + "subPixelScaleFactor = " + str(desc.subPixelScaleFactor()) +
                          " (a binary convolution has no sub-pixel form)");
  if (desc.isDepthWise())
    throw InvalidArgument(who +
                          ": descriptor is a CNNDepthWiseConvolutionDescriptor (a binary convolution "
                          "has no depthwise form)");
  if (fullyConnected) validateFullyConnectedDescriptor(who, desc);
  if (ds.dataType() != DataType::UInt32)
    throw InvalidArgument(who + ": dataSource.dataType = " + toString(ds.dataType()) +
                          " (a binary convolution's weights are UInt32 bit words)");
  if (ds.weightsLayout() != CNNConvolutionWeightsLayout::OHWI)
    throw InvalidArgument(who + ": dataSource.weightsLayout = " + str(uint64_t(ds.weightsLayout())) +
                          " (only OHWI = 0 exists)");
  const auto* raw = static_cast<const uint32_t*>(ds.weights());
  if (!raw) throw InvalidArgument(who + ": dataSource.weights() = null");

  const uint64_t ci = desc.inputFeatureChannels(), co = desc.outputFeatureChannels();
  const uint64_t words = (ci + 31) / 32;
  sourceWeights_.assign(raw, raw + co * desc.kernelHeight() * desc.kernelWidth() * words);
  if (scaleValue) {
    outputScale_.assign(co, *scaleValue);
    outputBias_ = copyOrFill(ds.biasTerms(), co, 0.0f);
    inputBias_.assign(ci, 0.0f);
    inputScale_.assign(ci, 1.0f);
  } else {
    outputBias_ = copyOrFill(outputBiasTerms, co, 0.0f);
    outputScale_ = copyOrFill(outputScaleTerms, co, 1.0f);
    inputBias_ = copyOrFill(inputBiasTerms, ci, 0.0f);
    inputScale_ = copyOrFill(inputScaleTerms, ci, 1.0f);
  }
  descriptor_ = desc;
  kernelWidth_ = desc.kernelWidth();
  kernelHeight_ = desc.kernelHeight();
  strideX_ = desc.strideInPixelsX();
  strideY_ = desc.strideInPixelsY();
  dilationX_ = desc.dilationRateX();
  dilationY_ = desc.dilationRateY();
  label_ = ds.label();
  if (fullyConnected)  // spec 01 §8: documented default for the binary fully connected layer
    padding_ = NNDefaultPadding::paddingWithMethod(NNPaddingMethod::AlignCentered |
                                                   NNPaddingMethod::AddRemainderToTopLeft |
                                                   NNPaddingMethod::SizeValidOnly);
  installWeights(false);
}

CNNBinaryConvolution::~CNNBinaryConvolution() = default;

void CNNBinaryConvolution::installWeights(bool widthMajor) {
  const uint64_t co = descriptor_.outputFeatureChannels(), kH = descriptor_.kernelHeight(),
                 kW = descriptor_.kernelWidth(), words = (descriptor_.inputFeatureChannels() + 31) / 32;
  // The kernel's order is [Co][kH][kW][words]; a width-major source is [Co][kW][kH][words].
  std::vector<uint32_t> weights = sourceWeights_;
  if (widthMajor)
    for (uint64_t o = 0; o < co; ++o)
      for (uint64_t x = 0; x < kW; ++x)
        for (uint64_t y = 0; y < kH; ++y)
          std::copy_n(sourceWeights_.data() + ((o * kW + x) * kH + y) * words, words,
                      weights.data() + ((o * kH + y) * kW + x) * words);
  auto state = std::make_shared<BinaryConvolutionState>();
  state->weights = uploadToDevice(device_, weights.data(), weights.size() * sizeof(uint32_t));
  state->outputBias = uploadToDevice(device_, outputBias_.data(), outputBias_.size() * sizeof(float));
  state->outputScale = uploadToDevice(device_, outputScale_.data(), outputScale_.size() * sizeof(float));
  state->inputBias = uploadToDevice(device_, inputBias_.data(), inputBias_.size() * sizeof(float));
  state->inputScale = uploadToDevice(device_, inputScale_.data(), inputScale_.size() * sizeof(float));
  const NNNeuronDescriptor& n = descriptor_.fusedNeuronDescriptor();
  state->neuron = {n.neuronType(), n.a(), n.b(), n.c(), nullptr};
  if (n.neuronType() == CNNNeuronType::PReLU) {
    state->prelu = uploadToDevice(device_, n.data()->data(), co * sizeof(float));
    state->neuron.prelu = static_cast<const float*>(state->prelu->data());
  }
  state_ = std::move(state);
}

void CNNBinaryConvolution::validateImages(const Image& source, const Image& destination) const {
  CNNKernel::validateImages(source, destination);
  const std::string who = className();
  validateConvolutionFormats(who, source, destination);
  for (auto [value, axis] : {std::pair{offset_.x, "x"}, std::pair{offset_.y, "y"}})
    if (value < -kMaxConvolutionOffset || value > kMaxConvolutionOffset)
      throw InvalidArgument(who + ": offset." + axis + " = " + std::to_string(value) +
                            " is out of the supported range");
}

void CNNBinaryConvolution::encodeProblem(CommandBuffer& commandBuffer, const UnaryProblem& problem) {
  const CNNConvolutionDescriptor& d = descriptor_;
  BinaryConvolutionProblem p;
  p.io = problem;
  p.kernelWidth = int64_t(d.kernelWidth());
  p.kernelHeight = int64_t(d.kernelHeight());
  p.strideX = int64_t(d.strideInPixelsX());
  p.strideY = int64_t(d.strideInPixelsY());
  p.dilationX = int64_t(d.dilationRateX());
  p.dilationY = int64_t(d.dilationRateY());
  p.inputChannels = int64_t(d.inputFeatureChannels());
  p.outputChannels = int64_t(d.outputFeatureChannels());
  p.words = (p.inputChannels + 31) / 32;
  p.type = type_;
  p.betaScaling = flags_ == CNNBinaryConvolutionFlags::UseBetaScaling;
  auto state = state_;  // the work item owns what it points to
  p.neuron = state->neuron;
  p.weights = static_cast<const uint32_t*>(state->weights->data());
  p.outputBias = static_cast<const float*>(state->outputBias->data());
  p.outputScale = static_cast<const float*>(state->outputScale->data());
  p.inputBias = static_cast<const float*>(state->inputBias->data());
  p.inputScale = static_cast<const float*>(state->inputScale->data());
#if defined(MPSNN_HAVE_CUDA)
  auto& list = device_->kind() == DeviceKind::CUDA ? cudaBinaryConvolutionImplementations()
                                                   : cpuBinaryConvolutionImplementations();
#else
  auto& list = cpuBinaryConvolutionImplementations();
#endif
  const auto& impl = chooseImplementation(list, p, className());
  const char* types[] = {"BinaryWeights", "XNOR", "AND"};
  const std::string extra = "k=" + str(d.kernelWidth()) + "x" + str(d.kernelHeight()) +
                            ",s=" + str(d.strideInPixelsX()) + "x" + str(d.strideInPixelsY()) +
                            ",type=" + types[uint32_t(type_)] + (p.betaScaling ? ",beta" : "") +
                            ",neuron=" + toString(p.neuron.type);
  auto run = impl.run;
  commandBuffer.encodeWork(describeWork(className(), impl.name, problem, extra),
                           [p, state, run](QueueContext& ctx) { run(p, ctx); });
}

// ---------------------------------------------------------------------------------------------
// CNNBinaryFullyConnected

CNNBinaryFullyConnected::CNNBinaryFullyConnected(DevicePtr device, CNNConvolutionDataSourcePtr dataSource,
                                                 float scaleValue, CNNBinaryConvolutionType type,
                                                 CNNBinaryConvolutionFlags flags)
    : CNNBinaryConvolution(std::move(device), std::move(dataSource), &scaleValue, nullptr, nullptr, nullptr,
                           nullptr, type, flags, "CNNBinaryFullyConnected", true) {}

CNNBinaryFullyConnected::CNNBinaryFullyConnected(DevicePtr device, CNNConvolutionDataSourcePtr dataSource,
                                                 const float* outputBiasTerms, const float* outputScaleTerms,
                                                 const float* inputBiasTerms, const float* inputScaleTerms,
                                                 CNNBinaryConvolutionType type,
                                                 CNNBinaryConvolutionFlags flags)
    : CNNBinaryConvolution(std::move(device), std::move(dataSource), nullptr, outputBiasTerms,
                           outputScaleTerms, inputBiasTerms, inputScaleTerms, type, flags,
                           "CNNBinaryFullyConnected", true) {}

void CNNBinaryFullyConnected::setWeightOrder(FullyConnectedWeightOrder order) {
  if (order != FullyConnectedWeightOrder::OHWI && order != FullyConnectedWeightOrder::OWHI)
    throw InvalidArgument(std::string(className()) + ": setWeightOrder: order = " + str(uint64_t(order)) +
                          " is not a FullyConnectedWeightOrder");
  if (order == weightOrder_) return;
  installWeights(order == FullyConnectedWeightOrder::OWHI);
  weightOrder_ = order;
}

void CNNBinaryFullyConnected::validateImages(const Image& source, const Image& destination) const {
  // offset is ignored (spec 01 §5, §8), so its range is not checked.
  CNNKernel::validateImages(source, destination);
  const std::string who = className();
  validateConvolutionFormats(who, source, destination);
  validateFullyConnectedImages(who, source, destination, kernelWidth_, kernelHeight_, clipRect_);
}

void CNNBinaryFullyConnected::autoGeometry(const Image&, NNPaddingMethod, uint64_t& width, uint64_t& height,
                                           Offset& offset) const {
  width = height = 1;
  offset.x = int64_t(kernelWidth_ / 2);
  offset.y = int64_t(kernelHeight_ / 2);
}

void CNNBinaryFullyConnected::encodeProblem(CommandBuffer& commandBuffer, const UnaryProblem& problem) {
  UnaryProblem whole = problem;  // CHOICE: offset treated as (kW/2, kH/2), the whole source
  whole.offsetX = int64_t(kernelWidth_ / 2);
  whole.offsetY = int64_t(kernelHeight_ / 2);
  CNNBinaryConvolution::encodeProblem(commandBuffer, whole);
}

}  // namespace mpsnn
