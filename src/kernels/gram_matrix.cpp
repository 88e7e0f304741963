// NNGramMatrixCalculation (spec 01 §10): validation (whole-source sum: no offset or clip), auto-mode
// geometry (C_read × 1 × C_read) and dispatch to the backend implementation lists.
#include "core/image_access.h"
#include "kernels/convolution_weights.h"
#include "kernels/describe.h"
#include "kernels/gram_matrix_impl.h"
#include "mpsnn/error.h"

namespace mpsnn {

namespace detail {
namespace {
thread_local std::string gLastGramImplementation;
}
std::string lastGramMatrixImplementation() { return gLastGramImplementation; }
}  // namespace detail

using namespace detail;

namespace {
std::string str(uint64_t v) { return std::to_string(v); }
}  // namespace

NNGramMatrixCalculation::NNGramMatrixCalculation(DevicePtr device, float alpha)
    : CNNKernel(std::move(device)), alpha_(alpha) {}

void NNGramMatrixCalculation::validateImages(const Image& source, const Image& destination) const {
  CNNKernel::validateImages(source, destination);
  const std::string who = className();
  validateConvolutionFormats(who, source, destination);
  if (offset_.x != 0 || offset_.y != 0)
    throw InvalidArgument(who + ": offset = (" + std::to_string(offset_.x) + ", " +
                          std::to_string(offset_.y) +
                          ") (the Gram matrix sums the whole source: offset.x and offset.y must be 0)");
  if (!isRectNoClip(clipRect_))
    throw InvalidArgument(who + ": clipRect = origin (" + str(clipRect_.origin.x) + ", " +
                          str(clipRect_.origin.y) + ", " + str(clipRect_.origin.z) +
                          ") (the Gram matrix supports only RectNoClip)");
  const uint64_t cRead =
      std::min(sourceFeatureChannelMaxCount_, source.featureChannels() - sourceFeatureChannelOffset_);
  if (destination.width() != cRead || destination.height() != 1)
    throw InvalidArgument(who + ": destination is " + str(destination.width()) + " x " +
                          str(destination.height()) + " (the Gram matrix of " + str(cRead) + " channels is " +
                          str(cRead) + " x 1)");
}

void NNGramMatrixCalculation::autoGeometry(const Image& source, NNPaddingMethod, uint64_t& width,
                                           uint64_t& height, Offset& offset) const {
  const uint64_t available = source.featureChannels() > sourceFeatureChannelOffset_
                                 ? source.featureChannels() - sourceFeatureChannelOffset_
                                 : 0;  // an offset beyond the source is rejected by the caller
  width = std::max<uint64_t>(std::min(sourceFeatureChannelMaxCount_, available), 1);
  height = 1;
  offset.x = offset.y = 0;
}

void NNGramMatrixCalculation::encodeProblem(CommandBuffer& commandBuffer, const UnaryProblem& problem) {
  GramMatrixProblem p{problem, alpha_};
#if defined(MPSNN_HAVE_CUDA)
  auto& list =
      device_->kind() == DeviceKind::CUDA ? cudaGramMatrixImplementations() : cpuGramMatrixImplementations();
#else
  auto& list = cpuGramMatrixImplementations();
#endif
  const auto& impl = chooseImplementation(list, p, className());
  gLastGramImplementation = impl.name;
  auto run = impl.run;
  commandBuffer.encodeWork(describeWork(className(), impl.name, problem),
                           [p, run](QueueContext& ctx) { run(p, ctx); });
}

}  // namespace mpsnn
