// CPU resampling: a float32 nearest path that copies whole pixels, a float32 separable path with
// per-column and per-row tap tables (bilinear and Lanczos: a horizontal pass into a float buffer,
// then a vertical pass), and a plain loop for every format.
#include <omp.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "kernels/resampling_impl.h"

namespace mpsnn::detail {
namespace {

bool isFloat32(const ResamplingProblem& p) {
  return p.io.src.format == ImageFeatureChannelFormat::Float32 &&
         p.io.dst.format == ImageFeatureChannelFormat::Float32;
}

/// True when `work` multiply-adds are enough for the OpenMP team to pay off.
bool worthThreads(double work) { return work > 32768.0; }

// ---- nearest, float32: whole pixels at a time -----------------------------------------------------

bool nearestSupports(const ResamplingProblem& p) {
  return p.filter == ResamplingFilter::Nearest && isFloat32(p);
}

void nearestRun(const ResamplingProblem& p, QueueContext&) {
  const ImageView& s = p.io.src;
  const ImageView& d = p.io.dst;
  // The source column of every destination column, −1 for a Zero-edge read outside the image.
  std::vector<int64_t> column(static_cast<size_t>(d.w));
  for (int64_t x = 0; x < d.w; ++x) {
    int64_t sx = nearestSource(p.x, x);
    column[size_t(x)] = resolveEdge(sx, s.w, p.io.edgeMode) ? sx : -1;
  }
  const float* src = static_cast<const float*>(s.data());
  float* dst = static_cast<float*>(d.data());
  const int64_t rows = d.n * d.h;
  const size_t pixelBytes = size_t(d.c) * sizeof(float);
#pragma omp parallel for schedule(static) if (worthThreads(double(rows) * double(d.w) * double(d.c)))
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t n = r / d.h, y = r % d.h;
    int64_t sy = nearestSource(p.y, y);
    const bool rowInside = resolveEdge(sy, s.h, p.io.edgeMode);
    for (int64_t x = 0; x < d.w; ++x) {
      float* out = dst + d.index(n, y, x, 0);
      const int64_t sx = column[size_t(x)];
      if (rowInside && sx >= 0)
        std::memcpy(out, src + s.index(n, sy, sx, 0), pixelBytes);
      else
        std::fill(out, out + d.c, 0.0f);
    }
  }
}

// ---- separable, float32: tap tables and two passes -------------------------------------------------

/// The taps of every destination coordinate of one axis: coordinate d reads count[d] source pixels
/// from first[d] with weights[d·stride + k].
struct AxisTable {
  int64_t stride = 0;
  std::vector<int64_t> first, count;
  std::vector<float> weights;

  void build(const ResamplingProblem& p, const ResamplingAxis& axis, int64_t extent) {
    stride = maxAxisTaps(p.filter, axis);
    first.assign(size_t(extent), 0);
    count.assign(size_t(extent), 0);
    weights.assign(size_t(extent * stride), 0.0f);
#pragma omp parallel for schedule(static) if (worthThreads(double(extent) * double(stride) * 16.0))
    for (int64_t d = 0; d < extent; ++d)
      axisTaps(p.filter, p.io.edgeMode, axis, d, first[size_t(d)], count[size_t(d)],
               &weights[size_t(d * stride)]);
  }
};

/// Source rows [begin, end) the vertical pass reads (the mappings are monotonic, so the first and
/// last destination rows bound them).
struct RowRange {
  int64_t begin, end;
};
RowRange rowsRead(const ResamplingProblem& p) {
  int64_t first0, last0, firstN, lastN;
  axisSpan(p.filter, p.y, 0, first0, last0);
  axisSpan(p.filter, p.y, p.io.dst.h - 1, firstN, lastN);
  return {std::min(first0, firstN), std::max(last0, lastN) + 1};
}

/// Elements of the float buffer between the passes and of the two tables, in float-sized units.
double separableFootprint(const ResamplingProblem& p) {
  const RowRange rows = rowsRead(p);
  return double(rows.end - rows.begin) * double(p.io.dst.w) * double(p.io.dst.c) +
         double(p.io.dst.w) * double(maxAxisTaps(p.filter, p.x)) * 3.0 +
         double(p.io.dst.h) * double(maxAxisTaps(p.filter, p.y)) * 3.0;
}

bool separableSupports(const ResamplingProblem& p) {
  // Larger problems (absurd transforms) take the plain loop, which needs no memory of its own.
  return p.filter != ResamplingFilter::Nearest && isFloat32(p) && separableFootprint(p) <= double(1 << 28);
}

void separableRun(const ResamplingProblem& p, QueueContext&) {
  const ImageView& s = p.io.src;
  const ImageView& d = p.io.dst;
  AxisTable columns, rows;
  columns.build(p, p.x, d.w);
  rows.build(p, p.y, d.h);
  const RowRange read = rowsRead(p);
  const int64_t readRows = read.end - read.begin, channels = d.c;
  const int64_t bufferRowStride = d.w * channels;
  std::vector<float> buffer(size_t(readRows * bufferRowStride));
  const float* src = static_cast<const float*>(s.data());
  float* dst = static_cast<float*>(d.data());
  const bool threadsForRows =
      worthThreads(double(readRows) * double(d.w) * double(channels) * double(columns.stride));
  const bool threadsForColumns =
      worthThreads(double(d.h) * double(d.w) * double(channels) * double(rows.stride));
  for (int64_t n = 0; n < d.n; ++n) {
    // Horizontal pass: every source row the vertical pass reads, resampled to the destination width.
#pragma omp parallel for schedule(static) if (threadsForRows)
    for (int64_t r = 0; r < readRows; ++r) {
      float* out = buffer.data() + r * bufferRowStride;
      for (int64_t x = 0; x < d.w; ++x, out += channels) {
        std::fill(out, out + channels, 0.0f);
        const float* w = &columns.weights[size_t(x * columns.stride)];
        const float* px = src + s.index(n, read.begin + r, columns.first[size_t(x)], 0);
        for (int64_t k = 0; k < columns.count[size_t(x)]; ++k, px += s.pixelStride)
          for (int64_t c = 0; c < channels; ++c) out[c] += w[k] * px[c];
      }
    }
    // Vertical pass into the destination.
#pragma omp parallel for schedule(static) if (threadsForColumns)
    for (int64_t y = 0; y < d.h; ++y) {
      const float* w = &rows.weights[size_t(y * rows.stride)];
      const float* line = buffer.data() + (rows.first[size_t(y)] - read.begin) * bufferRowStride;
      for (int64_t x = 0; x < d.w; ++x) {
        float* out = dst + d.index(n, y, x, 0);
        std::fill(out, out + channels, 0.0f);
        const float* px = line + x * channels;
        for (int64_t k = 0; k < rows.count[size_t(y)]; ++k, px += bufferRowStride)
          for (int64_t c = 0; c < channels; ++c) out[c] += w[k] * px[c];
      }
    }
  }
}

// ---- plain: every filter and format through loadAsFloat/storeFromFloat ------------------------------

bool plainSupports(const ResamplingProblem&) { return true; }

void plainRun(const ResamplingProblem& p, QueueContext&) {
  const ImageView& s = p.io.src;
  const ImageView& d = p.io.dst;
  const RawView src = s.raw();
  void* dst = d.data();
  const int64_t rows = d.n * d.h;
  const int64_t maxX = maxAxisTaps(p.filter, p.x), maxY = maxAxisTaps(p.filter, p.y);
#pragma omp parallel if (worthThreads(double(rows) * double(d.w) * double(d.c) * double(maxX + maxY)))
  {
    std::vector<float> wx(static_cast<size_t>(maxX)),
        wy(static_cast<size_t>(maxY));  // one coordinate's weights, per thread
#pragma omp for schedule(static)
    for (int64_t r = 0; r < rows; ++r) {
      const int64_t n = r / d.h, y = r % d.h;
      int64_t firstY, countY;
      axisTaps(p.filter, p.io.edgeMode, p.y, y, firstY, countY, wy.data());
      for (int64_t x = 0; x < d.w; ++x) {
        int64_t firstX, countX;
        axisTaps(p.filter, p.io.edgeMode, p.x, x, firstX, countX, wx.data());
        for (int64_t c = 0; c < d.c; ++c) {
          // Horizontal combinations first, then the vertical one (spec 05's sample() order).
          float value = 0.0f;
          for (int64_t j = 0; j < countY; ++j) {
            float row = 0.0f;
            for (int64_t i = 0; i < countX; ++i)
              row += wx[size_t(i)] * src.load(src.index(n, firstY + j, firstX + i, c));
            value += wy[size_t(j)] * row;
          }
          storeFromFloat(dst, d.index(n, y, x, c), d.format, value);
        }
      }
    }
  }
}

}  // namespace

ImplementationList<ResamplingProblem>& cpuResamplingImplementations() {
  static ImplementationList<ResamplingProblem> list = {
      {"cpu:nearest", nearestSupports, nearestRun},
      {"cpu:separable", separableSupports, separableRun},
      {"cpu:plain", plainSupports, plainRun},
  };
  return list;
}

}  // namespace mpsnn::detail
