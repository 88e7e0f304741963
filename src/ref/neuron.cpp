// Float64 reference of the neurons (spec 03).
#include <cmath>

#include "ref/ref.h"

namespace mpsnn::ref {

double neuron(const NNNeuronDescriptor& d, double x, int64_t channel) {
  const double a = d.a(), b = d.b(), c = d.c();
  switch (d.neuronType()) {
    case CNNNeuronType::None: return x;
    case CNNNeuronType::ReLU: return std::isnan(x) ? x : (x >= 0 ? x : a * x);
    case CNNNeuronType::Linear: return a * x + b;
    case CNNNeuronType::Sigmoid: return 1.0 / (1.0 + std::exp(-x));
    case CNNNeuronType::HardSigmoid: {
      double v = a * x + b;
      return std::isnan(v) ? v : std::min(1.0, std::max(0.0, v));
    }
    case CNNNeuronType::TanH: return a * std::tanh(b * x);
    case CNNNeuronType::Absolute: return std::fabs(x);
    case CNNNeuronType::SoftPlus: return a * std::log(1.0 + std::exp(b * x));
    case CNNNeuronType::SoftSign: return x / (1.0 + std::fabs(x));
    case CNNNeuronType::ELU: return std::isnan(x) ? x : (x >= 0 ? x : a * (std::exp(x) - 1.0));
    case CNNNeuronType::PReLU: return std::isnan(x) ? x : (x >= 0 ? x : double((*d.data())[size_t(channel)]) * x);
    case CNNNeuronType::ReLUN: {
      if (std::isnan(x)) return x;
      double v = x >= 0 ? x : a * x;
      return std::min(v, b);
    }
    case CNNNeuronType::Power: return std::pow(a * x + b, c);
    case CNNNeuronType::Exponential: return d.c() == -1.0f ? std::exp(a * x + b) : std::pow(c, a * x + b);
    case CNNNeuronType::Logarithm: return d.c() == -1.0f ? std::log(a * x + b) : std::log(a * x + b) / std::log(c);
    case CNNNeuronType::GeLU: return 0.5 * x * (1.0 + std::erf(x / std::sqrt(2.0)));
    default: return x;
  }
}

void neuronKernel(const NNNeuronDescriptor& d, const UnaryPlacement& p, const RefImage& src, RefImage& dst) {
  const int64_t cRead = std::min<int64_t>(int64_t(std::min<uint64_t>(p.sourceFeatureChannelMaxCount, uint64_t(src.c))),
                                          src.c - int64_t(p.sourceFeatureChannelOffset));
  forEachDestinationPixel(p, src, dst, [&](int64_t k, int64_t x, int64_t y, int64_t X, int64_t Y) {
    for (int64_t ch = 0; ch < cRead; ++ch) {
      double v = src.read(p.offset.z + k, p.offset.y + y, p.offset.x + x, int64_t(p.sourceFeatureChannelOffset) + ch,
                          p.edgeMode);
      dst.at(int64_t(p.clipRect.origin.z) + k, Y, X, int64_t(p.destinationFeatureChannelOffset) + ch) =
          neuron(d, v, ch);
    }
  });
}

}  // namespace mpsnn::ref
