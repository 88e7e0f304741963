// Float64 reference of the reductions (spec 06 §4), element by element as the spec writes them.
#include <algorithm>
#include <cmath>
#include <limits>

#include "ref/ref.h"

namespace mpsnn::ref {

namespace {

/// [first, first + count) of one axis of a source rectangle intersected with the image.
struct Span {
  int64_t first, count;
};
Span intersect(uint64_t origin, uint64_t size, int64_t extent) {
  const int64_t first = int64_t(origin);
  const int64_t count = int64_t(std::min<uint64_t>(size, uint64_t(extent - first)));
  return {first, count};
}

/// The destination part written: the result's `extent` at `origin`, cut by the clip size and the image.
int64_t writtenExtent(uint64_t origin, uint64_t clipSize, bool noClip, int64_t extent, int64_t dstExtent) {
  int64_t e = extent;
  if (!noClip) e = int64_t(std::min<uint64_t>(uint64_t(e), clipSize));
  return std::max<int64_t>(0, std::min<int64_t>(e, dstExtent - int64_t(origin)));
}

/// The number of images processed (spec 00 §4.4, with the source range of the source rectangle).
int64_t imageCount(const IntRegion& clip, int64_t dstImages, int64_t sourceImages) {
  if (isRectNoClip(clip) || clip.size.depth == UINT64_MAX)
    return std::min<int64_t>(dstImages - int64_t(clip.origin.z), sourceImages);
  return int64_t(clip.size.depth);
}

enum class Op { Min, Max, Sum, Mean, ArgMin, ArgMax };

/// op over the values; Min / Max propagate NaN, the argument forms return the first extreme index
/// with NaN counting as the extreme.
double reduceValues(Op op, const std::vector<double>& v, double weight) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  switch (op) {
    case Op::Min:
    case Op::Max: {
      double m = v[0];
      for (double x : v) {
        if (std::isnan(x)) return nan;
        m = op == Op::Min ? std::min(m, x) : std::max(m, x);
      }
      return m;
    }
    case Op::Sum:
    case Op::Mean: {
      double s = 0;
      for (double x : v) s += x;
      return op == Op::Mean ? s / double(v.size()) : weight * s;
    }
    default: {
      size_t best = 0;
      for (size_t i = 0; i < v.size(); ++i) {
        if (std::isnan(v[i])) return double(i);  // the first NaN
        if (op == Op::ArgMax ? v[i] > v[best] : v[i] < v[best]) best = i;
      }
      return double(best);
    }
  }
}

}  // namespace

void reduceKernel(ReduceKind kind, const ReducePlacement& p, const RefImage& src, RefImage& dst) {
  enum class Axis { Row, Column, Channels, Spatial };
  Axis axis;
  Op op;
  switch (kind) {
    case ReduceKind::RowMin:
      axis = Axis::Row, op = Op::Min;
      break;
    case ReduceKind::RowMax:
      axis = Axis::Row, op = Op::Max;
      break;
    case ReduceKind::RowSum:
      axis = Axis::Row, op = Op::Sum;
      break;
    case ReduceKind::RowMean:
      axis = Axis::Row, op = Op::Mean;
      break;
    case ReduceKind::ColumnMin:
      axis = Axis::Column, op = Op::Min;
      break;
    case ReduceKind::ColumnMax:
      axis = Axis::Column, op = Op::Max;
      break;
    case ReduceKind::ColumnSum:
      axis = Axis::Column, op = Op::Sum;
      break;
    case ReduceKind::ColumnMean:
      axis = Axis::Column, op = Op::Mean;
      break;
    case ReduceKind::FeatureChannelsMin:
      axis = Axis::Channels, op = Op::Min;
      break;
    case ReduceKind::FeatureChannelsMax:
      axis = Axis::Channels, op = Op::Max;
      break;
    case ReduceKind::FeatureChannelsSum:
      axis = Axis::Channels, op = Op::Sum;
      break;
    case ReduceKind::FeatureChannelsMean:
      axis = Axis::Channels, op = Op::Mean;
      break;
    case ReduceKind::FeatureChannelsArgumentMin:
      axis = Axis::Channels, op = Op::ArgMin;
      break;
    case ReduceKind::FeatureChannelsArgumentMax:
      axis = Axis::Channels, op = Op::ArgMax;
      break;
    default:
      axis = Axis::Spatial, op = Op::Mean;
      break;
  }
  const double weight = kind == ReduceKind::FeatureChannelsSum ? p.weight : 1.0;
  // R (spec 06 §4.1): the source rectangle intersected with the source.
  const Span rx = intersect(p.clipRectSource.origin.x, p.clipRectSource.size.width, src.w);
  const Span ry = intersect(p.clipRectSource.origin.y, p.clipRectSource.size.height, src.h);
  const Span rz = intersect(p.clipRectSource.origin.z, p.clipRectSource.size.depth, src.n);
  const int64_t c0 = int64_t(p.sourceFeatureChannelOffset);
  const int64_t cRead = int64_t(std::min<uint64_t>(p.sourceFeatureChannelMaxCount, uint64_t(src.c - c0)));
  // The result's shape and where it goes.
  const int64_t outW = axis == Axis::Row || axis == Axis::Spatial ? 1 : rx.count;
  const int64_t outH = axis == Axis::Column || axis == Axis::Spatial ? 1 : ry.count;
  const int64_t outC = axis == Axis::Channels ? 1 : cRead;
  const bool noClip = isRectNoClip(p.clipRect);
  const int64_t X0 = int64_t(p.clipRect.origin.x), Y0 = int64_t(p.clipRect.origin.y),
                Z0 = int64_t(p.clipRect.origin.z);
  const int64_t writeW = writtenExtent(p.clipRect.origin.x, p.clipRect.size.width, noClip, outW, dst.w);
  const int64_t writeH = writtenExtent(p.clipRect.origin.y, p.clipRect.size.height, noClip, outH, dst.h);
  const int64_t images = imageCount(p.clipRect, dst.n, rz.count);
  const int64_t d0 = int64_t(p.destinationFeatureChannelOffset);
  std::vector<double> values;
  for (int64_t k = 0; k < images; ++k) {
    const int64_t n = rz.first + k;
    for (int64_t y = 0; y < writeH; ++y)
      for (int64_t x = 0; x < writeW; ++x)
        for (int64_t oc = 0; oc < outC; ++oc) {
          values.clear();
          switch (axis) {
            case Axis::Row:  // over x of row y, channel oc
              for (int64_t i = 0; i < rx.count; ++i)
                values.push_back(src.at(n, ry.first + y, rx.first + i, c0 + oc));
              break;
            case Axis::Column:  // over y of column x, channel oc
              for (int64_t j = 0; j < ry.count; ++j)
                values.push_back(src.at(n, ry.first + j, rx.first + x, c0 + oc));
              break;
            case Axis::Channels:  // over the channels of pixel (x, y)
              for (int64_t c = 0; c < cRead; ++c)
                values.push_back(src.at(n, ry.first + y, rx.first + x, c0 + c));
              break;
            case Axis::Spatial:  // over every pixel of R, channel oc
              for (int64_t j = 0; j < ry.count; ++j)
                for (int64_t i = 0; i < rx.count; ++i)
                  values.push_back(src.at(n, ry.first + j, rx.first + i, c0 + oc));
              break;
          }
          dst.at(Z0 + k, Y0 + y, X0 + x, d0 + oc) = reduceValues(op, values, weight);
        }
  }
}

void reduceWeightsKernel(WeightsReduceKind kind, const WeightsReducePlacement& p, const RefImage& data,
                         const RefImage& weights, RefImage& dst) {
  const Span px = intersect(p.primarySourceClipRect.origin.x, p.primarySourceClipRect.size.width, data.w);
  const Span py = intersect(p.primarySourceClipRect.origin.y, p.primarySourceClipRect.size.height, data.h);
  const Span pz = intersect(p.primarySourceClipRect.origin.z, p.primarySourceClipRect.size.depth, data.n);
  const Span sx =
      intersect(p.secondarySourceClipRect.origin.x, p.secondarySourceClipRect.size.width, weights.w);
  const Span sy =
      intersect(p.secondarySourceClipRect.origin.y, p.secondarySourceClipRect.size.height, weights.h);
  const Span sz =
      intersect(p.secondarySourceClipRect.origin.z, p.secondarySourceClipRect.size.depth, weights.n);
  const bool single = sx.count == 1 && sy.count == 1;  // one weight vector for every pixel
  const int64_t pc0 = int64_t(p.primarySourceFeatureChannelOffset),
                sc0 = int64_t(p.secondarySourceFeatureChannelOffset);
  const int64_t channels =
      int64_t(std::min<uint64_t>(p.primarySourceFeatureChannelMaxCount, uint64_t(data.c - pc0)));
  const bool noClip = isRectNoClip(p.clipRect);
  const int64_t X0 = int64_t(p.clipRect.origin.x), Y0 = int64_t(p.clipRect.origin.y),
                Z0 = int64_t(p.clipRect.origin.z);
  const int64_t writeW = writtenExtent(p.clipRect.origin.x, p.clipRect.size.width, noClip, px.count, dst.w);
  const int64_t writeH = writtenExtent(p.clipRect.origin.y, p.clipRect.size.height, noClip, py.count, dst.h);
  const int64_t images = imageCount(p.clipRect, dst.n, std::min(pz.count, sz.count));
  for (int64_t k = 0; k < images; ++k)
    for (int64_t y = 0; y < writeH; ++y)
      for (int64_t x = 0; x < writeW; ++x) {
        double dot = 0;
        int64_t nonZero = 0;
        for (int64_t c = 0; c < channels; ++c) {
          const double w =
              weights.at(sz.first + k, sy.first + (single ? 0 : y), sx.first + (single ? 0 : x), sc0 + c);
          dot += data.at(pz.first + k, py.first + y, px.first + x, pc0 + c) * w;
          if (w != 0) ++nonZero;
        }
        double out = dot;
        if (kind == WeightsReduceKind::SumByNonZeroWeights) out = nonZero == 0 ? 0.0 : dot / double(nonZero);
        if (kind == WeightsReduceKind::Mean) out = dot / double(channels);
        dst.at(Z0 + k, Y0 + y, X0 + x, int64_t(p.destinationFeatureChannelOffset)) = out;
      }
}

}  // namespace mpsnn::ref
