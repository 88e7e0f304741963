// CUDA convolution transpose (spec 01 §6) with strides > 1: cuDNN's backward-data convolution. A
// transpose is a stride-1 convolution over the zero-inserted source Z with the weights as given;
// cuDNN's backward data scatters each source pixel u to outputs x = u·s − pad + k'·d, which is the
// same sum with the kernel rotated by 180° (k' = k − 1 − kx), input and output channels exchanged,
// and pad = t − floor(kWd/2) + (k − 1)·d, t being the centre offset in Z. cuDNN's padding is
// symmetric, so its output grid is (W − 1)·s + kWd − 2·pad (up to s − 1 more, as PyTorch's
// output_padding) wide, of which the destination takes the first columns. Stride-1 transposes are
// ordinary convolutions and take the convolution's own paths; the rest takes the plain kernel.
#include <atomic>
#include <string>
#include <vector>

#include "cuda/context.h"
#include "cuda/convolution_cuda.h"
#include "cuda/launch.h"
#include "kernels/convolution_impl.h"

namespace mpsnn::detail {
namespace {

/// One axis: cuDNN's symmetric padding and the extent of its output grid.
struct TransposeAxis {
  bool ok = false;
  int64_t pad = 0, grid = 0;
};

TransposeAxis planAxis(int64_t extent, int64_t insert, int64_t offset, int64_t outputs, int64_t kernel,
                       int64_t dilation, ImageEdgeMode edge) {
  TransposeAxis a;
  const int64_t span = (kernel - 1) * dilation, zExtent = (extent - 1) * insert + 1;
  const int64_t padBegin = offset - (span + 1) / 2 + span;
  const int64_t padEnd = zExtent + span - padBegin - outputs;  // as a deconvolution's right padding
  // cuDNN pads with zeros, as edge mode Zero reads outside Z; Clamp maps only when every tap of
  // every output falls inside Z.
  if (padBegin < 0 || padEnd < 0) return a;
  if (edge != ImageEdgeMode::Zero && (padBegin < span || padEnd < span)) return a;
  a.pad = padBegin;
  // cuDNN accepts grid extents g with floor((g + 2·pad − span − 1) / s) + 1 == extent.
  const int64_t natural = (extent - 1) * insert + span + 1 - 2 * padBegin;
  a.grid = std::max(outputs, natural);
  if (a.grid < 1 || a.grid > natural + insert - 1) return a;
  // Keep the wasted part of the grid small.
  if (a.grid > outputs + 2 * insert) return a;
  a.ok = true;
  return a;
}

struct TransposePlan {
  bool ok = false;
  TransposeAxis x, y;
  bool half = false;        // float16 source: cuDNN runs in half with float accumulation
  bool copySource = false;  // the source is not dense NHWC: gather it first
  bool direct = false;      // cuDNN writes the (dense, same-format) destination itself
};

TransposePlan planTranspose(const ConvolutionProblem& p) {
  TransposePlan plan;
  const ImageView& s = p.io.src;
  const ImageView& d = p.io.dst;
  if (!p.zeroInserted() || p.subPixel != 1 || p.strideX != 1 || p.strideY != 1) return plan;
  if (s.format != ImageFeatureChannelFormat::Float32 && s.format != ImageFeatureChannelFormat::Float16)
    return plan;
  // cuDNN takes int extents.
  for (int64_t v : {s.n, s.h, s.w, p.inputChannels, p.outputChannels, d.h, d.w})
    if (v >= (int64_t(1) << 30)) return plan;
  plan.x = planAxis(s.w, p.zeroInsertX, p.io.offsetX, d.w, p.kernelWidth, p.dilationX, p.io.edgeMode);
  plan.y = planAxis(s.h, p.zeroInsertY, p.io.offsetY, d.h, p.kernelHeight, p.dilationY, p.io.edgeMode);
  if (!plan.x.ok || !plan.y.ok) return plan;
  plan.half = s.format == ImageFeatureChannelFormat::Float16;
  plan.copySource = !packedView(s.n, s.h, s.w, p.inputChannels, s);
  plan.direct =
      d.format == s.format && plan.x.grid == d.w && plan.y.grid == d.h && packedView(d.n, d.h, d.w, d.c, d);
  plan.ok = true;
  return plan;
}

bool transposeSupports(const ConvolutionProblem& p) { return planTranspose(p).ok; }

/// cuDNN's filter (NHWC, K = Ci, C = Co/G): F[i][ky][kx][oc] = W[g·Cog + oc][kH−1−ky][kW−1−kx][i − g·Cig]
/// with g = i / Cig; float32 or float16.
template <class T>
__global__ void transposeFilterKernel(const float* __restrict__ weights, T* __restrict__ filter, int64_t Ci,
                                      int64_t Cig, int64_t Cog, int64_t kH, int64_t kW) {
  const int64_t total = Ci * kH * kW * Cog;
  for (int64_t idx = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; idx < total;
       idx += int64_t(gridDim.x) * blockDim.x) {
    const int64_t oc = idx % Cog, kx = idx / Cog % kW, ky = idx / (Cog * kW) % kH, i = idx / (Cog * kW * kH);
    const int64_t g = i / Cig, o = g * Cog + oc;
    const float w = weights[((o * kH + (kH - 1 - ky)) * kW + (kW - 1 - kx)) * Cig + (i - g * Cig)];
    if constexpr (sizeof(T) == 2)
      filter[idx] = floatToHalf(w);
    else
      filter[idx] = w;
  }
}

struct TransposeFilter {
  StoragePtr storage;
};

struct TransposeAlgorithms {
  std::vector<cudnnConvolutionBwdDataAlgoPerf_t> candidates;
  size_t maxWorkspace = 0;
  std::atomic<int> working{-1};
};

bool acceptable(const cudnnConvolutionBwdDataAlgoPerf_t& perf, bool half) {
  if (perf.status != CUDNN_STATUS_SUCCESS) return false;
  if (!half && perf.mathType == CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION) return false;  // float32 stays float32
  return perf.memory <= (size_t(1) << 30);
}

void transposeRun(const ConvolutionProblem& p, QueueContext& ctx) {
  auto& cuda = cudaContext(ctx);
  MPSNN_CUDA_CHECK(cudaSetDevice(cuda.ordinal()));
  const TransposePlan plan = planTranspose(p);
  const ImageView& s = p.io.src;
  const int64_t n = p.io.dst.n, Ci = p.inputChannels, Co = p.outputChannels, G = p.groups;
  const int64_t H = s.h, W = s.w, gridH = plan.y.grid, gridW = plan.x.grid;
  const cudnnDataType_t type = plan.half ? CUDNN_DATA_HALF : CUDNN_DATA_FLOAT;
  const size_t elem = plan.half ? 2 : 4;
  cudnnHandle_t handle = cuda.cudnn();

  TensorDesc dy, dx;
  FilterDesc w;
  ConvDesc conv;
  MPSNN_CUDNN_CHECK(cudnnCreateTensorDescriptor(&dy.h));
  MPSNN_CUDNN_CHECK(cudnnCreateTensorDescriptor(&dx.h));
  MPSNN_CUDNN_CHECK(cudnnCreateFilterDescriptor(&w.h));
  MPSNN_CUDNN_CHECK(cudnnCreateConvolutionDescriptor(&conv.h));
  // The transpose's source is cuDNN's dy (the forward convolution's output, Ci channels).
  if (plan.copySource)
    MPSNN_CUDNN_CHECK(
        cudnnSetTensor4dDescriptor(dy.h, CUDNN_TENSOR_NHWC, type, int(n), int(Ci), int(H), int(W)));
  else
    MPSNN_CUDNN_CHECK(cudnnSetTensor4dDescriptorEx(dy.h, type, int(n), int(Ci), int(H), int(W),
                                                   int(H * W * Ci), 1, int(W * Ci), int(Ci)));
  MPSNN_CUDNN_CHECK(
      cudnnSetTensor4dDescriptor(dx.h, CUDNN_TENSOR_NHWC, type, int(n), int(Co), int(gridH), int(gridW)));
  MPSNN_CUDNN_CHECK(cudnnSetFilter4dDescriptor(w.h, type, CUDNN_TENSOR_NHWC, int(Ci),
                                               int(p.outputChannelsPerGroup()), int(p.kernelHeight),
                                               int(p.kernelWidth)));
  MPSNN_CUDNN_CHECK(cudnnSetConvolution2dDescriptor(
      conv.h, int(plan.y.pad), int(plan.x.pad), int(p.zeroInsertY), int(p.zeroInsertX), int(p.dilationY),
      int(p.dilationX), CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT));
  MPSNN_CUDNN_CHECK(cudnnSetConvolutionGroupCount(conv.h, int(G)));
  MPSNN_CUDNN_CHECK(cudnnSetConvolutionMathType(conv.h, mathTypeFor(plan.half, p.allowTF32)));
  // cuDNN's own shape rule must give back the source extent from the chosen grid.
  int on = 0, oc = 0, oh = 0, ow = 0;
  MPSNN_CUDNN_CHECK(cudnnGetConvolution2dForwardOutputDim(conv.h, dx.h, w.h, &on, &oc, &oh, &ow));
  if (on != n || oc != Ci || oh != H || ow != W) return cudaConvolutionPlain(p, ctx);  // not expected

  auto filter = p.cache->getOrCreate<TransposeFilter>(
      plan.half ? "cuda:transpose-filter-f16" : "cuda:transpose-filter-f32", [&] {
        auto f = std::make_shared<TransposeFilter>();
        const int64_t count = p.weightCount();
        f->storage = std::make_shared<Storage>(s.storage->device(), size_t(count) * elem);
        if (plan.half)
          transposeFilterKernel<uint16_t><<<gridBlocks(count), kThreadsPerBlock, 0, cuda.stream()>>>(
              p.weights, static_cast<uint16_t*>(f->storage->data()), Ci, p.inputChannelsPerGroup(),
              p.outputChannelsPerGroup(), p.kernelHeight, p.kernelWidth);
        else
          transposeFilterKernel<float><<<gridBlocks(count), kThreadsPerBlock, 0, cuda.stream()>>>(
              p.weights, static_cast<float*>(f->storage->data()), Ci, p.inputChannelsPerGroup(),
              p.outputChannelsPerGroup(), p.kernelHeight, p.kernelWidth);
        MPSNN_CUDA_LAUNCH_CHECK();
        // Other queues may use the filter at once: finish it before publishing.
        MPSNN_CUDA_CHECK(cudaStreamSynchronize(cuda.stream()));
        return f;
      });

  std::string key = "cudnn-backward-data";
  for (int64_t v : {n,
                    Ci,
                    H,
                    W,
                    Co,
                    gridH,
                    gridW,
                    G,
                    p.kernelHeight,
                    p.kernelWidth,
                    p.zeroInsertY,
                    p.zeroInsertX,
                    p.dilationY,
                    p.dilationX,
                    plan.y.pad,
                    plan.x.pad,
                    int64_t(plan.half),
                    int64_t(p.allowTF32),
                    int64_t(plan.copySource),
                    int64_t(plan.direct),
                    int64_t(reinterpret_cast<uintptr_t>(s.data()) % 16),
                    int64_t(reinterpret_cast<uintptr_t>(p.io.dst.data()) % 16)}) {
    key += ',';
    key += std::to_string(v);
  }
  auto algorithms = p.cache->getOrCreate<TransposeAlgorithms>(key, [&] {
    auto a = std::make_shared<TransposeAlgorithms>();
    int count = 0;
    MPSNN_CUDNN_CHECK(cudnnGetConvolutionBackwardDataAlgorithmMaxCount(handle, &count));
    std::vector<cudnnConvolutionBwdDataAlgoPerf_t> perf(size_t(std::max(count, 1)));
    int returned = 0;
    MPSNN_CUDNN_CHECK(cudnnGetConvolutionBackwardDataAlgorithm_v7(handle, w.h, dy.h, conv.h, dx.h,
                                                                  int(perf.size()), &returned, perf.data()));
    for (int i = 0; i < returned; ++i) {
      if (!acceptable(perf[size_t(i)], plan.half)) continue;
      size_t bytes = 0;
      if (cudnnGetConvolutionBackwardDataWorkspaceSize(handle, w.h, dy.h, conv.h, dx.h, perf[size_t(i)].algo,
                                                       &bytes) != CUDNN_STATUS_SUCCESS)
        continue;
      perf[size_t(i)].memory = bytes;
      a->candidates.push_back(perf[size_t(i)]);
      a->maxWorkspace = std::max(a->maxWorkspace, bytes);
    }
    return a;
  });
  if (algorithms->candidates.empty()) return cudaConvolutionPlain(p, ctx);

  // One scratch block: [gathered source][cuDNN's output grid unless direct][cuDNN workspace].
  const size_t sourceBytes = plan.copySource ? alignUp(size_t(n * H * W * Ci) * elem) : 0;
  const size_t gridBytes = plan.direct ? 0 : alignUp(size_t(n * gridH * gridW * Co) * elem);
  char* scratch =
      static_cast<char*>(cuda.workspace(sourceBytes + gridBytes + algorithms->maxWorkspace + 256));
  void* grid = plan.direct ? p.io.dst.data() : scratch + sourceBytes;
  void* workspace = scratch + sourceBytes + gridBytes;
  const void* source = s.data();
  if (plan.copySource) {
    cudaGatherWindow(s, 0, 0, n, H, W, Ci, scratch, cuda.stream());
    source = scratch;
  }

  const float one = 1.0f, zero = 0.0f;
  const int count = int(algorithms->candidates.size());
  const int first = std::max(algorithms->working.load(), 0);
  bool done = false;
  for (int k = 0; k < count && !done; ++k) {
    const int i = (first + k) % count;
    const auto& perf = algorithms->candidates[size_t(i)];
    const cudnnStatus_t status =
        cudnnConvolutionBackwardData(handle, &one, w.h, filter->storage->data(), dy.h, source, conv.h,
                                     perf.algo, workspace, perf.memory, &zero, dx.h, grid);
    if (status == CUDNN_STATUS_SUCCESS) {
      algorithms->working = i;
      done = true;
    } else if (int(status) / 1000 != 2 && int(status) / 1000 != 3) {  // not a BAD_PARAM_* / NOT_SUPPORTED_*
      MPSNN_CUDNN_CHECK(status);
    }
  }
  if (!done) return cudaConvolutionPlain(p, ctx);
  if (plan.direct)
    cudaBiasNeuronInPlace(p, grid, plan.half, cuda.stream());
  else
    cudaGridEpilogue(p, grid, plan.half, gridH, gridW, cuda.stream());
}

}  // namespace

Implementation<ConvolutionProblem> cudaConvolutionTransposeDeconvolution() {
  return {"cuda:cudnn-backward-data", transposeSupports, transposeRun};
}

}  // namespace mpsnn::detail
