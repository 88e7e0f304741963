// Internal (CUDA backend): the queue context ops receive, and error-checking helpers.
#pragma once
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cudnn.h>

#include <string>

#include "core/backend.h"
#include "mpsnn/error.h"

namespace mpsnn::detail {

[[noreturn]] void throwCuda(cudaError_t e, const char* call, const char* file, int line);
[[noreturn]] void throwCudnn(cudnnStatus_t s, const char* call, const char* file, int line);
[[noreturn]] void throwCublas(cublasStatus_t s, const char* call, const char* file, int line);

#define MPSNN_CUDA_CHECK(call)                                                          \
  do {                                                                                  \
    cudaError_t e_ = (call);                                                            \
    if (e_ != cudaSuccess) ::mpsnn::detail::throwCuda(e_, #call, __FILE__, __LINE__);   \
  } while (0)
#define MPSNN_CUDNN_CHECK(call)                                                                     \
  do {                                                                                              \
    cudnnStatus_t s_ = (call);                                                                      \
    if (s_ != CUDNN_STATUS_SUCCESS) ::mpsnn::detail::throwCudnn(s_, #call, __FILE__, __LINE__);     \
  } while (0)
#define MPSNN_CUBLAS_CHECK(call)                                                                    \
  do {                                                                                              \
    cublasStatus_t s_ = (call);                                                                     \
    if (s_ != CUBLAS_STATUS_SUCCESS) ::mpsnn::detail::throwCublas(s_, #call, __FILE__, __LINE__);   \
  } while (0)
/// After a kernel launch: reports launch-configuration errors at once.
#define MPSNN_CUDA_LAUNCH_CHECK() MPSNN_CUDA_CHECK(cudaGetLastError())

/// One per command queue: its stream, library handles bound to it, and a growable workspace.
class CudaQueueContext final : public QueueContext {
 public:
  explicit CudaQueueContext(int ordinal);
  ~CudaQueueContext() override;
  void finish() override;
  cudaStream_t stream() const { return stream_; }
  cudnnHandle_t cudnn();
  cublasHandle_t cublas();
  /// Scratch memory valid until the next call on this context (work items run one at a time).
  void* workspace(size_t bytes);
  int ordinal() const { return ordinal_; }

 private:
  int ordinal_;
  cudaStream_t stream_ = nullptr;
  cudnnHandle_t cudnn_ = nullptr;
  cublasHandle_t cublas_ = nullptr;
  void* workspace_ = nullptr;
  size_t workspaceBytes_ = 0;
};

inline CudaQueueContext& cudaContext(QueueContext& ctx) { return static_cast<CudaQueueContext&>(ctx); }

}  // namespace mpsnn::detail
