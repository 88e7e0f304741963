// CUDA binary convolution (spec 01 §7, §8): one thread per destination value. XNOR and AND build
// each 32-channel word of binarized inputs and count with __popc; BinaryWeights adds or subtracts the
// float inputs bit by bit; beta (UseBetaScaling) is recomputed by each thread from its window.
#include "cuda/context.h"
#include "cuda/launch.h"
#include "kernels/binary_convolution_impl.h"

namespace mpsnn::detail {
namespace {

struct BinaryParams {
  RawView src, dst;
  int64_t offsetX, offsetY;
  ImageEdgeMode edge;
  int64_t kW, kH, sX, sY, dX, dY, Ci, Co, words, halfW, halfH;
  CNNBinaryConvolutionType type;
  bool beta;
  NeuronParams neuron;
  const uint32_t* weights;
  const float *outputBias, *outputScale, *inputBias, *inputScale;
  __device__ uint32_t wordMask(int64_t w) const {
    const int64_t bits = Ci - 32 * w;
    return bits >= 32 ? 0xffffffffu : ((1u << bits) - 1u);
  }
};

/// in'(p, f) with the edge-mode value substituted before bias and scale; `inside` from resolveEdge.
__device__ __forceinline__ float biasedInput(const BinaryParams& p, bool inside, int64_t at, int64_t f) {
  const float v = inside ? p.src.load(at + f) : 0.0f;
  return (v + p.inputBias[f]) * p.inputScale[f];
}

__global__ void binaryConvolutionKernel(BinaryParams p) {
  const int64_t total = p.dst.n * p.dst.h * p.dst.w * p.Co;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total;
       i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t o = i % p.Co;
    int64_t t = i / p.Co;
    const int64_t X = t % p.dst.w;
    t /= p.dst.w;
    const int64_t Y = t % p.dst.h, n = t / p.dst.h;
    const int64_t cx = p.offsetX + X * p.sX, cy = p.offsetY + Y * p.sY;
    const uint32_t* w = p.weights + o * p.kH * p.kW * p.words;
    float S = 0.0f;
    int64_t count = 0;
    for (int64_t ky = 0; ky < p.kH; ++ky) {
      for (int64_t kx = 0; kx < p.kW; ++kx) {
        int64_t sy = cy - p.halfH + ky * p.dY, sx = cx - p.halfW + kx * p.dX;
        const bool inside = resolveEdge(sy, p.src.h, p.edge) && resolveEdge(sx, p.src.w, p.edge);
        const int64_t at = inside ? p.src.index(n, sy, sx, 0) : 0;
        const uint32_t* wt = w + (ky * p.kW + kx) * p.words;
        for (int64_t k = 0; k < p.words; ++k) {
          const uint32_t wb = wt[k], mask = p.wordMask(k);
          const int64_t f0 = 32 * k, f1 = f0 + 32 < p.Ci ? f0 + 32 : p.Ci;
          if (p.type == CNNBinaryConvolutionType::BinaryWeights) {
            for (int64_t f = f0; f < f1; ++f) {
              const float v = biasedInput(p, inside, at, f);
              S += (wb >> (f - f0)) & 1u ? v : -v;
            }
          } else {
            uint32_t a = 0;  // bit = 1 where bin(in') = +1 (not negative)
            for (int64_t f = f0; f < f1; ++f)
              if (!(biasedInput(p, inside, at, f) < 0.0f)) a |= 1u << (f - f0);
            if (p.type == CNNBinaryConvolutionType::XNOR)
              count += __popc(mask) - 2 * __popc((a ^ wb) & mask);
            else
              count += __popc(a & wb & mask);
          }
        }
      }
    }
    if (p.type != CNNBinaryConvolutionType::BinaryWeights) S = float(count);
    float beta = 1.0f;
    if (p.beta) {
      float sum = 0.0f;
      for (int64_t dy = -(p.kH / 2); dy <= (p.kH - 1) / 2; ++dy)
        for (int64_t dx = -(p.kW / 2); dx <= (p.kW - 1) / 2; ++dx) {
          int64_t sy = cy + dy, sx = cx + dx;
          const bool inside = resolveEdge(sy, p.src.h, p.edge) && resolveEdge(sx, p.src.w, p.edge);
          const int64_t at = inside ? p.src.index(n, sy, sx, 0) : 0;
          float a = 0.0f;
          for (int64_t f = 0; f < p.Ci; ++f) a += fabsf(biasedInput(p, inside, at, f));
          sum += a / float(p.Ci);
        }
      beta = sum / float(p.kW * p.kH);
    }
    const float v = S * p.outputScale[o] * beta + p.outputBias[o];
    p.dst.store(p.dst.index(n, Y, X, o), applyNeuron(p.neuron, v, o));
  }
}

bool plainSupports(const BinaryConvolutionProblem&) { return true; }

void plainRun(const BinaryConvolutionProblem& p, QueueContext& ctx) {
  auto& cuda = cudaContext(ctx);
  MPSNN_CUDA_CHECK(cudaSetDevice(cuda.ordinal()));
  const BinaryParams params{p.io.src.raw(),
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
                            p.inputChannels,
                            p.outputChannels,
                            p.words,
                            ((p.kernelWidth - 1) * p.dilationX + 1) / 2,
                            ((p.kernelHeight - 1) * p.dilationY + 1) / 2,
                            p.type,
                            p.betaScaling,
                            p.neuron,
                            p.weights,
                            p.outputBias,
                            p.outputScale,
                            p.inputBias,
                            p.inputScale};
  const int64_t total = p.io.dst.n * p.io.dst.h * p.io.dst.w * p.outputChannels;
  binaryConvolutionKernel<<<gridBlocks(total), kThreadsPerBlock, 0, cuda.stream()>>>(params);
  MPSNN_CUDA_LAUNCH_CHECK();
}

}  // namespace

ImplementationList<BinaryConvolutionProblem>& cudaBinaryConvolutionImplementations() {
  static ImplementationList<BinaryConvolutionProblem> list = {
      {"cuda:plain", plainSupports, plainRun},
  };
  return list;
}

}  // namespace mpsnn::detail
