// CUDA dropout: a vectorised kernel for float32 images read in place (dense source and destination
// of the same shape: a float4 and usually one Philox call per thread), and a plain kernel for
// everything else. Both draw the mask with the generator of kernels/dropout_impl.h, as the CPU does.
#include "cuda/context.h"
#include "cuda/launch.h"
#include "kernels/dropout_impl.h"

namespace mpsnn::detail {
namespace {

/// words.w[i] without dynamic indexing, which would put the array in local memory.
__device__ __forceinline__ uint32_t wordAt(const Philox4x32Words& words, uint32_t i) {
  return i == 0 ? words.w[0] : i == 1 ? words.w[1] : i == 2 ? words.w[2] : words.w[3];
}

// ---- vec4: dense float32, source and destination of the same shape ------------------------------
// The images are one dense span: thread t handles flat elements 4t … 4t + 3 (one float4 when Vector,
// i.e. both spans are 16-byte aligned). Element e of image k uses mask element e itself without
// broadcasting, so one Philox call serves four elements whenever an image holds a multiple of 4
// elements (GroupAligned; else a group may straddle two Philox blocks or two images: a second call).
// With broadcasting the element's position is stepped along (c fastest) and looked up in the mask.
template <bool Vector, bool Broadcast, bool GroupAligned>
__global__ void dropoutVec4Kernel(const float* __restrict__ src, float* __restrict__ dst, uint32_t total,
                                  uint32_t elementsPerImage, uint32_t width, uint32_t channels,
                                  DropoutParams p) {
  // maskElement in 32 bits: this path has < 2^31 elements.
  const uint32_t sx = uint32_t(p.maskStrideX), sy = uint32_t(p.maskStrideY), sz = uint32_t(p.maskStrideC);
  const uint32_t maskWidth = uint32_t(p.maskWidth), maskChannels = uint32_t(p.maskChannels);
  const uint32_t groups = (total + 3) / 4;
  for (uint32_t t = blockIdx.x * blockDim.x + threadIdx.x; t < groups; t += gridDim.x * blockDim.x) {
    const uint32_t f0 = t * 4;
    uint32_t k = f0 / elementsPerImage, e = f0 - k * elementsPerImage;
    bool keep[4];
    if (GroupAligned) {
      // No broadcasting and a multiple of 4 elements per image: the four are one Philox block.
      const Philox4x32Words words = maskWords(p, p.batchBase + k, e >> 2);
#pragma unroll
      for (int lane = 0; lane < 4; ++lane) keep[lane] = keeps(p, words.w[lane]);
    } else {
      uint32_t c = 0, x = 0, y = 0;
      if (Broadcast) {
        c = e % channels;
        const uint32_t pixel = e / channels;
        x = pixel % width, y = pixel / width;
      }
      uint32_t cachedGroup = 0xffffffffu, cachedImage = 0xffffffffu;
      Philox4x32Words words{};
#pragma unroll
      for (uint32_t lane = 0; lane < 4; ++lane) {
        const uint32_t element = Broadcast ? ((y * sy) * maskWidth + x * sx) * maskChannels + c * sz : e;
        if ((element >> 2) != cachedGroup || k != cachedImage) {
          cachedGroup = element >> 2;
          cachedImage = k;
          words = maskWords(p, p.batchBase + k, cachedGroup);
        }
        keep[lane] = keeps(p, wordAt(words, element & 3));
        if (++e == elementsPerImage)
          e = 0, ++k, c = x = y = 0;
        else if (Broadcast && ++c == channels) {
          c = 0;
          if (++x == width) x = 0, ++y;
        }
      }
    }
    if (Vector && f0 + 4 <= total) {
      float4 v = reinterpret_cast<const float4*>(src)[t];
      v.x = dropoutValue(v.x, keep[0], p.keepProbability);
      v.y = dropoutValue(v.y, keep[1], p.keepProbability);
      v.z = dropoutValue(v.z, keep[2], p.keepProbability);
      v.w = dropoutValue(v.w, keep[3], p.keepProbability);
      reinterpret_cast<float4*>(dst)[t] = v;
    } else {
#pragma unroll
      for (uint32_t lane = 0; lane < 4; ++lane)
        if (f0 + lane < total) dst[f0 + lane] = dropoutValue(src[f0 + lane], keep[lane], p.keepProbability);
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
  const uint32_t total = uint32_t(d.n * d.h * d.w * d.c), perImage = uint32_t(d.h * d.w * d.c);
  const bool vector = aligned16(s.data()) && aligned16(d.data());
  const bool broadcast = !(p.dropout.maskStrideX && p.dropout.maskStrideY && p.dropout.maskStrideC);
  const unsigned blocks = gridBlocks(total, 4);
  auto stream = cudaContext(ctx).stream();
  const float* src = static_cast<const float*>(s.data());
  float* dst = static_cast<float*>(d.data());
  const auto width = uint32_t(d.w), channels = uint32_t(d.c);
  const bool groupAligned = !broadcast && perImage % 4 == 0;
  auto launch = [&]<bool Vector, bool Broadcast, bool GroupAligned>() {
    dropoutVec4Kernel<Vector, Broadcast, GroupAligned>
        <<<blocks, kThreadsPerBlock, 0, stream>>>(src, dst, total, perImage, width, channels, p.dropout);
  };
  if (groupAligned)
    vector ? launch.template operator()<true, false, true>()
           : launch.template operator()<false, false, true>();
  else if (!broadcast)
    vector ? launch.template operator()<true, false, false>()
           : launch.template operator()<false, false, false>();
  else
    vector ? launch.template operator()<true, true, false>()
           : launch.template operator()<false, true, false>();
  MPSNN_CUDA_LAUNCH_CHECK();
}

// ---- plain: any format, any geometry, edge modes ---------------------------------------------------
__global__ void dropoutPlainKernel(RawView s, RawView d, int64_t offsetX, int64_t offsetY, ImageEdgeMode edge,
                                   DropoutParams p) {
  const int64_t count = d.n * d.h * d.w * d.c;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < count;
       i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t c = i % d.c, x = (i / d.c) % d.w, y = (i / (d.c * d.w)) % d.h, k = i / (d.c * d.w * d.h);
    int64_t sy = offsetY + y, sx = offsetX + x;
    const bool inside = resolveEdge(sy, s.h, edge) & resolveEdge(sx, s.w, edge);
    const float v = inside ? s.load(s.index(k, sy, sx, c)) : 0.0f;
    const int64_t element = maskElement(p, y, x, c);
    const Philox4x32Words words = maskWords(p, p.batchBase + k, element >> 2);
    d.store(d.index(k, y, x, c),
            dropoutValue(v, keeps(p, wordAt(words, uint32_t(element & 3))), p.keepProbability));
  }
}

bool plainSupports(const DropoutProblem&) { return true; }

void plainRun(const DropoutProblem& p, QueueContext& ctx) {
  const int64_t count = p.io.dst.n * p.io.dst.h * p.io.dst.w * p.io.dst.c;
  dropoutPlainKernel<<<gridBlocks(count), kThreadsPerBlock, 0, cudaContext(ctx).stream()>>>(
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
