#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "core/runtime_impl.h"
#include "core/verbose.h"
#include "mpsnn/error.h"

namespace mpsnn {

using namespace detail;

// ---------------------------------------------------------------------------------------------
// Device

struct DeviceFactory {
  static DevicePtr make(DeviceKind kind, int ordinal, std::unique_ptr<Backend> backend) {
    return DevicePtr(new Device(kind, ordinal, std::move(backend)));
  }
};

Device::Device(DeviceKind kind, int ordinal, std::unique_ptr<Backend> backend)
    : kind_(kind), ordinal_(ordinal), backend_(std::move(backend)) {}
Device::~Device() = default;

std::string Device::name() const { return backend_->name(); }

DevicePtr Device::cpuDevice() {
  static DevicePtr cpu = DeviceFactory::make(DeviceKind::CPU, 0, makeCpuBackend());
  return cpu;
}

bool Device::cudaAvailable() {
#if defined(MPSNN_HAVE_CUDA)
  return cudaDeviceCount() > 0;
#else
  return false;
#endif
}

DevicePtr Device::cudaDevice(int ordinal) {
#if defined(MPSNN_HAVE_CUDA)
  static std::mutex mutex;
  static std::map<int, DevicePtr> devices;
  std::lock_guard lock(mutex);
  auto it = devices.find(ordinal);
  if (it != devices.end()) return it->second;
  if (ordinal < 0 || ordinal >= cudaDeviceCount())
    throw DeviceError("Device: no CUDA GPU with ordinal " + std::to_string(ordinal) + " (" +
                      std::to_string(cudaDeviceCount()) + " present)");
  auto device = DeviceFactory::make(DeviceKind::CUDA, ordinal, makeCudaBackend(ordinal));
  devices[ordinal] = device;
  return device;
#else
  (void)ordinal;
  throw DeviceError("Device: mpsnn was built without the CUDA backend");
#endif
}

DevicePtr Device::defaultDevice() {
  const char* env = std::getenv("MPSNN_DEVICE");
  if (env && *env) {
    std::string v = env;
    if (v == "cpu") return cpuDevice();
    if (v == "cuda") return cudaDevice(0);
    throw InvalidArgument("Device: MPSNN_DEVICE = '" + v + "' is not 'cpu' or 'cuda'");
  }
  return cudaAvailable() ? cudaDevice(0) : cpuDevice();
}

CommandQueuePtr Device::newCommandQueue() { return CommandQueue::make(shared_from_this()); }

// ---------------------------------------------------------------------------------------------
// Storage and the temporary pool

Storage::Storage(DevicePtr device, size_t bytes) : device_(std::move(device)), bytes_(bytes) {
  data_ = device_->backend().allocate(bytes ? bytes : 1);
}
Storage::~Storage() { device_->backend().deallocate(data_); }

StoragePtr TemporaryPool::acquire(size_t bytes) {
  auto it = free_.lower_bound(bytes);
  if (it != free_.end()) {
    StoragePtr s = it->second;
    free_.erase(it);
    return s;
  }
  allocated_ += bytes;
  return std::make_shared<Storage>(device_, bytes);
}
StoragePtr detail::uploadToDevice(const DevicePtr& device, const void* host, size_t bytes) {
  auto s = std::make_shared<Storage>(device, bytes);
  if (bytes) device->backend().copyFromHost(s->data(), host, bytes);
  return s;
}

void TemporaryPool::release(StoragePtr storage) {
  size_t bytes = storage->bytes();
  free_.emplace(bytes, std::move(storage));
}
void TemporaryPool::clear() { free_.clear(); }

// ---------------------------------------------------------------------------------------------
// CommandQueue

void CommandQueueImpl::run() {
  for (;;) {
    std::shared_ptr<CommandBuffer> keep;
    std::shared_ptr<CommandBufferImpl> cb;
    {
      std::unique_lock lock(mutex);
      for (;;) {
        // Reserved places of buffers destroyed without commit are given up.
        while (!pending.empty() && !pending.front().committed && pending.front().reserved.expired())
          pending.pop_front();
        if (!pending.empty() && pending.front().committed) break;
        if (stopping) return;
        cv.wait(lock);
      }
      keep = std::move(pending.front().keep);
      cb = std::move(pending.front().impl);
      pending.pop_front();
    }
    {
      std::lock_guard lock(cb->mutex);
      cb->status = CommandBufferStatus::Scheduled;
    }
    cb->cv.notify_all();
    for (auto& h : cb->scheduled) {
      try {
        h(*keep);
      } catch (const std::exception& e) {
        std::fprintf(stderr, "mpsnn: a scheduled handler threw: %s\n", e.what());
      } catch (...) {
        std::fprintf(stderr, "mpsnn: a scheduled handler threw a non-standard exception\n");
      }
    }
    std::string error;
    const bool verbose = verboseEnabled();
    for (auto& item : cb->work) {
      try {
        if (verbose) {
          auto t0 = std::chrono::steady_clock::now();
          item.fn(*context);
          context->finish();  // verbose timing measures each kernel to completion
          double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
          verbosePrint(item.name, ms);
        } else {
          item.fn(*context);
        }
      } catch (const std::exception& e) {
        error = item.name.substr(0, item.name.find(',')) + ": " + e.what();
        break;
      } catch (...) {
        error = item.name.substr(0, item.name.find(',')) + ": a non-standard exception was thrown";
        break;
      }
    }
    try {
      context->finish();
    } catch (const std::exception& e) {
      if (error.empty()) error = e.what();
    } catch (...) {
      if (error.empty()) error = "a non-standard exception was thrown while finishing the work";
    }
    cb->work.clear();  // drops references to storage
    if (cb->pool) cb->pool->clear();
    {
      std::lock_guard lock(cb->mutex);
      cb->error = error;
      cb->status = error.empty() ? CommandBufferStatus::Completed : CommandBufferStatus::Error;
    }
    cb->cv.notify_all();
    for (auto& h : cb->completed) {
      try {
        h(*keep);
      } catch (const std::exception& e) {
        std::fprintf(stderr, "mpsnn: a completed handler threw: %s\n", e.what());
      } catch (...) {
        std::fprintf(stderr, "mpsnn: a completed handler threw a non-standard exception\n");
      }
    }
    {
      std::lock_guard lock(cb->mutex);
      cb->completed.clear();
      cb->scheduled.clear();
    }
  }
}

CommandQueuePtr CommandQueue::make(DevicePtr device) {
  if (!device) throw InvalidArgument("CommandQueue: device = null");
  auto q = CommandQueuePtr(new CommandQueue());
  q->impl_ = std::make_shared<CommandQueueImpl>();
  q->impl_->device = device;
  q->impl_->context = device->backend().newQueueContext();
  // The worker holds its own reference: the last reference to the queue may be dropped on the
  // worker itself (by a command buffer it just finished), and the loop must outlive that.
  q->impl_->worker = std::thread([impl = q->impl_] { impl->run(); });
  return q;
}

CommandQueue::~CommandQueue() {
  {
    std::lock_guard lock(impl_->mutex);
    impl_->stopping = true;
  }
  impl_->cv.notify_all();
  if (impl_->worker.joinable()) {
    if (impl_->worker.get_id() == std::this_thread::get_id()) impl_->worker.detach();  // it exits by itself
    else impl_->worker.join();
  }
}

DevicePtr CommandQueue::device() const { return impl_->device; }

CommandBufferPtr CommandQueue::commandBuffer() {
  auto cb = CommandBufferPtr(new CommandBuffer());
  cb->impl_ = std::make_shared<CommandBufferImpl>();
  cb->impl_->queue = shared_from_this();
  cb->impl_->queueImpl = impl_;
  cb->impl_->device = impl_->device;
  return cb;
}

// ---------------------------------------------------------------------------------------------
// CommandBuffer

CommandBuffer::~CommandBuffer() {
  // A place reserved by enqueue() and never committed: let the worker give it up.
  if (impl_ && impl_->queueImpl) {
    bool reservedOnly;
    {
      std::lock_guard lock(impl_->mutex);
      reservedOnly = impl_->status == CommandBufferStatus::Enqueued;
    }
    if (reservedOnly) {
      { std::lock_guard lock(impl_->queueImpl->mutex); }
      impl_->queueImpl->cv.notify_all();
    }
  }
}

CommandQueuePtr CommandBuffer::commandQueue() const { return impl_->queue; }
DevicePtr CommandBuffer::device() const { return impl_->device; }

void CommandBuffer::enqueue() {
  {
    std::lock_guard lock(impl_->mutex);
    if (impl_->status != CommandBufferStatus::NotEnqueued) return;
    impl_->status = CommandBufferStatus::Enqueued;
  }
  auto& q = *impl_->queueImpl;
  std::lock_guard lock(q.mutex);
  PendingBuffer place;
  place.reserved = weak_from_this();
  q.pending.push_back(std::move(place));
}

bool CommandBuffer::isCommitted() const {
  std::lock_guard lock(impl_->mutex);
  return impl_->status != CommandBufferStatus::NotEnqueued && impl_->status != CommandBufferStatus::Enqueued;
}

void CommandBuffer::commit() {
  bool reserved;
  {
    std::lock_guard lock(impl_->mutex);
    if (impl_->status != CommandBufferStatus::NotEnqueued && impl_->status != CommandBufferStatus::Enqueued)
      throw InvalidArgument("CommandBuffer: commit called twice");
    reserved = impl_->status == CommandBufferStatus::Enqueued;
    impl_->status = CommandBufferStatus::Committed;
  }
  auto& q = *impl_->queueImpl;
  {
    std::lock_guard lock(q.mutex);
    PendingBuffer* place = nullptr;
    if (reserved) {
      const std::weak_ptr<CommandBuffer> me = weak_from_this();
      for (auto& p : q.pending)
        if (!p.committed && !p.reserved.owner_before(me) && !me.owner_before(p.reserved)) place = &p;
    }
    if (!place) {
      q.pending.emplace_back();
      place = &q.pending.back();
    }
    place->keep = shared_from_this();
    place->impl = impl_;
    place->committed = true;
  }
  q.cv.notify_all();
}

void CommandBuffer::waitUntilCompleted() {
  std::unique_lock lock(impl_->mutex);
  if (impl_->status == CommandBufferStatus::NotEnqueued || impl_->status == CommandBufferStatus::Enqueued)
    throw InvalidArgument("CommandBuffer: waitUntilCompleted before commit");
  impl_->cv.wait(lock, [&] {
    return impl_->status == CommandBufferStatus::Completed || impl_->status == CommandBufferStatus::Error;
  });
  if (impl_->status == CommandBufferStatus::Error) throw DeviceError(impl_->error);
}

void CommandBuffer::waitUntilScheduled() {
  std::unique_lock lock(impl_->mutex);
  if (impl_->status == CommandBufferStatus::NotEnqueued || impl_->status == CommandBufferStatus::Enqueued)
    throw InvalidArgument("CommandBuffer: waitUntilScheduled before commit");
  impl_->cv.wait(lock, [&] { return impl_->status != CommandBufferStatus::Committed; });
}

CommandBufferStatus CommandBuffer::status() const {
  std::lock_guard lock(impl_->mutex);
  return impl_->status;
}

std::string CommandBuffer::error() const {
  std::lock_guard lock(impl_->mutex);
  return impl_->error;
}

void CommandBuffer::addCompletedHandler(Handler handler) {
  if (isCommitted()) throw InvalidArgument("CommandBuffer: addCompletedHandler after commit");
  std::lock_guard lock(impl_->mutex);
  impl_->completed.push_back(std::move(handler));
}

void CommandBuffer::addScheduledHandler(Handler handler) {
  if (isCommitted()) throw InvalidArgument("CommandBuffer: addScheduledHandler after commit");
  std::lock_guard lock(impl_->mutex);
  impl_->scheduled.push_back(std::move(handler));
}

std::string CommandBuffer::label() const {
  std::lock_guard lock(impl_->mutex);
  return impl_->label;
}
void CommandBuffer::setLabel(std::string label) {
  std::lock_guard lock(impl_->mutex);
  impl_->label = std::move(label);
}

void CommandBuffer::encodeWork(std::string name, std::function<void(QueueContext&)> work) {
  if (isCommitted()) throw InvalidArgument("CommandBuffer: encode after commit");
  impl_->work.push_back({std::move(name), std::move(work)});
}

TemporaryPool& CommandBuffer::temporaryPool() {
  if (!impl_->pool) impl_->pool = std::make_unique<TemporaryPool>(impl_->device);
  return *impl_->pool;
}

}  // namespace mpsnn
