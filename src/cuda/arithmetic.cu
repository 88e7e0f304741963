// CUDA arithmetic and comparison: a vectorised kernel for float32 problems whose destination is one
// dense span and whose reads are inside the operands (an operand laid out like the destination is
// read with float4 loads; a broadcast one is gathered), and a plain kernel for everything else.
#include "cuda/context.h"
#include "cuda/launch.h"
#include "kernels/arithmetic_impl.h"

namespace mpsnn::detail {
namespace {

/// Where an operand's element for destination position (n, y, x, c) lives (broadcast strides 0/1).
struct OperandMap {
  int64_t offsetX, offsetY;
  int64_t strideX, strideY, strideC;
};

/// Extent of the dense destination, for turning a flat index into a position.
struct Extent {
  uint32_t w, h, c;
};

/// Destination position of flat element i (32-bit: the vec4 path has < 2^31 elements).
struct Position {
  uint32_t n, y, x, c;
};
__device__ __forceinline__ Position positionOf(uint32_t i, Extent e) {
  Position p;
  p.c = i % e.c;
  const uint32_t pixel = i / e.c;
  p.x = pixel % e.w;
  const uint32_t row = pixel / e.w;
  p.y = row % e.h;
  p.n = row / e.h;
  return p;
}
__device__ __forceinline__ void advance(Position& p, Extent e) {
  if (++p.c < e.c) return;
  p.c = 0;
  if (++p.x < e.w) return;
  p.x = 0;
  if (++p.y < e.h) return;
  p.y = 0;
  ++p.n;
}
__device__ __forceinline__ int64_t operandIndex(const RawView& v, const OperandMap& m, const Position& p) {
  return int64_t(p.n) * v.imageStride + (m.offsetY + int64_t(p.y) * m.strideY) * v.rowStride +
         (m.offsetX + int64_t(p.x) * m.strideX) * v.pixelStride + int64_t(p.c) * m.strideC;
}

// ---- vec4: float32, dense destination, reads inside --------------------------------------------
// SameA / SameB: the operand is laid out exactly like the destination (element i of both is at flat
// index i) and 16-byte aligned, so it is read with float4 loads; otherwise it is gathered element by
// element (a broadcast operand is small and stays in cache).
template <ArithmeticOperator Op, bool SameA, bool SameB>
__global__ void arithmeticVec4Kernel(RawView A, OperandMap ma, RawView B, OperandMap mb,
                                     float* __restrict__ dst, Extent extent, uint32_t count,
                                     ArithmeticParams p) {
  const float* __restrict__ a = static_cast<const float*>(A.data);
  const float* __restrict__ b = static_cast<const float*>(B.data);
  const uint32_t groups = (count + 3) / 4;
  for (uint32_t g = blockIdx.x * blockDim.x + threadIdx.x; g < groups; g += gridDim.x * blockDim.x) {
    const uint32_t i0 = g * 4;
    float va[4] = {0, 0, 0, 0}, vb[4] = {0, 0, 0, 0};
    const bool full = i0 + 4 <= count;
    if (SameA && full) {
      const float4 v = reinterpret_cast<const float4*>(a)[g];
      va[0] = v.x, va[1] = v.y, va[2] = v.z, va[3] = v.w;
    }
    if (SameB && full) {
      const float4 v = reinterpret_cast<const float4*>(b)[g];
      vb[0] = v.x, vb[1] = v.y, vb[2] = v.z, vb[3] = v.w;
    }
    if (!(SameA && SameB && full)) {
      Position pos{};
      if (!(SameA && SameB)) pos = positionOf(i0, extent);
#pragma unroll
      for (uint32_t k = 0; k < 4; ++k) {
        if (i0 + k < count) {
          if (!(SameA && full)) va[k] = SameA ? a[i0 + k] : a[operandIndex(A, ma, pos)];
          if (!(SameB && full)) vb[k] = SameB ? b[i0 + k] : b[operandIndex(B, mb, pos)];
        }
        if (!(SameA && SameB)) advance(pos, extent);
      }
    }
    if (full) {
      float4 r;
      r.x = applyArithmeticAs(Op, p, va[0], vb[0]);
      r.y = applyArithmeticAs(Op, p, va[1], vb[1]);
      r.z = applyArithmeticAs(Op, p, va[2], vb[2]);
      r.w = applyArithmeticAs(Op, p, va[3], vb[3]);
      reinterpret_cast<float4*>(dst)[g] = r;
    } else {
      for (uint32_t k = 0; i0 + k < count; ++k) dst[i0 + k] = applyArithmeticAs(Op, p, va[k], vb[k]);
    }
  }
}

bool aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

/// The operand is read at the destination's own flat index: same shape, dense, no broadcast, no offset.
bool sameLayout(const ImageView& v, int64_t offsetX, int64_t offsetY, OperandStrides s, const ImageView& d) {
  return v.dense() && v.n == d.n && v.h == d.h && v.w == d.w && v.c == d.c && offsetX == 0 && offsetY == 0 &&
         s.x == 1 && s.y == 1 && s.c == 1 && aligned16(v.data());
}

bool vec4Supports(const ArithmeticProblem& p) {
  const ImageView& d = p.io.dst;
  return p.io.primary.format == ImageFeatureChannelFormat::Float32 &&
         p.io.secondary.format == ImageFeatureChannelFormat::Float32 &&
         d.format == ImageFeatureChannelFormat::Float32 && d.dense() && aligned16(d.data()) &&
         d.n * d.h * d.w * d.c < (int64_t(1) << 31) && readsInside(p);
}

void vec4Run(const ArithmeticProblem& p, QueueContext& ctx) {
  const ImageView& A = p.io.primary;
  const ImageView& B = p.io.secondary;
  const ImageView& D = p.io.dst;
  const uint32_t count = uint32_t(D.n * D.h * D.w * D.c);
  const Extent extent{uint32_t(D.w), uint32_t(D.h), uint32_t(D.c)};
  const OperandMap ma{p.io.primaryOffsetX, p.io.primaryOffsetY, p.primaryStride.x, p.primaryStride.y,
                      p.primaryStride.c};
  const OperandMap mb{p.io.secondaryOffsetX, p.io.secondaryOffsetY, p.secondaryStride.x, p.secondaryStride.y,
                      p.secondaryStride.c};
  const bool sameA = sameLayout(A, p.io.primaryOffsetX, p.io.primaryOffsetY, p.primaryStride, D);
  const bool sameB = sameLayout(B, p.io.secondaryOffsetX, p.io.secondaryOffsetY, p.secondaryStride, D);
  const unsigned blocks = gridBlocks(count, 4);
  auto stream = cudaContext(ctx).stream();
  float* dst = static_cast<float*>(D.data());
  dispatchArithmeticOperator(p.params.op, [&]<ArithmeticOperator Op>() {
    if (sameA && sameB)
      arithmeticVec4Kernel<Op, true, true>
          <<<blocks, kThreadsPerBlock, 0, stream>>>(A.raw(), ma, B.raw(), mb, dst, extent, count, p.params);
    else if (sameA)
      arithmeticVec4Kernel<Op, true, false>
          <<<blocks, kThreadsPerBlock, 0, stream>>>(A.raw(), ma, B.raw(), mb, dst, extent, count, p.params);
    else if (sameB)
      arithmeticVec4Kernel<Op, false, true>
          <<<blocks, kThreadsPerBlock, 0, stream>>>(A.raw(), ma, B.raw(), mb, dst, extent, count, p.params);
    else
      arithmeticVec4Kernel<Op, false, false>
          <<<blocks, kThreadsPerBlock, 0, stream>>>(A.raw(), ma, B.raw(), mb, dst, extent, count, p.params);
  });
  MPSNN_CUDA_LAUNCH_CHECK();
}

// ---- plain: any format, any geometry, edge modes ---------------------------------------------------
__global__ void arithmeticPlainKernel(RawView A, OperandMap ma, ImageEdgeMode edgeA, RawView B, OperandMap mb,
                                      ImageEdgeMode edgeB, RawView D, ArithmeticParams p) {
  const int64_t count = D.n * D.h * D.w * D.c;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < count;
       i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t c = i % D.c, x = (i / D.c) % D.w, y = (i / (D.c * D.w)) % D.h, n = i / (D.c * D.w * D.h);
    int64_t ay = ma.offsetY + y * ma.strideY, ax = ma.offsetX + x * ma.strideX;
    int64_t by = mb.offsetY + y * mb.strideY, bx = mb.offsetX + x * mb.strideX;
    const bool aInside = resolveEdge(ay, A.h, edgeA) & resolveEdge(ax, A.w, edgeA);
    const bool bInside = resolveEdge(by, B.h, edgeB) & resolveEdge(bx, B.w, edgeB);
    const float a = aInside ? A.load(A.index(n, ay, ax, c * ma.strideC)) : 0.0f;
    const float b = bInside ? B.load(B.index(n, by, bx, c * mb.strideC)) : 0.0f;
    D.store(D.index(n, y, x, c), applyArithmetic(p, a, b));
  }
}

bool plainSupports(const ArithmeticProblem&) { return true; }

void plainRun(const ArithmeticProblem& p, QueueContext& ctx) {
  const ImageView& D = p.io.dst;
  const int64_t count = D.n * D.h * D.w * D.c;
  const OperandMap ma{p.io.primaryOffsetX, p.io.primaryOffsetY, p.primaryStride.x, p.primaryStride.y,
                      p.primaryStride.c};
  const OperandMap mb{p.io.secondaryOffsetX, p.io.secondaryOffsetY, p.secondaryStride.x, p.secondaryStride.y,
                      p.secondaryStride.c};
  arithmeticPlainKernel<<<gridBlocks(count), kThreadsPerBlock, 0, cudaContext(ctx).stream()>>>(
      p.io.primary.raw(), ma, p.io.primaryEdgeMode, p.io.secondary.raw(), mb, p.io.secondaryEdgeMode, D.raw(),
      p.params);
  MPSNN_CUDA_LAUNCH_CHECK();
}

}  // namespace

ImplementationList<ArithmeticProblem>& cudaArithmeticImplementations() {
  static ImplementationList<ArithmeticProblem> list = {
      {"cuda:vec4", vec4Supports, vec4Run},
      {"cuda:plain", plainSupports, plainRun},
  };
  return list;
}

}  // namespace mpsnn::detail
