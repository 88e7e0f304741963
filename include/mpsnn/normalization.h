// mpsnn — normalization kernels (spec 04 §3–§7): local response normalization across channels and
// over a spatial window, local contrast normalization, batch normalization (inference) and instance
// normalization, with the data-source protocols of the last two.
#pragma once
#include <cfloat>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "mpsnn/kernel.h"
#include "mpsnn/neuron.h"

namespace mpsnn {

namespace detail {
class NormalizationPrimitiveCache;
}  // namespace detail

/// Local response normalization across feature channels (MPSCNNCrossChannelNormalization), per pixel:
///   L(k) = delta + (alpha / N) · Σ_{q ∈ Q(k)} X(q)²,   Y(k) = X(k) / L(k)^beta
///   Q(k) = [max(0, k − floor(N/2)), min(D − 1, k + floor((N − 1)/2))]
/// N = kernelSize. The divisor is always N, also where the window is clipped at the first or last
/// channel; an even N reaches one channel further toward lower indices. This is PyTorch's
/// local_response_norm(size = N, alpha, beta, k = delta). Unwindowed in x/y (edgeMode Zero or Clamp
/// decides what a pixel outside the source reads). kernelSize is read-only (1 ≤ N ≤ 2^31 − 1).
class CNNCrossChannelNormalization : public CNNKernel {
 public:
  CNNCrossChannelNormalization(DevicePtr device, uint64_t kernelSize);
  CNNCrossChannelNormalization(DevicePtr device) = delete;  // MPS marks -initWithDevice: unavailable
  static std::shared_ptr<CNNCrossChannelNormalization> make(DevicePtr device, uint64_t kernelSize) {
    return std::make_shared<CNNCrossChannelNormalization>(std::move(device), kernelSize);
  }
  const char* className() const override { return "CNNCrossChannelNormalization"; }

  /// Default 1. Must be ≥ 0: a negative (or NaN) value throws InvalidArgument (spec 04 §3 CHOICE).
  float alpha() const { return alpha_; }
  void setAlpha(float alpha);
  /// Default 5. Any value.
  float beta() const { return beta_; }
  void setBeta(float beta) { beta_ = beta; }
  /// Default 1. Any value; L ≤ 0 with a non-integer beta gives NaN or inf, not an error.
  float delta() const { return delta_; }
  void setDelta(float delta) { delta_ = delta; }
  /// The channel window N, fixed at construction (graph nodes default to 5).
  uint64_t kernelSize() const { return kernelSize_; }

 protected:
  void validateImages(const Image& source, const Image& destination) const override;
  void encodeProblem(CommandBuffer& commandBuffer, const detail::UnaryProblem& problem) override;

 private:
  uint64_t kernelSize_;
  float alpha_ = 1.0f, beta_ = 5.0f, delta_ = 1.0f;
  // Backend objects (oneDNN primitives) kept per problem shape; shared by copies of the kernel.
  std::shared_ptr<detail::NormalizationPrimitiveCache> primitives_;
};

/// Local response normalization over a kernelWidth × kernelHeight window of each channel
/// (MPSCNNSpatialNormalization):
///   Y(i,j,k) = X(i,j,k) / (delta + (alpha / (kw·kh)) · Σ_{(u,v) ∈ R(i,j)} X(u,v,k)²)^beta
/// The window of destination pixel (x, y) is centred on source pixel offset + (x, y) and covers
/// columns [centre − floor(kw/2), centre + floor((kw − 1)/2)], rows likewise. Out-of-image taps
/// follow edgeMode (Zero: contribute 0; Clamp: read the nearest edge pixel); the divisor stays
/// kw·kh. RELAXED: kernelWidth ≠ kernelHeight is accepted unless strict validation is on.
class CNNSpatialNormalization : public CNNKernel {
 public:
  CNNSpatialNormalization(DevicePtr device, uint64_t kernelWidth, uint64_t kernelHeight);
  CNNSpatialNormalization(DevicePtr device) = delete;
  static std::shared_ptr<CNNSpatialNormalization> make(DevicePtr device, uint64_t kernelWidth,
                                                       uint64_t kernelHeight) {
    return std::make_shared<CNNSpatialNormalization>(std::move(device), kernelWidth, kernelHeight);
  }
  const char* className() const override { return "CNNSpatialNormalization"; }

  /// Default 1. Must be ≥ 0 (CHOICE as CNNCrossChannelNormalization).
  float alpha() const { return alpha_; }
  void setAlpha(float alpha);
  /// Default 5.
  float beta() const { return beta_; }
  void setBeta(float beta) { beta_ = beta; }
  /// Default 1.
  float delta() const { return delta_; }
  void setDelta(float delta) { delta_ = delta; }

 protected:
  void validateImages(const Image& source, const Image& destination) const override;
  void encodeProblem(CommandBuffer& commandBuffer, const detail::UnaryProblem& problem) override;

 private:
  float alpha_ = 1.0f, beta_ = 5.0f, delta_ = 1.0f;
};

/// Local contrast normalization (MPSCNNLocalContrastNormalization), per channel, window as
/// CNNSpatialNormalization, Nw = kw·kh:
///   M   = (1/Nw) Σ_R X,   VAR = (1/Nw) Σ_R X² − M²   (population variance, never below 0)
///   Y   = pm + ps · (X − p0 · M) / (delta + alpha · VAR)^beta
/// QUIRK: the kernel's alpha defaults to 0 (a local mean subtraction); the graph node's to 1.
/// Out-of-image taps follow edgeMode and the divisor stays Nw. RELAXED as CNNSpatialNormalization.
class CNNLocalContrastNormalization : public CNNKernel {
 public:
  CNNLocalContrastNormalization(DevicePtr device, uint64_t kernelWidth, uint64_t kernelHeight);
  CNNLocalContrastNormalization(DevicePtr device) = delete;
  static std::shared_ptr<CNNLocalContrastNormalization> make(DevicePtr device, uint64_t kernelWidth,
                                                             uint64_t kernelHeight) {
    return std::make_shared<CNNLocalContrastNormalization>(std::move(device), kernelWidth, kernelHeight);
  }
  const char* className() const override { return "CNNLocalContrastNormalization"; }

  /// Default 0 (QUIRK, see the class comment). Any value.
  float alpha() const { return alpha_; }
  void setAlpha(float alpha) { alpha_ = alpha; }
  /// Default 0.5.
  float beta() const { return beta_; }
  void setBeta(float beta) { beta_ = beta; }
  /// Default 1/1024.
  float delta() const { return delta_; }
  void setDelta(float delta) { delta_ = delta; }
  /// Weight of the local mean, default 1.
  float p0() const { return p0_; }
  void setP0(float p0) { p0_ = p0; }
  /// Added to the result, default 0.
  float pm() const { return pm_; }
  void setPm(float pm) { pm_ = pm; }
  /// Scale of the result, default 1.
  float ps() const { return ps_; }
  void setPs(float ps) { ps_ = ps; }

 protected:
  void validateImages(const Image& source, const Image& destination) const override;
  void encodeProblem(CommandBuffer& commandBuffer, const detail::UnaryProblem& problem) override;

 private:
  float alpha_ = 0.0f, beta_ = 0.5f, delta_ = 1.0f / 1024.0f, p0_ = 1.0f, pm_ = 0.0f, ps_ = 1.0f;
};

// ---- batch normalization -----------------------------------------------------------------------

/// How a batch-normalization graph node gets its statistics (MPSCNNBatchNormalizationFlags, spec 04
/// §6.2, spec 13 §13.7.1). With CalculateStatisticsNever the data source's mean and variance are
/// used, as CNNBatchNormalization does.
enum class CNNBatchNormalizationFlags : uint32_t {
  Default = 0,
  CalculateStatisticsAutomatic = 0,
  CalculateStatisticsAlways = 1,
  CalculateStatisticsNever = 2,
  CalculateStatisticsMask = 3,
};

/// Gamma and beta (float32, C values each) in device buffers (MPSCNNNormalizationGammaAndBetaState):
/// what optimizers write and the normalization kernels' reloadGammaAndBeta read.
class CNNNormalizationGammaAndBetaState : public State {
 public:
  /// Both buffers non-null, of equal length, on one device.
  CNNNormalizationGammaAndBetaState(BufferPtr gamma, BufferPtr beta);
  /// A temporary state of C zero values each on `commandBuffer`.
  static std::shared_ptr<CNNNormalizationGammaAndBetaState> temporary(CommandBufferPtr commandBuffer,
                                                                      uint64_t numberOfFeatureChannels);
  BufferPtr gamma() const { return gamma_; }
  BufferPtr beta() const { return beta_; }
  uint64_t resourceSize() const override { return gamma_ ? gamma_->length() + beta_->length() : 0; }

 protected:
  void releaseResources() override;

 private:
  BufferPtr gamma_, beta_;
};
using CNNNormalizationGammaAndBetaStatePtr = std::shared_ptr<CNNNormalizationGammaAndBetaState>;

/// Mean and variance (float32, C values each) in device buffers (MPSCNNNormalizationMeanAndVarianceState),
/// what CNNBatchNormalization::reloadMeanAndVariance reads.
class CNNNormalizationMeanAndVarianceState : public State {
 public:
  CNNNormalizationMeanAndVarianceState(BufferPtr mean, BufferPtr variance);
  static std::shared_ptr<CNNNormalizationMeanAndVarianceState> temporary(CommandBufferPtr commandBuffer,
                                                                         uint64_t numberOfFeatureChannels);
  BufferPtr mean() const { return mean_; }
  BufferPtr variance() const { return variance_; }
  uint64_t resourceSize() const override { return mean_ ? mean_->length() + variance_->length() : 0; }

 protected:
  void releaseResources() override;

 private:
  BufferPtr mean_, variance_;
};
using CNNNormalizationMeanAndVarianceStatePtr = std::shared_ptr<CNNNormalizationMeanAndVarianceState>;

class CNNBatchNormalization;

/// The batch-normalization training state (MPSCNNBatchNormalizationState, spec 10 §10.9.3): one
/// object for the whole batch holding the current gamma and beta, the batch mean and variance, and
/// the accumulated gradients for gamma and beta (float32, C values each).
class CNNBatchNormalizationState : public NNGradientState {
 public:
  /// Library internal (CNNBatchNormalization's resultState… methods): zero-filled buffers of
  /// `numberOfFeatureChannels` floats, temporary on `temporaryOn` when it is not null.
  static std::shared_ptr<CNNBatchNormalizationState> make(std::shared_ptr<CNNBatchNormalization> batchNormalization,
                                                          uint64_t numberOfFeatureChannels,
                                                          CommandBufferPtr temporaryOn);
  BufferPtr gamma() const { return gamma_; }
  BufferPtr beta() const { return beta_; }
  BufferPtr mean() const { return mean_; }
  BufferPtr variance() const { return variance_; }
  BufferPtr gradientForGamma() const { return gradientForGamma_; }
  BufferPtr gradientForBeta() const { return gradientForBeta_; }
  std::shared_ptr<CNNBatchNormalization> batchNormalization() const { return batchNormalization_; }
  uint64_t numberOfFeatureChannels() const { return channels_; }
  /// Zeroes every accumulator (statistics sums and counts, gradients) — host side, synchronous.
  virtual void reset();
  uint64_t resourceSize() const override;

 protected:
  CNNBatchNormalizationState() = default;
  void releaseResources() override;
  BufferPtr gamma_, beta_, mean_, variance_, gradientForGamma_, gradientForBeta_;
  std::shared_ptr<CNNBatchNormalization> batchNormalization_;
  uint64_t channels_ = 0;
};
using CNNBatchNormalizationStatePtr = std::shared_ptr<CNNBatchNormalizationState>;

/// Provider of batch-normalization parameters (MPSCNNBatchNormalizationDataSource). The kernel calls
/// load(), copies numberOfFeatureChannels() floats from each array, then purge() — at construction
/// and at every reload. A null array means: gamma 1, beta 0, mean 0, variance 1. The training
/// update callbacks of spec 10 §10.9.2 are not part of this forward interface yet.
class CNNBatchNormalizationDataSource {
 public:
  virtual ~CNNBatchNormalizationDataSource() = default;
  virtual size_t numberOfFeatureChannels() const = 0;
  virtual const float* gamma() = 0;
  virtual const float* beta() = 0;
  virtual const float* mean() = 0;
  virtual const float* variance() = 0;
  /// False makes construction (or the reload) throw InvalidArgument.
  virtual bool load() = 0;
  virtual void purge() = 0;
  /// Copied to the kernel's label at construction.
  virtual std::string label() const = 0;
  /// Optional; when absent the kernel's epsilon starts at FLT_MIN.
  virtual std::optional<float> epsilon() const { return std::nullopt; }
};
using CNNBatchNormalizationDataSourcePtr = std::shared_ptr<CNNBatchNormalizationDataSource>;

/// Batch normalization for inference (MPSCNNBatchNormalization), per channel c < numberOfFeatureChannels:
///   Y(c) = (X(c) − mean[c]) · gamma[c] / sqrt(variance[c] + epsilon) + beta[c],  then the fused neuron
/// with the parameters copied from the data source. Unwindowed mapping; the source must provide at
/// least numberOfFeatureChannels channels from sourceFeatureChannelOffset (further ones are ignored),
/// and the destination receives numberOfFeatureChannels channels.
/// CHOICE: an encode uses the parameters and epsilon the kernel holds at encode time; a later reload
/// or setEpsilon does not change work already encoded.
class CNNBatchNormalization : public CNNKernel {
 public:
  CNNBatchNormalization(DevicePtr device, CNNBatchNormalizationDataSourcePtr dataSource);
  /// With a fused neuron applied after normalization; std::nullopt (MPS: nil) means none.
  CNNBatchNormalization(DevicePtr device, CNNBatchNormalizationDataSourcePtr dataSource,
                        std::optional<NNNeuronDescriptor> fusedNeuronDescriptor);
  CNNBatchNormalization(DevicePtr device) = delete;  // MPS marks -initWithDevice: unavailable
  static std::shared_ptr<CNNBatchNormalization> make(DevicePtr device,
                                                     CNNBatchNormalizationDataSourcePtr dataSource) {
    return std::make_shared<CNNBatchNormalization>(std::move(device), std::move(dataSource));
  }
  static std::shared_ptr<CNNBatchNormalization> make(
      DevicePtr device, CNNBatchNormalizationDataSourcePtr dataSource,
      std::optional<NNNeuronDescriptor> fusedNeuronDescriptor) {
    return std::make_shared<CNNBatchNormalization>(std::move(device), std::move(dataSource),
                                                   std::move(fusedNeuronDescriptor));
  }
  const char* className() const override { return "CNNBatchNormalization"; }

  /// dataSource.numberOfFeatureChannels() at construction.
  uint64_t numberOfFeatureChannels() const { return numberOfFeatureChannels_; }
  /// dataSource.epsilon() when it gives one, else FLT_MIN (1.17549435e−38). Any value may be set.
  float epsilon() const { return epsilon_; }
  void setEpsilon(float epsilon) { epsilon_ = epsilon; }
  CNNBatchNormalizationDataSourcePtr dataSource() const { return dataSource_; }
  /// The fused neuron; type None when the kernel was made without one.
  const NNNeuronDescriptor& fusedNeuronDescriptor() const { return neuron_; }
  /// load → copy gamma and beta → purge. Throws InvalidArgument (keeping the old values) when
  /// load() fails or the data source's channel count changed.
  void reloadGammaAndBetaFromDataSource();
  /// load → copy mean and variance → purge; errors as reloadGammaAndBetaFromDataSource.
  void reloadMeanAndVarianceFromDataSource();

 protected:
  uint64_t destinationFeatureChannels(uint64_t cRead) const override {
    (void)cRead;
    return numberOfFeatureChannels_;
  }
  void validateImages(const Image& source, const Image& destination) const override;
  void encodeProblem(CommandBuffer& commandBuffer, const detail::UnaryProblem& problem) override;

 private:
  enum class Parameters { All, GammaAndBeta, MeanAndVariance };
  void loadFromDataSource(Parameters which);

  CNNBatchNormalizationDataSourcePtr dataSource_;
  NNNeuronDescriptor neuron_;
  uint64_t numberOfFeatureChannels_ = 0;
  float epsilon_ = FLT_MIN;
  std::vector<float> gamma_, beta_, mean_, variance_;  // what the kernel normalizes with
  // gamma | beta | mean | variance (numberOfFeatureChannels floats each) in the device's memory.
  // Replaced, never modified, so that encoded work keeps the values it was encoded with.
  std::shared_ptr<detail::Storage> parametersOnDevice_;
  std::shared_ptr<detail::Storage> preluOnDevice_;  // the fused PReLU's slopes
};

// ---- instance normalization --------------------------------------------------------------------

/// Provider of instance-normalization parameters (MPSCNNInstanceNormalizationDataSource). A null
/// array means gamma 1 / beta 0. load() and purge() are optional (no-op returning true); the
/// kernel calls load → copy → purge at construction and at every reload.
class CNNInstanceNormalizationDataSource {
 public:
  virtual ~CNNInstanceNormalizationDataSource() = default;
  virtual const float* gamma() = 0;
  virtual const float* beta() = 0;
  virtual size_t numberOfFeatureChannels() const = 0;
  /// Copied to the kernel's label at construction.
  virtual std::string label() const = 0;
  /// Optional; when absent the kernel's epsilon starts at FLT_MIN.
  virtual std::optional<float> epsilon() const { return std::nullopt; }
  virtual bool load() { return true; }
  virtual void purge() {}
};
using CNNInstanceNormalizationDataSourcePtr = std::shared_ptr<CNNInstanceNormalizationDataSource>;

/// Instance normalization (MPSCNNInstanceNormalization): per image n and channel c, mean and biased
/// variance over all W·H pixels of that channel of the source image,
///   Y = (X − mean[n,c]) · gamma[c] / sqrt(var[n,c] + epsilon) + beta[c].
/// CHOICE: the statistics always cover the whole source image, whatever offset and clipRect are;
/// those only place and select the outputs. Channels as CNNBatchNormalization; encode-time values
/// as CNNBatchNormalization.
class CNNInstanceNormalization : public CNNKernel {
 public:
  CNNInstanceNormalization(DevicePtr device, CNNInstanceNormalizationDataSourcePtr dataSource);
  CNNInstanceNormalization(DevicePtr device) = delete;
  static std::shared_ptr<CNNInstanceNormalization> make(DevicePtr device,
                                                        CNNInstanceNormalizationDataSourcePtr dataSource) {
    return std::make_shared<CNNInstanceNormalization>(std::move(device), std::move(dataSource));
  }
  const char* className() const override { return "CNNInstanceNormalization"; }

  /// dataSource.numberOfFeatureChannels() at construction.
  uint64_t numberOfFeatureChannels() const { return numberOfFeatureChannels_; }
  /// dataSource.epsilon() when it gives one, else FLT_MIN. Any value may be set.
  float epsilon() const { return epsilon_; }
  void setEpsilon(float epsilon) { epsilon_ = epsilon; }
  CNNInstanceNormalizationDataSourcePtr dataSource() const { return dataSource_; }
  /// load → copy gamma and beta → purge; throws InvalidArgument (keeping the old values) when
  /// load() fails or the channel count changed.
  void reloadGammaAndBetaFromDataSource();

 protected:
  uint64_t destinationFeatureChannels(uint64_t cRead) const override {
    (void)cRead;
    return numberOfFeatureChannels_;
  }
  void validateImages(const Image& source, const Image& destination) const override;
  void encodeProblem(CommandBuffer& commandBuffer, const detail::UnaryProblem& problem) override;

 private:
  void loadFromDataSource(bool reload);

  CNNInstanceNormalizationDataSourcePtr dataSource_;
  uint64_t numberOfFeatureChannels_ = 0;
  float epsilon_ = FLT_MIN;
  std::vector<float> gamma_, beta_;
  // gamma | beta in the device's memory; replaced, never modified (as CNNBatchNormalization).
  std::shared_ptr<detail::Storage> parametersOnDevice_;
};

}  // namespace mpsnn
