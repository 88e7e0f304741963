// Internal (CUDA backend): launch geometry shared by the element-wise kernels.
#pragma once
#include <cuda_fp16.h>

#include <cstdint>

namespace mpsnn::detail {

/// Threads per block of the grid-stride element-wise kernels.
constexpr int kThreadsPerBlock = 256;

/// Blocks for a grid-stride loop over `work` items, `perThread` items per thread and pass: enough
/// to cover the work once, capped so that huge images loop instead of overflowing the grid.
inline unsigned gridBlocks(int64_t work, int64_t perThread = 1) {
  const int64_t perBlock = int64_t(kThreadsPerBlock) * perThread;
  const int64_t blocks = (work + perBlock - 1) / perBlock;
  return unsigned(blocks < 1 ? 1 : (blocks > 65535 * 8 ? 65535 * 8 : blocks));
}

// ---- typed element access of the float32 / float16 fast paths ----
template <class T>
__device__ __forceinline__ float toFloat(T v);
template <>
__device__ __forceinline__ float toFloat<float>(float v) {
  return v;
}
template <>
__device__ __forceinline__ float toFloat<__half>(__half v) {
  return __half2float(v);
}
template <class T>
__device__ __forceinline__ T fromFloat(float v);
template <>
__device__ __forceinline__ float fromFloat<float>(float v) {
  return v;
}
template <>
__device__ __forceinline__ __half fromFloat<__half>(float v) {
  return __float2half_rn(v);  // round to nearest even, as storeFromFloat
}
template <class T>
__device__ __forceinline__ float loadValue(const T* p, int64_t i) {
  return toFloat<T>(p[i]);
}
template <class T>
__device__ __forceinline__ void storeValue(T* p, int64_t i, float v) {
  p[i] = fromFloat<T>(v);
}

}  // namespace mpsnn::detail
