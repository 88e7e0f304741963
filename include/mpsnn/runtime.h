// mpsnn — the execution model: Device → CommandQueue → CommandBuffer (DESIGN §1).
#pragma once
#include <functional>
#include <memory>
#include <string>

#include "mpsnn/types.h"

namespace mpsnn {

namespace detail {
class Backend;
class QueueContext;
class TemporaryPool;
struct CommandBufferImpl;
struct CommandQueueImpl;
}  // namespace detail

enum class DeviceKind { CPU, CUDA };

/// A compute device: the host CPU or one CUDA GPU. Obtain one with defaultDevice(), cpuDevice() or
/// cudaDevice(); the same object is returned for the same device every time.
class Device : public std::enable_shared_from_this<Device> {
 public:
  /// The CUDA device when the library was built with CUDA and a GPU is present, else the CPU.
  /// The environment variable MPSNN_DEVICE=cpu|cuda overrides (cuda without a GPU throws DeviceError).
  static DevicePtr defaultDevice();
  static DevicePtr cpuDevice();
  /// CUDA device `ordinal`; throws DeviceError when CUDA is not built in or the GPU is absent.
  static DevicePtr cudaDevice(int ordinal = 0);
  /// True when the library was built with the CUDA backend and at least one GPU is usable.
  static bool cudaAvailable();

  DeviceKind kind() const { return kind_; }
  int ordinal() const { return ordinal_; }
  std::string name() const;
  CommandQueuePtr newCommandQueue();

  detail::Backend& backend() const { return *backend_; }
  ~Device();

 private:
  Device(DeviceKind kind, int ordinal, std::unique_ptr<detail::Backend> backend);
  DeviceKind kind_;
  int ordinal_;
  std::unique_ptr<detail::Backend> backend_;
  friend struct DeviceFactory;
};

/// An ordered queue of command buffers (MTLCommandQueue). Buffers run in commit order, one at a time.
class CommandQueue : public std::enable_shared_from_this<CommandQueue> {
 public:
  static CommandQueuePtr make(DevicePtr device);
  DevicePtr device() const;
  /// A new empty command buffer bound to this queue.
  CommandBufferPtr commandBuffer();
  std::string label() const { return label_; }
  void setLabel(std::string label) { label_ = std::move(label); }
  ~CommandQueue();

  detail::CommandQueueImpl& impl() { return *impl_; }

 private:
  CommandQueue() = default;
  std::shared_ptr<detail::CommandQueueImpl> impl_;
  std::string label_;
};

enum class CommandBufferStatus { NotEnqueued, Enqueued, Committed, Scheduled, Completed, Error };

/// Records work; nothing runs before commit(). Errors raised while running are reported by status(),
/// error(), and waitUntilCompleted(), which throws DeviceError.
class CommandBuffer : public std::enable_shared_from_this<CommandBuffer> {
 public:
  using Handler = std::function<void(CommandBuffer&)>;

  CommandQueuePtr commandQueue() const;
  DevicePtr device() const;
  /// Reserve a place in the queue's order (optional; commit implies it).
  void enqueue();
  /// Submit the recorded work. Encoding after commit is an InvalidArgument.
  void commit();
  /// Block until the work completed. Throws DeviceError when it failed.
  void waitUntilCompleted();
  void waitUntilScheduled();
  CommandBufferStatus status() const;
  /// Empty when the buffer succeeded or has not finished; else the backend's error text.
  std::string error() const;
  /// Called on a queue thread once all work has finished (successfully or not). Add before commit.
  void addCompletedHandler(Handler handler);
  void addScheduledHandler(Handler handler);
  std::string label() const;
  void setLabel(std::string label);

  /// Library internal: append one unit of work. `name` is what MPSNN_VERBOSE prints.
  void encodeWork(std::string name, std::function<void(detail::QueueContext&)> work);
  /// Library internal: the per-buffer pool temporary images draw from.
  detail::TemporaryPool& temporaryPool();
  bool isCommitted() const;

  ~CommandBuffer();

 private:
  friend class CommandQueue;
  CommandBuffer() = default;
  std::shared_ptr<detail::CommandBufferImpl> impl_;
};

}  // namespace mpsnn
