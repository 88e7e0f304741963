// State and the gradient-state base classes (include/mpsnn/state.h, spec 10 §10.1).
#include "mpsnn/state.h"

#include <cstdio>
#include <set>

#include "mpsnn/error.h"
#include "mpsnn/image.h"
#include "mpsnn/runtime.h"

namespace mpsnn {

namespace {
[[noreturn]] void reject(const std::string& what) { throw InvalidArgument("State: " + what); }

CommandBufferPtr requireOpen(const CommandBufferPtr& cb) {
  if (!cb) reject("commandBuffer = null");
  if (cb->isCommitted()) reject("commandBuffer is already committed");
  return cb;
}

/// A State with no subclass payload (the generic factories).
class PlainState final : public State {
 public:
  PlainState(DevicePtr device, const CommandBufferPtr& cb) { initialize(std::move(device), cb); }
  using State::addBuffer;
  using State::addTexture;
};

std::shared_ptr<PlainState> withResources(DevicePtr device, const CommandBufferPtr& cb, const StateResourceList& list) {
  if (!device) reject("device = null");
  auto state = std::make_shared<PlainState>(device, list.textures().empty() && list.buffers().empty() ? nullptr : cb);
  for (const auto& t : list.textures()) state->addTexture(t);
  for (uint64_t size : list.buffers()) state->addBuffer(size);
  return state;
}
}  // namespace

uint64_t TextureDescriptor::bytes() const {
  return width * height * depth * arrayLength * featureChannels * bytesPerChannel(format);
}

State::~State() {
  // CHOICE (spec 10.1.1 rule 6): a temporary state destroyed with reads outstanding is released
  // silently; debug builds say so.
#ifndef NDEBUG
  if (temporary_ && readCount_ > 0 && !released_ && std::getenv("MPSNN_VERBOSE"))
    std::fprintf(stderr, "mpsnn: temporary State '%s' destroyed with readCount %llu\n", label_.c_str(),
                 static_cast<unsigned long long>(readCount_));
#endif
}

void State::initialize(DevicePtr device, const CommandBufferPtr& cb) {
  device_ = std::move(device);
  if (cb) {
    requireOpen(cb);
    if (device_ && cb->device() != device_) reject("commandBuffer is on another device");
    if (!device_) device_ = cb->device();
    temporary_ = true;
    readCount_ = 1;
    commandBuffer_ = cb;
  }
}

void State::addBuffer(uint64_t size, ResourcePtr buffer) {
  if (size == 0 && !buffer) reject("buffer resource of size 0");
  kinds_.push_back(StateResourceType::Buffer);
  sizes_.push_back(buffer ? buffer->length() : size);
  textures_.push_back({0, 0, 0, 0, 0, ImageFeatureChannelFormat::None});
  resources_.push_back(std::move(buffer));
}

void State::addTexture(const TextureDescriptor& d, ResourcePtr buffer) {
  if (d.bytes() == 0) reject("texture resource of size 0 (width, height, depth, arrayLength, featureChannels, format)");
  kinds_.push_back(StateResourceType::Texture);
  sizes_.push_back(d.bytes());
  textures_.push_back(d);
  resources_.push_back(std::move(buffer));
}

StatePtr State::make(DevicePtr device, uint64_t bufferSize) {
  StateResourceList list;
  list.appendBuffer(bufferSize);
  return make(std::move(device), list);
}

StatePtr State::make(DevicePtr device, const TextureDescriptor& descriptor) {
  StateResourceList list;
  list.appendTexture(descriptor);
  return make(std::move(device), list);
}

StatePtr State::make(DevicePtr device, const StateResourceList& resources) {
  return withResources(std::move(device), nullptr, resources);
}

StatePtr State::make(std::vector<ResourcePtr> resources) {
  DevicePtr device;
  for (const auto& r : resources)
    if (r) {
      if (device && r->device() != device) reject("resources on different devices");
      device = r->device();
    }
  auto state = std::make_shared<PlainState>(device, nullptr);
  for (auto& r : resources) {
    if (r)
      state->addBuffer(r->length(), r);
    else {
      // An empty slot: reported as a resource of type None.
      state->kinds_.push_back(StateResourceType::None);
      state->sizes_.push_back(0);
      state->textures_.push_back({0, 0, 0, 0, 0, ImageFeatureChannelFormat::None});
      state->resources_.push_back(nullptr);
    }
  }
  return state;
}

StatePtr State::temporary(CommandBufferPtr commandBuffer) {
  requireOpen(commandBuffer);
  return std::make_shared<PlainState>(commandBuffer->device(), nullptr);  // no resources: never temporary
}

StatePtr State::temporary(CommandBufferPtr commandBuffer, uint64_t bufferSize) {
  StateResourceList list;
  list.appendBuffer(bufferSize);
  return temporary(std::move(commandBuffer), list);
}

StatePtr State::temporary(CommandBufferPtr commandBuffer, const TextureDescriptor& descriptor) {
  StateResourceList list;
  list.appendTexture(descriptor);
  return temporary(std::move(commandBuffer), list);
}

StatePtr State::temporary(CommandBufferPtr commandBuffer, const StateResourceList& resources) {
  requireOpen(commandBuffer);
  return withResources(commandBuffer->device(), commandBuffer, resources);
}

void State::setReadCount(uint64_t count) {
  if (!temporary_) return;  // persistent states ignore read counts
  if (released_ || readCount_ == 0) reject("readCount set on a temporary state whose readCount already reached 0");
  readCount_ = count;
  if (count == 0) {
    released_ = true;
    releaseResources();
  }
}

ResourcePtr State::resourceAt(uint64_t index, bool allocateMemory) {
  if (index >= kinds_.size())
    reject("resourceAt(" + std::to_string(index) + ") with resourceCount " + std::to_string(kinds_.size()));
  if (released_) reject("resourceAt on a temporary state whose readCount reached 0 (state already released)");
  if (!resources_[index] && allocateMemory && kinds_[index] != StateResourceType::None) {
    if (!device_) reject("resourceAt: the state has no device to allocate on");
    resources_[index] = Buffer::make(device_, sizes_[index]);
  }
  return resources_[index];
}

uint64_t State::bufferSizeAt(uint64_t index) const {
  if (index >= kinds_.size()) return 0;
  return kinds_[index] == StateResourceType::Buffer ? sizes_[index] : 0;
}

TextureDescriptor State::textureInfoAt(uint64_t index) const {
  if (index >= kinds_.size() || kinds_[index] != StateResourceType::Texture)
    return {0, 0, 0, 0, 0, ImageFeatureChannelFormat::None};
  return textures_[index];
}

StateResourceType State::resourceTypeAt(uint64_t index) const {
  return index < kinds_.size() ? kinds_[index] : StateResourceType::None;
}

void State::synchronizeOnCommandBuffer(CommandBufferPtr commandBuffer) {
  if (!commandBuffer) reject("synchronizeOnCommandBuffer: commandBuffer = null");
}

uint64_t State::resourceSize() const {
  uint64_t total = 0;
  for (size_t i = 0; i < kinds_.size(); ++i) total += sizes_[i];
  return total;
}

ImageDescriptor State::destinationImageDescriptor(const ImageBatch&, const StateBatch&, const Kernel&,
                                                  const ImageDescriptor& suggested) const {
  return suggested;
}

void State::checkUsable(const CommandBuffer& cb, const std::string& who) const {
  if (!temporary_) return;
  if (released_ || readCount_ == 0)
    throw InvalidArgument(who + ": temporary state" + (label_.empty() ? std::string() : " '" + label_ + "'") +
                          " has readCount 0 (state already released)");
  if (commandBuffer_.lock().get() != &cb)
    throw InvalidArgument(who + ": temporary state belongs to another command buffer");
}

void State::consumeRead(const CommandBuffer& cb) {
  if (!temporary_) return;
  checkUsable(cb, "State");
  if (--readCount_ == 0) {
    released_ = true;
    releaseResources();
  }
}

void State::releaseResources() {
  for (auto& r : resources_) r.reset();
}

uint64_t stateBatchIncrementReadCount(StateBatch* batch, int64_t amount) {
  if (!batch) return 0;
  std::set<State*> seen;
  for (const auto& s : *batch) {
    if (!s || !seen.insert(s.get()).second) continue;
    if (s->isTemporary()) {
      int64_t next = int64_t(s->readCount()) + amount;
      s->setReadCount(uint64_t(next < 0 ? 0 : next));
    }
  }
  return seen.size();
}

void stateBatchSynchronize(StateBatch& batch, CommandBufferPtr commandBuffer) {
  std::set<State*> seen;
  for (const auto& s : batch)
    if (s && seen.insert(s.get()).second) s->synchronizeOnCommandBuffer(commandBuffer);
}

uint64_t stateBatchResourceSize(const StateBatch* batch) {
  if (!batch) return 0;
  std::set<const State*> seen;
  uint64_t total = 0;
  for (const auto& s : *batch)
    if (s && seen.insert(s.get()).second) total += s->resourceSize();
  return total;
}

namespace {
template <class T>
std::shared_ptr<T> makeGradientState(DevicePtr device, const CommandBufferPtr& cb) {
  if (!device && cb) device = cb->device();
  if (!device) throw InvalidArgument(std::string("NNGradientState: device = null"));
  struct Made final : T {
    Made(DevicePtr d, const CommandBufferPtr& c) { this->initialize(std::move(d), c); }
  };
  return std::make_shared<Made>(std::move(device), cb);
}
}  // namespace

std::shared_ptr<NNGradientState> NNGradientState::make(DevicePtr device, CommandBufferPtr commandBuffer) {
  return makeGradientState<NNGradientState>(std::move(device), commandBuffer);
}

std::shared_ptr<NNBinaryGradientState> NNBinaryGradientState::make(DevicePtr device, CommandBufferPtr commandBuffer) {
  return makeGradientState<NNBinaryGradientState>(std::move(device), commandBuffer);
}

std::shared_ptr<NNMultiaryGradientState> NNMultiaryGradientState::make(DevicePtr device,
                                                                       CommandBufferPtr commandBuffer) {
  return makeGradientState<NNMultiaryGradientState>(std::move(device), commandBuffer);
}

}  // namespace mpsnn
