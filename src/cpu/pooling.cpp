// CPU pooling: oneDNN for average pooling where its semantics equal MPS's exactly, an OpenMP
// float32 loop that pools all channels of a pixel together, and a plain loop for every format, edge
// rule and dilation.
#include <omp.h>

#include <algorithm>
#include <vector>

#if defined(MPSNN_HAVE_DNNL)
#include <oneapi/dnnl/dnnl.hpp>
#endif

#include "kernels/pooling_impl.h"

namespace mpsnn::detail {
namespace {

bool isFloat32(const PoolingProblem& p) {
  return p.io.src.format == ImageFeatureChannelFormat::Float32 &&
         p.io.dst.format == ImageFeatureChannelFormat::Float32;
}

/// True when the work is big enough for the OpenMP team to pay off. Only in-image taps cost
/// anything; counted in double, as window sizes up to 2^31 would overflow an integer product.
bool worthThreads(const ImageView& s, const ImageView& d, const PoolingParams& pool) {
  const double taps = double(std::min(pool.kernelWidth, s.w)) * double(std::min(pool.kernelHeight, s.h));
  return double(d.n) * double(d.h) * double(d.w) * double(d.c) * taps > 32768.0;
}

// ---- OpenMP float32: all channels of a destination pixel at once ---------------------------------

bool rowsSupports(const PoolingProblem& p) { return isFloat32(p); }

void rowsRun(const PoolingProblem& p, QueueContext&) {
  const ImageView& s = p.io.src;
  const ImageView& d = p.io.dst;
  const PoolingParams& pool = p.pool;
  const float* src = static_cast<const float*>(s.data());
  float* dst = static_cast<float*>(d.data());
  const int64_t rows = d.n * d.h, channels = d.c;
  const bool clampedReads =
      p.io.edgeMode == ImageEdgeMode::Clamp && pool.operation != PoolingOperation::Average;
#pragma omp parallel if (worthThreads(s, d, pool))
  {
    std::vector<float> acc(static_cast<size_t>(channels));  // one pixel's accumulators, per thread
#pragma omp for schedule(static)
    for (int64_t r = 0; r < rows; ++r) {
      const int64_t n = r / d.h, y = r % d.h;
      const PoolingAxis ay =
          poolingAxis(p.io.offsetY + y * pool.strideY, pool.kernelHeight, pool.dilationY, s.h, pool.zeroPadY);
      const int64_t y0 = clampedReads ? ay.clampBegin() : ay.insideBegin;
      const int64_t y1 = clampedReads ? ay.clampEnd() : ay.insideEnd;
      for (int64_t x = 0; x < d.w; ++x) {
        const PoolingAxis ax = poolingAxis(p.io.offsetX + x * pool.strideX, pool.kernelWidth, pool.dilationX,
                                           s.w, pool.zeroPadX);
        const int64_t x0 = clampedReads ? ax.clampBegin() : ax.insideBegin;
        const int64_t x1 = clampedReads ? ax.clampEnd() : ax.insideEnd;
        float* out = dst + d.index(n, y, x, 0);
        float* a = acc.data();
        switch (pool.operation) {
          case PoolingOperation::Max: {
            std::fill(acc.begin(), acc.end(), negativeInfinity());
            for (int64_t j = y0; j < y1; ++j)
              for (int64_t i = x0; i < x1; ++i) {
                const float* px = src + s.index(n, ay.clampedCoordinate(j), ax.clampedCoordinate(i), 0);
                for (int64_t c = 0; c < channels; ++c) a[c] = (px[c] > a[c] || px[c] != px[c]) ? px[c] : a[c];
              }
            const bool zeroTaps = !clampedReads && ax.insideCount() * ay.insideCount() < ax.count * ay.count;
            for (int64_t c = 0; c < channels; ++c) out[c] = zeroTaps && 0.0f > a[c] ? 0.0f : a[c];
            break;
          }
          case PoolingOperation::Average: {
            std::fill(acc.begin(), acc.end(), 0.0f);
            for (int64_t j = y0; j < y1; ++j)
              for (int64_t i = x0; i < x1; ++i) {
                const float* px = src + s.index(n, ay.first + j * ay.step, ax.first + i * ax.step, 0);
                for (int64_t c = 0; c < channels; ++c) a[c] += px[c];
              }
            const int64_t divisor =
                p.io.edgeMode == ImageEdgeMode::Clamp ? ax.bandCount * ay.bandCount : ax.count * ay.count;
            for (int64_t c = 0; c < channels; ++c) out[c] = divisor > 0 ? a[c] / float(divisor) : 0.0f;
            break;
          }
          case PoolingOperation::L2Norm: {
            std::fill(acc.begin(), acc.end(), 0.0f);
            for (int64_t j = y0; j < y1; ++j) {
              const int64_t wy = clampedReads ? ay.clampWeight(j) : 1;
              for (int64_t i = x0; i < x1; ++i) {
                const float w = float(clampedReads ? wy * ax.clampWeight(i) : 1);
                const float* px = src + s.index(n, ay.clampedCoordinate(j), ax.clampedCoordinate(i), 0);
                for (int64_t c = 0; c < channels; ++c) a[c] += w * (px[c] * px[c]);
              }
            }
            for (int64_t c = 0; c < channels; ++c) out[c] = sqrtf(a[c]);
            break;
          }
        }
      }
    }
  }
}

// ---- oneDNN ---------------------------------------------------------------------------------------
#if defined(MPSNN_HAVE_DNNL)

/// One spatial axis as oneDNN sees it: the part of the source the windows read and the padding
/// before and after it (all windows of the axis together read [begin − padBefore, end + padAfter)).
struct DnnlAxis {
  int64_t begin = 0, end = 0, padBefore = 0, padAfter = 0, extent = 1;
};

/// False when no window reads the image or when a window lies entirely in the padding (oneDNN and
/// MPS disagree there, and oneDNN refuses padding as wide as the window).
bool dnnlAxis(int64_t offset, int64_t stride, int64_t kernel, int64_t dilation, int64_t srcExtent,
              int64_t dstExtent, DnnlAxis& a) {
  a.extent = (kernel - 1) * dilation + 1;
  const int64_t first = offset - a.extent / 2;
  const int64_t last = offset + stride * (dstExtent - 1) + a.extent - 1 - a.extent / 2;  // inclusive
  a.begin = std::max<int64_t>(first, 0);
  a.end = std::min<int64_t>(last + 1, srcExtent);
  if (a.begin >= a.end) return false;
  a.padBefore = a.begin - first;
  a.padAfter = last + 1 - a.end;
  return a.padBefore < a.extent && a.padAfter < a.extent;
}

/// How an axis allows average pooling with edgeMode Clamp to map: no padding (any algorithm),
/// divide by the in-image taps (zero band 0), divide by the whole window (band covers the padding).
enum class AverageFit { Any, ExcludePadding, IncludePadding, None };
AverageFit averageFit(const DnnlAxis& a, int64_t zeroPad) {
  if (a.padBefore == 0 && a.padAfter == 0) return AverageFit::Any;
  if (zeroPad == 0) return AverageFit::ExcludePadding;
  if (zeroPad >= a.padBefore && zeroPad >= a.padAfter) return AverageFit::IncludePadding;
  return AverageFit::None;
}

/// The oneDNN algorithm that computes `p` exactly, or false. Only average pooling maps: oneDNN's
/// max drops NaN where MPS's propagates it (spec 02 §3), and oneDNN has no L2-norm pooling.
bool dnnlAlgorithm(const PoolingProblem& p, const DnnlAxis& ax, const DnnlAxis& ay, dnnl::algorithm& alg) {
  if (p.pool.operation != PoolingOperation::Average) return false;
  if (p.io.edgeMode == ImageEdgeMode::Zero) {  // divide by the whole window
    alg = dnnl::algorithm::pooling_avg_include_padding;
    return true;
  }
  const AverageFit fx = averageFit(ax, p.pool.zeroPadX), fy = averageFit(ay, p.pool.zeroPadY);
  if (fx == AverageFit::None || fy == AverageFit::None) return false;
  const bool exclude = fx == AverageFit::ExcludePadding || fy == AverageFit::ExcludePadding;
  const bool include = fx == AverageFit::IncludePadding || fy == AverageFit::IncludePadding;
  if (exclude && include) return false;  // one algorithm serves both axes
  alg = exclude ? dnnl::algorithm::pooling_avg_exclude_padding : dnnl::algorithm::pooling_avg_include_padding;
  return true;
}

dnnl::engine& dnnlEngine() {
  static dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  return engine;
}

/// Where the windows of `p` read and which oneDNN algorithm computes them.
struct DnnlGeometry {
  DnnlAxis x, y;
  dnnl::algorithm algorithm = dnnl::algorithm::undef;
};

/// False when oneDNN cannot compute `p` exactly (or the window is big enough that the own loop,
/// which visits only in-image taps, is the better choice).
bool dnnlGeometry(const PoolingProblem& p, DnnlGeometry& g) {
  const ImageView& s = p.io.src;
  const ImageView& d = p.io.dst;
  return isFloat32(p) && p.pool.kernelWidth * p.pool.kernelHeight <= 4096 &&
         dnnlAxis(p.io.offsetX, p.pool.strideX, p.pool.kernelWidth, p.pool.dilationX, s.w, d.w, g.x) &&
         dnnlAxis(p.io.offsetY, p.pool.strideY, p.pool.kernelHeight, p.pool.dilationY, s.h, d.h, g.y) &&
         dnnlAlgorithm(p, g.x, g.y, g.algorithm);
}

struct DnnlPooling {
  dnnl::memory::desc srcDesc, dstDesc;
  dnnl::pooling_v2_forward primitive;
};

/// The kernel's cached primitive for the shape of `p` (the key holds everything the primitive
/// depends on; where the windows start in the source is applied to the data pointer at run time),
/// or null when oneDNN refuses it.
std::shared_ptr<DnnlPooling> dnnlPrimitive(const PoolingProblem& p, const DnnlGeometry& g) {
  const ImageView& s = p.io.src;
  const ImageView& d = p.io.dst;
  const int64_t viewH = g.y.end - g.y.begin, viewW = g.x.end - g.x.begin;
  std::vector<int64_t> key = {int64_t(g.algorithm), d.n, d.c, viewH, viewW, d.h, d.w};
  key.insert(key.end(),
             {s.imageStride, s.rowStride, s.pixelStride, d.imageStride, d.rowStride, d.pixelStride});
  key.insert(key.end(), {p.pool.kernelHeight, p.pool.kernelWidth, p.pool.strideY, p.pool.strideX});
  key.insert(key.end(),
             {p.pool.dilationY, p.pool.dilationX, g.y.padBefore, g.x.padBefore, g.y.padAfter, g.x.padAfter});
  return p.primitives->findOrMake<DnnlPooling>(key, [&]() -> std::shared_ptr<DnnlPooling> {
    using dims = dnnl::memory::dims;
    try {
      auto made = std::make_shared<DnnlPooling>();
      // NHWC views with their own strides: oneDNN's logical order is N, C, H, W.
      made->srcDesc = dnnl::memory::desc(dims{d.n, d.c, viewH, viewW}, dnnl::memory::data_type::f32,
                                         dims{s.imageStride, 1, s.rowStride, s.pixelStride});
      made->dstDesc = dnnl::memory::desc(dims{d.n, d.c, d.h, d.w}, dnnl::memory::data_type::f32,
                                         dims{d.imageStride, 1, d.rowStride, d.pixelStride});
      dnnl::pooling_v2_forward::desc desc(
          dnnl::prop_kind::forward_inference, g.algorithm, made->srcDesc, made->dstDesc,
          dims{p.pool.strideY, p.pool.strideX}, dims{p.pool.kernelHeight, p.pool.kernelWidth},
          dims{p.pool.dilationY - 1, p.pool.dilationX - 1}, dims{g.y.padBefore, g.x.padBefore},
          dims{g.y.padAfter, g.x.padAfter});
      made->primitive =
          dnnl::pooling_v2_forward(dnnl::pooling_v2_forward::primitive_desc(desc, dnnlEngine()));
      return made;
    } catch (const dnnl::error&) {
      return nullptr;  // remembered: this shape goes to the loops
    }
  });
}

bool dnnlSupports(const PoolingProblem& p) {
  DnnlGeometry g;
  return dnnlGeometry(p, g) && dnnlPrimitive(p, g) != nullptr;
}

void dnnlRun(const PoolingProblem& p, QueueContext& ctx) {
  DnnlGeometry g;
  std::shared_ptr<DnnlPooling> pooling;
  if (!dnnlGeometry(p, g) || !(pooling = dnnlPrimitive(p, g)))
    return rowsRun(p, ctx);  // evicted and refused on re-creation: cannot happen, but stay correct
  float* src = static_cast<float*>(p.io.src.data()) + p.io.src.index(0, g.y.begin, g.x.begin, 0);
  dnnl::memory srcMemory(pooling->srcDesc, dnnlEngine(), src);
  dnnl::memory dstMemory(pooling->dstDesc, dnnlEngine(), p.io.dst.data());
  dnnl::stream stream(dnnlEngine());
  pooling->primitive.execute(stream, {{DNNL_ARG_SRC, srcMemory}, {DNNL_ARG_DST, dstMemory}});
  stream.wait();
}

#endif  // MPSNN_HAVE_DNNL

// ---- plain: every format through loadAsFloat/storeFromFloat ---------------------------------------

bool plainSupports(const PoolingProblem&) { return true; }

void plainRun(const PoolingProblem& p, QueueContext&) {
  const ImageView& s = p.io.src;
  const ImageView& d = p.io.dst;
  const PoolingParams& pool = p.pool;
  const RawView src = s.raw();
  void* dst = d.data();
  const int64_t rows = d.n * d.h;
#pragma omp parallel for schedule(static) if (worthThreads(s, d, pool))
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t n = r / d.h, y = r % d.h;
    const PoolingAxis ay =
        poolingAxis(p.io.offsetY + y * pool.strideY, pool.kernelHeight, pool.dilationY, s.h, pool.zeroPadY);
    for (int64_t x = 0; x < d.w; ++x) {
      const PoolingAxis ax =
          poolingAxis(p.io.offsetX + x * pool.strideX, pool.kernelWidth, pool.dilationX, s.w, pool.zeroPadX);
      for (int64_t c = 0; c < d.c; ++c)
        storeFromFloat(dst, d.index(n, y, x, c), d.format,
                       poolWindow(pool.operation, p.io.edgeMode, ax, ay, RawChannelLoad{src, n, c}));
    }
  }
}

}  // namespace

ImplementationList<PoolingProblem>& cpuPoolingImplementations() {
  static ImplementationList<PoolingProblem> list = {
#if defined(MPSNN_HAVE_DNNL)
    {"cpu:dnnl", dnnlSupports, dnnlRun},
#endif
    {"cpu:rows", rowsSupports, rowsRun},
    {"cpu:plain", plainSupports, plainRun},
  };
  return list;
}

}  // namespace mpsnn::detail
