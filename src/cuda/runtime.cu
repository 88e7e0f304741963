// The CUDA backend: device memory, synchronous copies, one stream per command queue.
#include <cstdio>
#include <memory>

#include "cuda/context.h"

namespace mpsnn::detail {

void throwCuda(cudaError_t e, const char* call, const char* file, int line) {
  throw DeviceError(std::string("CUDA error ") + cudaGetErrorName(e) + " (" + cudaGetErrorString(e) + ") in " + call +
                    " at " + file + ":" + std::to_string(line));
}
void throwCudnn(cudnnStatus_t s, const char* call, const char* file, int line) {
  throw DeviceError(std::string("cuDNN error ") + cudnnGetErrorString(s) + " in " + call + " at " + file + ":" +
                    std::to_string(line));
}
void throwCublas(cublasStatus_t s, const char* call, const char* file, int line) {
  throw DeviceError(std::string("cuBLAS error ") + cublasGetStatusName(s) + " in " + call + " at " + file + ":" +
                    std::to_string(line));
}

CudaQueueContext::CudaQueueContext(int ordinal) : ordinal_(ordinal) {
  MPSNN_CUDA_CHECK(cudaSetDevice(ordinal));
  MPSNN_CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
}

CudaQueueContext::~CudaQueueContext() {
  cudaSetDevice(ordinal_);
  if (stream_) cudaStreamSynchronize(stream_);
  if (cudnn_) cudnnDestroy(cudnn_);
  if (cublas_) cublasDestroy(cublas_);
  if (workspace_) cudaFree(workspace_);
  if (stream_) cudaStreamDestroy(stream_);
}

void CudaQueueContext::finish() {
  MPSNN_CUDA_CHECK(cudaSetDevice(ordinal_));
  MPSNN_CUDA_CHECK(cudaStreamSynchronize(stream_));
  MPSNN_CUDA_CHECK(cudaGetLastError());
}

cudnnHandle_t CudaQueueContext::cudnn() {
  if (!cudnn_) {
    MPSNN_CUDA_CHECK(cudaSetDevice(ordinal_));
    MPSNN_CUDNN_CHECK(cudnnCreate(&cudnn_));
    MPSNN_CUDNN_CHECK(cudnnSetStream(cudnn_, stream_));
  }
  return cudnn_;
}

cublasHandle_t CudaQueueContext::cublas() {
  if (!cublas_) {
    MPSNN_CUDA_CHECK(cudaSetDevice(ordinal_));
    MPSNN_CUBLAS_CHECK(cublasCreate(&cublas_));
    MPSNN_CUBLAS_CHECK(cublasSetStream(cublas_, stream_));
    // float32 stays float32: no TF32 unless a kernel opts in (DESIGN §3).
    MPSNN_CUBLAS_CHECK(cublasSetMathMode(cublas_, CUBLAS_PEDANTIC_MATH));
  }
  return cublas_;
}

void* CudaQueueContext::workspace(size_t bytes) {
  if (bytes <= workspaceBytes_) return workspace_;
  MPSNN_CUDA_CHECK(cudaStreamSynchronize(stream_));  // the old block may still be in use
  if (workspace_) MPSNN_CUDA_CHECK(cudaFree(workspace_));
  workspace_ = nullptr;
  workspaceBytes_ = 0;
  MPSNN_CUDA_CHECK(cudaMalloc(&workspace_, bytes));
  workspaceBytes_ = bytes;
  return workspace_;
}

namespace {

class CudaBackend final : public Backend {
 public:
  explicit CudaBackend(int ordinal) : ordinal_(ordinal) {
    cudaDeviceProp prop{};
    MPSNN_CUDA_CHECK(cudaGetDeviceProperties(&prop, ordinal));
    name_ = std::string("CUDA:") + std::to_string(ordinal) + " " + prop.name;
  }
  DeviceKind kind() const override { return DeviceKind::CUDA; }
  std::string name() const override { return name_; }
  void* allocate(size_t bytes) override {
    MPSNN_CUDA_CHECK(cudaSetDevice(ordinal_));
    void* p = nullptr;
    cudaError_t e = cudaMalloc(&p, bytes);
    if (e != cudaSuccess) {
      cudaGetLastError();
      throw DeviceError(name_ + ": cudaMalloc of " + std::to_string(bytes) + " bytes failed: " + cudaGetErrorString(e));
    }
    return p;
  }
  void deallocate(void* p) noexcept override {
    cudaSetDevice(ordinal_);
    cudaFree(p);  // cudaFree synchronizes the device, so queued work using p is done
  }
  // cudaMemcpy on the legacy stream is not ordered with our non-blocking streams: synchronize the
  // device first so transfers see every committed command buffer's writes.
  void copyToHost(void* dst, const void* src, size_t bytes) override {
    MPSNN_CUDA_CHECK(cudaSetDevice(ordinal_));
    MPSNN_CUDA_CHECK(cudaDeviceSynchronize());
    MPSNN_CUDA_CHECK(cudaMemcpy(dst, src, bytes, cudaMemcpyDeviceToHost));
  }
  void copyFromHost(void* dst, const void* src, size_t bytes) override {
    MPSNN_CUDA_CHECK(cudaSetDevice(ordinal_));
    MPSNN_CUDA_CHECK(cudaDeviceSynchronize());
    MPSNN_CUDA_CHECK(cudaMemcpy(dst, src, bytes, cudaMemcpyHostToDevice));
  }
  void zero(void* dst, size_t bytes) override {
    MPSNN_CUDA_CHECK(cudaSetDevice(ordinal_));
    MPSNN_CUDA_CHECK(cudaMemset(dst, 0, bytes));
    MPSNN_CUDA_CHECK(cudaDeviceSynchronize());
  }
  void copyOnQueue(QueueContext& ctx, void* dst, const void* src, size_t bytes) override {
    MPSNN_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, cudaContext(ctx).stream()));
  }
  std::unique_ptr<QueueContext> newQueueContext() override { return std::make_unique<CudaQueueContext>(ordinal_); }

 private:
  int ordinal_;
  std::string name_;
};

}  // namespace

std::unique_ptr<Backend> makeCudaBackend(int ordinal) { return std::make_unique<CudaBackend>(ordinal); }

int cudaDeviceCount() {
  static const int count = [] {
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess) {
      cudaGetLastError();
      return 0;
    }
    return n;
  }();
  return count;
}

}  // namespace mpsnn::detail
