// CNNFullyConnected (spec 01 §5): the GEMM fast path (oneDNN sgemm / cuBLAS), the convolution fast
// paths for other views, and the plain path against the float64 reference of §5 on random data;
// the OHWI / OWHI weight orders; PyTorch parity with linear() on a flattened NCHW input; every
// invalid case.
//
// Layouts: images NHWC; weights OHWI W[o][y][x][i] (OWHI W[o][x][y][i] after setWeightOrder).
// PyTorch cases (tests/pytorch/gen_fully_connected.py) store x as NHWC, w in the data source's
// order, b as [Co] and y as [n][Co].
#include "convolution_test_support.h"

namespace mpsnn::test {
namespace {

std::string gemmPath() { return onCuda() ? "cuda:cublas" : "cpu:gemm"; }

ref::UnaryPlacement placementOf(const CNNKernel& k) {
  return {k.offset(),
          k.clipRect(),
          k.sourceFeatureChannelOffset(),
          k.sourceFeatureChannelMaxCount(),
          k.destinationFeatureChannelOffset(),
          k.edgeMode()};
}

/// The §5 reference for kernel `k` (its placement as set) on `src`.
auto fullyConnectedReference(const CNNFullyConnected& k, const CNNConvolutionDescriptor& desc,
                             const ref::ConvolutionWeights& w, const RefImage& src) {
  const ref::UnaryPlacement placement = placementOf(k);
  const bool widthMajor = k.weightOrder() == FullyConnectedWeightOrder::OWHI;
  return [=](const RefImage& poisoned) {
    auto run = [&](const NNNeuronDescriptor& neuron, const ref::ConvolutionWeights& weights,
                   const RefImage& in, RefImage& out) {
      CNNConvolutionDescriptor d = desc;
      d.setFusedNeuronDescriptor(neuron);
      ref::fullyConnectedKernel(d, weights, widthMajor, placement, in, out);
    };
    return referenceOf(run, desc.fusedNeuronDescriptor(), w, src, poisoned);
  };
}

/// One fully-connected case: descriptor (kW = source width, kH = source height), images, placement.
struct Case {
  CNNConvolutionDescriptor desc;
  bool bias = true;
  int64_t n = 1, c = 0;  // source images and channels (0: inputFeatureChannels)
  Fmt srcFormat = Fmt::Float32, dstFormat = Fmt::Float32;
  int64_t dstN = 0, dstH = 1, dstW = 1, dstC = 0;  // 0: n, channels written
  Offset offset{};
  IntRegion clip = RectNoClip;
  uint64_t srcChannelOffset = 0, srcChannelMaxCount = UINT64_MAX, dstChannelOffset = 0;
  ImageEdgeMode edge = ImageEdgeMode::Zero;
  FullyConnectedWeightOrder order = FullyConnectedWeightOrder::OHWI;
  double lipschitz = 1.0;
  std::string wantFast;  // the implementation the default dispatch must choose ("" = any)
};

void runCase(const Case& k) {
  const auto& d = k.desc;
  auto source = makeSource(d, k.bias);
  auto fc = CNNFullyConnected::make(device(), source);
  fc->setWeightOrder(k.order);
  fc->setOffset(k.offset);
  fc->setClipRect(k.clip);
  fc->setSourceFeatureChannelOffset(k.srcChannelOffset);
  fc->setSourceFeatureChannelMaxCount(k.srcChannelMaxCount);
  fc->setDestinationFeatureChannelOffset(k.dstChannelOffset);
  fc->setEdgeMode(k.edge);
  const bool unormSource = k.srcFormat == Fmt::Unorm8 || k.srcFormat == Fmt::Unorm16;
  RefImage srcRef =
      randomRefImage(k.n, int64_t(d.kernelHeight()), int64_t(d.kernelWidth()),
                     k.c ? k.c : int64_t(d.inputFeatureChannels()), unormSource ? 0.0 : -1.0, 1.0);
  roundTo(srcRef, k.srcFormat);
  auto src = makeImage(srcRef, k.srcFormat);
  const int64_t dc = k.dstC ? k.dstC : int64_t(k.dstChannelOffset + d.outputFeatureChannels());
  auto dst = Image::make(device(), ImageDescriptor::make(k.dstFormat, uint64_t(k.dstW), uint64_t(k.dstH),
                                                         uint64_t(dc), uint64_t(k.dstN ? k.dstN : k.n)));
  checkFastAndPlain([&](const CommandBufferPtr& cb) { fc->encode(cb, src, dst); }, dst,
                    fullyConnectedReference(*fc, d, expectedWeights(*source), srcRef), k.srcFormat,
                    k.dstFormat, k.lipschitz, k.wantFast);
}

CNNConvolutionDescriptor fc(uint64_t w, uint64_t h, uint64_t ci, uint64_t co) {
  return CNNConvolutionDescriptor::make(w, h, ci, co);
}

// =============================================================================================
// Numerics

TEST(CNNFullyConnected, OddShapesBatchesAndTheGemmPath) {
  struct S {
    uint64_t w, h, ci, co;
    int64_t n;
  };
  const S shapes[] = {{1, 1, 1, 1, 1},  {1, 1, 17, 13, 3}, {3, 5, 7, 5, 2}, {7, 7, 3, 10, 1},
                      {5, 3, 13, 1, 4}, {2, 2, 64, 33, 2}, {4, 1, 5, 7, 3}, {1, 6, 3, 9, 1}};
  int i = 0;
  for (const S& s : shapes) {
    for (bool bias : {true, false}) {
      Case k;
      k.desc = fc(s.w, s.h, s.ci, s.co);
      k.n = s.n;
      k.bias = bias;
      k.wantFast = gemmPath();
      SCOPED_TRACE(describe(k.desc) + " n=" + std::to_string(s.n) + (bias ? " bias" : " no bias"));
      runCase(k);
      ++i;
    }
  }
}

TEST(CNNFullyConnected, WeightOrderOWHI) {
  for (auto [w, h] : {std::pair{3, 5}, std::pair{4, 4}, std::pair{6, 2}}) {
    for (auto order : {FullyConnectedWeightOrder::OWHI, FullyConnectedWeightOrder::OHWI}) {
      Case k;
      k.desc = fc(uint64_t(w), uint64_t(h), 5, 6);
      k.order = order;
      k.n = 2;
      k.wantFast = gemmPath();
      SCOPED_TRACE("w=" + std::to_string(w) + " h=" + std::to_string(h) + " order " +
                   std::to_string(uint32_t(order)));
      runCase(k);
    }
  }
  // The two orders differ for W, H > 1 and coincide when the source is one pixel wide or high.
  for (auto [w, h, differ] : {std::tuple{3, 4, true}, std::tuple{1, 5, false}, std::tuple{6, 1, false}}) {
    auto d = fc(uint64_t(w), uint64_t(h), 3, 4);
    auto source = makeSource(d);
    auto k = CNNFullyConnected::make(device(), source);
    const auto ohwi = k->effectiveWeights();
    k->setWeightOrder(FullyConnectedWeightOrder::OWHI);
    EXPECT_EQ(k->weightOrder(), FullyConnectedWeightOrder::OWHI);
    EXPECT_EQ(k->effectiveWeights() != ohwi, differ) << w << "x" << h;
    k->setWeightOrder(FullyConnectedWeightOrder::OHWI);  // and back
    EXPECT_EQ(k->effectiveWeights(), ohwi);
  }
}

TEST(CNNFullyConnected, OWHISurvivesReloadFromDataSource) {
  auto d = fc(3, 2, 4, 5);
  auto source = makeSource(d);
  auto k = CNNFullyConnected::make(device(), source);
  k->setWeightOrder(FullyConnectedWeightOrder::OWHI);
  for (float& w : source->floats) w = float(randomValues(1, -0.5, 0.5)[0]);
  k->reloadWeightsAndBiasesFromDataSource();
  RefImage srcRef = randomRefImage(2, 2, 3, 4);
  auto src = makeImage(srcRef);
  auto dst = Image::make(device(), ImageDescriptor::make(Fmt::Float32, 1, 1, 5, 2));
  checkFastAndPlain([&](const CommandBufferPtr& cb) { k->encode(cb, src, dst); }, dst,
                    fullyConnectedReference(*k, d, expectedWeights(*source), srcRef), Fmt::Float32,
                    Fmt::Float32);
}

TEST(CNNFullyConnected, LegacyFloatWeightsConstructor) {
  auto d = fc(2, 3, 4, 6);
  d.setFusedNeuronDescriptor(NNNeuronDescriptor::make(CNNNeuronType::TanH, 1.0f, 1.0f));
  auto source = makeSource(d);
  CNNFullyConnected k(device(), d, source->floats.data(), source->bias.data());
  EXPECT_EQ(k.dataSource(), nullptr);
  EXPECT_EQ(k.effectiveWeights(), source->floats);  // used as given: no float16 rounding
  ref::ConvolutionWeights w;
  for (float x : source->floats) w.weights.push_back(x);
  for (float x : source->bias) w.biases.push_back(x);
  for (auto order : {FullyConnectedWeightOrder::OHWI, FullyConnectedWeightOrder::OWHI}) {
    k.setWeightOrder(order);
    RefImage srcRef = randomRefImage(3, 3, 2, 4);
    auto src = makeImage(srcRef);
    auto dst = Image::make(device(), ImageDescriptor::make(Fmt::Float32, 1, 1, 6, 3));
    checkFastAndPlain([&](const CommandBufferPtr& cb) { k.encode(cb, src, dst); }, dst,
                      fullyConnectedReference(k, d, w, srcRef), Fmt::Float32, Fmt::Float32, 1.0, gemmPath());
  }
  expectInvalid([&] { CNNFullyConnected bad(device(), d, nullptr, nullptr); },
                {"CNNFullyConnected", "weights"});
}

TEST(CNNFullyConnected, EveryFusedNeuron) {
  for (const auto& nc : everyNeuron(7)) {
    Case k;
    k.desc = fc(3, 3, 5, 7);
    k.desc.setFusedNeuronDescriptor(nc.neuron);
    k.n = 2;
    k.lipschitz = nc.lipschitz;
    k.wantFast = gemmPath();
    SCOPED_TRACE(describe(k.desc));
    runCase(k);
  }
}

TEST(CNNFullyConnected, BatchNormalizationFolding) {
  auto d = fc(2, 2, 6, 5);
  auto mean = randomValues(5, -0.5, 0.5), var = randomValues(5, 0.2, 2.0), gamma = randomValues(5, -2, 2),
       beta = randomValues(5, -1, 1);
  std::vector<float> m(mean.begin(), mean.end()), v(var.begin(), var.end()), g(gamma.begin(), gamma.end()),
      b(beta.begin(), beta.end());
  d.setBatchNormalizationParametersForInference(m.data(), v.data(), g.data(), b.data(), 1e-3f);
  d.setFusedNeuronDescriptor(NNNeuronDescriptor::make(CNNNeuronType::ReLU));
  for (bool bias : {true, false}) {
    Case k;
    k.desc = d;
    k.bias = bias;
    k.n = 3;
    k.wantFast = gemmPath();
    runCase(k);
  }
}

TEST(CNNFullyConnected, PlacementClipChannelsAndIgnoredOffset) {
  Case base;
  base.desc = fc(3, 4, 5, 6);
  base.n = 2;
  std::vector<std::pair<const char*, Case>> cases;
  {
    Case k = base;  // offset is ignored: the window is always the whole source
    k.offset = {-7, 13, 0};
    k.wantFast = gemmPath();
    cases.push_back({"offset ignored", k});
  }
  {
    Case k = base;  // a 1 × 1 clip inside a larger destination, image range from the clip
    k.dstW = 4;
    k.dstH = 3;
    k.dstN = 4;
    k.clip = {{2, 1, 1}, {1, 1, 2}};
    k.wantFast = gemmPath();
    cases.push_back({"clip in a larger destination", k});
  }
  {
    Case k = base;  // offset.z picks the first source image
    k.n = 3;
    k.dstN = 2;
    k.offset = {0, 0, 1};
    k.wantFast = gemmPath();
    cases.push_back({"offset.z", k});
  }
  {
    Case k = base;  // destination channel range of a wider image
    k.dstChannelOffset = 3;
    k.dstC = 11;
    k.wantFast = gemmPath();
    cases.push_back({"destination channel offset", k});
  }
  {
    Case k = base;  // source channel range: strided pixels, not the GEMM's dense rows
    k.c = 9;
    k.srcChannelOffset = 2;
    cases.push_back({"source channel offset", k});
  }
  {
    Case k = base;  // sourceFeatureChannelMaxCount limits the read; C_read > Ci ignores the rest
    k.c = 8;
    k.srcChannelMaxCount = 6;
    cases.push_back({"max count and extra channels", k});
  }
  {
    Case k = base;  // Clamp changes nothing: no tap leaves the source
    k.edge = ImageEdgeMode::Clamp;
    k.wantFast = gemmPath();
    cases.push_back({"edge Clamp", k});
  }
  for (const auto& [what, k] : cases) {
    SCOPED_TRACE(what);
    runCase(k);
  }
}

TEST(CNNFullyConnected, ImageFormats) {
  const std::pair<Fmt, Fmt> formats[] = {{Fmt::Float16, Fmt::Float16},  {Fmt::Float32, Fmt::Float16},
                                         {Fmt::Float16, Fmt::Float32},  {Fmt::Unorm8, Fmt::Unorm8},
                                         {Fmt::BFloat16, Fmt::Float32}, {Fmt::Unorm16, Fmt::BFloat16}};
  for (auto [sf, df] : formats) {
    Case k;
    k.desc = fc(4, 3, 6, 5);
    k.srcFormat = sf;
    k.dstFormat = df;
    k.n = 2;
    if (df == Fmt::Unorm8 || df == Fmt::Unorm16)
      k.desc.setFusedNeuronDescriptor(NNNeuronDescriptor::make(CNNNeuronType::Sigmoid));
    // cuBLAS takes float16 sources too (float32 accumulation), into any destination format.
    if (onCuda() && sf == Fmt::Float16) k.wantFast = "cuda:cublas";
    SCOPED_TRACE(toString(sf) + " -> " + toString(df));
    runCase(k);
  }
}

TEST(CNNFullyConnected, EncodeBatchAndAutoMode) {
  auto d = fc(5, 4, 3, 6);
  auto source = makeSource(d);
  auto k = CNNFullyConnected::make(device(), source);
  // Default padding: SizeValidOnly, centred, remainder top-left (spec 01 §5 CHOICE).
  EXPECT_EQ(uint32_t(k->padding()->paddingMethod()), 0u);
  const auto w = expectedWeights(*source);
  ImageBatch sources;
  std::vector<RefImage> refs;
  for (int i = 0; i < 3; ++i) {
    refs.push_back(randomRefImage(1, 4, 5, 3));
    sources.push_back(makeImage(refs.back()));
  }
  // Auto mode: 1 × 1 × Co whatever the padding policy; offset (kW/2, kH/2).
  k->setPadding(NNDefaultPadding::paddingWithMethod(NNPaddingMethod::SizeFull));
  k->setDestinationImageAllocator(Image::defaultAllocator());
  ImageBatch results;
  runAndWait([&](CommandBufferPtr cb) { results = k->encodeBatch(cb, sources); });
  EXPECT_EQ(k->offset().x, 2);
  EXPECT_EQ(k->offset().y, 2);
  ASSERT_EQ(results.size(), 3u);
  for (int i = 0; i < 3; ++i) {
    const Image& r = *results[size_t(i)];
    EXPECT_EQ(r.width(), 1u);
    EXPECT_EQ(r.height(), 1u);
    EXPECT_EQ(r.featureChannels(), 6u);
    RefImage zero(1, 1, 1, 6);
    auto expect = fullyConnectedReference(*k, d, w, refs[size_t(i)]);
    EXPECT_TRUE(matches(download(r), expect(zero), Fmt::Float32, Fmt::Float32));
  }
}

TEST(CNNFullyConnected, PropertiesAndDefaults) {
  auto d = fc(7, 7, 64, 10);
  auto source = makeSource(d);
  source->name = "fc1";
  auto k = CNNFullyConnected::make(device(), source);
  EXPECT_STREQ(k->className(), "CNNFullyConnected");
  EXPECT_EQ(k->label(), "fc1");
  EXPECT_EQ(k->kernelWidth(), 7u);
  EXPECT_EQ(k->kernelHeight(), 7u);
  EXPECT_EQ(k->inputFeatureChannels(), 64u);
  EXPECT_EQ(k->outputFeatureChannels(), 10u);
  EXPECT_EQ(k->weightOrder(), FullyConnectedWeightOrder::OHWI);
  EXPECT_FALSE(k->isBackwards());
  // A CNNFullyConnected is a CNNConvolution.
  std::shared_ptr<CNNConvolution> asConvolution = k;
  EXPECT_EQ(asConvolution->groups(), 1u);
}

// =============================================================================================
// Invalid configurations

TEST(CNNFullyConnected, InvalidDescriptorsAreRejectedAtConstruction) {
  struct Bad {
    const char* what;
    std::function<CNNConvolutionDescriptor()> make;
    std::vector<const char*> words;
  };
  const Bad cases[] = {
      {"stride X", [] { return conv(3, 3, 4, 5, 2, 1); }, {"strideInPixelsX", "2"}},
      {"stride Y", [] { return conv(3, 3, 4, 5, 1, 3); }, {"strideInPixelsY", "3"}},
      {"dilation X", [] { return conv(3, 3, 4, 5, 1, 1, 2, 1); }, {"dilationRateX", "2"}},
      {"dilation Y", [] { return conv(3, 3, 4, 5, 1, 1, 1, 2); }, {"dilationRateY", "2"}},
      {"groups", [] { return conv(3, 3, 4, 6, 1, 1, 1, 1, 2); }, {"groups", "2"}},
      {"sub-pixel",
       [] {
         auto d = CNNSubPixelConvolutionDescriptor::make(3, 3, 4, 8);
         d.setSubPixelScaleFactor(2);
         return CNNConvolutionDescriptor(d);
       },
       {"CNNSubPixelConvolutionDescriptor", "subPixelScaleFactor", "2"}},
      {"depthwise",
       [] { return CNNConvolutionDescriptor(CNNDepthWiseConvolutionDescriptor::make(3, 3, 4, 4)); },
       {"CNNDepthWiseConvolutionDescriptor"}},
      {"kernelWidth 0 (the descriptor's own rules)",
       [] { return CNNConvolutionDescriptor::make(0, 3, 4, 4); },
       {"kernelWidth", "0"}},
  };
  for (const Bad& b : cases) {
    SCOPED_TRACE(b.what);
    const CNNConvolutionDescriptor d = b.make();
    auto check = [&](const std::function<void()>& f) {
      try {
        f();
        ADD_FAILURE() << "accepted";
      } catch (const InvalidArgument& e) {
        const std::string msg = e.what();
        EXPECT_NE(msg.find("CNNFullyConnected"), std::string::npos) << msg;
        for (const char* w : b.words) EXPECT_NE(msg.find(w), std::string::npos) << msg;
      }
    };
    auto source = std::make_shared<TestSource>();
    source->desc = d;
    source->floats.assign(4096, 0.5f);
    check([&] { CNNFullyConnected::make(device(), source); });
    EXPECT_EQ(source->loads, source->purges);
    check([&] { CNNFullyConnected k(device(), d, source->floats.data(), nullptr); });
  }
  auto k = CNNFullyConnected::make(device(), makeSource(fc(2, 2, 3, 4)));
  expectInvalid([&] { k->setWeightOrder(FullyConnectedWeightOrder(2)); },
                {"CNNFullyConnected", "setWeightOrder", "2"});
  EXPECT_EQ(k->weightOrder(), FullyConnectedWeightOrder::OHWI);
}

TEST(CNNFullyConnected, InvalidEncodesThrowAndWriteNothing) {
  auto d = fc(4, 3, 5, 6);
  auto source = makeSource(d);
  auto src = makeImage(randomRefImage(1, 3, 4, 5));
  struct Bad {
    const char* what;
    std::function<void(CNNFullyConnected&)> setup;
    std::function<ImagePtr()> source;
    std::function<ImagePtr()> destination;
    std::vector<const char*> words;
  };
  auto none = [](CNNFullyConnected&) {};
  auto dst1 = [] { return Image::make(device(), ImageDescriptor::make(Fmt::Float32, 1, 1, 6)); };
  const Bad cases[] = {
      {"source wider than the kernel",
       none,
       [] { return makeImage(randomRefImage(1, 3, 5, 5)); },
       dst1,
       {"source width = 5", "kernelWidth = 4"}},
      {"source lower than the kernel",
       none,
       [] { return makeImage(randomRefImage(1, 2, 4, 5)); },
       dst1,
       {"source height = 2", "kernelHeight = 3"}},
      {"destination 2 x 2 without clip",
       none,
       [&] { return src; },
       [] { return Image::make(device(), ImageDescriptor::make(Fmt::Float32, 2, 2, 6)); },
       {"clipRect", "2 x 2"}},
      {"clip 2 x 1",
       [](CNNFullyConnected& k) {
         k.setClipRect({{0, 0, 0}, {2, 1, 1}});
       },
       [&] { return src; },
       [] { return Image::make(device(), ImageDescriptor::make(Fmt::Float32, 3, 3, 6)); },
       {"clipRect", "2 x 1"}},
      {"too few source channels",
       none,
       [] { return makeImage(randomRefImage(1, 3, 4, 4)); },
       dst1,
       {"inputFeatureChannels = 5"}},
      {"destination too narrow",
       none,
       [&] { return src; },
       [] { return Image::make(device(), ImageDescriptor::make(Fmt::Float32, 1, 1, 5)); },
       {"destination featureChannels = 5"}},
      {"edge mode Mirror",
       [](CNNFullyConnected& k) { k.setEdgeMode(ImageEdgeMode::Mirror); },
       [&] { return src; },
       dst1,
       {"edgeMode", "Mirror"}},
      {"offset.z beyond the source",
       [](CNNFullyConnected& k) {
         k.setOffset({0, 0, 1});
       },
       [&] { return src; },
       dst1,
       {"offset.z"}},
  };
  for (const Bad& b : cases) {
    SCOPED_TRACE(b.what);
    auto k = CNNFullyConnected::make(device(), source);
    b.setup(*k);
    expectEncodeRejected(*k, "CNNFullyConnected", b.source(), b.destination(), b.words);
  }
  // An empty clip writes nothing and is not an error (spec 00 §4.5).
  auto k = CNNFullyConnected::make(device(), source);
  k->setClipRect({{5, 5, 0}, {1, 1, 1}});
  auto out = dst1();
  const RefImage poisoned = poison(*out);
  runAndWait([&](CommandBufferPtr cb) { k->encode(cb, src, out); });
  expectUntouched(*out, poisoned);
}

// =============================================================================================
// PyTorch parity: torch.nn.functional.linear on the flattened NCHW input, in float64.

TEST(CNNFullyConnected, PyTorchParity) {
  const auto cases = readTorchCases("fully_connected.txt");
  for (const auto& tc : cases) {
    SCOPED_TRACE(tc.name);
    const auto& xs = tc.shapes.at("x");
    const int64_t n = xs[0], H = xs[1], W = xs[2], Ci = xs[3], Co = tc.shapes.at("y")[1];
    const bool widthMajor = tc.scalars.at("owhi") != 0;
    auto d = fc(uint64_t(W), uint64_t(H), uint64_t(Ci), uint64_t(Co));
    auto source = std::make_shared<TestSource>();
    source->desc = d;
    for (double v : tc.arrays.at("w")) source->floats.push_back(float(v));
    for (double v : tc.arrays.at("b")) source->bias.push_back(float(v));
    auto k = CNNFullyConnected::make(device(), source);
    if (widthMajor) k->setWeightOrder(FullyConnectedWeightOrder::OWHI);
    RefImage x(n, H, W, Ci);
    x.data = tc.arrays.at("x");
    roundTo(x, Fmt::Float32);
    auto src = makeImage(x);
    auto dst = Image::make(device(), ImageDescriptor::make(Fmt::Float32, 1, 1, uint64_t(Co), uint64_t(n)));
    ref::ConvolutionWeights w;
    for (float v : source->floats) w.weights.push_back(v);
    for (float v : source->bias) w.biases.push_back(v);
    for (bool plain : {false, true}) {
      PathOutcome out = runPath(
          plain, [&](const CommandBufferPtr& cb) { k->encode(cb, src, dst); }, dst,
          fullyConnectedReference(*k, d, w, x));
      // The expectation is PyTorch's own result; the reference supplies only the Σ|w·x| scale.
      Reference torch = out.ref;
      torch.expected.data = tc.arrays.at("y");
      EXPECT_TRUE(matches(out.actual, torch, Fmt::Float32, Fmt::Float32)) << out.implementation;
      EXPECT_TRUE(matches(out.actual, out.ref, Fmt::Float32, Fmt::Float32)) << out.implementation;
    }
  }
}

}  // namespace
}  // namespace mpsnn::test
