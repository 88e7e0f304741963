// mpsnn — dropout, forward (spec 06 §3, spec 10 §10.12.1).
#pragma once
#include <memory>

#include "mpsnn/kernel.h"

namespace mpsnn {

/// Randomly zeroes elements and scales the kept ones (MPSCNNDropout):
///   dst = m · src / keepProbability,   m ∈ {0, 1},   P(m = 1) = keepProbability,
/// with the unwindowed mapping of spec 00 §4.2 (offset, clipRect, channel offsets, edge mode Zero or
/// Clamp). Output channels = channels read. The kernel always drops: skip it at inference.
///
/// The mask is reproducible: element (x, y, c) of destination image k (x, y relative to the clip
/// origin, c the output channel) uses mask element e = ((y·sy)·Wm + x·sx)·Cm + c·sz, where
/// (sx, sy, sz) = maskStrideInPixels (0 broadcasts one mask value along that axis; z is the
/// feature-channel axis), Wm = clip width if sx else 1, Cm = output channels if sz else 1. The bit is
/// Philox-4x32-10 with key (seed low 32 bits, seed high 32 bits) and counter
/// (e / 4, batch position, step low 32 bits, step high 32 bits); output word e mod 4 keeps the
/// element iff it is < uint64(double(keepProbability) · 2³²). The batch position is the index in an
/// encodeBatch call plus k (k = image within a multi-image encode). CPU and CUDA give the same bits.
///
/// `trainingStep` starts at 0 and advances by one after every encode / encodeBatch call, so successive
/// calls draw fresh masks; a kernel made with the same seed and step draws the same ones. Because
/// encode advances the step, concurrent encodes on one dropout kernel need the caller's synchronisation.
class CNNDropout : public CNNKernel {
 public:
  /// keepProbability in (0, 1] (1 keeps everything); each maskStrideInPixels component 0 or 1.
  CNNDropout(DevicePtr device, float keepProbability, uint64_t seed, IntSize maskStrideInPixels);
  static std::shared_ptr<CNNDropout> make(DevicePtr device, float keepProbability, uint64_t seed,
                                          IntSize maskStrideInPixels) {
    return std::make_shared<CNNDropout>(std::move(device), keepProbability, seed, maskStrideInPixels);
  }
  const char* className() const override { return "CNNDropout"; }

  float keepProbability() const { return keepProbability_; }
  uint64_t seed() const { return seed_; }
  IntSize maskStrideInPixels() const { return maskStrideInPixels_; }

  /// Library extension: the counter word t of the next encode (spec 10 §10.12.1). Setting it replays
  /// the masks of an earlier call; NNGraph sets it once per graph encode.
  uint64_t trainingStep() const { return trainingStep_; }
  void setTrainingStep(uint64_t step) { trainingStep_ = step; }

 protected:
  void encodeProblem(CommandBuffer& commandBuffer, const detail::UnaryProblem& problem) override;
  void didEncode(CommandBuffer& commandBuffer) override;

 private:
  float keepProbability_;
  uint64_t seed_;
  IntSize maskStrideInPixels_;
  uint64_t trainingStep_ = 0;
};

}  // namespace mpsnn
