// The resampling kernels (spec 05): CNNUpsampling, CNNUpsamplingNearest, CNNUpsamplingBilinear,
// ImageScale, ImageBilinearScale, ImageLanczosScale and ImageTransformProvider, against the float64
// reference and PyTorch, on the device selected by MPSNN_DEVICE. Every reference comparison runs on
// the fast implementations and, with MPSNN_FORCE_PLAIN=1, on the catch-all ones.
#include <algorithm>
#include <array>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <optional>
#include <type_traits>

#include "harness.h"

namespace mpsnn {
namespace {

using test::close;
using test::device;
using test::queue;
using F = ImageFeatureChannelFormat;

struct ForcePlain {
  explicit ForcePlain(bool on) {
    if (on) setenv("MPSNN_FORCE_PLAIN", "1", 1);
  }
  ~ForcePlain() { unsetenv("MPSNN_FORCE_PLAIN"); }
};

enum class Which { Nearest, Bilinear, BilinearScale, LanczosScale };

const char* nameOf(Which w) {
  switch (w) {
    case Which::Nearest:
      return "CNNUpsamplingNearest";
    case Which::Bilinear:
      return "CNNUpsamplingBilinear";
    case Which::BilinearScale:
      return "ImageBilinearScale";
    default:
      return "ImageLanczosScale";
  }
}

bool isUpsampling(Which w) { return w == Which::Nearest || w == Which::Bilinear; }

/// One resampler configuration: integer factors (upsampling) or a transform (image scaling).
struct Config {
  Which which;
  uint64_t sX = 1, sY = 1;
  bool alignCorners = false;
  std::optional<ScaleTransform> transform;
};

std::shared_ptr<CNNKernel> makeKernel(const Config& c) {
  switch (c.which) {
    case Which::Nearest:
      return CNNUpsamplingNearest::make(device(), c.sX, c.sY);
    case Which::Bilinear:
      return CNNUpsamplingBilinear::make(device(), c.sX, c.sY, c.alignCorners);
    case Which::BilinearScale: {
      auto k = ImageBilinearScale::make(device());
      k->setScaleTransform(c.transform);
      return k;
    }
    default: {
      auto k = ImageLanczosScale::make(device());
      k->setScaleTransform(c.transform);
      return k;
    }
  }
}

/// The kernel's current placement properties, as the reference takes them.
ref::UnaryPlacement placementOf(const CNNKernel& k) {
  ref::UnaryPlacement p;
  p.offset = k.offset();
  p.clipRect = k.clipRect();
  p.sourceFeatureChannelOffset = k.sourceFeatureChannelOffset();
  p.sourceFeatureChannelMaxCount = k.sourceFeatureChannelMaxCount();
  p.destinationFeatureChannelOffset = k.destinationFeatureChannelOffset();
  p.edgeMode = k.edgeMode();
  return p;
}

void applyPlacement(CNNKernel& k, const ref::UnaryPlacement& p) {
  k.setOffset(p.offset);
  k.setClipRect(p.clipRect);
  k.setSourceFeatureChannelOffset(p.sourceFeatureChannelOffset);
  k.setSourceFeatureChannelMaxCount(p.sourceFeatureChannelMaxCount);
  k.setDestinationFeatureChannelOffset(p.destinationFeatureChannelOffset);
  k.setEdgeMode(p.edgeMode);
}

/// The reference of the kernel `k` (made from config `c`), reading its parameters back through the
/// public properties, for placement `p`.
void reference(const CNNKernel& k, const ref::UnaryPlacement& p, const ref::RefImage& src,
               ref::RefImage& dst) {
  if (auto* u = dynamic_cast<const CNNUpsampling*>(&k)) {
    ref::UpsamplingSpec s;
    s.bilinear = dynamic_cast<const CNNUpsamplingBilinear*>(&k) != nullptr;
    s.scaleFactorX = int64_t(u->scaleFactorX());
    s.scaleFactorY = int64_t(u->scaleFactorY());
    s.alignCorners = u->alignCorners();
    ref::upsamplingKernel(s, p, src, dst);
    return;
  }
  const auto& scale = dynamic_cast<const ImageScale&>(k);
  const auto t = scale.scaleTransform();
  const auto filter = dynamic_cast<const ImageLanczosScale*>(&k) ? ref::ImageScaleFilter::Lanczos
                                                                 : ref::ImageScaleFilter::Bilinear;
  ref::imageScaleKernel(filter, t ? &*t : nullptr, p, src, dst);
}

std::string describe(const CNNKernel& k) {
  std::ostringstream s;
  s << k.className();
  if (auto* u = dynamic_cast<const CNNUpsampling*>(&k))
    s << " scale=" << u->scaleFactorX() << "x" << u->scaleFactorY() << (u->alignCorners() ? " aligned" : "");
  if (auto* i = dynamic_cast<const ImageScale*>(&k)) {
    if (auto t = i->scaleTransform())
      s << " transform={" << t->scaleX << "," << t->scaleY << "," << t->translateX << "," << t->translateY
        << "}";
    else
      s << " stretch";
  }
  s << " offset=" << k.offset().x << "," << k.offset().y << "," << k.offset().z
    << " edge=" << toString(k.edgeMode());
  return s.str();
}

struct Outcome {
  ref::RefImage actual, expected;
};

/// Runs `kernel` (placement already set) manually from `values` (stored as `srcFormat`) into a
/// poisoned destination of `dstShape` (n, h, w, c) in `dstFormat`; the expectation starts from the
/// poison so that pixels and channels the kernel must not touch are checked too.
Outcome runKernel(CNNKernel& kernel, const ref::RefImage& values, F srcFormat, F dstFormat,
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
  reference(kernel, placementOf(kernel), src, o.expected);
  test::roundTo(o.expected, dstFormat);
  return o;
}

/// Both sides compute from the same stored inputs: float32 results differ from float64 ones by the
/// rounding of the weights and of sums of up to a few dozen products (Lanczos), and a 16-bit or
/// 8-bit destination may round the two to neighbouring values.
::testing::AssertionResult matches(const Outcome& o, F dstFormat) {
  switch (dstFormat) {
    case F::Float32:
      return close(o.actual, o.expected, 1e-5, 4e-6);
    case F::Float16:
      return close(o.actual, o.expected, 2e-3, 1e-3);
    case F::Unorm8:
      return close(o.actual, o.expected, 0, 1.0 / 255 + 1e-6);
    default:
      return close(o.actual, o.expected, 1e-2, 1e-2);
  }
}

/// The configurations each class is tested with.
std::vector<Config> configsFor(Which which) {
  std::vector<Config> configs;
  const std::pair<uint64_t, uint64_t> factors[] = {{1, 1}, {2, 2}, {3, 1}, {1, 4}, {2, 3}, {4, 4}, {3, 2}};
  if (which == Which::Nearest)
    for (auto [x, y] : factors) configs.push_back({which, x, y, false, {}});
  if (which == Which::Bilinear)
    for (bool aligned : {false, true})
      for (auto [x, y] : factors) configs.push_back({which, x, y, aligned, {}});
  if (!isUpsampling(which)) {
    const std::optional<ScaleTransform> transforms[] = {
        std::nullopt,                    // stretch over the destination
        ScaleTransform{2, 2, 0, 0},      // 2× up
        ScaleTransform{0.5, 0.5, 0, 0},  // 2× down
        ScaleTransform{1.7, 0.6, 1.5, -2.25},
        ScaleTransform{0.3, 3.1, -4, 3},   // strong down (wide Lanczos kernel) and up
        ScaleTransform{1, 1, 0.5, -0.5},   // a pure half-pixel shift
        ScaleTransform{0.23, 0.41, 0, 0},  // downscaling beyond 4×
    };
    for (const auto& t : transforms) configs.push_back({which, 1, 1, false, t});
  }
  return configs;
}

/// The destination size (w, h) the configuration naturally produces for a w × h source.
std::array<int64_t, 2> naturalSize(const Config& c, int64_t w, int64_t h) {
  if (isUpsampling(c.which)) return {w * int64_t(c.sX), h * int64_t(c.sY)};
  if (!c.transform) return {w + 2, h - 1};  // any size: the stretch adapts
  return {std::max<int64_t>(1, int64_t(double(w) * c.transform->scaleX)),
          std::max<int64_t>(1, int64_t(double(h) * c.transform->scaleY))};
}

/// Random shapes, channel counts, edge modes and offsets (negative ones, and destinations larger
/// than the resampled source so that reads leave the image), with several images per Image.
void randomShapesMatchReference(Which which, bool plain) {
  ForcePlain force(plain);
  const int64_t channelCounts[] = {1, 3, 5, 7, 13, 17};
  size_t round = 0;
  for (int64_t channels : channelCounts) {
    for (const Config& config : configsFor(which)) {
      const int64_t n = 2 + int64_t(round % 2), h = 3 + 2 * int64_t(round % 3),
                    w = 5 + 2 * int64_t(round % 4);
      auto values = test::randomRefImage(n, h, w, channels);
      const auto natural = naturalSize(config, w, h);
      const std::pair<Offset, std::array<int64_t, 2>> placements[] = {
          {{0, 0, 0}, natural},
          {{0, 0, 0}, {natural[0] + 3, natural[1] + 2}},  // the last columns and rows read beyond the source
          {{-1, 2, 1}, natural},
          {{2, -1, 0}, {std::max<int64_t>(1, natural[0] - 1), natural[1] + 1}},
      };
      for (auto edge : {ImageEdgeMode::Zero, ImageEdgeMode::Clamp}) {
        for (const auto& [off, size] : placements) {
          ++round;
          auto kernel = makeKernel(config);
          ref::UnaryPlacement p;
          p.offset = off;
          p.edgeMode = edge;
          applyPlacement(*kernel, p);
          auto o =
              runKernel(*kernel, values, F::Float32, F::Float32, {n - off.z, size[1], size[0], channels});
          ASSERT_TRUE(matches(o, F::Float32))
              << describe(*kernel) << " channels=" << channels << " src=" << n << "x" << h << "x" << w
              << " dst=" << size[0] << "x" << size[1] << (plain ? " plain" : " fast");
        }
      }
    }
  }
}

/// An image large enough for the OpenMP loops to split the work between threads.
void largeImageMatchesReference(Which which, bool plain) {
  ForcePlain force(plain);
  const Config config = which == Which::Nearest ? Config{which, 3, 2, false, {}}
                        : which == Which::Bilinear
                            ? Config{which, 2, 3, false, {}}
                            : Config{which, 1, 1, false, ScaleTransform{2.5, 0.7, 0.5, -1}};
  auto values = test::randomRefImage(2, 37, 41, 17);
  for (auto edge : {ImageEdgeMode::Zero, ImageEdgeMode::Clamp}) {
    auto kernel = makeKernel(config);
    ref::UnaryPlacement p;
    p.edgeMode = edge;
    p.offset = {-1, 1, 0};
    applyPlacement(*kernel, p);
    auto o = runKernel(*kernel, values, F::Float32, F::Float32, {2, 75, 101, 17});
    EXPECT_TRUE(matches(o, F::Float32)) << describe(*kernel) << (plain ? " plain" : " fast");
  }
}

/// clipRect, channel offsets (any value: RELAXED), sourceFeatureChannelMaxCount, offset.z and a
/// destination wider than the channels written.
void placementMatchesReference(Which which, bool plain) {
  ForcePlain force(plain);
  const Config config = which == Which::Nearest ? Config{which, 2, 3, false, {}}
                        : which == Which::Bilinear
                            ? Config{which, 3, 2, true, {}}
                            : Config{which, 1, 1, false, ScaleTransform{1.6, 0.7, 0.5, -1}};
  std::vector<Config> configs = {config};
  if (!isUpsampling(which)) configs.push_back({which, 1, 1, false, {}});  // the stretch, with clips
  auto values = test::randomRefImage(4, 5, 7, 7);
  for (const Config& c : configs) {
    for (auto edge : {ImageEdgeMode::Zero, ImageEdgeMode::Clamp}) {
      std::vector<ref::UnaryPlacement> placements;
      ref::UnaryPlacement p;
      p.edgeMode = edge;
      p.offset = {-1, 2, 1};                // images 1..3 of the source
      p.clipRect = {{1, 2, 1}, {6, 5, 2}};  // a window of destination images 1..2
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
      p.clipRect = {{40, 0, 0}, {5, 5, 1}};  // outside the destination: nothing is written
      placements.push_back(p);
      for (const auto& placement : placements) {
        auto kernel = makeKernel(c);
        applyPlacement(*kernel, placement);
        auto o = runKernel(*kernel, values, F::Float32, F::Float32, {4, 11, 13, 9});
        EXPECT_TRUE(matches(o, F::Float32))
            << describe(*kernel) << " clip=" << placement.clipRect.origin.x << ","
            << placement.clipRect.origin.y << " srcC0=" << placement.sourceFeatureChannelOffset
            << (plain ? " plain" : " fast");
      }
    }
  }
}

/// float16 images on both paths, mixed float16/float32 pairs, and unorm8 / bfloat16 images on the
/// plain path.
void formatsMatchReference(Which which, bool plain) {
  ForcePlain force(plain);
  const Config config = which == Which::Nearest ? Config{which, 3, 2, false, {}}
                        : which == Which::Bilinear
                            ? Config{which, 2, 3, false, {}}
                            : Config{which, 1, 1, false, ScaleTransform{1.5, 0.75, 0.5, 0}};
  struct Pair {
    F src, dst;
  };
  std::vector<Pair> pairs = {{F::Float16, F::Float16}, {F::Float16, F::Float32}, {F::Float32, F::Float16}};
  if (plain) {
    pairs.push_back({F::Unorm8, F::Unorm8});
    pairs.push_back({F::BFloat16, F::Float32});
  }
  for (const Pair& formats : pairs) {
    const bool unorm = formats.src == F::Unorm8;
    auto values = test::randomRefImage(2, 5, 7, 5, unorm ? 0.0 : -1.0, 1.0);
    for (auto edge : {ImageEdgeMode::Zero, ImageEdgeMode::Clamp}) {
      auto kernel = makeKernel(config);
      ref::UnaryPlacement p;
      p.edgeMode = edge;
      p.offset = {0, 1, 0};
      applyPlacement(*kernel, p);
      auto o = runKernel(*kernel, values, formats.src, formats.dst, {2, 9, 13, 5});
      EXPECT_TRUE(matches(o, formats.dst)) << describe(*kernel) << " " << toString(formats.src) << " → "
                                           << toString(formats.dst) << (plain ? " plain" : " fast");
    }
  }
}

/// encodeBatch (manual and auto) processes each pair like a separate encode; for the scalers
/// without a transform each destination's own size sets the stretch.
void batchMatchesReference(Which which) {
  const Config config = which == Which::Nearest    ? Config{which, 2, 2, false, {}}
                        : which == Which::Bilinear ? Config{which, 3, 2, true, {}}
                                                   : Config{which, 1, 1, false, {}};
  auto kernel = makeKernel(config);
  kernel->setOffset({1, 0, 0});
  kernel->setEdgeMode(ImageEdgeMode::Clamp);
  ImageBatch sources, destinations;
  std::vector<ref::RefImage> values, poisoned;
  for (int i = 0; i < 3; ++i) {
    values.push_back(test::randomRefImage(1, 5, 7, 13));
    sources.push_back(test::makeImage(values.back()));
    destinations.push_back(
        Image::make(device(), ImageDescriptor::make(F::Float32, uint64_t(9 + 2 * i), uint64_t(8 - i), 13)));
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
  EXPECT_EQ(autoOffset, (Offset{0, 0, 0}));
  for (int i = 0; i < 3; ++i) {
    ref::RefImage expected = poisoned[size_t(i)];
    ref::UnaryPlacement p = placementOf(*kernel);
    p.offset = {1, 0, 0};
    reference(*kernel, p, values[size_t(i)], expected);
    EXPECT_TRUE(close(test::download(*destinations[size_t(i)]), expected, 1e-5, 4e-6)) << "batch item " << i;
    const auto& a = *autos[size_t(i)];
    ref::RefImage autoExpected(1, int64_t(a.height()), int64_t(a.width()), 13);
    p.offset = autoOffset;
    reference(*kernel, p, values[size_t(i)], autoExpected);
    EXPECT_TRUE(close(test::download(a), autoExpected, 1e-5, 4e-6)) << "auto batch item " << i;
  }
}

/// Auto mode: upsampling makes W·sX × H·sY, the scalers the source's size, whatever the padding
/// policy's size option; offset becomes 0; the result equals the reference there. numberOfImages > 1
/// sources give single-image destinations (spec 00 §4.7).
void autoModeMatchesReference(Which which) {
  using M = NNPaddingMethod;
  const NNPaddingMethod methods[] = {M::AlignCentered | M::AddRemainderToTopLeft | M::SizeSame,
                                     M::AlignCentered | M::SizeValidOnly, M::AlignBottomRight | M::SizeFull};
  const Config config = which == Which::Nearest    ? Config{which, 3, 2, false, {}}
                        : which == Which::Bilinear ? Config{which, 2, 4, true, {}}
                                                   : Config{which, 1, 1, false, ScaleTransform{1.5, 2, 0, 0}};
  for (NNPaddingMethod m : methods) {
    auto kernel = makeKernel(config);
    kernel->setPadding(NNDefaultPadding::paddingWithMethod(m));
    kernel->setDestinationImageAllocator(Image::defaultAllocator());
    kernel->setOffset({3, -2, 1});
    auto values = test::randomRefImage(2, 5, 7, 3);
    auto src = test::makeImage(values);
    auto cb = queue()->commandBuffer();
    ImagePtr dst = kernel->encode(cb, src);
    cb->commit();
    cb->waitUntilCompleted();
    const std::string what = describe(*kernel) + " method=" + describePaddingMethod(m);
    ASSERT_FALSE(dst->isTemporary());
    const int64_t w = isUpsampling(which) ? 7 * int64_t(config.sX) : 7;
    const int64_t h = isUpsampling(which) ? 5 * int64_t(config.sY) : 5;
    EXPECT_EQ(int64_t(dst->width()), w) << what;
    EXPECT_EQ(int64_t(dst->height()), h) << what;
    EXPECT_EQ(dst->featureChannels(), 3u) << what;
    EXPECT_EQ(dst->numberOfImages(), 1u) << what;
    EXPECT_EQ(kernel->offset(), (Offset{0, 0, 1})) << what;  // offset.z is left as it was
    ref::RefImage expected(1, h, w, 3);
    reference(*kernel, placementOf(*kernel), values, expected);
    EXPECT_TRUE(close(test::download(*dst), expected, 1e-5, 4e-6)) << what;
  }
}

/// A Custom padding policy's hook still has the last word on the auto-mode descriptor.
class WiderCustomPadding : public NNPadding {
 public:
  NNPaddingMethod paddingMethod() const override {
    return NNPaddingMethod::Custom | NNPaddingMethod::SizeSame;
  }
  ImageDescriptor destinationImageDescriptor(const ImageBatch&, const StateBatch&, Kernel&,
                                             const ImageDescriptor& suggested) const override {
    ImageDescriptor d = suggested;
    d.setWidth(suggested.width() + 1);
    return d;
  }
};

void customPaddingHookRunsLast(Which which) {
  const Config config = isUpsampling(which) ? Config{which, 2, 2, false, {}} : Config{which, 1, 1, false, {}};
  auto kernel = makeKernel(config);
  kernel->setPadding(std::make_shared<WiderCustomPadding>());
  ImageDescriptor d =
      kernel->destinationImageDescriptor({test::makeImage(test::randomRefImage(1, 3, 4, 2))}, {});
  EXPECT_EQ(d.width(), isUpsampling(which) ? 9u : 5u);
  EXPECT_EQ(d.height(), isUpsampling(which) ? 6u : 3u);
}

/// Every invalid input of spec 05 (and the base's) throws InvalidArgument naming the class, the
/// property and the value, and leaves the destination untouched.
void rejectsBadInput(Which which) {
  const char* cls = nameOf(which);
  auto expectThrowNaming = [&](auto&& make, const char* property, const char* value) {
    try {
      make();
      ADD_FAILURE() << cls << ": no InvalidArgument for " << property << " = " << value;
    } catch (const InvalidArgument& e) {
      const std::string text = e.what();
      EXPECT_NE(text.find(cls), std::string::npos) << text;
      EXPECT_NE(text.find(property), std::string::npos) << text;
      EXPECT_NE(text.find(value), std::string::npos) << text;
    }
  };
  // Construction (upsampling): integer scale factor 0, and absurd ones (CHOICE) such as a negative
  // int converted to uint64.
  if (which == Which::Nearest) {
    expectThrowNaming([&] { CNNUpsamplingNearest(device(), 0, 2); }, "scaleFactorX", "0");
    expectThrowNaming([&] { CNNUpsamplingNearest::make(device(), 2, 0); }, "scaleFactorY", "0");
    expectThrowNaming([&] { CNNUpsamplingNearest(device(), uint64_t(1) << 31, 1); }, "scaleFactorX",
                      "2147483648");
    expectThrowNaming([&] { CNNUpsamplingNearest(device(), 1, uint64_t(-1)); }, "scaleFactorY",
                      "18446744073709551615");
  }
  if (which == Which::Bilinear) {
    expectThrowNaming([&] { CNNUpsamplingBilinear(device(), 0, 1); }, "scaleFactorX", "0");
    expectThrowNaming([&] { CNNUpsamplingBilinear(device(), 1, 0, true); }, "scaleFactorY", "0");
    expectThrowNaming([&] { CNNUpsamplingBilinear::make(device(), 0, 0, false); }, "scaleFactorX", "0");
    expectThrowNaming([&] { CNNUpsamplingBilinear(device(), 3, uint64_t(1) << 40); }, "scaleFactorY",
                      "1099511627776");
  }
  // The transform (image scaling): scales ≤ 0 or not finite, translations not finite (CHOICE), and
  // Lanczos kernels beyond the supported reach (CHOICE). A rejected value leaves the old one.
  if (!isUpsampling(which)) {
    const double inf = std::numeric_limits<double>::infinity(), nan = std::nan("");
    struct BadTransform {
      ScaleTransform t;
      const char* property;
      const char* value;
    };
    std::vector<BadTransform> bad = {{{0, 1, 0, 0}, "scaleTransform.scaleX", "0"},
                                     {{-2, 1, 0, 0}, "scaleTransform.scaleX", "-2"},
                                     {{nan, 1, 0, 0}, "scaleTransform.scaleX", "nan"},
                                     {{inf, 1, 0, 0}, "scaleTransform.scaleX", "inf"},
                                     {{1, 0, 0, 0}, "scaleTransform.scaleY", "0"},
                                     {{1, -0.5, 0, 0}, "scaleTransform.scaleY", "-0.5"},
                                     {{1, -inf, 0, 0}, "scaleTransform.scaleY", "-inf"},
                                     {{1, nan, 0, 0}, "scaleTransform.scaleY", "nan"},
                                     {{1, 1, nan, 0}, "scaleTransform.translateX", "nan"},
                                     {{1, 1, 0, -inf}, "scaleTransform.translateY", "-inf"}};
    if (which == Which::LanczosScale) {
      bad.push_back({{4e-5, 1, 0, 0}, "scaleTransform.scaleX", "4.0000000000000003e-05"});
      bad.push_back({{1, 1e-300, 0, 0}, "scaleTransform.scaleY", "1e-300"});
    }
    const ScaleTransform kept{2, 3, 4, 5};
    for (const BadTransform& b : bad) {
      auto k = std::dynamic_pointer_cast<ImageScale>(makeKernel({which, 1, 1, false, kept}));
      expectThrowNaming([&] { k->setScaleTransform(b.t); }, b.property, b.value);
      ASSERT_TRUE(k->scaleTransform().has_value());
      EXPECT_EQ(k->scaleTransform()->scaleX, 2);
      EXPECT_EQ(k->scaleTransform()->translateY, 5);
      expectThrowNaming([&] { k->setScaleTransform(&b.t); }, b.property, b.value);  // the pointer form too
    }
  }

  // Encode: image-dependent checks. The destination must stay as poisoned.
  const Config config = isUpsampling(which) ? Config{which, 2, 2, false, {}} : Config{which, 1, 1, false, {}};
  auto src = test::makeImage(test::randomRefImage(2, 5, 5, 4));
  auto dst = Image::make(device(), ImageDescriptor::make(F::Float32, 10, 10, 4, 2));
  ref::RefImage poisoned = test::poison(*dst);
  auto narrow = Image::make(device(), ImageDescriptor::make(F::Float32, 10, 10, 3, 2));  // C_dst 3 < C_read 4
  ref::RefImage narrowPoisoned = test::poison(*narrow);
  auto expectRejected = [&](CNNKernel& kernel, const char* property, const char* value, ImagePtr source,
                            ImagePtr destination, const ref::RefImage& untouched) {
    auto cb = queue()->commandBuffer();
    try {
      kernel.encode(cb, source, destination);
      ADD_FAILURE() << cls << ": no InvalidArgument for " << property << " = " << value;
    } catch (const InvalidArgument& e) {
      const std::string text = e.what();
      EXPECT_NE(text.find(cls), std::string::npos) << text;
      EXPECT_NE(text.find(property), std::string::npos) << text;
      EXPECT_NE(text.find(value), std::string::npos) << text;
    }
    cb->commit();
    cb->waitUntilCompleted();
    EXPECT_TRUE(close(test::download(*destination), untouched, 0, 0))
        << "destination written after rejecting " << property;
  };
  for (auto [edge, name] : {std::pair{ImageEdgeMode::Mirror, "Mirror"},
                            std::pair{ImageEdgeMode::MirrorWithEdge, "MirrorWithEdge"},
                            std::pair{ImageEdgeMode::Constant, "Constant"}}) {
    auto k = makeKernel(config);
    k->setEdgeMode(edge);
    expectRejected(*k, "edgeMode", name, src, dst, poisoned);
  }
  {
    auto k = makeKernel(config);  // C_dst = 4 < destinationFeatureChannelOffset 1 + C_read 4
    k->setDestinationFeatureChannelOffset(1);
    expectRejected(*k, "destinationFeatureChannelOffset", "1", src, dst, poisoned);
  }
  {
    auto k = makeKernel(config);
    expectRejected(*k, "featureChannels", "3", src, narrow, narrowPoisoned);
  }
  {
    auto k = makeKernel(config);
    k->setSourceFeatureChannelOffset(4);
    expectRejected(*k, "sourceFeatureChannelOffset", "4", src, dst, poisoned);
  }
  {
    auto k = makeKernel(config);
    k->setOffset({0, 0, -1});
    expectRejected(*k, "offset.z", "-1", src, dst, poisoned);
  }
  {
    auto k = makeKernel(config);
    k->setClipRect({{0, 0, 1}, {5, 5, 2}});
    expectRejected(*k, "clipRect", "1", src, dst, poisoned);
  }
  {
    auto k = makeKernel(config);  // offsets beyond the supported coordinate range (CHOICE)
    k->setOffset({(int64_t(1) << 62) + 1, 0, 0});
    expectRejected(*k, "offset.x", "4611686018427387905", src, dst, poisoned);
    k->setOffset({0, -(int64_t(1) << 62) - 5, 0});
    expectRejected(*k, "offset.y", "-4611686018427387909", src, dst, poisoned);
  }
  if (which == Which::LanczosScale) {
    // Without a transform the stretch sets the scale: 22000 → 1 pixels is below 3/65536 (CHOICE).
    auto wide = test::makeImage(test::randomRefImage(1, 1, 22000, 1));
    auto one = Image::make(device(), ImageDescriptor::make(F::Float32, 1, 1, 1));
    ref::RefImage onePoisoned = test::poison(*one);
    auto k = makeKernel(config);
    expectRejected(*k, "destination width / source width", "4.5454545454545452e-05", wide, one, onePoisoned);
  }
  {
    auto k = makeKernel(config);
    auto cb = queue()->commandBuffer();
    EXPECT_THROW(k->encode(cb, src, src), InvalidArgument);  // aliasing
    EXPECT_THROW(k->encode(cb, nullptr, dst), InvalidArgument);
    EXPECT_THROW(k->encode(cb, src, ImagePtr()), InvalidArgument);
    EXPECT_THROW(k->encode(nullptr, src, dst), InvalidArgument);
    EXPECT_THROW(k->setPadding(nullptr), InvalidArgument);
    cb->commit();
    cb->waitUntilCompleted();
    EXPECT_TRUE(close(test::download(*dst), poisoned, 0, 0));
  }
  if (isUpsampling(which)) {
    // Auto mode: a destination too large to exist is refused before anything runs.
    auto huge = makeKernel({which, (uint64_t(1) << 31) - 1, (uint64_t(1) << 31) - 1, false, {}});
    auto cb = queue()->commandBuffer();
    EXPECT_THROW(huge->encode(cb, src), InvalidArgument);
    cb->commit();
    cb->waitUntilCompleted();
  }
}

/// PyTorch cases of tests/pytorch/gen_resampling.py, each rebuilt as the MPS configuration the
/// generator's docstring maps it to.
void pyTorchParity(Which which) {
  size_t used = 0;
  for (const auto& tc : test::readTorchCases("resampling.txt")) {
    const int op = int(tc.scalars.at("op"));  // 0 nearest, 1 bilinear, 2 stretch, 3 scale factors
    const bool mine = (which == Which::Nearest && op == 0) || (which == Which::Bilinear && op == 1) ||
                      (which == Which::BilinearScale && (op == 2 || op == 3));
    if (!mine) continue;
    ++used;
    const auto& inShape = tc.shapes.at("input");
    const auto& outShape = tc.shapes.at("output");
    ref::RefImage input(inShape[0], inShape[1], inShape[2], inShape[3]);
    input.data = tc.arrays.at("input");
    ref::RefImage expected(outShape[0], outShape[1], outShape[2], outShape[3]);
    expected.data = tc.arrays.at("output");
    Config config{which, 1, 1, false, {}};
    if (op <= 1) {
      config.sX = uint64_t(tc.scalars.at("sX"));
      config.sY = uint64_t(tc.scalars.at("sY"));
      config.alignCorners = tc.scalars.at("alignCorners") != 0;
    }
    if (op == 3) config.transform = ScaleTransform{tc.scalars.at("tX"), tc.scalars.at("tY"), 0, 0};
    for (bool plain : {false, true}) {
      ForcePlain force(plain);
      auto kernel = makeKernel(config);
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
          << "case " << tc.name << " " << describe(*kernel) << (plain ? " plain" : " fast");
    }
  }
  EXPECT_GT(used, 0u) << "no PyTorch cases for " << nameOf(which);
}

/// Runs `kernel` on `values` (float32) into a new w × h float32 destination and returns it.
ref::RefImage runInto(CNNKernel& kernel, const ref::RefImage& values, int64_t w, int64_t h) {
  auto src = test::makeImage(values);
  auto dst = Image::make(device(), ImageDescriptor::make(F::Float32, uint64_t(w), uint64_t(h),
                                                         uint64_t(values.c), uint64_t(values.n)));
  test::poison(*dst);
  auto cb = queue()->commandBuffer();
  kernel.encode(cb, src, dst);
  cb->commit();
  cb->waitUntilCompleted();
  return test::download(*dst);
}

ref::RefImage row(std::vector<double> v) {
  ref::RefImage r(1, 1, int64_t(v.size()), 1);
  r.data = std::move(v);
  return r;
}

void expectNear(const std::vector<double>& actual, const std::vector<double>& expected, double tolerance,
                const std::string& what) {
  ASSERT_EQ(actual.size(), expected.size()) << what;
  for (size_t i = 0; i < actual.size(); ++i)
    EXPECT_NEAR(actual[i], expected[i], tolerance) << what << " at " << i;
}

// ---------------------------------------------------------------------------------------------
// CNNUpsampling: the base behaviour both upsampling kernels share.

TEST(CNNUpsampling, ConstructorsStoreParametersAndDefaults) {
  EXPECT_TRUE(std::is_abstract_v<CNNUpsampling>);
  EXPECT_FALSE((std::is_constructible_v<CNNUpsamplingNearest, DevicePtr>));  // -initWithDevice: unavailable
  EXPECT_FALSE((std::is_constructible_v<CNNUpsamplingBilinear, DevicePtr>));
  EXPECT_TRUE((std::is_constructible_v<CNNUpsamplingNearest, DevicePtr, int, int>));
  EXPECT_TRUE((std::is_constructible_v<CNNUpsamplingBilinear, DevicePtr, int, int>));
  EXPECT_TRUE((std::is_constructible_v<CNNUpsamplingBilinear, DevicePtr, int, int, bool>));
  EXPECT_FALSE((std::is_constructible_v<CNNUpsamplingNearest, DevicePtr, int, int, bool>));

  auto nearest = CNNUpsamplingNearest::make(device(), 3, 2);
  EXPECT_EQ(nearest->scaleFactorX(), 3.0);
  EXPECT_EQ(nearest->scaleFactorY(), 2.0);
  EXPECT_FALSE(nearest->alignCorners());
  EXPECT_STREQ(nearest->className(), "CNNUpsamplingNearest");
  EXPECT_EQ(nearest->edgeMode(), ImageEdgeMode::Zero);
  EXPECT_EQ(nearest->offset(), Offset{});
  EXPECT_TRUE(isRectNoClip(nearest->clipRect()));
  EXPECT_FALSE(nearest->isBackwards());
  EXPECT_EQ(nearest->kernelWidth(), 1u);
  EXPECT_EQ(nearest->strideInPixelsX(), 1u);
  EXPECT_EQ(nearest->padding()->paddingMethod(), NNPaddingMethod::AlignCentered |
                                                     NNPaddingMethod::AddRemainderToTopLeft |
                                                     NNPaddingMethod::SizeSame);

  auto bilinear = CNNUpsamplingBilinear::make(device(), 1, 4);  // alignCorners defaults to false
  EXPECT_EQ(bilinear->scaleFactorX(), 1.0);
  EXPECT_EQ(bilinear->scaleFactorY(), 4.0);
  EXPECT_FALSE(bilinear->alignCorners());
  EXPECT_STREQ(bilinear->className(), "CNNUpsamplingBilinear");
  EXPECT_TRUE(CNNUpsamplingBilinear::make(device(), 2, 2, true)->alignCorners());
  EXPECT_FALSE(CNNUpsamplingBilinear(device(), 2, 2, false).alignCorners());
}

TEST(CNNUpsampling, ScaleFactorOneCopiesTheSource) {
  auto values = test::randomRefImage(2, 5, 7, 3);
  for (bool plain : {false, true}) {
    ForcePlain force(plain);
    std::vector<std::shared_ptr<CNNUpsampling>> kernels = {CNNUpsamplingNearest::make(device(), 1, 1),
                                                           CNNUpsamplingBilinear::make(device(), 1, 1, false),
                                                           CNNUpsamplingBilinear::make(device(), 1, 1, true)};
    for (auto& k : kernels) {
      ref::RefImage stored = values;
      test::roundTo(stored, F::Float32);
      EXPECT_TRUE(close(runInto(*k, stored, 7, 5), stored, 0, 0))
          << describe(*k) << (plain ? " plain" : " fast");
    }
  }
}

TEST(CNNUpsampling, HugeFactorsAndFarOffsetsStayExact) {
  // Factor 2^31 − 1: every destination pixel of a small clip reads the first source pixel (nearest)
  // or a position within 2^-31 of it (bilinear, align corners: x·(W − 1)/(W·s − 1)).
  ref::RefImage values = row({0.5, -0.25, 0.75});
  const uint64_t big = (uint64_t(1) << 31) - 1;
  for (bool plain : {false, true}) {
    ForcePlain force(plain);
    CNNUpsamplingNearest nearest(device(), big, 1);
    expectNear(runInto(nearest, values, 4, 1).data, {0.5, 0.5, 0.5, 0.5}, 0, "nearest, huge factor");
    CNNUpsamplingBilinear aligned(device(), big, 1, true);
    expectNear(runInto(aligned, values, 2, 1).data, {0.5, 0.5}, 1e-6, "bilinear aligned, huge factor");
    // Offsets near the ±2^62 limit: nearest reads by edgeMode, bilinear clamps to the edge pixel.
    nearest.setOffset({int64_t(1) << 62, 0, 0});
    expectNear(runInto(nearest, values, 2, 1).data, {0, 0}, 0, "nearest far right, Zero");
    nearest.setEdgeMode(ImageEdgeMode::Clamp);
    expectNear(runInto(nearest, values, 2, 1).data, {0.75, 0.75}, 0, "nearest far right, Clamp");
    nearest.setOffset({-(int64_t(1) << 62), 0, 0});
    expectNear(runInto(nearest, values, 2, 1).data, {0.5, 0.5}, 0, "nearest far left, Clamp");
    CNNUpsamplingBilinear half(device(), 2, 1);
    half.setOffset({int64_t(1) << 62, 0, 0});
    expectNear(runInto(half, values, 2, 1).data, {0.75, 0.75}, 0, "bilinear far right");
  }
}

TEST(CNNUpsampling, TemporarySourceReadCountAndChaining) {
  auto values = test::randomRefImage(1, 3, 4, 3);
  auto src = test::makeImage(values);
  auto first = CNNUpsamplingNearest::make(device(), 2, 2);  // auto mode: 8×6 temporary
  auto second = CNNUpsamplingBilinear::make(device(), 2, 3, true);
  second->setDestinationImageAllocator(Image::defaultAllocator());
  auto cb = queue()->commandBuffer();
  ImagePtr mid = first->encode(cb, src);
  ASSERT_TRUE(mid->isTemporary());
  EXPECT_EQ(mid->width(), 8u);
  EXPECT_EQ(mid->height(), 6u);
  ImagePtr out = second->encode(cb, mid);
  EXPECT_EQ(static_cast<TemporaryImage&>(*mid).readCount(), 0u);
  EXPECT_THROW(second->encode(cb, mid), InvalidArgument);  // released
  cb->commit();
  cb->waitUntilCompleted();
  ref::RefImage upsampled(1, 6, 8, 3), expected(1, 18, 16, 3);
  reference(*first, ref::UnaryPlacement(), values, upsampled);
  reference(*second, ref::UnaryPlacement(), upsampled, expected);
  EXPECT_TRUE(close(test::download(*out), expected, 1e-5, 4e-6));
}

// ---------------------------------------------------------------------------------------------

#define MPSNN_RESAMPLING_SUITE(Suite, which)                                      \
  TEST(Suite, FastPathRandomShapes) { randomShapesMatchReference(which, false); } \
  TEST(Suite, PlainPathRandomShapes) { randomShapesMatchReference(which, true); } \
  TEST(Suite, FastPathLargeImage) { largeImageMatchesReference(which, false); }   \
  TEST(Suite, PlainPathLargeImage) { largeImageMatchesReference(which, true); }   \
  TEST(Suite, FastPathPlacement) { placementMatchesReference(which, false); }     \
  TEST(Suite, PlainPathPlacement) { placementMatchesReference(which, true); }     \
  TEST(Suite, FastPathFormats) { formatsMatchReference(which, false); }           \
  TEST(Suite, PlainPathFormats) { formatsMatchReference(which, true); }           \
  TEST(Suite, EncodeBatch) { batchMatchesReference(which); }                      \
  TEST(Suite, AutoModeSize) { autoModeMatchesReference(which); }                  \
  TEST(Suite, CustomPaddingHookRunsLast) { customPaddingHookRunsLast(which); }    \
  TEST(Suite, RejectsBadInputAndLeavesTheDestinationUntouched) { rejectsBadInput(which); }

MPSNN_RESAMPLING_SUITE(CNNUpsamplingNearest, Which::Nearest)
MPSNN_RESAMPLING_SUITE(CNNUpsamplingBilinear, Which::Bilinear)
MPSNN_RESAMPLING_SUITE(ImageBilinearScale, Which::BilinearScale)
MPSNN_RESAMPLING_SUITE(ImageLanczosScale, Which::LanczosScale)
#undef MPSNN_RESAMPLING_SUITE

TEST(CNNUpsamplingNearest, PyTorchParity) { pyTorchParity(Which::Nearest); }
TEST(CNNUpsamplingBilinear, PyTorchParity) { pyTorchParity(Which::Bilinear); }
TEST(ImageBilinearScale, PyTorchParity) { pyTorchParity(Which::BilinearScale); }

// ---- class-specific behaviour ----

TEST(CNNUpsamplingNearest, EachSourcePixelBecomesABlock) {
  ref::RefImage grid(1, 2, 2, 1);
  grid.data = {1, 2, 3, 4};
  for (bool plain : {false, true}) {
    ForcePlain force(plain);
    CNNUpsamplingNearest k(device(), 3, 2);
    expectNear(runInto(k, grid, 6, 4).data,
               {1, 1, 1, 2, 2, 2, 1, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 4, 3, 3, 3, 4, 4, 4}, 0,
               plain ? "plain" : "fast");
  }
}

TEST(CNNUpsamplingNearest, EdgeModeDecidesReadsOutsideTheSource) {
  ref::RefImage values = row({5, 6, 7});
  for (bool plain : {false, true}) {
    ForcePlain force(plain);
    CNNUpsamplingNearest k(device(), 2, 1);
    k.setOffset({-1, 0, 0});  // columns 0, 1 read source −1; the destination runs past the source too
    expectNear(runInto(k, values, 9, 1).data, {0, 0, 5, 5, 6, 6, 7, 7, 0}, 0, "Zero");
    k.setEdgeMode(ImageEdgeMode::Clamp);
    expectNear(runInto(k, values, 9, 1).data, {5, 5, 5, 5, 6, 6, 7, 7, 7}, 0, "Clamp");
  }
}

TEST(CNNUpsamplingBilinear, HandComputedValues) {
  ref::RefImage values = row({0, 1, 4});
  for (bool plain : {false, true}) {
    ForcePlain force(plain);
    // alignCorners false: fx = (x + 0.5)/2 − 0.5 = −0.25, 0.25, 0.75, 1.25, 1.75, 2.25, clamped.
    CNNUpsamplingBilinear half(device(), 2, 1);
    expectNear(runInto(half, values, 6, 1).data, {0, 0.25, 0.75, 1.75, 3.25, 4}, 1e-6, "half pixel");
    // alignCorners true: fx = x·2/5 = 0, 0.4, 0.8, 1.2, 1.6, 2: the corner pixels coincide.
    CNNUpsamplingBilinear aligned(device(), 2, 1, true);
    expectNear(runInto(aligned, values, 6, 1).data, {0, 0.4, 0.8, 1.6, 2.8, 4}, 1e-6, "aligned");
    // A one-pixel source (W_in − 1 = 0) and a 1 × 1 result (W_out − 1 = 0) both read pixel 0.
    CNNUpsamplingBilinear one(device(), 1, 1, true);
    expectNear(runInto(one, row({2.5}), 1, 1).data, {2.5}, 0, "1 × 1");
    CNNUpsamplingBilinear wide(device(), 3, 1, true);
    expectNear(runInto(wide, row({2.5}), 3, 1).data, {2.5, 2.5, 2.5}, 0, "one source pixel");
    // edgeMode does not change bilinear: positions clamp to the image (spec 05's sample()).
    half.setOffset({-2, 0, 0});
    const auto zero = runInto(half, values, 6, 1).data;
    half.setEdgeMode(ImageEdgeMode::Clamp);
    expectNear(runInto(half, values, 6, 1).data, zero, 0, "edge modes");
    expectNear(zero, {0, 0, 0, 0, 0, 0.25}, 1e-6, "offset −2");
  }
}

// ---------------------------------------------------------------------------------------------
// ImageScale: the transform both scalers share.

TEST(ImageScale, ConstructorsAndScaleTransformProperty) {
  EXPECT_TRUE(std::is_abstract_v<ImageScale>);
  EXPECT_TRUE((std::is_constructible_v<ImageBilinearScale, DevicePtr>));
  EXPECT_TRUE((std::is_constructible_v<ImageLanczosScale, DevicePtr>));
  for (std::shared_ptr<ImageScale> k : {std::shared_ptr<ImageScale>(ImageBilinearScale::make(device())),
                                        std::shared_ptr<ImageScale>(ImageLanczosScale::make(device()))}) {
    EXPECT_FALSE(k->scaleTransform().has_value());  // default: none, stretch
    EXPECT_EQ(k->edgeMode(), ImageEdgeMode::Zero);
    EXPECT_EQ(k->offset(), Offset{});
    EXPECT_TRUE(isRectNoClip(k->clipRect()));
    ScaleTransform t{2, 0.5, -3, 1.25};
    k->setScaleTransform(&t);  // MPS's form: the value is copied
    t.scaleX = 7;
    ASSERT_TRUE(k->scaleTransform().has_value());
    EXPECT_EQ(k->scaleTransform()->scaleX, 2);
    EXPECT_EQ(k->scaleTransform()->scaleY, 0.5);
    EXPECT_EQ(k->scaleTransform()->translateX, -3);
    EXPECT_EQ(k->scaleTransform()->translateY, 1.25);
    k->setScaleTransform(nullptr);
    EXPECT_FALSE(k->scaleTransform().has_value());
    k->setScaleTransform(ScaleTransform{3, 3, 0, 0});
    EXPECT_EQ(k->scaleTransform()->scaleX, 3);
    k->setScaleTransform(std::nullopt);
    EXPECT_FALSE(k->scaleTransform().has_value());
  }
  EXPECT_STREQ(ImageBilinearScale(device()).className(), "ImageBilinearScale");
  EXPECT_STREQ(ImageLanczosScale(device()).className(), "ImageLanczosScale");
}

TEST(ImageScale, WithoutTransformTheSourceFillsTheDestination) {
  // No transform ≡ the transform {W_dst/W_src, H_dst/H_src, 0, 0}, for both filters and paths.
  auto values = test::randomRefImage(2, 6, 9, 4);
  for (bool plain : {false, true}) {
    ForcePlain force(plain);
    for (bool lanczos : {false, true}) {
      std::shared_ptr<ImageScale> stretch =
          lanczos ? std::shared_ptr<ImageScale>(ImageLanczosScale::make(device()))
                  : std::shared_ptr<ImageScale>(ImageBilinearScale::make(device()));
      std::shared_ptr<ImageScale> explicitTransform =
          lanczos ? std::shared_ptr<ImageScale>(ImageLanczosScale::make(device()))
                  : std::shared_ptr<ImageScale>(ImageBilinearScale::make(device()));
      explicitTransform->setScaleTransform(ScaleTransform{4.0 / 9.0, 11.0 / 6.0, 0, 0});
      EXPECT_TRUE(close(runInto(*stretch, values, 4, 11), runInto(*explicitTransform, values, 4, 11), 0, 0))
          << describe(*stretch) << (plain ? " plain" : " fast");
    }
  }
}

TEST(ImageScale, TranslationBlitsASourceRegionToTheClipOrigin) {
  // MPS's example: translateX = −x0·scaleX maps source column x0 to the clip's left edge. At scale
  // 1 both filters then copy the region exactly (Lanczos weights vanish at integer distances).
  auto values = test::randomRefImage(1, 8, 9, 3);
  ref::RefImage stored = values;
  test::roundTo(stored, F::Float32);
  for (bool plain : {false, true}) {
    ForcePlain force(plain);
    for (bool lanczos : {false, true}) {
      std::shared_ptr<ImageScale> k = lanczos
                                          ? std::shared_ptr<ImageScale>(ImageLanczosScale::make(device()))
                                          : std::shared_ptr<ImageScale>(ImageBilinearScale::make(device()));
      k->setScaleTransform(ScaleTransform{1, 1, -3, -2});  // source region origin (3, 2)
      k->setClipRect({{1, 1, 0}, {4, 3, 1}});              // a 4 × 3 window at destination (1, 1)
      ref::RefImage out = runInto(*k, stored, 6, 5);
      for (int64_t y = 0; y < 5; ++y)
        for (int64_t x = 0; x < 6; ++x)
          for (int64_t c = 0; c < 3; ++c) {
            const bool inClip = x >= 1 && x < 5 && y >= 1 && y < 4;
            if (!inClip) {
              EXPECT_TRUE(std::isnan(out.at(0, y, x, c))) << "outside the clip at " << x << "," << y;
              continue;
            }
            EXPECT_NEAR(out.at(0, y, x, c), stored.at(0, y - 1 + 2, x - 1 + 3, c), 1e-6)
                << describe(*k) << " at " << x << "," << y << (plain ? " plain" : " fast");
          }
    }
  }
}

// ---------------------------------------------------------------------------------------------

TEST(ImageBilinearScale, HalvingAveragesPixelPairs) {
  // 4 → 2 without transform: u = (x + 0.5)·2 − 0.5 = 0.5, 2.5.
  ref::RefImage grid(1, 2, 4, 1);
  grid.data = {1, 3, 5, 9, 2, 4, 6, 10};
  for (bool plain : {false, true}) {
    ForcePlain force(plain);
    ImageBilinearScale k(device());
    expectNear(runInto(k, grid, 2, 1).data, {2.5, 7.5}, 1e-6, plain ? "plain" : "fast");
  }
}

TEST(ImageBilinearScale, FarTranslationsClampToTheEdge) {
  ref::RefImage values = row({0.25, -0.5, 0.75});
  for (bool plain : {false, true}) {
    ForcePlain force(plain);
    ImageBilinearScale k(device());
    k.setScaleTransform(ScaleTransform{1e-300, 1, 0, 0});  // u = +inf
    expectNear(runInto(k, values, 2, 1).data, {0.75, 0.75}, 0, "scale 1e-300");
    k.setScaleTransform(ScaleTransform{1, 1, 1e300, 0});  // u = −1e300
    expectNear(runInto(k, values, 2, 1).data, {0.25, 0.25}, 0, "translate 1e300");
  }
}

TEST(ImageLanczosScale, ReproducesARampAwayFromTheEdges) {
  // Where u is a whole or half pixel the taps lie symmetrically around it, and symmetric weights
  // normalised to 1 reproduce a linear function exactly: the value there is 0.1·u + 0.3 wherever
  // the window stays inside the source, up and down (a check independent of the reference).
  ref::RefImage ramp(1, 1, 40, 1);
  for (int64_t i = 0; i < 40; ++i) ramp.data[size_t(i)] = 0.1 * double(i) + 0.3;
  test::roundTo(ramp, F::Float32);
  for (bool plain : {false, true}) {
    ForcePlain force(plain);
    for (double scale : {2.5, 1.0, 0.5, 0.25}) {
      ImageLanczosScale k(device());
      k.setScaleTransform(ScaleTransform{scale, 1, 0.5, 0});
      const int64_t width = int64_t(40 * scale);
      const auto out = runInto(k, ramp, width, 1).data;
      const double reach = 3.0 / std::min(1.0, scale);
      int checked = 0;
      for (int64_t x = 0; x < width; ++x) {
        const double u = (double(x) + 0.5 - 0.5) / scale - 0.5;
        if (u - reach < 0 || u + reach > 39 || std::fabs(2 * u - std::round(2 * u)) > 1e-9) continue;
        ++checked;
        EXPECT_NEAR(out[size_t(x)], 0.1 * u + 0.3, 2e-5)
            << "scale " << scale << " x " << x << (plain ? " plain" : " fast");
      }
      EXPECT_GE(checked, 2) << "scale " << scale;
    }
  }
}

TEST(ImageLanczosScale, NegativeLobesRingAndAreNotClamped) {
  // A step from 0 to 1 upscaled 4×: Lanczos overshoots above 1 and below 0 near the step; a float32
  // destination keeps that, a unorm8 one clamps it (storage conversion only).
  ref::RefImage step = row({0, 0, 0, 0, 0, 1, 1, 1, 1, 1});
  for (bool plain : {false, true}) {
    ForcePlain force(plain);
    ImageLanczosScale k(device());
    k.setScaleTransform(ScaleTransform{4, 1, 0, 0});
    const auto out = runInto(k, step, 40, 1).data;
    EXPECT_GT(*std::max_element(out.begin(), out.end()), 1.01) << (plain ? "plain" : "fast");
    EXPECT_LT(*std::min_element(out.begin(), out.end()), -0.01) << (plain ? "plain" : "fast");
  }
  ForcePlain force(true);  // unorm8 runs on the plain path
  ImageLanczosScale k(device());
  k.setScaleTransform(ScaleTransform{4, 1, 0, 0});
  auto src = test::makeImage(step, F::Unorm8);
  auto dst = Image::make(device(), ImageDescriptor::make(F::Unorm8, 40, 1, 1));
  auto cb = queue()->commandBuffer();
  k.encode(cb, src, dst);
  cb->commit();
  cb->waitUntilCompleted();
  const auto out = test::download(*dst).data;
  EXPECT_EQ(*std::max_element(out.begin(), out.end()), 1.0);
  EXPECT_EQ(*std::min_element(out.begin(), out.end()), 0.0);
}

TEST(ImageLanczosScale, FarTranslationsAndTheWidestKernelStayExact) {
  ref::RefImage values = row({0.25, -0.5, 0.75, 0.5});
  for (bool plain : {false, true}) {
    ForcePlain force(plain);
    ImageLanczosScale k(device());
    k.setScaleTransform(ScaleTransform{1, 1, -1e300, 0});  // every window far right of the source
    expectNear(runInto(k, values, 2, 1).data, {0.5, 0.5}, 0, "far right");
    k.setScaleTransform(ScaleTransform{0.75, 1, 1e18, 0});  // every window far left
    expectNear(runInto(k, values, 2, 1).data, {0.25, 0.25}, 0, "far left");
    // The smallest scale accepted: a kernel reaching 65536 pixels, mostly outside the 4-pixel source.
    k.setScaleTransform(ScaleTransform{3.0 / 65536.0, 1, 0, 0});
    auto o = runKernel(k, values, F::Float32, F::Float32, {1, 1, 2, 1});
    EXPECT_TRUE(matches(o, F::Float32)) << (plain ? "plain" : "fast");
  }
}

// ---------------------------------------------------------------------------------------------

/// Maps a source region given in normalised coordinates onto the destination, as a graph's
/// NNLanczosScaleNode would ask for each source.
class RegionProvider : public ImageTransformProvider {
 public:
  RegionProvider(double x0, double y0, double regionWidth, double regionHeight, double outWidth,
                 double outHeight)
      : x0_(x0), y0_(y0), w_(regionWidth), h_(regionHeight), outW_(outWidth), outH_(outHeight) {}
  ScaleTransform transformForSourceImage(const Image& image, const Handle* handle) override {
    ++calls;
    lastHandle = handle;
    const double sx = outW_ / (w_ * double(image.width())), sy = outH_ / (h_ * double(image.height()));
    return {sx, sy, -x0_ * double(image.width()) * sx, -y0_ * double(image.height()) * sy};
  }
  int calls = 0;
  const Handle* lastHandle = reinterpret_cast<const Handle*>(1);

 private:
  double x0_, y0_, w_, h_, outW_, outH_;
};

TEST(ImageTransformProvider, SuppliesTheTransformOfEachSource) {
  EXPECT_TRUE(std::is_abstract_v<ImageTransformProvider>);
  auto provider = std::make_shared<RegionProvider>(0.25, 0.5, 0.5, 0.5, 7, 5);
  ImageTransformProviderPtr asInterface = provider;
  for (bool plain : {false, true}) {
    ForcePlain force(plain);
    for (int64_t width : {8, 12}) {
      auto values = test::randomRefImage(1, 6, width, 3);
      auto src = test::makeImage(values);
      const ScaleTransform t = asInterface->transformForSourceImage(*src, nullptr);
      EXPECT_EQ(provider->lastHandle, nullptr);
      EXPECT_NEAR(t.scaleX, 7.0 / (0.5 * double(width)), 1e-12);
      EXPECT_NEAR(t.translateX, -0.25 * double(width) * t.scaleX, 1e-12);
      for (bool lanczos : {false, true}) {
        std::shared_ptr<ImageScale> k = lanczos
                                            ? std::shared_ptr<ImageScale>(ImageLanczosScale::make(device()))
                                            : std::shared_ptr<ImageScale>(ImageBilinearScale::make(device()));
        k->setScaleTransform(t);
        auto o = runKernel(*k, values, F::Float32, F::Float32, {1, 5, 7, 3});
        EXPECT_TRUE(matches(o, F::Float32)) << describe(*k) << (plain ? " plain" : " fast");
      }
    }
  }
  EXPECT_EQ(provider->calls, 4);
}

}  // namespace
}  // namespace mpsnn
