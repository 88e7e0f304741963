// CPU arithmetic and comparison: a row kernel specialised per operator and broadcasting pattern for
// float32 operands read inside their images, and a plain loop for everything else (any format,
// edge modes).
#include <omp.h>

#include "kernels/arithmetic_impl.h"

namespace mpsnn::detail {
namespace {

constexpr int64_t kParallelThreshold = 32768;  // elements below which threads cost more than they save

// ---- rows: float32, every read inside --------------------------------------------------------

/// A whole row as one flat loop: each operand is either laid out like the destination row (step 1)
/// or one value for the row (step 0).
template <ArithmeticOperator Op, int StepA, int StepB>
void flatRow(const float* a, const float* b, float* out, int64_t count, const ArithmeticParams& p) {
  for (int64_t i = 0; i < count; ++i) out[i] = applyArithmeticAs(Op, p, a[i * StepA], b[i * StepB]);
}

/// Pixel by pixel, channels innermost; a channel stride of 0 broadcasts the operand's first channel.
template <ArithmeticOperator Op, int ChannelStepA, int ChannelStepB>
void pixelRow(const float* a, int64_t aPixelStep, const float* b, int64_t bPixelStep, float* out,
              int64_t outPixelStep, int64_t width, int64_t channels, const ArithmeticParams& p) {
  for (int64_t x = 0; x < width; ++x) {
    const float* ap = a + x * aPixelStep;
    const float* bp = b + x * bPixelStep;
    float* o = out + x * outPixelStep;
    for (int64_t c = 0; c < channels; ++c)
      o[c] = applyArithmeticAs(Op, p, ap[c * ChannelStepA], bp[c * ChannelStepB]);
  }
}

bool rowsSupports(const ArithmeticProblem& p) {
  return p.io.primary.format == ImageFeatureChannelFormat::Float32 &&
         p.io.secondary.format == ImageFeatureChannelFormat::Float32 &&
         p.io.dst.format == ImageFeatureChannelFormat::Float32 && readsInside(p);
}

/// How one operand walks a destination row: 1 = like the destination (contiguous), 0 = one value,
/// -1 = neither (needs the pixel loop).
int flatStep(int64_t pixelStep, int64_t channelStep, int64_t channels) {
  if (pixelStep == channels && (channelStep == 1 || channels == 1)) return 1;
  if (pixelStep == 0 && (channelStep == 0 || channels == 1)) return 0;
  return -1;
}

void rowsRun(const ArithmeticProblem& p, QueueContext&) {
  const ImageView& A = p.io.primary;
  const ImageView& B = p.io.secondary;
  const ImageView& D = p.io.dst;
  const float* a0 = static_cast<const float*>(A.data());
  const float* b0 = static_cast<const float*>(B.data());
  float* d0 = static_cast<float*>(D.data());
  const int64_t aPixelStep = p.primaryStride.x * A.pixelStride,
                bPixelStep = p.secondaryStride.x * B.pixelStride;
  const int64_t rows = D.n * D.h;
  const bool destinationContiguous = D.pixelStride == D.c;
  const int fa = flatStep(aPixelStep, p.primaryStride.c, D.c),
            fb = flatStep(bPixelStep, p.secondaryStride.c, D.c);
  const bool flat = destinationContiguous && fa >= 0 && fb >= 0;
  dispatchArithmeticOperator(p.params.op, [&]<ArithmeticOperator Op>() {
#pragma omp parallel for schedule(static) if (rows * D.w * D.c > kParallelThreshold)
    for (int64_t r = 0; r < rows; ++r) {
      const int64_t n = r / D.h, y = r % D.h;
      const float* a = a0 + A.index(n, p.io.primaryOffsetY + y * p.primaryStride.y, p.io.primaryOffsetX, 0);
      const float* b =
          b0 + B.index(n, p.io.secondaryOffsetY + y * p.secondaryStride.y, p.io.secondaryOffsetX, 0);
      float* out = d0 + D.index(n, y, 0, 0);
      if (flat) {
        const int64_t count = D.w * D.c;
        if (fa && fb)
          flatRow<Op, 1, 1>(a, b, out, count, p.params);
        else if (fa)
          flatRow<Op, 1, 0>(a, b, out, count, p.params);
        else if (fb)
          flatRow<Op, 0, 1>(a, b, out, count, p.params);
        else
          flatRow<Op, 0, 0>(a, b, out, count, p.params);
        continue;
      }
      const int64_t pc = p.primaryStride.c, sc = p.secondaryStride.c;
      if (pc && sc)
        pixelRow<Op, 1, 1>(a, aPixelStep, b, bPixelStep, out, D.pixelStride, D.w, D.c, p.params);
      else if (pc)
        pixelRow<Op, 1, 0>(a, aPixelStep, b, bPixelStep, out, D.pixelStride, D.w, D.c, p.params);
      else if (sc)
        pixelRow<Op, 0, 1>(a, aPixelStep, b, bPixelStep, out, D.pixelStride, D.w, D.c, p.params);
      else
        pixelRow<Op, 0, 0>(a, aPixelStep, b, bPixelStep, out, D.pixelStride, D.w, D.c, p.params);
    }
  });
}

// ---- plain: any format, any geometry, edge modes ------------------------------------------------

bool plainSupports(const ArithmeticProblem&) { return true; }

void plainRun(const ArithmeticProblem& p, QueueContext&) {
  const ImageView& A = p.io.primary;
  const ImageView& B = p.io.secondary;
  const ImageView& D = p.io.dst;
  const void* a0 = A.data();
  const void* b0 = B.data();
  void* d0 = D.data();
  const int64_t rows = D.n * D.h;
#pragma omp parallel for schedule(static) if (rows * D.w * D.c > kParallelThreshold)
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t n = r / D.h, y = r % D.h;
    for (int64_t x = 0; x < D.w; ++x) {
      int64_t ay = p.io.primaryOffsetY + y * p.primaryStride.y,
              ax = p.io.primaryOffsetX + x * p.primaryStride.x;
      int64_t by = p.io.secondaryOffsetY + y * p.secondaryStride.y,
              bx = p.io.secondaryOffsetX + x * p.secondaryStride.x;
      const bool aInside =
          resolveEdge(ay, A.h, p.io.primaryEdgeMode) & resolveEdge(ax, A.w, p.io.primaryEdgeMode);
      const bool bInside =
          resolveEdge(by, B.h, p.io.secondaryEdgeMode) & resolveEdge(bx, B.w, p.io.secondaryEdgeMode);
      for (int64_t c = 0; c < D.c; ++c) {
        const float a = aInside ? loadAsFloat(a0, A.index(n, ay, ax, c * p.primaryStride.c), A.format) : 0.0f;
        const float b =
            bInside ? loadAsFloat(b0, B.index(n, by, bx, c * p.secondaryStride.c), B.format) : 0.0f;
        storeFromFloat(d0, D.index(n, y, x, c), D.format, applyArithmetic(p.params, a, b));
      }
    }
  }
}

}  // namespace

ImplementationList<ArithmeticProblem>& cpuArithmeticImplementations() {
  static ImplementationList<ArithmeticProblem> list = {
      {"cpu:rows", rowsSupports, rowsRun},
      {"cpu:plain", plainSupports, plainRun},
  };
  return list;
}

}  // namespace mpsnn::detail
