// Float64 reference of CNNFullyConnected (spec 01 §5), straight from the formula.
#include "ref/ref.h"

namespace mpsnn::ref {

void fullyConnectedKernel(const CNNConvolutionDescriptor& desc, const ConvolutionWeights& w, bool widthMajor,
                          const UnaryPlacement& p, const RefImage& src, RefImage& dst) {
  const int64_t H = src.h, W = src.w, Ci = int64_t(desc.inputFeatureChannels()),
                Co = int64_t(desc.outputFeatureChannels());
  const int64_t srcC0 = int64_t(p.sourceFeatureChannelOffset),
                dstC0 = int64_t(p.destinationFeatureChannelOffset);
  const int64_t z0 = int64_t(p.clipRect.origin.z);
  // Wfc[o](x, y, i): OHWI weights[((o·H + y)·W + x)·Ci + i]; OWHI weights[((o·W + x)·H + y)·Ci + i].
  auto weight = [&](int64_t o, int64_t x, int64_t y, int64_t i) {
    return w.weights[size_t(widthMajor ? ((o * W + x) * H + y) * Ci + i : ((o * H + y) * W + x) * Ci + i)];
  };
  forEachDestinationPixel(p, src, dst, [&](int64_t k, int64_t, int64_t, int64_t X, int64_t Y) {
    const int64_t n = p.offset.z + k;
    for (int64_t o = 0; o < Co; ++o) {
      double acc = w.biases.empty() ? 0.0 : w.biases[size_t(o)];
      for (int64_t y = 0; y < H; ++y)
        for (int64_t x = 0; x < W; ++x)
          for (int64_t i = 0; i < Ci; ++i) acc += weight(o, x, y, i) * src.at(n, y, x, srcC0 + i);
      dst.at(z0 + k, Y, X, dstC0 + o) = neuron(desc.fusedNeuronDescriptor(), acc, o);
    }
  });
}

}  // namespace mpsnn::ref
