// Float64 reference of CNNBinaryConvolution and CNNBinaryFullyConnected (spec 01 §7, §8), straight
// from the formulas: per-channel products (no bit packing), beta from its own window.
#include <cmath>

#include "ref/ref.h"

namespace mpsnn::ref {

void binaryConvolutionKernel(const BinaryConvolutionSpec& s, const UnaryPlacement& p, const RefImage& src,
                             RefImage& dst) {
  const CNNConvolutionDescriptor& d = s.desc;
  const int64_t kW = int64_t(d.kernelWidth()), kH = int64_t(d.kernelHeight());
  const int64_t sX = int64_t(d.strideInPixelsX()), sY = int64_t(d.strideInPixelsY());
  const int64_t dX = int64_t(d.dilationRateX()), dY = int64_t(d.dilationRateY());
  const int64_t kWd = (kW - 1) * dX + 1, kHd = (kH - 1) * dY + 1;
  const int64_t Ci = int64_t(d.inputFeatureChannels()), Co = int64_t(d.outputFeatureChannels());
  const int64_t words = (Ci + 31) / 32;
  const int64_t srcC0 = int64_t(p.sourceFeatureChannelOffset),
                dstC0 = int64_t(p.destinationFeatureChannelOffset);
  const int64_t z0 = int64_t(p.clipRect.origin.z);
  // §8: the fully connected window covers the whole source: centre (kW/2, kH/2) whatever offset is.
  const int64_t offX = s.fullyConnected ? kW / 2 : p.offset.x, offY = s.fullyConnected ? kH / 2 : p.offset.y;
  // Weight bit of (c, ky, kx, f) in the data source's order.
  auto bit = [&](int64_t c, int64_t ky, int64_t kx, int64_t f) {
    const int64_t tap = s.widthMajor ? (c * kW + kx) * kH + ky : (c * kH + ky) * kW + kx;
    return (s.weights[size_t(tap * words + f / 32)] >> (f % 32)) & 1u;
  };
  // in'(p, f): the edge-mode value of the pixel first, then input bias, then input scale.
  auto input = [&](int64_t n, int64_t y, int64_t x, int64_t f) {
    const double v = src.read(n, y, x, srcC0 + f, p.edgeMode);
    return (v + s.inputBias[size_t(f)]) * s.inputScale[size_t(f)];
  };
  forEachDestinationPixel(p, src, dst, [&](int64_t k, int64_t x, int64_t y, int64_t X, int64_t Y) {
    const int64_t n = p.offset.z + k;
    const int64_t cx = offX + x * sX, cy = offY + y * sY;
    double beta = 1.0;
    if (s.betaScaling) {
      double sum = 0.0;
      for (int64_t dy = -(kH / 2); dy <= (kH - 1) / 2; ++dy)
        for (int64_t dx = -(kW / 2); dx <= (kW - 1) / 2; ++dx) {
          double a = 0.0;
          for (int64_t f = 0; f < Ci; ++f) a += std::fabs(input(n, cy + dy, cx + dx, f));
          sum += a / double(Ci);
        }
      beta = sum / double(kW * kH);
    }
    for (int64_t c = 0; c < Co; ++c) {
      double S = 0.0;
      for (int64_t ky = 0; ky < kH; ++ky)
        for (int64_t kx = 0; kx < kW; ++kx) {
          const int64_t sx = cx - kWd / 2 + kx * dX, sy = cy - kHd / 2 + ky * dY;
          for (int64_t f = 0; f < Ci; ++f) {
            const double v = input(n, sy, sx, f);
            const unsigned b = bit(c, ky, kx, f);
            switch (s.type) {
              case CNNBinaryConvolutionType::BinaryWeights:
                S += v * (b ? 1.0 : -1.0);
                break;
              case CNNBinaryConvolutionType::XNOR:
                S += (v < 0 ? -1.0 : 1.0) * (b ? 1.0 : -1.0);
                break;
              case CNNBinaryConvolutionType::AND:
                S += (v < 0 ? 0.0 : 1.0) * double(b);
                break;
            }
          }
        }
      const double out = S * s.outputScale[size_t(c)] * beta + s.outputBias[size_t(c)];
      dst.at(z0 + k, Y, X, dstC0 + c) = neuron(d.fusedNeuronDescriptor(), out, c);
    }
  });
}

}  // namespace mpsnn::ref
