#include "mpsnn/image.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <set>
#include <sstream>
#include <vector>

#include "core/image_access.h"
#include "core/runtime_impl.h"
#include "mpsnn/error.h"

namespace mpsnn {

using namespace detail;

namespace {

[[noreturn]] void invalid(const std::string& who, const std::string& what) { throw InvalidArgument(who + ": " + what); }

void validateDescriptor(const ImageDescriptor& d, const char* who) {
  if (d.width() == 0) invalid(who, "width = 0");
  if (d.height() == 0) invalid(who, "height = 0");
  if (d.featureChannels() == 0) invalid(who, "featureChannels = 0");
  if (d.numberOfImages() == 0) invalid(who, "numberOfImages = 0");
  if (bytesPerChannel(d.featureChannelFormat()) == 0)
    invalid(who, "featureChannelFormat = " + toString(d.featureChannelFormat()) + " cannot hold storage");
  // Guard against sizes whose byte count would overflow.
  long double bytes = (long double)d.width() * d.height() * d.featureChannels() * d.numberOfImages() *
                      bytesPerChannel(d.featureChannelFormat());
  if (bytes > (long double)(uint64_t(1) << 50)) invalid(who, "image of " + d.toString() + " is too large");
}

size_t storageBytes(const ImageDescriptor& d) {
  return size_t(d.width() * d.height() * d.featureChannels() * d.numberOfImages() *
                bytesPerChannel(d.featureChannelFormat()));
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// ImageDescriptor

ImageDescriptor ImageDescriptor::make(ImageFeatureChannelFormat format, uint64_t width, uint64_t height,
                                      uint64_t featureChannels) {
  return make(format, width, height, featureChannels, 1);
}

ImageDescriptor ImageDescriptor::make(ImageFeatureChannelFormat format, uint64_t width, uint64_t height,
                                      uint64_t featureChannels, uint64_t numberOfImages, TextureUsage usage) {
  ImageDescriptor d;
  d.format_ = format;
  d.width_ = width;
  d.height_ = height;
  d.featureChannels_ = featureChannels;
  d.numberOfImages_ = numberOfImages;
  d.usage_ = usage;
  return d;
}

std::string ImageDescriptor::toString() const {
  std::ostringstream s;
  s << width_ << "x" << height_ << "x" << featureChannels_ << "x" << numberOfImages_ << " "
    << mpsnn::toString(format_);
  return s.str();
}

// ---------------------------------------------------------------------------------------------
// Image

Image::~Image() = default;

ImagePtr Image::make(DevicePtr device, const ImageDescriptor& descriptor) {
  if (!device) invalid("Image", "device = null");
  validateDescriptor(descriptor, "Image");
  auto image = ImagePtr(new Image());
  image->device_ = device;
  image->width_ = descriptor.width();
  image->height_ = descriptor.height();
  image->featureChannels_ = descriptor.featureChannels();
  image->numberOfImages_ = descriptor.numberOfImages();
  image->format_ = descriptor.featureChannelFormat();
  image->pixelStride_ = image->featureChannels_;
  image->imageStride_ = image->featureChannels_ * image->width_ * image->height_;
  size_t bytes = storageBytes(descriptor);
  image->storage_ = std::make_shared<Storage>(device, bytes);
  device->backend().zero(image->storage_->data(), bytes);
  return image;
}

uint64_t Image::precision() const {
  switch (format_) {
    case ImageFeatureChannelFormat::Float32: return 24;
    case ImageFeatureChannelFormat::Float16: return 11;
    case ImageFeatureChannelFormat::BFloat16: return 8;
    case ImageFeatureChannelFormat::Unorm8: return 8;
    case ImageFeatureChannelFormat::Unorm16: return 16;
    default: return 0;
  }
}

uint64_t Image::pixelSize() const {
  uint64_t lanes = featureChannels_ == 1 ? 1 : featureChannels_ == 2 ? 2 : 4;
  return bytesPerChannel(format_) * lanes;
}

uint64_t Image::resourceSize() const {
  if (parent_ || !storage_) return 0;
  return storage_->bytes();
}

ImageDescriptor Image::descriptor() const {
  return ImageDescriptor::make(format_, width_, height_, featureChannels_, numberOfImages_);
}

void Image::checkUsable(const char*) const {}

ImagePtr Image::makeView(uint64_t channelBegin, uint64_t channels, uint64_t imageBegin, uint64_t images) {
  checkUsable("Image");
  ImagePtr view;
  if (isTemporary()) {
    // Spec 00 §2.5 (MPS): the view is temporary and holds one readCount on the original, which it
    // gives back when its own readCount reaches 0.
    auto self = std::static_pointer_cast<TemporaryImage>(shared_from_this());
    auto t = TemporaryImagePtr(new TemporaryImage());
    t->commandBuffer_ = self->commandBuffer_;
    t->temporaryParent_ = self;
    ++self->readCount_;
    view = t;
  } else {
    view = ImagePtr(new Image());
  }
  view->device_ = device_;
  view->width_ = width_;
  view->height_ = height_;
  view->featureChannels_ = channels;
  view->numberOfImages_ = images;
  view->format_ = format_;
  view->storage_ = storage_;
  view->pixelStride_ = pixelStride_;
  view->imageStride_ = imageStride_;
  view->elementOffset_ = elementOffset_ + imageBegin * imageStride_ + channelBegin;
  view->parent_ = shared_from_this();
  view->label_ = label_;
  return view;
}

ImagePtr Image::subImageWithFeatureChannelRange(Range range) {
  const char* who = "Image.subImageWithFeatureChannelRange";
  if (range.length == 0) invalid(who, "range.length = 0");
  if (range.location >= featureChannels_)
    invalid(who, "range.location = " + std::to_string(range.location) + " >= featureChannels = " +
                     std::to_string(featureChannels_));
  uint64_t length = std::min(range.length, featureChannels_ - range.location);
  if (strictValidation()) {
    if (range.location % 4) invalid(who, "range.location = " + std::to_string(range.location) + " is not a multiple of 4");
    if (range.length % 4 && length == range.length)
      invalid(who, "range.length = " + std::to_string(range.length) + " is not a multiple of 4");
  }
  return makeView(range.location, length, 0, numberOfImages_);
}

ImageBatch Image::batchRepresentation() { return batchRepresentationWithSubRange({0, numberOfImages_}); }

ImageBatch Image::batchRepresentationWithSubRange(Range range) {
  const char* who = "Image.batchRepresentationWithSubRange";
  if (range.length == 0 || range.location + range.length > numberOfImages_ || range.location >= numberOfImages_)
    invalid(who, "range = [" + std::to_string(range.location) + ", +" + std::to_string(range.length) +
                     ") outside numberOfImages = " + std::to_string(numberOfImages_));
  ImageBatch batch;
  for (uint64_t i = 0; i < range.length; ++i) batch.push_back(makeView(0, featureChannels_, range.location + i, 1));
  return batch;
}

void Image::synchronize(CommandBufferPtr) { checkUsable("Image.synchronize"); }

// ---- host transfers --------------------------------------------------------------------------

void Image::transfer(bool toImage, void* host, DataLayout layout, uint64_t bytesPerColumn, uint64_t bytesPerRow,
                     uint64_t bytesPerImage, const IntRegion& region, const ImageReadWriteParams& info,
                     uint64_t imageIndex, bool denseDefaults) const {
  const std::string who = toImage ? "Image.writeBytes" : "Image.readBytes";
  checkUsable(who.c_str());
  if (isTemporary()) invalid(who, "a TemporaryImage cannot be accessed from the CPU");
  if (!host) invalid(who, "buffer = null");
  if (layout != DataLayout::HeightxWidthxFeatureChannels && layout != DataLayout::FeatureChannelsxHeightxWidth)
    invalid(who, "dataLayout = " + std::to_string(uint32_t(layout)) + " is not a DataLayout");
  const uint64_t e = bytesPerChannel(format_);
  const uint64_t c0 = info.featureChannelOffset, cn = info.numberOfFeatureChannelsToReadWrite;
  const uint64_t paddedC = (featureChannels_ + 3) / 4 * 4;
  if (cn == 0) invalid(who, "featureChannelInfo.numberOfFeatureChannelsToReadWrite = 0");
  if (c0 > paddedC || cn > paddedC - c0)  // (written so that it cannot wrap around)
    invalid(who, "featureChannelInfo offset " + std::to_string(c0) + " + count " + std::to_string(cn) + " exceeds " +
                     std::to_string(paddedC) + " (featureChannels " + std::to_string(featureChannels_) +
                     " rounded up to 4)");
  if (strictValidation()) {
    if (c0 % 4) invalid(who, "featureChannelInfo.featureChannelOffset = " + std::to_string(c0) + " is not a multiple of 4");
    if (c0 != 0 && cn % 4)
      invalid(who, "featureChannelInfo.numberOfFeatureChannelsToReadWrite = " + std::to_string(cn) +
                       " is not a multiple of 4");
  }
  const uint64_t x0 = region.origin.x, y0 = region.origin.y, w = region.size.width, h = region.size.height;
  if (x0 > width_ || w > width_ - x0 || y0 > height_ || h > height_ - y0)
    invalid(who, "region x[" + std::to_string(x0) + ", +" + std::to_string(w) + ") y[" + std::to_string(y0) + ", +" +
                     std::to_string(h) + ") outside the " + std::to_string(width_) + "x" + std::to_string(height_) +
                     " image");
  const uint64_t count = region.size.depth;
  if (region.origin.z >= numberOfImages_ || imageIndex >= numberOfImages_ - region.origin.z)
    invalid(who, "imageIndex " + std::to_string(imageIndex) + " + region.origin.z " + std::to_string(region.origin.z) +
                     " outside numberOfImages = " + std::to_string(numberOfImages_));
  const uint64_t first = imageIndex + region.origin.z;
  if (count > numberOfImages_ - first)
    invalid(who, "images [" + std::to_string(first) + ", +" + std::to_string(count) + ") outside numberOfImages = " +
                     std::to_string(numberOfImages_));
  const bool hwc = layout == DataLayout::HeightxWidthxFeatureChannels;
  if (bytesPerColumn == 0) bytesPerColumn = hwc ? cn * e : e;
  if (hwc && bytesPerColumn < cn * e)
    invalid(who, "bytesPerColumn = " + std::to_string(bytesPerColumn) + " < " + std::to_string(cn * e));
  if (bytesPerColumn < e) invalid(who, "bytesPerColumn = " + std::to_string(bytesPerColumn) + " < " + std::to_string(e));
  // Strides whose products do not fit in 64 bits cannot address any buffer.
  auto product = [&](unsigned __int128 a, unsigned __int128 b, const char* what) {
    unsigned __int128 p = a * b;
    if (p > UINT64_MAX) invalid(who, std::string(what) + " overflows 64 bits");
    return uint64_t(p);
  };
  const uint64_t minRow = product(w, bytesPerColumn, "bytesPerColumn * region.size.width");
  if (denseDefaults && bytesPerRow == 0) bytesPerRow = minRow;
  if (bytesPerRow < minRow)
    invalid(who, "bytesPerRow = " + std::to_string(bytesPerRow) + " is smaller than one row (" + std::to_string(minRow) +
                     " bytes)");
  const uint64_t planeBytes = product(bytesPerRow, h, "bytesPerRow * region.size.height");
  const uint64_t minImage = hwc ? planeBytes : product(cn, planeBytes, "featureChannels * plane bytes");
  if (bytesPerImage == 0) bytesPerImage = minImage;
  if (count > 1 && bytesPerImage < minImage)
    invalid(who, "bytesPerImage = " + std::to_string(bytesPerImage) + " is smaller than one image (" +
                     std::to_string(minImage) + " bytes)");
  if (w == 0 || h == 0 || count == 0) return;
  if (uint64_t last = product(count - 1, bytesPerImage, "bytesPerImage * images"); last > UINT64_MAX - minImage)
    invalid(who, "bytesPerImage * images overflows 64 bits");

  // Host mirror of the touched storage span (direct on the CPU).
  Backend& backend = device_->backend();
  const uint64_t spanBegin = elementOffset_ + first * imageStride_;
  const uint64_t spanElems = (count - 1) * imageStride_ + (height_ * width_ - 1) * pixelStride_ + featureChannels_;
  char* base = static_cast<char*>(storage_->data()) + spanBegin * e;
  std::vector<char> mirror;
  char* img = base;
  if (backend.kind() != DeviceKind::CPU) {
    mirror.resize(spanElems * e);
    backend.copyToHost(mirror.data(), base, mirror.size());
    img = mirror.data();
  }
  char* buf = static_cast<char*>(host);
  for (uint64_t k = 0; k < count; ++k)
    for (uint64_t y = 0; y < h; ++y)
      for (uint64_t x = 0; x < w; ++x) {
        char* pix = img + ((k * imageStride_) + ((y0 + y) * width_ + (x0 + x)) * pixelStride_) * e;
        for (uint64_t c = 0; c < cn; ++c) {
          uint64_t ch = c0 + c;
          char* b = buf + k * bytesPerImage + y * bytesPerRow + x * bytesPerColumn +
                    (hwc ? c * e : c * planeBytes);
          if (toImage) {
            if (ch < featureChannels_) std::memcpy(pix + ch * e, b, e);
          } else if (ch < featureChannels_) {
            std::memcpy(b, pix + ch * e, e);
          } else {
            std::memset(b, 0, e);
          }
        }
      }
  if (toImage && backend.kind() != DeviceKind::CPU) backend.copyFromHost(base, mirror.data(), mirror.size());
}

void Image::readBytes(void* dst, DataLayout layout, uint64_t imageIndex) const {
  IntRegion r{{0, 0, 0}, {width_, height_, 1}};
  transfer(false, dst, layout, 0, 0, 0, r, {0, featureChannels_}, imageIndex, true);
}
void Image::readBytes(void* dst, DataLayout layout, uint64_t bytesPerRow, const IntRegion& region,
                      const ImageReadWriteParams& info, uint64_t imageIndex) const {
  transfer(false, dst, layout, 0, bytesPerRow, 0, region, info, imageIndex, false);
}
void Image::readBytes(void* dst, DataLayout layout, uint64_t bytesPerRow, uint64_t bytesPerImage,
                      const IntRegion& region, const ImageReadWriteParams& info, uint64_t imageIndex) const {
  transfer(false, dst, layout, 0, bytesPerRow, bytesPerImage, region, info, imageIndex, false);
}
void Image::readBytes(void* dst, DataLayout layout, uint64_t bytesPerColumn, uint64_t bytesPerRow,
                      uint64_t bytesPerImage, const IntRegion& region, const ImageReadWriteParams& info,
                      uint64_t imageIndex) const {
  transfer(false, dst, layout, bytesPerColumn, bytesPerRow, bytesPerImage, region, info, imageIndex, false);
}
void Image::writeBytes(const void* src, DataLayout layout, uint64_t imageIndex) {
  IntRegion r{{0, 0, 0}, {width_, height_, 1}};
  transfer(true, const_cast<void*>(src), layout, 0, 0, 0, r, {0, featureChannels_}, imageIndex, true);
}
void Image::writeBytes(const void* src, DataLayout layout, uint64_t bytesPerRow, const IntRegion& region,
                       const ImageReadWriteParams& info, uint64_t imageIndex) {
  transfer(true, const_cast<void*>(src), layout, 0, bytesPerRow, 0, region, info, imageIndex, false);
}
void Image::writeBytes(const void* src, DataLayout layout, uint64_t bytesPerRow, uint64_t bytesPerImage,
                       const IntRegion& region, const ImageReadWriteParams& info, uint64_t imageIndex) {
  transfer(true, const_cast<void*>(src), layout, 0, bytesPerRow, bytesPerImage, region, info, imageIndex, false);
}
void Image::writeBytes(const void* src, DataLayout layout, uint64_t bytesPerColumn, uint64_t bytesPerRow,
                       uint64_t bytesPerImage, const IntRegion& region, const ImageReadWriteParams& info,
                       uint64_t imageIndex) {
  transfer(true, const_cast<void*>(src), layout, bytesPerColumn, bytesPerRow, bytesPerImage, region, info,
           imageIndex, false);
}

// ---------------------------------------------------------------------------------------------
// TemporaryImage

TemporaryImagePtr TemporaryImage::make(CommandBufferPtr commandBuffer, const ImageDescriptor& descriptor) {
  if (!commandBuffer) invalid("TemporaryImage", "commandBuffer = null");
  if (commandBuffer->isCommitted()) invalid("TemporaryImage", "commandBuffer is already committed");
  validateDescriptor(descriptor, "TemporaryImage");
  auto image = TemporaryImagePtr(new TemporaryImage());
  image->device_ = commandBuffer->device();
  image->width_ = descriptor.width();
  image->height_ = descriptor.height();
  image->featureChannels_ = descriptor.featureChannels();
  image->numberOfImages_ = descriptor.numberOfImages();
  image->format_ = descriptor.featureChannelFormat();
  image->pixelStride_ = image->featureChannels_;
  image->imageStride_ = image->featureChannels_ * image->width_ * image->height_;
  image->storage_ = commandBuffer->temporaryPool().acquire(storageBytes(descriptor));
  image->commandBuffer_ = commandBuffer;
  return image;
}

void TemporaryImage::prefetchStorage(CommandBufferPtr commandBuffer, const std::vector<ImageDescriptor>& descriptors) {
  if (!commandBuffer) invalid("TemporaryImage.prefetchStorage", "commandBuffer = null");
  for (const auto& d : descriptors) validateDescriptor(d, "TemporaryImage.prefetchStorage");
}

TemporaryImage::~TemporaryImage() {
  // Destroyed with readCount > 0: release (spec 00 §2.5 CHOICE); a view gives its count back.
  if (released_ || readCount_ == 0) return;
  auto cb = commandBuffer_.lock();
  if (!cb || cb->isCommitted()) return;  // the pool belongs to the queue's thread after commit
  if (temporaryParent_) {
    try {
      temporaryParent_->consumeRead(*cb);
    } catch (...) {  // a destructor never throws
    }
  } else if (storage_) {
    cb->temporaryPool().release(storage_);
  }
}

void TemporaryImage::checkUsable(const char* what) const {
  if (released_ || readCount_ == 0)
    invalid(what, "TemporaryImage" + (label_.empty() ? std::string() : " '" + label_ + "'") +
                      " has readCount 0: its storage was released");
  if (temporaryParent_) temporaryParent_->checkUsable(what);
}

void TemporaryImage::release() {
  released_ = true;
  if (temporaryParent_) {
    auto parent = std::move(temporaryParent_);
    if (auto cb = commandBuffer_.lock()) parent->consumeRead(*cb);
  } else if (auto cb = commandBuffer_.lock(); cb && !cb->isCommitted()) {
    cb->temporaryPool().release(storage_);  // after commit the pool belongs to the queue's thread
  }
  storage_.reset();
}

void TemporaryImage::setReadCount(uint64_t count) {
  if (released_ || readCount_ == 0) invalid("TemporaryImage", "readCount set after it reached 0");
  readCount_ = count;
  if (count == 0) release();
}

void TemporaryImage::consumeRead(const CommandBuffer& cb) {
  auto mine = commandBuffer_.lock();
  if (mine.get() != &cb) invalid("TemporaryImage", "used on a command buffer other than the one it was made for");
  if (released_ || readCount_ == 0) invalid("TemporaryImage", "read after its readCount reached 0");
  if (--readCount_ == 0) release();
}

// ---------------------------------------------------------------------------------------------
// Allocators and batch helpers

ImageBatch ImageAllocator::imageBatchForCommandBuffer(CommandBufferPtr commandBuffer, const ImageDescriptor& descriptor,
                                                      const Kernel* kernel, uint64_t count) {
  ImageBatch batch;
  for (uint64_t i = 0; i < count; ++i) batch.push_back(imageForCommandBuffer(commandBuffer, descriptor, kernel));
  return batch;
}

namespace {
class PersistentAllocator final : public ImageAllocator {
 public:
  ImagePtr imageForCommandBuffer(CommandBufferPtr cb, const ImageDescriptor& d, const Kernel*) override {
    if (!cb) invalid("Image.defaultAllocator", "commandBuffer = null");
    return Image::make(cb->device(), d);
  }
};
class TemporaryAllocator final : public ImageAllocator {
 public:
  ImagePtr imageForCommandBuffer(CommandBufferPtr cb, const ImageDescriptor& d, const Kernel*) override {
    return TemporaryImage::make(cb, d);
  }
};
}  // namespace

std::shared_ptr<ImageAllocator> Image::defaultAllocator() {
  static auto a = std::make_shared<PersistentAllocator>();
  return a;
}
std::shared_ptr<ImageAllocator> TemporaryImage::defaultAllocator() {
  static auto a = std::make_shared<TemporaryAllocator>();
  return a;
}

uint64_t imageBatchIncrementReadCount(const ImageBatch& batch, int64_t amount) {
  std::set<Image*> seen;
  for (const auto& image : batch) {
    if (!image || !seen.insert(image.get()).second) continue;
    if (auto* t = dynamic_cast<TemporaryImage*>(image.get()); t && t->readCount() > 0) {
      int64_t next = int64_t(t->readCount()) + amount;
      if (next < 0) invalid("imageBatchIncrementReadCount", "readCount would become " + std::to_string(next));
      t->setReadCount(uint64_t(next));
    }
  }
  return seen.size();
}

void imageBatchSynchronize(const ImageBatch& batch, CommandBufferPtr commandBuffer) {
  std::set<Image*> seen;
  for (const auto& image : batch)
    if (image && seen.insert(image.get()).second) image->synchronize(commandBuffer);
}

uint64_t imageBatchResourceSize(const ImageBatch& batch) {
  std::set<Image*> seen;
  uint64_t total = 0;
  for (const auto& image : batch)
    if (image && seen.insert(image.get()).second) total += image->resourceSize();
  return total;
}

int64_t imageBatchIterate(const ImageBatch& batch, const std::function<int64_t(Image&, uint64_t)>& fn) {
  std::set<Image*> seen;
  int64_t last = INT64_MIN;
  for (uint64_t i = 0; i < batch.size(); ++i) {
    if (!batch[i] || !seen.insert(batch[i].get()).second) continue;
    last = fn(*batch[i], i);
    if (last > INT64_MIN) break;
  }
  return last;
}

}  // namespace mpsnn
