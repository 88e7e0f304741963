// The normalization kernels (spec 04 §3–§7): CNNCrossChannelNormalization, CNNSpatialNormalization,
// CNNLocalContrastNormalization, CNNBatchNormalization and CNNInstanceNormalization with their data
// sources, against the float64 reference and PyTorch, on the device selected by MPSNN_DEVICE. Every
// reference comparison runs on the fast implementations and, with MPSNN_FORCE_PLAIN=1, on the
// catch-all ones.
#include <array>
#include <cfloat>
#include <cstdlib>
#include <limits>

#include "core/image_access.h"
#include "harness.h"
#include "kernels/normalization_impl.h"

namespace mpsnn {
namespace {

using test::close;
using test::device;
using test::queue;
using F = ImageFeatureChannelFormat;

const char* pathName(bool plain) { return plain ? "plain" : "fast"; }

void applyPlacement(CNNKernel& k, const ref::UnaryPlacement& p) {
  k.setOffset(p.offset);
  k.setClipRect(p.clipRect);
  k.setSourceFeatureChannelOffset(p.sourceFeatureChannelOffset);
  k.setSourceFeatureChannelMaxCount(p.sourceFeatureChannelMaxCount);
  k.setDestinationFeatureChannelOffset(p.destinationFeatureChannelOffset);
  k.setEdgeMode(p.edgeMode);
}

std::string describe(const ref::UnaryPlacement& p) {
  std::ostringstream s;
  s << "edge=" << toString(p.edgeMode) << " offset=" << p.offset.x << "," << p.offset.y << "," << p.offset.z
    << " srcC0=" << p.sourceFeatureChannelOffset << " max=" << p.sourceFeatureChannelMaxCount
    << " dstC0=" << p.destinationFeatureChannelOffset;
  if (!isRectNoClip(p.clipRect))
    s << " clip=" << p.clipRect.origin.x << "," << p.clipRect.origin.y << "," << p.clipRect.origin.z << "+"
      << p.clipRect.size.width << "x" << p.clipRect.size.height << "x" << p.clipRect.size.depth;
  return s.str();
}

struct Outcome {
  ref::RefImage actual, expected;
};

/// Runs `kernel` with `placement` manually from `values` (stored as `srcFormat`) into a poisoned
/// destination of `dstShape` (n, h, w, c) in `dstFormat`. `reference(placement, src, expected)`
/// writes the expected values over the poison, so untouched pixels and channels are checked too.
template <class Reference>
Outcome runKernel(CNNKernel& kernel, const ref::RefImage& values, F srcFormat, F dstFormat,
                  std::array<int64_t, 4> dstShape, const ref::UnaryPlacement& placement,
                  Reference reference) {
  applyPlacement(kernel, placement);
  ref::RefImage src = values;
  test::roundTo(src, srcFormat);  // the reference sees what the image holds
  auto srcImage = test::makeImage(src, srcFormat);
  auto dstImage =
      Image::make(device(), ImageDescriptor::make(dstFormat, uint64_t(dstShape[2]), uint64_t(dstShape[1]),
                                                  uint64_t(dstShape[3]), uint64_t(dstShape[0])));
  ref::RefImage poisoned = test::poison(*dstImage);
  auto cb = queue()->commandBuffer();
  kernel.encode(cb, srcImage, dstImage);
  cb->commit();
  cb->waitUntilCompleted();
  Outcome o{test::download(*dstImage), poisoned};
  reference(placement, src, o.expected);
  test::roundTo(o.expected, dstFormat);
  return o;
}

/// Float32 results agree to float32 rounding of the intermediate values; reduced-precision
/// destinations may round the two to neighbouring values.
::testing::AssertionResult matches(const Outcome& o, F dstFormat, double atol32 = 1e-6) {
  switch (dstFormat) {
    case F::Float32:
      return close(o.actual, o.expected, 1e-5, atol32);
    case F::Float16:
      return close(o.actual, o.expected, 2e-3, 2e-3);
    case F::Unorm8:
      return close(o.actual, o.expected, 0, 1.0 / 255 + 1e-6);
    default:
      return close(o.actual, o.expected, 1e-2, 1e-2);
  }
}

/// Placements every kernel is tried with: offsets partly outside the source, a clip rectangle and
/// image range, a channel range of the source written into a channel range of a wider destination.
/// The source has 4 images of 6×5 pixels with 12 channels, the destination 4 images of 6×5 with 16.
std::vector<ref::UnaryPlacement> placementsFor(ImageEdgeMode edge) {
  std::vector<ref::UnaryPlacement> list;
  ref::UnaryPlacement p;
  p.edgeMode = edge;
  list.push_back(p);
  p.offset = {-2, 1, 1};
  list.push_back(p);
  p.offset = {3, -3, 0};
  p.clipRect = {{1, 2, 1}, {3, 3, 2}};
  list.push_back(p);
  p = ref::UnaryPlacement();
  p.edgeMode = edge;
  p.sourceFeatureChannelOffset = 2;
  p.destinationFeatureChannelOffset = 3;
  list.push_back(p);
  p.sourceFeatureChannelMaxCount = 5;
  p.offset = {1, 1, 2};
  list.push_back(p);
  p.offset = {7, 9, 0};  // every destination pixel (window centre) outside the source
  list.push_back(p);
  return list;
}

/// Expects `action` to throw InvalidArgument naming `who` and `property`.
template <class Action>
void expectInvalid(const char* who, const char* property, Action action) {
  try {
    action();
    ADD_FAILURE() << who << ": no InvalidArgument for " << property;
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find(who), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find(property), std::string::npos) << e.what();
  }
}

/// Encodes `kernel` from `src` into `dst`, expecting a rejection naming the class and `property`,
/// and checks that `dst` still holds `poisoned`.
void expectEncodeRejected(CNNKernel& kernel, const ImagePtr& src, const ImagePtr& dst,
                          const ref::RefImage& poisoned, const char* property) {
  auto cb = queue()->commandBuffer();
  expectInvalid(kernel.className(), property, [&] { kernel.encode(cb, src, dst); });
  cb->commit();
  cb->waitUntilCompleted();
  EXPECT_TRUE(close(test::download(*dst), poisoned, 0, 0))
      << "destination written after rejecting " << property;
}

/// The rejections every kernel of this file makes at encode (spec 00 §1.5, §4.3, §4.4 and the
/// coordinate range CHOICE). `make` returns a fresh kernel; the source has `channels` channels.
template <class Make>
void commonEncodeRejections(Make make, int64_t channels) {
  auto src = test::makeImage(test::randomRefImage(2, 3, 3, channels));
  auto dst = Image::make(device(), ImageDescriptor::make(F::Float32, 3, 3, uint64_t(channels), 2));
  ref::RefImage poisoned = test::poison(*dst);
  for (auto edge : {ImageEdgeMode::Mirror, ImageEdgeMode::MirrorWithEdge, ImageEdgeMode::Constant}) {
    auto k = make();
    k->setEdgeMode(edge);
    expectEncodeRejected(*k, src, dst, poisoned, "edgeMode");
  }
  {
    auto k = make();
    k->setSourceFeatureChannelOffset(uint64_t(channels));
    expectEncodeRejected(*k, src, dst, poisoned, "sourceFeatureChannelOffset");
  }
  {
    auto k = make();
    k->setDestinationFeatureChannelOffset(1);
    expectEncodeRejected(*k, src, dst, poisoned, "destinationFeatureChannelOffset");
  }
  {
    auto k = make();
    k->setOffset({0, 0, -1});
    expectEncodeRejected(*k, src, dst, poisoned, "offset.z");
  }
  {
    auto k = make();
    k->setClipRect({{0, 0, 1}, {3, 3, 2}});
    expectEncodeRejected(*k, src, dst, poisoned, "clipRect");
  }
  for (Offset far : {Offset{std::numeric_limits<int64_t>::max(), 0, 0},
                     Offset{0, std::numeric_limits<int64_t>::min(), 0}, Offset{-(int64_t(1) << 62), 0, 0}}) {
    auto k = make();
    k->setOffset(far);
    expectEncodeRejected(*k, src, dst, poisoned, far.x ? "offset.x" : "offset.y");
  }
  {
    auto k = make();
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

/// The implementation the CPU list picks for a problem over two fresh images (the reference tests
/// would pass on the catch-all alone, so this guards the fast paths' coverage).
template <class Problem>
std::string chosenOnCpu(detail::ImplementationList<Problem>& list, Problem p, F srcFormat, int64_t channels) {
  auto src = Image::make(device(), ImageDescriptor::make(srcFormat, 5, 4, uint64_t(channels), 2));
  auto dst = Image::make(device(), ImageDescriptor::make(F::Float32, 5, 4, uint64_t(channels), 2));
  p.io.src = detail::ImageAccess::view(*src, "test");
  p.io.dst = detail::ImageAccess::view(*dst, "test");
  return detail::chooseImplementation(list, p, "test").name;
}

bool listHas(const auto& list, const char* name) {
  for (const auto& impl : list)
    if (std::string(impl.name) == name) return true;
  return false;
}

// =================================================================================================
// CNNCrossChannelNormalization

struct LrnParams {
  double alpha, beta, delta;
};

Outcome runCrossChannel(uint64_t size, const LrnParams& lrn, const ref::RefImage& values, F srcFormat,
                        F dstFormat, std::array<int64_t, 4> dstShape, const ref::UnaryPlacement& placement) {
  auto kernel = CNNCrossChannelNormalization::make(device(), size);
  kernel->setAlpha(float(lrn.alpha));
  kernel->setBeta(float(lrn.beta));
  kernel->setDelta(float(lrn.delta));
  ref::CrossChannelNormalizationSpec spec{int64_t(size), double(kernel->alpha()), double(kernel->beta()),
                                          double(kernel->delta())};
  return runKernel(*kernel, values, srcFormat, dstFormat, dstShape, placement,
                   [&](const ref::UnaryPlacement& p, const ref::RefImage& src, ref::RefImage& expected) {
                     ref::crossChannelNormalizationKernel(spec, p, src, expected);
                   });
}

// Parameter sets: the defaults, AlexNet's (oneDNN's optimised path on the CPU), beta 1, beta 0.5,
// a negative beta, alpha 0.
const LrnParams kLrnParams[] = {{1.0, 5.0, 1.0}, {1e-4, 0.75, 2.0}, {0.7, 1.0, 0.9},
                                {0.5, 0.5, 1.5}, {2.0, -0.6, 1.0},  {0.0, 2.0, 0.8}};

TEST(CNNCrossChannelNormalization, WindowSizesChannelCountsAndParametersMatchReference) {
  for (bool plain : {false, true}) {
    test::ForcePlain force(plain);
    for (int64_t channels : {1, 3, 5, 7, 13, 17, 40}) {
      for (uint64_t size : {1, 2, 3, 4, 5, 7, 9, 41}) {
        for (const LrnParams& lrn : kLrnParams) {
          auto values = test::randomRefImage(2, 3, 4, channels, -3.0, 3.0);
          if (channels > 4)
            values.at(1, 2, 3, 4) = std::numeric_limits<double>::quiet_NaN();  // spreads to its windows
          auto o = runCrossChannel(size, lrn, values, F::Float32, F::Float32, {2, 3, 4, channels}, {});
          EXPECT_TRUE(matches(o, F::Float32, 1e-7))
              << pathName(plain) << " channels=" << channels << " N=" << size << " alpha=" << lrn.alpha
              << " beta=" << lrn.beta << " delta=" << lrn.delta;
        }
      }
    }
  }
}

TEST(CNNCrossChannelNormalization, OffsetsClipRectChannelRangesAndEdgeModes) {
  auto values = test::randomRefImage(4, 6, 5, 12, -2.0, 2.0);
  for (bool plain : {false, true}) {
    test::ForcePlain force(plain);
    for (auto edge : {ImageEdgeMode::Zero, ImageEdgeMode::Clamp})
      for (const auto& placement : placementsFor(edge))
        for (const LrnParams& lrn : {kLrnParams[0], kLrnParams[1]}) {
          auto o = runCrossChannel(5, lrn, values, F::Float32, F::Float32, {4, 6, 5, 16}, placement);
          EXPECT_TRUE(matches(o, F::Float32, 1e-7))
              << pathName(plain) << " " << describe(placement) << " beta=" << lrn.beta;
        }
  }
}

TEST(CNNCrossChannelNormalization, Float16AndUnorm8MatchReference) {
  for (bool plain : {false, true}) {
    test::ForcePlain force(plain);
    for (const LrnParams& lrn : {kLrnParams[1], kLrnParams[3]}) {
      auto values = test::randomRefImage(2, 3, 4, 13, -2.0, 2.0);
      EXPECT_TRUE(
          matches(runCrossChannel(5, lrn, values, F::Float16, F::Float16, {2, 3, 4, 13}, {}), F::Float16))
          << pathName(plain) << " float16 beta=" << lrn.beta;
      auto unorm = test::randomRefImage(2, 3, 4, 6, 0.0, 1.0);
      EXPECT_TRUE(matches(runCrossChannel(3, lrn, unorm, F::Unorm8, F::Unorm8, {2, 3, 4, 6}, {}), F::Unorm8))
          << pathName(plain) << " unorm8 beta=" << lrn.beta;
    }
  }
}

TEST(CNNCrossChannelNormalization, PropertiesDefaultsAndConstructionChecks) {
  auto k = CNNCrossChannelNormalization::make(device(), 7);
  EXPECT_EQ(k->kernelSize(), 7u);
  EXPECT_EQ(k->alpha(), 1.0f);
  EXPECT_EQ(k->beta(), 5.0f);
  EXPECT_EQ(k->delta(), 1.0f);
  EXPECT_EQ(k->kernelWidth(), 1u);  // no spatial window
  EXPECT_EQ(k->kernelHeight(), 1u);
  EXPECT_STREQ(k->className(), "CNNCrossChannelNormalization");
  k->setAlpha(0.0f);
  k->setBeta(-2.5f);
  k->setDelta(-1.0f);
  EXPECT_EQ(k->alpha(), 0.0f);
  EXPECT_EQ(k->beta(), -2.5f);
  EXPECT_EQ(k->delta(), -1.0f);
  expectInvalid("CNNCrossChannelNormalization", "alpha", [&] { k->setAlpha(-0.5f); });
  expectInvalid("CNNCrossChannelNormalization", "alpha", [&] { k->setAlpha(std::nanf("")); });
  EXPECT_EQ(k->alpha(), 0.0f);  // unchanged by the rejected values
  expectInvalid("CNNCrossChannelNormalization", "kernelSize",
                [] { CNNCrossChannelNormalization(device(), 0); });
  expectInvalid("CNNCrossChannelNormalization", "kernelSize",
                [] { CNNCrossChannelNormalization(device(), uint64_t(1) << 31); });
  CNNCrossChannelNormalization largest(device(),
                                       (uint64_t(1) << 31) - 1);  // accepted: a window over all channels
  auto values = test::randomRefImage(1, 2, 2, 5, -2.0, 2.0);
  auto o = runCrossChannel((uint64_t(1) << 31) - 1, {1.0, 0.75, 1.0}, values, F::Float32, F::Float32,
                           {1, 2, 2, 5}, {});
  EXPECT_TRUE(matches(o, F::Float32, 1e-7));
}

TEST(CNNCrossChannelNormalization, RejectsBadInputAndLeavesTheDestinationUntouched) {
  commonEncodeRejections([] { return CNNCrossChannelNormalization::make(device(), 3); }, 4);
}

TEST(CNNCrossChannelNormalization, FastPathsAreChosenForFloat32) {
  auto& list = detail::cpuCrossChannelImplementations();
  detail::CrossChannelProblem p;
  p.primitives = std::make_shared<detail::NormalizationPrimitiveCache>();
  p.lrn = {5, 2, 2, 1e-4f, 2e-5f, 0.75f, 2.0f};  // AlexNet
  const std::string alexNet = chosenOnCpu(list, p, F::Float32, 17);
  if (listHas(list, "cpu:dnnl") && __builtin_cpu_supports("avx512f"))
    EXPECT_EQ(alexNet, "cpu:dnnl");  // oneDNN has an optimised LRN for this shape on AVX-512
  else
    EXPECT_TRUE(alexNet == "cpu:dnnl" || alexNet == "cpu:rows") << alexNet;
  p.lrn = {4, 2, 1, 1.0f, 0.25f, 0.75f, 2.0f};  // even N: oneDNN's window differs
  EXPECT_EQ(chosenOnCpu(list, p, F::Float32, 17), "cpu:rows");
  p.lrn = {5, 2, 2, 1.0f, 0.2f, 5.0f, 1.0f};  // beta 5
  EXPECT_EQ(chosenOnCpu(list, p, F::Float32, 17), "cpu:rows");
  EXPECT_EQ(chosenOnCpu(list, p, F::Float16, 17), "cpu:plain");
}

TEST(CNNCrossChannelNormalization, PyTorchParity) {
  int used = 0;
  for (const auto& tc : test::readTorchCases("softmax_normalization.txt")) {
    if (int(tc.scalars.at("op")) != 2) continue;
    const auto& shape = tc.shapes.at("input");
    ref::RefImage input(shape[0], shape[1], shape[2], shape[3]);
    input.data = tc.arrays.at("input");
    ref::RefImage expected = input;
    expected.data = tc.arrays.at("output");
    for (bool plain : {false, true}) {
      test::ForcePlain force(plain);
      auto kernel = CNNCrossChannelNormalization::make(device(), uint64_t(tc.scalars.at("size")));
      kernel->setAlpha(float(tc.scalars.at("alpha")));
      kernel->setBeta(float(tc.scalars.at("beta")));
      kernel->setDelta(float(tc.scalars.at("delta")));
      auto src = test::makeImage(input);
      auto dst = Image::make(device(), src->descriptor());
      test::poison(*dst);
      auto cb = queue()->commandBuffer();
      kernel->encode(cb, src, dst);
      cb->commit();
      cb->waitUntilCompleted();
      // PyTorch computed in float64 from float64 inputs and parameters; the kernel rounds them to float32.
      EXPECT_TRUE(close(test::download(*dst), expected, 5e-5, 1e-6))
          << "case " << tc.name << " " << pathName(plain);
    }
    ++used;
  }
  EXPECT_GT(used, 0);
}

// =================================================================================================
// CNNSpatialNormalization and CNNLocalContrastNormalization

struct WindowCase {
  uint64_t kernelWidth, kernelHeight;
};
// Odd, even, non-square, one-sided and larger-than-the-image windows.
const WindowCase kWindows[] = {{1, 1}, {3, 3}, {2, 2}, {5, 5}, {4, 3}, {3, 1}, {1, 4}, {7, 7}, {15, 11}};

ref::WindowNormalizationSpec specOf(const CNNSpatialNormalization& k) {
  ref::WindowNormalizationSpec s;
  s.kernelWidth = int64_t(k.kernelWidth());
  s.kernelHeight = int64_t(k.kernelHeight());
  s.alpha = k.alpha();
  s.beta = k.beta();
  s.delta = k.delta();
  return s;
}
ref::WindowNormalizationSpec specOf(const CNNLocalContrastNormalization& k) {
  ref::WindowNormalizationSpec s;
  s.localContrast = true;
  s.kernelWidth = int64_t(k.kernelWidth());
  s.kernelHeight = int64_t(k.kernelHeight());
  s.alpha = k.alpha();
  s.beta = k.beta();
  s.delta = k.delta();
  s.p0 = k.p0();
  s.pm = k.pm();
  s.ps = k.ps();
  return s;
}

template <class Kernel>
Outcome runWindow(Kernel& kernel, const ref::RefImage& values, F srcFormat, F dstFormat,
                  std::array<int64_t, 4> dstShape, const ref::UnaryPlacement& placement) {
  const ref::WindowNormalizationSpec spec = specOf(kernel);
  return runKernel(kernel, values, srcFormat, dstFormat, dstShape, placement,
                   [&](const ref::UnaryPlacement& p, const ref::RefImage& src, ref::RefImage& expected) {
                     ref::windowNormalizationKernel(spec, p, src, expected);
                   });
}

/// Spatial parameter sets: defaults, and (alpha, beta, delta) = (0.5, 0.75, 2).
std::vector<std::shared_ptr<CNNSpatialNormalization>> spatialKernels(const WindowCase& w) {
  auto a = CNNSpatialNormalization::make(device(), w.kernelWidth, w.kernelHeight);
  auto b = CNNSpatialNormalization::make(device(), w.kernelWidth, w.kernelHeight);
  b->setAlpha(0.5f);
  b->setBeta(0.75f);
  b->setDelta(2.0f);
  return {a, b};
}

/// Contrast parameter sets: the kernel defaults (alpha 0: a local mean subtraction), the spec's
/// "zero mean, unit variance" example (alpha 1, beta 0.5, delta 0) on windows with several taps,
/// and arbitrary values of every parameter.
std::vector<std::shared_ptr<CNNLocalContrastNormalization>> contrastKernels(const WindowCase& w) {
  std::vector<std::shared_ptr<CNNLocalContrastNormalization>> list;
  list.push_back(CNNLocalContrastNormalization::make(device(), w.kernelWidth, w.kernelHeight));
  if (w.kernelWidth * w.kernelHeight >= 4) {
    auto unit = CNNLocalContrastNormalization::make(device(), w.kernelWidth, w.kernelHeight);
    unit->setAlpha(1.0f);
    unit->setDelta(0.0f);
    list.push_back(unit);
  }
  auto any = CNNLocalContrastNormalization::make(device(), w.kernelWidth, w.kernelHeight);
  any->setAlpha(0.8f);
  any->setBeta(1.3f);
  any->setDelta(0.6f);
  any->setP0(0.7f);
  any->setPm(0.25f);
  any->setPs(1.5f);
  list.push_back(any);
  return list;
}

template <class Kernel>
std::string describeKernel(const Kernel& k) {
  std::ostringstream s;
  s << k.className() << " " << k.kernelWidth() << "x" << k.kernelHeight() << " alpha=" << k.alpha()
    << " beta=" << k.beta() << " delta=" << k.delta();
  return s.str();
}

template <class Make>
void windowsMatchReference(Make kernelsFor, double atol) {
  for (bool plain : {false, true}) {
    test::ForcePlain force(plain);
    size_t round = 0;
    for (const WindowCase& w : kWindows)
      for (auto edge : {ImageEdgeMode::Zero, ImageEdgeMode::Clamp})
        for (auto& kernel : kernelsFor(w)) {
          const int64_t channels = std::array<int64_t, 4>{1, 3, 5, 17}[round++ % 4];
          auto values = test::randomRefImage(2, 5, 7, channels, -1.0, 1.0);
          ref::UnaryPlacement p;
          p.edgeMode = edge;
          auto o = runWindow(*kernel, values, F::Float32, F::Float32, {2, 5, 7, channels}, p);
          EXPECT_TRUE(matches(o, F::Float32, atol)) << pathName(plain) << " " << describeKernel(*kernel)
                                                    << " edge=" << toString(edge) << " channels=" << channels;
        }
  }
}

template <class Make>
void windowPlacementsMatchReference(Make kernelsFor, double atol) {
  auto values = test::randomRefImage(4, 6, 5, 12, -1.0, 1.0);
  for (bool plain : {false, true}) {
    test::ForcePlain force(plain);
    for (const WindowCase& w : {WindowCase{3, 3}, WindowCase{2, 4}, WindowCase{9, 9}})
      for (auto edge : {ImageEdgeMode::Zero, ImageEdgeMode::Clamp})
        for (const auto& placement : placementsFor(edge))
          for (auto& kernel : kernelsFor(w)) {
            // delta 0 makes a window of one repeated value (wholly outside the image, Clamp) 0/0:
            // NaN or ±1 depending on the last bit of its mean. The other tests cover that example.
            if (kernel->delta() == 0.0f) continue;
            auto o = runWindow(*kernel, values, F::Float32, F::Float32, {4, 6, 5, 16}, placement);
            EXPECT_TRUE(matches(o, F::Float32, atol))
                << pathName(plain) << " " << describeKernel(*kernel) << " " << describe(placement);
          }
  }
}

template <class Make>
void windowFormatsMatchReference(Make kernelsFor) {
  for (bool plain : {false, true}) {
    test::ForcePlain force(plain);
    for (auto& kernel : kernelsFor({3, 3})) {
      auto values = test::randomRefImage(2, 5, 4, 7, -1.0, 1.0);
      EXPECT_TRUE(matches(runWindow(*kernel, values, F::Float16, F::Float16, {2, 5, 4, 7}, {}), F::Float16))
          << pathName(plain) << " float16 " << describeKernel(*kernel);
      auto unorm = test::randomRefImage(2, 5, 4, 3, 0.0, 1.0);
      EXPECT_TRUE(matches(runWindow(*kernel, unorm, F::Unorm8, F::Unorm8, {2, 5, 4, 3}, {}), F::Unorm8))
          << pathName(plain) << " unorm8 " << describeKernel(*kernel);
    }
  }
}

/// Auto mode (default padding SizeSame): the destination keeps the source's size, and the window
/// of destination pixel (0, 0) is centred on source pixel (0, 0) for odd and even windows alike.
template <class Kernel>
void windowAutoMode(std::shared_ptr<Kernel> kernel) {
  auto values = test::randomRefImage(1, 5, 6, 3, -1.0, 1.0);
  auto src = test::makeImage(values);
  kernel->setDestinationImageAllocator(Image::defaultAllocator());
  kernel->setOffset({4, 4, 0});
  auto cb = queue()->commandBuffer();
  ImagePtr out = kernel->encode(cb, src);
  cb->commit();
  cb->waitUntilCompleted();
  EXPECT_EQ(out->descriptor(), ImageDescriptor::make(F::Float32, 6, 5, 3));
  EXPECT_EQ(kernel->offset(), (Offset{0, 0, 0}));
  ref::RefImage expected(1, 5, 6, 3);
  ref::windowNormalizationKernel(specOf(*kernel), {}, values, expected);
  EXPECT_TRUE(close(test::download(*out), expected, 1e-5, 1e-5)) << describeKernel(*kernel);
}

TEST(CNNSpatialNormalization, WindowsEdgeModesAndParametersMatchReference) {
  windowsMatchReference(spatialKernels, 1e-6);
}
TEST(CNNSpatialNormalization, OffsetsClipRectChannelRangesAndEdgeModes) {
  windowPlacementsMatchReference(spatialKernels, 1e-6);
}
TEST(CNNSpatialNormalization, Float16AndUnorm8MatchReference) { windowFormatsMatchReference(spatialKernels); }
TEST(CNNSpatialNormalization, AutoModeKeepsTheSizeAndCentresTheWindow) {
  windowAutoMode(CNNSpatialNormalization::make(device(), 3, 3));
  windowAutoMode(CNNSpatialNormalization::make(device(), 2, 4));
}

TEST(CNNSpatialNormalization, PropertiesDefaultsAndConstructionChecks) {
  auto k = CNNSpatialNormalization::make(device(), 3, 5);  // RELAXED: kernelWidth != kernelHeight
  EXPECT_EQ(k->kernelWidth(), 3u);
  EXPECT_EQ(k->kernelHeight(), 5u);
  EXPECT_EQ(k->alpha(), 1.0f);
  EXPECT_EQ(k->beta(), 5.0f);
  EXPECT_EQ(k->delta(), 1.0f);
  EXPECT_STREQ(k->className(), "CNNSpatialNormalization");
  expectInvalid("CNNSpatialNormalization", "alpha", [&] { k->setAlpha(-1e-3f); });
  EXPECT_EQ(k->alpha(), 1.0f);
  expectInvalid("CNNSpatialNormalization", "kernelWidth", [] { CNNSpatialNormalization(device(), 0, 3); });
  expectInvalid("CNNSpatialNormalization", "kernelHeight", [] { CNNSpatialNormalization(device(), 3, 0); });
  expectInvalid("CNNSpatialNormalization", "kernelWidth",
                [] { CNNSpatialNormalization(device(), uint64_t(1) << 31, 3); });
  setStrictValidation(true);
  expectInvalid("CNNSpatialNormalization", "kernelWidth", [] { CNNSpatialNormalization(device(), 3, 5); });
  CNNSpatialNormalization square(device(), 4, 4);
  setStrictValidation(false);
}

TEST(CNNSpatialNormalization, RejectsBadInputAndLeavesTheDestinationUntouched) {
  commonEncodeRejections([] { return CNNSpatialNormalization::make(device(), 3, 3); }, 4);
}

TEST(CNNLocalContrastNormalization, WindowsEdgeModesAndParametersMatchReference) {
  windowsMatchReference(contrastKernels, 2e-5);
}
TEST(CNNLocalContrastNormalization, OffsetsClipRectChannelRangesAndEdgeModes) {
  windowPlacementsMatchReference(contrastKernels, 2e-5);
}
TEST(CNNLocalContrastNormalization, Float16AndUnorm8MatchReference) {
  windowFormatsMatchReference(contrastKernels);
}
TEST(CNNLocalContrastNormalization, AutoModeKeepsTheSizeAndCentresTheWindow) {
  windowAutoMode(CNNLocalContrastNormalization::make(device(), 3, 3));
  windowAutoMode(CNNLocalContrastNormalization::make(device(), 4, 2));
}

/// Inputs with a large common offset: the variance must not drown in the cancellation of Σx²/N − M².
TEST(CNNLocalContrastNormalization, OffCentreInputsKeepTheirVariance) {
  for (bool plain : {false, true}) {
    test::ForcePlain force(plain);
    auto kernel = CNNLocalContrastNormalization::make(device(), 3, 3);
    kernel->setAlpha(1.0f);
    kernel->setDelta(1e-3f);
    auto values = test::randomRefImage(1, 6, 7, 5, -1.0, 1.0);
    for (auto& v : values.data) v += 100.0;
    ref::UnaryPlacement p;
    p.edgeMode = ImageEdgeMode::Clamp;  // every tap a real pixel
    auto o = runWindow(*kernel, values, F::Float32, F::Float32, {1, 6, 7, 5}, p);
    EXPECT_TRUE(close(o.actual, o.expected, 1e-3, 1e-3)) << pathName(plain);
  }
}

TEST(CNNLocalContrastNormalization, PropertiesDefaultsAndConstructionChecks) {
  auto k = CNNLocalContrastNormalization::make(device(), 5, 3);
  EXPECT_EQ(k->kernelWidth(), 5u);
  EXPECT_EQ(k->kernelHeight(), 3u);
  EXPECT_EQ(k->alpha(), 0.0f);  // QUIRK: the kernel's default (the graph node's is 1)
  EXPECT_EQ(k->beta(), 0.5f);
  EXPECT_EQ(k->delta(), 1.0f / 1024.0f);
  EXPECT_EQ(k->p0(), 1.0f);
  EXPECT_EQ(k->pm(), 0.0f);
  EXPECT_EQ(k->ps(), 1.0f);
  EXPECT_STREQ(k->className(), "CNNLocalContrastNormalization");
  k->setAlpha(-0.5f);  // no sign rule for this kernel's alpha
  EXPECT_EQ(k->alpha(), -0.5f);
  expectInvalid("CNNLocalContrastNormalization", "kernelWidth",
                [] { CNNLocalContrastNormalization(device(), 0, 1); });
  expectInvalid("CNNLocalContrastNormalization", "kernelHeight",
                [] { CNNLocalContrastNormalization(device(), 1, 0); });
  expectInvalid("CNNLocalContrastNormalization", "kernelHeight",
                [] { CNNLocalContrastNormalization(device(), 1, uint64_t(1) << 40); });
  setStrictValidation(true);
  expectInvalid("CNNLocalContrastNormalization", "kernelWidth",
                [] { CNNLocalContrastNormalization(device(), 5, 3); });
  setStrictValidation(false);
}

TEST(CNNLocalContrastNormalization, RejectsBadInputAndLeavesTheDestinationUntouched) {
  commonEncodeRejections([] { return CNNLocalContrastNormalization::make(device(), 2, 3); }, 5);
}

TEST(CNNSpatialNormalization, FastPathIsChosenForFloat32) {
  auto& list = detail::cpuWindowNormalizationImplementations();
  detail::WindowProblem p;
  p.norm.kernelWidth = p.norm.kernelHeight = 3;
  EXPECT_EQ(chosenOnCpu(list, p, F::Float32, 7), "cpu:rows");
  EXPECT_EQ(chosenOnCpu(list, p, F::Float16, 7), "cpu:plain");
}

// =================================================================================================
// CNNBatchNormalization

/// A data source that records its lifecycle and checks that the kernel reads it only while loaded.
class TestBatchNormSource : public CNNBatchNormalizationDataSource {
 public:
  explicit TestBatchNormSource(size_t channels) : channels(channels) {
    auto r = [&](double lo, double hi) {
      std::vector<float> v;
      for (double x : test::randomValues(channels, lo, hi)) v.push_back(float(x));
      return v;
    };
    gammaValues = r(0.5, 2.0);
    betaValues = r(-1.0, 1.0);
    meanValues = r(-1.0, 1.0);
    varianceValues = r(0.25, 3.0);
  }
  size_t numberOfFeatureChannels() const override { return channels; }
  const float* gamma() override { return access(gammaValues, nullGamma); }
  const float* beta() override { return access(betaValues, nullBeta); }
  const float* mean() override { return access(meanValues, nullMean); }
  const float* variance() override { return access(varianceValues, nullVariance); }
  bool load() override {
    EXPECT_FALSE(loaded) << "load() while loaded";
    ++loads;
    if (failLoad) return false;
    loaded = true;
    return true;
  }
  void purge() override {
    EXPECT_TRUE(loaded) << "purge() without a successful load()";
    ++purges;
    loaded = false;
  }
  std::string label() const override { return "test batch norm"; }
  std::optional<float> epsilon() const override { return epsilonValue; }

  /// The kernel's parameters as the reference takes them (null arrays → the spec's defaults).
  ref::BatchNormalizationSpec spec(double epsilon, const NNNeuronDescriptor& neuron = {}) const {
    ref::BatchNormalizationSpec s;
    for (size_t c = 0; c < channels; ++c) {
      s.gamma.push_back(nullGamma ? 1.0 : gammaValues[c]);
      s.beta.push_back(nullBeta ? 0.0 : betaValues[c]);
      s.mean.push_back(nullMean ? 0.0 : meanValues[c]);
      s.variance.push_back(nullVariance ? 1.0 : varianceValues[c]);
    }
    s.epsilon = epsilon;
    s.neuron = neuron;
    return s;
  }

  size_t channels;
  std::vector<float> gammaValues, betaValues, meanValues, varianceValues;
  bool nullGamma = false, nullBeta = false, nullMean = false, nullVariance = false;
  std::optional<float> epsilonValue;
  bool failLoad = false, loaded = false;
  int loads = 0, purges = 0, reads = 0;

 private:
  const float* access(const std::vector<float>& v, bool null) {
    EXPECT_TRUE(loaded) << "parameters read outside load() ... purge()";
    ++reads;
    return null ? nullptr : v.data();
  }
};

Outcome runBatchNorm(CNNBatchNormalization& kernel, const ref::BatchNormalizationSpec& spec,
                     const ref::RefImage& values, F srcFormat, F dstFormat, std::array<int64_t, 4> dstShape,
                     const ref::UnaryPlacement& placement) {
  return runKernel(kernel, values, srcFormat, dstFormat, dstShape, placement,
                   [&](const ref::UnaryPlacement& p, const ref::RefImage& src, ref::RefImage& expected) {
                     ref::batchNormalizationKernel(spec, p, src, expected);
                   });
}

std::vector<NNNeuronDescriptor> fusedNeurons(size_t channels) {
  std::vector<float> slopes;
  for (double x : test::randomValues(channels, 0.05, 0.9)) slopes.push_back(float(x));
  return {NNNeuronDescriptor(),
          NNNeuronDescriptor::make(CNNNeuronType::ReLU),
          NNNeuronDescriptor::make(CNNNeuronType::ReLU, 0.1f),
          NNNeuronDescriptor::makePReLU(std::make_shared<const std::vector<float>>(slopes)),
          NNNeuronDescriptor::make(CNNNeuronType::Sigmoid),
          NNNeuronDescriptor::make(CNNNeuronType::ELU, 0.7f),
          NNNeuronDescriptor::make(CNNNeuronType::ReLUN, 0.0f, 1.5f)};
}

TEST(CNNBatchNormalization, ChannelCountsAndFusedNeuronsMatchReference) {
  for (bool plain : {false, true}) {
    test::ForcePlain force(plain);
    for (size_t channels : {1, 3, 5, 7, 13, 17}) {
      auto source = std::make_shared<TestBatchNormSource>(channels);
      source->epsilonValue = 1e-3f;
      for (const auto& neuron : fusedNeurons(channels)) {
        CNNBatchNormalization kernel(device(), source, neuron);
        auto values = test::randomRefImage(3, 4, 5, int64_t(channels), -3.0, 3.0);
        auto o = runBatchNorm(kernel, source->spec(1e-3f, neuron), values, F::Float32, F::Float32,
                              {3, 4, 5, int64_t(channels)}, {});
        EXPECT_TRUE(matches(o, F::Float32, 2e-6))
            << pathName(plain) << " channels=" << channels << " neuron=" << toString(neuron.neuronType());
      }
    }
  }
}

TEST(CNNBatchNormalization, OffsetsClipRectChannelRangesAndEdgeModes) {
  auto values = test::randomRefImage(4, 6, 5, 12, -2.0, 2.0);
  auto source = std::make_shared<TestBatchNormSource>(5);
  for (bool plain : {false, true}) {
    test::ForcePlain force(plain);
    CNNBatchNormalization kernel(device(), source, NNNeuronDescriptor::make(CNNNeuronType::TanH, 1.0f, 0.5f));
    for (auto edge : {ImageEdgeMode::Zero, ImageEdgeMode::Clamp})
      for (auto placement : placementsFor(edge)) {
        // 5 channels from sourceFeatureChannelOffset; further source channels are ignored (spec 00 §4.3).
        if (placement.sourceFeatureChannelMaxCount != UINT64_MAX) placement.sourceFeatureChannelMaxCount = 7;
        auto o = runBatchNorm(kernel, source->spec(FLT_MIN, kernel.fusedNeuronDescriptor()), values,
                              F::Float32, F::Float32, {4, 6, 5, 16}, placement);
        EXPECT_TRUE(matches(o, F::Float32, 2e-6)) << pathName(plain) << " " << describe(placement);
      }
  }
}

TEST(CNNBatchNormalization, Float16AndUnorm8MatchReference) {
  auto source = std::make_shared<TestBatchNormSource>(7);
  for (bool plain : {false, true}) {
    test::ForcePlain force(plain);
    CNNBatchNormalization kernel(device(), source, NNNeuronDescriptor::make(CNNNeuronType::Sigmoid));
    auto spec = source->spec(FLT_MIN, kernel.fusedNeuronDescriptor());
    auto values = test::randomRefImage(2, 3, 4, 7, -2.0, 2.0);
    EXPECT_TRUE(
        matches(runBatchNorm(kernel, spec, values, F::Float16, F::Float16, {2, 3, 4, 7}, {}), F::Float16))
        << pathName(plain);
    auto unorm = test::randomRefImage(2, 3, 4, 7, 0.0, 1.0);
    EXPECT_TRUE(matches(runBatchNorm(kernel, spec, unorm, F::Unorm8, F::Unorm8, {2, 3, 4, 7}, {}), F::Unorm8))
        << pathName(plain);
  }
}

TEST(CNNBatchNormalization, DataSourceLifecycleDefaultsAndEpsilon) {
  auto source = std::make_shared<TestBatchNormSource>(6);
  CNNBatchNormalization kernel(device(), source);
  EXPECT_EQ(source->loads, 1);
  EXPECT_EQ(source->purges, 1);
  EXPECT_GE(source->reads, 4);
  EXPECT_FALSE(source->loaded);
  EXPECT_EQ(kernel.numberOfFeatureChannels(), 6u);
  EXPECT_EQ(kernel.epsilon(), FLT_MIN);  // no epsilon() from the data source
  EXPECT_EQ(kernel.label(), "test batch norm");
  EXPECT_EQ(kernel.dataSource(), source);
  EXPECT_EQ(kernel.fusedNeuronDescriptor().neuronType(), CNNNeuronType::None);
  EXPECT_STREQ(kernel.className(), "CNNBatchNormalization");

  source->epsilonValue = 0.25f;
  CNNBatchNormalization withEpsilon(device(), source, std::nullopt);
  EXPECT_EQ(withEpsilon.epsilon(), 0.25f);
  withEpsilon.setEpsilon(2.0f);
  EXPECT_EQ(withEpsilon.epsilon(), 2.0f);

  // Null arrays: gamma 1, beta 0, mean 0, variance 1 (spec 04 §6.1 CHOICE): the result is x / sqrt(1 + eps).
  auto empty = std::make_shared<TestBatchNormSource>(3);
  empty->nullGamma = empty->nullBeta = empty->nullMean = empty->nullVariance = true;
  empty->epsilonValue = 3.0f;
  CNNBatchNormalization identity(device(), empty);
  auto values = test::randomRefImage(2, 2, 3, 3, -2.0, 2.0);
  auto o = runBatchNorm(identity, empty->spec(3.0), values, F::Float32, F::Float32, {2, 2, 3, 3}, {});
  EXPECT_TRUE(matches(o, F::Float32));
  for (size_t i = 0; i < values.data.size(); ++i)
    EXPECT_NEAR(o.actual.data[i], float(values.data[i]) / 2.0, 1e-6);
}

TEST(CNNBatchNormalization, LoadFailureAndChannelCountAreRejected) {
  auto failing = std::make_shared<TestBatchNormSource>(4);
  failing->failLoad = true;
  expectInvalid("CNNBatchNormalization", "dataSource.load",
                [&] { CNNBatchNormalization(device(), failing); });
  EXPECT_EQ(failing->loads, 1);
  EXPECT_EQ(failing->purges, 0);  // a failed load is not balanced by a purge
  auto none = std::make_shared<TestBatchNormSource>(0);
  expectInvalid("CNNBatchNormalization", "numberOfFeatureChannels",
                [&] { CNNBatchNormalization(device(), none); });
  EXPECT_EQ(none->loads, none->purges);  // rejected contents are still purged
  auto huge = std::make_shared<TestBatchNormSource>(1);
  huge->channels = size_t(1) << 40;
  expectInvalid("CNNBatchNormalization", "numberOfFeatureChannels",
                [&] { CNNBatchNormalization(device(), huge); });
  expectInvalid("CNNBatchNormalization", "dataSource", [&] { CNNBatchNormalization(device(), nullptr); });

  NNNeuronDescriptor badType;
  badType.setNeuronType(CNNNeuronType::Count);
  auto source = std::make_shared<TestBatchNormSource>(4);
  expectInvalid("CNNBatchNormalization", "fusedNeuronDescriptor",
                [&] { CNNBatchNormalization(device(), source, badType); });
  auto twoSlopes = NNNeuronDescriptor::makePReLU(
      std::make_shared<const std::vector<float>>(std::vector<float>{0.1f, 0.2f}));
  expectInvalid("CNNBatchNormalization", "PReLU",
                [&] { CNNBatchNormalization(device(), source, twoSlopes); });
}

TEST(CNNBatchNormalization, ReloadsCopyTheirHalfAndEncodedWorkKeepsItsValues) {
  auto source = std::make_shared<TestBatchNormSource>(5);
  CNNBatchNormalization kernel(device(), source);
  auto values = test::randomRefImage(1, 3, 4, 5, -2.0, 2.0);
  auto src = test::makeImage(values);
  auto before = Image::make(device(), src->descriptor());
  auto afterGamma = Image::make(device(), src->descriptor());
  auto afterMean = Image::make(device(), src->descriptor());
  auto afterEpsilon = Image::make(device(), src->descriptor());
  const ref::BatchNormalizationSpec original = source->spec(FLT_MIN);

  auto cb = queue()->commandBuffer();
  kernel.encode(cb, src, before);
  TestBatchNormSource changed(5);  // new random values for every array
  source->gammaValues = changed.gammaValues;
  source->betaValues = changed.betaValues;
  source->meanValues = changed.meanValues;
  source->varianceValues = changed.varianceValues;
  kernel.reloadGammaAndBetaFromDataSource();  // mean and variance stay the old ones
  EXPECT_EQ(source->loads, 2);
  EXPECT_EQ(source->purges, 2);
  kernel.encode(cb, src, afterGamma);
  kernel.reloadMeanAndVarianceFromDataSource();
  EXPECT_EQ(source->loads, 3);
  EXPECT_EQ(source->purges, 3);
  kernel.encode(cb, src, afterMean);
  kernel.setEpsilon(0.5f);
  kernel.encode(cb, src, afterEpsilon);
  cb->commit();
  cb->waitUntilCompleted();

  auto expect = [&](const ref::BatchNormalizationSpec& spec, const ImagePtr& image, const char* what) {
    ref::RefImage expected(1, 3, 4, 5);
    ref::batchNormalizationKernel(spec, {}, values, expected);
    EXPECT_TRUE(close(test::download(*image), expected, 1e-5, 2e-6)) << what;
  };
  expect(original, before, "encoded before the reloads");
  ref::BatchNormalizationSpec gammaOnly = original;
  gammaOnly.gamma = changed.spec(0).gamma;
  gammaOnly.beta = changed.spec(0).beta;
  expect(gammaOnly, afterGamma, "after reloadGammaAndBetaFromDataSource");
  expect(changed.spec(FLT_MIN), afterMean, "after reloadMeanAndVarianceFromDataSource");
  expect(changed.spec(0.5), afterEpsilon, "after setEpsilon");

  // A reload that fails, or finds another channel count, keeps every value and throws.
  source->failLoad = true;
  expectInvalid("CNNBatchNormalization", "dataSource.load",
                [&] { kernel.reloadGammaAndBetaFromDataSource(); });
  source->failLoad = false;
  source->channels = 6;
  expectInvalid("CNNBatchNormalization", "numberOfFeatureChannels",
                [&] { kernel.reloadMeanAndVarianceFromDataSource(); });
  source->channels = 5;
  EXPECT_EQ(source->loads, source->purges + 1);  // only the failed load is unbalanced
  auto last = Image::make(device(), src->descriptor());
  cb = queue()->commandBuffer();
  kernel.encode(cb, src, last);
  cb->commit();
  cb->waitUntilCompleted();
  expect(changed.spec(0.5), last, "after the rejected reloads");
}

TEST(CNNBatchNormalization, ChannelChecksAtEncode) {
  auto source = std::make_shared<TestBatchNormSource>(6);
  auto kernel = CNNBatchNormalization::make(device(), source);
  // Fewer than numberOfFeatureChannels source channels (from the offset, within the max count).
  auto src = test::makeImage(test::randomRefImage(1, 3, 3, 8));
  auto dst = Image::make(device(), ImageDescriptor::make(F::Float32, 3, 3, 8));
  ref::RefImage poisoned = test::poison(*dst);
  kernel->setSourceFeatureChannelOffset(3);
  expectEncodeRejected(*kernel, src, dst, poisoned, "numberOfFeatureChannels");
  kernel->setSourceFeatureChannelOffset(0);
  kernel->setSourceFeatureChannelMaxCount(5);
  expectEncodeRejected(*kernel, src, dst, poisoned, "numberOfFeatureChannels");
  kernel->setSourceFeatureChannelMaxCount(UINT64_MAX);
  kernel->setDestinationFeatureChannelOffset(3);  // 6 channels do not fit into 8 from channel 3
  expectEncodeRejected(*kernel, src, dst, poisoned, "destinationFeatureChannelOffset");
  // Auto mode: the destination gets numberOfFeatureChannels channels after the offset.
  kernel->setDestinationFeatureChannelOffset(2);
  EXPECT_EQ(kernel->destinationImageDescriptor({src}, {}), ImageDescriptor::make(F::Float32, 3, 3, 8));
  commonEncodeRejections([&] { return CNNBatchNormalization::make(device(), source); }, 6);
}

TEST(CNNBatchNormalization, MultiImageAndBatchEncode) {
  auto source = std::make_shared<TestBatchNormSource>(13);
  auto kernel = CNNBatchNormalization::make(device(), source, NNNeuronDescriptor::make(CNNNeuronType::ReLU));
  const auto spec = source->spec(FLT_MIN, kernel->fusedNeuronDescriptor());
  ImageBatch sources, destinations;
  std::vector<ref::RefImage> values;
  for (int i = 0; i < 3; ++i) {
    values.push_back(test::randomRefImage(1, 3, 4, 13, -2.0, 2.0));
    sources.push_back(test::makeImage(values.back()));
    destinations.push_back(Image::make(device(), ImageDescriptor::make(F::Float32, 4, 3, 13)));
    test::poison(*destinations.back());
  }
  auto cb = queue()->commandBuffer();
  kernel->encodeBatch(cb, sources, destinations);
  cb->commit();
  cb->waitUntilCompleted();
  for (int i = 0; i < 3; ++i) {
    ref::RefImage expected(1, 3, 4, 13);
    ref::batchNormalizationKernel(spec, {}, values[size_t(i)], expected);
    EXPECT_TRUE(close(test::download(*destinations[size_t(i)]), expected, 1e-5, 2e-6)) << "batch item " << i;
  }
}

TEST(CNNBatchNormalization, FastPathIsChosenForFloat32) {
  auto& list = detail::cpuBatchNormImplementations();
  EXPECT_EQ(chosenOnCpu(list, detail::BatchNormProblem{}, F::Float32, 7), "cpu:rows");
  EXPECT_EQ(chosenOnCpu(list, detail::BatchNormProblem{}, F::Float16, 7), "cpu:plain");
}

/// Fills a data source from PyTorch's parameters.
std::vector<float> floats(const std::vector<double>& v) { return std::vector<float>(v.begin(), v.end()); }

TEST(CNNBatchNormalization, PyTorchParity) {
  int used = 0;
  for (const auto& tc : test::readTorchCases("softmax_normalization.txt")) {
    if (int(tc.scalars.at("op")) != 3) continue;
    const auto& shape = tc.shapes.at("input");
    ref::RefImage input(shape[0], shape[1], shape[2], shape[3]);
    input.data = tc.arrays.at("input");
    ref::RefImage expected = input;
    expected.data = tc.arrays.at("output");
    auto source = std::make_shared<TestBatchNormSource>(size_t(shape[3]));
    source->gammaValues = floats(tc.arrays.at("gamma"));
    source->betaValues = floats(tc.arrays.at("beta"));
    source->meanValues = floats(tc.arrays.at("mean"));
    source->varianceValues = floats(tc.arrays.at("variance"));
    source->epsilonValue = float(tc.scalars.at("epsilon"));
    std::optional<NNNeuronDescriptor> neuron;
    if (tc.scalars.at("neuron") == 1.0) neuron = NNNeuronDescriptor::make(CNNNeuronType::ReLU);
    for (bool plain : {false, true}) {
      test::ForcePlain force(plain);
      CNNBatchNormalization kernel(device(), source, neuron);
      auto src = test::makeImage(input);
      auto dst = Image::make(device(), src->descriptor());
      test::poison(*dst);
      auto cb = queue()->commandBuffer();
      kernel.encode(cb, src, dst);
      cb->commit();
      cb->waitUntilCompleted();
      EXPECT_TRUE(close(test::download(*dst), expected, 2e-5, 2e-6))
          << "case " << tc.name << " " << pathName(plain);
    }
    ++used;
  }
  EXPECT_GT(used, 0);
}

// =================================================================================================
// CNNInstanceNormalization

/// A data source with gamma and beta; load() and purge() are overridden only when `tracked`
/// (the protocol's no-op defaults serve the other instances).
class TestInstanceNormSource : public CNNInstanceNormalizationDataSource {
 public:
  explicit TestInstanceNormSource(size_t channels) : channels(channels) {
    for (double x : test::randomValues(channels, 0.5, 2.0)) gammaValues.push_back(float(x));
    for (double x : test::randomValues(channels, -1.0, 1.0)) betaValues.push_back(float(x));
  }
  const float* gamma() override { return nullGamma ? nullptr : gammaValues.data(); }
  const float* beta() override { return nullBeta ? nullptr : betaValues.data(); }
  size_t numberOfFeatureChannels() const override { return channels; }
  std::string label() const override { return "test instance norm"; }
  std::optional<float> epsilon() const override { return epsilonValue; }

  ref::InstanceNormalizationSpec spec(double epsilon) const {
    ref::InstanceNormalizationSpec s;
    for (size_t c = 0; c < channels; ++c) {
      s.gamma.push_back(nullGamma ? 1.0 : gammaValues[c]);
      s.beta.push_back(nullBeta ? 0.0 : betaValues[c]);
    }
    s.epsilon = epsilon;
    return s;
  }

  size_t channels;
  std::vector<float> gammaValues, betaValues;
  bool nullGamma = false, nullBeta = false;
  std::optional<float> epsilonValue;
};

class TrackedInstanceNormSource : public TestInstanceNormSource {
 public:
  using TestInstanceNormSource::TestInstanceNormSource;
  bool load() override {
    ++loads;
    return !failLoad;
  }
  void purge() override { ++purges; }
  bool failLoad = false;
  int loads = 0, purges = 0;
};

Outcome runInstanceNorm(CNNInstanceNormalization& kernel, const ref::InstanceNormalizationSpec& spec,
                        const ref::RefImage& values, F srcFormat, F dstFormat,
                        std::array<int64_t, 4> dstShape, const ref::UnaryPlacement& placement) {
  return runKernel(kernel, values, srcFormat, dstFormat, dstShape, placement,
                   [&](const ref::UnaryPlacement& p, const ref::RefImage& src, ref::RefImage& expected) {
                     ref::instanceNormalizationKernel(spec, p, src, expected);
                   });
}

TEST(CNNInstanceNormalization, ChannelCountsAndImageSizesMatchReference) {
  for (bool plain : {false, true}) {
    test::ForcePlain force(plain);
    for (size_t channels : {1, 3, 5, 7, 13, 17, 33}) {
      auto source = std::make_shared<TestInstanceNormSource>(channels);
      source->epsilonValue = 1e-5f;
      CNNInstanceNormalization kernel(device(), source);
      for (auto [h, w] : {std::pair<int64_t, int64_t>{1, 1}, {1, 7}, {5, 3}, {9, 11}}) {
        auto values = test::randomRefImage(3, h, w, int64_t(channels), -2.0, 2.0);
        for (auto& v : values.data) v += 3.0;  // means away from 0
        auto o = runInstanceNorm(kernel, source->spec(1e-5f), values, F::Float32, F::Float32,
                                 {3, h, w, int64_t(channels)}, {});
        EXPECT_TRUE(matches(o, F::Float32, 1e-5))
            << pathName(plain) << " channels=" << channels << " " << h << "x" << w;
      }
    }
  }
}

/// Images large enough that the CUDA statistics run over many chunks and thread rows.
TEST(CNNInstanceNormalization, LargeImagesMatchReference) {
  for (bool plain : {false, true}) {
    test::ForcePlain force(plain);
    for (auto [n, h, w, c] : {std::array<int64_t, 4>{1, 300, 301, 3}, {2, 64, 70, 40}}) {
      auto source = std::make_shared<TestInstanceNormSource>(size_t(c));
      CNNInstanceNormalization kernel(device(), source);
      auto values = test::randomRefImage(n, h, w, c, -1.0, 1.0);
      for (auto& v : values.data) v = v * 4.0 + 10.0;
      auto o =
          runInstanceNorm(kernel, source->spec(FLT_MIN), values, F::Float32, F::Float32, {n, h, w, c}, {});
      EXPECT_TRUE(matches(o, F::Float32, 2e-5))
          << pathName(plain) << " " << n << "x" << h << "x" << w << "x" << c;
    }
  }
}

TEST(CNNInstanceNormalization, StatisticsCoverTheWholeSourceWhateverThePlacement) {
  auto values = test::randomRefImage(4, 6, 5, 12, -2.0, 2.0);
  auto source = std::make_shared<TestInstanceNormSource>(5);
  source->epsilonValue = 1e-4f;
  for (bool plain : {false, true}) {
    test::ForcePlain force(plain);
    CNNInstanceNormalization kernel(device(), source);
    for (auto edge : {ImageEdgeMode::Zero, ImageEdgeMode::Clamp})
      for (auto placement : placementsFor(edge)) {
        if (placement.sourceFeatureChannelMaxCount != UINT64_MAX) placement.sourceFeatureChannelMaxCount = 6;
        auto o = runInstanceNorm(kernel, source->spec(1e-4f), values, F::Float32, F::Float32, {4, 6, 5, 16},
                                 placement);
        EXPECT_TRUE(matches(o, F::Float32, 1e-5)) << pathName(plain) << " " << describe(placement);
      }
  }
}

TEST(CNNInstanceNormalization, Float16AndUnorm8MatchReference) {
  auto source = std::make_shared<TestInstanceNormSource>(7);
  for (bool plain : {false, true}) {
    test::ForcePlain force(plain);
    CNNInstanceNormalization kernel(device(), source);
    auto values = test::randomRefImage(2, 5, 6, 7, -2.0, 2.0);
    EXPECT_TRUE(matches(
        runInstanceNorm(kernel, source->spec(FLT_MIN), values, F::Float16, F::Float16, {2, 5, 6, 7}, {}),
        F::Float16))
        << pathName(plain);
    auto unorm = test::randomRefImage(2, 5, 6, 7, 0.0, 1.0);
    EXPECT_TRUE(
        matches(runInstanceNorm(kernel, source->spec(FLT_MIN), unorm, F::Unorm8, F::Unorm8, {2, 5, 6, 7}, {}),
                F::Unorm8))
        << pathName(plain);
  }
}

TEST(CNNInstanceNormalization, DataSourceLifecycleDefaultsAndReload) {
  auto plainSource = std::make_shared<TestInstanceNormSource>(4);  // load()/purge() not overridden
  CNNInstanceNormalization kernel(device(), plainSource);
  EXPECT_EQ(kernel.numberOfFeatureChannels(), 4u);
  EXPECT_EQ(kernel.epsilon(), FLT_MIN);
  EXPECT_EQ(kernel.label(), "test instance norm");
  EXPECT_EQ(kernel.dataSource(), plainSource);
  EXPECT_STREQ(kernel.className(), "CNNInstanceNormalization");
  kernel.setEpsilon(0.125f);
  EXPECT_EQ(kernel.epsilon(), 0.125f);

  auto tracked = std::make_shared<TrackedInstanceNormSource>(3);
  tracked->epsilonValue = 0.5f;
  tracked->nullGamma = tracked->nullBeta = true;  // gamma 1, beta 0
  CNNInstanceNormalization identity(device(), tracked);
  EXPECT_EQ(tracked->loads, 1);
  EXPECT_EQ(tracked->purges, 1);
  EXPECT_EQ(identity.epsilon(), 0.5f);
  auto values = test::randomRefImage(2, 3, 4, 3, -2.0, 2.0);
  auto o = runInstanceNorm(identity, tracked->spec(0.5), values, F::Float32, F::Float32, {2, 3, 4, 3}, {});
  EXPECT_TRUE(matches(o, F::Float32));

  tracked->nullGamma = tracked->nullBeta = false;
  identity.reloadGammaAndBetaFromDataSource();
  EXPECT_EQ(tracked->loads, 2);
  EXPECT_EQ(tracked->purges, 2);
  o = runInstanceNorm(identity, tracked->spec(0.5), values, F::Float32, F::Float32, {2, 3, 4, 3}, {});
  EXPECT_TRUE(matches(o, F::Float32)) << "after reloadGammaAndBetaFromDataSource";

  tracked->failLoad = true;
  expectInvalid("CNNInstanceNormalization", "dataSource.load",
                [&] { identity.reloadGammaAndBetaFromDataSource(); });
  EXPECT_EQ(tracked->purges, 2);
  expectInvalid("CNNInstanceNormalization", "dataSource.load",
                [&] { CNNInstanceNormalization(device(), tracked); });
  tracked->failLoad = false;
  tracked->channels = 4;
  expectInvalid("CNNInstanceNormalization", "numberOfFeatureChannels",
                [&] { identity.reloadGammaAndBetaFromDataSource(); });
  tracked->channels = 3;
  o = runInstanceNorm(identity, tracked->spec(0.5), values, F::Float32, F::Float32, {2, 3, 4, 3}, {});
  EXPECT_TRUE(matches(o, F::Float32)) << "after the rejected reloads";

  auto none = std::make_shared<TestInstanceNormSource>(0);
  expectInvalid("CNNInstanceNormalization", "numberOfFeatureChannels",
                [&] { CNNInstanceNormalization(device(), none); });
  expectInvalid("CNNInstanceNormalization", "dataSource",
                [&] { CNNInstanceNormalization(device(), nullptr); });
}

TEST(CNNInstanceNormalization, ChannelChecksAtEncode) {
  auto source = std::make_shared<TestInstanceNormSource>(6);
  auto kernel = CNNInstanceNormalization::make(device(), source);
  auto src = test::makeImage(test::randomRefImage(1, 3, 3, 8));
  auto dst = Image::make(device(), ImageDescriptor::make(F::Float32, 3, 3, 8));
  ref::RefImage poisoned = test::poison(*dst);
  kernel->setSourceFeatureChannelOffset(4);
  expectEncodeRejected(*kernel, src, dst, poisoned, "numberOfFeatureChannels");
  kernel->setSourceFeatureChannelOffset(0);
  kernel->setSourceFeatureChannelMaxCount(2);
  expectEncodeRejected(*kernel, src, dst, poisoned, "numberOfFeatureChannels");
  commonEncodeRejections([&] { return CNNInstanceNormalization::make(device(), source); }, 6);
}

TEST(CNNInstanceNormalization, FastPathIsChosenForFloat32) {
  auto& list = detail::cpuInstanceNormImplementations();
  EXPECT_EQ(chosenOnCpu(list, detail::InstanceNormProblem{}, F::Float32, 7), "cpu:rows");
  EXPECT_EQ(chosenOnCpu(list, detail::InstanceNormProblem{}, F::Float16, 7), "cpu:plain");
}

TEST(CNNInstanceNormalization, PyTorchParity) {
  int used = 0;
  for (const auto& tc : test::readTorchCases("softmax_normalization.txt")) {
    if (int(tc.scalars.at("op")) != 4) continue;
    const auto& shape = tc.shapes.at("input");
    ref::RefImage input(shape[0], shape[1], shape[2], shape[3]);
    input.data = tc.arrays.at("input");
    ref::RefImage expected = input;
    expected.data = tc.arrays.at("output");
    auto source = std::make_shared<TestInstanceNormSource>(size_t(shape[3]));
    source->gammaValues = floats(tc.arrays.at("gamma"));
    source->betaValues = floats(tc.arrays.at("beta"));
    source->epsilonValue = float(tc.scalars.at("epsilon"));
    for (bool plain : {false, true}) {
      test::ForcePlain force(plain);
      CNNInstanceNormalization kernel(device(), source);
      auto src = test::makeImage(input);
      auto dst = Image::make(device(), src->descriptor());
      test::poison(*dst);
      auto cb = queue()->commandBuffer();
      kernel.encode(cb, src, dst);
      cb->commit();
      cb->waitUntilCompleted();
      EXPECT_TRUE(close(test::download(*dst), expected, 5e-5, 1e-5))
          << "case " << tc.name << " " << pathName(plain);
    }
    ++used;
  }
  EXPECT_GT(used, 0);
}

}  // namespace
}  // namespace mpsnn
