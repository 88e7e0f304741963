// Internal: per-op, per-backend ordered lists of implementations (DESIGN §2). The first whose
// supports() accepts the problem runs; the last of each list accepts everything.
#pragma once
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

template <class Problem>
const Implementation<Problem>& chooseImplementation(const ImplementationList<Problem>& list, const Problem& p,
                                                    const char* op) {
  for (const auto& impl : list)
    if (impl.supports(p)) return impl;
  throw DeviceError(std::string(op) + ": no implementation on this backend");  // lists end in a catch-all
}

}  // namespace mpsnn::detail
