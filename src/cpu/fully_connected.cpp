// CPU fully connected (spec 01 §5): a window covering the whole source is one matrix product,
// out[n][o] = Σ_k src[n][k] · W[o][k] with k running over (y, x, i) — exactly the OHWI weight row.
// oneDNN's sgemm (row-major, strided rows, OpenMP) where oneDNN is built in, else an OpenMP dot
// product per output; bias and neuron in one pass afterwards. Dense float32 source pixels and a
// float32 destination; the convolution paths take everything else.
#include <cstring>
#include <string>

#if defined(MPSNN_HAVE_DNNL)
#include <oneapi/dnnl/dnnl.h>
#endif

#include "cpu/convolution_cpu.h"
#include "kernels/convolution_impl.h"
#include "mpsnn/error.h"

namespace mpsnn::detail {
namespace {

bool gemmSupports(const ConvolutionProblem& p) {
  const ImageView& s = p.io.src;
  const ImageView& d = p.io.dst;
  return p.wholeSourceWindow() && p.groups == 1 && s.format == ImageFeatureChannelFormat::Float32 &&
         d.format == ImageFeatureChannelFormat::Float32 &&
         packed(1, s.h, s.w, p.inputChannels, s.pixelStride, s.rowStride, s.imageStride);
}

void gemmRun(const ConvolutionProblem& p, QueueContext&) {
  const ImageView& s = p.io.src;
  const ImageView& d = p.io.dst;
  const int64_t n = d.n, Co = p.outputChannels, K = s.h * s.w * p.inputChannels;
  const float* a = static_cast<const float*>(s.data());
  float* c = static_cast<float*>(d.data());
  const int64_t lda = n == 1 ? K : s.imageStride, ldc = n == 1 ? Co : d.imageStride;
#if defined(MPSNN_HAVE_DNNL)
  // Row-major C[n][Co] = A[n][K] · W[Co][K]ᵀ.
  const dnnl_status_t status = dnnl_sgemm('N', 'T', n, Co, K, 1.0f, a, lda, p.weights, K, 0.0f, c, ldc);
  if (status != dnnl_success)
    throw DeviceError("oneDNN sgemm failed (status " + std::to_string(int(status)) + ")");
#else
#pragma omp parallel for collapse(2) schedule(static) if (n * Co * K > 65536)
  for (int64_t i = 0; i < n; ++i)
    for (int64_t o = 0; o < Co; ++o) {
      const float* row = a + i * lda;
      const float* w = p.weights + o * K;
      float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
      for (int64_t k = 0; k < K; ++k) sum += row[k] * w[k];
      c[i * ldc + o] = sum;
    }
#endif
  dispatchNeuronType(p.neuron.type, [&]<CNNNeuronType T>() {
    for (int64_t i = 0; i < n; ++i) {
      float* out = c + i * ldc;
      for (int64_t o = 0; o < Co; ++o)
        out[o] = applyNeuronAs(T, p.neuron, out[o] + (p.biases ? p.biases[o] : 0.0f), o);
    }
  });
}

}  // namespace

Implementation<ConvolutionProblem> cpuFullyConnectedGemm() { return {"cpu:gemm", gemmSupports, gemmRun}; }

}  // namespace mpsnn::detail
