// CNNAdd, CNNSubtract, CNNMultiply, CNNDivide, NNCompare and their base CNNArithmetic (spec 06 §1–§2),
// against the float64 reference and PyTorch, on the device selected by MPSNN_DEVICE. Every numeric
// test runs the fast implementations and, with MPSNN_FORCE_PLAIN=1, the plain ones.
#include <cfloat>
#include <cstdlib>
#include <type_traits>

#include "harness.h"

namespace mpsnn {
namespace {

using ref::ArithmeticKind;
using test::close;
using test::device;
using test::queue;
constexpr auto F32 = ImageFeatureChannelFormat::Float32;
constexpr auto F16 = ImageFeatureChannelFormat::Float16;

using test::ForcePlain;

const char* kindName(ArithmeticKind k) {
  switch (k) {
    case ArithmeticKind::Add:
      return "Add";
    case ArithmeticKind::Subtract:
      return "Subtract";
    case ArithmeticKind::Multiply:
      return "Multiply";
    case ArithmeticKind::Divide:
      return "Divide";
    default:
      return "Compare";
  }
}

std::shared_ptr<CNNArithmetic> makeKernel(const ref::ArithmeticSpec& s) {
  std::shared_ptr<CNNArithmetic> k;
  switch (s.kind) {
    case ArithmeticKind::Add:
      k = CNNAdd::make(device());
      break;
    case ArithmeticKind::Subtract:
      k = CNNSubtract::make(device());
      break;
    case ArithmeticKind::Multiply:
      k = CNNMultiply::make(device());
      break;
    case ArithmeticKind::Divide:
      k = CNNDivide::make(device());
      break;
    case ArithmeticKind::Compare: {
      auto c = NNCompare::make(device());
      c->setComparisonType(s.comparison);
      c->setThreshold(float(s.threshold));
      k = c;
      break;
    }
  }
  k->setPrimaryScale(float(s.primaryScale));
  k->setSecondaryScale(float(s.secondaryScale));
  k->setBias(float(s.bias));
  k->setMinimumValue(float(s.minimumValue));
  k->setMaximumValue(float(s.maximumValue));
  k->setPrimaryStrideInPixelsX(s.primaryStrideX);
  k->setPrimaryStrideInPixelsY(s.primaryStrideY);
  k->setPrimaryStrideInFeatureChannels(s.primaryStrideC);
  k->setSecondaryStrideInPixelsX(s.secondaryStrideX);
  k->setSecondaryStrideInPixelsY(s.secondaryStrideY);
  k->setSecondaryStrideInFeatureChannels(s.secondaryStrideC);
  return k;
}

void place(CNNArithmetic& k, const ref::BinaryPlacement& p) {
  k.setPrimaryOffset(p.primaryOffset);
  k.setSecondaryOffset(p.secondaryOffset);
  k.setClipRect(p.clipRect);
  k.setPrimarySourceFeatureChannelOffset(p.primarySourceFeatureChannelOffset);
  k.setSecondarySourceFeatureChannelOffset(p.secondarySourceFeatureChannelOffset);
  k.setPrimarySourceFeatureChannelMaxCount(p.primarySourceFeatureChannelMaxCount);
  k.setSecondarySourceFeatureChannelMaxCount(p.secondarySourceFeatureChannelMaxCount);
  k.setDestinationFeatureChannelOffset(p.destinationFeatureChannelOffset);
  k.setPrimaryEdgeMode(p.primaryEdgeMode);
  k.setSecondaryEdgeMode(p.secondaryEdgeMode);
}

struct Formats {
  ImageFeatureChannelFormat primary = F32, secondary = F32, dst = F32;
};
Formats all(ImageFeatureChannelFormat f) { return {f, f, f}; }

struct Outcome {
  ref::RefImage actual, expected;
};

/// Encodes manually into a poisoned destination of `dstShape` (n, h, w, c) and returns what the device
/// wrote and what the reference says (pixels outside the clip keep the poison).
Outcome runArithmetic(const ref::ArithmeticSpec& s, const ref::BinaryPlacement& p, ref::RefImage a,
                      ref::RefImage b, std::array<int64_t, 4> dstShape, Formats f = {}) {
  test::roundTo(a, f.primary);  // the reference sees what the images hold
  test::roundTo(b, f.secondary);
  auto primary = test::makeImage(a, f.primary);
  auto secondary = test::makeImage(b, f.secondary);
  auto dst = Image::make(device(), ImageDescriptor::make(f.dst, uint64_t(dstShape[2]), uint64_t(dstShape[1]),
                                                         uint64_t(dstShape[3]), uint64_t(dstShape[0])));
  ref::RefImage poisoned = test::poison(*dst);
  auto kernel = makeKernel(s);
  place(*kernel, p);
  auto cb = queue()->commandBuffer();
  kernel->encode(cb, primary, secondary, dst);
  cb->commit();
  cb->waitUntilCompleted();
  Outcome o{test::download(*dst), poisoned};
  ref::arithmeticKernel(s, p, a, b, o.expected);
  test::roundTo(o.expected, f.dst);
  return o;
}

/// Non-default scales and bias, and limits that clip part of the results.
ref::ArithmeticSpec scaledSpec(ArithmeticKind kind, bool clamp) {
  ref::ArithmeticSpec s;
  s.kind = kind;
  s.primaryScale = 1.5;
  s.secondaryScale = -0.75;
  s.bias = 0.25;
  if (clamp) {
    s.minimumValue = -1.25;
    s.maximumValue = 2.0;
  }
  return s;
}

/// Operand extent along an axis: 1 where it is broadcast (stride 0), else the destination's.
ref::RefImage operandFor(int64_t n, int64_t h, int64_t w, int64_t c, uint64_t sx, uint64_t sy, uint64_t sc) {
  return test::randomRefImage(n, sy ? h : 1, sx ? w : 1, sc ? c : 1, -2, 2);
}

/// Each of the four operators on odd shapes and batches, with defaults and with scales, bias, clamp.
void checkOperator(ArithmeticKind kind) {
  for (bool plain : {false, true}) {
    ForcePlain force(plain);
    for (int64_t channels : {1, 3, 4, 5, 17}) {
      for (int variant = 0; variant < 3; ++variant) {
        ref::ArithmeticSpec s = variant == 0 ? ref::ArithmeticSpec{} : scaledSpec(kind, variant == 2);
        s.kind = kind;
        auto a = test::randomRefImage(3, 5, 7, channels, -2, 2);
        auto b = test::randomRefImage(3, 5, 7, channels, -2, 2);
        auto o = runArithmetic(s, {}, a, b, {3, 5, 7, channels});
        EXPECT_TRUE(close(o.actual, o.expected, 1e-5, 2e-6))
            << kindName(kind) << " plain=" << plain << " channels=" << channels << " variant=" << variant;
      }
    }
    // A single pixel and a long odd row.
    for (auto shape : {std::array<int64_t, 4>{1, 1, 1, 1}, std::array<int64_t, 4>{2, 1, 131, 3}}) {
      auto s = scaledSpec(kind, true);
      auto a = test::randomRefImage(shape[0], shape[1], shape[2], shape[3], -2, 2);
      auto b = test::randomRefImage(shape[0], shape[1], shape[2], shape[3], -2, 2);
      auto o = runArithmetic(s, {}, a, b, shape);
      EXPECT_TRUE(close(o.actual, o.expected, 1e-5, 2e-6)) << kindName(kind) << " plain=" << plain;
    }
  }
}

// ---------------------------------------------------------------------------------------------------

TEST(CNNArithmetic, DefaultsOfEveryProperty) {
  static_assert(std::is_abstract_v<CNNArithmetic>, "the base cannot be constructed");
  static_assert(!std::is_constructible_v<CNNAdd>, "every operator needs a device");
  std::vector<std::shared_ptr<CNNArithmetic>> kernels = {
      CNNAdd::make(device()), CNNSubtract::make(device()), CNNMultiply::make(device()),
      CNNDivide::make(device()), NNCompare::make(device())};
  const char* names[] = {"CNNAdd", "CNNSubtract", "CNNMultiply", "CNNDivide", "NNCompare"};
  for (size_t i = 0; i < kernels.size(); ++i) {
    const CNNArithmetic& k = *kernels[i];
    EXPECT_STREQ(k.className(), names[i]);
    EXPECT_EQ(k.primaryScale(), 1.0f);
    EXPECT_EQ(k.secondaryScale(), 1.0f);
    EXPECT_EQ(k.bias(), 0.0f);
    EXPECT_EQ(k.minimumValue(), -FLT_MAX);
    EXPECT_EQ(k.maximumValue(), FLT_MAX);
    EXPECT_EQ(k.primaryStrideInPixelsX(), 1u);
    EXPECT_EQ(k.primaryStrideInPixelsY(), 1u);
    EXPECT_EQ(k.secondaryStrideInPixelsX(), 1u);
    EXPECT_EQ(k.secondaryStrideInPixelsY(), 1u);
    EXPECT_EQ(k.primaryStrideInFeatureChannels(), 1u);
    EXPECT_EQ(k.secondaryStrideInFeatureChannels(), 1u);
    EXPECT_EQ(k.primaryOffset(), (Offset{0, 0, 0}));
    EXPECT_EQ(k.secondaryOffset(), (Offset{0, 0, 0}));
    EXPECT_TRUE(isRectNoClip(k.clipRect()));
    EXPECT_EQ(k.destinationFeatureChannelOffset(), 0u);
    EXPECT_EQ(k.primarySourceFeatureChannelOffset(), 0u);
    EXPECT_EQ(k.secondarySourceFeatureChannelOffset(), 0u);
    EXPECT_EQ(k.primarySourceFeatureChannelMaxCount(), UINT64_MAX);
    EXPECT_EQ(k.secondarySourceFeatureChannelMaxCount(), UINT64_MAX);
    EXPECT_EQ(k.primaryEdgeMode(), ImageEdgeMode::Zero);
    EXPECT_EQ(k.secondaryEdgeMode(), ImageEdgeMode::Zero);
    EXPECT_EQ(k.primaryKernelWidth(), 1u);
    EXPECT_EQ(k.secondaryKernelHeight(), 1u);
    EXPECT_EQ(k.primaryDilationRateX(), 1u);
    EXPECT_FALSE(k.isBackwards());
    EXPECT_EQ(uint32_t(k.padding()->paddingMethod()),
              uint32_t(NNPaddingMethod::AlignCentered | NNPaddingMethod::AddRemainderToTopLeft |
                       NNPaddingMethod::SizeSame));
    EXPECT_TRUE(k.destinationImageAllocator() != nullptr);
  }
  auto compare = NNCompare::make(device());
  EXPECT_EQ(compare->comparisonType(), NNComparisonType::Equal);
  EXPECT_EQ(compare->threshold(), 0.0f);
  // Setters round-trip.
  auto add = CNNAdd::make(device());
  add->setPrimaryScale(2.5f);
  add->setSecondaryScale(-1.0f);
  add->setBias(0.125f);
  add->setMinimumValue(-3.0f);
  add->setMaximumValue(4.0f);
  add->setPrimaryStrideInFeatureChannels(0);
  add->setSecondaryStrideInFeatureChannels(0);
  EXPECT_EQ(add->primaryScale(), 2.5f);
  EXPECT_EQ(add->secondaryScale(), -1.0f);
  EXPECT_EQ(add->bias(), 0.125f);
  EXPECT_EQ(add->minimumValue(), -3.0f);
  EXPECT_EQ(add->maximumValue(), 4.0f);
  EXPECT_EQ(add->primaryStrideInFeatureChannels(), 0u);
  EXPECT_EQ(add->secondaryStrideInFeatureChannels(), 0u);
  compare->setComparisonType(NNComparisonType::GreaterOrEqual);
  compare->setThreshold(0.5f);
  EXPECT_EQ(compare->comparisonType(), NNComparisonType::GreaterOrEqual);
  EXPECT_EQ(compare->threshold(), 0.5f);
  EXPECT_EQ(toString(NNComparisonType::LessOrEqual), "LessOrEqual");
}

TEST(CNNAdd, MatchesReferenceOnOddShapesAndBatches) { checkOperator(ArithmeticKind::Add); }
TEST(CNNSubtract, MatchesReferenceOnOddShapesAndBatches) { checkOperator(ArithmeticKind::Subtract); }
TEST(CNNMultiply, MatchesReferenceOnOddShapesAndBatches) { checkOperator(ArithmeticKind::Multiply); }
TEST(CNNDivide, MatchesReferenceOnOddShapesAndBatches) { checkOperator(ArithmeticKind::Divide); }

TEST(CNNArithmetic, EveryBroadcastCombination) {
  // All 2^6 stride patterns (x, y, channels of each operand) for every operator; a broadcast operand
  // has extent 1 on that axis. Output channels follow the primary unless its channel stride is 0.
  const int64_t n = 2, h = 5, w = 7, c = 5;
  for (bool plain : {false, true}) {
    ForcePlain force(plain);
    for (auto kind : {ArithmeticKind::Add, ArithmeticKind::Subtract, ArithmeticKind::Multiply,
                      ArithmeticKind::Divide, ArithmeticKind::Compare}) {
      for (unsigned pattern = 0; pattern < 64; ++pattern) {
        ref::ArithmeticSpec s =
            kind == ArithmeticKind::Compare ? ref::ArithmeticSpec{} : scaledSpec(kind, true);
        s.kind = kind;
        s.comparison = NNComparisonType(pattern % 6);
        s.threshold = 0.5;
        s.primaryStrideX = pattern & 1, s.primaryStrideY = (pattern >> 1) & 1,
        s.primaryStrideC = (pattern >> 2) & 1;
        s.secondaryStrideX = (pattern >> 3) & 1, s.secondaryStrideY = (pattern >> 4) & 1,
        s.secondaryStrideC = (pattern >> 5) & 1;
        auto a = operandFor(n, h, w, c, s.primaryStrideX, s.primaryStrideY, s.primaryStrideC);
        auto b = operandFor(n, h, w, c, s.secondaryStrideX, s.secondaryStrideY, s.secondaryStrideC);
        const int64_t cOut = s.primaryStrideC ? a.c : b.c;
        auto o = runArithmetic(s, {}, a, b, {n, h, w, cOut});
        EXPECT_TRUE(close(o.actual, o.expected, 1e-5, 2e-6))
            << kindName(kind) << " pattern=" << pattern << " plain=" << plain;
      }
    }
  }
}

TEST(CNNArithmetic, OffsetsClipRectChannelOffsetsAndEdgeModes) {
  for (bool plain : {false, true}) {
    ForcePlain force(plain);
    for (auto edge : {ImageEdgeMode::Zero, ImageEdgeMode::Clamp}) {
      auto a = test::randomRefImage(4, 6, 5, 7, -2, 2);
      auto b = test::randomRefImage(4, 5, 6, 9, -2, 2);
      std::vector<std::pair<ref::BinaryPlacement, ref::ArithmeticSpec>> cases;
      ref::BinaryPlacement p;
      p.primaryEdgeMode = p.secondaryEdgeMode = edge;
      p.secondarySourceFeatureChannelMaxCount = 7;
      ref::ArithmeticSpec s = scaledSpec(ArithmeticKind::Add, false);
      cases.push_back({p, s});       // secondary smaller in x: edge reads on the right
      p.primaryOffset = {-2, 1, 1};  // partly outside, images 1..
      p.secondaryOffset = {1, -3, 0};
      cases.push_back({p, s});
      p.clipRect = {{1, 2, 1}, {3, 3, 2}};  // a window of the destination, images 1..2
      p.primaryOffset = {3, -1, 0};
      p.secondaryOffset = {-1, 2, 2};
      cases.push_back({p, scaledSpec(ArithmeticKind::Multiply, true)});
      p = ref::BinaryPlacement();
      p.primaryEdgeMode = p.secondaryEdgeMode = edge;
      p.primarySourceFeatureChannelOffset = 2;  // primary channels 2..6, secondary 3..7 → dst 1..5 (RELAXED)
      p.secondarySourceFeatureChannelOffset = 3;
      p.secondarySourceFeatureChannelMaxCount = 5;
      p.destinationFeatureChannelOffset = 1;
      cases.push_back({p, scaledSpec(ArithmeticKind::Subtract, true)});
      p.primarySourceFeatureChannelMaxCount = 3;  // 3 channels each
      p.secondarySourceFeatureChannelMaxCount = 3;
      p.primaryOffset = {1, 1, 2};
      p.secondaryOffset = {0, -1, 1};
      cases.push_back({p, scaledSpec(ArithmeticKind::Divide, false)});
      // Broadcast operands that are not 1-pixel images: stride 0 reads the pixel at the offset, and a
      // scalar read outside the image follows the edge mode.
      p = ref::BinaryPlacement();
      p.primaryEdgeMode = p.secondaryEdgeMode = edge;
      p.secondaryOffset = {2, 3, 1};
      p.secondarySourceFeatureChannelOffset = 4;
      s = scaledSpec(ArithmeticKind::Add, true);
      s.secondaryStrideX = s.secondaryStrideY = s.secondaryStrideC = 0;
      cases.push_back({p, s});
      p.secondaryOffset = {-3, 9, 0};
      cases.push_back({p, s});
      p.primaryOffset = {-1, 0, 0};
      s.primaryStrideY = 0;
      s.secondaryStrideC = 1;
      p.secondarySourceFeatureChannelOffset = 2;
      cases.push_back({p, s});
      for (size_t i = 0; i < cases.size(); ++i) {
        auto o = runArithmetic(cases[i].second, cases[i].first, a, b, {4, 6, 5, 8});
        EXPECT_TRUE(close(o.actual, o.expected, 1e-5, 2e-6))
            << "case " << i << " edge=" << toString(edge) << " plain=" << plain;
      }
    }
  }
}

TEST(CNNArithmetic, Float16BFloat16AndUnorm8Images) {
  for (bool plain : {false, true}) {
    ForcePlain force(plain);
    for (auto kind :
         {ArithmeticKind::Add, ArithmeticKind::Subtract, ArithmeticKind::Multiply, ArithmeticKind::Divide}) {
      auto s = scaledSpec(kind, true);
      s.secondaryStrideX = s.secondaryStrideY = 0;  // a per-channel operand
      auto a = test::randomRefImage(2, 5, 7, 5, -2, 2);
      auto b = test::randomRefImage(2, 1, 1, 5, -2, 2);
      auto o = runArithmetic(s, {}, a, b, {2, 5, 7, 5}, all(F16));
      EXPECT_TRUE(close(o.actual, o.expected, test::rtolFor(F16), 1e-5))
          << kindName(kind) << " plain=" << plain;
      o = runArithmetic(s, {}, a, b, {2, 5, 7, 5}, all(ImageFeatureChannelFormat::BFloat16));
      EXPECT_TRUE(close(o.actual, o.expected, test::rtolFor(ImageFeatureChannelFormat::BFloat16), 1e-4))
          << kindName(kind) << " plain=" << plain;
      // Mixed: float16 operands into a float32 destination, and the reverse.
      o = runArithmetic(s, {}, a, b, {2, 5, 7, 5}, {F16, F16, F32});
      EXPECT_TRUE(close(o.actual, o.expected, 1e-5, 2e-6)) << kindName(kind) << " plain=" << plain;
      o = runArithmetic(s, {}, a, b, {2, 5, 7, 5}, {F32, F16, F16});
      EXPECT_TRUE(close(o.actual, o.expected, test::rtolFor(F16), 1e-5))
          << kindName(kind) << " plain=" << plain;
    }
  }
  // unorm8 (only the plain implementation reads it): values in [0, 1], results clamped to [0, 1] on store.
  ForcePlain force(true);
  ref::ArithmeticSpec s;
  s.kind = ArithmeticKind::Subtract;
  s.primaryScale = 1.5;
  s.bias = 0.125;
  auto a = test::randomRefImage(2, 3, 5, 3, 0.0, 1.0);
  auto b = test::randomRefImage(2, 3, 5, 3, 0.0, 1.0);
  auto o = runArithmetic(s, {}, a, b, {2, 3, 5, 3}, all(ImageFeatureChannelFormat::Unorm8));
  EXPECT_TRUE(close(o.actual, o.expected, 0, 1.0 / 255 + 1e-6));
}

TEST(CNNArithmetic, ClampTurnsInfinitiesIntoTheLimitsAndKeepsNaN) {
  // Spec 06 §1.2: IEEE results before the clamp; ±inf go to the limits (even the default ±FLT_MAX);
  // NaN stays NaN. Zeros on purpose here.
  ref::RefImage a(1, 1, 6, 1), b(1, 1, 6, 1);
  a.data = {1.0, -2.0, 0.0, 3e38, std::nan(""), 0.5};
  b.data = {0.0, 0.0, 0.0, 3e38, 1.0, 2.0};
  for (bool plain : {false, true}) {
    ForcePlain force(plain);
    ref::ArithmeticSpec s;
    s.kind = ArithmeticKind::Divide;
    auto o = runArithmetic(s, {}, a, b, {1, 1, 6, 1});
    EXPECT_EQ(o.actual.data[0], FLT_MAX);       // 1/0 = +inf → maximumValue
    EXPECT_EQ(o.actual.data[1], -FLT_MAX);      // −2/0 = −inf → minimumValue
    EXPECT_TRUE(std::isnan(o.actual.data[2]));  // 0/0
    EXPECT_EQ(o.actual.data[3], 1.0);
    EXPECT_TRUE(std::isnan(o.actual.data[4]));
    EXPECT_TRUE(close(o.actual, o.expected, 1e-6, 0));
    s.kind = ArithmeticKind::Multiply;  // 3e38 · 3e38 overflows float32 to +inf → FLT_MAX
    o = runArithmetic(s, {}, a, b, {1, 1, 6, 1});
    EXPECT_EQ(o.actual.data[3], FLT_MAX);
    EXPECT_TRUE(close(o.actual, o.expected, 1e-6, 0));
    s.kind = ArithmeticKind::Divide;
    s.minimumValue = -1.0;
    s.maximumValue = 0.75;
    o = runArithmetic(s, {}, a, b, {1, 1, 6, 1});
    EXPECT_EQ(o.actual.data[0], 0.75);
    EXPECT_EQ(o.actual.data[1], -1.0);
    EXPECT_EQ(o.actual.data[5], 0.25);
    EXPECT_TRUE(close(o.actual, o.expected, 1e-6, 0));
    s.minimumValue = s.maximumValue = 0.5;  // equal limits are valid: a constant
    o = runArithmetic(s, {}, a, b, {1, 1, 6, 1});
    EXPECT_TRUE(close(o.actual, o.expected, 0, 0));
  }
}

TEST(CNNArithmetic, AutoModeSizesEachAxisFromTheOperandThatIsNotBroadcast) {
  struct Row {
    uint64_t spx, spy, spc, ssx, ssy, ssc;
    std::array<int64_t, 4> primary, secondary;  // n, h, w, c
    uint64_t width, height, channels;
  };
  const Row rows[] = {
      {1, 1, 1, 1, 1, 1, {1, 4, 6, 3}, {1, 4, 6, 3}, 6, 4, 3},
      {1, 1, 1, 0, 0, 1, {1, 4, 6, 3}, {1, 1, 1, 3}, 6, 4, 3},  // per-channel secondary
      {1, 1, 1, 1, 1, 0, {1, 4, 6, 3}, {1, 4, 6, 1}, 6, 4, 3},  // per-pixel secondary
      {0, 0, 1, 1, 1, 1, {1, 1, 1, 5}, {1, 3, 7, 5}, 7, 3, 5},  // broadcast primary: secondary sizes x, y
      {0, 1, 0, 1, 0, 1, {1, 3, 1, 1}, {1, 1, 5, 4}, 5, 3, 4},  // outer product of a column and a row
      {0, 0, 0, 0, 0, 0, {1, 1, 1, 1}, {1, 2, 3, 2}, 3, 2, 2},  // both scalars: the secondary's extents
  };
  for (bool plain : {false, true}) {
    ForcePlain force(plain);
    for (const Row& r : rows) {
      ref::ArithmeticSpec s = scaledSpec(ArithmeticKind::Multiply, false);
      s.primaryStrideX = r.spx, s.primaryStrideY = r.spy, s.primaryStrideC = r.spc;
      s.secondaryStrideX = r.ssx, s.secondaryStrideY = r.ssy, s.secondaryStrideC = r.ssc;
      auto a = test::randomRefImage(r.primary[0], r.primary[1], r.primary[2], r.primary[3], -2, 2);
      auto b = test::randomRefImage(r.secondary[0], r.secondary[1], r.secondary[2], r.secondary[3], -2, 2);
      test::roundTo(a, F32);
      test::roundTo(b, F32);
      auto kernel = makeKernel(s);
      kernel->setPrimaryOffset({5, -4, 0});  // auto mode resets x/y offsets to 0
      kernel->setSecondaryOffset({-2, 7, 0});
      kernel->setDestinationImageAllocator(Image::defaultAllocator());
      auto cb = queue()->commandBuffer();
      auto primary = test::makeImage(a), secondary = test::makeImage(b);
      ImagePtr out = kernel->encode(cb, primary, secondary);
      cb->commit();
      cb->waitUntilCompleted();
      EXPECT_EQ(out->width(), r.width);
      EXPECT_EQ(out->height(), r.height);
      EXPECT_EQ(out->featureChannels(), r.channels);
      EXPECT_EQ(out->numberOfImages(), 1u);
      EXPECT_EQ(out->featureChannelFormat(), F32);
      EXPECT_EQ(kernel->primaryOffset(), (Offset{0, 0, 0}));
      EXPECT_EQ(kernel->secondaryOffset(), (Offset{0, 0, 0}));
      ref::RefImage expected(1, int64_t(r.height), int64_t(r.width), int64_t(r.channels));
      ref::arithmeticKernel(s, {}, a, b, expected);
      EXPECT_TRUE(close(test::download(*out), expected, 1e-5, 2e-6)) << "plain=" << plain;
    }
  }
  // destinationFeatureChannelOffset is part of the descriptor (spec 00 §4.7); the descriptor alone
  // does not need a command buffer.
  auto add = CNNAdd::make(device());
  add->setDestinationFeatureChannelOffset(4);
  auto p = test::makeImage(test::randomRefImage(1, 2, 3, 5));
  auto d = add->destinationImageDescriptor({p, p}, {});
  EXPECT_EQ(d.featureChannels(), 9u);
  EXPECT_EQ(d.width(), 3u);
  EXPECT_EQ(d.height(), 2u);
}

TEST(CNNArithmetic, MultiImageAndBatchEncode) {
  auto kernel = CNNSubtract::make(device());
  kernel->setSecondaryStrideInPixelsX(0);
  kernel->setSecondaryStrideInPixelsY(0);
  kernel->setBias(0.5f);
  ref::ArithmeticSpec s;
  s.kind = ArithmeticKind::Subtract;
  s.secondaryStrideX = s.secondaryStrideY = 0;
  s.bias = 0.5;
  ImageBatch primaries, secondaries, destinations;
  std::vector<ref::RefImage> as, bs;
  for (int i = 0; i < 3; ++i) {
    as.push_back(test::randomRefImage(1, 3, 4, 13));
    bs.push_back(test::randomRefImage(1, 1, 1, 13));
    test::roundTo(as.back(), F32);
    test::roundTo(bs.back(), F32);
    primaries.push_back(test::makeImage(as.back()));
    secondaries.push_back(test::makeImage(bs.back()));
    destinations.push_back(Image::make(device(), ImageDescriptor::make(F32, 4, 3, 13)));
    test::poison(*destinations.back());
  }
  auto cb = queue()->commandBuffer();
  kernel->encodeBatch(cb, primaries, secondaries, destinations);
  kernel->setDestinationImageAllocator(Image::defaultAllocator());
  ImageBatch autos = kernel->encodeBatch(cb, primaries, secondaries);
  cb->commit();
  cb->waitUntilCompleted();
  ASSERT_EQ(autos.size(), 3u);
  for (size_t i = 0; i < 3; ++i) {
    ref::RefImage expected(1, 3, 4, 13);
    ref::arithmeticKernel(s, {}, as[i], bs[i], expected);
    EXPECT_TRUE(close(test::download(*destinations[i]), expected, 1e-5, 2e-6)) << "batch item " << i;
    EXPECT_TRUE(close(test::download(*autos[i]), expected, 1e-5, 2e-6)) << "auto batch item " << i;
  }
  // A multi-image Image with the secondary's images picked by secondaryOffset.z.
  auto a = test::randomRefImage(3, 2, 3, 4), b = test::randomRefImage(4, 1, 1, 4);
  ref::BinaryPlacement p;
  p.secondaryOffset = {0, 0, 1};
  for (bool plain : {false, true}) {
    ForcePlain force(plain);
    auto o = runArithmetic(s, p, a, b, {3, 2, 3, 4});
    EXPECT_TRUE(close(o.actual, o.expected, 1e-5, 2e-6)) << "plain=" << plain;
  }
}

TEST(CNNArithmetic, ViewsOfLargerImagesAsOperandsAndDestination) {
  // Single images of a batch (data at an unaligned element) and channel ranges (pixels not packed).
  auto va = test::randomRefImage(3, 5, 7, 3), vb = test::randomRefImage(3, 5, 7, 3);
  test::roundTo(va, F32);
  test::roundTo(vb, F32);
  ref::ArithmeticSpec s = scaledSpec(ArithmeticKind::Multiply, true);
  for (bool plain : {false, true}) {
    ForcePlain force(plain);
    auto a = test::makeImage(va), b = test::makeImage(vb);
    auto d = Image::make(device(), ImageDescriptor::make(F32, 7, 5, 3, 3));
    ref::RefImage expected = test::poison(*d);
    auto kernel = makeKernel(s);
    auto cb = queue()->commandBuffer();
    kernel->encode(cb, a->batchRepresentation()[1], b->batchRepresentation()[2], d->batchRepresentation()[0]);
    cb->commit();
    cb->waitUntilCompleted();
    ref::BinaryPlacement p;
    p.primaryOffset = {0, 0, 1};
    p.secondaryOffset = {0, 0, 2};
    p.clipRect = {{0, 0, 0}, {7, 5, 1}};
    ref::arithmeticKernel(s, p, va, vb, expected);
    EXPECT_TRUE(close(test::download(*d), expected, 1e-5, 2e-6)) << "batch views, plain=" << plain;

    auto wide = Image::make(device(), ImageDescriptor::make(F32, 7, 5, 4, 3));
    expected = test::poison(*wide);
    cb = queue()->commandBuffer();
    kernel->encode(cb, a->subImageWithFeatureChannelRange({1, 2}), b->subImageWithFeatureChannelRange({0, 2}),
                   wide->subImageWithFeatureChannelRange({2, 2}));
    cb->commit();
    cb->waitUntilCompleted();
    p = ref::BinaryPlacement();
    p.primarySourceFeatureChannelOffset = 1;
    p.secondarySourceFeatureChannelMaxCount = 2;
    p.destinationFeatureChannelOffset = 2;
    ref::arithmeticKernel(s, p, va, vb, expected);
    EXPECT_TRUE(close(test::download(*wide), expected, 1e-5, 2e-6)) << "channel views, plain=" << plain;
  }
}

TEST(CNNArithmetic, ChainsThroughTemporaryImages) {
  auto add = CNNAdd::make(device());
  auto multiply = CNNMultiply::make(device());
  multiply->setDestinationImageAllocator(Image::defaultAllocator());
  auto va = test::randomRefImage(1, 3, 5, 2), vb = test::randomRefImage(1, 3, 5, 2);
  test::roundTo(va, F32);
  test::roundTo(vb, F32);
  auto a = test::makeImage(va), b = test::makeImage(vb);
  auto cb = queue()->commandBuffer();
  ImagePtr sum = add->encode(cb, a, b);
  ASSERT_TRUE(sum->isTemporary());
  static_cast<TemporaryImage&>(*sum).setReadCount(2);  // read as both operands of the product
  ImagePtr square = multiply->encode(cb, sum, sum);
  EXPECT_EQ(static_cast<TemporaryImage&>(*sum).readCount(), 0u);
  cb->commit();
  cb->waitUntilCompleted();
  ref::RefImage expected(1, 3, 5, 2);
  for (size_t i = 0; i < expected.data.size(); ++i) {
    const double s = double(float(va.data[i] + vb.data[i]));
    expected.data[i] = s * s;
  }
  EXPECT_TRUE(close(test::download(*square), expected, 1e-6, 1e-7));
}

TEST(NNCompare, EveryComparisonTypeMatchesReference) {
  for (bool plain : {false, true}) {
    ForcePlain force(plain);
    for (int type = 0; type < 6; ++type) {
      for (double threshold : {0.0, 0.3}) {
        ref::ArithmeticSpec s;
        s.kind = ArithmeticKind::Compare;
        s.comparison = NNComparisonType(type);
        s.threshold = threshold;
        // The documented-unused parameters must change nothing.
        s.primaryScale = 3.0, s.secondaryScale = -2.0, s.bias = 5.0, s.minimumValue = 2.0,
        s.maximumValue = 1.0;
        auto a = test::randomRefImage(2, 4, 5, 3, -1, 1);
        auto b = test::randomRefImage(2, 4, 5, 3, -1, 1);
        for (size_t i = 0; i < a.data.size(); i += 3) b.data[i] = a.data[i];  // some exact ties
        auto o = runArithmetic(s, {}, a, b, {2, 4, 5, 3});
        EXPECT_TRUE(close(o.actual, o.expected, 0, 0))
            << toString(NNComparisonType(type)) << " threshold=" << threshold << " plain=" << plain;
        double ones = 0;
        for (double v : o.actual.data) ones += v;
        EXPECT_GT(ones, 0) << toString(NNComparisonType(type));  // neither all true nor all false
        EXPECT_LT(ones, double(o.actual.data.size())) << toString(NNComparisonType(type));
      }
    }
  }
}

TEST(NNCompare, NaNOperandsAreFalseExceptForNotEqual) {
  ref::RefImage a(1, 1, 3, 1), b(1, 1, 3, 1);
  a.data = {std::nan(""), 1.0, std::nan("")};
  b.data = {1.0, std::nan(""), std::nan("")};
  for (bool plain : {false, true}) {
    ForcePlain force(plain);
    for (int type = 0; type < 6; ++type) {
      ref::ArithmeticSpec s;
      s.kind = ArithmeticKind::Compare;
      s.comparison = NNComparisonType(type);
      s.threshold = 1e30;
      auto o = runArithmetic(s, {}, a, b, {1, 1, 3, 1});
      const double want = NNComparisonType(type) == NNComparisonType::NotEqual ? 1.0 : 0.0;
      for (double v : o.actual.data) EXPECT_EQ(v, want) << toString(NNComparisonType(type));
    }
  }
}

// ---------------------------------------------------------------------------------------------------
// Bad input: InvalidArgument naming the class, the property and the value; the destination untouched.

struct Rejection {
  ImagePtr primary, secondary, destination;
  ref::RefImage poisoned;
  Rejection() {
    primary = test::makeImage(test::randomRefImage(2, 3, 4, 5));
    secondary = test::makeImage(test::randomRefImage(2, 3, 4, 5));
    destination = Image::make(device(), ImageDescriptor::make(F32, 4, 3, 5, 2));
    poisoned = test::poison(*destination);
  }
  void expect(CNNArithmetic& kernel, const std::vector<std::string>& words, ImagePtr p = nullptr,
              ImagePtr s = nullptr) {
    auto cb = queue()->commandBuffer();
    try {
      kernel.encode(cb, p ? p : primary, s ? s : secondary, destination);
      ADD_FAILURE() << "no InvalidArgument for " << words[0];
    } catch (const InvalidArgument& e) {
      EXPECT_NE(std::string(e.what()).find(kernel.className()), std::string::npos) << e.what();
      for (const auto& w : words) EXPECT_NE(std::string(e.what()).find(w), std::string::npos) << e.what();
    }
    cb->commit();
    cb->waitUntilCompleted();
    EXPECT_TRUE(close(test::download(*destination), poisoned, 0, 0))
        << "destination written after " << words[0];
  }
};

TEST(CNNArithmetic, RejectsBadInputAndLeavesTheDestinationUntouched) {
  Rejection r;
  using Setter = void (CNNBinaryKernel::*)(uint64_t);
  const std::pair<const char*, Setter> pixelStrides[] = {
      {"primaryStrideInPixelsX", &CNNBinaryKernel::setPrimaryStrideInPixelsX},
      {"primaryStrideInPixelsY", &CNNBinaryKernel::setPrimaryStrideInPixelsY},
      {"secondaryStrideInPixelsX", &CNNBinaryKernel::setSecondaryStrideInPixelsX},
      {"secondaryStrideInPixelsY", &CNNBinaryKernel::setSecondaryStrideInPixelsY},
  };
  for (const auto& [name, setter] : pixelStrides) {
    for (auto kernel :
         std::vector<std::shared_ptr<CNNArithmetic>>{CNNAdd::make(device()), NNCompare::make(device())}) {
      ((*kernel).*setter)(2);
      r.expect(*kernel, {name, "= 2"});
      EXPECT_THROW(kernel->destinationImageDescriptor({r.primary, r.secondary}, {}), InvalidArgument) << name;
    }
  }
  {
    auto k = CNNMultiply::make(device());
    k->setPrimaryStrideInFeatureChannels(3);
    r.expect(*k, {"primaryStrideInFeatureChannels", "= 3"});
  }
  {
    auto k = CNNDivide::make(device());
    k->setSecondaryStrideInFeatureChannels(7);
    r.expect(*k, {"secondaryStrideInFeatureChannels", "= 7"});
  }
  {
    auto k = CNNAdd::make(device());
    k->setMinimumValue(2.0f);
    k->setMaximumValue(1.0f);
    r.expect(*k, {"minimumValue = 2", "maximumValue = 1"});
    k->setMinimumValue(std::nanf(""));
    r.expect(*k, {"minimumValue = NaN"});
    k->setMinimumValue(0.0f);
    k->setMaximumValue(std::nanf(""));
    r.expect(*k, {"maximumValue = NaN"});
  }
  {
    auto k = CNNSubtract::make(device());  // both walk the channels but read 5 and 3
    k->setSecondaryStrideInFeatureChannels(1);
    k->setSecondarySourceFeatureChannelMaxCount(3);
    r.expect(*k, {"StrideInFeatureChannels", "5", "3"});
    EXPECT_THROW(k->destinationImageDescriptor({r.primary, r.secondary}, {}), InvalidArgument);
  }
  {
    auto k = CNNAdd::make(device());  // 5 output channels from offset 1 do not fit 5 channels
    k->setDestinationFeatureChannelOffset(1);
    r.expect(*k, {"destination featureChannels = 5", "destinationFeatureChannelOffset"});
  }
  {
    auto k = CNNAdd::make(device());
    k->setPrimarySourceFeatureChannelOffset(5);
    r.expect(*k, {"primarySourceFeatureChannelOffset = 5"});
    k->setPrimarySourceFeatureChannelOffset(0);
    k->setSecondarySourceFeatureChannelMaxCount(0);
    r.expect(*k, {"secondarySourceFeatureChannelMaxCount = 0"});
  }
  for (auto edge : {ImageEdgeMode::Mirror, ImageEdgeMode::MirrorWithEdge, ImageEdgeMode::Constant}) {
    auto k = CNNAdd::make(device());
    k->setSecondaryEdgeMode(edge);
    r.expect(*k, {"edgeMode", toString(edge)});
    auto c = NNCompare::make(device());
    c->setPrimaryEdgeMode(edge);
    r.expect(*c, {"edgeMode", toString(edge)});
  }
  {
    auto k = NNCompare::make(device());
    k->setComparisonType(NNComparisonType(6));
    r.expect(*k, {"comparisonType", "6"});
  }
  {
    auto k = CNNAdd::make(device());
    k->setSecondaryOffset({0, 0, -1});
    r.expect(*k, {"offset.z = -1"});
    k->setSecondaryOffset({0, 0, 0});
    k->setClipRect({{0, 0, 1}, {4, 3, 2}});
    r.expect(*k, {"clipRect"});
  }
  {
    // RELAXED channel offsets are rejected only under strict validation.
    auto k = CNNAdd::make(device());
    k->setPrimarySourceFeatureChannelOffset(1);
    k->setSecondarySourceFeatureChannelOffset(1);
    k->setPrimarySourceFeatureChannelMaxCount(3);
    k->setSecondarySourceFeatureChannelMaxCount(3);
    setStrictValidation(true);
    r.expect(*k, {"primarySourceFeatureChannelOffset = 1", "strict"});
    setStrictValidation(false);
  }
  {
    auto k = CNNAdd::make(device());
    auto cb = queue()->commandBuffer();
    EXPECT_THROW(k->encode(cb, r.primary, r.secondary, r.primary), InvalidArgument);  // aliasing
    EXPECT_THROW(k->encode(cb, r.primary, r.secondary, r.secondary), InvalidArgument);
    EXPECT_THROW(k->encode(cb, nullptr, r.secondary, r.destination), InvalidArgument);
    EXPECT_THROW(k->encode(cb, r.primary, nullptr, r.destination), InvalidArgument);
    EXPECT_THROW(k->encode(nullptr, r.primary, r.secondary, r.destination), InvalidArgument);
    EXPECT_THROW(k->encodeBatch(cb, {r.primary, r.primary}, {r.secondary}, {r.destination, r.destination}),
                 InvalidArgument);
    EXPECT_THROW(k->destinationImageDescriptor({r.primary}, {}), InvalidArgument);
    cb->commit();
    cb->waitUntilCompleted();
    EXPECT_TRUE(close(test::download(*r.destination), r.poisoned, 0, 0));
  }
}

// ---------------------------------------------------------------------------------------------------
// PyTorch parity: tests/pytorch/gen_arithmetic.py. Operands NHWC float64 (float32-exact values); the
// secondary and/or primary may have extent 1 on an axis, which maps to stride 0 there.

void checkTorchCases(ArithmeticKind kind) {
  size_t seen = 0;
  for (const auto& tc : test::readTorchCases("arithmetic.txt")) {
    if (ArithmeticKind(int(tc.scalars.at("kind"))) != kind) continue;
    ++seen;
    const auto& ps = tc.shapes.at("primary");
    const auto& ss = tc.shapes.at("secondary");
    const auto& os = tc.shapes.at("output");
    ref::RefImage a(ps[0], ps[1], ps[2], ps[3]), b(ss[0], ss[1], ss[2], ss[3]),
        expected(os[0], os[1], os[2], os[3]);
    a.data = tc.arrays.at("primary");
    b.data = tc.arrays.at("secondary");
    expected.data = tc.arrays.at("output");
    ref::ArithmeticSpec s;
    s.kind = kind;
    s.primaryScale = tc.scalars.at("primaryScale");
    s.secondaryScale = tc.scalars.at("secondaryScale");
    s.bias = tc.scalars.at("bias");
    s.minimumValue = tc.scalars.at("minimum");
    s.maximumValue = tc.scalars.at("maximum");
    s.comparison = NNComparisonType(int(tc.scalars.at("comparison")));
    s.threshold = tc.scalars.at("threshold");
    s.primaryStrideY = ps[1] == os[1], s.primaryStrideX = ps[2] == os[2], s.primaryStrideC = ps[3] == os[3];
    s.secondaryStrideY = ss[1] == os[1], s.secondaryStrideX = ss[2] == os[2],
    s.secondaryStrideC = ss[3] == os[3];
    auto kernel = makeKernel(s);
    kernel->setDestinationImageAllocator(Image::defaultAllocator());
    // One image of the batch per encode: auto mode sizes the destination by the broadcast rules.
    for (int64_t n = 0; n < os[0]; ++n) {
      ref::RefImage an(1, ps[1], ps[2], ps[3]), bn(1, ss[1], ss[2], ss[3]), en(1, os[1], os[2], os[3]);
      std::copy_n(a.data.begin() + n * int64_t(an.data.size()), an.data.size(), an.data.begin());
      std::copy_n(b.data.begin() + n * int64_t(bn.data.size()), bn.data.size(), bn.data.begin());
      std::copy_n(expected.data.begin() + n * int64_t(en.data.size()), en.data.size(), en.data.begin());
      auto cb = queue()->commandBuffer();
      ImagePtr out = kernel->encode(cb, test::makeImage(an), test::makeImage(bn));
      cb->commit();
      cb->waitUntilCompleted();
      test::roundTo(en, F32);
      EXPECT_TRUE(close(test::download(*out), en, 2e-5, 2e-6)) << "case " << tc.name << " image " << n;
    }
  }
  EXPECT_GT(seen, 0u) << "no " << kindName(kind) << " cases in arithmetic.txt";
}

TEST(CNNAdd, PyTorchParity) { checkTorchCases(ArithmeticKind::Add); }
TEST(CNNSubtract, PyTorchParity) { checkTorchCases(ArithmeticKind::Subtract); }
TEST(CNNMultiply, PyTorchParity) { checkTorchCases(ArithmeticKind::Multiply); }
TEST(CNNDivide, PyTorchParity) { checkTorchCases(ArithmeticKind::Divide); }
TEST(NNCompare, PyTorchParity) { checkTorchCases(ArithmeticKind::Compare); }

}  // namespace
}  // namespace mpsnn
