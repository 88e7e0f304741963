// Validation and resolution shared by every unary and binary kernel (spec 00 §4, §6).
#include "mpsnn/kernel.h"

#include <algorithm>
#include <map>

#include "core/image_access.h"
#include "kernels/problem.h"
#include "mpsnn/error.h"

namespace mpsnn {

using namespace detail;

namespace {

const NNPaddingPtr& defaultPadding() {
  static NNPaddingPtr p = NNDefaultPadding::paddingWithMethod(
      NNPaddingMethod::AlignCentered | NNPaddingMethod::AddRemainderToTopLeft | NNPaddingMethod::SizeSame);
  return p;
}

std::string str(uint64_t v) { return std::to_string(v); }
std::string str(int64_t v) { return std::to_string(v); }

/// Checks that `image` may be used by `kernel` on `cb` (device, released temporaries, command buffer).
void checkImage(const Kernel& kernel, const CommandBuffer& cb, const ImagePtr& image, const char* role) {
  std::string who = kernel.className();
  if (!image) throw InvalidArgument(who + ": " + role + " = null");
  if (image->device() != kernel.device())
    throw InvalidArgument(who + ": " + role + " is on device " + image->device()->name() + ", the kernel on " +
                          kernel.device()->name());
  ImageAccess::checkUsable(*image, (who + " " + role).c_str());
  if (image->isTemporary()) {
    auto owner = static_cast<const TemporaryImage&>(*image).commandBuffer();
    if (owner.get() != &cb)
      throw InvalidArgument(who + ": temporary " + role + " belongs to another command buffer");
  }
}

struct Window {
  uint64_t x0, y0, w, h;  // effective clip
  int64_t depth;
};

/// Effective clip (spec 00 §4.5) and image count (§4.4).
Window effectiveClip(const std::string& who, const IntRegion& clip, const Image& dst,
                     const std::vector<std::pair<const Image*, int64_t>>& sources) {
  Window win{};
  const bool noClip = isRectNoClip(clip);
  uint64_t cx = clip.origin.x, cy = clip.origin.y;
  uint64_t ex = cx >= dst.width() ? cx : std::min<uint64_t>(dst.width(), cx + std::min(clip.size.width, dst.width()));
  uint64_t ey =
      cy >= dst.height() ? cy : std::min<uint64_t>(dst.height(), cy + std::min(clip.size.height, dst.height()));
  win.x0 = cx;
  win.y0 = cy;
  win.w = ex > cx ? ex - cx : 0;
  win.h = ey > cy ? ey - cy : 0;
  for (const auto& [src, z] : sources)
    if (z < 0) throw InvalidArgument(who + ": offset.z = " + str(z) + " is negative");
  if (clip.origin.z >= dst.numberOfImages())
    throw InvalidArgument(who + ": clipRect.origin.z = " + str(clip.origin.z) + " >= destination numberOfImages = " +
                          str(dst.numberOfImages()));
  if (noClip || clip.size.depth == UINT64_MAX) {
    int64_t depth = int64_t(dst.numberOfImages() - clip.origin.z);
    for (const auto& [src, z] : sources) depth = std::min(depth, int64_t(src->numberOfImages()) - z);
    if (depth <= 0) throw InvalidArgument(who + ": offset.z leaves no source image to process");
    win.depth = depth;
  } else {
    // Comparisons written so that no sum can wrap around (clip.origin.z < N_dst and z >= 0 here).
    if (clip.size.depth > dst.numberOfImages() - clip.origin.z)
      throw InvalidArgument(who + ": clipRect z range [" + str(clip.origin.z) + ", +" + str(clip.size.depth) +
                            ") exceeds destination numberOfImages = " + str(dst.numberOfImages()));
    for (const auto& [src, z] : sources)
      if (uint64_t(z) > src->numberOfImages() || clip.size.depth > src->numberOfImages() - uint64_t(z))
        throw InvalidArgument(who + ": offset.z = " + str(z) + " + depth " + str(clip.size.depth) +
                              " exceeds source numberOfImages = " + str(src->numberOfImages()));
    win.depth = int64_t(clip.size.depth);
  }
  return win;
}

void requireFormatForCompute(const std::string& who, const Image& image, const char* role) {
  if (bytesPerChannel(image.featureChannelFormat()) == 0)
    throw InvalidArgument(who + ": " + role + " featureChannelFormat = " + toString(image.featureChannelFormat()));
}

}  // namespace

Kernel::Kernel(DevicePtr device) : device_(std::move(device)) {
  if (!device_) throw InvalidArgument("Kernel: device = null");
}

// ---------------------------------------------------------------------------------------------
// CNNKernel

CNNKernel::CNNKernel(DevicePtr device)
    : Kernel(std::move(device)), padding_(defaultPadding()), allocator_(TemporaryImage::defaultAllocator()) {}

void CNNKernel::setPadding(NNPaddingPtr padding) {
  if (!padding) throw InvalidArgument(std::string(className()) + ": padding = null");
  validatePaddingMethod(padding->paddingMethod(), className());
  padding_ = std::move(padding);
}

void CNNKernel::setDestinationImageAllocator(ImageAllocatorPtr allocator) {
  if (!allocator) throw InvalidArgument(std::string(className()) + ": destinationImageAllocator = null");
  allocator_ = std::move(allocator);
}

void CNNKernel::requireZeroOrClampEdge() const {
  if (edgeMode_ != ImageEdgeMode::Zero && edgeMode_ != ImageEdgeMode::Clamp)
    throw InvalidArgument(std::string(className()) + ": edgeMode = " + toString(edgeMode_) +
                          " (only Zero and Clamp are supported)");
}

void CNNKernel::validateImages(const Image&, const Image&) const { requireZeroOrClampEdge(); }

void CNNKernel::autoGeometry(const Image& source, NNPaddingMethod method, uint64_t& width, uint64_t& height,
                             Offset& offset) const {
  const int64_t kWd = int64_t((kernelWidth_ - 1) * dilationX_ + 1), kHd = int64_t((kernelHeight_ - 1) * dilationY_ + 1);
  width = uint64_t(paddingDestinationSize(int64_t(source.width()), int64_t(strideX_), kWd, method, isBackwards_,
                                          className()));
  height = uint64_t(paddingDestinationSize(int64_t(source.height()), int64_t(strideY_), kHd, method, isBackwards_,
                                           className()));
  offset.x = paddingOffset(int64_t(source.width()), int64_t(strideX_), kWd, method, true);
  offset.y = paddingOffset(int64_t(source.height()), int64_t(strideY_), kHd, method, false);
}

ImageDescriptor CNNKernel::destinationImageDescriptor(const ImageBatch& sourceImages, const StateBatch& sourceStates) {
  const std::string who = className();
  if (sourceImages.empty() || !sourceImages[0])
    throw InvalidArgument(who + ": destinationImageDescriptor needs a source image");
  const Image& src = *sourceImages[0];
  NNPaddingMethod m = padding_->paddingMethod();
  validatePaddingMethod(m, className());
  uint64_t w = 0, h = 0;
  Offset off = offset_;
  autoGeometry(src, m, w, h, off);
  offset_.x = off.x;
  offset_.y = off.y;
  if (sourceFeatureChannelOffset_ >= src.featureChannels())
    throw InvalidArgument(who + ": sourceFeatureChannelOffset = " + str(sourceFeatureChannelOffset_) +
                          " >= source featureChannels = " + str(src.featureChannels()));
  uint64_t cRead = std::min(sourceFeatureChannelMaxCount_, src.featureChannels() - sourceFeatureChannelOffset_);
  if (uint64_t req = requiredSourceFeatureChannels(); req) {
    if (cRead < req)
      throw InvalidArgument(who + ": source provides " + str(cRead) + " feature channels, the kernel needs " + str(req));
    cRead = req;
  }
  const uint64_t cOut = destinationFeatureChannels(cRead);
  if (destinationFeatureChannelOffset_ > UINT64_MAX - cOut)
    throw InvalidArgument(who + ": destinationFeatureChannelOffset = " + str(destinationFeatureChannelOffset_) +
                          " is too large");
  ImageDescriptor d = ImageDescriptor::make(src.featureChannelFormat(), w, h, destinationFeatureChannelOffset_ + cOut, 1);
  if (any(m & NNPaddingMethod::Custom)) d = padding_->destinationImageDescriptor(sourceImages, sourceStates, *this, d);
  return d;
}

UnaryProblem CNNKernel::resolve(CommandBuffer& cb, const ImagePtr& source, const ImagePtr& destination,
                               const IntRegion& clip) {
  const std::string who = className();
  if (cb.device() != device_) throw InvalidArgument(who + ": command buffer is on another device");
  if (cb.isCommitted()) throw InvalidArgument(who + ": command buffer is already committed");
  checkImage(*this, cb, source, "source");
  checkImage(*this, cb, destination, "destination");
  if (ImageAccess::storageIdentity(*source) == ImageAccess::storageIdentity(*destination))
    throw InvalidArgument(who + ": destination aliases the source (same storage)");
  requireFormatForCompute(who, *source, "source");
  requireFormatForCompute(who, *destination, "destination");

  // Channels (spec 00 §4.3).
  const uint64_t cSrc = source->featureChannels(), cDst = destination->featureChannels();
  if (sourceFeatureChannelOffset_ >= cSrc)
    throw InvalidArgument(who + ": sourceFeatureChannelOffset = " + str(sourceFeatureChannelOffset_) +
                          " >= source featureChannels = " + str(cSrc));
  if (sourceFeatureChannelMaxCount_ == 0) throw InvalidArgument(who + ": sourceFeatureChannelMaxCount = 0");
  uint64_t cRead = std::min(sourceFeatureChannelMaxCount_, cSrc - sourceFeatureChannelOffset_);
  if (uint64_t req = requiredSourceFeatureChannels(); req) {
    if (cRead < req)
      throw InvalidArgument(who + ": source provides " + str(cRead) + " feature channels from offset " +
                            str(sourceFeatureChannelOffset_) + ", inputFeatureChannels = " + str(req));
    cRead = req;
  }
  const uint64_t cOut = destinationFeatureChannelsWritten(cRead, *destination);
  if (destinationFeatureChannelOffset_ > cDst || cOut > cDst - destinationFeatureChannelOffset_)
    throw InvalidArgument(who + ": destination featureChannels = " + str(cDst) + " < destinationFeatureChannelOffset " +
                          str(destinationFeatureChannelOffset_) + " + " + str(cOut) + " output channels");
  if (strictValidation()) {
    if (destinationFeatureChannelOffset_ % 4)
      throw InvalidArgument(who + ": destinationFeatureChannelOffset = " + str(destinationFeatureChannelOffset_) +
                            " is not a multiple of 4 (strict validation)");
    if (sourceFeatureChannelOffset_ % 4 && !acceptsAnySourceFeatureChannelOffset())
      throw InvalidArgument(who + ": sourceFeatureChannelOffset = " + str(sourceFeatureChannelOffset_) +
                            " is not a multiple of 4 (strict validation)");
  }
  const Offset off = sourceOffset(*source);
  Window win = effectiveClip(who, clip, *destination, {{source.get(), off.z}});
  validateImages(*source, *destination);

  UnaryProblem p;
  ImageView s = ImageAccess::view(*source, className());
  ImageView d = ImageAccess::view(*destination, className());
  p.src = subView(s, off.z, win.depth, 0, s.h, 0, s.w, int64_t(sourceFeatureChannelOffset_), int64_t(cRead));
  p.dst = subView(d, int64_t(clip.origin.z), win.depth, int64_t(win.y0), int64_t(win.h), int64_t(win.x0),
                  int64_t(win.w), int64_t(destinationFeatureChannelOffset_), int64_t(cOut));
  if (win.w == 0 || win.h == 0) p.dst.n = 0;  // empty clip: nothing is written (spec 00 §4.5)
  p.offsetX = off.x;
  p.offsetY = off.y;
  p.edgeMode = edgeMode_;
  return p;
}

void CNNKernel::commitProblem(CommandBuffer& cb, const ImagePtr& source, const UnaryProblem& problem) {
  if (!problem.dst.empty()) encodeProblem(cb, problem);
  if (source->isTemporary()) static_cast<TemporaryImage&>(*source).consumeRead(cb);
}

void CNNKernel::encode(CommandBufferPtr cb, ImagePtr source, ImagePtr destination) {
  encodeWithClipRect(std::move(cb), source, destination, clipRect_);
}

void CNNKernel::encodeWithClipRect(CommandBufferPtr cb, const ImagePtr& source, const ImagePtr& destination,
                                   const IntRegion& clip) {
  if (!cb) throw InvalidArgument(std::string(className()) + ": commandBuffer = null");
  UnaryProblem p = resolve(*cb, source, destination, clip);
  commitProblem(*cb, source, p);
  didEncode(*cb);
}

ImagePtr CNNKernel::encode(CommandBufferPtr cb, ImagePtr source) {
  if (!cb) throw InvalidArgument(std::string(className()) + ": commandBuffer = null");
  if (!source) throw InvalidArgument(std::string(className()) + ": source = null");
  checkImage(*this, *cb, source, "source");
  ImageDescriptor d = destinationImageDescriptor({source}, {});
  ImagePtr destination = allocator_->imageForCommandBuffer(cb, d, this);
  encodeWithClipRect(cb, source, destination, autoModeClipRect());
  return destination;
}

void CNNKernel::encodeBatch(CommandBufferPtr cb, const ImageBatch& sources, const ImageBatch& destinations) {
  encodeBatchWithClipRect(std::move(cb), sources, destinations, clipRect_);
}

void CNNKernel::encodeBatchWithClipRect(CommandBufferPtr cb, const ImageBatch& sources,
                                        const ImageBatch& destinations, const IntRegion& clip) {
  const std::string who = className();
  if (!cb) throw InvalidArgument(who + ": commandBuffer = null");
  if (sources.size() != destinations.size())
    throw InvalidArgument(who + ": encodeBatch with " + str(uint64_t(sources.size())) + " sources and " +
                          str(uint64_t(destinations.size())) + " destinations");
  for (size_t i = 0; i < sources.size(); ++i) {
    if (sources[i] && sources[i]->numberOfImages() != 1)
      throw InvalidArgument(who + ": batch source " + str(uint64_t(i)) + " has numberOfImages = " +
                            str(sources[i]->numberOfImages()) + " (must be 1)");
    if (i && sources[i] && sources[0] && sources[i]->descriptor() != sources[0]->descriptor())
      throw InvalidArgument(who + ": batch sources differ in shape or format (" + sources[0]->descriptor().toString() +
                            " vs " + sources[i]->descriptor().toString() + ")");
  }
  // Validate every pair before encoding any, so a rejection writes nothing. A temporary source that
  // appears k times must be readable k times.
  std::vector<UnaryProblem> problems;
  std::map<const Image*, uint64_t> reads;
  for (size_t i = 0; i < sources.size(); ++i) {
    problems.push_back(resolve(*cb, sources[i], destinations[i], clip));
    problems.back().batchIndex = int64_t(i);
    if (sources[i]->isTemporary()) {
      uint64_t n = ++reads[sources[i].get()];
      if (n > static_cast<const TemporaryImage&>(*sources[i]).readCount())
        throw InvalidArgument(who + ": temporary source " + str(uint64_t(i)) + " is read " + str(n) +
                              " times but its readCount is " +
                              str(static_cast<const TemporaryImage&>(*sources[i]).readCount()));
    }
  }
  for (size_t i = 0; i < sources.size(); ++i) commitProblem(*cb, sources[i], problems[i]);
  didEncode(*cb);
}

ImageBatch CNNKernel::encodeBatch(CommandBufferPtr cb, const ImageBatch& sources) {
  const std::string who = className();
  if (!cb) throw InvalidArgument(who + ": commandBuffer = null");
  if (sources.empty()) return {};
  for (const auto& s : sources) checkImage(*this, *cb, s, "source");
  ImageDescriptor d = destinationImageDescriptor(sources, {});
  ImageBatch destinations = allocator_->imageBatchForCommandBuffer(cb, d, this, sources.size());
  encodeBatchWithClipRect(cb, sources, destinations, autoModeClipRect());
  return destinations;
}

// ---------------------------------------------------------------------------------------------
// CNNBinaryKernel

CNNBinaryKernel::CNNBinaryKernel(DevicePtr device)
    : Kernel(std::move(device)), padding_(defaultPadding()), allocator_(TemporaryImage::defaultAllocator()) {}

void CNNBinaryKernel::setPadding(NNPaddingPtr padding) {
  if (!padding) throw InvalidArgument(std::string(className()) + ": padding = null");
  validatePaddingMethod(padding->paddingMethod(), className());
  padding_ = std::move(padding);
}

void CNNBinaryKernel::setDestinationImageAllocator(ImageAllocatorPtr allocator) {
  if (!allocator) throw InvalidArgument(std::string(className()) + ": destinationImageAllocator = null");
  allocator_ = std::move(allocator);
}

void CNNBinaryKernel::validateImages(const Image&, const Image&, const Image&) const {
  for (ImageEdgeMode m : {primaryEdgeMode_, secondaryEdgeMode_})
    if (m != ImageEdgeMode::Zero && m != ImageEdgeMode::Clamp)
      throw InvalidArgument(std::string(className()) + ": edgeMode = " + toString(m) +
                            " (only Zero and Clamp are supported)");
}

ImageDescriptor CNNBinaryKernel::destinationImageDescriptor(const ImageBatch& sourceImages,
                                                            const StateBatch& sourceStates) {
  const std::string who = className();
  if (sourceImages.size() < 2 || !sourceImages[0] || !sourceImages[1])
    throw InvalidArgument(who + ": destinationImageDescriptor needs primary and secondary source images");
  const Image& p = *sourceImages[0];
  const Image& s = *sourceImages[1];
  NNPaddingMethod m = padding_->paddingMethod();
  validatePaddingMethod(m, className());
  const int64_t kWd = int64_t((primaryKernelWidth_ - 1) * primaryDilationX_ + 1);
  const int64_t kHd = int64_t((primaryKernelHeight_ - 1) * primaryDilationY_ + 1);
  const int64_t sx = int64_t(std::max<uint64_t>(primaryStrideX_, 1)), sy = int64_t(std::max<uint64_t>(primaryStrideY_, 1));
  uint64_t w = uint64_t(paddingDestinationSize(int64_t(p.width()), sx, kWd, m, isBackwards_, className()));
  uint64_t h = uint64_t(paddingDestinationSize(int64_t(p.height()), sy, kHd, m, isBackwards_, className()));
  primaryOffset_.x = paddingOffset(int64_t(p.width()), sx, kWd, m, true);
  primaryOffset_.y = paddingOffset(int64_t(p.height()), sy, kHd, m, false);
  auto readCount = [&](const Image& img, uint64_t off, uint64_t maxCount, const char* role) {
    if (off >= img.featureChannels())
      throw InvalidArgument(who + ": " + role + "SourceFeatureChannelOffset = " + str(off) + " >= featureChannels = " +
                            str(img.featureChannels()));
    return std::min(maxCount, img.featureChannels() - off);
  };
  uint64_t cp = readCount(p, primarySourceFeatureChannelOffset_, primarySourceFeatureChannelMaxCount_, "primary");
  uint64_t cs = readCount(s, secondarySourceFeatureChannelOffset_, secondarySourceFeatureChannelMaxCount_, "secondary");
  const uint64_t cOut = destinationFeatureChannels(cp, cs);
  if (destinationFeatureChannelOffset_ > UINT64_MAX - cOut)
    throw InvalidArgument(who + ": destinationFeatureChannelOffset = " + str(destinationFeatureChannelOffset_) +
                          " is too large");
  ImageDescriptor d = ImageDescriptor::make(p.featureChannelFormat(), w, h, destinationFeatureChannelOffset_ + cOut, 1);
  if (any(m & NNPaddingMethod::Custom)) d = padding_->destinationImageDescriptor(sourceImages, sourceStates, *this, d);
  return d;
}

BinaryProblem CNNBinaryKernel::resolve(CommandBuffer& cb, const ImagePtr& primary, const ImagePtr& secondary,
                                       const ImagePtr& destination) {
  const std::string who = className();
  if (cb.device() != device_) throw InvalidArgument(who + ": command buffer is on another device");
  if (cb.isCommitted()) throw InvalidArgument(who + ": command buffer is already committed");
  checkImage(*this, cb, primary, "primary source");
  checkImage(*this, cb, secondary, "secondary source");
  checkImage(*this, cb, destination, "destination");
  const Storage* ds = ImageAccess::storageIdentity(*destination);
  if (ds == ImageAccess::storageIdentity(*primary) || ds == ImageAccess::storageIdentity(*secondary))
    throw InvalidArgument(who + ": destination aliases a source (same storage)");
  requireFormatForCompute(who, *primary, "primary");
  requireFormatForCompute(who, *secondary, "secondary");
  requireFormatForCompute(who, *destination, "destination");
  auto readCount = [&](const Image& img, uint64_t off, uint64_t maxCount, const char* role) {
    if (off >= img.featureChannels())
      throw InvalidArgument(who + ": " + role + "SourceFeatureChannelOffset = " + str(off) + " >= featureChannels = " +
                            str(img.featureChannels()));
    if (maxCount == 0) throw InvalidArgument(who + ": " + role + "SourceFeatureChannelMaxCount = 0");
    if (strictValidation() && off % 4)
      throw InvalidArgument(who + ": " + role + "SourceFeatureChannelOffset = " + str(off) +
                            " is not a multiple of 4 (strict validation)");
    return std::min(maxCount, img.featureChannels() - off);
  };
  uint64_t cp = readCount(*primary, primarySourceFeatureChannelOffset_, primarySourceFeatureChannelMaxCount_, "primary");
  uint64_t cs =
      readCount(*secondary, secondarySourceFeatureChannelOffset_, secondarySourceFeatureChannelMaxCount_, "secondary");
  uint64_t cOut = destinationFeatureChannels(cp, cs);
  if (destinationFeatureChannelOffset_ > destination->featureChannels() ||
      cOut > destination->featureChannels() - destinationFeatureChannelOffset_)
    throw InvalidArgument(who + ": destination featureChannels = " + str(destination->featureChannels()) +
                          " < destinationFeatureChannelOffset " + str(destinationFeatureChannelOffset_) + " + " +
                          str(cOut) + " output channels");
  if (strictValidation() && destinationFeatureChannelOffset_ % 4)
    throw InvalidArgument(who + ": destinationFeatureChannelOffset = " + str(destinationFeatureChannelOffset_) +
                          " is not a multiple of 4 (strict validation)");
  const Offset primaryOff = primarySourceOffset(*primary), secondaryOff = secondarySourceOffset(*secondary);
  Window win =
      effectiveClip(who, clipRect_, *destination, {{primary.get(), primaryOff.z}, {secondary.get(), secondaryOff.z}});
  validateImages(*primary, *secondary, *destination);

  BinaryProblem p;
  ImageView pv = ImageAccess::view(*primary, className());
  ImageView sv = ImageAccess::view(*secondary, className());
  ImageView dv = ImageAccess::view(*destination, className());
  p.primary = subView(pv, primaryOff.z, win.depth, 0, pv.h, 0, pv.w, int64_t(primarySourceFeatureChannelOffset_),
                      int64_t(cp));
  p.secondary = subView(sv, secondaryOff.z, win.depth, 0, sv.h, 0, sv.w,
                        int64_t(secondarySourceFeatureChannelOffset_), int64_t(cs));
  p.dst = subView(dv, int64_t(clipRect_.origin.z), win.depth, int64_t(win.y0), int64_t(win.h), int64_t(win.x0),
                  int64_t(win.w), int64_t(destinationFeatureChannelOffset_), int64_t(cOut));
  if (win.w == 0 || win.h == 0) p.dst.n = 0;
  p.primaryOffsetX = primaryOff.x;
  p.primaryOffsetY = primaryOff.y;
  p.secondaryOffsetX = secondaryOff.x;
  p.secondaryOffsetY = secondaryOff.y;
  p.primaryEdgeMode = primaryEdgeMode_;
  p.secondaryEdgeMode = secondaryEdgeMode_;
  return p;
}

void CNNBinaryKernel::encode(CommandBufferPtr cb, ImagePtr primary, ImagePtr secondary, ImagePtr destination) {
  if (!cb) throw InvalidArgument(std::string(className()) + ": commandBuffer = null");
  BinaryProblem p = resolve(*cb, primary, secondary, destination);
  if (primary.get() == secondary.get() && primary->isTemporary() &&
      static_cast<TemporaryImage&>(*primary).readCount() < 2)
    throw InvalidArgument(std::string(className()) + ": temporary image used as both sources needs readCount >= 2");
  if (!p.dst.empty()) encodeProblem(*cb, p);
  if (primary->isTemporary()) static_cast<TemporaryImage&>(*primary).consumeRead(*cb);
  if (secondary->isTemporary()) static_cast<TemporaryImage&>(*secondary).consumeRead(*cb);
}

ImagePtr CNNBinaryKernel::encode(CommandBufferPtr cb, ImagePtr primary, ImagePtr secondary) {
  if (!cb) throw InvalidArgument(std::string(className()) + ": commandBuffer = null");
  checkImage(*this, *cb, primary, "primary source");
  checkImage(*this, *cb, secondary, "secondary source");
  ImageDescriptor d = destinationImageDescriptor({primary, secondary}, {});
  ImagePtr destination = allocator_->imageForCommandBuffer(cb, d, this);
  encode(cb, primary, secondary, destination);
  return destination;
}

void CNNBinaryKernel::encodeBatch(CommandBufferPtr cb, const ImageBatch& primaries, const ImageBatch& secondaries,
                                  const ImageBatch& destinations) {
  const std::string who = className();
  if (!cb) throw InvalidArgument(who + ": commandBuffer = null");
  if (primaries.size() != secondaries.size() || primaries.size() != destinations.size())
    throw InvalidArgument(who + ": encodeBatch with batches of different lengths (" + str(uint64_t(primaries.size())) +
                          ", " + str(uint64_t(secondaries.size())) + ", " + str(uint64_t(destinations.size())) + ")");
  // Spec 00 §2.6: batch images are single images of one descriptor.
  for (const ImageBatch* batch : {&primaries, &secondaries}) {
    const char* role = batch == &primaries ? "primary" : "secondary";
    for (size_t i = 0; i < batch->size(); ++i) {
      const ImagePtr& image = (*batch)[i];
      if (image && image->numberOfImages() != 1)
        throw InvalidArgument(who + ": batch " + role + " source " + str(uint64_t(i)) + " has numberOfImages = " +
                              str(image->numberOfImages()) + " (must be 1)");
      if (i && image && (*batch)[0] && image->descriptor() != (*batch)[0]->descriptor())
        throw InvalidArgument(who + ": batch " + role + " sources differ in shape or format (" +
                              (*batch)[0]->descriptor().toString() + " vs " + image->descriptor().toString() + ")");
    }
  }
  // Validate every pair before encoding any, so a rejection writes nothing. A temporary source that
  // is read k times (as either source, in any pair) must have readCount >= k.
  std::map<const Image*, uint64_t> reads;
  for (size_t i = 0; i < primaries.size(); ++i) {
    resolve(*cb, primaries[i], secondaries[i], destinations[i]);
    for (const ImagePtr* source : {&primaries[i], &secondaries[i]}) {
      if (!(*source)->isTemporary()) continue;
      const uint64_t n = ++reads[source->get()];
      const uint64_t available = static_cast<const TemporaryImage&>(**source).readCount();
      if (n > available)
        throw InvalidArgument(who + ": temporary source of pair " + str(uint64_t(i)) + " is read " + str(n) +
                              " times but its readCount is " + str(available));
    }
  }
  for (size_t i = 0; i < primaries.size(); ++i) encode(cb, primaries[i], secondaries[i], destinations[i]);
}

ImageBatch CNNBinaryKernel::encodeBatch(CommandBufferPtr cb, const ImageBatch& primaries,
                                        const ImageBatch& secondaries) {
  const std::string who = className();
  if (!cb) throw InvalidArgument(who + ": commandBuffer = null");
  if (primaries.size() != secondaries.size())
    throw InvalidArgument(who + ": encodeBatch with batches of different lengths");
  if (primaries.empty()) return {};
  ImageDescriptor d = destinationImageDescriptor({primaries[0], secondaries[0]}, {});
  ImageBatch destinations = allocator_->imageBatchForCommandBuffer(cb, d, this, primaries.size());
  encodeBatch(cb, primaries, secondaries, destinations);
  return destinations;
}

CNNGradientKernel::CNNGradientKernel(DevicePtr device) : CNNBinaryKernel(std::move(device)) { isBackwards_ = true; }

}  // namespace mpsnn
