// Internal: the interface between CNNConvolution (src/kernels/convolution.cpp) and its backends
// (src/cpu/convolution.cpp, src/cuda/convolution.cu). Backends never validate user input.
#pragma once
#include <algorithm>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "kernels/dispatch.h"
#include "kernels/neuron_math.h"
#include "kernels/problem.h"

namespace mpsnn::detail {

/// Per-kernel store for what a backend derives from the weights once per shape (oneDNN primitives
/// with reordered weights, cuDNN algorithm choices, float16 copies of the weights). One instance per
/// set of weights: a reload makes a new one, so entries never go stale. Thread-safe.
class ConvolutionCache {
 public:
  /// The entry under `key`, made by `make()` (under the lock) when absent.
  template <class T, class Make>
  std::shared_ptr<T> getOrCreate(const std::string& key, Make&& make) {
    std::lock_guard lock(mutex_);
    auto it = entries_.find(key);
    if (it != entries_.end()) return std::static_pointer_cast<T>(it->second);
    std::shared_ptr<T> entry = make();
    entries_.emplace(key, entry);
    return entry;
  }

 private:
  std::mutex mutex_;
  std::map<std::string, std::shared_ptr<void>> entries_;
};

/// One convolution invocation, resolved. Geometry of spec 01 §4.1: conv output position (X, Y)
/// reads source taps sx = offsetX + X·strideX − floor(kWd/2) + kx·dilationX (likewise y). With
/// subPixel r > 1 the conv output grid is ceil(dst.w / r) × ceil(dst.h / r) × Co and destination
/// (x, y, c) takes conv output (x/r, y/r, (Co/r²)·(r·(y%r) + x%r) + c) (§4.4); otherwise the grid is
/// the destination view and channel o goes to destination channel o. Depthwise convolutions arrive
/// as grouped ones with groups = Ci (§4.5: W[o][ky][kx] is OHWI with Ci/groups = 1).
///
/// Convolution transpose (§6.1) is the same problem over the zero-inserted source Z: with
/// zeroInsertX = s > 1 the taps index Z, of width Zw = (src.w − 1)·s + 1, where Z(s·u) = src(u) and
/// every other Z pixel is 0; edge modes apply to Z's extent (Clamp clamps into [0, Zw − 1], which
/// always lands on a source pixel). offsetX is then the total centre offset in Z (offset·s +
/// kernelOffset) and strideX is 1. A fully-connected layer (§5) is the case kernel = source size,
/// offset = (kW/2, kH/2) and a 1 × 1 grid.
struct ConvolutionProblem {
  UnaryProblem io;  // io.src.c may exceed inputChannels: only the first inputChannels are read
  int64_t kernelWidth = 1, kernelHeight = 1, strideX = 1, strideY = 1, dilationX = 1, dilationY = 1;
  int64_t groups = 1, inputChannels = 1, outputChannels = 1, subPixel = 1;
  int64_t zeroInsertX = 1, zeroInsertY = 1;  // transpose: zeros inserted between source pixels
  NeuronParams neuron;                       // prelu: Co slopes in device memory
  const float* weights = nullptr;            // device memory, OHWI: [Co][kH][kW][Ci/groups]
  const float* biases = nullptr;             // device memory, Co values, or null
  bool allowTF32 = false;
  ConvolutionCache* cache = nullptr;  // kept alive by the work item

  int64_t inputChannelsPerGroup() const { return inputChannels / groups; }
  int64_t outputChannelsPerGroup() const { return outputChannels / groups; }
  int64_t dilatedWidth() const { return (kernelWidth - 1) * dilationX + 1; }
  int64_t dilatedHeight() const { return (kernelHeight - 1) * dilationY + 1; }
  /// Conv output grid (equals the destination view unless sub-pixel).
  int64_t outputWidth() const { return (io.dst.w + subPixel - 1) / subPixel; }
  int64_t outputHeight() const { return (io.dst.h + subPixel - 1) / subPixel; }
  int64_t weightCount() const {
    return outputChannels * kernelHeight * kernelWidth * inputChannelsPerGroup();
  }
  /// Extent of the image the taps index: the source, or the zero-inserted source of a transpose.
  int64_t tapWidth() const { return (io.src.w - 1) * zeroInsertX + 1; }
  int64_t tapHeight() const { return (io.src.h - 1) * zeroInsertY + 1; }
  bool zeroInserted() const { return zeroInsertX > 1 || zeroInsertY > 1; }
  /// True when the window of the single output covers exactly the whole source (fully connected).
  bool wholeSourceWindow() const {
    return !zeroInserted() && subPixel == 1 && dilationX == 1 && dilationY == 1 && kernelWidth == io.src.w &&
           kernelHeight == io.src.h && io.offsetX == kernelWidth / 2 && io.offsetY == kernelHeight / 2 &&
           io.dst.w == 1 && io.dst.h == 1;
  }
};

/// Resolves tap coordinate `p` of one axis of a (possibly zero-inserted) source of `size` pixels:
/// false when the tap reads 0 (outside with edge mode Zero, or an inserted zero); else `p` becomes
/// the source pixel. `insert` = 1 is an ordinary source.
MPSNN_HD bool resolveInsertedTap(int64_t& p, int64_t size, int64_t insert, ImageEdgeMode mode) {
  if (!resolveEdge(p, (size - 1) * insert + 1, mode)) return false;
  if (insert == 1) return true;
  if (p % insert) return false;
  p /= insert;
  return true;
}

/// How one spatial axis of a convolution maps onto a library convolution with explicit padding:
/// the source is narrowed to [start, start + size) and padded by padBegin / padEnd zeros, so that
/// output i reads narrowed coordinate i·stride − padBegin + k·dilation. padEnd may be negative
/// (the last window stops short of the narrowed source's end).
struct AxisMapping {
  int64_t start = 0, size = 0, padBegin = 0, padEnd = 0;
  bool anyRead = false;      // some tap falls inside the source
  bool readsInside = false;  // every tap falls inside the source (edge mode irrelevant)
};

/// `extent` source size, `offset` window centre of output 0, `outputs` outputs, `kernel`, `stride`,
/// `dilation` as in spec 00 §4.2.
inline AxisMapping mapAxis(int64_t extent, int64_t offset, int64_t outputs, int64_t kernel, int64_t stride,
                           int64_t dilation) {
  AxisMapping m;
  const int64_t dilated = (kernel - 1) * dilation + 1;
  const int64_t first = offset - dilated / 2;                         // first tap of output 0
  const int64_t last = first + (outputs - 1) * stride + dilated - 1;  // last tap of the last output
  m.readsInside = first >= 0 && last < extent;
  m.anyRead = last >= 0 && first < extent;
  m.start = std::max<int64_t>(first, 0);
  m.size = extent - m.start;
  m.padBegin = m.start - first;
  m.padEnd = last + 1 - extent;
  return m;
}

/// Implementations per backend, in order of preference; the last accepts every problem.
ImplementationList<ConvolutionProblem>& cpuConvolutionImplementations();
#if defined(MPSNN_HAVE_CUDA)
ImplementationList<ConvolutionProblem>& cudaConvolutionImplementations();
#endif
/// The members of those lists that live with their class family: the fully-connected GEMM
/// (src/cpu/fully_connected.cpp, src/cuda/fully_connected.cu: a whole-source window of a dense
/// float view) and the transpose's deconvolution (src/cpu/convolution_transpose.cpp,
/// src/cuda/convolution_transpose.cu: a zero-inserted source).
Implementation<ConvolutionProblem> cpuFullyConnectedGemm();
Implementation<ConvolutionProblem> cpuConvolutionTransposeDeconvolution();
#if defined(MPSNN_HAVE_CUDA)
Implementation<ConvolutionProblem> cudaFullyConnectedGemm();
/// A 1 × 1, stride-1 convolution reading inside a dense float source: one GEMM (fully_connected.cu).
Implementation<ConvolutionProblem> cudaConvolution1x1Gemm();
Implementation<ConvolutionProblem> cudaConvolutionTransposeDeconvolution();
#endif

/// A copy of float32 weights between two device buffers of one device (CNNConvolutionWeightsAndBiasesState
/// export and reload), viewed as [outputs][rows][columns][inner]: with `swapRowsAndColumns` the
/// destination is [outputs][columns][rows][inner] (a fully-connected layer's OWHI ↔ OHWI order);
/// with `roundToHalf` every value is rounded to float16 (the kernel's weight precision).
struct WeightTransferProblem {
  const float* source = nullptr;
  float* destination = nullptr;
  int64_t outputs = 0, rows = 1, columns = 1, inner = 1;
  bool swapRowsAndColumns = false, roundToHalf = false;
};
void cpuTransferWeights(const WeightTransferProblem& p, QueueContext& ctx);
#if defined(MPSNN_HAVE_CUDA)
void cudaTransferWeights(const WeightTransferProblem& p, QueueContext& ctx);
#endif

/// Test hooks (internal): force the last (plain) implementation of each list, overriding the
/// environment variable MPSNN_FORCE_PLAIN=1 (−1 = follow the environment, 0 = off, 1 = on).
void setForcePlainConvolution(int mode);
bool forcePlainConvolution();
/// Name of the implementation the last CNNConvolution encode on this thread chose ("" if none).
std::string lastConvolutionImplementation();
/// Names of the implementations on a device kind, in order of preference.
std::vector<std::string> convolutionImplementationNames(DeviceKind kind);

}  // namespace mpsnn::detail
