// Internal: the interface between CNNNeuron and the backends.
#pragma once
#include "kernels/dispatch.h"
#include "kernels/neuron_math.h"
#include "kernels/problem.h"

namespace mpsnn::detail {

struct NeuronProblem {
  UnaryProblem io;
  NeuronParams neuron;  // prelu points into the device's memory
};

/// True when every source read of `p` is inside the source image (edge mode irrelevant).
inline bool readsInside(const UnaryProblem& p) {
  return p.offsetX >= 0 && p.offsetY >= 0 && p.offsetX + p.dst.w <= p.src.w && p.offsetY + p.dst.h <= p.src.h;
}

ImplementationList<NeuronProblem>& cpuNeuronImplementations();
#if defined(MPSNN_HAVE_CUDA)
ImplementationList<NeuronProblem>& cudaNeuronImplementations();
#endif

}  // namespace mpsnn::detail
