// mpsnn — convolution family (spec 01): descriptor, data source protocol, CNNConvolution,
// CNNFullyConnected, CNNConvolutionTranspose, CNNBinaryConvolution, CNNBinaryFullyConnected,
// CNNConvolutionWeightsAndBiasesState and NNGramMatrixCalculation.
#pragma once
#include <array>
#include <memory>
#include <string>
#include <vector>

#include "mpsnn/buffer.h"
#include "mpsnn/kernel.h"
#include "mpsnn/neuron.h"
#include "mpsnn/state.h"

namespace mpsnn {

namespace detail {
struct ConvolutionState;
struct BinaryConvolutionState;
}  // namespace detail

class CNNConvolutionWeightsAndBiasesState;
using CNNConvolutionWeightsAndBiasesStatePtr = std::shared_ptr<CNNConvolutionWeightsAndBiasesState>;

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
  static CNNConvolutionDescriptor make(uint64_t kernelWidth, uint64_t kernelHeight,
                                       uint64_t inputFeatureChannels, uint64_t outputFeatureChannels);
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
  void setBatchNormalizationParametersForInference(const float* mean, const float* variance,
                                                   const float* gamma, const float* beta, float epsilon);
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
                                                uint64_t inputFeatureChannels,
                                                uint64_t outputFeatureChannels);
  uint64_t channelMultiplier() const {
    return inputFeatureChannels_ ? outputFeatureChannels_ / inputFeatureChannels_ : 0;
  }
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
  virtual CNNWeightsQuantizationType weightsQuantizationType() const {
    return CNNWeightsQuantizationType::None;
  }
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

/// Float32 weights and biases in device buffers (MPSCNNConvolutionWeightsAndBiasesState, spec 01 §9,
/// spec 10 §10.4.3): what CNNConvolution::exportWeightsAndBiases writes and reloadWeightsAndBiases
/// reads, and what optimizers update. `weights` holds Co·kH·kW·(Ci/groups) floats in the data
/// source's order (OHWI; depthwise [Co][kH][kW]; a fully-connected layer's selected weight order)
/// from byte `weightsOffset`; `biases`, when present, Co floats from byte `biasesOffset`.
/// Persistent only: the temporary (command-buffer pooled, read-counted) variant belongs to the
/// training states and is not provided yet.
class CNNConvolutionWeightsAndBiasesState : public State {
 public:
  /// Whole buffers (weights non-null, biases may be null); their sizes are checked against the
  /// kernel when it reloads from the state.
  CNNConvolutionWeightsAndBiasesState(BufferPtr weights, BufferPtr biases);
  /// New zero-filled buffers of exactly the sizes `descriptor` needs (biases included).
  CNNConvolutionWeightsAndBiasesState(DevicePtr device, const CNNConvolutionDescriptor& descriptor);
  /// Sub-ranges of caller buffers. InvalidArgument: an offset not a multiple of 4, or offset +
  /// the size `descriptor` needs beyond the buffer's length.
  CNNConvolutionWeightsAndBiasesState(BufferPtr weights, uint64_t weightsOffset, BufferPtr biases,
                                      uint64_t biasesOffset, const CNNConvolutionDescriptor& descriptor);
  template <class... A>
  static CNNConvolutionWeightsAndBiasesStatePtr make(A&&... args) {
    return std::make_shared<CNNConvolutionWeightsAndBiasesState>(std::forward<A>(args)...);
  }

  BufferPtr weights() const { return weights_; }
  BufferPtr biases() const { return biases_; }
  uint64_t weightsOffset() const { return weightsOffset_; }
  uint64_t biasesOffset() const { return biasesOffset_; }
  /// Bytes of the buffers (each counted once).
  uint64_t resourceSize() const override;

 private:
  BufferPtr weights_, biases_;
  uint64_t weightsOffset_ = 0, biasesOffset_ = 0;
};

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
  /// Replaces the weights and biases on the device from `state`, in command-buffer order: work
  /// encoded before this call uses the old values, work encoded after it the new ones. The state
  /// holds the values the kernel computes with (as exportWeightsAndBiases writes them): batch norm is
  /// not folded again; they are rounded to float16 when the data source's kernelWeightsDataType is
  /// Float16. A state without biases leaves the kernel without bias. InvalidArgument: buffers on
  /// another device, or too small for this kernel from their offsets.
  void reloadWeightsAndBiases(CommandBufferPtr commandBuffer,
                              const CNNConvolutionWeightsAndBiasesState& state);
  /// A new persistent state holding, once the command buffer has run up to this point, the weights
  /// and biases the kernel computes with, in the data source's order (zero biases when the kernel
  /// has none). `resultStateCanBeTemporary` is a permission only; the state is always persistent.
  CNNConvolutionWeightsAndBiasesStatePtr exportWeightsAndBiases(CommandBufferPtr commandBuffer,
                                                                bool resultStateCanBeTemporary);
  /// The float32 OHWI weights (depthwise: [Co][kH][kW]) the kernel computes with, after
  /// quantization decoding, batch-norm folding and the float16 rounding of kernelWeightsDataType,
  /// as of the last host-side load (construction or reloadWeightsAndBiasesFromDataSource): values
  /// reloaded from a state live on the device only (read them with exportWeightsAndBiases).
  const std::vector<float>& effectiveWeights() const { return weights_; }
  /// The Co biases the kernel adds (batch norm folded in); empty when the kernel has no bias. As of
  /// the last host-side load, like effectiveWeights.
  const std::vector<float>& effectiveBiases() const { return biases_; }

 protected:
  /// For subclasses: `who` names the class in construction-time messages (virtual calls do not
  /// reach the subclass yet).
  CNNConvolution(DevicePtr device, CNNConvolutionDataSourcePtr dataSource, const char* who);
  CNNConvolution(DevicePtr device, const CNNConvolutionDescriptor& descriptor, const float* weights,
                 const float* biases, const char* who);
  uint64_t destinationFeatureChannels(uint64_t cRead) const override;
  uint64_t requiredSourceFeatureChannels() const override { return descriptor_.inputFeatureChannels(); }
  void validateImages(const Image& source, const Image& destination) const override;
  void autoGeometry(const Image& source, NNPaddingMethod method, uint64_t& width, uint64_t& height,
                    Offset& offset) const override;
  void encodeProblem(CommandBuffer& commandBuffer, const detail::UnaryProblem& problem) override;
  /// load → copy → purge on the data source (spec 01 §3); with `reload`, the descriptor must keep
  /// the kernel's shape and only weights and biases change. Nothing changes when it throws.
  void loadFromDataSource(bool reload, const std::string& who);
  /// Takes weights in the data source's order to the kernel's OHWI order, folds batch norm,
  /// applies the float16 rounding when `roundToHalf`, uploads, and installs.
  void setWeights(const CNNConvolutionDescriptor& descriptor, std::vector<float> weights,
                  std::vector<float> biases, bool roundToHalf);
  /// True when the data source's weights are [Co][kW][kH][Ci] (a fully-connected layer's OWHI order)
  /// rather than the kernel's OHWI.
  virtual bool weightsWidthMajor() const { return false; }
  /// Copies the configuration shared with the data source's descriptor into the CNNKernel fields.
  void adoptDescriptor(const CNNConvolutionDescriptor& descriptor);

  CNNConvolutionDescriptor descriptor_;
  CNNConvolutionDataSourcePtr dataSource_;
  NNConvolutionAccumulatorPrecisionOption accumulatorPrecision_ =
      NNConvolutionAccumulatorPrecisionOption::Float;
  bool allowTF32_ = false;
  bool roundWeightsToHalf_ = false;   // kernelWeightsDataType Float16: reloads round too
  bool weightsOnDeviceOnly_ = false;  // reloaded from a state: weights_ / biases_ are stale
  std::vector<float> weights_, biases_;
  std::shared_ptr<detail::ConvolutionState> state_;  // device copies and backend caches of the weights
};

/// Order of a fully-connected layer's weights in its data source (spec 01 §5 CHOICE).
/// OHWI: weights[((o·H + y)·W + x)·Ci + i] — the convolution order, the default.
/// OWHI: weights[((o·W + x)·H + y)·Ci + i] — the literal order of the MPS class overview.
/// They coincide when the source is one pixel wide or high.
enum class FullyConnectedWeightOrder : uint32_t { OHWI = 0, OWHI = 1 };

/// Fully connected (inner product) layer (MPSCNNFullyConnected, spec 01 §5): a convolution whose
/// kernel covers the whole source, giving a 1 × 1 × Co result:
/// dst(n, clip.origin, o) = neuron(bias[o] + Σ_{x,y,i} Wfc[o](x, y, i) · src(n, y, x, i)).
/// The descriptor's kernelWidth/Height are the source width/height; stride, dilation and groups
/// must be 1 (InvalidArgument at construction otherwise, as for a sub-pixel or depthwise
/// descriptor). offset is ignored (the window always covers the whole source; offset.z still picks
/// the first image). At encode: source width/height must equal kernelWidth/Height and the
/// effective clip must be 1 × 1 (or empty). Default padding SizeValidOnly; auto mode gives 1 × 1.
/// Fused neuron and folded batch norm as for CNNConvolution. CPU: oneDNN sgemm for dense float32
/// views; CUDA: cuBLAS for dense float32 and float16 views; the convolution paths otherwise.
class CNNFullyConnected : public CNNConvolution {
 public:
  CNNFullyConnected(DevicePtr device, CNNConvolutionDataSourcePtr dataSource);
  /// Legacy form: float32 weights (in the weight order, OHWI by default) and optional bias, copied.
  CNNFullyConnected(DevicePtr device, const CNNConvolutionDescriptor& descriptor, const float* weights,
                    const float* biases, CNNConvolutionFlags flags = CNNConvolutionFlags::None);
  static std::shared_ptr<CNNFullyConnected> make(DevicePtr device, CNNConvolutionDataSourcePtr dataSource) {
    return std::make_shared<CNNFullyConnected>(std::move(device), std::move(dataSource));
  }
  const char* className() const override { return "CNNFullyConnected"; }

  FullyConnectedWeightOrder weightOrder() const { return weightOrder_; }
  /// Reinterprets the weights the kernel holds in the given order (spec 01 §5). InvalidArgument for
  /// a value outside the enum, or after reloadWeightsAndBiases(commandBuffer, state) put weights on
  /// the device that the host has not seen (set the order first, or reload from the data source).
  void setWeightOrder(FullyConnectedWeightOrder order);

 protected:
  void validateImages(const Image& source, const Image& destination) const override;
  void autoGeometry(const Image& source, NNPaddingMethod method, uint64_t& width, uint64_t& height,
                    Offset& offset) const override;
  void encodeProblem(CommandBuffer& commandBuffer, const detail::UnaryProblem& problem) override;
  bool weightsWidthMajor() const override { return weightOrder_ == FullyConnectedWeightOrder::OWHI; }

 private:
  void checkFullyConnectedDescriptor();
  FullyConnectedWeightOrder weightOrder_ = FullyConnectedWeightOrder::OHWI;
};

/// Transposed convolution (MPSCNNConvolutionTranspose, spec 01 §6): zeros are inserted between the
/// source pixels (stride − 1 of them, giving Z of (W − 1)·stride + 1 pixels), then Z is convolved
/// with stride 1 and the weights as given — no 180° rotation (QUIRK: frameworks that define the
/// transpose as a convolution's adjoint rotate). The window centre of destination (x, y) in Z is
/// offset·stride + kernelOffset + (x, y); edge modes apply to Z's extent (Zero reads 0; Clamp reads
/// Z at the clamped position, which is a source pixel). Groups, dilation, bias, batch norm and the
/// fused neuron as for CNNConvolution; Float32, Float16 and UInt8 weights (CHOICE; MPS takes
/// Float32). strideInPixelsX/Y are in destination units (isBackwards). Auto mode: destination
/// (S − 1)·stride + 1 + style·(kWd − 1) per axis, offset 0, kernelOffset by the padding policy on Z
/// (spec 01 §6.2). The encode variant that takes the forward convolution's
/// CNNConvolutionGradientState (sizing the result to that convolution's source) needs the training
/// states and is not provided yet. CPU: oneDNN deconvolution; CUDA: cuDNN backward data; stride 1:
/// the convolution's paths; else plain loops.
class CNNConvolutionTranspose : public CNNKernel {
 public:
  CNNConvolutionTranspose(DevicePtr device, CNNConvolutionDataSourcePtr dataSource);
  static std::shared_ptr<CNNConvolutionTranspose> make(DevicePtr device,
                                                       CNNConvolutionDataSourcePtr dataSource) {
    return std::make_shared<CNNConvolutionTranspose>(std::move(device), std::move(dataSource));
  }
  ~CNNConvolutionTranspose() override;
  const char* className() const override { return "CNNConvolutionTranspose"; }

  /// Channels of the transpose's source.
  uint64_t inputFeatureChannels() const { return descriptor_.inputFeatureChannels(); }
  /// Channels the transpose writes.
  uint64_t outputFeatureChannels() const { return descriptor_.outputFeatureChannels(); }
  uint64_t groups() const { return descriptor_.groups(); }
  CNNConvolutionDataSourcePtr dataSource() const { return dataSource_; }
  const NNNeuronDescriptor& fusedNeuronDescriptor() const { return descriptor_.fusedNeuronDescriptor(); }
  NNConvolutionAccumulatorPrecisionOption accumulatorPrecisionOption() const { return accumulatorPrecision_; }
  void setAccumulatorPrecisionOption(NNConvolutionAccumulatorPrecisionOption o) { accumulatorPrecision_ = o; }
  /// Extra offset of the window centre in the zero-inserted image (default 0; auto mode sets it).
  int64_t kernelOffsetX() const { return kernelOffsetX_; }
  void setKernelOffsetX(int64_t v) { kernelOffsetX_ = v; }
  int64_t kernelOffsetY() const { return kernelOffsetY_; }
  void setKernelOffsetY(int64_t v) { kernelOffsetY_ = v; }
  /// Allows TF32 tensor-core arithmetic on CUDA (off by default: float32 means float32).
  bool allowsTF32() const { return allowTF32_; }
  void setAllowsTF32(bool allow) { allowTF32_ = allow; }
  /// As CNNConvolution's.
  void reloadWeightsAndBiasesFromDataSource();
  void reloadWeightsAndBiases(CommandBufferPtr commandBuffer,
                              const CNNConvolutionWeightsAndBiasesState& state);
  CNNConvolutionWeightsAndBiasesStatePtr exportWeightsAndBiases(CommandBufferPtr commandBuffer,
                                                                bool resultStateCanBeTemporary);
  const std::vector<float>& effectiveWeights() const { return weights_; }
  const std::vector<float>& effectiveBiases() const { return biases_; }

  /// As CNNKernel's, with the transpose's sizes; also sets kernelOffsetX/Y (spec 01 §6.2) before a
  /// Custom padding policy's hook runs.
  ImageDescriptor destinationImageDescriptor(const ImageBatch& sourceImages,
                                             const StateBatch& sourceStates) override;

 protected:
  uint64_t destinationFeatureChannels(uint64_t) const override { return descriptor_.outputFeatureChannels(); }
  uint64_t requiredSourceFeatureChannels() const override { return descriptor_.inputFeatureChannels(); }
  void validateImages(const Image& source, const Image& destination) const override;
  void autoGeometry(const Image& source, NNPaddingMethod method, uint64_t& width, uint64_t& height,
                    Offset& offset) const override;
  void encodeProblem(CommandBuffer& commandBuffer, const detail::UnaryProblem& problem) override;

 private:
  void loadFromDataSource(bool reload);

  CNNConvolutionDescriptor descriptor_;
  CNNConvolutionDataSourcePtr dataSource_;
  NNConvolutionAccumulatorPrecisionOption accumulatorPrecision_ =
      NNConvolutionAccumulatorPrecisionOption::Float;
  bool allowTF32_ = false;
  bool roundWeightsToHalf_ = false;
  int64_t kernelOffsetX_ = 0, kernelOffsetY_ = 0;
  std::vector<float> weights_, biases_;
  std::shared_ptr<detail::ConvolutionState> state_;
};

/// How a binary convolution multiplies (MPSCNNBinaryConvolutionType, spec 01 §7): BinaryWeights —
/// float inputs times ±1 weights; XNOR — binarized inputs (±1) times ±1 weights; AND — input bits
/// (1 where the biased, scaled input is ≥ 0) times {0, 1} weights.
enum class CNNBinaryConvolutionType : uint32_t { BinaryWeights = 0, XNOR = 1, AND = 2 };
/// UseBetaScaling multiplies each result by the mean absolute input over its window (spec 01 §7).
enum class CNNBinaryConvolutionFlags : uint32_t { None = 0, UseBetaScaling = 1 };

/// Convolution with 1-bit weights (MPSCNNBinaryConvolution, spec 01 §7). The data source's
/// dataType must be UInt32: weights uint32 [Co][kH][kW][ceil(Ci/32)], input channel i in bit i mod 32
/// (least significant first) of word i / 32; bit 0/1 is weight −1/+1 (BinaryWeights, XNOR) or 0/1
/// (AND). Per destination value:
///   in'(p, f) = (src(p, f) + inputBias[f]) · inputScale[f]   (out-of-image pixels: edgeMode's
///               value, substituted before bias, scale and binarization — CHOICE)
///   out = neuron(Σ prod · outputScale[o] · beta + outputBias[o])
/// Descriptor: kernel size, strides, dilation and the fused neuron are used; groups must be 1;
/// batch norm is not used (ignored). Geometry, placement and validation as CNNConvolution (Zero or
/// Clamp edges; SizeSame default padding). Plain loops on the CPU and one CUDA thread per value.
class CNNBinaryConvolution : public CNNKernel {
 public:
  /// One output scale for every channel; output bias from dataSource.biasTerms() (null → 0); input
  /// bias 0 and scale 1 (CHOICE).
  CNNBinaryConvolution(DevicePtr device, CNNConvolutionDataSourcePtr dataSource, float scaleValue,
                       CNNBinaryConvolutionType type, CNNBinaryConvolutionFlags flags);
  /// Per-channel terms, copied (Co output, Ci input values); null means output bias 0, output scale
  /// 1, input bias 0, input scale 1. dataSource.biasTerms() is ignored (CHOICE).
  CNNBinaryConvolution(DevicePtr device, CNNConvolutionDataSourcePtr dataSource, const float* outputBiasTerms,
                       const float* outputScaleTerms, const float* inputBiasTerms,
                       const float* inputScaleTerms, CNNBinaryConvolutionType type,
                       CNNBinaryConvolutionFlags flags);
  template <class... A>
  static std::shared_ptr<CNNBinaryConvolution> make(A&&... args) {
    return std::make_shared<CNNBinaryConvolution>(std::forward<A>(args)...);
  }
  ~CNNBinaryConvolution() override;
  const char* className() const override { return "CNNBinaryConvolution"; }

  uint64_t inputFeatureChannels() const { return descriptor_.inputFeatureChannels(); }
  uint64_t outputFeatureChannels() const { return descriptor_.outputFeatureChannels(); }
  CNNBinaryConvolutionType type() const { return type_; }
  CNNBinaryConvolutionFlags flags() const { return flags_; }
  CNNConvolutionDataSourcePtr dataSource() const { return dataSource_; }
  const NNNeuronDescriptor& fusedNeuronDescriptor() const { return descriptor_.fusedNeuronDescriptor(); }

 protected:
  /// Both public forms: `scaleValue` non-null selects the first (one output scale, output bias from
  /// the data source; the arrays are then null). `who` names the class in construction messages.
  CNNBinaryConvolution(DevicePtr device, CNNConvolutionDataSourcePtr dataSource, const float* scaleValue,
                       const float* outputBiasTerms, const float* outputScaleTerms,
                       const float* inputBiasTerms, const float* inputScaleTerms,
                       CNNBinaryConvolutionType type, CNNBinaryConvolutionFlags flags, const char* who,
                       bool fullyConnected);
  uint64_t destinationFeatureChannels(uint64_t) const override { return descriptor_.outputFeatureChannels(); }
  uint64_t requiredSourceFeatureChannels() const override { return descriptor_.inputFeatureChannels(); }
  void validateImages(const Image& source, const Image& destination) const override;
  void encodeProblem(CommandBuffer& commandBuffer, const detail::UnaryProblem& problem) override;
  /// Builds the device copy of the weights in the kernel's [Co][kH][kW][words] order.
  void installWeights(bool widthMajor);

  CNNConvolutionDescriptor descriptor_;
  CNNConvolutionDataSourcePtr dataSource_;
  CNNBinaryConvolutionType type_;
  CNNBinaryConvolutionFlags flags_;
  std::vector<uint32_t> sourceWeights_;  // as the data source gave them
  std::vector<float> outputBias_, outputScale_, inputBias_, inputScale_;
  std::shared_ptr<detail::BinaryConvolutionState> state_;
};

/// Binary fully connected layer (MPSCNNBinaryFullyConnected, spec 01 §8): CNNBinaryConvolution's
/// constructors and math with CNNFullyConnected's geometry and rules (window = whole source,
/// 1 × 1 × Co result, offset ignored, stride/dilation/groups 1, SizeValidOnly default padding).
/// Weights [Co][H][W][ceil(Ci/32)] by default; setWeightOrder(OWHI) reads [Co][W][H][ceil(Ci/32)].
class CNNBinaryFullyConnected : public CNNBinaryConvolution {
 public:
  CNNBinaryFullyConnected(DevicePtr device, CNNConvolutionDataSourcePtr dataSource, float scaleValue,
                          CNNBinaryConvolutionType type, CNNBinaryConvolutionFlags flags);
  CNNBinaryFullyConnected(DevicePtr device, CNNConvolutionDataSourcePtr dataSource,
                          const float* outputBiasTerms, const float* outputScaleTerms,
                          const float* inputBiasTerms, const float* inputScaleTerms,
                          CNNBinaryConvolutionType type, CNNBinaryConvolutionFlags flags);
  template <class... A>
  static std::shared_ptr<CNNBinaryFullyConnected> make(A&&... args) {
    return std::make_shared<CNNBinaryFullyConnected>(std::forward<A>(args)...);
  }
  const char* className() const override { return "CNNBinaryFullyConnected"; }

  FullyConnectedWeightOrder weightOrder() const { return weightOrder_; }
  /// Reinterprets the data source's weights in the given order. InvalidArgument outside the enum.
  void setWeightOrder(FullyConnectedWeightOrder order);

 protected:
  void validateImages(const Image& source, const Image& destination) const override;
  void autoGeometry(const Image& source, NNPaddingMethod method, uint64_t& width, uint64_t& height,
                    Offset& offset) const override;
  void encodeProblem(CommandBuffer& commandBuffer, const detail::UnaryProblem& problem) override;

 private:
  FullyConnectedWeightOrder weightOrder_ = FullyConnectedWeightOrder::OHWI;
};

/// Uncentered Gram matrix of the channel planes (MPSNNGramMatrixCalculation, spec 01 §10):
/// dst(n, 0, f, c) = alpha · Σ_{y,x} src(n, y, x, f) · src(n, y, x, c) for f, c < C_read — x of the
/// destination is f, its channel c. The sum runs over the whole source, so offset.x/y must be 0 and
/// clipRect RectNoClip (CHOICE: InvalidArgument otherwise, as MPS documents no support for them);
/// offset.z still picks the first image and the channel offsets and max count apply. The destination
/// must be exactly C_read wide and 1 high; auto mode makes it so. CPU: oneDNN sgemm for float32
/// sources with dense rows, else a plain loop; CUDA: cuBLAS (pedantic float32) likewise, else a
/// plain kernel.
class NNGramMatrixCalculation : public CNNKernel {
 public:
  explicit NNGramMatrixCalculation(DevicePtr device, float alpha = 1.0f);
  static std::shared_ptr<NNGramMatrixCalculation> make(DevicePtr device, float alpha = 1.0f) {
    return std::make_shared<NNGramMatrixCalculation>(std::move(device), alpha);
  }
  const char* className() const override { return "NNGramMatrixCalculation"; }
  float alpha() const { return alpha_; }
  void setAlpha(float alpha) { alpha_ = alpha; }

 protected:
  void validateImages(const Image& source, const Image& destination) const override;
  void autoGeometry(const Image& source, NNPaddingMethod method, uint64_t& width, uint64_t& height,
                    Offset& offset) const override;
  void encodeProblem(CommandBuffer& commandBuffer, const detail::UnaryProblem& problem) override;

 private:
  float alpha_;
};

/// The gradients a convolution's training encodes accumulate (MPSCNNConvolutionGradientState,
/// spec 10 §10.4.2): dL/dW (float32, Co·kH·kW·Ci/groups in the data source's order) and dL/db
/// (float32, Co), zero when made; every gradient encode with the state adds its images'
/// contribution, so sub-batches sum to the batch. One state serves the whole batch
/// (CNNConvolution::isResultStateReusedAcrossBatch). Made by CNNConvolution's resultState… methods.
class CNNConvolutionGradientState : public NNGradientState, public ImageSizeEncodingState {
 public:
  /// Library internal (the forward kernel's resultState… methods): zero-filled gradients for
  /// `convolution`, temporary on `temporaryOn` when it is not null.
  static std::shared_ptr<CNNConvolutionGradientState> make(std::shared_ptr<CNNConvolution> convolution,
                                                           CommandBufferPtr temporaryOn);
  BufferPtr gradientForWeights() const { return gradientForWeights_; }
  BufferPtr gradientForBiases() const { return gradientForBiases_; }
  /// The forward kernel that made the state.
  std::shared_ptr<CNNConvolution> convolution() const { return convolution_; }
  CNNConvolutionWeightsLayout gradientForWeightsLayout() const { return CNNConvolutionWeightsLayout::OHWI; }
  /// Forward source size (ImageSizeEncodingState), from the forward encode's record.
  uint64_t sourceWidth() const override { return forwardRecord().primary.width; }
  uint64_t sourceHeight() const override { return forwardRecord().primary.height; }
  uint64_t resourceSize() const override;

 protected:
  CNNConvolutionGradientState() = default;
  void releaseResources() override;
  BufferPtr gradientForWeights_, gradientForBiases_;
  std::shared_ptr<CNNConvolution> convolution_;
};
using CNNConvolutionGradientStatePtr = std::shared_ptr<CNNConvolutionGradientState>;
using CNNConvolutionGradientStateBatch = std::vector<CNNConvolutionGradientStatePtr>;

}  // namespace mpsnn
