// CPU normalization kernels: oneDNN for cross-channel LRN where it computes exactly spec 04 §3,
// OpenMP float32 loops for every kernel (any placement and edge mode), and plain loops for every
// format.
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#if defined(MPSNN_HAVE_DNNL)
#include <oneapi/dnnl/dnnl.hpp>
#endif

#include "kernels/normalization_impl.h"

namespace mpsnn::detail {
namespace {

bool isFloat32(const UnaryProblem& p) {
  return p.src.format == ImageFeatureChannelFormat::Float32 &&
         p.dst.format == ImageFeatureChannelFormat::Float32;
}

/// True when `elements` units of work are enough for the OpenMP team to pay off.
bool worthThreads(double elements) { return elements > 16384.0; }
double elementsOf(const ImageView& v) { return double(v.n) * double(v.h) * double(v.w) * double(v.c); }

/// The float32 source pixel that destination pixel (x, y) of image n reads (edge mode applied), or
/// `zeros` when it lies outside the source in Zero mode.
const float* sourcePixel(const UnaryProblem& p, const float* src, const float* zeros, int64_t n, int64_t y,
                         int64_t x) {
  int64_t sy = p.offsetY + y, sx = p.offsetX + x;
  const bool inside = resolveEdge(sy, p.src.h, p.edgeMode) & resolveEdge(sx, p.src.w, p.edgeMode);
  return inside ? src + p.src.index(n, sy, sx, 0) : zeros;
}

// =================================================================================================
// CNNCrossChannelNormalization

// ---- oneDNN --------------------------------------------------------------------------------------
#if defined(MPSNN_HAVE_DNNL)

dnnl::engine& dnnlEngine() {
  static dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  return engine;
}

/// oneDNN's across-channel window is [c − (N−1)/2, c + (N−1)/2] with divisor N: the spec's window
/// for odd N only. Its optimised kernels exist for beta 0.75 and 1 (other exponents fall to a slow
/// reference implementation); with delta > 0 (and alpha ≥ 0, always) the base stays positive, away
/// from the 0 and negative bases where its shortcuts for those exponents and powf could differ.
/// It takes one memory layout for source and destination, so the strides must agree. Windows wider
/// than 15 channels (beyond what networks use and what was checked against it) take the own loop.
bool dnnlShapeFits(const CrossChannelProblem& p) {
  const ImageView& s = p.io.src;
  const ImageView& d = p.io.dst;
  return isFloat32(p.io) && p.lrn.kernelSize % 2 == 1 && p.lrn.kernelSize <= 15 &&
         (p.lrn.beta == 0.75f || p.lrn.beta == 1.0f) && p.lrn.delta > 0.0f && centresInside(p.io) &&
         s.pixelStride == d.pixelStride && s.rowStride == d.rowStride && s.imageStride == d.imageStride;
}

struct DnnlLrn {
  dnnl::memory::desc desc;
  dnnl::lrn_forward primitive;
};

/// The kernel's cached primitive for the shape of `p`, or null when oneDNN offers only its
/// reference implementation (slower than the own loop) or refuses the shape.
std::shared_ptr<DnnlLrn> dnnlPrimitive(const CrossChannelProblem& p) {
  const ImageView& d = p.io.dst;
  std::vector<int64_t> key = {d.n,           d.c,         d.h,           d.w,
                              d.imageStride, d.rowStride, d.pixelStride, p.lrn.kernelSize};
  for (float v : {p.lrn.alpha, p.lrn.beta, p.lrn.delta}) {
    uint32_t bits;
    std::memcpy(&bits, &v, sizeof bits);
    key.push_back(int64_t(bits));
  }
  return p.primitives->findOrMake<DnnlLrn>(key, [&]() -> std::shared_ptr<DnnlLrn> {
    using dims = dnnl::memory::dims;
    try {
      auto made = std::make_shared<DnnlLrn>();
      // NHWC views with their own strides: oneDNN's logical order is N, C, H, W.
      made->desc = dnnl::memory::desc(dims{d.n, d.c, d.h, d.w}, dnnl::memory::data_type::f32,
                                      dims{d.imageStride, 1, d.rowStride, d.pixelStride});
      dnnl::lrn_forward::desc desc(dnnl::prop_kind::forward_inference, dnnl::algorithm::lrn_across_channels,
                                   made->desc, p.lrn.kernelSize, p.lrn.alpha, p.lrn.beta, p.lrn.delta);
      dnnl::lrn_forward::primitive_desc pd(desc, dnnlEngine());
      const std::string impl = pd.impl_info_str();
      if (impl.find("ref") != std::string::npos) return nullptr;  // remembered: the own loop is faster
      made->primitive = dnnl::lrn_forward(pd);
      return made;
    } catch (const dnnl::error&) {
      return nullptr;  // remembered: this shape goes to the loops
    }
  });
}

bool dnnlSupports(const CrossChannelProblem& p) { return dnnlShapeFits(p) && dnnlPrimitive(p) != nullptr; }

void crossChannelRowsRun(const CrossChannelProblem& p, QueueContext& ctx);

void dnnlRun(const CrossChannelProblem& p, QueueContext& ctx) {
  std::shared_ptr<DnnlLrn> lrn = dnnlPrimitive(p);
  if (!lrn) return crossChannelRowsRun(p, ctx);  // evicted and refused on re-creation: stay correct
  float* src = static_cast<float*>(p.io.src.data()) + p.io.src.index(0, p.io.offsetY, p.io.offsetX, 0);
  dnnl::memory srcMemory(lrn->desc, dnnlEngine(), src);
  dnnl::memory dstMemory(lrn->desc, dnnlEngine(), p.io.dst.data());
  dnnl::stream stream(dnnlEngine());
  lrn->primitive.execute(stream, {{DNNL_ARG_SRC, srcMemory}, {DNNL_ARG_DST, dstMemory}});
  stream.wait();
}

#endif  // MPSNN_HAVE_DNNL

// ---- float32 loop: window sums of squares in float64 -----------------------------------------------
//
// Windows of up to 16 channels are summed tap by tap. Wider ones take a prefix sum per pixel
// (prefix[q] = Σ_{j<q} X(j)², one subtraction per window, whatever N is), in float64 so that the
// subtraction loses nothing a float32 result would notice — but only for pixels whose values are all
// finite: a NaN or inf would reach, through the prefix, windows that do not contain it.

bool crossChannelRowsSupports(const CrossChannelProblem& p) { return isFloat32(p.io); }

void crossChannelRowsRun(const CrossChannelProblem& p, QueueContext&) {
  const ImageView& s = p.io.src;
  const ImageView& d = p.io.dst;
  const float* src = static_cast<const float*>(s.data());
  float* dst = static_cast<float*>(d.data());
  const int64_t rows = d.n * d.h, channels = d.c;
  const CrossChannelParams lrn = p.lrn;
  const bool widePrefix = lrn.below + lrn.above + 1 > 16;
#pragma omp parallel if (worthThreads(elementsOf(d) * 4.0))
  {
    const std::vector<float> zeros(static_cast<size_t>(channels), 0.0f);
    std::vector<double> prefix(static_cast<size_t>(channels) + 1);
#pragma omp for schedule(static)
    for (int64_t r = 0; r < rows; ++r) {
      const int64_t n = r / d.h, y = r % d.h;
      for (int64_t x = 0; x < d.w; ++x) {
        const float* in = sourcePixel(p.io, src, zeros.data(), n, y, x);
        float* out = dst + d.index(n, y, x, 0);
        bool usePrefix = false;
        if (widePrefix) {
          prefix[0] = 0.0;
          for (int64_t k = 0; k < channels; ++k)
            prefix[size_t(k) + 1] = prefix[size_t(k)] + double(in[k]) * in[k];
          usePrefix =
              std::isfinite(prefix[size_t(channels)]);  // float32 squares cannot overflow float64 sums
        }
        for (int64_t k = 0; k < channels; ++k) {
          const int64_t lo = std::max<int64_t>(k - lrn.below, 0);
          const int64_t hi = std::min<int64_t>(k + lrn.above, channels - 1);
          double sum = 0.0;
          if (usePrefix) {
            sum = prefix[size_t(hi) + 1] - prefix[size_t(lo)];
          } else {
            for (int64_t q = lo; q <= hi; ++q) sum += double(in[q]) * in[q];
          }
          out[k] = in[k] / powBeta(lrn.delta + lrn.alphaOverSize * float(sum), lrn.beta);
        }
      }
    }
  }
}

// ---- plain ------------------------------------------------------------------------------------------

bool crossChannelPlainSupports(const CrossChannelProblem&) { return true; }

void crossChannelPlainRun(const CrossChannelProblem& p, QueueContext&) {
  const RawView s = p.io.src.raw();
  const RawView d = p.io.dst.raw();
  const int64_t rows = d.n * d.h;
#pragma omp parallel for schedule(static) if (worthThreads(elementsOf(p.io.dst) * double(p.lrn.kernelSize)))
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t n = r / d.h, y = r % d.h;
    for (int64_t x = 0; x < d.w; ++x) {
      int64_t sy = p.io.offsetY + y, sx = p.io.offsetX + x;
      const bool inside = resolveEdge(sy, s.h, p.io.edgeMode) & resolveEdge(sx, s.w, p.io.edgeMode);
      crossChannelPixel(
          d.c, p.lrn, [&](int64_t k) { return inside ? s.load(s.index(n, sy, sx, k)) : 0.0f; },
          [&](int64_t k, float v) { d.store(d.index(n, y, x, k), v); });
    }
  }
}

// =================================================================================================
// CNNSpatialNormalization and CNNLocalContrastNormalization

// ---- float32: separable window sums in float64 --------------------------------------------------
//
// For one destination row and a block of channels: first the column sums V(u) = Σ_rows w·X and
// Σ_rows w·X² over the window's rows (w = how many taps read that row: 1, or more for a clamped
// edge row), for every source column some window of the row reads; then prefix sums of V along the
// row, so that each output's window sum is one subtraction plus its clamped edge columns. Cost per
// output: (window rows + 1) per channel instead of kw·kh. Float64 keeps the subtractions exact
// enough, and gives local contrast its variance Σx²/N − M² without float32 cancellation.

bool windowRowsSupports(const WindowProblem& p) { return isFloat32(p.io); }

void windowRowsRun(const WindowProblem& p, QueueContext&) {
  const ImageView& s = p.io.src;
  const ImageView& d = p.io.dst;
  const WindowParams& norm = p.norm;
  const float* src = static_cast<const float*>(s.data());
  float* dst = static_cast<float*>(d.data());
  const bool clamp = p.io.edgeMode == ImageEdgeMode::Clamp;
  const bool contrast = norm.kind == WindowNormalization::LocalContrast;
  const int64_t rows = d.n * d.h;
  constexpr int64_t kChannelBlock = 32;  // bounds the per-thread buffers for wide images
  // Source columns any window of a row reads (every row reads the same ones), clamped to the image.
  const int64_t firstColumn = std::clamp<int64_t>(p.io.offsetX - norm.kernelWidth / 2, 0, s.w - 1);
  const int64_t lastColumn =
      std::clamp<int64_t>(p.io.offsetX + d.w - 1 + (norm.kernelWidth - 1) / 2, 0, s.w - 1);
  const int64_t span = std::max<int64_t>(lastColumn - firstColumn + 1, 1);
  const double taps = double(norm.kernelWidth) * double(norm.kernelHeight);
  const double rowWork = double(std::min<int64_t>(norm.kernelHeight, s.h) + 1) * double(span + d.w);
#pragma omp parallel if (worthThreads(rowWork * double(rows) * double(d.c)))
  {
    const size_t block = size_t(std::min<int64_t>(kChannelBlock, d.c));
    std::vector<double> sums(size_t(span) * block), squares(size_t(span) * block);
    std::vector<double> prefixSums((size_t(span) + 1) * block), prefixSquares((size_t(span) + 1) * block);
    const std::vector<float> zeros(static_cast<size_t>(d.c), 0.0f);
#pragma omp for schedule(static)
    for (int64_t r = 0; r < rows; ++r) {
      const int64_t n = r / d.h, y = r % d.h;
      const WindowAxis ay = windowAxis(p.io.offsetY + y, norm.kernelHeight, s.h);
      const int64_t v0 = clamp ? ay.clampBegin() : ay.insideBegin, v1 = clamp ? ay.clampEnd() : ay.insideEnd;
      for (int64_t c0 = 0; c0 < d.c; c0 += kChannelBlock) {
        const int64_t cb = std::min<int64_t>(kChannelBlock, d.c - c0);
        std::fill(sums.begin(), sums.end(), 0.0);
        std::fill(squares.begin(), squares.end(), 0.0);
        for (int64_t v = v0; v < v1; ++v) {
          const double w = clamp ? double(ay.weight(v)) : 1.0;
          for (int64_t u = 0; u < span; ++u) {
            const float* px = src + s.index(n, v, firstColumn + u, c0);
            double* su = sums.data() + u * cb;
            double* sq = squares.data() + u * cb;
            for (int64_t c = 0; c < cb; ++c) {
              const double value = px[c];
              su[c] += w * value;
              sq[c] += w * value * value;
            }
          }
        }
        std::fill(prefixSums.begin(), prefixSums.begin() + cb, 0.0);
        std::fill(prefixSquares.begin(), prefixSquares.begin() + cb, 0.0);
        for (int64_t u = 0; u < span; ++u)
          for (int64_t c = 0; c < cb; ++c) {
            prefixSums[size_t((u + 1) * cb + c)] = prefixSums[size_t(u * cb + c)] + sums[size_t(u * cb + c)];
            prefixSquares[size_t((u + 1) * cb + c)] =
                prefixSquares[size_t(u * cb + c)] + squares[size_t(u * cb + c)];
          }
        for (int64_t x = 0; x < d.w; ++x) {
          const WindowAxis ax = windowAxis(p.io.offsetX + x, norm.kernelWidth, s.w);
          const float* centre = sourcePixel(p.io, src, zeros.data(), n, y, x) + c0;
          float* out = dst + d.index(n, y, x, c0);
          const bool hasInside = ax.insideCount() > 0;
          const size_t i0 = hasInside ? size_t(ax.insideBegin - firstColumn) : 0;
          const size_t i1 = hasInside ? size_t(ax.insideEnd - firstColumn) : 0;
          for (int64_t c = 0; c < cb; ++c) {
            double windowSquares =
                prefixSquares[i1 * size_t(cb) + size_t(c)] - prefixSquares[i0 * size_t(cb) + size_t(c)];
            double windowSum =
                prefixSums[i1 * size_t(cb) + size_t(c)] - prefixSums[i0 * size_t(cb) + size_t(c)];
            if (clamp) {  // the taps left and right of the image read its first and last column
              if (ax.before > 0) {
                windowSquares += double(ax.before) * squares[size_t((0 - firstColumn) * cb + c)];
                windowSum += double(ax.before) * sums[size_t((0 - firstColumn) * cb + c)];
              }
              if (ax.after > 0) {
                windowSquares += double(ax.after) * squares[size_t((s.w - 1 - firstColumn) * cb + c)];
                windowSum += double(ax.after) * sums[size_t((s.w - 1 - firstColumn) * cb + c)];
              }
            }
            if (!contrast) {
              out[c] = centre[c] /
                       powBeta(norm.delta + float(double(norm.alpha) / taps * windowSquares), norm.beta);
            } else {
              const double mean = windowSum / taps;
              const double variance = std::max(windowSquares / taps - mean * mean, 0.0);
              out[c] = norm.pm + norm.ps * (centre[c] - norm.p0 * float(mean)) /
                                     powBeta(norm.delta + norm.alpha * float(variance), norm.beta);
            }
          }
        }
      }
    }
  }
}

// ---- plain --------------------------------------------------------------------------------------

bool windowPlainSupports(const WindowProblem&) { return true; }

void windowPlainRun(const WindowProblem& p, QueueContext&) {
  const RawView s = p.io.src.raw();
  const RawView d = p.io.dst.raw();
  const int64_t rows = d.n * d.h;
  const double taps = double(std::min<int64_t>(p.norm.kernelWidth, s.w)) *
                      double(std::min<int64_t>(p.norm.kernelHeight, s.h));
#pragma omp parallel for schedule(static) if (worthThreads(elementsOf(p.io.dst) * taps))
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t n = r / d.h, y = r % d.h;
    const WindowAxis ay = windowAxis(p.io.offsetY + y, p.norm.kernelHeight, s.h);
    for (int64_t x = 0; x < d.w; ++x) {
      const WindowAxis ax = windowAxis(p.io.offsetX + x, p.norm.kernelWidth, s.w);
      int64_t sy = p.io.offsetY + y, sx = p.io.offsetX + x;
      const bool inside = resolveEdge(sy, s.h, p.io.edgeMode) & resolveEdge(sx, s.w, p.io.edgeMode);
      for (int64_t c = 0; c < d.c; ++c) {
        const float centre = inside ? s.load(s.index(n, sy, sx, c)) : 0.0f;
        auto load = [&](int64_t v, int64_t u) { return s.load(s.index(n, v, u, c)); };
        d.store(d.index(n, y, x, c), windowNormalize(p.norm, ax, ay, p.io.edgeMode, centre, load));
      }
    }
  }
}

// =================================================================================================
// CNNBatchNormalization

// ---- float32: per-channel scale, one fused multiply-add and the neuron per value -----------------

bool batchNormRowsSupports(const BatchNormProblem& p) { return isFloat32(p.io); }

void batchNormRowsRun(const BatchNormProblem& p, QueueContext&) {
  const ImageView& s = p.io.src;
  const ImageView& d = p.io.dst;
  const float* src = static_cast<const float*>(s.data());
  float* dst = static_cast<float*>(d.data());
  const int64_t rows = d.n * d.h, channels = d.c;
  std::vector<float> scale(static_cast<size_t>(channels));
  for (int64_t c = 0; c < channels; ++c)
    scale[size_t(c)] = batchNormScale(p.gamma[c], p.variance[c], p.epsilon);
  const float* __restrict scales = scale.data();
  const float* __restrict means = p.mean;
  const float* __restrict betas = p.beta;
  const NeuronParams neuron = p.neuron;  // a local copy: the compiler need not reload it per value
  dispatchNeuronType(neuron.type, [&]<CNNNeuronType T>() {
#pragma omp parallel if (worthThreads(elementsOf(d)))
    {
      const std::vector<float> zeros(static_cast<size_t>(channels), 0.0f);
#pragma omp for schedule(static)
      for (int64_t r = 0; r < rows; ++r) {
        const int64_t n = r / d.h, y = r % d.h;
        for (int64_t x = 0; x < d.w; ++x) {
          const float* __restrict in = sourcePixel(p.io, src, zeros.data(), n, y, x);
          float* __restrict out = dst + d.index(n, y, x, 0);
          for (int64_t c = 0; c < channels; ++c)
            out[c] = applyNeuronAs(T, neuron, (in[c] - means[c]) * scales[c] + betas[c], c);
        }
      }
    }
  });
}

// ---- plain: the spec's formula for every value, every format ------------------------------------

bool batchNormPlainSupports(const BatchNormProblem&) { return true; }

void batchNormPlainRun(const BatchNormProblem& p, QueueContext&) {
  const RawView s = p.io.src.raw();
  const RawView d = p.io.dst.raw();
  const int64_t rows = d.n * d.h;
#pragma omp parallel for schedule(static) if (worthThreads(elementsOf(p.io.dst)))
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t n = r / d.h, y = r % d.h;
    for (int64_t x = 0; x < d.w; ++x) {
      int64_t sy = p.io.offsetY + y, sx = p.io.offsetX + x;
      const bool inside = resolveEdge(sy, s.h, p.io.edgeMode) & resolveEdge(sx, s.w, p.io.edgeMode);
      for (int64_t c = 0; c < d.c; ++c) {
        const float v = inside ? s.load(s.index(n, sy, sx, c)) : 0.0f;
        const float normalized = (v - p.mean[c]) * p.gamma[c] / sqrtf(p.variance[c] + p.epsilon) + p.beta[c];
        d.store(d.index(n, y, x, c), applyNeuron(p.neuron, normalized, c));
      }
    }
  }
}

// =================================================================================================
// CNNInstanceNormalization

/// Per image and channel: mean and scale = gamma / sqrt(var + epsilon), from float64 sums.
struct InstanceStatistics {
  std::vector<float> mean, scale;  // [image][channel]
};

// ---- float32: two float64 passes over each image, parallel over rows ------------------------------

bool instanceNormRowsSupports(const InstanceNormProblem& p) { return isFloat32(p.io); }

/// Adds f(image, value, channel) for every pixel of every source image into sums[image][channel].
template <class F>
void sumOverPixels(const InstanceNormProblem& p, std::vector<double>& sums, const F& f) {
  const ImageView& s = p.io.src;
  const float* src = static_cast<const float*>(s.data());
  const int64_t channels = p.io.dst.c, rows = s.n * s.h;
  std::fill(sums.begin(), sums.end(), 0.0);
#pragma omp parallel if (worthThreads(double(rows) * double(s.w) * double(channels)))
  {
    std::vector<double> local(sums.size(), 0.0);
#pragma omp for schedule(static)
    for (int64_t r = 0; r < rows; ++r) {
      const int64_t n = r / s.h, y = r % s.h;
      double* acc = local.data() + n * channels;
      for (int64_t x = 0; x < s.w; ++x) {
        const float* px = src + s.index(n, y, x, 0);
        for (int64_t c = 0; c < channels; ++c) acc[c] += f(n * channels + c, double(px[c]));
      }
    }
#pragma omp critical
    for (size_t i = 0; i < sums.size(); ++i) sums[i] += local[i];
  }
}

void instanceNormRowsRun(const InstanceNormProblem& p, QueueContext&) {
  const ImageView& s = p.io.src;
  const ImageView& d = p.io.dst;
  const int64_t channels = d.c, images = d.n;
  const double pixels = double(s.h) * double(s.w);
  std::vector<double> mean(size_t(images * channels)), variance(size_t(images * channels));
  sumOverPixels(p, mean, [](int64_t, double v) { return v; });
  for (auto& m : mean) m /= pixels;
  sumOverPixels(p, variance,
                [&](int64_t i, double v) { return (v - mean[size_t(i)]) * (v - mean[size_t(i)]); });
  std::vector<float> meanF(mean.size()), scale(mean.size());
  for (int64_t n = 0; n < images; ++n)
    for (int64_t c = 0; c < channels; ++c) {
      const size_t i = size_t(n * channels + c);
      meanF[i] = float(mean[i]);
      scale[i] = batchNormScale(p.gamma[c], float(variance[i] / pixels), p.epsilon);
    }
  const float* src = static_cast<const float*>(s.data());
  float* dst = static_cast<float*>(d.data());
  const int64_t rows = d.n * d.h;
#pragma omp parallel if (worthThreads(elementsOf(d)))
  {
    const std::vector<float> zeros(static_cast<size_t>(channels), 0.0f);
#pragma omp for schedule(static)
    for (int64_t r = 0; r < rows; ++r) {
      const int64_t n = r / d.h, y = r % d.h;
      const float* means = meanF.data() + n * channels;
      const float* scales = scale.data() + n * channels;
      for (int64_t x = 0; x < d.w; ++x) {
        const float* in = sourcePixel(p.io, src, zeros.data(), n, y, x);
        float* out = dst + d.index(n, y, x, 0);
        for (int64_t c = 0; c < channels; ++c) out[c] = (in[c] - means[c]) * scales[c] + p.beta[c];
      }
    }
  }
}

// ---- plain: per image and channel, two float64 passes; the spec's formula per value --------------

bool instanceNormPlainSupports(const InstanceNormProblem&) { return true; }

void instanceNormPlainRun(const InstanceNormProblem& p, QueueContext&) {
  const RawView s = p.io.src.raw();
  const RawView d = p.io.dst.raw();
  const int64_t channels = d.c, images = d.n;
  std::vector<float> mean(size_t(images * channels)), variance(size_t(images * channels));
  const double pixels = double(s.h) * double(s.w);
#pragma omp parallel for schedule(dynamic) if (worthThreads(double(images) * double(channels) * pixels))
  for (int64_t i = 0; i < images * channels; ++i) {
    const int64_t n = i / channels, c = i % channels;
    double sum = 0.0;
    for (int64_t y = 0; y < s.h; ++y)
      for (int64_t x = 0; x < s.w; ++x) sum += s.load(s.index(n, y, x, c));
    const double m = sum / pixels;
    double squares = 0.0;
    for (int64_t y = 0; y < s.h; ++y)
      for (int64_t x = 0; x < s.w; ++x) {
        const double v = s.load(s.index(n, y, x, c)) - m;
        squares += v * v;
      }
    mean[size_t(i)] = float(m);
    variance[size_t(i)] = float(squares / pixels);
  }
  const int64_t rows = d.n * d.h;
#pragma omp parallel for schedule(static) if (worthThreads(elementsOf(p.io.dst)))
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t n = r / d.h, y = r % d.h;
    for (int64_t x = 0; x < d.w; ++x) {
      int64_t sy = p.io.offsetY + y, sx = p.io.offsetX + x;
      const bool inside = resolveEdge(sy, s.h, p.io.edgeMode) & resolveEdge(sx, s.w, p.io.edgeMode);
      for (int64_t c = 0; c < d.c; ++c) {
        const size_t i = size_t(n * channels + c);
        const float v = inside ? s.load(s.index(n, sy, sx, c)) : 0.0f;
        d.store(d.index(n, y, x, c), (v - mean[i]) * p.gamma[c] / sqrtf(variance[i] + p.epsilon) + p.beta[c]);
      }
    }
  }
}

}  // namespace

ImplementationList<CrossChannelProblem>& cpuCrossChannelImplementations() {
  static ImplementationList<CrossChannelProblem> list = {
#if defined(MPSNN_HAVE_DNNL)
    {"cpu:dnnl", dnnlSupports, dnnlRun},
#endif
    {"cpu:rows", crossChannelRowsSupports, crossChannelRowsRun},
    {"cpu:plain", crossChannelPlainSupports, crossChannelPlainRun},
  };
  return list;
}

ImplementationList<WindowProblem>& cpuWindowNormalizationImplementations() {
  static ImplementationList<WindowProblem> list = {
      {"cpu:rows", windowRowsSupports, windowRowsRun},
      {"cpu:plain", windowPlainSupports, windowPlainRun},
  };
  return list;
}

ImplementationList<BatchNormProblem>& cpuBatchNormImplementations() {
  static ImplementationList<BatchNormProblem> list = {
      {"cpu:rows", batchNormRowsSupports, batchNormRowsRun},
      {"cpu:plain", batchNormPlainSupports, batchNormPlainRun},
  };
  return list;
}

ImplementationList<InstanceNormProblem>& cpuInstanceNormImplementations() {
  static ImplementationList<InstanceNormProblem> list = {
      {"cpu:rows", instanceNormRowsSupports, instanceNormRowsRun},
      {"cpu:plain", instanceNormPlainSupports, instanceNormPlainRun},
  };
  return list;
}

}  // namespace mpsnn::detail
