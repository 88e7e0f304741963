// mpsnn — enumerations and plain structs shared by every family (spec 00 §1).
#pragma once
#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <vector>

namespace mpsnn {

/// Storage format of one feature channel (MPSImageFeatureChannelFormat, plus bfloat16).
enum class ImageFeatureChannelFormat : uint32_t {
  None = 0,
  Unorm8 = 1,
  Unorm16 = 2,
  Float16 = 3,
  Float32 = 4,
  Reserved0 = 5,
  Count = 6,
  BFloat16 = 0x100,  ///< library extension, outside MPS's range
};

/// Element types of weights, vectors and data sources (MPSDataType).
enum class DataType : uint32_t {
  Invalid = 0,
  Float32 = 0x10000020,
  Float16 = 0x10000010,
  Int8 = 0x20000008,
  Int16 = 0x20000010,
  Int32 = 0x20000020,
  Int64 = 0x20000040,
  UInt8 = 8,
  UInt16 = 16,
  UInt32 = 32,
  UInt64 = 64,
  Bool = 0x80000008,
  Unorm1 = 0x40000001,
  Unorm8 = 0x40000008,
  BFloat16 = 0x90000010,
};

/// Host buffer order for readBytes/writeBytes.
enum class DataLayout : uint32_t { HeightxWidthxFeatureChannels = 0, FeatureChannelsxHeightxWidth = 1 };

/// What a kernel reads outside the source image (spec 00 §1.5).
enum class ImageEdgeMode : uint32_t { Zero = 0, Clamp = 1, Mirror = 2, MirrorWithEdge = 3, Constant = 4 };

/// Kernel option bits (MPSKernelOptions).
enum class KernelOptions : uint32_t {
  None = 0,
  SkipAPIValidation = 1,
  AllowReducedPrecision = 2,
  DisableInternalTiling = 4,
  InsertDebugGroups = 8,
  Verbose = 16,
};
inline KernelOptions operator|(KernelOptions a, KernelOptions b) {
  return KernelOptions(uint32_t(a) | uint32_t(b));
}
inline bool hasOption(KernelOptions set, KernelOptions bit) { return (uint32_t(set) & uint32_t(bit)) != 0; }

/// Signed pixel offset; in CNN kernels x,y are source coordinates and z the first source image.
struct Offset {
  int64_t x = 0, y = 0, z = 0;
  bool operator==(const Offset&) const = default;
};
/// Floating-point point (MTLOrigin with doubles).
struct Origin {
  double x = 0, y = 0, z = 0;
};
/// Floating-point extent (width, height, depth).
struct Size {
  double width = 0, height = 0, depth = 0;
};
/// Floating-point region (normalized coordinates for crop-and-resize).
struct Region {
  Origin origin;
  Size size;
};
/// Integer size / per-axis strides (MTLSize).
struct IntSize {
  uint64_t width = 0, height = 0, depth = 0;
  bool operator==(const IntSize&) const = default;
};
/// Integer point (MTLOrigin).
struct IntOrigin {
  uint64_t x = 0, y = 0, z = 0;
  bool operator==(const IntOrigin&) const = default;
};
/// Integer region (MTLRegion): clip rectangles and readBytes regions.
struct IntRegion {
  IntOrigin origin;
  IntSize size;
  bool operator==(const IntRegion&) const = default;
};
/// Sentinel clip rectangle meaning "the whole destination".
inline constexpr IntRegion RectNoClip{{0, 0, 0},
                                      {std::numeric_limits<uint64_t>::max(), std::numeric_limits<uint64_t>::max(),
                                       std::numeric_limits<uint64_t>::max()}};
inline bool isRectNoClip(const IntRegion& r) {
  constexpr uint64_t m = std::numeric_limits<uint64_t>::max();
  return r.size.width == m && r.size.height == m && r.size.depth == m;
}
/// A pixel position and channel in an image.
struct ImageCoordinate {
  uint64_t x = 0, y = 0, channel = 0;
};
/// A region of an image: offset and size in pixels and channels.
struct ImageRegion {
  ImageCoordinate offset, size;
};
/// Affine map dst = src * scale + translate (spec 05).
struct ScaleTransform {
  double scaleX = 1, scaleY = 1, translateX = 0, translateY = 0;
};
/// A start index and a length along one dimension.
struct DimensionSlice {
  uint64_t start = 0, length = 0;
};
/// Half-open index range [location, location + length) (NSRange).
struct Range {
  uint64_t location = 0, length = 0;
};
/// Channel selection of a partial readBytes/writeBytes.
struct ImageReadWriteParams {
  uint64_t featureChannelOffset = 0;
  uint64_t numberOfFeatureChannelsToReadWrite = 0;
};

/// Bytes of one channel value in the given format; 0 for None/Reserved/Count.
size_t bytesPerChannel(ImageFeatureChannelFormat format);
/// Human-readable name ("Float32"), used in error messages.
std::string toString(ImageFeatureChannelFormat format);
std::string toString(ImageEdgeMode mode);
std::string toString(DataType type);

class Device;
class CommandQueue;
class CommandBuffer;
class Image;
class TemporaryImage;
class State;
using DevicePtr = std::shared_ptr<Device>;
using CommandQueuePtr = std::shared_ptr<CommandQueue>;
using CommandBufferPtr = std::shared_ptr<CommandBuffer>;
using ImagePtr = std::shared_ptr<Image>;
using TemporaryImagePtr = std::shared_ptr<TemporaryImage>;
using StatePtr = std::shared_ptr<State>;
/// A batch of single images (MPSImageBatch).
using ImageBatch = std::vector<ImagePtr>;
using StateBatch = std::vector<StatePtr>;

}  // namespace mpsnn
