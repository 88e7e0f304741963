// CNNBinaryConvolution and CNNBinaryFullyConnected (spec 01 §7, §8): every type with and without beta
// scaling, both constructors, input/output terms, edge modes (the edge value substituted before bias,
// scale and binarization — CHOICE, checked on hand-computed values), placement, formats and the
// fully-connected geometry and weight orders, against the float64 reference on random data; PyTorch
// parity with sign() / bit products computed in torch; every invalid case.
//
// Layouts: images NHWC; weights uint32 [Co][kH][kW][ceil(Ci/32)] (channel i = bit i % 32 of word
// i / 32). PyTorch cases (tests/pytorch/gen_binary_convolution.py) store x as NHWC, the weight words
// as doubles, the four term arrays, and y as NHWC.
#include "convolution_test_support.h"

namespace mpsnn::test {
namespace {

using Type = CNNBinaryConvolutionType;
using Flags = CNNBinaryConvolutionFlags;

ref::UnaryPlacement placementOf(const CNNKernel& k) {
  return {k.offset(),
          k.clipRect(),
          k.sourceFeatureChannelOffset(),
          k.sourceFeatureChannelMaxCount(),
          k.destinationFeatureChannelOffset(),
          k.edgeMode()};
}

/// A UInt32 data source with random bit words (bits beyond Ci set too: they must be ignored).
std::shared_ptr<TestSource> makeBinarySource(const CNNConvolutionDescriptor& d, bool bias = true) {
  auto s = std::make_shared<TestSource>();
  s->desc = d;
  s->type = DataType::UInt32;
  const uint64_t words = (d.inputFeatureChannels() + 31) / 32;
  std::uniform_int_distribution<uint32_t> bits;
  for (uint64_t i = 0; i < d.outputFeatureChannels() * d.kernelHeight() * d.kernelWidth() * words; ++i)
    s->words.push_back(bits(rng()));
  if (bias)
    for (double v : randomValues(d.outputFeatureChannels(), -0.5, 0.5)) s->bias.push_back(float(v));
  return s;
}

std::vector<double> asDoubles(const std::vector<float>& v) { return {v.begin(), v.end()}; }
std::vector<float> randomFloats(uint64_t n, double lo, double hi) {
  std::vector<float> out;
  for (double v : randomValues(n, lo, hi)) out.push_back(float(v));
  return out;
}

/// The §7 reference for `spec` at kernel `k`'s placement; the magnitude bounds |S·scale·beta| + |bias|
/// by the same kernel on non-negative inputs: all weight bits set, AND counting every tap (XNOR, AND),
/// or BinaryWeights summing |in'| (BinaryWeights).
auto binaryReference(const ref::BinaryConvolutionSpec& spec, const CNNKernel& k, const RefImage& src) {
  const ref::UnaryPlacement placement = placementOf(k);
  return [=](const RefImage& poisoned) {
    Reference r;
    r.expected = poisoned;
    ref::binaryConvolutionKernel(spec, placement, src, r.expected);
    ref::BinaryConvolutionSpec bound = spec;
    bound.desc.setFusedNeuronDescriptor(NNNeuronDescriptor());
    if (spec.type != Type::BinaryWeights) bound.type = Type::AND;
    std::fill(bound.weights.begin(), bound.weights.end(), 0xffffffffu);
    for (auto* v : {&bound.outputBias, &bound.outputScale, &bound.inputBias, &bound.inputScale})
      for (double& x : *v) x = std::fabs(x);
    RefImage absSrc = src;
    for (double& v : absSrc.data) v = std::fabs(v);
    r.magnitude = poisoned;
    std::fill(r.magnitude.data.begin(), r.magnitude.data.end(), -1.0);
    ref::binaryConvolutionKernel(bound, placement, absSrc, r.magnitude);
    return r;
  };
}

/// The terms a kernel built by constructor 1 (scaleValue) uses.
ref::BinaryConvolutionSpec specOf(const TestSource& s, float scale, Type type, Flags flags) {
  ref::BinaryConvolutionSpec spec;
  spec.desc = s.desc;
  spec.weights = s.words;
  spec.type = type;
  spec.betaScaling = flags == Flags::UseBetaScaling;
  const uint64_t co = s.desc.outputFeatureChannels(), ci = s.desc.inputFeatureChannels();
  spec.outputScale.assign(co, double(scale));
  spec.outputBias = s.bias.empty() ? std::vector<double>(co, 0.0) : asDoubles(s.bias);
  spec.inputBias.assign(ci, 0.0);
  spec.inputScale.assign(ci, 1.0);
  return spec;
}

struct Terms {
  std::vector<float> outputBias, outputScale, inputBias, inputScale;  // empty: null (the default)
};
Terms randomTerms(uint64_t ci, uint64_t co) {
  return {randomFloats(co, -0.5, 0.5), randomFloats(co, -2, 2), randomFloats(ci, -0.3, 0.3),
          randomFloats(ci, 0.5, 2)};
}
/// The terms a kernel built by constructor 2 uses (null arrays → 0, 1, 0, 1).
ref::BinaryConvolutionSpec specOf(const TestSource& s, const Terms& t, Type type, Flags flags) {
  ref::BinaryConvolutionSpec spec;
  spec.desc = s.desc;
  spec.weights = s.words;
  spec.type = type;
  spec.betaScaling = flags == Flags::UseBetaScaling;
  const uint64_t co = s.desc.outputFeatureChannels(), ci = s.desc.inputFeatureChannels();
  auto orDefault = [](const std::vector<float>& v, uint64_t n, double fallback) {
    return v.empty() ? std::vector<double>(n, fallback) : asDoubles(v);
  };
  spec.outputBias = orDefault(t.outputBias, co, 0.0);
  spec.outputScale = orDefault(t.outputScale, co, 1.0);
  spec.inputBias = orDefault(t.inputBias, ci, 0.0);
  spec.inputScale = orDefault(t.inputScale, ci, 1.0);
  return spec;
}
const float* ptr(const std::vector<float>& v) { return v.empty() ? nullptr : v.data(); }

/// Runs `kernel` from `src` into `dst` (poisoned first) and compares with the reference. Binary
/// convolutions have one implementation per device; MPSNN_FORCE_PLAIN changes nothing.
void check(CNNKernel& kernel, const ref::BinaryConvolutionSpec& spec, const RefImage& srcRef,
           const ImagePtr& src, const ImagePtr& dst, double lipschitz = 1.0) {
  const RefImage poisoned = poison(*dst);
  runAndWait([&](CommandBufferPtr cb) { kernel.encode(cb, src, dst); });
  const Reference r = binaryReference(spec, kernel, srcRef)(poisoned);
  EXPECT_TRUE(
      matches(download(*dst), r, src->featureChannelFormat(), dst->featureChannelFormat(), lipschitz));
}

std::string describeBinary(const CNNConvolutionDescriptor& d, Type type, Flags flags) {
  const char* names[] = {"BinaryWeights", "XNOR", "AND"};
  return describe(d) + " " + names[uint32_t(type)] + (flags == Flags::UseBetaScaling ? " beta" : "");
}

// =============================================================================================
// CNNBinaryConvolution: numerics

TEST(CNNBinaryConvolution, EveryTypeBetaScalingAndBothConstructors) {
  struct S {
    uint64_t kw, kh, ci, co, sx, sy, dx, dy;
  };
  const S shapes[] = {{3, 3, 5, 4, 1, 1, 1, 1}, {1, 1, 32, 3, 1, 1, 1, 1}, {3, 3, 33, 5, 2, 2, 1, 1},
                      {2, 2, 1, 7, 1, 1, 1, 1}, {5, 3, 70, 2, 1, 2, 1, 1}, {3, 3, 31, 6, 1, 1, 2, 2},
                      {4, 2, 17, 3, 2, 1, 1, 1}};
  int i = 0;
  for (const S& s : shapes) {
    for (Type type : {Type::BinaryWeights, Type::XNOR, Type::AND}) {
      for (Flags flags : {Flags::None, Flags::UseBetaScaling}) {
        auto d = conv(s.kw, s.kh, s.ci, s.co, s.sx, s.sy, s.dx, s.dy);
        auto source = makeBinarySource(d, i % 2 == 0);
        const int64_t n = 1 + i % 2, h = 5 + i % 3, w = 6 + i % 2;
        RefImage srcRef = randomRefImage(n, h, w, int64_t(s.ci));
        roundTo(srcRef, Fmt::Float32);
        auto src = makeImage(srcRef);
        auto dst = Image::make(
            device(),
            ImageDescriptor::make(Fmt::Float32, uint64_t((w + int64_t(s.sx) - 1) / int64_t(s.sx)),
                                  uint64_t((h + int64_t(s.sy) - 1) / int64_t(s.sy)), s.co, uint64_t(n)));
        SCOPED_TRACE(describeBinary(d, type, flags));
        {  // constructor 1: one output scale, bias from the data source
          const float scale = 0.37f;
          CNNBinaryConvolution k(device(), source, scale, type, flags);
          check(k, specOf(*source, scale, type, flags), srcRef, src, dst);
        }
        {  // constructor 2: per-channel terms
          const Terms t = randomTerms(s.ci, s.co);
          CNNBinaryConvolution k(device(), source, ptr(t.outputBias), ptr(t.outputScale), ptr(t.inputBias),
                                 ptr(t.inputScale), type, flags);
          check(k, specOf(*source, t, type, flags), srcRef, src, dst);
        }
        ++i;
      }
    }
  }
}

TEST(CNNBinaryConvolution, NullTermArraysMeanNeutralValues) {
  auto d = conv(3, 3, 6, 4);
  auto source = makeBinarySource(d);  // its biasTerms are ignored by constructor 2 (CHOICE)
  RefImage srcRef = randomRefImage(2, 5, 5, 6);
  roundTo(srcRef, Fmt::Float32);
  auto src = makeImage(srcRef);
  auto dst = Image::make(device(), ImageDescriptor::make(Fmt::Float32, 5, 5, 4, 2));
  const Terms full = randomTerms(6, 4);
  for (int mask = 0; mask < 16; ++mask) {
    Terms t;
    if (mask & 1) t.outputBias = full.outputBias;
    if (mask & 2) t.outputScale = full.outputScale;
    if (mask & 4) t.inputBias = full.inputBias;
    if (mask & 8) t.inputScale = full.inputScale;
    CNNBinaryConvolution k(device(), source, ptr(t.outputBias), ptr(t.outputScale), ptr(t.inputBias),
                           ptr(t.inputScale), Type::XNOR, Flags::UseBetaScaling);
    SCOPED_TRACE("terms mask " + std::to_string(mask));
    check(k, specOf(*source, t, Type::XNOR, Flags::UseBetaScaling), srcRef, src, dst);
  }
}

TEST(CNNBinaryConvolution, EdgeValueSubstitutedBeforeBinarizationChoice) {
  // 1 channel, 3 × 1 kernel, every weight +1 (bits 1), XNOR, source (0.5, 0.25) of width 2.
  // Zero edge: the padded pixel is 0 before the input bias. With input bias 0 it binarizes to +1
  // (0 is not negative); with input bias −0.375 the pixels become (0.125, −0.125) and the padding
  // −0.375: bins (+1, −1) and −1.
  auto d = conv(3, 1, 1, 1);
  auto source = makeBinarySource(d, false);
  source->words = {0x7u, 0x7u, 0x7u};
  RefImage in(1, 1, 2, 1);
  in.data = {0.5, 0.25};
  auto src = makeImage(in);
  auto dst = Image::make(device(), ImageDescriptor::make(Fmt::Float32, 2, 1, 1));
  auto run = [&](float inputBias, ImageEdgeMode edge, Flags flags) {
    CNNBinaryConvolution k(device(), source, nullptr, nullptr, &inputBias, nullptr, Type::XNOR, flags);
    k.setEdgeMode(edge);
    runAndWait([&](CommandBufferPtr cb) { k.encode(cb, src, dst); });
    return download(*dst).data;
  };
  // x = 0 reads (pad, 0.5, 0.25); x = 1 reads (0.5, 0.25, pad).
  EXPECT_EQ(run(0.0f, ImageEdgeMode::Zero, Flags::None), (std::vector<double>{3, 3}));
  EXPECT_EQ(run(-0.375f, ImageEdgeMode::Zero, Flags::None), (std::vector<double>{-1, -1}));
  // Clamp: the padding repeats the edge pixel, then the bias applies: (+1 +1 −1) and (+1 −1 −1).
  EXPECT_EQ(run(-0.375f, ImageEdgeMode::Clamp, Flags::None), (std::vector<double>{1, -1}));
  // Beta: the padded pixel counts |0 + bias| = 0.375: x = 0: (0.375 + 0.125 + 0.125) / 3.
  const auto beta = run(-0.375f, ImageEdgeMode::Zero, Flags::UseBetaScaling);
  EXPECT_FLOAT_EQ(float(beta[0]), -1.0f * 0.625f / 3.0f);
  EXPECT_FLOAT_EQ(float(beta[1]), -1.0f * 0.625f / 3.0f);
}

TEST(CNNBinaryConvolution, PlacementEdgesAndChannelRanges) {
  struct P {
    const char* what;
    Offset offset;
    IntRegion clip;
    uint64_t srcOffset, dstOffset;
    int64_t c, dstC, n, dstN;
    ImageEdgeMode edge;
  };
  const P cases[] = {
      {"negative offset, Zero", {-2, -1, 0}, RectNoClip, 0, 0, 5, 4, 1, 1, ImageEdgeMode::Zero},
      {"negative offset, Clamp", {-2, -1, 0}, RectNoClip, 0, 0, 5, 4, 1, 1, ImageEdgeMode::Clamp},
      {"far offset, Clamp", {9, 8, 0}, RectNoClip, 0, 0, 5, 4, 1, 1, ImageEdgeMode::Clamp},
      {"clip and z ranges", {1, 0, 1}, {{1, 2, 1}, {3, 100, 2}}, 0, 0, 5, 4, 3, 3, ImageEdgeMode::Zero},
      {"channel ranges", {0, 0, 0}, RectNoClip, 2, 3, 9, 8, 2, 2, ImageEdgeMode::Clamp},
  };
  auto d = conv(3, 3, 5, 4, 1, 1);
  d.setFusedNeuronDescriptor(NNNeuronDescriptor::make(CNNNeuronType::ReLU, 0.1f));
  auto source = makeBinarySource(d);
  for (const P& pc : cases) {
    for (Type type : {Type::BinaryWeights, Type::XNOR, Type::AND}) {
      const Terms t = randomTerms(5, 4);
      CNNBinaryConvolution k(device(), source, ptr(t.outputBias), ptr(t.outputScale), ptr(t.inputBias),
                             ptr(t.inputScale), type, Flags::UseBetaScaling);
      k.setOffset(pc.offset);
      k.setClipRect(pc.clip);
      k.setSourceFeatureChannelOffset(pc.srcOffset);
      k.setDestinationFeatureChannelOffset(pc.dstOffset);
      k.setEdgeMode(pc.edge);
      RefImage srcRef = randomRefImage(pc.n, 6, 7, pc.c);
      roundTo(srcRef, Fmt::Float32);
      auto src = makeImage(srcRef);
      auto dst = Image::make(device(),
                             ImageDescriptor::make(Fmt::Float32, 7, 6, uint64_t(pc.dstC), uint64_t(pc.dstN)));
      SCOPED_TRACE(std::string(pc.what) + " type " + std::to_string(uint32_t(type)));
      check(k, specOf(*source, t, type, Flags::UseBetaScaling), srcRef, src, dst);
    }
  }
}

TEST(CNNBinaryConvolution, ImageFormatsAndNeurons) {
  const std::pair<Fmt, Fmt> formats[] = {{Fmt::Float16, Fmt::Float16},
                                         {Fmt::Unorm8, Fmt::Float32},
                                         {Fmt::Float32, Fmt::Unorm8},
                                         {Fmt::BFloat16, Fmt::Float16}};
  for (auto [sf, df] : formats) {
    auto d = conv(3, 3, 7, 5);
    d.setFusedNeuronDescriptor(NNNeuronDescriptor::make(CNNNeuronType::Sigmoid));
    auto source = makeBinarySource(d);
    const Terms t = randomTerms(7, 5);
    CNNBinaryConvolution k(device(), source, ptr(t.outputBias), ptr(t.outputScale), ptr(t.inputBias),
                           ptr(t.inputScale), Type::BinaryWeights, Flags::None);
    const bool unorm = sf == Fmt::Unorm8;
    RefImage srcRef = randomRefImage(2, 5, 6, 7, unorm ? 0.0 : -1.0, 1.0);
    roundTo(srcRef, sf);
    auto src = makeImage(srcRef, sf);
    auto dst = Image::make(device(), ImageDescriptor::make(df, 6, 5, 5, 2));
    SCOPED_TRACE(toString(sf) + " -> " + toString(df));
    check(k, specOf(*source, t, Type::BinaryWeights, Flags::None), srcRef, src, dst);
  }
  for (const auto& nc : everyNeuron(4)) {
    auto d = conv(3, 3, 6, 4);
    d.setFusedNeuronDescriptor(nc.neuron);
    auto source = makeBinarySource(d);
    CNNBinaryConvolution k(device(), source, 0.05f, Type::XNOR, Flags::UseBetaScaling);
    RefImage srcRef = randomRefImage(1, 5, 5, 6);
    roundTo(srcRef, Fmt::Float32);
    auto src = makeImage(srcRef);
    auto dst = Image::make(device(), ImageDescriptor::make(Fmt::Float32, 5, 5, 4));
    SCOPED_TRACE(describe(d));
    check(k, specOf(*source, 0.05f, Type::XNOR, Flags::UseBetaScaling), srcRef, src, dst, nc.lipschitz);
  }
}

TEST(CNNBinaryConvolution, AutoModeAndEncodeBatch) {
  auto d = conv(3, 3, 4, 3, 2, 2);
  auto source = makeBinarySource(d);
  auto k = CNNBinaryConvolution::make(device(), source, 0.5f, Type::AND, Flags::None);
  EXPECT_EQ(uint32_t(k->padding()->paddingMethod()), 16u);  // SizeSame default, as convolution
  k->setDestinationImageAllocator(Image::defaultAllocator());
  ImageBatch sources;
  std::vector<RefImage> refs;
  for (int i = 0; i < 2; ++i) {
    refs.push_back(randomRefImage(1, 7, 6, 4));
    roundTo(refs.back(), Fmt::Float32);
    sources.push_back(makeImage(refs.back()));
  }
  ImageBatch results;
  runAndWait([&](CommandBufferPtr cb) { results = k->encodeBatch(cb, sources); });
  ASSERT_EQ(results.size(), 2u);
  for (int i = 0; i < 2; ++i) {
    EXPECT_EQ(results[size_t(i)]->width(), 3u);
    EXPECT_EQ(results[size_t(i)]->height(), 4u);
    RefImage zero(1, 4, 3, 3);
    auto expect = binaryReference(specOf(*source, 0.5f, Type::AND, Flags::None), *k, refs[size_t(i)]);
    EXPECT_TRUE(matches(download(*results[size_t(i)]), expect(zero), Fmt::Float32, Fmt::Float32));
  }
}

TEST(CNNBinaryConvolution, PropertiesAndDefaults) {
  auto d = conv(5, 3, 40, 9, 2, 1, 1, 2);
  auto source = makeBinarySource(d);
  source->name = "bin1";
  auto k = CNNBinaryConvolution::make(device(), source, 1.0f, Type::XNOR, Flags::UseBetaScaling);
  EXPECT_STREQ(k->className(), "CNNBinaryConvolution");
  EXPECT_EQ(k->label(), "bin1");
  EXPECT_EQ(k->inputFeatureChannels(), 40u);
  EXPECT_EQ(k->outputFeatureChannels(), 9u);
  EXPECT_EQ(k->kernelWidth(), 5u);
  EXPECT_EQ(k->strideInPixelsX(), 2u);
  EXPECT_EQ(k->dilationRateY(), 2u);
  EXPECT_EQ(k->type(), Type::XNOR);
  EXPECT_EQ(k->flags(), Flags::UseBetaScaling);
  EXPECT_EQ(k->dataSource(), source);
  EXPECT_EQ(source->loads, source->purges);
  EXPECT_EQ(source->accessesWhileUnloaded, 0);
}

// =============================================================================================
// CNNBinaryConvolution: invalid configurations

TEST(CNNBinaryConvolution, InvalidConstruction) {
  expectInvalid([] { CNNBinaryConvolution::make(device(), nullptr, 1.0f, Type::XNOR, Flags::None); },
                {"CNNBinaryConvolution", "dataSource"});
  struct Bad {
    const char* what;
    std::function<void(TestSource&)> spoil;
    Type type;
    Flags flags;
    std::vector<const char*> words;
  };
  auto sub = CNNSubPixelConvolutionDescriptor::make(3, 3, 4, 8);
  sub.setSubPixelScaleFactor(2);
  const Bad cases[] = {
      {"groups", [](TestSource& s) { s.desc.setGroups(2); }, Type::XNOR, Flags::None, {"groups", "2"}},
      {"dataType Float32",
       [](TestSource& s) { s.type = DataType::Float32; },
       Type::XNOR,
       Flags::None,
       {"dataType", "Float32", "UInt32"}},
      {"type 3", [](TestSource&) {}, Type(3), Flags::None, {"type", "3"}},
      {"flags 2", [](TestSource&) {}, Type::AND, Flags(2), {"flags", "2"}},
      {"null weights", [](TestSource& s) { s.nullWeights = true; }, Type::AND, Flags::None, {"weights"}},
      {"load fails", [](TestSource& s) { s.loadResult = false; }, Type::AND, Flags::None, {"load"}},
      {"layout",
       [](TestSource& s) { s.layout = CNNConvolutionWeightsLayout(1); },
       Type::AND,
       Flags::None,
       {"weightsLayout", "1"}},
      {"sub-pixel",
       [&](TestSource& s) { s.desc = sub; },
       Type::AND,
       Flags::None,
       {"subPixelScaleFactor", "2"}},
      {"depthwise",
       [](TestSource& s) { s.desc = CNNDepthWiseConvolutionDescriptor::make(3, 3, 4, 4); },
       Type::AND,
       Flags::None,
       {"CNNDepthWiseConvolutionDescriptor"}},
      {"descriptor rules",
       [](TestSource& s) { s.desc.setStrideInPixelsX(0); },
       Type::AND,
       Flags::None,
       {"strideInPixelsX", "0"}},
  };
  for (const Bad& b : cases) {
    SCOPED_TRACE(b.what);
    auto source = makeBinarySource(conv(3, 3, 4, 4));
    source->words.resize(1024, 1u);
    b.spoil(*source);
    for (int form = 0; form < 2; ++form) {
      try {
        if (form == 0)
          CNNBinaryConvolution::make(device(), source, 1.0f, b.type, b.flags);
        else
          CNNBinaryConvolution::make(device(), source, nullptr, nullptr, nullptr, nullptr, b.type, b.flags);
        ADD_FAILURE() << "accepted";
      } catch (const InvalidArgument& e) {
        const std::string msg = e.what();
        EXPECT_NE(msg.find("CNNBinaryConvolution"), std::string::npos) << msg;
        for (const char* w : b.words) EXPECT_NE(msg.find(w), std::string::npos) << msg;
      }
    }
    EXPECT_EQ(source->loads, source->purges + (source->loadResult ? 0 : 2));
  }
}

TEST(CNNBinaryConvolution, InvalidEncodesThrowAndWriteNothing) {
  auto d = conv(3, 3, 4, 6);
  auto source = makeBinarySource(d);
  auto src = makeImage(randomRefImage(1, 6, 6, 4));
  struct Bad {
    const char* what;
    std::function<void(CNNBinaryConvolution&)> setup;
    std::function<ImagePtr()> source;
    std::function<ImagePtr()> destination;
    std::vector<const char*> words;
  };
  auto none = [](CNNBinaryConvolution&) {};
  auto dst6 = [] { return Image::make(device(), ImageDescriptor::make(Fmt::Float32, 6, 6, 6)); };
  const Bad cases[] = {
      {"too few source channels",
       none,
       [] { return makeImage(randomRefImage(1, 6, 6, 3)); },
       dst6,
       {"inputFeatureChannels = 4"}},
      {"destination too narrow",
       none,
       [&] { return src; },
       [] { return Image::make(device(), ImageDescriptor::make(Fmt::Float32, 6, 6, 5)); },
       {"destination featureChannels = 5"}},
      {"edge mode Constant",
       [](CNNBinaryConvolution& k) { k.setEdgeMode(ImageEdgeMode::Constant); },
       [&] { return src; },
       dst6,
       {"edgeMode", "Constant"}},
      {"offset out of range",
       [](CNNBinaryConvolution& k) {
         k.setOffset({0, -(int64_t(1) << 45), 0});
       },
       [&] { return src; },
       dst6,
       {"offset.y"}},
      {"clip z beyond the destination",
       [](CNNBinaryConvolution& k) {
         k.setClipRect({{0, 0, 1}, {6, 6, 1}});
       },
       [&] { return src; },
       dst6,
       {"clipRect"}},
  };
  for (const Bad& b : cases) {
    SCOPED_TRACE(b.what);
    auto k = CNNBinaryConvolution::make(device(), source, 1.0f, Type::XNOR, Flags::None);
    b.setup(*k);
    expectEncodeRejected(*k, "CNNBinaryConvolution", b.source(), b.destination(), b.words);
  }
}

// =============================================================================================
// CNNBinaryFullyConnected

TEST(CNNBinaryFullyConnected, EveryTypeAndWeightOrder) {
  struct S {
    uint64_t w, h, ci, co;
    int64_t n;
  };
  const S shapes[] = {{1, 1, 40, 5, 2}, {3, 4, 5, 6, 1}, {5, 2, 33, 3, 3}, {4, 4, 1, 7, 2}};
  for (const S& s : shapes) {
    for (Type type : {Type::BinaryWeights, Type::XNOR, Type::AND}) {
      for (auto order : {FullyConnectedWeightOrder::OHWI, FullyConnectedWeightOrder::OWHI}) {
        auto d = CNNConvolutionDescriptor::make(s.w, s.h, s.ci, s.co);
        auto source = makeBinarySource(d);
        const Terms t = randomTerms(s.ci, s.co);
        CNNBinaryFullyConnected k(device(), source, ptr(t.outputBias), ptr(t.outputScale), ptr(t.inputBias),
                                  ptr(t.inputScale), type, Flags::UseBetaScaling);
        k.setWeightOrder(order);
        EXPECT_EQ(k.weightOrder(), order);
        k.setOffset({-5, 9, 0});  // ignored: the window is the whole source
        auto spec = specOf(*source, t, type, Flags::UseBetaScaling);
        spec.fullyConnected = true;
        spec.widthMajor = order == FullyConnectedWeightOrder::OWHI;
        RefImage srcRef = randomRefImage(s.n, int64_t(s.h), int64_t(s.w), int64_t(s.ci));
        roundTo(srcRef, Fmt::Float32);
        auto src = makeImage(srcRef);
        auto dst = Image::make(device(), ImageDescriptor::make(Fmt::Float32, 1, 1, s.co, uint64_t(s.n)));
        SCOPED_TRACE(describeBinary(d, type, Flags::UseBetaScaling) + " order " +
                     std::to_string(uint32_t(order)));
        check(k, spec, srcRef, src, dst);
      }
    }
  }
}

TEST(CNNBinaryFullyConnected, ClipAutoModeAndDefaults) {
  auto d = CNNConvolutionDescriptor::make(3, 2, 9, 4);
  auto source = makeBinarySource(d);
  auto k = CNNBinaryFullyConnected::make(device(), source, 0.25f, Type::XNOR, Flags::None);
  EXPECT_STREQ(k->className(), "CNNBinaryFullyConnected");
  EXPECT_EQ(uint32_t(k->padding()->paddingMethod()), 0u);  // SizeValidOnly (spec 01 §8)
  RefImage srcRef = randomRefImage(2, 2, 3, 9);
  roundTo(srcRef, Fmt::Float32);
  auto src = makeImage(srcRef);
  auto spec = specOf(*source, 0.25f, Type::XNOR, Flags::None);
  spec.fullyConnected = true;
  // A 1 × 1 clip inside a larger destination, with a destination channel offset.
  k->setClipRect({{2, 1, 0}, {1, 1, 2}});
  k->setDestinationFeatureChannelOffset(1);
  auto dst = Image::make(device(), ImageDescriptor::make(Fmt::Float32, 4, 3, 6, 2));
  check(*k, spec, srcRef, src, dst);
  // Auto mode: 1 × 1 × Co.
  k->setClipRect(RectNoClip);
  k->setDestinationFeatureChannelOffset(0);
  k->setDestinationImageAllocator(Image::defaultAllocator());
  ImagePtr result;
  runAndWait([&](CommandBufferPtr cb) { result = k->encode(cb, src); });
  EXPECT_EQ(result->width(), 1u);
  EXPECT_EQ(result->height(), 1u);
  EXPECT_EQ(result->featureChannels(), 4u);
}

TEST(CNNBinaryFullyConnected, InvalidConfigurations) {
  struct Bad {
    const char* what;
    CNNConvolutionDescriptor desc;
    std::vector<const char*> words;
  };
  const Bad cases[] = {
      {"stride", conv(3, 3, 4, 4, 2, 2), {"strideInPixelsX", "2"}},
      {"dilation", conv(3, 3, 4, 4, 1, 1, 1, 3), {"dilationRateY", "3"}},
      {"groups", conv(3, 3, 4, 4, 1, 1, 1, 1, 2), {"groups", "2"}},
  };
  for (const Bad& b : cases) {
    SCOPED_TRACE(b.what);
    auto source = makeBinarySource(b.desc);
    expectInvalid([&] { CNNBinaryFullyConnected::make(device(), source, 1.0f, Type::XNOR, Flags::None); },
                  {"CNNBinaryFullyConnected", b.words[0], b.words[1]});
  }
  auto source = makeBinarySource(CNNConvolutionDescriptor::make(3, 2, 4, 5));
  auto k = CNNBinaryFullyConnected::make(device(), source, 1.0f, Type::XNOR, Flags::None);
  expectInvalid([&] { k->setWeightOrder(FullyConnectedWeightOrder(9)); },
                {"CNNBinaryFullyConnected", "setWeightOrder", "9"});
  struct BadEncode {
    const char* what;
    int64_t h, w;
    uint64_t dstW;
    std::vector<const char*> words;
  };
  const BadEncode encodes[] = {
      {"source width", 2, 4, 1, {"source width = 4", "kernelWidth = 3"}},
      {"source height", 3, 3, 1, {"source height = 3", "kernelHeight = 2"}},
      {"destination 2 wide", 2, 3, 2, {"clipRect", "2 x 1"}},
  };
  for (const BadEncode& b : encodes) {
    SCOPED_TRACE(b.what);
    auto src = makeImage(randomRefImage(1, b.h, b.w, 4));
    auto dst = Image::make(device(), ImageDescriptor::make(Fmt::Float32, b.dstW, 1, 5));
    const RefImage poisoned = poison(*dst);
    runAndWait([&](CommandBufferPtr cb) {
      expectInvalid([&] { k->encode(cb, src, dst); }, {"CNNBinaryFullyConnected", b.words[0], b.words[1]});
    });
    expectUntouched(*dst, poisoned);
  }
}

// =============================================================================================
// PyTorch parity: sign() / bit products and conv2d computed in torch (float64).

TEST(CNNBinaryConvolution, PyTorchParity) {
  const auto cases = readTorchCases("binary_convolution.txt");
  for (const auto& tc : cases) {
    SCOPED_TRACE(tc.name);
    auto sc = [&](const char* k) { return int64_t(tc.scalars.at(k)); };
    const auto& xs = tc.shapes.at("x");
    const auto& ys = tc.shapes.at("y");
    const int64_t n = xs[0], H = xs[1], W = xs[2], Ci = xs[3], Co = ys[3];
    auto d = conv(uint64_t(sc("kernelX")), uint64_t(sc("kernelY")), uint64_t(Ci), uint64_t(Co),
                  uint64_t(sc("strideX")), uint64_t(sc("strideY")), uint64_t(sc("dilationX")),
                  uint64_t(sc("dilationY")));
    auto source = makeBinarySource(d, false);
    source->words.clear();
    for (double v : tc.arrays.at("w")) source->words.push_back(uint32_t(v));
    auto floats = [&](const char* key) {
      std::vector<float> v;
      for (double x : tc.arrays.at(key)) v.push_back(float(x));
      return v;
    };
    const Terms t{floats("outputBias"), floats("outputScale"), floats("inputBias"), floats("inputScale")};
    const Type type = Type(sc("type"));
    const Flags flags = sc("beta") ? Flags::UseBetaScaling : Flags::None;
    CNNBinaryConvolution k(device(), source, t.outputBias.data(), t.outputScale.data(), t.inputBias.data(),
                           t.inputScale.data(), type, flags);
    // PyTorch zero padding p ↔ offset floor(kd/2) − p with edgeMode Zero (padding before the bias).
    const int64_t kWd = (sc("kernelX") - 1) * sc("dilationX") + 1,
                  kHd = (sc("kernelY") - 1) * sc("dilationY") + 1;
    k.setOffset({kWd / 2 - sc("padX"), kHd / 2 - sc("padY"), 0});
    RefImage x(n, H, W, Ci);
    x.data = tc.arrays.at("x");
    auto src = makeImage(x);
    auto dst = Image::make(device(), ImageDescriptor::make(Fmt::Float32, uint64_t(ys[2]), uint64_t(ys[1]),
                                                           uint64_t(Co), uint64_t(n)));
    const RefImage poisoned = poison(*dst);
    runAndWait([&](CommandBufferPtr cb) { k.encode(cb, src, dst); });
    Reference r = binaryReference(specOf(*source, t, type, flags), k, x)(poisoned);
    const RefImage actual = download(*dst);
    EXPECT_TRUE(matches(actual, r, Fmt::Float32, Fmt::Float32));
    r.expected.data = tc.arrays.at("y");  // PyTorch's own result
    EXPECT_TRUE(matches(actual, r, Fmt::Float32, Fmt::Float32));
  }
}

}  // namespace
}  // namespace mpsnn::test
