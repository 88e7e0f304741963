// CPU reductions: OpenMP float32 loops whose inner loop runs over contiguous memory (the channels of a
// pixel, or a whole row of pixels), and a plain loop for every format.
#include <omp.h>

#include <algorithm>
#include <vector>

#include "kernels/reduce_impl.h"

namespace mpsnn::detail {
namespace {

/// True when the work is big enough for the OpenMP team to pay off.
bool worthThreads(const ImageView& s) {
  return double(s.n) * double(s.h) * double(s.w) * double(s.c) > 32768.0;
}

// ---- float32 -------------------------------------------------------------------------------------

/// acc[c] ⊕= px[c] for c < channels (contiguous; the compiler vectorises the Sum case).
inline void combineInto(ReduceOperation op, float* acc, const float* px, int64_t channels) {
  switch (op) {
    case ReduceOperation::Min:
      for (int64_t c = 0; c < channels; ++c) acc[c] = (px[c] < acc[c] || px[c] != px[c]) ? px[c] : acc[c];
      break;
    case ReduceOperation::Max:
      for (int64_t c = 0; c < channels; ++c) acc[c] = (px[c] > acc[c] || px[c] != px[c]) ? px[c] : acc[c];
      break;
    default:
      for (int64_t c = 0; c < channels; ++c) acc[c] += px[c];
      break;
  }
}

/// Row y of image n reduced over x into acc[0, c) (initialised here).
inline void reduceRow(ReduceOperation op, const ImageView& s, const float* src, int64_t n, int64_t y,
                      float* acc) {
  std::fill(acc, acc + s.c, reduceIdentity(op));
  const float* row = src + s.index(n, y, 0, 0);
  for (int64_t x = 0; x < s.w; ++x) combineInto(op, acc, row + x * s.pixelStride, s.c);
}

/// The channels of one pixel reduced (Min, Max, Sum, Mean: before the finishing step).
inline float reducePixel(ReduceOperation op, const float* px, int64_t channels) {
  if (op == ReduceOperation::Sum || op == ReduceOperation::Mean) {
    float part[8] = {0, 0, 0, 0, 0, 0, 0, 0};  // independent partial sums: vectorisable, fewer round-offs
    int64_t c = 0;
    for (; c + 8 <= channels; c += 8)
      for (int k = 0; k < 8; ++k) part[k] += px[c + k];
    float sum = ((part[0] + part[1]) + (part[2] + part[3])) + ((part[4] + part[5]) + (part[6] + part[7]));
    for (; c < channels; ++c) sum += px[c];
    return sum;
  }
  float acc = reduceIdentity(op);
  for (int64_t c = 0; c < channels; ++c) acc = reduceCombine(op, acc, px[c]);
  return acc;
}

/// First index of the extreme channel value (a NaN counts as extreme and ends the search).
inline int64_t argumentOfPixel(ReduceOperation op, const float* px, int64_t channels) {
  int64_t best = 0;
  float bestValue = px[0];
  if (bestValue != bestValue) return 0;
  for (int64_t c = 1; c < channels; ++c) {
    const float v = px[c];
    if (v != v) return c;
    if (op == ReduceOperation::ArgumentMax ? v > bestValue : v < bestValue) {
      best = c;
      bestValue = v;
    }
  }
  return best;
}

bool float32Supports(const ReduceProblem& p) { return isFloat32View(p.src) && isFloat32View(p.dst); }

void float32Run(const ReduceProblem& p, QueueContext&) {
  const ImageView& s = p.src;
  const ImageView& d = p.dst;
  const float* src = static_cast<const float*>(s.data());
  float* dst = static_cast<float*>(d.data());
  const ReduceOperation op = p.operation;
  switch (p.axis) {
    case ReduceAxis::Row: {
      const int64_t rows = d.n * d.h;
#pragma omp parallel if (worthThreads(s))
      {
        std::vector<float> acc(size_t(s.c));
#pragma omp for schedule(static)
        for (int64_t r = 0; r < rows; ++r) {
          const int64_t n = r / d.h, y = r % d.h;
          reduceRow(op, s, src, n, y, acc.data());
          float* out = dst + d.index(n, y, 0, 0);
          for (int64_t c = 0; c < d.c; ++c) out[c] = reduceFinish(op, acc[size_t(c)], s.w, p.weight);
        }
      }
      break;
    }
    case ReduceAxis::Column: {
      // Blocks of columns: each block accumulates whole row segments (contiguous when the pixels are).
      constexpr int64_t kBlock = 64;
      const int64_t blocks = (d.w + kBlock - 1) / kBlock, tasks = d.n * blocks;
#pragma omp parallel if (worthThreads(s))
      {
        std::vector<float> acc(size_t(kBlock * s.c));
#pragma omp for schedule(static)
        for (int64_t t = 0; t < tasks; ++t) {
          const int64_t n = t / blocks, x0 = t % blocks * kBlock, width = std::min(kBlock, d.w - x0);
          std::fill(acc.begin(), acc.end(), reduceIdentity(op));
          for (int64_t y = 0; y < s.h; ++y) {
            const float* row = src + s.index(n, y, x0, 0);
            if (s.pixelStride == s.c) {
              combineInto(op, acc.data(), row, width * s.c);
            } else {
              for (int64_t x = 0; x < width; ++x)
                combineInto(op, acc.data() + x * s.c, row + x * s.pixelStride, s.c);
            }
          }
          for (int64_t x = 0; x < width; ++x) {
            float* out = dst + d.index(n, 0, x0 + x, 0);
            for (int64_t c = 0; c < d.c; ++c)
              out[c] = reduceFinish(op, acc[size_t(x * s.c + c)], s.h, p.weight);
          }
        }
      }
      break;
    }
    case ReduceAxis::FeatureChannels: {
      const int64_t rows = d.n * d.h;
#pragma omp parallel for schedule(static) if (worthThreads(s))
      for (int64_t r = 0; r < rows; ++r) {
        const int64_t n = r / d.h, y = r % d.h;
        for (int64_t x = 0; x < d.w; ++x) {
          const float* px = src + s.index(n, y, x, 0);
          dst[d.index(n, y, x, 0)] = isArgument(op)
                                         ? float(argumentOfPixel(op, px, s.c))
                                         : reduceFinish(op, reducePixel(op, px, s.c), s.c, p.weight);
        }
      }
      break;
    }
    case ReduceAxis::Spatial: {
      // Every row reduced on its own (in parallel), then the rows of each image combined in order.
      std::vector<float> rowsAcc(size_t(s.n * s.h * s.c));
      const int64_t rows = s.n * s.h;
#pragma omp parallel for schedule(static) if (worthThreads(s))
      for (int64_t r = 0; r < rows; ++r) reduceRow(op, s, src, r / s.h, r % s.h, rowsAcc.data() + r * s.c);
      std::vector<float> acc(size_t(s.c));
      for (int64_t n = 0; n < d.n; ++n) {
        std::fill(acc.begin(), acc.end(), reduceIdentity(op));
        for (int64_t y = 0; y < s.h; ++y)
          combineInto(op, acc.data(), rowsAcc.data() + (n * s.h + y) * s.c, s.c);
        float* out = dst + d.index(n, 0, 0, 0);
        for (int64_t c = 0; c < d.c; ++c) out[c] = reduceFinish(op, acc[size_t(c)], s.w * s.h, p.weight);
      }
      break;
    }
  }
}

// ---- plain: every format through loadAsFloat / storeFromFloat -------------------------------------

bool plainSupports(const ReduceProblem&) { return true; }

void plainRun(const ReduceProblem& p, QueueContext&) {
  const RawView s = p.src.raw();
  const RawView d = p.dst.raw();
  const ReduceOperation op = p.operation;
  const int64_t total = d.n * d.h * d.w * d.c;
#pragma omp parallel for schedule(static) if (worthThreads(p.src))
  for (int64_t i = 0; i < total; ++i) {
    const int64_t c = i % d.c, x = i / d.c % d.w, y = i / (d.c * d.w) % d.h, n = i / (d.c * d.w * d.h);
    float result;
    if (isArgument(op)) {
      ArgumentCandidate best = argumentIdentity(op);
      for (int64_t k = 0; k < s.c; ++k) best = argumentBetter(op, best, {s.load(s.index(n, y, x, k)), k});
      result = float(best.index);
    } else {
      float acc = reduceIdentity(op);
      int64_t count = 0;
      switch (p.axis) {
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
      result = reduceFinish(op, acc, count, p.weight);
    }
    d.store(d.index(n, y, x, c), result);
  }
}

// ---- weights -------------------------------------------------------------------------------------

bool weightsFloat32Supports(const WeightsReduceProblem& p) {
  return isFloat32View(p.data) && isFloat32View(p.weights) && isFloat32View(p.dst);
}

void weightsFloat32Run(const WeightsReduceProblem& p, QueueContext&) {
  const ImageView& a = p.data;
  const ImageView& w = p.weights;
  const ImageView& d = p.dst;
  const float* data = static_cast<const float*>(a.data());
  const float* weights = static_cast<const float*>(w.data());
  float* dst = static_cast<float*>(d.data());
  const bool single = w.w == 1 && w.h == 1;
  const int64_t rows = d.n * d.h;
#pragma omp parallel for schedule(static) if (worthThreads(a))
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t n = r / d.h, y = r % d.h;
    for (int64_t x = 0; x < d.w; ++x) {
      const float* pa = data + a.index(n, y, x, 0);
      const float* pw = weights + (single ? w.index(n, 0, 0, 0) : w.index(n, y, x, 0));
      float dot = 0.0f;
      int64_t nonZero = 0;
      for (int64_t c = 0; c < a.c; ++c) {
        dot += pa[c] * pw[c];
        nonZero += pw[c] != 0.0f;
      }
      dst[d.index(n, y, x, 0)] = weightsFinish(p.divisor, dot, nonZero, a.c);
    }
  }
}

bool weightsPlainSupports(const WeightsReduceProblem&) { return true; }

void weightsPlainRun(const WeightsReduceProblem& p, QueueContext&) {
  const RawView a = p.data.raw();
  const RawView w = p.weights.raw();
  const RawView d = p.dst.raw();
  const bool single = w.w == 1 && w.h == 1;
  const int64_t total = d.n * d.h * d.w;
#pragma omp parallel for schedule(static) if (worthThreads(p.data))
  for (int64_t i = 0; i < total; ++i) {
    const int64_t x = i % d.w, y = i / d.w % d.h, n = i / (d.w * d.h);
    float dot = 0.0f;
    int64_t nonZero = 0;
    for (int64_t c = 0; c < a.c; ++c) {
      const float weight = w.load(single ? w.index(n, 0, 0, c) : w.index(n, y, x, c));
      dot += a.load(a.index(n, y, x, c)) * weight;
      nonZero += weight != 0.0f;
    }
    d.store(d.index(n, y, x, 0), weightsFinish(p.divisor, dot, nonZero, a.c));
  }
}

}  // namespace

ImplementationList<ReduceProblem>& cpuReduceImplementations() {
  static ImplementationList<ReduceProblem> list = {
      {"cpu:float32", float32Supports, float32Run},
      {"cpu:plain", plainSupports, plainRun},
  };
  return list;
}

ImplementationList<WeightsReduceProblem>& cpuWeightsReduceImplementations() {
  static ImplementationList<WeightsReduceProblem> list = {
      {"cpu:float32", weightsFloat32Supports, weightsFloat32Run},
      {"cpu:plain", weightsPlainSupports, weightsPlainRun},
  };
  return list;
}

}  // namespace mpsnn::detail
