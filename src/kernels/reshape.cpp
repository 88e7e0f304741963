// NNReshape, NNSlice, NNPad and NNConcatenation (spec 06 §5–§8): shapes, placement checks, dispatch.
#include "mpsnn/reshape.h"

#include <algorithm>
#include <map>

#include "core/image_access.h"
#include "kernels/describe.h"
#include "kernels/reshape_impl.h"
#include "mpsnn/error.h"

namespace mpsnn {

using namespace detail;

namespace {

std::string str(uint64_t v) { return std::to_string(v); }
std::string str(int64_t v) { return std::to_string(v); }

// CHOICE (docs/reduce-reshape.md): padding sizes up to 2^31 − 1 and source positions within ±2^62 keep
// every coordinate the backends compute (offset + x, mirror periods) inside int64 with room to spare.
constexpr uint64_t kMaxPadding = (uint64_t(1) << 31) - 1;
constexpr int64_t kMaxOffset = int64_t(1) << 62;

void requireOffsetInRange(const std::string& who, const Offset& offset) {
  if (offset.x < -kMaxOffset || offset.x > kMaxOffset)
    throw InvalidArgument(who + ": offset.x = " + str(offset.x) +
                          " is beyond the supported range of +-2^62 pixels");
  if (offset.y < -kMaxOffset || offset.y > kMaxOffset)
    throw InvalidArgument(who + ": offset.y = " + str(offset.y) +
                          " is beyond the supported range of +-2^62 pixels");
}

/// C_read of `source` for a kernel's channel properties (spec 00 §4.1), for the descriptor methods
/// (encode checks the same before it gets here).
uint64_t channelsRead(const std::string& who, const Image& source, uint64_t offset, uint64_t maxCount) {
  if (offset >= source.featureChannels())
    throw InvalidArgument(who + ": sourceFeatureChannelOffset = " + str(offset) +
                          " >= source featureChannels = " + str(source.featureChannels()));
  if (maxCount == 0) throw InvalidArgument(who + ": sourceFeatureChannelMaxCount = 0");
  return std::min(maxCount, source.featureChannels() - offset);
}

const ImagePtr& firstSource(const std::string& who, const ImageBatch& sources) {
  if (sources.empty() || !sources[0])
    throw InvalidArgument(who + ": destinationImageDescriptor needs a source image");
  return sources[0];
}

ImplementationList<ReshapeProblem>& reshapeImplementations(const Device& device) {
#if defined(MPSNN_HAVE_CUDA)
  if (device.kind() == DeviceKind::CUDA) return cudaReshapeImplementations();
#endif
  (void)device;
  return cpuReshapeImplementations();
}

ImplementationList<PadProblem>& padImplementations(const Device& device) {
#if defined(MPSNN_HAVE_CUDA)
  if (device.kind() == DeviceKind::CUDA) return cudaPadImplementations();
#endif
  (void)device;
  return cpuPadImplementations();
}

/// Enqueues a PadProblem for `kernel`; `keep` holds device memory the work reads.
void encodePad(const CNNKernel& kernel, CommandBuffer& cb, const PadProblem& p, std::shared_ptr<Storage> keep,
               const std::string& extra) {
  auto& list = padImplementations(*kernel.device());
  const auto& impl = chooseImplementation(list, p, kernel.className());
  auto run = impl.run;
  cb.encodeWork(describeWork(kernel.className(), impl.name, p.io, extra),
                [p, keep, run](QueueContext& ctx) { run(p, ctx); });
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// NNReshape

NNReshape::NNReshape(DevicePtr device) : CNNKernel(std::move(device)) {}

uint64_t NNReshape::destinationFeatureChannelsWritten(uint64_t cRead, const Image& destination) const {
  // C' = the destination's channels from destinationFeatureChannelOffset (spec 06 §5 CHOICE); an offset
  // that leaves none is rejected by the caller with cRead output channels.
  return destinationFeatureChannelOffset_ < destination.featureChannels()
             ? destination.featureChannels() - destinationFeatureChannelOffset_
             : cRead;
}

void NNReshape::validateImages(const Image& source, const Image& destination) const {
  CNNKernel::validateImages(source, destination);
  const std::string who = className();
  if (!(offset_ == Offset{}))
    throw InvalidArgument(who + ": offset = (" + str(offset_.x) + ", " + str(offset_.y) + ", " +
                          str(offset_.z) + ") (a reshape covers whole images: offset must be (0, 0, 0))");
  if (!isRectNoClip(clipRect_))
    throw InvalidArgument(who +
                          ": clipRect is set (a reshape covers whole images: clipRect must be RectNoClip)");
  const uint64_t c =
      std::min(sourceFeatureChannelMaxCount_, source.featureChannels() - sourceFeatureChannelOffset_);
  const uint64_t cOut = destination.featureChannels() - destinationFeatureChannelOffset_;
  const unsigned __int128 from = (unsigned __int128)source.width() * source.height() * c;
  const unsigned __int128 to = (unsigned __int128)destination.width() * destination.height() * cOut;
  if (from != to)
    throw InvalidArgument(who + ": destination shape " + str(destination.width()) + "x" +
                          str(destination.height()) + "x" + str(cOut) + " does not hold the " +
                          str(source.width()) + "x" + str(source.height()) + "x" + str(c) +
                          " source values (width * height * featureChannels must be equal)");
}

ImageDescriptor NNReshape::destinationImageDescriptor(const ImageBatch& sourceImages,
                                                      const StateBatch& sourceStates) {
  const Image& src = *firstSource(className(), sourceImages);
  const uint64_t c =
      channelsRead(className(), src, sourceFeatureChannelOffset_, sourceFeatureChannelMaxCount_);
  ImageDescriptor d = destinationImageDescriptor(sourceImages, src.width(), src.height(), c);
  const NNPaddingMethod method = padding_->paddingMethod();
  if (any(method & NNPaddingMethod::Custom))
    d = padding_->destinationImageDescriptor(sourceImages, sourceStates, *this, d);
  return d;
}

ImageDescriptor NNReshape::destinationImageDescriptor(const ImageBatch& sourceImages, uint64_t reshapedWidth,
                                                      uint64_t reshapedHeight,
                                                      uint64_t reshapedFeatureChannels) {
  const std::string who = className();
  const Image& src = *firstSource(who, sourceImages);
  if (reshapedWidth == 0) throw InvalidArgument(who + ": reshapedWidth = 0");
  if (reshapedHeight == 0) throw InvalidArgument(who + ": reshapedHeight = 0");
  if (reshapedFeatureChannels == 0) throw InvalidArgument(who + ": reshapedFeatureChannels = 0");
  const uint64_t c = channelsRead(who, src, sourceFeatureChannelOffset_, sourceFeatureChannelMaxCount_);
  const unsigned __int128 from = (unsigned __int128)src.width() * src.height() * c;
  const unsigned __int128 to = (unsigned __int128)reshapedWidth * reshapedHeight * reshapedFeatureChannels;
  if (from != to)
    throw InvalidArgument(who + ": reshaped shape " + str(reshapedWidth) + "x" + str(reshapedHeight) + "x" +
                          str(reshapedFeatureChannels) + " does not hold the " + str(src.width()) + "x" +
                          str(src.height()) + "x" + str(c) + " source values");
  if (destinationFeatureChannelOffset_ > UINT64_MAX - reshapedFeatureChannels)
    throw InvalidArgument(who + ": destinationFeatureChannelOffset = " +
                          str(destinationFeatureChannelOffset_) + " is too large");
  return ImageDescriptor::make(src.featureChannelFormat(), reshapedWidth, reshapedHeight,
                               destinationFeatureChannelOffset_ + reshapedFeatureChannels, 1);
}

ImagePtr NNReshape::encode(CommandBufferPtr cb, ImagePtr source, uint64_t reshapedWidth,
                           uint64_t reshapedHeight, uint64_t reshapedFeatureChannels) {
  const std::string who = className();
  if (!cb) throw InvalidArgument(who + ": commandBuffer = null");
  if (!source) throw InvalidArgument(who + ": source = null");
  if (source->device() != device_) throw InvalidArgument(who + ": source is on another device");
  ImageDescriptor d =
      destinationImageDescriptor({source}, reshapedWidth, reshapedHeight, reshapedFeatureChannels);
  ImagePtr destination = allocator_->imageForCommandBuffer(cb, d, this);
  CNNKernel::encode(cb, source, destination);
  return destination;
}

ImageBatch NNReshape::encodeBatch(CommandBufferPtr cb, const ImageBatch& sources, uint64_t reshapedWidth,
                                  uint64_t reshapedHeight, uint64_t reshapedFeatureChannels) {
  const std::string who = className();
  if (!cb) throw InvalidArgument(who + ": commandBuffer = null");
  if (sources.empty()) return {};
  for (const auto& s : sources) {
    if (!s) throw InvalidArgument(who + ": batch source = null");
    if (s->device() != device_) throw InvalidArgument(who + ": batch source is on another device");
  }
  ImageDescriptor d =
      destinationImageDescriptor(sources, reshapedWidth, reshapedHeight, reshapedFeatureChannels);
  ImageBatch destinations = allocator_->imageBatchForCommandBuffer(cb, d, this, sources.size());
  CNNKernel::encodeBatch(cb, sources, destinations);
  return destinations;
}

void NNReshape::encodeProblem(CommandBuffer& cb, const UnaryProblem& problem) {
  ReshapeProblem p{problem.src, problem.dst};
  auto& list = reshapeImplementations(*device_);
  const auto& impl = chooseImplementation(list, p, className());
  auto run = impl.run;
  cb.encodeWork(describeWork(className(), impl.name, problem), [p, run](QueueContext& ctx) { run(p, ctx); });
}

// ---------------------------------------------------------------------------------------------
// NNSlice

NNSlice::NNSlice(DevicePtr device) : CNNKernel(std::move(device)) {}

uint64_t NNSlice::destinationFeatureChannelsWritten(uint64_t cRead, const Image& destination) const {
  // Spec 06 §6 CHOICE: as many channels as both the source (from its offset, at most the max count)
  // and the destination (from its offset) have; an offset that leaves none is rejected by the caller.
  return destinationFeatureChannelOffset_ < destination.featureChannels()
             ? std::min(cRead, destination.featureChannels() - destinationFeatureChannelOffset_)
             : cRead;
}

void NNSlice::validateImages(const Image& source, const Image& destination) const {
  CNNKernel::validateImages(source, destination);  // edgeMode Zero or Clamp
  requireOffsetInRange(className(), offset_);
}

ImageDescriptor NNSlice::destinationImageDescriptor(const ImageBatch& sourceImages,
                                                    const StateBatch& sourceStates) {
  const std::string who = className();
  const Image& src = *firstSource(who, sourceImages);
  const uint64_t c = channelsRead(who, src, sourceFeatureChannelOffset_, sourceFeatureChannelMaxCount_);
  requireOffsetInRange(who, offset_);
  // Spec 06 §6 CHOICE: the clip's size when set (per axis; UINT64_MAX means "not set" there), else the
  // source from the offset to its far edge.
  const bool clipSet = !isRectNoClip(clipRect_);
  auto extent = [&](uint64_t clipSize, uint64_t sourceExtent, int64_t offset, const char* axis,
                    const char* offsetName) -> uint64_t {
    if (clipSet && clipSize != UINT64_MAX) {
      if (clipSize == 0) throw InvalidArgument(who + ": clipRect.size." + axis + " = 0");
      return clipSize;
    }
    const __int128 rest = __int128(sourceExtent) - offset;
    if (rest < 1)
      throw InvalidArgument(who + ": " + offsetName + " = " + str(offset) + " leaves no source " +
                            (axis[0] == 'w' ? "column" : "row") + " for the automatic destination (source " +
                            axis + " " + str(sourceExtent) + ")");
    return uint64_t(rest);
  };
  const uint64_t w = extent(clipRect_.size.width, src.width(), offset_.x, "width", "offset.x");
  const uint64_t h = extent(clipRect_.size.height, src.height(), offset_.y, "height", "offset.y");
  if (destinationFeatureChannelOffset_ > UINT64_MAX - c)
    throw InvalidArgument(who + ": destinationFeatureChannelOffset = " +
                          str(destinationFeatureChannelOffset_) + " is too large");
  ImageDescriptor d =
      ImageDescriptor::make(src.featureChannelFormat(), w, h, destinationFeatureChannelOffset_ + c, 1);
  const NNPaddingMethod method = padding_->paddingMethod();
  if (any(method & NNPaddingMethod::Custom))
    d = padding_->destinationImageDescriptor(sourceImages, sourceStates, *this, d);
  return d;
}

void NNSlice::encodeProblem(CommandBuffer& cb, const UnaryProblem& problem) {
  PadProblem p;
  p.io = problem;
  encodePad(*this, cb, p, nullptr, "edge=" + toString(edgeMode_));
}

// ---------------------------------------------------------------------------------------------
// NNPad

namespace {
void requirePadding(const char* property, const ImageCoordinate& v) {
  auto check = [&](uint64_t value, const char* component) {
    if (value > kMaxPadding)
      throw InvalidArgument(std::string("NNPad: ") + property + "." + component + " = " + str(value) +
                            " exceeds the supported maximum " + str(kMaxPadding));
  };
  check(v.x, "x");
  check(v.y, "y");
  check(v.channel, "channel");
}
}  // namespace

NNPad::NNPad(DevicePtr device) : NNPad(std::move(device), {}, {}, nullptr) {}
NNPad::NNPad(DevicePtr device, ImageCoordinate before, ImageCoordinate after)
    : NNPad(std::move(device), before, after, nullptr) {}
NNPad::NNPad(DevicePtr device, ImageCoordinate before, ImageCoordinate after, FillValues fillValueArray)
    : CNNKernel(std::move(device)), fillValueArray_(std::move(fillValueArray)) {
  setPaddingSizeBefore(before);
  setPaddingSizeAfter(after);
  if (fillValueArray_ && !fillValueArray_->empty())
    fillOnDevice_ = uploadToDevice(device_, fillValueArray_->data(), fillValueArray_->size() * sizeof(float));
}

void NNPad::setPaddingSizeBefore(ImageCoordinate v) {
  requirePadding("paddingSizeBefore", v);
  before_ = v;
}
void NNPad::setPaddingSizeAfter(ImageCoordinate v) {
  requirePadding("paddingSizeAfter", v);
  after_ = v;
}

uint64_t NNPad::destinationFeatureChannels(uint64_t cRead) const {
  // The paddings are at most 2^31 − 1 each; saturate so that an absurd cRead still fails the check.
  const uint64_t padding = before_.channel + after_.channel;
  return cRead > UINT64_MAX - padding ? UINT64_MAX : cRead + padding;
}

void NNPad::validateImages(const Image& source, const Image& destination) const {
  (void)destination;
  const std::string who = className();
  if (uint32_t(edgeMode_) > uint32_t(ImageEdgeMode::Constant))
    throw InvalidArgument(who + ": edgeMode = " + toString(edgeMode_) + " is not an edge mode");
  requireOffsetInRange(who, offset_);
  if (fillValueArray_) {
    const uint64_t cRead =
        std::min(sourceFeatureChannelMaxCount_, source.featureChannels() - sourceFeatureChannelOffset_);
    const uint64_t written = destinationFeatureChannels(cRead);
    if (fillValueArray_->size() < written)
      throw InvalidArgument(who + ": fillValueArray holds " + str(uint64_t(fillValueArray_->size())) +
                            " values for " + str(written) + " destination channels");
  }
}

void NNPad::autoGeometry(const Image& source, NNPaddingMethod, uint64_t& width, uint64_t& height,
                         Offset& offset) const {
  // Spec 06 §7: the source plus the padding on each side; the paddings are at most 2^31 − 1 and image
  // extents far below 2^62, so the sums cannot wrap.
  width = source.width() + before_.x + after_.x;
  height = source.height() + before_.y + after_.y;
  offset.x = -int64_t(before_.x);
  offset.y = -int64_t(before_.y);
}

void NNPad::encodeProblem(CommandBuffer& cb, const UnaryProblem& problem) {
  PadProblem p;
  p.io = problem;
  p.channelsBefore = int64_t(before_.channel);
  p.fillValue = fillValue_;
  if (fillOnDevice_) p.fillValues = static_cast<const float*>(fillOnDevice_->data());
  encodePad(*this, cb, p, fillOnDevice_,
            "edge=" + toString(edgeMode_) + ",channelsBefore=" + str(p.channelsBefore));
}

// ---------------------------------------------------------------------------------------------
// NNConcatenation

NNConcatenation::NNConcatenation(DevicePtr device)
    : Kernel(std::move(device)), allocator_(TemporaryImage::defaultAllocator()) {}

void NNConcatenation::setDestinationImageAllocator(ImageAllocatorPtr allocator) {
  if (!allocator) throw InvalidArgument("NNConcatenation: destinationImageAllocator = null");
  allocator_ = std::move(allocator);
}

std::vector<uint64_t> NNConcatenation::featureChannelOffsets(const std::vector<uint64_t>& featureChannels) {
  if (featureChannels.empty()) throw InvalidArgument("NNConcatenation: no inputs (featureChannels is empty)");
  std::vector<uint64_t> offsets;
  uint64_t total = 0;
  for (size_t j = 0; j < featureChannels.size(); ++j) {
    const uint64_t c = featureChannels[j];
    if (c == 0)
      throw InvalidArgument("NNConcatenation: input " + str(uint64_t(j)) + " has featureChannels = 0");
    if (c > UINT64_MAX - 3 || (c + 3) / 4 * 4 > UINT64_MAX - total)
      throw InvalidArgument("NNConcatenation: the featureChannels of the inputs overflow (input " +
                            str(uint64_t(j)) + " has " + str(c) + ")");
    offsets.push_back(total);
    total += (c + 3) / 4 * 4;  // QUIRK (spec 06 §8): each input occupies a multiple of 4 channels
  }
  offsets.push_back(total);
  return offsets;
}

namespace {
/// Checks the inputs (non-null, one device, equal shapes) and returns their channel offsets.
std::vector<uint64_t> checkInputs(const Kernel& kernel, const ImageBatch& inputs) {
  const std::string who = kernel.className();
  if (inputs.empty()) throw InvalidArgument(who + ": inputs is empty (nothing to concatenate)");
  std::vector<uint64_t> channels;
  for (size_t j = 0; j < inputs.size(); ++j) {
    const ImagePtr& image = inputs[j];
    if (!image) throw InvalidArgument(who + ": input " + str(uint64_t(j)) + " = null");
    if (image->device() != kernel.device())
      throw InvalidArgument(who + ": input " + str(uint64_t(j)) + " is on another device");
    const Image& first = *inputs[0];
    if (image->width() != first.width() || image->height() != first.height() ||
        image->numberOfImages() != first.numberOfImages())
      throw InvalidArgument(who + ": input " + str(uint64_t(j)) + " is " + str(image->width()) + "x" +
                            str(image->height()) + " with numberOfImages = " + str(image->numberOfImages()) +
                            ", input 0 is " + str(first.width()) + "x" + str(first.height()) +
                            " with numberOfImages = " + str(first.numberOfImages()) +
                            " (widths, heights and image counts must be equal)");
    channels.push_back(image->featureChannels());
  }
  return NNConcatenation::featureChannelOffsets(channels);
}
}  // namespace

ImageDescriptor NNConcatenation::destinationImageDescriptor(const ImageBatch& inputs) const {
  const std::vector<uint64_t> offsets = checkInputs(*this, inputs);
  const Image& first = *inputs[0];
  return ImageDescriptor::make(first.featureChannelFormat(), first.width(), first.height(), offsets.back(),
                               first.numberOfImages());
}

void NNConcatenation::encode(CommandBufferPtr cb, const ImageBatch& inputs, ImagePtr destination) {
  const std::string who = className();
  if (!cb) throw InvalidArgument(who + ": commandBuffer = null");
  if (cb->device() != device_) throw InvalidArgument(who + ": command buffer is on another device");
  if (cb->isCommitted()) throw InvalidArgument(who + ": command buffer is already committed");
  const std::vector<uint64_t> offsets = checkInputs(*this, inputs);
  if (!destination) throw InvalidArgument(who + ": destination = null");
  if (destination->device() != device_) throw InvalidArgument(who + ": destination is on another device");
  const Image& first = *inputs[0];
  if (destination->width() != first.width() || destination->height() != first.height() ||
      destination->numberOfImages() != first.numberOfImages())
    throw InvalidArgument(who + ": destination is " + str(destination->width()) + "x" +
                          str(destination->height()) + " with numberOfImages = " +
                          str(destination->numberOfImages()) + ", the inputs " + str(first.width()) + "x" +
                          str(first.height()) + " with numberOfImages = " + str(first.numberOfImages()));
  if (destination->featureChannels() < offsets.back())
    throw InvalidArgument(who + ": destination featureChannels = " + str(destination->featureChannels()) +
                          " < " + str(offsets.back()) + " channels of the concatenation");
  // Everything the per-input copies check, checked for all inputs before the first copy is encoded,
  // so that a rejection writes nothing.
  auto usable = [&](const ImagePtr& image, const char* role) {
    ImageAccess::checkUsable(*image, (who + " " + role).c_str());
    if (bytesPerChannel(image->featureChannelFormat()) == 0)
      throw InvalidArgument(who + ": " + role +
                            " featureChannelFormat = " + toString(image->featureChannelFormat()));
    if (image->isTemporary() && static_cast<const TemporaryImage&>(*image).commandBuffer().get() != cb.get())
      throw InvalidArgument(who + ": temporary " + role + " belongs to another command buffer");
  };
  usable(destination, "destination");
  std::map<const Image*, uint64_t> reads;
  for (const ImagePtr& input : inputs) {
    usable(input, "input");
    if (ImageAccess::storageIdentity(*input) == ImageAccess::storageIdentity(*destination))
      throw InvalidArgument(who + ": destination aliases an input (same storage)");
    if (input->isTemporary()) {
      const uint64_t n = ++reads[input.get()];
      const uint64_t available = static_cast<const TemporaryImage&>(*input).readCount();
      if (n > available)
        throw InvalidArgument(who + ": temporary input is read " + str(n) + " times but its readCount is " +
                              str(available));
    }
  }
  // Each input with its zero channels up to the next multiple of 4 (NNPad, channel padding after).
  for (size_t j = 0; j < inputs.size(); ++j) {
    const uint64_t c = inputs[j]->featureChannels();
    NNPad copy(device_, {0, 0, 0}, {0, 0, offsets[j + 1] - offsets[j] - c});
    copy.setDestinationFeatureChannelOffset(offsets[j]);
    copy.encode(cb, inputs[j], destination);
  }
}

ImagePtr NNConcatenation::encode(CommandBufferPtr cb, const ImageBatch& inputs) {
  if (!cb) throw InvalidArgument(std::string(className()) + ": commandBuffer = null");
  ImageDescriptor d = destinationImageDescriptor(inputs);
  ImagePtr destination = allocator_->imageForCommandBuffer(cb, d, this);
  encode(cb, inputs, destination);
  return destination;
}

}  // namespace mpsnn
