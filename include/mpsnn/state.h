// mpsnn — State (MPSState) and the gradient states forward kernels hand to gradient kernels
// (spec 10 §10.1).
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "mpsnn/buffer.h"
#include "mpsnn/types.h"

namespace mpsnn {

class Kernel;
class ImageDescriptor;

/// Kind of one resource of a State.
enum class StateResourceType : uint32_t { None = 0, Buffer = 1, Texture = 2 };

/// Shape of a texture resource. The library has no textures: a texture resource is a Buffer of
/// width·height·depth·arrayLength·featureChannels elements of `format`, HWC order.
struct TextureDescriptor {
  uint64_t width = 0, height = 0, depth = 1, arrayLength = 1, featureChannels = 4;
  ImageFeatureChannelFormat format = ImageFeatureChannelFormat::Float32;
  bool operator==(const TextureDescriptor&) const = default;
  uint64_t bytes() const;
};

/// Ordered list of resources to allocate (MPSStateResourceList): textures first, then buffers.
class StateResourceList {
 public:
  void appendTexture(const TextureDescriptor& descriptor) { textures_.push_back(descriptor); }
  void appendBuffer(uint64_t size) { buffers_.push_back(size); }
  const std::vector<TextureDescriptor>& textures() const { return textures_; }
  const std::vector<uint64_t>& buffers() const { return buffers_; }

 private:
  std::vector<TextureDescriptor> textures_;
  std::vector<uint64_t> buffers_;
};

/// A state's resource: a Buffer (texture resources are Buffers too, see TextureDescriptor).
using ResourcePtr = BufferPtr;

/// Data one kernel produces and another consumes (pooling indices, weights, statistics, masks),
/// held by StatePtr. A temporary state belongs to one command buffer and has a readCount (1 when
/// made): every encode that reads it decrements it, and at 0 its resources are released; reading or
/// writing it after that is an InvalidArgument. Persistent states ignore read counts (spec 10.1.1).
class State : public std::enable_shared_from_this<State> {
 public:
  virtual ~State();
  /// A persistent state with one zero-filled buffer of `bufferSize` bytes (allocated lazily).
  static StatePtr make(DevicePtr device, uint64_t bufferSize);
  static StatePtr make(DevicePtr device, const TextureDescriptor& descriptor);
  static StatePtr make(DevicePtr device, const StateResourceList& resources);
  /// A persistent state holding the given resources (null entries allowed).
  static StatePtr make(std::vector<ResourcePtr> resources);
  /// Temporary states on `commandBuffer` (readCount 1). Without resources it is not temporary.
  static StatePtr temporary(CommandBufferPtr commandBuffer);
  static StatePtr temporary(CommandBufferPtr commandBuffer, uint64_t bufferSize);
  static StatePtr temporary(CommandBufferPtr commandBuffer, const TextureDescriptor& descriptor);
  static StatePtr temporary(CommandBufferPtr commandBuffer, const StateResourceList& resources);

  std::string label() const { return label_; }
  void setLabel(std::string label) { label_ = std::move(label); }
  /// 1 for a new temporary state, 0 for persistent ones.
  uint64_t readCount() const { return readCount_; }
  /// Temporary states only (persistent ones ignore it). Setting 0 releases the resources now; setting
  /// it after it reached 0 is an InvalidArgument.
  void setReadCount(uint64_t count);
  bool isTemporary() const { return temporary_; }
  uint64_t resourceCount() const { return uint64_t(kinds_.size()); }
  /// Resource `index`; null if not allocated yet and `allocateMemory` is false. Index out of range or
  /// a released temporary state: InvalidArgument.
  ResourcePtr resourceAt(uint64_t index, bool allocateMemory);
  /// Never allocates: 0 when resource `index` is not a buffer.
  uint64_t bufferSizeAt(uint64_t index) const;
  /// Never allocates: zeros when resource `index` is not a texture.
  TextureDescriptor textureInfoAt(uint64_t index) const;
  StateResourceType resourceTypeAt(uint64_t index) const;
  /// Makes device results visible to the host. Buffer::readBytes already copies synchronously from
  /// completed work, so this only validates its arguments.
  virtual void synchronizeOnCommandBuffer(CommandBufferPtr commandBuffer);
  /// Bytes of backing store (0 if unknown).
  virtual uint64_t resourceSize() const;
  /// Padding hook (spec 13.6): default returns `suggested` unchanged.
  virtual ImageDescriptor destinationImageDescriptor(const ImageBatch& sourceImages, const StateBatch& sourceStates,
                                                     const Kernel& kernel, const ImageDescriptor& suggested) const;

  /// Library internal: throws InvalidArgument (naming `who`) unless the state may be used on `cb`
  /// (temporary: same command buffer and readCount > 0).
  void checkUsable(const CommandBuffer& cb, const std::string& who) const;
  /// Library internal: one read by an encode on `cb` (temporary states: readCount − 1, release at 0).
  void consumeRead(const CommandBuffer& cb);
  /// The command buffer of a temporary state (null for persistent ones).
  CommandBufferPtr commandBuffer() const { return commandBuffer_.lock(); }

 protected:
  State() = default;
  /// Base-class initialisation for subclasses: a temporary state on `cb` when it is not null.
  void initialize(DevicePtr device, const CommandBufferPtr& cb);
  /// Adds a buffer resource (allocated on first use unless `buffer` is given).
  void addBuffer(uint64_t size, ResourcePtr buffer = nullptr);
  void addTexture(const TextureDescriptor& descriptor, ResourcePtr buffer = nullptr);
  /// Called when a temporary state's readCount reaches 0: drop the resources.
  virtual void releaseResources();
  DevicePtr device_;

 private:
  std::string label_;
  uint64_t readCount_ = 0;
  bool temporary_ = false;
  bool released_ = false;
  std::weak_ptr<CommandBuffer> commandBuffer_;
  std::vector<StateResourceType> kinds_;
  std::vector<uint64_t> sizes_;
  std::vector<TextureDescriptor> textures_;
  std::vector<ResourcePtr> resources_;
};

/// Adds `amount` to the readCount of each distinct temporary state of `batch` (persistent ones are
/// left alone); returns the number of distinct states. Null batch pointer → 0.
uint64_t stateBatchIncrementReadCount(StateBatch* batch, int64_t amount);
/// Synchronizes each distinct state once.
void stateBatchSynchronize(StateBatch& batch, CommandBufferPtr commandBuffer);
/// Sum of resourceSize() over distinct states.
uint64_t stateBatchResourceSize(const StateBatch* batch);

/// One source of a recorded forward encode.
struct ForwardSourceRecord {
  uint64_t width = 0, height = 0, featureChannels = 0, numberOfImages = 0;
  ImageFeatureChannelFormat format = ImageFeatureChannelFormat::None;
  uint64_t featureChannelOffset = 0;  ///< first channel read
  uint64_t featureChannelsRead = 0;
  Offset offset{};                    ///< where the encode read (x, y of the clip origin; z first image)
  ImageEdgeMode edgeMode = ImageEdgeMode::Zero;
  uint64_t strideX = 1, strideY = 1;  ///< binary kernels: broadcast strides; unary: kernel strides
  uint64_t kernelWidth = 1, kernelHeight = 1, dilationX = 1, dilationY = 1;
};

/// What a forward encode recorded for its gradient (spec 10.1.2): the producing kernel, its
/// geometry, the source(s) and the region it wrote.
struct ForwardRecord {
  bool recorded = false;
  const Kernel* kernel = nullptr;  ///< identity only; the state does not keep the kernel alive
  std::string kernelClass;
  ForwardSourceRecord primary, secondary;  ///< secondary: binary kernels only
  uint64_t destinationWidth = 0, destinationHeight = 0, destinationFeatureChannels = 0,
           destinationNumberOfImages = 0;
  uint64_t destinationFeatureChannelOffset = 0, destinationFeatureChannelsWritten = 0;
  /// The region written: origin x, y in the destination, size = width × height of the gradient.
  uint64_t writtenX = 0, writtenY = 0, writtenWidth = 0, writtenHeight = 0;
  uint64_t imagesPerEncode = 0;  ///< images one encode processed (batch position count per call)
};

/// State made by a unary forward kernel for its gradient kernel (MPSNNGradientState). Opaque in
/// MPS; here the recorded forward parameters are readable through forwardRecord().
class NNGradientState : public State {
 public:
  /// A gradient state for `kernel` (persistent when `commandBuffer` is null, else temporary).
  static std::shared_ptr<NNGradientState> make(DevicePtr device, CommandBufferPtr commandBuffer = nullptr);
  const ForwardRecord& forwardRecord() const { return record_; }
  /// Library internal: written by the forward encode.
  ForwardRecord& mutableForwardRecord() { return record_; }

 protected:
  NNGradientState() = default;

 private:
  ForwardRecord record_;
};
using NNGradientStatePtr = std::shared_ptr<NNGradientState>;
using NNGradientStateBatch = std::vector<NNGradientStatePtr>;

/// State made by a binary forward kernel (MPSNNBinaryGradientState).
class NNBinaryGradientState : public NNGradientState {
 public:
  static std::shared_ptr<NNBinaryGradientState> make(DevicePtr device, CommandBufferPtr commandBuffer = nullptr);

 protected:
  NNBinaryGradientState() = default;
};
using NNBinaryGradientStatePtr = std::shared_ptr<NNBinaryGradientState>;
using NNBinaryGradientStateBatch = std::vector<NNBinaryGradientStatePtr>;

/// State made by a kernel with several inputs (MPSNNMultiaryGradientState), e.g. concatenation.
class NNMultiaryGradientState : public NNGradientState {
 public:
  static std::shared_ptr<NNMultiaryGradientState> make(DevicePtr device, CommandBufferPtr commandBuffer = nullptr);
  /// Recorded sources, in input order.
  std::vector<ForwardSourceRecord>& sources() { return sources_; }
  const std::vector<ForwardSourceRecord>& sources() const { return sources_; }

 protected:
  NNMultiaryGradientState() = default;

 private:
  std::vector<ForwardSourceRecord> sources_;
};
using NNMultiaryGradientStatePtr = std::shared_ptr<NNMultiaryGradientState>;
using NNMultiaryGradientStateBatch = std::vector<NNMultiaryGradientStatePtr>;

/// Interface of states that remember the source size of the forward encode that made them
/// (MPSImageSizeEncodingState), so a reverse filter can restore the exact size.
class ImageSizeEncodingState {
 public:
  virtual ~ImageSizeEncodingState() = default;
  virtual uint64_t sourceWidth() const = 0;
  virtual uint64_t sourceHeight() const = 0;
};

}  // namespace mpsnn
