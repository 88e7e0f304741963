// CUDA reductions. Fast paths (float32 or float16 sources): a block per row that reduces it through
// shared memory (rows; the spatial mean as rows, then columns of the row results), a 32 × 8 block per
// run of columns (columns), and a thread or a warp per pixel with shuffles (feature channels, weights).
// A plain kernel, one thread per result element, handles every format.
#include <cuda_fp16.h>

#include "cuda/context.h"
#include "cuda/launch.h"
#include "kernels/reduce_impl.h"

namespace mpsnn::detail {
namespace {

constexpr int kThreads = 256;

inline unsigned blocksFor(int64_t work, int threads = kThreads) {
  const int64_t blocks = (work + threads - 1) / threads;
  return unsigned(blocks < 1 ? 1 : (blocks > (int64_t(1) << 20) ? (int64_t(1) << 20) : blocks));
}


/// A source view as the typed kernels take it: element (n, y, x, c) is
/// data[n·image + y·row + x·pixel + c].
template <class T>
struct TypedView {
  const T* data;
  int64_t n, h, w, c;
  int64_t pixelStride, rowStride, imageStride;
};
template <class T>
TypedView<T> typed(const ImageView& v) {
  return {static_cast<const T*>(v.data()), v.n, v.h, v.w, v.c, v.pixelStride, v.rowStride, v.imageStride};
}

/// Min / Max / Sum(Mean) accumulation; `finish` turns the accumulated value into the result.
struct ReduceSpec {
  ReduceOperation combine;  // Min, Max or Sum (Mean accumulates as Sum)
  ReduceOperation finish;   // the operation whose finishing step applies (Mean divides by count)
  int64_t count;            // divisor of Mean
  float weight;             // multiplier of Sum
};
__device__ __forceinline__ ReduceOperation accumulation(ReduceOperation op) {
  return op == ReduceOperation::Mean ? ReduceOperation::Sum : op;
}

// ---- rows: one block per (image, row); the row's pixels spread over the block ---------------------

/// With c ≤ blockDim: m = blockDim / c groups of c threads; thread t handles channel t % c of pixels
/// t / c, t / c + m, …; the m partial results per channel are then merged through shared memory. With
/// c > blockDim each thread walks whole channels.
template <class T>
__global__ void rowsKernel(TypedView<T> s, RawView d, ReduceSpec spec) {
  extern __shared__ float partial[];
  const int64_t row = blockIdx.x;
  const int64_t n = row / d.h, y = row % d.h;
  const T* base = s.data + n * s.imageStride + y * s.rowStride;
  const ReduceOperation op = spec.combine;
  const int threads = blockDim.x, t = threadIdx.x;
  if (s.c > threads) {
    for (int64_t ch = t; ch < s.c; ch += threads) {
      float acc = reduceIdentity(op);
      for (int64_t x = 0; x < s.w; ++x)
        acc = reduceCombine(op, acc, loadValue(base, x * s.pixelStride + ch));
      d.store(d.index(n, y, 0, ch), reduceFinish(spec.finish, acc, spec.count, spec.weight));
    }
    return;
  }
  const int c = int(s.c), groups = threads / c, active = groups * c;
  const int ch = t % c, group = t / c;
  float acc = reduceIdentity(op);
  if (t < active)
    for (int64_t x = group; x < s.w; x += groups)
      acc = reduceCombine(op, acc, loadValue(base, x * s.pixelStride + ch));
  partial[t] = acc;
  __syncthreads();
  for (int stride = 1; stride < groups; stride <<= 1) {
    if (t < active && group % (2 * stride) == 0 && group + stride < groups)
      partial[t] = reduceCombine(op, partial[t], partial[t + stride * c]);
    __syncthreads();
  }
  if (t < c) d.store(d.index(n, y, 0, t), reduceFinish(spec.finish, partial[t], spec.count, spec.weight));
}

template <class T>
void launchRows(const TypedView<T>& s, const RawView& d, ReduceSpec spec, cudaStream_t stream) {
  const int64_t rows = d.n * d.h;  // below 2^31 (typedSupports): the grid's x extent
  rowsKernel<T><<<unsigned(rows), kThreads, kThreads * sizeof(float), stream>>>(s, d, spec);
  MPSNN_CUDA_LAUNCH_CHECK();
}

// ---- columns: a 32 × 8 block per 32 (column, channel) pairs of one image --------------------------

template <class T>
__global__ void columnsKernel(TypedView<T> s, RawView d, ReduceSpec spec) {
  __shared__ float partial[8][33];
  const int64_t n = blockIdx.y;
  const int64_t f = int64_t(blockIdx.x) * 32 + threadIdx.x;  // (column, channel) pair of the result
  const int64_t pairs = d.w * s.c;
  const ReduceOperation op = spec.combine;
  float acc = reduceIdentity(op);
  int64_t x = 0, ch = 0;
  if (f < pairs) {
    x = f / s.c;
    ch = f % s.c;
    const T* column = s.data + n * s.imageStride + x * s.pixelStride + ch;
    for (int64_t y = threadIdx.y; y < s.h; y += 8)
      acc = reduceCombine(op, acc, loadValue(column, y * s.rowStride));
  }
  partial[threadIdx.y][threadIdx.x] = acc;
  __syncthreads();
  if (threadIdx.y == 0 && f < pairs) {
    for (int k = 1; k < 8; ++k) acc = reduceCombine(op, acc, partial[k][threadIdx.x]);
    d.store(d.index(n, 0, x, ch), reduceFinish(spec.finish, acc, spec.count, spec.weight));
  }
}

template <class T>
void launchColumns(const TypedView<T>& s, const RawView& d, ReduceSpec spec, cudaStream_t stream) {
  const dim3 block(32, 8);
  const dim3 grid(unsigned((d.w * s.c + 31) / 32), unsigned(d.n));
  columnsKernel<T><<<grid, block, 0, stream>>>(s, d, spec);
  MPSNN_CUDA_LAUNCH_CHECK();
}

// ---- feature channels: a thread per pixel, or a warp per pixel for many channels -------------------

template <class T>
__device__ __forceinline__ float channelResult(const T* px, int64_t begin, int64_t step, int64_t channels,
                                               ReduceOperation op, ArgumentCandidate& best) {
  float acc = reduceIdentity(accumulation(op));
  for (int64_t k = begin; k < channels; k += step) {
    const float v = loadValue(px, k);
    if (isArgument(op))
      best = argumentBetter(op, best, {v, k});
    else
      acc = reduceCombine(accumulation(op), acc, v);
  }
  return acc;
}

template <class T>
__global__ void channelsThreadKernel(TypedView<T> s, RawView d, ReduceOperation op, float weight) {
  const int64_t pixels = d.n * d.h * d.w;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < pixels;
       i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t x = i % d.w, y = i / d.w % d.h, n = i / (d.w * d.h);
    const T* px = s.data + n * s.imageStride + y * s.rowStride + x * s.pixelStride;
    ArgumentCandidate best = argumentIdentity(op);
    const float acc = channelResult(px, 0, 1, s.c, op, best);
    d.store(d.index(n, y, x, 0), isArgument(op) ? float(best.index) : reduceFinish(op, acc, s.c, weight));
  }
}

template <class T>
__global__ void channelsWarpKernel(TypedView<T> s, RawView d, ReduceOperation op, float weight) {
  const int lane = threadIdx.x & 31;
  const int64_t warp = (blockIdx.x * int64_t(blockDim.x) + threadIdx.x) / 32;
  const int64_t warps = int64_t(gridDim.x) * blockDim.x / 32;
  const int64_t pixels = d.n * d.h * d.w;
  for (int64_t i = warp; i < pixels; i += warps) {  // the same trip count for every lane of a warp
    const int64_t x = i % d.w, y = i / d.w % d.h, n = i / (d.w * d.h);
    const T* px = s.data + n * s.imageStride + y * s.rowStride + x * s.pixelStride;
    ArgumentCandidate best = argumentIdentity(op);
    float acc = channelResult(px, lane, 32, s.c, op, best);
    for (int offset = 16; offset > 0; offset >>= 1) {
      if (isArgument(op)) {
        const ArgumentCandidate other = {
            __shfl_down_sync(0xffffffffu, best.value, offset),
            (int64_t)__shfl_down_sync(0xffffffffu, (long long)best.index, offset)};
        best = argumentBetter(op, best, other);
      } else {
        acc = reduceCombine(accumulation(op), acc, __shfl_down_sync(0xffffffffu, acc, offset));
      }
    }
    if (lane == 0)
      d.store(d.index(n, y, x, 0), isArgument(op) ? float(best.index) : reduceFinish(op, acc, s.c, weight));
  }
}

template <class T>
void launchChannels(const TypedView<T>& s, const RawView& d, ReduceOperation op, float weight,
                    cudaStream_t stream) {
  const int64_t pixels = d.n * d.h * d.w;
  if (s.c >= 64) {
    channelsWarpKernel<T><<<blocksFor(pixels * 32), kThreads, 0, stream>>>(s, d, op, weight);
  } else {
    channelsThreadKernel<T><<<blocksFor(pixels), kThreads, 0, stream>>>(s, d, op, weight);
  }
  MPSNN_CUDA_LAUNCH_CHECK();
}

// ---- dispatch of the typed kernels ---------------------------------------------------------------

bool typedSupports(const ReduceProblem& p) {
  const auto f = p.src.format;
  // One block per row: the grid's x extent bounds the row count.
  const bool rowsFit = (p.axis != ReduceAxis::Row && p.axis != ReduceAxis::Spatial) ||
                       p.src.n * p.src.h < (int64_t(1) << 31) - 1;
  const bool imagesFit = p.src.n <= 65535;  // the columns kernel's grid y
  return (f == ImageFeatureChannelFormat::Float32 || f == ImageFeatureChannelFormat::Float16) && rowsFit &&
         imagesFit;
}

template <class T>
void typedRunAs(const ReduceProblem& p, QueueContext& ctx) {
  const TypedView<T> s = typed<T>(p.src);
  const RawView d = p.dst.raw();
  auto& cuda = cudaContext(ctx);
  const ReduceOperation op = p.operation;
  switch (p.axis) {
    case ReduceAxis::Row:
      launchRows(s, d, ReduceSpec{op == ReduceOperation::Mean ? ReduceOperation::Sum : op, op, s.w, p.weight},
                 cuda.stream());
      break;
    case ReduceAxis::Column:
      launchColumns(s, d,
                    ReduceSpec{op == ReduceOperation::Mean ? ReduceOperation::Sum : op, op, s.h, p.weight},
                    cuda.stream());
      break;
    case ReduceAxis::FeatureChannels:
      launchChannels(s, d, op, p.weight, cuda.stream());
      break;
    case ReduceAxis::Spatial: {
      // Every row summed into float32 scratch (n × h × 1 × c), then the rows of each image summed.
      const ReduceOperation acc = op == ReduceOperation::Mean ? ReduceOperation::Sum : op;
      float* scratch = static_cast<float*>(cuda.workspace(size_t(s.n * s.h * s.c) * sizeof(float)));
      const RawView rows{scratch, ImageFeatureChannelFormat::Float32, s.n, s.h, 1, s.c, s.c, s.c, s.h * s.c};
      launchRows(s, rows, ReduceSpec{acc, acc, s.w, 1.0f}, cuda.stream());
      const TypedView<float> rowsIn{scratch, s.n, s.h, 1, s.c, s.c, s.c, s.h * s.c};
      launchColumns(rowsIn, d, ReduceSpec{acc, op, s.w * s.h, p.weight}, cuda.stream());
      break;
    }
  }
}

void typedRun(const ReduceProblem& p, QueueContext& ctx) {
  if (p.src.format == ImageFeatureChannelFormat::Float16)
    typedRunAs<__half>(p, ctx);
  else
    typedRunAs<float>(p, ctx);
}

// ---- plain: one thread per result element, any format ----------------------------------------------

__global__ void reducePlainKernel(RawView s, RawView d, ReduceAxis axis, ReduceOperation op, float weight) {
  const int64_t total = d.n * d.h * d.w * d.c;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total;
       i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t c = i % d.c, x = i / d.c % d.w, y = i / (d.c * d.w) % d.h, n = i / (d.c * d.w * d.h);
    float result;
    if (isArgument(op)) {
      ArgumentCandidate best = argumentIdentity(op);
      for (int64_t k = 0; k < s.c; ++k) best = argumentBetter(op, best, {s.load(s.index(n, y, x, k)), k});
      result = float(best.index);
    } else {
      float acc = reduceIdentity(op);
      int64_t count = 0;
      switch (axis) {
        case ReduceAxis::Row:
          for (int64_t k = 0; k < s.w; ++k) acc = reduceCombine(op, acc, s.load(s.index(n, y, k, c)));
          count = s.w;
          break;
        case ReduceAxis::Column:
          for (int64_t k = 0; k < s.h; ++k) acc = reduceCombine(op, acc, s.load(s.index(n, k, x, c)));
          count = s.h;
          break;
        case ReduceAxis::FeatureChannels:
          for (int64_t k = 0; k < s.c; ++k) acc = reduceCombine(op, acc, s.load(s.index(n, y, x, k)));
          count = s.c;
          break;
        case ReduceAxis::Spatial:
          for (int64_t j = 0; j < s.h; ++j)
            for (int64_t k = 0; k < s.w; ++k) acc = reduceCombine(op, acc, s.load(s.index(n, j, k, c)));
          count = s.w * s.h;
          break;
      }
      result = reduceFinish(op, acc, count, weight);
    }
    d.store(d.index(n, y, x, c), result);
  }
}

bool plainSupports(const ReduceProblem&) { return true; }

void plainRun(const ReduceProblem& p, QueueContext& ctx) {
  const RawView d = p.dst.raw();
  reducePlainKernel<<<blocksFor(d.n * d.h * d.w * d.c), kThreads, 0, cudaContext(ctx).stream()>>>(
      p.src.raw(), d, p.axis, p.operation, p.weight);
  MPSNN_CUDA_LAUNCH_CHECK();
}

// ---- weights ---------------------------------------------------------------------------------------

/// One thread per pixel, float32 data and weights: dot product over the channels.
__global__ void weightsFloat32Kernel(TypedView<float> a, TypedView<float> w, RawView d,
                                     WeightsDivisor divisor) {
  const bool single = w.w == 1 && w.h == 1;
  const int64_t pixels = d.n * d.h * d.w;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < pixels;
       i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t x = i % d.w, y = i / d.w % d.h, n = i / (d.w * d.h);
    const float* pa = a.data + n * a.imageStride + y * a.rowStride + x * a.pixelStride;
    const float* pw = w.data + n * w.imageStride + (single ? 0 : y * w.rowStride + x * w.pixelStride);
    float dot = 0.0f;
    int64_t nonZero = 0;
    for (int64_t c = 0; c < a.c; ++c) {
      dot = __fadd_rn(dot, __fmul_rn(pa[c], pw[c]));  // no fused multiply-add: the CPU rounds twice too
      nonZero += pw[c] != 0.0f;
    }
    d.store(d.index(n, y, x, 0), weightsFinish(divisor, dot, nonZero, a.c));
  }
}

bool weightsFloat32Supports(const WeightsReduceProblem& p) {
  return p.data.format == ImageFeatureChannelFormat::Float32 &&
         p.weights.format == ImageFeatureChannelFormat::Float32;
}

void weightsFloat32Run(const WeightsReduceProblem& p, QueueContext& ctx) {
  const RawView d = p.dst.raw();
  weightsFloat32Kernel<<<blocksFor(d.n * d.h * d.w), kThreads, 0, cudaContext(ctx).stream()>>>(
      typed<float>(p.data), typed<float>(p.weights), d, p.divisor);
  MPSNN_CUDA_LAUNCH_CHECK();
}

__global__ void weightsPlainKernel(RawView a, RawView w, RawView d, WeightsDivisor divisor) {
  const bool single = w.w == 1 && w.h == 1;
  const int64_t pixels = d.n * d.h * d.w;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < pixels;
       i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t x = i % d.w, y = i / d.w % d.h, n = i / (d.w * d.h);
    float dot = 0.0f;
    int64_t nonZero = 0;
    for (int64_t c = 0; c < a.c; ++c) {
      const float weight = w.load(single ? w.index(n, 0, 0, c) : w.index(n, y, x, c));
      dot = __fadd_rn(dot, __fmul_rn(a.load(a.index(n, y, x, c)), weight));
      nonZero += weight != 0.0f;
    }
    d.store(d.index(n, y, x, 0), weightsFinish(divisor, dot, nonZero, a.c));
  }
}

bool weightsPlainSupports(const WeightsReduceProblem&) { return true; }

void weightsPlainRun(const WeightsReduceProblem& p, QueueContext& ctx) {
  const RawView d = p.dst.raw();
  weightsPlainKernel<<<blocksFor(d.n * d.h * d.w), kThreads, 0, cudaContext(ctx).stream()>>>(
      p.data.raw(), p.weights.raw(), d, p.divisor);
  MPSNN_CUDA_LAUNCH_CHECK();
}

}  // namespace

ImplementationList<ReduceProblem>& cudaReduceImplementations() {
  static ImplementationList<ReduceProblem> list = {
      {"cuda:typed", typedSupports, typedRun},
      {"cuda:plain", plainSupports, plainRun},
  };
  return list;
}

ImplementationList<WeightsReduceProblem>& cudaWeightsReduceImplementations() {
  static ImplementationList<WeightsReduceProblem> list = {
      {"cuda:float32", weightsFloat32Supports, weightsFloat32Run},
      {"cuda:plain", weightsPlainSupports, weightsPlainRun},
  };
  return list;
}

}  // namespace mpsnn::detail
