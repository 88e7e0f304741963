// mpsnn — images (spec 00 §2): descriptors, persistent and temporary images, batches, allocators.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "mpsnn/runtime.h"
#include "mpsnn/types.h"

namespace mpsnn {

class Kernel;
namespace detail {
class Storage;
struct ImageAccess;
}  // namespace detail

enum class StorageMode { Shared = 0, Managed = 1, Private = 2, Memoryless = 3 };
enum class CPUCacheMode { DefaultCache = 0, WriteCombined = 1 };
enum class TextureUsage : uint32_t { Unknown = 0, ShaderRead = 1, ShaderWrite = 2, RenderTarget = 4 };

/// Shape and format of an image (MPSImageDescriptor). A copyable value.
class ImageDescriptor {
 public:
  ImageDescriptor() = default;
  static ImageDescriptor make(ImageFeatureChannelFormat format, uint64_t width, uint64_t height,
                              uint64_t featureChannels);
  static ImageDescriptor make(ImageFeatureChannelFormat format, uint64_t width, uint64_t height,
                              uint64_t featureChannels, uint64_t numberOfImages,
                              TextureUsage usage = TextureUsage(3));

  uint64_t width() const { return width_; }
  uint64_t height() const { return height_; }
  uint64_t featureChannels() const { return featureChannels_; }
  uint64_t numberOfImages() const { return numberOfImages_; }
  ImageFeatureChannelFormat featureChannelFormat() const { return format_; }
  ImageFeatureChannelFormat channelFormat() const { return format_; }
  StorageMode storageMode() const { return storageMode_; }
  CPUCacheMode cpuCacheMode() const { return cpuCacheMode_; }
  TextureUsage usage() const { return usage_; }

  void setWidth(uint64_t v) { width_ = v; }
  void setHeight(uint64_t v) { height_ = v; }
  void setFeatureChannels(uint64_t v) { featureChannels_ = v; }
  void setNumberOfImages(uint64_t v) { numberOfImages_ = v; }
  void setFeatureChannelFormat(ImageFeatureChannelFormat f) { format_ = f; }
  void setChannelFormat(ImageFeatureChannelFormat f) { format_ = f; }
  void setStorageMode(StorageMode m) { storageMode_ = m; }
  void setCpuCacheMode(CPUCacheMode m) { cpuCacheMode_ = m; }
  void setUsage(TextureUsage u) { usage_ = u; }

  bool operator==(const ImageDescriptor&) const = default;
  std::string toString() const;

 private:
  uint64_t width_ = 1, height_ = 1, featureChannels_ = 1, numberOfImages_ = 1;
  ImageFeatureChannelFormat format_ = ImageFeatureChannelFormat::Float32;
  StorageMode storageMode_ = StorageMode::Shared;
  CPUCacheMode cpuCacheMode_ = CPUCacheMode::DefaultCache;
  TextureUsage usage_ = TextureUsage(3);
};

/// `numberOfImages` images of height × width × featureChannels (MPSImage). Stored NHWC on its device
/// (host memory for the CPU, device memory for CUDA). Reference semantics: held by ImagePtr.
class Image : public std::enable_shared_from_this<Image> {
 public:
  /// A persistent image with its own storage, zero-filled.
  static ImagePtr make(DevicePtr device, const ImageDescriptor& descriptor);
  virtual ~Image();

  DevicePtr device() const { return device_; }
  uint64_t width() const { return width_; }
  uint64_t height() const { return height_; }
  uint64_t featureChannels() const { return featureChannels_; }
  uint64_t numberOfImages() const { return numberOfImages_; }
  ImageFeatureChannelFormat featureChannelFormat() const { return format_; }
  /// Bits of precision of one channel value (Float32 24, Float16 11, BFloat16 8, Unorm8 8, Unorm16 16).
  uint64_t precision() const;
  /// Bytes from one texel to the next inside one MPS slice (informative, spec 00 §2.2).
  uint64_t pixelSize() const;
  /// The image this one is a view of, or null.
  ImagePtr parent() const { return parent_; }
  std::string label() const { return label_; }
  void setLabel(std::string label) { label_ = std::move(label); }
  /// Bytes of backing store owned by this image (0 for views).
  uint64_t resourceSize() const;
  /// A descriptor describing this image.
  ImageDescriptor descriptor() const;
  virtual bool isTemporary() const { return false; }

  /// View of channels [location, location + length); writes through either alias are visible to the
  /// other. A too-large length is reduced to fit.
  ImagePtr subImageWithFeatureChannelRange(Range range);
  /// One single-image view per image, sharing storage.
  ImageBatch batchRepresentation();
  ImageBatch batchRepresentationWithSubRange(Range range);

  // ---- host transfers (spec 00 §2.4); element type = storage type, no conversion ----
  /// Whole image `imageIndex`, dense buffer.
  void readBytes(void* dst, DataLayout layout, uint64_t imageIndex) const;
  void readBytes(void* dst, DataLayout layout, uint64_t bytesPerRow, const IntRegion& region,
                 const ImageReadWriteParams& featureChannelInfo, uint64_t imageIndex) const;
  void readBytes(void* dst, DataLayout layout, uint64_t bytesPerRow, uint64_t bytesPerImage,
                 const IntRegion& region, const ImageReadWriteParams& featureChannelInfo,
                 uint64_t imageIndex) const;
  void readBytes(void* dst, DataLayout layout, uint64_t bytesPerColumn, uint64_t bytesPerRow,
                 uint64_t bytesPerImage, const IntRegion& region, const ImageReadWriteParams& featureChannelInfo,
                 uint64_t imageIndex) const;
  void writeBytes(const void* src, DataLayout layout, uint64_t imageIndex);
  void writeBytes(const void* src, DataLayout layout, uint64_t bytesPerRow, const IntRegion& region,
                  const ImageReadWriteParams& featureChannelInfo, uint64_t imageIndex);
  void writeBytes(const void* src, DataLayout layout, uint64_t bytesPerRow, uint64_t bytesPerImage,
                  const IntRegion& region, const ImageReadWriteParams& featureChannelInfo, uint64_t imageIndex);
  void writeBytes(const void* src, DataLayout layout, uint64_t bytesPerColumn, uint64_t bytesPerRow,
                  uint64_t bytesPerImage, const IntRegion& region, const ImageReadWriteParams& featureChannelInfo,
                  uint64_t imageIndex);
  /// Makes device writes visible to the host. All transfers above already synchronize; kept for parity.
  void synchronize(CommandBufferPtr commandBuffer);

  /// The allocator that makes persistent images (MPSImage.defaultAllocator).
  static std::shared_ptr<class ImageAllocator> defaultAllocator();

 protected:
  Image() = default;
  /// Throws InvalidArgument when the image may not be touched (a released temporary image).
  virtual void checkUsable(const char* what) const;
  void transfer(bool toImage, void* host, DataLayout layout, uint64_t bytesPerColumn, uint64_t bytesPerRow,
                uint64_t bytesPerImage, const IntRegion& region, const ImageReadWriteParams& info,
                uint64_t imageIndex, bool denseDefaults) const;
  ImagePtr makeView(uint64_t channelBegin, uint64_t channels, uint64_t imageBegin, uint64_t images);

  DevicePtr device_;
  uint64_t width_ = 0, height_ = 0, featureChannels_ = 0, numberOfImages_ = 0;
  ImageFeatureChannelFormat format_ = ImageFeatureChannelFormat::Float32;
  std::shared_ptr<detail::Storage> storage_;
  uint64_t elementOffset_ = 0;  // first element of this view inside storage_
  uint64_t pixelStride_ = 0;    // elements from one pixel to the next (>= featureChannels_)
  uint64_t imageStride_ = 0;    // elements from one image to the next
  ImagePtr parent_;
  std::string label_;
  friend struct detail::ImageAccess;
};

/// An image whose storage comes from its command buffer's pool (MPSTemporaryImage). Every kernel
/// encode that reads it decrements readCount; at zero the storage returns to the pool and may be
/// reused by a later temporary image of the same command buffer. Touching it after that, using it on
/// another command buffer or from the CPU is an InvalidArgument.
class TemporaryImage : public Image {
 public:
  static TemporaryImagePtr make(CommandBufferPtr commandBuffer, const ImageDescriptor& descriptor);
  /// Pool-sizing hint; no semantic effect.
  static void prefetchStorage(CommandBufferPtr commandBuffer, const std::vector<ImageDescriptor>& descriptors);
  /// The allocator that makes temporary images (MPSTemporaryImage.defaultAllocator).
  static std::shared_ptr<class ImageAllocator> defaultAllocator();
  ~TemporaryImage() override;

  uint64_t readCount() const { return readCount_; }
  /// Setting 0 releases the storage now. Changing it after it reached 0 is an InvalidArgument.
  void setReadCount(uint64_t count);
  bool isTemporary() const override { return true; }
  /// The command buffer this image belongs to (null once it is gone).
  CommandBufferPtr commandBuffer() const { return commandBuffer_.lock(); }

  /// Library internal: one read by a kernel encoded into `cb`.
  void consumeRead(const CommandBuffer& cb);

 protected:
  TemporaryImage() = default;
  void checkUsable(const char* what) const override;

 private:
  void release();
  uint64_t readCount_ = 1;
  bool released_ = false;
  std::weak_ptr<CommandBuffer> commandBuffer_;
  std::shared_ptr<TemporaryImage> temporaryParent_;  // views decrement their parent at zero
  friend class Image;
  friend struct detail::ImageAccess;
};

/// Makes destination images for auto-allocating encodes (MPSImageAllocator).
class ImageAllocator {
 public:
  virtual ~ImageAllocator() = default;
  virtual ImagePtr imageForCommandBuffer(CommandBufferPtr commandBuffer, const ImageDescriptor& descriptor,
                                         const Kernel* kernel) = 0;
  virtual ImageBatch imageBatchForCommandBuffer(CommandBufferPtr commandBuffer, const ImageDescriptor& descriptor,
                                                const Kernel* kernel, uint64_t count);
};
using ImageAllocatorPtr = std::shared_ptr<ImageAllocator>;

// ---- batch helpers (spec 00 §2.6) ----
/// Adds `amount` to each distinct temporary image with readCount > 0; returns the number of distinct images.
uint64_t imageBatchIncrementReadCount(const ImageBatch& batch, int64_t amount);
void imageBatchSynchronize(const ImageBatch& batch, CommandBufferPtr commandBuffer);
uint64_t imageBatchResourceSize(const ImageBatch& batch);
/// Calls fn(image, firstIndex) once per distinct image; stops when fn returns a value > INT64_MIN.
int64_t imageBatchIterate(const ImageBatch& batch, const std::function<int64_t(Image&, uint64_t)>& fn);

}  // namespace mpsnn
