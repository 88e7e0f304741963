// Internal (CUDA backend): launch geometry shared by the element-wise kernels.
#pragma once
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

}  // namespace mpsnn::detail
