// Internal (kernel layer): what the convolution family's kernel classes share — data-source
// loading and decoding, batch-norm folding, the device copy of the weights, the device-side export
// to and reload from a CNNConvolutionWeightsAndBiasesState, and the dispatch of a ConvolutionProblem.
// Backends never include this file.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "kernels/convolution_impl.h"
#include "mpsnn/convolution.h"

namespace mpsnn::detail {

/// What a kernel's work items keep alive: the weights in device memory and the backend cache.
struct ConvolutionState {
  StoragePtr weights, biases, prelu;
  NeuronParams neuron;
  std::shared_ptr<ConvolutionCache> cache = std::make_shared<ConvolutionCache>();
};

// Bounds that keep every index computation far from int64 overflow; real networks are far below.
constexpr uint64_t kMaxConvolutionExtent = uint64_t(1) << 24;  // kernel size, stride, dilation, channels
constexpr int64_t kMaxConvolutionOffset = int64_t(1) << 40;

/// Input channels per group as the weights are laid out (1 for depthwise).
uint64_t convolutionWeightInputChannels(const CNNConvolutionDescriptor& d);
/// Co · kH · kW · weightInputChannels.
uint64_t convolutionWeightCount(const CNNConvolutionDescriptor& d);
/// Formats a convolution reads and writes: float and unorm.
bool isConvolutionComputeFormat(ImageFeatureChannelFormat f);

/// Spec 01 §4.3: the source and destination are float or unorm images (`who` names the kernel).
void validateConvolutionFormats(const std::string& who, const Image& source, const Image& destination);

/// A data source's contents after load → copy → purge (spec 01 §3).
struct LoadedConvolution {
  CNNConvolutionDescriptor descriptor;
  std::vector<float> weights;  // decoded to float32, in the data source's order
  std::vector<float> biases;   // Co values, or empty
  bool roundToHalf = false;    // kernelWeightsDataType is Float16 (the protocol's default)
  std::string label;
};
/// Validates and decodes (spec 01 §3 Invalid list) with `who` naming the kernel class. With
/// `reloadOf`, the descriptor must keep that shape. Every successful load() is balanced by purge().
LoadedConvolution loadConvolutionDataSource(const std::string& who, CNNConvolutionDataSource& dataSource,
                                            NNConvolutionAccumulatorPrecisionOption precision,
                                            const CNNConvolutionDescriptor* reloadOf);

/// Folds batch norm (spec 01 §2.1) into `weights` / `biases` in place, rounds the weights to float16
/// when `roundToHalf` (after folding, as a float16 weight store would hold them), and uploads them
/// with the descriptor's neuron to `device`.
std::shared_ptr<ConvolutionState> makeConvolutionState(const DevicePtr& device,
                                                       const CNNConvolutionDescriptor& descriptor,
                                                       std::vector<float>& weights,
                                                       std::vector<float>& biases, bool roundToHalf);

/// The weights as [outputs][height][width][inner] (the kernel's OHWI order); `widthMajorSource`:
/// the data source's order is [outputs][width][height][inner] (a fully-connected layer's OWHI).
struct WeightLayout {
  int64_t outputs = 0, height = 1, width = 1, inner = 1;
  bool widthMajorSource = false;
  int64_t count() const { return outputs * height * width * inner; }
};
WeightLayout weightLayoutOf(const CNNConvolutionDescriptor& d, bool widthMajorSource);

/// Kernel order (OHWI) ↔ data-source order of a host weight array (identity unless width-major).
std::vector<float> weightsToKernelOrder(std::vector<float> weights, const WeightLayout& layout);
std::vector<float> weightsToSourceOrder(std::vector<float> weights, const WeightLayout& layout);

/// Encodes the copy of `current`'s weights and biases into a new persistent state (`who` names the
/// kernel class in messages). Kernels without bias export zeros.
CNNConvolutionWeightsAndBiasesStatePtr encodeExportWeightsAndBiases(
    CommandBuffer& commandBuffer, const std::string& who, const DevicePtr& device,
    const CNNConvolutionDescriptor& descriptor, const ConvolutionState& current, const WeightLayout& layout);
/// Validates `state` against the kernel, then encodes the copy of its buffers into new device
/// memory and returns the state that work encoded later must use (same neuron as `current`).
std::shared_ptr<ConvolutionState> encodeReloadWeightsAndBiases(
    CommandBuffer& commandBuffer, const std::string& who, const DevicePtr& device,
    const ConvolutionState& current, const CNNConvolutionWeightsAndBiasesState& state,
    const WeightLayout& layout, bool roundToHalf);
/// Spec 01 §5, §8 at construction: stride, dilation and groups 1; not sub-pixel, not depthwise.
void validateFullyConnectedDescriptor(const std::string& who, const CNNConvolutionDescriptor& d);
/// Spec 01 §5, §8 at encode: the kernel covers the whole source and the effective clip is 1 × 1
/// (or empty).
void validateFullyConnectedImages(const std::string& who, const Image& source, const Image& destination,
                                  uint64_t kernelWidth, uint64_t kernelHeight, const IntRegion& clipRect);

/// Checks that `commandBuffer` may take work for a kernel on `device`.
void checkCommandBuffer(const std::string& who, const CommandBufferPtr& commandBuffer,
                        const DevicePtr& device);

/// Picks the implementation for `p` on `device` (the plain one when the test hook or MPSNN_FORCE_PLAIN
/// asks), records its name for lastConvolutionImplementation(), and encodes it; the work item keeps
/// `state` alive. `kernel` and `extra` are what MPSNN_VERBOSE prints.
void encodeConvolutionProblem(CommandBuffer& commandBuffer, const DevicePtr& device, const char* kernel,
                              ConvolutionProblem p, const std::shared_ptr<ConvolutionState>& state,
                              const std::string& extra);

}  // namespace mpsnn::detail
