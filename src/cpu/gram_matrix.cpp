// CPU Gram matrix (spec 01 §10): per image G = alpha · Aᵀ·A with A the (H·W) × C matrix of pixels.
// oneDNN's sgemm when the source is float32 with evenly strided pixels (a channel range of a wider
// image is fine: the pixel stride is the row stride of A) and the destination float32; a plain
// OpenMP loop over (image, f, c) otherwise.
#include <string>

#if defined(MPSNN_HAVE_DNNL)
#include <oneapi/dnnl/dnnl.h>
#endif

#include "kernels/gram_matrix_impl.h"
#include "mpsnn/error.h"

namespace mpsnn::detail {
namespace {

bool plainSupports(const GramMatrixProblem&) { return true; }

void plainRun(const GramMatrixProblem& p, QueueContext&) {
  const ImageView& s = p.io.src;
  const ImageView& d = p.io.dst;
  const int64_t C = s.c, pixels = s.h * s.w;
  const void* in = s.data();
  void* out = d.data();
#pragma omp parallel for collapse(3) schedule(static) if (d.n * C * C * pixels > 65536)
  for (int64_t n = 0; n < d.n; ++n)
    for (int64_t f = 0; f < C; ++f)
      for (int64_t c = 0; c < C; ++c) {
        double sum = 0.0;  // double: the sums run over whole images
        for (int64_t px = 0; px < pixels; ++px) {
          const int64_t at = s.index(n, px / s.w, px % s.w, 0);
          sum += double(loadAsFloat(in, at + f, s.format)) * double(loadAsFloat(in, at + c, s.format));
        }
        storeFromFloat(out, d.index(n, 0, f, c), d.format, float(double(p.alpha) * sum));
      }
}

#if defined(MPSNN_HAVE_DNNL)
bool gemmSupports(const GramMatrixProblem& p) {
  const ImageView& s = p.io.src;
  return s.format == ImageFeatureChannelFormat::Float32 &&
         p.io.dst.format == ImageFeatureChannelFormat::Float32 &&
         (s.h == 1 || s.rowStride == s.w * s.pixelStride);
}

void gemmRun(const GramMatrixProblem& p, QueueContext&) {
  const ImageView& s = p.io.src;
  const ImageView& d = p.io.dst;
  const int64_t C = s.c, pixels = s.h * s.w;
  for (int64_t n = 0; n < d.n; ++n) {
    const float* a = static_cast<const float*>(s.data()) + s.index(n, 0, 0, 0);
    float* g = static_cast<float*>(d.data()) + d.index(n, 0, 0, 0);
    // Row-major G[C][C] = alpha · Aᵀ · A, A = [pixels][C] with row stride pixelStride.
    const dnnl_status_t status = dnnl_sgemm('T', 'N', C, C, pixels, p.alpha, a, s.pixelStride, a,
                                            s.pixelStride, 0.0f, g, d.pixelStride);
    if (status != dnnl_success)
      throw DeviceError("oneDNN sgemm failed (status " + std::to_string(int(status)) + ")");
  }
}
#endif

}  // namespace

ImplementationList<GramMatrixProblem>& cpuGramMatrixImplementations() {
  static ImplementationList<GramMatrixProblem> list = {
#if defined(MPSNN_HAVE_DNNL)
    {"cpu:gemm", gemmSupports, gemmRun},
#endif
    {"cpu:plain", plainSupports, plainRun},
  };
  return list;
}

}  // namespace mpsnn::detail
