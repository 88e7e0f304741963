// mpsnn — resampling kernels (spec 05): integer-factor upsampling (nearest, bilinear) and image
// scaling (bilinear, Lanczos) with an optional ScaleTransform, plus the ImageTransformProvider
// interface the graph's scale nodes take.
#pragma once
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "mpsnn/kernel.h"

namespace mpsnn {

struct Handle;  // identity object of the graph (spec 13.2), declared with NNGraph

/// Base of the integer-factor upsampling kernels (MPSCNNUpsampling). Each feature channel is
/// resampled separately; the destination receives C_read channels. Destination pixel (x, y) of the
/// clip rectangle samples source index-space position offset + f(x, y), f given by the subclass
/// (spec 05 §1). Auto mode makes a destination of W_in·scaleFactorX × H_in·scaleFactorY pixels,
/// whatever the padding policy's size option, and sets offset = (0, 0). Abstract: use
/// CNNUpsamplingNearest or CNNUpsamplingBilinear. Scale factors are fixed at construction.
class CNNUpsampling : public CNNKernel {
 public:
  CNNUpsampling(DevicePtr device) = delete;  // MPS marks -initWithDevice: unavailable

  /// The integer horizontal factor (1 or more), as a double like MPS's property.
  double scaleFactorX() const { return double(scaleFactorX_); }
  /// The integer vertical factor (1 or more).
  double scaleFactorY() const { return double(scaleFactorY_); }
  /// Whether the centres of the corner pixels of source and destination coincide (bilinear only;
  /// always false for nearest).
  bool alignCorners() const { return alignCorners_; }

 protected:
  enum class Filter : uint32_t { Nearest, Bilinear };
  /// `who` names the concrete class in error messages (virtual calls do not reach it yet here).
  CNNUpsampling(DevicePtr device, const char* who, Filter filter, uint64_t integerScaleFactorX,
                uint64_t integerScaleFactorY, bool alignCorners);
  void validateImages(const Image& source, const Image& destination) const override;
  void autoGeometry(const Image& source, NNPaddingMethod method, uint64_t& width, uint64_t& height,
                    Offset& offset) const override;
  void encodeProblem(CommandBuffer& commandBuffer, const detail::UnaryProblem& problem) override;

  Filter filter_;
  uint64_t scaleFactorX_ = 1, scaleFactorY_ = 1;
  bool alignCorners_ = false;
};

/// Nearest-neighbour upsampling (MPSCNNUpsamplingNearest): every source pixel becomes a
/// scaleFactorX × scaleFactorY block, dst(x, y) = src(offset.x + floor(x / sX), offset.y + floor(y / sY)).
/// Equals PyTorch interpolate(mode='nearest') for integer factors. A read outside the source (only
/// possible with an offset or a destination larger than the upsampled source) follows edgeMode:
/// Zero reads 0, Clamp the nearest edge pixel.
class CNNUpsamplingNearest : public CNNUpsampling {
 public:
  CNNUpsamplingNearest(DevicePtr device, uint64_t integerScaleFactorX, uint64_t integerScaleFactorY);
  CNNUpsamplingNearest(DevicePtr device) = delete;
  static std::shared_ptr<CNNUpsamplingNearest> make(DevicePtr device, uint64_t integerScaleFactorX,
                                                    uint64_t integerScaleFactorY) {
    return std::make_shared<CNNUpsamplingNearest>(std::move(device), integerScaleFactorX,
                                                  integerScaleFactorY);
  }
  const char* className() const override { return "CNNUpsamplingNearest"; }
};

/// Bilinear upsampling (MPSCNNUpsamplingBilinear) with PyTorch's two conventions (spec 05 §1.2):
/// alignCorners false: fx = (x + 0.5) / sX − 0.5; true: fx = x·(W_in − 1) / (W_in·sX − 1) (0 when
/// W_in·sX = 1); likewise fy. The value is the bilinear sample at offset + (fx, fy), positions
/// clamped to the image (edgeMode does not change it).
class CNNUpsamplingBilinear : public CNNUpsampling {
 public:
  /// alignCorners = false.
  CNNUpsamplingBilinear(DevicePtr device, uint64_t integerScaleFactorX, uint64_t integerScaleFactorY);
  CNNUpsamplingBilinear(DevicePtr device, uint64_t integerScaleFactorX, uint64_t integerScaleFactorY,
                        bool alignCorners);
  CNNUpsamplingBilinear(DevicePtr device) = delete;
  static std::shared_ptr<CNNUpsamplingBilinear> make(DevicePtr device, uint64_t integerScaleFactorX,
                                                     uint64_t integerScaleFactorY) {
    return std::make_shared<CNNUpsamplingBilinear>(std::move(device), integerScaleFactorX,
                                                   integerScaleFactorY);
  }
  static std::shared_ptr<CNNUpsamplingBilinear> make(DevicePtr device, uint64_t integerScaleFactorX,
                                                     uint64_t integerScaleFactorY, bool alignCorners) {
    return std::make_shared<CNNUpsamplingBilinear>(std::move(device), integerScaleFactorX,
                                                   integerScaleFactorY, alignCorners);
  }
  const char* className() const override { return "CNNUpsamplingBilinear"; }
};

/// Base of the image scalers (MPSImageScale), applied per channel to any channel count. Without a
/// scaleTransform the source is stretched over the destination image (scale W_dst / W_src,
/// H_dst / H_src, no translation); with one, destination edge position = source edge position ·
/// scale + translate, relative to the clip rectangle's origin. Destination pixel (X, Y) samples
/// source index-space u = offset.x + ((X − clipRect.origin.x) + 0.5 − translateX) / scaleX − 0.5
/// (v likewise); reads beyond the image clamp to its edge (edgeMode does not change it). Auto mode
/// makes a destination of the source's size. Abstract: use ImageBilinearScale or ImageLanczosScale.
class ImageScale : public CNNKernel {
 public:
  /// The transform, or none (default) to stretch the source over the destination.
  std::optional<ScaleTransform> scaleTransform() const { return scaleTransform_; }
  /// Copies `transform` (std::nullopt clears it). Throws InvalidArgument for a scale that is not
  /// positive and finite, a translation that is not finite, or (ImageLanczosScale) a scale whose
  /// kernel would be wider than the supported limit.
  void setScaleTransform(std::optional<ScaleTransform> transform);
  /// MPS's pointer form: copies *transform; nullptr clears it.
  void setScaleTransform(const ScaleTransform* transform) {
    setScaleTransform(transform ? std::optional<ScaleTransform>(*transform) : std::nullopt);
  }

 protected:
  enum class Filter : uint32_t { Bilinear, Lanczos };
  ImageScale(DevicePtr device, Filter filter);
  void validateImages(const Image& source, const Image& destination) const override;
  void autoGeometry(const Image& source, NNPaddingMethod method, uint64_t& width, uint64_t& height,
                    Offset& offset) const override;
  void encodeProblem(CommandBuffer& commandBuffer, const detail::UnaryProblem& problem) override;
  /// Throws unless `scale` (source → destination, one axis) is one this filter can use.
  void checkScale(double scale, const std::string& property) const;

  Filter filter_;
  std::optional<ScaleTransform> scaleTransform_;
};

/// Bilinear image scaling (MPSImageBilinearScale): dst = the bilinear sample at (u, v), edges
/// clamped. No prefilter, so downscaling by more than 2× aliases.
class ImageBilinearScale : public ImageScale {
 public:
  explicit ImageBilinearScale(DevicePtr device);
  static std::shared_ptr<ImageBilinearScale> make(DevicePtr device) {
    return std::make_shared<ImageBilinearScale>(std::move(device));
  }
  const char* className() const override { return "ImageBilinearScale"; }
};

/// Lanczos image scaling (MPSImageLanczosScale), a = 3, separable (spec 05 §4.2): per axis the
/// weights L((i − u)·f) over source pixels i ∈ [ceil(u − 3/f), floor(u + 3/f)] normalised to sum 1,
/// f = min(1, scale), so downscaling widens the kernel instead of needing a prefilter; taps outside
/// the image read its edge pixel. Negative lobes may ring past the input range; results are not
/// clamped. CHOICE: a kernel reaching more than 65536 source pixels from its centre (scale below
/// 3/65536) is rejected.
class ImageLanczosScale : public ImageScale {
 public:
  explicit ImageLanczosScale(DevicePtr device);
  static std::shared_ptr<ImageLanczosScale> make(DevicePtr device) {
    return std::make_shared<ImageLanczosScale>(std::move(device));
  }
  const char* className() const override { return "ImageLanczosScale"; }
};

/// Supplies the ScaleTransform for a source image (MPSImageTransformProvider): NNScaleNode asks it
/// for every source it scales and sets the result as the scaler's scaleTransform.
class ImageTransformProvider {
 public:
  virtual ~ImageTransformProvider() = default;
  /// The transform to use for `image`; `handle` is the source image node's handle (may be null).
  virtual ScaleTransform transformForSourceImage(const Image& image, const Handle* handle) = 0;
};
using ImageTransformProviderPtr = std::shared_ptr<ImageTransformProvider>;

}  // namespace mpsnn
