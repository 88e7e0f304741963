// Training states that several families share: the convolution gradient state, the batch-norm
// state and the gamma/beta and mean/variance carriers (spec 10 §10.4.2, §10.9).
#include "kernels/convolution_weights.h"
#include "mpsnn/convolution.h"
#include "mpsnn/error.h"
#include "mpsnn/normalization.h"
#include "mpsnn/runtime.h"

namespace mpsnn {

namespace {

BufferPtr floats(const DevicePtr& device, uint64_t count) { return Buffer::make(device, count * sizeof(float)); }

void checkPair(const char* who, const BufferPtr& a, const BufferPtr& b, const char* aName, const char* bName) {
  if (!a) throw InvalidArgument(std::string(who) + ": " + aName + " = null");
  if (!b) throw InvalidArgument(std::string(who) + ": " + bName + " = null");
  if (a->device() != b->device())
    throw InvalidArgument(std::string(who) + ": " + aName + " and " + bName + " are on different devices");
  if (a->length() != b->length() || a->length() % sizeof(float))
    throw InvalidArgument(std::string(who) + ": " + aName + " is " + std::to_string(a->length()) + " bytes, " + bName +
                          " " + std::to_string(b->length()) + " (equal lengths of float32 values)");
}

/// Exposes State's protected initialisation to the factories below.
template <class T>
struct Constructible final : T {
  explicit Constructible(DevicePtr device, const CommandBufferPtr& cb) { this->initialize(std::move(device), cb); }
};

}  // namespace

// CNNConvolutionGradientState

std::shared_ptr<CNNConvolutionGradientState> CNNConvolutionGradientState::make(
    std::shared_ptr<CNNConvolution> convolution, CommandBufferPtr temporaryOn) {
  if (!convolution) throw InvalidArgument("CNNConvolutionGradientState: convolution = null");
  auto state = std::make_shared<Constructible<CNNConvolutionGradientState>>(convolution->device(), temporaryOn);
  const CNNConvolutionDescriptor& d = convolution->dataSource() ? convolution->dataSource()->descriptor()
                                                                : throw InvalidArgument(
                                                                      "CNNConvolutionGradientState: the convolution "
                                                                      "has no data source");
  state->gradientForWeights_ = floats(convolution->device(), detail::convolutionWeightCount(d));
  state->gradientForBiases_ = floats(convolution->device(), d.outputFeatureChannels());
  state->convolution_ = std::move(convolution);
  return state;
}

uint64_t CNNConvolutionGradientState::resourceSize() const {
  return (gradientForWeights_ ? gradientForWeights_->length() : 0) +
         (gradientForBiases_ ? gradientForBiases_->length() : 0);
}

void CNNConvolutionGradientState::releaseResources() {
  gradientForWeights_.reset();
  gradientForBiases_.reset();
}

// Gamma/beta and mean/variance carriers

CNNNormalizationGammaAndBetaState::CNNNormalizationGammaAndBetaState(BufferPtr gamma, BufferPtr beta)
    : gamma_(std::move(gamma)), beta_(std::move(beta)) {
  checkPair("CNNNormalizationGammaAndBetaState", gamma_, beta_, "gamma", "beta");
  device_ = gamma_->device();
}

std::shared_ptr<CNNNormalizationGammaAndBetaState> CNNNormalizationGammaAndBetaState::temporary(
    CommandBufferPtr cb, uint64_t channels) {
  if (!cb) throw InvalidArgument("CNNNormalizationGammaAndBetaState: commandBuffer = null");
  if (channels == 0) throw InvalidArgument("CNNNormalizationGammaAndBetaState: numberOfFeatureChannels = 0");
  struct Temporary final : CNNNormalizationGammaAndBetaState {
    Temporary(const CommandBufferPtr& c, uint64_t n)
        : CNNNormalizationGammaAndBetaState(floats(c->device(), n), floats(c->device(), n)) {
      initialize(c->device(), c);
    }
  };
  return std::make_shared<Temporary>(cb, channels);
}

void CNNNormalizationGammaAndBetaState::releaseResources() {
  gamma_.reset();
  beta_.reset();
}

CNNNormalizationMeanAndVarianceState::CNNNormalizationMeanAndVarianceState(BufferPtr mean, BufferPtr variance)
    : mean_(std::move(mean)), variance_(std::move(variance)) {
  checkPair("CNNNormalizationMeanAndVarianceState", mean_, variance_, "mean", "variance");
  device_ = mean_->device();
}

std::shared_ptr<CNNNormalizationMeanAndVarianceState> CNNNormalizationMeanAndVarianceState::temporary(
    CommandBufferPtr cb, uint64_t channels) {
  if (!cb) throw InvalidArgument("CNNNormalizationMeanAndVarianceState: commandBuffer = null");
  if (channels == 0) throw InvalidArgument("CNNNormalizationMeanAndVarianceState: numberOfFeatureChannels = 0");
  struct Temporary final : CNNNormalizationMeanAndVarianceState {
    Temporary(const CommandBufferPtr& c, uint64_t n)
        : CNNNormalizationMeanAndVarianceState(floats(c->device(), n), floats(c->device(), n)) {
      initialize(c->device(), c);
    }
  };
  return std::make_shared<Temporary>(cb, channels);
}

void CNNNormalizationMeanAndVarianceState::releaseResources() {
  mean_.reset();
  variance_.reset();
}

// CNNBatchNormalizationState

std::shared_ptr<CNNBatchNormalizationState> CNNBatchNormalizationState::make(
    std::shared_ptr<CNNBatchNormalization> batchNormalization, uint64_t channels, CommandBufferPtr temporaryOn) {
  if (!batchNormalization) throw InvalidArgument("CNNBatchNormalizationState: batchNormalization = null");
  if (channels == 0) throw InvalidArgument("CNNBatchNormalizationState: numberOfFeatureChannels = 0");
  const DevicePtr device = batchNormalization->device();
  auto s = std::make_shared<Constructible<CNNBatchNormalizationState>>(device, temporaryOn);
  s->gamma_ = floats(device, channels);
  s->beta_ = floats(device, channels);
  s->mean_ = floats(device, channels);
  s->variance_ = floats(device, channels);
  s->gradientForGamma_ = floats(device, channels);
  s->gradientForBeta_ = floats(device, channels);
  s->channels_ = channels;
  s->batchNormalization_ = std::move(batchNormalization);
  return s;
}

void CNNBatchNormalizationState::reset() {
  const std::vector<float> zeros(channels_, 0.0f);
  for (const BufferPtr& b : {mean_, variance_, gradientForGamma_, gradientForBeta_})
    if (b) b->writeBytes(zeros.data(), 0, channels_ * sizeof(float));
}

uint64_t CNNBatchNormalizationState::resourceSize() const { return gamma_ ? 6 * channels_ * sizeof(float) : 0; }

void CNNBatchNormalizationState::releaseResources() {
  gamma_.reset();
  beta_.reset();
  mean_.reset();
  variance_.reset();
  gradientForGamma_.reset();
  gradientForBeta_.reset();
}

}  // namespace mpsnn
