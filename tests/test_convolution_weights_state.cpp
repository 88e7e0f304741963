// CNNConvolutionWeightsAndBiasesState (spec 01 §9, spec 10 §10.4.3) and the Buffer it holds: sizes,
// sub-ranges and their invalid cases; CNNConvolution / CNNFullyConnected / CNNConvolutionTranspose
// exportWeightsAndBiases and reloadWeightsAndBiases(commandBuffer, state), in command-buffer order,
// on the fast and plain paths against the float64 reference.
#include <cstring>

#include "convolution_test_support.h"

namespace mpsnn::test {
namespace {

using State = CNNConvolutionWeightsAndBiasesState;

std::vector<float> readFloats(const Buffer& b, uint64_t offset, size_t count) {
  std::vector<float> v(count);
  b.readBytes(v.data(), offset, count * sizeof(float));
  return v;
}

BufferPtr bufferOf(const std::vector<float>& values, uint64_t leadingBytes = 0) {
  auto b = Buffer::make(device(), leadingBytes + values.size() * sizeof(float));
  b->writeBytes(values.data(), leadingBytes, values.size() * sizeof(float));
  return b;
}

ref::UnaryPlacement placementOf(const CNNKernel& k) {
  return {k.offset(),
          k.clipRect(),
          k.sourceFeatureChannelOffset(),
          k.sourceFeatureChannelMaxCount(),
          k.destinationFeatureChannelOffset(),
          k.edgeMode()};
}

/// The CNNConvolution reference for `k` with weights `w` (already as the kernel computes with them).
auto convolutionReference(const CNNKernel& k, const CNNConvolutionDescriptor& desc,
                          const ref::ConvolutionWeights& w, const RefImage& src) {
  const ref::UnaryPlacement placement = placementOf(k);
  return [=](const RefImage& poisoned) {
    auto run = [&](const NNNeuronDescriptor& neuron, const ref::ConvolutionWeights& weights,
                   const RefImage& in, RefImage& out) {
      CNNConvolutionDescriptor d = desc;
      d.setFusedNeuronDescriptor(neuron);
      ref::convolutionKernel(d, weights, placement, in, out);
    };
    return referenceOf(run, desc.fusedNeuronDescriptor(), w, src, poisoned);
  };
}

ref::ConvolutionWeights doubles(const std::vector<float>& w, const std::vector<float>& b) {
  return {{w.begin(), w.end()}, {b.begin(), b.end()}};
}

// =============================================================================================
// Buffer

TEST(Buffer, ZeroFilledReadWriteAndRanges) {
  auto b = Buffer::make(device(), 64);
  EXPECT_EQ(b->length(), 64u);
  EXPECT_EQ(b->device(), device());
  std::vector<uint8_t> bytes(64, 0xaa);
  b->readBytes(bytes.data(), 0, 64);
  EXPECT_EQ(bytes, std::vector<uint8_t>(64, 0));
  const float values[3] = {1.5f, -2.0f, 3.25f};
  b->writeBytes(values, 20, sizeof(values));
  EXPECT_EQ(readFloats(*b, 20, 3), (std::vector<float>{1.5f, -2.0f, 3.25f}));
  expectInvalid([&] { b->writeBytes(values, 56, sizeof(values)); }, {"Buffer", "writeBytes", "64"});
  expectInvalid([&] { b->readBytes(bytes.data(), UINT64_MAX, 2); }, {"Buffer", "readBytes"});
  expectInvalid([&] { b->readBytes(bytes.data(), 8, UINT64_MAX - 4); }, {"Buffer", "readBytes"});
  expectInvalid([&] { b->writeBytes(nullptr, 0, 4); }, {"Buffer", "null"});
  expectInvalid([] { Buffer::make(device(), 0); }, {"Buffer", "length = 0"});
  expectInvalid([] { Buffer::make(nullptr, 8); }, {"Buffer", "device"});
  EXPECT_NO_THROW(b->readBytes(nullptr, 64, 0));  // an empty range touches nothing
}

// =============================================================================================
// The state

TEST(CNNConvolutionWeightsAndBiasesState, SizesFromDescriptors) {
  auto d = conv(3, 2, 6, 9, 1, 1, 1, 1, 3);
  State s(device(), d);
  EXPECT_EQ(s.weights()->length(), 9u * 2 * 3 * 2 * 4);
  ASSERT_NE(s.biases(), nullptr);
  EXPECT_EQ(s.biases()->length(), 9u * 4);
  EXPECT_EQ(s.weightsOffset(), 0u);
  EXPECT_EQ(s.biasesOffset(), 0u);
  EXPECT_EQ(s.resourceSize(), 9u * 2 * 3 * 2 * 4 + 9 * 4);
  EXPECT_FALSE(s.isTemporary());
  EXPECT_EQ(readFloats(*s.weights(), 0, 108), std::vector<float>(108, 0.0f));
  State depthwise(device(), CNNDepthWiseConvolutionDescriptor::make(3, 3, 4, 8));
  EXPECT_EQ(depthwise.weights()->length(), 8u * 3 * 3 * 4);
  // One buffer for both: counted once.
  auto shared = Buffer::make(device(), 4096);
  State s2(shared, 0, shared, 2048, d);
  EXPECT_EQ(s2.resourceSize(), 4096u);
  EXPECT_EQ(s2.biasesOffset(), 2048u);
}

TEST(CNNConvolutionWeightsAndBiasesState, InvalidConstruction) {
  auto d = conv(3, 3, 4, 5);  // 180 weights, 5 biases
  auto weights = Buffer::make(device(), 180 * 4 + 16), biases = Buffer::make(device(), 5 * 4);
  expectInvalid([&] { State s(nullptr, biases); }, {"CNNConvolutionWeightsAndBiasesState", "weights = null"});
  expectInvalid([&] { State s(weights, 2, biases, 0, d); },
                {"CNNConvolutionWeightsAndBiasesState", "weightsOffset = 2", "multiple of 4"});
  expectInvalid([&] { State s(weights, 0, biases, 6, d); },
                {"CNNConvolutionWeightsAndBiasesState", "biasesOffset = 6"});
  expectInvalid([&] { State s(weights, 20, biases, 0, d); },
                {"CNNConvolutionWeightsAndBiasesState", "weightsOffset = 20", "720"});
  expectInvalid([&] { State s(weights, 0, biases, 4, d); },
                {"CNNConvolutionWeightsAndBiasesState", "biasesOffset = 4", "20"});
  expectInvalid([&] { State s(weights, UINT64_MAX - 3, biases, 0, d); },
                {"CNNConvolutionWeightsAndBiasesState", "weightsOffset"});
  expectInvalid([&] { State s(weights, 0, biases, 0, conv(3, 3, 4, 5, 1, 1, 1, 1, 3)); },
                {"CNNConvolutionWeightsAndBiasesState", "groups", "3"});
  expectInvalid([&] { State s(device(), CNNConvolutionDescriptor::make(3, 3, 0, 5)); },
                {"CNNConvolutionWeightsAndBiasesState", "inputFeatureChannels", "0"});
  EXPECT_NO_THROW(State(weights, 16, nullptr, 3, d));  // no biases: their offset is irrelevant
}

// =============================================================================================
// Export and reload on the kernels

TEST(CNNConvolutionWeightsAndBiasesState, ExportHoldsTheKernelsWeights) {
  auto d = conv(3, 3, 4, 5, 1, 1, 1, 1, 1);
  auto mean = randomValues(5, -0.5, 0.5);
  std::vector<float> m(mean.begin(), mean.end());
  d.setBatchNormalizationParametersForInference(m.data(), nullptr, nullptr, nullptr, 1e-3f);
  for (bool bias : {true, false}) {
    auto source = makeSource(d, bias);
    source->kernelType.reset();  // float16 weights inside the kernel
    auto c = CNNConvolution::make(device(), source);
    std::shared_ptr<State> state;
    runAndWait([&](CommandBufferPtr cb) { state = c->exportWeightsAndBiases(cb, true); });
    ASSERT_NE(state, nullptr);
    EXPECT_FALSE(state->isTemporary());
    EXPECT_EQ(readFloats(*state->weights(), 0, c->effectiveWeights().size()), c->effectiveWeights());
    // Batch norm gives the kernel a bias even without one in the data source.
    EXPECT_EQ(readFloats(*state->biases(), 0, 5), c->effectiveBiases());
  }
  // No bias and no batch norm: zero biases.
  auto plain = makeSource(conv(1, 1, 2, 3), false);
  auto c = CNNConvolution::make(device(), plain);
  std::shared_ptr<State> state;
  runAndWait([&](CommandBufferPtr cb) { state = c->exportWeightsAndBiases(cb, false); });
  EXPECT_EQ(readFloats(*state->biases(), 0, 3), std::vector<float>(3, 0.0f));
}

TEST(CNNConvolutionWeightsAndBiasesState, ReloadInCommandBufferOrder) {
  auto d = conv(3, 3, 4, 5, 2, 1);
  d.setFusedNeuronDescriptor(NNNeuronDescriptor::make(CNNNeuronType::ReLU, 0.2f));
  auto source = makeSource(d);
  auto c = CNNConvolution::make(device(), source);
  const auto before = doubles(c->effectiveWeights(), c->effectiveBiases());
  std::vector<float> w2, b2;
  for (double v : randomValues(c->effectiveWeights().size(), -0.3, 0.3)) w2.push_back(float(v));
  for (double v : randomValues(5, -1, 1)) b2.push_back(float(v));
  // Sub-ranges at offsets, as a caller's larger buffers would hold them.
  State state(bufferOf(w2, 32), 32, bufferOf(b2, 8), 8, d);
  RefImage srcRef = randomRefImage(2, 6, 7, 4);
  auto src = makeImage(srcRef);
  for (bool plain : {false, true}) {
    ForcePlainConvolution force(plain);
    auto first = Image::make(device(), ImageDescriptor::make(Fmt::Float32, 4, 6, 5, 2));
    auto second = Image::make(device(), ImageDescriptor::make(Fmt::Float32, 4, 6, 5, 2));
    auto restored = Image::make(device(), ImageDescriptor::make(Fmt::Float32, 4, 6, 5, 2));
    auto k = CNNConvolution::make(device(), source);
    const RefImage p1 = poison(*first), p2 = poison(*second), p3 = poison(*restored);
    std::shared_ptr<State> saved;
    runAndWait([&](CommandBufferPtr cb) {
      saved = k->exportWeightsAndBiases(cb, false);  // the old weights
      k->encode(cb, src, first);                     // old weights
      k->reloadWeightsAndBiases(cb, state);
      k->encode(cb, src, second);  // new weights
      k->reloadWeightsAndBiases(cb, *saved);
      k->encode(cb, src, restored);  // old again, from the exported copy
    });
    SCOPED_TRACE(plain ? "plain" : "fast");
    EXPECT_TRUE(matches(download(*first), convolutionReference(*k, d, before, srcRef)(p1), Fmt::Float32,
                        Fmt::Float32));
    EXPECT_TRUE(matches(download(*second), convolutionReference(*k, d, doubles(w2, b2), srcRef)(p2),
                        Fmt::Float32, Fmt::Float32));
    EXPECT_TRUE(matches(download(*restored), convolutionReference(*k, d, before, srcRef)(p3), Fmt::Float32,
                        Fmt::Float32));
  }
  // A state without biases leaves the kernel without bias; the neuron stays.
  State noBias(bufferOf(w2), nullptr);
  auto cb = queue()->commandBuffer();
  c->reloadWeightsAndBiases(cb, noBias);
  auto out = Image::make(device(), ImageDescriptor::make(Fmt::Float32, 4, 6, 5, 2));
  const RefImage p = poison(*out);
  c->encode(cb, src, out);
  cb->commit();
  cb->waitUntilCompleted();
  EXPECT_TRUE(matches(download(*out), convolutionReference(*c, d, doubles(w2, {}), srcRef)(p), Fmt::Float32,
                      Fmt::Float32));
}

TEST(CNNConvolutionWeightsAndBiasesState, ReloadRoundsToTheKernelsWeightPrecision) {
  auto d = conv(3, 3, 3, 4);
  auto source = makeSource(d);
  source->kernelType.reset();  // Float16 inside the kernel (the protocol's default)
  auto c = CNNConvolution::make(device(), source);
  std::vector<float> w;
  for (double v : randomValues(c->effectiveWeights().size(), -0.3, 0.3)) w.push_back(float(v));
  State state(bufferOf(w), bufferOf(std::vector<float>(4, 0.125f)));
  std::shared_ptr<State> exported;
  runAndWait([&](CommandBufferPtr cb) {
    c->reloadWeightsAndBiases(cb, state);
    exported = c->exportWeightsAndBiases(cb, false);
  });
  const auto got = readFloats(*exported->weights(), 0, w.size());
  size_t changed = 0;
  for (size_t i = 0; i < w.size(); ++i) {
    EXPECT_EQ(got[i], detail::halfToFloat(detail::floatToHalf(w[i]))) << i;
    changed += got[i] != w[i];
  }
  EXPECT_GT(changed, w.size() / 2);
  EXPECT_EQ(readFloats(*exported->biases(), 0, 4), std::vector<float>(4, 0.125f));  // biases stay float32
}

TEST(CNNConvolutionWeightsAndBiasesState, FullyConnectedUsesItsWeightOrder) {
  auto d = CNNConvolutionDescriptor::make(3, 2, 4, 5);  // W = 3, H = 2
  auto source = makeSource(d);
  auto k = CNNFullyConnected::make(device(), source);
  k->setWeightOrder(FullyConnectedWeightOrder::OWHI);
  // Export: the data source's (OWHI) order, i.e. the source's own array.
  std::shared_ptr<State> exported;
  runAndWait([&](CommandBufferPtr cb) { exported = k->exportWeightsAndBiases(cb, false); });
  EXPECT_EQ(readFloats(*exported->weights(), 0, source->floats.size()), source->floats);
  // Reload an OWHI array: the kernel then computes as a data source with that array would.
  std::vector<float> w2;
  for (double v : randomValues(source->floats.size(), -0.4, 0.4)) w2.push_back(float(v));
  State state(bufferOf(w2), bufferOf(source->bias));
  RefImage srcRef = randomRefImage(2, 2, 3, 4);
  auto src = makeImage(srcRef);
  auto dst = Image::make(device(), ImageDescriptor::make(Fmt::Float32, 1, 1, 5, 2));
  const ref::UnaryPlacement placement = placementOf(*k);
  auto expect = [&](const RefImage& poisoned) {
    auto run = [&](const NNNeuronDescriptor&, const ref::ConvolutionWeights& weights, const RefImage& in,
                   RefImage& out) { ref::fullyConnectedKernel(d, weights, true, placement, in, out); };
    return referenceOf(run, d.fusedNeuronDescriptor(), doubles(w2, source->bias), srcRef, poisoned);
  };
  runAndWait([&](CommandBufferPtr cb) { k->reloadWeightsAndBiases(cb, state); });
  checkFastAndPlain([&](const CommandBufferPtr& cb) { k->encode(cb, src, dst); }, dst, expect, Fmt::Float32,
                    Fmt::Float32);
  // The host has not seen these weights: the order can no longer be reinterpreted.
  expectInvalid([&] { k->setWeightOrder(FullyConnectedWeightOrder::OHWI); },
                {"CNNFullyConnected", "setWeightOrder", "reloadWeightsAndBiases"});
  // A reload from the data source brings the host back in step.
  k->reloadWeightsAndBiasesFromDataSource();
  EXPECT_NO_THROW(k->setWeightOrder(FullyConnectedWeightOrder::OHWI));
}

TEST(CNNConvolutionWeightsAndBiasesState, TransposeExportAndReload) {
  auto d = conv(3, 3, 3, 4, 2, 2);
  auto source = makeSource(d);
  auto t = CNNConvolutionTranspose::make(device(), source);
  std::vector<float> w2, b2;
  for (double v : randomValues(source->floats.size(), -0.4, 0.4)) w2.push_back(float(v));
  for (double v : randomValues(4, -1, 1)) b2.push_back(float(v));
  State state(bufferOf(w2), bufferOf(b2));
  RefImage srcRef = randomRefImage(1, 4, 4, 3);
  auto src = makeImage(srcRef);
  auto dst = Image::make(device(), ImageDescriptor::make(Fmt::Float32, 7, 7, 4));
  std::shared_ptr<State> exported;
  runAndWait([&](CommandBufferPtr cb) {
    t->reloadWeightsAndBiases(cb, state);
    exported = t->exportWeightsAndBiases(cb, false);
  });
  EXPECT_EQ(readFloats(*exported->weights(), 0, w2.size()), w2);
  EXPECT_EQ(readFloats(*exported->biases(), 0, 4), b2);
  const ref::UnaryPlacement placement = placementOf(*t);
  auto expect = [&](const RefImage& poisoned) {
    auto run = [&](const NNNeuronDescriptor&, const ref::ConvolutionWeights& weights, const RefImage& in,
                   RefImage& out) { ref::convolutionTransposeKernel(d, weights, 0, 0, placement, in, out); };
    return referenceOf(run, d.fusedNeuronDescriptor(), doubles(w2, b2), srcRef, poisoned);
  };
  checkFastAndPlain([&](const CommandBufferPtr& cb) { t->encode(cb, src, dst); }, dst, expect, Fmt::Float32,
                    Fmt::Float32);
}

TEST(CNNConvolutionWeightsAndBiasesState, InvalidReloadsAndExports) {
  auto d = conv(3, 3, 4, 5);
  auto c = CNNConvolution::make(device(), makeSource(d));
  const auto weightsBefore = c->effectiveWeights();
  State tooSmall(Buffer::make(device(), 179 * 4), Buffer::make(device(), 20));
  State biasesTooSmall(Buffer::make(device(), 180 * 4), Buffer::make(device(), 16));
  State otherShape(device(), conv(3, 3, 4, 6));
  auto cb = queue()->commandBuffer();
  expectInvalid([&] { c->reloadWeightsAndBiases(cb, tooSmall); },
                {"CNNConvolution", "reloadWeightsAndBiases", "weights", "716", "720"});
  expectInvalid([&] { c->reloadWeightsAndBiases(cb, biasesTooSmall); },
                {"CNNConvolution", "reloadWeightsAndBiases", "biases", "16", "20"});
  EXPECT_NO_THROW(c->reloadWeightsAndBiases(cb, otherShape));  // larger buffers: the first values are used
  expectInvalid([&] { c->reloadWeightsAndBiases(nullptr, otherShape); }, {"CNNConvolution", "commandBuffer"});
  expectInvalid([&] { c->exportWeightsAndBiases(nullptr, false); }, {"CNNConvolution", "commandBuffer"});
  cb->commit();
  cb->waitUntilCompleted();
  expectInvalid([&] { c->reloadWeightsAndBiases(cb, otherShape); }, {"CNNConvolution", "committed"});
  expectInvalid([&] { c->exportWeightsAndBiases(cb, false); }, {"CNNConvolution", "committed"});
  auto t = CNNConvolutionTranspose::make(device(), makeSource(d));
  runAndWait([&](CommandBufferPtr buffer) {
    expectInvalid([&] { t->reloadWeightsAndBiases(buffer, tooSmall); },
                  {"CNNConvolutionTranspose", "weights"});
  });
}

}  // namespace
}  // namespace mpsnn::test
