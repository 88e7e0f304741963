// The pooling kernels (spec 02): CNNPoolingMax, CNNPoolingAverage, CNNPoolingL2Norm,
// CNNDilatedPoolingMax and the CNNPooling base behaviour, against the float64 reference and
// PyTorch, on the device selected by MPSNN_DEVICE. Every reference comparison runs on the fast
// implementations and, with MPSNN_FORCE_PLAIN=1, on the catch-all ones.
#include <array>
#include <cstdlib>
#include <type_traits>

#include "harness.h"

namespace mpsnn {
namespace {

using test::close;
using test::device;
using test::queue;
using F = ImageFeatureChannelFormat;

using test::ForcePlain;

enum class Which { Max, Average, L2Norm, DilatedMax };

const char* nameOf(Which w) {
  switch (w) {
    case Which::Max:
      return "CNNPoolingMax";
    case Which::Average:
      return "CNNPoolingAverage";
    case Which::L2Norm:
      return "CNNPoolingL2Norm";
    default:
      return "CNNDilatedPoolingMax";
  }
}

/// kernel (w, h), stride (x, y), dilation (x, y; dilated max only).
struct Shape {
  uint64_t kW, kH, sX, sY, dX = 1, dY = 1;
};

std::shared_ptr<CNNPooling> makePooling(Which which, const Shape& s) {
  switch (which) {
    case Which::Max:
      return CNNPoolingMax::make(device(), s.kW, s.kH, s.sX, s.sY);
    case Which::Average:
      return CNNPoolingAverage::make(device(), s.kW, s.kH, s.sX, s.sY);
    case Which::L2Norm:
      return CNNPoolingL2Norm::make(device(), s.kW, s.kH, s.sX, s.sY);
    default:
      return CNNDilatedPoolingMax::make(device(), s.kW, s.kH, s.dX, s.dY, s.sX, s.sY);
  }
}

ref::PoolingKind kindOf(const CNNPooling& k) {
  if (dynamic_cast<const CNNPoolingAverage*>(&k)) return ref::PoolingKind::Average;
  if (dynamic_cast<const CNNPoolingL2Norm*>(&k)) return ref::PoolingKind::L2Norm;
  return ref::PoolingKind::Max;
}

/// The reference's view of a kernel's window, read back through the public properties.
ref::PoolingWindow windowOf(const CNNPooling& k) {
  ref::PoolingWindow w;
  w.kernelWidth = int64_t(k.kernelWidth());
  w.kernelHeight = int64_t(k.kernelHeight());
  w.strideX = int64_t(k.strideInPixelsX());
  w.strideY = int64_t(k.strideInPixelsY());
  w.dilationX = int64_t(k.dilationRateX());
  w.dilationY = int64_t(k.dilationRateY());
  if (auto* a = dynamic_cast<const CNNPoolingAverage*>(&k)) {
    w.zeroPadSizeX = a->zeroPadSizeX();
    w.zeroPadSizeY = a->zeroPadSizeY();
  }
  return w;
}

/// The kernel's current placement properties, as the reference takes them.
ref::UnaryPlacement placementOf(const CNNPooling& k) {
  ref::UnaryPlacement p;
  p.offset = k.offset();
  p.clipRect = k.clipRect();
  p.sourceFeatureChannelOffset = k.sourceFeatureChannelOffset();
  p.sourceFeatureChannelMaxCount = k.sourceFeatureChannelMaxCount();
  p.destinationFeatureChannelOffset = k.destinationFeatureChannelOffset();
  p.edgeMode = k.edgeMode();
  return p;
}

void applyPlacement(CNNPooling& k, const ref::UnaryPlacement& p) {
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

/// Runs `kernel` (placement already set) manually from `values` (stored as `srcFormat`) into a
/// poisoned destination of `dstShape` (n, h, w, c) in `dstFormat`; the expectation starts from the
/// poison so that pixels and channels the kernel must not touch are checked too.
Outcome runPooling(CNNPooling& kernel, const ref::RefImage& values, F srcFormat, F dstFormat,
                   std::array<int64_t, 4> dstShape) {
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
  ref::poolingKernel(kindOf(kernel), windowOf(kernel), placementOf(kernel), src, o.expected);
  test::roundTo(o.expected, dstFormat);
  return o;
}

/// Both sides compute from the same stored inputs; float32 sums differ from float64 ones by rounding
/// only, and a 16-bit or 8-bit destination may round the two to neighbouring values.
::testing::AssertionResult matches(const Outcome& o, F dstFormat) {
  switch (dstFormat) {
    case F::Float32:
      return close(o.actual, o.expected, 1e-5, 2e-6);
    case F::Float16:
      return close(o.actual, o.expected, 2e-3, 1e-3);
    case F::Unorm8:
      return close(o.actual, o.expected, 0, 1.0 / 255 + 1e-6);
    default:
      return close(o.actual, o.expected, 1e-2, 1e-2);
  }
}

std::string describe(const CNNPooling& k) {
  std::ostringstream s;
  s << k.className() << " k=" << k.kernelWidth() << "x" << k.kernelHeight() << " s=" << k.strideInPixelsX()
    << "x" << k.strideInPixelsY() << " d=" << k.dilationRateX() << "x" << k.dilationRateY()
    << " offset=" << k.offset().x << "," << k.offset().y << "," << k.offset().z
    << " edge=" << toString(k.edgeMode());
  if (auto* a = dynamic_cast<const CNNPoolingAverage*>(&k))
    s << " zeroPad=" << a->zeroPadSizeX() << "x" << a->zeroPadSizeY();
  return s.str();
}

/// Window shapes per class: odd and even windows, stride below, equal to and above the window.
std::vector<Shape> shapesFor(Which which) {
  if (which == Which::DilatedMax)
    return {{2, 2, 1, 1, 2, 2}, {3, 2, 2, 1, 2, 3}, {2, 3, 1, 2, 3, 1}, {3, 3, 2, 2, 2, 2},
            {2, 1, 3, 1, 3, 1}, {1, 3, 1, 1, 1, 2}, {3, 3, 4, 3, 1, 1}, {2, 2, 5, 5, 2, 2}};
  return {{1, 1, 1, 1}, {2, 2, 2, 2}, {3, 3, 1, 1}, {3, 2, 2, 3}, {2, 3, 1, 2},
          {1, 3, 3, 1}, {2, 2, 3, 3}, {3, 3, 4, 4}, {4, 4, 2, 2}, {5, 3, 2, 1}};
}

/// Random shapes, channel counts, edge modes and offsets (negative ones and ones whose windows run
/// past the far edge), with several images per Image.
void randomShapesMatchReference(Which which, bool plain) {
  ForcePlain force(plain);
  const auto shapes = shapesFor(which);
  const int64_t channelCounts[] = {1, 3, 5, 7, 13, 17};
  size_t round = 0;
  for (int64_t channels : channelCounts) {
    for (size_t si = 0; si < shapes.size(); ++si) {
      const Shape& sh = shapes[si];
      const int64_t n = 2 + int64_t(round % 2), h = 5 + 2 * int64_t(round % 3),
                    w = 7 + 2 * int64_t(round % 4);
      auto values = test::randomRefImage(n, h, w, channels);
      const int64_t kWd = int64_t((sh.kW - 1) * sh.dX + 1), kHd = int64_t((sh.kH - 1) * sh.dY + 1);
      // Destinations: one pixel larger than "Same" (the last windows leave the image), "Same", and
      // "ValidOnly" (every window inside).
      const int64_t sx = int64_t(sh.sX), sy = int64_t(sh.sY);
      const std::array<int64_t, 2> beyond = {(w + sx - 1) / sx + 1, (h + sy - 1) / sy + 1};
      const std::array<int64_t, 2> same = {(w + sx - 1) / sx, (h + sy - 1) / sy};
      const std::array<int64_t, 2> valid = {std::max<int64_t>(1, (w - kWd) / sx + 1),
                                            std::max<int64_t>(1, (h - kHd) / sy + 1)};
      const std::pair<Offset, std::array<int64_t, 2>> placements[] = {{{0, 0, 0}, beyond},
                                                                      {{kWd / 2, kHd / 2, 0}, valid},
                                                                      {{kWd / 2 - 1, kHd / 2 - 1, 0}, same},
                                                                      {{-2, 1, 0}, beyond},
                                                                      {{3, -1, 1}, beyond}};
      for (auto edge : {ImageEdgeMode::Zero, ImageEdgeMode::Clamp}) {
        for (const auto& [off, size] : placements) {
          ++round;
          auto kernel = makePooling(which, sh);
          ref::UnaryPlacement p;
          p.offset = off;
          p.edgeMode = edge;
          applyPlacement(*kernel, p);
          if (auto* a = dynamic_cast<CNNPoolingAverage*>(kernel.get())) {  // zero bands 0, 1, 2
            a->setZeroPadSizeX(round % 3);
            a->setZeroPadSizeY((round + 1) % 3);
          }
          auto o =
              runPooling(*kernel, values, F::Float32, F::Float32, {n - off.z, size[1], size[0], channels});
          ASSERT_TRUE(matches(o, F::Float32)) << describe(*kernel) << " channels=" << channels << " src=" << n
                                              << "x" << h << "x" << w << (plain ? " plain" : " fast");
        }
      }
    }
  }
}

/// clipRect, channel offsets (any value: RELAXED), sourceFeatureChannelMaxCount, offset.z and a
/// destination wider than the channels written.
void placementMatchesReference(Which which, bool plain) {
  ForcePlain force(plain);
  const Shape sh = which == Which::DilatedMax ? Shape{3, 2, 2, 1, 2, 2} : Shape{3, 2, 2, 1};
  auto values = test::randomRefImage(4, 9, 11, 7);
  for (auto edge : {ImageEdgeMode::Zero, ImageEdgeMode::Clamp}) {
    std::vector<ref::UnaryPlacement> placements;
    ref::UnaryPlacement p;
    p.edgeMode = edge;
    p.offset = {-1, 2, 1};                // images 1..3 of the source
    p.clipRect = {{1, 2, 1}, {4, 3, 2}};  // a window of destination images 1..2
    placements.push_back(p);
    p.clipRect = {{3, 1, 0}, {100, 100, 3}};  // clipped by the destination's extent
    placements.push_back(p);
    p = ref::UnaryPlacement();
    p.edgeMode = edge;
    p.sourceFeatureChannelOffset = 2;  // channels 2..6 → destination channels 3..7
    p.destinationFeatureChannelOffset = 3;
    placements.push_back(p);
    p.sourceFeatureChannelMaxCount = 3;  // channels 2..4 only
    p.offset = {2, -2, 2};
    placements.push_back(p);
    p.clipRect = {{20, 0, 0}, {5, 5, 1}};  // outside the destination: nothing is written
    placements.push_back(p);
    for (const auto& placement : placements) {
      auto kernel = makePooling(which, sh);
      applyPlacement(*kernel, placement);
      if (auto* a = dynamic_cast<CNNPoolingAverage*>(kernel.get())) a->setZeroPadSizeX(1);
      auto o = runPooling(*kernel, values, F::Float32, F::Float32, {4, 7, 9, 9});
      EXPECT_TRUE(matches(o, F::Float32))
          << describe(*kernel) << " clip=" << placement.clipRect.origin.x << ","
          << placement.clipRect.origin.y << " srcC0=" << placement.sourceFeatureChannelOffset
          << (plain ? " plain" : " fast");
    }
  }
}

/// float16 images on both paths, a float16 → float32 pair, and unorm8 images on the plain path.
void formatsMatchReference(Which which, bool plain) {
  ForcePlain force(plain);
  const Shape sh = which == Which::DilatedMax ? Shape{2, 3, 2, 1, 3, 2} : Shape{3, 3, 2, 2};
  struct Pair {
    F src, dst;
  };
  std::vector<Pair> pairs = {{F::Float16, F::Float16}, {F::Float16, F::Float32}};
  if (plain) pairs.push_back({F::Unorm8, F::Unorm8});
  for (const Pair& formats : pairs) {
    const bool unorm = formats.src == F::Unorm8;
    auto values = test::randomRefImage(2, 7, 9, 5, unorm ? 0.0 : -1.0, 1.0);
    for (auto edge : {ImageEdgeMode::Zero, ImageEdgeMode::Clamp}) {
      auto kernel = makePooling(which, sh);
      ref::UnaryPlacement p;
      p.edgeMode = edge;
      p.offset = {0, 1, 0};
      applyPlacement(*kernel, p);
      if (auto* a = dynamic_cast<CNNPoolingAverage*>(kernel.get())) a->setZeroPadSizeY(1);
      auto o = runPooling(*kernel, values, formats.src, formats.dst, {2, 4, 5, 5});
      EXPECT_TRUE(matches(o, formats.dst)) << describe(*kernel) << " " << toString(formats.src) << " → "
                                           << toString(formats.dst) << (plain ? " plain" : " fast");
    }
  }
}

/// One kernel object reused across placements and image shapes: whatever a backend keeps between
/// encodes (oneDNN primitives per shape) must not leak one placement into the next.
void reuseMatchesReference(Which which, bool plain) {
  ForcePlain force(plain);
  const Shape sh = which == Which::DilatedMax ? Shape{2, 2, 1, 1, 2, 2} : Shape{3, 3, 1, 1};
  auto kernel = makePooling(which, sh);
  for (auto edge : {ImageEdgeMode::Zero, ImageEdgeMode::Clamp}) {
    // Same destination and source shapes, windows inside the source: only where they start differs.
    const Offset offsets[] = {{2, 2, 0}, {5, 3, 0}, {3, 6, 0}, {2, 2, 0}, {1, 0, 0}, {0, 1, 0}};
    for (const Offset& off : offsets) {
      ref::UnaryPlacement p;
      p.offset = off;
      p.edgeMode = edge;
      applyPlacement(*kernel, p);
      auto values = test::randomRefImage(2, 11, 12, 6);
      auto o = runPooling(*kernel, values, F::Float32, F::Float32, {2, 4, 5, 6});
      EXPECT_TRUE(matches(o, F::Float32)) << describe(*kernel) << (plain ? " plain" : " fast");
    }
    for (int64_t width : {9, 10, 9}) {  // the source's shape changes under the same kernel
      ref::UnaryPlacement p;
      p.offset = {1, 1, 0};
      p.edgeMode = edge;
      applyPlacement(*kernel, p);
      auto values = test::randomRefImage(1, 7, width, 6);
      auto o = runPooling(*kernel, values, F::Float32, F::Float32, {1, 5, 6, 6});
      EXPECT_TRUE(matches(o, F::Float32))
          << describe(*kernel) << " width=" << width << (plain ? " plain" : " fast");
    }
  }
}

/// encodeBatch (manual and auto) processes each pair like a separate encode.
void batchMatchesReference(Which which) {
  const Shape sh = which == Which::DilatedMax ? Shape{2, 2, 1, 1, 2, 2} : Shape{3, 3, 2, 2};
  auto kernel = makePooling(which, sh);
  kernel->setOffset({1, 0, 0});
  kernel->setEdgeMode(ImageEdgeMode::Clamp);
  ImageBatch sources, destinations;
  std::vector<ref::RefImage> values, poisoned;
  for (int i = 0; i < 3; ++i) {
    values.push_back(test::randomRefImage(1, 5, 7, 13));
    sources.push_back(test::makeImage(values.back()));
    destinations.push_back(Image::make(device(), ImageDescriptor::make(F::Float32, 4, 3, 13)));
    poisoned.push_back(test::poison(*destinations.back()));
  }
  auto cb = queue()->commandBuffer();
  kernel->encodeBatch(cb, sources, destinations);
  kernel->setDestinationImageAllocator(Image::defaultAllocator());
  ImageBatch autos = kernel->encodeBatch(cb, sources);  // auto mode also sets the offset
  const Offset autoOffset = kernel->offset();
  cb->commit();
  cb->waitUntilCompleted();
  ASSERT_EQ(autos.size(), 3u);
  for (int i = 0; i < 3; ++i) {
    ref::RefImage expected = poisoned[size_t(i)];
    ref::UnaryPlacement p = placementOf(*kernel);
    p.offset = {1, 0, 0};
    ref::poolingKernel(kindOf(*kernel), windowOf(*kernel), p, values[size_t(i)], expected);
    EXPECT_TRUE(close(test::download(*destinations[size_t(i)]), expected, 1e-5, 2e-6)) << "batch item " << i;
    const auto& a = *autos[size_t(i)];
    ref::RefImage autoExpected(1, int64_t(a.height()), int64_t(a.width()), 13);
    p.offset = autoOffset;
    ref::poolingKernel(kindOf(*kernel), windowOf(*kernel), p, values[size_t(i)], autoExpected);
    EXPECT_TRUE(close(test::download(a), autoExpected, 1e-5, 2e-6)) << "auto batch item " << i;
  }
}

// ---- spec 00 §5.2/§5.3, written out independently for the auto-mode checks ----
int64_t specDestinationSize(int64_t S, int64_t s, int64_t k, int style) {
  const int64_t num = S + style * (k - 1);
  return num <= 0 ? 0 : (num + s - 1) / s;
}
int64_t specOffset(int64_t S, int64_t s, int64_t k, int style, NNPaddingMethod align, bool remainderLeading) {
  const int64_t d = specDestinationSize(S, s, k, style);
  const int64_t extra = (d - 1) * s + k - S;
  int64_t lead = 0;
  if (align == NNPaddingMethod::AlignCentered)
    lead = (extra + (remainderLeading ? 1 : 0)) / 2;
  else if (align == NNPaddingMethod::AlignTopLeft)
    lead = extra;
  return k / 2 - lead;
}

/// Auto mode: destination size and offset from the padding policy (several methods), result equal
/// to the reference at that offset.
void autoModeMatchesReference(Which which) {
  struct Method {
    NNPaddingMethod bits;
    int style;
  };
  using M = NNPaddingMethod;
  const Method methods[] = {
      {M::AlignCentered | M::AddRemainderToTopLeft | M::SizeSame, 0},
      {M::AlignCentered | M::AddRemainderToBottomRight | M::SizeSame, 0},  // TensorFlow SAME
      {M::AlignCentered | M::AddRemainderToTopRight | M::SizeValidOnly, -1},
      {M::AlignCentered | M::AddRemainderToBottomLeft | M::SizeFull, 1},
      {M::AlignTopLeft | M::SizeSame, 0},
      {M::AlignBottomRight | M::SizeFull, 1},
  };
  const Shape shapes[] = {{3, 2, 2, 3, 2, 1}, {2, 3, 1, 2, 1, 2}, {4, 1, 3, 1, 1, 1}};
  for (const Shape& sh0 : shapes) {
    Shape sh = sh0;
    if (which != Which::DilatedMax) sh.dX = sh.dY = 1;
    for (const Method& m : methods) {
      auto kernel = makePooling(which, sh);
      kernel->setPadding(NNDefaultPadding::paddingWithMethod(m.bits));
      kernel->setDestinationImageAllocator(Image::defaultAllocator());
      kernel->setEdgeMode(ImageEdgeMode::Clamp);
      auto values = test::randomRefImage(1, 8, 7, 5);
      auto src = test::makeImage(values);
      auto cb = queue()->commandBuffer();
      ImagePtr dst = kernel->encode(cb, src);
      cb->commit();
      cb->waitUntilCompleted();
      const int64_t kWd = int64_t((sh.kW - 1) * sh.dX + 1), kHd = int64_t((sh.kH - 1) * sh.dY + 1);
      const NNPaddingMethod align = m.bits & M::AlignMask, rem = m.bits & M::AddRemainderToMask;
      const bool left = rem == M::AddRemainderToTopLeft || rem == M::AddRemainderToBottomLeft;
      const bool top = rem == M::AddRemainderToTopLeft || rem == M::AddRemainderToTopRight;
      const std::string what = describe(*kernel) + " method=" + describePaddingMethod(m.bits);
      ASSERT_FALSE(dst->isTemporary());
      EXPECT_EQ(int64_t(dst->width()), specDestinationSize(7, int64_t(sh.sX), kWd, m.style)) << what;
      EXPECT_EQ(int64_t(dst->height()), specDestinationSize(8, int64_t(sh.sY), kHd, m.style)) << what;
      EXPECT_EQ(dst->featureChannels(), 5u) << what;
      EXPECT_EQ(kernel->offset().x, specOffset(7, int64_t(sh.sX), kWd, m.style, align, left)) << what;
      EXPECT_EQ(kernel->offset().y, specOffset(8, int64_t(sh.sY), kHd, m.style, align, top)) << what;
      ref::RefImage expected(1, int64_t(dst->height()), int64_t(dst->width()), 5);
      ref::poolingKernel(kindOf(*kernel), windowOf(*kernel), placementOf(*kernel), values, expected);
      EXPECT_TRUE(close(test::download(*dst), expected, 1e-5, 2e-6)) << what;
    }
  }
}

/// Every invalid input of spec 02 (and the base's) throws InvalidArgument naming the class and
/// the property, and leaves the destination untouched.
void rejectsBadInput(Which which) {
  const char* cls = nameOf(which);
  auto expectThrowNaming = [&](auto&& make, const char* property, const char* value) {
    try {
      make();
      ADD_FAILURE() << cls << ": no InvalidArgument for " << property;
    } catch (const InvalidArgument& e) {
      const std::string text = e.what();
      EXPECT_NE(text.find(cls), std::string::npos) << text;
      EXPECT_NE(text.find(property), std::string::npos) << text;
      EXPECT_NE(text.find(value), std::string::npos) << text;
    }
  };
  // Construction: zero (and absurdly large) window parameters.
  const uint64_t huge = uint64_t(1) << 40;
  struct Bad {
    Shape shape;
    const char* property;
    const char* value;
  };
  std::vector<Bad> bad = {{{0, 2, 1, 1, 1, 1}, "kernelWidth", "0"},
                          {{2, 0, 1, 1, 1, 1}, "kernelHeight", "0"},
                          {{2, 2, 0, 1, 1, 1}, "strideInPixelsX", "0"},
                          {{2, 2, 1, 0, 1, 1}, "strideInPixelsY", "0"},
                          {{huge, 2, 1, 1, 1, 1}, "kernelWidth", "1099511627776"},
                          {{2, 2, 1, huge, 1, 1}, "strideInPixelsY", "1099511627776"}};
  if (which == Which::DilatedMax) {
    bad.push_back({{2, 2, 1, 1, 0, 1}, "dilationRateX", "0"});
    bad.push_back({{2, 2, 1, 1, 1, 0}, "dilationRateY", "0"});
    bad.push_back(
        {{1 << 20, 2, 1, 1, 1 << 12, 1}, "dilationRateX", "4294963201"});  // dilated extent too wide
  }
  for (const Bad& b : bad) expectThrowNaming([&] { makePooling(which, b.shape); }, b.property, b.value);
  // The three-argument constructors check too.
  if (which == Which::Max) expectThrowNaming([&] { CNNPoolingMax(device(), 0, 1); }, "kernelWidth", "0");
  if (which == Which::Average)
    expectThrowNaming([&] { CNNPoolingAverage(device(), 1, 0); }, "kernelHeight", "0");
  if (which == Which::L2Norm)
    expectThrowNaming([&] { CNNPoolingL2Norm(device(), 0, 0); }, "kernelWidth", "0");

  // Encode: image-dependent checks. The destination must stay as poisoned.
  const Shape sh = which == Which::DilatedMax ? Shape{2, 2, 1, 1, 2, 2} : Shape{2, 2, 1, 1};
  auto src = test::makeImage(test::randomRefImage(2, 5, 5, 4));
  auto dst = Image::make(device(), ImageDescriptor::make(F::Float32, 5, 5, 4, 2));
  ref::RefImage poisoned = test::poison(*dst);
  auto narrow = Image::make(device(), ImageDescriptor::make(F::Float32, 5, 5, 3, 2));  // C_dst 3 < C_read 4
  ref::RefImage narrowPoisoned = test::poison(*narrow);
  auto expectRejected = [&](CNNPooling& kernel, const char* property, const char* value, ImagePtr source,
                            ImagePtr destination) {
    auto cb = queue()->commandBuffer();
    try {
      kernel.encode(cb, source, destination);
      ADD_FAILURE() << cls << ": no InvalidArgument for " << property;
    } catch (const InvalidArgument& e) {
      const std::string text = e.what();
      EXPECT_NE(text.find(cls), std::string::npos) << text;
      EXPECT_NE(text.find(property), std::string::npos) << text;
      EXPECT_NE(text.find(value), std::string::npos) << text;
    }
    cb->commit();
    cb->waitUntilCompleted();
    const ref::RefImage& untouched = destination == dst ? poisoned : narrowPoisoned;
    EXPECT_TRUE(close(test::download(*destination), untouched, 0, 0))
        << "destination written after rejecting " << property;
  };
  for (auto [edge, name] : {std::pair{ImageEdgeMode::Mirror, "Mirror"},
                            std::pair{ImageEdgeMode::MirrorWithEdge, "MirrorWithEdge"},
                            std::pair{ImageEdgeMode::Constant, "Constant"}}) {
    auto k = makePooling(which, sh);
    k->setEdgeMode(edge);
    expectRejected(*k, "edgeMode", name, src, dst);
  }
  {
    auto k = makePooling(which, sh);  // C_dst = 4 < destinationFeatureChannelOffset 1 + C_read 4
    k->setDestinationFeatureChannelOffset(1);
    expectRejected(*k, "destinationFeatureChannelOffset", "1", src, dst);
  }
  {
    auto k = makePooling(which, sh);
    expectRejected(*k, "featureChannels", "3", src, narrow);
  }
  {
    auto k = makePooling(which, sh);
    k->setSourceFeatureChannelOffset(4);
    expectRejected(*k, "sourceFeatureChannelOffset", "4", src, dst);
  }
  {
    auto k = makePooling(which, sh);
    k->setOffset({0, 0, -1});
    expectRejected(*k, "offset.z", "-1", src, dst);
  }
  {
    auto k = makePooling(which, sh);
    k->setClipRect({{0, 0, 1}, {5, 5, 2}});
    expectRejected(*k, "clipRect", "1", src, dst);
  }
  {
    auto k = makePooling(which, sh);  // windows beyond the supported coordinate range
    k->setOffset({int64_t(1) << 62, 0, 0});
    expectRejected(*k, "offset.x", "4611686018427387904", src, dst);
    k->setOffset({0, -(int64_t(1) << 62) - 5, 0});
    expectRejected(*k, "offset.y", "-4611686018427387909", src, dst);
  }
  {
    auto k = makePooling(which, sh);
    auto cb = queue()->commandBuffer();
    EXPECT_THROW(k->encode(cb, src, src), InvalidArgument);  // aliasing
    EXPECT_THROW(k->encode(cb, nullptr, dst), InvalidArgument);
    EXPECT_THROW(k->encode(cb, src, ImagePtr()), InvalidArgument);
    EXPECT_THROW(k->encode(nullptr, src, dst), InvalidArgument);
    EXPECT_THROW(k->setPadding(nullptr), InvalidArgument);
    // Auto mode: ValidOnly with a window larger than the source.
    auto big = makePooling(which, {7, 7, 1, 1, 1, 1});
    big->setPadding(NNDefaultPadding::paddingWithMethod(NNPaddingMethod::SizeValidOnly));
    EXPECT_THROW(big->encode(cb, src), InvalidArgument);
    cb->commit();
    cb->waitUntilCompleted();
    EXPECT_TRUE(close(test::download(*dst), poisoned, 0, 0));
  }
}

/// PyTorch's max_pool2d / avg_pool2d / lp_pool2d cases of tests/pytorch/gen_pooling.py, mapped to MPS
/// placements (spec 02 §1.2): offset = floor(kWd/2) − padding, destination size from PyTorch's.
void pyTorchParity(Which which) {
  size_t used = 0;
  for (const auto& tc : test::readTorchCases("pooling.txt")) {
    const int op = int(tc.scalars.at("op"));  // 0 max, 1 average, 2 lp_pool2d(p = 2)
    const uint64_t dX = uint64_t(tc.scalars.at("dW")), dY = uint64_t(tc.scalars.at("dH"));
    const bool dilated = dX != 1 || dY != 1;
    const bool mine = (which == Which::Max && op == 0 && !dilated) ||
                      (which == Which::DilatedMax && op == 0) || (which == Which::Average && op == 1) ||
                      (which == Which::L2Norm && op == 2);
    if (!mine) continue;
    ++used;
    const auto& inShape = tc.shapes.at("input");
    const auto& outShape = tc.shapes.at("output");
    ref::RefImage input(inShape[0], inShape[1], inShape[2], inShape[3]);
    input.data = tc.arrays.at("input");
    ref::RefImage expected(outShape[0], outShape[1], outShape[2], outShape[3]);
    expected.data = tc.arrays.at("output");
    const Shape sh{uint64_t(tc.scalars.at("kW")),
                   uint64_t(tc.scalars.at("kH")),
                   uint64_t(tc.scalars.at("sW")),
                   uint64_t(tc.scalars.at("sH")),
                   dX,
                   dY};
    const int64_t pW = int64_t(tc.scalars.at("pW")), pH = int64_t(tc.scalars.at("pH"));
    const int64_t kWd = int64_t((sh.kW - 1) * dX + 1), kHd = int64_t((sh.kH - 1) * dY + 1);
    // Each case may map to several MPS configurations; all must agree with PyTorch.
    struct Config {
      ImageEdgeMode edge;
      bool bandIsPadding;  // average with Clamp: zero band as wide as PyTorch's padding (Caffe style)
      const char* note;
    };
    std::vector<Config> configs;
    if (op == 0) {
      configs.push_back({ImageEdgeMode::Clamp, false, "max: Clamp ignores out-of-image taps"});
      if (pW == 0 && pH == 0 && tc.scalars.at("ceil") == 0)
        configs.push_back({ImageEdgeMode::Zero, false, "max without padding: the edge mode is irrelevant"});
    } else if (op == 1 && tc.scalars.at("countIncludePad") != 0) {
      configs.push_back({ImageEdgeMode::Zero, false, "avg count_include_pad=True: Zero"});
      configs.push_back({ImageEdgeMode::Clamp, true, "avg count_include_pad=True: Clamp, zeroPad = padding"});
    } else if (op == 1) {
      configs.push_back({ImageEdgeMode::Clamp, false, "avg count_include_pad=False: Clamp, zeroPad 0"});
    } else {
      configs.push_back({ImageEdgeMode::Zero, false, "lp_pool2d(2), Zero"});
      configs.push_back({ImageEdgeMode::Clamp, false, "lp_pool2d(2), Clamp"});
    }
    for (const Config& cfg : configs) {
      auto kernel = makePooling(which, sh);
      kernel->setEdgeMode(cfg.edge);
      kernel->setOffset({kWd / 2 - pW, kHd / 2 - pH, 0});
      if (auto* a = dynamic_cast<CNNPoolingAverage*>(kernel.get())) {
        a->setZeroPadSizeX(cfg.bandIsPadding ? uint64_t(pW) : 0);
        a->setZeroPadSizeY(cfg.bandIsPadding ? uint64_t(pH) : 0);
      }
      auto src = test::makeImage(input);
      auto dst =
          Image::make(device(), ImageDescriptor::make(F::Float32, uint64_t(expected.w), uint64_t(expected.h),
                                                      uint64_t(expected.c), uint64_t(expected.n)));
      test::poison(*dst);
      auto cb = queue()->commandBuffer();
      kernel->encode(cb, src, dst);
      cb->commit();
      cb->waitUntilCompleted();
      // PyTorch computed in float64 from float64 inputs; the image holds them rounded to float32.
      EXPECT_TRUE(close(test::download(*dst), expected, 2e-5, 2e-6))
          << "case " << tc.name << " (" << cfg.note << ")";
    }
  }
  EXPECT_GT(used, 0u) << "no PyTorch cases for " << nameOf(which);
}

// ---------------------------------------------------------------------------------------------
// CNNPooling: the base behaviour every pooling kernel shares.

TEST(CNNPooling, ConstructorsStoreParametersAndDefaults) {
  EXPECT_TRUE(std::is_abstract_v<CNNPooling>);
  EXPECT_FALSE((std::is_constructible_v<CNNPoolingMax, DevicePtr>));  // -initWithDevice: unavailable
  EXPECT_FALSE((std::is_constructible_v<CNNPoolingAverage, DevicePtr>));
  EXPECT_FALSE((std::is_constructible_v<CNNPoolingL2Norm, DevicePtr>));
  EXPECT_FALSE((std::is_constructible_v<CNNDilatedPoolingMax, DevicePtr>));
  EXPECT_FALSE(
      (std::is_constructible_v<CNNDilatedPoolingMax, DevicePtr, uint64_t, uint64_t, uint64_t, uint64_t>));
  EXPECT_FALSE((std::is_constructible_v<CNNDilatedPoolingMax, DevicePtr, int, int, int, int>));
  EXPECT_TRUE((std::is_constructible_v<CNNPoolingMax, DevicePtr, int, int>));
  EXPECT_TRUE((std::is_constructible_v<CNNPoolingL2Norm, DevicePtr, int, int, int, int>));

  auto three = CNNPoolingAverage::make(device(), 3, 2);  // strides 1 (spec 02 §1 CHOICE)
  EXPECT_EQ(three->kernelWidth(), 3u);
  EXPECT_EQ(three->kernelHeight(), 2u);
  EXPECT_EQ(three->strideInPixelsX(), 1u);
  EXPECT_EQ(three->strideInPixelsY(), 1u);
  EXPECT_EQ(three->dilationRateX(), 1u);
  EXPECT_EQ(three->dilationRateY(), 1u);
  EXPECT_EQ(three->zeroPadSizeX(), 0u);
  EXPECT_EQ(three->zeroPadSizeY(), 0u);
  EXPECT_EQ(three->edgeMode(), ImageEdgeMode::Zero);
  EXPECT_EQ(three->offset(), Offset{});
  EXPECT_TRUE(isRectNoClip(three->clipRect()));
  EXPECT_FALSE(three->isBackwards());
  EXPECT_EQ(three->padding()->paddingMethod(), NNPaddingMethod::AlignCentered |
                                                   NNPaddingMethod::AddRemainderToTopLeft |
                                                   NNPaddingMethod::SizeSame);
  EXPECT_STREQ(three->className(), "CNNPoolingAverage");

  auto five = CNNPoolingMax::make(device(), 2, 4, 3, 5);
  EXPECT_EQ(five->kernelWidth(), 2u);
  EXPECT_EQ(five->kernelHeight(), 4u);
  EXPECT_EQ(five->strideInPixelsX(), 3u);
  EXPECT_EQ(five->strideInPixelsY(), 5u);
  EXPECT_STREQ(five->className(), "CNNPoolingMax");
  EXPECT_EQ(CNNPoolingL2Norm::make(device(), 1, 1)->strideInPixelsX(), 1u);
  EXPECT_STREQ(CNNPoolingL2Norm(device(), 2, 2, 1, 1).className(), "CNNPoolingL2Norm");

  auto dilated = CNNDilatedPoolingMax::make(device(), 2, 3, 4, 5, 6, 7);
  EXPECT_EQ(dilated->kernelWidth(), 2u);
  EXPECT_EQ(dilated->kernelHeight(), 3u);
  EXPECT_EQ(dilated->dilationRateX(), 4u);
  EXPECT_EQ(dilated->dilationRateY(), 5u);
  EXPECT_EQ(dilated->strideInPixelsX(), 6u);
  EXPECT_EQ(dilated->strideInPixelsY(), 7u);
  EXPECT_STREQ(dilated->className(), "CNNDilatedPoolingMax");
}

TEST(CNNPooling, SpecTestVectors) {
  // Spec 02 §6.
  ref::RefImage row(1, 1, 4, 1);
  row.data = {1, 2, 3, 4};
  auto pool = [&](CNNPooling& k, const ref::RefImage& values, int64_t width) {
    auto src = test::makeImage(values);
    auto dst = Image::make(device(), ImageDescriptor::make(F::Float32, uint64_t(width), 1, 1));
    auto cb = queue()->commandBuffer();
    k.encode(cb, src, dst);
    cb->commit();
    cb->waitUntilCompleted();
    return test::download(*dst).data;
  };
  for (bool plain : {false, true}) {
    ForcePlain force(plain);
    CNNPoolingMax max(device(), 2, 1, 2, 1);
    max.setOffset({1, 0, 0});
    EXPECT_EQ(pool(max, row, 2), (std::vector<double>{2, 4}));  // 1.
    max.setOffset({0, 0, 0});
    EXPECT_EQ(pool(max, row, 2), (std::vector<double>{1, 3}));  // 2.
    ref::RefImage negated = row;
    for (auto& v : negated.data) v = -v;
    EXPECT_EQ(pool(max, negated, 2), (std::vector<double>{0, -2}));  // zero edge wins
    ref::RefImage ones(1, 3, 3, 1);
    ones.data.assign(9, 1.0);
    CNNPoolingAverage avg(device(), 3, 3);  // 3.
    EXPECT_NEAR(pool(avg, ones, 1)[0], 4.0 / 9, 1e-7);
    avg.setEdgeMode(ImageEdgeMode::Clamp);
    EXPECT_NEAR(pool(avg, ones, 1)[0], 1.0, 1e-7);
    avg.setZeroPadSizeX(1);
    avg.setZeroPadSizeY(1);
    EXPECT_NEAR(pool(avg, ones, 1)[0], 4.0 / 9, 1e-7);
  }
}

TEST(CNNPooling, EvenWindowsLeanTopLeft) {
  // A 2×2 window centred at (1, 1) covers rows/columns 0 and 1 (spec 02 §1.1).
  ref::RefImage grid(1, 3, 3, 1);
  grid.data = {1, 2, 3, 4, 5, 6, 7, 8, 9};
  auto src = test::makeImage(grid);
  for (bool plain : {false, true}) {
    ForcePlain force(plain);
    CNNPoolingMax max(device(), 2, 2);
    max.setOffset({1, 1, 0});
    auto dst = Image::make(device(), ImageDescriptor::make(F::Float32, 2, 2, 1));
    auto cb = queue()->commandBuffer();
    max.encode(cb, src, dst);
    cb->commit();
    cb->waitUntilCompleted();
    EXPECT_EQ(test::download(*dst).data, (std::vector<double>{5, 6, 8, 9})) << (plain ? "plain" : "fast");
  }
}

TEST(CNNPooling, NaNPropagates) {
  ref::RefImage values = test::randomRefImage(1, 4, 4, 3);
  values.at(0, 1, 2, 1) = std::nan("");
  for (bool plain : {false, true}) {
    ForcePlain force(plain);
    for (Which which : {Which::Max, Which::Average, Which::L2Norm, Which::DilatedMax}) {
      for (auto edge : {ImageEdgeMode::Zero, ImageEdgeMode::Clamp}) {
        auto k = makePooling(which, {2, 2, 2, 2, 1, 1});
        k->setOffset({1, 1, 0});
        k->setEdgeMode(edge);
        auto o = runPooling(*k, values, F::Float32, F::Float32, {1, 2, 2, 3});
        EXPECT_TRUE(std::isnan(o.actual.at(0, 0, 1, 1))) << describe(*k);
        EXPECT_FALSE(std::isnan(o.actual.at(0, 0, 1, 0))) << describe(*k);
        EXPECT_TRUE(matches(o, F::Float32)) << describe(*k);
      }
    }
  }
}

TEST(CNNPooling, HugeWindowsAndFarOffsetsStayCheapAndExact) {
  // Windows of 2^30 taps over a 4-pixel row: the loops visit only the taps inside the image.
  ref::RefImage mixed(1, 1, 4, 1), negative(1, 1, 4, 1);
  mixed.data = {0.5, -2, 1.5, -1};
  negative.data = {-0.5, -2, -1.5, -1};
  auto src = test::makeImage(mixed);
  auto run = [&](CNNPooling& k, const ref::RefImage& values) {
    test::upload(*src, values);
    auto dst = Image::make(device(), ImageDescriptor::make(F::Float32, 1, 1, 1));
    auto cb = queue()->commandBuffer();
    k.encode(cb, src, dst);
    cb->commit();
    cb->waitUntilCompleted();
    return test::download(*dst).data[0];
  };
  const uint64_t K = uint64_t(1) << 30;                          // centre 0: taps −2^29 … 2^29 − 1
  const double left = double(K / 2), right = double(K / 2 - 4);  // taps left / right of the image
  for (bool plain : {false, true}) {
    ForcePlain force(plain);
    CNNPoolingMax max(device(), K, 1);
    EXPECT_EQ(run(max, mixed), 1.5);
    EXPECT_EQ(run(max, negative), 0.0);  // Zero: outside taps read 0
    max.setEdgeMode(ImageEdgeMode::Clamp);
    EXPECT_EQ(run(max, negative), -0.5);
    CNNPoolingAverage avg(device(), K, 1);
    EXPECT_NEAR(run(avg, mixed), -1.0 / double(K), 1e-12);
    avg.setEdgeMode(ImageEdgeMode::Clamp);
    EXPECT_NEAR(run(avg, mixed), -0.25, 1e-6);
    avg.setZeroPadSizeX(UINT64_MAX);  // every tap inside the zero band
    EXPECT_NEAR(run(avg, mixed), -1.0 / double(K), 1e-12);
    CNNPoolingL2Norm l2(device(), K, 1);
    EXPECT_NEAR(run(l2, mixed), std::sqrt(7.5), 1e-6);
    l2.setEdgeMode(ImageEdgeMode::Clamp);  // every outside tap reads an edge pixel
    EXPECT_NEAR(run(l2, mixed), std::sqrt(0.25 * (left + 1) + 4 + 2.25 + 1 * (right + 1)), 1e-2);
    // A window far outside: Zero reads zeros, Clamp the nearest edge pixel.
    CNNPoolingMax far(device(), 3, 1);
    far.setOffset({int64_t(1) << 61, 0, 0});
    EXPECT_EQ(run(far, negative), 0.0);
    far.setEdgeMode(ImageEdgeMode::Clamp);
    EXPECT_EQ(run(far, negative), -1.0);
    far.setOffset({-(int64_t(1) << 61), 0, 0});
    EXPECT_EQ(run(far, negative), -0.5);
  }
}

TEST(CNNPooling, KernelsAreCopyable) {
  CNNPoolingAverage original(device(), 3, 3, 2, 2);
  original.setEdgeMode(ImageEdgeMode::Clamp);
  original.setZeroPadSizeX(1);
  CNNPoolingAverage copy = original;
  copy.setZeroPadSizeX(0);
  copy.setOffset({1, 1, 0});
  EXPECT_EQ(original.zeroPadSizeX(), 1u);
  EXPECT_EQ(original.offset(), Offset{});
  auto values = test::randomRefImage(1, 6, 6, 3);
  for (CNNPoolingAverage* k : {&original, &copy}) {
    auto o = runPooling(*k, values, F::Float32, F::Float32, {1, 3, 3, 3});
    EXPECT_TRUE(matches(o, F::Float32)) << describe(*k);
  }
}

TEST(CNNPooling, TemporarySourceReadCountAndChaining) {
  auto values = test::randomRefImage(1, 8, 8, 3);
  auto src = test::makeImage(values);
  auto first = CNNPoolingMax::make(device(), 2, 2, 2, 2);  // auto mode: 4×4 temporary
  auto second = CNNPoolingAverage::make(device(), 2, 2, 2, 2);
  second->setDestinationImageAllocator(Image::defaultAllocator());
  auto cb = queue()->commandBuffer();
  ImagePtr mid = first->encode(cb, src);
  ASSERT_TRUE(mid->isTemporary());
  EXPECT_EQ(mid->width(), 4u);
  EXPECT_EQ(mid->height(), 4u);
  ImagePtr out = second->encode(cb, mid);
  EXPECT_EQ(static_cast<TemporaryImage&>(*mid).readCount(), 0u);
  EXPECT_THROW(second->encode(cb, mid), InvalidArgument);  // released
  cb->commit();
  cb->waitUntilCompleted();
  ref::RefImage pooled(1, 4, 4, 3), expected(1, 2, 2, 3);
  ref::UnaryPlacement p;
  p.offset = first->offset();
  ref::poolingKernel(ref::PoolingKind::Max, windowOf(*first), p, values, pooled);
  p.offset = second->offset();
  ref::poolingKernel(ref::PoolingKind::Average, windowOf(*second), p, pooled, expected);
  EXPECT_TRUE(close(test::download(*out), expected, 1e-5, 2e-6));
}

// ---------------------------------------------------------------------------------------------

#define MPSNN_POOLING_SUITE(Suite, which)                                                  \
  TEST(Suite, FastPathRandomShapes) { randomShapesMatchReference(which, false); }          \
  TEST(Suite, PlainPathRandomShapes) { randomShapesMatchReference(which, true); }          \
  TEST(Suite, FastPathPlacement) { placementMatchesReference(which, false); }              \
  TEST(Suite, PlainPathPlacement) { placementMatchesReference(which, true); }              \
  TEST(Suite, FastPathFormats) { formatsMatchReference(which, false); }                    \
  TEST(Suite, PlainPathFormats) { formatsMatchReference(which, true); }                    \
  TEST(Suite, FastPathOneKernelManyPlacements) { reuseMatchesReference(which, false); }    \
  TEST(Suite, PlainPathOneKernelManyPlacements) { reuseMatchesReference(which, true); }    \
  TEST(Suite, EncodeBatch) { batchMatchesReference(which); }                               \
  TEST(Suite, AutoModeSizesByPaddingPolicy) { autoModeMatchesReference(which); }           \
  TEST(Suite, RejectsBadInputAndLeavesTheDestinationUntouched) { rejectsBadInput(which); } \
  TEST(Suite, PyTorchParity) { pyTorchParity(which); }

MPSNN_POOLING_SUITE(CNNPoolingMax, Which::Max)
MPSNN_POOLING_SUITE(CNNPoolingAverage, Which::Average)
MPSNN_POOLING_SUITE(CNNPoolingL2Norm, Which::L2Norm)
MPSNN_POOLING_SUITE(CNNDilatedPoolingMax, Which::DilatedMax)
#undef MPSNN_POOLING_SUITE

// ---- class-specific behaviour ----

TEST(CNNPoolingMax, ClampEqualsIgnoringOutsideTapsZeroDoesNot) {
  // All-negative source: Clamp gives the window's own maximum, Zero lets the border windows see 0.
  auto values = test::randomRefImage(1, 5, 5, 2, -2.0, -0.5);
  for (bool plain : {false, true}) {
    ForcePlain force(plain);
    CNNPoolingMax k(device(), 3, 3);
    k.setEdgeMode(ImageEdgeMode::Clamp);
    auto o = runPooling(k, values, F::Float32, F::Float32, {1, 5, 5, 2});
    EXPECT_TRUE(matches(o, F::Float32));
    double cornerMax = -1e9;
    for (int64_t y = 0; y < 2; ++y)
      for (int64_t x = 0; x < 2; ++x) cornerMax = std::max(cornerMax, values.at(0, y, x, 1));
    EXPECT_NEAR(o.actual.at(0, 0, 0, 1), cornerMax, 1e-6);
    k.setEdgeMode(ImageEdgeMode::Zero);
    o = runPooling(k, values, F::Float32, F::Float32, {1, 5, 5, 2});
    EXPECT_EQ(o.actual.at(0, 0, 0, 1), 0.0);
    EXPECT_LT(o.actual.at(0, 2, 2, 1), 0.0);  // the centre window lies inside
  }
}

TEST(CNNPoolingAverage, ExcludeEdgesSetsClampAndTheLeadingPadding) {
  using M = NNPaddingMethod;
  struct Case {
    uint64_t k, s;
    int64_t w, h;
    M method;
  };
  const Case cases[] = {
      {3, 1, 7, 5, M::ExcludeEdges | M::SizeSame | M::AlignCentered},  // lead 1: Caffe pad 1
      {2, 2, 7, 6,
       M::ExcludeEdges | M::SizeSame | M::AlignCentered | M::AddRemainderToBottomRight},  // lead 0
      {4, 2, 9, 8, M::ExcludeEdges | M::SizeFull | M::AlignCentered},                     // lead 2
      {3, 2, 8, 8, M::ExcludeEdges | M::SizeValidOnly | M::AlignCentered},                // lead ≤ 0 → 0
  };
  for (bool plain : {false, true}) {
    ForcePlain force(plain);
    for (const Case& c : cases) {
      CNNPoolingAverage k(device(), c.k, c.k, c.s, c.s);
      k.setPadding(NNDefaultPadding::paddingWithMethod(c.method));
      k.setDestinationImageAllocator(Image::defaultAllocator());
      auto values = test::randomRefImage(1, c.h, c.w, 3);
      auto src = test::makeImage(values);
      auto cb = queue()->commandBuffer();
      ImagePtr dst = k.encode(cb, src);
      cb->commit();
      cb->waitUntilCompleted();
      const int style = any(c.method & M::SizeFull) ? 1 : any(c.method & M::SizeSame) ? 0 : -1;
      const bool remTopLeft = (c.method & M::AddRemainderToMask) == M::AddRemainderToTopLeft;
      const int64_t leadX =
          int64_t(c.k / 2) - specOffset(c.w, int64_t(c.s), int64_t(c.k), style, M::AlignCentered, remTopLeft);
      const int64_t leadY =
          int64_t(c.k / 2) - specOffset(c.h, int64_t(c.s), int64_t(c.k), style, M::AlignCentered, remTopLeft);
      const std::string what = describe(k) + " method=" + describePaddingMethod(c.method);
      EXPECT_EQ(k.edgeMode(), ImageEdgeMode::Clamp) << what;
      EXPECT_EQ(int64_t(k.zeroPadSizeX()), std::max<int64_t>(leadX, 0)) << what;
      EXPECT_EQ(int64_t(k.zeroPadSizeY()), std::max<int64_t>(leadY, 0)) << what;
      ref::RefImage expected(1, int64_t(dst->height()), int64_t(dst->width()), 3);
      ref::poolingKernel(ref::PoolingKind::Average, windowOf(k), placementOf(k), values, expected);
      EXPECT_TRUE(close(test::download(*dst), expected, 1e-5, 2e-6)) << what;
    }
  }
  // Without the flag the zero band and the edge mode stay as set.
  CNNPoolingAverage plainPolicy(device(), 3, 3);
  plainPolicy.setZeroPadSizeX(2);
  plainPolicy.destinationImageDescriptor({test::makeImage(test::randomRefImage(1, 5, 5, 1))}, {});
  EXPECT_EQ(plainPolicy.zeroPadSizeX(), 2u);
  EXPECT_EQ(plainPolicy.edgeMode(), ImageEdgeMode::Zero);
}

/// A Custom policy with ExcludeEdges whose hook puts edgeMode back to Zero: the hook runs last.
class ZeroEdgeCustomPadding : public NNPadding {
 public:
  NNPaddingMethod paddingMethod() const override {
    return NNPaddingMethod::Custom | NNPaddingMethod::ExcludeEdges | NNPaddingMethod::SizeSame;
  }
  ImageDescriptor destinationImageDescriptor(const ImageBatch&, const StateBatch&, Kernel& kernel,
                                             const ImageDescriptor& suggested) const override {
    static_cast<CNNKernel&>(kernel).setEdgeMode(ImageEdgeMode::Zero);
    return suggested;
  }
};

TEST(CNNPoolingAverage, CustomHookRunsAfterExcludeEdges) {
  CNNPoolingAverage k(device(), 3, 3);
  k.setPadding(std::make_shared<ZeroEdgeCustomPadding>());
  ImageDescriptor d = k.destinationImageDescriptor({test::makeImage(test::randomRefImage(1, 6, 5, 2))}, {});
  EXPECT_EQ(d.width(), 5u);
  EXPECT_EQ(d.height(), 6u);
  EXPECT_EQ(k.zeroPadSizeX(), 1u);
  EXPECT_EQ(k.zeroPadSizeY(), 1u);
  EXPECT_EQ(k.edgeMode(), ImageEdgeMode::Zero);
  // A rejected source leaves the properties as they were.
  CNNPoolingAverage big(device(), 9, 9);
  big.setPadding(
      NNDefaultPadding::paddingWithMethod(NNPaddingMethod::ExcludeEdges | NNPaddingMethod::SizeValidOnly));
  EXPECT_THROW(big.destinationImageDescriptor({test::makeImage(test::randomRefImage(1, 5, 5, 1))}, {}),
               InvalidArgument);
  EXPECT_EQ(big.edgeMode(), ImageEdgeMode::Zero);
  EXPECT_EQ(big.zeroPadSizeX(), 0u);
}

TEST(CNNPoolingAverage, TensorflowAveragePoolingPolicy) {
  // TF avg_pool SAME: divides by the valid taps (Clamp, zero band 0), remainder bottom-right.
  for (auto policy : {NNDefaultPadding::paddingForTensorflowAveragePooling(),
                      NNDefaultPadding::paddingForTensorflowAveragePoolingValidOnly()}) {
    for (bool plain : {false, true}) {
      ForcePlain force(plain);
      CNNPoolingAverage k(device(), 3, 2, 2, 2);
      k.setPadding(policy);
      k.setDestinationImageAllocator(Image::defaultAllocator());
      auto values = test::randomRefImage(2, 7, 8, 5);
      auto src = test::makeImage(values);
      auto cb = queue()->commandBuffer();
      ImagePtr dst = k.encode(cb, src);
      cb->commit();
      cb->waitUntilCompleted();
      const bool same = any(policy->paddingMethod() & NNPaddingMethod::SizeSame);
      const int style = same ? 0 : -1;
      EXPECT_EQ(k.edgeMode(), ImageEdgeMode::Clamp);
      EXPECT_EQ(int64_t(dst->width()), specDestinationSize(8, 2, 3, style));
      EXPECT_EQ(int64_t(dst->height()), specDestinationSize(7, 2, 2, style));
      EXPECT_EQ(k.offset().x, specOffset(8, 2, 3, style, NNPaddingMethod::AlignCentered, false));
      EXPECT_EQ(k.offset().y, specOffset(7, 2, 2, style, NNPaddingMethod::AlignCentered, false));
      ref::RefImage expected(1, int64_t(dst->height()), int64_t(dst->width()), 5);
      ref::poolingKernel(ref::PoolingKind::Average, windowOf(k), placementOf(k), values, expected);
      EXPECT_TRUE(close(test::download(*dst), expected, 1e-5, 2e-6)) << policy->label();
    }
  }
}

TEST(CNNPoolingL2Norm, NoNormalisationAndClampCountsEdgePixelsRepeatedly) {
  ref::RefImage row(1, 1, 3, 1);
  row.data = {3, 4, 12};
  auto src = test::makeImage(row);
  for (bool plain : {false, true}) {
    ForcePlain force(plain);
    CNNPoolingL2Norm k(device(), 3, 1);
    auto dst = Image::make(device(), ImageDescriptor::make(F::Float32, 3, 1, 1));
    auto runOnce = [&] {
      auto cb = queue()->commandBuffer();
      k.encode(cb, src, dst);
      cb->commit();
      cb->waitUntilCompleted();
      return test::download(*dst).data;
    };
    auto zero = runOnce();
    EXPECT_NEAR(zero[0], 5.0, 1e-6);  // taps −1 (0), 0, 1
    EXPECT_NEAR(zero[1], 13.0, 1e-6);
    EXPECT_NEAR(zero[2], std::sqrt(16.0 + 144.0), 1e-5);
    k.setEdgeMode(ImageEdgeMode::Clamp);
    auto clamp = runOnce();
    EXPECT_NEAR(clamp[0], std::sqrt(9.0 + 9.0 + 16.0), 1e-5);  // tap −1 reads pixel 0 again
    EXPECT_NEAR(clamp[2], std::sqrt(16.0 + 144.0 + 144.0), 1e-5);
  }
}

TEST(CNNDilatedPoolingMax, TapsAndTheClampQuirk) {
  // kernelWidth 2, dilation 3 → taps at centre − 2 and centre + 1 (spec 02 §5).
  ref::RefImage row(1, 1, 6, 1);
  row.data = {10, 20, 30, 40, 50, 60};
  auto src = test::makeImage(row);
  auto runAt = [&](CNNDilatedPoolingMax& k, int64_t centre, const ref::RefImage& values) {
    test::upload(*src, values);
    k.setOffset({centre, 0, 0});
    auto dst = Image::make(device(), ImageDescriptor::make(F::Float32, 1, 1, 1));
    auto cb = queue()->commandBuffer();
    k.encode(cb, src, dst);
    cb->commit();
    cb->waitUntilCompleted();
    return test::download(*dst).data[0];
  };
  for (bool plain : {false, true}) {
    ForcePlain force(plain);
    CNNDilatedPoolingMax k(device(), 2, 1, 3, 1, 1, 1);
    ref::RefImage descending = row;
    descending.data = {60, 50, 40, 30, 20, 10};
    EXPECT_EQ(runAt(k, 3, row), 50);         // taps 1, 4
    EXPECT_EQ(runAt(k, 3, descending), 50);  // taps 1 (50), 4 (20)
    // [5, 1, 1, 1], centre 1: taps −1 and 2. Clamp reads pixel 0 for tap −1 → 5 (PyTorch: 1).
    ref::RefImage quirk = row;
    quirk.data = {5, 1, 1, 1, 1, 1};
    k.setEdgeMode(ImageEdgeMode::Clamp);
    EXPECT_EQ(runAt(k, 1, quirk), 5);
    k.setEdgeMode(ImageEdgeMode::Zero);
    EXPECT_EQ(runAt(k, 1, quirk), 1);
  }
}

}  // namespace
}  // namespace mpsnn
