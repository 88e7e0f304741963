// CUDA Gram matrix (spec 01 §10): per image G = alpha · Aᵀ·A with A the (H·W) × C matrix of pixels.
// cuBLAS (pedantic float32) when the source is float32 with evenly strided pixels and the
// destination float32; a plain kernel, one thread per (image, f, c), otherwise.
#include "cuda/context.h"
#include "cuda/launch.h"
#include "kernels/gram_matrix_impl.h"

namespace mpsnn::detail {
namespace {

__global__ void gramPlainKernel(RawView s, RawView d, float alpha) {
  const int64_t C = s.c, pixels = s.h * s.w, total = d.n * C * C;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total;
       i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t c = i % C, f = i / C % C, n = i / (C * C);
    double sum = 0.0;  // double: the sums run over whole images
    for (int64_t px = 0; px < pixels; ++px) {
      const int64_t at = s.index(n, px / s.w, px % s.w, 0);
      sum += double(s.load(at + f)) * double(s.load(at + c));
    }
    d.store(d.index(n, 0, f, c), float(double(alpha) * sum));
  }
}

bool plainSupports(const GramMatrixProblem&) { return true; }

void plainRun(const GramMatrixProblem& p, QueueContext& ctx) {
  auto& cuda = cudaContext(ctx);
  MPSNN_CUDA_CHECK(cudaSetDevice(cuda.ordinal()));
  const int64_t total = p.io.dst.n * p.io.src.c * p.io.src.c;
  gramPlainKernel<<<gridBlocks(total), kThreadsPerBlock, 0, cuda.stream()>>>(p.io.src.raw(), p.io.dst.raw(),
                                                                             p.alpha);
  MPSNN_CUDA_LAUNCH_CHECK();
}

bool cublasSupports(const GramMatrixProblem& p) {
  const ImageView& s = p.io.src;
  const ImageView& d = p.io.dst;
  constexpr int64_t limit = int64_t(1) << 31;
  return s.format == ImageFeatureChannelFormat::Float32 && d.format == ImageFeatureChannelFormat::Float32 &&
         (s.h == 1 || s.rowStride == s.w * s.pixelStride) && s.h * s.w < limit && s.pixelStride < limit &&
         d.pixelStride < limit;
}

void cublasRun(const GramMatrixProblem& p, QueueContext& ctx) {
  auto& cuda = cudaContext(ctx);
  MPSNN_CUDA_CHECK(cudaSetDevice(cuda.ordinal()));
  const ImageView& s = p.io.src;
  const ImageView& d = p.io.dst;
  const int C = int(s.c), pixels = int(s.h * s.w);
  cublasHandle_t handle = cuda.cublas();
  MPSNN_CUBLAS_CHECK(cublasSetMathMode(handle, CUBLAS_PEDANTIC_MATH));  // float32 means float32
  const float zero = 0.0f;
  for (int64_t n = 0; n < d.n; ++n) {
    const float* a = static_cast<const float*>(s.data()) + s.index(n, 0, 0, 0);
    float* g = static_cast<float*>(d.data()) + d.index(n, 0, 0, 0);
    // Column-major: A is C × pixels (leading dimension pixelStride); G = alpha · A · Aᵀ is
    // symmetric, so its column-major and row-major forms are the same.
    MPSNN_CUBLAS_CHECK(cublasSgemm(handle, CUBLAS_OP_N, CUBLAS_OP_T, C, C, pixels, &p.alpha, a,
                                   int(s.pixelStride), a, int(s.pixelStride), &zero, g, int(d.pixelStride)));
  }
}

}  // namespace

ImplementationList<GramMatrixProblem>& cudaGramMatrixImplementations() {
  static ImplementationList<GramMatrixProblem> list = {
      {"cuda:cublas", cublasSupports, cublasRun},
      {"cuda:plain", plainSupports, plainRun},
  };
  return list;
}

}  // namespace mpsnn::detail
