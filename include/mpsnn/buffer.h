// mpsnn — Buffer (MTLBuffer): a block of device memory, the resource that states such as
// CNNConvolutionWeightsAndBiasesState hold (spec 10 §10.1).
#pragma once
#include <cstdint>
#include <memory>
#include <string>

#include "mpsnn/types.h"

namespace mpsnn {

namespace detail {
class Storage;
}

class Buffer;
using BufferPtr = std::shared_ptr<Buffer>;

/// `length` bytes of memory on one device (host memory for the CPU). The host reads and writes it
/// with readBytes / writeBytes, synchronous copies that, like Image's, see the results of command
/// buffers that have completed (wait for the ones that write the buffer first).
class Buffer {
 public:
  /// A new zero-filled buffer. InvalidArgument for a null device or length 0; DeviceError when the
  /// device has not that much memory.
  static BufferPtr make(DevicePtr device, uint64_t length);
  DevicePtr device() const;
  uint64_t length() const { return length_; }
  /// Host → buffer: `bytes` bytes from `source` to byte `offset`. InvalidArgument when the range
  /// leaves the buffer or `source` is null.
  void writeBytes(const void* source, uint64_t offset, uint64_t bytes);
  /// Buffer → host: `bytes` bytes from byte `offset` to `destination`.
  void readBytes(void* destination, uint64_t offset, uint64_t bytes) const;
  std::string label() const { return label_; }
  void setLabel(std::string label) { label_ = std::move(label); }

  /// Library internal: the memory, for kernels that read or write the buffer on the device.
  const std::shared_ptr<detail::Storage>& storage() const { return storage_; }

 private:
  Buffer(std::shared_ptr<detail::Storage> storage, uint64_t length);
  std::shared_ptr<detail::Storage> storage_;
  uint64_t length_ = 0;
  std::string label_;
};

}  // namespace mpsnn
