// CNNNeuron, NNNeuronDescriptor and the typed neurons (spec 03), against the float64 reference and
// PyTorch, on the device selected by MPSNN_DEVICE.
#include <cstdlib>

#include "harness.h"

namespace mpsnn {
namespace {

using test::close;
using test::device;
using test::queue;

/// Runs `kernel` manually on `src` into a poisoned destination of `dstShape` and returns what the
/// device wrote and what the reference says (untouched pixels keep the poison).
struct Outcome {
  ref::RefImage actual, expected;
};

Outcome runNeuron(CNNNeuron& kernel, const ref::RefImage& srcValues, ImageFeatureChannelFormat format,
                  std::array<int64_t, 4> dstShape, const ref::UnaryPlacement& placement) {
  ref::RefImage src = srcValues;
  test::roundTo(src, format);  // the reference sees what the image holds
  auto srcImage = test::makeImage(src, format);
  auto dstImage = Image::make(device(), ImageDescriptor::make(format, uint64_t(dstShape[2]), uint64_t(dstShape[1]),
                                                              uint64_t(dstShape[3]), uint64_t(dstShape[0])));
  ref::RefImage poisoned = test::poison(*dstImage);
  kernel.setOffset(placement.offset);
  kernel.setClipRect(placement.clipRect);
  kernel.setSourceFeatureChannelOffset(placement.sourceFeatureChannelOffset);
  kernel.setSourceFeatureChannelMaxCount(placement.sourceFeatureChannelMaxCount);
  kernel.setDestinationFeatureChannelOffset(placement.destinationFeatureChannelOffset);
  kernel.setEdgeMode(placement.edgeMode);
  auto cb = queue()->commandBuffer();
  kernel.encode(cb, srcImage, dstImage);
  cb->commit();
  cb->waitUntilCompleted();
  Outcome o{test::download(*dstImage), poisoned};
  ref::neuronKernel(kernel.neuronDescriptor(), placement, src, o.expected);
  test::roundTo(o.expected, format);
  return o;
}

/// Every type with non-default parameters, and an input range where the function is well defined
/// and not ill-conditioned in float32.
struct TypeCase {
  NNNeuronDescriptor descriptor;
  double lo, hi;
};
std::vector<TypeCase> allTypes(int64_t channels) {
  auto slopes = std::make_shared<const std::vector<float>>(
      [&] {
        std::vector<float> v;
        for (auto x : test::randomValues(size_t(channels), 0.05, 0.9)) v.push_back(float(x));
        return v;
      }());
  return {
      {NNNeuronDescriptor::make(CNNNeuronType::None), -3, 3},
      {NNNeuronDescriptor::make(CNNNeuronType::ReLU, 0.1f), -3, 3},
      {NNNeuronDescriptor::make(CNNNeuronType::Linear, 1.5f, -0.25f), -3, 3},
      {NNNeuronDescriptor::make(CNNNeuronType::Sigmoid), -10, 10},
      {NNNeuronDescriptor::make(CNNNeuronType::HardSigmoid, 0.3f, 0.4f), -4, 4},
      {NNNeuronDescriptor::make(CNNNeuronType::TanH, 1.5f, 0.7f), -3, 3},
      {NNNeuronDescriptor::make(CNNNeuronType::Absolute), -3, 3},
      {NNNeuronDescriptor::make(CNNNeuronType::SoftPlus, 0.5f, 2.0f), -6, 6},
      {NNNeuronDescriptor::make(CNNNeuronType::SoftSign), -5, 5},
      {NNNeuronDescriptor::make(CNNNeuronType::ELU, 0.8f), -3, 3},
      {NNNeuronDescriptor::makePReLU(slopes), -3, 3},
      {NNNeuronDescriptor::make(CNNNeuronType::ReLUN, 0.2f, 1.5f), -3, 3},
      {NNNeuronDescriptor::make(CNNNeuronType::Power, 1.25f, 0.5f, 2.5f), 0.0, 3},
      {NNNeuronDescriptor::make(CNNNeuronType::Exponential, 0.75f, 0.25f, -1.0f), -3, 3},
      {NNNeuronDescriptor::make(CNNNeuronType::Exponential, 0.75f, 0.25f, 3.0f), -3, 3},
      {NNNeuronDescriptor::make(CNNNeuronType::Logarithm, 1.5f, 0.2f, -1.0f), 0.05, 3},
      {NNNeuronDescriptor::make(CNNNeuronType::Logarithm, 1.5f, 0.2f, 2.0f), 0.05, 3},
      {NNNeuronDescriptor::make(CNNNeuronType::GeLU), -4, 4},
  };
}

using test::ForcePlain;

// ---------------------------------------------------------------------------------------------

TEST(NNNeuronDescriptor, FactoriesStoreDocumentedDefaults) {
  struct Row {
    CNNNeuronType type;
    float a, b, c;
  };
  // spec 03 §1 "Default parameters" column; types without parameters store 0.
  const Row rows[] = {{CNNNeuronType::None, 0, 0, 0},        {CNNNeuronType::ReLU, 0, 0, 0},
                      {CNNNeuronType::Linear, 1, 0, 0},      {CNNNeuronType::Sigmoid, 0, 0, 0},
                      {CNNNeuronType::HardSigmoid, 0.2f, 0.5f, 0}, {CNNNeuronType::TanH, 1, 1, 0},
                      {CNNNeuronType::Absolute, 0, 0, 0},    {CNNNeuronType::SoftPlus, 1, 1, 0},
                      {CNNNeuronType::SoftSign, 0, 0, 0},    {CNNNeuronType::ELU, 1, 0, 0},
                      {CNNNeuronType::ReLUN, 1, 6, 0},       {CNNNeuronType::Power, 1, 0, 1},
                      {CNNNeuronType::Exponential, 1, 0, -1}, {CNNNeuronType::Logarithm, 1, 0, -1},
                      {CNNNeuronType::GeLU, 0, 0, 0}};
  for (const Row& r : rows) {
    auto d = NNNeuronDescriptor::make(r.type);
    EXPECT_EQ(d.neuronType(), r.type);
    EXPECT_EQ(d.a(), r.a) << toString(r.type);
    EXPECT_EQ(d.b(), r.b) << toString(r.type);
    EXPECT_EQ(d.c(), r.c) << toString(r.type);
  }
  auto partial = NNNeuronDescriptor::make(CNNNeuronType::ReLUN, 0.0f);  // ReLU6 = ReLUN(a = 0, b = 6)
  EXPECT_EQ(partial.a(), 0.0f);
  EXPECT_EQ(partial.b(), 6.0f);
  auto two = NNNeuronDescriptor::make(CNNNeuronType::Power, 2.0f, 3.0f);
  EXPECT_EQ(two.c(), 1.0f);
}

TEST(NNNeuronDescriptor, RejectsInvalidTypesAndPReLUWithoutData) {
  EXPECT_THROW(NNNeuronDescriptor::make(CNNNeuronType::Count), InvalidArgument);
  EXPECT_THROW(NNNeuronDescriptor::make(CNNNeuronType(99)), InvalidArgument);
  EXPECT_THROW(NNNeuronDescriptor::make(CNNNeuronType::PReLU), InvalidArgument);
  EXPECT_THROW(NNNeuronDescriptor::makePReLU(nullptr), InvalidArgument);
  try {
    NNNeuronDescriptor::make(CNNNeuronType::Count);
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("neuronType"), std::string::npos) << e.what();
  }
  NNNeuronDescriptor d;
  d.setNeuronType(CNNNeuronType::Count);
  EXPECT_THROW(CNNNeuron(device(), d), InvalidArgument);
}

class CNNNeuronPaths : public ::testing::TestWithParam<bool> {};

TEST_P(CNNNeuronPaths, EveryTypeMatchesReferenceFloat32) {
  ForcePlain plain(GetParam());
  for (int64_t channels : {1, 3, 5, 17}) {
    for (const auto& tc : allTypes(channels)) {
      CNNNeuron kernel(device(), tc.descriptor);
      auto src = test::randomRefImage(3, 5, 7, channels, tc.lo, tc.hi);
      auto o = runNeuron(kernel, src, ImageFeatureChannelFormat::Float32, {3, 5, 7, channels}, {});
      EXPECT_TRUE(close(o.actual, o.expected, 2e-6, 1e-6))
          << toString(tc.descriptor.neuronType()) << " c=" << tc.descriptor.c() << " channels=" << channels;
    }
  }
}

TEST_P(CNNNeuronPaths, ReducedPrecisionFormats) {
  ForcePlain plain(GetParam());
  for (auto format : {ImageFeatureChannelFormat::Float16, ImageFeatureChannelFormat::BFloat16,
                      ImageFeatureChannelFormat::Unorm8, ImageFeatureChannelFormat::Unorm16}) {
    const bool unorm = format == ImageFeatureChannelFormat::Unorm8 || format == ImageFeatureChannelFormat::Unorm16;
    for (const auto& tc : allTypes(5)) {
      CNNNeuron kernel(device(), tc.descriptor);
      auto src = test::randomRefImage(2, 4, 3, 5, unorm ? 0.0 : tc.lo, unorm ? 1.0 : tc.hi);
      auto o = runNeuron(kernel, src, format, {2, 4, 3, 5}, {});
      // Both sides round the same float32-accurate value to the format: allow one unit of the format.
      double unit = format == ImageFeatureChannelFormat::Unorm8 ? 1.0 / 255 : format == ImageFeatureChannelFormat::Unorm16 ? 1.0 / 65535 : 0;
      EXPECT_TRUE(close(o.actual, o.expected, test::rtolFor(format), unit + 1e-6))
          << toString(tc.descriptor.neuronType()) << " " << toString(format);
    }
  }
}

TEST_P(CNNNeuronPaths, OffsetClipChannelsAndEdgeModes) {
  ForcePlain plain(GetParam());
  auto prelu = std::make_shared<const std::vector<float>>(std::vector<float>{0.1f, 0.2f, 0.3f, 0.4f, 0.5f, 0.6f, 0.7f});
  for (auto descriptor : {NNNeuronDescriptor::make(CNNNeuronType::TanH, 1.0f, 2.0f), NNNeuronDescriptor::makePReLU(prelu),
                          NNNeuronDescriptor::make(CNNNeuronType::Sigmoid)}) {
    CNNNeuron kernel(device(), descriptor);
    auto src = test::randomRefImage(4, 6, 5, 7, -2, 2);
    for (auto edge : {ImageEdgeMode::Zero, ImageEdgeMode::Clamp}) {
      std::vector<ref::UnaryPlacement> placements;
      ref::UnaryPlacement p;
      p.edgeMode = edge;
      placements.push_back(p);  // identity
      p.offset = {-2, 1, 1};     // partly outside the source; images 1..
      placements.push_back(p);
      p.offset = {3, -3, 0};
      p.clipRect = {{1, 2, 1}, {3, 3, 2}};  // a window of the destination, images 1..2
      placements.push_back(p);
      p = ref::UnaryPlacement();
      p.edgeMode = edge;
      p.sourceFeatureChannelOffset = 2;  // channels 2..6 → destination channels 3..7 (RELAXED offsets)
      p.destinationFeatureChannelOffset = 3;
      placements.push_back(p);
      p.sourceFeatureChannelMaxCount = 3;  // channels 2..4 only
      p.offset = {1, 1, 2};
      placements.push_back(p);
      for (const auto& placement : placements) {
        auto o = runNeuron(kernel, src, ImageFeatureChannelFormat::Float32, {4, 6, 5, 8}, placement);
        EXPECT_TRUE(close(o.actual, o.expected, 2e-6, 1e-6))
            << toString(descriptor.neuronType()) << " edge=" << toString(edge) << " offset=" << placement.offset.x
            << "," << placement.offset.y << "," << placement.offset.z << " srcC0=" << placement.sourceFeatureChannelOffset;
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(FastAndPlain, CNNNeuronPaths, ::testing::Values(false, true),
                         [](const auto& info) { return info.param ? "plain" : "fast"; });

TEST(CNNNeuron, NaNPropagatesThroughEveryBranchingType) {
  ref::RefImage src(1, 1, 4, 1);
  src.data = {std::nan(""), -1.5, 2.0, std::nan("")};
  auto prelu = std::make_shared<const std::vector<float>>(std::vector<float>{0.25f});
  for (auto d : {NNNeuronDescriptor::make(CNNNeuronType::ReLU), NNNeuronDescriptor::make(CNNNeuronType::ReLUN, 0.0f, 1.0f),
                 NNNeuronDescriptor::make(CNNNeuronType::HardSigmoid), NNNeuronDescriptor::make(CNNNeuronType::ELU),
                 NNNeuronDescriptor::makePReLU(prelu), NNNeuronDescriptor::make(CNNNeuronType::SoftPlus),
                 NNNeuronDescriptor::make(CNNNeuronType::Sigmoid)}) {
    for (bool plain : {false, true}) {
      ForcePlain force(plain);
      CNNNeuron kernel(device(), d);
      auto o = runNeuron(kernel, src, ImageFeatureChannelFormat::Float32, {1, 1, 4, 1}, {});
      EXPECT_TRUE(std::isnan(o.actual.data[0])) << toString(d.neuronType());
      EXPECT_TRUE(std::isnan(o.actual.data[3])) << toString(d.neuronType());
      EXPECT_TRUE(close(o.actual, o.expected, 1e-6, 1e-7)) << toString(d.neuronType());
    }
  }
}

TEST(CNNNeuron, MultiImageAndBatchEncode) {
  NNNeuronDescriptor d = NNNeuronDescriptor::make(CNNNeuronType::ELU, 0.5f);
  auto kernel = CNNNeuron::make(device(), d);
  ImageBatch sources, destinations;
  std::vector<ref::RefImage> values;
  for (int i = 0; i < 3; ++i) {
    values.push_back(test::randomRefImage(1, 3, 4, 13));
    sources.push_back(test::makeImage(values.back()));
    destinations.push_back(Image::make(device(), ImageDescriptor::make(ImageFeatureChannelFormat::Float32, 4, 3, 13)));
    test::poison(*destinations.back());
  }
  auto cb = queue()->commandBuffer();
  kernel->encodeBatch(cb, sources, destinations);
  ImageBatch autos = kernel->encodeBatch(cb, sources);  // temporaries: cannot be read back, but must exist
  ASSERT_EQ(autos.size(), 3u);
  EXPECT_TRUE(autos[0]->isTemporary());
  EXPECT_EQ(autos[0]->descriptor(), ImageDescriptor::make(ImageFeatureChannelFormat::Float32, 4, 3, 13));
  cb->commit();
  cb->waitUntilCompleted();
  for (int i = 0; i < 3; ++i) {
    ref::RefImage expected(1, 3, 4, 13);
    ref::neuronKernel(d, {}, values[size_t(i)], expected);
    EXPECT_TRUE(close(test::download(*destinations[size_t(i)]), expected, 2e-6, 1e-6)) << "batch item " << i;
  }
}

TEST(CNNNeuron, AutoModeSizesLikeTheSourceAndChainsThroughTemporaries) {
  auto relu = CNNNeuronReLU::make(device(), 0.0f);
  auto tanh = CNNNeuronTanH::make(device(), 1.0f, 1.0f);
  auto values = test::randomRefImage(1, 5, 6, 3);
  auto src = test::makeImage(values);
  auto cb = queue()->commandBuffer();
  ImagePtr mid = relu->encode(cb, src);
  ASSERT_TRUE(mid->isTemporary());
  EXPECT_EQ(mid->width(), 6u);
  EXPECT_EQ(mid->height(), 5u);
  EXPECT_EQ(mid->featureChannels(), 3u);
  tanh->setDestinationImageAllocator(Image::defaultAllocator());
  ImagePtr out = tanh->encode(cb, mid);  // reads mid: its readCount drops to 0
  EXPECT_EQ(static_cast<TemporaryImage&>(*mid).readCount(), 0u);
  EXPECT_THROW(tanh->encode(cb, mid), InvalidArgument);  // use after release
  cb->commit();
  cb->waitUntilCompleted();
  ref::RefImage expected(1, 5, 6, 3);
  for (size_t i = 0; i < values.data.size(); ++i) expected.data[i] = std::tanh(std::max(0.0, values.data[i]));
  EXPECT_TRUE(close(test::download(*out), expected, 2e-6, 1e-6));
}

TEST(CNNNeuron, TypedClassesEqualTheirDescriptors) {
  const float slopes[3] = {0.1f, 0.2f, 0.3f};
  std::vector<std::pair<std::shared_ptr<CNNNeuron>, NNNeuronDescriptor>> pairs = {
      {CNNNeuronLinear::make(device(), 2.0f, 1.0f), NNNeuronDescriptor::make(CNNNeuronType::Linear, 2.0f, 1.0f)},
      {CNNNeuronReLU::make(device(), 0.3f), NNNeuronDescriptor::make(CNNNeuronType::ReLU, 0.3f)},
      {CNNNeuronPReLU::make(device(), slopes, size_t(3)),
       NNNeuronDescriptor::makePReLU(std::make_shared<const std::vector<float>>(slopes, slopes + 3))},
      {CNNNeuronSigmoid::make(device()), NNNeuronDescriptor::make(CNNNeuronType::Sigmoid)},
      {CNNNeuronHardSigmoid::make(device(), 0.1f, 0.6f), NNNeuronDescriptor::make(CNNNeuronType::HardSigmoid, 0.1f, 0.6f)},
      {CNNNeuronTanH::make(device(), 0.5f, 2.0f), NNNeuronDescriptor::make(CNNNeuronType::TanH, 0.5f, 2.0f)},
      {CNNNeuronAbsolute::make(device()), NNNeuronDescriptor::make(CNNNeuronType::Absolute)},
      {CNNNeuronSoftPlus::make(device(), 2.0f, 0.5f), NNNeuronDescriptor::make(CNNNeuronType::SoftPlus, 2.0f, 0.5f)},
      {CNNNeuronSoftSign::make(device()), NNNeuronDescriptor::make(CNNNeuronType::SoftSign)},
      {CNNNeuronELU::make(device(), 0.7f), NNNeuronDescriptor::make(CNNNeuronType::ELU, 0.7f)},
      {CNNNeuronReLUN::make(device(), 0.0f, 6.0f), NNNeuronDescriptor::make(CNNNeuronType::ReLUN, 0.0f, 6.0f)},
      {CNNNeuronPower::make(device(), 1.0f, 2.0f, 2.0f), NNNeuronDescriptor::make(CNNNeuronType::Power, 1.0f, 2.0f, 2.0f)},
      {CNNNeuronExponential::make(device(), 1.0f, 0.0f, 2.0f),
       NNNeuronDescriptor::make(CNNNeuronType::Exponential, 1.0f, 0.0f, 2.0f)},
      {CNNNeuronLogarithm::make(device(), 1.0f, 4.0f, -1.0f),
       NNNeuronDescriptor::make(CNNNeuronType::Logarithm, 1.0f, 4.0f, -1.0f)},
  };
  for (auto& [kernel, descriptor] : pairs) {
    EXPECT_EQ(kernel->neuronType(), descriptor.neuronType()) << kernel->className();
    EXPECT_EQ(kernel->a(), descriptor.a()) << kernel->className();
    EXPECT_EQ(kernel->b(), descriptor.b()) << kernel->className();
    EXPECT_EQ(kernel->c(), descriptor.c()) << kernel->className();
    auto src = test::randomRefImage(1, 2, 3, 3, -2, 2);
    auto o = runNeuron(*kernel, src, ImageFeatureChannelFormat::Float32, {1, 2, 3, 3}, {});
    ref::RefImage expected(1, 2, 3, 3);
    ref::RefImage rounded = src;
    test::roundTo(rounded, ImageFeatureChannelFormat::Float32);
    ref::neuronKernel(descriptor, {}, rounded, expected);
    EXPECT_TRUE(close(o.actual, expected, 2e-6, 1e-6)) << kernel->className();
  }
  EXPECT_STREQ(CNNNeuronELU(device(), 1.0f).className(), "CNNNeuronELU");
  EXPECT_THROW(CNNNeuronPReLU(device(), nullptr, 3), InvalidArgument);
}

TEST(CNNNeuron, RejectsBadInputAndLeavesTheDestinationUntouched) {
  auto prelu = std::make_shared<const std::vector<float>>(std::vector<float>{0.1f, 0.2f});
  auto src = test::makeImage(test::randomRefImage(2, 3, 3, 4));
  auto dst = Image::make(device(), ImageDescriptor::make(ImageFeatureChannelFormat::Float32, 3, 3, 4, 2));
  ref::RefImage poisoned = test::poison(*dst);
  auto expectRejected = [&](CNNNeuron& kernel, const char* property) {
    auto cb = queue()->commandBuffer();
    try {
      kernel.encode(cb, src, dst);
      ADD_FAILURE() << "no InvalidArgument for " << property;
    } catch (const InvalidArgument& e) {
      EXPECT_NE(std::string(e.what()).find(property), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find(kernel.className()), std::string::npos) << e.what();
    }
    cb->commit();
    cb->waitUntilCompleted();
    EXPECT_TRUE(close(test::download(*dst), poisoned, 0, 0)) << "destination written after rejecting " << property;
  };
  {
    CNNNeuron k(device(), NNNeuronDescriptor::makePReLU(prelu));  // 2 slopes for 4 channels
    expectRejected(k, "PReLU");
  }
  for (auto edge : {ImageEdgeMode::Mirror, ImageEdgeMode::MirrorWithEdge, ImageEdgeMode::Constant}) {
    CNNNeuron k(device(), NNNeuronDescriptor::make(CNNNeuronType::ReLU));
    k.setEdgeMode(edge);
    expectRejected(k, "edgeMode");
  }
  {
    CNNNeuron k(device(), NNNeuronDescriptor::make(CNNNeuronType::ReLU));
    k.setSourceFeatureChannelOffset(4);
    expectRejected(k, "sourceFeatureChannelOffset");
  }
  {
    CNNNeuron k(device(), NNNeuronDescriptor::make(CNNNeuronType::ReLU));
    k.setDestinationFeatureChannelOffset(1);
    expectRejected(k, "destinationFeatureChannelOffset");
  }
  {
    CNNNeuron k(device(), NNNeuronDescriptor::make(CNNNeuronType::ReLU));
    k.setOffset({0, 0, -1});
    expectRejected(k, "offset.z");
  }
  {
    CNNNeuron k(device(), NNNeuronDescriptor::make(CNNNeuronType::ReLU));
    k.setClipRect({{0, 0, 1}, {3, 3, 2}});
    expectRejected(k, "clipRect");
  }
  {
    CNNNeuron k(device(), NNNeuronDescriptor::make(CNNNeuronType::ReLU));
    auto cb = queue()->commandBuffer();
    EXPECT_THROW(k.encode(cb, src, src), InvalidArgument);  // aliasing
    EXPECT_THROW(k.encode(cb, nullptr, dst), InvalidArgument);
    EXPECT_THROW(k.encode(cb, src, ImagePtr()), InvalidArgument);
    EXPECT_THROW(k.encode(nullptr, src, dst), InvalidArgument);
  }
}

TEST(CNNNeuron, PyTorchParity) {
  for (const auto& tc : test::readTorchCases("neuron.txt")) {
    const auto& shape = tc.shapes.at("input");
    ref::RefImage input(shape[0], shape[1], shape[2], shape[3]);
    input.data = tc.arrays.at("input");
    ref::RefImage expected = input;
    expected.data = tc.arrays.at("output");
    auto type = CNNNeuronType(int(tc.scalars.at("type")));
    NNNeuronDescriptor d;
    if (type == CNNNeuronType::PReLU) {
      std::vector<float> slopes;
      for (double v : tc.arrays.at("slopes")) slopes.push_back(float(v));
      d = NNNeuronDescriptor::makePReLU(std::make_shared<const std::vector<float>>(slopes));
      // PyTorch used the unrounded float64 slopes; recompute its answer with the float32 slopes.
      for (size_t i = 0; i < input.data.size(); ++i)
        if (input.data[i] < 0) expected.data[i] = input.data[i] * double(slopes[i % size_t(input.c)]);
    } else {
      d = NNNeuronDescriptor::make(type, float(tc.scalars.at("a")), float(tc.scalars.at("b")), float(tc.scalars.at("c")));
    }
    CNNNeuron kernel(device(), d);
    auto src = test::makeImage(input);
    auto dst = Image::make(device(), src->descriptor());
    test::poison(*dst);
    auto cb = queue()->commandBuffer();
    kernel.encode(cb, src, dst);
    cb->commit();
    cb->waitUntilCompleted();
    // PyTorch computed in float64 from the float64 inputs and parameters; we round both to float32.
    EXPECT_TRUE(close(test::download(*dst), expected, 2e-5, 2e-6)) << "case " << tc.name;
  }
}

}  // namespace
}  // namespace mpsnn
