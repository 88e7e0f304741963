// Internal: the resolved form of a kernel invocation that backends and the reference consume.
// All validation has happened before one of these exists; backends never validate user input.
#pragma once
#include <cstdint>
#include <memory>

#include "core/backend.h"
#include "core/format.h"
#include "mpsnn/types.h"

namespace mpsnn::detail {

/// The plain-data form of an ImageView that device kernels take by value (no ownership).
struct RawView {
  void* data;
  ImageFeatureChannelFormat format;
  int64_t n, h, w, c;
  int64_t pixelStride, rowStride, imageStride;
  MPSNN_HD int64_t index(int64_t in, int64_t y, int64_t x, int64_t ch) const {
    return in * imageStride + y * rowStride + x * pixelStride + ch;
  }
  MPSNN_HD float load(int64_t i) const { return loadAsFloat(data, i, format); }
  MPSNN_HD void store(int64_t i, float v) const { storeFromFloat(data, i, format, v); }
};

/// A strided NHWC window onto an image's storage. Element (n, y, x, c) lives at
/// data() + n·imageStride + y·rowStride + x·pixelStride + c (in elements of `format`).
struct ImageView {
  StoragePtr storage;  // keeps the memory alive while work is queued
  uint64_t elementOffset = 0;
  ImageFeatureChannelFormat format = ImageFeatureChannelFormat::Float32;
  int64_t n = 0, h = 0, w = 0, c = 0;
  int64_t pixelStride = 0, rowStride = 0, imageStride = 0;

  void* data() const {
    return static_cast<char*>(storage->data()) + elementOffset * bytesPerChannel(format);
  }
  int64_t index(int64_t in, int64_t y, int64_t x, int64_t ch) const {
    return in * imageStride + y * rowStride + x * pixelStride + ch;
  }
  /// True when the view's pixels are packed (pixelStride == c, rows and images contiguous).
  bool dense() const { return pixelStride == c && rowStride == w * c && imageStride == h * w * c; }
  bool empty() const { return n == 0 || h == 0 || w == 0 || c == 0; }
  RawView raw() const { return {data(), format, n, h, w, c, pixelStride, rowStride, imageStride}; }
};

/// A unary CNN kernel invocation (spec 00 §4.2): `src` holds the `depth` source images starting at
/// offset.z with channels starting at sourceFeatureChannelOffset (c = channels read), full width and
/// height; `dst` is the effective clip region of the destination images, channels starting at
/// destinationFeatureChannelOffset (c = channels written). Destination pixel (x, y) of the view reads
/// source window centre (offsetX + x·strideX, offsetY + y·strideY).
struct UnaryProblem {
  ImageView src, dst;
  int64_t offsetX = 0, offsetY = 0;
  ImageEdgeMode edgeMode = ImageEdgeMode::Zero;
  int64_t batchIndex = 0;  // position of this pair in an encodeBatch call; 0 for encode
  int64_t clipX = 0, clipY = 0;  // destination position of dst's first pixel
};

/// A binary kernel invocation: as UnaryProblem with two sources.
struct BinaryProblem {
  ImageView primary, secondary, dst;
  int64_t primaryOffsetX = 0, primaryOffsetY = 0, secondaryOffsetX = 0, secondaryOffsetY = 0;
  ImageEdgeMode primaryEdgeMode = ImageEdgeMode::Zero, secondaryEdgeMode = ImageEdgeMode::Zero;
  int64_t batchIndex = 0;        // position of this pair in an encodeBatch call; 0 for encode
  int64_t clipX = 0, clipY = 0;  // destination position of dst's first pixel
};

/// Resolves an edge-mode read coordinate: returns false for Zero mode outside [0, size).
MPSNN_HD bool resolveEdge(int64_t& p, int64_t size, ImageEdgeMode mode) {
  if (p >= 0 && p < size) return true;
  if (mode == ImageEdgeMode::Clamp) {
    p = p < 0 ? 0 : size - 1;
    return true;
  }
  return false;
}

}  // namespace mpsnn::detail
