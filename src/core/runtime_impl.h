// Internal: command queue / buffer state shared by the runtime and the image pool.
#pragma once
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "core/backend.h"
#include "mpsnn/runtime.h"

namespace mpsnn::detail {

/// Storage for the temporary images of one command buffer, recycled by size (best fit).
class TemporaryPool {
 public:
  explicit TemporaryPool(DevicePtr device) : device_(std::move(device)) {}
  StoragePtr acquire(size_t bytes);
  void release(StoragePtr storage);
  /// Bytes allocated by this pool so far (its peak footprint).
  size_t allocatedBytes() const { return allocated_; }
  void clear();

 private:
  DevicePtr device_;
  std::multimap<size_t, StoragePtr> free_;
  size_t allocated_ = 0;
};

struct WorkItem {
  std::string name;
  std::function<void(QueueContext&)> fn;
};

struct CommandBufferImpl {
  /// Strong: a command buffer keeps its queue (and the queue's worker) alive, as an MTLCommandBuffer
  /// retains its queue; `device->newCommandQueue()->commandBuffer()` must still run when committed.
  std::shared_ptr<CommandQueue> queue;
  DevicePtr device;
  std::shared_ptr<CommandQueueImpl> queueImpl;
  std::vector<WorkItem> work;
  std::vector<CommandBuffer::Handler> completed, scheduled;
  std::unique_ptr<TemporaryPool> pool;
  std::string label;
  std::string error;
  CommandBufferStatus status = CommandBufferStatus::NotEnqueued;
  mutable std::mutex mutex;
  std::condition_variable cv;
};

/// A place in the queue's order: reserved by enqueue() (only a weak reference, so that a buffer
/// destroyed without commit does not block the queue), filled in by commit().
struct PendingBuffer {
  std::weak_ptr<CommandBuffer> reserved;  // identifies the buffer (owner-based) while not committed
  std::shared_ptr<CommandBuffer> keep;  // set by commit
  std::shared_ptr<CommandBufferImpl> impl;
  bool committed = false;
};

struct CommandQueueImpl {
  DevicePtr device;
  std::unique_ptr<QueueContext> context;
  std::thread worker;
  std::mutex mutex;
  std::condition_variable cv;
  std::deque<PendingBuffer> pending;
  bool stopping = false;
  void run();
};

}  // namespace mpsnn::detail
