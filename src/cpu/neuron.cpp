// CPU neurons: a row kernel specialised per neuron type for reads inside the source, and a plain
// loop for everything else (edge modes, any format).
#include <omp.h>

#include "kernels/neuron_impl.h"

namespace mpsnn::detail {
namespace {

bool rowsSupports(const NeuronProblem& p) {
  return p.io.src.format == ImageFeatureChannelFormat::Float32 &&
         p.io.dst.format == ImageFeatureChannelFormat::Float32 && readsInside(p.io);
}

void rowsRun(const NeuronProblem& p, QueueContext&) {
  const ImageView& s = p.io.src;
  const ImageView& d = p.io.dst;
  const float* src = static_cast<const float*>(s.data());
  float* dst = static_cast<float*>(d.data());
  const int64_t rows = d.n * d.h;
  // Copies of the parameters local to each thread: read through a reference or OpenMP's shared
  // capture, they are floats that could alias the output, and the loop would not vectorise.
  const NeuronParams neuron = p.neuron;
  dispatchNeuronType(neuron.type, [&]<CNNNeuronType T>() {
#pragma omp parallel for schedule(static) if (rows * d.w * d.c > 32768)
    for (int64_t r = 0; r < rows; ++r) {
      const int64_t n = r / d.h, y = r % d.h;
      const float* in = src + s.index(n, p.io.offsetY + y, p.io.offsetX, 0);
      float* out = dst + d.index(n, y, 0, 0);
      const NeuronParams np = neuron;  // private to this thread: see above
      if (s.pixelStride == s.c && d.pixelStride == d.c && T != CNNNeuronType::PReLU) {
        const int64_t count = d.w * d.c;  // contiguous row: one flat loop the compiler vectorises
        for (int64_t i = 0; i < count; ++i) out[i] = applyNeuronAs(T, np, in[i], 0);
      } else {
        for (int64_t x = 0; x < d.w; ++x)
          for (int64_t c = 0; c < d.c; ++c)
            out[x * d.pixelStride + c] = applyNeuronAs(T, np, in[x * s.pixelStride + c], c);
      }
    }
  });
}

bool plainSupports(const NeuronProblem&) { return true; }

void plainRun(const NeuronProblem& p, QueueContext&) {
  const ImageView& s = p.io.src;
  const ImageView& d = p.io.dst;
  const void* src = s.data();
  void* dst = d.data();
  const int64_t rows = d.n * d.h;
#pragma omp parallel for schedule(static) if (rows * d.w * d.c > 32768)
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t n = r / d.h, y = r % d.h;
    for (int64_t x = 0; x < d.w; ++x) {
      int64_t sy = p.io.offsetY + y, sx = p.io.offsetX + x;
      const bool inside = resolveEdge(sy, s.h, p.io.edgeMode) & resolveEdge(sx, s.w, p.io.edgeMode);
      for (int64_t c = 0; c < d.c; ++c) {
        float v = inside ? loadAsFloat(src, s.index(n, sy, sx, c), s.format) : 0.0f;
        storeFromFloat(dst, d.index(n, y, x, c), d.format, applyNeuron(p.neuron, v, c));
      }
    }
  }
}

}  // namespace

ImplementationList<NeuronProblem>& cpuNeuronImplementations() {
  static ImplementationList<NeuronProblem> list = {
      {"cpu:rows", rowsSupports, rowsRun},
      {"cpu:plain", plainSupports, plainRun},
  };
  return list;
}

}  // namespace mpsnn::detail
