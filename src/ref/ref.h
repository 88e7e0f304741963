// The float64 reference of every op: the test oracle (DESIGN §2). Written straight from the spec,
// independent of the kernels' own resolution code, slow and simple on purpose.
#pragma once
#include <cstdint>
#include <vector>

#include "mpsnn/convolution.h"
#include "mpsnn/neuron.h"
#include "mpsnn/types.h"

namespace mpsnn::ref {

/// A host image batch in float64, NHWC, dense.
struct RefImage {
  int64_t n = 0, h = 0, w = 0, c = 0;
  std::vector<double> data;
  RefImage() = default;
  RefImage(int64_t n_, int64_t h_, int64_t w_, int64_t c_) : n(n_), h(h_), w(w_), c(c_), data(size_t(n_ * h_ * w_ * c_)) {}
  double& at(int64_t in, int64_t y, int64_t x, int64_t ch) { return data[size_t(((in * h + y) * w + x) * c + ch)]; }
  double at(int64_t in, int64_t y, int64_t x, int64_t ch) const {
    return data[size_t(((in * h + y) * w + x) * c + ch)];
  }
  /// Source read with an edge mode (spec 00 §1.5): Zero → 0, Clamp → nearest pixel.
  double read(int64_t in, int64_t y, int64_t x, int64_t ch, ImageEdgeMode edge) const;
};

/// The unary-kernel properties that place a computation (spec 00 §4).
struct UnaryPlacement {
  Offset offset{};
  IntRegion clipRect = RectNoClip;
  uint64_t sourceFeatureChannelOffset = 0;
  uint64_t sourceFeatureChannelMaxCount = UINT64_MAX;
  uint64_t destinationFeatureChannelOffset = 0;
  ImageEdgeMode edgeMode = ImageEdgeMode::Zero;
};

/// Calls fn(k, x, y, X, Y) for every destination pixel the placement writes: k the image index within
/// the processed range, (x, y) relative to the clip origin, (X, Y) absolute destination coordinates.
template <class Fn>
void forEachDestinationPixel(const UnaryPlacement& p, const RefImage& src, const RefImage& dst, Fn fn);

/// f(x) of one neuron in float64 (spec 03 §1). `channel` indexes PReLU's slopes.
double neuron(const NNNeuronDescriptor& d, double x, int64_t channel);
/// The CNNNeuron kernel: dst(...) = f(src(...)) per spec 03 with the placement's mapping.
void neuronKernel(const NNNeuronDescriptor& d, const UnaryPlacement& p, const RefImage& src, RefImage& dst);

/// Convolution weights after data-source decoding (float32 OHWI values, Co biases), as doubles.
struct ConvolutionWeights {
  std::vector<double> weights;  // OHWI; depthwise [Co][kH][kW]
  std::vector<double> biases;   // Co (zeros when absent)
};
/// The CNNConvolution kernel (spec 01 §4.1, §4.4, §4.5) with `desc` geometry and fused neuron.
/// Batch norm must already be folded into `w` (use foldBatchNorm).
void convolutionKernel(const CNNConvolutionDescriptor& desc, const ConvolutionWeights& w, const UnaryPlacement& p,
                       const RefImage& src, RefImage& dst);
/// Spec 01 §2.1 folding in float64.
ConvolutionWeights foldBatchNorm(const CNNConvolutionDescriptor& desc, ConvolutionWeights w);

// ---- pooling (spec 02) ----------------------------------------------------------------------
enum class PoolingKind { Max, Average, L2Norm };
/// The window of a pooling kernel (dilation 1 except dilated max; zero pads only for average).
struct PoolingWindow {
  int64_t kernelWidth = 1, kernelHeight = 1;
  int64_t strideX = 1, strideY = 1;
  int64_t dilationX = 1, dilationY = 1;
  uint64_t zeroPadSizeX = 0, zeroPadSizeY = 0;
};
/// One pooled value per channel of every destination pixel the placement writes: max (§3, §5),
/// average (§2.1 Zero, §2.2 Clamp "shrink to the zero-padded image") or L2 norm (§4).
void poolingKernel(PoolingKind kind, const PoolingWindow& window, const UnaryPlacement& p, const RefImage& src,
                   RefImage& dst);
// ---- end pooling ----------------------------------------------------------------------------

// ---- implementation of the template ----
template <class Fn>
void forEachDestinationPixel(const UnaryPlacement& p, const RefImage& src, const RefImage& dst, Fn fn) {
  const bool noClip = isRectNoClip(p.clipRect);
  int64_t x0 = int64_t(p.clipRect.origin.x), y0 = int64_t(p.clipRect.origin.y);
  int64_t x1 = noClip || p.clipRect.size.width >= uint64_t(dst.w) ? dst.w
                                                                   : std::min<int64_t>(dst.w, x0 + int64_t(p.clipRect.size.width));
  int64_t y1 = noClip || p.clipRect.size.height >= uint64_t(dst.h)
                   ? dst.h
                   : std::min<int64_t>(dst.h, y0 + int64_t(p.clipRect.size.height));
  int64_t z0 = int64_t(p.clipRect.origin.z);
  int64_t depth = noClip || p.clipRect.size.depth == UINT64_MAX ? std::min(dst.n - z0, src.n - p.offset.z)
                                                                : int64_t(p.clipRect.size.depth);
  for (int64_t k = 0; k < depth; ++k)
    for (int64_t Y = y0; Y < y1; ++Y)
      for (int64_t X = x0; X < x1; ++X) fn(k, X - x0, Y - y0, X, Y);
}

}  // namespace mpsnn::ref

// =================================================================================================
// Arithmetic, comparison and dropout (spec 06 §1–§3): the float64 reference, written from the spec
// without the kernel layer's resolution code.
// =================================================================================================
#include <array>
#include <cfloat>

#include "mpsnn/arithmetic.h"
#include "mpsnn/dropout.h"

namespace mpsnn::ref {

/// The binary-kernel properties that place a computation (spec 00 §6).
struct BinaryPlacement {
  Offset primaryOffset{}, secondaryOffset{};
  IntRegion clipRect = RectNoClip;
  uint64_t primarySourceFeatureChannelOffset = 0, secondarySourceFeatureChannelOffset = 0;
  uint64_t primarySourceFeatureChannelMaxCount = UINT64_MAX, secondarySourceFeatureChannelMaxCount = UINT64_MAX;
  uint64_t destinationFeatureChannelOffset = 0;
  ImageEdgeMode primaryEdgeMode = ImageEdgeMode::Zero, secondaryEdgeMode = ImageEdgeMode::Zero;
};

enum class ArithmeticKind { Add, Subtract, Multiply, Divide, Compare };

/// The parameters of CNNArithmetic and NNCompare (spec 06 §1–§2).
struct ArithmeticSpec {
  ArithmeticKind kind = ArithmeticKind::Add;
  double primaryScale = 1, secondaryScale = 1, bias = 0;
  double minimumValue = -FLT_MAX, maximumValue = FLT_MAX;
  uint64_t primaryStrideX = 1, primaryStrideY = 1, primaryStrideC = 1;
  uint64_t secondaryStrideX = 1, secondaryStrideY = 1, secondaryStrideC = 1;
  NNComparisonType comparison = NNComparisonType::Equal;  // Compare only
  double threshold = 0;                                   // Compare only
};
/// The result for operands a (primary) and b (secondary): spec 06 §1.2 with the clamp, or §2.
double arithmetic(const ArithmeticSpec& s, double a, double b);
/// The kernel: every destination element of the placement's clip region per spec 06 §1.1.
void arithmeticKernel(const ArithmeticSpec& s, const BinaryPlacement& p, const RefImage& primary,
                      const RefImage& secondary, RefImage& dst);

/// Philox-4x32-10 as Random123's philox4x32_R(10, counter, key).
std::array<uint32_t, 4> philox4x32_10(std::array<uint32_t, 4> counter, std::array<uint32_t, 2> key);

/// The parameters of CNNDropout and the counter words of one encode (spec 10 §10.12.1).
struct DropoutSpec {
  float keepProbability = 0.5f;
  uint64_t seed = 0;
  IntSize maskStrideInPixels{1, 1, 1};
  uint64_t trainingStep = 0;  // t of the encode
  int64_t batchBase = 0;      // batch position of the first processed image (index in encodeBatch)
};
/// Whether mask element `element` of batch position `n` is kept.
bool dropoutKeeps(const DropoutSpec& s, int64_t n, uint64_t element);
/// The kernel: dst = m · src / keepProbability over the placement's clip region.
void dropoutKernel(const DropoutSpec& s, const UnaryPlacement& p, const RefImage& src, RefImage& dst);

}  // namespace mpsnn::ref

// =================================================================================================
// SoftMax and normalization (spec 04 §1–§7): the float64 reference, written from the spec without
// the kernel layer's resolution code.
// =================================================================================================
#include "mpsnn/normalization.h"
#include "mpsnn/softmax.h"

namespace mpsnn::ref {

/// CNNSoftMax (§1), or CNNLogSoftMax (§2) when `logarithm`, over the C_read channels of each pixel.
void softMaxKernel(bool logarithm, const UnaryPlacement& p, const RefImage& src, RefImage& dst);

/// CNNCrossChannelNormalization (§3).
struct CrossChannelNormalizationSpec {
  int64_t kernelSize = 5;
  double alpha = 1, beta = 5, delta = 1;
};
void crossChannelNormalizationKernel(const CrossChannelNormalizationSpec& s, const UnaryPlacement& p,
                                     const RefImage& src, RefImage& dst);

/// CNNSpatialNormalization (§4) and CNNLocalContrastNormalization (§5); p0, pm, ps only for the latter.
struct WindowNormalizationSpec {
  bool localContrast = false;
  int64_t kernelWidth = 1, kernelHeight = 1;
  double alpha = 1, beta = 5, delta = 1;
  double p0 = 1, pm = 0, ps = 1;
};
void windowNormalizationKernel(const WindowNormalizationSpec& s, const UnaryPlacement& p, const RefImage& src,
                               RefImage& dst);

/// CNNBatchNormalization (§6) with the kernel's parameters (C = gamma.size() values each) and neuron.
struct BatchNormalizationSpec {
  std::vector<double> gamma, beta, mean, variance;
  double epsilon = 0;
  NNNeuronDescriptor neuron;
};
void batchNormalizationKernel(const BatchNormalizationSpec& s, const UnaryPlacement& p, const RefImage& src,
                              RefImage& dst);

/// CNNInstanceNormalization (§7): statistics over the whole source image of each processed image.
struct InstanceNormalizationSpec {
  std::vector<double> gamma, beta;
  double epsilon = 0;
};
void instanceNormalizationKernel(const InstanceNormalizationSpec& s, const UnaryPlacement& p,
                                 const RefImage& src, RefImage& dst);

}  // namespace mpsnn::ref

// =================================================================================================
// Resampling (spec 05 §1, §4): the float64 reference of the upsampling and image-scaling kernels,
// written from the spec without the kernel layer's resolution code.
// =================================================================================================
#include "mpsnn/resampling.h"

namespace mpsnn::ref {

/// CNNUpsamplingNearest (§1.1) or CNNUpsamplingBilinear (§1.2) with integer factors.
struct UpsamplingSpec {
  bool bilinear = false;
  int64_t scaleFactorX = 1, scaleFactorY = 1;
  bool alignCorners = false;
};
void upsamplingKernel(const UpsamplingSpec& s, const UnaryPlacement& p, const RefImage& src, RefImage& dst);

/// ImageBilinearScale (§4.1) or ImageLanczosScale (§4.2); a null transform stretches the source over
/// the destination image (`dst`'s full width and height).
enum class ImageScaleFilter { Bilinear, Lanczos };
void imageScaleKernel(ImageScaleFilter filter, const ScaleTransform* transform, const UnaryPlacement& p,
                      const RefImage& src, RefImage& dst);

/// Spec 05's sample(): bilinear interpolation of channel `ch` of image `n` at index-space (fx, fy),
/// positions clamped to the image.
double bilinearSample(const RefImage& src, int64_t n, int64_t ch, double fx, double fy);

}  // namespace mpsnn::ref

// =================================================================================================
// Reductions, reshape, slice, pad and concatenation (spec 06 §4–§8): the float64 reference, written
// from the spec without the kernel layer's resolution code.
// =================================================================================================
#include "mpsnn/reduce.h"
#include "mpsnn/reshape.h"

namespace mpsnn::ref {

/// Every unary reduction of spec 06 §4.1.
enum class ReduceKind {
  RowMin, RowMax, RowSum, RowMean,
  ColumnMin, ColumnMax, ColumnSum, ColumnMean,
  FeatureChannelsMin, FeatureChannelsMax, FeatureChannelsSum, FeatureChannelsMean,
  FeatureChannelsArgumentMin, FeatureChannelsArgumentMax,
  SpatialMean,
};
/// The properties that place a unary reduction: clipRectSource replaces offset.
struct ReducePlacement {
  IntRegion clipRectSource = RectNoClip;
  IntRegion clipRect = RectNoClip;
  uint64_t sourceFeatureChannelOffset = 0;
  uint64_t sourceFeatureChannelMaxCount = UINT64_MAX;
  uint64_t destinationFeatureChannelOffset = 0;
  double weight = 1;  // NNReduceFeatureChannelsSum only
};
/// The result of `kind` over R = clipRectSource ∩ src, written at clipRect.origin of `dst` (the part
/// inside clipRect). The placement must be valid.
void reduceKernel(ReduceKind kind, const ReducePlacement& p, const RefImage& src, RefImage& dst);

/// NNReduceFeatureChannelsAndWeightsSum (with and without doWeightedSumByNonZeroWeights) and ...Mean.
enum class WeightsReduceKind { Sum, SumByNonZeroWeights, Mean };
struct WeightsReducePlacement {
  IntRegion primarySourceClipRect = RectNoClip, secondarySourceClipRect = RectNoClip;
  IntRegion clipRect = RectNoClip;
  uint64_t primarySourceFeatureChannelOffset = 0, secondarySourceFeatureChannelOffset = 0;
  uint64_t primarySourceFeatureChannelMaxCount = UINT64_MAX, secondarySourceFeatureChannelMaxCount = UINT64_MAX;
  uint64_t destinationFeatureChannelOffset = 0;
};
void reduceWeightsKernel(WeightsReduceKind kind, const WeightsReducePlacement& p, const RefImage& data,
                         const RefImage& weights, RefImage& dst);

/// NNReshape (spec 06 §5): each image's C_read channels from `sourceFeatureChannelOffset`, in row-major
/// HWC order, into the destination's W' × H' × (C_dst − destinationFeatureChannelOffset).
void reshapeKernel(uint64_t sourceFeatureChannelOffset, uint64_t sourceFeatureChannelMaxCount,
                   uint64_t destinationFeatureChannelOffset, const RefImage& src, RefImage& dst);
/// NNSlice (spec 06 §6) with the placement's offset, clipRect, channel offsets and edge mode.
void sliceKernel(const UnaryPlacement& p, const RefImage& src, RefImage& dst);

/// NNPad's channel padding and fill (spec 06 §7); the x/y padding is the placement's offset.
struct PadSpec {
  uint64_t channelsBefore = 0, channelsAfter = 0;
  double fillValue = 0;
  std::vector<double> fillValueArray;  // empty: fillValue for every channel
};
/// The value of an out-of-range coordinate `p` on an axis of `length` (spec 00 §1.5): the in-range
/// coordinate it reads, or −1 when it reads the fill (Zero, Constant).
int64_t padCoordinate(int64_t p, int64_t length, ImageEdgeMode mode);
void padKernel(const PadSpec& s, const UnaryPlacement& p, const RefImage& src, RefImage& dst);

/// NNConcatenation (spec 06 §8): the inputs' channels at off_j = Σ_{i<j} roundUp(C_i, 4), zeros in
/// [off_j + C_j, off_j + roundUp(C_j, 4)); other channels of `dst` untouched.
void concatenationKernel(const std::vector<RefImage>& inputs, RefImage& dst);

}  // namespace mpsnn::ref

// =================================================================================================
// Convolution family beyond CNNConvolution (spec 01 §5–§8, §10): CNNConvolutionTranspose,
// CNNFullyConnected, CNNBinaryConvolution / CNNBinaryFullyConnected and NNGramMatrixCalculation,
// written from the spec formulas (not from the kernels' resolution to convolution problems).
// =================================================================================================
namespace mpsnn::ref {

/// CNNConvolutionTranspose (spec 01 §6.1): Z = the source with strideInPixels − 1 zeros inserted
/// between pixels, read with the edge mode on Z's extent; a stride-1 convolution over Z with the
/// weights as given, centre offset offset·stride + kernelOffset. `w` already decoded and folded.
void convolutionTransposeKernel(const CNNConvolutionDescriptor& desc, const ConvolutionWeights& w,
                                int64_t kernelOffsetX, int64_t kernelOffsetY, const UnaryPlacement& p,
                                const RefImage& src, RefImage& dst);

/// CNNFullyConnected (spec 01 §5): dst(n, clip origin, o) = neuron(bias[o] + Σ Wfc[o](x, y, i) ·
/// src(n, y, x, i)) over the whole source; `w.weights` in the data source's order, OHWI
/// ([Co][H][W][Ci]) or, with `widthMajor`, OWHI ([Co][W][H][Ci]). The placement's offset.x/y are
/// ignored.
void fullyConnectedKernel(const CNNConvolutionDescriptor& desc, const ConvolutionWeights& w, bool widthMajor,
                          const UnaryPlacement& p, const RefImage& src, RefImage& dst);

/// The parameters of CNNBinaryConvolution / CNNBinaryFullyConnected (spec 01 §7, §8).
struct BinaryConvolutionSpec {
  CNNConvolutionDescriptor desc;  // kernel size, strides, dilation, Ci, Co, neuron
  std::vector<uint32_t> weights;  // data source's order: [Co][kH][kW][ceil(Ci/32)] ([Co][W][H][...] if widthMajor)
  CNNBinaryConvolutionType type = CNNBinaryConvolutionType::BinaryWeights;
  bool betaScaling = false;
  bool fullyConnected = false;  // §8: window = whole source, centre (kW/2, kH/2), offset ignored
  bool widthMajor = false;      // fully connected with FullyConnectedWeightOrder::OWHI
  std::vector<double> outputBias, outputScale;  // Co each
  std::vector<double> inputBias, inputScale;    // Ci each
};
void binaryConvolutionKernel(const BinaryConvolutionSpec& s, const UnaryPlacement& p, const RefImage& src,
                             RefImage& dst);

/// NNGramMatrixCalculation (spec 01 §10): dst(n, 0, f, c) = alpha · Σ_{y,x} src(n, y, x, f) ·
/// src(n, y, x, c) over the channels read.
void gramMatrixKernel(double alpha, const UnaryPlacement& p, const RefImage& src, RefImage& dst);

}  // namespace mpsnn::ref
// ---- end convolution family ---------------------------------------------------------------------
