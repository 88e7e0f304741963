// Float64 reference of CNNConvolution (spec 01 §2.1, §4.1, §4.4, §4.5), straight from the formulas.
#include <cmath>

#include "ref/ref.h"

namespace mpsnn::ref {

ConvolutionWeights foldBatchNorm(const CNNConvolutionDescriptor& desc, ConvolutionWeights w) {
  if (!desc.hasBatchNormalization()) return w;
  const int64_t co = int64_t(desc.outputFeatureChannels());
  const int64_t perOutput = int64_t(w.weights.size()) / co;
  if (w.biases.empty()) w.biases.assign(size_t(co), 0.0);
  for (int64_t o = 0; o < co; ++o) {
    const double I = double(desc.batchNormGamma()[size_t(o)]) /
                     std::sqrt(double(desc.batchNormVariance()[size_t(o)]) + double(desc.batchNormEpsilon()));
    const double J = double(desc.batchNormBeta()[size_t(o)]) - I * double(desc.batchNormMean()[size_t(o)]);
    for (int64_t i = 0; i < perOutput; ++i) w.weights[size_t(o * perOutput + i)] *= I;
    w.biases[size_t(o)] = w.biases[size_t(o)] * I + J;
  }
  return w;
}

void convolutionKernel(const CNNConvolutionDescriptor& desc, const ConvolutionWeights& w,
                       const UnaryPlacement& p, const RefImage& src, RefImage& dst) {
  const int64_t kW = int64_t(desc.kernelWidth()), kH = int64_t(desc.kernelHeight());
  const int64_t sX = int64_t(desc.strideInPixelsX()), sY = int64_t(desc.strideInPixelsY());
  const int64_t dX = int64_t(desc.dilationRateX()), dY = int64_t(desc.dilationRateY());
  const int64_t kWd = (kW - 1) * dX + 1, kHd = (kH - 1) * dY + 1;
  const int64_t Ci = int64_t(desc.inputFeatureChannels()), Co = int64_t(desc.outputFeatureChannels());
  const int64_t r = int64_t(desc.subPixelScaleFactor());
  const bool depthwise = desc.isDepthWise();
  const int64_t m = depthwise ? Co / Ci : 0;  // channel multiplier (§4.5)
  const int64_t G = int64_t(desc.groups());
  const int64_t Cig = depthwise ? 1 : Ci / G, Cog = depthwise ? 0 : Co / G;
  const int64_t channelsOut = Co / (r * r);
  const int64_t srcC0 = int64_t(p.sourceFeatureChannelOffset),
                dstC0 = int64_t(p.destinationFeatureChannelOffset);
  const int64_t z0 = int64_t(p.clipRect.origin.z);

  forEachDestinationPixel(p, src, dst, [&](int64_t k, int64_t x, int64_t y, int64_t X, int64_t Y) {
    // §4.4: destination (x, y, c) is the conv result at (x/r, y/r) for output channel
    // (Co/r²)·(r·(y mod r) + (x mod r)) + c; with r = 1 it is the conv result at (x, y, c).
    const int64_t ox = x / r, oy = y / r;
    const int64_t block = r * (y % r) + (x % r);
    for (int64_t c = 0; c < channelsOut; ++c) {
      const int64_t o = channelsOut * block + c;
      double acc = w.biases.empty() ? 0.0 : w.biases[size_t(o)];
      for (int64_t ky = 0; ky < kH; ++ky) {
        for (int64_t kx = 0; kx < kW; ++kx) {
          const int64_t sx = p.offset.x + ox * sX - kWd / 2 + kx * dX;
          const int64_t sy = p.offset.y + oy * sY - kHd / 2 + ky * dY;
          if (depthwise) {  // §4.5: output o = k·m + q reads input channel k
            const double v = src.read(p.offset.z + k, sy, sx, srcC0 + o / m, p.edgeMode);
            acc += w.weights[size_t((o * kH + ky) * kW + kx)] * v;
          } else {  // §4.1: group g = floor(o / Cog) reads channels g·Cig + i
            const int64_t g = o / Cog;
            for (int64_t i = 0; i < Cig; ++i) {
              const double v = src.read(p.offset.z + k, sy, sx, srcC0 + g * Cig + i, p.edgeMode);
              acc += w.weights[size_t(((o * kH + ky) * kW + kx) * Cig + i)] * v;
            }
          }
        }
      }
      dst.at(z0 + k, Y, X, dstC0 + c) = neuron(desc.fusedNeuronDescriptor(), acc, o);
    }
  });
}

}  // namespace mpsnn::ref
