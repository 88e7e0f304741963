// Conversions between float and every channel storage format (spec 00 §1.1). Usable from host and
// CUDA device code.
#pragma once
#include <cmath>
#include <cstdint>
#include <cstring>

#include "mpsnn/types.h"

#if defined(__CUDACC__)
#define MPSNN_HD __host__ __device__ __forceinline__
#define MPSNN_ALWAYS_INLINE
#else
#define MPSNN_HD inline
// For per-element functions called from loops that must vectorise (the switch folds away only
// when the function is inlined into a loop instantiated for one constant case).
#define MPSNN_ALWAYS_INLINE __attribute__((always_inline))
#endif

namespace mpsnn::detail {

MPSNN_HD uint32_t floatBits(float f) {
#if defined(__CUDA_ARCH__)
  return __float_as_uint(f);
#else
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
#endif
}
MPSNN_HD float bitsFloat(uint32_t u) {
#if defined(__CUDA_ARCH__)
  return __uint_as_float(u);
#else
  float f;
  std::memcpy(&f, &u, 4);
  return f;
#endif
}

/// IEEE binary16 → float (exact).
MPSNN_HD float halfToFloat(uint16_t h) {
  uint32_t sign = uint32_t(h & 0x8000) << 16;
  uint32_t exp = (h >> 10) & 0x1f;
  uint32_t mant = h & 0x3ff;
  uint32_t bits;
  if (exp == 0) {
    if (mant == 0) {
      bits = sign;
    } else {  // subnormal: normalise
      int e = -1;
      do {
        mant <<= 1;
        ++e;
      } while ((mant & 0x400) == 0);
      bits = sign | uint32_t(127 - 15 - e) << 23 | (mant & 0x3ff) << 13;
    }
  } else if (exp == 31) {
    bits = sign | 0x7f800000u | mant << 13 | (mant ? 0x400000u : 0);
  } else {
    bits = sign | (exp + 112) << 23 | mant << 13;
  }
  return bitsFloat(bits);
}

/// float → IEEE binary16, round to nearest even; overflow → ±inf; NaN stays NaN.
MPSNN_HD uint16_t floatToHalf(float f) {
  uint32_t x = floatBits(f);
  uint16_t sign = uint16_t((x >> 16) & 0x8000);
  uint32_t absx = x & 0x7fffffff;
  if (absx >= 0x7f800000u) return uint16_t(sign | 0x7c00 | (absx > 0x7f800000u ? 0x200 : 0));
  if (absx >= 0x477ff000u) return uint16_t(sign | 0x7c00);  // rounds to >= 65520 → inf
  if (absx < 0x38800000u) {                                  // result subnormal or zero
    if (absx < 0x33000000u) return sign;                     // < 2^-25: rounds to 0
    uint32_t e = absx >> 23;
    uint32_t mant = (absx & 0x7fffff) | 0x800000;
    uint32_t shift = 126 - e;  // 14 + (113 - e) ... bits to drop so that unit = 2^-24
    uint32_t half = mant >> shift;
    uint32_t rem = mant & ((1u << shift) - 1);
    uint32_t mid = 1u << (shift - 1);
    if (rem > mid || (rem == mid && (half & 1))) ++half;
    return uint16_t(sign | half);
  }
  uint32_t r = absx - 0x38000000u;  // rebias exponent 127 → 15
  uint32_t half = r >> 13;
  uint32_t rem = r & 0x1fff;
  if (rem > 0x1000 || (rem == 0x1000 && (half & 1))) ++half;
  return uint16_t(sign | half);
}

MPSNN_HD float bfloat16ToFloat(uint16_t b) { return bitsFloat(uint32_t(b) << 16); }

/// float → bfloat16, round to nearest even; NaN becomes a quiet NaN.
MPSNN_HD uint16_t floatToBFloat16(float f) {
  uint32_t x = floatBits(f);
  if ((x & 0x7fffffff) > 0x7f800000u) return uint16_t((x >> 16) | 0x40);
  uint32_t lsb = (x >> 16) & 1;
  x += 0x7fff + lsb;
  return uint16_t(x >> 16);
}

/// Unorm: round_half_even(clamp(v,0,1)·max); NaN → 0.
MPSNN_HD uint32_t floatToUnorm(float v, float maxval) {
  if (!(v > 0.0f)) return 0;  // also NaN
  if (v >= 1.0f) return uint32_t(maxval);
  return uint32_t(rintf(v * maxval));
}

/// Loads element `i` of a buffer of `format` as float.
MPSNN_HD float loadAsFloat(const void* base, int64_t i, ImageFeatureChannelFormat format) {
  switch (format) {
    case ImageFeatureChannelFormat::Float32: return static_cast<const float*>(base)[i];
    case ImageFeatureChannelFormat::Float16: return halfToFloat(static_cast<const uint16_t*>(base)[i]);
    case ImageFeatureChannelFormat::BFloat16: return bfloat16ToFloat(static_cast<const uint16_t*>(base)[i]);
    case ImageFeatureChannelFormat::Unorm8: return float(static_cast<const uint8_t*>(base)[i]) / 255.0f;
    case ImageFeatureChannelFormat::Unorm16: return float(static_cast<const uint16_t*>(base)[i]) / 65535.0f;
    default: return 0.0f;
  }
}

/// Stores `v` as element `i` of a buffer of `format`, rounding as spec 00 §1.1.
MPSNN_HD void storeFromFloat(void* base, int64_t i, ImageFeatureChannelFormat format, float v) {
  switch (format) {
    case ImageFeatureChannelFormat::Float32: static_cast<float*>(base)[i] = v; break;
    case ImageFeatureChannelFormat::Float16: static_cast<uint16_t*>(base)[i] = floatToHalf(v); break;
    case ImageFeatureChannelFormat::BFloat16: static_cast<uint16_t*>(base)[i] = floatToBFloat16(v); break;
    case ImageFeatureChannelFormat::Unorm8: static_cast<uint8_t*>(base)[i] = uint8_t(floatToUnorm(v, 255.0f)); break;
    case ImageFeatureChannelFormat::Unorm16:
      static_cast<uint16_t*>(base)[i] = uint16_t(floatToUnorm(v, 65535.0f));
      break;
    default: break;
  }
}

}  // namespace mpsnn::detail
