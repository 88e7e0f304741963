// Internal: the interface between NNGramMatrixCalculation (src/kernels/gram_matrix.cpp) and its
// backends (src/cpu/gram_matrix.cpp, src/cuda/gram_matrix.cu). Backends never validate user input.
#pragma once
#include "kernels/dispatch.h"
#include "kernels/problem.h"

namespace mpsnn::detail {

/// One Gram matrix (spec 01 §10), resolved: io.src is n × H × W × C (the channels read); io.dst is
/// n × 1 × C × C, and dst(k, 0, f, c) = alpha · Σ_{y,x} src(k, y, x, f) · src(k, y, x, c).
struct GramMatrixProblem {
  UnaryProblem io;
  float alpha = 1.0f;
};

ImplementationList<GramMatrixProblem>& cpuGramMatrixImplementations();
#if defined(MPSNN_HAVE_CUDA)
ImplementationList<GramMatrixProblem>& cudaGramMatrixImplementations();
#endif
/// Name of the implementation the last NNGramMatrixCalculation encode on this thread chose.
std::string lastGramMatrixImplementation();

}  // namespace mpsnn::detail
