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
