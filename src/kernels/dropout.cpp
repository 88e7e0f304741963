// CNNDropout (spec 06 §3, spec 10 §10.12.1): parameter validation, the mask's counter scheme and dispatch.
#include "mpsnn/dropout.h"

#include <cmath>
#include <sstream>

#include "kernels/describe.h"
#include "kernels/dropout_impl.h"
#include "mpsnn/error.h"

namespace mpsnn {

using namespace detail;

namespace {
std::string str(float v) {
  std::ostringstream s;
  s.precision(9);
  s << v;
  return s.str();
}
}  // namespace

CNNDropout::CNNDropout(DevicePtr device, float keepProbability, uint64_t seed, IntSize maskStrideInPixels)
    : CNNKernel(std::move(device)),
      keepProbability_(keepProbability),
      seed_(seed),
      maskStrideInPixels_(maskStrideInPixels) {
  // Spec 10 §10.12.1 CHOICE: (0, 1] accepted, 1 keeps everything; the negated test also rejects NaN.
  if (!(keepProbability > 0.0f && keepProbability <= 1.0f))
    throw InvalidArgument(std::string(className()) + ": keepProbability = " + str(keepProbability) +
                          " (must be in (0, 1])");
  const std::pair<const char*, uint64_t> strides[] = {{"width", maskStrideInPixels.width},
                                                      {"height", maskStrideInPixels.height},
                                                      {"depth", maskStrideInPixels.depth}};
  for (const auto& [axis, value] : strides)
    if (value > 1)
      throw InvalidArgument(std::string(className()) + ": maskStrideInPixels." + axis + " = " +
                            std::to_string(value) + " (must be 0 or 1)");
}

void CNNDropout::encodeProblem(CommandBuffer& cb, const UnaryProblem& problem) {
  DropoutProblem p;
  p.io = problem;
  DropoutParams& d = p.dropout;
  d.keepProbability = keepProbability_;
  // The product in double so that every backend and the reference get the same threshold; 1 → 2³².
  d.threshold = uint64_t(double(keepProbability_) * 4294967296.0);
  d.key0 = uint32_t(seed_);
  d.key1 = uint32_t(seed_ >> 32);
  d.step0 = uint32_t(trainingStep_);
  d.step1 = uint32_t(trainingStep_ >> 32);
  d.batchBase = problem.batchIndex;
  d.maskStrideX = int64_t(maskStrideInPixels_.width);
  d.maskStrideY = int64_t(maskStrideInPixels_.height);
  d.maskStrideC = int64_t(maskStrideInPixels_.depth);
  d.maskWidth = d.maskStrideX ? problem.dst.w : 1;
  d.maskChannels = d.maskStrideC ? problem.dst.c : 1;
#if defined(MPSNN_HAVE_CUDA)
  auto& list =
      device_->kind() == DeviceKind::CUDA ? cudaDropoutImplementations() : cpuDropoutImplementations();
#else
  auto& list = cpuDropoutImplementations();
#endif
  const auto& impl = chooseImplementation(list, p, className());
  auto run = impl.run;
  const std::string extra = "keep=" + str(keepProbability_) + ",seed=" + std::to_string(seed_) +
                            ",step=" + std::to_string(trainingStep_) +
                            ",batch=" + std::to_string(d.batchBase);
  cb.encodeWork(describeWork(className(), impl.name, problem, extra),
                [p, run](QueueContext& ctx) { run(p, ctx); });
}

void CNNDropout::didEncode(CommandBuffer&) { ++trainingStep_; }

}  // namespace mpsnn
