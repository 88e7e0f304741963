// Internal: the interface between NNReshape / NNSlice / NNPad / NNConcatenation (spec 06 §5–§8) and
// the backends: the edge rules of NNPad, the reshape index map, and the plan that turns a copy between
// two strided views into a few runs of contiguous bytes.
#pragma once
#include <cstdint>

#include "core/format.h"
#include "kernels/dispatch.h"
#include "kernels/problem.h"

namespace mpsnn::detail {

/// NNReshape: each image of `src` (n × H × W × C) is laid out row-major (channels fastest) into the
/// same image of `dst` (n × H' × W' × C'); H·W·C = H'·W'·C' (validated).
struct ReshapeProblem {
  ImageView src, dst;
};

/// NNSlice, NNPad and NNConcatenation: `io` as every unary kernel (io.src the processed source images,
/// full width and height, c = C_read channels from the source channel offset; io.dst the written
/// region, c = channels written). Destination channel j reads slice position j − channelsBefore;
/// out-of-range positions (spatial or channel) follow io.edgeMode, all five modes (spec 06 §7).
struct PadProblem {
  UnaryProblem io;
  int64_t channelsBefore = 0;
  float fillValue = 0.0f;             // edgeMode Constant without an array
  const float* fillValues = nullptr;  // edgeMode Constant: one per destination channel, device memory
};

/// Resolves coordinate `p` on an axis of `length` by the edge rule (spec 00 §1.5). False when the
/// value is not a source value (Zero → 0, Constant → the fill). |p| ≤ 2^62 (validated).
MPSNN_HD bool resolvePadCoordinate(int64_t& p, int64_t length, ImageEdgeMode mode) {
  if (p >= 0 && p < length) return true;
  switch (mode) {
    case ImageEdgeMode::Clamp:
      p = p < 0 ? 0 : length - 1;
      return true;
    case ImageEdgeMode::Mirror: {  // reflect about the edge pixel's centre: period 2L − 2
      if (length == 1) {
        p = 0;
        return true;
      }
      const int64_t period = 2 * length - 2;
      int64_t q = (p < 0 ? -p : p) % period;
      p = q >= length ? period - q : q;
      return true;
    }
    case ImageEdgeMode::MirrorWithEdge: {  // reflect about the edge, repeating it: period 2L
      const int64_t period = 2 * length;
      int64_t q = p % period;
      if (q < 0) q += period;
      p = q >= length ? period - 1 - q : q;
      return true;
    }
    default:
      return false;
  }
}

/// The fill of destination channel `j` (position within the channels written) for edgeMode Constant.
MPSNN_HD float padFill(const PadProblem& p, int64_t j) {
  return p.io.edgeMode != ImageEdgeMode::Constant ? 0.0f : (p.fillValues ? p.fillValues[j] : p.fillValue);
}

/// True when the problem is a plain copy: every read inside the source, no channel padding, the same
/// storage format on both sides.
inline bool padIsPlainCopy(const PadProblem& p) {
  const ImageView& s = p.io.src;
  const ImageView& d = p.io.dst;
  return s.format == d.format && p.channelsBefore == 0 && d.c <= s.c && p.io.offsetX >= 0 &&
         p.io.offsetY >= 0 && p.io.offsetX <= s.w - d.w && p.io.offsetY <= s.h - d.h;
}

/// A copy of runs of contiguous bytes: for a < count[0], b < count[1], c < count[2], `runBytes` bytes
/// from src + a·srcStride[0] + b·srcStride[1] + c·srcStride[2] to the same place relative to dst with
/// dstStride. Strides in bytes.
struct RunCopy {
  const char* src = nullptr;
  char* dst = nullptr;
  int64_t runBytes = 0;
  int64_t count[3] = {1, 1, 1};
  int64_t srcStride[3] = {0, 0, 0};
  int64_t dstStride[3] = {0, 0, 0};
  int64_t runs() const { return count[0] * count[1] * count[2]; }
};

/// The copy of every element of `src` to the same (n, y, x, c) of `dst` (equal shapes and formats) as
/// runs: adjacent dimensions whose strides make them contiguous on both sides merge into the run.
inline RunCopy planRunCopy(const ImageView& src, const ImageView& dst) {
  const int64_t e = int64_t(bytesPerChannel(src.format));
  RunCopy plan;
  plan.src = static_cast<const char*>(src.data());
  plan.dst = static_cast<char*>(dst.data());
  // Dimensions from the innermost: channels (stride 1) form the first run.
  struct Dim {
    int64_t count, srcStride, dstStride;
  };
  Dim dims[3] = {{src.w, src.pixelStride, dst.pixelStride},
                 {src.h, src.rowStride, dst.rowStride},
                 {src.n, src.imageStride, dst.imageStride}};
  int64_t runElements = src.c;
  int kept = 0;
  Dim outer[3];
  bool contiguous = true;  // so far every inner dimension merged
  for (const Dim& d : dims) {
    if (d.count == 1) continue;  // a dimension of one element never moves the address
    if (contiguous && d.srcStride == runElements && d.dstStride == runElements) {
      runElements *= d.count;
      continue;
    }
    contiguous = false;
    // Merge with the previous kept dimension when this one steps exactly over it on both sides.
    if (kept > 0 && d.srcStride == outer[kept - 1].srcStride * outer[kept - 1].count &&
        d.dstStride == outer[kept - 1].dstStride * outer[kept - 1].count) {
      outer[kept - 1].count *= d.count;
      continue;
    }
    outer[kept++] = d;
  }
  plan.runBytes = runElements * e;
  // count[2] is the innermost kept dimension.
  for (int i = 0; i < kept; ++i) {
    plan.count[2 - i] = outer[i].count;
    plan.srcStride[2 - i] = outer[i].srcStride * e;
    plan.dstStride[2 - i] = outer[i].dstStride * e;
  }
  return plan;
}

/// Source and destination of a plain-copy PadProblem (padIsPlainCopy) as two views of equal shape.
inline void plainCopyViews(const PadProblem& p, ImageView& src, ImageView& dst) {
  dst = p.io.dst;
  src = p.io.src;
  src.elementOffset += uint64_t(src.index(0, p.io.offsetY, p.io.offsetX, 0));
  src.h = dst.h;
  src.w = dst.w;
  src.c = dst.c;
}

/// True when each image of both views of a ReshapeProblem is one contiguous span (the reshape is then
/// a copy of those spans).
inline bool reshapeIsSpanCopy(const ReshapeProblem& p) {
  auto imageContiguous = [](const ImageView& v) { return v.pixelStride == v.c && v.rowStride == v.w * v.c; };
  return p.src.format == p.dst.format && imageContiguous(p.src) && imageContiguous(p.dst);
}
/// The span copy of a reshapeIsSpanCopy problem.
inline RunCopy reshapeSpanCopy(const ReshapeProblem& p) {
  ImageView s = p.src, d = p.dst;
  // Each image as one row of H·W·C elements: the plan then merges images when they are adjacent.
  const int64_t elements = s.h * s.w * s.c;
  s.h = d.h = 1;
  s.w = d.w = 1;
  s.c = d.c = elements;
  s.pixelStride = s.rowStride = d.pixelStride = d.rowStride = elements;
  return planRunCopy(s, d);
}

ImplementationList<ReshapeProblem>& cpuReshapeImplementations();
ImplementationList<PadProblem>& cpuPadImplementations();
#if defined(MPSNN_HAVE_CUDA)
ImplementationList<ReshapeProblem>& cudaReshapeImplementations();
ImplementationList<PadProblem>& cudaPadImplementations();
#endif

}  // namespace mpsnn::detail
