// Internal: the interface between the normalization kernels and the backends, and the float32
// arithmetic of spec 04 §3–§7 that the CPU and CUDA implementations share.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <vector>

#include "kernels/dispatch.h"
#include "kernels/neuron_math.h"
#include "kernels/problem.h"

namespace mpsnn::detail {

/// Backend objects a kernel keeps between encodes, one per problem shape (oneDNN primitives).
/// Shared by copies of a kernel; safe to use from several threads.
class NormalizationPrimitiveCache {
 public:
  /// The entry for `key`, made by `make()` (which may return null to remember "not possible") on
  /// first use. An exception from `make` stores nothing.
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

/// True when every source pixel the destination reads (window centres) lies inside the source image.
inline bool centresInside(const UnaryProblem& p) {
  return p.offsetX >= 0 && p.offsetY >= 0 && p.offsetX + p.dst.w <= p.src.w && p.offsetY + p.dst.h <= p.src.h;
}

/// `base^beta` with exact shortcuts for the common exponents (sqrt is correctly rounded; adding
/// +0 turns sqrt(−0) = −0 into pow's +0).
MPSNN_HD float powBeta(float base, float beta) {
  if (beta == 1.0f) return base;
  if (beta == 0.5f) return sqrtf(base) + 0.0f;
  if (beta == 0.75f) {
    const float r = sqrtf(base) + 0.0f;
    return r * sqrtf(r);
  }
  return powf(base, beta);
}

// ---- CNNCrossChannelNormalization (§3) -----------------------------------------------------------

struct CrossChannelParams {
  int64_t kernelSize = 5;
  int64_t below = 2, above = 2;  // Q(k) = [k − below, k + above] ∩ [0, D − 1]
  float alpha = 1.0f;            // as set on the kernel (oneDNN divides by N itself)
  float alphaOverSize = 0.2f;    // alpha / N
  float beta = 5.0f, delta = 1.0f;
};

/// `io.src.c == io.dst.c` = D.
struct CrossChannelProblem {
  UnaryProblem io;
  CrossChannelParams lrn;
  std::shared_ptr<NormalizationPrimitiveCache> primitives;  // never null
};

/// One pixel: `load(k)` returns channel k, `store(k, v)` writes output k. Sums of squares in float32
/// tap by tap (the plain implementations' way).
template <class Load, class Store>
MPSNN_HD void crossChannelPixel(int64_t channels, const CrossChannelParams& p, const Load& load,
                                const Store& store) {
  for (int64_t k = 0; k < channels; ++k) {
    const int64_t lo = k - p.below < 0 ? 0 : k - p.below;
    const int64_t hi = k + p.above > channels - 1 ? channels - 1 : k + p.above;
    float sum = 0.0f;
    for (int64_t q = lo; q <= hi; ++q) {
      const float v = load(q);
      sum += v * v;
    }
    store(k, load(k) / powf(p.delta + p.alphaOverSize * sum, p.beta));
  }
}

// ---- CNNSpatialNormalization (§4) and CNNLocalContrastNormalization (§5) -------------------------

enum class WindowNormalization : uint32_t { Spatial, LocalContrast };

struct WindowParams {
  WindowNormalization kind = WindowNormalization::Spatial;
  int64_t kernelWidth = 1, kernelHeight = 1;
  float alpha = 1.0f, beta = 5.0f, delta = 1.0f;
  float p0 = 1.0f, pm = 0.0f, ps = 1.0f;  // local contrast only
};

/// `io.src.c == io.dst.c`; each channel is normalized separately.
struct WindowProblem {
  UnaryProblem io;
  WindowParams norm;
};

/// The taps of one window along one axis: coordinates [first, first + kernel − 1]; those in
/// [insideBegin, insideEnd) lie inside the image [0, size); `before` taps lie left of 0 and `after`
/// taps right of size − 1. Working with these counts makes the cost of a window independent of how
/// far it reaches outside the image.
struct WindowAxis {
  int64_t first, kernel, size;
  int64_t insideBegin, insideEnd, before, after;

  MPSNN_HD int64_t insideCount() const { return insideEnd - insideBegin; }
  /// Clamp mode reads coordinates [clampBegin(), clampEnd()) — the edge pixel alone for a window
  /// wholly outside the image; weight(u) taps read coordinate u.
  MPSNN_HD int64_t clampBegin() const {
    return before > 0 ? 0 : (insideCount() > 0 ? insideBegin : size - 1);
  }
  MPSNN_HD int64_t clampEnd() const { return after > 0 ? size : (insideCount() > 0 ? insideEnd : 1); }
  MPSNN_HD int64_t weight(int64_t u) const {
    return int64_t(u >= insideBegin && u < insideEnd) + (u == 0 ? before : 0) + (u == size - 1 ? after : 0);
  }
};

/// The window of `kernel` taps centred on `centre` (spec 04 §4: [centre − floor(k/2), centre +
/// floor((k − 1)/2)]) over an image extent `size` ≥ 1.
MPSNN_HD WindowAxis windowAxis(int64_t centre, int64_t kernel, int64_t size) {
  WindowAxis a;
  a.first = centre - kernel / 2;
  a.kernel = kernel;
  a.size = size;
  const int64_t last = a.first + kernel - 1;
  a.insideBegin = a.first < 0 ? 0 : a.first;
  a.insideEnd = (last < size - 1 ? last : size - 1) + 1;
  if (a.insideEnd < a.insideBegin) a.insideEnd = a.insideBegin;  // the window misses the image
  a.before = a.first < 0 ? (last < -1 ? last : -1) - a.first + 1 : 0;
  a.after = last > size - 1 ? last - (a.first > size ? a.first : size) + 1 : 0;
  return a;
}

/// Σ over the window's kw·kh taps of f(tap value); out-of-image taps read 0 (edge Zero) or the
/// nearest edge pixel (Clamp). `load(y, x)` reads an in-image pixel of the channel.
template <class Load, class F>
MPSNN_HD float windowSum(const WindowAxis& ax, const WindowAxis& ay, ImageEdgeMode edge, const Load& load,
                         const F& f) {
  float sum = 0.0f;
  if (edge == ImageEdgeMode::Clamp) {
    for (int64_t v = ay.clampBegin(); v < ay.clampEnd(); ++v) {
      const float wy = float(ay.weight(v));
      for (int64_t u = ax.clampBegin(); u < ax.clampEnd(); ++u)
        sum += wy * float(ax.weight(u)) * f(load(v, u));
    }
    return sum;
  }
  for (int64_t v = ay.insideBegin; v < ay.insideEnd; ++v)
    for (int64_t u = ax.insideBegin; u < ax.insideEnd; ++u) sum += f(load(v, u));
  const int64_t outside = ax.kernel * ay.kernel - ax.insideCount() * ay.insideCount();
  return outside > 0 ? sum + float(outside) * f(0.0f) : sum;
}

/// One output of either window kernel; `centre` is X at the window's centre (edge mode applied).
/// Local contrast takes the variance in two passes, Σ (x − M)², which is never negative and does
/// not cancel the way Σ x² − M² does.
template <class Load>
MPSNN_HD float windowNormalize(const WindowParams& p, const WindowAxis& ax, const WindowAxis& ay,
                               ImageEdgeMode edge, float centre, const Load& load) {
  const float taps = float(p.kernelWidth) * float(p.kernelHeight);
  if (p.kind == WindowNormalization::Spatial) {
    const float squares = windowSum(ax, ay, edge, load, [](float v) { return v * v; });
    return centre / powf(p.delta + (p.alpha / taps) * squares, p.beta);
  }
  const float mean = windowSum(ax, ay, edge, load, [](float v) { return v; }) / taps;
  const float variance =
      windowSum(ax, ay, edge, load, [mean](float v) { return (v - mean) * (v - mean); }) / taps;
  return p.pm + p.ps * (centre - p.p0 * mean) / powf(p.delta + p.alpha * variance, p.beta);
}

// ---- CNNBatchNormalization (§6) ------------------------------------------------------------------

/// `io.dst.c` = numberOfFeatureChannels C; `io.src.c` ≥ C, channels from C on are ignored. The
/// parameter arrays (C floats each, in the memory of the device that runs the op) come from the
/// kernel — or, once training arrives, from a CNNBatchNormalizationState — so backends read them
/// at run time and fold nothing in advance.
struct BatchNormProblem {
  UnaryProblem io;
  const float* gamma = nullptr;
  const float* beta = nullptr;
  const float* mean = nullptr;
  const float* variance = nullptr;
  float epsilon = 0.0f;
  NeuronParams neuron;
};

/// gamma / sqrt(variance + epsilon): the per-channel scale of the fast paths.
MPSNN_HD float batchNormScale(float gamma, float variance, float epsilon) {
  return gamma / sqrtf(variance + epsilon);
}

// ---- CNNInstanceNormalization (§7) ---------------------------------------------------------------

/// Channels as BatchNormProblem. `io.src` spans the whole W×H of each source image: the statistics
/// come from all of it, whatever part the destination reads.
struct InstanceNormProblem {
  UnaryProblem io;
  const float* gamma = nullptr;
  const float* beta = nullptr;
  float epsilon = 0.0f;
};

ImplementationList<CrossChannelProblem>& cpuCrossChannelImplementations();
ImplementationList<WindowProblem>& cpuWindowNormalizationImplementations();
ImplementationList<BatchNormProblem>& cpuBatchNormImplementations();
ImplementationList<InstanceNormProblem>& cpuInstanceNormImplementations();
#if defined(MPSNN_HAVE_CUDA)
ImplementationList<CrossChannelProblem>& cudaCrossChannelImplementations();
ImplementationList<WindowProblem>& cudaWindowNormalizationImplementations();
ImplementationList<BatchNormProblem>& cudaBatchNormImplementations();
ImplementationList<InstanceNormProblem>& cudaInstanceNormImplementations();
#endif

}  // namespace mpsnn::detail
