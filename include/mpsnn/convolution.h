// mpsnn — convolution family (spec 01): descriptor, data source protocol, CNNConvolution.
#pragma once
#include <array>
#include <memory>
#include <string>
#include <vector>

#include "mpsnn/kernel.h"
#include "mpsnn/neuron.h"

namespace mpsnn {

namespace detail {
struct ConvolutionState;
}

/// Order of the weights a data source provides (only OHWI: W[o][ky][kx][i], i fastest).
enum class CNNConvolutionWeightsLayout : uint32_t { OHWI = 0 };
/// How UInt8 weights decode: per-output-channel {min, max} range (Linear) or a 256-entry table.
enum class CNNWeightsQuantizationType : uint32_t { None = 0, Linear = 1, LookupTable = 2 };
/// Accumulator precision hint; the CPU and CUDA backends always accumulate in float32 or wider.
enum class NNConvolutionAccumulatorPrecisionOption : uint32_t { Half = 0, Float = 1 };
/// Legacy flags of the float-weights constructor (unused).
enum class CNNConvolutionFlags : uint32_t { None = 0 };

/// Shape of a convolution (MPSCNNConvolutionDescriptor): kernel size, channels, strides, groups,
/// dilation, the fused neuron and optional batch-norm parameters folded at kernel construction.
/// A copyable value. The sub-pixel and depthwise forms are the subclasses below; their extra fields
/// live here so that copying never slices them.
class CNNConvolutionDescriptor {
 public:
  CNNConvolutionDescriptor() = default;
  static CNNConvolutionDescriptor make(uint64_t kernelWidth, uint64_t kernelHeight, uint64_t inputFeatureChannels,
                                       uint64_t outputFeatureChannels);
  virtual ~CNNConvolutionDescriptor() = default;

  uint64_t kernelWidth() const { return kernelWidth_; }
  uint64_t kernelHeight() const { return kernelHeight_; }
  uint64_t inputFeatureChannels() const { return inputFeatureChannels_; }
  uint64_t outputFeatureChannels() const { return outputFeatureChannels_; }
  uint64_t strideInPixelsX() const { return strideX_; }
  uint64_t strideInPixelsY() const { return strideY_; }
  uint64_t groups() const { return groups_; }
  uint64_t dilationRateX() const { return dilationX_; }
  uint64_t dilationRateY() const { return dilationY_; }
  const NNNeuronDescriptor& fusedNeuronDescriptor() const { return neuron_; }
  void setKernelWidth(uint64_t v) { kernelWidth_ = v; }
  void setKernelHeight(uint64_t v) { kernelHeight_ = v; }
  void setInputFeatureChannels(uint64_t v) { inputFeatureChannels_ = v; }
  void setOutputFeatureChannels(uint64_t v) { outputFeatureChannels_ = v; }
  void setStrideInPixelsX(uint64_t v) { strideX_ = v; }
  void setStrideInPixelsY(uint64_t v) { strideY_ = v; }
  void setGroups(uint64_t v) { groups_ = v; }
  void setDilationRateX(uint64_t v) { dilationX_ = v; }
  void setDilationRateY(uint64_t v) { dilationY_ = v; }
  void setFusedNeuronDescriptor(const NNNeuronDescriptor& d) { neuron_ = d; }

  /// Legacy neuron setters (aliases of fusedNeuronDescriptor). PReLU needs per-channel data: use
  /// setNeuronToPReLUWithParametersA; setNeuronType(PReLU, ...) is an InvalidArgument.
  void setNeuronType(CNNNeuronType type, float a, float b);
  CNNNeuronType neuronType() const { return neuron_.neuronType(); }
  float neuronParameterA() const { return neuron_.a(); }
  float neuronParameterB() const { return neuron_.b(); }
  void setNeuronToPReLUWithParametersA(std::vector<float> a);

  /// Batch-norm parameters (Co floats each, copied) folded into weights and bias by the kernel
  /// (spec 01 §2.1). A null pointer means mean 0, variance 1, gamma 1, beta 0.
  void setBatchNormalizationParametersForInference(const float* mean, const float* variance, const float* gamma,
                                                   const float* beta, float epsilon);
  bool hasBatchNormalization() const { return hasBatchNorm_; }
  const std::vector<float>& batchNormMean() const { return bnMean_; }
  const std::vector<float>& batchNormVariance() const { return bnVariance_; }
  const std::vector<float>& batchNormGamma() const { return bnGamma_; }
  const std::vector<float>& batchNormBeta() const { return bnBeta_; }
  float batchNormEpsilon() const { return bnEpsilon_; }

  /// Sub-pixel scale factor r (1 unless a CNNSubPixelConvolutionDescriptor set it).
  uint64_t subPixelScaleFactor() const { return subPixelScaleFactor_; }
  /// True for a CNNSubPixelConvolutionDescriptor.
  bool isSubPixel() const { return subPixel_; }
  /// True for a CNNDepthWiseConvolutionDescriptor.
  bool isDepthWise() const { return depthWise_; }

  /// Throws InvalidArgument (naming `who`, the descriptor class and the property) when a field
  /// violates spec 01 §2 (§2.3, §2.4 for the subclasses).
  void validate(const char* who) const;
  /// "CNNConvolutionDescriptor", "CNNSubPixelConvolutionDescriptor" or "CNNDepthWiseConvolutionDescriptor".
  const char* descriptorClassName() const;

 protected:
  uint64_t kernelWidth_ = 3, kernelHeight_ = 3, inputFeatureChannels_ = 0, outputFeatureChannels_ = 0;
  uint64_t strideX_ = 1, strideY_ = 1, groups_ = 1, dilationX_ = 1, dilationY_ = 1;
  NNNeuronDescriptor neuron_;
  bool hasBatchNorm_ = false;
  std::vector<float> bnMean_, bnVariance_, bnGamma_, bnBeta_;
  float bnEpsilon_ = 0;
  uint64_t subPixelScaleFactor_ = 1;
  bool subPixel_ = false;  // a CNNSubPixelConvolutionDescriptor (even with r = 1)
  bool depthWise_ = false;
};

/// Convolution followed by a depth-to-space rearrangement by `subPixelScaleFactor` (spec 01 §4.4).
class CNNSubPixelConvolutionDescriptor : public CNNConvolutionDescriptor {
 public:
  CNNSubPixelConvolutionDescriptor() { subPixel_ = true; }
  static CNNSubPixelConvolutionDescriptor make(uint64_t kernelWidth, uint64_t kernelHeight,
                                               uint64_t inputFeatureChannels, uint64_t outputFeatureChannels);
  void setSubPixelScaleFactor(uint64_t r) { subPixelScaleFactor_ = r; }
};

/// Depthwise convolution: each input channel k produces channels k·m … k·m+m−1 (spec 01 §4.5).
class CNNDepthWiseConvolutionDescriptor : public CNNConvolutionDescriptor {
 public:
  CNNDepthWiseConvolutionDescriptor() { depthWise_ = true; }
  static CNNDepthWiseConvolutionDescriptor make(uint64_t kernelWidth, uint64_t kernelHeight,
                                                uint64_t inputFeatureChannels, uint64_t outputFeatureChannels);
  uint64_t channelMultiplier() const { return inputFeatureChannels_ ? outputFeatureChannels_ / inputFeatureChannels_ : 0; }
};

/// Provider of a convolution's descriptor, weights and biases (MPSCNNConvolutionDataSource).
/// Kernels call load(), copy what they need, then purge().
class CNNConvolutionDataSource {
 public:
  virtual ~CNNConvolutionDataSource() = default;
  /// Element type of weights(): Float32, Float16 or UInt8 (UInt32 for binary convolution).
  virtual DataType dataType() const = 0;
  virtual const CNNConvolutionDescriptor& descriptor() const = 0;
  /// OHWI weights: W[o][ky][kx][i], i fastest (depthwise: W[o][ky][kx]).
  virtual const void* weights() = 0;
  /// Co float32 biases, or null.
  virtual const float* biasTerms() = 0;
  virtual bool load() = 0;
  virtual void purge() = 0;
  virtual std::string label() const = 0;
  virtual CNNWeightsQuantizationType weightsQuantizationType() const { return CNNWeightsQuantizationType::None; }
  /// Co × {min, max} for Linear UInt8 quantization.
  virtual const std::array<float, 2>* rangesForUInt8Kernel() { return nullptr; }
  /// 256 floats for LookupTable UInt8 quantization.
  virtual const float* lookupTableForUInt8Kernel() { return nullptr; }
  virtual CNNConvolutionWeightsLayout weightsLayout() const { return CNNConvolutionWeightsLayout::OHWI; }
  /// Precision used inside the kernel. MPS's quirk, kept: unless overridden, weights are rounded to
  /// float16 before use. Override to return Float32 (with Float32 data) for exact float32 weights.
  virtual DataType kernelWeightsDataType() const { return DataType::Float16; }
};
using CNNConvolutionDataSourcePtr = std::shared_ptr<CNNConvolutionDataSource>;

/// 2-D convolution (MPSCNNConvolution): regular, grouped, strided, dilated, with bias, folded batch
/// norm and a fused neuron; float and unorm images. CPU: oneDNN where it maps, else plain loops.
/// CUDA: cuDNN where it maps, else a plain CUDA kernel.
class CNNConvolution : public CNNKernel {
 public:
  CNNConvolution(DevicePtr device, CNNConvolutionDataSourcePtr dataSource);
  /// Legacy form: float32 OHWI weights and optional bias, copied.
  CNNConvolution(DevicePtr device, const CNNConvolutionDescriptor& descriptor, const float* weights,
                 const float* biases, CNNConvolutionFlags flags = CNNConvolutionFlags::None);
  static std::shared_ptr<CNNConvolution> make(DevicePtr device, CNNConvolutionDataSourcePtr dataSource) {
    return std::make_shared<CNNConvolution>(std::move(device), std::move(dataSource));
  }
  ~CNNConvolution() override;
  const char* className() const override { return "CNNConvolution"; }

  uint64_t inputFeatureChannels() const { return descriptor_.inputFeatureChannels(); }
  uint64_t outputFeatureChannels() const { return descriptor_.outputFeatureChannels(); }
  uint64_t groups() const { return descriptor_.groups(); }
  uint64_t subPixelScaleFactor() const { return descriptor_.subPixelScaleFactor(); }
  /// Channel multiplier of a depthwise convolution; 0 otherwise.
  uint64_t channelMultiplier() const;
  CNNConvolutionDataSourcePtr dataSource() const { return dataSource_; }
  const NNNeuronDescriptor& fusedNeuronDescriptor() const { return descriptor_.fusedNeuronDescriptor(); }
  NNConvolutionAccumulatorPrecisionOption accumulatorPrecisionOption() const { return accumulatorPrecision_; }
  void setAccumulatorPrecisionOption(NNConvolutionAccumulatorPrecisionOption o) { accumulatorPrecision_ = o; }
  /// Allows TF32 tensor-core arithmetic on CUDA (off by default: float32 means float32).
  bool allowsTF32() const { return allowTF32_; }
  void setAllowsTF32(bool allow) { allowTF32_ = allow; }
  /// Re-runs load / copy / purge on the data source.
  void reloadWeightsAndBiasesFromDataSource();
  /// The float32 OHWI weights (depthwise: [Co][kH][kW]) the kernel computes with, after
  /// quantization decoding, batch-norm folding and the float16 rounding of kernelWeightsDataType.
  const std::vector<float>& effectiveWeights() const { return weights_; }
  /// The Co biases the kernel adds (batch norm folded in); empty when the kernel has no bias.
  const std::vector<float>& effectiveBiases() const { return biases_; }

 protected:
  uint64_t destinationFeatureChannels(uint64_t cRead) const override;
  uint64_t requiredSourceFeatureChannels() const override { return descriptor_.inputFeatureChannels(); }
  void validateImages(const Image& source, const Image& destination) const override;
  void autoGeometry(const Image& source, NNPaddingMethod method, uint64_t& width, uint64_t& height,
                    Offset& offset) const override;
  void encodeProblem(CommandBuffer& commandBuffer, const detail::UnaryProblem& problem) override;
  /// load → copy → purge on the data source (spec 01 §3); with `reload`, the descriptor must keep
  /// the kernel's shape and only weights and biases change. Nothing changes when it throws.
  void loadFromDataSource(bool reload);
  /// Folds batch norm, applies the float16 rounding when `roundToHalf`, uploads, and installs.
  void setWeights(const CNNConvolutionDescriptor& descriptor, std::vector<float> weights, std::vector<float> biases,
                  bool roundToHalf);

  CNNConvolutionDescriptor descriptor_;
  CNNConvolutionDataSourcePtr dataSource_;
  NNConvolutionAccumulatorPrecisionOption accumulatorPrecision_ = NNConvolutionAccumulatorPrecisionOption::Float;
  bool allowTF32_ = false;
  std::vector<float> weights_, biases_;
  std::shared_ptr<detail::ConvolutionState> state_;  // device copies and backend caches of the weights
};

}  // namespace mpsnn
