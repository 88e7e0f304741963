// CUDA normalization kernels. Typed paths for float32 and float16 images and plain kernels for every
// format:
//   cross-channel LRN   one thread per output value, summing its clipped channel window (neighbouring
//                       threads read neighbouring channels of one pixel, so the window reads hit L1)
//   spatial / contrast  one thread per output value over its window's in-image taps
//   batch norm          a per-channel scale computed once per encode, then one fused pass
//   instance norm       Welford statistics per (image, channel) over chunks of pixels in parallel,
//                       merged with Chan's formula, then one normalization pass
//
// cuDNN is not used: its LRN takes only 1 ≤ N ≤ 16, k ≥ 1e−5 and beta ≥ 0.01 (spec 04 §3 allows
// any), its batch-norm inference has no fused neuron other than none, and neither it nor its
// instance-norm path (batch norm over a reshaped tensor) reads offsets, edge modes or channel
// ranges; these memory-bound ops run as fast in plain kernels.
#include <cuda_fp16.h>

#include <algorithm>

#include "cuda/context.h"
#include "cuda/launch.h"
#include "kernels/normalization_impl.h"

namespace mpsnn::detail {
namespace {


/// Element access of a float32 or float16 image (the typed paths).
template <class T>
struct TypedAccess {
  T* data;
  __device__ __forceinline__ float load(int64_t i) const { return loadValue(data, i); }
  __device__ __forceinline__ void store(int64_t i, float v) const { storeValue(data, i, v); }
};
/// Element access of any format (the plain paths).
struct RawAccess {
  RawView view;
  __device__ __forceinline__ float load(int64_t i) const { return view.load(i); }
  __device__ __forceinline__ void store(int64_t i, float v) const { view.store(i, v); }
};

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

/// The element index of channel 0 of the source pixel that destination pixel (e.n, e.y, e.x) reads,
/// or −1 when it lies outside the source in Zero mode.
__device__ __forceinline__ int64_t sourcePixel(const ElementIndex& e, const RawView& s, int64_t offsetX,
                                               int64_t offsetY, ImageEdgeMode edge) {
  int64_t sy = offsetY + e.y, sx = offsetX + e.x;
  const bool inside = resolveEdge(sy, s.h, edge) & resolveEdge(sx, s.w, edge);
  return inside ? s.index(e.n, sy, sx, 0) : -1;
}

bool sameFloatFormat(const UnaryProblem& p) {
  const auto f = p.src.format;
  return f == p.dst.format &&
         (f == ImageFeatureChannelFormat::Float32 || f == ImageFeatureChannelFormat::Float16);
}

/// Calls fn(TypedAccess<T> source, TypedAccess<T> destination) for the images' float type.
template <class Fn>
void withTypedAccess(const UnaryProblem& p, Fn&& fn) {
  if (p.dst.format == ImageFeatureChannelFormat::Float32)
    fn(TypedAccess<float>{static_cast<float*>(p.src.data())},
       TypedAccess<float>{static_cast<float*>(p.dst.data())});
  else
    fn(TypedAccess<__half>{static_cast<__half*>(p.src.data())},
       TypedAccess<__half>{static_cast<__half*>(p.dst.data())});
}

int64_t elementsOf(const ImageView& v) { return v.n * v.h * v.w * v.c; }

// =================================================================================================
// CNNCrossChannelNormalization

/// Typed: one thread per value, float32 sum of its window's squares (the sum of min(N, D) values),
/// with the exact shortcuts of powBeta.
template <class Src, class Dst>
__global__ void crossChannelKernel(RawView s, Src src, RawView d, Dst dst, int64_t offsetX, int64_t offsetY,
                                   ImageEdgeMode edge, CrossChannelParams lrn) {
  const int64_t count = d.n * d.h * d.w * d.c;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < count;
       i += int64_t(gridDim.x) * blockDim.x) {
    const ElementIndex e = elementOf(i, d);
    const int64_t base = sourcePixel(e, s, offsetX, offsetY, edge);
    float out = 0.0f;
    if (base < 0) {  // every channel reads 0
      out = 0.0f / powBeta(lrn.delta, lrn.beta);
    } else {
      const int64_t lo = e.c - lrn.below < 0 ? 0 : e.c - lrn.below;
      const int64_t hi = e.c + lrn.above > d.c - 1 ? d.c - 1 : e.c + lrn.above;
      float sum = 0.0f;
      for (int64_t q = lo; q <= hi; ++q) {
        const float v = src.load(base + q);
        sum += v * v;
      }
      out = src.load(base + e.c) / powBeta(lrn.delta + lrn.alphaOverSize * sum, lrn.beta);
    }
    dst.store(d.index(e.n, e.y, e.x, e.c), out);
  }
}

bool crossChannelTypedSupports(const CrossChannelProblem& p) { return sameFloatFormat(p.io); }

void crossChannelTypedRun(const CrossChannelProblem& p, QueueContext& ctx) {
  const cudaStream_t stream = cudaContext(ctx).stream();
  withTypedAccess(p.io, [&](auto src, auto dst) {
    crossChannelKernel<<<gridBlocks(elementsOf(p.io.dst)), kThreadsPerBlock, 0, stream>>>(
        p.io.src.raw(), src, p.io.dst.raw(), dst, p.io.offsetX, p.io.offsetY, p.io.edgeMode, p.lrn);
  });
  MPSNN_CUDA_LAUNCH_CHECK();
}

/// Plain: one thread per pixel, the shared per-pixel routine.
__global__ void crossChannelPlainKernel(RawView s, RawView d, int64_t offsetX, int64_t offsetY,
                                        ImageEdgeMode edge, CrossChannelParams lrn) {
  const int64_t pixels = d.n * d.h * d.w;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < pixels;
       i += int64_t(gridDim.x) * blockDim.x) {
    const ElementIndex e{i / (d.w * d.h), (i / d.w) % d.h, i % d.w, 0};
    const int64_t base = sourcePixel(e, s, offsetX, offsetY, edge);
    const int64_t out = d.index(e.n, e.y, e.x, 0);
    crossChannelPixel(
        d.c, lrn, [&](int64_t k) { return base < 0 ? 0.0f : s.load(base + k); },
        [&](int64_t k, float v) { d.store(out + k, v); });
  }
}

bool crossChannelPlainSupports(const CrossChannelProblem&) { return true; }

void crossChannelPlainRun(const CrossChannelProblem& p, QueueContext& ctx) {
  const RawView d = p.io.dst.raw();
  crossChannelPlainKernel<<<gridBlocks(d.n * d.h * d.w), kThreadsPerBlock, 0, cudaContext(ctx).stream()>>>(
      p.io.src.raw(), d, p.io.offsetX, p.io.offsetY, p.io.edgeMode, p.lrn);
  MPSNN_CUDA_LAUNCH_CHECK();
}

// =================================================================================================
// CNNSpatialNormalization and CNNLocalContrastNormalization: one thread per value

template <class Src, class Dst>
__global__ void windowKernel(RawView s, Src src, RawView d, Dst dst, int64_t offsetX, int64_t offsetY,
                             ImageEdgeMode edge, WindowParams norm) {
  const int64_t count = d.n * d.h * d.w * d.c;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < count;
       i += int64_t(gridDim.x) * blockDim.x) {
    const ElementIndex e = elementOf(i, d);
    const WindowAxis ax = windowAxis(offsetX + e.x, norm.kernelWidth, s.w);
    const WindowAxis ay = windowAxis(offsetY + e.y, norm.kernelHeight, s.h);
    const int64_t base = sourcePixel(e, s, offsetX, offsetY, edge);
    const float centre = base < 0 ? 0.0f : src.load(base + e.c);
    const int64_t channel = s.index(e.n, 0, 0, e.c);
    auto load = [&](int64_t y, int64_t x) { return src.load(channel + y * s.rowStride + x * s.pixelStride); };
    dst.store(d.index(e.n, e.y, e.x, e.c), windowNormalize(norm, ax, ay, edge, centre, load));
  }
}

bool windowTypedSupports(const WindowProblem& p) { return sameFloatFormat(p.io); }

void windowTypedRun(const WindowProblem& p, QueueContext& ctx) {
  const cudaStream_t stream = cudaContext(ctx).stream();
  withTypedAccess(p.io, [&](auto src, auto dst) {
    windowKernel<<<gridBlocks(elementsOf(p.io.dst)), kThreadsPerBlock, 0, stream>>>(
        p.io.src.raw(), src, p.io.dst.raw(), dst, p.io.offsetX, p.io.offsetY, p.io.edgeMode, p.norm);
  });
  MPSNN_CUDA_LAUNCH_CHECK();
}

bool windowPlainSupports(const WindowProblem&) { return true; }

void windowPlainRun(const WindowProblem& p, QueueContext& ctx) {
  const RawView s = p.io.src.raw(), d = p.io.dst.raw();
  windowKernel<<<gridBlocks(elementsOf(p.io.dst)), kThreadsPerBlock, 0, cudaContext(ctx).stream()>>>(
      s, RawAccess{s}, d, RawAccess{d}, p.io.offsetX, p.io.offsetY, p.io.edgeMode, p.norm);
  MPSNN_CUDA_LAUNCH_CHECK();
}

// =================================================================================================
// CNNBatchNormalization

__global__ void batchNormScaleKernel(const float* gamma, const float* variance, float epsilon,
                                     int64_t channels, float* scale) {
  for (int64_t c = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; c < channels;
       c += int64_t(gridDim.x) * blockDim.x)
    scale[c] = batchNormScale(gamma[c], variance[c], epsilon);
}

template <CNNNeuronType T, class Src, class Dst>
__global__ void batchNormKernel(RawView s, Src src, RawView d, Dst dst, int64_t offsetX, int64_t offsetY,
                                ImageEdgeMode edge, const float* __restrict__ mean,
                                const float* __restrict__ scale, const float* __restrict__ beta,
                                NeuronParams neuron) {
  const int64_t count = d.n * d.h * d.w * d.c;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < count;
       i += int64_t(gridDim.x) * blockDim.x) {
    const ElementIndex e = elementOf(i, d);
    const int64_t base = sourcePixel(e, s, offsetX, offsetY, edge);
    const float x = base < 0 ? 0.0f : src.load(base + e.c);
    dst.store(d.index(e.n, e.y, e.x, e.c),
              applyNeuronAs(T, neuron, (x - mean[e.c]) * scale[e.c] + beta[e.c], e.c));
  }
}

bool batchNormTypedSupports(const BatchNormProblem& p) { return sameFloatFormat(p.io); }

void batchNormTypedRun(const BatchNormProblem& p, QueueContext& ctx) {
  auto& cuda = cudaContext(ctx);
  const cudaStream_t stream = cuda.stream();
  const int64_t channels = p.io.dst.c;
  float* scale = static_cast<float*>(cuda.workspace(size_t(channels) * sizeof(float)));
  batchNormScaleKernel<<<gridBlocks(channels), kThreadsPerBlock, 0, stream>>>(p.gamma, p.variance, p.epsilon,
                                                                              channels, scale);
  MPSNN_CUDA_LAUNCH_CHECK();
  withTypedAccess(p.io, [&](auto src, auto dst) {
    dispatchNeuronType(p.neuron.type, [&]<CNNNeuronType T>() {
      batchNormKernel<T><<<gridBlocks(elementsOf(p.io.dst)), kThreadsPerBlock, 0, stream>>>(
          p.io.src.raw(), src, p.io.dst.raw(), dst, p.io.offsetX, p.io.offsetY, p.io.edgeMode, p.mean, scale,
          p.beta, p.neuron);
    });
  });
  MPSNN_CUDA_LAUNCH_CHECK();
}

/// Plain: the spec's formula for every value, every format.
__global__ void batchNormPlainKernel(RawView s, RawView d, int64_t offsetX, int64_t offsetY,
                                     ImageEdgeMode edge, const float* gamma, const float* beta,
                                     const float* mean, const float* variance, float epsilon,
                                     NeuronParams neuron) {
  const int64_t count = d.n * d.h * d.w * d.c;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < count;
       i += int64_t(gridDim.x) * blockDim.x) {
    const ElementIndex e = elementOf(i, d);
    const int64_t base = sourcePixel(e, s, offsetX, offsetY, edge);
    const float x = base < 0 ? 0.0f : s.load(base + e.c);
    const float normalized = (x - mean[e.c]) * gamma[e.c] / sqrtf(variance[e.c] + epsilon) + beta[e.c];
    d.store(d.index(e.n, e.y, e.x, e.c), applyNeuron(neuron, normalized, e.c));
  }
}

bool batchNormPlainSupports(const BatchNormProblem&) { return true; }

void batchNormPlainRun(const BatchNormProblem& p, QueueContext& ctx) {
  batchNormPlainKernel<<<gridBlocks(elementsOf(p.io.dst)), kThreadsPerBlock, 0, cudaContext(ctx).stream()>>>(
      p.io.src.raw(), p.io.dst.raw(), p.io.offsetX, p.io.offsetY, p.io.edgeMode, p.gamma, p.beta, p.mean,
      p.variance, p.epsilon, p.neuron);
  MPSNN_CUDA_LAUNCH_CHECK();
}

// =================================================================================================
// CNNInstanceNormalization

/// Normalizes with per-(image, channel) mean and scale = gamma / sqrt(var + epsilon).
template <class Src, class Dst>
__global__ void instanceNormApplyKernel(RawView s, Src src, RawView d, Dst dst, int64_t offsetX,
                                        int64_t offsetY, ImageEdgeMode edge, const float* __restrict__ mean,
                                        const float* __restrict__ scale, const float* __restrict__ beta) {
  const int64_t count = d.n * d.h * d.w * d.c;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < count;
       i += int64_t(gridDim.x) * blockDim.x) {
    const ElementIndex e = elementOf(i, d);
    const int64_t base = sourcePixel(e, s, offsetX, offsetY, edge);
    const float x = base < 0 ? 0.0f : src.load(base + e.c);
    const int64_t stat = e.n * d.c + e.c;
    dst.store(d.index(e.n, e.y, e.x, e.c), (x - mean[stat]) * scale[stat] + beta[e.c]);
  }
}

// ---- typed: Welford over chunks of pixels ---------------------------------------------------------

/// Running (count, mean, M2) of a set of values; merge() is Chan et al.'s pairwise update.
struct Welford {
  float count = 0.0f, mean = 0.0f, m2 = 0.0f;
  __device__ __forceinline__ void add(float x) {
    count += 1.0f;
    const float delta = x - mean;
    mean += delta / count;
    m2 += delta * (x - mean);
  }
  __device__ __forceinline__ void merge(const Welford& o) {
    if (o.count == 0.0f) return;
    if (count == 0.0f) {
      *this = o;
      return;
    }
    const float total = count + o.count;
    const float delta = o.mean - mean;
    const float share = o.count / total;
    mean += delta * share;
    m2 += o.m2 + delta * delta * count * share;
    count = total;
  }
};

/// Block (lanes × rows) = one chunk of pixels of one image, `lanes` consecutive channels: thread
/// (lane, row) visits pixels first + row, first + row + rows, ...; the block merges its partial
/// statistics in shared memory and writes (mean, M2) of the chunk per channel. Counts are not
/// stored: every chunk but the last has `chunkPixels` pixels (kept as floats they would be exact
/// only up to 2^24).
template <class Src>
__global__ void instanceStatisticsKernel(RawView s, Src src, int64_t channels, int64_t chunkPixels,
                                         int64_t chunks, float* partialMean, float* partialM2) {
  __shared__ float sharedCount[kThreadsPerBlock], sharedMean[kThreadsPerBlock], sharedM2[kThreadsPerBlock];
  const int lanes = int(blockDim.x), lane = int(threadIdx.x), rows = int(blockDim.y), row = int(threadIdx.y);
  const int64_t c = int64_t(blockIdx.y) * lanes + lane, n = blockIdx.z, chunk = blockIdx.x;
  const int64_t pixels = s.h * s.w;
  const int64_t first = chunk * chunkPixels;
  const int64_t end = first + chunkPixels < pixels ? first + chunkPixels : pixels;
  Welford stats;
  if (c < channels && first + row < end) {
    int64_t p = first + row;
    int64_t y = p / s.w, x = p % s.w;  // advanced incrementally: no division per value
    const int64_t image = n * s.imageStride + c;
    for (; p < end; p += rows) {
      stats.add(src.load(image + y * s.rowStride + x * s.pixelStride));
      x += rows;
      while (x >= s.w) {
        x -= s.w;
        ++y;
      }
    }
  }
  const int t = row * lanes + lane;
  sharedCount[t] = stats.count;
  sharedMean[t] = stats.mean;
  sharedM2[t] = stats.m2;
  __syncthreads();
  for (int half = rows / 2; half > 0; half /= 2) {
    if (row < half) {
      Welford a{sharedCount[t], sharedMean[t], sharedM2[t]};
      const int o = (row + half) * lanes + lane;
      a.merge(Welford{sharedCount[o], sharedMean[o], sharedM2[o]});
      sharedCount[t] = a.count;
      sharedMean[t] = a.mean;
      sharedM2[t] = a.m2;
    }
    __syncthreads();
  }
  if (row == 0 && c < channels) {
    const int64_t at = (n * channels + c) * chunks + chunk;
    partialMean[at] = sharedMean[lane];
    partialM2[at] = sharedM2[lane];
  }
}

/// One thread per (image, channel): merges the chunks, writes mean and scale.
__global__ void instanceFinalizeKernel(int64_t images, int64_t channels, int64_t pixels, int64_t chunkPixels,
                                       int64_t chunks, const float* partialMean, const float* partialM2,
                                       const float* gamma, float epsilon, float* mean, float* scale) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < images * channels;
       i += int64_t(gridDim.x) * blockDim.x) {
    double count = 0.0, m = 0.0, m2 = 0.0;  // a few values per thread: merge in float64
    for (int64_t k = 0; k < chunks; ++k) {
      const double chunkCount = double(k + 1 < chunks ? chunkPixels : pixels - k * chunkPixels);
      const double chunkMean = partialMean[i * chunks + k], chunkM2 = partialM2[i * chunks + k];
      const double total = count + chunkCount;
      const double delta = chunkMean - m;
      m += delta * chunkCount / total;
      m2 += chunkM2 + delta * delta * count * chunkCount / total;
      count = total;
    }
    mean[i] = float(m);
    scale[i] = batchNormScale(gamma[i % channels], float(m2 / count), epsilon);
  }
}

/// Grid limits of the statistics kernel (y: channel groups, z: images).
constexpr int64_t kMaxGridYZ = 65535;

/// Channel lanes per statistics block: the channels of a pixel are contiguous, so up to 32 lanes
/// read one pixel's channels together; fewer channels leave room for more pixel rows.
int statisticsLanes(int64_t channels) {
  int lanes = 1;
  while (lanes < 32 && lanes < channels) lanes *= 2;
  return lanes;
}

bool instanceTypedSupports(const InstanceNormProblem& p) {
  const int64_t groups = (p.io.dst.c + statisticsLanes(p.io.dst.c) - 1) / statisticsLanes(p.io.dst.c);
  return sameFloatFormat(p.io) && p.io.src.n <= kMaxGridYZ && groups <= kMaxGridYZ;
}

void instanceTypedRun(const InstanceNormProblem& p, QueueContext& ctx) {
  auto& cuda = cudaContext(ctx);
  const cudaStream_t stream = cuda.stream();
  const ImageView& s = p.io.src;
  const int64_t images = s.n, channels = p.io.dst.c, pixels = s.h * s.w;
  const int lanes = statisticsLanes(channels), rows = kThreadsPerBlock / lanes;
  const int64_t groups = (channels + lanes - 1) / lanes;
  // Enough blocks to fill the GPU several times over, each thread still visiting several pixels,
  // and none more than 2^20 (its float count stays exact).
  int multiprocessors = 0;
  MPSNN_CUDA_CHECK(cudaDeviceGetAttribute(&multiprocessors, cudaDevAttrMultiProcessorCount, cuda.ordinal()));
  const int64_t wanted = (4 * int64_t(multiprocessors) + images * groups - 1) / (images * groups);
  const int64_t mostChunks = (pixels + 4 * rows - 1) / (4 * rows);
  const int64_t fewestChunks = (pixels + (int64_t(rows) << 20) - 1) / (int64_t(rows) << 20);
  const int64_t chunks =
      std::clamp<int64_t>(std::max(std::min(wanted, mostChunks), fewestChunks), 1, 65535 * 8);
  const int64_t chunkPixels = (pixels + chunks - 1) / chunks;
  const int64_t usedChunks = (pixels + chunkPixels - 1) / chunkPixels;  // the last chunk is never empty

  const size_t partials = size_t(images * channels * usedChunks), stats = size_t(images * channels);
  float* work = static_cast<float*>(cuda.workspace((2 * partials + 2 * stats) * sizeof(float)));
  float* partialMean = work;
  float* partialM2 = work + partials;
  float* mean = work + 2 * partials;
  float* scale = mean + stats;

  withTypedAccess(p.io, [&](auto src, auto dst) {
    const dim3 grid{unsigned(usedChunks), unsigned(groups), unsigned(images)};
    const dim3 block{unsigned(lanes), unsigned(rows), 1u};
    instanceStatisticsKernel<<<grid, block, 0, stream>>>(s.raw(), src, channels, chunkPixels, usedChunks,
                                                         partialMean, partialM2);
    MPSNN_CUDA_LAUNCH_CHECK();
    instanceFinalizeKernel<<<gridBlocks(images * channels), kThreadsPerBlock, 0, stream>>>(
        images, channels, pixels, chunkPixels, usedChunks, partialMean, partialM2, p.gamma, p.epsilon, mean,
        scale);
    MPSNN_CUDA_LAUNCH_CHECK();
    instanceNormApplyKernel<<<gridBlocks(elementsOf(p.io.dst)), kThreadsPerBlock, 0, stream>>>(
        s.raw(), src, p.io.dst.raw(), dst, p.io.offsetX, p.io.offsetY, p.io.edgeMode, mean, scale, p.beta);
    MPSNN_CUDA_LAUNCH_CHECK();
  });
}

// ---- plain: a block per (image, channel), two passes, any format ------------------------------------

__device__ float blockSum(float v, float* shared) {
  shared[threadIdx.x] = v;
  __syncthreads();
  for (int half = int(blockDim.x) / 2; half > 0; half /= 2) {
    if (int(threadIdx.x) < half) shared[threadIdx.x] += shared[threadIdx.x + half];
    __syncthreads();
  }
  const float total = shared[0];
  __syncthreads();  // shared[] is reused by the next call
  return total;
}

__global__ void instancePlainStatisticsKernel(RawView s, int64_t channels, const float* gamma, float epsilon,
                                              float* mean, float* scale) {
  __shared__ float shared[kThreadsPerBlock];
  const int64_t pixels = s.h * s.w;
  for (int64_t i = blockIdx.x; i < s.n * channels; i += gridDim.x) {  // block-uniform loop
    const int64_t n = i / channels, c = i % channels;
    auto value = [&](int64_t pixel) { return s.load(s.index(n, pixel / s.w, pixel % s.w, c)); };
    float sum = 0.0f;
    for (int64_t q = threadIdx.x; q < pixels; q += blockDim.x) sum += value(q);
    const float m = blockSum(sum, shared) / float(pixels);
    float squares = 0.0f;
    for (int64_t q = threadIdx.x; q < pixels; q += blockDim.x) {
      const float v = value(q) - m;
      squares += v * v;
    }
    const float variance = blockSum(squares, shared) / float(pixels);
    if (threadIdx.x == 0) {
      mean[i] = m;
      scale[i] = gamma[c] / sqrtf(variance + epsilon);
    }
  }
}

bool instancePlainSupports(const InstanceNormProblem&) { return true; }

void instancePlainRun(const InstanceNormProblem& p, QueueContext& ctx) {
  auto& cuda = cudaContext(ctx);
  const cudaStream_t stream = cuda.stream();
  const RawView s = p.io.src.raw(), d = p.io.dst.raw();
  const int64_t stats = s.n * d.c;
  float* mean = static_cast<float*>(cuda.workspace(size_t(2 * stats) * sizeof(float)));
  float* scale = mean + stats;
  const unsigned blocks = unsigned(stats < 65535 * 8 ? stats : 65535 * 8);
  instancePlainStatisticsKernel<<<blocks, kThreadsPerBlock, 0, stream>>>(s, d.c, p.gamma, p.epsilon, mean,
                                                                         scale);
  MPSNN_CUDA_LAUNCH_CHECK();
  instanceNormApplyKernel<<<gridBlocks(elementsOf(p.io.dst)), kThreadsPerBlock, 0, stream>>>(
      s, RawAccess{s}, d, RawAccess{d}, p.io.offsetX, p.io.offsetY, p.io.edgeMode, mean, scale, p.beta);
  MPSNN_CUDA_LAUNCH_CHECK();
}

}  // namespace

ImplementationList<CrossChannelProblem>& cudaCrossChannelImplementations() {
  static ImplementationList<CrossChannelProblem> list = {
      {"cuda:typed", crossChannelTypedSupports, crossChannelTypedRun},
      {"cuda:plain", crossChannelPlainSupports, crossChannelPlainRun},
  };
  return list;
}

ImplementationList<WindowProblem>& cudaWindowNormalizationImplementations() {
  static ImplementationList<WindowProblem> list = {
      {"cuda:typed", windowTypedSupports, windowTypedRun},
      {"cuda:plain", windowPlainSupports, windowPlainRun},
  };
  return list;
}

ImplementationList<BatchNormProblem>& cudaBatchNormImplementations() {
  static ImplementationList<BatchNormProblem> list = {
      {"cuda:typed", batchNormTypedSupports, batchNormTypedRun},
      {"cuda:plain", batchNormPlainSupports, batchNormPlainRun},
  };
  return list;
}

ImplementationList<InstanceNormProblem>& cudaInstanceNormImplementations() {
  static ImplementationList<InstanceNormProblem> list = {
      {"cuda:typed", instanceTypedSupports, instanceTypedRun},
      {"cuda:plain", instancePlainSupports, instancePlainRun},
  };
  return list;
}

}  // namespace mpsnn::detail
