// Padding policies (spec 00 §5): NNPaddingMethod, NNPadding, NNDefaultPadding, and the destination
// size / offset functions, checked against an implementation written here from the spec text.
#include <cmath>
#include <limits>
#include <set>
#include <string>
#include <vector>

#include "harness.h"

namespace mpsnn {
namespace {

using M = NNPaddingMethod;

// ---------------------------------------------------------------------------------------------
// Independent model of spec 00 §5.2 / §5.3.

enum class Style { ValidOnly = -1, Same = 0, Full = 1 };
enum class Align { Centered, TopLeft, BottomRight };
enum class Remainder { TopLeft, TopRight, BottomLeft, BottomRight };

M methodOf(Align a, Remainder r, Style s) {
  uint32_t bits = 0;
  bits |= a == Align::Centered ? 0u : a == Align::TopLeft ? 1u : 2u;
  bits |= r == Remainder::TopLeft      ? 0u
          : r == Remainder::TopRight   ? 4u
          : r == Remainder::BottomLeft ? 8u
                                       : 12u;
  bits |= s == Style::ValidOnly ? 0u : s == Style::Same ? 16u : 32u;
  return M(bits);
}

/// ceil(a / b) for b > 0, by floating-point free integer reasoning.
int64_t ceilDiv(int64_t a, int64_t b) {
  int64_t q = a / b;
  if (a % b != 0 && a > 0) ++q;
  return q;
}

/// DestSize; returns a value <= 0 when the spec says the destination is empty.
int64_t refDest(int64_t S, int64_t s, int64_t k, Style st, bool backwards) {
  const int64_t style = int64_t(st);
  if (backwards) return (S - 1) * s + 1 + style * (k - 1);
  const int64_t num = S + style * (k - 1);
  if (num <= 0) return num;
  return ceilDiv(num, s);
}

/// trunc_div(a, 2): C truncation toward zero, computed without relying on '/' semantics.
int64_t truncHalf(int64_t a) { return int64_t(std::trunc(double(a) / 2.0)); }

/// Padding placed before the first window (lead) per spec 00 §5.3.
int64_t refLead(int64_t S, int64_t s, int64_t k, Style st, Align a, Remainder r, bool isX) {
  const int64_t d = refDest(S, s, k, st, false);
  const int64_t readSize = (d - 1) * s + k;
  const int64_t extra = readSize - S;
  switch (a) {
    case Align::TopLeft:
      return extra;
    case Align::BottomRight:
      return 0;
    case Align::Centered: {
      bool toTopOrLeft = isX ? (r == Remainder::TopLeft || r == Remainder::BottomLeft)
                             : (r == Remainder::TopLeft || r == Remainder::TopRight);
      return truncHalf(extra + (toTopOrLeft ? 1 : 0));
    }
  }
  return 0;
}

int64_t refOffset(int64_t S, int64_t s, int64_t k, Style st, Align a, Remainder r, bool isX) {
  return k / 2 - refLead(S, s, k, st, a, r, isX);
}

const Align kAligns[] = {Align::Centered, Align::TopLeft, Align::BottomRight};
const Remainder kRemainders[] = {Remainder::TopLeft, Remainder::TopRight, Remainder::BottomLeft,
                                 Remainder::BottomRight};
const Style kStyles[] = {Style::ValidOnly, Style::Same, Style::Full};

// =============================================================================================
// NNPaddingMethod values (spec 00 §5.1)

TEST(NNPaddingMethod, EnumeratorValues) {
  EXPECT_EQ(uint32_t(M::AlignCentered), 0u);
  EXPECT_EQ(uint32_t(M::AlignTopLeft), 1u);
  EXPECT_EQ(uint32_t(M::AlignBottomRight), 2u);
  EXPECT_EQ(uint32_t(M::Align_reserved), 3u);
  EXPECT_EQ(uint32_t(M::AlignMask), 3u);
  EXPECT_EQ(uint32_t(M::AddRemainderToTopLeft), 0u);
  EXPECT_EQ(uint32_t(M::AddRemainderToTopRight), 4u);
  EXPECT_EQ(uint32_t(M::AddRemainderToBottomLeft), 8u);
  EXPECT_EQ(uint32_t(M::AddRemainderToBottomRight), 12u);
  EXPECT_EQ(uint32_t(M::AddRemainderToMask), 12u);
  EXPECT_EQ(uint32_t(M::SizeValidOnly), 0u);
  EXPECT_EQ(uint32_t(M::SizeSame), 16u);
  EXPECT_EQ(uint32_t(M::SizeFull), 32u);
  EXPECT_EQ(uint32_t(M::Size_reserved), 48u);
  EXPECT_EQ(uint32_t(M::SizeMask), 0x7f0u);
  EXPECT_EQ(uint32_t(M::CustomAllowForNodeFusion), 8192u);
  EXPECT_EQ(uint32_t(M::CustomWhitelistForNodeFusion), 8192u);
  EXPECT_EQ(uint32_t(M::Custom), 16384u);
  EXPECT_EQ(uint32_t(M::ExcludeEdges), 32768u);
  // Named combinations.
  EXPECT_EQ(uint32_t(M::AlignCentered | M::AddRemainderToBottomRight | M::SizeSame), 28u);  // TensorFlow SAME
  EXPECT_EQ(uint32_t(M::AlignCentered | M::AddRemainderToTopLeft | M::SizeSame), 16u);      // MPS default
}

// =============================================================================================
// NNPadding: destination size and offset

TEST(NNPadding, SpecWorkedExampleStride4Window1Same) {
  // S=7, s=4, k=1, Same: d=2, readSize=5, extra=-2.
  EXPECT_EQ(paddingDestinationSize(7, 4, 1, M::SizeSame, false, "test"), 2);
  // TensorFlow SAME combination (remainder bottom-right, r=0): lead=trunc(-2/2)=-1, offset 1.
  const M tfSame = M::AlignCentered | M::AddRemainderToBottomRight | M::SizeSame;
  EXPECT_EQ(paddingOffset(7, 4, 1, tfSame, true), 1);
  EXPECT_EQ(paddingOffset(7, 4, 1, tfSame, false), 1);
  // MPS default (remainder top-left, r=1): lead=trunc(-1/2)=0, offset 0.
  const M mpsDefault = M::AlignCentered | M::AddRemainderToTopLeft | M::SizeSame;
  EXPECT_EQ(paddingOffset(7, 4, 1, mpsDefault, true), 0);
  EXPECT_EQ(paddingOffset(7, 4, 1, mpsDefault, false), 0);
}

TEST(NNPadding, SpecWorkedExampleValidOnlyStride4Window3) {
  // S=10, s=4, k=3, ValidOnly, default remainder: d=2, readSize=7, extra=-3, lead=-1, offset=2.
  const M m = M::AlignCentered | M::AddRemainderToTopLeft | M::SizeValidOnly;
  EXPECT_EQ(paddingDestinationSize(10, 4, 3, m, false, "test"), 2);
  EXPECT_EQ(paddingOffset(10, 4, 3, m, true), 2);
  EXPECT_EQ(paddingOffset(10, 4, 3, m, false), 2);
}

TEST(NNPadding, SpecWorkedExampleSameWindow3Stride1) {
  // Same, k=3, s=1, S=5: d=5, readSize=7, extra=2, lead=1, offset=0.
  const M m = M::AlignCentered | M::AddRemainderToTopLeft | M::SizeSame;
  EXPECT_EQ(paddingDestinationSize(5, 1, 3, m, false, "test"), 5);
  EXPECT_EQ(paddingOffset(5, 1, 3, m, true), 0);
  EXPECT_EQ(paddingOffset(5, 1, 3, m, false), 0);
}

TEST(NNPadding, SpecWorkedExampleEvenWindowRemainders) {
  // k=2, Same (s=1): extra=1. TopLeft remainder: lead=1, offset 0 (window [-1,0]);
  // BottomRight remainder: lead=0, offset 1 (window [0,1]).
  for (int64_t S : {1, 2, 5, 8}) {
    EXPECT_EQ(paddingDestinationSize(S, 1, 2, M::SizeSame, false, "test"), S);
    EXPECT_EQ(paddingOffset(S, 1, 2, M::SizeSame | M::AddRemainderToTopLeft, true), 0) << S;
    EXPECT_EQ(paddingOffset(S, 1, 2, M::SizeSame | M::AddRemainderToTopLeft, false), 0) << S;
    EXPECT_EQ(paddingOffset(S, 1, 2, M::SizeSame | M::AddRemainderToBottomRight, true), 1) << S;
    EXPECT_EQ(paddingOffset(S, 1, 2, M::SizeSame | M::AddRemainderToBottomRight, false), 1) << S;
    // Mixed remainders: x follows left/right, y follows top/bottom.
    EXPECT_EQ(paddingOffset(S, 1, 2, M::SizeSame | M::AddRemainderToTopRight, true), 1) << S;
    EXPECT_EQ(paddingOffset(S, 1, 2, M::SizeSame | M::AddRemainderToTopRight, false), 0) << S;
    EXPECT_EQ(paddingOffset(S, 1, 2, M::SizeSame | M::AddRemainderToBottomLeft, true), 0) << S;
    EXPECT_EQ(paddingOffset(S, 1, 2, M::SizeSame | M::AddRemainderToBottomLeft, false), 1) << S;
  }
}

TEST(NNPadding, SizeRulesByHand) {
  // ValidOnly: ceil((S-k+1)/s); Same: ceil(S/s); Full: ceil((S+k-1)/s).
  EXPECT_EQ(paddingDestinationSize(28, 1, 5, M::SizeValidOnly, false, "t"), 24);
  EXPECT_EQ(paddingDestinationSize(28, 1, 5, M::SizeSame, false, "t"), 28);
  EXPECT_EQ(paddingDestinationSize(28, 1, 5, M::SizeFull, false, "t"), 32);
  EXPECT_EQ(paddingDestinationSize(28, 2, 2, M::SizeValidOnly, false, "t"), 14);
  EXPECT_EQ(paddingDestinationSize(27, 2, 2, M::SizeValidOnly, false, "t"), 13);
  EXPECT_EQ(paddingDestinationSize(27, 2, 2, M::SizeSame, false, "t"), 14);
  EXPECT_EQ(paddingDestinationSize(27, 2, 2, M::SizeFull, false, "t"), 14);
  EXPECT_EQ(paddingDestinationSize(7, 3, 3, M::SizeFull, false, "t"), 3);
  EXPECT_EQ(paddingDestinationSize(1, 5, 1, M::SizeSame, false, "t"), 1);
  EXPECT_EQ(paddingDestinationSize(3, 1, 3, M::SizeValidOnly, false, "t"), 1);  // k == S
  // Alignment and remainder bits do not change the size.
  for (Align a : kAligns)
    for (Remainder r : kRemainders)
      EXPECT_EQ(paddingDestinationSize(10, 3, 4, methodOf(a, r, Style::Full), false, "t"), 5);
  // Flag bits do not change the size.
  EXPECT_EQ(paddingDestinationSize(10, 3, 4, M::SizeFull | M::ExcludeEdges | M::CustomAllowForNodeFusion,
                                   false, "t"),
            5);
}

TEST(NNPadding, BackwardSizes) {
  // DestSizeReverse(S, s, k, style) = (S-1)*s + 1 + style*(k-1).
  EXPECT_EQ(paddingDestinationSize(4, 2, 3, M::SizeValidOnly, true, "t"), 5);
  EXPECT_EQ(paddingDestinationSize(4, 2, 3, M::SizeSame, true, "t"), 7);
  EXPECT_EQ(paddingDestinationSize(4, 2, 3, M::SizeFull, true, "t"), 9);
  EXPECT_EQ(paddingDestinationSize(1, 3, 1, M::SizeSame, true, "t"), 1);
  EXPECT_EQ(paddingDestinationSize(14, 2, 2, M::SizeFull, true, "t"), 28);
  // Too small backwards: (1-1)*1 + 1 - 2 = -1.
  EXPECT_THROW(paddingDestinationSize(1, 1, 3, M::SizeValidOnly, true, "t"), InvalidArgument);
  EXPECT_THROW(paddingDestinationSize(2, 1, 3, M::SizeValidOnly, true, "t"),
               InvalidArgument);  // 2 + 0 - 2 = 0
}

TEST(NNPadding, TooSmallSourceIsInvalid) {
  // ValidOnly with k > S has no complete window.
  EXPECT_THROW(paddingDestinationSize(2, 1, 3, M::SizeValidOnly, false, "CNNTest"), InvalidArgument);
  EXPECT_THROW(paddingDestinationSize(4, 2, 7, M::SizeValidOnly, false, "CNNTest"), InvalidArgument);
  EXPECT_THROW(paddingOffset(2, 1, 3, M::SizeValidOnly, true), InvalidArgument);
  // The message names who asked.
  try {
    paddingDestinationSize(2, 1, 3, M::SizeValidOnly, false, "CNNTestKernel");
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("CNNTestKernel"), std::string::npos) << e.what();
  }
  // An empty source is too small for every rule.
  for (Style st : kStyles)
    EXPECT_THROW(
        paddingDestinationSize(0, 1, 1, methodOf(Align::Centered, Remainder::TopLeft, st), false, "t"),
        InvalidArgument);
}

TEST(NNPadding, NonPositiveStrideOrWindowIsInvalidNotACrash) {
  for (bool backwards : {false, true}) {
    EXPECT_THROW(paddingDestinationSize(5, 0, 1, M::SizeSame, backwards, "t"), InvalidArgument);
    EXPECT_THROW(paddingDestinationSize(5, -2, 1, M::SizeSame, backwards, "t"), InvalidArgument);
    EXPECT_THROW(paddingDestinationSize(5, 1, 0, M::SizeSame, backwards, "t"), InvalidArgument);
    EXPECT_THROW(paddingDestinationSize(5, 1, -3, M::SizeFull, backwards, "t"), InvalidArgument);
    EXPECT_THROW(paddingDestinationSize(-5, 1, 1, M::SizeFull, backwards, "t"), InvalidArgument);
  }
  EXPECT_THROW(paddingOffset(5, 0, 1, M::SizeSame, true), InvalidArgument);
  EXPECT_THROW(paddingOffset(5, 1, 0, M::SizeSame, false), InvalidArgument);
}

TEST(NNPadding, ExtremeExtentsDoNotOverflow) {
  const int64_t big = std::numeric_limits<int64_t>::max();
  // ceil((2^63 - 1) / 2) = 2^62.
  EXPECT_EQ(paddingDestinationSize(big, 2, 1, M::SizeSame, false, "t"), int64_t(1) << 62);
  EXPECT_EQ(paddingDestinationSize(big, 1, 1, M::SizeSame, false, "t"), big);
  // Results beyond int64 are rejected rather than wrapped.
  EXPECT_THROW(paddingDestinationSize(big, 1, 3, M::SizeFull, false, "t"), InvalidArgument);
  EXPECT_THROW(paddingDestinationSize(big, 4, 1, M::SizeSame, true, "t"), InvalidArgument);
}

TEST(NNPadding, ReservedAlignmentOrSizeIsInvalid) {
  EXPECT_THROW(validatePaddingMethod(M::Align_reserved, "t"), InvalidArgument);
  EXPECT_THROW(validatePaddingMethod(M::Size_reserved, "t"), InvalidArgument);
  EXPECT_THROW(validatePaddingMethod(M::Align_reserved | M::SizeSame, "t"), InvalidArgument);
  EXPECT_THROW(validatePaddingMethod(M(64), "t"), InvalidArgument);  // a size value outside {0,16,32}
  EXPECT_NO_THROW(
      validatePaddingMethod(M::AlignBottomRight | M::AddRemainderToBottomRight | M::SizeFull, "t"));
  EXPECT_NO_THROW(
      validatePaddingMethod(M::SizeSame | M::Custom | M::ExcludeEdges | M::CustomAllowForNodeFusion, "t"));
  // The size and offset functions reject them too.
  EXPECT_THROW(paddingDestinationSize(5, 1, 3, M::Size_reserved, false, "t"), InvalidArgument);
  EXPECT_THROW(paddingDestinationSize(5, 1, 3, M::Size_reserved, true, "t"), InvalidArgument);
  EXPECT_THROW(paddingOffset(5, 1, 3, M::Align_reserved | M::SizeSame, true), InvalidArgument);
  EXPECT_THROW(paddingOffset(5, 1, 3, M::Size_reserved, false), InvalidArgument);
}

TEST(NNPadding, BruteForceAgainstSpecFormulas) {
  int checked = 0;
  for (int64_t S = 1; S <= 23; ++S)
    for (int64_t s = 1; s <= 6; ++s)
      for (int64_t k = 1; k <= 9; ++k)
        for (Style st : kStyles)
          for (Align a : kAligns)
            for (Remainder r : kRemainders) {
              const M m = methodOf(a, r, st);
              SCOPED_TRACE("S=" + std::to_string(S) + " s=" + std::to_string(s) + " k=" + std::to_string(k) +
                           " method=" + std::to_string(uint32_t(m)));
              // Forward.
              const int64_t d = refDest(S, s, k, st, false);
              if (d <= 0) {
                EXPECT_THROW(paddingDestinationSize(S, s, k, m, false, "t"), InvalidArgument);
                EXPECT_THROW(paddingOffset(S, s, k, m, true), InvalidArgument);
              } else {
                ASSERT_EQ(paddingDestinationSize(S, s, k, m, false, "t"), d);
                ASSERT_EQ(paddingOffset(S, s, k, m, true), refOffset(S, s, k, st, a, r, true));
                ASSERT_EQ(paddingOffset(S, s, k, m, false), refOffset(S, s, k, st, a, r, false));
              }
              // Backward.
              const int64_t db = refDest(S, s, k, st, true);
              if (db <= 0)
                EXPECT_THROW(paddingDestinationSize(S, s, k, m, true, "t"), InvalidArgument);
              else
                ASSERT_EQ(paddingDestinationSize(S, s, k, m, true, "t"), db);
              ++checked;
            }
  EXPECT_GT(checked, 10000);
}

TEST(NNPadding, GeometryOfTheSizeRules) {
  // Independent of the formulas: the size rules' meaning in terms of windows (spec 00 §5.1).
  for (int64_t S = 1; S <= 30; ++S)
    for (int64_t s = 1; s <= 5; ++s)
      for (int64_t k = 1; k <= 7; ++k) {
        SCOPED_TRACE("S=" + std::to_string(S) + " s=" + std::to_string(s) + " k=" + std::to_string(k));
        // Same: output = source size divided by stride, rounded up.
        EXPECT_EQ(paddingDestinationSize(S, s, k, M::SizeSame, false, "t"), (S + s - 1) / s);
        // ValidOnly: the number of stride-s windows that fit entirely inside the source.
        int64_t fit = 0;
        while (fit * s + k <= S) ++fit;
        if (fit == 0) {
          EXPECT_THROW(paddingDestinationSize(S, s, k, M::SizeValidOnly, false, "t"), InvalidArgument);
        } else {
          EXPECT_EQ(paddingDestinationSize(S, s, k, M::SizeValidOnly, false, "t"), fit);
          // Every ValidOnly window lies inside the source for every alignment and remainder.
          for (Align a : kAligns)
            for (Remainder r : kRemainders)
              for (bool isX : {true, false}) {
                const int64_t off = paddingOffset(S, s, k, methodOf(a, r, Style::ValidOnly), isX);
                const int64_t first = off - k / 2, last = off - k / 2 + (fit - 1) * s + k - 1;
                EXPECT_GE(first, 0);
                EXPECT_LE(last, S - 1);
              }
        }
        // Full: every window placement, stride s starting at the first one touching pixel 0 from
        // the left (start = 1 - k), that still touches the source.
        int64_t touching = 0;
        while (1 - k + touching * s <= S - 1) ++touching;
        EXPECT_EQ(paddingDestinationSize(S, s, k, M::SizeFull, false, "t"), touching);
      }
}

TEST(NNPadding, CenteredPlacementSplitsThePaddingAndHonoursTheRemainder) {
  // For extra >= 0: lead + trail = extra, |lead - trail| <= 1, the odd pixel on the chosen side.
  for (int64_t S = 1; S <= 20; ++S)
    for (int64_t s = 1; s <= 4; ++s)
      for (int64_t k = 1; k <= 8; ++k)
        for (Style st : {Style::Same, Style::Full})
          for (Remainder r : kRemainders)
            for (bool isX : {true, false}) {
              const M m = methodOf(Align::Centered, r, st);
              const int64_t d = paddingDestinationSize(S, s, k, m, false, "t");
              const int64_t extra = (d - 1) * s + k - S;
              if (extra < 0) continue;
              const int64_t lead = k / 2 - paddingOffset(S, s, k, m, isX);
              const int64_t trail = extra - lead;
              SCOPED_TRACE("S=" + std::to_string(S) + " s=" + std::to_string(s) + " k=" + std::to_string(k) +
                           " m=" + std::to_string(uint32_t(m)) + (isX ? " x" : " y"));
              if (extra % 2 == 0) {
                EXPECT_EQ(lead, trail);
              } else {
                const bool leadGetsIt = isX ? (r == Remainder::TopLeft || r == Remainder::BottomLeft)
                                            : (r == Remainder::TopLeft || r == Remainder::TopRight);
                EXPECT_EQ(lead - trail, leadGetsIt ? 1 : -1);
              }
              // TopLeft / BottomRight alignment put everything on one side.
              EXPECT_EQ(k / 2 - paddingOffset(S, s, k, methodOf(Align::TopLeft, r, st), isX), extra);
              EXPECT_EQ(k / 2 - paddingOffset(S, s, k, methodOf(Align::BottomRight, r, st), isX), 0);
            }
}

TEST(NNPadding, BaseClassDefaults) {
  struct Plain : NNPadding {
    NNPaddingMethod paddingMethod() const override { return M::SizeFull | M::AlignTopLeft; }
  };
  Plain p;
  EXPECT_FALSE(p.label().empty());
  EXPECT_EQ(p.inverse(), nullptr);
  // The custom hook is not overridden: calling it is an InvalidArgument.
  auto neuron = CNNNeuron::make(test::device(), NNNeuronDescriptor::make(CNNNeuronType::None));
  auto src = Image::make(test::device(), ImageDescriptor::make(ImageFeatureChannelFormat::Float32, 3, 3, 1));
  EXPECT_THROW(p.destinationImageDescriptor({src}, {}, *neuron, src->descriptor()), InvalidArgument);
}

// A policy with the Custom bit that forgets to override the hook.
struct ForgetfulCustom : NNPadding {
  NNPaddingMethod paddingMethod() const override { return M::Custom | M::SizeSame; }
};

// A policy with the Custom bit that widens the destination by 2 and shifts the source by one pixel.
struct WideningPadding : NNPadding {
  mutable int calls = 0;
  mutable ImageDescriptor seen;
  NNPaddingMethod paddingMethod() const override { return M::Custom | M::SizeSame | M::AlignCentered; }
  std::string label() const override { return "widening"; }
  ImageDescriptor destinationImageDescriptor(const ImageBatch& sources, const StateBatch&, Kernel& kernel,
                                             const ImageDescriptor& suggested) const override {
    ++calls;
    seen = suggested;
    EXPECT_EQ(sources.size(), 1u);
    auto& cnn = dynamic_cast<CNNKernel&>(kernel);
    Offset o = cnn.offset();
    o.x -= 1;
    cnn.setOffset(o);
    ImageDescriptor d = suggested;
    d.setWidth(suggested.width() + 2);
    d.setHeight(suggested.height() + 1);
    return d;
  }
};

TEST(NNPadding, CustomPolicyChangesDescriptorAndKernelOffset) {
  auto neuron = CNNNeuron::make(test::device(), NNNeuronDescriptor::make(CNNNeuronType::None));
  auto policy = std::make_shared<WideningPadding>();
  neuron->setPadding(policy);
  EXPECT_EQ(neuron->padding(), policy);
  const uint64_t W = 5, H = 3, C = 3;
  auto src = Image::make(test::device(), ImageDescriptor::make(ImageFeatureChannelFormat::Float32, W, H, C));
  neuron->setOffset({7, 9, 0});  // overwritten by the default computation (k=1, s=1, Same: offset 0)
  ImageDescriptor d = neuron->destinationImageDescriptor({src}, {});
  EXPECT_EQ(policy->calls, 1);
  // The hook saw the default suggestion of spec 00 §4.7.
  EXPECT_EQ(policy->seen.width(), W);
  EXPECT_EQ(policy->seen.height(), H);
  EXPECT_EQ(policy->seen.featureChannels(), C);
  EXPECT_EQ(policy->seen.numberOfImages(), 1u);
  EXPECT_EQ(policy->seen.featureChannelFormat(), ImageFeatureChannelFormat::Float32);
  // The final descriptor and offset are the hook's.
  EXPECT_EQ(d.width(), W + 2);
  EXPECT_EQ(d.height(), H + 1);
  EXPECT_EQ(d.featureChannels(), C);
  EXPECT_EQ(neuron->offset(), (Offset{-1, 0, 0}));
}

TEST(NNPadding, CustomPolicyDrivesAutoModeEncode) {
  auto neuron = CNNNeuron::make(test::device(), NNNeuronDescriptor::make(CNNNeuronType::None));
  auto policy = std::make_shared<WideningPadding>();
  neuron->setPadding(policy);
  neuron->setDestinationImageAllocator(Image::defaultAllocator());
  const int64_t W = 5, H = 3, C = 3;
  auto srcRef = test::randomRefImage(1, H, W, C);
  test::roundTo(srcRef, ImageFeatureChannelFormat::Float32);
  auto src = test::makeImage(srcRef);
  auto cb = test::queue()->commandBuffer();
  auto out = neuron->encode(cb, src);
  cb->commit();
  cb->waitUntilCompleted();
  EXPECT_EQ(policy->calls, 1);
  ASSERT_EQ(out->width(), uint64_t(W + 2));
  ASSERT_EQ(out->height(), uint64_t(H + 1));
  EXPECT_EQ(neuron->offset(), (Offset{-1, 0, 0}));
  // Identity with offset (-1, 0): out(x, y) = src(x - 1, y), zero outside (edge mode Zero).
  auto got = test::download(*out);
  ref::RefImage expected(1, H + 1, W + 2, C);
  for (int64_t y = 0; y < H + 1; ++y)
    for (int64_t x = 0; x < W + 2; ++x)
      for (int64_t c = 0; c < C; ++c) {
        const int64_t sx = x - 1, sy = y;
        expected.at(0, y, x, c) = (sx >= 0 && sx < W && sy < H) ? srcRef.at(0, sy, sx, c) : 0.0;
      }
  EXPECT_TRUE(test::close(got, expected, 0, 0));
}

TEST(NNPadding, CustomBitWithoutOverrideIsInvalid) {
  auto neuron = CNNNeuron::make(test::device(), NNNeuronDescriptor::make(CNNNeuronType::None));
  neuron->setPadding(std::make_shared<ForgetfulCustom>());
  auto src = Image::make(test::device(), ImageDescriptor::make(ImageFeatureChannelFormat::Float32, 4, 4, 2));
  EXPECT_THROW(neuron->destinationImageDescriptor({src}, {}), InvalidArgument);
  auto cb = test::queue()->commandBuffer();
  EXPECT_THROW(neuron->encode(cb, src), InvalidArgument);
  cb->commit();
  cb->waitUntilCompleted();
}

TEST(NNPadding, KernelsRejectReservedPolicies) {
  struct Reserved : NNPadding {
    NNPaddingMethod m;
    explicit Reserved(NNPaddingMethod mm) : m(mm) {}
    NNPaddingMethod paddingMethod() const override { return m; }
  };
  auto neuron = CNNNeuron::make(test::device(), NNNeuronDescriptor::make(CNNNeuronType::None));
  EXPECT_THROW(neuron->setPadding(std::make_shared<Reserved>(M::Align_reserved)), InvalidArgument);
  EXPECT_THROW(neuron->setPadding(std::make_shared<Reserved>(M::Size_reserved)), InvalidArgument);
  EXPECT_THROW(neuron->setPadding(nullptr), InvalidArgument);
  // The rejected policies did not replace the default.
  EXPECT_EQ(uint32_t(neuron->padding()->paddingMethod()), 16u);
}

// =============================================================================================
// NNDefaultPadding

TEST(NNDefaultPadding, PaddingWithMethodReturnsTheMethod) {
  for (Style st : kStyles)
    for (Align a : kAligns)
      for (Remainder r : kRemainders) {
        const M m = methodOf(a, r, st);
        auto p = NNDefaultPadding::paddingWithMethod(m);
        ASSERT_NE(p, nullptr);
        EXPECT_EQ(p->paddingMethod(), m);
        EXPECT_FALSE(p->label().empty());
      }
  auto withFlags =
      NNDefaultPadding::paddingWithMethod(M::SizeSame | M::ExcludeEdges | M::CustomAllowForNodeFusion);
  EXPECT_EQ(withFlags->paddingMethod(), M::SizeSame | M::ExcludeEdges | M::CustomAllowForNodeFusion);
}

TEST(NNDefaultPadding, LabelsDescribeTheBits) {
  std::set<std::string> labels;
  for (Style st : kStyles)
    for (Align a : kAligns)
      for (Remainder r : kRemainders)
        labels.insert(NNDefaultPadding::paddingWithMethod(methodOf(a, r, st))->label());
  EXPECT_EQ(labels.size(), 36u) << "every method has its own label";
  EXPECT_FALSE(NNDefaultPadding::paddingForTensorflowAveragePooling()->label().empty());
  EXPECT_FALSE(NNDefaultPadding::paddingForTensorflowAveragePoolingValidOnly()->label().empty());
  EXPECT_NE(NNDefaultPadding::paddingForTensorflowAveragePooling()->label(),
            NNDefaultPadding::paddingForTensorflowAveragePoolingValidOnly()->label());
}

TEST(NNDefaultPadding, InvalidMethods) {
  EXPECT_THROW(NNDefaultPadding::paddingWithMethod(M::Custom), InvalidArgument);
  EXPECT_THROW(NNDefaultPadding::paddingWithMethod(M::Custom | M::SizeSame), InvalidArgument);
  EXPECT_THROW(NNDefaultPadding::paddingWithMethod(M::Align_reserved), InvalidArgument);
  EXPECT_THROW(NNDefaultPadding::paddingWithMethod(M::Size_reserved), InvalidArgument);
  EXPECT_THROW(NNDefaultPadding::paddingWithMethod(M::Size_reserved | M::AlignTopLeft), InvalidArgument);
}

TEST(NNDefaultPadding, TensorflowAveragePoolingPolicies) {
  auto same = NNDefaultPadding::paddingForTensorflowAveragePooling();
  auto valid = NNDefaultPadding::paddingForTensorflowAveragePoolingValidOnly();
  EXPECT_EQ(same->paddingMethod(), M::Custom | M::SizeSame | M::AlignCentered | M::AddRemainderToBottomRight);
  EXPECT_EQ(uint32_t(same->paddingMethod()), 16384u + 16u + 12u);
  EXPECT_EQ(valid->paddingMethod(),
            M::Custom | M::SizeValidOnly | M::AlignCentered | M::AddRemainderToBottomRight);
  EXPECT_EQ(uint32_t(valid->paddingMethod()), 16384u + 12u);

  // The hook sets edgeMode = Clamp and returns the suggestion unchanged.
  for (auto policy : {same, valid}) {
    auto neuron = CNNNeuron::make(test::device(), NNNeuronDescriptor::make(CNNNeuronType::None));
    auto src =
        Image::make(test::device(), ImageDescriptor::make(ImageFeatureChannelFormat::Float16, 6, 4, 3));
    ImageDescriptor suggested = ImageDescriptor::make(ImageFeatureChannelFormat::Float16, 6, 4, 3);
    EXPECT_EQ(neuron->edgeMode(), ImageEdgeMode::Zero);
    ImageDescriptor out = policy->destinationImageDescriptor({src}, {}, *neuron, suggested);
    EXPECT_EQ(out, suggested);
    EXPECT_EQ(neuron->edgeMode(), ImageEdgeMode::Clamp);
  }
}

TEST(NNDefaultPadding, TensorflowPolicyThroughAKernel) {
  auto neuron = CNNNeuron::make(test::device(), NNNeuronDescriptor::make(CNNNeuronType::None));
  neuron->setPadding(NNDefaultPadding::paddingForTensorflowAveragePooling());
  auto src =
      Image::make(test::device(), ImageDescriptor::make(ImageFeatureChannelFormat::Float32, 7, 5, 6, 2));
  ImageDescriptor d = neuron->destinationImageDescriptor({src}, {});
  EXPECT_EQ(neuron->edgeMode(), ImageEdgeMode::Clamp);
  EXPECT_EQ(d.width(), 7u);
  EXPECT_EQ(d.height(), 5u);
  EXPECT_EQ(d.featureChannels(), 6u);
  EXPECT_EQ(d.numberOfImages(), 1u);
  EXPECT_EQ(d.featureChannelFormat(), ImageFeatureChannelFormat::Float32);
  EXPECT_EQ(neuron->offset(), (Offset{0, 0, 0}));
}

TEST(NNDefaultPadding, PlainPoliciesHaveANoOpHook) {
  auto neuron = CNNNeuron::make(test::device(), NNNeuronDescriptor::make(CNNNeuronType::None));
  auto p = NNDefaultPadding::paddingWithMethod(M::SizeFull);
  auto src = Image::make(test::device(), ImageDescriptor::make(ImageFeatureChannelFormat::Float32, 3, 3, 1));
  ImageDescriptor suggested = ImageDescriptor::make(ImageFeatureChannelFormat::Float32, 9, 8, 7);
  EXPECT_EQ(p->destinationImageDescriptor({src}, {}, *neuron, suggested), suggested);
  EXPECT_EQ(neuron->edgeMode(), ImageEdgeMode::Zero);
}

TEST(NNDefaultPadding, InverseSwapsValidOnlyAndFull) {
  for (Align a : kAligns)
    for (Remainder r : kRemainders) {
      auto valid = NNDefaultPadding::paddingWithMethod(methodOf(a, r, Style::ValidOnly));
      auto full = NNDefaultPadding::paddingWithMethod(methodOf(a, r, Style::Full));
      auto same = NNDefaultPadding::paddingWithMethod(methodOf(a, r, Style::Same));
      ASSERT_NE(valid->inverse(), nullptr);
      EXPECT_EQ(valid->inverse()->paddingMethod(), methodOf(a, r, Style::Full));
      EXPECT_EQ(full->inverse()->paddingMethod(), methodOf(a, r, Style::ValidOnly));
      EXPECT_EQ(same->inverse()->paddingMethod(), methodOf(a, r, Style::Same));
      EXPECT_EQ(valid->inverse()->inverse()->paddingMethod(), valid->paddingMethod());
    }
  // Flags survive the inversion.
  auto flagged = NNDefaultPadding::paddingWithMethod(M::SizeValidOnly | M::ExcludeEdges);
  EXPECT_EQ(flagged->inverse()->paddingMethod(), M::SizeFull | M::ExcludeEdges);
  auto tf = NNDefaultPadding::paddingForTensorflowAveragePoolingValidOnly();
  EXPECT_EQ(tf->inverse()->paddingMethod(),
            M::Custom | M::SizeFull | M::AlignCentered | M::AddRemainderToBottomRight);
}

TEST(NNDefaultPadding, KernelDefaultIsCenteredTopLeftSame) {
  auto neuron = CNNNeuron::make(test::device(), NNNeuronDescriptor::make(CNNNeuronType::None));
  ASSERT_NE(neuron->padding(), nullptr);
  EXPECT_EQ(neuron->padding()->paddingMethod(), M::AlignCentered | M::AddRemainderToTopLeft | M::SizeSame);
}

}  // namespace
}  // namespace mpsnn
