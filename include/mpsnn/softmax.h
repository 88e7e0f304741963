// mpsnn — softmax and log-softmax across feature channels (spec 04 §1–§2).
#pragma once
#include <memory>

#include "mpsnn/kernel.h"

namespace mpsnn {

/// Softmax across feature channels (MPSCNNSoftMax), independently per pixel and image:
///   Y(k) = exp(X(k) − m) / Σ_q exp(X(q) − m),   m = max_q X(q)
/// over the C_read channels the kernel reads (sourceFeatureChannelOffset and
/// sourceFeatureChannelMaxCount select them; the destination gets C_read channels). Unwindowed
/// mapping: destination pixel (x, y) reads source pixel offset + (x, y), edgeMode Zero or Clamp
/// deciding what a pixel outside the source reads. A NaN or +inf channel makes every output of its
/// pixel NaN (the IEEE result of the stable formula); −inf channels give 0 while one channel is finite.
class CNNSoftMax : public CNNKernel {
 public:
  explicit CNNSoftMax(DevicePtr device);
  static std::shared_ptr<CNNSoftMax> make(DevicePtr device) {
    return std::make_shared<CNNSoftMax>(std::move(device));
  }
  const char* className() const override { return "CNNSoftMax"; }

 protected:
  void validateImages(const Image& source, const Image& destination) const override;
  void encodeProblem(CommandBuffer& commandBuffer, const detail::UnaryProblem& problem) override;
};

/// Log-softmax across feature channels (MPSCNNLogSoftMax):
///   Y(k) = X(k) − m − ln(Σ_q exp(X(q) − m)),   m = max_q X(q)
/// Channels, placement, edge modes and special values as CNNSoftMax (−inf channels give −inf).
class CNNLogSoftMax : public CNNKernel {
 public:
  explicit CNNLogSoftMax(DevicePtr device);
  static std::shared_ptr<CNNLogSoftMax> make(DevicePtr device) {
    return std::make_shared<CNNLogSoftMax>(std::move(device));
  }
  const char* className() const override { return "CNNLogSoftMax"; }

 protected:
  void validateImages(const Image& source, const Image& destination) const override;
  void encodeProblem(CommandBuffer& commandBuffer, const detail::UnaryProblem& problem) override;
};

}  // namespace mpsnn
