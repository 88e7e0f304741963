// CNNSoftMax and CNNLogSoftMax (spec 04 §1–§2) against the float64 reference and PyTorch, on the
// device selected by MPSNN_DEVICE. Every reference comparison runs on the fast implementations and,
// with MPSNN_FORCE_PLAIN=1, on the catch-all ones.
#include <array>
#include <cstdlib>
#include <limits>

#include "core/image_access.h"
#include "harness.h"
#include "kernels/softmax_impl.h"

namespace mpsnn {
namespace {

using test::close;
using test::device;
using test::queue;
using F = ImageFeatureChannelFormat;

const char* pathName(bool plain) { return plain ? "plain" : "fast"; }

std::shared_ptr<CNNKernel> makeSoftMax(bool logarithm) {
  if (logarithm) return CNNLogSoftMax::make(device());
  return CNNSoftMax::make(device());
}

void applyPlacement(CNNKernel& k, const ref::UnaryPlacement& p) {
  k.setOffset(p.offset);
  k.setClipRect(p.clipRect);
  k.setSourceFeatureChannelOffset(p.sourceFeatureChannelOffset);
  k.setSourceFeatureChannelMaxCount(p.sourceFeatureChannelMaxCount);
  k.setDestinationFeatureChannelOffset(p.destinationFeatureChannelOffset);
  k.setEdgeMode(p.edgeMode);
}

struct Outcome {
  ref::RefImage actual, expected;
};

/// Runs the kernel manually from `values` (stored as `srcFormat`) into a poisoned destination of
/// `dstShape` (n, h, w, c) in `dstFormat`; the expectation starts from the poison, so pixels and
/// channels the kernel must not touch are checked too.
Outcome runSoftMax(bool logarithm, const ref::RefImage& values, F srcFormat, F dstFormat,
                   std::array<int64_t, 4> dstShape, const ref::UnaryPlacement& placement) {
  auto kernel = makeSoftMax(logarithm);
  applyPlacement(*kernel, placement);
  ref::RefImage src = values;
  test::roundTo(src, srcFormat);  // the reference sees what the image holds
  auto srcImage = test::makeImage(src, srcFormat);
  auto dstImage =
      Image::make(device(), ImageDescriptor::make(dstFormat, uint64_t(dstShape[2]), uint64_t(dstShape[1]),
                                                  uint64_t(dstShape[3]), uint64_t(dstShape[0])));
  ref::RefImage poisoned = test::poison(*dstImage);
  auto cb = queue()->commandBuffer();
  kernel->encode(cb, srcImage, dstImage);
  cb->commit();
  cb->waitUntilCompleted();
  Outcome o{test::download(*dstImage), poisoned};
  ref::softMaxKernel(logarithm, placement, src, o.expected);
  test::roundTo(o.expected, dstFormat);
  return o;
}

/// Float32: exp and log are accurate to a few ulp; log-softmax values of large inputs carry the
/// rounding of x − m, relative to |x − m|.
::testing::AssertionResult matches(const Outcome& o, F dstFormat, bool logarithm) {
  switch (dstFormat) {
    case F::Float32:
      return close(o.actual, o.expected, 1e-5, logarithm ? 2e-6 : 1e-7);
    case F::Float16:
      return close(o.actual, o.expected, 2e-3, 1e-4);
    case F::Unorm8:
      return close(o.actual, o.expected, 0, 1.0 / 255 + 1e-6);
    default:
      return close(o.actual, o.expected, 1e-2, 1e-2);
  }
}

const char* nameOf(bool logarithm) { return logarithm ? "CNNLogSoftMax" : "CNNSoftMax"; }

// ---- the shared test bodies (each runs for CNNSoftMax and CNNLogSoftMax) ---------------------------

/// Channel counts on both sides of every CUDA path boundary (thread per pixel up to 16 channels, a
/// warp with registers up to 128 and 512, a warp that reloads above), odd sizes, several images.
void oddChannelCountsAndBatches(bool logarithm) {
  for (bool plain : {false, true}) {
    test::ForcePlain force(plain);
    for (int64_t channels : {1, 3, 5, 7, 13, 16, 17, 33, 100, 128, 129, 300, 513, 700}) {
      const int64_t n = channels > 200 ? 2 : 3, h = channels > 200 ? 2 : 3, w = channels > 200 ? 3 : 5;
      auto values = test::randomRefImage(n, h, w, channels, -4.0, 4.0);
      auto o = runSoftMax(logarithm, values, F::Float32, F::Float32, {n, h, w, channels}, {});
      EXPECT_TRUE(matches(o, F::Float32, logarithm))
          << nameOf(logarithm) << " " << pathName(plain) << " channels=" << channels;
    }
  }
}

void reducedPrecisionFormats(bool logarithm) {
  for (bool plain : {false, true}) {
    test::ForcePlain force(plain);
    for (int64_t channels : {5, 40}) {
      auto values = test::randomRefImage(2, 3, 4, channels, -3.0, 3.0);
      auto o = runSoftMax(logarithm, values, F::Float16, F::Float16, {2, 3, 4, channels}, {});
      EXPECT_TRUE(matches(o, F::Float16, logarithm)) << pathName(plain) << " float16 channels=" << channels;
    }
    // Mixed formats take the plain path on every backend.
    auto values = test::randomRefImage(2, 3, 4, 7, -3.0, 3.0);
    auto o = runSoftMax(logarithm, values, F::Float16, F::Float32, {2, 3, 4, 7}, {});
    EXPECT_TRUE(matches(o, F::Float16, logarithm)) << pathName(plain) << " float16 to float32";
    if (!logarithm) {  // log-softmax values are ≤ 0: a unorm destination would hold only zeros
      auto unorm = test::randomRefImage(2, 3, 4, 6, 0.0, 1.0);
      auto u = runSoftMax(logarithm, unorm, F::Unorm8, F::Unorm8, {2, 3, 4, 6}, {});
      EXPECT_TRUE(matches(u, F::Unorm8, logarithm)) << pathName(plain) << " unorm8";
    }
  }
}

/// Offsets partly outside the source (both edge modes), clip rectangles, image ranges, a channel
/// sub-range of the source written into a channel range of a wider destination.
void placements(bool logarithm) {
  auto values = test::randomRefImage(4, 6, 5, 12, -3.0, 3.0);
  for (bool plain : {false, true}) {
    test::ForcePlain force(plain);
    for (auto edge : {ImageEdgeMode::Zero, ImageEdgeMode::Clamp}) {
      std::vector<ref::UnaryPlacement> list;
      ref::UnaryPlacement p;
      p.edgeMode = edge;
      list.push_back(p);      // identity
      p.offset = {-2, 1, 1};  // partly outside the source; images 1..3
      list.push_back(p);
      p.offset = {3, -3, 0};
      p.clipRect = {{1, 2, 1}, {3, 3, 2}};  // a window of the destination, images 1..2
      list.push_back(p);
      p = ref::UnaryPlacement();
      p.edgeMode = edge;
      p.sourceFeatureChannelOffset = 2;  // softmax over channels 2..11 into destination channels 3..12
      p.destinationFeatureChannelOffset = 3;
      list.push_back(p);
      p.sourceFeatureChannelMaxCount = 5;  // over channels 2..6 only
      p.offset = {1, 1, 2};
      list.push_back(p);
      p.offset = {7, 9, 0};  // every destination pixel outside the source
      list.push_back(p);
      for (const auto& placement : list) {
        auto o = runSoftMax(logarithm, values, F::Float32, F::Float32, {4, 6, 5, 16}, placement);
        EXPECT_TRUE(matches(o, F::Float32, logarithm))
            << nameOf(logarithm) << " " << pathName(plain) << " edge=" << toString(edge)
            << " offset=" << placement.offset.x << "," << placement.offset.y << "," << placement.offset.z
            << " srcC0=" << placement.sourceFeatureChannelOffset
            << " max=" << placement.sourceFeatureChannelMaxCount;
      }
    }
  }
}

/// Inputs up to ±80 (exp(80) is near float32's limit, exp(160) beyond it): the max subtraction keeps
/// every result finite and accurate.
void largeInputsStayFinite(bool logarithm) {
  for (bool plain : {false, true}) {
    test::ForcePlain force(plain);
    for (int64_t channels : {3, 17, 40}) {
      auto values = test::randomRefImage(2, 3, 4, channels, -80.0, 80.0);
      values.data[0] = 80.0;
      values.data[1] = -80.0;
      auto o = runSoftMax(logarithm, values, F::Float32, F::Float32, {2, 3, 4, channels}, {});
      for (double v : o.actual.data)
        ASSERT_TRUE(std::isfinite(v)) << pathName(plain) << " channels=" << channels;
      EXPECT_TRUE(matches(o, F::Float32, logarithm)) << pathName(plain) << " channels=" << channels;
      auto half = runSoftMax(logarithm, values, F::Float16, F::Float16, {2, 3, 4, channels}, {});
      EXPECT_TRUE(matches(half, F::Float16, logarithm))
          << pathName(plain) << " float16 channels=" << channels;
    }
  }
}

/// Spec 04 §1: a NaN anywhere makes the pixel NaN; +inf gives inf − inf = NaN; −inf channels give 0
/// (log: −inf) while one channel is finite; all −inf gives NaN; one channel gives 1 (log: 0).
void specialValues(bool logarithm) {
  const double nan = std::numeric_limits<double>::quiet_NaN(), inf = std::numeric_limits<double>::infinity();
  for (int64_t channels : {4, 40}) {  // one thread per pixel and one warp per pixel on CUDA
    ref::RefImage src(1, 1, 5, channels);
    src.data = test::randomValues(src.data.size(), -2.0, 2.0);
    auto at = [&](int64_t x, int64_t c) -> double& { return src.at(0, 0, x, c); };
    at(0, 1) = nan;
    at(1, 2) = inf;
    at(2, 0) = -inf;
    for (int64_t c = 0; c < channels; ++c) at(3, c) = -inf;
    // pixel 4: all finite
    for (bool plain : {false, true}) {
      test::ForcePlain force(plain);
      auto o = runSoftMax(logarithm, src, F::Float32, F::Float32, {1, 1, 5, channels}, {});
      for (int64_t c = 0; c < channels; ++c) {
        EXPECT_TRUE(std::isnan(o.actual.at(0, 0, 0, c))) << pathName(plain) << " NaN pixel channel " << c;
        EXPECT_TRUE(std::isnan(o.actual.at(0, 0, 1, c))) << pathName(plain) << " +inf pixel channel " << c;
        EXPECT_TRUE(std::isnan(o.actual.at(0, 0, 3, c)))
            << pathName(plain) << " all -inf pixel channel " << c;
        EXPECT_TRUE(std::isfinite(o.actual.at(0, 0, 4, c))) << pathName(plain);
      }
      EXPECT_EQ(o.actual.at(0, 0, 2, 0), logarithm ? -inf : 0.0) << pathName(plain);
      EXPECT_TRUE(std::isfinite(o.actual.at(0, 0, 2, 1))) << pathName(plain);
      EXPECT_TRUE(matches(o, F::Float32, logarithm)) << pathName(plain) << " channels=" << channels;

      ref::RefImage one = test::randomRefImage(2, 3, 3, 1, -50.0, 50.0);
      auto single = runSoftMax(logarithm, one, F::Float32, F::Float32, {2, 3, 3, 1}, {});
      for (double v : single.actual.data) EXPECT_EQ(v, logarithm ? 0.0 : 1.0) << pathName(plain) << " D = 1";
    }
  }
}

/// Several images per Image, encodeBatch, and auto mode (size preserved, channels = offset + C_read).
void batchesAndAutoMode(bool logarithm) {
  auto kernel = makeSoftMax(logarithm);
  ImageBatch sources, destinations;
  std::vector<ref::RefImage> values;
  for (int i = 0; i < 3; ++i) {
    values.push_back(test::randomRefImage(1, 3, 4, 13, -3.0, 3.0));
    sources.push_back(test::makeImage(values.back()));
    destinations.push_back(Image::make(device(), ImageDescriptor::make(F::Float32, 4, 3, 13)));
    test::poison(*destinations.back());
  }
  auto cb = queue()->commandBuffer();
  kernel->encodeBatch(cb, sources, destinations);
  kernel->setDestinationFeatureChannelOffset(2);
  ImageBatch autos = kernel->encodeBatch(cb, sources);
  ASSERT_EQ(autos.size(), 3u);
  EXPECT_TRUE(autos[0]->isTemporary());
  EXPECT_EQ(autos[0]->descriptor(), ImageDescriptor::make(F::Float32, 4, 3, 15));
  kernel->setDestinationFeatureChannelOffset(0);
  kernel->setDestinationImageAllocator(Image::defaultAllocator());
  ImagePtr autoOne = kernel->encode(cb, sources[1]);
  cb->commit();
  cb->waitUntilCompleted();
  for (int i = 0; i < 3; ++i) {
    ref::RefImage expected(1, 3, 4, 13);
    ref::softMaxKernel(logarithm, {}, values[size_t(i)], expected);
    EXPECT_TRUE(close(test::download(*destinations[size_t(i)]), expected, 1e-5, 2e-6)) << "batch item " << i;
    if (i == 1) {
      EXPECT_TRUE(close(test::download(*autoOne), expected, 1e-5, 2e-6)) << "auto mode";
    }
  }
  // A multi-image source and destination, processed from image 1 into image 0.
  auto multi = test::randomRefImage(3, 2, 3, 9, -3.0, 3.0);
  ref::UnaryPlacement p;
  p.offset = {0, 0, 1};
  p.clipRect = {{0, 0, 0}, {3, 2, 2}};
  auto o = runSoftMax(logarithm, multi, F::Float32, F::Float32, {2, 2, 3, 9}, p);
  EXPECT_TRUE(matches(o, F::Float32, logarithm));
}

void rejectsBadInput(bool logarithm) {
  auto src = test::makeImage(test::randomRefImage(2, 3, 3, 4));
  auto dst = Image::make(device(), ImageDescriptor::make(F::Float32, 3, 3, 4, 2));
  ref::RefImage poisoned = test::poison(*dst);
  auto expectRejected = [&](CNNKernel& kernel, const char* property) {
    auto cb = queue()->commandBuffer();
    try {
      kernel.encode(cb, src, dst);
      ADD_FAILURE() << kernel.className() << ": no InvalidArgument for " << property;
    } catch (const InvalidArgument& e) {
      EXPECT_NE(std::string(e.what()).find(property), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find(kernel.className()), std::string::npos) << e.what();
    }
    cb->commit();
    cb->waitUntilCompleted();
    EXPECT_TRUE(close(test::download(*dst), poisoned, 0, 0))
        << "destination written after rejecting " << property;
  };
  for (auto edge : {ImageEdgeMode::Mirror, ImageEdgeMode::MirrorWithEdge, ImageEdgeMode::Constant}) {
    auto k = makeSoftMax(logarithm);
    k->setEdgeMode(edge);
    expectRejected(*k, "edgeMode");
  }
  {
    auto k = makeSoftMax(logarithm);
    k->setSourceFeatureChannelOffset(4);
    expectRejected(*k, "sourceFeatureChannelOffset");
  }
  {
    auto k = makeSoftMax(logarithm);
    k->setSourceFeatureChannelMaxCount(0);
    expectRejected(*k, "sourceFeatureChannelMaxCount");
  }
  {
    auto k = makeSoftMax(logarithm);
    k->setDestinationFeatureChannelOffset(1);  // 4 channels do not fit from channel 1
    expectRejected(*k, "destinationFeatureChannelOffset");
  }
  {
    auto k = makeSoftMax(logarithm);
    k->setOffset({0, 0, -1});
    expectRejected(*k, "offset.z");
  }
  {
    auto k = makeSoftMax(logarithm);
    k->setClipRect({{0, 0, 1}, {3, 3, 2}});
    expectRejected(*k, "clipRect");
  }
  for (Offset far : {Offset{std::numeric_limits<int64_t>::max() - 1, 0, 0},
                     Offset{0, std::numeric_limits<int64_t>::min(), 0}, Offset{int64_t(1) << 62, 0, 0}}) {
    auto k = makeSoftMax(logarithm);
    k->setOffset(far);
    expectRejected(*k, far.x ? "offset.x" : "offset.y");
  }
  {
    setStrictValidation(true);
    auto k = makeSoftMax(logarithm);
    k->setSourceFeatureChannelOffset(1);
    k->setSourceFeatureChannelMaxCount(2);
    expectRejected(*k, "sourceFeatureChannelOffset");
    setStrictValidation(false);
  }
  {
    auto k = makeSoftMax(logarithm);
    auto cb = queue()->commandBuffer();
    EXPECT_THROW(k->encode(cb, src, src), InvalidArgument);  // aliasing
    EXPECT_THROW(k->encode(cb, nullptr, dst), InvalidArgument);
    EXPECT_THROW(k->encode(cb, src, ImagePtr()), InvalidArgument);
    EXPECT_THROW(k->encode(nullptr, src, dst), InvalidArgument);
    cb->commit();
    cb->waitUntilCompleted();
    EXPECT_TRUE(close(test::download(*dst), poisoned, 0, 0));
  }
}

/// Cases from tests/pytorch/gen_softmax_normalization.py: torch.softmax / log_softmax over dim 1.
void pyTorchParity(bool logarithm) {
  int used = 0;
  for (const auto& tc : test::readTorchCases("softmax_normalization.txt")) {
    const int op = int(tc.scalars.at("op"));
    if (op != (logarithm ? 1 : 0)) continue;
    const auto& shape = tc.shapes.at("input");
    ref::RefImage input(shape[0], shape[1], shape[2], shape[3]);
    input.data = tc.arrays.at("input");
    ref::RefImage expected = input;
    expected.data = tc.arrays.at("output");
    for (bool plain : {false, true}) {
      test::ForcePlain force(plain);
      auto kernel = makeSoftMax(logarithm);
      auto src = test::makeImage(input);
      auto dst = Image::make(device(), src->descriptor());
      test::poison(*dst);
      auto cb = queue()->commandBuffer();
      kernel->encode(cb, src, dst);
      cb->commit();
      cb->waitUntilCompleted();
      // PyTorch computed in float64 from the float64 inputs; the kernel rounds them to float32 first.
      EXPECT_TRUE(close(test::download(*dst), expected, 2e-5, 2e-5))
          << "case " << tc.name << " " << pathName(plain);
    }
    ++used;
  }
  EXPECT_GT(used, 0) << "no " << nameOf(logarithm) << " cases";
}

/// The float32 fast implementation, not the catch-all, serves ordinary problems on the CPU (the
/// reference tests would pass on the catch-all alone, so this guards the fast path's coverage).
void fastPathIsChosen(bool logarithm) {
  auto src = Image::make(device(), ImageDescriptor::make(F::Float32, 5, 4, 17, 2));
  auto dst = Image::make(device(), ImageDescriptor::make(F::Float32, 5, 4, 17, 2));
  detail::SoftMaxProblem p;
  p.io.src = detail::ImageAccess::view(*src, "test");
  p.io.dst = detail::ImageAccess::view(*dst, "test");
  p.logarithm = logarithm;
  EXPECT_STREQ(detail::chooseImplementation(detail::cpuSoftMaxImplementations(), p, "test").name, "cpu:rows");
  p.io.src.format = F::Float16;
  EXPECT_STREQ(detail::chooseImplementation(detail::cpuSoftMaxImplementations(), p, "test").name,
               "cpu:plain");
}

// ---- the suites ------------------------------------------------------------------------------------

TEST(CNNSoftMax, OddChannelCountsAndBatchesMatchReference) { oddChannelCountsAndBatches(false); }
TEST(CNNSoftMax, Float16AndUnorm8MatchReference) { reducedPrecisionFormats(false); }
TEST(CNNSoftMax, OffsetsClipRectChannelRangesAndEdgeModes) { placements(false); }
TEST(CNNSoftMax, LargeInputsStayFiniteAndAccurate) { largeInputsStayFinite(false); }
TEST(CNNSoftMax, NaNInfinityAndSingleChannel) { specialValues(false); }
TEST(CNNSoftMax, MultiImageBatchAndAutoMode) { batchesAndAutoMode(false); }
TEST(CNNSoftMax, RejectsBadInputAndLeavesTheDestinationUntouched) { rejectsBadInput(false); }
TEST(CNNSoftMax, PyTorchParity) { pyTorchParity(false); }
TEST(CNNSoftMax, FastPathIsChosenForFloat32) { fastPathIsChosen(false); }

TEST(CNNLogSoftMax, OddChannelCountsAndBatchesMatchReference) { oddChannelCountsAndBatches(true); }
TEST(CNNLogSoftMax, Float16MatchesReference) { reducedPrecisionFormats(true); }
TEST(CNNLogSoftMax, OffsetsClipRectChannelRangesAndEdgeModes) { placements(true); }
TEST(CNNLogSoftMax, LargeInputsStayFiniteAndAccurate) { largeInputsStayFinite(true); }
TEST(CNNLogSoftMax, NaNInfinityAndSingleChannel) { specialValues(true); }
TEST(CNNLogSoftMax, MultiImageBatchAndAutoMode) { batchesAndAutoMode(true); }
TEST(CNNLogSoftMax, RejectsBadInputAndLeavesTheDestinationUntouched) { rejectsBadInput(true); }
TEST(CNNLogSoftMax, PyTorchParity) { pyTorchParity(true); }
TEST(CNNLogSoftMax, FastPathIsChosenForFloat32) { fastPathIsChosen(true); }

TEST(CNNSoftMax, ClassNamesAndDefaults) {
  auto softmax = CNNSoftMax::make(device());
  auto logSoftmax = CNNLogSoftMax::make(device());
  EXPECT_STREQ(softmax->className(), "CNNSoftMax");
  EXPECT_STREQ(logSoftmax->className(), "CNNLogSoftMax");
  for (CNNKernel* k : {static_cast<CNNKernel*>(softmax.get()), static_cast<CNNKernel*>(logSoftmax.get())}) {
    EXPECT_EQ(k->kernelWidth(), 1u);
    EXPECT_EQ(k->kernelHeight(), 1u);
    EXPECT_EQ(k->edgeMode(), ImageEdgeMode::Zero);
    EXPECT_TRUE(isRectNoClip(k->clipRect()));
    EXPECT_EQ(k->padding()->paddingMethod(), NNPaddingMethod::AlignCentered |
                                                 NNPaddingMethod::AddRemainderToTopLeft |
                                                 NNPaddingMethod::SizeSame);
  }
  EXPECT_THROW(CNNSoftMax(nullptr), InvalidArgument);
}

}  // namespace
}  // namespace mpsnn
