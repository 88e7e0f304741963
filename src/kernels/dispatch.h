// Internal: per-op, per-backend ordered lists of implementations (DESIGN §2). The first whose
// supports() accepts the problem runs; the last of each list accepts everything.
#pragma once
#include <cstdlib>
#include <string>
#include <vector>

#include "core/backend.h"
#include "mpsnn/error.h"

namespace mpsnn::detail {

template <class Problem>
struct Implementation {
  const char* name;
  bool (*supports)(const Problem&);
  void (*run)(const Problem&, QueueContext&);
};

template <class Problem>
using ImplementationList = std::vector<Implementation<Problem>>;

/// True when the environment asks for the catch-all implementations (MPSNN_FORCE_PLAIN=1): the
/// tests use it to check fast paths against the plain ones; read at every encode so it can be toggled.
inline bool forcePlainImplementations() {
  const char* v = std::getenv("MPSNN_FORCE_PLAIN");
  return v && *v && *v != '0';
}

template <class Problem>
const Implementation<Problem>& chooseImplementation(const ImplementationList<Problem>& list, const Problem& p,
                                                    const char* op) {
  if (!list.empty() && forcePlainImplementations()) return list.back();
  for (const auto& impl : list)
    if (impl.supports(p)) return impl;
  throw DeviceError(std::string(op) + ": no implementation on this backend");  // lists end in a catch-all
}

}  // namespace mpsnn::detail
