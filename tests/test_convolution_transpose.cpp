// CNNConvolutionTranspose (spec 01 §6): the fast paths (oneDNN deconvolution / cuDNN backward data
// for strides > 1, the convolution's own paths for stride 1) and the plain path against the float64
// reference of §6.1 on random data; the no-rotation QUIRK and the Clamp CHOICE on hand-computed
// values; auto-mode sizes and kernel offsets (§6.2); PyTorch parity with conv_transpose2d through
// §6.2's mapping; every invalid case.
//
// Layouts: images NHWC; weights OHWI W[o][ky][kx][i] (o < Co, the transpose's output). PyTorch
// cases (tests/pytorch/gen_convolution_transpose.py) store x as NHWC, w already mapped to OHWI
// (rotated), b as [Co] and y as NHWC.
#include "convolution_test_support.h"

namespace mpsnn::test {
namespace {

/// The path the default dispatch must take for a transpose with `stride` that maps (Zero edge,
/// non-negative padding, float32).
std::string transposePath(uint64_t strideX, uint64_t strideY) {
  if (strideX == 1 && strideY == 1) return onCuda() ? "cuda:cudnn" : "cpu:onednn";
  return onCuda() ? "cuda:cudnn-backward-data" : "cpu:onednn-deconvolution";
}

ref::UnaryPlacement placementOf(const CNNKernel& k) {
  return {k.offset(),
          k.clipRect(),
          k.sourceFeatureChannelOffset(),
          k.sourceFeatureChannelMaxCount(),
          k.destinationFeatureChannelOffset(),
          k.edgeMode()};
}

/// The §6.1 reference for kernel `k` (its placement and kernel offsets as set) on `src`.
auto transposeReference(const CNNConvolutionTranspose& k, const CNNConvolutionDescriptor& desc,
                        const ref::ConvolutionWeights& w, const RefImage& src) {
  const ref::UnaryPlacement placement = placementOf(k);
  const int64_t kx = k.kernelOffsetX(), ky = k.kernelOffsetY();
  return [=](const RefImage& poisoned) {
    auto run = [&](const NNNeuronDescriptor& neuron, const ref::ConvolutionWeights& weights,
                   const RefImage& in, RefImage& out) {
      CNNConvolutionDescriptor d = desc;
      d.setFusedNeuronDescriptor(neuron);
      ref::convolutionTransposeKernel(d, weights, kx, ky, placement, in, out);
    };
    return referenceOf(run, desc.fusedNeuronDescriptor(), w, src, poisoned);
  };
}

struct Case {
  CNNConvolutionDescriptor desc;
  bool bias = true;
  int64_t n = 1, h = 5, w = 6, c = 0;  // source; c = 0: inputFeatureChannels
  Fmt srcFormat = Fmt::Float32, dstFormat = Fmt::Float32;
  int64_t dstN = 0, dstH = 0, dstW = 0, dstC = 0;  // 0: n, (h − 1)·sY + 1, (w − 1)·sX + 1, Co
  Offset offset{};
  int64_t kernelOffsetX = 0, kernelOffsetY = 0;
  IntRegion clip = RectNoClip;
  uint64_t srcChannelOffset = 0, srcChannelMaxCount = UINT64_MAX, dstChannelOffset = 0;
  ImageEdgeMode edge = ImageEdgeMode::Zero;
  double lipschitz = 1.0;
  std::string wantFast;
};

void runCase(const Case& k) {
  const auto& d = k.desc;
  auto source = makeSource(d, k.bias);
  auto t = CNNConvolutionTranspose::make(device(), source);
  t->setOffset(k.offset);
  t->setKernelOffsetX(k.kernelOffsetX);
  t->setKernelOffsetY(k.kernelOffsetY);
  t->setClipRect(k.clip);
  t->setSourceFeatureChannelOffset(k.srcChannelOffset);
  t->setSourceFeatureChannelMaxCount(k.srcChannelMaxCount);
  t->setDestinationFeatureChannelOffset(k.dstChannelOffset);
  t->setEdgeMode(k.edge);
  const bool unormSource = k.srcFormat == Fmt::Unorm8 || k.srcFormat == Fmt::Unorm16;
  RefImage srcRef = randomRefImage(k.n, k.h, k.w, k.c ? k.c : int64_t(d.inputFeatureChannels()),
                                   unormSource ? 0.0 : -1.0, 1.0);
  roundTo(srcRef, k.srcFormat);
  auto src = makeImage(srcRef, k.srcFormat);
  const int64_t dh = k.dstH ? k.dstH : (k.h - 1) * int64_t(d.strideInPixelsY()) + 1;
  const int64_t dw = k.dstW ? k.dstW : (k.w - 1) * int64_t(d.strideInPixelsX()) + 1;
  const int64_t dc = k.dstC ? k.dstC : int64_t(k.dstChannelOffset + d.outputFeatureChannels());
  auto dst = Image::make(device(), ImageDescriptor::make(k.dstFormat, uint64_t(dw), uint64_t(dh),
                                                         uint64_t(dc), uint64_t(k.dstN ? k.dstN : k.n)));
  checkFastAndPlain([&](const CommandBufferPtr& cb) { t->encode(cb, src, dst); }, dst,
                    transposeReference(*t, d, expectedWeights(*source), srcRef), k.srcFormat, k.dstFormat,
                    k.lipschitz, k.wantFast);
}

// =============================================================================================
// Numerics

TEST(CNNConvolutionTranspose, StridesKernelsChannelsAndBatches) {
  struct S {
    uint64_t kw, kh, sx, sy, ci, co;
  };
  const S shapes[] = {{3, 3, 2, 2, 3, 5},  {3, 3, 1, 1, 5, 7},  {2, 2, 2, 2, 1, 3}, {4, 4, 2, 2, 7, 1},
                      {5, 5, 3, 3, 4, 6},  {1, 1, 2, 2, 13, 5}, {3, 1, 2, 1, 3, 3}, {1, 3, 1, 3, 5, 4},
                      {5, 3, 2, 3, 17, 2}, {2, 3, 3, 2, 6, 13}};
  int i = 0;
  for (const S& s : shapes) {
    Case k;
    k.desc = conv(s.kw, s.kh, s.ci, s.co, s.sx, s.sy);
    k.n = 1 + i % 3;
    k.h = 3 + i % 4;
    k.w = 4 + i % 3;
    k.bias = i % 2 == 0;
    k.wantFast = transposePath(s.sx, s.sy);
    SCOPED_TRACE(describe(k.desc) + " n=" + std::to_string(k.n));
    runCase(k);
    ++i;
  }
}

TEST(CNNConvolutionTranspose, DilationGroupsAndDepthwise) {
  std::vector<CNNConvolutionDescriptor> descs = {
      conv(3, 3, 4, 6, 2, 2, 2, 2),                          // dilation with stride
      conv(3, 2, 3, 5, 1, 1, 2, 3),                          // dilation, stride 1
      conv(3, 3, 6, 9, 2, 2, 1, 1, 3),                       // groups
      conv(2, 2, 8, 4, 3, 3, 1, 1, 4),                       // groups, even kernel
      conv(3, 3, 4, 4, 2, 2, 2, 2, 2),                       // both
      CNNDepthWiseConvolutionDescriptor::make(3, 3, 5, 10),  // depthwise, multiplier 2
  };
  descs.back().setStrideInPixelsX(2);
  descs.back().setStrideInPixelsY(2);
  for (const auto& d : descs) {
    Case k;
    k.desc = d;
    k.n = 2;
    k.h = 4;
    k.w = 5;
    // The CPU deconvolution takes every one of them; cuDNN's coverage of grouped and dilated
    // backward data is not promised here (it may fall back to the plain kernel).
    if (!onCuda()) k.wantFast = transposePath(d.strideInPixelsX(), d.strideInPixelsY());
    SCOPED_TRACE(describe(d));
    runCase(k);
  }
}

TEST(CNNConvolutionTranspose, KernelOffsetsOffsetsClipAndChannels) {
  Case base;
  base.desc = conv(3, 3, 4, 5, 2, 2);
  base.n = 2;
  std::vector<std::pair<const char*, Case>> cases;
  {
    Case k = base;  // kernel offsets move the window in Z
    k.kernelOffsetX = 1;
    k.kernelOffsetY = -1;
    // oneDNN's deconvolution takes asymmetric padding; cuDNN's backward data pads symmetrically, so
    // on CUDA these offsets go to the plain kernel (seen on an H100) and only correctness is asked.
    if (!onCuda()) k.wantFast = transposePath(2, 2);
    cases.push_back({"kernel offsets 1, -1 (deconvolution maps)", k});
  }
  {
    Case k = base;  // an offset counts in source pixels: t = offset·s + kernelOffset
    k.offset = {1, 2, 0};
    k.kernelOffsetX = -1;
    k.dstW = 6;
    k.dstH = 4;
    cases.push_back({"offset and kernel offset", k});
  }
  {
    Case k = base;  // windows before the image: negative padding, the plain path
    k.kernelOffsetX = -3;
    k.offset = {-1, 0, 0};
    cases.push_back({"negative padding", k});
  }
  {
    Case k = base;  // a destination wider than the zero-inserted image
    k.dstW = 14;
    k.dstH = 12;
    cases.push_back({"destination beyond Z", k});
  }
  {
    Case k = base;  // clip partly outside, z range, offset.z
    k.n = 3;
    k.dstN = 3;
    k.offset = {0, 0, 1};
    k.clip = {{2, 1, 1}, {100, 5, 2}};
    cases.push_back({"clip and offset.z", k});
  }
  {
    Case k = base;  // channel ranges on both sides
    k.c = 9;
    k.srcChannelOffset = 3;
    k.dstChannelOffset = 2;
    k.dstC = 9;
    cases.push_back({"channel offsets", k});
  }
  {
    Case k = base;  // C_read > Ci and a max count
    k.c = 8;
    k.srcChannelOffset = 1;
    k.srcChannelMaxCount = 5;
    cases.push_back({"max count", k});
  }
  {
    Case k = base;  // Clamp, reads outside Z: the plain path
    k.edge = ImageEdgeMode::Clamp;
    k.kernelOffsetX = -2;
    k.kernelOffsetY = 1;
    cases.push_back({"Clamp outside Z", k});
  }
  {
    Case k = base;  // Clamp whose taps all fall inside Z: the deconvolution may take it
    k.edge = ImageEdgeMode::Clamp;
    k.kernelOffsetX = k.kernelOffsetY = 1;
    k.dstW = (6 - 1) * 2 + 1 - 2;
    k.dstH = (5 - 1) * 2 + 1 - 2;
    if (!onCuda()) k.wantFast = transposePath(2, 2);
    cases.push_back({"Clamp inside Z", k});
  }
  {
    Case k = base;  // stride 1: the convolution's paths, with Clamp outside
    k.desc = conv(3, 2, 4, 5);
    k.edge = ImageEdgeMode::Clamp;
    k.kernelOffsetX = -1;
    cases.push_back({"stride 1 Clamp", k});
  }
  for (const auto& [what, k] : cases) {
    SCOPED_TRACE(what);
    runCase(k);
  }
}

TEST(CNNConvolutionTranspose, WeightsAreNotRotatedQuirk) {
  // 1 channel, 3 × 1 kernel W = (1, 10, 100), stride 1, an impulse of 1 at source x = 2 of 5:
  // dst(x) = Σ_kx W[kx]·Z(x − 1 + kx), so dst(1) = W[2], dst(2) = W[1], dst(3) = W[0] — the
  // weights act "as given" (a correlation); a framework's transpose would rotate them.
  auto d = conv(3, 1, 1, 1);
  auto source = std::make_shared<TestSource>();
  source->desc = d;
  source->floats = {1.0f, 10.0f, 100.0f};
  auto t = CNNConvolutionTranspose::make(device(), source);
  RefImage impulse(1, 1, 5, 1);
  impulse.at(0, 0, 2, 0) = 1.0;
  auto src = makeImage(impulse);
  auto dst = Image::make(device(), ImageDescriptor::make(Fmt::Float32, 5, 1, 1));
  for (bool plain : {false, true}) {
    ForcePlainConvolution force(plain);
    runAndWait([&](CommandBufferPtr cb) { t->encode(cb, src, dst); });
    const RefImage out = download(*dst);
    EXPECT_EQ(out.data, (std::vector<double>{0, 100, 10, 1, 0})) << (plain ? "plain" : "fast");
  }
  // The same with stride 2: Z = (0 0 0 0 1 0 0 0 0), kernel offset 1 shifts the window right by one.
  auto d2 = conv(3, 1, 1, 1, 2, 1);
  source->desc = d2;
  auto t2 = CNNConvolutionTranspose::make(device(), source);
  t2->setKernelOffsetX(1);
  auto dst2 = Image::make(device(), ImageDescriptor::make(Fmt::Float32, 9, 1, 1));
  for (bool plain : {false, true}) {
    ForcePlainConvolution force(plain);
    runAndWait([&](CommandBufferPtr cb) { t2->encode(cb, src, dst2); });
    const RefImage out = download(*dst2);
    EXPECT_EQ(out.data, (std::vector<double>{0, 0, 100, 10, 1, 0, 0, 0, 0})) << (plain ? "plain" : "fast");
  }
}

TEST(CNNConvolutionTranspose, ClampReadsTheZeroInsertedImageChoice) {
  // Spec 01 §6.1 CHOICE: Clamp clamps into Z's extent, then reads Z: Z(−1) = Z(0) = src(0), Z(Zw) =
  // Z(Zw − 1) = the last source pixel; positions between source pixels stay 0.
  // Source (2, 3), stride 2: Z = (2, 0, 3). Kernel 3 × 1 of ones, kernelOffset −1: dst(x) sums
  // Z(x − 2), Z(x − 1), Z(x).
  auto d = conv(3, 1, 1, 1, 2, 1);
  auto source = std::make_shared<TestSource>();
  source->desc = d;
  source->floats = {1.0f, 1.0f, 1.0f};
  auto t = CNNConvolutionTranspose::make(device(), source);
  t->setKernelOffsetX(-1);
  t->setEdgeMode(ImageEdgeMode::Clamp);
  RefImage in(1, 1, 2, 1);
  in.data = {2.0, 3.0};
  auto src = makeImage(in);
  auto dst = Image::make(device(), ImageDescriptor::make(Fmt::Float32, 5, 1, 1));
  // x=0: Z(−2)+Z(−1)+Z(0) = 2+2+2; x=1: Z(−1)+Z(0)+Z(1) = 2+2+0; x=2: 2+0+3; x=3: 0+3+3; x=4: 3+3+3.
  const std::vector<double> expected{6, 4, 5, 6, 9};
  for (bool plain : {false, true}) {
    ForcePlainConvolution force(plain);
    runAndWait([&](CommandBufferPtr cb) { t->encode(cb, src, dst); });
    EXPECT_EQ(download(*dst).data, expected) << (plain ? "plain" : "fast");
  }
  t->setEdgeMode(ImageEdgeMode::Zero);  // Zero: 0 outside Z
  runAndWait([&](CommandBufferPtr cb) { t->encode(cb, src, dst); });
  EXPECT_EQ(download(*dst).data, (std::vector<double>{2, 2, 5, 3, 3}));
}

TEST(CNNConvolutionTranspose, AutoModeSizesAndKernelOffsets) {
  using M = NNPaddingMethod;
  struct P {
    NNPaddingMethod method;
    int style;
  };
  const P methods[] = {
      {M::AlignCentered | M::AddRemainderToTopLeft | M::SizeSame, 0},
      {M::AlignCentered | M::AddRemainderToBottomRight | M::SizeSame, 0},
      {M::AlignCentered | M::AddRemainderToTopLeft | M::SizeValidOnly, -1},
      {M::AlignCentered | M::AddRemainderToBottomLeft | M::SizeFull, 1},
      {M::AlignTopLeft | M::SizeSame, 0},
      {M::AlignBottomRight | M::SizeFull, 1},
  };
  for (uint64_t kSize : {1, 2, 3, 5}) {
    for (uint64_t s : {1, 2, 3}) {
      for (const P& m : methods) {
        auto d = conv(kSize, kSize, 3, 4, s, s);
        auto source = makeSource(d);
        auto t = CNNConvolutionTranspose::make(device(), source);
        t->setPadding(NNDefaultPadding::paddingWithMethod(m.method));
        t->setOffset({5, 5, 0});  // auto mode resets it to 0
        const int64_t S = 6, Z = (S - 1) * int64_t(s) + 1;
        RefImage srcRef = randomRefImage(1, S, S, 3);
        auto src = makeImage(srcRef);
        ImagePtr result;
        t->setDestinationImageAllocator(Image::defaultAllocator());
        SCOPED_TRACE("k=" + std::to_string(kSize) + " s=" + std::to_string(s) + " method " +
                     std::to_string(uint32_t(m.method)));
        runAndWait([&](CommandBufferPtr cb) { result = t->encode(cb, src); });
        // DestSizeReverse (spec 00 §5.2) and the kernel offset of a stride-1 convolution over Z (§5.3).
        const int64_t size = Z + m.style * (int64_t(kSize) - 1);
        EXPECT_EQ(int64_t(result->width()), size);
        EXPECT_EQ(int64_t(result->height()), size);
        EXPECT_EQ(t->offset().x, 0);
        EXPECT_EQ(t->offset().y, 0);
        EXPECT_EQ(t->kernelOffsetX(), paddingOffset(Z, 1, int64_t(kSize), m.method, true));
        EXPECT_EQ(t->kernelOffsetY(), paddingOffset(Z, 1, int64_t(kSize), m.method, false));
        RefImage zero(1, size, size, 4);
        auto expect = transposeReference(*t, d, expectedWeights(*source), srcRef);
        EXPECT_TRUE(matches(download(*result), expect(zero), Fmt::Float32, Fmt::Float32));
      }
    }
  }
  // The documented examples (spec 01 §6.2): k = 3 Same → 0; k = 2 Same: TopLeft remainder → 0,
  // BottomRight → 1.
  auto offsetFor = [](uint64_t kSize, NNPaddingMethod m) {
    auto t = CNNConvolutionTranspose::make(device(), makeSource(conv(kSize, kSize, 1, 1, 2, 2)));
    t->setPadding(NNDefaultPadding::paddingWithMethod(m));
    auto src = makeImage(randomRefImage(1, 5, 5, 1));
    t->destinationImageDescriptor({src}, {});
    return t->kernelOffsetX();
  };
  EXPECT_EQ(offsetFor(3, M::SizeSame), 0);
  EXPECT_EQ(offsetFor(2, M::SizeSame | M::AddRemainderToTopLeft), 0);
  EXPECT_EQ(offsetFor(2, M::SizeSame | M::AddRemainderToBottomRight), 1);
  // A source that forward ValidOnly sizing would reject is fine for the transpose: S = 2, s = 4, k = 3.
  auto t = CNNConvolutionTranspose::make(device(), makeSource(conv(3, 3, 1, 1, 4, 4)));
  t->setPadding(NNDefaultPadding::paddingWithMethod(M::SizeValidOnly));
  const auto desc = t->destinationImageDescriptor({makeImage(randomRefImage(1, 2, 2, 1))}, {});
  EXPECT_EQ(desc.width(), 3u);
  // ValidOnly with a kernel larger than Z is rejected.
  auto big = CNNConvolutionTranspose::make(device(), makeSource(conv(5, 5, 1, 1, 1, 1)));
  big->setPadding(NNDefaultPadding::paddingWithMethod(M::SizeValidOnly));
  expectInvalid([&] { big->destinationImageDescriptor({makeImage(randomRefImage(1, 3, 3, 1))}, {}); },
                {"CNNConvolutionTranspose", "too small"});
}

TEST(CNNConvolutionTranspose, EveryFusedNeuronAndBatchNorm) {
  for (const auto& nc : everyNeuron(5)) {
    Case k;
    k.desc = conv(3, 3, 3, 5, 2, 2);
    k.desc.setFusedNeuronDescriptor(nc.neuron);
    k.lipschitz = nc.lipschitz;
    k.wantFast = transposePath(2, 2);
    SCOPED_TRACE(describe(k.desc));
    runCase(k);
  }
  auto mean = randomValues(5, -0.5, 0.5), var = randomValues(5, 0.2, 2.0), gamma = randomValues(5, -2, 2),
       beta = randomValues(5, -1, 1);
  std::vector<float> m(mean.begin(), mean.end()), v(var.begin(), var.end()), g(gamma.begin(), gamma.end()),
      b(beta.begin(), beta.end());
  Case k;
  k.desc = conv(3, 3, 3, 5, 2, 2);
  k.desc.setBatchNormalizationParametersForInference(m.data(), v.data(), g.data(), b.data(), 1e-3f);
  k.bias = false;
  k.n = 2;
  k.wantFast = transposePath(2, 2);
  runCase(k);
}

TEST(CNNConvolutionTranspose, ImageFormats) {
  const std::pair<Fmt, Fmt> formats[] = {{Fmt::Float16, Fmt::Float16},  {Fmt::Float32, Fmt::Float16},
                                         {Fmt::Float16, Fmt::Float32},  {Fmt::Unorm8, Fmt::Unorm8},
                                         {Fmt::BFloat16, Fmt::Float32}, {Fmt::Unorm16, Fmt::BFloat16}};
  for (auto [sf, df] : formats) {
    Case k;
    k.desc = conv(3, 3, 4, 5, 2, 2);
    k.srcFormat = sf;
    k.dstFormat = df;
    k.n = 2;
    if (df == Fmt::Unorm8 || df == Fmt::Unorm16)
      k.desc.setFusedNeuronDescriptor(NNNeuronDescriptor::make(CNNNeuronType::Sigmoid));
    if (!onCuda() || sf == Fmt::Float16) k.wantFast = transposePath(2, 2);
    SCOPED_TRACE(toString(sf) + " -> " + toString(df));
    runCase(k);
  }
}

TEST(CNNConvolutionTranspose, Float16AndUInt8WeightsChoice) {
  auto d = conv(3, 3, 4, 5, 2, 2);
  for (int kind = 0; kind < 4; ++kind) {
    auto source = makeSource(d);
    source->kernelType.reset();  // the protocol's default: float16 weights inside the kernel
    if (kind == 1) {
      source->type = DataType::Float16;
      for (float w : source->floats) source->halves.push_back(detail::floatToHalf(w));
    } else if (kind >= 2) {
      source->type = DataType::UInt8;
      for (double u : randomValues(source->floats.size(), 0, 255)) source->bytes.push_back(uint8_t(u));
      if (kind == 2) {
        source->quantization = CNNWeightsQuantizationType::Linear;
        for (int o = 0; o < 5; ++o) source->ranges.push_back({-0.4f, 0.3f});
      } else {
        source->quantization = CNNWeightsQuantizationType::LookupTable;
        for (double v : randomValues(256, -0.3, 0.3)) source->table.push_back(float(v));
      }
    }
    auto t = CNNConvolutionTranspose::make(device(), source);
    const auto w = expectedWeights(*source);
    for (size_t i = 0; i < w.weights.size(); ++i)
      ASSERT_EQ(double(t->effectiveWeights()[i]), w.weights[i]) << i;
    RefImage srcRef = randomRefImage(2, 4, 3, 4);
    auto src = makeImage(srcRef);
    auto dst = Image::make(device(), ImageDescriptor::make(Fmt::Float32, 5, 7, 5, 2));
    SCOPED_TRACE("weights kind " + std::to_string(kind));
    checkFastAndPlain([&](const CommandBufferPtr& cb) { t->encode(cb, src, dst); }, dst,
                      transposeReference(*t, d, w, srcRef), Fmt::Float32, Fmt::Float32, 1.0,
                      transposePath(2, 2));
  }
}

TEST(CNNConvolutionTranspose, EncodeBatchAndReloadFromDataSource) {
  auto d = conv(2, 3, 3, 4, 2, 1);
  auto source = makeSource(d);
  auto t = CNNConvolutionTranspose::make(device(), source);
  ImageBatch sources, destinations;
  std::vector<RefImage> refs, poisoned;
  for (int i = 0; i < 3; ++i) {
    refs.push_back(randomRefImage(1, 4, 5, 3));
    sources.push_back(makeImage(refs.back()));
    destinations.push_back(Image::make(device(), ImageDescriptor::make(Fmt::Float32, 9, 4, 4)));
    poisoned.push_back(poison(*destinations.back()));
  }
  runAndWait([&](CommandBufferPtr cb) { t->encodeBatch(cb, sources, destinations); });
  for (int i = 0; i < 3; ++i) {
    auto expect = transposeReference(*t, d, expectedWeights(*source), refs[size_t(i)]);
    EXPECT_TRUE(
        matches(download(*destinations[size_t(i)]), expect(poisoned[size_t(i)]), Fmt::Float32, Fmt::Float32));
  }
  // Reload: new weights, same shape.
  for (float& w : source->floats) w = float(randomValues(1, -0.5, 0.5)[0]);
  t->reloadWeightsAndBiasesFromDataSource();
  EXPECT_EQ(source->loads, source->purges);
  auto dst = destinations[0];
  checkFastAndPlain([&](const CommandBufferPtr& cb) { t->encode(cb, sources[0], dst); }, dst,
                    transposeReference(*t, d, expectedWeights(*source), refs[0]), Fmt::Float32, Fmt::Float32);
  source->desc.setOutputFeatureChannels(8);
  expectInvalid([&] { t->reloadWeightsAndBiasesFromDataSource(); }, {"CNNConvolutionTranspose", "reload"});
}

TEST(CNNConvolutionTranspose, PropertiesAndDefaults) {
  auto d = conv(5, 3, 6, 9, 2, 3, 1, 2, 3);
  auto source = makeSource(d);
  source->name = "up1";
  auto t = CNNConvolutionTranspose::make(device(), source);
  EXPECT_STREQ(t->className(), "CNNConvolutionTranspose");
  EXPECT_EQ(t->label(), "up1");
  EXPECT_TRUE(t->isBackwards());
  EXPECT_EQ(t->kernelWidth(), 5u);
  EXPECT_EQ(t->kernelHeight(), 3u);
  EXPECT_EQ(t->strideInPixelsX(), 2u);
  EXPECT_EQ(t->strideInPixelsY(), 3u);
  EXPECT_EQ(t->dilationRateY(), 2u);
  EXPECT_EQ(t->inputFeatureChannels(), 6u);
  EXPECT_EQ(t->outputFeatureChannels(), 9u);
  EXPECT_EQ(t->groups(), 3u);
  EXPECT_EQ(t->dataSource(), source);
  EXPECT_EQ(t->kernelOffsetX(), 0);
  EXPECT_EQ(t->kernelOffsetY(), 0);
  EXPECT_FALSE(t->allowsTF32());
  EXPECT_EQ(t->accumulatorPrecisionOption(), NNConvolutionAccumulatorPrecisionOption::Float);
  EXPECT_EQ(uint32_t(t->padding()->paddingMethod()), 16u);  // centred, remainder top-left, Same
}

// =============================================================================================
// Invalid configurations

TEST(CNNConvolutionTranspose, InvalidConstruction) {
  expectInvalid([] { CNNConvolutionTranspose::make(device(), nullptr); },
                {"CNNConvolutionTranspose", "dataSource"});
  auto sub = CNNSubPixelConvolutionDescriptor::make(3, 3, 2, 8);
  sub.setSubPixelScaleFactor(2);
  struct Bad {
    const char* what;
    std::function<void(TestSource&)> spoil;
    std::vector<const char*> words;
  };
  const Bad cases[] = {
      {"sub-pixel", [&](TestSource& s) { s.desc = sub; }, {"subPixelScaleFactor", "2"}},
      {"descriptor groups", [](TestSource& s) { s.desc.setGroups(3); }, {"groups", "3"}},
      {"dataType UInt32", [](TestSource& s) { s.type = DataType::UInt32; }, {"dataType", "UInt32"}},
      {"null weights", [](TestSource& s) { s.nullWeights = true; }, {"weights"}},
      {"load fails", [](TestSource& s) { s.loadResult = false; }, {"load"}},
      {"UInt8 without quantization",
       [](TestSource& s) {
         s.type = DataType::UInt8;
         s.kernelType.reset();
         s.bytes.assign(s.floats.size(), 1);
       },
       {"weightsQuantizationType", "None"}},
  };
  for (const Bad& b : cases) {
    SCOPED_TRACE(b.what);
    auto source = makeSource(conv(3, 3, 4, 4, 2, 2));
    source->floats.resize(1024, 0.5f);
    b.spoil(*source);
    try {
      CNNConvolutionTranspose::make(device(), source);
      ADD_FAILURE() << "accepted";
    } catch (const InvalidArgument& e) {
      const std::string msg = e.what();
      EXPECT_NE(msg.find("CNNConvolutionTranspose"), std::string::npos) << msg;
      for (const char* w : b.words) EXPECT_NE(msg.find(w), std::string::npos) << msg;
    }
    EXPECT_EQ(source->loads, source->purges + (source->loadResult ? 0 : 1));
  }
}

TEST(CNNConvolutionTranspose, InvalidEncodesThrowAndWriteNothing) {
  auto d = conv(3, 3, 4, 6, 2, 2);
  auto source = makeSource(d);
  auto src = makeImage(randomRefImage(1, 4, 4, 4));
  struct Bad {
    const char* what;
    std::function<void(CNNConvolutionTranspose&)> setup;
    std::function<ImagePtr()> source;
    std::function<ImagePtr()> destination;
    std::vector<const char*> words;
  };
  auto none = [](CNNConvolutionTranspose&) {};
  auto dst7 = [] { return Image::make(device(), ImageDescriptor::make(Fmt::Float32, 7, 7, 6)); };
  const Bad cases[] = {
      {"too few source channels",
       none,
       [] { return makeImage(randomRefImage(1, 4, 4, 3)); },
       dst7,
       {"inputFeatureChannels = 4"}},
      {"channel offset leaves too few",
       [](CNNConvolutionTranspose& t) { t.setSourceFeatureChannelOffset(1); },
       [&] { return src; },
       dst7,
       {"inputFeatureChannels"}},
      {"destination too narrow",
       none,
       [&] { return src; },
       [] { return Image::make(device(), ImageDescriptor::make(Fmt::Float32, 7, 7, 5)); },
       {"destination featureChannels = 5"}},
      {"destination channel offset",
       [](CNNConvolutionTranspose& t) { t.setDestinationFeatureChannelOffset(2); },
       [&] { return src; },
       dst7,
       {"destinationFeatureChannelOffset", "2"}},
      {"edge mode MirrorWithEdge",
       [](CNNConvolutionTranspose& t) { t.setEdgeMode(ImageEdgeMode::MirrorWithEdge); },
       [&] { return src; },
       dst7,
       {"edgeMode", "MirrorWithEdge"}},
      {"offset out of range",
       [](CNNConvolutionTranspose& t) {
         t.setOffset({int64_t(1) << 50, 0, 0});
       },
       [&] { return src; },
       dst7,
       {"offset.x"}},
      {"kernel offset out of range",
       [](CNNConvolutionTranspose& t) { t.setKernelOffsetY(INT64_MIN); },
       [&] { return src; },
       dst7,
       {"offset.y", "kernelOffsetY"}},
      {"offset.z negative",
       [](CNNConvolutionTranspose& t) {
         t.setOffset({0, 0, -2});
       },
       [&] { return src; },
       dst7,
       {"offset.z"}},
  };
  for (const Bad& b : cases) {
    SCOPED_TRACE(b.what);
    auto t = CNNConvolutionTranspose::make(device(), source);
    b.setup(*t);
    expectEncodeRejected(*t, "CNNConvolutionTranspose", b.source(), b.destination(), b.words);
  }
}

// =============================================================================================
// PyTorch parity: conv_transpose2d in float64 through spec 01 §6.2's mapping (weights rotated by the
// generator, offset 0, kernelOffset = p − (k − 1)·d + floor(kd/2)).

TEST(CNNConvolutionTranspose, PyTorchParity) {
  const auto cases = readTorchCases("convolution_transpose.txt");
  for (const auto& tc : cases) {
    SCOPED_TRACE(tc.name);
    auto sc = [&](const char* k) { return int64_t(tc.scalars.at(k)); };
    const auto& xs = tc.shapes.at("x");
    const auto& ws = tc.shapes.at("w");
    const auto& ys = tc.shapes.at("y");
    const int64_t n = xs[0], H = xs[1], W = xs[2], Ci = xs[3], Co = ws[0], kH = ws[1], kW = ws[2];
    auto d = conv(uint64_t(kW), uint64_t(kH), uint64_t(Ci), uint64_t(Co), uint64_t(sc("strideX")),
                  uint64_t(sc("strideY")), uint64_t(sc("dilationX")), uint64_t(sc("dilationY")),
                  uint64_t(sc("groups")));
    auto source = std::make_shared<TestSource>();
    source->desc = d;
    for (double v : tc.arrays.at("w")) source->floats.push_back(float(v));
    if (sc("hasBias"))
      for (double v : tc.arrays.at("b")) source->bias.push_back(float(v));
    auto t = CNNConvolutionTranspose::make(device(), source);
    t->setKernelOffsetX(sc("kernelOffsetX"));
    t->setKernelOffsetY(sc("kernelOffsetY"));
    RefImage x(n, H, W, Ci);
    x.data = tc.arrays.at("x");
    roundTo(x, Fmt::Float32);
    auto src = makeImage(x);
    auto dst = Image::make(device(), ImageDescriptor::make(Fmt::Float32, uint64_t(ys[2]), uint64_t(ys[1]),
                                                           uint64_t(ys[3]), uint64_t(ys[0])));
    ref::ConvolutionWeights w;
    for (float v : source->floats) w.weights.push_back(v);
    for (float v : source->bias) w.biases.push_back(v);
    for (bool plain : {false, true}) {
      PathOutcome out = runPath(
          plain, [&](const CommandBufferPtr& cb) { t->encode(cb, src, dst); }, dst,
          transposeReference(*t, d, w, x));
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
