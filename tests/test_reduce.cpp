// The reductions (spec 06 §4): every NNReduce* class and the NNReduceUnary / NNReduceBinary base
// behaviour, against the float64 reference and PyTorch, on the device selected by MPSNN_DEVICE. Every
// reference comparison runs on the fast implementations and, with MPSNN_FORCE_PLAIN=1, on the
// catch-all ones.
#include <array>
#include <cstdlib>
#include <functional>

#include "harness.h"

namespace mpsnn {
namespace {

using test::close;
using test::ForcePlain;
using test::device;
using test::queue;
using F = ImageFeatureChannelFormat;
using K = ref::ReduceKind;

constexpr uint64_t kAll = UINT64_MAX;


std::shared_ptr<NNReduceUnary> makeReduce(K kind) {
  switch (kind) {
    case K::RowMin:
      return NNReduceRowMin::make(device());
    case K::RowMax:
      return NNReduceRowMax::make(device());
    case K::RowSum:
      return NNReduceRowSum::make(device());
    case K::RowMean:
      return NNReduceRowMean::make(device());
    case K::ColumnMin:
      return NNReduceColumnMin::make(device());
    case K::ColumnMax:
      return NNReduceColumnMax::make(device());
    case K::ColumnSum:
      return NNReduceColumnSum::make(device());
    case K::ColumnMean:
      return NNReduceColumnMean::make(device());
    case K::FeatureChannelsMin:
      return NNReduceFeatureChannelsMin::make(device());
    case K::FeatureChannelsMax:
      return NNReduceFeatureChannelsMax::make(device());
    case K::FeatureChannelsSum:
      return NNReduceFeatureChannelsSum::make(device());
    case K::FeatureChannelsMean:
      return NNReduceFeatureChannelsMean::make(device());
    case K::FeatureChannelsArgumentMin:
      return NNReduceFeatureChannelsArgumentMin::make(device());
    case K::FeatureChannelsArgumentMax:
      return NNReduceFeatureChannelsArgumentMax::make(device());
    default:
      return NNReduceSpatialMean::make(device());
  }
}

bool isRow(K k) { return k == K::RowMin || k == K::RowMax || k == K::RowSum || k == K::RowMean; }
bool isColumn(K k) {
  return k == K::ColumnMin || k == K::ColumnMax || k == K::ColumnSum || k == K::ColumnMean;
}
bool isChannels(K k) { return !isRow(k) && !isColumn(k) && k != K::SpatialMean; }

/// The result's (w, h, c) for a region of w × h × c.
std::array<int64_t, 3> resultShape(K k, int64_t w, int64_t h, int64_t c) {
  if (isRow(k)) return {1, h, c};
  if (isColumn(k)) return {w, 1, c};
  if (k == K::SpatialMean) return {1, 1, c};
  return {w, h, 1};
}

/// Values reduced into one result: used to scale the float32 tolerance of sums.
int64_t reducedCount(K k, int64_t w, int64_t h, int64_t c) {
  if (isRow(k)) return w;
  if (isColumn(k)) return h;
  if (k == K::SpatialMean) return w * h;
  return c;
}

ref::ReducePlacement placementOf(const NNReduceUnary& k) {
  ref::ReducePlacement p;
  p.clipRectSource = k.clipRectSource();
  p.clipRect = k.clipRect();
  p.sourceFeatureChannelOffset = k.sourceFeatureChannelOffset();
  p.sourceFeatureChannelMaxCount = k.sourceFeatureChannelMaxCount();
  p.destinationFeatureChannelOffset = k.destinationFeatureChannelOffset();
  if (auto* s = dynamic_cast<const NNReduceFeatureChannelsSum*>(&k)) p.weight = s->weight();
  return p;
}

void applyPlacement(NNReduceUnary& k, const ref::ReducePlacement& p) {
  k.setClipRectSource(p.clipRectSource);
  k.setClipRect(p.clipRect);
  k.setSourceFeatureChannelOffset(p.sourceFeatureChannelOffset);
  k.setSourceFeatureChannelMaxCount(p.sourceFeatureChannelMaxCount);
  k.setDestinationFeatureChannelOffset(p.destinationFeatureChannelOffset);
  if (auto* s = dynamic_cast<NNReduceFeatureChannelsSum*>(&k)) s->setWeight(float(p.weight));
}

struct Outcome {
  ref::RefImage actual, expected;
};

ImagePtr makeDestination(F format, std::array<int64_t, 4> shape) {
  return Image::make(device(), ImageDescriptor::make(format, uint64_t(shape[2]), uint64_t(shape[1]),
                                                     uint64_t(shape[3]), uint64_t(shape[0])));
}

/// Runs `kernel` (placement already set) manually from `values` (stored as `srcFormat`) into a poisoned
/// destination of `dstShape` (n, h, w, c); the expectation starts from the poison, so every value the
/// kernel must not touch is checked too.
Outcome runReduce(NNReduceUnary& kernel, K kind, const ref::RefImage& values, F srcFormat, F dstFormat,
                  std::array<int64_t, 4> dstShape) {
  ref::RefImage src = values;
  test::roundTo(src, srcFormat);  // the reference sees what the image holds
  auto srcImage = test::makeImage(src, srcFormat);
  auto dstImage = makeDestination(dstFormat, dstShape);
  ref::RefImage poisoned = test::poison(*dstImage);
  auto cb = queue()->commandBuffer();
  kernel.encode(cb, srcImage, dstImage);
  cb->commit();
  cb->waitUntilCompleted();
  Outcome o{test::download(*dstImage), poisoned};
  ref::reduceKernel(kind, placementOf(kernel), src, o.expected);
  test::roundTo(o.expected, dstFormat);
  return o;
}

/// Min, max and the argument forms are exact; sums and means differ from the float64 reference by
/// float32 rounding, which grows with the number of values added.
::testing::AssertionResult matches(const Outcome& o, F format, int64_t count) {
  switch (format) {
    case F::Float32:
      return close(o.actual, o.expected, 1e-5, 1e-6 * double(std::max<int64_t>(count, 1)));
    case F::Float16:
      return close(o.actual, o.expected, 2e-3, 1e-3);
    case F::Unorm8:
      return close(o.actual, o.expected, 0, 1.0 / 255 + 1e-6);
    default:
      return close(o.actual, o.expected, 1e-2, 1e-2);
  }
}

std::string describe(const NNReduceUnary& k) {
  std::ostringstream s;
  const IntRegion r = k.clipRectSource(), c = k.clipRect();
  s << k.className() << " clipRectSource=" << (isRectNoClip(r) ? std::string("none") : "set") << "("
    << r.origin.x << "," << r.origin.y << "," << r.origin.z << ")+(" << r.size.width << "," << r.size.height
    << "," << r.size.depth << ") clipRect=(" << c.origin.x << "," << c.origin.y << "," << c.origin.z
    << ") srcC0=" << k.sourceFeatureChannelOffset() << " max=" << k.sourceFeatureChannelMaxCount()
    << " dstC0=" << k.destinationFeatureChannelOffset();
  return s.str();
}

// ---- the tests every unary reduction runs -------------------------------------------------------------

/// Odd sizes and channel counts (also above a warp and above a CUDA block), several images, the whole
/// source and a partial source rectangle.
void randomShapesMatchReference(K kind, bool plain) {
  ForcePlain force(plain);
  struct Shape {
    int64_t n, h, w, c;
  };
  const Shape shapes[] = {{2, 5, 7, 1},  {3, 7, 5, 3},   {2, 1, 9, 5},  {2, 9, 1, 7},   {3, 3, 13, 13},
                          {2, 6, 3, 17}, {1, 4, 131, 3}, {2, 3, 5, 70}, {1, 2, 3, 300}, {2, 67, 2, 2}};
  for (const Shape& sh : shapes) {
    auto values = test::randomRefImage(sh.n, sh.h, sh.w, sh.c);
    for (int partial = 0; partial < 2; ++partial) {
      auto kernel = makeReduce(kind);
      ref::ReducePlacement p;
      int64_t w = sh.w, h = sh.h;
      if (partial) {  // a rectangle inside, and one running past the far edges (intersected)
        p.clipRectSource = {{uint64_t(sh.w / 3), uint64_t(sh.h / 4), 0},
                            {uint64_t(sh.w), uint64_t(sh.h / 2 + 1), kAll}};
        w = sh.w - sh.w / 3;
        h = std::min(sh.h - sh.h / 4, sh.h / 2 + 1);
      }
      if (kind == K::FeatureChannelsSum) p.weight = 0.75;
      applyPlacement(*kernel, p);
      const auto out = resultShape(kind, w, h, sh.c);
      auto o = runReduce(*kernel, kind, values, F::Float32, F::Float32, {sh.n, out[1], out[0], out[2]});
      ASSERT_TRUE(matches(o, F::Float32, reducedCount(kind, w, h, sh.c)))
          << describe(*kernel) << " src=" << sh.n << "x" << sh.h << "x" << sh.w << "x" << sh.c
          << (plain ? " plain" : " fast");
    }
  }
}

/// clipRectSource with an image range, clipRect origins (x, y, z) in a larger destination, a clipRect
/// that cuts the result short, channel offsets (any value: RELAXED), sourceFeatureChannelMaxCount, and
/// an `offset` that must be ignored.
void placementMatchesReference(K kind, bool plain) {
  ForcePlain force(plain);
  auto values = test::randomRefImage(4, 9, 11, 7);
  std::vector<ref::ReducePlacement> placements;
  ref::ReducePlacement p;
  p.clipRectSource = {{2, 1, 1}, {6, 5, 2}};  // images 1..2, columns 2..7, rows 1..5
  p.clipRect = {{1, 2, 1}, {kAll - 1, kAll - 1, 2}};
  placements.push_back(p);
  p = ref::ReducePlacement();
  p.sourceFeatureChannelOffset = 2;  // channels 2..6 → destination channels 3..
  p.destinationFeatureChannelOffset = 3;
  placements.push_back(p);
  p.sourceFeatureChannelMaxCount = 3;               // channels 2..4
  p.clipRectSource = {{0, 3, 0}, {kAll, kAll, 1}};  // one image only
  placements.push_back(p);
  p = ref::ReducePlacement();
  p.clipRect = {{0, 0, 2}, {2, 2, kAll}};  // the result cut to 2 × 2, destination images 2..3
  p.clipRectSource = {{1, 1, 0}, {5, 6, kAll}};
  placements.push_back(p);
  for (const auto& placement : placements) {
    auto kernel = makeReduce(kind);
    applyPlacement(*kernel, placement);
    kernel->setOffset({-5, 100, 3});  // ignored by reductions (spec 06 §4.1)
    auto o = runReduce(*kernel, kind, values, F::Float32, F::Float32, {4, 12, 13, 11});
    EXPECT_TRUE(matches(o, F::Float32, 11 * 9)) << describe(*kernel) << (plain ? " plain" : " fast");
  }
}

/// float16 images (both paths, also mixed with float32), unorm8 on the plain path.
void formatsMatchReference(K kind, bool plain) {
  ForcePlain force(plain);
  struct Pair {
    F src, dst;
  };
  std::vector<Pair> pairs = {{F::Float16, F::Float16}, {F::Float16, F::Float32}, {F::Float32, F::Float16}};
  if (plain) pairs.push_back({F::Unorm8, F::Unorm8});
  for (const Pair& formats : pairs) {
    const bool unorm = formats.src == F::Unorm8;
    auto values = test::randomRefImage(2, 5, 7, 13, unorm ? 0.0 : -1.0, 1.0);
    auto kernel = makeReduce(kind);
    const auto out = resultShape(kind, 7, 5, 13);
    auto o = runReduce(*kernel, kind, values, formats.src, formats.dst, {2, out[1], out[0], out[2]});
    EXPECT_TRUE(matches(o, formats.dst, reducedCount(kind, 7, 5, 13)))
        << kernel->className() << " " << toString(formats.src) << " -> " << toString(formats.dst)
        << (plain ? " plain" : " fast");
  }
}

/// encodeBatch, manual and auto, processes each pair as a separate encode.
void batchMatchesReference(K kind) {
  auto kernel = makeReduce(kind);
  kernel->setClipRectSource({{1, 0, 0}, {5, 4, kAll}});
  const auto out = resultShape(kind, 5, 4, 13);
  ImageBatch sources, destinations;
  std::vector<ref::RefImage> values, poisoned;
  for (int i = 0; i < 3; ++i) {
    values.push_back(test::randomRefImage(1, 5, 7, 13));
    sources.push_back(test::makeImage(values.back()));
    destinations.push_back(makeDestination(F::Float32, {1, out[1], out[0], out[2]}));
    poisoned.push_back(test::poison(*destinations.back()));
  }
  auto cb = queue()->commandBuffer();
  kernel->encodeBatch(cb, sources, destinations);
  kernel->setDestinationImageAllocator(Image::defaultAllocator());
  ImageBatch autos = kernel->encodeBatch(cb, sources);
  cb->commit();
  cb->waitUntilCompleted();
  ASSERT_EQ(autos.size(), 3u);
  for (size_t i = 0; i < 3; ++i) {
    ref::RefImage expected = poisoned[i];
    ref::reduceKernel(kind, placementOf(*kernel), values[i], expected);
    EXPECT_TRUE(close(test::download(*destinations[i]), expected, 1e-5, 1e-5)) << "batch item " << i;
    EXPECT_TRUE(close(test::download(*autos[i]), expected, 1e-5, 1e-5)) << "auto batch item " << i;
  }
}

/// Auto mode allocates exactly the result's shape (channels after destinationFeatureChannelOffset).
void autoModeSizesTheResult(K kind) {
  auto kernel = makeReduce(kind);
  kernel->setDestinationImageAllocator(Image::defaultAllocator());
  kernel->setClipRectSource({{2, 1, 0}, {4, 3, kAll}});
  kernel->setDestinationFeatureChannelOffset(2);
  kernel->setSourceFeatureChannelOffset(1);
  auto values = test::randomRefImage(1, 6, 9, 5);
  auto src = test::makeImage(values);
  auto cb = queue()->commandBuffer();
  ImagePtr dst = kernel->encode(cb, src);
  cb->commit();
  cb->waitUntilCompleted();
  const auto out = resultShape(kind, 4, 3, 4);
  ASSERT_FALSE(dst->isTemporary());
  EXPECT_EQ(int64_t(dst->width()), out[0]);
  EXPECT_EQ(int64_t(dst->height()), out[1]);
  EXPECT_EQ(int64_t(dst->featureChannels()), 2 + out[2]);
  EXPECT_EQ(dst->numberOfImages(), 1u);
  ref::RefImage expected = test::download(*dst);  // channels 0, 1 stay as allocated (zero)
  for (int64_t i = 0; i < int64_t(expected.data.size()); ++i)
    if (i % expected.c < 2) {
      EXPECT_EQ(expected.data[size_t(i)], 0.0);
    }
  ref::reduceKernel(kind, placementOf(*kernel), values, expected);
  EXPECT_TRUE(close(test::download(*dst), expected, 1e-5, 1e-5)) << kernel->className();
}

/// Every invalid case of spec 06 §4.1 (and the base rules reductions keep) throws InvalidArgument
/// naming the class and the property, and writes nothing.
void rejectsBadInput(K kind) {
  auto src = test::makeImage(test::randomRefImage(2, 5, 6, 4));
  const auto out = resultShape(kind, 6, 5, 4);
  auto dst = makeDestination(F::Float32, {2, out[1], out[0], out[2]});
  ref::RefImage poisoned = test::poison(*dst);
  auto expectRejected = [&](const std::function<void(NNReduceUnary&)>& setup, const char* property) {
    auto kernel = makeReduce(kind);
    setup(*kernel);
    auto cb = queue()->commandBuffer();
    try {
      kernel->encode(cb, src, dst);
      ADD_FAILURE() << kernel->className() << ": no InvalidArgument for " << property;
    } catch (const InvalidArgument& e) {
      EXPECT_NE(std::string(e.what()).find(property), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find(kernel->className()), std::string::npos) << e.what();
    }
    cb->commit();
    cb->waitUntilCompleted();
    EXPECT_TRUE(close(test::download(*dst), poisoned, 0, 0))
        << "destination written after rejecting " << property;
  };
  // Empty R after the intersection (spec 06 §4.1).
  expectRejected([](NNReduceUnary& k) { k.setClipRectSource({{6, 0, 0}, {2, 2, 1}}); }, "clipRectSource");
  expectRejected([](NNReduceUnary& k) { k.setClipRectSource({{0, 5, 0}, {2, 2, 1}}); }, "clipRectSource");
  expectRejected([](NNReduceUnary& k) { k.setClipRectSource({{0, 0, 2}, {2, 2, 1}}); }, "clipRectSource");
  expectRejected([](NNReduceUnary& k) { k.setClipRectSource({{0, 0, 0}, {0, 2, 1}}); }, "clipRectSource");
  expectRejected([](NNReduceUnary& k) { k.setClipRectSource({{0, 0, 0}, {2, 0, 1}}); }, "clipRectSource");
  expectRejected([](NNReduceUnary& k) { k.setClipRectSource({{0, 0, 0}, {2, 2, 0}}); }, "clipRectSource");
  // The destination cannot hold the result at clipRect.origin.
  expectRejected([](NNReduceUnary& k) { k.setClipRect({{1, 0, 0}, {kAll, kAll, kAll}}); }, "clipRect.origin");
  expectRejected([](NNReduceUnary& k) { k.setClipRect({{0, 1, 0}, {kAll, kAll, kAll}}); }, "clipRect.origin");
  expectRejected([](NNReduceUnary& k) { k.setClipRect({{kAll, 0, 0}, {1, 1, 1}}); }, "clipRect.origin");
  // More images than the source rectangle selects.
  expectRejected(
      [](NNReduceUnary& k) {
        k.setClipRectSource({{0, 0, 0}, {kAll, kAll, 1}});
        k.setClipRect({{0, 0, 0}, {kAll - 1, kAll - 1, 2}});
      },
      "clipRect.size.depth");
  // The rules of every unary kernel.
  expectRejected([](NNReduceUnary& k) { k.setDestinationFeatureChannelOffset(1); },
                 "destinationFeatureChannelOffset");
  expectRejected([](NNReduceUnary& k) { k.setSourceFeatureChannelOffset(4); }, "sourceFeatureChannelOffset");
  expectRejected([](NNReduceUnary& k) { k.setSourceFeatureChannelMaxCount(0); },
                 "sourceFeatureChannelMaxCount");
  expectRejected([](NNReduceUnary& k) { k.setEdgeMode(ImageEdgeMode::Mirror); }, "edgeMode");
  expectRejected([](NNReduceUnary& k) { k.setClipRect({{0, 0, 1}, {kAll - 1, kAll - 1, 2}}); }, "clipRect");
  {
    auto kernel = makeReduce(kind);
    auto cb = queue()->commandBuffer();
    EXPECT_THROW(kernel->encode(cb, src, src), InvalidArgument);  // aliasing
    EXPECT_THROW(kernel->encode(cb, nullptr, dst), InvalidArgument);
    EXPECT_THROW(kernel->encode(cb, src, ImagePtr()), InvalidArgument);
    kernel->setClipRectSource({{9, 0, 0}, {1, 1, 1}});
    EXPECT_THROW(kernel->encode(cb, src), InvalidArgument);  // auto mode checks R too
  }
}

/// PyTorch's amin / amax / sum / mean / argmin / argmax over the region x0, y0, w, h of the input.
void pyTorchParity(K kind) {
  int checked = 0;
  for (const auto& tc : test::readTorchCases("reduce.txt")) {
    if (int(tc.scalars.at("op")) != int(kind)) continue;
    const auto& shape = tc.shapes.at("input");
    ref::RefImage input(shape[0], shape[1], shape[2], shape[3]);
    input.data = tc.arrays.at("input");
    const auto& outShape = tc.shapes.at("output");
    ref::RefImage expected(outShape[0], outShape[1], outShape[2], outShape[3]);
    expected.data = tc.arrays.at("output");
    auto kernel = makeReduce(kind);
    kernel->setClipRectSource({{uint64_t(tc.scalars.at("x0")), uint64_t(tc.scalars.at("y0")), 0},
                               {uint64_t(tc.scalars.at("w")), uint64_t(tc.scalars.at("h")), kAll}});
    if (auto* s = dynamic_cast<NNReduceFeatureChannelsSum*>(kernel.get()))
      s->setWeight(float(tc.scalars.at("weight")));
    auto src = test::makeImage(input);  // float32: inputs are float32 values (the generator rounds them)
    auto dst = makeDestination(F::Float32, {expected.n, expected.h, expected.w, expected.c});
    test::poison(*dst);
    auto cb = queue()->commandBuffer();
    kernel->encode(cb, src, dst);
    cb->commit();
    cb->waitUntilCompleted();
    const int64_t count =
        reducedCount(kind, int64_t(tc.scalars.at("w")), int64_t(tc.scalars.at("h")), input.c);
    EXPECT_TRUE(close(test::download(*dst), expected, 1e-5, 2e-6 * double(count))) << "case " << tc.name;
    ++checked;
  }
  EXPECT_GT(checked, 0) << "no PyTorch case for this class";
}

#define MPSNN_UNARY_REDUCE_SUITE(Suite, kind)                                             \
  TEST(Suite, FastPathRandomShapes) { randomShapesMatchReference(kind, false); }          \
  TEST(Suite, PlainPathRandomShapes) { randomShapesMatchReference(kind, true); }          \
  TEST(Suite, FastPathPlacement) { placementMatchesReference(kind, false); }              \
  TEST(Suite, PlainPathPlacement) { placementMatchesReference(kind, true); }              \
  TEST(Suite, FastPathFormats) { formatsMatchReference(kind, false); }                    \
  TEST(Suite, PlainPathFormats) { formatsMatchReference(kind, true); }                    \
  TEST(Suite, EncodeBatch) { batchMatchesReference(kind); }                               \
  TEST(Suite, AutoModeSizesTheResult) { autoModeSizesTheResult(kind); }                   \
  TEST(Suite, RejectsBadInputAndLeavesTheDestinationUntouched) { rejectsBadInput(kind); } \
  TEST(Suite, PyTorchParity) { pyTorchParity(kind); }

MPSNN_UNARY_REDUCE_SUITE(NNReduceRowMin, K::RowMin)
MPSNN_UNARY_REDUCE_SUITE(NNReduceRowMax, K::RowMax)
MPSNN_UNARY_REDUCE_SUITE(NNReduceRowSum, K::RowSum)
MPSNN_UNARY_REDUCE_SUITE(NNReduceRowMean, K::RowMean)
MPSNN_UNARY_REDUCE_SUITE(NNReduceColumnMin, K::ColumnMin)
MPSNN_UNARY_REDUCE_SUITE(NNReduceColumnMax, K::ColumnMax)
MPSNN_UNARY_REDUCE_SUITE(NNReduceColumnSum, K::ColumnSum)
MPSNN_UNARY_REDUCE_SUITE(NNReduceColumnMean, K::ColumnMean)
MPSNN_UNARY_REDUCE_SUITE(NNReduceFeatureChannelsMin, K::FeatureChannelsMin)
MPSNN_UNARY_REDUCE_SUITE(NNReduceFeatureChannelsMax, K::FeatureChannelsMax)
MPSNN_UNARY_REDUCE_SUITE(NNReduceFeatureChannelsSum, K::FeatureChannelsSum)
MPSNN_UNARY_REDUCE_SUITE(NNReduceFeatureChannelsMean, K::FeatureChannelsMean)
MPSNN_UNARY_REDUCE_SUITE(NNReduceFeatureChannelsArgumentMin, K::FeatureChannelsArgumentMin)
MPSNN_UNARY_REDUCE_SUITE(NNReduceFeatureChannelsArgumentMax, K::FeatureChannelsArgumentMax)
MPSNN_UNARY_REDUCE_SUITE(NNReduceSpatialMean, K::SpatialMean)
#undef MPSNN_UNARY_REDUCE_SUITE

// ---- class-specific behaviour --------------------------------------------------------------------

const K kAllKinds[] = {K::RowMin,
                       K::RowMax,
                       K::RowSum,
                       K::RowMean,
                       K::ColumnMin,
                       K::ColumnMax,
                       K::ColumnSum,
                       K::ColumnMean,
                       K::FeatureChannelsMin,
                       K::FeatureChannelsMax,
                       K::FeatureChannelsSum,
                       K::FeatureChannelsMean,
                       K::FeatureChannelsArgumentMin,
                       K::FeatureChannelsArgumentMax,
                       K::SpatialMean};

TEST(NNReduceUnary, DefaultsAndClassNames) {
  const char* names[] = {"NNReduceRowMin",
                         "NNReduceRowMax",
                         "NNReduceRowSum",
                         "NNReduceRowMean",
                         "NNReduceColumnMin",
                         "NNReduceColumnMax",
                         "NNReduceColumnSum",
                         "NNReduceColumnMean",
                         "NNReduceFeatureChannelsMin",
                         "NNReduceFeatureChannelsMax",
                         "NNReduceFeatureChannelsSum",
                         "NNReduceFeatureChannelsMean",
                         "NNReduceFeatureChannelsArgumentMin",
                         "NNReduceFeatureChannelsArgumentMax",
                         "NNReduceSpatialMean"};
  for (size_t i = 0; i < std::size(kAllKinds); ++i) {
    auto k = makeReduce(kAllKinds[i]);
    EXPECT_STREQ(k->className(), names[i]);
    EXPECT_TRUE(isRectNoClip(k->clipRectSource()));
    EXPECT_TRUE(isRectNoClip(k->clipRect()));
    EXPECT_EQ(k->edgeMode(), ImageEdgeMode::Zero);
    EXPECT_EQ(k->kernelWidth(), 1u);
    EXPECT_EQ(k->strideInPixelsX(), 1u);
  }
  EXPECT_EQ(NNReduceFeatureChannelsSum(device()).weight(), 1.0f);
}

TEST(NNReduceUnary, SpecExampleValues) {
  // One 3 × 2 image with 2 channels: values written out, results computed by hand.
  ref::RefImage v(1, 2, 3, 2);
  v.data = {1, -2, 4,  8,  -3, 0.5,  // row 0: pixels (1,-2) (4,8) (-3,0.5)
            2, 6,  -1, -7, 5,  3};   // row 1: pixels (2,6) (-1,-7) (5,3)
  struct Row {
    K kind;
    std::array<int64_t, 4> shape;
    std::vector<double> expected;
  };
  const Row rows[] = {
      {K::RowMax, {1, 2, 1, 2}, {4, 8, 5, 6}},
      {K::RowMin, {1, 2, 1, 2}, {-3, -2, -1, -7}},
      {K::RowSum, {1, 2, 1, 2}, {2, 6.5, 6, 2}},
      {K::RowMean, {1, 2, 1, 2}, {2.0 / 3, 6.5 / 3, 2, 2.0 / 3}},
      {K::ColumnMax, {1, 1, 3, 2}, {2, 6, 4, 8, 5, 3}},
      {K::ColumnSum, {1, 1, 3, 2}, {3, 4, 3, 1, 2, 3.5}},
      {K::ColumnMean, {1, 1, 3, 2}, {1.5, 2, 1.5, 0.5, 1, 1.75}},
      {K::FeatureChannelsMax, {1, 2, 3, 1}, {1, 8, 0.5, 6, -1, 5}},
      {K::FeatureChannelsMin, {1, 2, 3, 1}, {-2, 4, -3, 2, -7, 3}},
      {K::FeatureChannelsSum, {1, 2, 3, 1}, {-1, 12, -2.5, 8, -8, 8}},
      {K::FeatureChannelsMean, {1, 2, 3, 1}, {-0.5, 6, -1.25, 4, -4, 4}},
      {K::FeatureChannelsArgumentMax, {1, 2, 3, 1}, {0, 1, 1, 1, 0, 0}},
      {K::FeatureChannelsArgumentMin, {1, 2, 3, 1}, {1, 0, 0, 0, 1, 1}},
      {K::SpatialMean, {1, 1, 1, 2}, {8.0 / 6, 8.5 / 6}},
  };
  for (bool plain : {false, true}) {
    ForcePlain force(plain);
    for (const Row& r : rows) {
      auto k = makeReduce(r.kind);
      auto o = runReduce(*k, r.kind, v, F::Float32, F::Float32, r.shape);
      ref::RefImage expected(r.shape[0], r.shape[1], r.shape[2], r.shape[3]);
      expected.data = r.expected;
      EXPECT_TRUE(close(o.actual, expected, 1e-6, 1e-6)) << k->className() << (plain ? " plain" : " fast");
    }
  }
  auto weighted = NNReduceFeatureChannelsSum::make(device());
  weighted->setWeight(-2.0f);
  auto o = runReduce(*weighted, K::FeatureChannelsSum, v, F::Float32, F::Float32, {1, 2, 3, 1});
  ref::RefImage expected(1, 2, 3, 1);
  expected.data = {2, -24, 5, -16, 16, -16};
  EXPECT_TRUE(close(o.actual, expected, 1e-6, 1e-6));
}

TEST(NNReduceUnary, ClipRectSourceReplacesOffset) {
  auto values = test::randomRefImage(3, 6, 7, 5);
  for (K kind : {K::RowSum, K::ColumnMax, K::FeatureChannelsMean}) {
    auto a = makeReduce(kind), b = makeReduce(kind);
    b->setOffset({3, -2, 2});  // must change nothing
    const auto out = resultShape(kind, 7, 6, 5);
    auto oa = runReduce(*a, kind, values, F::Float32, F::Float32, {3, out[1], out[0], out[2]});
    auto ob = runReduce(*b, kind, values, F::Float32, F::Float32, {3, out[1], out[0], out[2]});
    EXPECT_TRUE(close(ob.actual, oa.actual, 0, 0)) << a->className();
  }
}

TEST(NNReduceUnary, NaNPropagatesAndArgumentsPickTheFirstNaN) {
  ref::RefImage v(2, 3, 4, 5);
  v.data = test::randomValues(v.data.size());
  v.at(0, 1, 2, 3) = std::nan("");
  v.at(0, 1, 2, 4) = std::nan("");
  v.at(1, 2, 0, 0) = std::nan("");
  for (bool plain : {false, true}) {
    ForcePlain force(plain);
    for (K kind : kAllKinds) {
      auto k = makeReduce(kind);
      const auto out = resultShape(kind, 4, 3, 5);
      auto srcImage = test::makeImage(v);
      // A finite pattern instead of the NaN poison, so that a NaN in the result is the kernel's.
      auto dstImage = makeDestination(F::Float32, {2, out[1], out[0], out[2]});
      ref::RefImage before(2, out[1], out[0], out[2]);
      for (auto& x : before.data) x = 0.375;
      test::upload(*dstImage, before);
      auto cb = queue()->commandBuffer();
      k->encode(cb, srcImage, dstImage);
      cb->commit();
      cb->waitUntilCompleted();
      ref::RefImage expected = before;
      ref::reduceKernel(kind, placementOf(*k), v, expected);
      auto actual = test::download(*dstImage);
      EXPECT_TRUE(close(actual, expected, 1e-5, 1e-5)) << k->className() << (plain ? " plain" : " fast");
      if (kind == K::FeatureChannelsArgumentMax || kind == K::FeatureChannelsArgumentMin) {
        EXPECT_EQ(actual.at(0, 1, 2, 0), 3.0) << k->className();  // the first of the two NaNs
        EXPECT_EQ(actual.at(1, 2, 0, 0), 0.0) << k->className();
      } else if (isChannels(kind)) {
        EXPECT_TRUE(std::isnan(actual.at(0, 1, 2, 0))) << k->className();
        EXPECT_FALSE(std::isnan(actual.at(0, 1, 1, 0))) << k->className();
      } else {  // the row (y = 2), column (x = 0) or image of image 1, channel 0, holding the NaN
        EXPECT_TRUE(std::isnan(actual.at(1, isRow(kind) ? 2 : 0, 0, 0))) << k->className();
        EXPECT_FALSE(std::isnan(actual.at(1, 0, 0, 1))) << k->className();
      }
    }
  }
}

TEST(NNReduceFeatureChannelsArgumentMax, TiesGoToTheSmallestIndex) {
  for (bool plain : {false, true}) {
    ForcePlain force(plain);
    for (int64_t channels : {5, 70}) {  // a thread per pixel, and a warp per pixel on CUDA
      ref::RefImage v(1, 1, 3, channels);
      for (auto& x : v.data) x = -0.5;
      // pixel 0: maximum 0.9 at 1, 3, 4; pixel 1: all equal; pixel 2: maximum at the last two.
      v.at(0, 0, 0, 1) = v.at(0, 0, 0, 3) = v.at(0, 0, 0, 4) = 0.9;
      v.at(0, 0, 2, channels - 2) = v.at(0, 0, 2, channels - 1) = 0.25;
      auto k = NNReduceFeatureChannelsArgumentMax::make(device());
      auto o = runReduce(*k, K::FeatureChannelsArgumentMax, v, F::Float32, F::Float32, {1, 1, 3, 1});
      EXPECT_EQ(o.actual.data[0], 1.0);
      EXPECT_EQ(o.actual.data[1], 0.0);
      EXPECT_EQ(o.actual.data[2], double(channels - 2));
      EXPECT_TRUE(close(o.actual, o.expected, 0, 0)) << (plain ? "plain" : "fast");
    }
  }
}

TEST(NNReduceFeatureChannelsArgumentMin, TiesGoToTheSmallestIndex) {
  for (bool plain : {false, true}) {
    ForcePlain force(plain);
    for (int64_t channels : {5, 70}) {
      ref::RefImage v(1, 1, 2, channels);
      for (auto& x : v.data) x = 0.5;
      v.at(0, 0, 0, 2) = v.at(0, 0, 0, 4) = -0.75;
      v.at(0, 0, 1, channels - 1) = -0.1;
      auto k = NNReduceFeatureChannelsArgumentMin::make(device());
      auto o = runReduce(*k, K::FeatureChannelsArgumentMin, v, F::Float32, F::Float32, {1, 1, 2, 1});
      EXPECT_EQ(o.actual.data[0], 2.0);
      EXPECT_EQ(o.actual.data[1], double(channels - 1));
      // Random data quantised to a few levels: many ties, same rule as the reference.
      auto q = test::randomRefImage(2, 3, 5, channels);
      for (auto& x : q.data) x = std::round(x * 2) / 2;
      auto oq = runReduce(*k, K::FeatureChannelsArgumentMin, q, F::Float32, F::Float32, {2, 3, 5, 1});
      EXPECT_TRUE(close(oq.actual, oq.expected, 0, 0)) << (plain ? "plain" : "fast");
    }
  }
}

TEST(NNReduceFeatureChannelsSum, WeightScalesTheSum) {
  auto values = test::randomRefImage(2, 3, 4, 9);
  for (float weight : {1.0f, 0.5f, -3.25f, 0.0f}) {
    auto k = NNReduceFeatureChannelsSum::make(device());
    k->setWeight(weight);
    EXPECT_EQ(k->weight(), weight);
    auto o = runReduce(*k, K::FeatureChannelsSum, values, F::Float32, F::Float32, {2, 3, 4, 1});
    EXPECT_TRUE(matches(o, F::Float32, 9 * 4)) << "weight " << weight;
  }
}

TEST(NNReduceUnary, TemporarySourceIsReadOnce) {
  auto values = test::randomRefImage(1, 4, 5, 3);
  auto persistent = test::makeImage(values);
  auto cb = queue()->commandBuffer();
  auto copy = NNSlice::make(device());
  ImagePtr temporary = copy->encode(cb, persistent);  // a temporary image holding the values
  ASSERT_TRUE(temporary->isTemporary());
  auto sum = NNReduceRowSum::make(device());
  sum->setDestinationImageAllocator(Image::defaultAllocator());
  ImagePtr result = sum->encode(cb, temporary);
  EXPECT_EQ(static_cast<TemporaryImage&>(*temporary).readCount(), 0u);
  EXPECT_THROW(sum->encode(cb, temporary), InvalidArgument);
  cb->commit();
  cb->waitUntilCompleted();
  ref::RefImage expected(1, 4, 1, 3);
  ref::reduceKernel(K::RowSum, {}, values, expected);
  EXPECT_TRUE(close(test::download(*result), expected, 1e-5, 1e-5));
}

// ---- the weighted feature-channel reductions (NNReduceBinary) --------------------------------------

using WK = ref::WeightsReduceKind;

std::shared_ptr<NNReduceFeatureChannelsAndWeights> makeWeights(WK kind) {
  switch (kind) {
    case WK::Sum:
      return NNReduceFeatureChannelsAndWeightsSum::make(device());
    case WK::SumByNonZeroWeights:
      return NNReduceFeatureChannelsAndWeightsSum::make(device(), true);
    default:
      return NNReduceFeatureChannelsAndWeightsMean::make(device());
  }
}

ref::WeightsReducePlacement placementOf(const NNReduceFeatureChannelsAndWeights& k) {
  ref::WeightsReducePlacement p;
  p.primarySourceClipRect = k.primarySourceClipRect();
  p.secondarySourceClipRect = k.secondarySourceClipRect();
  p.clipRect = k.clipRect();
  p.primarySourceFeatureChannelOffset = k.primarySourceFeatureChannelOffset();
  p.secondarySourceFeatureChannelOffset = k.secondarySourceFeatureChannelOffset();
  p.primarySourceFeatureChannelMaxCount = k.primarySourceFeatureChannelMaxCount();
  p.secondarySourceFeatureChannelMaxCount = k.secondarySourceFeatureChannelMaxCount();
  p.destinationFeatureChannelOffset = k.destinationFeatureChannelOffset();
  return p;
}

/// Weights with some exact zeros, so that the non-zero divisor differs from the channel count.
ref::RefImage randomWeights(int64_t n, int64_t h, int64_t w, int64_t c) {
  auto r = test::randomRefImage(n, h, w, c);
  for (size_t i = 0; i < r.data.size(); i += 3) r.data[i] = 0.0;
  if (h * w > 1 && c > 0)  // one pixel without any non-zero weight
    for (int64_t k = 0; k < c; ++k) r.at(0, h - 1, w - 1, k) = 0.0;
  return r;
}

Outcome runWeights(NNReduceFeatureChannelsAndWeights& kernel, WK kind, const ref::RefImage& dataValues,
                   const ref::RefImage& weightValues, F format, std::array<int64_t, 4> dstShape) {
  ref::RefImage data = dataValues, weights = weightValues;
  test::roundTo(data, format);
  test::roundTo(weights, format);
  auto dataImage = test::makeImage(data, format);
  auto weightsImage = test::makeImage(weights, format);
  auto dstImage = makeDestination(format, dstShape);
  ref::RefImage poisoned = test::poison(*dstImage);
  auto cb = queue()->commandBuffer();
  kernel.encode(cb, dataImage, weightsImage, dstImage);
  cb->commit();
  cb->waitUntilCompleted();
  Outcome o{test::download(*dstImage), poisoned};
  ref::reduceWeightsKernel(kind, placementOf(kernel), data, weights, o.expected);
  test::roundTo(o.expected, format);
  return o;
}

void weightsMatchReference(WK kind, bool plain) {
  ForcePlain force(plain);
  for (int64_t channels : {1, 3, 5, 7, 13, 17, 70}) {
    auto data = test::randomRefImage(3, 5, 7, channels);
    for (bool single : {false, true}) {
      auto weights = randomWeights(3, single ? 1 : 5, single ? 1 : 7, channels);
      auto k = makeWeights(kind);
      auto o = runWeights(*k, kind, data, weights, F::Float32, {3, 5, 7, 1});
      EXPECT_TRUE(matches(o, F::Float32, channels)) << k->className() << " channels=" << channels
                                                    << " single=" << single << (plain ? " plain" : " fast");
    }
  }
  // Regions, clip origin, channel offsets, image offsets.
  auto data = test::randomRefImage(3, 6, 8, 9);
  auto weights = randomWeights(3, 4, 5, 7);
  auto k = makeWeights(kind);
  k->setPrimarySourceClipRect({{2, 1, 1}, {3, 4, 2}});
  k->setSecondarySourceClipRect({{1, 0, 0}, {3, 4, kAll}});
  k->setPrimarySourceFeatureChannelOffset(1);
  k->setPrimarySourceFeatureChannelMaxCount(6);
  k->setSecondarySourceFeatureChannelOffset(1);
  k->setClipRect({{1, 2, 0}, {kAll - 1, kAll - 1, 2}});
  k->setDestinationFeatureChannelOffset(2);
  k->setPrimaryOffset({7, 7, 7});  // ignored: the source clip rectangles replace the offsets
  auto o = runWeights(*k, kind, data, weights, F::Float32, {2, 7, 5, 4});
  EXPECT_TRUE(matches(o, F::Float32, 6)) << k->className() << " placement" << (plain ? " plain" : " fast");
  // float16 (and unorm8 on the plain path).
  std::vector<F> formats = {F::Float16};
  if (plain) formats.push_back(F::Unorm8);
  for (F format : formats) {
    auto d16 = test::randomRefImage(2, 3, 4, 5, format == F::Unorm8 ? 0.0 : -1.0, 1.0);
    auto w16 = randomWeights(2, 3, 4, 5);
    if (format == F::Unorm8)
      for (auto& x : w16.data) x = std::fabs(x);
    auto k16 = makeWeights(kind);
    auto o16 = runWeights(*k16, kind, d16, w16, format, {2, 3, 4, 1});
    EXPECT_TRUE(matches(o16, format, 5)) << k16->className() << " " << toString(format);
  }
}

void weightsRejectBadInput(WK kind) {
  auto data = test::makeImage(test::randomRefImage(2, 4, 5, 6));
  auto weights = test::makeImage(test::randomRefImage(2, 4, 5, 6));
  auto weights2x2 = test::makeImage(test::randomRefImage(2, 2, 2, 6));
  auto weights5 = test::makeImage(test::randomRefImage(2, 4, 5, 5));
  auto dst = makeDestination(F::Float32, {2, 4, 5, 1});
  ref::RefImage poisoned = test::poison(*dst);
  auto expectRejected = [&](const std::function<void(NNReduceFeatureChannelsAndWeights&)>& setup,
                            const ImagePtr& secondary, const char* property) {
    auto k = makeWeights(kind);
    setup(*k);
    auto cb = queue()->commandBuffer();
    try {
      k->encode(cb, data, secondary, dst);
      ADD_FAILURE() << k->className() << ": no InvalidArgument for " << property;
    } catch (const InvalidArgument& e) {
      EXPECT_NE(std::string(e.what()).find(property), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find(k->className()), std::string::npos) << e.what();
    }
    cb->commit();
    cb->waitUntilCompleted();
    EXPECT_TRUE(close(test::download(*dst), poisoned, 0, 0))
        << "destination written after rejecting " << property;
  };
  auto none = [](NNReduceFeatureChannelsAndWeights&) {};
  expectRejected(none, weights2x2, "secondarySourceClipRect");  // neither w × h nor 1 × 1
  expectRejected(none, weights5, "feature channels");           // C_read differ
  expectRejected([](auto& k) { k.setSecondarySourceFeatureChannelOffset(1); }, weights, "feature channels");
  expectRejected(
      [](auto& k) {
        k.setPrimarySourceClipRect({{5, 0, 0}, {1, 1, 1}});
      },
      weights, "primarySourceClipRect");
  expectRejected(
      [](auto& k) {
        k.setSecondarySourceClipRect({{0, 0, 0}, {0, 1, 1}});
      },
      weights, "secondarySourceClipRect");
  expectRejected([](auto& k) { k.setClipRect({{1, 0, 0}, {kAll, kAll, kAll}}); }, weights, "clipRect.origin");
  expectRejected([](auto& k) { k.setDestinationFeatureChannelOffset(1); }, weights,
                 "destinationFeatureChannelOffset");
  expectRejected([](auto& k) { k.setSecondaryEdgeMode(ImageEdgeMode::Constant); }, weights, "edgeMode");
}

void weightsPyTorchParity(WK kind) {
  int checked = 0;
  for (const auto& tc : test::readTorchCases("reduce.txt")) {
    if (int(tc.scalars.at("op")) != 20 + int(kind)) continue;
    const auto& ds = tc.shapes.at("input");
    ref::RefImage data(ds[0], ds[1], ds[2], ds[3]);
    data.data = tc.arrays.at("input");
    const auto& ws = tc.shapes.at("weights");
    ref::RefImage weights(ws[0], ws[1], ws[2], ws[3]);
    weights.data = tc.arrays.at("weights");
    ref::RefImage expected(ds[0], ds[1], ds[2], 1);
    expected.data = tc.arrays.at("output");
    auto k = makeWeights(kind);
    auto dst = makeDestination(F::Float32, {ds[0], ds[1], ds[2], 1});
    test::poison(*dst);
    auto cb = queue()->commandBuffer();
    k->encode(cb, test::makeImage(data), test::makeImage(weights), dst);
    cb->commit();
    cb->waitUntilCompleted();
    EXPECT_TRUE(close(test::download(*dst), expected, 1e-5, 1e-5)) << "case " << tc.name;
    ++checked;
  }
  EXPECT_GT(checked, 0) << "no PyTorch case for this class";
}

TEST(NNReduceFeatureChannelsAndWeightsSum, FastPathMatchesReference) {
  weightsMatchReference(WK::Sum, false);
}
TEST(NNReduceFeatureChannelsAndWeightsSum, PlainPathMatchesReference) {
  weightsMatchReference(WK::Sum, true);
}
TEST(NNReduceFeatureChannelsAndWeightsSum, ByNonZeroWeightsFastPath) {
  weightsMatchReference(WK::SumByNonZeroWeights, false);
}
TEST(NNReduceFeatureChannelsAndWeightsSum, ByNonZeroWeightsPlainPath) {
  weightsMatchReference(WK::SumByNonZeroWeights, true);
}
TEST(NNReduceFeatureChannelsAndWeightsSum, RejectsBadInputAndLeavesTheDestinationUntouched) {
  weightsRejectBadInput(WK::Sum);
  weightsRejectBadInput(WK::SumByNonZeroWeights);
}
TEST(NNReduceFeatureChannelsAndWeightsSum, PyTorchParity) {
  weightsPyTorchParity(WK::Sum);
  weightsPyTorchParity(WK::SumByNonZeroWeights);
}
TEST(NNReduceFeatureChannelsAndWeightsSum, ConstructorsAndByHandValues) {
  EXPECT_FALSE(NNReduceFeatureChannelsAndWeightsSum(device()).doWeightedSumByNonZeroWeights());
  EXPECT_TRUE(NNReduceFeatureChannelsAndWeightsSum(device(), true).doWeightedSumByNonZeroWeights());
  EXPECT_FALSE(NNReduceFeatureChannelsAndWeightsSum(device(), false).doWeightedSumByNonZeroWeights());
  ref::RefImage data(1, 1, 2, 4), weights(1, 1, 1, 4);
  data.data = {1, 2, 3, 4, -1, 0.5, 2, 8};
  weights.data = {0.5, 0, -1, 0};
  // dot: 0.5 − 3 = −2.5 and −0.5 − 2 = −2.5; two non-zero weights; four channels.
  const std::pair<WK, std::vector<double>> rows[] = {
      {WK::Sum, {-2.5, -2.5}}, {WK::SumByNonZeroWeights, {-1.25, -1.25}}, {WK::Mean, {-0.625, -0.625}}};
  for (const auto& [kind, values] : rows) {
    auto k = makeWeights(kind);
    auto o = runWeights(*k, kind, data, weights, F::Float32, {1, 1, 2, 1});
    ref::RefImage expected(1, 1, 2, 1);
    expected.data = values;
    EXPECT_TRUE(close(o.actual, expected, 0, 1e-7)) << k->className();
  }
  ref::RefImage zeros(1, 1, 1, 4);  // no non-zero weight: 0 (spec 06 §4.2 CHOICE)
  auto k = makeWeights(WK::SumByNonZeroWeights);
  auto o = runWeights(*k, WK::SumByNonZeroWeights, data, zeros, F::Float32, {1, 1, 2, 1});
  EXPECT_EQ(o.actual.data[0], 0.0);
  EXPECT_EQ(o.actual.data[1], 0.0);
}

TEST(NNReduceFeatureChannelsAndWeightsMean, FastPathMatchesReference) {
  weightsMatchReference(WK::Mean, false);
}
TEST(NNReduceFeatureChannelsAndWeightsMean, PlainPathMatchesReference) {
  weightsMatchReference(WK::Mean, true);
}
TEST(NNReduceFeatureChannelsAndWeightsMean, RejectsBadInputAndLeavesTheDestinationUntouched) {
  weightsRejectBadInput(WK::Mean);
}
TEST(NNReduceFeatureChannelsAndWeightsMean, PyTorchParity) { weightsPyTorchParity(WK::Mean); }

TEST(NNReduceBinary, SourceClipRectsReplaceOffsetsAndAutoModeSizesTheResult) {
  auto k = NNReduceFeatureChannelsAndWeightsMean::make(device());
  EXPECT_TRUE(isRectNoClip(k->primarySourceClipRect()));
  EXPECT_TRUE(isRectNoClip(k->secondarySourceClipRect()));
  EXPECT_STREQ(k->className(), "NNReduceFeatureChannelsAndWeightsMean");
  auto data = test::randomRefImage(2, 5, 6, 4);
  auto weights = test::randomRefImage(1, 1, 1, 4);
  k->setPrimarySourceClipRect({{1, 1, 1}, {4, 3, 1}});
  k->setSecondaryOffset({5, 5, 5});  // ignored
  k->setDestinationFeatureChannelOffset(1);
  k->setDestinationImageAllocator(Image::defaultAllocator());
  auto cb = queue()->commandBuffer();
  ImagePtr dst = k->encode(cb, test::makeImage(data), test::makeImage(weights));
  cb->commit();
  cb->waitUntilCompleted();
  EXPECT_EQ(dst->width(), 4u);
  EXPECT_EQ(dst->height(), 3u);
  EXPECT_EQ(dst->featureChannels(), 2u);
  ref::RefImage expected = test::download(*dst);
  ref::reduceWeightsKernel(WK::Mean, placementOf(*k), data, weights, expected);
  EXPECT_TRUE(close(test::download(*dst), expected, 1e-6, 1e-6));
}

TEST(NNReduceBinary, EncodeBatchPairsImages) {
  auto k = NNReduceFeatureChannelsAndWeightsSum::make(device());
  ImageBatch data, weights, dsts;
  std::vector<ref::RefImage> dv, wv;
  for (int i = 0; i < 3; ++i) {
    dv.push_back(test::randomRefImage(1, 3, 4, 6));
    wv.push_back(randomWeights(1, 3, 4, 6));
    data.push_back(test::makeImage(dv.back()));
    weights.push_back(test::makeImage(wv.back()));
    dsts.push_back(makeDestination(F::Float32, {1, 3, 4, 1}));
    test::poison(*dsts.back());
  }
  auto cb = queue()->commandBuffer();
  k->encodeBatch(cb, data, weights, dsts);
  cb->commit();
  cb->waitUntilCompleted();
  for (size_t i = 0; i < 3; ++i) {
    ref::RefImage expected(1, 3, 4, 1);
    ref::reduceWeightsKernel(WK::Sum, {}, dv[i], wv[i], expected);
    EXPECT_TRUE(close(test::download(*dsts[i]), expected, 1e-5, 1e-5)) << "pair " << i;
  }
}

}  // namespace
}  // namespace mpsnn
