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
  p.clipX = int64_t(win.x0);
  p.clipY = int64_t(win.y0);
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
  p.clipX = int64_t(win.x0);
  p.clipY = int64_t(win.y0);
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

// ---------------------------------------------------------------------------------------------
// Result states and state-filling forward encodes (spec 10 §10.1.4)

namespace {

ForwardSourceRecord sourceRecord(const Image& image, uint64_t channelOffset, uint64_t channelsRead, Offset offset,
                                 ImageEdgeMode edge) {
  ForwardSourceRecord r;
  r.width = image.width();
  r.height = image.height();
  r.featureChannels = image.featureChannels();
  r.numberOfImages = image.numberOfImages();
  r.format = image.featureChannelFormat();
  r.featureChannelOffset = channelOffset;
  r.featureChannelsRead = channelsRead;
  r.offset = offset;
  r.edgeMode = edge;
  return r;
}

void recordDestination(ForwardRecord& r, const Image& dst, uint64_t channelOffset, const ImageView& written,
                       int64_t clipX, int64_t clipY) {
  r.destinationWidth = dst.width();
  r.destinationHeight = dst.height();
  r.destinationFeatureChannels = dst.featureChannels();
  r.destinationNumberOfImages = dst.numberOfImages();
  r.destinationFeatureChannelOffset = channelOffset;
  r.destinationFeatureChannelsWritten = uint64_t(written.c);
  r.writtenX = uint64_t(clipX);
  r.writtenY = uint64_t(clipY);
  r.writtenWidth = uint64_t(written.w);
  r.writtenHeight = uint64_t(written.h);
  r.imagesPerEncode = uint64_t(written.n);
}

/// Checks the lengths and the per-image rule of a batch encode (spec 00 §2.6).
void checkBatch(const std::string& who, const ImageBatch& batch, const char* role) {
  for (size_t i = 0; i < batch.size(); ++i) {
    const ImagePtr& image = batch[i];
    if (batch.size() > 1 && image && image->numberOfImages() != 1)
      throw InvalidArgument(who + ": batch " + role + " " + str(uint64_t(i)) + " has numberOfImages = " +
                            str(image->numberOfImages()) + " (must be 1)");
    if (i && image && batch[0] && image->descriptor() != batch[0]->descriptor())
      throw InvalidArgument(who + ": batch " + role + "s differ in shape or format (" + batch[0]->descriptor().toString() +
                            " vs " + image->descriptor().toString() + ")");
  }
}

/// Counts the reads of temporary images over a whole call and rejects one read more often than its
/// readCount allows.
class ReadTally {
 public:
  explicit ReadTally(std::string who) : who_(std::move(who)) {}
  void add(const ImagePtr& image, size_t pair) {
    if (!image || !image->isTemporary()) return;
    const uint64_t n = ++reads_[image.get()];
    const uint64_t available = static_cast<const TemporaryImage&>(*image).readCount();
    if (n > available)
      throw InvalidArgument(who_ + ": temporary source of pair " + str(uint64_t(pair)) + " is read " + str(n) +
                            " times but its readCount is " + str(available));
  }

 private:
  std::string who_;
  std::map<const Image*, uint64_t> reads_;
};

void consume(CommandBuffer& cb, const ImagePtr& image) {
  if (image->isTemporary()) static_cast<TemporaryImage&>(*image).consumeRead(cb);
}

/// Distinct states of a batch, in first-appearance order.
std::vector<State*> distinctStates(const StateBatch& states) {
  std::vector<State*> out;
  for (const auto& s : states)
    if (s && std::find(out.begin(), out.end(), s.get()) == out.end()) out.push_back(s.get());
  return out;
}

void checkStates(const std::string& who, const CommandBuffer& cb, const StateBatch& states, size_t count,
                 const char* role) {
  if (states.size() != count)
    throw InvalidArgument(who + ": " + role + " batch has " + str(uint64_t(states.size())) + " states for " +
                          str(uint64_t(count)) + " images");
  for (size_t i = 0; i < states.size(); ++i) {
    if (!states[i]) throw InvalidArgument(who + ": " + role + " " + str(uint64_t(i)) + " = null");
    states[i]->checkUsable(cb, who);
  }
}

}  // namespace

StatePtr CNNKernel::makeResultState(const CommandBufferPtr& temporaryOn, const Image&, const Image&) {
  return NNGradientState::make(device_, temporaryOn);
}

void CNNKernel::validateResultState(const State& state) const {
  if (!dynamic_cast<const NNGradientState*>(&state))
    throw InvalidArgument(std::string(className()) + ": destinationState is not an NNGradientState");
}

void CNNKernel::encodeProblemWithState(CommandBuffer& cb, const UnaryProblem& problem, State&) {
  encodeProblem(cb, problem);
}

StateBatch CNNKernel::makeResultStates(const CommandBufferPtr& temporaryOn, const ImageBatch& sources,
                                       const ImageBatch& destinations) {
  const std::string who = className();
  if (sources.size() != destinations.size())
    throw InvalidArgument(who + ": result states for " + str(uint64_t(sources.size())) + " sources and " +
                          str(uint64_t(destinations.size())) + " destinations");
  for (size_t i = 0; i < sources.size(); ++i)
    if (!sources[i] || !destinations[i]) throw InvalidArgument(who + ": result state for a null image");
  if (temporaryOn && temporaryOn->isCommitted()) throw InvalidArgument(who + ": command buffer is already committed");
  StateBatch states;
  for (size_t i = 0; i < sources.size(); ++i) {
    if (i && isResultStateReusedAcrossBatch())
      states.push_back(states[0]);
    else
      states.push_back(makeResultState(temporaryOn, *sources[i], *destinations[i]));
  }
  return states;
}

StatePtr CNNKernel::resultStateForSourceImage(ImagePtr source, const StateBatch&, ImagePtr destination) {
  return makeResultStates(nullptr, {source}, {destination})[0];
}

StateBatch CNNKernel::resultStateBatchForSourceImage(const ImageBatch& sources, const std::vector<StateBatch>&,
                                                     const ImageBatch& destinations) {
  return makeResultStates(nullptr, sources, destinations);
}

StatePtr CNNKernel::temporaryResultState(CommandBufferPtr cb, ImagePtr source, const StateBatch&,
                                         ImagePtr destination) {
  if (!cb) throw InvalidArgument(std::string(className()) + ": commandBuffer = null");
  return makeResultStates(cb, {source}, {destination})[0];
}

StateBatch CNNKernel::temporaryResultStateBatch(CommandBufferPtr cb, const ImageBatch& sources,
                                                const std::vector<StateBatch>&, const ImageBatch& destinations) {
  if (!cb) throw InvalidArgument(std::string(className()) + ": commandBuffer = null");
  return makeResultStates(cb, sources, destinations);
}

void CNNKernel::encodeWithStates(CommandBufferPtr cb, const ImageBatch& sources, const StateBatch& states,
                                 const ImageBatch& destinations, const IntRegion& clip) {
  const std::string who = className();
  if (!cb) throw InvalidArgument(who + ": commandBuffer = null");
  if (sources.size() != destinations.size() || sources.empty())
    throw InvalidArgument(who + ": encodeBatch with " + str(uint64_t(sources.size())) + " sources and " +
                          str(uint64_t(destinations.size())) + " destinations");
  checkBatch(who, sources, "source");
  checkStates(who, *cb, states, sources.size(), "destinationState");
  for (State* s : distinctStates(states)) validateResultState(*s);
  std::vector<UnaryProblem> problems;
  ReadTally tally(who);
  for (size_t i = 0; i < sources.size(); ++i) {
    problems.push_back(resolve(*cb, sources[i], destinations[i], clip));
    problems.back().batchIndex = int64_t(i);
    tally.add(sources[i], i);
  }
  for (size_t i = 0; i < sources.size(); ++i) {
    const UnaryProblem& p = problems[i];
    if (auto* gs = dynamic_cast<NNGradientState*>(states[i].get())) {
      ForwardRecord& r = gs->mutableForwardRecord();
      r.recorded = true;
      r.kernel = this;
      r.kernelClass = className();
      Offset off{p.offsetX, p.offsetY, sourceOffset(*sources[i]).z};
      r.primary = sourceRecord(*sources[i], sourceFeatureChannelOffset_, uint64_t(p.src.c), off, edgeMode_);
      r.primary.strideX = strideX_;
      r.primary.strideY = strideY_;
      r.primary.kernelWidth = kernelWidth_;
      r.primary.kernelHeight = kernelHeight_;
      r.primary.dilationX = dilationX_;
      r.primary.dilationY = dilationY_;
      recordDestination(r, *destinations[i], destinationFeatureChannelOffset_, p.dst, p.clipX, p.clipY);
    }
    if (!p.dst.empty()) encodeProblemWithState(*cb, p, *states[i]);
    consume(*cb, sources[i]);
  }
  didEncode(*cb);
}

void CNNKernel::encode(CommandBufferPtr cb, ImagePtr source, StatePtr state, ImagePtr destination) {
  encodeWithStates(std::move(cb), {source}, {state}, {destination}, clipRect_);
}

void CNNKernel::encodeBatch(CommandBufferPtr cb, const ImageBatch& sources, const StateBatch& states,
                            const ImageBatch& destinations) {
  encodeWithStates(std::move(cb), sources, states, destinations, clipRect_);
}

ImagePtr CNNKernel::encode(CommandBufferPtr cb, ImagePtr source, StatePtr* state, bool stateIsTemporary) {
  StateBatch made;
  ImageBatch out = encodeBatch(std::move(cb), ImageBatch{std::move(source)}, &made, stateIsTemporary);
  if (state) *state = made[0];
  return out[0];
}

ImageBatch CNNKernel::encodeBatch(CommandBufferPtr cb, const ImageBatch& sources, StateBatch* states,
                                  bool stateIsTemporary) {
  const std::string who = className();
  if (!cb) throw InvalidArgument(who + ": commandBuffer = null");
  if (sources.empty()) return {};
  for (const auto& s : sources) checkImage(*this, *cb, s, "source");
  ImageDescriptor d = destinationImageDescriptor(sources, {});
  ImageBatch destinations = allocator_->imageBatchForCommandBuffer(cb, d, this, sources.size());
  StateBatch made = makeResultStates(stateIsTemporary ? cb : nullptr, sources, destinations);
  for (const auto& s : made)
    if (!s) throw InvalidArgument(who + ": the kernel has no result state");
  encodeWithStates(cb, sources, made, destinations, autoModeClipRect());
  if (states) *states = std::move(made);
  return destinations;
}

// Binary kernels.

StatePtr CNNBinaryKernel::makeResultState(const CommandBufferPtr& temporaryOn, const Image&, const Image&,
                                          const Image&) {
  return NNBinaryGradientState::make(device_, temporaryOn);
}

void CNNBinaryKernel::validateResultState(const State& state) const {
  if (!dynamic_cast<const NNBinaryGradientState*>(&state))
    throw InvalidArgument(std::string(className()) + ": destinationState is not an NNBinaryGradientState");
}

void CNNBinaryKernel::encodeProblemWithState(CommandBuffer& cb, const BinaryProblem& problem, State&) {
  encodeProblem(cb, problem);
}

StateBatch CNNBinaryKernel::makeResultStates(const CommandBufferPtr& temporaryOn, const ImageBatch& primaries,
                                             const ImageBatch& secondaries, const ImageBatch& destinations) {
  const std::string who = className();
  if (primaries.size() != secondaries.size() || primaries.size() != destinations.size())
    throw InvalidArgument(who + ": result states for batches of different lengths");
  for (size_t i = 0; i < primaries.size(); ++i)
    if (!primaries[i] || !secondaries[i] || !destinations[i])
      throw InvalidArgument(who + ": result state for a null image");
  if (temporaryOn && temporaryOn->isCommitted()) throw InvalidArgument(who + ": command buffer is already committed");
  StateBatch states;
  for (size_t i = 0; i < primaries.size(); ++i) {
    if (i && isResultStateReusedAcrossBatch())
      states.push_back(states[0]);
    else
      states.push_back(makeResultState(temporaryOn, *primaries[i], *secondaries[i], *destinations[i]));
  }
  return states;
}

StatePtr CNNBinaryKernel::resultStateForPrimaryImage(ImagePtr primary, ImagePtr secondary, const StateBatch&,
                                                     ImagePtr destination) {
  return makeResultStates(nullptr, {primary}, {secondary}, {destination})[0];
}

StateBatch CNNBinaryKernel::resultStateBatchForPrimaryImage(const ImageBatch& primaries, const ImageBatch& secondaries,
                                                            const std::vector<StateBatch>&,
                                                            const ImageBatch& destinations) {
  return makeResultStates(nullptr, primaries, secondaries, destinations);
}

StatePtr CNNBinaryKernel::temporaryResultState(CommandBufferPtr cb, ImagePtr primary, ImagePtr secondary,
                                               const StateBatch&, ImagePtr destination) {
  if (!cb) throw InvalidArgument(std::string(className()) + ": commandBuffer = null");
  return makeResultStates(cb, {primary}, {secondary}, {destination})[0];
}

StateBatch CNNBinaryKernel::temporaryResultStateBatch(CommandBufferPtr cb, const ImageBatch& primaries,
                                                      const ImageBatch& secondaries, const std::vector<StateBatch>&,
                                                      const ImageBatch& destinations) {
  if (!cb) throw InvalidArgument(std::string(className()) + ": commandBuffer = null");
  return makeResultStates(cb, primaries, secondaries, destinations);
}

void CNNBinaryKernel::encodeWithStates(CommandBufferPtr cb, const ImageBatch& primaries, const ImageBatch& secondaries,
                                       const StateBatch& states, const ImageBatch& destinations) {
  const std::string who = className();
  if (!cb) throw InvalidArgument(who + ": commandBuffer = null");
  if (primaries.size() != secondaries.size() || primaries.size() != destinations.size() || primaries.empty())
    throw InvalidArgument(who + ": encodeBatch with batches of different lengths or empty");
  checkBatch(who, primaries, "primary source");
  checkBatch(who, secondaries, "secondary source");
  checkStates(who, *cb, states, primaries.size(), "destinationState");
  for (State* s : distinctStates(states)) validateResultState(*s);
  std::vector<BinaryProblem> problems;
  ReadTally tally(who);
  for (size_t i = 0; i < primaries.size(); ++i) {
    problems.push_back(resolve(*cb, primaries[i], secondaries[i], destinations[i]));
    problems.back().batchIndex = int64_t(i);
    tally.add(primaries[i], i);
    tally.add(secondaries[i], i);
  }
  for (size_t i = 0; i < primaries.size(); ++i) {
    const BinaryProblem& p = problems[i];
    if (auto* gs = dynamic_cast<NNGradientState*>(states[i].get())) {
      ForwardRecord& r = gs->mutableForwardRecord();
      r.recorded = true;
      r.kernel = this;
      r.kernelClass = className();
      r.primary = sourceRecord(*primaries[i], primarySourceFeatureChannelOffset_, uint64_t(p.primary.c),
                               {p.primaryOffsetX, p.primaryOffsetY, primarySourceOffset(*primaries[i]).z},
                               primaryEdgeMode_);
      r.primary.strideX = primaryStrideX_;
      r.primary.strideY = primaryStrideY_;
      r.secondary = sourceRecord(*secondaries[i], secondarySourceFeatureChannelOffset_, uint64_t(p.secondary.c),
                                 {p.secondaryOffsetX, p.secondaryOffsetY, secondarySourceOffset(*secondaries[i]).z},
                                 secondaryEdgeMode_);
      r.secondary.strideX = secondaryStrideX_;
      r.secondary.strideY = secondaryStrideY_;
      recordDestination(r, *destinations[i], destinationFeatureChannelOffset_, p.dst, p.clipX, p.clipY);
    }
    if (!p.dst.empty()) encodeProblemWithState(*cb, p, *states[i]);
    consume(*cb, primaries[i]);
    consume(*cb, secondaries[i]);
  }
}

void CNNBinaryKernel::encode(CommandBufferPtr cb, ImagePtr primary, ImagePtr secondary, StatePtr state,
                             ImagePtr destination) {
  encodeWithStates(std::move(cb), {primary}, {secondary}, {state}, {destination});
}

void CNNBinaryKernel::encodeBatch(CommandBufferPtr cb, const ImageBatch& primaries, const ImageBatch& secondaries,
                                  const StateBatch& states, const ImageBatch& destinations) {
  encodeWithStates(std::move(cb), primaries, secondaries, states, destinations);
}

ImagePtr CNNBinaryKernel::encode(CommandBufferPtr cb, ImagePtr primary, ImagePtr secondary, StatePtr* state,
                                 bool stateIsTemporary) {
  StateBatch made;
  ImageBatch out = encodeBatch(std::move(cb), ImageBatch{std::move(primary)}, ImageBatch{std::move(secondary)}, &made,
                               stateIsTemporary);
  if (state) *state = made[0];
  return out[0];
}

ImageBatch CNNBinaryKernel::encodeBatch(CommandBufferPtr cb, const ImageBatch& primaries,
                                        const ImageBatch& secondaries, StateBatch* states, bool stateIsTemporary) {
  const std::string who = className();
  if (!cb) throw InvalidArgument(who + ": commandBuffer = null");
  if (primaries.size() != secondaries.size())
    throw InvalidArgument(who + ": encodeBatch with batches of different lengths");
  if (primaries.empty()) return {};
  checkImage(*this, *cb, primaries[0], "primary source");
  checkImage(*this, *cb, secondaries[0], "secondary source");
  ImageDescriptor d = destinationImageDescriptor({primaries[0], secondaries[0]}, {});
  ImageBatch destinations = allocator_->imageBatchForCommandBuffer(cb, d, this, primaries.size());
  StateBatch made = makeResultStates(stateIsTemporary ? cb : nullptr, primaries, secondaries, destinations);
  for (const auto& s : made)
    if (!s) throw InvalidArgument(who + ": the kernel has no result state");
  encodeWithStates(cb, primaries, secondaries, made, destinations);
  if (states) *states = std::move(made);
  return destinations;
}

// ---------------------------------------------------------------------------------------------
// CNNGradientKernel (spec 10 §10.2)

CNNGradientKernel::CNNGradientKernel(DevicePtr device) : CNNBinaryKernel(std::move(device)) { isBackwards_ = true; }

const ForwardRecord& CNNGradientKernel::recordOf(const State& state) {
  return static_cast<const NNGradientState&>(state).forwardRecord();
}

void CNNGradientKernel::encodeProblem(CommandBuffer&, const BinaryProblem&) {
  throw InvalidArgument(std::string(className()) +
                        ": a gradient kernel needs its gradient state: use encode(commandBuffer, sourceGradient, "
                        "sourceImage, gradientState[, destinationGradient])");
}

void CNNGradientKernel::validateGradientState(const State& state) const {
  const auto* gs = dynamic_cast<const NNGradientState*>(&state);
  if (!gs) throw InvalidArgument(std::string(className()) + ": gradientState is not an NNGradientState");
  if (!gs->forwardRecord().recorded)
    throw InvalidArgument(std::string(className()) + ": gradientState was not filled by a forward encode");
}

void CNNGradientKernel::applyGradientState(const State& state) {
  const ForwardRecord& r = recordOf(state);
  secondaryKernelWidth_ = r.primary.kernelWidth;
  secondaryKernelHeight_ = r.primary.kernelHeight;
  secondaryStrideX_ = primaryStrideX_ = r.primary.strideX;
  secondaryStrideY_ = primaryStrideY_ = r.primary.strideY;
  secondaryDilationX_ = r.primary.dilationX;
  secondaryDilationY_ = r.primary.dilationY;
  secondaryEdgeMode_ = r.primary.edgeMode;
  secondaryOffset_ = r.primary.offset;
}

void CNNGradientKernel::validateGradientImages(const Image& g, const Image& x, const State& state) const {
  const ForwardRecord& r = recordOf(state);
  const std::string who = className();
  if (g.width() != r.writtenWidth || g.height() != r.writtenHeight)
    throw InvalidArgument(who + ": sourceGradient is " + str(g.width()) + "x" + str(g.height()) +
                          ", the forward encode wrote " + str(r.writtenWidth) + "x" + str(r.writtenHeight));
  if (x.width() != r.primary.width || x.height() != r.primary.height)
    throw InvalidArgument(who + ": sourceImage is " + str(x.width()) + "x" + str(x.height()) +
                          ", the forward source was " + str(r.primary.width) + "x" + str(r.primary.height));
}

ImageDescriptor CNNGradientKernel::gradientDestinationDescriptor(const Image& g, const Image& x, const State&) const {
  const uint64_t cp = std::min(primarySourceFeatureChannelMaxCount_,
                               g.featureChannels() - std::min(g.featureChannels(), primarySourceFeatureChannelOffset_));
  if (secondarySourceFeatureChannelOffset_ >= x.featureChannels())
    throw InvalidArgument(std::string(className()) + ": secondarySourceFeatureChannelOffset = " +
                          str(secondarySourceFeatureChannelOffset_) + " >= featureChannels = " + str(x.featureChannels()));
  const uint64_t cs =
      std::min(secondarySourceFeatureChannelMaxCount_, x.featureChannels() - secondarySourceFeatureChannelOffset_);
  return ImageDescriptor::make(g.featureChannelFormat(), x.width(), x.height(),
                               destinationFeatureChannelOffset_ + destinationFeatureChannels(cp, cs), 1);
}

ImagePtr CNNGradientKernel::encode(CommandBufferPtr cb, ImagePtr g, ImagePtr x, StatePtr state) {
  ImageBatch out = encodeBatch(std::move(cb), ImageBatch{std::move(g)}, ImageBatch{std::move(x)}, StateBatch{state});
  return out[0];
}

void CNNGradientKernel::encode(CommandBufferPtr cb, ImagePtr g, ImagePtr x, StatePtr state, ImagePtr dst) {
  encodeBatch(std::move(cb), ImageBatch{std::move(g)}, ImageBatch{std::move(x)}, StateBatch{std::move(state)},
              ImageBatch{std::move(dst)});
}

ImageBatch CNNGradientKernel::encodeBatch(CommandBufferPtr cb, const ImageBatch& gs, const ImageBatch& xs,
                                          const StateBatch& states) {
  const std::string who = className();
  if (!cb) throw InvalidArgument(who + ": commandBuffer = null");
  if (gs.empty() || gs.size() != xs.size())
    throw InvalidArgument(who + ": encodeBatch needs equal, non-empty batches of gradients and source images");
  checkStates(who, *cb, states, gs.size(), "gradientState");
  checkImage(*this, *cb, gs[0], "sourceGradient");
  checkImage(*this, *cb, xs[0], "sourceImage");
  validateGradientState(*states[0]);
  applyGradientState(*states[0]);
  validateGradientImages(*gs[0], *xs[0], *states[0]);
  ImageDescriptor d = gradientDestinationDescriptor(*gs[0], *xs[0], *states[0]);
  ImageBatch destinations = allocator_->imageBatchForCommandBuffer(cb, d, this, gs.size());
  encodeBatch(cb, gs, xs, states, destinations);
  return destinations;
}

void CNNGradientKernel::encodeBatch(CommandBufferPtr cb, const ImageBatch& gs, const ImageBatch& xs,
                                    const StateBatch& states, const ImageBatch& dsts) {
  const std::string who = className();
  if (!cb) throw InvalidArgument(who + ": commandBuffer = null");
  if (gs.empty() || gs.size() != xs.size() || gs.size() != dsts.size())
    throw InvalidArgument(who + ": encodeBatch with batches of different lengths (" + str(uint64_t(gs.size())) + ", " +
                          str(uint64_t(xs.size())) + ", " + str(uint64_t(dsts.size())) + ") or empty");
  checkStates(who, *cb, states, gs.size(), "gradientState");
  checkBatch(who, gs, "sourceGradient");
  checkBatch(who, xs, "sourceImage");
  for (State* s : distinctStates(states)) validateGradientState(*s);
  std::vector<BinaryProblem> problems;
  ReadTally tally(who);
  for (size_t i = 0; i < gs.size(); ++i) {
    checkImage(*this, *cb, gs[i], "sourceGradient");
    checkImage(*this, *cb, xs[i], "sourceImage");
    applyGradientState(*states[i]);
    validateGradientImages(*gs[i], *xs[i], *states[i]);
    problems.push_back(resolve(*cb, gs[i], xs[i], dsts[i]));
    problems.back().batchIndex = int64_t(i);
    tally.add(gs[i], i);
    tally.add(xs[i], i);
  }
  for (size_t i = 0; i < gs.size(); ++i) {
    applyGradientState(*states[i]);
    if (!problems[i].dst.empty()) encodeGradient(*cb, problems[i], *states[i]);
    consume(*cb, gs[i]);
    consume(*cb, xs[i]);
  }
  for (State* s : distinctStates(states)) s->consumeRead(*cb);
}

}  // namespace mpsnn
