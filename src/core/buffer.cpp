// Buffer: a block of device memory with synchronous host copies (include/mpsnn/buffer.h).
#include "mpsnn/buffer.h"

#include "core/backend.h"
#include "mpsnn/error.h"
#include "mpsnn/runtime.h"

namespace mpsnn {

using namespace detail;

Buffer::Buffer(std::shared_ptr<Storage> storage, uint64_t length)
    : storage_(std::move(storage)), length_(length) {}

BufferPtr Buffer::make(DevicePtr device, uint64_t length) {
  if (!device) throw InvalidArgument("Buffer: device = null");
  if (length == 0) throw InvalidArgument("Buffer: length = 0 (a buffer holds at least one byte)");
  if (length > uint64_t(SIZE_MAX))
    throw InvalidArgument("Buffer: length = " + std::to_string(length) + " is too large");
  auto storage = std::make_shared<Storage>(device, size_t(length));
  device->backend().zero(storage->data(), size_t(length));
  return BufferPtr(new Buffer(std::move(storage), length));
}

DevicePtr Buffer::device() const { return storage_->device(); }

namespace {
void checkRange(const char* who, uint64_t length, uint64_t offset, uint64_t bytes, const void* host) {
  if (offset > length || bytes > length - offset)
    throw InvalidArgument(std::string("Buffer.") + who + ": range [" + std::to_string(offset) + ", +" +
                          std::to_string(bytes) + ") exceeds the buffer length " + std::to_string(length));
  if (bytes && !host) throw InvalidArgument(std::string("Buffer.") + who + ": host pointer = null");
}
}  // namespace

void Buffer::writeBytes(const void* source, uint64_t offset, uint64_t bytes) {
  checkRange("writeBytes", length_, offset, bytes, source);
  if (bytes)
    storage_->device()->backend().copyFromHost(static_cast<char*>(storage_->data()) + offset, source,
                                               size_t(bytes));
}

void Buffer::readBytes(void* destination, uint64_t offset, uint64_t bytes) const {
  checkRange("readBytes", length_, offset, bytes, destination);
  if (bytes)
    storage_->device()->backend().copyToHost(destination, static_cast<const char*>(storage_->data()) + offset,
                                             size_t(bytes));
}

}  // namespace mpsnn
