// Float64 reference of CNNConvolutionTranspose (spec 01 §6.1), straight from the formulas.
#include <algorithm>

#include "ref/ref.h"

namespace mpsnn::ref {

void convolutionTransposeKernel(const CNNConvolutionDescriptor& desc, const ConvolutionWeights& w,
                                int64_t kernelOffsetX, int64_t kernelOffsetY, const UnaryPlacement& p,
                                const RefImage& src, RefImage& dst) {
  const int64_t kW = int64_t(desc.kernelWidth()), kH = int64_t(desc.kernelHeight());
  const int64_t sX = int64_t(desc.strideInPixelsX()), sY = int64_t(desc.strideInPixelsY());
  const int64_t dX = int64_t(desc.dilationRateX()), dY = int64_t(desc.dilationRateY());
  const int64_t kWd = (kW - 1) * dX + 1, kHd = (kH - 1) * dY + 1;
  const int64_t Ci = int64_t(desc.inputFeatureChannels()), Co = int64_t(desc.outputFeatureChannels());
  const bool depthwise = desc.isDepthWise();
  const int64_t m = depthwise ? Co / Ci : 0;
  const int64_t G = int64_t(desc.groups());
  const int64_t Cig = depthwise ? 1 : Ci / G, Cog = depthwise ? 0 : Co / G;
  const int64_t srcC0 = int64_t(p.sourceFeatureChannelOffset),
                dstC0 = int64_t(p.destinationFeatureChannelOffset);
  const int64_t z0 = int64_t(p.clipRect.origin.z);
  // Step 1: the zero-inserted image Z, Zw = (W − 1)·sX + 1; reads outside Z follow the edge mode on
  // Z's extent (Clamp: clamp into [0, Zw − 1], then read Z there).
  const int64_t Zw = (src.w - 1) * sX + 1, Zh = (src.h - 1) * sY + 1;
  auto Z = [&](int64_t n, int64_t zy, int64_t zx, int64_t c) -> double {
    if (zx < 0 || zx >= Zw || zy < 0 || zy >= Zh) {
      if (p.edgeMode != ImageEdgeMode::Clamp) return 0.0;
      zx = std::clamp<int64_t>(zx, 0, Zw - 1);
      zy = std::clamp<int64_t>(zy, 0, Zh - 1);
    }
    if (zx % sX != 0 || zy % sY != 0) return 0.0;  // an inserted zero
    return src.at(n, zy / sY, zx / sX, c);
  };
  // Step 2: stride-1 convolution over Z, total centre offset t = offset·s + kernelOffset.
  const int64_t tX = p.offset.x * sX + kernelOffsetX, tY = p.offset.y * sY + kernelOffsetY;
  forEachDestinationPixel(p, src, dst, [&](int64_t k, int64_t x, int64_t y, int64_t X, int64_t Y) {
    const int64_t n = p.offset.z + k;
    for (int64_t o = 0; o < Co; ++o) {
      double acc = w.biases.empty() ? 0.0 : w.biases[size_t(o)];
      for (int64_t ky = 0; ky < kH; ++ky)
        for (int64_t kx = 0; kx < kW; ++kx) {
          const int64_t zx = tX + x - kWd / 2 + kx * dX, zy = tY + y - kHd / 2 + ky * dY;
          if (depthwise) {  // output o = k·m + q reads input channel k (§4.5)
            acc += w.weights[size_t((o * kH + ky) * kW + kx)] * Z(n, zy, zx, srcC0 + o / m);
          } else {
            const int64_t g = o / Cog;
            for (int64_t i = 0; i < Cig; ++i)
              acc +=
                  w.weights[size_t(((o * kH + ky) * kW + kx) * Cig + i)] * Z(n, zy, zx, srcC0 + g * Cig + i);
          }
        }
      dst.at(z0 + k, Y, X, dstC0 + o) = neuron(desc.fusedNeuronDescriptor(), acc, o);
    }
  });
}

}  // namespace mpsnn::ref
