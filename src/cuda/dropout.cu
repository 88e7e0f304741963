// CUDA dropout: a vectorised kernel for float32 images read in place (dense source and destination
// of the same shape: one Philox call and one float4 per thread), and a plain kernel for everything
// else. Both draw the mask with the generator of kernels/dropout_impl.h, as the CPU does.
#include "cuda/context.h"
#include "kernels/dropout_impl.h"

namespace mpsnn::detail {
namespace {

constexpr int kThreads = 256;

inline unsigned blocksFor(int64_t work, int64_t perThread = 1) {
  int64_t blocks = (work + kThreads * perThread - 1) / (kThreads * perThread);
  return unsigned(blocks < 1 ? 1 : (blocks > 65535 * 8 ? 65535 * 8 : blocks));
}

/// words.w[i] without dynamic indexing, which would put the array in local memory.
__device__ __forceinline__ uint32_t wordAt(const Philox4x32Words& words, uint32_t i) {
  return i == 0 ? words.w[0] : i == 1 ? words.w[1] : i == 2 ? words.w[2] : words.w[3];
}

// ---- vec4: dense float32, source and destination of the same shape ------------------------------
// Thread g of image k handles elements 4·(g mod G) … +3 of that image (G groups per image). Without
// mask broadcasting the element index is the mask index, so one Philox call covers the four;
// with broadcasting each element looks its mask element up (consecutive ones usually share a block).
// Vector: the image's element count is a multiple of 4, so every group is one aligned float4.
template <bool Vector, bool Broadcast>
__global__ void dropoutVec4Kernel(const float* __restrict__ src, float* __restrict__ dst, uint32_t images,
                                  uint32_t elementsPerImage, uint32_t width, uint32_t channels, DropoutParams p) {
  const uint32_t groupsPerImage = (elementsPerImage + 3) / 4;
  const uint32_t groups = groupsPerImage * images;
  for (uint32_t t = blockIdx.x * blockDim.x + threadIdx.x; t < groups; t += gridDim.x * blockDim.x) {
    const uint32_t k = t / groupsPerImage, g = t % groupsPerImage;
    const int64_t n = p.batchBase + k;
    const uint32_t e0 = g * 4;
    const uint64_t base = uint64_t(k) * elementsPerImage + e0;
    bool keep[4];
    if (!Broadcast) {
      const Philox4x32Words words = maskWords(p, n, g);
#pragma unroll
      for (int lane = 0; lane < 4; ++lane) keep[lane] = keeps(p, words.w[lane]);
    } else {
      // Position of the first element, then stepped along (c fastest) for the other three.
      uint32_t c = e0 % channels;
      const uint32_t pixel = e0 / channels;
      uint32_t x = pixel % width, y = pixel / width;
      // maskElement in 32 bits: this path has < 2^31 elements.
      const uint32_t sx = uint32_t(p.maskStrideX), sy = uint32_t(p.maskStrideY), sz = uint32_t(p.maskStrideC);
      const uint32_t maskWidth = uint32_t(p.maskWidth), maskChannels = uint32_t(p.maskChannels);
      uint32_t cachedGroup = 0xffffffffu;
      Philox4x32Words words{};
#pragma unroll
      for (uint32_t lane = 0; lane < 4; ++lane) {
        const uint32_t element = ((y * sy) * maskWidth + x * sx) * maskChannels + c * sz;
        if ((element >> 2) != cachedGroup) {
          cachedGroup = element >> 2;
          words = maskWords(p, n, cachedGroup);
        }
        keep[lane] = keeps(p, wordAt(words, element & 3));
        if (++c == channels) {
          c = 0;
          if (++x == width) x = 0, ++y;
        }
      }
    }
    if (Vector) {
      float4 v = *reinterpret_cast<const float4*>(src + base);
      v.x = dropoutValue(v.x, keep[0], p.keepProbability);
      v.y = dropoutValue(v.y, keep[1], p.keepProbability);
      v.z = dropoutValue(v.z, keep[2], p.keepProbability);
      v.w = dropoutValue(v.w, keep[3], p.keepProbability);
      *reinterpret_cast<float4*>(dst + base) = v;
    } else {
#pragma unroll
      for (uint32_t lane = 0; lane < 4; ++lane)
        if (e0 + lane < elementsPerImage) dst[base + lane] = dropoutValue(src[base + lane], keep[lane], p.keepProbability);
    }
  }
}

bool aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

bool vec4Supports(const DropoutProblem& p) {
  const ImageView& s = p.io.src;
  const ImageView& d = p.io.dst;
  return s.format == ImageFeatureChannelFormat::Float32 && d.format == ImageFeatureChannelFormat::Float32 &&
         p.io.offsetX == 0 && p.io.offsetY == 0 && s.w == d.w && s.h == d.h && s.c == d.c && s.dense() &&
         d.dense() && d.n * d.h * d.w * d.c < (int64_t(1) << 31);
}

void vec4Run(const DropoutProblem& p, QueueContext& ctx) {
  const ImageView& s = p.io.src;
  const ImageView& d = p.io.dst;
  const uint32_t perImage = uint32_t(d.h * d.w * d.c);
  const bool vector = perImage % 4 == 0 && aligned16(s.data()) && aligned16(d.data());
  const bool broadcast = !(p.dropout.maskStrideX && p.dropout.maskStrideY && p.dropout.maskStrideC);
  const int64_t groups = int64_t((perImage + 3) / 4) * d.n;
  auto stream = cudaContext(ctx).stream();
  const float* src = static_cast<const float*>(s.data());
  float* dst = static_cast<float*>(d.data());
  const auto images = uint32_t(d.n), width = uint32_t(d.w), channels = uint32_t(d.c);
  if (vector && !broadcast)
    dropoutVec4Kernel<true, false><<<blocksFor(groups), kThreads, 0, stream>>>(src, dst, images, perImage, width,
                                                                               channels, p.dropout);
  else if (vector)
    dropoutVec4Kernel<true, true><<<blocksFor(groups), kThreads, 0, stream>>>(src, dst, images, perImage, width,
                                                                              channels, p.dropout);
  else if (!broadcast)
    dropoutVec4Kernel<false, false><<<blocksFor(groups), kThreads, 0, stream>>>(src, dst, images, perImage, width,
                                                                                channels, p.dropout);
  else
    dropoutVec4Kernel<false, true><<<blocksFor(groups), kThreads, 0, stream>>>(src, dst, images, perImage, width,
                                                                               channels, p.dropout);
  MPSNN_CUDA_LAUNCH_CHECK();
}

// ---- plain: any format, any geometry, edge modes ---------------------------------------------------
__global__ void dropoutPlainKernel(RawView s, RawView d, int64_t offsetX, int64_t offsetY, ImageEdgeMode edge,
                                   DropoutParams p) {
  const int64_t count = d.n * d.h * d.w * d.c;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < count; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t c = i % d.c, x = (i / d.c) % d.w, y = (i / (d.c * d.w)) % d.h, k = i / (d.c * d.w * d.h);
    int64_t sy = offsetY + y, sx = offsetX + x;
    const bool inside = resolveEdge(sy, s.h, edge) & resolveEdge(sx, s.w, edge);
    const float v = inside ? s.load(s.index(k, sy, sx, c)) : 0.0f;
    const int64_t element = maskElement(p, y, x, c);
    const Philox4x32Words words = maskWords(p, p.batchBase + k, element >> 2);
    d.store(d.index(k, y, x, c), dropoutValue(v, keeps(p, wordAt(words, uint32_t(element & 3))), p.keepProbability));
  }
}

bool plainSupports(const DropoutProblem&) { return true; }

void plainRun(const DropoutProblem& p, QueueContext& ctx) {
  const int64_t count = p.io.dst.n * p.io.dst.h * p.io.dst.w * p.io.dst.c;
  dropoutPlainKernel<<<blocksFor(count), kThreads, 0, cudaContext(ctx).stream()>>>(
      p.io.src.raw(), p.io.dst.raw(), p.io.offsetX, p.io.offsetY, p.io.edgeMode, p.dropout);
  MPSNN_CUDA_LAUNCH_CHECK();
}

}  // namespace

ImplementationList<DropoutProblem>& cudaDropoutImplementations() {
  static ImplementationList<DropoutProblem> list = {
      {"cuda:vec4", vec4Supports, vec4Run},
      {"cuda:plain", plainSupports, plainRun},
  };
  return list;
}

}  // namespace mpsnn::detail
