// CUDA softmax and log-softmax over feature channels. A typed path for float32 and float16 images:
// one thread per pixel for up to 16 channels, one warp per pixel above that (the channels of a pixel
// are contiguous, so a warp's loads coalesce; max and sum are warp shuffles; up to 512 channels
// stay in registers between the passes). A plain kernel (one thread per pixel) for every format.
//
// cuDNN's softmax is not used: like oneDNN's it is not specified to make a whole pixel NaN when one
// channel is NaN or +inf (spec 04 §1), and a warp kernel is as fast for this memory-bound op.
#include <cuda_fp16.h>

#include "cuda/context.h"
#include "cuda/launch.h"
#include "kernels/softmax_impl.h"

namespace mpsnn::detail {
namespace {

constexpr int kWarp = 32;
constexpr int64_t kMaxThreadPerPixelChannels = 16;


__device__ __forceinline__ float negativeInfinity() { return __int_as_float(0xff800000); }

/// Where destination pixel `pixel` (n, y, x in the view) reads: the element index of channel 0 of
/// its source pixel, or −1 when that pixel lies outside the source in Zero mode.
struct PixelPlace {
  int64_t source, destination;
};
__device__ __forceinline__ PixelPlace placePixel(int64_t pixel, const RawView& s, const RawView& d,
                                                 int64_t offsetX, int64_t offsetY, ImageEdgeMode edge) {
  const int64_t x = pixel % d.w, y = (pixel / d.w) % d.h, n = pixel / (d.w * d.h);
  int64_t sy = offsetY + y, sx = offsetX + x;
  const bool inside = resolveEdge(sy, s.h, edge) & resolveEdge(sx, s.w, edge);
  return {inside ? s.index(n, sy, sx, 0) : -1, d.index(n, y, x, 0)};
}

// ---- typed, one thread per pixel (few channels) ------------------------------------------------------

template <class T>
__global__ void softMaxThreadKernel(RawView s, RawView d, int64_t offsetX, int64_t offsetY,
                                    ImageEdgeMode edge, bool logarithm) {
  const T* src = static_cast<const T*>(s.data);
  T* dst = static_cast<T*>(d.data);
  const int64_t pixels = d.n * d.h * d.w, channels = d.c;
  for (int64_t pixel = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; pixel < pixels;
       pixel += int64_t(gridDim.x) * blockDim.x) {
    const PixelPlace at = placePixel(pixel, s, d, offsetX, offsetY, edge);
    softMaxPixel(
        channels, logarithm, [&](int64_t k) { return at.source < 0 ? 0.0f : loadValue(src, at.source + k); },
        [&](int64_t k, float v) { storeValue(dst, at.destination + k, v); });
  }
}

// ---- typed, one warp per pixel ------------------------------------------------------------------------

__device__ __forceinline__ float warpMax(float v) {
  for (int o = kWarp / 2; o > 0; o /= 2) {
    const float other = __shfl_xor_sync(0xffffffffu, v, o);
    v = other > v ? other : v;  // NaN never wins, as on the other paths; the sum catches it
  }
  return v;
}
__device__ __forceinline__ float warpSum(float v) {
  for (int o = kWarp / 2; o > 0; o /= 2) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

/// Lane l handles channels l, l + 32, ...; the first 32·kCached of them are kept in registers
/// between the three passes (kCached = 0: every pass reloads them, from L1/L2).
template <class T, int kCached>
__global__ void softMaxWarpKernel(RawView s, RawView d, int64_t offsetX, int64_t offsetY, ImageEdgeMode edge,
                                  bool logarithm) {
  const T* src = static_cast<const T*>(s.data);
  T* dst = static_cast<T*>(d.data);
  const int64_t pixels = d.n * d.h * d.w, channels = d.c;
  const int lane = int(threadIdx.x) % kWarp;
  const int64_t warpsInGrid = int64_t(gridDim.x) * blockDim.x / kWarp;
  // Every lane of a warp has the same pixel, so the loop and the shuffles stay warp-uniform.
  for (int64_t pixel = (blockIdx.x * int64_t(blockDim.x) + threadIdx.x) / kWarp; pixel < pixels;
       pixel += warpsInGrid) {
    const PixelPlace at = placePixel(pixel, s, d, offsetX, offsetY, edge);
    auto load = [&](int64_t k) { return at.source < 0 ? 0.0f : loadValue(src, at.source + k); };
    [[maybe_unused]] float cached[kCached > 0 ? kCached : 1];
    float m = negativeInfinity();
#pragma unroll
    for (int j = 0; j < kCached; ++j) {
      const int64_t k = lane + int64_t(j) * kWarp;
      cached[j] = k < channels ? load(k) : negativeInfinity();
      m = cached[j] > m ? cached[j] : m;
    }
    for (int64_t k = lane + int64_t(kCached) * kWarp; k < channels; k += kWarp) {
      const float v = load(k);
      m = v > m ? v : m;
    }
    m = warpMax(m);
    float sum = 0.0f;
#pragma unroll
    for (int j = 0; j < kCached; ++j)
      if (lane + int64_t(j) * kWarp < channels) sum += expf(cached[j] - m);
    for (int64_t k = lane + int64_t(kCached) * kWarp; k < channels; k += kWarp) sum += expf(load(k) - m);
    sum = warpSum(sum);
    const float logSum = logarithm ? logf(sum) : 0.0f;
    auto result = [&](float v) { return logarithm ? (v - m) - logSum : expf(v - m) / sum; };
#pragma unroll
    for (int j = 0; j < kCached; ++j) {
      const int64_t k = lane + int64_t(j) * kWarp;
      if (k < channels) storeValue(dst, at.destination + k, result(cached[j]));
    }
    for (int64_t k = lane + int64_t(kCached) * kWarp; k < channels; k += kWarp)
      storeValue(dst, at.destination + k, result(load(k)));
  }
}

template <class T>
void launchTyped(const SoftMaxProblem& p, cudaStream_t stream) {
  const RawView s = p.io.src.raw(), d = p.io.dst.raw();
  const int64_t pixels = d.n * d.h * d.w;
  const int64_t ox = p.io.offsetX, oy = p.io.offsetY;
  if (d.c <= kMaxThreadPerPixelChannels)
    softMaxThreadKernel<T>
        <<<gridBlocks(pixels), kThreadsPerBlock, 0, stream>>>(s, d, ox, oy, p.io.edgeMode, p.logarithm);
  else if (d.c <= 4 * kWarp)
    softMaxWarpKernel<T, 4><<<gridBlocks(pixels * kWarp), kThreadsPerBlock, 0, stream>>>(
        s, d, ox, oy, p.io.edgeMode, p.logarithm);
  else if (d.c <= 16 * kWarp)
    softMaxWarpKernel<T, 16><<<gridBlocks(pixels * kWarp), kThreadsPerBlock, 0, stream>>>(
        s, d, ox, oy, p.io.edgeMode, p.logarithm);
  else
    softMaxWarpKernel<T, 0><<<gridBlocks(pixels * kWarp), kThreadsPerBlock, 0, stream>>>(
        s, d, ox, oy, p.io.edgeMode, p.logarithm);
  MPSNN_CUDA_LAUNCH_CHECK();
}

bool typedSupports(const SoftMaxProblem& p) {
  const auto f = p.io.src.format;
  return f == p.io.dst.format &&
         (f == ImageFeatureChannelFormat::Float32 || f == ImageFeatureChannelFormat::Float16);
}

void typedRun(const SoftMaxProblem& p, QueueContext& ctx) {
  const cudaStream_t stream = cudaContext(ctx).stream();
  if (p.io.dst.format == ImageFeatureChannelFormat::Float32)
    launchTyped<float>(p, stream);
  else
    launchTyped<__half>(p, stream);
}

// ---- plain: one thread per pixel, any formats ------------------------------------------------------

__global__ void softMaxPlainKernel(RawView s, RawView d, int64_t offsetX, int64_t offsetY, ImageEdgeMode edge,
                                   bool logarithm) {
  const int64_t pixels = d.n * d.h * d.w;
  for (int64_t pixel = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; pixel < pixels;
       pixel += int64_t(gridDim.x) * blockDim.x) {
    const PixelPlace at = placePixel(pixel, s, d, offsetX, offsetY, edge);
    softMaxPixel(
        d.c, logarithm, [&](int64_t k) { return at.source < 0 ? 0.0f : s.load(at.source + k); },
        [&](int64_t k, float v) { d.store(at.destination + k, v); });
  }
}

bool plainSupports(const SoftMaxProblem&) { return true; }

void plainRun(const SoftMaxProblem& p, QueueContext& ctx) {
  const RawView d = p.io.dst.raw();
  softMaxPlainKernel<<<gridBlocks(d.n * d.h * d.w), kThreadsPerBlock, 0, cudaContext(ctx).stream()>>>(
      p.io.src.raw(), d, p.io.offsetX, p.io.offsetY, p.io.edgeMode, p.logarithm);
  MPSNN_CUDA_LAUNCH_CHECK();
}

}  // namespace

ImplementationList<SoftMaxProblem>& cudaSoftMaxImplementations() {
  static ImplementationList<SoftMaxProblem> list = {
      {"cuda:typed", typedSupports, typedRun},
      {"cuda:plain", plainSupports, plainRun},
  };
  return list;
}

}  // namespace mpsnn::detail
