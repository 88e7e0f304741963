// CUDA convolutions: cuDNN (legacy forward API) for float32/float16 sources where MPS's placement
// maps onto symmetric padding, with a fused bias/neuron/sub-pixel/format epilogue of our own; and
// a plain kernel (one thread per output value) for everything, transposes' zero-inserted sources
// included. The list also holds the fully-connected GEMM (fully_connected.cu) and the transpose's
// backward-data path (convolution_transpose.cu); the helpers they share with this file are
// declared in convolution_cuda.h.
#include <algorithm>
#include <atomic>
#include <cstring>
#include <string>
#include <vector>

#include "cuda/context.h"
#include "cuda/convolution_cuda.h"
#include "cuda/launch.h"
#include "kernels/convolution_impl.h"

namespace mpsnn::detail {
namespace {

/// Everything the device kernels need, as plain data.
struct ConvParams {
  RawView src, dst;
  int64_t offsetX, offsetY;
  ImageEdgeMode edge;
  int64_t kW, kH, sX, sY, dX, dY, Cig, Cog, Co, r, Ho, Wo, halfW, halfH, insertX, insertY;
  const float* weights;
  const float* biases;
  NeuronParams neuron;
};

ConvParams paramsOf(const ConvolutionProblem& p) {
  return {p.io.src.raw(),
          p.io.dst.raw(),
          p.io.offsetX,
          p.io.offsetY,
          p.io.edgeMode,
          p.kernelWidth,
          p.kernelHeight,
          p.strideX,
          p.strideY,
          p.dilationX,
          p.dilationY,
          p.inputChannelsPerGroup(),
          p.outputChannelsPerGroup(),
          p.outputChannels,
          p.subPixel,
          p.outputHeight(),
          p.outputWidth(),
          p.dilatedWidth() / 2,
          p.dilatedHeight() / 2,
          p.zeroInsertX,
          p.zeroInsertY,
          p.weights,
          p.biases,
          p.neuron};
}

// ---- plain: one thread per conv output value (n, Y, X, o) ------------------------------------

__global__ void convolutionPlainKernel(ConvParams p) {
  const int64_t total = p.dst.n * p.Ho * p.Wo * p.Co;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total;
       i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t o = i % p.Co;
    int64_t t = i / p.Co;
    const int64_t X = t % p.Wo;
    t /= p.Wo;
    const int64_t Y = t % p.Ho, n = t / p.Ho;
    // Where the value lands (spec 01 §4.4 for sub-pixel); a partial last block may fall outside.
    int64_t x = X, y = Y, c = o;
    if (p.r > 1) {
      const int64_t cOut = p.Co / (p.r * p.r), block = o / cOut;
      c = o % cOut;
      y = Y * p.r + block / p.r;
      x = X * p.r + block % p.r;
      if (y >= p.dst.h || x >= p.dst.w) continue;
    }
    const int64_t g = o / p.Cog;
    const float* w = p.weights + o * p.kH * p.kW * p.Cig;
    float acc = 0.0f;
    for (int64_t ky = 0; ky < p.kH; ++ky) {
      int64_t sy = p.offsetY + Y * p.sY - p.halfH + ky * p.dY;
      if (!resolveInsertedTap(sy, p.src.h, p.insertY, p.edge)) continue;
      for (int64_t kx = 0; kx < p.kW; ++kx) {
        int64_t sx = p.offsetX + X * p.sX - p.halfW + kx * p.dX;
        if (!resolveInsertedTap(sx, p.src.w, p.insertX, p.edge)) continue;
        const int64_t at = p.src.index(n, sy, sx, g * p.Cig);
        const float* wk = w + (ky * p.kW + kx) * p.Cig;
        for (int64_t ci = 0; ci < p.Cig; ++ci) acc += wk[ci] * p.src.load(at + ci);
      }
    }
    if (p.biases) acc += p.biases[o];
    p.dst.store(p.dst.index(n, y, x, c), applyNeuron(p.neuron, acc, o));
  }
}

bool plainSupports(const ConvolutionProblem&) { return true; }

void plainRun(const ConvolutionProblem& p, QueueContext& ctx) {
  auto& cuda = cudaContext(ctx);
  MPSNN_CUDA_CHECK(cudaSetDevice(cuda.ordinal()));
  const int64_t total = p.io.dst.n * p.outputHeight() * p.outputWidth() * p.outputChannels;
  convolutionPlainKernel<<<gridBlocks(total), kThreadsPerBlock, 0, cuda.stream()>>>(paramsOf(p));
  MPSNN_CUDA_LAUNCH_CHECK();
}

// ---- cuDNN ------------------------------------------------------------------------------------

/// How the problem maps onto cuDNN: a narrowed source window (start, size) with symmetric padding
/// pad; cuDNN's output grid gridH × gridW may exceed the conv grid by a few rows/columns that are
/// computed and ignored (MPS puts no padding where cuDNN's symmetric padding adds some).
struct CudnnPlan {
  bool ok = false;
  int64_t startX = 0, startY = 0, width = 0, height = 0, padX = 0, padY = 0, gridW = 0, gridH = 0;
  bool half = false;        // float16 source: cuDNN runs in half with float accumulation
  bool copySource = false;  // the window is not dense NHWC: gather it first
  bool direct = false;      // cuDNN writes the (dense, same-format) destination itself
};

/// One axis; false when cuDNN's symmetric padding cannot express the MPS placement.
bool planAxis(int64_t extent, int64_t offset, int64_t outputs, int64_t kernel, int64_t stride,
              int64_t dilation, int64_t& start, int64_t& size, int64_t& pad, int64_t& gridSize) {
  const AxisMapping m = mapAxis(extent, offset, outputs, kernel, stride, dilation);
  if (!m.anyRead) return false;
  const int64_t available = extent - m.start;  // real data from the window start
  const int64_t reach = m.size + m.padEnd;     // one past the last tap, relative to start
  pad = m.padBegin;
  // cuDNN's right padding equals the left one, so it must cover every tap past the data.
  if (reach - pad > available) return false;
  start = m.start;
  const int64_t dilated = (kernel - 1) * dilation + 1;
  // Prefer the whole rest of the source (keeps a dense image dense); narrow it when that would
  // make cuDNN compute many outputs that are thrown away. Either way every tap's data is kept.
  size = available;
  gridSize = (size + 2 * pad - dilated) / stride + 1;
  if (gridSize > outputs + 1) {
    size = std::max(std::min(available, reach), reach - pad);
    gridSize = (size + 2 * pad - dilated) / stride + 1;
  }
  return gridSize >= outputs;
}

CudnnPlan planCudnn(const ConvolutionProblem& p) {
  CudnnPlan plan;
  if (p.zeroInserted()) return plan;  // a transpose: the backward-data path takes it
  const ImageView& s = p.io.src;
  if (s.format != ImageFeatureChannelFormat::Float32 && s.format != ImageFeatureChannelFormat::Float16)
    return plan;
  if (!planAxis(s.w, p.io.offsetX, p.outputWidth(), p.kernelWidth, p.strideX, p.dilationX, plan.startX,
                plan.width, plan.padX, plan.gridW) ||
      !planAxis(s.h, p.io.offsetY, p.outputHeight(), p.kernelHeight, p.strideY, p.dilationY, plan.startY,
                plan.height, plan.padY, plan.gridH))
    return plan;
  // cuDNN pads with zeros; Clamp maps only when no tap falls outside.
  if (p.io.edgeMode != ImageEdgeMode::Zero &&
      !(mapAxis(s.w, p.io.offsetX, p.outputWidth(), p.kernelWidth, p.strideX, p.dilationX).readsInside &&
        mapAxis(s.h, p.io.offsetY, p.outputHeight(), p.kernelHeight, p.strideY, p.dilationY).readsInside))
    return plan;
  // Keep the wasted part of cuDNN's grid small (it is at most about one stride per side).
  if (plan.gridW > p.outputWidth() + 2 || plan.gridH > p.outputHeight() + 2) return plan;
  plan.half = s.format == ImageFeatureChannelFormat::Float16;
  plan.copySource = !packedView(s.n, plan.height, plan.width, p.inputChannels, s);
  const ImageView& d = p.io.dst;
  plan.direct = p.subPixel == 1 && d.format == s.format && plan.gridW == p.outputWidth() &&
                plan.gridH == p.outputHeight() && packedView(d.n, d.h, d.w, d.c, d);
  plan.ok = true;
  return plan;
}

bool cudnnSupports(const ConvolutionProblem& p) { return planCudnn(p).ok; }

template <class T>
__global__ void gatherWindowKernel(const T* __restrict__ src, int64_t pixelStride, int64_t rowStride,
                                   int64_t imageStride, T* __restrict__ dst, int64_t n, int64_t h, int64_t w,
                                   int64_t c) {
  const int64_t total = n * h * w * c;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total;
       i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t ch = i % c, x = i / c % w, y = i / (c * w) % h, in = i / (c * w * h);
    dst[i] = src[in * imageStride + y * rowStride + x * pixelStride + ch];
  }
}

__global__ void weightsToHalfKernel(const float* __restrict__ src, uint16_t* __restrict__ dst,
                                    int64_t count) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < count;
       i += int64_t(gridDim.x) * blockDim.x)
    dst[i] = floatToHalf(src[i]);
}

template <class T>
__device__ __forceinline__ float loadGrid(const T* p, int64_t i) {
  if constexpr (sizeof(T) == 2)
    return halfToFloat(p[i]);
  else
    return p[i];
}

/// Destination (x, y, c) ← cuDNN grid (dense NHWC, gridH × gridW × Co) + bias → neuron → format,
/// with the sub-pixel rearrangement when `r > 1`. I: the index type (32-bit when everything fits).
template <class T, class I, bool SubPixel>
__global__ void epilogueKernel(const T* __restrict__ grid, I gridH, I gridW, ConvParams p) {
  const I h = I(p.dst.h), w = I(p.dst.w), C = I(p.dst.c), r = SubPixel ? I(p.r) : I(1), Co = I(p.Co);
  const I total = I(p.dst.n) * h * w * C;
  for (I i = I(blockIdx.x) * I(blockDim.x) + I(threadIdx.x); i < total; i += I(gridDim.x) * I(blockDim.x)) {
    const I c = i % C, pixel = i / C;
    const I x = pixel % w, y = pixel / w % h, n = pixel / (w * h);
    I o = c, gx = x, gy = y;
    if constexpr (SubPixel) {
      o = C * (r * (y % r) + x % r) + c;
      gx = x / r;
      gy = y / r;
    }
    float v = loadGrid(grid, ((int64_t(n) * gridH + gy) * gridW + gx) * Co + o);
    if (p.biases) v += p.biases[o];
    p.dst.store(p.dst.index(n, y, x, c), applyNeuron(p.neuron, v, int64_t(o)));
  }
}

/// In place on a dense destination cuDNN wrote directly: v = neuron(v + bias[i mod Co]).
template <class T, class I>
__global__ void biasNeuronInPlaceKernel(T* __restrict__ data, I count, I Co, const float* __restrict__ biases,
                                        NeuronParams neuron) {
  for (I i = I(blockIdx.x) * I(blockDim.x) + I(threadIdx.x); i < count; i += I(gridDim.x) * I(blockDim.x)) {
    const I o = i % Co;
    float v = loadGrid<T>(data, i);
    if (biases) v += biases[o];
    v = applyNeuron(neuron, v, int64_t(o));
    if constexpr (sizeof(T) == 2)
      data[i] = floatToHalf(v);
    else
      data[i] = v;
  }
}

/// The candidate algorithms of one shape, in cuDNN's order of preference, and the one that ran.
struct CudnnAlgorithms {
  std::vector<cudnnConvolutionFwdAlgoPerf_t> candidates;
  size_t maxWorkspace = 0;
  std::atomic<int> working{-1};
};

/// The weights as float16, for float16 sources (converted once per kernel and device).
struct HalfWeights {
  StoragePtr storage;
};

bool acceptable(const cudnnConvolutionFwdAlgoPerf_t& perf, bool half) {
  if (perf.status != CUDNN_STATUS_SUCCESS) return false;
  // ALLOW_CONVERSION lets cuDNN compute float32 data in float16: never for float32 images.
  if (!half && perf.mathType == CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION) return false;
  return perf.memory <= (size_t(1) << 30);  // keep the workspace bounded
}

/// Orders `a.candidates` by the time cudnnFindConvolutionForwardAlgorithmEx measures on the real
/// source and weights (once per shape), writing into scratch memory only (never the destination).
/// Only algorithms cuDNN already offered (workspace within the bound) are kept first; with FMA math
/// requested only FMA results count (float32 stays float32-exact). The unmeasured candidates follow,
/// as fallbacks. On any failure of the measurement the heuristic order stays.
void measureCandidates(CudnnAlgorithms& a, const ConvolutionProblem& p, const CudnnPlan& plan,
                       cudnnHandle_t handle, cudnnTensorDescriptor_t x, cudnnFilterDescriptor_t w,
                       cudnnConvolutionDescriptor_t conv, cudnnTensorDescriptor_t y, const void* weights,
                       cudnnMathType_t mathType, uintptr_t sourceAddress, int64_t gridPixels,
                       CudaQueueContext& cuda) {
  const ImageView& s = p.io.src;
  const int64_t n = p.io.dst.n, Ci = p.inputChannels;
  const size_t elem = plan.half ? 2 : 4;
  // One scratch block, from one workspace() call: [gathered source][output grid][cuDNN workspace].
  const size_t sourceBytes = plan.copySource ? alignUp(size_t(n * plan.height * plan.width * Ci) * elem) : 0;
  const size_t gridBytes = alignUp(size_t(n * gridPixels * p.outputChannels) * elem);
  char* scratch = static_cast<char*>(cuda.workspace(sourceBytes + gridBytes + a.maxWorkspace + 256));
  const void* source = reinterpret_cast<const void*>(sourceAddress);
  if (plan.copySource) {
    cudaGatherWindow(s, plan.startY, plan.startX, n, plan.height, plan.width, Ci, scratch, cuda.stream());
    source = scratch;
  }
  int count = 0;
  if (cudnnGetConvolutionForwardAlgorithmMaxCount(handle, &count) != CUDNN_STATUS_SUCCESS) return;
  std::vector<cudnnConvolutionFwdAlgoPerf_t> found(size_t(std::max(count, 1)));
  int returned = 0;
  if (cudnnFindConvolutionForwardAlgorithmEx(handle, x, source, w, weights, conv, y, scratch + sourceBytes,
                                             int(found.size()), &returned, found.data(),
                                             scratch + sourceBytes + gridBytes,
                                             a.maxWorkspace) != CUDNN_STATUS_SUCCESS) {
    (void)cudaGetLastError();
    return;
  }
  std::vector<cudnnConvolutionFwdAlgoPerf_t> ordered;
  for (int i = 0; i < returned; ++i) {  // fastest first
    const auto& r = found[size_t(i)];
    if (!acceptable(r, plan.half)) continue;
    if (mathType == CUDNN_FMA_MATH && r.mathType != CUDNN_FMA_MATH) continue;  // no TF32, no conversion
    for (const auto& c : a.candidates) {
      if (c.algo != r.algo) continue;
      if (std::any_of(ordered.begin(), ordered.end(), [&](const auto& o) { return o.algo == r.algo; })) break;
      if (r.memory > a.maxWorkspace) break;
      ordered.push_back(c);  // the larger of the queried and the measured workspace size
      ordered.back().memory = std::max(c.memory, r.memory);
      break;
    }
  }
  for (const auto& c : a.candidates)
    if (std::none_of(ordered.begin(), ordered.end(), [&](const auto& o) { return o.algo == c.algo; }))
      ordered.push_back(c);
  a.candidates = std::move(ordered);
}

void cudnnRun(const ConvolutionProblem& p, QueueContext& ctx) {
  auto& cuda = cudaContext(ctx);
  MPSNN_CUDA_CHECK(cudaSetDevice(cuda.ordinal()));
  const CudnnPlan plan = planCudnn(p);
  const ImageView& s = p.io.src;
  const int64_t n = p.io.dst.n, Ci = p.inputChannels, Co = p.outputChannels, G = p.groups;
  const cudnnDataType_t type = plan.half ? CUDNN_DATA_HALF : CUDNN_DATA_FLOAT;
  const size_t elem = plan.half ? 2 : 4;
  cudnnHandle_t handle = cuda.cudnn();

  TensorDesc x, y;
  FilterDesc w;
  ConvDesc conv;
  MPSNN_CUDNN_CHECK(cudnnCreateTensorDescriptor(&x.h));
  MPSNN_CUDNN_CHECK(cudnnCreateTensorDescriptor(&y.h));
  MPSNN_CUDNN_CHECK(cudnnCreateFilterDescriptor(&w.h));
  MPSNN_CUDNN_CHECK(cudnnCreateConvolutionDescriptor(&conv.h));
  if (plan.copySource) {
    MPSNN_CUDNN_CHECK(cudnnSetTensor4dDescriptor(x.h, CUDNN_TENSOR_NHWC, type, int(n), int(Ci),
                                                 int(plan.height), int(plan.width)));
  } else {  // dense NHWC in place; the strides spell it out (the image stride may be wider for n = 1)
    MPSNN_CUDNN_CHECK(cudnnSetTensor4dDescriptorEx(x.h, type, int(n), int(Ci), int(plan.height),
                                                   int(plan.width), int(plan.height * plan.width * Ci), 1,
                                                   int(plan.width * Ci), int(Ci)));
  }
  MPSNN_CUDNN_CHECK(cudnnSetFilter4dDescriptor(w.h, type, CUDNN_TENSOR_NHWC, int(Co),
                                               int(p.inputChannelsPerGroup()), int(p.kernelHeight),
                                               int(p.kernelWidth)));
  MPSNN_CUDNN_CHECK(cudnnSetConvolution2dDescriptor(conv.h, int(plan.padY), int(plan.padX), int(p.strideY),
                                                    int(p.strideX), int(p.dilationY), int(p.dilationX),
                                                    CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT));
  MPSNN_CUDNN_CHECK(cudnnSetConvolutionGroupCount(conv.h, int(G)));
  const cudnnMathType_t mathType = mathTypeFor(plan.half, p.allowTF32);
  MPSNN_CUDNN_CHECK(cudnnSetConvolutionMathType(conv.h, mathType));
  int on = 0, oc = 0, oh = 0, ow = 0;
  MPSNN_CUDNN_CHECK(cudnnGetConvolution2dForwardOutputDim(conv.h, x.h, w.h, &on, &oc, &oh, &ow));
  if (on != n || oc != Co || oh != plan.gridH || ow != plan.gridW) return plainRun(p, ctx);  // not expected
  MPSNN_CUDNN_CHECK(cudnnSetTensor4dDescriptor(y.h, CUDNN_TENSOR_NHWC, type, on, oc, oh, ow));

  const void* weights = p.weights;
  if (plan.half) weights = cudaHalfWeights(p, cuda);  // cuDNN reads them as half

  const uintptr_t sourceAddress = reinterpret_cast<uintptr_t>(
      static_cast<const char*>(s.data()) + s.index(0, plan.startY, plan.startX, 0) * int64_t(elem));
  std::string key = "cudnn";
  for (int64_t v : {n,
                    Ci,
                    plan.height,
                    plan.width,
                    Co,
                    int64_t(oh),
                    int64_t(ow),
                    G,
                    p.kernelHeight,
                    p.kernelWidth,
                    p.strideY,
                    p.strideX,
                    p.dilationY,
                    p.dilationX,
                    plan.padY,
                    plan.padX,
                    int64_t(plan.half),
                    int64_t(p.allowTF32),
                    int64_t(plan.copySource),
                    int64_t(plan.direct),
                    int64_t(sourceAddress % 16),
                    int64_t(reinterpret_cast<uintptr_t>(p.io.dst.data()) % 16)}) {
    key += ',';
    key += std::to_string(v);
  }
  auto algorithms = p.cache->getOrCreate<CudnnAlgorithms>(key, [&] {
    auto a = std::make_shared<CudnnAlgorithms>();
    int count = 0;
    MPSNN_CUDNN_CHECK(cudnnGetConvolutionForwardAlgorithmMaxCount(handle, &count));
    std::vector<cudnnConvolutionFwdAlgoPerf_t> perf(size_t(std::max(count, 1)));
    int returned = 0;
    MPSNN_CUDNN_CHECK(cudnnGetConvolutionForwardAlgorithm_v7(handle, x.h, w.h, conv.h, y.h, int(perf.size()),
                                                             &returned, perf.data()));
    for (int i = 0; i < returned; ++i) {
      if (!acceptable(perf[size_t(i)], plan.half)) continue;
      size_t bytes = 0;  // with the math type set above, the one it will run with
      if (cudnnGetConvolutionForwardWorkspaceSize(handle, x.h, w.h, conv.h, y.h, perf[size_t(i)].algo,
                                                  &bytes) != CUDNN_STATUS_SUCCESS)
        continue;
      perf[size_t(i)].memory = bytes;
      a->candidates.push_back(perf[size_t(i)]);
      a->maxWorkspace = std::max(a->maxWorkspace, bytes);
    }
    if (a->candidates.size() > 1) measureCandidates(*a, p, plan, handle, x.h, w.h, conv.h, y.h, weights, mathType,
                                                    sourceAddress, int64_t(oh) * int64_t(ow), cuda);
    return a;
  });
  if (algorithms->candidates.empty()) return plainRun(p, ctx);

  // One scratch block: [gathered source][cuDNN's output grid unless direct][cuDNN workspace].
  const int64_t gridCount = n * int64_t(oh) * int64_t(ow) * Co;
  const size_t sourceBytes = plan.copySource ? alignUp(size_t(n * plan.height * plan.width * Ci) * elem) : 0;
  const size_t gridBytes = plan.direct ? 0 : alignUp(size_t(gridCount) * elem);
  char* scratch =
      static_cast<char*>(cuda.workspace(sourceBytes + gridBytes + algorithms->maxWorkspace + 256));
  void* grid = plan.direct ? p.io.dst.data() : scratch + sourceBytes;
  void* workspace = scratch + sourceBytes + gridBytes;
  const void* source = reinterpret_cast<const void*>(sourceAddress);
  if (plan.copySource) {
    cudaGatherWindow(s, plan.startY, plan.startX, n, plan.height, plan.width, Ci, scratch, cuda.stream());
    source = scratch;
  }

  const float one = 1.0f, zero = 0.0f;
  const int count = int(algorithms->candidates.size());
  const int first = std::max(algorithms->working.load(), 0);
  bool done = false;
  for (int k = 0; k < count && !done; ++k) {
    const int i = (first + k) % count;
    const auto& perf = algorithms->candidates[size_t(i)];
    const cudnnStatus_t status = cudnnConvolutionForward(handle, &one, x.h, source, w.h, weights, conv.h,
                                                         perf.algo, workspace, perf.memory, &zero, y.h, grid);
    if (status == CUDNN_STATUS_SUCCESS) {
      algorithms->working = i;
      done = true;
    } else if (int(status) / 1000 != 2 && int(status) / 1000 != 3) {  // not a BAD_PARAM_* / NOT_SUPPORTED_*
      MPSNN_CUDNN_CHECK(status);
    }
  }
  if (!done) return plainRun(p, ctx);

  // Bias, neuron, sub-pixel rearrangement and format conversion.
  if (plan.direct)
    cudaBiasNeuronInPlace(p, grid, plan.half, cuda.stream());
  else
    cudaGridEpilogue(p, grid, plan.half, oh, ow, cuda.stream());
}

__global__ void transferWeightsKernel(WeightTransferProblem p) {
  const int64_t perOutput = p.rows * p.columns * p.inner, total = p.outputs * perOutput;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total;
       i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t k = i % p.inner, c = i / p.inner % p.columns, r = i / (p.inner * p.columns) % p.rows,
                  o = i / perOutput;
    const int64_t to =
        o * perOutput + (p.swapRowsAndColumns ? c * p.rows + r : r * p.columns + c) * p.inner + k;
    const float v = p.source[i];
    p.destination[to] = p.roundToHalf ? halfToFloat(floatToHalf(v)) : v;
  }
}

}  // namespace

// ---- helpers shared with the fully-connected and transpose paths (convolution_cuda.h) ---------

cudnnMathType_t mathTypeFor(bool half, bool allowTF32) {
  if (half) return CUDNN_TENSOR_OP_MATH;
  return allowTF32 ? CUDNN_DEFAULT_MATH : CUDNN_FMA_MATH;
}

void cudaConvolutionPlain(const ConvolutionProblem& p, QueueContext& ctx) { plainRun(p, ctx); }

bool packedView(int64_t n, int64_t h, int64_t w, int64_t c, const ImageView& v) {
  return (w == 1 || v.pixelStride == c) && (h == 1 || v.rowStride == w * c) &&
         (n == 1 || v.imageStride == h * w * c);
}

size_t alignUp(size_t v) { return (v + 255) / 256 * 256; }

const uint16_t* cudaHalfWeights(const ConvolutionProblem& p, CudaQueueContext& cuda) {
  auto halfWeights = p.cache->getOrCreate<HalfWeights>("cuda:half-weights", [&] {
    auto hw = std::make_shared<HalfWeights>();
    const int64_t count = p.weightCount();
    hw->storage = std::make_shared<Storage>(p.io.src.storage->device(), size_t(count) * 2);
    weightsToHalfKernel<<<gridBlocks(count), kThreadsPerBlock, 0, cuda.stream()>>>(
        p.weights, static_cast<uint16_t*>(hw->storage->data()), count);
    MPSNN_CUDA_LAUNCH_CHECK();
    // Other queues may use the copy at once: finish it before publishing.
    MPSNN_CUDA_CHECK(cudaStreamSynchronize(cuda.stream()));
    return hw;
  });
  return static_cast<const uint16_t*>(halfWeights->storage->data());
}

void cudaGatherWindow(const ImageView& s, int64_t y0, int64_t x0, int64_t n, int64_t h, int64_t w, int64_t c,
                      void* destination, cudaStream_t stream) {
  const int64_t total = n * h * w * c;
  const int64_t start = s.index(0, y0, x0, 0);
  if (s.format == ImageFeatureChannelFormat::Float16)
    gatherWindowKernel<uint16_t><<<gridBlocks(total), kThreadsPerBlock, 0, stream>>>(
        static_cast<const uint16_t*>(s.data()) + start, s.pixelStride, s.rowStride, s.imageStride,
        static_cast<uint16_t*>(destination), n, h, w, c);
  else
    gatherWindowKernel<float><<<gridBlocks(total), kThreadsPerBlock, 0, stream>>>(
        static_cast<const float*>(s.data()) + start, s.pixelStride, s.rowStride, s.imageStride,
        static_cast<float*>(destination), n, h, w, c);
  MPSNN_CUDA_LAUNCH_CHECK();
}

void cudaGridEpilogue(const ConvolutionProblem& p, const void* grid, bool half, int64_t gridH, int64_t gridW,
                      cudaStream_t stream) {
  // 32-bit indices when they fit.
  const int64_t total = p.io.dst.n * p.io.dst.h * p.io.dst.w * p.io.dst.c;
  const int64_t gridCount = p.io.dst.n * gridH * gridW * p.outputChannels;
  const bool narrow = total < (int64_t(1) << 31) && gridCount < (int64_t(1) << 31);
  const ConvParams params = paramsOf(p);
  auto launch = [&]<class T>(const T* g) {
    if (narrow && p.subPixel == 1)
      epilogueKernel<T, int32_t, false>
          <<<gridBlocks(total), kThreadsPerBlock, 0, stream>>>(g, int32_t(gridH), int32_t(gridW), params);
    else if (narrow)
      epilogueKernel<T, int32_t, true>
          <<<gridBlocks(total), kThreadsPerBlock, 0, stream>>>(g, int32_t(gridH), int32_t(gridW), params);
    else
      epilogueKernel<T, int64_t, true>
          <<<gridBlocks(total), kThreadsPerBlock, 0, stream>>>(g, gridH, gridW, params);
    MPSNN_CUDA_LAUNCH_CHECK();
  };
  if (half)
    launch(static_cast<const uint16_t*>(grid));
  else
    launch(static_cast<const float*>(grid));
}

void cudaBiasNeuronInPlace(const ConvolutionProblem& p, void* data, bool half, cudaStream_t stream) {
  if (!p.biases && p.neuron.type == CNNNeuronType::None) return;
  const int64_t total = p.io.dst.n * p.io.dst.h * p.io.dst.w * p.io.dst.c, Co = p.outputChannels;
  auto launch = [&]<class T>(T* g) {
    if (total < (int64_t(1) << 31))
      biasNeuronInPlaceKernel<T, int32_t><<<gridBlocks(total), kThreadsPerBlock, 0, stream>>>(
          g, int32_t(total), int32_t(Co), p.biases, p.neuron);
    else
      biasNeuronInPlaceKernel<T, int64_t>
          <<<gridBlocks(total), kThreadsPerBlock, 0, stream>>>(g, total, Co, p.biases, p.neuron);
    MPSNN_CUDA_LAUNCH_CHECK();
  };
  if (half)
    launch(static_cast<uint16_t*>(data));
  else
    launch(static_cast<float*>(data));
}

void cudaTransferWeights(const WeightTransferProblem& p, QueueContext& ctx) {
  auto& cuda = cudaContext(ctx);
  MPSNN_CUDA_CHECK(cudaSetDevice(cuda.ordinal()));
  const int64_t total = p.outputs * p.rows * p.columns * p.inner;
  if (total == 0) return;
  transferWeightsKernel<<<gridBlocks(total), kThreadsPerBlock, 0, cuda.stream()>>>(p);
  MPSNN_CUDA_LAUNCH_CHECK();
}

ImplementationList<ConvolutionProblem>& cudaConvolutionImplementations() {
  static ImplementationList<ConvolutionProblem> list = {
      cudaFullyConnectedGemm(),
      cudaConvolution1x1Gemm(),
      cudaConvolutionTransposeDeconvolution(),
      {"cuda:cudnn", cudnnSupports, cudnnRun},
      {"cuda:plain", plainSupports, plainRun},
  };
  return list;
}

}  // namespace mpsnn::detail
