// Internal (CUDA backend): helpers the convolution family's CUDA files share (convolution.cu,
// convolution_transpose.cu, fully_connected.cu), so that one piece of code serves each step.
#pragma once
#include <cstddef>
#include <cstdint>

#include "cuda/context.h"
#include "kernels/convolution_impl.h"

namespace mpsnn::detail {

/// A cuDNN descriptor that destroys itself.
template <class Handle, cudnnStatus_t (*Destroy)(Handle)>
struct CudnnDescriptor {
  Handle h = nullptr;
  CudnnDescriptor() = default;
  CudnnDescriptor(const CudnnDescriptor&) = delete;
  CudnnDescriptor& operator=(const CudnnDescriptor&) = delete;
  ~CudnnDescriptor() {
    if (h) Destroy(h);
  }
};
using TensorDesc = CudnnDescriptor<cudnnTensorDescriptor_t, cudnnDestroyTensorDescriptor>;
using FilterDesc = CudnnDescriptor<cudnnFilterDescriptor_t, cudnnDestroyFilterDescriptor>;
using ConvDesc = CudnnDescriptor<cudnnConvolutionDescriptor_t, cudnnDestroyConvolutionDescriptor>;

/// float32 means float32: without the TF32 opt-in only FMA kernels may run (DESIGN §3). float16
/// data may use tensor cores (they accumulate in float32).
cudnnMathType_t mathTypeFor(bool half, bool allowTF32);

/// The plain kernel (the last implementation of the list): every problem.
void cudaConvolutionPlain(const ConvolutionProblem& p, QueueContext& ctx);

/// True when an n × h × w × c view is laid out exactly as dense NHWC.
bool packedView(int64_t n, int64_t h, int64_t w, int64_t c, const ImageView& v);
/// `v` rounded up to a multiple of 256 (sub-allocations of one workspace).
size_t alignUp(size_t v);

/// The kernel's weights as float16 in device memory, converted once per set of weights (cached).
const uint16_t* cudaHalfWeights(const ConvolutionProblem& p, CudaQueueContext& cuda);

/// Copies the window [y0, y0 + h) × [x0, x0 + w), channels [0, c), of images [0, n) of `s` (float32
/// or float16, as stored) densely into `destination`.
void cudaGatherWindow(const ImageView& s, int64_t y0, int64_t x0, int64_t n, int64_t h, int64_t w, int64_t c,
                      void* destination, cudaStream_t stream);

/// Destination ← dense NHWC grid (n × gridH × gridW × Co, float32 or float16 when `half`): bias,
/// neuron, sub-pixel rearrangement and conversion to the destination format. The grid may be larger
/// than the conv output grid; its extra rows and columns are ignored.
void cudaGridEpilogue(const ConvolutionProblem& p, const void* grid, bool half, int64_t gridH, int64_t gridW,
                      cudaStream_t stream);

/// In place on a dense destination written in its own format: v = neuron(v + bias).
void cudaBiasNeuronInPlace(const ConvolutionProblem& p, void* data, bool half, cudaStream_t stream);

}  // namespace mpsnn::detail
