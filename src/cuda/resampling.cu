// CUDA resampling: one thread per destination element (channel fastest, so neighbouring threads
// read neighbouring channels of a pixel). Typed kernels for float32 and float16 images: nearest and
// bilinear compute their taps in place; Lanczos builds per-column and per-row tap tables in the
// queue's workspace and runs a horizontal pass into a float buffer, then a vertical pass. The plain
// kernels take every format through loadAsFloat/storeFromFloat and compute every weight on the fly.
// cuDNN has no resampling with MPS's placement (offsets, clip rectangles, edge rules).
#include <cuda_fp16.h>

#include <algorithm>

#include "cuda/context.h"
#include "cuda/launch.h"
#include "kernels/resampling_impl.h"

namespace mpsnn::detail {
namespace {

/// Element (n, y, x, c) of a loop index over an n × h × w × c box, channel fastest.
struct Element {
  int64_t n, y, x, c;
};
__device__ __forceinline__ Element elementOf(int64_t i, int64_t h, int64_t w, int64_t c) {
  Element e;
  e.c = i % c;
  int64_t pixel = i / c;
  e.x = pixel % w;
  pixel /= w;
  e.y = pixel % h;
  e.n = pixel / h;
  return e;
}


bool typedFormats(const ResamplingProblem& p) {
  const auto f = p.io.src.format;
  return f == p.io.dst.format &&
         (f == ImageFeatureChannelFormat::Float32 || f == ImageFeatureChannelFormat::Float16);
}

int64_t elementCount(const ImageView& v) { return v.n * v.h * v.w * v.c; }

/// Launches kernel<float> or kernel<__half> for the destination's format.
#define MPSNN_LAUNCH_TYPED(kernel, count, stream, ...)                                 \
  do {                                                                                 \
    if (p.io.dst.format == ImageFeatureChannelFormat::Float32)                         \
      kernel<float><<<gridBlocks(count), kThreadsPerBlock, 0, stream>>>(__VA_ARGS__);  \
    else                                                                               \
      kernel<__half><<<gridBlocks(count), kThreadsPerBlock, 0, stream>>>(__VA_ARGS__); \
    MPSNN_CUDA_LAUNCH_CHECK();                                                         \
  } while (0)

// ---- nearest, typed ---------------------------------------------------------------------------------

template <class T>
__global__ void nearestKernel(RawView s, RawView d, ResamplingAxis ax, ResamplingAxis ay,
                              ImageEdgeMode edge) {
  const int64_t count = d.n * d.h * d.w * d.c;
  const T* src = static_cast<const T*>(s.data);
  T* dst = static_cast<T*>(d.data);
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < count;
       i += int64_t(gridDim.x) * blockDim.x) {
    const Element e = elementOf(i, d.h, d.w, d.c);
    int64_t sx = nearestSource(ax, e.x), sy = nearestSource(ay, e.y);
    const bool inside = resolveEdge(sx, s.w, edge) & resolveEdge(sy, s.h, edge);
    dst[d.index(e.n, e.y, e.x, e.c)] = inside ? src[s.index(e.n, sy, sx, e.c)] : fromFloat<T>(0.0f);
  }
}

bool nearestSupports(const ResamplingProblem& p) {
  return p.filter == ResamplingFilter::Nearest && typedFormats(p);
}

void nearestRun(const ResamplingProblem& p, QueueContext& ctx) {
  const int64_t count = elementCount(p.io.dst);
  MPSNN_LAUNCH_TYPED(nearestKernel, count, cudaContext(ctx).stream(), p.io.src.raw(), p.io.dst.raw(), p.x,
                     p.y, p.io.edgeMode);
}

// ---- bilinear, typed: spec 05's sample() per element ----------------------------------------------

template <class T>
__global__ void bilinearKernel(RawView s, RawView d, ResamplingAxis ax, ResamplingAxis ay) {
  const int64_t count = d.n * d.h * d.w * d.c;
  const T* src = static_cast<const T*>(s.data);
  T* dst = static_cast<T*>(d.data);
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < count;
       i += int64_t(gridDim.x) * blockDim.x) {
    const Element e = elementOf(i, d.h, d.w, d.c);
    const LinearTap tx = linearTap(sourcePosition(ax, e.x), s.w);
    const LinearTap ty = linearTap(sourcePosition(ay, e.y), s.h);
    const float wx0 = float(1.0 - tx.t), wx1 = float(tx.t), wy0 = float(1.0 - ty.t), wy1 = float(ty.t);
    const T* row0 = src + s.index(e.n, ty.i0, 0, e.c);
    const T* row1 = src + s.index(e.n, ty.i1, 0, e.c);
    const float top =
        wx0 * toFloat<T>(row0[tx.i0 * s.pixelStride]) + wx1 * toFloat<T>(row0[tx.i1 * s.pixelStride]);
    const float bottom =
        wx0 * toFloat<T>(row1[tx.i0 * s.pixelStride]) + wx1 * toFloat<T>(row1[tx.i1 * s.pixelStride]);
    dst[d.index(e.n, e.y, e.x, e.c)] = fromFloat<T>(wy0 * top + wy1 * bottom);
  }
}

bool bilinearSupports(const ResamplingProblem& p) {
  return p.filter == ResamplingFilter::Bilinear && typedFormats(p);
}

void bilinearRun(const ResamplingProblem& p, QueueContext& ctx) {
  const int64_t count = elementCount(p.io.dst);
  MPSNN_LAUNCH_TYPED(bilinearKernel, count, cudaContext(ctx).stream(), p.io.src.raw(), p.io.dst.raw(), p.x,
                     p.y);
}

// ---- Lanczos: two passes through a float buffer in the workspace -----------------------------------

/// Source rows [begin, end) the vertical pass reads (the mappings are monotonic).
struct RowRange {
  int64_t begin, end;
};
RowRange rowsRead(const ResamplingProblem& p) {
  int64_t first0, last0, firstN, lastN;
  axisSpan(p.filter, p.y, 0, first0, last0);
  axisSpan(p.filter, p.y, p.io.dst.h - 1, firstN, lastN);
  return {std::min(first0, firstN), std::max(last0, lastN) + 1};
}

/// Images per pass pair, so that the buffer stays near 2^26 floats (at least one image).
int64_t imagesPerChunk(const ResamplingProblem& p, int64_t bufferPerImage) {
  const int64_t budget = int64_t(1) << 26;
  return std::max<int64_t>(1, std::min<int64_t>(p.io.dst.n, budget / std::max<int64_t>(bufferPerImage, 1)));
}

/// Carves the workspace into aligned pieces.
struct Carver {
  size_t used = 0;
  size_t take(size_t bytes) {
    const size_t at = used;
    used += (bytes + 255) / 256 * 256;
    return at;
  }
};

/// One axis's tap table: coordinate d reads count[d] pixels from first[d], weights[d·stride + k].
__global__ void tableKernel(ResamplingFilter filter, ImageEdgeMode edge, ResamplingAxis axis, int64_t extent,
                            int64_t stride, int64_t* first, int64_t* count, float* weights) {
  for (int64_t d = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; d < extent;
       d += int64_t(gridDim.x) * blockDim.x)
    axisTaps(filter, edge, axis, d, first[d], count[d], weights + d * stride);
}

/// Horizontal pass over images [n0, n0 + images): buffer (image, row − rowBegin, x, c), dense.
template <class T>
__global__ void tableRowsKernel(RawView s, int64_t n0, int64_t images, int64_t rowBegin, int64_t readRows,
                                int64_t width, int64_t channels, const int64_t* first, const int64_t* count,
                                const float* weights, int64_t stride, float* buffer) {
  const int64_t total = images * readRows * width * channels;
  const T* src = static_cast<const T*>(s.data);
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total;
       i += int64_t(gridDim.x) * blockDim.x) {
    const Element e = elementOf(i, readRows, width, channels);
    const T* px = src + s.index(n0 + e.n, rowBegin + e.y, first[e.x], e.c);
    const float* w = weights + e.x * stride;
    float acc = 0.0f;
    for (int64_t k = 0; k < count[e.x]; ++k) acc += w[k] * toFloat<T>(px[k * s.pixelStride]);
    buffer[i] = acc;
  }
}

/// Vertical pass from the buffer into destination images [n0, n0 + images).
template <class T>
__global__ void tableColumnsKernel(RawView d, int64_t n0, int64_t images, int64_t rowBegin, int64_t readRows,
                                   const int64_t* first, const int64_t* count, const float* weights,
                                   int64_t stride, const float* buffer) {
  const int64_t total = images * d.h * d.w * d.c;
  const int64_t bufferRowStride = d.w * d.c;
  T* dst = static_cast<T*>(d.data);
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total;
       i += int64_t(gridDim.x) * blockDim.x) {
    const Element e = elementOf(i, d.h, d.w, d.c);
    const float* px = buffer + ((e.n * readRows + first[e.y] - rowBegin) * d.w + e.x) * d.c + e.c;
    const float* w = weights + e.y * stride;
    float acc = 0.0f;
    for (int64_t k = 0; k < count[e.y]; ++k) acc += w[k] * px[k * bufferRowStride];
    dst[d.index(n0 + e.n, e.y, e.x, e.c)] = fromFloat<T>(acc);
  }
}

/// Floats of the two tables.
double tableFloats(const ResamplingProblem& p) {
  return double(p.io.dst.w) * double(maxAxisTaps(p.filter, p.x) + 2) +
         double(p.io.dst.h) * double(maxAxisTaps(p.filter, p.y) + 2);
}

bool lanczosSupports(const ResamplingProblem& p) {
  // Absurd transforms (tables beyond 2^28 floats) take the plain kernels, which need no tables.
  return p.filter == ResamplingFilter::Lanczos && typedFormats(p) && tableFloats(p) <= double(1 << 28);
}

void lanczosRun(const ResamplingProblem& p, QueueContext& ctx) {
  const ImageView& d = p.io.dst;
  const RowRange rows = rowsRead(p);
  const int64_t readRows = rows.end - rows.begin;
  const int64_t strideX = maxAxisTaps(p.filter, p.x), strideY = maxAxisTaps(p.filter, p.y);
  const int64_t bufferPerImage = readRows * d.w * d.c;
  const int64_t chunk = imagesPerChunk(p, bufferPerImage);
  Carver carve;
  const size_t colFirst = carve.take(size_t(d.w) * sizeof(int64_t)),
               colCount = carve.take(size_t(d.w) * sizeof(int64_t));
  const size_t rowFirst = carve.take(size_t(d.h) * sizeof(int64_t)),
               rowCount = carve.take(size_t(d.h) * sizeof(int64_t));
  const size_t colWeights = carve.take(size_t(d.w * strideX) * sizeof(float));
  const size_t rowWeights = carve.take(size_t(d.h * strideY) * sizeof(float));
  const size_t buffer = carve.take(size_t(chunk * bufferPerImage) * sizeof(float));
  auto& cuda = cudaContext(ctx);
  char* base = static_cast<char*>(cuda.workspace(carve.used));
  auto at = [&](size_t offset) { return static_cast<void*>(base + offset); };
  const auto stream = cuda.stream();
  tableKernel<<<gridBlocks(d.w), kThreadsPerBlock, 0, stream>>>(
      p.filter, p.io.edgeMode, p.x, d.w, strideX, static_cast<int64_t*>(at(colFirst)),
      static_cast<int64_t*>(at(colCount)), static_cast<float*>(at(colWeights)));
  MPSNN_CUDA_LAUNCH_CHECK();
  tableKernel<<<gridBlocks(d.h), kThreadsPerBlock, 0, stream>>>(
      p.filter, p.io.edgeMode, p.y, d.h, strideY, static_cast<int64_t*>(at(rowFirst)),
      static_cast<int64_t*>(at(rowCount)), static_cast<float*>(at(rowWeights)));
  MPSNN_CUDA_LAUNCH_CHECK();
  for (int64_t n0 = 0; n0 < d.n; n0 += chunk) {
    const int64_t images = std::min(chunk, d.n - n0);
    MPSNN_LAUNCH_TYPED(tableRowsKernel, images * bufferPerImage, stream, p.io.src.raw(), n0, images,
                       rows.begin, readRows, d.w, d.c, static_cast<const int64_t*>(at(colFirst)),
                       static_cast<const int64_t*>(at(colCount)), static_cast<const float*>(at(colWeights)),
                       strideX, static_cast<float*>(at(buffer)));
    MPSNN_LAUNCH_TYPED(tableColumnsKernel, images * d.h * d.w * d.c, stream, d.raw(), n0, images, rows.begin,
                       readRows, static_cast<const int64_t*>(at(rowFirst)),
                       static_cast<const int64_t*>(at(rowCount)), static_cast<const float*>(at(rowWeights)),
                       strideY, static_cast<const float*>(at(buffer)));
  }
}

// ---- plain: any format; every weight computed where it is used -------------------------------------

/// Nearest and bilinear: at most two taps per axis.
__global__ void plainKernel(RawView s, RawView d, ResamplingFilter filter, ImageEdgeMode edge,
                            ResamplingAxis ax, ResamplingAxis ay) {
  const int64_t count = d.n * d.h * d.w * d.c;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < count;
       i += int64_t(gridDim.x) * blockDim.x) {
    const Element e = elementOf(i, d.h, d.w, d.c);
    float wx[2], wy[2];
    int64_t firstX, countX, firstY, countY;
    axisTaps(filter, edge, ax, e.x, firstX, countX, wx);
    axisTaps(filter, edge, ay, e.y, firstY, countY, wy);
    float value = 0.0f;
    for (int64_t j = 0; j < countY; ++j) {  // horizontal combinations first, as spec 05's sample()
      float row = 0.0f;
      for (int64_t k = 0; k < countX; ++k) row += wx[k] * s.load(s.index(e.n, firstY + j, firstX + k, e.c));
      value += wy[j] * row;
    }
    d.store(d.index(e.n, e.y, e.x, e.c), value);
  }
}

/// Lanczos horizontal pass, weights on the fly: buffer (image, row − rowBegin, x, c), dense.
__global__ void lanczosPlainRowsKernel(RawView s, int64_t n0, int64_t images, int64_t rowBegin,
                                       int64_t readRows, int64_t width, int64_t channels, ResamplingAxis ax,
                                       float* buffer) {
  const int64_t total = images * readRows * width * channels;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total;
       i += int64_t(gridDim.x) * blockDim.x) {
    const Element e = elementOf(i, readRows, width, channels);
    const int64_t n = n0 + e.n, y = rowBegin + e.y;
    const LanczosWindow w = lanczosWindow(sourcePosition(ax, e.x), ax.lanczosF, s.w);
    float value;
    if (w.edgeOnly >= 0) {
      value = s.load(s.index(n, y, w.edgeOnly, e.c));
    } else {
      double sum = 0.0, weights = 0.0;  // double: up to 2^17 taps
      for (int64_t k = w.first; k <= w.last; ++k) {
        const double weight = w.weight(k);
        sum += weight * double(s.load(s.index(n, y, clampToExtent(k, s.w), e.c)));
        weights += weight;
      }
      value = float(sum / weights);
    }
    buffer[i] = value;
  }
}

/// Lanczos vertical pass from the buffer, weights on the fly.
__global__ void lanczosPlainColumnsKernel(RawView d, int64_t n0, int64_t images, int64_t rowBegin,
                                          int64_t readRows, int64_t sourceHeight, ResamplingAxis ay,
                                          const float* buffer) {
  const int64_t total = images * d.h * d.w * d.c;
  const int64_t bufferRowStride = d.w * d.c;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total;
       i += int64_t(gridDim.x) * blockDim.x) {
    const Element e = elementOf(i, d.h, d.w, d.c);
    const float* column = buffer + (e.n * readRows * d.w + e.x) * d.c + e.c;  // row rowBegin of this image
    const LanczosWindow w = lanczosWindow(sourcePosition(ay, e.y), ay.lanczosF, sourceHeight);
    float value;
    if (w.edgeOnly >= 0) {
      value = column[(w.edgeOnly - rowBegin) * bufferRowStride];
    } else {
      double sum = 0.0, weights = 0.0;  // double: up to 2^17 taps
      for (int64_t k = w.first; k <= w.last; ++k) {
        const double weight = w.weight(k);
        sum += weight * double(column[(clampToExtent(k, sourceHeight) - rowBegin) * bufferRowStride]);
        weights += weight;
      }
      value = float(sum / weights);
    }
    d.store(d.index(n0 + e.n, e.y, e.x, e.c), value);
  }
}

bool plainSupports(const ResamplingProblem&) { return true; }

void plainRun(const ResamplingProblem& p, QueueContext& ctx) {
  const ImageView& d = p.io.dst;
  auto& cuda = cudaContext(ctx);
  const auto stream = cuda.stream();
  if (p.filter != ResamplingFilter::Lanczos) {
    plainKernel<<<gridBlocks(elementCount(d)), kThreadsPerBlock, 0, stream>>>(
        p.io.src.raw(), d.raw(), p.filter, p.io.edgeMode, p.x, p.y);
    MPSNN_CUDA_LAUNCH_CHECK();
    return;
  }
  const RowRange rows = rowsRead(p);
  const int64_t readRows = rows.end - rows.begin;
  const int64_t bufferPerImage = readRows * d.w * d.c;
  const int64_t chunk = imagesPerChunk(p, bufferPerImage);
  float* buffer = static_cast<float*>(cuda.workspace(size_t(chunk * bufferPerImage) * sizeof(float)));
  for (int64_t n0 = 0; n0 < d.n; n0 += chunk) {
    const int64_t images = std::min(chunk, d.n - n0);
    lanczosPlainRowsKernel<<<gridBlocks(images * bufferPerImage), kThreadsPerBlock, 0, stream>>>(
        p.io.src.raw(), n0, images, rows.begin, readRows, d.w, d.c, p.x, buffer);
    MPSNN_CUDA_LAUNCH_CHECK();
    lanczosPlainColumnsKernel<<<gridBlocks(images * d.h * d.w * d.c), kThreadsPerBlock, 0, stream>>>(
        d.raw(), n0, images, rows.begin, readRows, p.io.src.h, p.y, buffer);
    MPSNN_CUDA_LAUNCH_CHECK();
  }
}

#undef MPSNN_LAUNCH_TYPED

}  // namespace

ImplementationList<ResamplingProblem>& cudaResamplingImplementations() {
  static ImplementationList<ResamplingProblem> list = {
      {"cuda:nearest", nearestSupports, nearestRun},
      {"cuda:bilinear", bilinearSupports, bilinearRun},
      {"cuda:lanczos", lanczosSupports, lanczosRun},
      {"cuda:plain", plainSupports, plainRun},
  };
  return list;
}

}  // namespace mpsnn::detail
