// Internal: the text MPSNN_VERBOSE prints for one unit of work.
#pragma once
#include <string>

#include "kernels/problem.h"

namespace mpsnn::detail {

inline std::string describeView(const ImageView& v) {
  return std::to_string(v.n) + "x" + std::to_string(v.h) + "x" + std::to_string(v.w) + "x" + std::to_string(v.c) +
         ":" + toString(v.format);
}

/// "CNNNeuron,impl=cpu:rows,src=1x28x28x3:Float32,dst=...,extra"
inline std::string describeWork(const char* kernel, const char* implementation, const UnaryProblem& p,
                                const std::string& extra = {}) {
  std::string s = std::string(kernel) + ",impl=" + implementation + ",src=" + describeView(p.src) +
                  ",dst=" + describeView(p.dst);
  if (!extra.empty()) s += "," + extra;
  return s;
}

}  // namespace mpsnn::detail
