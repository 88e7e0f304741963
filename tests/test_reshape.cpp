// NNReshape, NNSlice, NNPad, NNConcatenation and concatenation by destination channel offset (spec 06
// §5–§8, spec 00 §7), against the float64 reference and PyTorch, on the device selected by
// MPSNN_DEVICE. Every reference comparison runs on the fast implementations and, with
// MPSNN_FORCE_PLAIN=1, on the catch-all ones.
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

constexpr uint64_t kAll = UINT64_MAX;


struct StrictValidation {
  StrictValidation() { setStrictValidation(true); }
  ~StrictValidation() { setStrictValidation(false); }
};

/// Random values (never zero) that float32 holds exactly: values are moved, so the expectations are exact.
ref::RefImage randomFloat32(int64_t n, int64_t h, int64_t w, int64_t c, double lo = -1.0, double hi = 1.0) {
  ref::RefImage r = test::randomRefImage(n, h, w, c, lo, hi);
  test::roundTo(r, F::Float32);
  return r;
}

ImagePtr makeDestination(F format, std::array<int64_t, 4> shape) {
  return Image::make(device(), ImageDescriptor::make(format, uint64_t(shape[2]), uint64_t(shape[1]),
                                                     uint64_t(shape[3]), uint64_t(shape[0])));
}

struct Outcome {
  ref::RefImage actual, expected, source;  // source: the values as stored
};

/// Encodes `kernel` manually from `values` (stored as `srcFormat`) into a poisoned destination of
/// `dstShape`; the caller's reference then writes into `expected`, which starts from the poison.
Outcome runKernel(CNNKernel& kernel, const ref::RefImage& values, F srcFormat, F dstFormat,
                  std::array<int64_t, 4> dstShape) {
  ref::RefImage src = values;
  test::roundTo(src, srcFormat);
  auto srcImage = test::makeImage(src, srcFormat);
  auto dstImage = makeDestination(dstFormat, dstShape);
  ref::RefImage poisoned = test::poison(*dstImage);
  auto cb = queue()->commandBuffer();
  kernel.encode(cb, srcImage, dstImage);
  cb->commit();
  cb->waitUntilCompleted();
  return {test::download(*dstImage), poisoned, src};
}

/// Values are moved, not computed: equal after rounding to the destination's format.
::testing::AssertionResult exact(const Outcome& o, F dstFormat) {
  ref::RefImage expected = o.expected;
  test::roundTo(expected, dstFormat);
  return close(o.actual, expected, 0, 0);
}

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

/// Expects `encode` to throw InvalidArgument naming `who` and `property`, and `dst` to keep `poisoned`.
void expectRejected(const std::function<void(CommandBufferPtr)>& encode, const char* who,
                    const char* property, const Image& dst, const ref::RefImage& poisoned) {
  auto cb = queue()->commandBuffer();
  try {
    encode(cb);
    ADD_FAILURE() << who << ": no InvalidArgument for " << property;
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find(property), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find(who), std::string::npos) << e.what();
  }
  cb->commit();
  cb->waitUntilCompleted();
  EXPECT_TRUE(close(test::download(dst), poisoned, 0, 0))
      << "destination written after rejecting " << property;
}

// =====================================================================================================
// NNReshape

struct ReshapeCase {
  int64_t n, h, w, c;                              // source
  int64_t h2, w2, c2;                              // target
  uint64_t srcC0 = 0, maxCount = kAll, dstC0 = 0;  // channel placement
};

std::vector<ReshapeCase> reshapeCases() {
  return {
      {2, 3, 5, 7, 5, 7, 3},
      {3, 1, 13, 1, 13, 1, 1},
      {2, 4, 6, 3, 1, 1, 72},
      {1, 5, 3, 17, 17, 5, 3},
      {2, 2, 2, 13, 1, 4, 13},
      {3, 6, 1, 5, 2, 5, 3},
      {2, 3, 5, 7, 7, 3, 5, 0, kAll, 2},  // destination channels 2..6 of a 7-channel image
      {2, 3, 4, 9, 4, 1, 15, 2, 5},       // source channels 2..6 (a channel view)
      {1, 7, 3, 5, 3, 1, 21, 1, 3, 1},    // both
  };
}

void reshapeMatchesReference(bool plain) {
  ForcePlain force(plain);
  for (const ReshapeCase& rc : reshapeCases()) {
    auto values = randomFloat32(rc.n, rc.h, rc.w, rc.c);
    NNReshape k(device());
    k.setSourceFeatureChannelOffset(rc.srcC0);
    k.setSourceFeatureChannelMaxCount(rc.maxCount);
    k.setDestinationFeatureChannelOffset(rc.dstC0);
    auto o = runKernel(k, values, F::Float32, F::Float32, {rc.n, rc.h2, rc.w2, int64_t(rc.dstC0) + rc.c2});
    ref::reshapeKernel(rc.srcC0, rc.maxCount, rc.dstC0, o.source, o.expected);
    EXPECT_TRUE(exact(o, F::Float32))
        << rc.n << "x" << rc.h << "x" << rc.w << "x" << rc.c << " -> " << rc.h2 << "x" << rc.w2 << "x"
        << rc.c2 << " srcC0=" << rc.srcC0 << " dstC0=" << rc.dstC0 << (plain ? " plain" : " fast");
  }
}

TEST(NNReshape, FastPathMatchesReference) { reshapeMatchesReference(false); }
TEST(NNReshape, PlainPathMatchesReference) { reshapeMatchesReference(true); }

TEST(NNReshape, Formats) {
  for (bool plain : {false, true}) {
    ForcePlain force(plain);
    std::vector<std::pair<F, F>> pairs = {
        {F::Float16, F::Float16}, {F::Float16, F::Float32}, {F::Float32, F::Float16}};
    if (plain) pairs.push_back({F::Unorm8, F::Unorm8});
    for (auto [sf, df] : pairs) {
      auto values = randomFloat32(2, 3, 5, 7, sf == F::Unorm8 ? 0.0 : -1.0, 1.0);
      NNReshape k(device());
      auto o = runKernel(k, values, sf, df, {2, 7, 3, 5});
      ref::reshapeKernel(0, kAll, 0, o.source, o.expected);
      EXPECT_TRUE(exact(o, df)) << toString(sf) << " -> " << toString(df) << (plain ? " plain" : " fast");
    }
  }
}

TEST(NNReshape, ElementOrderIsRowMajorHWC) {
  // 1 × 2 × 3 (h, w, c) holding 0..5 → 3 × 1 × 2: (y', x', c') = (L / 2, 0, L % 2).
  ref::RefImage v(1, 1, 2, 3);
  v.data = {0, 1, 2, 3, 4, 5};
  for (bool plain : {false, true}) {
    ForcePlain force(plain);
    NNReshape k(device());
    auto o = runKernel(k, v, F::Float32, F::Float32, {1, 3, 1, 2});
    EXPECT_EQ(o.actual.data, (std::vector<double>{0, 1, 2, 3, 4, 5}));
    EXPECT_EQ(o.actual.at(0, 2, 0, 1), 5.0);
    EXPECT_EQ(o.actual.at(0, 1, 0, 0), 2.0);
  }
}

TEST(NNReshape, AutoModeTakesTheTargetShapeAndBatches) {
  auto k = NNReshape::make(device());
  k->setDestinationImageAllocator(Image::defaultAllocator());
  auto values = randomFloat32(1, 4, 6, 5);
  auto src = test::makeImage(values);
  auto cb = queue()->commandBuffer();
  ImagePtr reshaped = k->encode(cb, src, 10, 3, 4);
  ImagePtr same = k->encode(cb, src);  // no target: the source's own shape
  ImageBatch sources, batch;
  std::vector<ref::RefImage> batchValues;
  for (int i = 0; i < 3; ++i) {
    batchValues.push_back(randomFloat32(1, 4, 6, 5));
    sources.push_back(test::makeImage(batchValues.back()));
  }
  batch = k->encodeBatch(cb, sources, 2, 60, 1);
  cb->commit();
  cb->waitUntilCompleted();
  EXPECT_EQ(reshaped->descriptor(), ImageDescriptor::make(F::Float32, 10, 3, 4));
  EXPECT_EQ(same->descriptor(), ImageDescriptor::make(F::Float32, 6, 4, 5));
  ref::RefImage expected(1, 3, 10, 4);
  ref::reshapeKernel(0, kAll, 0, values, expected);
  EXPECT_TRUE(close(test::download(*reshaped), expected, 0, 0));
  EXPECT_TRUE(close(test::download(*same), values, 0, 0));
  ASSERT_EQ(batch.size(), 3u);
  for (size_t i = 0; i < 3; ++i) {
    ref::RefImage e(1, 60, 2, 1);
    ref::reshapeKernel(0, kAll, 0, batchValues[i], e);
    EXPECT_TRUE(close(test::download(*batch[i]), e, 0, 0)) << "batch item " << i;
  }
}

TEST(NNReshape, MultiImageAndEncodeBatch) {
  auto values = randomFloat32(3, 2, 6, 5);
  NNReshape k(device());
  auto o = runKernel(k, values, F::Float32, F::Float32, {3, 5, 4, 3});
  ref::reshapeKernel(0, kAll, 0, o.source, o.expected);
  EXPECT_TRUE(exact(o, F::Float32));
  ImageBatch sources, destinations;
  std::vector<ref::RefImage> v;
  for (int i = 0; i < 2; ++i) {
    v.push_back(randomFloat32(1, 3, 3, 4));
    sources.push_back(test::makeImage(v.back()));
    destinations.push_back(makeDestination(F::Float32, {1, 2, 9, 2}));
    test::poison(*destinations.back());
  }
  auto cb = queue()->commandBuffer();
  k.encodeBatch(cb, sources, destinations);
  cb->commit();
  cb->waitUntilCompleted();
  for (size_t i = 0; i < 2; ++i) {
    ref::RefImage e(1, 2, 9, 2);
    ref::reshapeKernel(0, kAll, 0, v[i], e);
    EXPECT_TRUE(close(test::download(*destinations[i]), e, 0, 0));
  }
}

TEST(NNReshape, RejectsBadInputAndLeavesTheDestinationUntouched) {
  auto src = test::makeImage(randomFloat32(2, 3, 4, 5));
  auto dst = makeDestination(F::Float32, {2, 6, 2, 5});
  ref::RefImage poisoned = test::poison(*dst);
  auto bad = makeDestination(F::Float32, {2, 6, 2, 4});  // 48 values for 60
  ref::RefImage badPoisoned = test::poison(*bad);
  auto reject = [&](const std::function<void(NNReshape&)>& setup, const char* property, const ImagePtr& d,
                    const ref::RefImage& p) {
    expectRejected(
        [&](CommandBufferPtr cb) {
          NNReshape k(device());
          setup(k);
          k.encode(cb, src, d);
        },
        "NNReshape", property, *d, p);
  };
  reject([](NNReshape&) {}, "width * height * featureChannels", bad, badPoisoned);
  reject([](NNReshape& k) { k.setOffset({1, 0, 0}); }, "offset", dst, poisoned);
  reject([](NNReshape& k) { k.setOffset({0, 0, 1}); }, "offset", dst, poisoned);
  reject([](NNReshape& k) { k.setClipRect({{0, 0, 0}, {2, 6, 2}}); }, "clipRect", dst, poisoned);
  reject([](NNReshape& k) { k.setDestinationFeatureChannelOffset(5); }, "destinationFeatureChannelOffset",
         dst, poisoned);
  reject([](NNReshape& k) { k.setDestinationFeatureChannelOffset(1); }, "width * height * featureChannels",
         dst, poisoned);
  reject([](NNReshape& k) { k.setSourceFeatureChannelOffset(5); }, "sourceFeatureChannelOffset", dst,
         poisoned);
  reject([](NNReshape& k) { k.setEdgeMode(ImageEdgeMode::Mirror); }, "edgeMode", dst, poisoned);
  NNReshape k(device());
  auto cb = queue()->commandBuffer();
  for (auto [w, h, c, property] :
       {std::tuple{0, 6, 10, "reshapedWidth"}, std::tuple{6, 0, 10, "reshapedHeight"},
        std::tuple{6, 10, 0, "reshapedFeatureChannels"}, std::tuple{5, 5, 5, "reshaped shape"}}) {
    try {
      k.encode(cb, src, uint64_t(w), uint64_t(h), uint64_t(c));
      ADD_FAILURE() << "no InvalidArgument for " << property;
    } catch (const InvalidArgument& e) {
      EXPECT_NE(std::string(e.what()).find(property), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find("NNReshape"), std::string::npos) << e.what();
    }
  }
  EXPECT_THROW(k.encode(cb, ImagePtr(), 1, 1, 1), InvalidArgument);
  EXPECT_THROW(k.encode(cb, src, src), InvalidArgument);
}

TEST(NNReshape, PyTorchParity) {
  int checked = 0;
  for (const auto& tc : test::readTorchCases("reduce.txt")) {
    if (int(tc.scalars.at("op")) != 30) continue;
    const auto& s = tc.shapes.at("input");
    ref::RefImage input(s[0], s[1], s[2], s[3]);
    input.data = tc.arrays.at("input");
    const auto& os = tc.shapes.at("output");
    ref::RefImage expected(os[0], os[1], os[2], os[3]);
    expected.data = tc.arrays.at("output");
    for (bool plain : {false, true}) {
      ForcePlain force(plain);
      NNReshape k(device());
      auto o = runKernel(k, input, F::Float32, F::Float32, {os[0], os[1], os[2], os[3]});
      EXPECT_TRUE(close(o.actual, expected, 0, 0)) << "case " << tc.name << (plain ? " plain" : " fast");
    }
    ++checked;
  }
  EXPECT_GT(checked, 0);
}

// =====================================================================================================
// NNSlice

void sliceMatchesReference(bool plain) {
  ForcePlain force(plain);
  for (int64_t channels : {1, 3, 5, 7, 13, 17}) {
    auto values = randomFloat32(3, 7, 9, channels);
    std::vector<ref::UnaryPlacement> placements;
    for (auto edge : {ImageEdgeMode::Zero, ImageEdgeMode::Clamp}) {
      ref::UnaryPlacement p;
      p.edgeMode = edge;
      placements.push_back(p);                 // the whole image (a plain copy)
      p.offset = {2, 1, 1};                    // inside the source, images 1..
      p.clipRect = {{1, 2, 0}, {4, 3, kAll}};  // a 4 × 3 box at (1, 2)
      placements.push_back(p);
      p.offset = {-2, 5, 0};  // partly outside: edge mode
      placements.push_back(p);
      p = ref::UnaryPlacement();
      p.edgeMode = edge;
      p.sourceFeatureChannelOffset = uint64_t(channels / 2);  // any offset (not a multiple of 4)
      p.destinationFeatureChannelOffset = 1;
      p.offset = {3, 0, 0};
      placements.push_back(p);
      p.sourceFeatureChannelMaxCount = 2;  // at most 2 channels
      p.offset = {0, 2, 2};
      placements.push_back(p);
    }
    for (const auto& placement : placements) {
      NNSlice k(device());
      applyPlacement(k, placement);
      // The destination has channels to spare or too few: the count is the smaller (spec 06 §6).
      for (int64_t dstChannels : {channels + 2, std::max<int64_t>(2, channels - 2)}) {
        auto o = runKernel(k, values, F::Float32, F::Float32, {3, 6, 8, dstChannels});
        ref::sliceKernel(placementOf(k), o.source, o.expected);
        EXPECT_TRUE(exact(o, F::Float32))
            << "channels=" << channels << " dst=" << dstChannels << " offset=" << placement.offset.x << ","
            << placement.offset.y << "," << placement.offset.z
            << " srcC0=" << placement.sourceFeatureChannelOffset << " edge=" << toString(placement.edgeMode)
            << (plain ? " plain" : " fast");
      }
    }
  }
}

TEST(NNSlice, FastPathMatchesReference) { sliceMatchesReference(false); }
TEST(NNSlice, PlainPathMatchesReference) { sliceMatchesReference(true); }

TEST(NNSlice, Formats) {
  for (bool plain : {false, true}) {
    ForcePlain force(plain);
    std::vector<std::pair<F, F>> pairs = {{F::Float16, F::Float16}, {F::Float16, F::Float32}};
    if (plain) pairs.push_back({F::Unorm8, F::Unorm8});
    for (auto [sf, df] : pairs) {
      auto values = randomFloat32(2, 5, 6, 7, sf == F::Unorm8 ? 0.0 : -1.0, 1.0);
      NNSlice k(device());
      k.setOffset({-1, 2, 0});
      k.setEdgeMode(ImageEdgeMode::Clamp);
      k.setSourceFeatureChannelOffset(3);
      auto o = runKernel(k, values, sf, df, {2, 4, 5, 4});
      ref::sliceKernel(placementOf(k), o.source, o.expected);
      EXPECT_TRUE(exact(o, df)) << toString(sf) << " -> " << toString(df) << (plain ? " plain" : " fast");
    }
  }
}

TEST(NNSlice, StrictValidationAcceptsAnySourceChannelOffset) {
  StrictValidation strict;
  auto values = randomFloat32(1, 3, 3, 9);
  NNSlice k(device());
  k.setSourceFeatureChannelOffset(3);
  auto o = runKernel(k, values, F::Float32, F::Float32, {1, 3, 3, 6});
  ref::sliceKernel(placementOf(k), o.source, o.expected);
  EXPECT_TRUE(exact(o, F::Float32));
  k.setDestinationFeatureChannelOffset(1);  // still a multiple of 4 under strict validation
  auto src = test::makeImage(values);
  auto dst = makeDestination(F::Float32, {1, 3, 3, 8});
  auto poisoned = test::poison(*dst);
  expectRejected([&](CommandBufferPtr cb) { k.encode(cb, src, dst); }, "NNSlice",
                 "destinationFeatureChannelOffset", *dst, poisoned);
}

TEST(NNSlice, AutoModeSizesBySliceBoxAndKeepsTheOffset) {
  auto values = randomFloat32(1, 7, 9, 6);
  auto src = test::makeImage(values);
  auto k = NNSlice::make(device());
  k->setDestinationImageAllocator(Image::defaultAllocator());
  k->setOffset({2, 1, 0});
  k->setClipRect({{5, 4, 0}, {3, 2, 1}});  // a 3 × 2 slice; its origin is (0, 0) of the new image
  k->setSourceFeatureChannelOffset(1);
  k->setSourceFeatureChannelMaxCount(4);
  k->setDestinationFeatureChannelOffset(2);
  auto cb = queue()->commandBuffer();
  ImagePtr boxed = k->encode(cb, src);
  k->setClipRect(RectNoClip);
  k->setOffset({-1, 3, 0});
  ImagePtr rest = k->encode(cb, src);  // (9 + 1) × (7 − 3)
  ImageBatch batch = k->encodeBatch(cb, {src, src});
  cb->commit();
  cb->waitUntilCompleted();
  EXPECT_EQ(k->offset(), (Offset{-1, 3, 0}));  // the padding policy does not move it
  EXPECT_EQ(boxed->descriptor(), ImageDescriptor::make(F::Float32, 3, 2, 6));
  EXPECT_EQ(rest->descriptor(), ImageDescriptor::make(F::Float32, 10, 4, 6));
  ref::RefImage e1 = test::download(*boxed);
  ref::UnaryPlacement p;
  p.offset = {2, 1, 0};
  p.sourceFeatureChannelOffset = 1;
  p.sourceFeatureChannelMaxCount = 4;
  p.destinationFeatureChannelOffset = 2;
  ref::sliceKernel(p, values, e1);
  EXPECT_TRUE(close(test::download(*boxed), e1, 0, 0));
  for (double x : {e1.at(0, 0, 0, 0), e1.at(0, 1, 2, 1)}) EXPECT_EQ(x, 0.0);  // channels 0, 1: as allocated
  ref::RefImage e2 = test::download(*rest);
  p.offset = {-1, 3, 0};
  ref::sliceKernel(p, values, e2);
  EXPECT_TRUE(close(test::download(*rest), e2, 0, 0));
  for (const auto& b : batch) EXPECT_TRUE(close(test::download(*b), e2, 0, 0));
}

TEST(NNSlice, EncodeBatchAndTemporarySources) {
  auto k = NNSlice::make(device());
  k->setOffset({1, 1, 0});
  ImageBatch sources, destinations;
  std::vector<ref::RefImage> v, poisoned;
  for (int i = 0; i < 3; ++i) {
    v.push_back(randomFloat32(1, 4, 5, 3));
    sources.push_back(test::makeImage(v.back()));
    destinations.push_back(makeDestination(F::Float32, {1, 3, 4, 3}));
    poisoned.push_back(test::poison(*destinations.back()));
  }
  auto cb = queue()->commandBuffer();
  k->encodeBatch(cb, sources, destinations);
  ImagePtr temporary = k->encode(cb, sources[0]);  // a temporary result, read once below
  auto copy = NNSlice::make(device());
  copy->setDestinationImageAllocator(Image::defaultAllocator());
  ImagePtr fromTemporary = copy->encode(cb, temporary);
  EXPECT_EQ(static_cast<TemporaryImage&>(*temporary).readCount(), 0u);
  cb->commit();
  cb->waitUntilCompleted();
  for (size_t i = 0; i < 3; ++i) {
    ref::RefImage e = poisoned[i];
    ref::sliceKernel(placementOf(*k), v[i], e);
    EXPECT_TRUE(close(test::download(*destinations[i]), e, 0, 0)) << "batch item " << i;
  }
  ref::RefImage e(1, 3, 4, 3);
  ref::sliceKernel(placementOf(*k), v[0], e);
  EXPECT_TRUE(close(test::download(*fromTemporary), e, 0, 0));
}

TEST(NNSlice, RejectsBadInputAndLeavesTheDestinationUntouched) {
  auto src = test::makeImage(randomFloat32(2, 4, 5, 6));
  auto dst = makeDestination(F::Float32, {2, 4, 5, 6});
  auto poisoned = test::poison(*dst);
  auto reject = [&](const std::function<void(NNSlice&)>& setup, const char* property) {
    expectRejected(
        [&](CommandBufferPtr cb) {
          NNSlice k(device());
          setup(k);
          k.encode(cb, src, dst);
        },
        "NNSlice", property, *dst, poisoned);
  };
  reject([](NNSlice& k) { k.setEdgeMode(ImageEdgeMode::Mirror); }, "edgeMode");
  reject([](NNSlice& k) { k.setEdgeMode(ImageEdgeMode::Constant); }, "edgeMode");
  reject([](NNSlice& k) { k.setSourceFeatureChannelOffset(6); }, "sourceFeatureChannelOffset");
  reject([](NNSlice& k) { k.setDestinationFeatureChannelOffset(6); }, "destinationFeatureChannelOffset");
  reject([](NNSlice& k) { k.setOffset({INT64_MIN, 0, 0}); }, "offset.x");
  reject([](NNSlice& k) { k.setOffset({0, INT64_MAX, 0}); }, "offset.y");
  reject([](NNSlice& k) { k.setOffset({0, 0, 2}); }, "offset.z");
  reject([](NNSlice& k) { k.setClipRect({{0, 0, 1}, {2, 2, 2}}); }, "clipRect");
  auto cb = queue()->commandBuffer();
  NNSlice k(device());
  k.setOffset({5, 0, 0});  // auto mode: no column left
  try {
    k.encode(cb, src);
    ADD_FAILURE() << "no InvalidArgument for offset.x";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("offset.x"), std::string::npos) << e.what();
  }
  k.setOffset({0, 0, 0});
  k.setClipRect({{0, 0, 0}, {0, 2, 1}});
  EXPECT_THROW(k.encode(cb, src), InvalidArgument);  // an empty slice box
  EXPECT_THROW(k.encode(cb, src, src), InvalidArgument);
}

TEST(NNSlice, PyTorchParity) {
  int checked = 0;
  for (const auto& tc : test::readTorchCases("reduce.txt")) {
    if (int(tc.scalars.at("op")) != 31) continue;
    const auto& s = tc.shapes.at("input");
    ref::RefImage input(s[0], s[1], s[2], s[3]);
    input.data = tc.arrays.at("input");
    const auto& os = tc.shapes.at("output");
    ref::RefImage expected(os[0], os[1], os[2], os[3]);
    expected.data = tc.arrays.at("output");
    for (bool plain : {false, true}) {
      ForcePlain force(plain);
      NNSlice k(device());
      k.setOffset({int64_t(tc.scalars.at("x0")), int64_t(tc.scalars.at("y0")), 0});
      k.setSourceFeatureChannelOffset(uint64_t(tc.scalars.at("c0")));
      // The destination's channel count limits the slice to cc channels (spec 06 §6).
      auto o = runKernel(k, input, F::Float32, F::Float32, {os[0], os[1], os[2], os[3]});
      EXPECT_TRUE(close(o.actual, expected, 0, 0)) << "case " << tc.name << (plain ? " plain" : " fast");
    }
    ++checked;
  }
  EXPECT_GT(checked, 0);
}

// =====================================================================================================
// NNPad

ref::PadSpec padSpecOf(const NNPad& k) {
  ref::PadSpec s;
  s.channelsBefore = k.paddingSizeBefore().channel;
  s.channelsAfter = k.paddingSizeAfter().channel;
  s.fillValue = k.fillValue();
  if (k.fillValueArray())
    for (float v : *k.fillValueArray()) s.fillValueArray.push_back(v);
  return s;
}

TEST(NNPad, SpecExamples) {
  // Channels (spec 06 §7): x0…x5, before 2, after 3, source offset 1, max count 3, destination offset 4.
  ref::RefImage channels(1, 1, 1, 6);
  channels.data = {10, 11, 12, 13, 14, 15};
  // Spatial: [x0 x1 x2], offset −4 (Mirror) and −2 (Clamp), width 8.
  ref::RefImage row(1, 1, 3, 1);
  row.data = {20, 21, 22};
  for (bool plain : {false, true}) {
    ForcePlain force(plain);
    for (auto [edge, values] :
         {std::pair{ImageEdgeMode::Zero, std::vector<double>{0, 0, 11, 12, 13, 0, 0, 0}},
          std::pair{ImageEdgeMode::MirrorWithEdge, std::vector<double>{12, 11, 11, 12, 13, 13, 12, 11}}}) {
      NNPad k(device(), {0, 0, 2}, {0, 0, 3});
      k.setSourceFeatureChannelOffset(1);
      k.setSourceFeatureChannelMaxCount(3);
      k.setDestinationFeatureChannelOffset(4);
      k.setEdgeMode(edge);
      auto o = runKernel(k, channels, F::Float32, F::Float32, {1, 1, 1, 12});
      std::vector<double> got(o.actual.data.begin() + 4, o.actual.data.end());
      EXPECT_EQ(got, values) << toString(edge) << (plain ? " plain" : " fast");
      for (int c = 0; c < 4; ++c)
        EXPECT_TRUE(std::isnan(o.actual.data[size_t(c)])) << "channel " << c << " touched";
    }
    for (auto [edge, offset, values] :
         {std::tuple{ImageEdgeMode::Mirror, -4, std::vector<double>{20, 21, 22, 21, 20, 21, 22, 21}},
          std::tuple{ImageEdgeMode::Clamp, -2, std::vector<double>{20, 20, 20, 21, 22, 22, 22, 22}}}) {
      NNPad k(device());
      k.setEdgeMode(edge);
      k.setOffset({offset, 0, 0});
      auto o = runKernel(k, row, F::Float32, F::Float32, {1, 1, 8, 1});
      EXPECT_EQ(o.actual.data, values) << toString(edge) << (plain ? " plain" : " fast");
    }
  }
  // Mirror on an axis of length 1 returns the single value.
  ref::RefImage one(1, 1, 1, 1);
  one.data = {7};
  NNPad k(device(), {0, 0, 2}, {0, 0, 1});
  k.setEdgeMode(ImageEdgeMode::Mirror);
  k.setOffset({-2, -1, 0});
  auto o = runKernel(k, one, F::Float32, F::Float32, {1, 3, 4, 4});
  for (double v : o.actual.data) EXPECT_EQ(v, 7.0);
}

void padMatchesReference(bool plain) {
  ForcePlain force(plain);
  const ImageEdgeMode modes[] = {ImageEdgeMode::Zero, ImageEdgeMode::Clamp, ImageEdgeMode::Mirror,
                                 ImageEdgeMode::MirrorWithEdge, ImageEdgeMode::Constant};
  int round = 0;
  for (int64_t channels : {1, 3, 5, 7, 13, 17}) {
    auto values = randomFloat32(3, 4, 5, channels);
    for (ImageEdgeMode edge : modes) {
      ++round;
      const uint64_t before = uint64_t(round % 3), after = uint64_t((round + 1) % 4);
      NNPad::FillValues fill;
      const uint64_t written = before + uint64_t(channels) - 1 + after;  // source offset 1 below
      if (round % 2) {
        std::vector<float> f;
        for (double v : test::randomValues(written + 2)) f.push_back(float(v));  // longer than needed: fine
        fill = std::make_shared<const std::vector<float>>(f);
      }
      auto k = NNPad::make(device(), {2, 1, before}, {3, 2, after}, fill);
      k->setFillValue(-0.625f);
      k->setEdgeMode(edge);
      k->setSourceFeatureChannelOffset(channels > 1 ? 1 : 0);
      const uint64_t cRead = uint64_t(channels > 1 ? channels - 1 : 1);
      const int64_t dstChannels = int64_t(before + cRead + after) + 3;
      for (const Offset& offset : {Offset{-2, -1, 0}, Offset{-7, 3, 1}, Offset{9, -6, 0}, Offset{1, 1, 2}}) {
        k->setOffset(offset);
        k->setDestinationFeatureChannelOffset(round % 3 == 0 ? 2 : 0);
        auto o = runKernel(*k, values, F::Float32, F::Float32, {3, 7, 10, dstChannels});
        ref::padKernel(padSpecOf(*k), placementOf(*k), o.source, o.expected);
        EXPECT_TRUE(exact(o, F::Float32))
            << toString(edge) << " channels=" << channels << " before=" << before << " after=" << after
            << " offset=" << offset.x << "," << offset.y << "," << offset.z << " fillArray=" << bool(fill)
            << (plain ? " plain" : " fast");
      }
    }
  }
}

TEST(NNPad, FastPathMatchesReference) { padMatchesReference(false); }
TEST(NNPad, PlainPathMatchesReference) { padMatchesReference(true); }

TEST(NNPad, FormatsAndClipRect) {
  for (bool plain : {false, true}) {
    ForcePlain force(plain);
    std::vector<std::pair<F, F>> pairs = {{F::Float16, F::Float16}, {F::Float16, F::Float32}};
    if (plain) pairs.push_back({F::Unorm8, F::Unorm8});
    for (auto [sf, df] : pairs)
      for (auto edge : {ImageEdgeMode::Constant, ImageEdgeMode::Mirror}) {
        auto values = randomFloat32(2, 3, 4, 5, sf == F::Unorm8 ? 0.0 : -1.0, 1.0);
        NNPad k(device(), {1, 1, 1}, {1, 1, 2});
        k.setFillValue(0.3125f);
        k.setEdgeMode(edge);
        k.setOffset({-1, -2, 0});
        k.setClipRect({{1, 1, 1}, {4, 3, 1}});
        auto o = runKernel(k, values, sf, df, {2, 5, 6, 8});
        ref::padKernel(padSpecOf(k), placementOf(k), o.source, o.expected);
        EXPECT_TRUE(exact(o, df)) << toString(sf) << " -> " << toString(df) << " " << toString(edge)
                                  << (plain ? " plain" : " fast");
      }
  }
}

TEST(NNPad, ConstructorsPropertiesAndAutoMode) {
  NNPad plain(device());
  EXPECT_EQ(plain.paddingSizeBefore().x, 0u);
  EXPECT_EQ(plain.paddingSizeAfter().channel, 0u);
  EXPECT_EQ(plain.fillValue(), 0.0f);
  EXPECT_EQ(plain.fillValueArray(), nullptr);
  EXPECT_EQ(plain.edgeMode(), ImageEdgeMode::Zero);
  EXPECT_STREQ(plain.className(), "NNPad");
  auto k = NNPad::make(device(), {2, 1, 1}, {1, 3, 2});
  EXPECT_EQ(k->paddingSizeBefore().x, 2u);
  EXPECT_EQ(k->paddingSizeAfter().y, 3u);
  k->setEdgeMode(ImageEdgeMode::MirrorWithEdge);
  k->setClipRect({{3, 3, 0}, {1, 1, 1}});  // auto mode writes the whole new image regardless
  k->setDestinationImageAllocator(Image::defaultAllocator());
  auto values = randomFloat32(1, 4, 5, 3);
  auto cb = queue()->commandBuffer();
  ImagePtr dst = k->encode(cb, test::makeImage(values));
  cb->commit();
  cb->waitUntilCompleted();
  EXPECT_EQ(dst->descriptor(), ImageDescriptor::make(F::Float32, 8, 8, 6));
  EXPECT_EQ(k->offset(), (Offset{-2, -1, 0}));
  ref::RefImage expected(1, 8, 8, 6);
  ref::UnaryPlacement p = placementOf(*k);
  p.clipRect = RectNoClip;
  ref::padKernel(padSpecOf(*k), p, values, expected);
  EXPECT_TRUE(close(test::download(*dst), expected, 0, 0));
}

TEST(NNPad, StrictValidationAcceptsAnySourceChannelOffset) {
  StrictValidation strict;
  auto values = randomFloat32(1, 2, 2, 7);
  NNPad k(device(), {0, 0, 1}, {0, 0, 0});
  k.setSourceFeatureChannelOffset(3);
  auto o = runKernel(k, values, F::Float32, F::Float32, {1, 2, 2, 5});
  ref::padKernel(padSpecOf(k), placementOf(k), o.source, o.expected);
  EXPECT_TRUE(exact(o, F::Float32));
}

TEST(NNPad, RejectsBadInputAndLeavesTheDestinationUntouched) {
  auto src = test::makeImage(randomFloat32(1, 3, 3, 4));
  auto dst = makeDestination(F::Float32, {1, 3, 3, 8});
  auto poisoned = test::poison(*dst);
  auto reject = [&](const std::function<std::shared_ptr<NNPad>()>& make, const char* property) {
    expectRejected([&](CommandBufferPtr cb) { make()->encode(cb, src, dst); }, "NNPad", property, *dst,
                   poisoned);
  };
  auto shortFill = std::make_shared<const std::vector<float>>(std::vector<float>{1, 2, 3, 4, 5});
  reject(
      [&] {
        return NNPad::make(device(), {0, 0, 1}, {0, 0, 1}, shortFill);
      },
      "fillValueArray");  // 6 written
  reject(
      [&] {
        return NNPad::make(device(), {0, 0, 0}, {0, 0, 0}, std::make_shared<const std::vector<float>>());
      },
      "fillValueArray");
  reject(
      [&] {
        return NNPad::make(device(), {0, 0, 3}, {0, 0, 2});
      },
      "destination featureChannels");  // 9 > 8
  reject(
      [&] {
        auto k = NNPad::make(device());
        k->setEdgeMode(ImageEdgeMode(7));
        return k;
      },
      "edgeMode");
  reject(
      [&] {
        auto k = NNPad::make(device());
        k->setOffset({-(int64_t(1) << 62) - 1, 0, 0});
        return k;
      },
      "offset.x");
  {
    StrictValidation strict;
    reject(
        [&] {
          auto k = NNPad::make(device());
          k->setDestinationFeatureChannelOffset(2);
          return k;
        },
        "destinationFeatureChannelOffset");
  }
  for (auto [before, after, property] :
       {std::tuple{ImageCoordinate{uint64_t(1) << 31, 0, 0}, ImageCoordinate{}, "paddingSizeBefore.x"},
        std::tuple{ImageCoordinate{}, ImageCoordinate{0, 0, UINT64_MAX}, "paddingSizeAfter.channel"}}) {
    try {
      NNPad k(device(), before, after);
      ADD_FAILURE() << "no InvalidArgument for " << property;
    } catch (const InvalidArgument& e) {
      EXPECT_NE(std::string(e.what()).find(property), std::string::npos) << e.what();
    }
  }
  NNPad k(device());
  EXPECT_THROW(k.setPaddingSizeAfter({0, uint64_t(1) << 40, 0}), InvalidArgument);
  EXPECT_EQ(k.paddingSizeAfter().y, 0u);  // unchanged
}

TEST(NNPad, PyTorchParity) {
  int checked = 0;
  for (const auto& tc : test::readTorchCases("reduce.txt")) {
    if (int(tc.scalars.at("op")) != 32) continue;
    const auto& s = tc.shapes.at("input");
    ref::RefImage input(s[0], s[1], s[2], s[3]);
    input.data = tc.arrays.at("input");
    const auto& os = tc.shapes.at("output");
    ref::RefImage expected(os[0], os[1], os[2], os[3]);
    expected.data = tc.arrays.at("output");
    auto at = [&](const char* key) { return uint64_t(tc.scalars.at(key)); };
    for (bool plain : {false, true}) {
      ForcePlain force(plain);
      auto k = NNPad::make(device(), {at("bx"), at("by"), at("bc")}, {at("ax"), at("ay"), at("ac")});
      k->setEdgeMode(ImageEdgeMode(int(tc.scalars.at("mode"))));
      k->setFillValue(float(tc.scalars.at("fill")));
      k->setDestinationImageAllocator(Image::defaultAllocator());
      auto src = test::makeImage(input);
      auto cb = queue()->commandBuffer();
      // Auto mode sizes the destination and sets the offset from paddingSizeBefore/After; it makes
      // one image, so each image of the case goes through its own single-image view.
      ImageBatch images = src->batchRepresentation();
      ImageBatch results = k->encodeBatch(cb, images);
      cb->commit();
      cb->waitUntilCompleted();
      ref::RefImage actual(os[0], os[1], os[2], os[3]);
      for (size_t i = 0; i < results.size(); ++i) {
        auto one = test::download(*results[i]);
        std::copy(one.data.begin(), one.data.end(), actual.data.begin() + int64_t(i * one.data.size()));
      }
      EXPECT_TRUE(close(actual, expected, 0, 0)) << "case " << tc.name << (plain ? " plain" : " fast");
    }
    ++checked;
  }
  EXPECT_GT(checked, 0);
}

// =====================================================================================================
// NNConcatenation and concatenation by channel offset

TEST(NNConcatenation, FeatureChannelOffsetsRoundEachInputUpToFour) {
  EXPECT_EQ(NNConcatenation::featureChannelOffsets({32, 16}), (std::vector<uint64_t>{0, 32, 48}));
  EXPECT_EQ(NNConcatenation::featureChannelOffsets({23, 1, 4, 5}),
            (std::vector<uint64_t>{0, 24, 28, 32, 40}));
  EXPECT_THROW(NNConcatenation::featureChannelOffsets({}), InvalidArgument);
  EXPECT_THROW(NNConcatenation::featureChannelOffsets({3, 0}), InvalidArgument);
  EXPECT_THROW(NNConcatenation::featureChannelOffsets({UINT64_MAX - 5, 8}), InvalidArgument);
}

void concatenationMatchesReference(bool plain) {
  ForcePlain force(plain);
  const std::vector<int64_t> channelCounts = {23, 3, 8, 1, 5};
  std::vector<ref::RefImage> values;
  ImageBatch inputs;
  for (size_t j = 0; j < channelCounts.size(); ++j) {
    values.push_back(randomFloat32(2, 3, 5, channelCounts[j]));
    const F format = j == 1 ? F::Float16 : F::Float32;  // a float16 input converts
    test::roundTo(values.back(), format);
    inputs.push_back(test::makeImage(values.back(), format));
  }
  auto k = NNConcatenation::make(device());
  auto dst = makeDestination(F::Float32, {2, 3, 5, 24 + 4 + 8 + 4 + 8 + 3});  // 3 channels to spare
  ref::RefImage expected = test::poison(*dst);
  auto cb = queue()->commandBuffer();
  k->encode(cb, inputs, dst);
  cb->commit();
  cb->waitUntilCompleted();
  ref::concatenationKernel(values, expected);
  EXPECT_TRUE(close(test::download(*dst), expected, 0, 0)) << (plain ? "plain" : "fast");
  EXPECT_EQ(test::download(*dst).at(1, 2, 4, 23), 0.0);  // QUIRK: channel 23 of the 24 is zero
}

TEST(NNConcatenation, FastPathCopiesIntoChannelRanges) { concatenationMatchesReference(false); }
TEST(NNConcatenation, PlainPathCopiesIntoChannelRanges) { concatenationMatchesReference(true); }

TEST(NNConcatenation, AutoModeAndTemporaryInputs) {
  auto a = randomFloat32(1, 4, 3, 6), b = randomFloat32(1, 4, 3, 2);
  auto cb = queue()->commandBuffer();
  auto copy = NNSlice::make(device());
  ImagePtr temporary = copy->encode(cb, test::makeImage(b));  // read once by the concatenation
  auto k = NNConcatenation::make(device());
  EXPECT_EQ(k->destinationImageDescriptor({test::makeImage(a), temporary}),
            ImageDescriptor::make(F::Float32, 3, 4, 12));
  k->setDestinationImageAllocator(Image::defaultAllocator());
  ImagePtr dst = k->encode(cb, {test::makeImage(a), temporary});
  EXPECT_EQ(static_cast<TemporaryImage&>(*temporary).readCount(), 0u);
  cb->commit();
  cb->waitUntilCompleted();
  ref::RefImage expected(1, 4, 3, 12);
  ref::concatenationKernel({a, b}, expected);
  EXPECT_TRUE(close(test::download(*dst), expected, 0, 0));
}

TEST(NNConcatenation, PyTorchParity) {
  int checked = 0;
  for (const auto& tc : test::readTorchCases("reduce.txt")) {
    if (int(tc.scalars.at("op")) != 33) continue;
    ImageBatch inputs;
    for (int j = 0; j < int(tc.scalars.at("count")); ++j) {
      const std::string key = "input" + std::to_string(j);
      const auto& s = tc.shapes.at(key);
      ref::RefImage v(s[0], s[1], s[2], s[3]);
      v.data = tc.arrays.at(key);
      inputs.push_back(test::makeImage(v));
    }
    const auto& os = tc.shapes.at("output");
    ref::RefImage expected(os[0], os[1], os[2], os[3]);
    expected.data = tc.arrays.at("output");
    auto k = NNConcatenation::make(device());
    k->setDestinationImageAllocator(Image::defaultAllocator());
    auto cb = queue()->commandBuffer();
    ImagePtr dst = k->encode(cb, inputs);
    cb->commit();
    cb->waitUntilCompleted();
    EXPECT_TRUE(close(test::download(*dst), expected, 0, 0)) << "case " << tc.name;
    ++checked;
  }
  EXPECT_GT(checked, 0);
}

TEST(NNConcatenation, RejectsBadInputAndWritesNothing) {
  auto a = test::makeImage(randomFloat32(2, 3, 4, 5));
  auto b = test::makeImage(randomFloat32(2, 3, 4, 2));
  auto wide = test::makeImage(randomFloat32(2, 3, 5, 2));
  auto single = test::makeImage(randomFloat32(1, 3, 4, 2));
  auto dst = makeDestination(F::Float32, {2, 3, 4, 12});
  auto poisoned = test::poison(*dst);
  auto k = NNConcatenation::make(device());
  auto reject = [&](const ImageBatch& inputs, const ImagePtr& d, const char* property) {
    expectRejected([&](CommandBufferPtr cb) { k->encode(cb, inputs, d); }, "NNConcatenation", property, *dst,
                   poisoned);
  };
  reject({}, dst, "inputs is empty");
  reject({a, wide}, dst, "widths, heights and image counts");
  reject({a, single}, dst, "widths, heights and image counts");
  reject({a, nullptr}, dst, "input 1 = null");
  reject({a, b, b}, dst, "featureChannels = 12 < 16");
  reject({a, b}, makeDestination(F::Float32, {1, 3, 4, 12}), "destination is");
  reject({a, b}, nullptr, "destination = null");
  auto view = dst->subImageWithFeatureChannelRange({8, 4});  // shares storage with the destination
  reject({a, view}, dst, "aliases");
  auto cb = queue()->commandBuffer();
  auto t = TemporaryImage::make(cb, ImageDescriptor::make(F::Float32, 4, 3, 2, 2));
  EXPECT_THROW(k->encode(cb, {a, t, t}, makeDestination(F::Float32, {2, 3, 4, 16})),
               InvalidArgument);  // readCount 1
  EXPECT_EQ(t->readCount(), 1u);  // nothing consumed by the rejected call
}

/// Spec 00 §7: producers of several kinds write disjoint channel ranges of one destination; the
/// channels nobody writes keep their values.
TEST(Concatenation, ProducersWriteDisjointChannelRangesOfOneDestination) {
  for (bool plain : {false, true}) {
    ForcePlain force(plain);
    const auto offsets = NNConcatenation::featureChannelOffsets({5, 3, 7, 2});  // 0, 8, 12, 20 | 24
    auto x = randomFloat32(2, 4, 6, 5), y = randomFloat32(2, 4, 6, 9), w = randomFloat32(2, 2, 4, 7),
         z = randomFloat32(2, 8, 3, 2);
    auto dst = makeDestination(F::Float32, {2, 4, 6, int64_t(offsets.back()) + 2});  // 2 channels to spare
    ref::RefImage expected = test::poison(*dst);
    auto cb = queue()->commandBuffer();
    // [0, 5): a neuron over x.
    auto relu = CNNNeuronReLU::make(device(), 0.0f);
    relu->setDestinationFeatureChannelOffset(offsets[0]);
    relu->encode(cb, test::makeImage(x), dst);
    // [8, 11): a slice of y's channels 4..6.
    auto slice = NNSlice::make(device());
    slice->setSourceFeatureChannelOffset(4);
    slice->setSourceFeatureChannelMaxCount(3);
    slice->setDestinationFeatureChannelOffset(offsets[1]);
    slice->encode(cb, test::makeImage(y), dst);
    // [12, 19): w padded by one pixel on every side (2 × 4 → 4 × 6), Clamp.
    auto pad = NNPad::make(device());
    pad->setEdgeMode(ImageEdgeMode::Clamp);
    pad->setOffset({-1, -1, 0});
    pad->setDestinationFeatureChannelOffset(offsets[2]);
    pad->encode(cb, test::makeImage(w), dst);
    // [20, 22): z (8 × 3 × 2) reshaped to 4 × 6 × 2, through a view of those two channels (a reshape
    // writes every channel after its destination offset).
    auto reshape = NNReshape::make(device());
    reshape->encode(cb, test::makeImage(z), dst->subImageWithFeatureChannelRange({offsets[3], 2}));
    cb->commit();
    cb->waitUntilCompleted();
    ref::UnaryPlacement p;
    p.destinationFeatureChannelOffset = offsets[0];
    ref::neuronKernel(NNNeuronDescriptor::make(CNNNeuronType::ReLU, 0.0f), p, x, expected);
    p = ref::UnaryPlacement();
    p.sourceFeatureChannelOffset = 4;
    p.sourceFeatureChannelMaxCount = 3;
    p.destinationFeatureChannelOffset = offsets[1];
    ref::sliceKernel(p, y, expected);
    p = ref::UnaryPlacement();
    p.offset = {-1, -1, 0};
    p.edgeMode = ImageEdgeMode::Clamp;
    p.destinationFeatureChannelOffset = offsets[2];
    ref::padKernel({}, p, w, expected);
    ref::RefImage reshaped(2, 4, 6, 2);
    ref::reshapeKernel(0, kAll, 0, z, reshaped);
    for (int64_t i = 0; i < 2 * 4 * 6; ++i)
      for (int64_t c = 0; c < 2; ++c)
        expected.data[size_t(i * expected.c + 20 + c)] = reshaped.data[size_t(i * 2 + c)];
    auto actual = test::download(*dst);
    EXPECT_TRUE(close(actual, expected, 0, 0)) << (plain ? "plain" : "fast");
    // The channels nobody wrote still hold the poison.
    for (int64_t c : {5, 6, 7, 11, 19, 22, 23, 24, 25})
      EXPECT_TRUE(std::isnan(actual.at(1, 3, 5, c))) << "channel " << c;
  }
}

/// Spec 00 §7 / 06 §8 QUIRK: a 23-channel producer in a fresh (zero-filled) destination leaves
/// channel 23 at 0; the next producer starts at 24.
TEST(Concatenation, FreshDestinationKeepsPaddingChannelsZero) {
  const auto offsets = NNConcatenation::featureChannelOffsets({23, 6});  // 0, 24 | 32
  auto a = randomFloat32(1, 3, 4, 23), b = randomFloat32(1, 3, 4, 6);
  auto dst = makeDestination(F::Float32, {1, 3, 4, int64_t(offsets.back())});  // zero-filled
  auto cb = queue()->commandBuffer();
  auto neuron = CNNNeuronLinear::make(device(), 2.0f, 0.5f);
  neuron->encode(cb, test::makeImage(a), dst);
  auto slice = NNSlice::make(device());
  slice->setDestinationFeatureChannelOffset(offsets[1]);
  slice->encode(cb, test::makeImage(b), dst);
  cb->commit();
  cb->waitUntilCompleted();
  auto actual = test::download(*dst);
  for (int64_t y = 0; y < 3; ++y)
    for (int64_t x = 0; x < 4; ++x) {
      for (int64_t c = 0; c < 23; ++c)
        EXPECT_NEAR(actual.at(0, y, x, c), 2.0 * double(float(a.at(0, y, x, c))) + 0.5, 1e-6);
      EXPECT_EQ(actual.at(0, y, x, 23), 0.0);
      for (int64_t c = 0; c < 6; ++c) EXPECT_EQ(actual.at(0, y, x, 24 + c), double(float(b.at(0, y, x, c))));
      EXPECT_EQ(actual.at(0, y, x, 30), 0.0);
      EXPECT_EQ(actual.at(0, y, x, 31), 0.0);
    }
}

}  // namespace
}  // namespace mpsnn
