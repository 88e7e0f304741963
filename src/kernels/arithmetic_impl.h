// Internal: the interface between CNNArithmetic (and its subclasses) and the backends, and the
// float32 element function every backend applies (host and CUDA device code).
#pragma once
#include <cfloat>
#include <cmath>
#include <cstdint>

#include "core/format.h"
#include "kernels/dispatch.h"
#include "kernels/problem.h"
#include "mpsnn/arithmetic.h"

namespace mpsnn::detail {

/// The operators of spec 06 §1.2 and the comparisons of §2, in one numbering.
enum class ArithmeticOperator : uint32_t {
  Add,
  Subtract,
  Multiply,
  Divide,
  Equal,
  NotEqual,
  Less,
  LessOrEqual,
  Greater,
  GreaterOrEqual,
};
const char* toString(ArithmeticOperator op);

struct ArithmeticParams {
  ArithmeticOperator op = ArithmeticOperator::Add;
  float primaryScale = 1, secondaryScale = 1, bias = 0;
  float minimumValue = -FLT_MAX, maximumValue = FLT_MAX;
  float threshold = 0;  // Equal / NotEqual only
};

/// Broadcast strides of one operand, each 0 or 1 (validated): element (x, y, p) of the destination
/// reads the operand at (offsetX + x·x, offsetY + y·y, p·c).
struct OperandStrides {
  int64_t x = 1, y = 1, c = 1;
};

/// `io.primary` / `io.secondary` hold the operands' processed images with channels starting at their
/// channel offsets (c = channels read); `io.dst` the effective clip region, c = output channels.
struct ArithmeticProblem {
  BinaryProblem io;
  OperandStrides primaryStride, secondaryStride;
  ArithmeticParams params;
};

// Each float32 operation rounded on its own: CUDA would otherwise contract a·b + c into one fused
// multiply-add, and the two backends would round differently.
MPSNN_HD float mulRounded(float a, float b) {
#if defined(__CUDA_ARCH__)
  return __fmul_rn(a, b);
#else
  return a * b;
#endif
}
MPSNN_HD float addRounded(float a, float b) {
#if defined(__CUDA_ARCH__)
  return __fadd_rn(a, b);
#else
  return a + b;
#endif
}
MPSNN_HD float subRounded(float a, float b) {
#if defined(__CUDA_ARCH__)
  return __fsub_rn(a, b);
#else
  return a - b;
#endif
}
MPSNN_HD float divRounded(float a, float b) {
#if defined(__CUDA_ARCH__)
  return __fdiv_rn(a, b);
#else
  return a / b;
#endif
}

/// clamp(r, lo, hi) with ±inf going to the limits and NaN kept (spec 06 §1.2 CHOICE): both
/// comparisons are false for NaN.
MPSNN_HD float clampToLimits(float r, float lo, float hi) { return r < lo ? lo : (r > hi ? hi : r); }

/// The result for operands a (primary) and b (secondary), with the operator passed separately so that
/// callers instantiated for one constant operator let the compiler drop the switch.
MPSNN_HD float applyArithmeticAs(ArithmeticOperator op, const ArithmeticParams& p, float a, float b) {
  switch (op) {
    case ArithmeticOperator::Add:
    case ArithmeticOperator::Subtract:
    case ArithmeticOperator::Multiply:
    case ArithmeticOperator::Divide: {
      const float sa = mulRounded(p.primaryScale, a), sb = mulRounded(p.secondaryScale, b);
      float r = op == ArithmeticOperator::Add        ? addRounded(sa, sb)
                : op == ArithmeticOperator::Subtract ? subRounded(sa, sb)
                : op == ArithmeticOperator::Multiply ? mulRounded(sa, sb)
                                                     : divRounded(sa, sb);
      return clampToLimits(addRounded(r, p.bias), p.minimumValue, p.maximumValue);
    }
    case ArithmeticOperator::Equal:
      return fabsf(subRounded(a, b)) <= p.threshold ? 1.0f : 0.0f;
    case ArithmeticOperator::NotEqual:
      return fabsf(subRounded(a, b)) <= p.threshold ? 0.0f : 1.0f;
    case ArithmeticOperator::Less:
      return a < b ? 1.0f : 0.0f;
    case ArithmeticOperator::LessOrEqual:
      return a <= b ? 1.0f : 0.0f;
    case ArithmeticOperator::Greater:
      return a > b ? 1.0f : 0.0f;
    case ArithmeticOperator::GreaterOrEqual:
      return a >= b ? 1.0f : 0.0f;
  }
  return a;
}

MPSNN_HD float applyArithmetic(const ArithmeticParams& p, float a, float b) {
  return applyArithmeticAs(p.op, p, a, b);
}

/// Calls fn.template operator()<Op>() with `op` as a compile-time constant.
template <class Fn>
void dispatchArithmeticOperator(ArithmeticOperator op, Fn&& fn) {
  switch (op) {
#define MPSNN_ARITHMETIC_CASE(Op)                     \
  case ArithmeticOperator::Op:                        \
    fn.template operator()<ArithmeticOperator::Op>(); \
    break;
    MPSNN_ARITHMETIC_CASE(Add)
    MPSNN_ARITHMETIC_CASE(Subtract)
    MPSNN_ARITHMETIC_CASE(Multiply)
    MPSNN_ARITHMETIC_CASE(Divide)
    MPSNN_ARITHMETIC_CASE(Equal)
    MPSNN_ARITHMETIC_CASE(NotEqual)
    MPSNN_ARITHMETIC_CASE(Less)
    MPSNN_ARITHMETIC_CASE(LessOrEqual)
    MPSNN_ARITHMETIC_CASE(Greater)
    MPSNN_ARITHMETIC_CASE(GreaterOrEqual)
#undef MPSNN_ARITHMETIC_CASE
  }
}

/// True when every read of one operand over the destination extent is inside the operand's image
/// (so its edge mode does not matter). Channels are always inside: validation made sure of that.
inline bool operandReadsInside(const ImageView& operand, int64_t offsetX, int64_t offsetY, OperandStrides s,
                               const ImageView& dst) {
  auto axisInside = [](int64_t offset, int64_t stride, int64_t extent, int64_t size) {
    return offset >= 0 && offset + (extent - 1) * stride < size;
  };
  return axisInside(offsetX, s.x, dst.w, operand.w) && axisInside(offsetY, s.y, dst.h, operand.h);
}
inline bool readsInside(const ArithmeticProblem& p) {
  return operandReadsInside(p.io.primary, p.io.primaryOffsetX, p.io.primaryOffsetY, p.primaryStride,
                            p.io.dst) &&
         operandReadsInside(p.io.secondary, p.io.secondaryOffsetX, p.io.secondaryOffsetY, p.secondaryStride,
                            p.io.dst);
}

ImplementationList<ArithmeticProblem>& cpuArithmeticImplementations();
#if defined(MPSNN_HAVE_CUDA)
ImplementationList<ArithmeticProblem>& cudaArithmeticImplementations();
#endif

}  // namespace mpsnn::detail
