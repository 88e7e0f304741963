// mpsnn — pooling kernels (spec 02): max, average, L2-norm and dilated max pooling.
#pragma once
#include <cstdint>
#include <memory>
#include <utility>

#include "mpsnn/kernel.h"

namespace mpsnn {

namespace detail {
class PoolingPrimitiveCache;
}  // namespace detail

/// Base of the pooling kernels (MPSCNNPooling). A kernelWidth × kernelHeight window moves over each
/// feature channel separately (channels never mix; the destination gets C_read channels). Destination
/// pixel (x, y) of the clip rectangle pools the window centred on source pixel
/// offset + (strideInPixelsX·x, strideInPixelsY·y); even windows reach one pixel further up/left
/// (spec 02 §1.1). edgeMode Zero or Clamp decides what out-of-image taps read; each subclass states
/// how. Abstract: use CNNPoolingMax, CNNPoolingAverage, CNNPoolingL2Norm or CNNDilatedPoolingMax.
/// Kernel sizes, strides and dilation rates are read-only, fixed at construction (each ≥ 1).
class CNNPooling : public CNNKernel {
 public:
  CNNPooling(DevicePtr device) = delete;  // MPS marks -initWithDevice: unavailable

 protected:
  enum class Operation : uint32_t { Max, Average, L2Norm };
  /// `who` names the concrete class in error messages (virtual calls do not reach it yet here).
  CNNPooling(DevicePtr device, const char* who, Operation operation, uint64_t kernelWidth,
             uint64_t kernelHeight, uint64_t strideInPixelsX, uint64_t strideInPixelsY,
             uint64_t dilationRateX, uint64_t dilationRateY);
  void validateImages(const Image& source, const Image& destination) const override;
  void encodeProblem(CommandBuffer& commandBuffer, const detail::UnaryProblem& problem) override;
  /// The zero band of average pooling with edgeMode Clamp (x, y); {0, 0} for the other kernels.
  virtual std::pair<uint64_t, uint64_t> zeroPadSizes() const { return {0, 0}; }

  Operation operation_;

 private:
  // Backend objects (oneDNN primitives) kept per problem shape; shared by copies of the kernel.
  std::shared_ptr<detail::PoolingPrimitiveCache> primitives_;
};

/// Max pooling (MPSCNNPoolingMax): out = max over the window's taps. edgeMode Zero: out-of-image
/// taps read 0 (so a negative maximum at the border becomes 0, unlike PyTorch/TensorFlow); Clamp:
/// they read the nearest edge pixel, which for a window overlapping the image equals ignoring them.
/// A NaN in the window gives NaN.
class CNNPoolingMax : public CNNPooling {
 public:
  /// Strides 1 (spec 02 §1 CHOICE).
  CNNPoolingMax(DevicePtr device, uint64_t kernelWidth, uint64_t kernelHeight);
  CNNPoolingMax(DevicePtr device, uint64_t kernelWidth, uint64_t kernelHeight, uint64_t strideInPixelsX,
                uint64_t strideInPixelsY);
  CNNPoolingMax(DevicePtr device) = delete;
  static std::shared_ptr<CNNPoolingMax> make(DevicePtr device, uint64_t kernelWidth, uint64_t kernelHeight) {
    return std::make_shared<CNNPoolingMax>(std::move(device), kernelWidth, kernelHeight);
  }
  static std::shared_ptr<CNNPoolingMax> make(DevicePtr device, uint64_t kernelWidth, uint64_t kernelHeight,
                                             uint64_t strideInPixelsX, uint64_t strideInPixelsY) {
    return std::make_shared<CNNPoolingMax>(std::move(device), kernelWidth, kernelHeight, strideInPixelsX,
                                           strideInPixelsY);
  }
  const char* className() const override { return "CNNPoolingMax"; }
};

/// Average pooling (MPSCNNPoolingAverage). edgeMode Zero: the sum of the window divided by
/// kernelWidth·kernelHeight, out-of-image taps counting as 0 (PyTorch count_include_pad=True).
/// edgeMode Clamp (QUIRK, not a clamped read): the window shrinks to the image extended by a band
/// of zeroPadSizeX/Y zero pixels on each side, and the sum is divided by the number of taps in that
/// area (0 when there are none); zeroPadSize 0 is PyTorch count_include_pad=False. A padding policy
/// with ExcludeEdges makes auto mode set Clamp and the zero band to the leading padding (spec 02 §2.3).
class CNNPoolingAverage : public CNNPooling {
 public:
  CNNPoolingAverage(DevicePtr device, uint64_t kernelWidth, uint64_t kernelHeight);
  CNNPoolingAverage(DevicePtr device, uint64_t kernelWidth, uint64_t kernelHeight, uint64_t strideInPixelsX,
                    uint64_t strideInPixelsY);
  CNNPoolingAverage(DevicePtr device) = delete;
  static std::shared_ptr<CNNPoolingAverage> make(DevicePtr device, uint64_t kernelWidth,
                                                 uint64_t kernelHeight) {
    return std::make_shared<CNNPoolingAverage>(std::move(device), kernelWidth, kernelHeight);
  }
  static std::shared_ptr<CNNPoolingAverage> make(DevicePtr device, uint64_t kernelWidth,
                                                 uint64_t kernelHeight, uint64_t strideInPixelsX,
                                                 uint64_t strideInPixelsY) {
    return std::make_shared<CNNPoolingAverage>(std::move(device), kernelWidth, kernelHeight, strideInPixelsX,
                                               strideInPixelsY);
  }
  const char* className() const override { return "CNNPoolingAverage"; }

  /// Zero pixels added on the left and right of the image for edgeMode Clamp (default 0).
  uint64_t zeroPadSizeX() const { return zeroPadSizeX_; }
  void setZeroPadSizeX(uint64_t v) { zeroPadSizeX_ = v; }
  /// Zero pixels added above and below the image for edgeMode Clamp (default 0).
  uint64_t zeroPadSizeY() const { return zeroPadSizeY_; }
  void setZeroPadSizeY(uint64_t v) { zeroPadSizeY_ = v; }

  /// As CNNKernel's; with ExcludeEdges in the padding method it also sets edgeMode = Clamp and
  /// zeroPadSizeX/Y = max(leading padding, 0) before a Custom policy's hook runs.
  ImageDescriptor destinationImageDescriptor(const ImageBatch& sourceImages,
                                             const StateBatch& sourceStates) override;

 protected:
  std::pair<uint64_t, uint64_t> zeroPadSizes() const override { return {zeroPadSizeX_, zeroPadSizeY_}; }

 private:
  uint64_t zeroPadSizeX_ = 0, zeroPadSizeY_ = 0;
};

/// L2-norm pooling (MPSCNNPoolingL2Norm): out = sqrt(Σ taps v²), no division by the window size.
/// edgeMode Zero: out-of-image taps contribute 0; Clamp: they read the nearest edge pixel, so an
/// edge pixel may count several times (spec 02 §4 CHOICE).
class CNNPoolingL2Norm : public CNNPooling {
 public:
  CNNPoolingL2Norm(DevicePtr device, uint64_t kernelWidth, uint64_t kernelHeight);
  CNNPoolingL2Norm(DevicePtr device, uint64_t kernelWidth, uint64_t kernelHeight, uint64_t strideInPixelsX,
                   uint64_t strideInPixelsY);
  CNNPoolingL2Norm(DevicePtr device) = delete;
  static std::shared_ptr<CNNPoolingL2Norm> make(DevicePtr device, uint64_t kernelWidth,
                                                uint64_t kernelHeight) {
    return std::make_shared<CNNPoolingL2Norm>(std::move(device), kernelWidth, kernelHeight);
  }
  static std::shared_ptr<CNNPoolingL2Norm> make(DevicePtr device, uint64_t kernelWidth, uint64_t kernelHeight,
                                                uint64_t strideInPixelsX, uint64_t strideInPixelsY) {
    return std::make_shared<CNNPoolingL2Norm>(std::move(device), kernelWidth, kernelHeight, strideInPixelsX,
                                              strideInPixelsY);
  }
  const char* className() const override { return "CNNPoolingL2Norm"; }
};

/// Max pooling over a dilated window (MPSCNNDilatedPoolingMax): taps first + (i·dilationRateX,
/// j·dilationRateY) with first = centre − floor(((kernel − 1)·dilation + 1) / 2). Edge modes as
/// CNNPoolingMax; with dilation a clamped tap reads the edge pixel even when that pixel is not a tap,
/// so Clamp differs from PyTorch's −∞ padding (spec 02 §5). Only the seven-argument constructor exists.
class CNNDilatedPoolingMax : public CNNPooling {
 public:
  CNNDilatedPoolingMax(DevicePtr device, uint64_t kernelWidth, uint64_t kernelHeight, uint64_t dilationRateX,
                       uint64_t dilationRateY, uint64_t strideInPixelsX, uint64_t strideInPixelsY);
  CNNDilatedPoolingMax(DevicePtr device) = delete;
  CNNDilatedPoolingMax(DevicePtr device, uint64_t kernelWidth, uint64_t kernelHeight) = delete;
  CNNDilatedPoolingMax(DevicePtr device, uint64_t kernelWidth, uint64_t kernelHeight,
                       uint64_t strideInPixelsX,
                       uint64_t strideInPixelsY) = delete;  // MPS marks the five-argument form unavailable
  static std::shared_ptr<CNNDilatedPoolingMax> make(DevicePtr device, uint64_t kernelWidth,
                                                    uint64_t kernelHeight, uint64_t dilationRateX,
                                                    uint64_t dilationRateY, uint64_t strideInPixelsX,
                                                    uint64_t strideInPixelsY) {
    return std::make_shared<CNNDilatedPoolingMax>(std::move(device), kernelWidth, kernelHeight, dilationRateX,
                                                  dilationRateY, strideInPixelsX, strideInPixelsY);
  }
  const char* className() const override { return "CNNDilatedPoolingMax"; }
};

}  // namespace mpsnn
