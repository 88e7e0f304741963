// NNGramMatrixCalculation (spec 01 §10): the GEMM fast path (oneDNN sgemm / cuBLAS) and the plain
// path against the float64 reference on random data, channel ranges, batches and formats; PyTorch
// parity with einsum; every invalid case.
#include "harness.h"
#include "kernels/gram_matrix_impl.h"

namespace mpsnn::test {
namespace {

using Fmt = ImageFeatureChannelFormat;
using ref::RefImage;

/// The GEMM implementation of this device, or "" when this build has none (no oneDNN on the CPU).
std::string gemmPath() {
  if (onCuda()) return "cuda:cublas";  // always in the CUDA list
  for (const auto& impl : detail::cpuGramMatrixImplementations())
    if (std::string(impl.name) == "cpu:gemm") return impl.name;
  return "";
}

/// Runs the kernel with MPSNN_FORCE_PLAIN off and on; both must match the reference within the
/// formats' tolerance, relative to Σ|x_f·x_c| (the sums cancel).
void checkBothPaths(NNGramMatrixCalculation& k, const RefImage& srcRef, const ImagePtr& src,
                    const ImagePtr& dst, const std::string& wantFast) {
  const Fmt sf = src->featureChannelFormat(), df = dst->featureChannelFormat();
  for (bool plain : {false, true}) {
    ForcePlain force(plain);
    const RefImage poisoned = poison(*dst);
    auto cb = queue()->commandBuffer();
    k.encode(cb, src, dst);
    const std::string implementation = detail::lastGramMatrixImplementation();
    cb->commit();
    cb->waitUntilCompleted();
    if (plain) {
      EXPECT_EQ(implementation, onCuda() ? "cuda:plain" : "cpu:plain");
    } else if (!wantFast.empty() && !detail::forcePlainImplementations()) {  // unless the caller forces plain
      EXPECT_EQ(implementation, wantFast);
    }
    const ref::UnaryPlacement placement{k.offset(),
                                        k.clipRect(),
                                        k.sourceFeatureChannelOffset(),
                                        k.sourceFeatureChannelMaxCount(),
                                        k.destinationFeatureChannelOffset(),
                                        k.edgeMode()};
    RefImage expected = poisoned, magnitude = poisoned;
    ref::gramMatrixKernel(double(k.alpha()), placement, srcRef, expected);
    RefImage absSrc = srcRef;
    for (double& v : absSrc.data) v = std::fabs(v);
    std::fill(magnitude.data.begin(), magnitude.data.end(), -1.0);
    ref::gramMatrixKernel(std::fabs(double(k.alpha())), placement, absSrc, magnitude);
    const RefImage actual = download(*dst);
    const double rtol = std::max(rtolFor(sf), rtolFor(df));
    size_t bad = 0, written = 0;
    for (size_t i = 0; i < actual.data.size(); ++i) {
      const double m = magnitude.data[i], e = expected.data[i], a = actual.data[i];
      if (m == -1.0) {
        bad += !std::isnan(a) && a != e;  // untouched: the poison stays
        continue;
      }
      ++written;
      const double x = (df == Fmt::Unorm8 || df == Fmt::Unorm16) ? std::clamp(e, 0.0, 1.0) : e;
      bad += !(std::fabs(a - x) <= rtol * (std::fabs(x) + m) + (df == Fmt::Unorm8 ? 0.51 / 255 : 0.0));
    }
    EXPECT_EQ(bad, 0u) << implementation;
    EXPECT_GT(written, 0u);
  }
}

struct Case {
  int64_t n = 1, h = 5, w = 7, c = 3;
  float alpha = 1.0f;
  uint64_t srcOffset = 0, maxCount = UINT64_MAX, dstOffset = 0;
  int64_t dstC = 0, offsetZ = 0, dstN = 0;
  Fmt srcFormat = Fmt::Float32, dstFormat = Fmt::Float32;
  std::string wantFast;
};

void runCase(const Case& k) {
  auto gram = NNGramMatrixCalculation::make(device(), k.alpha);
  gram->setSourceFeatureChannelOffset(k.srcOffset);
  gram->setSourceFeatureChannelMaxCount(k.maxCount);
  gram->setDestinationFeatureChannelOffset(k.dstOffset);
  gram->setOffset({0, 0, k.offsetZ});
  const bool unorm = k.srcFormat == Fmt::Unorm8;
  RefImage srcRef = randomRefImage(k.n, k.h, k.w, k.c, unorm ? 0.0 : -1.0, 1.0);
  roundTo(srcRef, k.srcFormat);
  auto src = makeImage(srcRef, k.srcFormat);
  const int64_t cRead =
      std::min<int64_t>(int64_t(std::min<uint64_t>(k.maxCount, 1u << 20)), k.c - int64_t(k.srcOffset));
  auto dst =
      Image::make(device(), ImageDescriptor::make(k.dstFormat, uint64_t(cRead), 1,
                                                  uint64_t(k.dstC ? k.dstC : int64_t(k.dstOffset) + cRead),
                                                  uint64_t(k.dstN ? k.dstN : k.n - k.offsetZ)));
  checkBothPaths(*gram, srcRef, src, dst, k.wantFast);
}

TEST(NNGramMatrixCalculation, ShapesBatchesAndAlpha) {
  const int64_t shapes[][4] = {{1, 1, 1, 1},   {2, 5, 7, 3}, {3, 4, 4, 13},
                               {1, 9, 11, 17}, {2, 1, 6, 5}, {1, 8, 1, 64}};
  int i = 0;
  for (const auto& s : shapes) {
    Case k;
    k.n = s[0];
    k.h = s[1];
    k.w = s[2];
    k.c = s[3];
    k.alpha = i % 2 ? 0.5f : 1.0f;
    k.wantFast = gemmPath();
    SCOPED_TRACE("shape " + std::to_string(i++));
    runCase(k);
  }
}

TEST(NNGramMatrixCalculation, ChannelRangesAndImageSelection) {
  Case k;
  k.n = 3;
  k.c = 9;
  k.srcOffset = 2;
  k.maxCount = 5;
  k.dstOffset = 3;
  k.dstC = 10;
  k.offsetZ = 1;
  k.alpha = -0.25f;
  k.wantFast = gemmPath();  // a channel range keeps evenly strided pixels
  runCase(k);
}

TEST(NNGramMatrixCalculation, ImageFormats) {
  for (auto [sf, df] : {std::pair{Fmt::Float16, Fmt::Float32}, std::pair{Fmt::Float32, Fmt::Float16},
                        std::pair{Fmt::Unorm8, Fmt::Float32}, std::pair{Fmt::BFloat16, Fmt::BFloat16}}) {
    Case k;
    k.srcFormat = sf;
    k.dstFormat = df;
    k.alpha = 0.1f;
    k.n = 2;
    SCOPED_TRACE(toString(sf) + " -> " + toString(df));
    runCase(k);
  }
}

TEST(NNGramMatrixCalculation, AutoModeAndProperties) {
  auto gram = NNGramMatrixCalculation::make(device());
  EXPECT_EQ(gram->alpha(), 1.0f);
  EXPECT_STREQ(gram->className(), "NNGramMatrixCalculation");
  gram->setAlpha(2.0f);
  EXPECT_EQ(gram->alpha(), 2.0f);
  gram->setSourceFeatureChannelOffset(1);
  gram->setDestinationImageAllocator(Image::defaultAllocator());
  RefImage srcRef = randomRefImage(1, 3, 4, 6);
  auto src = makeImage(srcRef);
  ImagePtr result;
  auto cb = queue()->commandBuffer();
  result = gram->encode(cb, src);
  cb->commit();
  cb->waitUntilCompleted();
  EXPECT_EQ(result->width(), 5u);
  EXPECT_EQ(result->height(), 1u);
  EXPECT_EQ(result->featureChannels(), 5u);
  RefImage expected(1, 1, 5, 5);
  ref::gramMatrixKernel(2.0, {{}, RectNoClip, 1, UINT64_MAX, 0, ImageEdgeMode::Zero}, srcRef, expected);
  EXPECT_TRUE(close(download(*result), expected, 1e-5, 1e-5));
}

TEST(NNGramMatrixCalculation, InvalidEncodesThrowAndWriteNothing) {
  auto src = makeImage(randomRefImage(1, 4, 4, 3));
  struct Bad {
    const char* what;
    std::function<void(NNGramMatrixCalculation&)> setup;
    uint64_t dstW, dstH, dstC;
    std::vector<const char*> words;
  };
  const Bad cases[] = {
      {"offset.x",
       [](NNGramMatrixCalculation& k) {
         k.setOffset({1, 0, 0});
       },
       3,
       1,
       3,
       {"offset", "offset.x"}},
      {"offset.y",
       [](NNGramMatrixCalculation& k) {
         k.setOffset({0, -1, 0});
       },
       3,
       1,
       3,
       {"offset"}},
      {"clipRect",
       [](NNGramMatrixCalculation& k) {
         k.setClipRect({{0, 0, 0}, {3, 1, 1}});
       },
       3,
       1,
       3,
       {"clipRect"}},
      {"destination too wide", [](NNGramMatrixCalculation&) {}, 4, 1, 3, {"destination is 4 x 1", "3 x 1"}},
      {"destination too high", [](NNGramMatrixCalculation&) {}, 3, 2, 3, {"destination is 3 x 2"}},
      {"destination too narrow in channels",
       [](NNGramMatrixCalculation&) {},
       3,
       1,
       2,
       {"destination featureChannels"}},
      {"edge mode",
       [](NNGramMatrixCalculation& k) { k.setEdgeMode(ImageEdgeMode::Mirror); },
       3,
       1,
       3,
       {"edgeMode"}},
  };
  for (const Bad& b : cases) {
    SCOPED_TRACE(b.what);
    auto gram = NNGramMatrixCalculation::make(device());
    b.setup(*gram);
    auto dst = Image::make(device(), ImageDescriptor::make(Fmt::Float32, b.dstW, b.dstH, b.dstC));
    const RefImage poisoned = poison(*dst);
    auto cb = queue()->commandBuffer();
    try {
      gram->encode(cb, src, dst);
      ADD_FAILURE() << "accepted";
    } catch (const InvalidArgument& e) {
      const std::string msg = e.what();
      EXPECT_NE(msg.find("NNGramMatrixCalculation"), std::string::npos) << msg;
      for (const char* w : b.words) EXPECT_NE(msg.find(w), std::string::npos) << msg;
    }
    cb->commit();
    cb->waitUntilCompleted();
    const RefImage after = download(*dst);
    for (size_t i = 0; i < after.data.size(); ++i) ASSERT_TRUE(std::isnan(after.data[i])) << i;
  }
}

TEST(NNGramMatrixCalculation, PyTorchParity) {
  for (const auto& tc : readTorchCases("gram_matrix.txt")) {
    SCOPED_TRACE(tc.name);
    const auto& xs = tc.shapes.at("x");
    const int64_t n = xs[0], H = xs[1], W = xs[2], C = xs[3];
    auto gram = NNGramMatrixCalculation::make(device(), float(tc.scalars.at("alpha")));
    RefImage x(n, H, W, C);
    x.data = tc.arrays.at("x");
    roundTo(x, Fmt::Float32);
    auto src = makeImage(x);
    auto dst =
        Image::make(device(), ImageDescriptor::make(Fmt::Float32, uint64_t(C), 1, uint64_t(C), uint64_t(n)));
    RefImage torch(n, 1, C, C);
    torch.data = tc.arrays.at("y");
    for (bool plain : {false, true}) {
      ForcePlain force(plain);
      auto cb = queue()->commandBuffer();
      gram->encode(cb, src, dst);
      cb->commit();
      cb->waitUntilCompleted();
      EXPECT_TRUE(close(download(*dst), torch, 1e-5, 1e-5 * double(H * W)));
    }
  }
}

}  // namespace
}  // namespace mpsnn::test
