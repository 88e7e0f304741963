// Internal: what a device backend provides to the runtime (memory, copies, queue contexts).
#pragma once
#include <cstddef>
#include <memory>
#include <string>

#include "mpsnn/runtime.h"

namespace mpsnn::detail {

/// Per-queue execution context: the place ops run (a CUDA stream and its library handles, or nothing
/// for the CPU). Work items of one command buffer run in order through one context.
class QueueContext {
 public:
  virtual ~QueueContext() = default;
  /// Waits for all work launched through this context; throws DeviceError on a device failure.
  virtual void finish() = 0;
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual DeviceKind kind() const = 0;
  virtual std::string name() const = 0;
  /// Device memory (host memory for the CPU); throws DeviceError on failure.
  virtual void* allocate(size_t bytes) = 0;
  virtual void deallocate(void* p) noexcept = 0;
  /// Synchronous copies between the device and the host, ordered after all submitted work.
  virtual void copyToHost(void* hostDst, const void* deviceSrc, size_t bytes) = 0;
  virtual void copyFromHost(void* deviceDst, const void* hostSrc, size_t bytes) = 0;
  virtual void zero(void* deviceDst, size_t bytes) = 0;
  /// Device-to-device copy queued on `ctx` (ordered with the ops of the same command buffer).
  virtual void copyOnQueue(QueueContext& ctx, void* deviceDst, const void* deviceSrc, size_t bytes) = 0;
  virtual std::unique_ptr<QueueContext> newQueueContext() = 0;
};

std::unique_ptr<Backend> makeCpuBackend();
#if defined(MPSNN_HAVE_CUDA)
/// Null when no usable GPU `ordinal` exists.
std::unique_ptr<Backend> makeCudaBackend(int ordinal);
int cudaDeviceCount();
#endif

/// A block of memory on one device, freed when the last reference goes.
class Storage {
 public:
  Storage(DevicePtr device, size_t bytes);
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;
  void* data() const { return data_; }
  size_t bytes() const { return bytes_; }
  const DevicePtr& device() const { return device_; }

 private:
  DevicePtr device_;
  void* data_ = nullptr;
  size_t bytes_ = 0;
};
using StoragePtr = std::shared_ptr<Storage>;

/// Copies host data into new memory of `device` (weights, biases, parameters at kernel construction).
StoragePtr uploadToDevice(const DevicePtr& device, const void* host, size_t bytes);

}  // namespace mpsnn::detail
