// CPU reshape, slice, pad and concatenation: memcpy of contiguous runs (whole images, rows or pixels)
// where the views allow, a same-format element gather that moves storage bits unchanged (edge modes,
// channel padding, any strides), and a plain loop converting between any two formats.
#include <omp.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "kernels/reshape_impl.h"

namespace mpsnn::detail {
namespace {

/// Copies the runs of `plan`, in pieces of at most 64 KiB so that a few long runs still use every core.
void copyRuns(const RunCopy& plan) {
  constexpr int64_t kPiece = int64_t(1) << 16;
  const int64_t runs = plan.runs();
  const int64_t piecesPerRun = (plan.runBytes + kPiece - 1) / kPiece;
  const int64_t pieces = runs * piecesPerRun;
#pragma omp parallel for schedule(static) if (double(runs) * double(plan.runBytes) > 262144.0)
  for (int64_t t = 0; t < pieces; ++t) {
    const int64_t run = t / piecesPerRun, piece = t % piecesPerRun;
    const int64_t c = run % plan.count[2], b = run / plan.count[2] % plan.count[1],
                  a = run / (plan.count[2] * plan.count[1]);
    const int64_t begin = piece * kPiece;
    const int64_t bytes = std::min(kPiece, plan.runBytes - begin);
    std::memcpy(plan.dst + a * plan.dstStride[0] + b * plan.dstStride[1] + c * plan.dstStride[2] + begin,
                plan.src + a * plan.srcStride[0] + b * plan.srcStride[1] + c * plan.srcStride[2] + begin,
                size_t(bytes));
  }
}

bool worthThreads(const ImageView& d) {
  return double(d.n) * double(d.h) * double(d.w) * double(d.c) > 32768.0;
}

/// Calls fn.template operator()<T>() with T the unsigned integer of the storage format's element size.
template <class Fn>
void dispatchElementSize(ImageFeatureChannelFormat format, Fn&& fn) {
  switch (bytesPerChannel(format)) {
    case 1:
      fn.template operator()<uint8_t>();
      break;
    case 2:
      fn.template operator()<uint16_t>();
      break;
    default:
      fn.template operator()<uint32_t>();
      break;
  }
}

// ---- reshape ---------------------------------------------------------------------------------------

bool reshapeCopySupports(const ReshapeProblem& p) { return reshapeIsSpanCopy(p); }
void reshapeCopyRun(const ReshapeProblem& p, QueueContext&) { copyRuns(reshapeSpanCopy(p)); }

bool reshapeGatherSupports(const ReshapeProblem& p) { return p.src.format == p.dst.format; }

void reshapeGatherRun(const ReshapeProblem& p, QueueContext&) {
  const ImageView& s = p.src;
  const ImageView& d = p.dst;
  dispatchElementSize(s.format, [&]<class T>() {
    const T* src = static_cast<const T*>(s.data());
    T* dst = static_cast<T*>(d.data());
    const int64_t rows = d.n * d.h;
#pragma omp parallel for schedule(static) if (worthThreads(d))
    for (int64_t r = 0; r < rows; ++r) {
      const int64_t n = r / d.h, y2 = r % d.h;
      // Walk the destination row in linear order; (y, x, c) of the source advance with it.
      int64_t L = y2 * d.w * d.c;
      int64_t c = L % s.c, x = L / s.c % s.w, y = L / s.c / s.w;
      for (int64_t x2 = 0; x2 < d.w; ++x2) {
        T* out = dst + d.index(n, y2, x2, 0);
        for (int64_t c2 = 0; c2 < d.c; ++c2) {
          out[c2] = src[s.index(n, y, x, c)];
          if (++c == s.c) {
            c = 0;
            if (++x == s.w) {
              x = 0;
              ++y;
            }
          }
        }
      }
    }
  });
}

bool reshapePlainSupports(const ReshapeProblem&) { return true; }

void reshapePlainRun(const ReshapeProblem& p, QueueContext&) {
  const RawView s = p.src.raw();
  const RawView d = p.dst.raw();
  const int64_t perImage = d.h * d.w * d.c, total = d.n * perImage;
#pragma omp parallel for schedule(static) if (worthThreads(p.dst))
  for (int64_t i = 0; i < total; ++i) {
    const int64_t n = i / perImage, L = i % perImage;
    const int64_t c2 = L % d.c, x2 = L / d.c % d.w, y2 = L / d.c / d.w;
    const int64_t c = L % s.c, x = L / s.c % s.w, y = L / s.c / s.w;
    d.store(d.index(n, y2, x2, c2), s.load(s.index(n, y, x, c)));
  }
}

// ---- slice, pad, concatenation --------------------------------------------------------------------

bool padCopySupports(const PadProblem& p) { return padIsPlainCopy(p); }

void padCopyRun(const PadProblem& p, QueueContext&) {
  ImageView src, dst;
  plainCopyViews(p, src, dst);
  copyRuns(planRunCopy(src, dst));
}

/// For each destination channel j: the source channel it reads, or −1 for the fill.
std::vector<int64_t> channelMap(const PadProblem& p) {
  std::vector<int64_t> map(size_t(p.io.dst.c));
  for (int64_t j = 0; j < p.io.dst.c; ++j) {
    int64_t t = j - p.channelsBefore;
    map[size_t(j)] = resolvePadCoordinate(t, p.io.src.c, p.io.edgeMode) ? t : -1;
  }
  return map;
}

bool padGatherSupports(const PadProblem& p) { return p.io.src.format == p.io.dst.format; }

void padGatherRun(const PadProblem& p, QueueContext&) {
  const ImageView& s = p.io.src;
  const ImageView& d = p.io.dst;
  const std::vector<int64_t> map = channelMap(p);
  dispatchElementSize(s.format, [&]<class T>() {
    // The fill of each channel as storage bits (0 for edgeMode Zero).
    std::vector<T> fill(size_t(d.c));
    for (int64_t j = 0; j < d.c; ++j) storeFromFloat(fill.data(), j, d.format, padFill(p, j));
    const T* src = static_cast<const T*>(s.data());
    T* dst = static_cast<T*>(d.data());
    const int64_t rows = d.n * d.h;
#pragma omp parallel for schedule(static) if (worthThreads(d))
    for (int64_t r = 0; r < rows; ++r) {
      const int64_t n = r / d.h, y = r % d.h;
      int64_t sy = p.io.offsetY + y;
      const bool rowInside = resolvePadCoordinate(sy, s.h, p.io.edgeMode);
      for (int64_t x = 0; x < d.w; ++x) {
        int64_t sx = p.io.offsetX + x;
        const bool inside = rowInside && resolvePadCoordinate(sx, s.w, p.io.edgeMode);
        T* out = dst + d.index(n, y, x, 0);
        if (!inside) {
          for (int64_t j = 0; j < d.c; ++j) out[j] = fill[size_t(j)];
          continue;
        }
        const T* in = src + s.index(n, sy, sx, 0);
        for (int64_t j = 0; j < d.c; ++j) out[j] = map[size_t(j)] >= 0 ? in[map[size_t(j)]] : fill[size_t(j)];
      }
    }
  });
}

bool padPlainSupports(const PadProblem&) { return true; }

void padPlainRun(const PadProblem& p, QueueContext&) {
  const RawView s = p.io.src.raw();
  const RawView d = p.io.dst.raw();
  const int64_t total = d.n * d.h * d.w * d.c;
#pragma omp parallel for schedule(static) if (worthThreads(p.io.dst))
  for (int64_t i = 0; i < total; ++i) {
    const int64_t j = i % d.c, x = i / d.c % d.w, y = i / (d.c * d.w) % d.h, n = i / (d.c * d.w * d.h);
    int64_t sy = p.io.offsetY + y, sx = p.io.offsetX + x, t = j - p.channelsBefore;
    const bool inside = resolvePadCoordinate(sy, s.h, p.io.edgeMode) &&
                        resolvePadCoordinate(sx, s.w, p.io.edgeMode) &&
                        resolvePadCoordinate(t, s.c, p.io.edgeMode);
    d.store(d.index(n, y, x, j), inside ? s.load(s.index(n, sy, sx, t)) : padFill(p, j));
  }
}

}  // namespace

ImplementationList<ReshapeProblem>& cpuReshapeImplementations() {
  static ImplementationList<ReshapeProblem> list = {
      {"cpu:copy", reshapeCopySupports, reshapeCopyRun},
      {"cpu:gather", reshapeGatherSupports, reshapeGatherRun},
      {"cpu:plain", reshapePlainSupports, reshapePlainRun},
  };
  return list;
}

ImplementationList<PadProblem>& cpuPadImplementations() {
  static ImplementationList<PadProblem> list = {
      {"cpu:copy", padCopySupports, padCopyRun},
      {"cpu:gather", padGatherSupports, padGatherRun},
      {"cpu:plain", padPlainSupports, padPlainRun},
  };
  return list;
}

}  // namespace mpsnn::detail
