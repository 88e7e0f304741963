// Internal: the interface between CNNDropout and the backends, and the mask generator every backend
// uses (host and CUDA device code), so that CPU and CUDA draw the same bits (spec 10 §10.12.1).
#pragma once
#include <cstdint>

#include "core/format.h"
#include "kernels/dispatch.h"
#include "kernels/problem.h"

namespace mpsnn::detail {

/// Philox-4x32-10 (Salmon, Moraes, Dror, Shaw, "Parallel random numbers: as easy as 1, 2, 3", SC 2011),
/// as Random123's philox4x32_R(10, ctr, key): ten rounds, the key bumped by the Weyl constants before
/// rounds 2..10.
struct Philox4x32Words {
  uint32_t w[4];
};
MPSNN_HD void mulHiLo32(uint32_t a, uint32_t b, uint32_t& hi, uint32_t& lo) {
  const uint64_t product = uint64_t(a) * uint64_t(b);
  hi = uint32_t(product >> 32);
  lo = uint32_t(product);
}
MPSNN_HD Philox4x32Words philox4x32_10(uint32_t c0, uint32_t c1, uint32_t c2, uint32_t c3, uint32_t k0,
                                       uint32_t k1) {
  constexpr uint32_t kMultiplier0 = 0xD2511F53u, kMultiplier1 = 0xCD9E8D57u;
  constexpr uint32_t kWeyl0 = 0x9E3779B9u, kWeyl1 = 0xBB67AE85u;
#if defined(__CUDA_ARCH__)
#pragma unroll
#endif
  for (int round = 0; round < 10; ++round) {
    if (round > 0) {
      k0 += kWeyl0;
      k1 += kWeyl1;
    }
    uint32_t hi0, lo0, hi1, lo1;
    mulHiLo32(kMultiplier0, c0, hi0, lo0);
    mulHiLo32(kMultiplier1, c2, hi1, lo1);
    const uint32_t n0 = hi1 ^ c1 ^ k0, n2 = hi0 ^ c3 ^ k1;
    c0 = n0;
    c1 = lo1;
    c2 = n2;
    c3 = lo0;
  }
  return {{c0, c1, c2, c3}};
}

/// Everything a backend needs to draw and apply the mask of one encode.
struct DropoutParams {
  float keepProbability = 1;
  uint64_t threshold = uint64_t(1) << 32;  // keep iff word < threshold
  uint32_t key0 = 0, key1 = 0;             // seed
  uint32_t step0 = 0, step1 = 0;           // training step t
  int64_t batchBase = 0;                   // batch position of the problem's first image
  int64_t maskStrideX = 1, maskStrideY = 1, maskStrideC = 1;
  int64_t maskWidth = 1, maskChannels = 1;  // Wm, Cm of the broadcast-reduced mask
};

/// Linear index of the mask element used by destination element (y, x, c) of the clip region.
MPSNN_HD int64_t maskElement(const DropoutParams& p, int64_t y, int64_t x, int64_t c) {
  return ((y * p.maskStrideY) * p.maskWidth + x * p.maskStrideX) * p.maskChannels + c * p.maskStrideC;
}

/// The four Philox words that decide mask elements 4·group … 4·group + 3 of batch position `n`.
MPSNN_HD Philox4x32Words maskWords(const DropoutParams& p, int64_t n, int64_t group) {
  return philox4x32_10(uint32_t(group), uint32_t(n), p.step0, p.step1, p.key0, p.key1);
}

MPSNN_HD bool keeps(const DropoutParams& p, uint32_t word) { return uint64_t(word) < p.threshold; }

/// m · x / keepProbability in float32: a dropped element is 0·x (±0, or NaN for a NaN or infinite x,
/// as the formula and PyTorch give), a kept one the correctly rounded x / keepProbability.
MPSNN_HD float dropoutValue(float x, bool keep, float keepProbability) {
#if defined(__CUDA_ARCH__)
  return __fdiv_rn(keep ? x : __fmul_rn(0.0f, x), keepProbability);
#else
  return (keep ? x : 0.0f * x) / keepProbability;
#endif
}

struct DropoutProblem {
  UnaryProblem io;
  DropoutParams dropout;
};

/// True when every source read of `p` is inside the source image (edge mode irrelevant).
inline bool dropoutReadsInside(const UnaryProblem& p) {
  return p.offsetX >= 0 && p.offsetY >= 0 && p.offsetX + p.dst.w <= p.src.w && p.offsetY + p.dst.h <= p.src.h;
}

ImplementationList<DropoutProblem>& cpuDropoutImplementations();
#if defined(MPSNN_HAVE_CUDA)
ImplementationList<DropoutProblem>& cudaDropoutImplementations();
#endif

}  // namespace mpsnn::detail
