// The host backend: aligned host memory; ops run synchronously on the queue's worker thread.
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <new>

#include "core/backend.h"
#include "mpsnn/error.h"

namespace mpsnn::detail {
namespace {

class CpuQueueContext final : public QueueContext {
 public:
  void finish() override {}
};

class CpuBackend final : public Backend {
 public:
  DeviceKind kind() const override { return DeviceKind::CPU; }
  std::string name() const override { return "CPU"; }
  void* allocate(size_t bytes) override {
    size_t rounded = (bytes + 63) / 64 * 64;
    void* p = std::aligned_alloc(64, rounded);
    if (!p) throw DeviceError("CPU: out of memory allocating " + std::to_string(bytes) + " bytes");
    return p;
  }
  void deallocate(void* p) noexcept override { std::free(p); }
  void copyToHost(void* dst, const void* src, size_t bytes) override { std::memcpy(dst, src, bytes); }
  void copyFromHost(void* dst, const void* src, size_t bytes) override { std::memcpy(dst, src, bytes); }
  void zero(void* dst, size_t bytes) override { std::memset(dst, 0, bytes); }
  void copyOnQueue(QueueContext&, void* dst, const void* src, size_t bytes) override {
    // Chunks of 1 MiB across the cores: one thread cannot saturate memory bandwidth.
    const int64_t chunk = int64_t(1) << 20, chunks = int64_t((bytes + size_t(chunk) - 1) / size_t(chunk));
#pragma omp parallel for schedule(static) if (chunks > 1)
    for (int64_t i = 0; i < chunks; ++i) {
      const size_t begin = size_t(i * chunk), n = std::min(bytes - begin, size_t(chunk));
      std::memcpy(static_cast<char*>(dst) + begin, static_cast<const char*>(src) + begin, n);
    }
  }
  std::unique_ptr<QueueContext> newQueueContext() override { return std::make_unique<CpuQueueContext>(); }
};

}  // namespace

std::unique_ptr<Backend> makeCpuBackend() { return std::make_unique<CpuBackend>(); }

}  // namespace mpsnn::detail
