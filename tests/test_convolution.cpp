// CNNConvolution, its descriptors and its data-source protocol (spec 01 §2–§4): the fast path
// (oneDNN / cuDNN) and the plain path against the float64 reference on random data, PyTorch
// parity, and every invalid case of §2, §3 and §4.3.
//
// Layouts: images NHWC; weights OHWI W[o][ky][kx][i] (depthwise W[o][ky][kx]); PyTorch cases
// (tests/pytorch/gen_convolution.py) store x as NHWC, w as OHWI, b as [Co] and y as NHWC.
#include <array>
#include <optional>
#include <thread>

#include "convolution_test_support.h"

namespace mpsnn::test {
namespace {

ref::UnaryPlacement placementOf(const CNNConvolution& k) {
  return {k.offset(),
          k.clipRect(),
          k.sourceFeatureChannelOffset(),
          k.sourceFeatureChannelMaxCount(),
          k.destinationFeatureChannelOffset(),
          k.edgeMode()};
}

Reference reference(const CNNConvolutionDescriptor& desc, const ref::ConvolutionWeights& w,
                    const ref::UnaryPlacement& placement, const RefImage& src, const RefImage& poisoned) {
  auto run = [&](const NNNeuronDescriptor& neuron, const ref::ConvolutionWeights& weights, const RefImage& in,
                 RefImage& out) {
    CNNConvolutionDescriptor d = desc;
    d.setFusedNeuronDescriptor(neuron);
    ref::convolutionKernel(d, weights, placement, in, out);
  };
  return referenceOf(run, desc.fusedNeuronDescriptor(), w, src, poisoned);
}

struct Outcome {
  RefImage actual;
  Reference ref;
  std::string implementation;
};

/// Poisons `dst`, encodes (plain or default dispatch), and computes the reference.
Outcome encodeAndReference(CNNConvolution& conv, const CNNConvolutionDescriptor& desc,
                           const ref::ConvolutionWeights& w, const RefImage& srcRef, const ImagePtr& src,
                           const ImagePtr& dst, bool plain) {
  ForcePlainConvolution force(plain);
  Outcome out;
  const RefImage poisoned = poison(*dst);
  auto cb = queue()->commandBuffer();
  conv.encode(cb, src, dst);
  out.implementation = detail::lastConvolutionImplementation();
  cb->commit();
  cb->waitUntilCompleted();
  out.actual = download(*dst);
  out.ref = reference(desc, w, placementOf(conv), srcRef, poisoned);
  return out;
}

/// Runs the kernel through the default dispatch and through the plain implementation; both must
/// match the reference and each other. `expectFast`: the default dispatch must pick a fast path
/// (when this build has one on this device).
void checkBothPaths(CNNConvolution& conv, const CNNConvolutionDescriptor& desc,
                    const ref::ConvolutionWeights& w, const RefImage& srcRef, const ImagePtr& src,
                    const ImagePtr& dst, double lipschitz = 1.0, bool expectFast = false) {
  const Fmt sf = src->featureChannelFormat(), df = dst->featureChannelFormat();
  Outcome fast = encodeAndReference(conv, desc, w, srcRef, src, dst, false);
  EXPECT_TRUE(matches(fast.actual, fast.ref, sf, df, lipschitz)) << "implementation " << fast.implementation;
  if (expectFast && hasConvolutionFastPath()) {
    EXPECT_NE(fast.implementation, plainImplementation()) << "the fast path did not take this case";
  }
  Outcome plain = encodeAndReference(conv, desc, w, srcRef, src, dst, true);
  EXPECT_EQ(plain.implementation, plainImplementation());
  EXPECT_TRUE(matches(plain.actual, plain.ref, sf, df, lipschitz))
      << "implementation " << plain.implementation;
  // The two paths agree with each other (the plain result in the role of the expectation).
  Reference agree = plain.ref;
  agree.expected = plain.actual;
  EXPECT_TRUE(matches(fast.actual, agree, sf, df, 2 * lipschitz)) << fast.implementation << " vs plain";
}

/// One convolution test case: descriptor, images, placement.
struct Case {
  CNNConvolutionDescriptor desc;
  bool bias = true;
  int64_t n = 1, h = 9, w = 8, c = 0;  // source; c = 0: inputFeatureChannels
  Fmt srcFormat = Fmt::Float32, dstFormat = Fmt::Float32;
  int64_t dstN = 0, dstH = 0, dstW = 0, dstC = 0;  // 0: n, ceil(h / sY)·r, ceil(w / sX)·r, channels written
  Offset offset{};
  IntRegion clip = RectNoClip;
  uint64_t srcChannelOffset = 0, srcChannelMaxCount = UINT64_MAX, dstChannelOffset = 0;
  ImageEdgeMode edge = ImageEdgeMode::Zero;
  double lipschitz = 1.0;
  bool expectFast = false;     // every device's fast path must take it
  bool expectFastCpu = false;  // the CPU's fast path must take it
};

void runCase(const Case& k) {
  const auto& d = k.desc;
  const int64_t r = int64_t(d.subPixelScaleFactor());
  auto source = makeSource(d, k.bias);
  auto conv = CNNConvolution::make(device(), source);
  conv->setOffset(k.offset);
  conv->setClipRect(k.clip);
  conv->setSourceFeatureChannelOffset(k.srcChannelOffset);
  conv->setSourceFeatureChannelMaxCount(k.srcChannelMaxCount);
  conv->setDestinationFeatureChannelOffset(k.dstChannelOffset);
  conv->setEdgeMode(k.edge);
  const bool unormSource = k.srcFormat == Fmt::Unorm8 || k.srcFormat == Fmt::Unorm16;
  RefImage srcRef = randomRefImage(k.n, k.h, k.w, k.c ? k.c : int64_t(d.inputFeatureChannels()),
                                   unormSource ? 0.0 : -1.0, 1.0);
  roundTo(srcRef, k.srcFormat);
  auto src = makeImage(srcRef, k.srcFormat);
  const int64_t dn = k.dstN ? k.dstN : k.n;
  const int64_t dh =
      k.dstH ? k.dstH : (k.h + int64_t(d.strideInPixelsY()) - 1) / int64_t(d.strideInPixelsY()) * r;
  const int64_t dw =
      k.dstW ? k.dstW : (k.w + int64_t(d.strideInPixelsX()) - 1) / int64_t(d.strideInPixelsX()) * r;
  const int64_t dc =
      k.dstC ? k.dstC : int64_t(k.dstChannelOffset + d.outputFeatureChannels() / uint64_t(r * r));
  auto dst = Image::make(
      device(), ImageDescriptor::make(k.dstFormat, uint64_t(dw), uint64_t(dh), uint64_t(dc), uint64_t(dn)));
  checkBothPaths(*conv, d, expectedWeights(*source), srcRef, src, dst, k.lipschitz,
                 k.expectFast || (k.expectFastCpu && !onCuda()));
}

// =============================================================================================
// CNNConvolution: numerics

TEST(CNNConvolution, OddChannelCountsKernelsAndBatches) {
  const uint64_t channels[] = {1, 3, 5, 7, 13, 17};
  const std::pair<uint64_t, uint64_t> kernels[] = {{1, 1}, {3, 3}, {5, 5}, {3, 1}, {1, 5}};
  int i = 0;
  for (uint64_t ci : channels) {
    for (auto [kw, kh] : kernels) {
      const uint64_t co = channels[(i + 2) % 6];
      Case k;
      k.desc = conv(kw, kh, ci, co);
      k.n = 1 + i % 3;
      k.h = 5 + i % 4;
      k.w = 6 + i % 5;
      k.bias = i % 2 == 0;
      k.expectFast = true;
      SCOPED_TRACE(describe(k.desc) + " n=" + std::to_string(k.n));
      runCase(k);
      ++i;
    }
  }
}

TEST(CNNConvolution, StridesDilationAndEvenKernels) {
  struct S {
    uint64_t kw, kh, sx, sy, dx, dy;
  };
  const S shapes[] = {{3, 3, 2, 2, 1, 1}, {3, 3, 3, 1, 1, 1}, {3, 3, 1, 1, 2, 2}, {3, 5, 2, 1, 1, 3},
                      {2, 2, 1, 1, 1, 1}, {4, 4, 2, 2, 1, 1}, {2, 3, 1, 2, 2, 1}, {1, 1, 2, 2, 1, 1},
                      {5, 5, 2, 2, 2, 2}, {4, 2, 3, 3, 1, 2}, {3, 3, 5, 5, 1, 1}};
  int i = 0;
  for (const S& s : shapes) {
    Case k;
    k.desc = conv(s.kw, s.kh, 3 + i % 3, 5 + i % 4, s.sx, s.sy, s.dx, s.dy);
    k.h = 11 + i % 3;
    k.w = 13 - i % 4;
    k.n = 1 + i % 2;
    k.expectFast = true;
    SCOPED_TRACE(describe(k.desc));
    runCase(k);
    ++i;
  }
}

TEST(CNNConvolution, Groups) {
  struct G {
    uint64_t ci, co, g, k, s;
  };
  const G shapes[] = {{6, 9, 3, 3, 1},  {4, 4, 2, 1, 1}, {8, 12, 4, 3, 2},
                      {5, 10, 5, 3, 1}, {6, 2, 2, 5, 1}, {9, 3, 3, 2, 1}};
  for (const G& s : shapes) {
    Case k;
    k.desc = conv(s.k, s.k, s.ci, s.co, s.s, s.s, 1, 1, s.g);
    k.n = 2;
    k.expectFast = true;
    SCOPED_TRACE(describe(k.desc));
    runCase(k);
  }
}

TEST(CNNConvolution, ResNetStemSevenBySevenStrideTwo) {
  // 7×7/2 with MPS "Same" padding (offset 0 ↔ PyTorch padding 3): cuDNN's implied right padding is
  // never reached, so the fast path must take it.
  Case k;
  k.desc = conv(7, 7, 3, 8, 2, 2);
  k.h = 32;
  k.w = 30;
  k.expectFast = true;
  runCase(k);
  k.n = 2;
  k.h = 23;
  k.w = 21;
  runCase(k);
}

TEST(CNNConvolution, EveryFusedNeuron) {
  for (const auto& nc : everyNeuron(7)) {
    for (bool bias : {true, false}) {
      Case k;
      k.desc = conv(3, 3, 5, 7);
      k.desc.setFusedNeuronDescriptor(nc.neuron);
      k.bias = bias;
      k.n = 2;
      k.lipschitz = nc.lipschitz;
      k.expectFast = true;
      SCOPED_TRACE(describe(k.desc) + (bias ? " bias" : " no bias"));
      runCase(k);
    }
  }
}

TEST(CNNConvolution, FusedNeuronOnStridedDestinationView) {
  // The neuron applied where the fast path cannot write the destination in place (a channel range
  // of a wider image, a clip window): every neuron path of the fast implementation.
  for (const auto& nc : everyNeuron(6)) {
    Case k;
    k.desc = conv(3, 3, 4, 6);
    k.desc.setFusedNeuronDescriptor(nc.neuron);
    k.dstChannelOffset = 2;
    k.dstC = 10;
    k.clip = {{1, 1, 0}, {5, 6, 1}};
    k.lipschitz = nc.lipschitz;
    SCOPED_TRACE(describe(k.desc));
    runCase(k);
  }
}

TEST(CNNConvolution, LegacyNeuronSetters) {
  Case k;
  k.desc = conv(3, 3, 4, 5);
  k.desc.setNeuronType(CNNNeuronType::ReLU, 0.25f, 0.0f);
  EXPECT_EQ(k.desc.neuronType(), CNNNeuronType::ReLU);
  EXPECT_EQ(k.desc.neuronParameterA(), 0.25f);
  EXPECT_EQ(k.desc.fusedNeuronDescriptor().a(), 0.25f);
  runCase(k);
  k.desc.setNeuronType(CNNNeuronType::Linear, -1.5f, 0.25f);
  EXPECT_EQ(k.desc.neuronParameterB(), 0.25f);
  k.lipschitz = 1.5;
  runCase(k);
  k.desc.setNeuronToPReLUWithParametersA({0.1f, -0.2f, 0.3f, 0.4f, -0.5f});
  EXPECT_EQ(k.desc.neuronType(), CNNNeuronType::PReLU);
  k.lipschitz = 1;
  runCase(k);
}

TEST(CNNConvolution, NaNInputPropagatesThroughFusedNeurons) {
  for (auto type : {CNNNeuronType::ReLU, CNNNeuronType::Linear, CNNNeuronType::None}) {
    auto d = conv(3, 3, 2, 3);
    d.setFusedNeuronDescriptor(NNNeuronDescriptor::make(type));
    auto source = makeSource(d);
    auto c = CNNConvolution::make(device(), source);
    RefImage srcRef = randomRefImage(1, 6, 6, 2);
    srcRef.at(0, 2, 3, 1) = std::nan("");
    auto src = makeImage(srcRef);
    auto dst = Image::make(device(), ImageDescriptor::make(Fmt::Float32, 6, 6, 3));
    SCOPED_TRACE(toString(type));
    checkBothPaths(*c, d, expectedWeights(*source), srcRef, src, dst, 1.0, true);
  }
}

TEST(CNNConvolution, BatchNormalizationFolding) {
  for (bool bias : {true, false}) {
    for (bool nulls : {false, true}) {
      auto d = conv(3, 3, 5, 6);
      auto mean = randomValues(6, -0.5, 0.5), var = randomValues(6, 0.2, 2.0), gamma = randomValues(6, -2, 2),
           beta = randomValues(6, -1, 1);
      std::vector<float> m(mean.begin(), mean.end()), v(var.begin(), var.end()),
          g(gamma.begin(), gamma.end()), b(beta.begin(), beta.end());
      if (nulls)
        d.setBatchNormalizationParametersForInference(m.data(), nullptr, g.data(), nullptr, 1e-3f);
      else
        d.setBatchNormalizationParametersForInference(m.data(), v.data(), g.data(), b.data(), 1e-3f);
      d.setFusedNeuronDescriptor(NNNeuronDescriptor::make(CNNNeuronType::ReLU));
      auto source = makeSource(d, bias);
      auto c = CNNConvolution::make(device(), source);
      // The kernel's effective weights are the independently folded ones.
      const auto w = expectedWeights(*source);
      ASSERT_EQ(c->effectiveWeights().size(), w.weights.size());
      for (size_t i = 0; i < w.weights.size(); ++i)
        EXPECT_NEAR(c->effectiveWeights()[i], w.weights[i], 1e-6 * std::fabs(w.weights[i]));
      ASSERT_EQ(c->effectiveBiases().size(), 6u);
      for (size_t i = 0; i < 6; ++i) EXPECT_NEAR(c->effectiveBiases()[i], w.biases[i], 1e-6);
      // And the output is neuron(BN(conv + bias)) computed from scratch.
      RefImage srcRef = randomRefImage(2, 7, 6, 5);
      auto src = makeImage(srcRef);
      auto dst = Image::make(device(), ImageDescriptor::make(Fmt::Float32, 6, 7, 6, 2));
      SCOPED_TRACE(std::string(bias ? "bias" : "no bias") + (nulls ? ", null arrays" : ""));
      checkBothPaths(*c, d, w, srcRef, src, dst, 1.0, true);
      // Independent check of §2.1 on one value: BN applied after the convolution.
      CNNConvolutionDescriptor plainDesc = conv(3, 3, 5, 6);
      ref::ConvolutionWeights raw;
      for (float x : source->floats) raw.weights.push_back(roundTrip(x, Fmt::Float32));
      for (float x : source->bias) raw.biases.push_back(x);
      RefImage unfolded(2, 7, 6, 6);
      ref::convolutionKernel(plainDesc, raw, {}, srcRef, unfolded);
      const auto actual = download(*dst);
      for (int64_t o = 0; o < 6; ++o) {
        const double varO = nulls ? 1.0 : double(v[size_t(o)]), betaO = nulls ? 0.0 : double(b[size_t(o)]);
        const double bn =
            (unfolded.at(1, 3, 2, o) - m[size_t(o)]) / std::sqrt(varO + double(1e-3f)) * g[size_t(o)] + betaO;
        EXPECT_NEAR(actual.at(1, 3, 2, o), std::max(bn, 0.0),
                    1e-2 * (1 + std::fabs(bn)));  // weights are float16
      }
    }
  }
}

TEST(CNNConvolution, PlacementOffsetsClipAndChannelRanges) {
  std::vector<Case> cases;
  Case base;
  base.desc = conv(3, 3, 4, 5);
  base.n = 2;
  base.expectFastCpu = true;
  {
    Case k = base;  // negative offset: the first windows read above/left of the image
    k.offset = {-2, -1, 0};
    cases.push_back(k);
  }
  {
    Case k = base;  // positive offset and a destination larger than the source's reach
    k.offset = {3, 2, 0};
    k.dstW = 9;
    k.dstH = 11;
    cases.push_back(k);
  }
  {
    Case k = base;  // a destination much smaller than the source: the read window is narrowed
    k.desc = conv(1, 3, 4, 5, 1, 2);
    k.offset = {2, 1, 0};
    k.h = 13;
    k.w = 12;
    k.dstW = 4;
    k.dstH = 3;
    cases.push_back(k);
  }
  {
    Case k = base;  // windows entirely outside the source: bias and neuron only
    k.offset = {40, -30, 0};
    k.desc.setFusedNeuronDescriptor(NNNeuronDescriptor::make(CNNNeuronType::ReLU, 0.5f));
    k.expectFastCpu = false;
    cases.push_back(k);
  }
  {
    Case k = base;  // clip partly outside the destination
    k.clip = {{3, 2, 0}, {100, 4, 2}};
    cases.push_back(k);
  }
  {
    Case k = base;  // clip z range and offset.z: image 1 of the source into image 2 of the destination
    k.n = 3;
    k.dstN = 4;
    k.offset = {1, 0, 1};
    k.clip = {{0, 1, 2}, {6, 5, 2}};
    cases.push_back(k);
  }
  {
    Case k = base;  // channel ranges: source channels [3, 7) of 9, destination channels [2, 7) of 8
    k.c = 9;
    k.srcChannelOffset = 3;
    k.dstChannelOffset = 2;
    k.dstC = 8;
    cases.push_back(k);
  }
  {
    Case k = base;  // sourceFeatureChannelMaxCount limits the read; the rest is ignored
    k.c = 11;
    k.srcChannelOffset = 1;
    k.srcChannelMaxCount = 4;
    cases.push_back(k);
  }
  {
    Case k = base;  // C_read > Ci: extra source channels are ignored
    k.c = 7;
    cases.push_back(k);
  }
  {
    Case k = base;  // Clamp edge with a negative offset (the plain path)
    k.edge = ImageEdgeMode::Clamp;
    k.offset = {-1, -2, 0};
    k.expectFastCpu = false;
    cases.push_back(k);
  }
  {
    Case k = base;  // Clamp edge whose taps all fall inside: the fast path may take it
    k.edge = ImageEdgeMode::Clamp;
    k.offset = {1, 1, 0};
    k.dstW = 6;
    k.dstH = 7;
    cases.push_back(k);
  }
  {
    Case k = base;  // Clamp with strides, dilation and an even kernel
    k.desc = conv(4, 2, 3, 4, 2, 3, 2, 1);
    k.edge = ImageEdgeMode::Clamp;
    k.offset = {-3, 4, 0};
    k.expectFastCpu = false;
    cases.push_back(k);
  }
  int i = 0;
  for (const Case& k : cases) {
    SCOPED_TRACE("placement case " + std::to_string(i++));
    runCase(k);
  }
}

TEST(CNNConvolution, AutoModeDestinationSizingWithPaddingMethods) {
  using M = NNPaddingMethod;
  const NNPaddingMethod methods[] = {
      M::AlignCentered | M::AddRemainderToTopLeft | M::SizeSame,
      M::AlignCentered | M::AddRemainderToBottomRight | M::SizeSame,
      M::AlignCentered | M::AddRemainderToTopLeft | M::SizeValidOnly,
      M::AlignCentered | M::AddRemainderToTopRight | M::SizeFull,
      M::AlignTopLeft | M::SizeSame,
      M::AlignBottomRight | M::SizeFull,
      M::AlignCentered | M::AddRemainderToBottomLeft | M::SizeValidOnly,
  };
  struct S {
    uint64_t kw, kh, s, dil, r;
  };
  const S shapes[] = {{3, 3, 1, 1, 1}, {2, 2, 1, 1, 1}, {4, 3, 2, 1, 1},
                      {3, 3, 2, 2, 1}, {3, 3, 1, 1, 2}, {5, 3, 3, 1, 1}};
  for (auto m : methods) {
    for (const S& sh : shapes) {
      CNNConvolutionDescriptor d;
      if (sh.r > 1) {
        auto sp = CNNSubPixelConvolutionDescriptor::make(sh.kw, sh.kh, 3, 4 * sh.r * sh.r);
        sp.setSubPixelScaleFactor(sh.r);
        d = sp;
      } else {
        d = conv(sh.kw, sh.kh, 3, 5);
      }
      d.setStrideInPixelsX(sh.s);
      d.setStrideInPixelsY(sh.s);
      d.setDilationRateX(sh.dil);
      d.setDilationRateY(sh.dil);
      auto source = makeSource(d);
      auto c = CNNConvolution::make(device(), source);
      c->setPadding(NNDefaultPadding::paddingWithMethod(m));
      c->setDestinationImageAllocator(Image::defaultAllocator());  // readable from the host
      c->setDestinationFeatureChannelOffset(1);
      const int64_t H = 10, W = 9;
      RefImage srcRef = randomRefImage(1, H, W, 3);
      auto src = makeImage(srcRef);
      ImagePtr dst;
      runAndWait([&](CommandBufferPtr cb) { dst = c->encode(cb, src); });
      SCOPED_TRACE(describe(d) + " method " + describePaddingMethod(m));
      // Spec 00 §5.2 / §5.3, written out here: size and offset of one dimension.
      auto expect = [&](int64_t S, int64_t k, bool isX) {
        const int64_t style = (uint32_t(m) & 48) == 0 ? -1 : (uint32_t(m) & 48) == 16 ? 0 : 1;
        const int64_t s = int64_t(sh.s);
        const int64_t dsz = (S + style * (k - 1) + s - 1) / s;
        const int64_t extra = (dsz - 1) * s + k - S;
        const uint32_t align = uint32_t(m) & 3, rem = uint32_t(m) & 12;
        int64_t lead = 0;
        if (align == 0) {
          const bool toLead = isX ? (rem == 0 || rem == 8) : (rem == 0 || rem == 4);
          lead = (extra + (toLead ? 1 : 0)) / 2;
        } else if (align == 1) {
          lead = extra;
        }
        return std::pair{dsz, k / 2 - lead};
      };
      const int64_t kWd = int64_t((sh.kw - 1) * sh.dil + 1), kHd = int64_t((sh.kh - 1) * sh.dil + 1);
      auto [dw, ox] = expect(W, kWd, true);
      auto [dh, oy] = expect(H, kHd, false);
      ASSERT_EQ(int64_t(dst->width()), dw * int64_t(sh.r));
      ASSERT_EQ(int64_t(dst->height()), dh * int64_t(sh.r));
      EXPECT_EQ(dst->featureChannels(), 1 + d.outputFeatureChannels() / (sh.r * sh.r));
      EXPECT_EQ(c->offset().x, ox);
      EXPECT_EQ(c->offset().y, oy);
      // Values (channel 0 of the new image is not written and stays 0).
      RefImage expected =
          RefImage(1, int64_t(dst->height()), int64_t(dst->width()), int64_t(dst->featureChannels()));
      Reference ref = reference(d, expectedWeights(*source), placementOf(*c), srcRef, expected);
      EXPECT_TRUE(matches(download(*dst), ref, Fmt::Float32, Fmt::Float32));
    }
  }
}

TEST(CNNConvolution, ImageFormats) {
  const std::pair<Fmt, Fmt> formats[] = {{Fmt::Float16, Fmt::Float16},  {Fmt::Float32, Fmt::Float16},
                                         {Fmt::Float16, Fmt::Float32},  {Fmt::Unorm8, Fmt::Unorm8},
                                         {Fmt::BFloat16, Fmt::Float32}, {Fmt::Float32, Fmt::Unorm16},
                                         {Fmt::Unorm16, Fmt::BFloat16}};
  for (auto [sf, df] : formats) {
    for (int variant = 0; variant < 2; ++variant) {
      Case k;
      k.desc = variant ? conv(3, 3, 6, 4, 2, 2, 1, 1, 2) : conv(3, 3, 5, 7);
      k.srcFormat = sf;
      k.dstFormat = df;
      k.n = 2;
      k.expectFastCpu = true;  // oneDNN converts other formats on the way in and out
      if (df == Fmt::Unorm8 || df == Fmt::Unorm16)
        k.desc.setFusedNeuronDescriptor(NNNeuronDescriptor::make(CNNNeuronType::Sigmoid));
      SCOPED_TRACE(toString(sf) + " -> " + toString(df) + " " + describe(k.desc));
      runCase(k);
    }
  }
}

TEST(CNNConvolution, SubPixel) {
  struct S {
    uint64_t r, ci, coOut, k, s;
    int64_t h, w;
  };
  const S shapes[] = {{2, 3, 2, 3, 1, 8, 7},
                      {3, 2, 3, 3, 1, 9, 10},
                      {2, 5, 1, 1, 1, 5, 5},
                      {2, 4, 3, 2, 2, 7, 9},
                      {4, 3, 1, 3, 1, 12, 13}};
  for (const S& sh : shapes) {
    auto d = CNNSubPixelConvolutionDescriptor::make(sh.k, sh.k, sh.ci, sh.coOut * sh.r * sh.r);
    d.setSubPixelScaleFactor(sh.r);
    d.setStrideInPixelsX(sh.s);
    d.setStrideInPixelsY(sh.s);
    d.setFusedNeuronDescriptor(NNNeuronDescriptor::make(CNNNeuronType::TanH, 1.0f, 1.0f));
    for (int variant = 0; variant < 3; ++variant) {
      Case k;
      k.desc = d;
      k.h = sh.h;
      k.w = sh.w;
      k.n = 2;
      if (variant == 1) {  // odd clip: the last block of r×r outputs is cut
        k.clip = {{1, 2, 0}, {uint64_t(sh.r * 2 + 1), uint64_t(sh.r + 1), 2}};
        k.dstChannelOffset = 1;
        k.dstC = int64_t(sh.coOut) + 2;
      }
      if (variant == 2) k.dstFormat = Fmt::Float16;
      k.expectFastCpu = true;
      SCOPED_TRACE(describe(d) + " variant " + std::to_string(variant));
      runCase(k);
    }
  }
}

TEST(CNNConvolution, DepthWise) {
  struct S {
    uint64_t ci, m, k, s, dil;
  };
  const S shapes[] = {{3, 1, 3, 1, 1}, {5, 2, 3, 1, 1}, {4, 3, 3, 2, 1},
                      {7, 1, 5, 1, 2}, {2, 4, 2, 1, 1}, {6, 2, 3, 2, 2}};
  for (const S& sh : shapes) {
    auto d = CNNDepthWiseConvolutionDescriptor::make(sh.k, sh.k, sh.ci, sh.ci * sh.m);
    d.setStrideInPixelsX(sh.s);
    d.setStrideInPixelsY(sh.s);
    d.setDilationRateX(sh.dil);
    d.setDilationRateY(sh.dil);
    EXPECT_EQ(d.channelMultiplier(), sh.m);
    Case k;
    k.desc = d;
    k.n = 2;
    k.h = 10;
    k.w = 11;
    k.expectFast = true;
    SCOPED_TRACE(describe(d));
    runCase(k);
    auto c = CNNConvolution::make(device(), makeSource(d));
    EXPECT_EQ(c->channelMultiplier(), sh.m);
    EXPECT_EQ(c->groups(), 1u);
  }
}

TEST(CNNConvolution, EncodeBatchAndMultiImageSources) {
  auto d = conv(3, 3, 3, 4, 2, 1);
  d.setFusedNeuronDescriptor(NNNeuronDescriptor::make(CNNNeuronType::ELU));
  auto source = makeSource(d);
  auto c = CNNConvolution::make(device(), source);
  const auto w = expectedWeights(*source);
  // encodeBatch: the k-th source into the k-th destination.
  ImageBatch sources, destinations;
  std::vector<RefImage> refs, poisoned;
  for (int k = 0; k < 3; ++k) {
    refs.push_back(randomRefImage(1, 6, 7, 3));
    sources.push_back(makeImage(refs.back()));
    destinations.push_back(Image::make(device(), ImageDescriptor::make(Fmt::Float32, 4, 6, 4)));
    poisoned.push_back(poison(*destinations.back()));
  }
  runAndWait([&](CommandBufferPtr cb) { c->encodeBatch(cb, sources, destinations); });
  for (int k = 0; k < 3; ++k)
    EXPECT_TRUE(matches(download(*destinations[size_t(k)]),
                        reference(d, w, placementOf(*c), refs[size_t(k)], poisoned[size_t(k)]), Fmt::Float32,
                        Fmt::Float32));
  // Auto-mode batch.
  c->setDestinationImageAllocator(Image::defaultAllocator());
  ImageBatch results;
  runAndWait([&](CommandBufferPtr cb) { results = c->encodeBatch(cb, sources); });
  ASSERT_EQ(results.size(), 3u);
  for (int k = 0; k < 3; ++k) {
    RefImage zero(1, int64_t(results[size_t(k)]->height()), int64_t(results[size_t(k)]->width()), 4);
    EXPECT_TRUE(matches(download(*results[size_t(k)]),
                        reference(d, w, placementOf(*c), refs[size_t(k)], zero), Fmt::Float32, Fmt::Float32));
  }
}

TEST(CNNConvolution, FastPathIsUsedAndAgreesWithPlain) {
  // Mainstream shapes every fast path must take: symmetric "same"/"valid" placements, groups,
  // strides, dilation, bias, ReLU; float32 images (and float16 on CUDA).
  if (!hasConvolutionFastPath()) GTEST_SKIP() << "this build has no fast convolution path on this device";
  struct S {
    uint64_t k, ci, co, s, dil, g;
    int64_t offset;
  };
  const S shapes[] = {{3, 8, 16, 1, 1, 1, 0}, {1, 16, 8, 1, 1, 1, 0}, {3, 8, 8, 2, 1, 1, 0},
                      {5, 4, 6, 1, 2, 1, 0},  {3, 8, 8, 1, 1, 4, 0},  {3, 6, 6, 1, 1, 1, 1}};
  for (const S& sh : shapes) {
    Case k;
    k.desc = conv(sh.k, sh.k, sh.ci, sh.co, sh.s, sh.s, sh.dil, sh.dil, sh.g);
    k.desc.setFusedNeuronDescriptor(NNNeuronDescriptor::make(CNNNeuronType::ReLU));
    k.offset = {sh.offset, sh.offset, 0};
    k.h = 12;
    k.w = 12;
    if (sh.offset) k.dstH = k.dstW = 12 - int64_t(sh.k - 1);  // "valid": windows inside the source
    k.n = 2;
    k.expectFast = true;
    SCOPED_TRACE(describe(k.desc));
    runCase(k);
    if (onCuda()) {
      k.srcFormat = k.dstFormat = Fmt::Float16;
      runCase(k);
    }
  }
}

TEST(CNNConvolution, KernelReleasedBeforeTheWorkRuns) {
  auto d = conv(3, 3, 4, 4);
  auto source = makeSource(d);
  const auto w = expectedWeights(*source);
  RefImage srcRef = randomRefImage(1, 6, 6, 4);
  auto src = makeImage(srcRef);
  auto dst = Image::make(device(), ImageDescriptor::make(Fmt::Float32, 6, 6, 4));
  const RefImage poisoned = poison(*dst);
  auto cb = queue()->commandBuffer();
  ref::UnaryPlacement placement;
  {
    auto c = CNNConvolution::make(device(), source);
    c->encode(cb, src, dst);
    placement = placementOf(*c);
  }  // the kernel is gone before commit; the work item keeps its weights
  cb->commit();
  cb->waitUntilCompleted();
  EXPECT_TRUE(
      matches(download(*dst), reference(d, w, placement, srcRef, poisoned), Fmt::Float32, Fmt::Float32));
}

TEST(CNNConvolution, ConcurrentEncodesFromSeveralQueues) {
  auto d = conv(3, 3, 6, 8);
  auto source = makeSource(d);
  auto c = CNNConvolution::make(device(), source);
  const auto w = expectedWeights(*source);
  RefImage srcRef = randomRefImage(2, 9, 9, 6);
  auto src = makeImage(srcRef);
  RefImage expected(2, 9, 9, 8);
  ref::convolutionKernel(d, w, placementOf(*c), srcRef, expected);
  std::vector<ImagePtr> dsts;
  for (int t = 0; t < 4; ++t)
    dsts.push_back(Image::make(device(), ImageDescriptor::make(Fmt::Float32, 9, 9, 8, 2)));
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      auto q = device()->newCommandQueue();
      for (int i = 0; i < 5; ++i) {
        auto cb = q->commandBuffer();
        c->encode(cb, src, dsts[size_t(t)]);
        cb->commit();
        cb->waitUntilCompleted();
      }
    });
  }
  for (auto& t : threads) t.join();
  for (const auto& dst : dsts) {
    RefImage zero(2, 9, 9, 8);
    EXPECT_TRUE(
        matches(download(*dst), reference(d, w, placementOf(*c), srcRef, zero), Fmt::Float32, Fmt::Float32));
  }
}

TEST(CNNConvolution, PropertiesAndDefaults) {
  auto d = conv(5, 3, 6, 9, 2, 1, 1, 2, 3);
  auto source = makeSource(d);
  source->name = "my-layer";
  auto c = CNNConvolution::make(device(), source);
  EXPECT_STREQ(c->className(), "CNNConvolution");
  EXPECT_EQ(c->label(), "my-layer");
  EXPECT_EQ(c->kernelWidth(), 5u);
  EXPECT_EQ(c->kernelHeight(), 3u);
  EXPECT_EQ(c->strideInPixelsX(), 2u);
  EXPECT_EQ(c->strideInPixelsY(), 1u);
  EXPECT_EQ(c->dilationRateX(), 1u);
  EXPECT_EQ(c->dilationRateY(), 2u);
  EXPECT_EQ(c->inputFeatureChannels(), 6u);
  EXPECT_EQ(c->outputFeatureChannels(), 9u);
  EXPECT_EQ(c->groups(), 3u);
  EXPECT_EQ(c->subPixelScaleFactor(), 1u);
  EXPECT_EQ(c->channelMultiplier(), 0u);
  EXPECT_EQ(c->dataSource(), source);
  EXPECT_FALSE(c->isBackwards());
  EXPECT_FALSE(c->allowsTF32());  // float32 means float32 unless the user opts in
  EXPECT_EQ(c->accumulatorPrecisionOption(), NNConvolutionAccumulatorPrecisionOption::Float);
  // Padding default: AlignCentered | AddRemainderToTopLeft | SizeSame.
  EXPECT_EQ(uint32_t(c->padding()->paddingMethod()), 16u);
  // The kernel captured a copy of the descriptor.
  d.setFusedNeuronDescriptor(NNNeuronDescriptor::make(CNNNeuronType::ReLU));
  EXPECT_EQ(c->fusedNeuronDescriptor().neuronType(), CNNNeuronType::None);
}

TEST(CNNConvolution, LegacyFloatWeightsConstructor) {
  auto d = conv(3, 2, 4, 6, 1, 1, 1, 1, 2);
  d.setFusedNeuronDescriptor(NNNeuronDescriptor::make(CNNNeuronType::Sigmoid));
  auto source = makeSource(d);
  for (bool bias : {true, false}) {
    CNNConvolution c(device(), d, source->floats.data(), bias ? source->bias.data() : nullptr);
    EXPECT_EQ(c.dataSource(), nullptr);
    ref::ConvolutionWeights w;
    for (float x : source->floats) w.weights.push_back(x);  // used as given: no float16 rounding
    if (bias)
      for (float x : source->bias) w.biases.push_back(x);
    EXPECT_EQ(c.effectiveWeights(), source->floats);
    RefImage srcRef = randomRefImage(1, 7, 7, 4);
    auto src = makeImage(srcRef);
    auto dst = Image::make(device(), ImageDescriptor::make(Fmt::Float32, 7, 7, 6));
    checkBothPaths(c, d, w, srcRef, src, dst, 1.0, true);
    expectInvalid([&] { c.reloadWeightsAndBiasesFromDataSource(); }, {"CNNConvolution", "dataSource"});
  }
  expectInvalid([&] { CNNConvolution c(device(), d, nullptr, nullptr); }, {"CNNConvolution", "weights"});
}

// =============================================================================================
// CNNConvolution: weights, reload and the data source protocol

TEST(CNNConvolutionDataSource, KernelWeightsDataTypeRounding) {
  auto d = conv(3, 3, 3, 4);
  auto source = makeSource(d);
  source->kernelType.reset();  // the protocol's default: weights rounded to float16 (QUIRK)
  auto rounded = CNNConvolution::make(device(), source);
  size_t changed = 0;
  for (size_t i = 0; i < source->floats.size(); ++i) {
    const float h = detail::halfToFloat(detail::floatToHalf(source->floats[i]));
    EXPECT_EQ(rounded->effectiveWeights()[i], h);
    changed += h != source->floats[i];
  }
  EXPECT_GT(changed, source->floats.size() / 2);        // random float32 weights are rarely float16 values
  EXPECT_EQ(rounded->effectiveBiases(), source->bias);  // biases stay float32
  source->kernelType = DataType::Float16;
  EXPECT_EQ(CNNConvolution::make(device(), source)->effectiveWeights(), rounded->effectiveWeights());
  source->kernelType = DataType::Float32;
  EXPECT_EQ(CNNConvolution::make(device(), source)->effectiveWeights(), source->floats);
  // The rounded kernel computes with the rounded weights.
  source->kernelType.reset();
  RefImage srcRef = randomRefImage(1, 6, 5, 3);
  auto src = makeImage(srcRef);
  auto dst = Image::make(device(), ImageDescriptor::make(Fmt::Float32, 5, 6, 4));
  checkBothPaths(*rounded, d, expectedWeights(*source), srcRef, src, dst, 1.0, true);
}

TEST(CNNConvolutionDataSource, Float16AndUInt8Weights) {
  auto d = conv(3, 3, 5, 6, 1, 1, 1, 1, 1);
  for (int kind = 0; kind < 3; ++kind) {
    auto source = makeSource(d);
    source->kernelType.reset();
    if (kind == 0) {
      source->type = DataType::Float16;
      for (float w : source->floats) source->halves.push_back(detail::floatToHalf(w));
    } else {
      source->type = DataType::UInt8;
      for (double u : randomValues(source->floats.size(), 0, 255)) source->bytes.push_back(uint8_t(u));
      source->bytes[0] = 0;
      source->bytes[1] = 255;
      if (kind == 1) {
        source->quantization = CNNWeightsQuantizationType::Linear;
        for (uint64_t o = 0; o < 6; ++o) {
          const auto lo = randomValues(1, -0.6, -0.1)[0], hi = randomValues(1, 0.1, 0.6)[0];
          source->ranges.push_back({float(lo), float(hi)});
        }
      } else {
        source->quantization = CNNWeightsQuantizationType::LookupTable;
        for (double v : randomValues(256, -0.3, 0.3)) source->table.push_back(float(v));
      }
    }
    auto c = CNNConvolution::make(device(), source);
    const auto w = expectedWeights(*source);
    for (size_t i = 0; i < w.weights.size(); ++i)
      ASSERT_EQ(double(c->effectiveWeights()[i]), w.weights[i]) << i;
    if (kind == 1) {  // u = 0 and u = 255 decode to the range ends (rounded to float16)
      EXPECT_EQ(c->effectiveWeights()[0], roundTrip(source->ranges[0][0], Fmt::Float16));
      EXPECT_EQ(c->effectiveWeights()[1], roundTrip(source->ranges[0][1], Fmt::Float16));
    }
    RefImage srcRef = randomRefImage(2, 6, 7, 5);
    auto src = makeImage(srcRef);
    auto dst = Image::make(device(), ImageDescriptor::make(Fmt::Float32, 7, 6, 6, 2));
    SCOPED_TRACE("weights kind " + std::to_string(kind));
    checkBothPaths(*c, d, w, srcRef, src, dst, 1.0, true);
  }
}

TEST(CNNConvolutionDataSource, LoadCopyPurgeLifecycle) {
  auto d = conv(3, 3, 2, 3);
  auto source = makeSource(d);
  auto c = CNNConvolution::make(device(), source);
  EXPECT_GE(source->loads, 1);
  EXPECT_EQ(source->loads, source->purges);
  EXPECT_EQ(source->accessesWhileUnloaded, 0);
  // The kernel copied everything: the source's buffers may change or go away.
  const auto before = c->effectiveWeights();
  for (float& w : source->floats) w = 7.0f;
  EXPECT_EQ(c->effectiveWeights(), before);
  // Rejected contents still get their purge.
  source->nullWeights = true;
  expectInvalid([&] { CNNConvolution::make(device(), source); }, {"CNNConvolution", "weights"});
  EXPECT_EQ(source->loads, source->purges);
  // load() == false: nothing to purge.
  source->loadResult = false;
  const int purges = source->purges;
  expectInvalid([&] { CNNConvolution::make(device(), source); }, {"CNNConvolution", "load"});
  EXPECT_EQ(source->purges, purges);
  expectInvalid([&] { CNNConvolution::make(device(), nullptr); }, {"CNNConvolution", "dataSource"});
}

TEST(CNNConvolution, ReloadWeightsAndBiasesFromDataSource) {
  auto d = conv(3, 3, 3, 4);
  d.setFusedNeuronDescriptor(NNNeuronDescriptor::make(CNNNeuronType::ReLU, 0.1f));
  auto source = makeSource(d);
  auto c = CNNConvolution::make(device(), source);
  RefImage srcRef = randomRefImage(1, 6, 6, 3);
  auto src = makeImage(srcRef);
  auto dst = Image::make(device(), ImageDescriptor::make(Fmt::Float32, 6, 6, 4));
  // New weights and biases; the neuron and shape come from the kernel's own descriptor copy.
  for (float& w : source->floats) w = float(randomValues(1, -0.4, 0.4)[0]);
  for (float& b : source->bias) b = float(randomValues(1, -1, 1)[0]);
  source->desc.setFusedNeuronDescriptor(NNNeuronDescriptor::make(CNNNeuronType::Sigmoid));
  c->reloadWeightsAndBiasesFromDataSource();
  EXPECT_EQ(source->loads, source->purges);
  source->desc.setFusedNeuronDescriptor(d.fusedNeuronDescriptor());
  checkBothPaths(*c, d, expectedWeights(*source), srcRef, src, dst, 1.0, true);
  // A reload that changes the shape is rejected and changes nothing.
  const auto weights = c->effectiveWeights();
  source->desc.setOutputFeatureChannels(8);
  expectInvalid([&] { c->reloadWeightsAndBiasesFromDataSource(); }, {"CNNConvolution", "reload"});
  EXPECT_EQ(c->effectiveWeights(), weights);
  EXPECT_EQ(source->loads, source->purges);
}

TEST(CNNConvolutionDataSource, InvalidDataSources) {
  auto d = conv(3, 3, 4, 4);
  struct Bad {
    const char* what;
    std::function<void(TestSource&)> spoil;
    std::vector<const char*> words;
  };
  const Bad cases[] = {
      {"load fails", [](TestSource& s) { s.loadResult = false; }, {"load"}},
      {"dataType Int8", [](TestSource& s) { s.type = DataType::Int8; }, {"dataType", "Int8"}},
      {"dataType BFloat16", [](TestSource& s) { s.type = DataType::BFloat16; }, {"dataType", "BFloat16"}},
      {"dataType UInt32", [](TestSource& s) { s.type = DataType::UInt32; }, {"dataType", "UInt32"}},
      {"UInt8 without quantization",
       [](TestSource& s) {
         s.type = DataType::UInt8;
         s.kernelType.reset();
         s.bytes.assign(s.floats.size(), 3);
       },
       {"weightsQuantizationType", "None"}},
      {"Linear without ranges",
       [](TestSource& s) {
         s.type = DataType::UInt8;
         s.kernelType.reset();
         s.bytes.assign(s.floats.size(), 3);
         s.quantization = CNNWeightsQuantizationType::Linear;
       },
       {"rangesForUInt8Kernel"}},
      {"LookupTable without table",
       [](TestSource& s) {
         s.type = DataType::UInt8;
         s.kernelType.reset();
         s.bytes.assign(s.floats.size(), 3);
         s.quantization = CNNWeightsQuantizationType::LookupTable;
       },
       {"lookupTableForUInt8Kernel"}},
      {"unknown quantization",
       [](TestSource& s) {
         s.type = DataType::UInt8;
         s.kernelType.reset();
         s.bytes.assign(s.floats.size(), 3);
         s.quantization = CNNWeightsQuantizationType(7);
       },
       {"weightsQuantizationType", "7"}},
      {"layout", [](TestSource& s) { s.layout = CNNConvolutionWeightsLayout(1); }, {"weightsLayout", "1"}},
      {"null weights", [](TestSource& s) { s.nullWeights = true; }, {"weights"}},
      {"Float32 kernel type with Float16 data",
       [](TestSource& s) {
         s.type = DataType::Float16;
         s.halves.assign(s.floats.size(), 0x3c00);
         s.kernelType = DataType::Float32;
       },
       {"kernelWeightsDataType", "Float32", "Float16"}},
      {"kernel type BFloat16",
       [](TestSource& s) { s.kernelType = DataType::BFloat16; },
       {"kernelWeightsDataType", "BFloat16"}},
      {"descriptor invalid",
       [](TestSource& s) { s.desc.setGroups(3); },
       {"CNNConvolutionDescriptor", "groups", "3"}},
  };
  for (const Bad& b : cases) {
    SCOPED_TRACE(b.what);
    auto source = makeSource(d);
    b.spoil(*source);
    try {
      CNNConvolution::make(device(), source);
      ADD_FAILURE() << "accepted";
    } catch (const InvalidArgument& e) {
      const std::string msg = e.what();
      EXPECT_NE(msg.find("CNNConvolution"), std::string::npos) << msg;
      for (const char* w : b.words) EXPECT_NE(msg.find(w), std::string::npos) << msg;
    }
    EXPECT_EQ(source->loads, source->purges + (source->loadResult ? 0 : 1));
  }
  // kernelWeightsDataType Float32 requires accumulatorPrecisionOption Float (checked on reload).
  auto source = makeSource(d);
  auto c = CNNConvolution::make(device(), source);
  c->setAccumulatorPrecisionOption(NNConvolutionAccumulatorPrecisionOption::Half);
  expectInvalid([&] { c->reloadWeightsAndBiasesFromDataSource(); },
                {"CNNConvolution", "kernelWeightsDataType", "accumulatorPrecisionOption"});
}

// =============================================================================================
// CNNConvolutionDescriptor

TEST(CNNConvolutionDescriptor, DefaultsAndFactories) {
  CNNConvolutionDescriptor d;
  EXPECT_EQ(d.kernelWidth(), 3u);
  EXPECT_EQ(d.kernelHeight(), 3u);
  EXPECT_EQ(d.inputFeatureChannels(), 0u);
  EXPECT_EQ(d.outputFeatureChannels(), 0u);
  EXPECT_EQ(d.strideInPixelsX(), 1u);
  EXPECT_EQ(d.strideInPixelsY(), 1u);
  EXPECT_EQ(d.groups(), 1u);
  EXPECT_EQ(d.dilationRateX(), 1u);
  EXPECT_EQ(d.dilationRateY(), 1u);
  EXPECT_EQ(d.subPixelScaleFactor(), 1u);
  EXPECT_EQ(d.fusedNeuronDescriptor().neuronType(), CNNNeuronType::None);
  EXPECT_FALSE(d.hasBatchNormalization());
  EXPECT_FALSE(d.isDepthWise());
  auto m = CNNConvolutionDescriptor::make(5, 7, 3, 8);
  EXPECT_EQ(m.kernelWidth(), 5u);
  EXPECT_EQ(m.kernelHeight(), 7u);
  EXPECT_EQ(m.inputFeatureChannels(), 3u);
  EXPECT_EQ(m.outputFeatureChannels(), 8u);
  auto sp = CNNSubPixelConvolutionDescriptor::make(3, 3, 2, 8);
  EXPECT_EQ(sp.subPixelScaleFactor(), 1u);
  EXPECT_TRUE(sp.isSubPixel());
  EXPECT_STREQ(sp.descriptorClassName(), "CNNSubPixelConvolutionDescriptor");
  auto dw = CNNDepthWiseConvolutionDescriptor::make(3, 3, 4, 12);
  EXPECT_TRUE(dw.isDepthWise());
  EXPECT_EQ(dw.channelMultiplier(), 3u);
  CNNConvolutionDescriptor copy = dw;  // copies keep what the subclass set
  EXPECT_TRUE(copy.isDepthWise());
  // Batch norm with null arrays: mean 0, variance 1, gamma 1, beta 0.
  m.setBatchNormalizationParametersForInference(nullptr, nullptr, nullptr, nullptr, 0.5f);
  EXPECT_TRUE(m.hasBatchNormalization());
  EXPECT_EQ(m.batchNormMean(), std::vector<float>(8, 0.0f));
  EXPECT_EQ(m.batchNormVariance(), std::vector<float>(8, 1.0f));
  EXPECT_EQ(m.batchNormGamma(), std::vector<float>(8, 1.0f));
  EXPECT_EQ(m.batchNormBeta(), std::vector<float>(8, 0.0f));
  EXPECT_EQ(m.batchNormEpsilon(), 0.5f);
}

TEST(CNNConvolutionDescriptor, InvalidDescriptorsAreRejectedAtKernelConstruction) {
  struct Bad {
    const char* what;
    std::function<CNNConvolutionDescriptor()> make;
    std::vector<const char*> words;
    bool strict = false;
  };
  auto base = [] { return conv(3, 3, 8, 8); };
  const Bad cases[] = {
      {"kernelWidth 0",
       [&] {
         auto d = base();
         d.setKernelWidth(0);
         return d;
       },
       {"kernelWidth", "0"}},
      {"kernelHeight 0",
       [&] {
         auto d = base();
         d.setKernelHeight(0);
         return d;
       },
       {"kernelHeight", "0"}},
      {"inputFeatureChannels unset",
       [&] { return CNNConvolutionDescriptor::make(3, 3, 0, 8); },
       {"inputFeatureChannels", "0"}},
      {"outputFeatureChannels unset",
       [&] { return CNNConvolutionDescriptor::make(3, 3, 8, 0); },
       {"outputFeatureChannels", "0"}},
      {"strideInPixelsX 0",
       [&] {
         auto d = base();
         d.setStrideInPixelsX(0);
         return d;
       },
       {"strideInPixelsX", "0"}},
      {"strideInPixelsY 0",
       [&] {
         auto d = base();
         d.setStrideInPixelsY(0);
         return d;
       },
       {"strideInPixelsY", "0"}},
      {"dilationRateX 0",
       [&] {
         auto d = base();
         d.setDilationRateX(0);
         return d;
       },
       {"dilationRateX", "0"}},
      {"dilationRateY 0",
       [&] {
         auto d = base();
         d.setDilationRateY(0);
         return d;
       },
       {"dilationRateY", "0"}},
      {"groups 0",
       [&] {
         auto d = base();
         d.setGroups(0);
         return d;
       },
       {"groups", "0"}},
      {"groups not dividing Ci",
       [&] { return conv(3, 3, 6, 8, 1, 1, 1, 1, 4); },
       {"groups", "4", "inputFeatureChannels"}},
      {"groups not dividing Co",
       [&] { return conv(3, 3, 8, 6, 1, 1, 1, 1, 4); },
       {"groups", "4", "outputFeatureChannels"}},
      {"huge kernelWidth",
       [&] {
         auto d = base();
         d.setKernelWidth(uint64_t(1) << 40);
         return d;
       },
       {"kernelWidth"}},
      {"huge dilation",
       [&] {
         auto d = base();
         d.setDilationRateY(uint64_t(1) << 23);
         return d;
       },
       {"dilationRateY"}},
      {"huge channel product",
       [&] { return CNNConvolutionDescriptor::make(1 << 12, 1 << 12, 1 << 20, 1 << 20); },
       {"outputFeatureChannels"}},
      {"subPixelScaleFactor 0",
       [&] {
         auto d = CNNSubPixelConvolutionDescriptor::make(3, 3, 2, 8);
         d.setSubPixelScaleFactor(0);
         return CNNConvolutionDescriptor(d);
       },
       {"CNNSubPixelConvolutionDescriptor", "subPixelScaleFactor", "0"}},
      {"Co not a multiple of r²",
       [&] {
         auto d = CNNSubPixelConvolutionDescriptor::make(3, 3, 2, 8);
         d.setSubPixelScaleFactor(3);
         return CNNConvolutionDescriptor(d);
       },
       {"CNNSubPixelConvolutionDescriptor", "subPixelScaleFactor", "3", "outputFeatureChannels"}},
      {"depthwise with groups",
       [&] {
         auto d = CNNDepthWiseConvolutionDescriptor::make(3, 3, 4, 8);
         d.setGroups(2);
         return CNNConvolutionDescriptor(d);
       },
       {"CNNDepthWiseConvolutionDescriptor", "groups", "2"}},
      {"depthwise Co % Ci",
       [&] { return CNNConvolutionDescriptor(CNNDepthWiseConvolutionDescriptor::make(3, 3, 4, 6)); },
       {"CNNDepthWiseConvolutionDescriptor", "outputFeatureChannels", "6"}},
      {"PReLU with too few slopes",
       [&] {
         auto d = base();
         d.setNeuronToPReLUWithParametersA({0.1f, 0.2f});
         return d;
       },
       {"fusedNeuronDescriptor", "PReLU", "2"}},
      {"neuron type out of range",
       [&] {
         auto d = base();
         NNNeuronDescriptor n;
         n.setNeuronType(CNNNeuronType::Count);
         d.setFusedNeuronDescriptor(n);
         return d;
       },
       {"fusedNeuronDescriptor", "neuronType"}},
      {"batch norm for another Co",
       [&] {
         auto d = base();
         d.setBatchNormalizationParametersForInference(nullptr, nullptr, nullptr, nullptr, 1e-3f);
         d.setOutputFeatureChannels(16);
         return d;
       },
       {"batchNormalizationParameters", "8", "16"}},
      {"strict: channels per group",
       [&] { return conv(3, 3, 6, 6, 1, 1, 1, 1, 3); },
       {"groups", "strict"},
       true},
      {"strict: depthwise multiplier",
       [&] { return CNNConvolutionDescriptor(CNNDepthWiseConvolutionDescriptor::make(3, 3, 4, 8)); },
       {"outputFeatureChannels", "strict"},
       true},
      {"strict: sub-pixel groups",
       [&] {
         auto d = CNNSubPixelConvolutionDescriptor::make(3, 3, 8, 24);
         d.setSubPixelScaleFactor(2);
         d.setGroups(2);
         return CNNConvolutionDescriptor(d);
       },
       {"subPixelScaleFactor", "strict"},
       true},
  };
  for (const Bad& b : cases) {
    SCOPED_TRACE(b.what);
    setStrictValidation(b.strict);
    CNNConvolutionDescriptor d = b.make();
    auto check = [&](const std::function<void()>& f) {
      try {
        f();
        ADD_FAILURE() << "accepted";
      } catch (const InvalidArgument& e) {
        const std::string msg = e.what();
        EXPECT_NE(msg.find("CNNConvolution"), std::string::npos) << msg;
        for (const char* w : b.words) EXPECT_NE(msg.find(w), std::string::npos) << msg;
      }
    };
    check([&] {
      auto source = std::make_shared<TestSource>();
      source->desc = d;
      source->floats.assign(64, 0.5f);  // never read: the descriptor is rejected first
      CNNConvolution::make(device(), source);
    });
    std::vector<float> weights(64, 0.5f);
    check([&] { CNNConvolution c(device(), d, weights.data(), nullptr); });
    setStrictValidation(false);
  }
  // Relaxed by default: the strict-only cases are accepted.
  EXPECT_NO_THROW(CNNConvolution::make(device(), makeSource(conv(3, 3, 6, 6, 1, 1, 1, 1, 3))));
  EXPECT_NO_THROW(
      CNNConvolution::make(device(), makeSource(CNNDepthWiseConvolutionDescriptor::make(3, 3, 4, 8))));
}

TEST(CNNConvolutionDescriptor, InvalidSetterCalls) {
  auto d = conv(3, 3, 4, 4);
  expectInvalid([&] { d.setNeuronType(CNNNeuronType::PReLU, 0.1f, 0.0f); },
                {"CNNConvolutionDescriptor", "setNeuronType", "PReLU"});
  expectInvalid([&] { d.setNeuronType(CNNNeuronType::Count, 0.0f, 0.0f); },
                {"CNNConvolutionDescriptor", "neuronType"});
  expectInvalid([&] { d.setNeuronToPReLUWithParametersA({}); },
                {"CNNConvolutionDescriptor", "setNeuronToPReLUWithParametersA"});
  auto unset = CNNConvolutionDescriptor::make(3, 3, 4, 0);
  expectInvalid(
      [&] { unset.setBatchNormalizationParametersForInference(nullptr, nullptr, nullptr, nullptr, 0); },
      {"CNNConvolutionDescriptor", "setBatchNormalizationParametersForInference", "outputFeatureChannels"});
  EXPECT_EQ(d.neuronType(), CNNNeuronType::None);  // rejected calls changed nothing
}

// =============================================================================================
// CNNConvolution: invalid encodes (spec 01 §4.3, 00 §4) leave the destination untouched

TEST(CNNConvolution, InvalidEncodesThrowAndWriteNothing) {
  auto d = conv(3, 3, 4, 6);
  auto source = makeSource(d);
  RefImage srcRef = randomRefImage(1, 6, 6, 4);
  auto src = makeImage(srcRef);
  struct Bad {
    const char* what;
    std::function<void(CNNConvolution&)> setup;
    std::function<ImagePtr()> source;
    std::function<ImagePtr()> destination;
    std::vector<const char*> words;
  };
  auto dst6 = [] { return Image::make(device(), ImageDescriptor::make(Fmt::Float32, 6, 6, 6)); };
  auto none = [](CNNConvolution&) {};
  const Bad cases[] = {
      {"source has fewer channels than inputFeatureChannels",
       none,
       [] { return makeImage(randomRefImage(1, 6, 6, 3)); },
       dst6,
       {"feature channels", "inputFeatureChannels = 4"}},
      {"channel offset leaves too few channels",
       [](CNNConvolution& c) { c.setSourceFeatureChannelOffset(1); },
       [&] { return src; },
       dst6,
       {"offset 1", "inputFeatureChannels"}},
      {"max count below inputFeatureChannels",
       [](CNNConvolution& c) { c.setSourceFeatureChannelMaxCount(3); },
       [&] { return src; },
       dst6,
       {"inputFeatureChannels"}},
      {"sourceFeatureChannelOffset >= C_src",
       [](CNNConvolution& c) { c.setSourceFeatureChannelOffset(4); },
       [&] { return src; },
       dst6,
       {"sourceFeatureChannelOffset", "4"}},
      {"destination too narrow",
       none,
       [&] { return src; },
       [] { return Image::make(device(), ImageDescriptor::make(Fmt::Float32, 6, 6, 5)); },
       {"destination featureChannels", "5"}},
      {"destination channel offset",
       [](CNNConvolution& c) { c.setDestinationFeatureChannelOffset(1); },
       [&] { return src; },
       dst6,
       {"destinationFeatureChannelOffset", "1"}},
      {"edge mode Mirror",
       [](CNNConvolution& c) { c.setEdgeMode(ImageEdgeMode::Mirror); },
       [&] { return src; },
       dst6,
       {"edgeMode", "Mirror"}},
      {"edge mode Constant",
       [](CNNConvolution& c) { c.setEdgeMode(ImageEdgeMode::Constant); },
       [&] { return src; },
       dst6,
       {"edgeMode", "Constant"}},
      {"offset out of range",
       [](CNNConvolution& c) {
         c.setOffset({int64_t(1) << 50, 0, 0});
       },
       [&] { return src; },
       dst6,
       {"offset.x"}},
      {"offset.z negative",
       [](CNNConvolution& c) {
         c.setOffset({0, 0, -1});
       },
       [&] { return src; },
       dst6,
       {"offset.z"}},
      {"clip z beyond the destination",
       [](CNNConvolution& c) {
         c.setClipRect({{0, 0, 0}, {6, 6, 2}});
       },
       [&] { return src; },
       dst6,
       {"clipRect"}},
      {"strict: channel offset not a multiple of 4",
       [](CNNConvolution& c) {
         setStrictValidation(true);
         c.setDestinationFeatureChannelOffset(2);
       },
       [&] { return src; },
       [] { return Image::make(device(), ImageDescriptor::make(Fmt::Float32, 6, 6, 8)); },
       {"destinationFeatureChannelOffset", "strict"}},
  };
  for (const Bad& b : cases) {
    SCOPED_TRACE(b.what);
    auto c = CNNConvolution::make(device(), source);
    b.setup(*c);
    ImagePtr in = b.source(), out = b.destination();
    const RefImage poisoned = poison(*out);
    auto cb = queue()->commandBuffer();
    try {
      c->encode(cb, in, out);
      ADD_FAILURE() << "accepted";
    } catch (const InvalidArgument& e) {
      const std::string msg = e.what();
      EXPECT_NE(msg.find("CNNConvolution"), std::string::npos) << msg;
      for (const char* w : b.words) EXPECT_NE(msg.find(w), std::string::npos) << msg;
    }
    setStrictValidation(false);
    cb->commit();
    cb->waitUntilCompleted();
    const RefImage after = download(*out);
    for (size_t i = 0; i < after.data.size(); ++i)
      ASSERT_TRUE(std::isnan(after.data[i]) && std::isnan(poisoned.data[i]))
          << "destination written at " << i;
  }
  // Sub-pixel: the destination needs Co / r² channels.
  auto sp = CNNSubPixelConvolutionDescriptor::make(3, 3, 4, 8);
  sp.setSubPixelScaleFactor(2);
  auto c = CNNConvolution::make(device(), makeSource(sp));
  auto narrow = Image::make(device(), ImageDescriptor::make(Fmt::Float32, 12, 12, 1));
  runAndWait([&](CommandBufferPtr cb) {
    expectInvalid([&] { c->encode(cb, src, narrow); }, {"CNNConvolution", "destination featureChannels = 1"});
  });
  // encodeBatch: a bad pair anywhere rejects the whole batch before anything is written.
  auto good = dst6(), bad = Image::make(device(), ImageDescriptor::make(Fmt::Float32, 6, 6, 2));
  const RefImage poisonedGood = poison(*good);
  auto plainConv = CNNConvolution::make(device(), source);
  runAndWait([&](CommandBufferPtr cb) {
    expectInvalid(
        [&] {
          plainConv->encodeBatch(cb, {src, src}, {good, bad});
        },
        {"CNNConvolution", "destination"});
  });
  const RefImage after = download(*good);
  for (size_t i = 0; i < after.data.size(); ++i) ASSERT_TRUE(std::isnan(after.data[i]));
  // The destination aliasing the source.
  auto wide = makeImage(randomRefImage(1, 6, 6, 10));
  runAndWait([&](CommandBufferPtr cb) {
    expectInvalid([&] { plainConv->encode(cb, wide, wide); }, {"CNNConvolution", "aliases"});
  });
}

// =============================================================================================
// PyTorch parity: torch.nn.functional.conv2d in float64 on fresh random data.

TEST(CNNConvolution, PyTorchParity) {
  const auto cases = readTorchCases("convolution.txt");
  for (const auto& tc : cases) {
    SCOPED_TRACE(tc.name);
    auto sc = [&](const char* k) { return int64_t(tc.scalars.at(k)); };
    const auto& xs = tc.shapes.at("x");
    const auto& ws = tc.shapes.at("w");
    const auto& ys = tc.shapes.at("y");
    const int64_t n = xs[0], H = xs[1], W = xs[2], Ci = xs[3], Co = ws[0], kH = ws[1], kW = ws[2];
    const int64_t groups = sc("groups"), sY = sc("strideY"), sX = sc("strideX"), dY = sc("dilationY"),
                  dX = sc("dilationX"), pY = sc("padY"), pX = sc("padX");
    CNNConvolutionDescriptor d;
    if (sc("depthwise")) {
      d = CNNDepthWiseConvolutionDescriptor::make(uint64_t(kW), uint64_t(kH), uint64_t(Ci), uint64_t(Co));
    } else {
      d = CNNConvolutionDescriptor::make(uint64_t(kW), uint64_t(kH), uint64_t(Ci), uint64_t(Co));
      d.setGroups(uint64_t(groups));
    }
    d.setStrideInPixelsX(uint64_t(sX));
    d.setStrideInPixelsY(uint64_t(sY));
    d.setDilationRateX(uint64_t(dX));
    d.setDilationRateY(uint64_t(dY));
    auto source = std::make_shared<TestSource>();
    source->desc = d;
    for (double v : tc.arrays.at("w")) source->floats.push_back(float(v));
    if (sc("hasBias"))
      for (double v : tc.arrays.at("b")) source->bias.push_back(float(v));
    auto c = CNNConvolution::make(device(), source);
    // PyTorch zero padding p ↔ MPS offset floor(kWd/2) − p with edgeMode Zero (spec 01 §4.1).
    const int64_t kWd = (kW - 1) * dX + 1, kHd = (kH - 1) * dY + 1;
    c->setOffset({kWd / 2 - pX, kHd / 2 - pY, 0});
    RefImage x(n, H, W, Ci);
    x.data = tc.arrays.at("x");
    RefImage xRounded = x;
    roundTo(xRounded, Fmt::Float32);
    auto src = makeImage(xRounded);
    auto dst = Image::make(device(), ImageDescriptor::make(Fmt::Float32, uint64_t(ys[2]), uint64_t(ys[1]),
                                                           uint64_t(ys[3]), uint64_t(ys[0])));
    ref::ConvolutionWeights w;
    for (float v : source->floats) w.weights.push_back(v);
    for (float v : source->bias) w.biases.push_back(v);
    for (bool plain : {false, true}) {
      Outcome out = encodeAndReference(*c, d, w, xRounded, src, dst, plain);
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
