// CUDA pooling: one thread per destination element (channel fastest, so neighbouring threads read
// neighbouring channels of a pixel). A typed kernel for float32 and float16 images, and a plain
// kernel for every format. cuDNN's pooling does not fit MPS's placement: it takes one symmetric
// padding per axis and derives the destination size from it, where MPS places windows by an
// arbitrary (even negative) offset with any destination size, and it has no L2-norm pooling or
// MPS's Zero-mode max and shrink-to-zero-band average.
#include <cuda_fp16.h>

#include "cuda/context.h"
#include "cuda/launch.h"
#include "kernels/pooling_impl.h"

namespace mpsnn::detail {
namespace {

/// Element (n, y, x, c) of a destination-shaped loop index, channel fastest.
struct ElementIndex {
  int64_t n, y, x, c;
};
__device__ __forceinline__ ElementIndex elementOf(int64_t i, const RawView& d) {
  ElementIndex e;
  e.c = i % d.c;
  int64_t pixel = i / d.c;
  e.x = pixel % d.w;
  pixel /= d.w;
  e.y = pixel % d.h;
  e.n = pixel / d.h;
  return e;
}

// ---- typed: float32 or float16 source and destination --------------------------------------------


template <class T>
struct TypedChannelLoad {
  const T* data;
  int64_t base, rowStride, pixelStride;  // base = element (n, 0, 0, c)
  __device__ __forceinline__ float operator()(int64_t y, int64_t x) const {
    return toFloat<T>(data[base + y * rowStride + x * pixelStride]);
  }
};

template <class T>
__global__ void poolTypedKernel(RawView s, RawView d, int64_t offsetX, int64_t offsetY, ImageEdgeMode edge,
                                PoolingParams pool) {
  const int64_t count = d.n * d.h * d.w * d.c;
  const T* src = static_cast<const T*>(s.data);
  T* dst = static_cast<T*>(d.data);
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < count;
       i += int64_t(gridDim.x) * blockDim.x) {
    const ElementIndex e = elementOf(i, d);
    const PoolingAxis ay =
        poolingAxis(offsetY + e.y * pool.strideY, pool.kernelHeight, pool.dilationY, s.h, pool.zeroPadY);
    const PoolingAxis ax =
        poolingAxis(offsetX + e.x * pool.strideX, pool.kernelWidth, pool.dilationX, s.w, pool.zeroPadX);
    const TypedChannelLoad<T> load{src, s.index(e.n, 0, 0, e.c), s.rowStride, s.pixelStride};
    dst[d.index(e.n, e.y, e.x, e.c)] = fromFloat<T>(poolWindow(pool.operation, edge, ax, ay, load));
  }
}

bool typedSupports(const PoolingProblem& p) {
  const auto f = p.io.src.format;
  return f == p.io.dst.format &&
         (f == ImageFeatureChannelFormat::Float32 || f == ImageFeatureChannelFormat::Float16);
}

void typedRun(const PoolingProblem& p, QueueContext& ctx) {
  const ImageView& d = p.io.dst;
  const int64_t count = d.n * d.h * d.w * d.c;
  auto stream = cudaContext(ctx).stream();
  if (d.format == ImageFeatureChannelFormat::Float32)
    poolTypedKernel<float><<<gridBlocks(count), kThreadsPerBlock, 0, stream>>>(p.io.src.raw(), d.raw(), p.io.offsetX,
                                                                      p.io.offsetY, p.io.edgeMode, p.pool);
  else
    poolTypedKernel<__half><<<gridBlocks(count), kThreadsPerBlock, 0, stream>>>(p.io.src.raw(), d.raw(), p.io.offsetX,
                                                                       p.io.offsetY, p.io.edgeMode, p.pool);
  MPSNN_CUDA_LAUNCH_CHECK();
}

// ---- plain: any formats through loadAsFloat/storeFromFloat ------------------------------------------

__global__ void poolPlainKernel(RawView s, RawView d, int64_t offsetX, int64_t offsetY, ImageEdgeMode edge,
                                PoolingParams pool) {
  const int64_t count = d.n * d.h * d.w * d.c;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < count;
       i += int64_t(gridDim.x) * blockDim.x) {
    const ElementIndex e = elementOf(i, d);
    const PoolingAxis ay =
        poolingAxis(offsetY + e.y * pool.strideY, pool.kernelHeight, pool.dilationY, s.h, pool.zeroPadY);
    const PoolingAxis ax =
        poolingAxis(offsetX + e.x * pool.strideX, pool.kernelWidth, pool.dilationX, s.w, pool.zeroPadX);
    d.store(d.index(e.n, e.y, e.x, e.c),
            poolWindow(pool.operation, edge, ax, ay, RawChannelLoad{s, e.n, e.c}));
  }
}

bool plainSupports(const PoolingProblem&) { return true; }

void plainRun(const PoolingProblem& p, QueueContext& ctx) {
  const ImageView& d = p.io.dst;
  const int64_t count = d.n * d.h * d.w * d.c;
  poolPlainKernel<<<gridBlocks(count), kThreadsPerBlock, 0, cudaContext(ctx).stream()>>>(
      p.io.src.raw(), d.raw(), p.io.offsetX, p.io.offsetY, p.io.edgeMode, p.pool);
  MPSNN_CUDA_LAUNCH_CHECK();
}

}  // namespace

ImplementationList<PoolingProblem>& cudaPoolingImplementations() {
  static ImplementationList<PoolingProblem> list = {
      {"cuda:typed", typedSupports, typedRun},
      {"cuda:plain", plainSupports, plainRun},
  };
  return list;
}

}  // namespace mpsnn::detail
