// Kernel base classes (spec 00 §3, §4, §6; spec 10 §10.2): properties, coordinate mapping, channel
// offsets, clip rectangles, batches, validation and temporary-image accounting.
//
// CNNKernel is exercised through CNNNeuron of type None (identity). CNNBinaryKernel and
// CNNGradientKernel through test-only subclasses that copy one source on the CPU. Expected images
// are computed here from the spec's mapping, never by the code under test.
#include <algorithm>
#include <limits>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "core/image_access.h"
#include "core/runtime_impl.h"
#include "harness.h"
#include "kernels/problem.h"

namespace mpsnn {
namespace {

using F = ImageFeatureChannelFormat;

struct StrictScope {
  StrictScope() { setStrictValidation(true); }
  ~StrictScope() { setStrictValidation(false); }
};

std::shared_ptr<CNNNeuron> identity() {
  return CNNNeuron::make(test::device(), NNNeuronDescriptor::make(CNNNeuronType::None));
}

/// A random float32-exact source image.
ref::RefImage randomSource(int64_t n, int64_t h, int64_t w, int64_t c) {
  auto r = test::randomRefImage(n, h, w, c);
  test::roundTo(r, F::Float32);
  return r;
}

/// Spec 00 §4.2–§4.5 for an unwindowed identity kernel: destination (clip.z + k, Y, X, dOff + q)
/// = source (offset.z + k, offset.y + Y - clip.y, offset.x + X - clip.x, sOff + q), edge mode applied;
/// pixels outside the effective clip keep `dst`.
struct Placement {
  Offset offset{};
  IntRegion clip = RectNoClip;
  uint64_t sOff = 0, maxCount = UINT64_MAX, dOff = 0;
  ImageEdgeMode edge = ImageEdgeMode::Zero;
};

ref::RefImage expectedIdentity(const ref::RefImage& src, ref::RefImage dst, const Placement& p) {
  const bool noClip = isRectNoClip(p.clip);
  const int64_t x0 = int64_t(p.clip.origin.x), y0 = int64_t(p.clip.origin.y);
  const int64_t x1 =
      noClip
          ? dst.w
          : int64_t(std::min<uint64_t>(
                uint64_t(dst.w), p.clip.origin.x + std::min<uint64_t>(p.clip.size.width, uint64_t(dst.w))));
  const int64_t y1 =
      noClip
          ? dst.h
          : int64_t(std::min<uint64_t>(
                uint64_t(dst.h), p.clip.origin.y + std::min<uint64_t>(p.clip.size.height, uint64_t(dst.h))));
  const int64_t z0 = int64_t(p.clip.origin.z);
  const int64_t depth = (noClip || p.clip.size.depth == UINT64_MAX) ? std::min(dst.n - z0, src.n - p.offset.z)
                                                                    : int64_t(p.clip.size.depth);
  const int64_t cRead = int64_t(std::min<uint64_t>(p.maxCount, uint64_t(src.c) - p.sOff));
  for (int64_t k = 0; k < depth; ++k)
    for (int64_t Y = y0; Y < y1; ++Y)
      for (int64_t X = x0; X < x1; ++X)
        for (int64_t q = 0; q < cRead; ++q) {
          int64_t sx = p.offset.x + (X - x0), sy = p.offset.y + (Y - y0);
          double v;
          if (sx >= 0 && sx < src.w && sy >= 0 && sy < src.h) {
            v = src.at(p.offset.z + k, sy, sx, int64_t(p.sOff) + q);
          } else if (p.edge == ImageEdgeMode::Clamp) {
            sx = std::clamp<int64_t>(sx, 0, src.w - 1);
            sy = std::clamp<int64_t>(sy, 0, src.h - 1);
            v = src.at(p.offset.z + k, sy, sx, int64_t(p.sOff) + q);
          } else {
            v = 0.0;
          }
          dst.at(z0 + k, Y, X, int64_t(p.dOff) + q) = v;
        }
  return dst;
}

void run(const CommandBufferPtr& cb) {
  cb->commit();
  cb->waitUntilCompleted();
}

/// Encodes the identity neuron with placement `p` in manual mode and checks the destination.
void checkIdentity(const ref::RefImage& srcRef, int64_t dn, int64_t dh, int64_t dw, int64_t dc,
                   const Placement& p) {
  auto src = test::makeImage(srcRef);
  auto dst = Image::make(test::device(), ImageDescriptor::make(F::Float32, uint64_t(dw), uint64_t(dh),
                                                               uint64_t(dc), uint64_t(dn)));
  auto poisoned = test::poison(*dst);
  auto k = identity();
  k->setOffset(p.offset);
  k->setClipRect(p.clip);
  k->setSourceFeatureChannelOffset(p.sOff);
  k->setSourceFeatureChannelMaxCount(p.maxCount);
  k->setDestinationFeatureChannelOffset(p.dOff);
  k->setEdgeMode(p.edge);
  auto cb = test::queue()->commandBuffer();
  k->encode(cb, src, dst);
  run(cb);
  EXPECT_TRUE(test::close(test::download(*dst), expectedIdentity(srcRef, poisoned, p), 0, 0));
}

/// Checks that `encode` throws InvalidArgument and that, after the command buffer ran, `dst`
/// still holds exactly what it held before.
template <class Encode>
void expectRejectedUntouched(const ImagePtr& dst, const CommandBufferPtr& cb, Encode encode) {
  auto before = test::download(*dst);
  EXPECT_THROW(encode(), InvalidArgument);
  run(cb);
  EXPECT_TRUE(test::close(test::download(*dst), before, 0, 0)) << "a rejected encode wrote the destination";
}

// ---------------------------------------------------------------------------------------------
// Test-only binary and gradient kernels: copy the primary (or secondary) source, unwindowed,
// through loadAsFloat/storeFromFloat, on the CPU only. They record what the base class resolved.

template <class Base>
class CopyKernel : public Base {
 public:
  explicit CopyKernel(DevicePtr device) : Base(std::move(device)) {}
  const char* className() const override { return "CopyKernel"; }
  bool copySecondary = false;
  std::vector<detail::BinaryProblem> problems;

 protected:
  void encodeProblem(CommandBuffer& cb, const detail::BinaryProblem& p) override {
    problems.push_back(p);
    if (this->device()->kind() != DeviceKind::CPU) return;  // CPU-only helper
    const bool sec = copySecondary;
    cb.encodeWork("CopyKernel", [p, sec](detail::QueueContext&) {
      const detail::ImageView& s = sec ? p.secondary : p.primary;
      const int64_t ox = sec ? p.secondaryOffsetX : p.primaryOffsetX;
      const int64_t oy = sec ? p.secondaryOffsetY : p.primaryOffsetY;
      const ImageEdgeMode edge = sec ? p.secondaryEdgeMode : p.primaryEdgeMode;
      const int64_t channels = std::min(p.dst.c, s.c);
      for (int64_t n = 0; n < p.dst.n; ++n)
        for (int64_t y = 0; y < p.dst.h; ++y)
          for (int64_t x = 0; x < p.dst.w; ++x) {
            int64_t sx = ox + x, sy = oy + y;
            const bool inside = detail::resolveEdge(sx, s.w, edge) & detail::resolveEdge(sy, s.h, edge);
            for (int64_t c = 0; c < channels; ++c) {
              const float v = inside ? detail::loadAsFloat(s.data(), s.index(n, sy, sx, c), s.format) : 0.0f;
              detail::storeFromFloat(p.dst.data(), p.dst.index(n, y, x, c), p.dst.format, v);
            }
          }
    });
  }
};
using BinaryCopy = CopyKernel<CNNBinaryKernel>;
/// The gradient kernel copies its primary source (dL/dY) to dL/dX through the state-taking path.
class GradientCopy : public CopyKernel<CNNGradientKernel> {
 public:
  using CopyKernel<CNNGradientKernel>::CopyKernel;

 protected:
  void encodeGradient(CommandBuffer& cb, const detail::BinaryProblem& p, State&) override { encodeProblem(cb, p); }
};

#define SKIP_UNLESS_CPU() \
  if (test::onCuda()) GTEST_SKIP() << "the test-only copy kernel computes on the CPU only"

ImagePtr makeF32(uint64_t w, uint64_t h, uint64_t c, uint64_t n = 1) {
  return Image::make(test::device(), ImageDescriptor::make(F::Float32, w, h, c, n));
}

// =============================================================================================
// CNNKernel (through CNNNeuron, type None)

TEST(CNNKernel, PropertyDefaults) {
  auto k = identity();
  EXPECT_EQ(k->device(), test::device());
  EXPECT_EQ(k->options(), KernelOptions::None);
  EXPECT_EQ(k->label(), "");
  EXPECT_EQ(k->offset(), (Offset{0, 0, 0}));
  EXPECT_EQ(k->clipRect(), RectNoClip);
  EXPECT_EQ(k->destinationFeatureChannelOffset(), 0u);
  EXPECT_EQ(k->sourceFeatureChannelOffset(), 0u);
  EXPECT_EQ(k->sourceFeatureChannelMaxCount(), UINT64_MAX);
  EXPECT_EQ(k->edgeMode(), ImageEdgeMode::Zero);
  EXPECT_EQ(k->kernelWidth(), 1u);
  EXPECT_EQ(k->kernelHeight(), 1u);
  EXPECT_EQ(k->strideInPixelsX(), 1u);
  EXPECT_EQ(k->strideInPixelsY(), 1u);
  EXPECT_EQ(k->dilationRateX(), 1u);
  EXPECT_EQ(k->dilationRateY(), 1u);
  EXPECT_FALSE(k->isBackwards());
  ASSERT_NE(k->padding(), nullptr);
  EXPECT_EQ(k->padding()->paddingMethod(), NNPaddingMethod::AlignCentered |
                                               NNPaddingMethod::AddRemainderToTopLeft |
                                               NNPaddingMethod::SizeSame);
  EXPECT_EQ(k->destinationImageAllocator(), TemporaryImage::defaultAllocator());
  EXPECT_STREQ(k->className(), "CNNNeuron");
}

TEST(CNNKernel, PropertySetters) {
  auto k = identity();
  k->setOffset({-3, 4, 1});
  EXPECT_EQ(k->offset(), (Offset{-3, 4, 1}));
  const IntRegion clip{{1, 2, 0}, {3, 4, 1}};
  k->setClipRect(clip);
  EXPECT_EQ(k->clipRect(), clip);
  k->setDestinationFeatureChannelOffset(8);
  k->setSourceFeatureChannelOffset(4);
  k->setSourceFeatureChannelMaxCount(5);
  k->setEdgeMode(ImageEdgeMode::Clamp);
  k->setOptions(KernelOptions::Verbose | KernelOptions::AllowReducedPrecision);
  k->setLabel("relu1");
  EXPECT_EQ(k->destinationFeatureChannelOffset(), 8u);
  EXPECT_EQ(k->sourceFeatureChannelOffset(), 4u);
  EXPECT_EQ(k->sourceFeatureChannelMaxCount(), 5u);
  EXPECT_EQ(k->edgeMode(), ImageEdgeMode::Clamp);
  EXPECT_TRUE(hasOption(k->options(), KernelOptions::Verbose));
  EXPECT_TRUE(hasOption(k->options(), KernelOptions::AllowReducedPrecision));
  EXPECT_FALSE(hasOption(k->options(), KernelOptions::SkipAPIValidation));
  EXPECT_EQ(k->label(), "relu1");
  k->setDestinationImageAllocator(Image::defaultAllocator());
  EXPECT_EQ(k->destinationImageAllocator(), Image::defaultAllocator());
  EXPECT_THROW(k->setDestinationImageAllocator(nullptr), InvalidArgument);
  EXPECT_THROW(CNNNeuron::make(nullptr, NNNeuronDescriptor()), InvalidArgument);
}

TEST(CNNKernel, IdentityCopiesEveryPixel) {
  for (int64_t c : {1, 3, 4, 5, 13}) checkIdentity(randomSource(2, 5, 7, c), 2, 5, 7, c, Placement{});
}

TEST(CNNKernel, OffsetMapsSourcePixelsWithEdgeModes) {
  auto src = randomSource(1, 5, 6, 3);
  for (ImageEdgeMode edge : {ImageEdgeMode::Zero, ImageEdgeMode::Clamp})
    for (Offset off :
         {Offset{2, -1, 0}, Offset{-3, 2, 0}, Offset{0, 0, 0}, Offset{7, 9, 0}, Offset{-10, -10, 0}}) {
      SCOPED_TRACE(std::to_string(off.x) + "," + std::to_string(off.y) + " " + toString(edge));
      Placement p;
      p.offset = off;
      p.edge = edge;
      checkIdentity(src, 1, 4, 5, 3, p);
    }
}

TEST(CNNKernel, ClipRectLimitsTheWrittenRegion) {
  auto src = randomSource(1, 6, 7, 2);
  const IntRegion clips[] = {
      {{1, 2, 0}, {3, 2, 1}},           // interior
      {{4, 3, 0}, {100, 100, 1}},       // runs off the destination: intersected
      {{0, 0, 0}, {UINT64_MAX, 1, 1}},  // one row
      {{6, 0, 0}, {5, 5, 1}},           // starts outside: nothing written
      {{2, 2, 0}, {0, 3, 1}},           // empty
  };
  for (const IntRegion& clip : clips) {
    Placement p;
    p.clip = clip;
    p.offset = {1, 0, 0};
    checkIdentity(src, 1, 5, 6, 2, p);
  }
}

TEST(CNNKernel, BatchZRules) {
  auto src = randomSource(4, 3, 3, 2);
  {  // RectNoClip: depth = min(N_dst - 0, N_src - offset.z)
    Placement p;
    p.offset = {0, 0, 1};
    checkIdentity(src, 5, 3, 3, 2, p);  // 3 images: src 1..3 → dst 0..2
  }
  {  // explicit z range
    Placement p;
    p.offset = {0, 0, 2};
    p.clip = {{0, 0, 1}, {UINT64_MAX, UINT64_MAX, 2}};
    checkIdentity(src, 3, 3, 3, 2, p);  // src 2,3 → dst 1,2
  }
  {  // RectNoClip sizes in x/y with a z range
    Placement p;
    p.clip = {{0, 0, 3}, {3, 3, 1}};
    checkIdentity(src, 4, 3, 3, 2, p);  // src 0 → dst 3
  }
}

TEST(CNNKernel, InvalidZ) {
  auto k = identity();
  auto src = makeF32(3, 3, 2, 4), dst = makeF32(3, 3, 2, 4);
  test::poison(*dst);
  auto cb = test::queue()->commandBuffer();
  auto attempt = [&](Offset off, IntRegion clip) {
    k->setOffset(off);
    k->setClipRect(clip);
    EXPECT_THROW(k->encode(cb, src, dst), InvalidArgument)
        << "offset.z=" << off.z << " clip z=" << clip.origin.z << " depth=" << clip.size.depth;
  };
  expectRejectedUntouched(dst, cb, [&] {
    attempt({0, 0, -1}, RectNoClip);                          // offset.z < 0
    attempt({0, 0, 4}, RectNoClip);                           // no source image left
    attempt({0, 0, 0}, {{0, 0, 4}, {3, 3, 1}});               // clip origin.z beyond dst
    attempt({0, 0, 0}, {{0, 0, 2}, {3, 3, 3}});               // clip z range beyond dst
    attempt({0, 0, 2}, {{0, 0, 0}, {3, 3, 3}});               // offset.z + depth > N_src
    attempt({0, 0, 3}, {{0, 0, 2}, {3, 3, UINT64_MAX - 1}});  // sums that wrap around
    attempt({0, 0, std::numeric_limits<int64_t>::max()}, {{0, 0, 0}, {3, 3, 1}});
    k->setOffset({0, 0, -1});
    k->setClipRect(RectNoClip);
    k->encode(cb, src, dst);
  });
}

TEST(CNNKernel, ChannelOffsetsAndMaxCount) {
  auto src = randomSource(2, 3, 4, 9);
  struct Case {
    uint64_t sOff, maxCount, dOff, dc;
  };
  for (const Case& c : {Case{0, UINT64_MAX, 0, 9}, Case{4, UINT64_MAX, 0, 5}, Case{4, UINT64_MAX, 4, 12},
                        Case{1, 3, 2, 6}, Case{8, 100, 3, 4}, Case{0, 2, 7, 9}, Case{3, UINT64_MAX, 0, 11}}) {
    SCOPED_TRACE("sOff=" + std::to_string(c.sOff) + " max=" + std::to_string(c.maxCount) +
                 " dOff=" + std::to_string(c.dOff) + " dc=" + std::to_string(c.dc));
    Placement p;
    p.sOff = c.sOff;
    p.maxCount = c.maxCount;
    p.dOff = c.dOff;
    checkIdentity(src, 2, 3, 4, int64_t(c.dc), p);
  }
}

TEST(CNNKernel, InvalidChannels) {
  auto src = makeF32(3, 3, 6), dst = makeF32(3, 3, 6);
  test::poison(*dst);
  auto cb = test::queue()->commandBuffer();
  expectRejectedUntouched(dst, cb, [&] {
    auto k = identity();
    k->setSourceFeatureChannelOffset(6);  // >= C_src
    EXPECT_THROW(k->encode(cb, src, dst), InvalidArgument);
    k->setSourceFeatureChannelOffset(100);
    EXPECT_THROW(k->encode(cb, src, dst), InvalidArgument);
    k->setSourceFeatureChannelOffset(0);
    k->setDestinationFeatureChannelOffset(1);  // 1 + 6 > 6
    EXPECT_THROW(k->encode(cb, src, dst), InvalidArgument);
    k->setDestinationFeatureChannelOffset(UINT64_MAX - 2);  // wraps around
    EXPECT_THROW(k->encode(cb, src, dst), InvalidArgument);
    k->setDestinationFeatureChannelOffset(0);
    auto narrow = makeF32(3, 3, 5);
    EXPECT_THROW(k->encode(cb, src, narrow), InvalidArgument);  // destination too few channels
    k->setDestinationFeatureChannelOffset(0);
    k->setSourceFeatureChannelOffset(6);
    k->encode(cb, src, dst);
  });
}

TEST(CNNKernel, StrictValidationOfChannelOffsets) {
  auto srcRef = randomSource(1, 2, 3, 12);
  // Relaxed (default): offsets that are not multiples of 4 work.
  ASSERT_FALSE(strictValidation());
  Placement p;
  p.sOff = 1;
  p.dOff = 3;
  checkIdentity(srcRef, 1, 2, 3, 14, p);
  {
    StrictScope strict;
    auto src = test::makeImage(srcRef);
    auto dst = makeF32(3, 2, 16);
    test::poison(*dst);
    auto cb = test::queue()->commandBuffer();
    expectRejectedUntouched(dst, cb, [&] {
      auto k = identity();
      k->setSourceFeatureChannelOffset(1);
      EXPECT_THROW(k->encode(cb, src, dst), InvalidArgument);
      k->setSourceFeatureChannelOffset(0);
      k->setDestinationFeatureChannelOffset(2);
      EXPECT_THROW(k->encode(cb, src, dst), InvalidArgument);
      k->setSourceFeatureChannelOffset(4);
      k->setDestinationFeatureChannelOffset(4);
      k->setSourceFeatureChannelMaxCount(8);
      auto ok = makeF32(3, 2, 16);
      EXPECT_NO_THROW(k->encode(cb, src, ok));  // multiples of 4 are fine
      k->setSourceFeatureChannelOffset(2);
      k->encode(cb, src, dst);
    });
  }
  EXPECT_FALSE(strictValidation());
}

TEST(CNNKernel, AliasingDestinationIsInvalid) {
  auto image = makeF32(4, 4, 8, 2);
  auto content = test::randomRefImage(2, 4, 4, 8);
  test::upload(*image, content);
  auto cb = test::queue()->commandBuffer();
  expectRejectedUntouched(image, cb, [&] {
    auto k = identity();
    EXPECT_THROW(k->encode(cb, image, image), InvalidArgument);
    // Overlapping views: a channel sub-image and a batch view share the storage.
    auto channels = image->subImageWithFeatureChannelRange({4, 4});
    EXPECT_THROW(k->encode(cb, image, channels), InvalidArgument);
    EXPECT_THROW(k->encode(cb, channels, image), InvalidArgument);
    auto views = image->batchRepresentation();
    EXPECT_THROW(k->encode(cb, views[0], views[1]),
                 InvalidArgument);  // same storage (CHOICE: storage identity)
    EXPECT_THROW(k->encode(cb, image, views[1]), InvalidArgument);
    k->encode(cb, image, image);
  });
}

TEST(CNNKernel, NullArgumentsAreInvalid) {
  auto k = identity();
  auto src = makeF32(2, 2, 1), dst = makeF32(2, 2, 1);
  auto cb = test::queue()->commandBuffer();
  EXPECT_THROW(k->encode(nullptr, src, dst), InvalidArgument);
  EXPECT_THROW(k->encode(cb, nullptr, dst), InvalidArgument);
  EXPECT_THROW(k->encode(cb, src, nullptr), InvalidArgument);
  EXPECT_THROW(k->encode(nullptr, src), InvalidArgument);
  EXPECT_THROW(k->encode(cb, nullptr), InvalidArgument);
  EXPECT_THROW(k->encodeBatch(nullptr, ImageBatch{src}, ImageBatch{dst}), InvalidArgument);
  EXPECT_THROW(k->encodeBatch(cb, ImageBatch{nullptr}, ImageBatch{dst}), InvalidArgument);
  EXPECT_THROW(k->encodeBatch(cb, ImageBatch{src}, ImageBatch{nullptr}), InvalidArgument);
  EXPECT_THROW(k->encodeBatch(nullptr, ImageBatch{src}), InvalidArgument);
  EXPECT_THROW(k->destinationImageDescriptor({}, {}), InvalidArgument);
  EXPECT_THROW(k->destinationImageDescriptor({nullptr}, {}), InvalidArgument);
  run(cb);
}

TEST(CNNKernel, EncodingIntoACommittedCommandBufferIsInvalid) {
  auto src = makeF32(3, 3, 2), dst = makeF32(3, 3, 2);
  test::poison(*dst);
  auto before = test::download(*dst);
  auto cb = test::queue()->commandBuffer();
  run(cb);
  auto k = identity();
  EXPECT_THROW(k->encode(cb, src, dst), InvalidArgument);
  EXPECT_THROW(k->encode(cb, src), InvalidArgument);
  EXPECT_THROW(k->encodeBatch(cb, ImageBatch{src}, ImageBatch{dst}), InvalidArgument);
  k->setClipRect({{5, 5, 0}, {1, 1, 1}});  // an empty clip encodes no work, and is still rejected
  EXPECT_THROW(k->encode(cb, src, dst), InvalidArgument);
  EXPECT_TRUE(test::close(test::download(*dst), before, 0, 0));
}

TEST(CNNKernel, UnsupportedEdgeModesAreInvalid) {
  auto src = makeF32(3, 3, 2), dst = makeF32(3, 3, 2);
  test::poison(*dst);
  auto cb = test::queue()->commandBuffer();
  expectRejectedUntouched(dst, cb, [&] {
    auto k = identity();
    for (ImageEdgeMode m : {ImageEdgeMode::Mirror, ImageEdgeMode::MirrorWithEdge, ImageEdgeMode::Constant}) {
      k->setEdgeMode(m);
      EXPECT_THROW(k->encode(cb, src, dst), InvalidArgument);
    }
    k->encode(cb, src, dst);
  });
}

TEST(CNNKernel, FormatConversionOnWrite) {
  // The destination stores the float32 result in its own format (spec 00 §1.1).
  auto srcRef = randomSource(1, 3, 4, 5);
  auto src = test::makeImage(srcRef);
  for (F f : {F::Float32, F::Float16, F::BFloat16, F::Unorm8, F::Unorm16}) {
    auto dst = Image::make(test::device(), ImageDescriptor::make(f, 4, 3, 5));
    auto cb = test::queue()->commandBuffer();
    identity()->encode(cb, src, dst);
    run(cb);
    auto expected = srcRef;
    test::roundTo(expected, f);
    EXPECT_TRUE(test::close(test::download(*dst), expected, 0, 0)) << toString(f);
  }
}

TEST(CNNKernel, DeviceMismatchIsInvalid) {
  if (!Device::cudaAvailable()) GTEST_SKIP() << "needs a second device (a CUDA GPU)";
  auto cpu = Device::cpuDevice(), gpu = Device::cudaDevice(0);
  auto k = CNNNeuron::make(cpu, NNNeuronDescriptor());
  auto cpuImage = Image::make(cpu, ImageDescriptor::make(F::Float32, 2, 2, 1));
  auto gpuImage = Image::make(gpu, ImageDescriptor::make(F::Float32, 2, 2, 1));
  auto cpuCb = cpu->newCommandQueue()->commandBuffer();
  auto gpuCb = gpu->newCommandQueue()->commandBuffer();
  EXPECT_THROW(k->encode(cpuCb, cpuImage, gpuImage), InvalidArgument);
  EXPECT_THROW(k->encode(cpuCb, gpuImage, cpuImage), InvalidArgument);
  EXPECT_THROW(k->encode(gpuCb, cpuImage, Image::make(cpu, ImageDescriptor::make(F::Float32, 2, 2, 1))),
               InvalidArgument);
  run(cpuCb);
  run(gpuCb);
}

// ---- auto mode and destinationImageDescriptor ---------------------------------------------

TEST(CNNKernel, DestinationImageDescriptor) {
  auto k = identity();
  auto src = Image::make(test::device(), ImageDescriptor::make(F::Float16, 7, 5, 10, 3));
  k->setOffset({4, 4, 2});
  ImageDescriptor d = k->destinationImageDescriptor({src}, {});
  // Same, k=1, s=1: the source size; offset x/y from §5.3 (0), z unchanged.
  EXPECT_EQ(d, ImageDescriptor::make(F::Float16, 7, 5, 10, 1));
  EXPECT_EQ(k->offset(), (Offset{0, 0, 2}));
  // Channels: destinationFeatureChannelOffset + C_out.
  k->setSourceFeatureChannelOffset(4);
  k->setDestinationFeatureChannelOffset(3);
  d = k->destinationImageDescriptor({src}, {});
  EXPECT_EQ(d.featureChannels(), 3u + 6u);
  k->setSourceFeatureChannelMaxCount(2);
  EXPECT_EQ(k->destinationImageDescriptor({src}, {}).featureChannels(), 3u + 2u);
  // Other size rules give the same size for a 1x1 window.
  k->setPadding(NNDefaultPadding::paddingWithMethod(NNPaddingMethod::SizeFull));
  EXPECT_EQ(k->destinationImageDescriptor({src}, {}).width(), 7u);
  k->setPadding(NNDefaultPadding::paddingWithMethod(NNPaddingMethod::SizeValidOnly));
  EXPECT_EQ(k->destinationImageDescriptor({src}, {}).height(), 5u);
  EXPECT_EQ(k->clipRect(), RectNoClip);
  k->setSourceFeatureChannelOffset(10);
  EXPECT_THROW(k->destinationImageDescriptor({src}, {}), InvalidArgument);
}

TEST(CNNKernel, AutoModeReturnsATemporaryImageOfTheRightDescriptor) {
  auto srcRef = randomSource(1, 4, 5, 6);
  auto src = test::makeImage(srcRef);
  auto k = identity();
  k->setDestinationFeatureChannelOffset(2);
  k->setSourceFeatureChannelOffset(1);
  k->setOffset({3, 3, 0});
  auto cb = test::queue()->commandBuffer();
  ImagePtr out = k->encode(cb, src);
  ASSERT_NE(out, nullptr);
  EXPECT_TRUE(out->isTemporary());
  EXPECT_EQ(static_cast<TemporaryImage&>(*out).readCount(), 1u);
  EXPECT_EQ(static_cast<TemporaryImage&>(*out).commandBuffer(), cb);
  EXPECT_EQ(out->descriptor(), ImageDescriptor::make(F::Float32, 5, 4, 2 + 5, 1));
  EXPECT_EQ(k->offset(), (Offset{0, 0, 0}));  // the value used is kept
  // Read it back through a second kernel into a persistent image (this consumes its read).
  auto final = makeF32(5, 4, 7);
  auto poisoned = test::poison(*final);
  auto copy = identity();
  copy->encode(cb, out, final);
  EXPECT_EQ(static_cast<TemporaryImage&>(*out).readCount(), 0u);
  run(cb);
  // Channels 0,1 of `out` are never written (undefined); compare channels 2..6 only.
  auto got = test::download(*final);
  for (int64_t y = 0; y < 4; ++y)
    for (int64_t x = 0; x < 5; ++x)
      for (int64_t c = 0; c < 5; ++c) EXPECT_EQ(got.at(0, y, x, 2 + c), srcRef.at(0, y, x, 1 + c));
  (void)poisoned;
}

TEST(CNNKernel, AutoModeWithThePersistentAllocator) {
  auto srcRef = randomSource(3, 3, 4, 2);
  auto src = test::makeImage(srcRef);
  auto k = identity();
  k->setDestinationImageAllocator(Image::defaultAllocator());
  k->setOffset({0, 0, 2});  // offset.z is kept by auto mode: image 2 is processed
  auto cb = test::queue()->commandBuffer();
  ImagePtr out = k->encode(cb, src);
  EXPECT_FALSE(out->isTemporary());
  EXPECT_EQ(out->descriptor(), ImageDescriptor::make(F::Float32, 4, 3, 2, 1));
  run(cb);
  ref::RefImage expected(1, 3, 4, 2);
  for (int64_t i = 0; i < 3 * 4 * 2; ++i) expected.data[size_t(i)] = srcRef.data[size_t(2 * 3 * 4 * 2 + i)];
  EXPECT_TRUE(test::close(test::download(*out), expected, 0, 0));
}

TEST(CNNKernel, AutoModeConsumesATemporarySourceOnce) {
  auto cb = test::queue()->commandBuffer();
  auto t = TemporaryImage::make(cb, ImageDescriptor::make(F::Float32, 3, 3, 4));
  t->setReadCount(2);
  identity()->encode(cb, t);
  EXPECT_EQ(t->readCount(), 1u);
  identity()->encode(cb, t);
  EXPECT_EQ(t->readCount(), 0u);
  EXPECT_THROW(identity()->encode(cb, t), InvalidArgument);  // released
  run(cb);
}

// ---- temporary images and command buffers -----------------------------------------------

TEST(CNNKernel, TemporaryImagesAcrossCommandBuffersAndAfterRelease) {
  auto cb = test::queue()->commandBuffer();
  auto other = test::queue()->commandBuffer();
  auto t = TemporaryImage::make(cb, ImageDescriptor::make(F::Float32, 3, 3, 4));
  auto dst = makeF32(3, 3, 4);
  test::poison(*dst);
  expectRejectedUntouched(dst, other, [&] {
    auto k = identity();
    EXPECT_THROW(k->encode(other, t, dst), InvalidArgument);
    EXPECT_THROW(k->encode(other, t), InvalidArgument);
    EXPECT_EQ(t->readCount(), 1u);
    t->setReadCount(0);
    EXPECT_THROW(k->encode(cb, t, dst), InvalidArgument);  // released source
    auto u = TemporaryImage::make(cb, ImageDescriptor::make(F::Float32, 3, 3, 4));
    u->setReadCount(0);
    EXPECT_THROW(k->encode(cb, dst, u), InvalidArgument);  // released destination
    k->encode(other, t, dst);
  });
  run(cb);
}

// ---- batches ----------------------------------------------------------------------------

TEST(CNNKernel, EncodeBatchPairsImages) {
  std::vector<ref::RefImage> refs;
  ImageBatch srcs, dsts;
  std::vector<ref::RefImage> poisoned;
  for (int i = 0; i < 3; ++i) {
    refs.push_back(randomSource(1, 3, 4, 5));
    srcs.push_back(test::makeImage(refs.back()));
    dsts.push_back(makeF32(4, 3, 5));
    poisoned.push_back(test::poison(*dsts.back()));
  }
  auto k = identity();
  k->setOffset({1, 0, 0});
  auto cb = test::queue()->commandBuffer();
  k->encodeBatch(cb, srcs, dsts);
  run(cb);
  Placement p;
  p.offset = {1, 0, 0};
  for (int i = 0; i < 3; ++i)
    EXPECT_TRUE(test::close(test::download(*dsts[size_t(i)]),
                            expectedIdentity(refs[size_t(i)], poisoned[size_t(i)], p), 0, 0))
        << i;
}

TEST(CNNKernel, EncodeBatchInvalid) {
  auto k = identity();
  auto a = makeF32(3, 3, 2), b = makeF32(3, 3, 2), c = makeF32(3, 3, 2);
  auto multi = makeF32(3, 3, 2, 2);
  auto other = makeF32(4, 3, 2);
  auto d0 = makeF32(3, 3, 2), d1 = makeF32(3, 3, 2);
  test::poison(*d0);
  test::poison(*d1);
  auto cb = test::queue()->commandBuffer();
  auto before0 = test::download(*d0), before1 = test::download(*d1);
  EXPECT_THROW(k->encodeBatch(cb, ImageBatch{a, b}, ImageBatch{d0}), InvalidArgument);  // lengths differ
  EXPECT_THROW(k->encodeBatch(cb, ImageBatch{a}, ImageBatch{d0, d1}), InvalidArgument);
  EXPECT_THROW(k->encodeBatch(cb, ImageBatch{a, multi}, ImageBatch{d0, d1}),
               InvalidArgument);  // numberOfImages != 1
  EXPECT_THROW(k->encodeBatch(cb, ImageBatch{a, other}, ImageBatch{d0, d1}),
               InvalidArgument);                                                             // mixed shapes
  EXPECT_THROW(k->encodeBatch(cb, ImageBatch{a, d1}, ImageBatch{d0, d1}), InvalidArgument);  // pair 1 aliases
  // A temporary source read twice with readCount 1: rejected before anything is encoded.
  auto t = TemporaryImage::make(cb, ImageDescriptor::make(F::Float32, 3, 3, 2));
  EXPECT_THROW(k->encodeBatch(cb, ImageBatch{t, t}, ImageBatch{d0, d1}), InvalidArgument);
  EXPECT_EQ(t->readCount(), 1u);
  run(cb);
  EXPECT_TRUE(test::close(test::download(*d0), before0, 0, 0));
  EXPECT_TRUE(test::close(test::download(*d1), before1, 0, 0));
}

TEST(CNNKernel, EncodeBatchTemporaryReadCounts) {
  auto cb = test::queue()->commandBuffer();
  auto t = TemporaryImage::make(cb, ImageDescriptor::make(F::Float32, 3, 3, 2));
  t->setReadCount(2);
  auto d0 = makeF32(3, 3, 2), d1 = makeF32(3, 3, 2);
  identity()->encodeBatch(cb, ImageBatch{t, t}, ImageBatch{d0, d1});
  EXPECT_EQ(t->readCount(), 0u);  // read once per pair
  run(cb);
}

TEST(CNNKernel, AutoEncodeBatch) {
  auto cb = test::queue()->commandBuffer();
  ImageBatch srcs;
  std::vector<ref::RefImage> refs;
  for (int i = 0; i < 3; ++i) {
    refs.push_back(randomSource(1, 2, 3, 3));
    srcs.push_back(test::makeImage(refs.back()));
  }
  auto k = identity();
  k->setDestinationImageAllocator(Image::defaultAllocator());
  ImageBatch outs = k->encodeBatch(cb, srcs);
  ASSERT_EQ(outs.size(), 3u);
  for (const auto& o : outs) EXPECT_EQ(o->descriptor(), ImageDescriptor::make(F::Float32, 3, 2, 3, 1));
  EXPECT_EQ(k->encodeBatch(cb, ImageBatch{}).size(), 0u);
  run(cb);
  for (int i = 0; i < 3; ++i)
    EXPECT_TRUE(test::close(test::download(*outs[size_t(i)]), refs[size_t(i)], 0, 0)) << i;
  // With the default (temporary) allocator the results are temporary images with readCount 1.
  auto cb2 = test::queue()->commandBuffer();
  ImageBatch temps = identity()->encodeBatch(cb2, srcs);
  ASSERT_EQ(temps.size(), 3u);
  for (const auto& o : temps) {
    EXPECT_TRUE(o->isTemporary());
    EXPECT_EQ(static_cast<TemporaryImage&>(*o).readCount(), 1u);
  }
  EXPECT_EQ(std::set<Image*>({temps[0].get(), temps[1].get(), temps[2].get()}).size(), 3u);
  run(cb2);
}

// =============================================================================================
// CNNBinaryKernel (through a test-only copy kernel)

std::shared_ptr<BinaryCopy> binaryCopy() { return std::make_shared<BinaryCopy>(test::device()); }

TEST(CNNBinaryKernel, PropertyDefaults) {
  auto k = binaryCopy();
  EXPECT_EQ(k->primaryOffset(), (Offset{0, 0, 0}));
  EXPECT_EQ(k->secondaryOffset(), (Offset{0, 0, 0}));
  EXPECT_EQ(k->clipRect(), RectNoClip);
  EXPECT_EQ(k->destinationFeatureChannelOffset(), 0u);
  EXPECT_EQ(k->primarySourceFeatureChannelOffset(), 0u);
  EXPECT_EQ(k->secondarySourceFeatureChannelOffset(), 0u);
  EXPECT_EQ(k->primarySourceFeatureChannelMaxCount(), UINT64_MAX);
  EXPECT_EQ(k->secondarySourceFeatureChannelMaxCount(), UINT64_MAX);
  EXPECT_EQ(k->primaryEdgeMode(), ImageEdgeMode::Zero);
  EXPECT_EQ(k->secondaryEdgeMode(), ImageEdgeMode::Zero);
  EXPECT_EQ(k->primaryKernelWidth(), 1u);
  EXPECT_EQ(k->primaryKernelHeight(), 1u);
  EXPECT_EQ(k->secondaryKernelWidth(), 1u);
  EXPECT_EQ(k->secondaryKernelHeight(), 1u);
  EXPECT_EQ(k->primaryStrideInPixelsX(), 1u);
  EXPECT_EQ(k->primaryStrideInPixelsY(), 1u);
  EXPECT_EQ(k->secondaryStrideInPixelsX(), 1u);
  EXPECT_EQ(k->secondaryStrideInPixelsY(), 1u);
  EXPECT_EQ(k->primaryDilationRateX(), 1u);
  EXPECT_EQ(k->primaryDilationRateY(), 1u);
  EXPECT_EQ(k->secondaryDilationRateX(), 1u);
  EXPECT_EQ(k->secondaryDilationRateY(), 1u);
  EXPECT_FALSE(k->isBackwards());
  ASSERT_NE(k->padding(), nullptr);
  EXPECT_EQ(uint32_t(k->padding()->paddingMethod()), 16u);  // Centered | TopLeft | Same
  EXPECT_EQ(k->destinationImageAllocator(), TemporaryImage::defaultAllocator());
  EXPECT_EQ(k->options(), KernelOptions::None);
}

TEST(CNNBinaryKernel, StridesAreReadWrite) {
  auto k = binaryCopy();
  k->setPrimaryStrideInPixelsX(2);
  k->setPrimaryStrideInPixelsY(3);
  k->setSecondaryStrideInPixelsX(0);  // arithmetic kernels broadcast with 0
  k->setSecondaryStrideInPixelsY(5);
  EXPECT_EQ(k->primaryStrideInPixelsX(), 2u);
  EXPECT_EQ(k->primaryStrideInPixelsY(), 3u);
  EXPECT_EQ(k->secondaryStrideInPixelsX(), 0u);
  EXPECT_EQ(k->secondaryStrideInPixelsY(), 5u);
  k->setPrimaryOffset({1, 2, 3});
  k->setSecondaryOffset({-1, -2, 0});
  k->setPrimaryEdgeMode(ImageEdgeMode::Clamp);
  k->setSecondaryEdgeMode(ImageEdgeMode::Clamp);
  EXPECT_EQ(k->primaryOffset(), (Offset{1, 2, 3}));
  EXPECT_EQ(k->secondaryOffset(), (Offset{-1, -2, 0}));
  EXPECT_EQ(k->primaryEdgeMode(), ImageEdgeMode::Clamp);
  EXPECT_EQ(k->secondaryEdgeMode(), ImageEdgeMode::Clamp);
  EXPECT_THROW(k->setPadding(nullptr), InvalidArgument);
  EXPECT_THROW(k->setDestinationImageAllocator(nullptr), InvalidArgument);
}

TEST(CNNBinaryKernel, CopiesEachSourceWithItsOwnOffsetsAndChannels) {
  SKIP_UNLESS_CPU();
  auto pRef = randomSource(3, 4, 5, 6), sRef = randomSource(2, 5, 4, 9);
  auto primary = test::makeImage(pRef), secondary = test::makeImage(sRef);
  for (bool sec : {false, true}) {
    auto k = binaryCopy();
    k->copySecondary = sec;
    k->setPrimaryOffset({1, -1, 1});
    k->setSecondaryOffset({-2, 1, 0});
    k->setPrimarySourceFeatureChannelOffset(2);  // reads 4 channels
    k->setSecondarySourceFeatureChannelOffset(3);
    k->setSecondarySourceFeatureChannelMaxCount(5);
    k->setDestinationFeatureChannelOffset(1);
    k->setSecondaryEdgeMode(ImageEdgeMode::Clamp);
    auto dst = makeF32(4, 3, 6, 2);
    auto poisoned = test::poison(*dst);
    auto cb = test::queue()->commandBuffer();
    k->encode(cb, primary, secondary, dst);
    run(cb);
    ASSERT_EQ(k->problems.size(), 1u);
    const auto& pr = k->problems[0];
    EXPECT_EQ(pr.primary.c, 4);    // C_read of the primary
    EXPECT_EQ(pr.secondary.c, 5);  // min(maxCount, C - offset)
    EXPECT_EQ(pr.dst.c, 4);        // C_out = primary read (the base's default)
    EXPECT_EQ(pr.dst.n, 2);        // min(N_dst, N_p - 1, N_s - 0)
    Placement p;
    p.offset = sec ? Offset{-2, 1, 0} : Offset{1, -1, 1};
    p.sOff = sec ? 3 : 2;
    p.maxCount = 4;  // channels copied: min(dst.c, source c)
    p.dOff = 1;
    p.edge = sec ? ImageEdgeMode::Clamp : ImageEdgeMode::Zero;
    EXPECT_TRUE(test::close(test::download(*dst), expectedIdentity(sec ? sRef : pRef, poisoned, p), 0, 0))
        << (sec ? "secondary" : "primary");
  }
}

TEST(CNNBinaryKernel, ClipRect) {
  SKIP_UNLESS_CPU();
  auto pRef = randomSource(1, 5, 6, 2);
  auto primary = test::makeImage(pRef), secondary = makeF32(6, 5, 2);
  auto k = binaryCopy();
  k->setClipRect({{2, 1, 0}, {3, 10, 1}});
  k->setPrimaryOffset({-1, 0, 0});
  auto dst = makeF32(6, 5, 2);
  auto poisoned = test::poison(*dst);
  auto cb = test::queue()->commandBuffer();
  k->encode(cb, primary, secondary, dst);
  run(cb);
  Placement p;
  p.clip = {{2, 1, 0}, {3, 10, 1}};
  p.offset = {-1, 0, 0};
  EXPECT_TRUE(test::close(test::download(*dst), expectedIdentity(pRef, poisoned, p), 0, 0));
}

TEST(CNNBinaryKernel, InvalidArguments) {
  auto k = binaryCopy();
  auto p = makeF32(3, 3, 6, 2), s = makeF32(3, 3, 6, 2), dst = makeF32(3, 3, 6, 2);
  test::poison(*dst);
  auto cb = test::queue()->commandBuffer();
  expectRejectedUntouched(dst, cb, [&] {
    // Null arguments.
    EXPECT_THROW(k->encode(nullptr, p, s, dst), InvalidArgument);
    EXPECT_THROW(k->encode(cb, nullptr, s, dst), InvalidArgument);
    EXPECT_THROW(k->encode(cb, p, nullptr, dst), InvalidArgument);
    EXPECT_THROW(k->encode(cb, p, s, nullptr), InvalidArgument);
    // Aliasing either source.
    EXPECT_THROW(k->encode(cb, dst, s, dst), InvalidArgument);
    EXPECT_THROW(k->encode(cb, p, dst, dst), InvalidArgument);
    EXPECT_THROW(k->encode(cb, p, dst->subImageWithFeatureChannelRange({4, 4}), dst), InvalidArgument);
    EXPECT_THROW(k->encode(cb, dst->batchRepresentation()[1], s, dst), InvalidArgument);
    // Channel offsets.
    k->setPrimarySourceFeatureChannelOffset(6);
    EXPECT_THROW(k->encode(cb, p, s, dst), InvalidArgument);
    k->setPrimarySourceFeatureChannelOffset(0);
    k->setSecondarySourceFeatureChannelOffset(7);
    EXPECT_THROW(k->encode(cb, p, s, dst), InvalidArgument);
    k->setSecondarySourceFeatureChannelOffset(0);
    k->setDestinationFeatureChannelOffset(1);  // 1 + 6 > 6
    EXPECT_THROW(k->encode(cb, p, s, dst), InvalidArgument);
    k->setDestinationFeatureChannelOffset(0);
    // z rules, per source.
    k->setPrimaryOffset({0, 0, -1});
    EXPECT_THROW(k->encode(cb, p, s, dst), InvalidArgument);
    k->setPrimaryOffset({0, 0, 0});
    k->setSecondaryOffset({0, 0, -1});
    EXPECT_THROW(k->encode(cb, p, s, dst), InvalidArgument);
    k->setSecondaryOffset({0, 0, 2});  // no secondary image left
    EXPECT_THROW(k->encode(cb, p, s, dst), InvalidArgument);
    k->setSecondaryOffset({0, 0, 1});
    k->setClipRect({{0, 0, 0}, {3, 3, 2}});  // secondary has only 1 image from offset.z = 1
    EXPECT_THROW(k->encode(cb, p, s, dst), InvalidArgument);
    k->setSecondaryOffset({0, 0, 0});
    k->setClipRect({{0, 0, 1}, {3, 3, 2}});  // beyond the destination
    EXPECT_THROW(k->encode(cb, p, s, dst), InvalidArgument);
    k->setClipRect(RectNoClip);
    // Unsupported edge modes.
    k->setSecondaryEdgeMode(ImageEdgeMode::Mirror);
    EXPECT_THROW(k->encode(cb, p, s, dst), InvalidArgument);
    k->setSecondaryEdgeMode(ImageEdgeMode::Zero);
    k->setPrimaryEdgeMode(ImageEdgeMode::Constant);
    EXPECT_THROW(k->encode(cb, p, s, dst), InvalidArgument);
    k->encode(cb, p, s, dst);
  });
  EXPECT_TRUE(k->problems.empty()) << "a rejected encode reached encodeProblem";
}

TEST(CNNBinaryKernel, EncodingIntoACommittedCommandBufferIsInvalid) {
  auto p = makeF32(3, 3, 2), s = makeF32(3, 3, 2), dst = makeF32(3, 3, 2);
  auto cb = test::queue()->commandBuffer();
  run(cb);
  auto k = binaryCopy();
  EXPECT_THROW(k->encode(cb, p, s, dst), InvalidArgument);
  EXPECT_THROW(k->encode(cb, p, s), InvalidArgument);
  EXPECT_THROW(k->encodeBatch(cb, ImageBatch{p}, ImageBatch{s}, ImageBatch{dst}), InvalidArgument);
  EXPECT_TRUE(k->problems.empty());
}

TEST(CNNBinaryKernel, StrictValidationOfChannelOffsets) {
  auto p = makeF32(2, 2, 8), s = makeF32(2, 2, 8), dst = makeF32(2, 2, 12);
  auto k = binaryCopy();
  auto cb = test::queue()->commandBuffer();
  k->setPrimarySourceFeatureChannelOffset(1);
  k->setSecondarySourceFeatureChannelOffset(2);
  k->setDestinationFeatureChannelOffset(3);
  EXPECT_NO_THROW(k->encode(cb, p, s, dst));  // relaxed by default
  {
    StrictScope strict;
    EXPECT_THROW(k->encode(cb, p, s, dst), InvalidArgument);
    k->setPrimarySourceFeatureChannelOffset(4);
    EXPECT_THROW(k->encode(cb, p, s, dst), InvalidArgument);
    k->setSecondarySourceFeatureChannelOffset(4);
    EXPECT_THROW(k->encode(cb, p, s, dst), InvalidArgument);
    k->setDestinationFeatureChannelOffset(4);
    EXPECT_NO_THROW(k->encode(cb, p, s, dst));
  }
  run(cb);
}

TEST(CNNBinaryKernel, TemporaryReadCountsAreConsumedOncePerSource) {
  auto cb = test::queue()->commandBuffer();
  const auto desc = ImageDescriptor::make(F::Float32, 3, 3, 4);
  auto k = binaryCopy();
  auto a = TemporaryImage::make(cb, desc), b = TemporaryImage::make(cb, desc),
       d = TemporaryImage::make(cb, desc);
  a->setReadCount(3);
  b->setReadCount(3);
  d->setReadCount(3);
  k->encode(cb, a, b, d);
  EXPECT_EQ(a->readCount(), 2u);
  EXPECT_EQ(b->readCount(), 2u);
  EXPECT_EQ(d->readCount(), 3u);  // writes never change it
  // The same temporary as both sources is read twice.
  k->encode(cb, a, a, d);
  EXPECT_EQ(a->readCount(), 0u);
  auto c = TemporaryImage::make(cb, desc);
  EXPECT_THROW(k->encode(cb, c, c, d), InvalidArgument);  // readCount 1 < 2
  EXPECT_EQ(c->readCount(), 1u);
  // A persistent secondary leaves the temporary primary's accounting alone.
  auto persistent = Image::make(test::device(), desc);
  k->encode(cb, b, persistent, d);
  EXPECT_EQ(b->readCount(), 1u);
  run(cb);
}

TEST(CNNBinaryKernel, AutoModeSizesFromThePrimary) {
  auto k = binaryCopy();
  auto p = Image::make(test::device(), ImageDescriptor::make(F::Float16, 6, 5, 7));
  auto s = Image::make(test::device(), ImageDescriptor::make(F::Float32, 2, 2, 3));
  k->setPrimarySourceFeatureChannelOffset(2);
  k->setDestinationFeatureChannelOffset(4);
  k->setPrimaryOffset({9, 9, 0});
  ImageDescriptor d = k->destinationImageDescriptor({p, s}, {});
  EXPECT_EQ(d, ImageDescriptor::make(F::Float16, 6, 5, 4 + 5, 1));
  EXPECT_EQ(k->primaryOffset(), (Offset{0, 0, 0}));
  auto cb = test::queue()->commandBuffer();
  ImagePtr out = k->encode(cb, p, s);
  ASSERT_NE(out, nullptr);
  EXPECT_TRUE(out->isTemporary());
  EXPECT_EQ(out->descriptor(), ImageDescriptor::make(F::Float16, 6, 5, 9, 1));
  EXPECT_THROW(k->destinationImageDescriptor({p}, {}), InvalidArgument);
  EXPECT_THROW(k->encode(cb, p, nullptr), InvalidArgument);
  run(cb);
}

TEST(CNNBinaryKernel, EncodeBatchPairsImages) {
  SKIP_UNLESS_CPU();
  std::vector<ref::RefImage> refs, poisoned;
  ImageBatch ps, ss, ds;
  for (int i = 0; i < 3; ++i) {
    refs.push_back(randomSource(1, 2, 3, 4));
    ps.push_back(test::makeImage(refs.back()));
    ss.push_back(makeF32(3, 2, 4));
    ds.push_back(makeF32(3, 2, 4));
    poisoned.push_back(test::poison(*ds.back()));
  }
  auto k = binaryCopy();
  auto cb = test::queue()->commandBuffer();
  k->encodeBatch(cb, ps, ss, ds);
  run(cb);
  for (int i = 0; i < 3; ++i)
    EXPECT_TRUE(test::close(test::download(*ds[size_t(i)]), refs[size_t(i)], 0, 0)) << i;
}

TEST(CNNBinaryKernel, EncodeBatchInvalidWritesNothing) {
  auto k = binaryCopy();
  auto cb = test::queue()->commandBuffer();
  auto p0 = makeF32(3, 3, 2), p1 = makeF32(3, 3, 2), s0 = makeF32(3, 3, 2), s1 = makeF32(3, 3, 2);
  auto d0 = makeF32(3, 3, 2), d1 = makeF32(3, 3, 2);
  auto multi = makeF32(3, 3, 2, 2), wide = makeF32(4, 3, 2);
  test::poison(*d0);
  test::poison(*d1);
  auto before0 = test::download(*d0), before1 = test::download(*d1);
  // Different lengths.
  EXPECT_THROW(k->encodeBatch(cb, ImageBatch{p0, p1}, ImageBatch{s0}, ImageBatch{d0, d1}), InvalidArgument);
  EXPECT_THROW(k->encodeBatch(cb, ImageBatch{p0}, ImageBatch{s0, s1}, ImageBatch{d0}), InvalidArgument);
  EXPECT_THROW(k->encodeBatch(cb, ImageBatch{p0, p1}, ImageBatch{s0, s1}, ImageBatch{d0}), InvalidArgument);
  EXPECT_THROW(k->encodeBatch(cb, ImageBatch{p0, p1}, ImageBatch{s0}), InvalidArgument);
  // Batch images must be single images of one shape (spec 00 §2.6).
  EXPECT_THROW(k->encodeBatch(cb, ImageBatch{p0, multi}, ImageBatch{s0, s1}, ImageBatch{d0, d1}),
               InvalidArgument);
  EXPECT_THROW(k->encodeBatch(cb, ImageBatch{p0, p1}, ImageBatch{s0, multi}, ImageBatch{d0, d1}),
               InvalidArgument);
  EXPECT_THROW(k->encodeBatch(cb, ImageBatch{p0, wide}, ImageBatch{s0, s1}, ImageBatch{d0, d1}),
               InvalidArgument);
  // The second pair is invalid: the first must not be encoded either.
  EXPECT_THROW(k->encodeBatch(cb, ImageBatch{p0, p1}, ImageBatch{s0, s1}, ImageBatch{d0, p1}),
               InvalidArgument);
  // A temporary read by two pairs with readCount 1: rejected before anything is encoded.
  auto t = TemporaryImage::make(cb, ImageDescriptor::make(F::Float32, 3, 3, 2));
  EXPECT_THROW(k->encodeBatch(cb, ImageBatch{t, t}, ImageBatch{s0, s1}, ImageBatch{d0, d1}), InvalidArgument);
  EXPECT_EQ(t->readCount(), 1u);
  EXPECT_THROW(k->encodeBatch(cb, ImageBatch{p0, p1}, ImageBatch{t, t}, ImageBatch{d0, d1}), InvalidArgument);
  EXPECT_THROW(k->encodeBatch(cb, ImageBatch{t, p1}, ImageBatch{s0, t}, ImageBatch{d0, d1}), InvalidArgument);
  EXPECT_EQ(t->readCount(), 1u);
  EXPECT_TRUE(k->problems.empty()) << "a rejected batch reached encodeProblem";
  run(cb);
  EXPECT_TRUE(test::close(test::download(*d0), before0, 0, 0));
  EXPECT_TRUE(test::close(test::download(*d1), before1, 0, 0));
}

TEST(CNNBinaryKernel, EncodeBatchTemporaryReadCounts) {
  auto k = binaryCopy();
  auto cb = test::queue()->commandBuffer();
  const auto desc = ImageDescriptor::make(F::Float32, 3, 3, 2);
  auto t = TemporaryImage::make(cb, desc), u = TemporaryImage::make(cb, desc);
  t->setReadCount(3);
  u->setReadCount(2);
  k->encodeBatch(cb, ImageBatch{t, t}, ImageBatch{u, t}, ImageBatch{makeF32(3, 3, 2), makeF32(3, 3, 2)});
  EXPECT_EQ(t->readCount(), 0u);  // three reads
  EXPECT_EQ(u->readCount(), 1u);
  EXPECT_EQ(k->problems.size(), 2u);
  ImageBatch outs = k->encodeBatch(cb, ImageBatch{u}, ImageBatch{makeF32(3, 3, 2)});
  ASSERT_EQ(outs.size(), 1u);
  EXPECT_EQ(u->readCount(), 0u);
  EXPECT_EQ(k->encodeBatch(cb, ImageBatch{}, ImageBatch{}).size(), 0u);
  run(cb);
}

// =============================================================================================
// CNNGradientKernel (spec 10 §10.2)

TEST(CNNGradientKernel, PropertyDefaults) {
  auto k = std::make_shared<GradientCopy>(test::device());
  EXPECT_TRUE(k->isBackwards());
  EXPECT_EQ(k->kernelOffsetX(), 0);
  EXPECT_EQ(k->kernelOffsetY(), 0);
  EXPECT_EQ(k->primaryOffset(), (Offset{0, 0, 0}));
  EXPECT_EQ(k->secondaryOffset(), (Offset{0, 0, 0}));
  EXPECT_EQ(k->clipRect(), RectNoClip);
  EXPECT_EQ(k->primaryEdgeMode(), ImageEdgeMode::Zero);
  EXPECT_EQ(k->secondaryEdgeMode(), ImageEdgeMode::Zero);
  EXPECT_EQ(k->primaryKernelWidth(), 1u);
  EXPECT_EQ(k->secondaryKernelHeight(), 1u);
  EXPECT_EQ(k->primaryStrideInPixelsX(), 1u);
  EXPECT_EQ(k->secondaryStrideInPixelsY(), 1u);
  EXPECT_EQ(k->primaryDilationRateX(), 1u);
  EXPECT_EQ(k->secondaryDilationRateY(), 1u);
  EXPECT_EQ(k->destinationFeatureChannelOffset(), 0u);
  EXPECT_EQ(k->primarySourceFeatureChannelOffset(), 0u);
  EXPECT_EQ(k->secondarySourceFeatureChannelOffset(), 0u);
  EXPECT_EQ(k->primarySourceFeatureChannelMaxCount(), UINT64_MAX);
  EXPECT_EQ(k->secondarySourceFeatureChannelMaxCount(), UINT64_MAX);
  EXPECT_EQ(k->padding()->paddingMethod(), NNPaddingMethod::AlignCentered |
                                               NNPaddingMethod::AddRemainderToTopLeft |
                                               NNPaddingMethod::SizeSame);
  EXPECT_EQ(k->destinationImageAllocator(), TemporaryImage::defaultAllocator());
}

TEST(CNNGradientKernel, KernelOffsets) {
  auto k = std::make_shared<GradientCopy>(test::device());
  k->setKernelOffsetX(-2);
  k->setKernelOffsetY(3);
  EXPECT_EQ(k->kernelOffsetX(), -2);
  EXPECT_EQ(k->kernelOffsetY(), 3);
}

/// A gradient state filled by an identity neuron's forward encode of `x`.
StatePtr forwardState(const CommandBufferPtr& cb, const ImagePtr& x, bool temporary) {
  auto forward = CNNNeuron::make(test::device(), NNNeuronDescriptor::make(CNNNeuronType::None));
  forward->setDestinationImageAllocator(Image::defaultAllocator());
  StatePtr state;
  forward->encode(cb, x, &state, temporary);
  return state;
}

TEST(CNNGradientKernel, SharesTheBinaryValidationAndAccounting) {
  auto k = std::make_shared<GradientCopy>(test::device());
  auto cb = test::queue()->commandBuffer();
  const auto desc = ImageDescriptor::make(F::Float32, 3, 3, 4);
  auto g = TemporaryImage::make(cb, desc);
  auto x = makeF32(3, 3, 4);
  auto dst = makeF32(3, 3, 4);
  StatePtr state = forwardState(cb, x, true);
  EXPECT_EQ(state->readCount(), 1u);
  EXPECT_THROW(k->encode(cb, g, x, state, x), InvalidArgument);  // aliasing
  EXPECT_EQ(g->readCount(), 1u);
  EXPECT_EQ(state->readCount(), 1u);
  k->encode(cb, g, x, state, dst);
  EXPECT_EQ(g->readCount(), 0u);
  EXPECT_EQ(state->readCount(), 0u);
  auto g2 = TemporaryImage::make(cb, desc);
  EXPECT_THROW(k->encode(cb, g2, x, state, dst), InvalidArgument);  // state released
  EXPECT_THROW(k->encode(cb, g, x, forwardState(cb, x, true), dst), InvalidArgument);  // image released
  run(cb);
}

TEST(CNNGradientKernel, CopiesThroughTheStatePath) {
  SKIP_UNLESS_CPU();
  auto gRef = randomSource(1, 3, 4, 2);
  auto g = test::makeImage(gRef);
  auto x = makeF32(4, 3, 2);
  auto k = std::make_shared<GradientCopy>(test::device());
  k->setDestinationImageAllocator(Image::defaultAllocator());
  auto cb = test::queue()->commandBuffer();
  StatePtr state = forwardState(cb, x, false);
  EXPECT_FALSE(state->isTemporary());
  ImagePtr out = k->encode(cb, g, x, state);  // dL/dX has the forward source's size
  EXPECT_EQ(out->descriptor(), ImageDescriptor::make(F::Float32, 4, 3, 2, 1));
  run(cb);
  EXPECT_TRUE(test::close(test::download(*out), gRef, 0, 0));
  EXPECT_EQ(state->readCount(), 0u);  // persistent: reads are not counted
}

TEST(CNNGradientKernel, RejectsWrongStatesAndSizes) {
  auto k = std::make_shared<GradientCopy>(test::device());
  auto cb = test::queue()->commandBuffer();
  auto x = makeF32(4, 3, 2);
  auto dst = makeF32(4, 3, 2);
  StatePtr state = forwardState(cb, x, false);
  EXPECT_THROW(k->encode(cb, makeF32(4, 3, 2), x, nullptr, dst), InvalidArgument);  // null state
  EXPECT_THROW(k->encode(cb, makeF32(4, 3, 2), x, State::make(test::device(), 16), dst), InvalidArgument);
  EXPECT_THROW(k->encode(cb, makeF32(4, 3, 2), x, NNGradientState::make(test::device()), dst),
               InvalidArgument);                                                  // never filled
  EXPECT_THROW(k->encode(cb, makeF32(5, 3, 2), x, state, dst), InvalidArgument);  // gradient size
  EXPECT_THROW(k->encode(cb, makeF32(4, 3, 2), makeF32(4, 4, 2), state, dst), InvalidArgument);  // source size
  auto other = test::queue()->commandBuffer();
  StatePtr foreign = forwardState(other, x, true);
  EXPECT_THROW(k->encode(cb, makeF32(4, 3, 2), x, foreign, dst), InvalidArgument);  // other command buffer
  run(other);
  run(cb);
}

TEST(CNNGradientKernel, ForwardRecordHoldsTheGeometry) {
  auto cb = test::queue()->commandBuffer();
  auto x = makeF32(7, 5, 6, 1);
  auto forward = CNNNeuron::make(test::device(), NNNeuronDescriptor::make(CNNNeuronType::None));
  forward->setSourceFeatureChannelOffset(1);
  forward->setSourceFeatureChannelMaxCount(3);
  forward->setClipRect({{1, 2, 0}, {4, 2, 1}});
  auto dst = makeF32(7, 5, 3, 1);
  StatePtr state = forward->resultStateForSourceImage(x, {}, dst);
  forward->encode(cb, x, state, dst);
  run(cb);
  const ForwardRecord& r = std::dynamic_pointer_cast<NNGradientState>(state)->forwardRecord();
  EXPECT_TRUE(r.recorded);
  EXPECT_EQ(r.kernelClass, "CNNNeuron");
  EXPECT_EQ(r.primary.width, 7u);
  EXPECT_EQ(r.primary.height, 5u);
  EXPECT_EQ(r.primary.featureChannelOffset, 1u);
  EXPECT_EQ(r.primary.featureChannelsRead, 3u);
  EXPECT_EQ(r.writtenX, 1u);
  EXPECT_EQ(r.writtenY, 2u);
  EXPECT_EQ(r.writtenWidth, 4u);
  EXPECT_EQ(r.writtenHeight, 2u);
  EXPECT_EQ(r.destinationFeatureChannelsWritten, 3u);
}

}  // namespace
}  // namespace mpsnn
