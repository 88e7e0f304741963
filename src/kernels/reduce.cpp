// The reductions (spec 06 §4): source regions, result shapes and placement checks, and dispatch.
#include "mpsnn/reduce.h"

#include <algorithm>

#include "core/image_access.h"
#include "kernels/describe.h"
#include "kernels/reduce_impl.h"
#include "mpsnn/error.h"

namespace mpsnn {

using namespace detail;

namespace {

std::string str(uint64_t v) { return v == UINT64_MAX ? std::string("UINT64_MAX") : std::to_string(v); }

std::string regionString(const IntRegion& r) {
  if (isRectNoClip(r)) return "RectNoClip";
  return "{origin (" + str(r.origin.x) + ", " + str(r.origin.y) + ", " + str(r.origin.z) + "), size (" +
         str(r.size.width) + ", " + str(r.size.height) + ", " + str(r.size.depth) + ")}";
}

/// A source rectangle intersected with an image: columns [x0, x0 + w), rows [y0, y0 + h), images
/// [z0, z0 + depth).
struct SourceRegion {
  uint64_t x0, y0, w, h, z0, depth;
};

/// Spec 06 §4.1: `clip` ∩ the image; an empty intersection is invalid. The comparisons are written so
/// that no sum can wrap around.
SourceRegion sourceRegion(const std::string& who, const char* property, const IntRegion& clip,
                          const Image& image) {
  auto axis = [&](uint64_t origin, uint64_t size, uint64_t extent, const char* name, uint64_t& first,
                  uint64_t& count) {
    if (origin >= extent || size == 0)
      throw InvalidArgument(who + ": " + property + " = " + regionString(clip) +
                            " does not intersect the source (" + name + " extent " + str(extent) +
                            "): the reduced region is empty");
    first = origin;
    count = std::min(size, extent - origin);
  };
  SourceRegion r{};
  axis(clip.origin.x, clip.size.width, image.width(), "width", r.x0, r.w);
  axis(clip.origin.y, clip.size.height, image.height(), "height", r.y0, r.h);
  axis(clip.origin.z, clip.size.depth, image.numberOfImages(), "numberOfImages", r.z0, r.depth);
  return r;
}

/// Throws unless a result of outW × outH fits in `destination` at clipRect.origin (spec 06 §4.1), and
/// unless an explicit clipRect depth stays within the images the source regions provide.
void requireResultFits(const std::string& who, const IntRegion& clipRect, const Image& destination,
                       uint64_t outW, uint64_t outH, uint64_t sourceDepth) {
  if (clipRect.origin.x > destination.width() || outW > destination.width() - clipRect.origin.x ||
      clipRect.origin.y > destination.height() || outH > destination.height() - clipRect.origin.y)
    throw InvalidArgument(who + ": destination " + str(destination.width()) + "x" +
                          str(destination.height()) + " cannot hold the " + str(outW) + "x" + str(outH) +
                          " result at clipRect.origin (" + str(clipRect.origin.x) + ", " +
                          str(clipRect.origin.y) + ")");
  if (!isRectNoClip(clipRect) && clipRect.size.depth != UINT64_MAX && clipRect.size.depth > sourceDepth)
    throw InvalidArgument(who + ": clipRect.size.depth = " + str(clipRect.size.depth) +
                          " exceeds the source images of the reduced region (" + str(sourceDepth) + ")");
}

std::string describeReduce(const char* kernel, const char* implementation,
                           const std::vector<const ImageView*>& views, const std::string& extra) {
  std::string s = std::string(kernel) + ",impl=" + implementation;
  for (const ImageView* v : views) {
    s += ',';
    s += describeView(*v);
  }
  s += ',';
  s += extra;
  return s;
}

const char* axisName(ReduceAxis a) {
  static const char* names[] = {"row", "column", "featureChannels", "spatial"};
  return names[uint32_t(a)];
}
const char* operationName(ReduceOperation o) {
  static const char* names[] = {"min", "max", "sum", "mean", "argmin", "argmax"};
  return names[uint32_t(o)];
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// NNReduceUnary

NNReduceUnary::NNReduceUnary(DevicePtr device, Axis axis, Operation operation)
    : CNNKernel(std::move(device)), axis_(axis), operation_(operation) {}

uint64_t NNReduceUnary::destinationFeatureChannels(uint64_t cRead) const {
  return axis_ == Axis::FeatureChannels ? 1 : cRead;
}

Offset NNReduceUnary::sourceOffset(const Image& source) const {
  const SourceRegion r = sourceRegion(className(), "clipRectSource", clipRectSource_, source);
  return {int64_t(r.x0), int64_t(r.y0), int64_t(r.z0)};
}

void NNReduceUnary::validateImages(const Image& source, const Image& destination) const {
  CNNKernel::validateImages(source, destination);  // edgeMode Zero or Clamp (it reads only inside R)
  const SourceRegion r = sourceRegion(className(), "clipRectSource", clipRectSource_, source);
  const uint64_t outW = axis_ == Axis::Row || axis_ == Axis::Spatial ? 1 : r.w;
  const uint64_t outH = axis_ == Axis::Column || axis_ == Axis::Spatial ? 1 : r.h;
  requireResultFits(className(), clipRect_, destination, outW, outH, r.depth);
}

void NNReduceUnary::autoGeometry(const Image& source, NNPaddingMethod, uint64_t& width, uint64_t& height,
                                 Offset& offset) const {
  (void)offset;  // reductions do not use offset; auto mode leaves it as it is
  const SourceRegion r = sourceRegion(className(), "clipRectSource", clipRectSource_, source);
  width = axis_ == Axis::Row || axis_ == Axis::Spatial ? 1 : r.w;
  height = axis_ == Axis::Column || axis_ == Axis::Spatial ? 1 : r.h;
}

void NNReduceUnary::encodeProblem(CommandBuffer& cb, const UnaryProblem& problem) {
  // problem.src holds the processed source images from clipRectSource.origin.z, full width and height:
  // narrow it to R (validated non-empty), and the destination to the result's shape.
  const ImageView& full = problem.src;
  const int64_t x0 = int64_t(clipRectSource_.origin.x), y0 = int64_t(clipRectSource_.origin.y);
  const int64_t w = int64_t(std::min<uint64_t>(clipRectSource_.size.width, uint64_t(full.w - x0)));
  const int64_t h = int64_t(std::min<uint64_t>(clipRectSource_.size.height, uint64_t(full.h - y0)));
  const int64_t n = int64_t(std::min<uint64_t>(clipRectSource_.size.depth, uint64_t(problem.dst.n)));
  ReduceProblem p;
  p.axis = ReduceAxis(uint32_t(axis_));
  p.operation = ReduceOperation(uint32_t(operation_));
  p.weight = resultWeight();
  p.src = subView(full, 0, n, y0, h, x0, w, 0, full.c);
  const int64_t outW = axis_ == Axis::Row || axis_ == Axis::Spatial ? 1 : w;
  const int64_t outH = axis_ == Axis::Column || axis_ == Axis::Spatial ? 1 : h;
  p.dst = subView(problem.dst, 0, n, 0, std::min(problem.dst.h, outH), 0, std::min(problem.dst.w, outW), 0,
                  problem.dst.c);
  if (p.dst.empty()) return;  // clipRect cut the whole result
#if defined(MPSNN_HAVE_CUDA)
  auto& list = device_->kind() == DeviceKind::CUDA ? cudaReduceImplementations() : cpuReduceImplementations();
#else
  auto& list = cpuReduceImplementations();
#endif
  const auto& impl = chooseImplementation(list, p, className());
  auto run = impl.run;
  cb.encodeWork(describeReduce(className(), impl.name, {&p.src, &p.dst},
                               std::string(axisName(p.axis)) + "," + operationName(p.operation)),
                [p, run](QueueContext& ctx) { run(p, ctx); });
}

// ---------------------------------------------------------------------------------------------
// NNReduceBinary and the weighted feature-channel reductions

NNReduceBinary::NNReduceBinary(DevicePtr device) : CNNBinaryKernel(std::move(device)) {}

Offset NNReduceBinary::primarySourceOffset(const Image& primary) const {
  const SourceRegion r = sourceRegion(className(), "primarySourceClipRect", primarySourceClipRect_, primary);
  return {int64_t(r.x0), int64_t(r.y0), int64_t(r.z0)};
}

Offset NNReduceBinary::secondarySourceOffset(const Image& secondary) const {
  const SourceRegion r =
      sourceRegion(className(), "secondarySourceClipRect", secondarySourceClipRect_, secondary);
  return {int64_t(r.x0), int64_t(r.y0), int64_t(r.z0)};
}

NNReduceFeatureChannelsAndWeights::NNReduceFeatureChannelsAndWeights(DevicePtr device, Divisor divisor)
    : NNReduceBinary(std::move(device)), divisor_(divisor) {}

uint64_t NNReduceFeatureChannelsAndWeights::destinationFeatureChannels(uint64_t, uint64_t) const { return 1; }

namespace {
/// Spec 06 §4.2: the weights' region is the data's size or 1 × 1.
void requireWeightsShape(const std::string& who, const SourceRegion& data, const SourceRegion& weights) {
  const bool same = weights.w == data.w && weights.h == data.h;
  const bool single = weights.w == 1 && weights.h == 1;
  if (!same && !single)
    throw InvalidArgument(who + ": secondarySourceClipRect selects a " + str(weights.w) + "x" +
                          str(weights.h) + " weights region for a " + str(data.w) + "x" + str(data.h) +
                          " primary region (it must be the same size or 1x1)");
}
}  // namespace

void NNReduceFeatureChannelsAndWeights::validateImages(const Image& primary, const Image& secondary,
                                                       const Image& destination) const {
  CNNBinaryKernel::validateImages(primary, secondary, destination);  // edge modes
  const std::string who = className();
  const uint64_t cp = std::min(primarySourceFeatureChannelMaxCount_,
                               primary.featureChannels() - primarySourceFeatureChannelOffset_);
  const uint64_t cs = std::min(secondarySourceFeatureChannelMaxCount_,
                               secondary.featureChannels() - secondarySourceFeatureChannelOffset_);
  if (cp != cs)
    throw InvalidArgument(who + ": primary reads " + str(cp) +
                          " feature channels and secondary (weights) reads " + str(cs) +
                          " (they must be equal)");
  const SourceRegion pr = sourceRegion(who, "primarySourceClipRect", primarySourceClipRect_, primary);
  const SourceRegion sr = sourceRegion(who, "secondarySourceClipRect", secondarySourceClipRect_, secondary);
  requireWeightsShape(who, pr, sr);
  requireResultFits(who, clipRect_, destination, pr.w, pr.h, std::min(pr.depth, sr.depth));
}

ImageDescriptor NNReduceFeatureChannelsAndWeights::destinationImageDescriptor(
    const ImageBatch& sourceImages, const StateBatch& sourceStates) {
  const std::string who = className();
  if (sourceImages.size() < 2 || !sourceImages[0] || !sourceImages[1])
    throw InvalidArgument(who + ": destinationImageDescriptor needs primary and secondary source images");
  const NNPaddingMethod method = padding_->paddingMethod();
  validatePaddingMethod(method, className());
  const Image& p = *sourceImages[0];
  const Image& s = *sourceImages[1];
  const SourceRegion pr = sourceRegion(who, "primarySourceClipRect", primarySourceClipRect_, p);
  const SourceRegion sr = sourceRegion(who, "secondarySourceClipRect", secondarySourceClipRect_, s);
  requireWeightsShape(who, pr, sr);
  if (destinationFeatureChannelOffset_ > UINT64_MAX - 1)
    throw InvalidArgument(who + ": destinationFeatureChannelOffset = " +
                          str(destinationFeatureChannelOffset_) + " is too large");
  ImageDescriptor d =
      ImageDescriptor::make(p.featureChannelFormat(), pr.w, pr.h, destinationFeatureChannelOffset_ + 1, 1);
  if (any(method & NNPaddingMethod::Custom))
    d = padding_->destinationImageDescriptor(sourceImages, sourceStates, *this, d);
  return d;
}

void NNReduceFeatureChannelsAndWeights::encodeProblem(CommandBuffer& cb, const BinaryProblem& problem) {
  // Narrow both sources to their regions (validated), the destination to the w × h result.
  const IntRegion& pc = primarySourceClipRect_;
  const IntRegion& sc = secondarySourceClipRect_;
  const ImageView& pv = problem.primary;
  const ImageView& sv = problem.secondary;
  const int64_t pw = int64_t(std::min<uint64_t>(pc.size.width, uint64_t(pv.w) - pc.origin.x));
  const int64_t ph = int64_t(std::min<uint64_t>(pc.size.height, uint64_t(pv.h) - pc.origin.y));
  const int64_t sw = int64_t(std::min<uint64_t>(sc.size.width, uint64_t(sv.w) - sc.origin.x));
  const int64_t sh = int64_t(std::min<uint64_t>(sc.size.height, uint64_t(sv.h) - sc.origin.y));
  const int64_t n = int64_t(std::min({pc.size.depth, sc.size.depth, uint64_t(problem.dst.n)}));
  WeightsReduceProblem p;
  p.divisor = WeightsDivisor(uint32_t(divisor_));
  p.data = subView(pv, 0, n, int64_t(pc.origin.y), ph, int64_t(pc.origin.x), pw, 0, pv.c);
  p.weights = subView(sv, 0, n, int64_t(sc.origin.y), sh, int64_t(sc.origin.x), sw, 0, sv.c);
  p.dst = subView(problem.dst, 0, n, 0, std::min(problem.dst.h, ph), 0, std::min(problem.dst.w, pw), 0, 1);
  if (p.dst.empty()) return;
#if defined(MPSNN_HAVE_CUDA)
  auto& list = device_->kind() == DeviceKind::CUDA ? cudaWeightsReduceImplementations()
                                                   : cpuWeightsReduceImplementations();
#else
  auto& list = cpuWeightsReduceImplementations();
#endif
  const auto& impl = chooseImplementation(list, p, className());
  auto run = impl.run;
  static const char* divisors[] = {"dot", "dot/nonZeroWeights", "dot/channels"};
  cb.encodeWork(
      describeReduce(className(), impl.name, {&p.data, &p.weights, &p.dst}, divisors[uint32_t(p.divisor)]),
      [p, run](QueueContext& ctx) { run(p, ctx); });
}

}  // namespace mpsnn
