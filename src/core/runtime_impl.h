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
  std::weak_ptr<CommandQueue> queue;
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

struct CommandQueueImpl {
  DevicePtr device;
  std::unique_ptr<QueueContext> context;
  std::thread worker;
  std::mutex mutex;
  std::condition_variable cv;
  std::deque<std::pair<std::shared_ptr<CommandBuffer>, std::shared_ptr<CommandBufferImpl>>> pending;
  bool stopping = false;
  void run();
};

}  // namespace mpsnn::detail
