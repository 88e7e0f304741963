// The float32 neuron functions of spec 03 §1, shared by every backend (host and CUDA device code)
// and by every kernel that fuses a neuron (convolution, fully connected, batch norm, ...).
#pragma once
#include <cmath>
#include <cstdint>

#include "core/format.h"
#include "mpsnn/neuron.h"

namespace mpsnn::detail {

/// A neuron as backends apply it; `prelu` points to per-channel slopes in the memory of the device
/// that runs the op (null unless PReLU).
struct NeuronParams {
  CNNNeuronType type = CNNNeuronType::None;
  float a = 0, b = 0, c = 0;
  const float* prelu = nullptr;
};

/// f(x) for output channel `channel`, with the type passed separately so that callers instantiated
/// for one constant type let the compiler drop the switch. NaN propagates for every type (spec 03 §1).
MPSNN_HD MPSNN_ALWAYS_INLINE float applyNeuronAs(CNNNeuronType type, const NeuronParams& p, float x, int64_t channel) {
  switch (type) {
    case CNNNeuronType::None: return x;
    case CNNNeuronType::ReLU: return x >= 0.0f ? x : p.a * x;
    case CNNNeuronType::Linear: return p.a * x + p.b;
    case CNNNeuronType::Sigmoid: {
      if (x >= 0.0f) return 1.0f / (1.0f + expf(-x));
      float e = expf(x);  // x < 0 or NaN: no overflow
      return e / (1.0f + e);
    }
    case CNNNeuronType::HardSigmoid: {
      float v = p.a * x + p.b;
      return v < 0.0f ? 0.0f : (v > 1.0f ? 1.0f : v);
    }
    case CNNNeuronType::TanH: return p.a * tanhf(p.b * x);
    case CNNNeuronType::Absolute: return fabsf(x);
    case CNNNeuronType::SoftPlus: {
      float t = p.b * x;
      return p.a * ((t > 0.0f ? t : 0.0f) + log1pf(expf(-fabsf(t))));
    }
    case CNNNeuronType::SoftSign: return x / (1.0f + fabsf(x));
    case CNNNeuronType::ELU: return x >= 0.0f ? x : p.a * expm1f(x);
    case CNNNeuronType::PReLU: return x >= 0.0f ? x : p.prelu[channel] * x;
    case CNNNeuronType::ReLUN: {
      float v = x >= 0.0f ? x : p.a * x;
      return v > p.b ? p.b : v;
    }
    case CNNNeuronType::Power: return powf(p.a * x + p.b, p.c);
    case CNNNeuronType::Exponential: return p.c == -1.0f ? expf(p.a * x + p.b) : powf(p.c, p.a * x + p.b);
    case CNNNeuronType::Logarithm:
      return p.c == -1.0f ? logf(p.a * x + p.b) : logf(p.a * x + p.b) / logf(p.c);
    case CNNNeuronType::GeLU: return 0.5f * x * (1.0f + erff(x * 0.70710678118654752f));
    default: return x;
  }
}

MPSNN_HD float applyNeuron(const NeuronParams& p, float x, int64_t channel) {
  return applyNeuronAs(p.type, p, x, channel);
}

/// Calls fn.template operator()<T>() with T the compile-time constant equal to `type`.
template <class Fn>
MPSNN_HD void dispatchNeuronType(CNNNeuronType type, Fn&& fn) {
  switch (type) {
#define MPSNN_NEURON_CASE(T) \
  case CNNNeuronType::T: fn.template operator()<CNNNeuronType::T>(); break;
    MPSNN_NEURON_CASE(None)
    MPSNN_NEURON_CASE(ReLU)
    MPSNN_NEURON_CASE(Linear)
    MPSNN_NEURON_CASE(Sigmoid)
    MPSNN_NEURON_CASE(HardSigmoid)
    MPSNN_NEURON_CASE(TanH)
    MPSNN_NEURON_CASE(Absolute)
    MPSNN_NEURON_CASE(SoftPlus)
    MPSNN_NEURON_CASE(SoftSign)
    MPSNN_NEURON_CASE(ELU)
    MPSNN_NEURON_CASE(PReLU)
    MPSNN_NEURON_CASE(ReLUN)
    MPSNN_NEURON_CASE(Power)
    MPSNN_NEURON_CASE(Exponential)
    MPSNN_NEURON_CASE(Logarithm)
    MPSNN_NEURON_CASE(GeLU)
#undef MPSNN_NEURON_CASE
    default: fn.template operator()<CNNNeuronType::None>(); break;
  }
}

}  // namespace mpsnn::detail
