#include "core/verbose.h"

#include <cstdio>
#include <cstdlib>
#include <mutex>

namespace mpsnn::detail {

bool verboseEnabled() {
  static const bool enabled = [] {
    const char* v = std::getenv("MPSNN_VERBOSE");
    return v && *v && *v != '0';
  }();
  return enabled;
}

void verbosePrint(const std::string& workName, double milliseconds) {
  static std::mutex mutex;
  std::lock_guard lock(mutex);
  std::fprintf(stderr, "mpsnn_verbose,exec,%s,%.4f ms\n", workName.c_str(), milliseconds);
}

}  // namespace mpsnn::detail
