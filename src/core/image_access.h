// Internal: access to an Image's storage for kernels (not part of the public API).
#pragma once
#include "core/backend.h"
#include "kernels/problem.h"
#include "mpsnn/image.h"

namespace mpsnn::detail {

struct ImageAccess {
  /// The whole image as a view; throws InvalidArgument when the image may not be touched.
  static ImageView view(const Image& image, const char* who) {
    image.checkUsable(who);
    ImageView v;
    v.storage = image.storage_;
    v.elementOffset = image.elementOffset_;
    v.format = image.format_;
    v.n = int64_t(image.numberOfImages_);
    v.h = int64_t(image.height_);
    v.w = int64_t(image.width_);
    v.c = int64_t(image.featureChannels_);
    v.pixelStride = int64_t(image.pixelStride_);
    v.rowStride = int64_t(image.pixelStride_ * image.width_);
    v.imageStride = int64_t(image.imageStride_);
    return v;
  }
  static const Storage* storageIdentity(const Image& image) { return image.storage_.get(); }
  static void checkUsable(const Image& image, const char* who) { image.checkUsable(who); }
};

/// Narrows a view to images [n0, n0+count), rows [y0, y0+h), columns [x0, x0+w), channels [c0, c0+c).
inline ImageView subView(const ImageView& v, int64_t n0, int64_t count, int64_t y0, int64_t h, int64_t x0,
                         int64_t w, int64_t c0, int64_t c) {
  ImageView s = v;
  s.elementOffset = v.elementOffset + uint64_t(v.index(n0, y0, x0, c0));
  s.n = count;
  s.h = h;
  s.w = w;
  s.c = c;
  return s;
}

}  // namespace mpsnn::detail
