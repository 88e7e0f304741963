// Internal (CPU backend): helpers the convolution family's CPU files share (convolution.cpp,
// convolution_transpose.cpp, fully_connected.cpp), so that one piece of code serves each step.
#pragma once
#include <cstdint>
#include <memory>

#if defined(MPSNN_HAVE_DNNL)
#include <oneapi/dnnl/dnnl.hpp>
#endif

#include "kernels/convolution_impl.h"

namespace mpsnn::detail {

/// The plain loop (the last implementation of the list): every problem.
void cpuConvolutionPlain(const ConvolutionProblem& p, QueueContext& ctx);

/// True when an n × h × w × c view with these strides is laid out exactly as dense NHWC.
bool packed(int64_t n, int64_t h, int64_t w, int64_t c, int64_t pixelStride, int64_t rowStride,
            int64_t imageStride);

/// The window [y0, y0 + h) × [x0, x0 + w), channels [0, c), of images [0, n) of `s` as dense
/// float32 NHWC: `s`'s own memory when it already is that, else a converted copy held by `copy`.
const float* denseSourceWindow(const ImageView& s, int64_t y0, int64_t x0, int64_t n, int64_t h, int64_t w,
                               int64_t c, std::unique_ptr<float[]>& copy);

/// Destination (x, y, c) ← conv output grid (dense NHWC float32, n × outputHeight × outputWidth × Co,
/// bias added): neuron, sub-pixel rearrangement (spec 01 §4.4) and conversion to the destination format.
void storeFromGrid(const ConvolutionProblem& p, const float* grid);

/// v = neuron(v) over `pixels` dense pixels of `channels` float32 values (channel = PReLU index).
void neuronInPlace(const NeuronParams& neuron, float* data, int64_t pixels, int64_t channels);

#if defined(MPSNN_HAVE_DNNL)
const dnnl::engine& cpuEngine();
#endif

}  // namespace mpsnn::detail
