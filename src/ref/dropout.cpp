// Float64 reference of CNNDropout (spec 06 §3, spec 10 §10.12.1), with its own Philox-4x32-10.
#include <algorithm>

#include "ref/ref.h"

namespace mpsnn::ref {

std::array<uint32_t, 4> philox4x32_10(std::array<uint32_t, 4> ctr, std::array<uint32_t, 2> key) {
  // Random123 philox.h: round R uses key + (R − 1)·(W0, W1); each round multiplies words 0 and 2.
  for (int round = 0; round < 10; ++round) {
    const uint32_t k0 = key[0] + uint32_t(round) * 0x9E3779B9u, k1 = key[1] + uint32_t(round) * 0xBB67AE85u;
    const uint64_t p0 = uint64_t(0xD2511F53u) * ctr[0], p1 = uint64_t(0xCD9E8D57u) * ctr[2];
    ctr = {uint32_t(p1 >> 32) ^ ctr[1] ^ k0, uint32_t(p1), uint32_t(p0 >> 32) ^ ctr[3] ^ k1, uint32_t(p0)};
  }
  return ctr;
}

bool dropoutKeeps(const DropoutSpec& s, int64_t n, uint64_t element) {
  const auto words = philox4x32_10(
      {uint32_t(element / 4), uint32_t(n), uint32_t(s.trainingStep), uint32_t(s.trainingStep >> 32)},
      {uint32_t(s.seed), uint32_t(s.seed >> 32)});
  const uint64_t threshold = uint64_t(double(s.keepProbability) * 4294967296.0);
  return uint64_t(words[element % 4]) < threshold;
}

void dropoutKernel(const DropoutSpec& s, const UnaryPlacement& p, const RefImage& src, RefImage& dst) {
  const int64_t cRead =
      std::min<int64_t>(int64_t(std::min<uint64_t>(p.sourceFeatureChannelMaxCount, 1u << 30)),
                        src.c - int64_t(p.sourceFeatureChannelOffset));
  // The broadcast-reduced mask of one image spans the clip region: Wm = its width (or 1), Cm = the
  // output channels (or 1); e = ((y·sy)·Wm + x·sx)·Cm + c·sz.
  const bool noClip = isRectNoClip(p.clipRect);
  const int64_t x0 = int64_t(p.clipRect.origin.x);
  const int64_t x1 =
      noClip ? dst.w
             : std::min<int64_t>(dst.w,
                                 x0 + int64_t(std::min<uint64_t>(p.clipRect.size.width, uint64_t(dst.w))));
  const int64_t sx = int64_t(s.maskStrideInPixels.width), sy = int64_t(s.maskStrideInPixels.height),
                sz = int64_t(s.maskStrideInPixels.depth);
  const int64_t maskWidth = sx ? x1 - x0 : 1, maskChannels = sz ? cRead : 1;
  const double keep = double(s.keepProbability);
  forEachDestinationPixel(p, src, dst, [&](int64_t k, int64_t x, int64_t y, int64_t X, int64_t Y) {
    for (int64_t ch = 0; ch < cRead; ++ch) {
      const double v = src.read(p.offset.z + k, p.offset.y + y, p.offset.x + x,
                                int64_t(p.sourceFeatureChannelOffset) + ch, p.edgeMode);
      const uint64_t element = uint64_t(((y * sy) * maskWidth + x * sx) * maskChannels + ch * sz);
      const double m = dropoutKeeps(s, s.batchBase + k, element) ? 1.0 : 0.0;
      dst.at(int64_t(p.clipRect.origin.z) + k, Y, X, int64_t(p.destinationFeatureChannelOffset) + ch) =
          m * v / keep;
    }
  });
}

}  // namespace mpsnn::ref
