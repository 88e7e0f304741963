#include "ref/ref.h"

#include <algorithm>

namespace mpsnn::ref {

double RefImage::read(int64_t in, int64_t y, int64_t x, int64_t ch, ImageEdgeMode edge) const {
  if (x < 0 || x >= w || y < 0 || y >= h) {
    if (edge != ImageEdgeMode::Clamp) return 0.0;
    x = std::clamp<int64_t>(x, 0, w - 1);
    y = std::clamp<int64_t>(y, 0, h - 1);
  }
  return at(in, y, x, ch);
}

}  // namespace mpsnn::ref
