// CPU binary convolution (spec 01 §7, §8): one OpenMP loop over destination pixels. Each pixel's
// window is gathered once as biased, scaled float inputs; XNOR and AND pack them into bit words and
// count with popcount (32 − 2·popcount(a XOR w) and popcount(a AND w) per full word), BinaryWeights
// adds or subtracts the float inputs bit by bit.
#include <bit>
#include <cmath>
#include <vector>

#include "kernels/binary_convolution_impl.h"

namespace mpsnn::detail {
namespace {

bool plainSupports(const BinaryConvolutionProblem&) { return true; }

void plainRun(const BinaryConvolutionProblem& p, QueueContext&) {
  const ImageView& s = p.io.src;
  const ImageView& d = p.io.dst;
  const int64_t kW = p.kernelWidth, kH = p.kernelHeight, Ci = p.inputChannels, Co = p.outputChannels;
  const int64_t words = p.words, taps = kH * kW;
  const int64_t halfW = ((kW - 1) * p.dilationX + 1) / 2, halfH = ((kH - 1) * p.dilationY + 1) / 2;
  const bool bits = p.type != CNNBinaryConvolutionType::BinaryWeights;
  const void* in = s.data();
  void* out = d.data();
  const int64_t cells = d.n * d.h * d.w;

  // in'(p, f) of the pixel (n, sy, sx), the edge-mode value substituted before bias and scale.
  auto gather = [&](int64_t n, int64_t sy, int64_t sx, float* values) {
    const bool inside = resolveEdge(sy, s.h, p.io.edgeMode) && resolveEdge(sx, s.w, p.io.edgeMode);
    const int64_t at = inside ? s.index(n, sy, sx, 0) : 0;
    for (int64_t f = 0; f < Ci; ++f) {
      const float v = inside ? loadAsFloat(in, at + f, s.format) : 0.0f;
      values[f] = (v + p.inputBias[f]) * p.inputScale[f];
    }
  };

#pragma omp parallel if (cells * Co * taps * Ci > 65536)
  {
    std::vector<float> patch(static_cast<size_t>(taps * Ci)), pixel(static_cast<size_t>(Ci));
    std::vector<uint32_t> packed(static_cast<size_t>(taps * words));
#pragma omp for schedule(static)
    for (int64_t cell = 0; cell < cells; ++cell) {
      const int64_t n = cell / (d.h * d.w), Y = cell / d.w % d.h, X = cell % d.w;
      const int64_t cx = p.io.offsetX + X * p.strideX, cy = p.io.offsetY + Y * p.strideY;
      for (int64_t ky = 0; ky < kH; ++ky)
        for (int64_t kx = 0; kx < kW; ++kx)
          gather(n, cy - halfH + ky * p.dilationY, cx - halfW + kx * p.dilationX,
                 patch.data() + (ky * kW + kx) * Ci);
      if (bits) {
        // Bit f of a tap = 1 where bin(in') = +1 (not negative).
        std::fill(packed.begin(), packed.end(), 0u);
        for (int64_t t = 0; t < taps; ++t)
          for (int64_t f = 0; f < Ci; ++f)
            if (!(patch[size_t(t * Ci + f)] < 0.0f)) packed[size_t(t * words + f / 32)] |= 1u << (f % 32);
      }
      float beta = 1.0f;
      if (p.betaScaling) {
        // Mean of A over the undilated kW × kH window around the centre.
        float sum = 0.0f;
        for (int64_t dy = -(kH / 2); dy <= (kH - 1) / 2; ++dy)
          for (int64_t dx = -(kW / 2); dx <= (kW - 1) / 2; ++dx) {
            gather(n, cy + dy, cx + dx, pixel.data());
            float a = 0.0f;
            for (int64_t f = 0; f < Ci; ++f) a += std::fabs(pixel[size_t(f)]);
            sum += a / float(Ci);
          }
        beta = sum / float(taps);
      }
      for (int64_t o = 0; o < Co; ++o) {
        const uint32_t* w = p.weights + o * taps * words;
        float S = 0.0f;
        if (p.type == CNNBinaryConvolutionType::BinaryWeights) {
          for (int64_t t = 0; t < taps; ++t)
            for (int64_t f = 0; f < Ci; ++f) {
              const float v = patch[size_t(t * Ci + f)];
              S += (w[t * words + f / 32] >> (f % 32)) & 1u ? v : -v;
            }
        } else {
          int64_t count = 0;
          for (int64_t t = 0; t < taps; ++t)
            for (int64_t k = 0; k < words; ++k) {
              const uint32_t mask = p.wordMask(k), a = packed[size_t(t * words + k)], b = w[t * words + k];
              if (p.type == CNNBinaryConvolutionType::XNOR)  // matches − mismatches
                count += int64_t(std::popcount(mask)) - 2 * int64_t(std::popcount((a ^ b) & mask));
              else
                count += std::popcount(a & b & mask);
            }
          S = float(count);
        }
        const float v = S * p.outputScale[o] * beta + p.outputBias[o];
        storeFromFloat(out, d.index(n, Y, X, o), d.format, applyNeuron(p.neuron, v, o));
      }
    }
  }
}

}  // namespace

ImplementationList<BinaryConvolutionProblem>& cpuBinaryConvolutionImplementations() {
  static ImplementationList<BinaryConvolutionProblem> list = {
      {"cpu:plain", plainSupports, plainRun},
  };
  return list;
}

}  // namespace mpsnn::detail
