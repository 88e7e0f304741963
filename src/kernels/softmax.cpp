// CNNSoftMax and CNNLogSoftMax (spec 04 §1–§2): validation and dispatch.
#include "mpsnn/softmax.h"

#include "kernels/describe.h"
#include "kernels/softmax_impl.h"
#include "mpsnn/error.h"

namespace mpsnn {

using namespace detail;

namespace {

// CHOICE (docs/softmax-normalization.md): offsets must keep every coordinate the kernel computes
// within ±2^62, so that no backend's int64 arithmetic can overflow. No meaningful input is refused.
constexpr __int128 kMaxCoordinate = __int128(1) << 62;

void requireOffsetInRange(const char* who, const Offset& offset, const Image& destination) {
  auto check = [&](int64_t value, uint64_t extent, const char* property) {
    const __int128 lo = value, hi = __int128(value) + __int128(extent);
    if (lo < -kMaxCoordinate || hi > kMaxCoordinate)
      throw InvalidArgument(std::string(who) + ": " + property + " = " + std::to_string(value) +
                            " is beyond the supported coordinate range of +-2^62 pixels");
  };
  check(offset.x, destination.width(), "offset.x");
  check(offset.y, destination.height(), "offset.y");
}

void encodeSoftMax(CommandBuffer& cb, const Device& device, const UnaryProblem& problem, bool logarithm,
                   const char* who) {
  SoftMaxProblem p{problem, logarithm};
#if defined(MPSNN_HAVE_CUDA)
  auto& list = device.kind() == DeviceKind::CUDA ? cudaSoftMaxImplementations() : cpuSoftMaxImplementations();
#else
  (void)device;
  auto& list = cpuSoftMaxImplementations();
#endif
  const auto& impl = chooseImplementation(list, p, who);
  auto run = impl.run;
  cb.encodeWork(describeWork(who, impl.name, problem, "edge=" + toString(problem.edgeMode)),
                [p, run](QueueContext& ctx) { run(p, ctx); });
}

}  // namespace

CNNSoftMax::CNNSoftMax(DevicePtr device) : CNNKernel(std::move(device)) {}

void CNNSoftMax::validateImages(const Image& source, const Image& destination) const {
  CNNKernel::validateImages(source, destination);  // edgeMode Zero or Clamp only
  requireOffsetInRange(className(), offset_, destination);
}

void CNNSoftMax::encodeProblem(CommandBuffer& cb, const UnaryProblem& problem) {
  encodeSoftMax(cb, *device_, problem, false, className());
}

CNNLogSoftMax::CNNLogSoftMax(DevicePtr device) : CNNKernel(std::move(device)) {}

void CNNLogSoftMax::validateImages(const Image& source, const Image& destination) const {
  CNNKernel::validateImages(source, destination);
  requireOffsetInRange(className(), offset_, destination);
}

void CNNLogSoftMax::encodeProblem(CommandBuffer& cb, const UnaryProblem& problem) {
  encodeSoftMax(cb, *device_, problem, true, className());
}

}  // namespace mpsnn
