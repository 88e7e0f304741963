// CPU convolutions: oneDNN in float32 (any offset, groups, stride, dilation, bias, sub-pixel; other
// formats converted on the way in and out; Linear fused, other neurons in a pass over the result),
// and a plain OpenMP loop for everything (Clamp edges reaching outside, windows entirely outside,
// the zero-inserted sources of transposed convolutions). The list also holds the fully-connected
// GEMM (fully_connected.cpp) and the transpose's deconvolution (convolution_transpose.cpp); the
// helpers they share with this file are declared in convolution_cpu.h.
#include <omp.h>

#include <cstring>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#if defined(MPSNN_HAVE_DNNL)
#include <oneapi/dnnl/dnnl.hpp>
#endif

#include "cpu/convolution_cpu.h"
#include "kernels/convolution_impl.h"
#include "mpsnn/error.h"

namespace mpsnn::detail {
namespace {

// ---- plain: every format, edge mode, sub-pixel, group and dilation --------------------------

bool plainSupports(const ConvolutionProblem&) { return true; }

void plainRun(const ConvolutionProblem& p, QueueContext&) {
  const ImageView& s = p.io.src;
  const ImageView& d = p.io.dst;
  const int64_t kW = p.kernelWidth, kH = p.kernelHeight, G = p.groups;
  const int64_t Cig = p.inputChannelsPerGroup(), Cog = p.outputChannelsPerGroup(), Co = p.outputChannels;
  const int64_t K = kH * kW * Cig;  // weights per output channel
  const int64_t Ho = p.outputHeight(), Wo = p.outputWidth(), r = p.subPixel, cOut = d.c;
  const int64_t halfW = p.dilatedWidth() / 2, halfH = p.dilatedHeight() / 2;
  const void* in = s.data();
  void* out = d.data();
  const bool float32 = s.format == ImageFeatureChannelFormat::Float32;
  const int64_t cells = d.n * Ho * Wo;
#pragma omp parallel if (cells * Co * K > 65536)
  {
    std::vector<float> patch(static_cast<size_t>(K)), acc(static_cast<size_t>(Co));
#pragma omp for schedule(static)
    for (int64_t cell = 0; cell < cells; ++cell) {
      const int64_t n = cell / (Ho * Wo), Y = cell / Wo % Ho, X = cell % Wo;
      const int64_t x0 = p.io.offsetX + X * p.strideX - halfW, y0 = p.io.offsetY + Y * p.strideY - halfH;
      for (int64_t g = 0; g < G; ++g) {
        // Gather group g's window, [ky][kx][i], with the edge mode applied (and, for a transpose,
        // the inserted zeros).
        for (int64_t ky = 0; ky < kH; ++ky) {
          int64_t sy = y0 + ky * p.dilationY;
          const bool rowInside = resolveInsertedTap(sy, s.h, p.zeroInsertY, p.io.edgeMode);
          for (int64_t kx = 0; kx < kW; ++kx) {
            int64_t sx = x0 + kx * p.dilationX;
            float* dst = patch.data() + (ky * kW + kx) * Cig;
            if (!(rowInside && resolveInsertedTap(sx, s.w, p.zeroInsertX, p.io.edgeMode))) {
              std::fill_n(dst, Cig, 0.0f);
            } else if (float32) {
              std::memcpy(dst, static_cast<const float*>(in) + s.index(n, sy, sx, g * Cig),
                          size_t(Cig) * sizeof(float));
            } else {
              const int64_t at = s.index(n, sy, sx, g * Cig);
              for (int64_t i = 0; i < Cig; ++i) dst[i] = loadAsFloat(in, at + i, s.format);
            }
          }
        }
        for (int64_t o = g * Cog; o < (g + 1) * Cog; ++o) {
          const float* w = p.weights + o * K;
          float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
          for (int64_t j = 0; j < K; ++j) sum += w[j] * patch[size_t(j)];
          acc[size_t(o)] = sum + (p.biases ? p.biases[o] : 0.0f);
        }
      }
      for (int64_t o = 0; o < Co; ++o) {
        const float v = applyNeuron(p.neuron, acc[size_t(o)], o);
        if (r == 1) {
          storeFromFloat(out, d.index(n, Y, X, o), d.format, v);
        } else {  // spec 01 §4.4: channel o = cOut·(r·dy + dx) + c goes to (X·r + dx, Y·r + dy, c)
          const int64_t block = o / cOut, c = o % cOut;
          const int64_t y = Y * r + block / r, x = X * r + block % r;
          if (y < d.h && x < d.w) storeFromFloat(out, d.index(n, y, x, c), d.format, v);
        }
      }
    }
  }
}

}  // namespace

// ---- helpers shared with the fully-connected and transpose paths (convolution_cpu.h) ----------

void storeFromGrid(const ConvolutionProblem& p, const float* grid) {
  const ImageView& d = p.io.dst;
  const int64_t Ho = p.outputHeight(), Wo = p.outputWidth(), Co = p.outputChannels, r = p.subPixel;
  void* out = d.data();
  const int64_t rows = d.n * d.h;
#pragma omp parallel for schedule(static) if (rows * d.w * d.c > 32768)
  for (int64_t row = 0; row < rows; ++row) {
    const int64_t n = row / d.h, y = row % d.h;
    for (int64_t x = 0; x < d.w; ++x) {
      const float* cell = grid + ((n * Ho + y / r) * Wo + x / r) * Co;
      const int64_t base = d.c * (r * (y % r) + x % r);
      for (int64_t c = 0; c < d.c; ++c) {
        const int64_t o = base + c;
        storeFromFloat(out, d.index(n, y, x, c), d.format, applyNeuron(p.neuron, cell[o], o));
      }
    }
  }
}

bool packed(int64_t n, int64_t h, int64_t w, int64_t c, int64_t pixelStride, int64_t rowStride,
            int64_t imageStride) {
  return (w == 1 || pixelStride == c) && (h == 1 || rowStride == w * c) &&
         (n == 1 || imageStride == h * w * c);
}

const float* denseSourceWindow(const ImageView& s, int64_t y0, int64_t x0, int64_t n, int64_t h, int64_t w,
                               int64_t c, std::unique_ptr<float[]>& copy) {
  const int64_t windowStart = s.index(0, y0, x0, 0);
  const bool float32 = s.format == ImageFeatureChannelFormat::Float32;
  if (float32 && packed(n, h, w, c, s.pixelStride, s.rowStride, s.imageStride))
    return static_cast<const float*>(s.data()) + windowStart;
  copy.reset(new float[size_t(n * h * w * c)]);  // uninitialized: every value is written below
  const void* base = s.data();
  float* out0 = copy.get();
#pragma omp parallel for schedule(static) if (n * h * w * c > 32768)
  for (int64_t row = 0; row < n * h; ++row) {
    const int64_t in = row / h, y = row % h;
    for (int64_t x = 0; x < w; ++x) {
      float* out = out0 + (row * w + x) * c;
      const int64_t at = windowStart + s.index(in, y, x, 0);
      if (float32) {
        std::memcpy(out, static_cast<const float*>(base) + at, size_t(c) * sizeof(float));
      } else {
        for (int64_t ch = 0; ch < c; ++ch) out[ch] = loadAsFloat(base, at + ch, s.format);
      }
    }
  }
  return copy.get();
}

void neuronInPlace(const NeuronParams& neuron, float* data, int64_t pixels, int64_t channels) {
  if (neuron.type == CNNNeuronType::None) return;
  dispatchNeuronType(neuron.type, [&]<CNNNeuronType T>() {
#pragma omp parallel for schedule(static) if (pixels * channels > 32768)
    for (int64_t px = 0; px < pixels; ++px) {
      float* v = data + px * channels;
      for (int64_t c = 0; c < channels; ++c) v[c] = applyNeuronAs(T, neuron, v[c], c);
    }
  });
}

#if defined(MPSNN_HAVE_DNNL)
const dnnl::engine& cpuEngine() {
  static const dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  return engine;
}
#endif

void cpuConvolutionPlain(const ConvolutionProblem& p, QueueContext& ctx) { plainRun(p, ctx); }

void cpuTransferWeights(const WeightTransferProblem& p, QueueContext&) {
  const int64_t perOutput = p.rows * p.columns * p.inner;
#pragma omp parallel for schedule(static) if (p.outputs * perOutput > 65536)
  for (int64_t o = 0; o < p.outputs; ++o) {
    for (int64_t r = 0; r < p.rows; ++r)
      for (int64_t c = 0; c < p.columns; ++c) {
        const float* from = p.source + o * perOutput + (r * p.columns + c) * p.inner;
        float* to = p.destination + o * perOutput +
                    (p.swapRowsAndColumns ? c * p.rows + r : r * p.columns + c) * p.inner;
        for (int64_t i = 0; i < p.inner; ++i)
          to[i] = p.roundToHalf ? halfToFloat(floatToHalf(from[i])) : from[i];
      }
  }
}

namespace {

#if defined(MPSNN_HAVE_DNNL)
// ---- oneDNN -----------------------------------------------------------------------------------

struct DnnlPlan {
  bool ok = false;
  AxisMapping x, y;
  bool direct = false;  // the primitive writes the destination view itself
  bool postOp = false;  // the neuron is a oneDNN post-op (only when direct)
  dnnl::algorithm eltwise = dnnl::algorithm::eltwise_linear;
  float alpha = 0, beta = 0;
};

DnnlPlan planDnnl(const ConvolutionProblem& p) {
  DnnlPlan plan;
  if (p.zeroInserted()) return plan;  // a transpose: the deconvolution path takes it
  const ImageView& s = p.io.src;
  const ImageView& d = p.io.dst;
  plan.x = mapAxis(s.w, p.io.offsetX, p.outputWidth(), p.kernelWidth, p.strideX, p.dilationX);
  plan.y = mapAxis(s.h, p.io.offsetY, p.outputHeight(), p.kernelHeight, p.strideY, p.dilationY);
  // No tap inside the source: the result is bias and neuron only (the plain loop does that).
  if (!plan.x.anyRead || !plan.y.anyRead) return plan;
  // oneDNN pads with zeros; Clamp maps only when no tap falls outside.
  if (p.io.edgeMode != ImageEdgeMode::Zero && !(plan.x.readsInside && plan.y.readsInside)) return plan;
  // oneDNN accepts padding_r > −stride; shorter windows narrow the source instead.
  for (auto [axis, stride] : {std::pair{&plan.x, p.strideX}, std::pair{&plan.y, p.strideY}}) {
    if (axis->padEnd + stride <= 0) {
      axis->size += axis->padEnd;
      axis->padEnd = 0;
    }
  }
  plan.direct = d.format == ImageFeatureChannelFormat::Float32 && p.subPixel == 1 &&
                packed(d.n, d.h, d.w, d.c, d.pixelStride, d.rowStride, d.imageStride);
  if (plan.direct) {
    // Only Linear: oneDNN's ReLU turns NaN into 0, spec 03 propagates it (ReLU runs as a pass).
    switch (p.neuron.type) {
      case CNNNeuronType::Linear:
        plan.postOp = true;
        plan.eltwise = dnnl::algorithm::eltwise_linear;
        plan.alpha = p.neuron.a;
        plan.beta = p.neuron.b;
        break;
      default:
        break;
    }
  }
  plan.ok = true;
  return plan;
}

bool dnnlSupports(const ConvolutionProblem& p) { return planDnnl(p).ok; }

/// A primitive for one shape, with the weights already in its preferred layout.
struct DnnlConvolution {
  bool ok = false;  // false: oneDNN offered no implementation; use the plain loop
  dnnl::convolution_forward primitive;
  dnnl::memory::desc src, dst, scratchpad;
  dnnl::memory weights, bias;
};

std::string keyOf(const ConvolutionProblem& p, const DnnlPlan& plan) {
  auto bits = [](float f) {
    uint32_t u;
    std::memcpy(&u, &f, 4);
    return std::to_string(u);
  };
  std::string k = "dnnl";
  for (int64_t v : {p.io.dst.n,
                    p.inputChannels,
                    plan.y.size,
                    plan.x.size,
                    p.outputChannels,
                    p.outputHeight(),
                    p.outputWidth(),
                    p.groups,
                    p.kernelHeight,
                    p.kernelWidth,
                    p.strideY,
                    p.strideX,
                    p.dilationY,
                    p.dilationX,
                    plan.y.padBegin,
                    plan.x.padBegin,
                    plan.y.padEnd,
                    plan.x.padEnd,
                    int64_t(plan.direct),
                    int64_t(plan.postOp),
                    int64_t(plan.eltwise),
                    int64_t(p.biases != nullptr)}) {
    k += ',';
    k += std::to_string(v);
  }
  k += ',';
  k += bits(plan.alpha);
  k += ',';
  k += bits(plan.beta);
  return k;
}

std::shared_ptr<DnnlConvolution> makeDnnl(const ConvolutionProblem& p, const DnnlPlan& plan) {
  using dt = dnnl::memory::data_type;
  using tag = dnnl::memory::format_tag;
  auto conv = std::make_shared<DnnlConvolution>();
  const auto& engine = cpuEngine();
  const int64_t G = p.groups, Cig = p.inputChannelsPerGroup(), Cog = p.outputChannelsPerGroup();
  conv->src = dnnl::memory::desc({p.io.dst.n, p.inputChannels, plan.y.size, plan.x.size}, dt::f32, tag::nhwc);
  conv->dst = dnnl::memory::desc({p.io.dst.n, p.outputChannels, p.outputHeight(), p.outputWidth()}, dt::f32,
                                 tag::nhwc);
  // OHWI weights: [Co][kH][kW][Cig] is oneDNN's ohwi, or gohwi with the group split off.
  const dnnl::memory::desc userWeights =
      G == 1 ? dnnl::memory::desc({p.outputChannels, Cig, p.kernelHeight, p.kernelWidth}, dt::f32, tag::ohwi)
             : dnnl::memory::desc({G, Cog, Cig, p.kernelHeight, p.kernelWidth}, dt::f32, tag::gohwi);
  const dnnl::memory::desc anyWeights(userWeights.dims(), dt::f32, tag::any);
  const dnnl::memory::desc biasDesc({p.outputChannels}, dt::f32, tag::x);
  const dnnl::memory::dims strides{p.strideY, p.strideX}, dilates{p.dilationY - 1, p.dilationX - 1},
      padL{plan.y.padBegin, plan.x.padBegin}, padR{plan.y.padEnd, plan.x.padEnd};

  dnnl::primitive_attr attr;
  // User scratchpads: primitives may then run on any thread, concurrently.
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  if (plan.postOp) {
    dnnl::post_ops ops;
    ops.append_eltwise(1.0f, plan.eltwise, plan.alpha, plan.beta);
    attr.set_post_ops(ops);
  }
  dnnl::convolution_forward::primitive_desc pd;
  try {
    auto desc = p.biases ? dnnl::convolution_forward::desc(
                               dnnl::prop_kind::forward_inference, dnnl::algorithm::convolution_direct,
                               conv->src, anyWeights, biasDesc, conv->dst, strides, dilates, padL, padR)
                         : dnnl::convolution_forward::desc(
                               dnnl::prop_kind::forward_inference, dnnl::algorithm::convolution_direct,
                               conv->src, anyWeights, conv->dst, strides, dilates, padL, padR);
    pd = dnnl::convolution_forward::primitive_desc(desc, attr, engine);
  } catch (const dnnl::error&) {
    return conv;  // not ok: the plain loop takes it
  }
  conv->primitive = dnnl::convolution_forward(pd);
  conv->scratchpad = pd.scratchpad_desc();
  dnnl::stream stream(engine);
  dnnl::memory user(userWeights, engine, const_cast<float*>(p.weights));
  if (pd.weights_desc() == userWeights) {
    // Same layout: keep a private copy so the primitive never depends on the caller's pointer.
    conv->weights = dnnl::memory(userWeights, engine);
    std::memcpy(conv->weights.get_data_handle(), p.weights, size_t(p.weightCount()) * sizeof(float));
  } else {
    conv->weights = dnnl::memory(pd.weights_desc(), engine);
    dnnl::reorder(user, conv->weights).execute(stream, user, conv->weights);
  }
  if (p.biases) {
    conv->bias = dnnl::memory(biasDesc, engine);
    std::memcpy(conv->bias.get_data_handle(), p.biases, size_t(p.outputChannels) * sizeof(float));
  }
  stream.wait();
  conv->ok = true;
  return conv;
}

void dnnlRun(const ConvolutionProblem& p, QueueContext& ctx) {
  const DnnlPlan plan = planDnnl(p);
  auto conv = p.cache->getOrCreate<DnnlConvolution>(keyOf(p, plan), [&] { return makeDnnl(p, plan); });
  if (!conv->ok) return plainRun(p, ctx);

  const ImageView& s = p.io.src;
  const ImageView& d = p.io.dst;
  const int64_t n = d.n, Ci = p.inputChannels, h = plan.y.size, w = plan.x.size;
  // The narrowed source window, used in place when it is dense float32 NHWC, else copied densely
  // as float32 (other formats are converted on the way).
  std::unique_ptr<float[]> srcCopy;
  const float* srcWindow = denseSourceWindow(s, plan.y.start, plan.x.start, n, h, w, Ci, srcCopy);
  std::unique_ptr<float[]> grid;
  float* dstData = static_cast<float*>(d.data());
  if (!plan.direct) {
    grid.reset(new float[size_t(n * p.outputHeight() * p.outputWidth() * p.outputChannels)]);
    dstData = grid.get();
  }
  const auto& engine = cpuEngine();
  std::unique_ptr<uint8_t[]> scratch(new uint8_t[std::max<size_t>(conv->scratchpad.get_size(), 1)]);
  try {
    dnnl::stream stream(engine);
    dnnl::memory srcMem(conv->src, engine, const_cast<float*>(srcWindow));
    dnnl::memory dstMem(conv->dst, engine, dstData);
    dnnl::memory scratchMem(conv->scratchpad, engine, scratch.get());
    std::unordered_map<int, dnnl::memory> args{{DNNL_ARG_SRC, srcMem},
                                               {DNNL_ARG_WEIGHTS, conv->weights},
                                               {DNNL_ARG_DST, dstMem},
                                               {DNNL_ARG_SCRATCHPAD, scratchMem}};
    if (p.biases) args.emplace(DNNL_ARG_BIAS, conv->bias);
    conv->primitive.execute(stream, args);
    stream.wait();
  } catch (const dnnl::error& e) {
    throw DeviceError(std::string("oneDNN convolution failed: ") + e.what());
  }
  if (!plan.direct) {
    storeFromGrid(p, grid.get());
  } else if (!plan.postOp) {
    // A neuron oneDNN's eltwise does not reproduce exactly: a separate pass over the dense result.
    neuronInPlace(p.neuron, dstData, d.n * d.h * d.w, d.c);
  }
}
#endif  // MPSNN_HAVE_DNNL

}  // namespace

ImplementationList<ConvolutionProblem>& cpuConvolutionImplementations() {
  static ImplementationList<ConvolutionProblem> list = {
    cpuFullyConnectedGemm(),
#if defined(MPSNN_HAVE_DNNL)
    cpuConvolutionTransposeDeconvolution(),
    {"cpu:onednn", dnnlSupports, dnnlRun},
#endif
    {"cpu:plain", plainSupports, plainRun},
  };
  return list;
}

}  // namespace mpsnn::detail
