// Internal: the interface between the pooling kernels and the backends, and the window arithmetic
// (spec 02) that the CPU and CUDA loop implementations share.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <vector>

#include "kernels/dispatch.h"
#include "kernels/problem.h"

namespace mpsnn::detail {

enum class PoolingOperation : uint32_t { Max, Average, L2Norm };

/// The pooling parameters a backend needs besides the placement in UnaryProblem.
struct PoolingParams {
  PoolingOperation operation = PoolingOperation::Max;
  int64_t kernelWidth = 1, kernelHeight = 1;
  int64_t strideX = 1, strideY = 1;
  int64_t dilationX = 1, dilationY = 1;
  // Average pooling with edgeMode Clamp: zero band around the image. Limited to the window extent,
  // which changes no result (every tap of a window touching the image is then inside the band, and
  // a window touching only the band averages zeros) and keeps the arithmetic in range.
  int64_t zeroPadX = 0, zeroPadY = 0;
};

/// Backend objects a kernel keeps between encodes, one per problem shape (oneDNN primitives).
/// Shared by copies of a kernel; safe to use from several threads.
class PoolingPrimitiveCache {
 public:
  /// The entry for `key`, made by `make()` (which may return null to remember "not possible")
  /// on first use. An exception from `make` stores nothing.
  template <class T, class Make>
  std::shared_ptr<T> findOrMake(const std::vector<int64_t>& key, Make make) {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = entries_.find(key);
    if (it != entries_.end()) return std::static_pointer_cast<T>(it->second);
    if (entries_.size() >= kMaxEntries) entries_.clear();  // a kernel cycling through many shapes
    std::shared_ptr<T> made = make();
    entries_.emplace(key, made);
    return made;
  }

 private:
  static constexpr size_t kMaxEntries = 64;
  std::mutex mutex_;
  std::map<std::vector<int64_t>, std::shared_ptr<void>> entries_;
};

struct PoolingProblem {
  UnaryProblem io;
  PoolingParams pool;
  std::shared_ptr<PoolingPrimitiveCache> primitives;  // never null
};

// ---- window arithmetic ------------------------------------------------------------------------

MPSNN_HD int64_t floorDiv(int64_t a, int64_t b) {  // b > 0
  return a >= 0 ? a / b : -((-a + b - 1) / b);
}
MPSNN_HD int64_t clampIndex(int64_t v, int64_t lo, int64_t hi) { return v < lo ? lo : (v > hi ? hi : v); }

/// The taps of one window along one axis: tap i (0 ≤ i < count) is at coordinate first + i·step.
/// Taps [insideBegin, insideEnd) fall inside the image [0, size); the ones before lie left of it,
/// the ones after right of it. bandCount counts the taps inside [−zeroPad, size − 1 + zeroPad].
/// Working with these ranges instead of visiting every tap makes the cost of a window independent
/// of how far it reaches outside the image.
struct PoolingAxis {
  int64_t first, step, count, size;
  int64_t insideBegin, insideEnd, bandCount;

  /// First tap index whose coordinate is ≥ lo, in [0, count].
  MPSNN_HD int64_t firstAtOrAbove(int64_t lo) const {
    return clampIndex(-floorDiv(first - lo, step), 0, count);  // ceil((lo − first) / step)
  }
  /// One past the last tap index whose coordinate is ≤ hi, in [0, count].
  MPSNN_HD int64_t endAtOrBelow(int64_t hi) const {
    return clampIndex(floorDiv(hi - first, step) + 1, 0, count);
  }
  MPSNN_HD int64_t insideCount() const { return insideEnd - insideBegin; }

  /// Clamp-mode reads: tap indices [clampBegin(), clampEnd()) stand for all taps, the first one
  /// (when some taps lie left of the image) for all left taps, which read pixel 0, the last one
  /// (when some lie right) for all right taps, which read pixel size − 1.
  MPSNN_HD int64_t clampBegin() const { return insideBegin > 0 ? insideBegin - 1 : 0; }
  MPSNN_HD int64_t clampEnd() const { return insideEnd < count ? insideEnd + 1 : count; }
  /// Coordinate a tap reads in Clamp mode.
  MPSNN_HD int64_t clampedCoordinate(int64_t i) const { return clampIndex(first + i * step, 0, size - 1); }
  /// How many taps tap index i of [clampBegin, clampEnd) stands for.
  MPSNN_HD int64_t clampWeight(int64_t i) const {
    return i < insideBegin ? insideBegin : (i >= insideEnd ? count - insideEnd : 1);
  }
};

/// The axis of the window centred at `centre` (spec 02 §1.1) over an image extent `size`.
MPSNN_HD PoolingAxis poolingAxis(int64_t centre, int64_t kernel, int64_t dilation, int64_t size,
                                 int64_t zeroPad) {
  PoolingAxis a;
  const int64_t extent = (kernel - 1) * dilation + 1;
  a.first = centre - extent / 2;
  a.step = dilation;
  a.count = kernel;
  a.size = size;
  a.insideBegin = a.firstAtOrAbove(0);
  a.insideEnd = a.endAtOrBelow(size - 1);
  if (a.insideEnd < a.insideBegin) a.insideEnd = a.insideBegin;  // cannot happen; keeps ranges well formed
  a.bandCount = a.endAtOrBelow(size - 1 + zeroPad) - a.firstAtOrAbove(-zeroPad);
  return a;
}

MPSNN_HD float negativeInfinity() { return bitsFloat(0xff800000u); }

/// One pooled value (spec 02 §2–§5) in float32. `load(y, x)` returns the source value at an
/// in-image position of the channel being pooled.
template <class Load>
MPSNN_HD float poolWindow(PoolingOperation op, ImageEdgeMode edge, const PoolingAxis& ax,
                          const PoolingAxis& ay, const Load& load) {
  const bool clampedReads = edge == ImageEdgeMode::Clamp && op != PoolingOperation::Average;
  const int64_t y0 = clampedReads ? ay.clampBegin() : ay.insideBegin,
                y1 = clampedReads ? ay.clampEnd() : ay.insideEnd;
  const int64_t x0 = clampedReads ? ax.clampBegin() : ax.insideBegin,
                x1 = clampedReads ? ax.clampEnd() : ax.insideEnd;
  switch (op) {
    case PoolingOperation::Max: {
      float m = negativeInfinity();
      for (int64_t j = y0; j < y1; ++j) {
        const int64_t sy = ay.clampedCoordinate(j);
        for (int64_t i = x0; i < x1; ++i) {
          const float v = load(sy, ax.clampedCoordinate(i));
          if (v != v) return v;  // NaN propagates (spec 02 §3 CHOICE)
          m = v > m ? v : m;
        }
      }
      // Zero mode: every out-of-image tap reads 0.
      if (!clampedReads && ax.insideCount() * ay.insideCount() < ax.count * ay.count) m = m > 0.0f ? m : 0.0f;
      return m;
    }
    case PoolingOperation::Average: {
      float sum = 0.0f;
      for (int64_t j = y0; j < y1; ++j)
        for (int64_t i = x0; i < x1; ++i) sum += load(ay.first + j * ay.step, ax.first + i * ax.step);
      const int64_t divisor =
          edge == ImageEdgeMode::Clamp ? ax.bandCount * ay.bandCount : ax.count * ay.count;
      return divisor > 0 ? sum / float(divisor) : 0.0f;
    }
    default: {  // L2Norm
      float sum = 0.0f;
      for (int64_t j = y0; j < y1; ++j) {
        const int64_t sy = ay.clampedCoordinate(j);
        const int64_t wy = clampedReads ? ay.clampWeight(j) : 1;
        for (int64_t i = x0; i < x1; ++i) {
          const float v = load(sy, ax.clampedCoordinate(i));
          const int64_t w = clampedReads ? wy * ax.clampWeight(i) : 1;
          sum += float(w) * (v * v);
        }
      }
      return sqrtf(sum);
    }
  }
}

/// Reads one channel of one image of a RawView (any format).
struct RawChannelLoad {
  RawView view;
  int64_t n, c;
  MPSNN_HD float operator()(int64_t y, int64_t x) const { return view.load(view.index(n, y, x, c)); }
};

ImplementationList<PoolingProblem>& cpuPoolingImplementations();
#if defined(MPSNN_HAVE_CUDA)
ImplementationList<PoolingProblem>& cudaPoolingImplementations();
#endif

}  // namespace mpsnn::detail
