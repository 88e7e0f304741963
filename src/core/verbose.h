// Internal: MPSNN_VERBOSE=1 prints one line per executed kernel (class, shapes, implementation, time).
#pragma once
#include <string>

namespace mpsnn::detail {
bool verboseEnabled();
void verbosePrint(const std::string& workName, double milliseconds);
}  // namespace mpsnn::detail
