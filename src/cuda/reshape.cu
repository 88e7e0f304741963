// CUDA reshape, slice, pad and concatenation. Fast paths: copies of contiguous byte runs (whole
// images, rows or pixels, see planRunCopy) with the widest vector word (up to 16 bytes) the run length,
// strides and addresses allow, one flat kernel when everything is one run; and a same-format element
// gather that moves storage bits unchanged (edge modes, channel padding, any strides). A plain kernel
// converts between any two formats.
#include <cuda_fp16.h>

#include <algorithm>

#include "cuda/context.h"
#include "kernels/reshape_impl.h"

namespace mpsnn::detail {
namespace {

constexpr int kThreads = 256;

inline unsigned blocksFor(int64_t work) {
  const int64_t blocks = (work + kThreads - 1) / kThreads;
  return unsigned(blocks < 1 ? 1 : (blocks > (int64_t(1) << 20) ? (int64_t(1) << 20) : blocks));
}

// ---- run copies -----------------------------------------------------------------------------------

/// Division by a fixed divisor below 2^31 through a multiply-high (Granlund–Montgomery): valid for
/// dividends below 2^31.
struct FastDivider {
  uint32_t divisor = 1, multiplier = 0, shift = 0;
  FastDivider() = default;
  explicit FastDivider(uint32_t d) : divisor(d) {
    if (d == 1) return;
    uint32_t log2Ceil = 0;
    while ((uint64_t(1) << log2Ceil) < d) ++log2Ceil;
    const uint32_t p = 31 + log2Ceil;
    multiplier = uint32_t(((uint64_t(1) << p) + d - 1) / d);
    shift = p - 32;
  }
  __device__ __forceinline__ void divmod(uint32_t n, uint32_t& q, uint32_t& r) const {
    q = divisor == 1 ? n : (__umulhi(n, multiplier) >> shift);
    r = n - q * divisor;
  }
};
/// Plain 64-bit division, for copies too large for FastDivider.
struct WideDivider {
  uint64_t divisor = 1;
  WideDivider() = default;
  explicit WideDivider(uint64_t d) : divisor(d) {}
  __device__ __forceinline__ void divmod(uint64_t n, uint64_t& q, uint64_t& r) const {
    q = n / divisor;
    r = n - q * divisor;
  }
};

struct RunStrides {
  int64_t src[3], dst[3];
};

/// Word i of the copy: run = i / wordsPerRun, its (a, b, c) from the run counts. One word per thread:
/// a warp then reads consecutive words of a run (several words per thread measured slower on H100,
/// as the warp's accesses spread over several runs).
template <class Word, class Divider, class Index>
__global__ void copyRunsKernel(const char* __restrict__ src, char* __restrict__ dst, Index totalWords,
                               Divider wordsPerRun, Divider innerCount, Divider middleCount,
                               RunStrides strides) {
  const Index step = Index(gridDim.x) * blockDim.x;
  for (Index i = Index(blockIdx.x) * blockDim.x + threadIdx.x; i < totalWords; i += step) {
    Index run, word, outer, c, a, b;
    wordsPerRun.divmod(i, run, word);
    innerCount.divmod(run, outer, c);
    middleCount.divmod(outer, a, b);
    const int64_t from =
        int64_t(a) * strides.src[0] + int64_t(b) * strides.src[1] + int64_t(c) * strides.src[2];
    const int64_t to =
        int64_t(a) * strides.dst[0] + int64_t(b) * strides.dst[1] + int64_t(c) * strides.dst[2];
    reinterpret_cast<Word*>(dst + to)[word] = reinterpret_cast<const Word*>(src + from)[word];
  }
}

/// One contiguous run: a flat grid-stride copy.
template <class Word>
__global__ void copyFlatKernel(const Word* __restrict__ src, Word* __restrict__ dst, int64_t words) {
  const int64_t step = int64_t(gridDim.x) * blockDim.x;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < words; i += step) dst[i] = src[i];
}

/// The widest word (16, 8, 4, 2 or 1 bytes) that divides the run length, every stride that moves and
/// both base addresses.
int64_t wordBytes(const RunCopy& plan) {
  uint64_t bits =
      uint64_t(plan.runBytes) | reinterpret_cast<uintptr_t>(plan.src) | reinterpret_cast<uintptr_t>(plan.dst);
  for (int k = 0; k < 3; ++k)
    if (plan.count[k] > 1) bits |= uint64_t(plan.srcStride[k]) | uint64_t(plan.dstStride[k]);
  for (int64_t w : {16, 8, 4, 2})
    if (bits % uint64_t(w) == 0) return w;
  return 1;
}

template <class Word>
void copyRunsAs(const RunCopy& plan, cudaStream_t stream) {
  const int64_t wordsPerRun = plan.runBytes / int64_t(sizeof(Word));
  const int64_t runs = plan.runs();
  if (runs == 1) {
    copyFlatKernel<Word><<<blocksFor(wordsPerRun), kThreads, 0, stream>>>(
        reinterpret_cast<const Word*>(plan.src), reinterpret_cast<Word*>(plan.dst), wordsPerRun);
    MPSNN_CUDA_LAUNCH_CHECK();
    return;
  }
  const RunStrides strides{{plan.srcStride[0], plan.srcStride[1], plan.srcStride[2]},
                           {plan.dstStride[0], plan.dstStride[1], plan.dstStride[2]}};
  const int64_t total = wordsPerRun * runs;
  if (total < (int64_t(1) << 31)) {
    copyRunsKernel<Word, FastDivider, uint32_t><<<blocksFor(total), kThreads, 0, stream>>>(
        plan.src, plan.dst, uint32_t(total), FastDivider(uint32_t(wordsPerRun)),
        FastDivider(uint32_t(plan.count[2])), FastDivider(uint32_t(plan.count[1])), strides);
  } else {
    copyRunsKernel<Word, WideDivider, uint64_t><<<blocksFor(total), kThreads, 0, stream>>>(
        plan.src, plan.dst, uint64_t(total), WideDivider(uint64_t(wordsPerRun)),
        WideDivider(uint64_t(plan.count[2])), WideDivider(uint64_t(plan.count[1])), strides);
  }
  MPSNN_CUDA_LAUNCH_CHECK();
}

void copyRuns(const RunCopy& plan, cudaStream_t stream) {
  switch (wordBytes(plan)) {
    case 16:
      copyRunsAs<uint4>(plan, stream);
      break;
    case 8:
      copyRunsAs<uint2>(plan, stream);
      break;
    case 4:
      copyRunsAs<uint32_t>(plan, stream);
      break;
    case 2:
      copyRunsAs<uint16_t>(plan, stream);
      break;
    default:
      copyRunsAs<uint8_t>(plan, stream);
      break;
  }
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
void reshapeCopyRun(const ReshapeProblem& p, QueueContext& ctx) {
  copyRuns(reshapeSpanCopy(p), cudaContext(ctx).stream());
}

/// Destination element i → its linear index L in the image → the source element with that index.
template <class T>
__global__ void reshapeGatherKernel(RawView s, RawView d) {
  const T* src = static_cast<const T*>(s.data);
  T* dst = static_cast<T*>(d.data);
  const int64_t perImage = d.h * d.w * d.c, total = d.n * perImage;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total;
       i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t n = i / perImage, L = i % perImage;
    const int64_t c2 = L % d.c, x2 = L / d.c % d.w, y2 = L / d.c / d.w;
    const int64_t c = L % s.c, x = L / s.c % s.w, y = L / s.c / s.w;
    dst[d.index(n, y2, x2, c2)] = src[s.index(n, y, x, c)];
  }
}

bool reshapeGatherSupports(const ReshapeProblem& p) { return p.src.format == p.dst.format; }
void reshapeGatherRun(const ReshapeProblem& p, QueueContext& ctx) {
  const RawView d = p.dst.raw();
  dispatchElementSize(d.format, [&]<class T>() {
    reshapeGatherKernel<T>
        <<<blocksFor(d.n * d.h * d.w * d.c), kThreads, 0, cudaContext(ctx).stream()>>>(p.src.raw(), d);
  });
  MPSNN_CUDA_LAUNCH_CHECK();
}

__global__ void reshapePlainKernel(RawView s, RawView d) {
  const int64_t perImage = d.h * d.w * d.c, total = d.n * perImage;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total;
       i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t n = i / perImage, L = i % perImage;
    const int64_t c2 = L % d.c, x2 = L / d.c % d.w, y2 = L / d.c / d.w;
    const int64_t c = L % s.c, x = L / s.c % s.w, y = L / s.c / s.w;
    d.store(d.index(n, y2, x2, c2), s.load(s.index(n, y, x, c)));
  }
}

bool reshapePlainSupports(const ReshapeProblem&) { return true; }
void reshapePlainRun(const ReshapeProblem& p, QueueContext& ctx) {
  const RawView d = p.dst.raw();
  reshapePlainKernel<<<blocksFor(d.n * d.h * d.w * d.c), kThreads, 0, cudaContext(ctx).stream()>>>(
      p.src.raw(), d);
  MPSNN_CUDA_LAUNCH_CHECK();
}

// ---- slice, pad, concatenation ---------------------------------------------------------------------

/// The placement of a PadProblem in the form kernels take (no owning pointers).
struct PadPlacement {
  int64_t offsetX, offsetY, channelsBefore;
  ImageEdgeMode edge;
  float fillValue;
  const float* fillValues;  // device memory or null
};
PadPlacement placementOf(const PadProblem& p) {
  return {p.io.offsetX, p.io.offsetY, p.channelsBefore, p.io.edgeMode, p.fillValue, p.fillValues};
}
__device__ __forceinline__ float fillOf(const PadPlacement& p, int64_t j) {
  return p.edge != ImageEdgeMode::Constant ? 0.0f : (p.fillValues ? p.fillValues[j] : p.fillValue);
}

bool padCopySupports(const PadProblem& p) { return padIsPlainCopy(p); }
void padCopyRun(const PadProblem& p, QueueContext& ctx) {
  ImageView src, dst;
  plainCopyViews(p, src, dst);
  copyRuns(planRunCopy(src, dst), cudaContext(ctx).stream());
}

/// The destination shape (c, w, h) as dividers: element i → (n, y, x, c).
template <class Divider>
struct ElementDividers {
  Divider c, w, h;
};
template <class Divider, class Index>
__device__ __forceinline__ void elementOf(const ElementDividers<Divider>& div, Index i, Index& n, Index& y,
                                          Index& x, Index& c) {
  Index pixel, row;
  div.c.divmod(i, pixel, c);
  div.w.divmod(pixel, row, x);
  div.h.divmod(row, n, y);
}

/// One thread per destination element, storage bits moved unchanged; the fill converted in place.
template <class T, class Divider, class Index>
__global__ void padGatherKernel(RawView s, RawView d, PadPlacement p, ElementDividers<Divider> div,
                                Index total) {
  const T* src = static_cast<const T*>(s.data);
  T* dst = static_cast<T*>(d.data);
  for (Index i = Index(blockIdx.x) * blockDim.x + threadIdx.x; i < total;
       i += Index(gridDim.x) * blockDim.x) {
    Index n, y, x, j;
    elementOf(div, i, n, y, x, j);
    int64_t sy = p.offsetY + y, sx = p.offsetX + x, t = j - p.channelsBefore;
    const bool inside = resolvePadCoordinate(sy, s.h, p.edge) && resolvePadCoordinate(sx, s.w, p.edge) &&
                        resolvePadCoordinate(t, s.c, p.edge);
    T value;
    if (inside)
      value = src[s.index(n, sy, sx, t)];
    else
      storeFromFloat(&value, 0, d.format, fillOf(p, j));
    dst[d.index(n, y, x, j)] = value;
  }
}

bool padGatherSupports(const PadProblem& p) { return p.io.src.format == p.io.dst.format; }
void padGatherRun(const PadProblem& p, QueueContext& ctx) {
  const RawView d = p.io.dst.raw();
  const int64_t total = d.n * d.h * d.w * d.c;
  auto stream = cudaContext(ctx).stream();
  dispatchElementSize(d.format, [&]<class T>() {
    if (total < (int64_t(1) << 31)) {
      const ElementDividers<FastDivider> div{FastDivider(uint32_t(d.c)), FastDivider(uint32_t(d.w)),
                                             FastDivider(uint32_t(d.h))};
      padGatherKernel<T><<<blocksFor(total), kThreads, 0, stream>>>(p.io.src.raw(), d, placementOf(p), div,
                                                                    uint32_t(total));
    } else {
      const ElementDividers<WideDivider> div{WideDivider(uint64_t(d.c)), WideDivider(uint64_t(d.w)),
                                             WideDivider(uint64_t(d.h))};
      padGatherKernel<T><<<blocksFor(total), kThreads, 0, stream>>>(p.io.src.raw(), d, placementOf(p), div,
                                                                    uint64_t(total));
    }
  });
  MPSNN_CUDA_LAUNCH_CHECK();
}

__global__ void padPlainKernel(RawView s, RawView d, PadPlacement p) {
  const int64_t total = d.n * d.h * d.w * d.c;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total;
       i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t j = i % d.c, x = i / d.c % d.w, y = i / (d.c * d.w) % d.h, n = i / (d.c * d.w * d.h);
    int64_t sy = p.offsetY + y, sx = p.offsetX + x, t = j - p.channelsBefore;
    const bool inside = resolvePadCoordinate(sy, s.h, p.edge) && resolvePadCoordinate(sx, s.w, p.edge) &&
                        resolvePadCoordinate(t, s.c, p.edge);
    d.store(d.index(n, y, x, j), inside ? s.load(s.index(n, sy, sx, t)) : fillOf(p, j));
  }
}

bool padPlainSupports(const PadProblem&) { return true; }
void padPlainRun(const PadProblem& p, QueueContext& ctx) {
  const RawView d = p.io.dst.raw();
  padPlainKernel<<<blocksFor(d.n * d.h * d.w * d.c), kThreads, 0, cudaContext(ctx).stream()>>>(
      p.io.src.raw(), d, placementOf(p));
  MPSNN_CUDA_LAUNCH_CHECK();
}

}  // namespace

ImplementationList<ReshapeProblem>& cudaReshapeImplementations() {
  static ImplementationList<ReshapeProblem> list = {
      {"cuda:copy", reshapeCopySupports, reshapeCopyRun},
      {"cuda:gather", reshapeGatherSupports, reshapeGatherRun},
      {"cuda:plain", reshapePlainSupports, reshapePlainRun},
  };
  return list;
}

ImplementationList<PadProblem>& cudaPadImplementations() {
  static ImplementationList<PadProblem> list = {
      {"cuda:copy", padCopySupports, padCopyRun},
      {"cuda:gather", padGatherSupports, padGatherRun},
      {"cuda:plain", padPlainSupports, padPlainRun},
  };
  return list;
}

}  // namespace mpsnn::detail
