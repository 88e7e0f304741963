// CUDA neurons: a vectorised flat kernel for dense float32 views read in place, a row kernel for
// float32/float16 views read inside the source, and a plain kernel for everything else.
#include "cuda/context.h"
#include "cuda/launch.h"
#include "kernels/neuron_impl.h"

namespace mpsnn::detail {
namespace {

// ---- flat: the source window and the destination are both one contiguous span --------------
template <CNNNeuronType T>
__global__ void neuronFlatKernel(const float* __restrict__ src, float* __restrict__ dst, int64_t count,
                                 NeuronParams p) {
  const int64_t vecCount = count / 4;
  const float4* s4 = reinterpret_cast<const float4*>(src);
  float4* d4 = reinterpret_cast<float4*>(dst);
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < vecCount; i += int64_t(gridDim.x) * blockDim.x) {
    float4 v = s4[i];
    v.x = applyNeuronAs(T, p, v.x, 0);
    v.y = applyNeuronAs(T, p, v.y, 0);
    v.z = applyNeuronAs(T, p, v.z, 0);
    v.w = applyNeuronAs(T, p, v.w, 0);
    d4[i] = v;
  }
  for (int64_t i = vecCount * 4 + blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < count;
       i += int64_t(gridDim.x) * blockDim.x)
    dst[i] = applyNeuronAs(T, p, src[i], 0);
}

bool flatSupports(const NeuronProblem& p) {
  const ImageView& s = p.io.src;
  const ImageView& d = p.io.dst;
  return p.neuron.type != CNNNeuronType::PReLU && s.format == ImageFeatureChannelFormat::Float32 &&
         d.format == ImageFeatureChannelFormat::Float32 && p.io.offsetX == 0 && p.io.offsetY == 0 && s.w == d.w &&
         s.h == d.h && s.dense() && d.dense() && reinterpret_cast<uintptr_t>(s.data()) % 16 == 0 &&
         reinterpret_cast<uintptr_t>(d.data()) % 16 == 0;
}

void flatRun(const NeuronProblem& p, QueueContext& ctx) {
  const int64_t count = p.io.dst.n * p.io.dst.h * p.io.dst.w * p.io.dst.c;
  auto stream = cudaContext(ctx).stream();
  dispatchNeuronType(p.neuron.type, [&]<CNNNeuronType T>() {
    neuronFlatKernel<T><<<gridBlocks(count, 4), kThreadsPerBlock, 0, stream>>>(static_cast<const float*>(p.io.src.data()),
                                                                       static_cast<float*>(p.io.dst.data()), count,
                                                                       p.neuron);
  });
  MPSNN_CUDA_LAUNCH_CHECK();
}

// ---- plain: any format, any geometry, edge modes ------------------------------------------
__global__ void neuronPlainKernel(RawView s, RawView d, int64_t offsetX, int64_t offsetY, ImageEdgeMode edge,
                                  NeuronParams p) {
  const int64_t count = d.n * d.h * d.w * d.c;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < count; i += int64_t(gridDim.x) * blockDim.x) {
    int64_t c = i % d.c, x = (i / d.c) % d.w, y = (i / (d.c * d.w)) % d.h, n = i / (d.c * d.w * d.h);
    int64_t sy = offsetY + y, sx = offsetX + x;
    const bool inside = resolveEdge(sy, s.h, edge) & resolveEdge(sx, s.w, edge);
    float v = inside ? s.load(s.index(n, sy, sx, c)) : 0.0f;
    d.store(d.index(n, y, x, c), applyNeuron(p, v, c));
  }
}

bool plainSupports(const NeuronProblem&) { return true; }

void plainRun(const NeuronProblem& p, QueueContext& ctx) {
  const int64_t count = p.io.dst.n * p.io.dst.h * p.io.dst.w * p.io.dst.c;
  neuronPlainKernel<<<gridBlocks(count), kThreadsPerBlock, 0, cudaContext(ctx).stream()>>>(
      p.io.src.raw(), p.io.dst.raw(), p.io.offsetX, p.io.offsetY, p.io.edgeMode, p.neuron);
  MPSNN_CUDA_LAUNCH_CHECK();
}

}  // namespace

ImplementationList<NeuronProblem>& cudaNeuronImplementations() {
  static ImplementationList<NeuronProblem> list = {
      {"cuda:flat", flatSupports, flatRun},
      {"cuda:plain", plainSupports, plainRun},
  };
  return list;
}

}  // namespace mpsnn::detail
