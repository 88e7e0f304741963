// The pooling kernels (spec 02): construction checks, the average kernel's ExcludeEdges sizing,
// and dispatch to a backend.
#include "mpsnn/pooling.h"

#include <algorithm>

#include "kernels/describe.h"
#include "kernels/pooling_impl.h"
#include "mpsnn/error.h"

namespace mpsnn {

using namespace detail;

namespace {

// CHOICE (docs/pooling.md): window sizes, strides and dilation rates up to 2^31 − 1, and window
// positions within ±2^62, keep every coordinate the backends compute inside int64 with room to
// spare. Metal textures, which back MPS's images, are at most 16384 pixels wide, so no meaningful
// input is refused.
constexpr uint64_t kMaxWindowParameter = (uint64_t(1) << 31) - 1;
constexpr __int128 kMaxCoordinate = __int128(1) << 62;

void requireParameter(const char* who, const char* property, uint64_t value) {
  if (value == 0) throw InvalidArgument(std::string(who) + ": " + property + " = 0 (must be at least 1)");
  if (value > kMaxWindowParameter)
    throw InvalidArgument(std::string(who) + ": " + property + " = " + std::to_string(value) +
                          " exceeds the supported maximum " + std::to_string(kMaxWindowParameter));
}

}  // namespace

CNNPooling::CNNPooling(DevicePtr device, const char* who, Operation operation, uint64_t kernelWidth,
                       uint64_t kernelHeight, uint64_t strideInPixelsX, uint64_t strideInPixelsY,
                       uint64_t dilationRateX, uint64_t dilationRateY)
    : CNNKernel(std::move(device)),
      operation_(operation),
      primitives_(std::make_shared<PoolingPrimitiveCache>()) {
  requireParameter(who, "kernelWidth", kernelWidth);
  requireParameter(who, "kernelHeight", kernelHeight);
  requireParameter(who, "strideInPixelsX", strideInPixelsX);
  requireParameter(who, "strideInPixelsY", strideInPixelsY);
  requireParameter(who, "dilationRateX", dilationRateX);
  requireParameter(who, "dilationRateY", dilationRateY);
  const uint64_t extentX = (kernelWidth - 1) * dilationRateX + 1,
                 extentY = (kernelHeight - 1) * dilationRateY + 1;
  if (extentX > kMaxWindowParameter)
    throw InvalidArgument(
        std::string(who) + ": dilated window width (kernelWidth - 1) * dilationRateX + 1 = " +
        std::to_string(extentX) + " exceeds the supported maximum " + std::to_string(kMaxWindowParameter));
  if (extentY > kMaxWindowParameter)
    throw InvalidArgument(
        std::string(who) + ": dilated window height (kernelHeight - 1) * dilationRateY + 1 = " +
        std::to_string(extentY) + " exceeds the supported maximum " + std::to_string(kMaxWindowParameter));
  kernelWidth_ = kernelWidth;
  kernelHeight_ = kernelHeight;
  strideX_ = strideInPixelsX;
  strideY_ = strideInPixelsY;
  dilationX_ = dilationRateX;
  dilationY_ = dilationRateY;
}

void CNNPooling::validateImages(const Image& source, const Image& destination) const {
  CNNKernel::validateImages(source, destination);  // edgeMode Zero or Clamp only
  // Every tap coordinate of every window that may be written must stay within ±2^62.
  auto checkAxis = [&](int64_t offset, uint64_t stride, uint64_t kernel, uint64_t dilation,
                       uint64_t dstExtent, const char* property) {
    const __int128 extent = __int128((kernel - 1) * dilation + 1);
    const __int128 lo = __int128(offset) - extent / 2;
    const __int128 hi =
        __int128(offset) + __int128(stride) * __int128(dstExtent == 0 ? 0 : dstExtent - 1) + extent;
    if (lo < -kMaxCoordinate || hi > kMaxCoordinate)
      throw InvalidArgument(std::string(className()) + ": " + property + " = " + std::to_string(offset) +
                            " places pooling windows beyond the supported coordinate range of +-2^62 pixels");
  };
  checkAxis(offset_.x, strideX_, kernelWidth_, dilationX_, destination.width(), "offset.x");
  checkAxis(offset_.y, strideY_, kernelHeight_, dilationY_, destination.height(), "offset.y");
}

void CNNPooling::encodeProblem(CommandBuffer& cb, const UnaryProblem& problem) {
  PoolingProblem p;
  p.io = problem;
  p.pool.operation = operation_ == Operation::Max       ? PoolingOperation::Max
                     : operation_ == Operation::Average ? PoolingOperation::Average
                                                        : PoolingOperation::L2Norm;
  p.pool.kernelWidth = int64_t(kernelWidth_);
  p.pool.kernelHeight = int64_t(kernelHeight_);
  p.pool.strideX = int64_t(strideX_);
  p.pool.strideY = int64_t(strideY_);
  p.pool.dilationX = int64_t(dilationX_);
  p.pool.dilationY = int64_t(dilationY_);
  const auto [padX, padY] = zeroPadSizes();
  p.pool.zeroPadX = int64_t(std::min<uint64_t>(padX, (kernelWidth_ - 1) * dilationX_ + 1));
  p.pool.zeroPadY = int64_t(std::min<uint64_t>(padY, (kernelHeight_ - 1) * dilationY_ + 1));
  p.primitives = primitives_;
#if defined(MPSNN_HAVE_CUDA)
  auto& list =
      device_->kind() == DeviceKind::CUDA ? cudaPoolingImplementations() : cpuPoolingImplementations();
#else
  auto& list = cpuPoolingImplementations();
#endif
  const auto& impl = chooseImplementation(list, p, className());
  std::string extra = std::to_string(kernelWidth_) + "x" + std::to_string(kernelHeight_) +
                      ",stride=" + std::to_string(strideX_) + "x" + std::to_string(strideY_) +
                      ",edge=" + toString(edgeMode_);
  if (dilationX_ != 1 || dilationY_ != 1)
    extra += ",dilation=" + std::to_string(dilationX_) + "x" + std::to_string(dilationY_);
  auto run = impl.run;
  cb.encodeWork(describeWork(className(), impl.name, problem, extra),
                [p, run](QueueContext& ctx) { run(p, ctx); });
}

// ---- concrete kernels ----

CNNPoolingMax::CNNPoolingMax(DevicePtr device, uint64_t kernelWidth, uint64_t kernelHeight)
    : CNNPoolingMax(std::move(device), kernelWidth, kernelHeight, 1, 1) {}
CNNPoolingMax::CNNPoolingMax(DevicePtr device, uint64_t kernelWidth, uint64_t kernelHeight,
                             uint64_t strideInPixelsX, uint64_t strideInPixelsY)
    : CNNPooling(std::move(device), "CNNPoolingMax", Operation::Max, kernelWidth, kernelHeight,
                 strideInPixelsX, strideInPixelsY, 1, 1) {}

CNNPoolingAverage::CNNPoolingAverage(DevicePtr device, uint64_t kernelWidth, uint64_t kernelHeight)
    : CNNPoolingAverage(std::move(device), kernelWidth, kernelHeight, 1, 1) {}
CNNPoolingAverage::CNNPoolingAverage(DevicePtr device, uint64_t kernelWidth, uint64_t kernelHeight,
                                     uint64_t strideInPixelsX, uint64_t strideInPixelsY)
    : CNNPooling(std::move(device), "CNNPoolingAverage", Operation::Average, kernelWidth, kernelHeight,
                 strideInPixelsX, strideInPixelsY, 1, 1) {}

ImageDescriptor CNNPoolingAverage::destinationImageDescriptor(const ImageBatch& sourceImages,
                                                              const StateBatch& sourceStates) {
  const NNPaddingMethod method = padding_->paddingMethod();
  if (!any(method & NNPaddingMethod::ExcludeEdges) || sourceImages.empty() || !sourceImages[0])
    return CNNKernel::destinationImageDescriptor(sourceImages, sourceStates);
  // Spec 02 §2.3 CHOICE: the zero band is the leading padding of spec 00 §5.3, lead = floor(k/2) −
  // offset. Applied before the base computation so that a Custom hook still has the last word; the
  // properties are restored if the base rejects the source.
  validatePaddingMethod(method, className());
  const Image& src = *sourceImages[0];
  const int64_t kx = int64_t(kernelWidth_), ky = int64_t(kernelHeight_);
  // Rejects a source too small for the size rule, naming this kernel (paddingOffset would not).
  paddingDestinationSize(int64_t(src.width()), int64_t(strideX_), kx, method, false, className());
  paddingDestinationSize(int64_t(src.height()), int64_t(strideY_), ky, method, false, className());
  const int64_t leadX = kx / 2 - paddingOffset(int64_t(src.width()), int64_t(strideX_), kx, method, true);
  const int64_t leadY = ky / 2 - paddingOffset(int64_t(src.height()), int64_t(strideY_), ky, method, false);
  const ImageEdgeMode oldEdge = edgeMode_;
  const uint64_t oldX = zeroPadSizeX_, oldY = zeroPadSizeY_;
  edgeMode_ = ImageEdgeMode::Clamp;
  zeroPadSizeX_ = uint64_t(std::max<int64_t>(leadX, 0));
  zeroPadSizeY_ = uint64_t(std::max<int64_t>(leadY, 0));
  try {
    return CNNKernel::destinationImageDescriptor(sourceImages, sourceStates);
  } catch (...) {
    edgeMode_ = oldEdge;
    zeroPadSizeX_ = oldX;
    zeroPadSizeY_ = oldY;
    throw;
  }
}

CNNPoolingL2Norm::CNNPoolingL2Norm(DevicePtr device, uint64_t kernelWidth, uint64_t kernelHeight)
    : CNNPoolingL2Norm(std::move(device), kernelWidth, kernelHeight, 1, 1) {}
CNNPoolingL2Norm::CNNPoolingL2Norm(DevicePtr device, uint64_t kernelWidth, uint64_t kernelHeight,
                                   uint64_t strideInPixelsX, uint64_t strideInPixelsY)
    : CNNPooling(std::move(device), "CNNPoolingL2Norm", Operation::L2Norm, kernelWidth, kernelHeight,
                 strideInPixelsX, strideInPixelsY, 1, 1) {}

CNNDilatedPoolingMax::CNNDilatedPoolingMax(DevicePtr device, uint64_t kernelWidth, uint64_t kernelHeight,
                                           uint64_t dilationRateX, uint64_t dilationRateY,
                                           uint64_t strideInPixelsX, uint64_t strideInPixelsY)
    : CNNPooling(std::move(device), "CNNDilatedPoolingMax", Operation::Max, kernelWidth, kernelHeight,
                 strideInPixelsX, strideInPixelsY, dilationRateX, dilationRateY) {}

}  // namespace mpsnn
