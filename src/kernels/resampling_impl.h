// Internal: the interface between the resampling kernels and the backends, and the per-axis
// sampling arithmetic (spec 05) that the CPU and CUDA implementations share. Every filter is
// separable: along each axis a destination coordinate reads a run of consecutive source pixels
// with weights, and the 2-D value is the vertical combination of horizontal combinations.
#pragma once
#include <cmath>
#include <cstdint>

#include "kernels/dispatch.h"
#include "kernels/problem.h"

namespace mpsnn::detail {

enum class ResamplingFilter : uint32_t { Nearest, Bilinear, Lanczos };

/// How a destination coordinate d (relative to the clip origin) maps to source index space (pixel
/// i centred at i) along one axis.
enum class AxisMapping : uint32_t {
  IntegerFactor,  // nearest upsampling: offset + floor(d / factor)
  HalfPixel,      // bilinear upsampling, alignCorners false: offset + (d + 0.5) / factor − 0.5
  AlignCorners,   // bilinear upsampling, alignCorners true: offset + d·(W_in − 1) / (W_in·factor − 1)
  Transform,      // image scaling: offset + (d + 0.5 − translate) / scale − 0.5
};

/// One axis of a resampling problem. The kernel layer guarantees factor ≥ 1, scale > 0 and
/// finite, translate finite, |offset| ≤ 2^62 and lanczosF ≥ 3/65536.
struct ResamplingAxis {
  AxisMapping mapping = AxisMapping::IntegerFactor;
  int64_t offset = 0;          // offset.x or offset.y: a shift in source pixels
  int64_t factor = 1;          // the integer scale factor (upsampling)
  double scale = 1;            // Transform: destination pixels per source pixel
  double translate = 0;        // Transform: destination pixels
  int64_t sourceExtent = 1;    // W_in or H_in, ≥ 1
  double upsampledExtent = 1;  // AlignCorners: W_in·factor (a double: the product may exceed int64)
  double lanczosF = 1;         // Lanczos: f = min(1, scale)
};

/// A resampling invocation: the placement (io) and the per-axis mapping. io.edgeMode matters only
/// to the nearest filter; the others clamp positions to the image (spec 05).
struct ResamplingProblem {
  UnaryProblem io;
  ResamplingFilter filter = ResamplingFilter::Nearest;
  ResamplingAxis x, y;
};

constexpr double kLanczosA = 3.0;
/// CHOICE (docs/resampling.md): the Lanczos kernel reaches at most this many source pixels from its
/// centre (a / f ≤ 65536, i.e. scale ≥ 3/65536), which covers downscaling a 16384-pixel image (the
/// Metal texture limit) to one pixel and bounds the taps of one coordinate to 131073.
constexpr double kMaxLanczosReach = 65536.0;
constexpr double kMinLanczosScale = kLanczosA / kMaxLanczosReach;

MPSNN_HD int64_t clampToExtent(int64_t i, int64_t extent) {
  return i < 0 ? 0 : (i >= extent ? extent - 1 : i);
}

/// Source index-space position of destination coordinate d (continuous mappings).
MPSNN_HD double sourcePosition(const ResamplingAxis& a, int64_t d) {
  switch (a.mapping) {
    case AxisMapping::HalfPixel:
      return double(a.offset) + ((double(d) + 0.5) / double(a.factor) - 0.5);
    case AxisMapping::AlignCorners:
      return double(a.offset) + (a.upsampledExtent > 1.0
                                     ? double(d) * double(a.sourceExtent - 1) / (a.upsampledExtent - 1.0)
                                     : 0.0);
    case AxisMapping::Transform:
      return double(a.offset) + ((double(d) + 0.5 - a.translate) / a.scale - 0.5);
    default:  // IntegerFactor has no continuous position; the pixel it reads is its centre
      return double(a.offset + d / a.factor);
  }
}

/// The source pixel the nearest filter reads for destination coordinate d (d ≥ 0).
MPSNN_HD int64_t nearestSource(const ResamplingAxis& a, int64_t d) { return a.offset + d / a.factor; }

/// The two pixels and the weight of spec 05's sample() along one axis: weight 1 − t on i0, t on i1.
struct LinearTap {
  int64_t i0, i1;
  double t;
};
MPSNN_HD LinearTap linearTap(double position, int64_t extent) {
  const double hi = double(extent - 1);
  const double f = position > 0.0 ? (position < hi ? position : hi) : 0.0;  // clamp; NaN → 0
  const double whole = floor(f);
  LinearTap tap;
  tap.i0 = int64_t(whole);
  tap.i1 = tap.i0 + 1 < extent ? tap.i0 + 1 : extent - 1;
  tap.t = f - whole;
  return tap;
}

/// L(t) = sinc(t)·sinc(t/a) for |t| < a, else 0 (spec 05 §4.2).
MPSNN_HD double lanczosWeight(double t) {
  if (t == 0.0) return 1.0;
  if (!(fabs(t) < kLanczosA)) return 0.0;
  const double pt = 3.14159265358979323846 * t;
  return kLanczosA * sin(pt) * sin(pt / kLanczosA) / (pt * pt);
}

/// The Lanczos taps of one coordinate: source pixels i ∈ [first, last], each read at
/// clampToExtent(i) with weight weight(i). When every tap lies on one side of the image they all
/// read the same edge pixel and the normalised value is that pixel: edgeOnly holds it (else −1),
/// which also keeps positions far outside the image from reaching the integer conversion.
struct LanczosWindow {
  int64_t first = 0, last = -1, edgeOnly = -1;
  double u = 0, f = 1;
  MPSNN_HD double weight(int64_t i) const { return lanczosWeight((double(i) - u) * f); }
};
MPSNN_HD LanczosWindow lanczosWindow(double u, double f, int64_t extent) {
  LanczosWindow w;
  w.u = u;
  w.f = f;
  const double reach = kLanczosA / f;
  if (!(u + reach >= 0.0)) {  // floor(u + reach) < 0: every tap left of the image (NaN lands here too)
    w.edgeOnly = 0;
  } else if (u - reach > double(extent - 1)) {  // ceil(u − reach) > W − 1: every tap right of it
    w.edgeOnly = extent - 1;
  } else {  // u ∈ [−reach, W − 1 + reach]: the conversions below are exact and in range
    w.first = int64_t(ceil(u - reach));
    w.last = int64_t(floor(u + reach));
  }
  return w;
}

/// Largest `count` axisTaps can return along axis `a`.
inline int64_t maxAxisTaps(ResamplingFilter filter, const ResamplingAxis& a) {
  if (filter == ResamplingFilter::Nearest) return 1;
  if (filter == ResamplingFilter::Bilinear) return 2;
  const int64_t window = int64_t(2.0 * kLanczosA / a.lanczosF) + 2;  // ≥ the integers in [u − r, u + r]
  return window < a.sourceExtent ? window : a.sourceExtent;
}

/// The source pixels destination coordinate d reads along axis `a`: `count` consecutive pixels from
/// `first`, weights[k] for pixel first + k, summing to 1 (Lanczos: normalised, spec 05 §4.2). Taps
/// clamping to the same edge pixel are merged. count 0 (nearest, edgeMode Zero, outside the image)
/// means the value is 0. `weights` holds maxAxisTaps(filter, a) values.
MPSNN_HD void axisTaps(ResamplingFilter filter, ImageEdgeMode edge, const ResamplingAxis& a, int64_t d,
                       int64_t& first, int64_t& count, float* weights) {
  if (filter == ResamplingFilter::Nearest) {
    int64_t p = nearestSource(a, d);
    if (resolveEdge(p, a.sourceExtent, edge)) {
      first = p;
      count = 1;
      weights[0] = 1.0f;
    } else {
      first = 0;
      count = 0;
    }
    return;
  }
  if (filter == ResamplingFilter::Bilinear) {
    const LinearTap tap = linearTap(sourcePosition(a, d), a.sourceExtent);
    first = tap.i0;
    if (tap.i1 == tap.i0) {  // at the last pixel (t is 0 there) or a one-pixel image
      count = 1;
      weights[0] = 1.0f;
    } else {
      count = 2;
      weights[0] = float(1.0 - tap.t);
      weights[1] = float(tap.t);
    }
    return;
  }
  const LanczosWindow w = lanczosWindow(sourcePosition(a, d), a.lanczosF, a.sourceExtent);
  if (w.edgeOnly >= 0) {
    first = w.edgeOnly;
    count = 1;
    weights[0] = 1.0f;
    return;
  }
  const int64_t extent = a.sourceExtent;
  first = clampToExtent(w.first, extent);
  count = clampToExtent(w.last, extent) - first + 1;
  for (int64_t k = 0; k < count; ++k) weights[k] = 0.0f;
  // Inside the image every pixel gets one tap; the taps beyond each edge (up to 2^16 of them) are
  // summed in double, as float sums that long would lose digits.
  double total = 0.0, left = 0.0, right = 0.0;
  for (int64_t i = w.first; i <= w.last; ++i) {
    const double wt = w.weight(i);
    total += wt;
    if (i < 0)
      left += wt;
    else if (i >= extent)
      right += wt;
    else
      weights[i - first] = float(wt);
  }
  // total > 0: the Lanczos-3 weights of a window at least 6 pixels wide sum to about 1/f.
  for (int64_t k = 0; k < count; ++k) {
    double wt = double(weights[k]);
    if (first + k == 0) wt += left;
    if (first + k == extent - 1) wt += right;
    weights[k] = float(wt / total);
  }
}

/// The source pixels [first, last] a coordinate reads along an axis, without the weights
/// (bilinear and Lanczos). Non-decreasing in d, since every mapping is.
MPSNN_HD void axisSpan(ResamplingFilter filter, const ResamplingAxis& a, int64_t d, int64_t& first,
                       int64_t& last) {
  if (filter == ResamplingFilter::Bilinear) {
    const LinearTap tap = linearTap(sourcePosition(a, d), a.sourceExtent);
    first = tap.i0;
    last = tap.i1;
    return;
  }
  const LanczosWindow w = lanczosWindow(sourcePosition(a, d), a.lanczosF, a.sourceExtent);
  if (w.edgeOnly >= 0) {
    first = last = w.edgeOnly;
    return;
  }
  first = clampToExtent(w.first, a.sourceExtent);
  last = clampToExtent(w.last, a.sourceExtent);
}

ImplementationList<ResamplingProblem>& cpuResamplingImplementations();
#if defined(MPSNN_HAVE_CUDA)
ImplementationList<ResamplingProblem>& cudaResamplingImplementations();
#endif

}  // namespace mpsnn::detail
