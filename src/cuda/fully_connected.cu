// CUDA fully connected (spec 01 §5): a window covering the whole source is one matrix product,
// out[n][o] = Σ_k src[n][k] · W[o][k] with k running over (y, x, i) — exactly the OHWI weight row.
// cuBLAS: float32 sources with cublasSgemm (pedantic math, TF32 only when the kernel allows it),
// float16 sources with cublasGemmEx (float16 inputs, float32 accumulation and result); then one
// kernel adds the bias, applies the neuron and converts to the destination format. The convolution
// paths take everything else (strided source pixels, other formats).
#include "cuda/context.h"
#include "cuda/convolution_cuda.h"
#include "cuda/launch.h"
#include "kernels/convolution_impl.h"

namespace mpsnn::detail {
namespace {

constexpr int64_t kIntLimit = int64_t(1) << 31;

struct GemmPlan {
  bool ok = false;
  bool half = false;    // float16 source and weights
  bool direct = false;  // cuBLAS writes the float32 destination itself
  int64_t lda = 0, ldc = 0;
};

GemmPlan planGemm(const ConvolutionProblem& p) {
  GemmPlan plan;
  const ImageView& s = p.io.src;
  const ImageView& d = p.io.dst;
  if (!p.wholeSourceWindow() || p.groups != 1) return plan;
  if (s.format != ImageFeatureChannelFormat::Float32 && s.format != ImageFeatureChannelFormat::Float16)
    return plan;
  if (!packedView(1, s.h, s.w, p.inputChannels, s)) return plan;
  const int64_t K = s.h * s.w * p.inputChannels;
  plan.half = s.format == ImageFeatureChannelFormat::Float16;
  plan.direct = d.format == ImageFeatureChannelFormat::Float32;
  plan.lda = d.n == 1 ? K : s.imageStride;
  plan.ldc = plan.direct && d.n > 1 ? d.imageStride : p.outputChannels;
  for (int64_t v : {d.n, p.outputChannels, K, plan.lda, plan.ldc})
    if (v >= kIntLimit) return plan;  // cuBLAS takes int sizes
  plan.ok = true;
  return plan;
}

bool gemmSupports(const ConvolutionProblem& p) { return planGemm(p).ok; }

/// dst(i, 0, 0, o) = neuron(product[i·ldc + o] + bias[o]); in place when the product is the destination.
__global__ void fullyConnectedEpilogueKernel(const float* product, int64_t ldc, RawView dst,
                                             const float* biases, NeuronParams neuron) {
  const int64_t total = dst.n * dst.c;
  for (int64_t idx = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; idx < total;
       idx += int64_t(gridDim.x) * blockDim.x) {
    const int64_t o = idx % dst.c, i = idx / dst.c;
    float v = product[i * ldc + o];
    if (biases) v += biases[o];
    dst.store(dst.index(i, 0, 0, o), applyNeuron(neuron, v, o));
  }
}

void gemmRun(const ConvolutionProblem& p, QueueContext& ctx) {
  auto& cuda = cudaContext(ctx);
  MPSNN_CUDA_CHECK(cudaSetDevice(cuda.ordinal()));
  const GemmPlan plan = planGemm(p);
  const ImageView& s = p.io.src;
  const ImageView& d = p.io.dst;
  const int n = int(d.n), Co = int(p.outputChannels), K = int(s.h * s.w * p.inputChannels);
  float* product = plan.direct
                       ? static_cast<float*>(d.data())
                       : static_cast<float*>(cuda.workspace(size_t(d.n) * size_t(Co) * sizeof(float)));
  cublasHandle_t handle = cuda.cublas();
  const float one = 1.0f, zero = 0.0f;
  // Column-major view of the row-major product: Cᵀ (Co × n) = W (K × Co)ᵀ · Aᵀ (K × n).
  if (plan.half) {
    const uint16_t* weights = cudaHalfWeights(p, cuda);
    // float16 products accumulate in float32 on the tensor cores, as cuDNN's float16 path does.
    MPSNN_CUBLAS_CHECK(cublasSetMathMode(handle, CUBLAS_DEFAULT_MATH));
    const cublasStatus_t status = cublasGemmEx(
        handle, CUBLAS_OP_T, CUBLAS_OP_N, Co, n, K, &one, weights, CUDA_R_16F, K, s.data(), CUDA_R_16F,
        int(plan.lda), &zero, product, CUDA_R_32F, int(plan.ldc), CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
    cublasSetMathMode(handle, CUBLAS_PEDANTIC_MATH);  // the handle's state for every other user
    MPSNN_CUBLAS_CHECK(status);
  } else {
    // float32 means float32 (DESIGN §3): pedantic math unless the kernel allows TF32.
    MPSNN_CUBLAS_CHECK(
        cublasSetMathMode(handle, p.allowTF32 ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_PEDANTIC_MATH));
    const cublasStatus_t status =
        cublasSgemm(handle, CUBLAS_OP_T, CUBLAS_OP_N, Co, n, K, &one, p.weights, K,
                    static_cast<const float*>(s.data()), int(plan.lda), &zero, product, int(plan.ldc));
    cublasSetMathMode(handle, CUBLAS_PEDANTIC_MATH);
    MPSNN_CUBLAS_CHECK(status);
  }
  const int64_t total = d.n * d.c;
  fullyConnectedEpilogueKernel<<<gridBlocks(total), kThreadsPerBlock, 0, cuda.stream()>>>(
      product, plan.ldc, d.raw(), p.biases, p.neuron);
  MPSNN_CUDA_LAUNCH_CHECK();
}

}  // namespace

Implementation<ConvolutionProblem> cudaFullyConnectedGemm() { return {"cuda:cublas", gemmSupports, gemmRun}; }

}  // namespace mpsnn::detail
