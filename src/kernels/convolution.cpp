// CNNConvolution and its descriptors (spec 01 §2–§4), CNNConvolutionWeightsAndBiasesState (§9), and
// what the family's kernel classes share (convolution_weights.h): validation, data-source loading,
// batch-norm folding, destination sizing, device export/reload of weights, and dispatch to the
// backend implementation lists.
#include "mpsnn/convolution.h"

#include <array>
#include <atomic>
#include <cmath>
#include <cstdlib>

#include "core/format.h"
#include "core/image_access.h"
#include "kernels/convolution_weights.h"
#include "kernels/describe.h"
#include "mpsnn/error.h"

namespace mpsnn {

namespace detail {

namespace {
std::atomic<int> gForcePlain{-1};
thread_local std::string gLastImplementation;
}  // namespace

void setForcePlainConvolution(int mode) { gForcePlain = mode; }
bool forcePlainConvolution() {
  int mode = gForcePlain;
  if (mode >= 0) return mode == 1;
  const char* env = std::getenv("MPSNN_FORCE_PLAIN");
  return env && *env && *env != '0';
}
std::string lastConvolutionImplementation() { return gLastImplementation; }
std::vector<std::string> convolutionImplementationNames(DeviceKind kind) {
  std::vector<std::string> names;
#if defined(MPSNN_HAVE_CUDA)
  if (kind == DeviceKind::CUDA)
    for (const auto& impl : cudaConvolutionImplementations()) names.push_back(impl.name);
#endif
  if (kind == DeviceKind::CPU)
    for (const auto& impl : cpuConvolutionImplementations()) names.push_back(impl.name);
  return names;
}

}  // namespace detail

using namespace detail;

namespace {

std::string str(uint64_t v) { return std::to_string(v); }

constexpr uint64_t kMaxExtent = kMaxConvolutionExtent;
constexpr double kMaxWeights = double(uint64_t(1) << 36);  // weight values of one kernel
constexpr uint64_t kMaxSubPixel = 1024;
constexpr int64_t kMaxOffset = kMaxConvolutionOffset;

bool sameShape(const CNNConvolutionDescriptor& a, const CNNConvolutionDescriptor& b) {
  return a.kernelWidth() == b.kernelWidth() && a.kernelHeight() == b.kernelHeight() &&
         a.inputFeatureChannels() == b.inputFeatureChannels() &&
         a.outputFeatureChannels() == b.outputFeatureChannels() &&
         a.strideInPixelsX() == b.strideInPixelsX() && a.strideInPixelsY() == b.strideInPixelsY() &&
         a.groups() == b.groups() && a.dilationRateX() == b.dilationRateX() &&
         a.dilationRateY() == b.dilationRateY() && a.subPixelScaleFactor() == b.subPixelScaleFactor() &&
         a.isDepthWise() == b.isDepthWise();
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Descriptors

CNNConvolutionDescriptor CNNConvolutionDescriptor::make(uint64_t kernelWidth, uint64_t kernelHeight,
                                                        uint64_t inputFeatureChannels,
                                                        uint64_t outputFeatureChannels) {
  CNNConvolutionDescriptor d;
  d.kernelWidth_ = kernelWidth;
  d.kernelHeight_ = kernelHeight;
  d.inputFeatureChannels_ = inputFeatureChannels;
  d.outputFeatureChannels_ = outputFeatureChannels;
  return d;
}

CNNSubPixelConvolutionDescriptor CNNSubPixelConvolutionDescriptor::make(uint64_t kernelWidth,
                                                                        uint64_t kernelHeight,
                                                                        uint64_t inputFeatureChannels,
                                                                        uint64_t outputFeatureChannels) {
  CNNSubPixelConvolutionDescriptor d;
  d.kernelWidth_ = kernelWidth;
  d.kernelHeight_ = kernelHeight;
  d.inputFeatureChannels_ = inputFeatureChannels;
  d.outputFeatureChannels_ = outputFeatureChannels;
  return d;
}

CNNDepthWiseConvolutionDescriptor CNNDepthWiseConvolutionDescriptor::make(uint64_t kernelWidth,
                                                                          uint64_t kernelHeight,
                                                                          uint64_t inputFeatureChannels,
                                                                          uint64_t outputFeatureChannels) {
  CNNDepthWiseConvolutionDescriptor d;
  d.kernelWidth_ = kernelWidth;
  d.kernelHeight_ = kernelHeight;
  d.inputFeatureChannels_ = inputFeatureChannels;
  d.outputFeatureChannels_ = outputFeatureChannels;
  return d;
}

const char* CNNConvolutionDescriptor::descriptorClassName() const {
  if (depthWise_) return "CNNDepthWiseConvolutionDescriptor";
  if (subPixel_) return "CNNSubPixelConvolutionDescriptor";
  return "CNNConvolutionDescriptor";
}

void CNNConvolutionDescriptor::setNeuronType(CNNNeuronType type, float a, float b) {
  const std::string who =
      std::string(descriptorClassName()) + ": setNeuronType: neuronType = " + toString(type);
  if (type == CNNNeuronType::PReLU)
    throw InvalidArgument(who + " needs per-channel slopes: use setNeuronToPReLUWithParametersA");
  if (uint32_t(type) > uint32_t(CNNNeuronType::GeLU)) throw InvalidArgument(who + " is not a neuron type");
  neuron_ = NNNeuronDescriptor::make(type, a, b);
}

void CNNConvolutionDescriptor::setNeuronToPReLUWithParametersA(std::vector<float> a) {
  if (a.empty())
    throw InvalidArgument(std::string(descriptorClassName()) +
                          ": setNeuronToPReLUWithParametersA: a is empty");
  neuron_ = NNNeuronDescriptor::makePReLU(std::make_shared<const std::vector<float>>(std::move(a)), false);
}

void CNNConvolutionDescriptor::setBatchNormalizationParametersForInference(const float* mean,
                                                                           const float* variance,
                                                                           const float* gamma,
                                                                           const float* beta, float epsilon) {
  const uint64_t co = outputFeatureChannels_;
  if (co == 0 || co > kMaxExtent)
    throw InvalidArgument(
        std::string(descriptorClassName()) +
        ": setBatchNormalizationParametersForInference needs outputFeatureChannels set first "
        "(outputFeatureChannels = " +
        str(co) + ")");
  auto copy = [co](const float* p, float fallback) {
    return p ? std::vector<float>(p, p + co) : std::vector<float>(co, fallback);
  };
  bnMean_ = copy(mean, 0.0f);
  bnVariance_ = copy(variance, 1.0f);
  bnGamma_ = copy(gamma, 1.0f);
  bnBeta_ = copy(beta, 0.0f);
  bnEpsilon_ = epsilon;
  hasBatchNorm_ = true;
}

void CNNConvolutionDescriptor::validate(const char* who) const {
  const std::string w = std::string(who) + ": " + descriptorClassName() + ".";
  auto reject = [&](const std::string& property, uint64_t value, const std::string& why) {
    throw InvalidArgument(w + property + " = " + str(value) + " " + why);
  };
  auto range = [&](const char* property, uint64_t value) {
    if (value == 0) reject(property, value, "must be >= 1");
    if (value > kMaxExtent) reject(property, value, "exceeds the supported maximum " + str(kMaxExtent));
  };
  range("kernelWidth", kernelWidth_);
  range("kernelHeight", kernelHeight_);
  range("inputFeatureChannels", inputFeatureChannels_);
  range("outputFeatureChannels", outputFeatureChannels_);
  range("strideInPixelsX", strideX_);
  range("strideInPixelsY", strideY_);
  range("groups", groups_);
  range("dilationRateX", dilationX_);
  range("dilationRateY", dilationY_);
  if ((kernelWidth_ - 1) * dilationX_ + 1 > kMaxExtent)
    reject("dilationRateX", dilationX_, "makes the dilated kernel width exceed " + str(kMaxExtent));
  if ((kernelHeight_ - 1) * dilationY_ + 1 > kMaxExtent)
    reject("dilationRateY", dilationY_, "makes the dilated kernel height exceed " + str(kMaxExtent));

  const uint64_t ci = inputFeatureChannels_, co = outputFeatureChannels_, g = groups_;
  if (depthWise_) {
    if (g != 1) reject("groups", g, "must be 1 for a depthwise convolution");
    if (co % ci)
      reject("outputFeatureChannels", co, "is not a multiple of inputFeatureChannels = " + str(ci));
    if (strictValidation() && co != ci)
      reject("outputFeatureChannels", co,
             "gives channelMultiplier " + str(co / ci) + " (MPS supports only 1; strict validation)");
  } else {
    if (ci % g) reject("groups", g, "does not divide inputFeatureChannels = " + str(ci));
    if (co % g) reject("groups", g, "does not divide outputFeatureChannels = " + str(co));
    if (strictValidation() && g > 1 && ((ci / g) % 4 || (co / g) % 4))
      reject("groups", g, "leaves channels per group that are not multiples of 4 (strict validation)");
  }
  if (subPixelScaleFactor_ == 0) reject("subPixelScaleFactor", 0, "must be >= 1");
  if (subPixelScaleFactor_ > kMaxSubPixel)
    reject("subPixelScaleFactor", subPixelScaleFactor_, "exceeds the supported maximum " + str(kMaxSubPixel));
  const uint64_t r2 = subPixelScaleFactor_ * subPixelScaleFactor_;
  if (co % r2)
    reject(
        "subPixelScaleFactor", subPixelScaleFactor_,
        "does not fit outputFeatureChannels = " + str(co) + " (must be a multiple of r² = " + str(r2) + ")");
  if (strictValidation() && subPixelScaleFactor_ > 1 && g > 1 && (co / r2) % 4)
    reject("subPixelScaleFactor", subPixelScaleFactor_,
           "with groups > 1 needs outputFeatureChannels / r² to be a multiple of 4 (strict validation)");
  if (double(co) * double(kernelHeight_) * double(kernelWidth_) * double(depthWise_ ? 1 : ci / g) >
      kMaxWeights)
    reject("outputFeatureChannels", co, "makes more weights than the supported maximum");

  neuron_.validate((w + "fusedNeuronDescriptor").c_str());
  if (neuron_.neuronType() == CNNNeuronType::PReLU && neuron_.data()->size() < co)
    throw InvalidArgument(w + "fusedNeuronDescriptor: PReLU data has " +
                          str(uint64_t(neuron_.data()->size())) +
                          " slopes, outputFeatureChannels = " + str(co));
  if (hasBatchNorm_) {
    for (const auto* v : {&bnMean_, &bnVariance_, &bnGamma_, &bnBeta_})
      if (v->size() != co)
        throw InvalidArgument(w + "batchNormalizationParameters were set for " + str(uint64_t(v->size())) +
                              " output channels, outputFeatureChannels = " + str(co));
  }
}

// ---------------------------------------------------------------------------------------------
// Shared by the family's kernel classes (convolution_weights.h)

namespace detail {

uint64_t convolutionWeightInputChannels(const CNNConvolutionDescriptor& d) {
  return d.isDepthWise() ? 1 : d.inputFeatureChannels() / d.groups();
}

uint64_t convolutionWeightCount(const CNNConvolutionDescriptor& d) {
  return d.outputFeatureChannels() * d.kernelHeight() * d.kernelWidth() * convolutionWeightInputChannels(d);
}

bool isConvolutionComputeFormat(ImageFeatureChannelFormat f) {
  switch (f) {
    case ImageFeatureChannelFormat::Float32:
    case ImageFeatureChannelFormat::Float16:
    case ImageFeatureChannelFormat::BFloat16:
    case ImageFeatureChannelFormat::Unorm8:
    case ImageFeatureChannelFormat::Unorm16:
      return true;
    default:
      return false;
  }
}

void validateConvolutionFormats(const std::string& who, const Image& source, const Image& destination) {
  if (!isConvolutionComputeFormat(source.featureChannelFormat()))
    throw InvalidArgument(who + ": source featureChannelFormat = " + toString(source.featureChannelFormat()) +
                          " (a convolution reads float or unorm images)");
  if (!isConvolutionComputeFormat(destination.featureChannelFormat()))
    throw InvalidArgument(
        who + ": destination featureChannelFormat = " + toString(destination.featureChannelFormat()) +
        " (a convolution writes float or unorm images)");
}

LoadedConvolution loadConvolutionDataSource(const std::string& who, CNNConvolutionDataSource& ds,
                                            NNConvolutionAccumulatorPrecisionOption precision,
                                            const CNNConvolutionDescriptor* reloadOf) {
  if (!ds.load()) throw InvalidArgument(who + ": dataSource.load() returned false");
  // Every successful load() is balanced by a purge(), also when the contents are rejected.
  struct PurgeOnExit {
    CNNConvolutionDataSource& ds;
    ~PurgeOnExit() {
      try {
        ds.purge();
      } catch (...) {
      }
    }
  } purgeOnExit{ds};

  LoadedConvolution loaded;
  loaded.descriptor = ds.descriptor();
  const CNNConvolutionDescriptor& desc = loaded.descriptor;
  desc.validate(who.c_str());
  if (reloadOf && !sameShape(desc, *reloadOf))
    throw InvalidArgument(who + ": dataSource.descriptor changed the convolution's shape on reload");

  const DataType type = ds.dataType();
  if (type != DataType::Float32 && type != DataType::Float16 && type != DataType::UInt8)
    throw InvalidArgument(who + ": dataSource.dataType = " + toString(type) +
                          " (must be Float32, Float16 or UInt8)");
  if (ds.weightsLayout() != CNNConvolutionWeightsLayout::OHWI)
    throw InvalidArgument(who + ": dataSource.weightsLayout = " + str(uint64_t(ds.weightsLayout())) +
                          " (only OHWI = 0 exists)");
  const DataType kernelType = ds.kernelWeightsDataType();
  if (kernelType == DataType::Float32) {
    if (type != DataType::Float32)
      throw InvalidArgument(
          who + ": dataSource.kernelWeightsDataType = Float32 needs dataType Float32 (dataType = " +
          toString(type) + ")");
    if (precision != NNConvolutionAccumulatorPrecisionOption::Float)
      throw InvalidArgument(
          who + ": dataSource.kernelWeightsDataType = Float32 needs accumulatorPrecisionOption Float");
  } else if (kernelType != DataType::Float16) {
    throw InvalidArgument(who + ": dataSource.kernelWeightsDataType = " + toString(kernelType) +
                          " (must be Float16 or Float32)");
  }

  const std::array<float, 2>* ranges = nullptr;
  const float* table = nullptr;
  if (type == DataType::UInt8) {
    const CNNWeightsQuantizationType quantization = ds.weightsQuantizationType();
    switch (quantization) {
      case CNNWeightsQuantizationType::None:
        throw InvalidArgument(who + ": dataSource.weightsQuantizationType = None with dataType UInt8");
      case CNNWeightsQuantizationType::Linear:
        ranges = ds.rangesForUInt8Kernel();
        if (!ranges)
          throw InvalidArgument(
              who + ": dataSource.rangesForUInt8Kernel = null with weightsQuantizationType Linear");
        break;
      case CNNWeightsQuantizationType::LookupTable:
        table = ds.lookupTableForUInt8Kernel();
        if (!table)
          throw InvalidArgument(
              who + ": dataSource.lookupTableForUInt8Kernel = null with weightsQuantizationType LookupTable");
        break;
      default:
        throw InvalidArgument(who + ": dataSource.weightsQuantizationType = " + str(uint64_t(quantization)) +
                              " is not a quantization type");
    }
  }
  const void* raw = ds.weights();
  if (!raw) throw InvalidArgument(who + ": dataSource.weights() = null");

  const uint64_t count = convolutionWeightCount(desc);
  const uint64_t perOutput = count / desc.outputFeatureChannels();
  loaded.weights.resize(count);
  std::vector<float>& weights = loaded.weights;
  switch (type) {
    case DataType::Float32:
      std::copy_n(static_cast<const float*>(raw), count, weights.data());
      break;
    case DataType::Float16: {
      const auto* h = static_cast<const uint16_t*>(raw);
      for (uint64_t i = 0; i < count; ++i) weights[i] = halfToFloat(h[i]);
      break;
    }
    default: {
      const auto* u = static_cast<const uint8_t*>(raw);
      for (uint64_t i = 0; i < count; ++i) {
        if (table) {
          weights[i] = table[u[i]];
        } else {
          const auto& mm = ranges[i / perOutput];
          weights[i] = float(double(u[i]) / 255.0 * (double(mm[1]) - double(mm[0])) + double(mm[0]));
        }
      }
    }
  }
  if (const float* b = ds.biasTerms()) loaded.biases.assign(b, b + desc.outputFeatureChannels());
  loaded.roundToHalf = kernelType != DataType::Float32;
  loaded.label = ds.label();
  return loaded;
}

std::shared_ptr<ConvolutionState> makeConvolutionState(const DevicePtr& device,
                                                       const CNNConvolutionDescriptor& descriptor,
                                                       std::vector<float>& weights,
                                                       std::vector<float>& biases, bool roundToHalf) {
  const uint64_t co = descriptor.outputFeatureChannels();
  const uint64_t perOutput = weights.size() / co;
  if (descriptor.hasBatchNormalization()) {
    // Spec 01 §2.1, in double, rounded once to float.
    if (biases.empty()) biases.assign(co, 0.0f);
    for (uint64_t o = 0; o < co; ++o) {
      const double scale =
          double(descriptor.batchNormGamma()[o]) /
          std::sqrt(double(descriptor.batchNormVariance()[o]) + double(descriptor.batchNormEpsilon()));
      const double shift =
          double(descriptor.batchNormBeta()[o]) - scale * double(descriptor.batchNormMean()[o]);
      for (uint64_t i = 0; i < perOutput; ++i)
        weights[o * perOutput + i] = float(double(weights[o * perOutput + i]) * scale);
      biases[o] = float(double(biases[o]) * scale + shift);
    }
  }
  // kernelWeightsDataType QUIRK: the weights the kernel computes with are float16 values (rounded
  // after batch-norm folding, as a float16 weight store would hold them). Biases stay float32.
  if (roundToHalf)
    for (float& w : weights) w = halfToFloat(floatToHalf(w));

  auto state = std::make_shared<ConvolutionState>();
  state->weights = uploadToDevice(device, weights.data(), weights.size() * sizeof(float));
  if (!biases.empty()) state->biases = uploadToDevice(device, biases.data(), biases.size() * sizeof(float));
  const NNNeuronDescriptor& n = descriptor.fusedNeuronDescriptor();
  state->neuron = {n.neuronType(), n.a(), n.b(), n.c(), nullptr};
  if (n.neuronType() == CNNNeuronType::PReLU) {
    state->prelu = uploadToDevice(device, n.data()->data(), co * sizeof(float));
    state->neuron.prelu = static_cast<const float*>(state->prelu->data());
  }
  return state;
}

WeightLayout weightLayoutOf(const CNNConvolutionDescriptor& d, bool widthMajorSource) {
  WeightLayout l;
  l.outputs = int64_t(d.outputFeatureChannels());
  l.height = int64_t(d.kernelHeight());
  l.width = int64_t(d.kernelWidth());
  l.inner = int64_t(convolutionWeightInputChannels(d));
  l.widthMajorSource = widthMajorSource;
  return l;
}

namespace {
/// out[o][b][a][i] = in[o][a][b][i] for in = [outputs][A][B][inner].
std::vector<float> swapSpatialAxes(const std::vector<float>& in, int64_t outputs, int64_t A, int64_t B,
                                   int64_t inner) {
  std::vector<float> out(in.size());
  for (int64_t o = 0; o < outputs; ++o)
    for (int64_t a = 0; a < A; ++a)
      for (int64_t b = 0; b < B; ++b)
        std::copy_n(in.data() + ((o * A + a) * B + b) * inner, inner,
                    out.data() + ((o * B + b) * A + a) * inner);
  return out;
}
}  // namespace

std::vector<float> weightsToKernelOrder(std::vector<float> weights, const WeightLayout& l) {
  if (!l.widthMajorSource || l.width == 1 || l.height == 1) return weights;
  return swapSpatialAxes(weights, l.outputs, l.width, l.height, l.inner);
}

std::vector<float> weightsToSourceOrder(std::vector<float> weights, const WeightLayout& l) {
  if (!l.widthMajorSource || l.width == 1 || l.height == 1) return weights;
  return swapSpatialAxes(weights, l.outputs, l.height, l.width, l.inner);
}

void checkCommandBuffer(const std::string& who, const CommandBufferPtr& commandBuffer,
                        const DevicePtr& device) {
  if (!commandBuffer) throw InvalidArgument(who + ": commandBuffer = null");
  if (commandBuffer->device() != device) throw InvalidArgument(who + ": command buffer is on another device");
  if (commandBuffer->isCommitted()) throw InvalidArgument(who + ": command buffer is already committed");
}

namespace {

void encodeTransfer(CommandBuffer& commandBuffer, const DevicePtr& device, const std::string& name,
                    WeightTransferProblem p, StoragePtr from, StoragePtr to) {
  const bool cuda = device->kind() == DeviceKind::CUDA;
  commandBuffer.encodeWork(name, [p, from, to, cuda](QueueContext& ctx) {
#if defined(MPSNN_HAVE_CUDA)
    if (cuda) return cudaTransferWeights(p, ctx);
#else
    (void)cuda;
#endif
    cpuTransferWeights(p, ctx);
  });
}

float* at(const StoragePtr& s, uint64_t byteOffset) {
  return reinterpret_cast<float*>(static_cast<char*>(s->data()) + byteOffset);
}

}  // namespace

CNNConvolutionWeightsAndBiasesStatePtr encodeExportWeightsAndBiases(
    CommandBuffer& commandBuffer, const std::string& who, const DevicePtr& device,
    const CNNConvolutionDescriptor& descriptor, const ConvolutionState& current, const WeightLayout& layout) {
  auto state = CNNConvolutionWeightsAndBiasesState::make(device, descriptor);  // zero-filled
  WeightTransferProblem w;
  w.source = at(current.weights, 0);
  w.destination = at(state->weights()->storage(), 0);
  w.outputs = layout.outputs;
  w.rows = layout.height;
  w.columns = layout.width;
  w.inner = layout.inner;
  w.swapRowsAndColumns = layout.widthMajorSource;
  encodeTransfer(commandBuffer, device, who + ".exportWeightsAndBiases,weights", w, current.weights,
                 state->weights()->storage());
  if (current.biases) {
    WeightTransferProblem b;
    b.source = at(current.biases, 0);
    b.destination = at(state->biases()->storage(), 0);
    b.outputs = layout.outputs;
    encodeTransfer(commandBuffer, device, who + ".exportWeightsAndBiases,biases", b, current.biases,
                   state->biases()->storage());
  }
  return state;
}

std::shared_ptr<ConvolutionState> encodeReloadWeightsAndBiases(
    CommandBuffer& commandBuffer, const std::string& who, const DevicePtr& device,
    const ConvolutionState& current, const CNNConvolutionWeightsAndBiasesState& state,
    const WeightLayout& layout, bool roundToHalf) {
  const std::string w = who + ": reloadWeightsAndBiases: ";
  auto check = [&](const BufferPtr& buffer, uint64_t offset, uint64_t values, const char* role) {
    if (buffer->device() != device)
      throw InvalidArgument(w + "state." + role + " is on device " + buffer->device()->name() +
                            ", the kernel on " + device->name());
    const uint64_t bytes = values * sizeof(float);
    if (offset > buffer->length() || bytes > buffer->length() - offset)
      throw InvalidArgument(w + "state." + role + " holds " + str(buffer->length()) +
                            " bytes; the kernel needs " + str(bytes) + " from " + role +
                            "Offset = " + str(offset));
  };
  if (!state.weights()) throw InvalidArgument(w + "state.weights = null");
  if (state.weightsOffset() % 4)
    throw InvalidArgument(w + "state.weightsOffset = " + str(state.weightsOffset()) +
                          " is not a multiple of 4");
  check(state.weights(), state.weightsOffset(), uint64_t(layout.count()), "weights");
  if (state.biases()) {
    if (state.biasesOffset() % 4)
      throw InvalidArgument(w + "state.biasesOffset = " + str(state.biasesOffset()) +
                            " is not a multiple of 4");
    check(state.biases(), state.biasesOffset(), uint64_t(layout.outputs), "biases");
  }

  auto next = std::make_shared<ConvolutionState>();
  next->neuron = current.neuron;
  next->prelu = current.prelu;
  next->weights = std::make_shared<Storage>(device, size_t(layout.count()) * sizeof(float));
  WeightTransferProblem p;
  p.source = at(state.weights()->storage(), state.weightsOffset());
  p.destination = at(next->weights, 0);
  p.outputs = layout.outputs;
  // The state is in the data source's order: [o][W][H][i] when width-major.
  p.rows = layout.widthMajorSource ? layout.width : layout.height;
  p.columns = layout.widthMajorSource ? layout.height : layout.width;
  p.inner = layout.inner;
  p.swapRowsAndColumns = layout.widthMajorSource;
  p.roundToHalf = roundToHalf;
  encodeTransfer(commandBuffer, device, who + ".reloadWeightsAndBiases,weights", p,
                 state.weights()->storage(), next->weights);
  if (state.biases()) {
    next->biases = std::make_shared<Storage>(device, size_t(layout.outputs) * sizeof(float));
    WeightTransferProblem b;
    b.source = at(state.biases()->storage(), state.biasesOffset());
    b.destination = at(next->biases, 0);
    b.outputs = layout.outputs;
    encodeTransfer(commandBuffer, device, who + ".reloadWeightsAndBiases,biases", b,
                   state.biases()->storage(), next->biases);
  }
  return next;
}

void encodeConvolutionProblem(CommandBuffer& commandBuffer, const DevicePtr& device, const char* kernel,
                              ConvolutionProblem p, const std::shared_ptr<ConvolutionState>& state,
                              const std::string& extra) {
  p.neuron = state->neuron;
  p.weights = static_cast<const float*>(state->weights->data());
  p.biases = state->biases ? static_cast<const float*>(state->biases->data()) : nullptr;
  p.cache = state->cache.get();
#if defined(MPSNN_HAVE_CUDA)
  auto& list =
      device->kind() == DeviceKind::CUDA ? cudaConvolutionImplementations() : cpuConvolutionImplementations();
#else
  (void)device;
  auto& list = cpuConvolutionImplementations();
#endif
  // Not chooseImplementation: the test hook may override MPSNN_FORCE_PLAIN in both directions.
  const Implementation<ConvolutionProblem>* chosen = &list.back();
  if (!forcePlainConvolution())
    for (const auto& candidate : list)
      if (candidate.supports(p)) {
        chosen = &candidate;
        break;
      }
  const auto& impl = *chosen;
  gLastImplementation = impl.name;
  auto keep = state;  // the work item owns the weights and the cache it points to
  auto run = impl.run;
  commandBuffer.encodeWork(describeWork(kernel, impl.name, p.io, extra),
                           [p, keep, run](QueueContext& ctx) { run(p, ctx); });
}

}  // namespace detail

// ---------------------------------------------------------------------------------------------
// CNNConvolutionWeightsAndBiasesState (spec 01 §9, spec 10 §10.4.3)

namespace {

const char* kStateName = "CNNConvolutionWeightsAndBiasesState";

void checkSubRange(const BufferPtr& buffer, uint64_t offset, uint64_t values, const char* role) {
  const std::string who = std::string(kStateName) + ": ";
  if (offset % 4) throw InvalidArgument(who + role + "Offset = " + str(offset) + " is not a multiple of 4");
  const uint64_t bytes = values * sizeof(float);
  if (offset > buffer->length() || bytes > buffer->length() - offset)
    throw InvalidArgument(who + role + "Offset = " + str(offset) + " + " + str(bytes) + " bytes of " + role +
                          " exceed the buffer length " + str(buffer->length()));
}

}  // namespace

CNNConvolutionWeightsAndBiasesState::CNNConvolutionWeightsAndBiasesState(BufferPtr weights, BufferPtr biases)
    : weights_(std::move(weights)), biases_(std::move(biases)) {
  if (!weights_) throw InvalidArgument(std::string(kStateName) + ": weights = null");
  if (biases_ && biases_->device() != weights_->device())
    throw InvalidArgument(std::string(kStateName) + ": biases are on device " + biases_->device()->name() +
                          ", weights on " + weights_->device()->name());
}

CNNConvolutionWeightsAndBiasesState::CNNConvolutionWeightsAndBiasesState(
    DevicePtr device, const CNNConvolutionDescriptor& descriptor) {
  if (!device) throw InvalidArgument(std::string(kStateName) + ": device = null");
  descriptor.validate(kStateName);
  weights_ = Buffer::make(device, convolutionWeightCount(descriptor) * sizeof(float));
  biases_ = Buffer::make(device, descriptor.outputFeatureChannels() * sizeof(float));
}

CNNConvolutionWeightsAndBiasesState::CNNConvolutionWeightsAndBiasesState(
    BufferPtr weights, uint64_t weightsOffset, BufferPtr biases, uint64_t biasesOffset,
    const CNNConvolutionDescriptor& descriptor)
    : CNNConvolutionWeightsAndBiasesState(std::move(weights), std::move(biases)) {
  descriptor.validate(kStateName);
  checkSubRange(weights_, weightsOffset, convolutionWeightCount(descriptor), "weights");
  if (biases_) checkSubRange(biases_, biasesOffset, descriptor.outputFeatureChannels(), "biases");
  weightsOffset_ = weightsOffset;
  biasesOffset_ = biases_ ? biasesOffset : 0;
}

uint64_t CNNConvolutionWeightsAndBiasesState::resourceSize() const {
  uint64_t bytes = weights_->length();
  if (biases_ && biases_->storage() != weights_->storage()) bytes += biases_->length();
  return bytes;
}

// ---------------------------------------------------------------------------------------------
// CNNConvolution

CNNConvolution::CNNConvolution(DevicePtr device, CNNConvolutionDataSourcePtr dataSource)
    : CNNConvolution(std::move(device), std::move(dataSource), "CNNConvolution") {}

CNNConvolution::CNNConvolution(DevicePtr device, CNNConvolutionDataSourcePtr dataSource, const char* who)
    : CNNKernel(std::move(device)), dataSource_(std::move(dataSource)) {
  if (!dataSource_) throw InvalidArgument(std::string(who) + ": dataSource = null");
  loadFromDataSource(false, who);
}

CNNConvolution::CNNConvolution(DevicePtr device, const CNNConvolutionDescriptor& descriptor,
                               const float* weights, const float* biases, CNNConvolutionFlags)
    : CNNConvolution(std::move(device), descriptor, weights, biases, "CNNConvolution") {}

CNNConvolution::CNNConvolution(DevicePtr device, const CNNConvolutionDescriptor& descriptor,
                               const float* weights, const float* biases, const char* who)
    : CNNKernel(std::move(device)) {
  descriptor.validate(who);
  if (!weights) throw InvalidArgument(std::string(who) + ": weights = null");
  adoptDescriptor(descriptor);
  std::vector<float> w(weights, weights + convolutionWeightCount(descriptor_));
  std::vector<float> b;
  if (biases) b.assign(biases, biases + descriptor_.outputFeatureChannels());
  // CHOICE: the legacy initializer's float32 weights are used as given (no float16 rounding).
  setWeights(descriptor_, std::move(w), std::move(b), false);
}

CNNConvolution::~CNNConvolution() = default;

uint64_t CNNConvolution::channelMultiplier() const {
  return descriptor_.isDepthWise() ? descriptor_.outputFeatureChannels() / descriptor_.inputFeatureChannels()
                                   : 0;
}

void CNNConvolution::adoptDescriptor(const CNNConvolutionDescriptor& desc) {
  descriptor_ = desc;
  kernelWidth_ = desc.kernelWidth();
  kernelHeight_ = desc.kernelHeight();
  strideX_ = desc.strideInPixelsX();
  strideY_ = desc.strideInPixelsY();
  dilationX_ = desc.dilationRateX();
  dilationY_ = desc.dilationRateY();
}

void CNNConvolution::loadFromDataSource(bool reload, const std::string& who) {
  LoadedConvolution loaded =
      loadConvolutionDataSource(who, *dataSource_, accumulatorPrecision_, reload ? &descriptor_ : nullptr);
  if (!reload) {
    adoptDescriptor(loaded.descriptor);
    label_ = loaded.label;
  }
  // Batch norm and the neuron come from the kernel's own copy of the descriptor (spec 01 §2.1).
  setWeights(descriptor_, std::move(loaded.weights), std::move(loaded.biases), loaded.roundToHalf);
}

void CNNConvolution::reloadWeightsAndBiasesFromDataSource() {
  if (!dataSource_)
    throw InvalidArgument(std::string(className()) +
                          ": reloadWeightsAndBiasesFromDataSource needs a dataSource (this kernel was built "
                          "from float weights: "
                          "dataSource = null)");
  loadFromDataSource(true, className());
}

void CNNConvolution::setWeights(const CNNConvolutionDescriptor& descriptor, std::vector<float> weights,
                                std::vector<float> biases, bool roundToHalf) {
  weights = weightsToKernelOrder(std::move(weights), weightLayoutOf(descriptor, weightsWidthMajor()));
  auto state = makeConvolutionState(device_, descriptor, weights, biases, roundToHalf);
  weights_ = std::move(weights);
  biases_ = std::move(biases);
  state_ = std::move(state);
  roundWeightsToHalf_ = roundToHalf;
  weightsOnDeviceOnly_ = false;
}

void CNNConvolution::reloadWeightsAndBiases(CommandBufferPtr commandBuffer,
                                            const CNNConvolutionWeightsAndBiasesState& state) {
  const std::string who = className();
  checkCommandBuffer(who, commandBuffer, device_);
  state_ =
      encodeReloadWeightsAndBiases(*commandBuffer, who, device_, *state_, state,
                                   weightLayoutOf(descriptor_, weightsWidthMajor()), roundWeightsToHalf_);
  weightsOnDeviceOnly_ = true;
}

CNNConvolutionWeightsAndBiasesStatePtr CNNConvolution::exportWeightsAndBiases(CommandBufferPtr commandBuffer,
                                                                              bool) {
  const std::string who = className();
  checkCommandBuffer(who, commandBuffer, device_);
  return encodeExportWeightsAndBiases(*commandBuffer, who, device_, descriptor_, *state_,
                                      weightLayoutOf(descriptor_, weightsWidthMajor()));
}

uint64_t CNNConvolution::destinationFeatureChannels(uint64_t) const {
  const uint64_t r = descriptor_.subPixelScaleFactor();
  return descriptor_.outputFeatureChannels() / (r * r);
}

void CNNConvolution::autoGeometry(const Image& source, NNPaddingMethod method, uint64_t& width,
                                  uint64_t& height, Offset& offset) const {
  CNNKernel::autoGeometry(source, method, width, height, offset);
  width *= descriptor_.subPixelScaleFactor();  // spec 01 §4.2: times r for sub-pixel
  height *= descriptor_.subPixelScaleFactor();
}

void CNNConvolution::validateImages(const Image& source, const Image& destination) const {
  CNNKernel::validateImages(source, destination);
  validateConvolutionFormats(className(), source, destination);
  const std::string who = className();
  if (offset_.x < -kMaxOffset || offset_.x > kMaxOffset)
    throw InvalidArgument(who + ": offset.x = " + std::to_string(offset_.x) +
                          " is out of the supported range");
  if (offset_.y < -kMaxOffset || offset_.y > kMaxOffset)
    throw InvalidArgument(who + ": offset.y = " + std::to_string(offset_.y) +
                          " is out of the supported range");
}

void CNNConvolution::encodeProblem(CommandBuffer& commandBuffer, const UnaryProblem& problem) {
  const CNNConvolutionDescriptor& d = descriptor_;
  ConvolutionProblem p;
  p.io = problem;
  p.kernelWidth = int64_t(d.kernelWidth());
  p.kernelHeight = int64_t(d.kernelHeight());
  p.strideX = int64_t(d.strideInPixelsX());
  p.strideY = int64_t(d.strideInPixelsY());
  p.dilationX = int64_t(d.dilationRateX());
  p.dilationY = int64_t(d.dilationRateY());
  p.inputChannels = int64_t(d.inputFeatureChannels());
  p.outputChannels = int64_t(d.outputFeatureChannels());
  p.groups = d.isDepthWise() ? p.inputChannels : int64_t(d.groups());
  p.subPixel = int64_t(d.subPixelScaleFactor());
  p.allowTF32 = allowTF32_;
  const std::string extra = "k=" + str(d.kernelWidth()) + "x" + str(d.kernelHeight()) +
                            ",s=" + str(d.strideInPixelsX()) + "x" + str(d.strideInPixelsY()) +
                            ",d=" + str(d.dilationRateX()) + "x" + str(d.dilationRateY()) +
                            ",g=" + str(uint64_t(p.groups)) + ",r=" + str(d.subPixelScaleFactor()) +
                            ",neuron=" + toString(state_->neuron.type);
  encodeConvolutionProblem(commandBuffer, device_, className(), p, state_, extra);
}

}  // namespace mpsnn
