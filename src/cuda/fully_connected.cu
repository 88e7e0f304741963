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
  int64_t rows = 0, K = 0;  // the product is rows × Co: rows = images (FC) or n·h·w pixels (1 × 1)
  int64_t lda = 0, ldc = 0;
  int64_t sourceOffset = 0;  // elements from s.data() to the first source row
};

/// A 1 × 1, stride-1 convolution whose taps all fall inside the source (no padding, edge mode
/// irrelevant): destination pixel (n, y, x) reads source pixel (n, startY + y, startX + x).
bool pointwise(const ConvolutionProblem& p, int64_t& startY, int64_t& startX) {
  if (p.zeroInserted() || p.subPixel != 1 || p.kernelWidth != 1 || p.kernelHeight != 1 || p.strideX != 1 ||
      p.strideY != 1 || p.dilationX != 1 || p.dilationY != 1)
    return false;
  const AxisMapping mx = mapAxis(p.io.src.w, p.io.offsetX, p.outputWidth(), 1, 1, 1);
  const AxisMapping my = mapAxis(p.io.src.h, p.io.offsetY, p.outputHeight(), 1, 1, 1);
  if (!mx.readsInside || !my.readsInside) return false;
  startX = mx.start;
  startY = my.start;
  return true;
}

/// `pointwiseGemm`: the 1 × 1 case (M = n·h·w, K = Ci) instead of the fully-connected one
/// (M = n, K = h·w·Ci).
GemmPlan planGemm(const ConvolutionProblem& p, bool pointwiseGemm) {
  GemmPlan plan;
  const ImageView& s = p.io.src;
  const ImageView& d = p.io.dst;
  if (p.groups != 1) return plan;
  if (s.format != ImageFeatureChannelFormat::Float32 && s.format != ImageFeatureChannelFormat::Float16)
    return plan;
  plan.half = s.format == ImageFeatureChannelFormat::Float16;
  if (pointwiseGemm) {
    int64_t startY = 0, startX = 0;
    if (p.wholeSourceWindow() || !pointwise(p, startY, startX) || d.c != p.outputChannels) return plan;
    // The rows read (n, startY + y, startX + x) must be one dense Ci-strided run.
    if (!packedView(d.n, d.h, d.w, p.inputChannels, s)) return plan;
    plan.rows = d.n * d.h * d.w;
    plan.K = p.inputChannels;
    plan.lda = plan.K;
    plan.sourceOffset = s.index(0, startY, startX, 0);
    plan.direct = d.format == ImageFeatureChannelFormat::Float32 && packedView(d.n, d.h, d.w, d.c, d);
    plan.ldc = p.outputChannels;
  } else {
    if (!p.wholeSourceWindow()) return plan;
    if (!packedView(1, s.h, s.w, p.inputChannels, s)) return plan;
    plan.rows = d.n;
    plan.K = s.h * s.w * p.inputChannels;
    plan.direct = d.format == ImageFeatureChannelFormat::Float32;
    plan.lda = d.n == 1 ? plan.K : s.imageStride;
    plan.ldc = plan.direct && d.n > 1 ? d.imageStride : p.outputChannels;
  }
  for (int64_t v : {plan.rows, p.outputChannels, plan.K, plan.lda, plan.ldc})
    if (v >= kIntLimit) return plan;  // cuBLAS takes int sizes
  plan.ok = true;
  return plan;
}

bool gemmSupports(const ConvolutionProblem& p) { return planGemm(p, false).ok; }
bool pointwiseSupports(const ConvolutionProblem& p) { return planGemm(p, true).ok; }

/// dst(pixel i, o) = neuron(product[i·ldc + o] + bias[o]), pixel i = (n, y, x) in NHW order of the
/// destination (a fully-connected destination is 1 × 1); in place when the product is the destination.
__global__ void fullyConnectedEpilogueKernel(const float* product, int64_t ldc, RawView dst,
                                             const float* biases, NeuronParams neuron) {
  const int64_t total = dst.n * dst.h * dst.w * dst.c;
  for (int64_t idx = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; idx < total;
       idx += int64_t(gridDim.x) * blockDim.x) {
    const int64_t o = idx % dst.c, i = idx / dst.c;
    const int64_t x = i % dst.w, y = i / dst.w % dst.h, n = i / (dst.w * dst.h);
    float v = product[i * ldc + o];
    if (biases) v += biases[o];
    dst.store(dst.index(n, y, x, o), applyNeuron(neuron, v, o));
  }
}

void gemmRun(const ConvolutionProblem& p, QueueContext& ctx, bool pointwiseGemm) {
  auto& cuda = cudaContext(ctx);
  MPSNN_CUDA_CHECK(cudaSetDevice(cuda.ordinal()));
  const GemmPlan plan = planGemm(p, pointwiseGemm);
  const ImageView& s = p.io.src;
  const ImageView& d = p.io.dst;
  const int rows = int(plan.rows), Co = int(p.outputChannels), K = int(plan.K);
  const char* source = static_cast<const char*>(s.data()) + plan.sourceOffset * (plan.half ? 2 : 4);
  float* product = plan.direct ? static_cast<float*>(d.data())
                               : static_cast<float*>(cuda.workspace(size_t(plan.rows) * size_t(Co) * sizeof(float)));
  cublasHandle_t handle = cuda.cublas();
  const float one = 1.0f, zero = 0.0f;
  // Column-major view of the row-major product: Cᵀ (Co × rows) = W (K × Co)ᵀ · Aᵀ (K × rows).
  if (plan.half) {
    const uint16_t* weights = cudaHalfWeights(p, cuda);
    // float16 products accumulate in float32 on the tensor cores, as cuDNN's float16 path does.
    MPSNN_CUBLAS_CHECK(cublasSetMathMode(handle, CUBLAS_DEFAULT_MATH));
    const cublasStatus_t status = cublasGemmEx(
        handle, CUBLAS_OP_T, CUBLAS_OP_N, Co, rows, K, &one, weights, CUDA_R_16F, K, source, CUDA_R_16F,
        int(plan.lda), &zero, product, CUDA_R_32F, int(plan.ldc), CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
    cublasSetMathMode(handle, CUBLAS_PEDANTIC_MATH);  // the handle's state for every other user
    MPSNN_CUBLAS_CHECK(status);
  } else {
    // float32 means float32 (DESIGN §3): pedantic math unless the kernel allows TF32.
    MPSNN_CUBLAS_CHECK(
        cublasSetMathMode(handle, p.allowTF32 ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_PEDANTIC_MATH));
    const cublasStatus_t status =
        cublasSgemm(handle, CUBLAS_OP_T, CUBLAS_OP_N, Co, rows, K, &one, p.weights, K,
                    reinterpret_cast<const float*>(source), int(plan.lda), &zero, product, int(plan.ldc));
    cublasSetMathMode(handle, CUBLAS_PEDANTIC_MATH);
    MPSNN_CUBLAS_CHECK(status);
  }
  const int64_t total = d.n * d.h * d.w * d.c;
  fullyConnectedEpilogueKernel<<<gridBlocks(total), kThreadsPerBlock, 0, cuda.stream()>>>(
      product, plan.ldc, d.raw(), p.biases, p.neuron);
  MPSNN_CUDA_LAUNCH_CHECK();
}

void fullyConnectedRun(const ConvolutionProblem& p, QueueContext& ctx) { gemmRun(p, ctx, false); }
void pointwiseRun(const ConvolutionProblem& p, QueueContext& ctx) { gemmRun(p, ctx, true); }

}  // namespace

Implementation<ConvolutionProblem> cudaFullyConnectedGemm() {
  return {"cuda:cublas", gemmSupports, fullyConnectedRun};
}
Implementation<ConvolutionProblem> cudaConvolution1x1Gemm() {
  return {"cuda:cublas1x1", pointwiseSupports, pointwiseRun};
}

}  // namespace mpsnn::detail
