// The normalization kernels (spec 04 §3–§7): construction checks, data-source loading, encode-time
// checks and dispatch to a backend.
#include "mpsnn/normalization.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "kernels/describe.h"
#include "kernels/normalization_impl.h"
#include "mpsnn/error.h"

namespace mpsnn {

using namespace detail;

namespace {

// CHOICE (docs/softmax-normalization.md): window sizes up to 2^31 − 1, channel counts up to
// 2^31 − 1 and window positions within ±2^62 keep every coordinate and size the backends compute
// inside int64 with room to spare. Metal textures, which back MPS's images, are at most 16384
// pixels wide, so no meaningful input is refused.
constexpr uint64_t kMaxWindowParameter = (uint64_t(1) << 31) - 1;
constexpr uint64_t kMaxFeatureChannels = (uint64_t(1) << 31) - 1;
constexpr __int128 kMaxCoordinate = __int128(1) << 62;

std::string str(uint64_t v) { return std::to_string(v); }

void requireWindowParameter(const char* who, const char* property, uint64_t value) {
  if (value == 0) throw InvalidArgument(std::string(who) + ": " + property + " = 0 (must be at least 1)");
  if (value > kMaxWindowParameter)
    throw InvalidArgument(std::string(who) + ": " + property + " = " + str(value) +
                          " exceeds the supported maximum " + str(kMaxWindowParameter));
}

void requireSquareUnderStrictValidation(const char* who, uint64_t kernelWidth, uint64_t kernelHeight) {
  if (strictValidation() && kernelWidth != kernelHeight)
    throw InvalidArgument(std::string(who) + ": kernelWidth = " + str(kernelWidth) +
                          " differs from kernelHeight = " + str(kernelHeight) + " (strict validation)");
}

/// Spec 04 §3/§4 CHOICE: "must be non-negative" is enforced; NaN is not ≥ 0 either.
void requireNonNegativeAlpha(const char* who, float alpha) {
  if (!(alpha >= 0.0f))
    throw InvalidArgument(std::string(who) + ": alpha = " + std::to_string(alpha) + " (must be >= 0)");
}

/// Every window tap of every destination pixel must lie within ±2^62 (windows of `kernel` taps
/// centred on offset + [0, extent)).
void requireOffsetInRange(const char* who, const Offset& offset, uint64_t kernelWidth, uint64_t kernelHeight,
                          const Image& destination) {
  auto check = [&](int64_t value, uint64_t kernel, uint64_t extent, const char* property) {
    const __int128 lo = __int128(value) - __int128(kernel);
    const __int128 hi = __int128(value) + __int128(extent) + __int128(kernel);
    if (lo < -kMaxCoordinate || hi > kMaxCoordinate)
      throw InvalidArgument(std::string(who) + ": " + property + " = " + std::to_string(value) +
                            " is beyond the supported coordinate range of +-2^62 pixels");
  };
  check(offset.x, kernelWidth, destination.width(), "offset.x");
  check(offset.y, kernelHeight, destination.height(), "offset.y");
}

/// Spec 00 §4.3: kernels with a fixed channel count need C_read ≥ numberOfFeatureChannels.
void requireSourceChannels(const char* who, const Image& source, uint64_t sourceOffset, uint64_t maxCount,
                           uint64_t required) {
  const uint64_t cRead = std::min(maxCount, source.featureChannels() - sourceOffset);
  if (cRead < required)
    throw InvalidArgument(std::string(who) + ": source provides " + str(cRead) +
                          " feature channels from sourceFeatureChannelOffset " + str(sourceOffset) +
                          ", numberOfFeatureChannels = " + str(required));
}

void requireChannelCount(const char* who, size_t channels) {
  if (channels == 0) throw InvalidArgument(std::string(who) + ": dataSource.numberOfFeatureChannels = 0");
  if (channels > kMaxFeatureChannels)
    throw InvalidArgument(std::string(who) + ": dataSource.numberOfFeatureChannels = " + str(channels) +
                          " exceeds the supported maximum " + str(kMaxFeatureChannels));
}

/// `count` floats from `values`, or `count` copies of `fallback` when the data source gives null.
std::vector<float> copyOrFill(const float* values, uint64_t count, float fallback) {
  return values ? std::vector<float>(values, values + count) : std::vector<float>(count, fallback);
}

/// Calls purge() when a load() that succeeded goes out of scope, also when the contents are rejected.
template <class DataSource>
struct PurgeOnExit {
  DataSource& dataSource;
  ~PurgeOnExit() {
    try {
      dataSource.purge();
    } catch (...) {
    }
  }
};

template <class Problem>
ImplementationList<Problem>& backendList(const Device& device, ImplementationList<Problem>& cpu,
                                         ImplementationList<Problem>* cuda) {
  return device.kind() == DeviceKind::CUDA && cuda ? *cuda : cpu;
}

std::string floatText(float v) {
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%g", double(v));
  return buffer;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// CNNCrossChannelNormalization

CNNCrossChannelNormalization::CNNCrossChannelNormalization(DevicePtr device, uint64_t kernelSize)
    : CNNKernel(std::move(device)),
      kernelSize_(kernelSize),
      primitives_(std::make_shared<NormalizationPrimitiveCache>()) {
  requireWindowParameter(className(), "kernelSize", kernelSize);
}

void CNNCrossChannelNormalization::setAlpha(float alpha) {
  requireNonNegativeAlpha(className(), alpha);
  alpha_ = alpha;
}

void CNNCrossChannelNormalization::validateImages(const Image& source, const Image& destination) const {
  CNNKernel::validateImages(source, destination);  // edgeMode Zero or Clamp only
  requireOffsetInRange(className(), offset_, 1, 1, destination);
}

void CNNCrossChannelNormalization::encodeProblem(CommandBuffer& cb, const UnaryProblem& problem) {
  CrossChannelProblem p;
  p.io = problem;
  p.lrn.kernelSize = int64_t(kernelSize_);
  p.lrn.below = int64_t(kernelSize_ / 2);
  p.lrn.above = int64_t((kernelSize_ - 1) / 2);
  p.lrn.alpha = alpha_;
  p.lrn.alphaOverSize = float(double(alpha_) / double(kernelSize_));
  p.lrn.beta = beta_;
  p.lrn.delta = delta_;
  p.primitives = primitives_;
#if defined(MPSNN_HAVE_CUDA)
  auto& list = backendList(*device_, cpuCrossChannelImplementations(), &cudaCrossChannelImplementations());
#else
  auto& list = backendList<CrossChannelProblem>(*device_, cpuCrossChannelImplementations(), nullptr);
#endif
  const auto& impl = chooseImplementation(list, p, className());
  auto run = impl.run;
  const std::string extra = "size=" + str(kernelSize_) + ",alpha=" + floatText(alpha_) +
                            ",beta=" + floatText(beta_) + ",delta=" + floatText(delta_) +
                            ",edge=" + toString(edgeMode_);
  cb.encodeWork(describeWork(className(), impl.name, problem, extra),
                [p, run](QueueContext& ctx) { run(p, ctx); });
}

// ---------------------------------------------------------------------------------------------
// CNNSpatialNormalization and CNNLocalContrastNormalization

namespace {

void encodeWindowNormalization(CommandBuffer& cb, const Device& device, const UnaryProblem& problem,
                               const WindowParams& params, const char* who) {
  WindowProblem p{problem, params};
#if defined(MPSNN_HAVE_CUDA)
  auto& list =
      backendList(device, cpuWindowNormalizationImplementations(), &cudaWindowNormalizationImplementations());
#else
  auto& list = backendList<WindowProblem>(device, cpuWindowNormalizationImplementations(), nullptr);
#endif
  const auto& impl = chooseImplementation(list, p, who);
  auto run = impl.run;
  std::string extra = std::to_string(params.kernelWidth) + "x" + std::to_string(params.kernelHeight) +
                      ",alpha=" + floatText(params.alpha) + ",beta=" + floatText(params.beta) +
                      ",delta=" + floatText(params.delta) + ",edge=" + toString(problem.edgeMode);
  if (params.kind == WindowNormalization::LocalContrast)
    extra += ",p0=" + floatText(params.p0) + ",pm=" + floatText(params.pm) + ",ps=" + floatText(params.ps);
  cb.encodeWork(describeWork(who, impl.name, problem, extra), [p, run](QueueContext& ctx) { run(p, ctx); });
}

}  // namespace

CNNSpatialNormalization::CNNSpatialNormalization(DevicePtr device, uint64_t kernelWidth,
                                                 uint64_t kernelHeight)
    : CNNKernel(std::move(device)) {
  requireWindowParameter(className(), "kernelWidth", kernelWidth);
  requireWindowParameter(className(), "kernelHeight", kernelHeight);
  requireSquareUnderStrictValidation(className(), kernelWidth, kernelHeight);
  kernelWidth_ = kernelWidth;
  kernelHeight_ = kernelHeight;
}

void CNNSpatialNormalization::setAlpha(float alpha) {
  requireNonNegativeAlpha(className(), alpha);
  alpha_ = alpha;
}

void CNNSpatialNormalization::validateImages(const Image& source, const Image& destination) const {
  CNNKernel::validateImages(source, destination);
  requireOffsetInRange(className(), offset_, kernelWidth_, kernelHeight_, destination);
}

void CNNSpatialNormalization::encodeProblem(CommandBuffer& cb, const UnaryProblem& problem) {
  WindowParams params;
  params.kind = WindowNormalization::Spatial;
  params.kernelWidth = int64_t(kernelWidth_);
  params.kernelHeight = int64_t(kernelHeight_);
  params.alpha = alpha_;
  params.beta = beta_;
  params.delta = delta_;
  encodeWindowNormalization(cb, *device_, problem, params, className());
}

CNNLocalContrastNormalization::CNNLocalContrastNormalization(DevicePtr device, uint64_t kernelWidth,
                                                             uint64_t kernelHeight)
    : CNNKernel(std::move(device)) {
  requireWindowParameter(className(), "kernelWidth", kernelWidth);
  requireWindowParameter(className(), "kernelHeight", kernelHeight);
  requireSquareUnderStrictValidation(className(), kernelWidth, kernelHeight);
  kernelWidth_ = kernelWidth;
  kernelHeight_ = kernelHeight;
}

void CNNLocalContrastNormalization::validateImages(const Image& source, const Image& destination) const {
  CNNKernel::validateImages(source, destination);
  requireOffsetInRange(className(), offset_, kernelWidth_, kernelHeight_, destination);
}

void CNNLocalContrastNormalization::encodeProblem(CommandBuffer& cb, const UnaryProblem& problem) {
  WindowParams params;
  params.kind = WindowNormalization::LocalContrast;
  params.kernelWidth = int64_t(kernelWidth_);
  params.kernelHeight = int64_t(kernelHeight_);
  params.alpha = alpha_;
  params.beta = beta_;
  params.delta = delta_;
  params.p0 = p0_;
  params.pm = pm_;
  params.ps = ps_;
  encodeWindowNormalization(cb, *device_, problem, params, className());
}

// ---------------------------------------------------------------------------------------------
// CNNBatchNormalization

CNNBatchNormalization::CNNBatchNormalization(DevicePtr device, CNNBatchNormalizationDataSourcePtr dataSource)
    : CNNBatchNormalization(std::move(device), std::move(dataSource), std::nullopt) {}

CNNBatchNormalization::CNNBatchNormalization(DevicePtr device, CNNBatchNormalizationDataSourcePtr dataSource,
                                             std::optional<NNNeuronDescriptor> fusedNeuronDescriptor)
    : CNNKernel(std::move(device)), dataSource_(std::move(dataSource)) {
  const std::string who = className();
  if (!dataSource_) throw InvalidArgument(who + ": dataSource = null");
  if (fusedNeuronDescriptor) {
    fusedNeuronDescriptor->validate((who + ": fusedNeuronDescriptor").c_str());
    neuron_ = *fusedNeuronDescriptor;
  }
  loadFromDataSource(Parameters::All);
  if (neuron_.neuronType() == CNNNeuronType::PReLU) {
    if (neuron_.data()->size() < numberOfFeatureChannels_)
      throw InvalidArgument(who + ": fusedNeuronDescriptor: PReLU data has " + str(neuron_.data()->size()) +
                            " slopes, numberOfFeatureChannels = " + str(numberOfFeatureChannels_));
    preluOnDevice_ =
        uploadToDevice(device_, neuron_.data()->data(), numberOfFeatureChannels_ * sizeof(float));
  }
}

void CNNBatchNormalization::loadFromDataSource(Parameters which) {
  const std::string who = className();
  CNNBatchNormalizationDataSource& ds = *dataSource_;
  if (!ds.load()) throw InvalidArgument(who + ": dataSource.load() returned false");
  PurgeOnExit<CNNBatchNormalizationDataSource> purgeOnExit{ds};

  const size_t channels = ds.numberOfFeatureChannels();
  if (which == Parameters::All)
    requireChannelCount(who.c_str(), channels);
  else if (channels != numberOfFeatureChannels_)
    throw InvalidArgument(
        who + ": dataSource.numberOfFeatureChannels = " + str(channels) +
        " on reload, the kernel has numberOfFeatureChannels = " + str(numberOfFeatureChannels_));
  std::vector<float> gamma = gamma_, beta = beta_, mean = mean_, variance = variance_;
  if (which != Parameters::MeanAndVariance) {
    gamma = copyOrFill(ds.gamma(), channels, 1.0f);  // spec 04 §6.1 CHOICE: null gamma → 1
    beta = copyOrFill(ds.beta(), channels, 0.0f);
  }
  if (which != Parameters::GammaAndBeta) {
    mean = copyOrFill(ds.mean(), channels, 0.0f);  // CHOICE: null mean → 0, null variance → 1
    variance = copyOrFill(ds.variance(), channels, 1.0f);
  }
  std::vector<float> packed;
  packed.reserve(4 * channels);
  for (const auto* v : {&gamma, &beta, &mean, &variance}) packed.insert(packed.end(), v->begin(), v->end());
  auto onDevice = uploadToDevice(device_, packed.data(), packed.size() * sizeof(float));

  // Nothing below throws: the kernel changes completely or not at all.
  if (which == Parameters::All) {
    numberOfFeatureChannels_ = channels;
    epsilon_ = ds.epsilon().value_or(FLT_MIN);
    label_ = ds.label();
  }
  gamma_ = std::move(gamma);
  beta_ = std::move(beta);
  mean_ = std::move(mean);
  variance_ = std::move(variance);
  parametersOnDevice_ = std::move(onDevice);
}

void CNNBatchNormalization::reloadGammaAndBetaFromDataSource() {
  loadFromDataSource(Parameters::GammaAndBeta);
}

void CNNBatchNormalization::reloadMeanAndVarianceFromDataSource() {
  loadFromDataSource(Parameters::MeanAndVariance);
}

void CNNBatchNormalization::validateImages(const Image& source, const Image& destination) const {
  CNNKernel::validateImages(source, destination);
  requireSourceChannels(className(), source, sourceFeatureChannelOffset_, sourceFeatureChannelMaxCount_,
                        numberOfFeatureChannels_);
  requireOffsetInRange(className(), offset_, 1, 1, destination);
}

void CNNBatchNormalization::encodeProblem(CommandBuffer& cb, const UnaryProblem& problem) {
  BatchNormProblem p;
  p.io = problem;
  const float* parameters = static_cast<const float*>(parametersOnDevice_->data());
  const uint64_t c = numberOfFeatureChannels_;
  p.gamma = parameters;
  p.beta = parameters + c;
  p.mean = parameters + 2 * c;
  p.variance = parameters + 3 * c;
  p.epsilon = epsilon_;
  p.neuron = {neuron_.neuronType(), neuron_.a(), neuron_.b(), neuron_.c(), nullptr};
  if (preluOnDevice_) p.neuron.prelu = static_cast<const float*>(preluOnDevice_->data());
#if defined(MPSNN_HAVE_CUDA)
  auto& list = backendList(*device_, cpuBatchNormImplementations(), &cudaBatchNormImplementations());
#else
  auto& list = backendList<BatchNormProblem>(*device_, cpuBatchNormImplementations(), nullptr);
#endif
  const auto& impl = chooseImplementation(list, p, className());
  auto run = impl.run;
  auto keepParameters = parametersOnDevice_;
  auto keepPrelu = preluOnDevice_;
  std::string extra = "epsilon=" + floatText(epsilon_) + ",edge=" + toString(edgeMode_);
  if (neuron_.neuronType() != CNNNeuronType::None) extra += ",neuron=" + toString(neuron_.neuronType());
  cb.encodeWork(describeWork(className(), impl.name, problem, extra),
                [p, run, keepParameters, keepPrelu](QueueContext& ctx) { run(p, ctx); });
}

// ---------------------------------------------------------------------------------------------
// CNNInstanceNormalization

CNNInstanceNormalization::CNNInstanceNormalization(DevicePtr device,
                                                   CNNInstanceNormalizationDataSourcePtr dataSource)
    : CNNKernel(std::move(device)), dataSource_(std::move(dataSource)) {
  if (!dataSource_) throw InvalidArgument(std::string(className()) + ": dataSource = null");
  loadFromDataSource(false);
}

void CNNInstanceNormalization::loadFromDataSource(bool reload) {
  const std::string who = className();
  CNNInstanceNormalizationDataSource& ds = *dataSource_;
  if (!ds.load()) throw InvalidArgument(who + ": dataSource.load() returned false");
  PurgeOnExit<CNNInstanceNormalizationDataSource> purgeOnExit{ds};

  const size_t channels = ds.numberOfFeatureChannels();
  if (!reload)
    requireChannelCount(who.c_str(), channels);
  else if (channels != numberOfFeatureChannels_)
    throw InvalidArgument(
        who + ": dataSource.numberOfFeatureChannels = " + str(channels) +
        " on reload, the kernel has numberOfFeatureChannels = " + str(numberOfFeatureChannels_));
  std::vector<float> gamma = copyOrFill(ds.gamma(), channels, 1.0f);  // spec 04 §7 CHOICE: null → 1 / 0
  std::vector<float> beta = copyOrFill(ds.beta(), channels, 0.0f);
  std::vector<float> packed = gamma;
  packed.insert(packed.end(), beta.begin(), beta.end());
  auto onDevice = uploadToDevice(device_, packed.data(), packed.size() * sizeof(float));

  if (!reload) {
    numberOfFeatureChannels_ = channels;
    epsilon_ = ds.epsilon().value_or(FLT_MIN);
    label_ = ds.label();
  }
  gamma_ = std::move(gamma);
  beta_ = std::move(beta);
  parametersOnDevice_ = std::move(onDevice);
}

void CNNInstanceNormalization::reloadGammaAndBetaFromDataSource() { loadFromDataSource(true); }

void CNNInstanceNormalization::validateImages(const Image& source, const Image& destination) const {
  CNNKernel::validateImages(source, destination);
  requireSourceChannels(className(), source, sourceFeatureChannelOffset_, sourceFeatureChannelMaxCount_,
                        numberOfFeatureChannels_);
  requireOffsetInRange(className(), offset_, 1, 1, destination);
}

void CNNInstanceNormalization::encodeProblem(CommandBuffer& cb, const UnaryProblem& problem) {
  InstanceNormProblem p;
  p.io = problem;
  const float* parameters = static_cast<const float*>(parametersOnDevice_->data());
  p.gamma = parameters;
  p.beta = parameters + numberOfFeatureChannels_;
  p.epsilon = epsilon_;
#if defined(MPSNN_HAVE_CUDA)
  auto& list = backendList(*device_, cpuInstanceNormImplementations(), &cudaInstanceNormImplementations());
#else
  auto& list = backendList<InstanceNormProblem>(*device_, cpuInstanceNormImplementations(), nullptr);
#endif
  const auto& impl = chooseImplementation(list, p, className());
  auto run = impl.run;
  auto keepParameters = parametersOnDevice_;
  cb.encodeWork(describeWork(className(), impl.name, problem,
                             "epsilon=" + floatText(epsilon_) + ",edge=" + toString(edgeMode_)),
                [p, run, keepParameters](QueueContext& ctx) { run(p, ctx); });
}

}  // namespace mpsnn
