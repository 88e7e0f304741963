// The resampling kernels (spec 05): construction checks, upsampling's auto-mode size, the scale
// transform, and dispatch to a backend.
#include "mpsnn/resampling.h"

#include <cmath>
#include <cstdio>

#include "core/image_access.h"
#include "kernels/describe.h"
#include "kernels/resampling_impl.h"
#include "mpsnn/error.h"

namespace mpsnn {

using namespace detail;

namespace {

// CHOICE (docs/resampling.md): integer scale factors up to 2^31 − 1, and offsets within ±2^62,
// keep every source coordinate the backends compute inside int64 with room to spare (as pooling).
constexpr uint64_t kMaxScaleFactor = (uint64_t(1) << 31) - 1;
constexpr int64_t kMaxOffset = int64_t(1) << 62;

/// A double as text with enough digits to name the exact value in an error message.
std::string str(double v) {
  char text[40];
  std::snprintf(text, sizeof text, "%.17g", v);
  return text;
}

void requireScaleFactor(const char* who, const char* property, uint64_t value) {
  if (value == 0) throw InvalidArgument(std::string(who) + ": " + property + " = 0 (must be at least 1)");
  if (value > kMaxScaleFactor)
    throw InvalidArgument(std::string(who) + ": " + property + " = " + std::to_string(value) +
                          " exceeds the supported maximum " + std::to_string(kMaxScaleFactor));
}

/// Spec 00 §4 offsets, limited so that source coordinates stay far from int64's range.
void requireOffsetInRange(const char* who, const Offset& offset) {
  for (auto [value, property] : {std::pair{offset.x, "offset.x"}, std::pair{offset.y, "offset.y"}})
    if (value < -kMaxOffset || value > kMaxOffset)
      throw InvalidArgument(std::string(who) + ": " + property + " = " + std::to_string(value) +
                            " is beyond the supported range of +-2^62 pixels");
}

const ImplementationList<ResamplingProblem>& implementationsFor(const Device& device) {
#if defined(MPSNN_HAVE_CUDA)
  return device.kind() == DeviceKind::CUDA ? cudaResamplingImplementations() : cpuResamplingImplementations();
#else
  (void)device;
  return cpuResamplingImplementations();
#endif
}

void encodeResampling(CommandBuffer& cb, const Device& device, const char* who, const ResamplingProblem& p,
                      const std::string& extra) {
  const auto& impl = chooseImplementation(implementationsFor(device), p, who);
  auto run = impl.run;
  cb.encodeWork(describeWork(who, impl.name, p.io, extra), [p, run](QueueContext& ctx) { run(p, ctx); });
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// CNNUpsampling

CNNUpsampling::CNNUpsampling(DevicePtr device, const char* who, Filter filter, uint64_t integerScaleFactorX,
                             uint64_t integerScaleFactorY, bool alignCorners)
    : CNNKernel(std::move(device)), filter_(filter) {
  requireScaleFactor(who, "scaleFactorX", integerScaleFactorX);
  requireScaleFactor(who, "scaleFactorY", integerScaleFactorY);
  scaleFactorX_ = integerScaleFactorX;
  scaleFactorY_ = integerScaleFactorY;
  alignCorners_ = alignCorners;
}

void CNNUpsampling::validateImages(const Image& source, const Image& destination) const {
  CNNKernel::validateImages(source, destination);  // edgeMode Zero or Clamp only
  requireOffsetInRange(className(), offset_);
}

void CNNUpsampling::autoGeometry(const Image& source, NNPaddingMethod, uint64_t& width, uint64_t& height,
                                 Offset& offset) const {
  // Spec 05 §1 CHOICE: W_in·scaleFactorX × H_in·scaleFactorY whatever the size option; offset 0.
  auto scaled = [&](uint64_t extent, uint64_t factor, const char* property) {
    if (extent > uint64_t(INT64_MAX) / factor)
      throw InvalidArgument(std::string(className()) + ": " + property + " = " + std::to_string(factor) +
                            " makes a destination extent beyond 2^63 for a source extent of " +
                            std::to_string(extent));
    return extent * factor;
  };
  width = scaled(source.width(), scaleFactorX_, "scaleFactorX");
  height = scaled(source.height(), scaleFactorY_, "scaleFactorY");
  offset.x = 0;
  offset.y = 0;
}

void CNNUpsampling::encodeProblem(CommandBuffer& cb, const UnaryProblem& problem) {
  ResamplingProblem p;
  p.io = problem;
  p.filter = filter_ == Filter::Nearest ? ResamplingFilter::Nearest : ResamplingFilter::Bilinear;
  const AxisMapping mapping = filter_ == Filter::Nearest ? AxisMapping::IntegerFactor
                              : alignCorners_            ? AxisMapping::AlignCorners
                                                         : AxisMapping::HalfPixel;
  auto axis = [&](int64_t offset, uint64_t factor, int64_t sourceExtent) {
    ResamplingAxis a;
    a.mapping = mapping;
    a.offset = offset;
    a.factor = int64_t(factor);
    a.sourceExtent = sourceExtent;
    a.upsampledExtent = double(sourceExtent) * double(factor);  // W_out of spec 05 §1.2
    return a;
  };
  p.x = axis(problem.offsetX, scaleFactorX_, problem.src.w);
  p.y = axis(problem.offsetY, scaleFactorY_, problem.src.h);
  std::string extra = "scale=" + std::to_string(scaleFactorX_) + "x" + std::to_string(scaleFactorY_);
  if (filter_ == Filter::Bilinear)
    extra += alignCorners_ ? ",alignCorners" : ",halfPixel";
  else
    extra += ",edge=" + toString(edgeMode_);
  encodeResampling(cb, *device_, className(), p, extra);
}

CNNUpsamplingNearest::CNNUpsamplingNearest(DevicePtr device, uint64_t integerScaleFactorX,
                                           uint64_t integerScaleFactorY)
    : CNNUpsampling(std::move(device), "CNNUpsamplingNearest", Filter::Nearest, integerScaleFactorX,
                    integerScaleFactorY, false) {}

CNNUpsamplingBilinear::CNNUpsamplingBilinear(DevicePtr device, uint64_t integerScaleFactorX,
                                             uint64_t integerScaleFactorY)
    : CNNUpsamplingBilinear(std::move(device), integerScaleFactorX, integerScaleFactorY, false) {}

CNNUpsamplingBilinear::CNNUpsamplingBilinear(DevicePtr device, uint64_t integerScaleFactorX,
                                             uint64_t integerScaleFactorY, bool alignCorners)
    : CNNUpsampling(std::move(device), "CNNUpsamplingBilinear", Filter::Bilinear, integerScaleFactorX,
                    integerScaleFactorY, alignCorners) {}

// ---------------------------------------------------------------------------------------------
// ImageScale

ImageScale::ImageScale(DevicePtr device, Filter filter) : CNNKernel(std::move(device)), filter_(filter) {}

void ImageScale::checkScale(double scale, const std::string& property) const {
  const std::string who = className();
  if (!std::isfinite(scale) || !(scale > 0.0))
    throw InvalidArgument(who + ": " + property + " = " + str(scale) + " (must be positive and finite)");
  if (filter_ == Filter::Lanczos && scale < kMinLanczosScale)
    throw InvalidArgument(who + ": " + property + " = " + str(scale) + " is below the supported minimum " +
                          str(kMinLanczosScale) + " (the Lanczos kernel would reach more than " +
                          str(kMaxLanczosReach) + " source pixels)");
}

void ImageScale::setScaleTransform(std::optional<ScaleTransform> transform) {
  if (transform) {
    checkScale(transform->scaleX, "scaleTransform.scaleX");
    checkScale(transform->scaleY, "scaleTransform.scaleY");
    // CHOICE: a translation that is not finite has no meaning either (spec 05 lists only the scales).
    for (auto [value, property] : {std::pair{transform->translateX, "scaleTransform.translateX"},
                                   std::pair{transform->translateY, "scaleTransform.translateY"}})
      if (!std::isfinite(value))
        throw InvalidArgument(std::string(className()) + ": " + property + " = " + str(value) +
                              " (must be finite)");
  }
  scaleTransform_ = transform;
}

void ImageScale::validateImages(const Image& source, const Image& destination) const {
  CNNKernel::validateImages(source, destination);  // edgeMode Zero or Clamp only
  requireOffsetInRange(className(), offset_);
  if (!scaleTransform_) {
    // Stretching: the scales come from the images (spec 05 §4); the Lanczos limit applies to them.
    checkScale(double(destination.width()) / double(source.width()),
               "destination width / source width (no scaleTransform)");
    checkScale(double(destination.height()) / double(source.height()),
               "destination height / source height (no scaleTransform)");
    // encodeProblem recovers the destination's size from its view's strides (the problem carries
    // only the clip region); ImageAccess::view lays every image out so that this holds.
    const ImageView v = ImageAccess::view(destination, className());
    if (v.pixelStride <= 0 || v.rowStride != v.pixelStride * v.w || v.imageStride != v.rowStride * v.h)
      throw DeviceError(std::string(className()) + ": internal: unexpected destination layout");
  }
}

void ImageScale::autoGeometry(const Image& source, NNPaddingMethod, uint64_t& width, uint64_t& height,
                              Offset& offset) const {
  // CHOICE: MPS's image kernels have no auto mode; a destination of the source's size (the
  // padding policy's 1×1 rule), sampled from offset 0. Manual mode picks any other size.
  width = source.width();
  height = source.height();
  offset.x = 0;
  offset.y = 0;
}

void ImageScale::encodeProblem(CommandBuffer& cb, const UnaryProblem& problem) {
  ScaleTransform t;
  if (scaleTransform_) {
    t = *scaleTransform_;
  } else {  // stretch the source over the whole destination image (spec 05 §4)
    const int64_t destinationWidth = problem.dst.rowStride / problem.dst.pixelStride;
    const int64_t destinationHeight = problem.dst.imageStride / problem.dst.rowStride;
    t = {double(destinationWidth) / double(problem.src.w), double(destinationHeight) / double(problem.src.h),
         0, 0};
  }
  ResamplingProblem p;
  p.io = problem;
  p.filter = filter_ == Filter::Lanczos ? ResamplingFilter::Lanczos : ResamplingFilter::Bilinear;
  auto axis = [](int64_t offset, double scale, double translate, int64_t sourceExtent) {
    ResamplingAxis a;
    a.mapping = AxisMapping::Transform;
    a.offset = offset;
    a.scale = scale;
    a.translate = translate;
    a.sourceExtent = sourceExtent;
    a.lanczosF = scale < 1.0 ? scale : 1.0;
    return a;
  };
  p.x = axis(problem.offsetX, t.scaleX, t.translateX, problem.src.w);
  p.y = axis(problem.offsetY, t.scaleY, t.translateY, problem.src.h);
  const std::string extra = "scale=" + str(t.scaleX) + "x" + str(t.scaleY) +
                            ",translate=" + str(t.translateX) + "x" + str(t.translateY) +
                            (scaleTransform_ ? "" : ",stretch");
  encodeResampling(cb, *device_, className(), p, extra);
}

ImageBilinearScale::ImageBilinearScale(DevicePtr device) : ImageScale(std::move(device), Filter::Bilinear) {}

ImageLanczosScale::ImageLanczosScale(DevicePtr device) : ImageScale(std::move(device), Filter::Lanczos) {}

}  // namespace mpsnn
