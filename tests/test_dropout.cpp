// CNNDropout (spec 06 §3, spec 10 §10.12.1) on the device selected by MPSNN_DEVICE. The reference draws
// the mask with its own Philox-4x32-10, so every comparison below is bit for bit: it checks the CPU
// and the CUDA generators against the same definition. Every numeric test runs the fast
// implementations and, with MPSNN_FORCE_PLAIN=1, the plain ones.
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <type_traits>

#include "harness.h"
#include "kernels/dropout_impl.h"

namespace mpsnn {
namespace {

using test::close;
using test::device;
using test::queue;
constexpr auto F32 = ImageFeatureChannelFormat::Float32;
constexpr auto F16 = ImageFeatureChannelFormat::Float16;

using test::ForcePlain;

ref::DropoutSpec specOf(const CNNDropout& k, int64_t batchBase = 0) {
  return {k.keepProbability(), k.seed(), k.maskStrideInPixels(), k.trainingStep(), batchBase};
}

struct Outcome {
  ref::RefImage actual, expected;
  ref::RefImage source;  // as the image holds it
};

/// Encodes manually into a poisoned destination of `dstShape` (n, h, w, c); the reference uses the
/// kernel's training step of this encode.
Outcome runDropout(CNNDropout& kernel, ref::RefImage src, std::array<int64_t, 4> dstShape,
                   const ref::UnaryPlacement& p = {}, ImageFeatureChannelFormat format = F32) {
  test::roundTo(src, format);
  auto srcImage = test::makeImage(src, format);
  auto dstImage =
      Image::make(device(), ImageDescriptor::make(format, uint64_t(dstShape[2]), uint64_t(dstShape[1]),
                                                  uint64_t(dstShape[3]), uint64_t(dstShape[0])));
  ref::RefImage poisoned = test::poison(*dstImage);
  kernel.setOffset(p.offset);
  kernel.setClipRect(p.clipRect);
  kernel.setSourceFeatureChannelOffset(p.sourceFeatureChannelOffset);
  kernel.setSourceFeatureChannelMaxCount(p.sourceFeatureChannelMaxCount);
  kernel.setDestinationFeatureChannelOffset(p.destinationFeatureChannelOffset);
  kernel.setEdgeMode(p.edgeMode);
  const ref::DropoutSpec spec = specOf(kernel);
  auto cb = queue()->commandBuffer();
  kernel.encode(cb, srcImage, dstImage);
  cb->commit();
  cb->waitUntilCompleted();
  Outcome o{test::download(*dstImage), poisoned, src};
  ref::dropoutKernel(spec, p, src, o.expected);
  test::roundTo(o.expected, format);
  return o;
}

/// Number of kept (non-zero) values; the sources never hold zeros.
int64_t keptCount(const ref::RefImage& r) {
  int64_t kept = 0;
  for (double v : r.data) kept += v != 0.0;
  return kept;
}

const IntSize kAllStrides[] = {{1, 1, 1}, {0, 1, 1}, {1, 0, 1}, {1, 1, 0},
                               {0, 0, 1}, {0, 1, 0}, {1, 0, 0}, {0, 0, 0}};

// ---------------------------------------------------------------------------------------------------

TEST(CNNDropout, ConstructorStoresItsParameters) {
  static_assert(!std::is_constructible_v<CNNDropout, DevicePtr>, "(device) is unavailable (spec 06 §3)");
  auto k = CNNDropout::make(device(), 0.75f, 0x123456789abcdefULL, IntSize{1, 0, 1});
  EXPECT_STREQ(k->className(), "CNNDropout");
  EXPECT_EQ(k->keepProbability(), 0.75f);
  EXPECT_EQ(k->seed(), 0x123456789abcdefULL);
  EXPECT_EQ(k->maskStrideInPixels(), (IntSize{1, 0, 1}));
  EXPECT_EQ(k->trainingStep(), 0u);
  EXPECT_EQ(k->offset(), (Offset{0, 0, 0}));
  EXPECT_TRUE(isRectNoClip(k->clipRect()));
  EXPECT_EQ(k->edgeMode(), ImageEdgeMode::Zero);
  EXPECT_EQ(k->kernelWidth(), 1u);
  EXPECT_EQ(k->strideInPixelsX(), 1u);
  CNNDropout one(device(), 1.0f, 0, {0, 0, 0});  // 1 is accepted (CHOICE), strides of 0 too
  EXPECT_EQ(one.keepProbability(), 1.0f);
}

TEST(CNNDropout, RejectsBadParametersNamingClassPropertyAndValue) {
  auto expectRejected = [](float keep, IntSize stride, std::vector<std::string> words) {
    try {
      CNNDropout k(device(), keep, 1, stride);
      ADD_FAILURE() << "no InvalidArgument for " << words[0];
    } catch (const InvalidArgument& e) {
      EXPECT_NE(std::string(e.what()).find("CNNDropout"), std::string::npos) << e.what();
      for (const auto& w : words) EXPECT_NE(std::string(e.what()).find(w), std::string::npos) << e.what();
    }
  };
  expectRejected(0.0f, {1, 1, 1}, {"keepProbability = 0"});
  expectRejected(-0.5f, {1, 1, 1}, {"keepProbability = -0.5"});
  expectRejected(1.5f, {1, 1, 1}, {"keepProbability = 1.5"});
  expectRejected(std::nanf(""), {1, 1, 1}, {"keepProbability = nan"});
  expectRejected(INFINITY, {1, 1, 1}, {"keepProbability = inf"});
  expectRejected(0.5f, {2, 1, 1}, {"maskStrideInPixels.width = 2"});
  expectRejected(0.5f, {1, 3, 1}, {"maskStrideInPixels.height = 3"});
  expectRejected(0.5f, {1, 1, 4}, {"maskStrideInPixels.depth = 4"});
  EXPECT_THROW(CNNDropout(nullptr, 0.5f, 1, {1, 1, 1}), InvalidArgument);
}

TEST(CNNDropout, PhiloxMatchesRandom123KnownAnswers) {
  // Random123 tests/kat_vectors, "philox4x32 10" lines: counter, key → output.
  struct Kat {
    std::array<uint32_t, 4> counter;
    std::array<uint32_t, 2> key;
    std::array<uint32_t, 4> output;
  };
  const Kat kats[] = {
      {{0, 0, 0, 0}, {0, 0}, {0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8}},
      {{0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff},
       {0xffffffff, 0xffffffff},
       {0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd}},
      {{0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344},
       {0xa4093822, 0x299f31d0},
       {0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1}},
  };
  for (const Kat& k : kats) {
    EXPECT_EQ(ref::philox4x32_10(k.counter, k.key), k.output);
    auto words =
        detail::philox4x32_10(k.counter[0], k.counter[1], k.counter[2], k.counter[3], k.key[0], k.key[1]);
    for (int i = 0; i < 4; ++i) EXPECT_EQ(words.w[i], k.output[size_t(i)]) << "word " << i;
  }
}

TEST(CNNDropout, MatchesReferenceBitForBitForEveryMaskStride) {
  for (bool plain : {false, true}) {
    ForcePlain force(plain);
    for (const IntSize& stride : kAllStrides) {
      for (int64_t channels : {1, 3, 4, 17}) {
        CNNDropout kernel(device(), 0.6f, 0xfeedbeefcafe1234ULL, stride);
        auto src = test::randomRefImage(3, 5, 7, channels, -2, 2);
        auto o = runDropout(kernel, src, {3, 5, 7, channels});
        EXPECT_TRUE(close(o.actual, o.expected, 0, 0))
            << "stride " << stride.width << stride.height << stride.depth << " channels=" << channels
            << " plain=" << plain;
      }
    }
  }
}

TEST(CNNDropout, KeptFractionIsWithinABinomialBound) {
  const int64_t n = 2, h = 64, w = 64, c = 16;  // 131072 independent mask elements
  for (bool plain : {false, true}) {
    ForcePlain force(plain);
    for (float keep : {0.1f, 0.5f, 0.9f}) {
      CNNDropout kernel(device(), keep, 2024, {1, 1, 1});
      auto o = runDropout(kernel, test::randomRefImage(n, h, w, c), {n, h, w, c});
      const double total = double(n * h * w * c), mean = total * keep,
                   sd = std::sqrt(total * keep * (1 - keep));
      EXPECT_NEAR(double(keptCount(o.actual)), mean, 6 * sd) << "keep=" << keep << " plain=" << plain;
      // And independent of position: each channel on its own, over 8192 elements.
      for (int64_t ch = 0; ch < c; ++ch) {
        int64_t kept = 0;
        for (int64_t i = ch; i < int64_t(o.actual.data.size()); i += c)
          kept += o.actual.data[size_t(i)] != 0.0;
        const double m = total / c * keep, s = std::sqrt(total / c * keep * (1 - keep));
        EXPECT_NEAR(double(kept), m, 6 * s) << "channel " << ch << " keep=" << keep;
      }
    }
  }
}

TEST(CNNDropout, KeptValuesAreExactlySourceOverKeepProbabilityAndDroppedAreZero) {
  for (bool plain : {false, true}) {
    ForcePlain force(plain);
    for (float keep : {0.3f, 0.7f, 0.9f}) {
      CNNDropout kernel(device(), keep, 99, {1, 1, 1});
      auto o = runDropout(kernel, test::randomRefImage(2, 9, 11, 5, -3, 3), {2, 9, 11, 5});
      int64_t kept = 0, dropped = 0;
      for (size_t i = 0; i < o.actual.data.size(); ++i) {
        const float x = float(o.source.data[i]);
        if (o.actual.data[i] == 0.0) {
          ++dropped;
          EXPECT_EQ(std::signbit(o.actual.data[i]), std::signbit(x)) << "0 · x keeps the sign of x";
        } else {
          ++kept;
          EXPECT_EQ(float(o.actual.data[i]), x / keep) << "element " << i;
        }
      }
      EXPECT_GT(kept, 0);
      EXPECT_GT(dropped, 0);
    }
  }
}

TEST(CNNDropout, KeepProbabilityOneIsTheIdentity) {
  for (bool plain : {false, true}) {
    ForcePlain force(plain);
    CNNDropout kernel(device(), 1.0f, 7, {1, 1, 1});
    auto o = runDropout(kernel, test::randomRefImage(2, 4, 6, 3), {2, 4, 6, 3});
    EXPECT_TRUE(close(o.actual, o.source, 0, 0));
  }
}

TEST(CNNDropout, SameSeedAndStepReproduceDifferentOnesDoNot) {
  auto src = test::randomRefImage(1, 16, 16, 8);
  for (bool plain : {false, true}) {
    ForcePlain force(plain);
    CNNDropout first(device(), 0.5f, 42, {1, 1, 1}), second(device(), 0.5f, 42, {1, 1, 1});
    CNNDropout otherSeed(device(), 0.5f, 43, {1, 1, 1}),
        highSeed(device(), 0.5f, 42 | (1ULL << 32), {1, 1, 1});
    auto a = runDropout(first, src, {1, 16, 16, 8});
    auto b = runDropout(second, src, {1, 16, 16, 8});
    auto c = runDropout(otherSeed, src, {1, 16, 16, 8});
    auto d = runDropout(highSeed, src, {1, 16, 16, 8});  // the seed's high word is part of the key
    EXPECT_TRUE(close(a.actual, b.actual, 0, 0)) << "same seed, same step";
    EXPECT_FALSE(close(a.actual, c.actual, 0, 0)) << "different seed";
    EXPECT_FALSE(close(a.actual, d.actual, 0, 0)) << "different high seed word";
    // The step advances once per encode: the next call draws a new mask; rewinding replays it.
    EXPECT_EQ(first.trainingStep(), 1u);
    auto next = runDropout(first, src, {1, 16, 16, 8});
    EXPECT_EQ(first.trainingStep(), 2u);
    EXPECT_TRUE(close(next.actual, next.expected, 0, 0));
    EXPECT_FALSE(close(a.actual, next.actual, 0, 0)) << "second encode reused the mask";
    first.setTrainingStep(0);
    auto replay = runDropout(first, src, {1, 16, 16, 8});
    EXPECT_TRUE(close(a.actual, replay.actual, 0, 0)) << "step 0 replayed";
    second.setTrainingStep(uint64_t(1) << 32);  // the step's high word is part of the counter
    auto high = runDropout(second, src, {1, 16, 16, 8});
    EXPECT_TRUE(close(high.actual, high.expected, 0, 0));
    EXPECT_FALSE(close(a.actual, high.actual, 0, 0));
  }
}

TEST(CNNDropout, MaskStrideZeroBroadcastsOneMaskValueAlongTheAxis) {
  const int64_t h = 6, w = 7, c = 5;
  for (bool plain : {false, true}) {
    ForcePlain force(plain);
    for (const IntSize& stride : kAllStrides) {
      CNNDropout kernel(device(), 0.5f, 5, stride);
      auto o = runDropout(kernel, test::randomRefImage(2, h, w, c), {2, h, w, c});
      // Positions that differ only along broadcast axes share their mask value.
      for (int64_t n = 0; n < 2; ++n)
        for (int64_t y = 0; y < h; ++y)
          for (int64_t x = 0; x < w; ++x)
            for (int64_t ch = 0; ch < c; ++ch) {
              const bool kept = o.actual.at(n, y, x, ch) != 0.0;
              const bool representative =
                  o.actual.at(n, stride.height ? y : 0, stride.width ? x : 0, stride.depth ? ch : 0) != 0.0;
              ASSERT_EQ(kept, representative) << "n=" << n << " y=" << y << " x=" << x << " c=" << ch
                                              << " stride " << stride.width << stride.height << stride.depth;
            }
      EXPECT_TRUE(close(o.actual, o.expected, 0, 0));
    }
  }
  // With every stride 0 one value per image decides: over 64 images both outcomes must occur.
  CNNDropout all(device(), 0.5f, 11, {0, 0, 0});
  auto o = runDropout(all, test::randomRefImage(64, 2, 2, 2), {64, 2, 2, 2});
  int64_t keptImages = 0;
  for (int64_t n = 0; n < 64; ++n) keptImages += o.actual.at(n, 0, 0, 0) != 0.0;
  EXPECT_GT(keptImages, 0);
  EXPECT_LT(keptImages, 64);
}

TEST(CNNDropout, OffsetsClipRectChannelsAndEdgeModes) {
  auto src = test::randomRefImage(4, 6, 5, 7, -2, 2);
  for (bool plain : {false, true}) {
    ForcePlain force(plain);
    for (const IntSize& stride : {IntSize{1, 1, 1}, IntSize{0, 1, 0}}) {
      for (auto edge : {ImageEdgeMode::Zero, ImageEdgeMode::Clamp}) {
        std::vector<ref::UnaryPlacement> placements;
        ref::UnaryPlacement p;
        p.edgeMode = edge;
        p.offset = {-2, 1, 1};  // partly outside the source; images 1..
        placements.push_back(p);
        p.offset = {3, -3, 0};
        p.clipRect = {{1, 2, 1}, {3, 3, 2}};  // a window of the destination, images 1..2
        placements.push_back(p);
        p = ref::UnaryPlacement();
        p.edgeMode = edge;
        p.sourceFeatureChannelOffset = 2;  // channels 2..6 → destination channels 3..7 (RELAXED offsets)
        p.destinationFeatureChannelOffset = 3;
        placements.push_back(p);
        p.sourceFeatureChannelMaxCount = 3;
        p.offset = {1, 1, 2};
        placements.push_back(p);
        for (size_t i = 0; i < placements.size(); ++i) {
          CNNDropout kernel(device(), 0.5f, 77, stride);
          auto o = runDropout(kernel, src, {4, 6, 5, 8}, placements[i]);
          EXPECT_TRUE(close(o.actual, o.expected, 0, 0))
              << "placement " << i << " edge=" << toString(edge) << " plain=" << plain << " stride "
              << stride.width << stride.height << stride.depth;
        }
      }
    }
  }
}

TEST(CNNDropout, Float16AndUnorm8Images) {
  for (bool plain : {false, true}) {
    ForcePlain force(plain);
    CNNDropout kernel(device(), 0.8f, 3, {1, 1, 1});
    auto o = runDropout(kernel, test::randomRefImage(2, 5, 7, 5, -2, 2), {2, 5, 7, 5}, {}, F16);
    // The mask must agree exactly; a kept value may differ by the float32 → float16 double rounding.
    EXPECT_TRUE(close(o.actual, o.expected, test::rtolFor(F16), 0));
    for (size_t i = 0; i < o.actual.data.size(); ++i)
      ASSERT_EQ(o.actual.data[i] == 0.0, o.expected.data[i] == 0.0) << "mask differs at " << i;
  }
  ForcePlain force(true);
  CNNDropout kernel(device(), 0.9f, 3, {1, 1, 0});
  auto o = runDropout(kernel, test::randomRefImage(2, 3, 5, 3, 0.0, 0.85), {2, 3, 5, 3}, {},
                      ImageFeatureChannelFormat::Unorm8);
  EXPECT_TRUE(close(o.actual, o.expected, 0, 1.0 / 255 + 1e-6));
}

TEST(CNNDropout, BatchEncodeUsesBatchPositionsLikeOneMultiImageEncode) {
  std::vector<ref::RefImage> values;
  ref::RefImage stacked(3, 4, 5, 6);
  for (int i = 0; i < 3; ++i) {
    values.push_back(test::randomRefImage(1, 4, 5, 6));
    test::roundTo(values.back(), F32);
    std::copy(values.back().data.begin(), values.back().data.end(), stacked.data.begin() + i * 4 * 5 * 6);
  }
  for (bool plain : {false, true}) {
    ForcePlain force(plain);
    auto kernel = CNNDropout::make(device(), 0.5f, 8, {1, 1, 1});
    ImageBatch sources, destinations;
    for (int i = 0; i < 3; ++i) {
      sources.push_back(test::makeImage(values[size_t(i)]));
      destinations.push_back(Image::make(device(), ImageDescriptor::make(F32, 5, 4, 6)));
      test::poison(*destinations.back());
    }
    auto cb = queue()->commandBuffer();
    kernel->encodeBatch(cb, sources, destinations);  // step 0, batch positions 0, 1, 2
    EXPECT_EQ(kernel->trainingStep(), 1u);
    kernel->setDestinationImageAllocator(Image::defaultAllocator());
    ImageBatch autos = kernel->encodeBatch(cb, sources);  // step 1
    EXPECT_EQ(kernel->trainingStep(), 2u);
    cb->commit();
    cb->waitUntilCompleted();
    ASSERT_EQ(autos.size(), 3u);
    // The same three images as one multi-image encode at step 0.
    kernel->setTrainingStep(0);
    auto multi = runDropout(*kernel, stacked, {3, 4, 5, 6});
    for (int i = 0; i < 3; ++i) {
      ref::RefImage expected(1, 4, 5, 6), expectedAuto(1, 4, 5, 6);
      ref::dropoutKernel({0.5f, 8, {1, 1, 1}, 0, i}, {}, values[size_t(i)], expected);
      ref::dropoutKernel({0.5f, 8, {1, 1, 1}, 1, i}, {}, values[size_t(i)], expectedAuto);
      auto got = test::download(*destinations[size_t(i)]);
      EXPECT_TRUE(close(got, expected, 0, 0)) << "batch item " << i << " plain=" << plain;
      EXPECT_TRUE(close(test::download(*autos[size_t(i)]), expectedAuto, 0, 0)) << "auto item " << i;
      ref::RefImage slice(1, 4, 5, 6);
      std::copy_n(multi.actual.data.begin() + i * 4 * 5 * 6, 4 * 5 * 6, slice.data.begin());
      EXPECT_TRUE(close(got, slice, 0, 0)) << "batch item " << i << " vs multi-image encode";
    }
  }
}

TEST(CNNDropout, ViewsOfLargerImagesAsSourceAndDestination) {
  // Single images of a batch (their data starts at an unaligned element) and channel ranges (pixels
  // not packed): the fast paths must step aside or cope, the results stay bit-exact.
  auto values = test::randomRefImage(3, 5, 7, 3);
  test::roundTo(values, F32);
  for (bool plain : {false, true}) {
    ForcePlain force(plain);
    auto big = test::makeImage(values);
    auto bigDst = Image::make(device(), ImageDescriptor::make(F32, 7, 5, 3, 3));
    ref::RefImage expected = test::poison(*bigDst);
    CNNDropout kernel(device(), 0.5f, 21, {1, 1, 1});
    auto cb = queue()->commandBuffer();
    kernel.encode(cb, big->batchRepresentation()[1], bigDst->batchRepresentation()[2]);
    cb->commit();
    cb->waitUntilCompleted();
    ref::UnaryPlacement p;
    p.offset = {0, 0, 1};
    p.clipRect = {{0, 0, 2}, {7, 5, 1}};
    ref::dropoutKernel({0.5f, 21, {1, 1, 1}, 0, 0}, p, values, expected);
    EXPECT_TRUE(close(test::download(*bigDst), expected, 0, 0)) << "batch views, plain=" << plain;

    auto channelsDst = Image::make(device(), ImageDescriptor::make(F32, 7, 5, 4, 3));
    expected = test::poison(*channelsDst);
    cb = queue()->commandBuffer();
    kernel.encode(cb, big->subImageWithFeatureChannelRange({1, 2}),
                  channelsDst->subImageWithFeatureChannelRange({2, 2}));
    cb->commit();
    cb->waitUntilCompleted();
    p = ref::UnaryPlacement();
    p.sourceFeatureChannelOffset = 1;
    p.destinationFeatureChannelOffset = 2;
    ref::dropoutKernel({0.5f, 21, {1, 1, 1}, 1, 0}, p, values, expected);
    EXPECT_TRUE(close(test::download(*channelsDst), expected, 0, 0)) << "channel views, plain=" << plain;
  }
}

TEST(CNNDropout, AutoModeKeepsTheSourceSizeAndChainsThroughTemporaries) {
  auto dropout = CNNDropout::make(device(), 0.5f, 1, {1, 1, 1});
  auto relu = CNNNeuronReLU::make(device(), 0.0f);
  relu->setDestinationImageAllocator(Image::defaultAllocator());
  auto values = test::randomRefImage(1, 5, 6, 3);
  test::roundTo(values, F32);
  auto cb = queue()->commandBuffer();
  ImagePtr mid = dropout->encode(cb, test::makeImage(values));
  ASSERT_TRUE(mid->isTemporary());
  EXPECT_EQ(mid->descriptor(), ImageDescriptor::make(F32, 6, 5, 3));
  ImagePtr out = relu->encode(cb, mid);
  EXPECT_EQ(static_cast<TemporaryImage&>(*mid).readCount(), 0u);
  cb->commit();
  cb->waitUntilCompleted();
  ref::RefImage expected(1, 5, 6, 3);
  ref::dropoutKernel({0.5f, 1, {1, 1, 1}, 0, 0}, {}, values, expected);
  for (auto& v : expected.data) v = std::max(0.0, v);
  EXPECT_TRUE(close(test::download(*out), expected, 0, 0));
}

TEST(CNNDropout, RejectsBadInputAndLeavesTheDestinationUntouched) {
  auto src = test::makeImage(test::randomRefImage(2, 3, 3, 4));
  auto dst = Image::make(device(), ImageDescriptor::make(F32, 3, 3, 4, 2));
  ref::RefImage poisoned = test::poison(*dst);
  auto expectRejected = [&](CNNDropout& kernel, std::vector<std::string> words) {
    auto cb = queue()->commandBuffer();
    const uint64_t step = kernel.trainingStep();
    try {
      kernel.encode(cb, src, dst);
      ADD_FAILURE() << "no InvalidArgument for " << words[0];
    } catch (const InvalidArgument& e) {
      EXPECT_NE(std::string(e.what()).find("CNNDropout"), std::string::npos) << e.what();
      for (const auto& w : words) EXPECT_NE(std::string(e.what()).find(w), std::string::npos) << e.what();
    }
    cb->commit();
    cb->waitUntilCompleted();
    EXPECT_EQ(kernel.trainingStep(), step) << "a rejected encode advanced the step";
    EXPECT_TRUE(close(test::download(*dst), poisoned, 0, 0))
        << "destination written after rejecting " << words[0];
  };
  for (auto edge : {ImageEdgeMode::Mirror, ImageEdgeMode::MirrorWithEdge, ImageEdgeMode::Constant}) {
    CNNDropout k(device(), 0.5f, 1, {1, 1, 1});
    k.setEdgeMode(edge);
    expectRejected(k, {"edgeMode", toString(edge)});
  }
  {
    CNNDropout k(device(), 0.5f, 1, {1, 1, 1});
    k.setSourceFeatureChannelOffset(4);
    expectRejected(k, {"sourceFeatureChannelOffset = 4"});
  }
  {
    CNNDropout k(device(), 0.5f, 1, {1, 1, 1});
    k.setDestinationFeatureChannelOffset(1);
    expectRejected(k, {"destinationFeatureChannelOffset"});
  }
  {
    CNNDropout k(device(), 0.5f, 1, {1, 1, 1});
    k.setOffset({0, 0, -1});
    expectRejected(k, {"offset.z = -1"});
  }
  {
    CNNDropout k(device(), 0.5f, 1, {1, 1, 1});
    auto cb = queue()->commandBuffer();
    EXPECT_THROW(k.encode(cb, src, src), InvalidArgument);  // aliasing
    EXPECT_THROW(k.encode(cb, nullptr, dst), InvalidArgument);
    EXPECT_THROW(k.encode(nullptr, src, dst), InvalidArgument);
    EXPECT_THROW(k.encodeBatch(cb, {src}, {dst, dst}), InvalidArgument);
    cb->commit();
    cb->waitUntilCompleted();
    EXPECT_EQ(k.trainingStep(), 0u);
    EXPECT_TRUE(close(test::download(*dst), poisoned, 0, 0));
  }
}

}  // namespace
}  // namespace mpsnn
