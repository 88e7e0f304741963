// Internal: the interface between CNNBinaryConvolution / CNNBinaryFullyConnected
// (src/kernels/binary_convolution.cpp) and their backends (src/cpu/binary_convolution.cpp,
// src/cuda/binary_convolution.cu). Backends never validate user input.
#pragma once
#include <cstdint>

#include "kernels/dispatch.h"
#include "kernels/neuron_math.h"
#include "kernels/problem.h"
#include "mpsnn/convolution.h"

namespace mpsnn::detail {

/// One binary convolution invocation (spec 01 §7), resolved. Window geometry of §4.1: destination
/// (X, Y) of the view has centre (offsetX + X·strideX, offsetY + Y·strideY) and taps centre −
/// floor(kWd/2) + k·dilation. Per tap pixel p and input channel f (edge-mode value substituted first):
///   in'(p, f) = (src(p, f) + inputBias[f]) · inputScale[f]
///   BinaryWeights: Σ in'·w,  XNOR: Σ bin(in')·w  (bin(v) = v < 0 ? −1 : +1, w ∈ ±1),
///   AND: Σ [in' ≥ 0]·w (w ∈ {0, 1}; "≥ 0" read as "not < 0", so NaN counts as 1 as bin() says)
///   out = neuron(S · outputScale[o] · beta + outputBias[o])
/// beta (betaScaling): the mean over the undilated kW × kH window around the centre (x offsets
/// −floor(kW/2) … floor((kW−1)/2)) of A(p) = (1/Ci) Σ_f |in'(p, f)|; else 1.
struct BinaryConvolutionProblem {
  UnaryProblem io;  // io.src.c == inputChannels
  int64_t kernelWidth = 1, kernelHeight = 1, strideX = 1, strideY = 1, dilationX = 1, dilationY = 1;
  int64_t inputChannels = 1, outputChannels = 1;
  int64_t words = 1;  // ceil(inputChannels / 32) uint32 words per tap
  CNNBinaryConvolutionType type = CNNBinaryConvolutionType::BinaryWeights;
  bool betaScaling = false;
  NeuronParams neuron;                // prelu: Co slopes in device memory
  const uint32_t* weights = nullptr;  // device memory, [Co][kH][kW][words], bit i%32 of word i/32 = channel i
  const float* outputBias = nullptr;  // device memory, Co values (always present)
  const float* outputScale = nullptr;  // Co
  const float* inputBias = nullptr;    // Ci
  const float* inputScale = nullptr;   // Ci

  /// Mask of the valid channel bits of word `w` (channels ≥ inputChannels are ignored).
  MPSNN_HD uint32_t wordMask(int64_t w) const {
    const int64_t bits = inputChannels - 32 * w;
    return bits >= 32 ? 0xffffffffu : ((1u << bits) - 1u);
  }
};

/// Implementations per backend, in order of preference; the last accepts every problem.
ImplementationList<BinaryConvolutionProblem>& cpuBinaryConvolutionImplementations();
#if defined(MPSNN_HAVE_CUDA)
ImplementationList<BinaryConvolutionProblem>& cudaBinaryConvolutionImplementations();
#endif

}  // namespace mpsnn::detail
