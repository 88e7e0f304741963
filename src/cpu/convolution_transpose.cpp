// CPU convolution transpose (spec 01 §6) with strides > 1: oneDNN's deconvolution. A transpose is a
// stride-1 convolution over the zero-inserted source Z with the weights as given; oneDNN's
// deconvolution scatters each source pixel u to outputs x = u·s − padL + k'·d, which is the same sum
// with the kernel rotated by 180° (k' = k − 1 − kx) and padL = t − floor(kWd/2) + (k − 1)·d, t being
// the centre offset in Z. Stride-1 transposes are ordinary convolutions and take the convolution's
// own paths; everything oneDNN cannot express (negative padding, Clamp reads outside Z) takes the
// plain loop.
#include <cstring>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "cpu/convolution_cpu.h"
#include "kernels/convolution_impl.h"
#include "mpsnn/error.h"

namespace mpsnn::detail {

#if defined(MPSNN_HAVE_DNNL)
namespace {

/// One axis of the deconvolution: oneDNN's left and right padding.
struct DeconvolutionAxis {
  bool ok = false;
  int64_t padBegin = 0, padEnd = 0;
};

/// `extent` source pixels, `insert` zero-insertion factor (the stride), `offset` centre offset of
/// output 0 in Z, `outputs` outputs.
DeconvolutionAxis planAxis(int64_t extent, int64_t insert, int64_t offset, int64_t outputs, int64_t kernel,
                           int64_t dilation, ImageEdgeMode edge) {
  DeconvolutionAxis a;
  const int64_t span = (kernel - 1) * dilation, zExtent = (extent - 1) * insert + 1;
  a.padBegin = offset - (span + 1) / 2 + span;
  a.padEnd = zExtent + span - a.padBegin - outputs;
  // oneDNN pads with zeros, as edge mode Zero reads outside Z; Clamp maps only when every tap of
  // every output falls inside Z (both paddings at least the kernel's span).
  const bool inside = a.padBegin >= span && a.padEnd >= span;
  a.ok = a.padBegin >= 0 && a.padEnd >= 0 && (edge == ImageEdgeMode::Zero || inside);
  return a;
}

struct DeconvolutionPlan {
  bool ok = false;
  DeconvolutionAxis x, y;
  bool direct = false;  // the primitive writes the destination view itself
};

DeconvolutionPlan planDeconvolution(const ConvolutionProblem& p) {
  DeconvolutionPlan plan;
  if (!p.zeroInserted() || p.subPixel != 1 || p.strideX != 1 || p.strideY != 1) return plan;
  const ImageView& d = p.io.dst;
  plan.x = planAxis(p.io.src.w, p.zeroInsertX, p.io.offsetX, d.w, p.kernelWidth, p.dilationX, p.io.edgeMode);
  plan.y = planAxis(p.io.src.h, p.zeroInsertY, p.io.offsetY, d.h, p.kernelHeight, p.dilationY, p.io.edgeMode);
  if (!plan.x.ok || !plan.y.ok) return plan;
  plan.direct = d.format == ImageFeatureChannelFormat::Float32 &&
                packed(d.n, d.h, d.w, d.c, d.pixelStride, d.rowStride, d.imageStride);
  plan.ok = true;
  return plan;
}

bool deconvolutionSupports(const ConvolutionProblem& p) { return planDeconvolution(p).ok; }

struct DnnlDeconvolution {
  bool ok = false;  // false: oneDNN offered no implementation; use the plain loop
  dnnl::deconvolution_forward primitive;
  dnnl::memory::desc src, dst, scratchpad;
  dnnl::memory weights, bias;
};

std::string keyOf(const ConvolutionProblem& p, const DeconvolutionPlan& plan) {
  std::string k = "dnnl-deconvolution";
  for (int64_t v : {p.io.dst.n,       p.inputChannels, p.io.src.h,           p.io.src.w,
                    p.outputChannels, p.io.dst.h,      p.io.dst.w,           p.groups,
                    p.kernelHeight,   p.kernelWidth,   p.zeroInsertY,        p.zeroInsertX,
                    p.dilationY,      p.dilationX,     plan.y.padBegin,      plan.x.padBegin,
                    plan.y.padEnd,    plan.x.padEnd,   int64_t(plan.direct), int64_t(p.biases != nullptr)}) {
    k += ',';
    k += std::to_string(v);
  }
  return k;
}

std::shared_ptr<DnnlDeconvolution> makeDeconvolution(const ConvolutionProblem& p,
                                                     const DeconvolutionPlan& plan) {
  using dt = dnnl::memory::data_type;
  using tag = dnnl::memory::format_tag;
  auto deconv = std::make_shared<DnnlDeconvolution>();
  const auto& engine = cpuEngine();
  const int64_t G = p.groups, Cig = p.inputChannelsPerGroup(), Cog = p.outputChannelsPerGroup();
  const int64_t kH = p.kernelHeight, kW = p.kernelWidth;
  deconv->src = dnnl::memory::desc({p.io.dst.n, p.inputChannels, p.io.src.h, p.io.src.w}, dt::f32, tag::nhwc);
  deconv->dst =
      dnnl::memory::desc({p.io.dst.n, p.outputChannels, p.io.dst.h, p.io.dst.w}, dt::f32, tag::nhwc);
  // Deconvolution weights are {(G,) OC, IC, KH, KW}: the rotated OHWI weights in ohwi / gohwi.
  const dnnl::memory::desc userWeights =
      G == 1 ? dnnl::memory::desc({p.outputChannels, Cig, kH, kW}, dt::f32, tag::ohwi)
             : dnnl::memory::desc({G, Cog, Cig, kH, kW}, dt::f32, tag::gohwi);
  const dnnl::memory::desc anyWeights(userWeights.dims(), dt::f32, tag::any);
  const dnnl::memory::desc biasDesc({p.outputChannels}, dt::f32, tag::x);
  const dnnl::memory::dims strides{p.zeroInsertY, p.zeroInsertX}, dilates{p.dilationY - 1, p.dilationX - 1},
      padL{plan.y.padBegin, plan.x.padBegin}, padR{plan.y.padEnd, plan.x.padEnd};
  dnnl::primitive_attr attr;
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);  // primitives may then run concurrently
  dnnl::deconvolution_forward::primitive_desc pd;
  try {
    auto desc = p.biases ? dnnl::deconvolution_forward::desc(
                               dnnl::prop_kind::forward_inference, dnnl::algorithm::deconvolution_direct,
                               deconv->src, anyWeights, biasDesc, deconv->dst, strides, dilates, padL, padR)
                         : dnnl::deconvolution_forward::desc(
                               dnnl::prop_kind::forward_inference, dnnl::algorithm::deconvolution_direct,
                               deconv->src, anyWeights, deconv->dst, strides, dilates, padL, padR);
    pd = dnnl::deconvolution_forward::primitive_desc(desc, attr, engine);
  } catch (const dnnl::error&) {
    return deconv;  // not ok: the plain loop takes it
  }
  deconv->primitive = dnnl::deconvolution_forward(pd);
  deconv->scratchpad = pd.scratchpad_desc();
  // Rotate the spatial taps by 180° (OHWI kept), then let oneDNN reorder to its layout.
  const int64_t perOutput = kH * kW * Cig;
  std::vector<float> rotated(size_t(p.weightCount()));
  for (int64_t o = 0; o < p.outputChannels; ++o)
    for (int64_t ky = 0; ky < kH; ++ky)
      for (int64_t kx = 0; kx < kW; ++kx)
        std::memcpy(rotated.data() + o * perOutput + (ky * kW + kx) * Cig,
                    p.weights + o * perOutput + ((kH - 1 - ky) * kW + (kW - 1 - kx)) * Cig,
                    size_t(Cig) * sizeof(float));
  dnnl::stream stream(engine);
  dnnl::memory user(userWeights, engine, rotated.data());
  deconv->weights = dnnl::memory(pd.weights_desc(), engine);
  dnnl::reorder(user, deconv->weights).execute(stream, user, deconv->weights);
  if (p.biases) {
    deconv->bias = dnnl::memory(biasDesc, engine);
    std::memcpy(deconv->bias.get_data_handle(), p.biases, size_t(p.outputChannels) * sizeof(float));
  }
  stream.wait();
  deconv->ok = true;
  return deconv;
}

void deconvolutionRun(const ConvolutionProblem& p, QueueContext& ctx) {
  const DeconvolutionPlan plan = planDeconvolution(p);
  auto deconv =
      p.cache->getOrCreate<DnnlDeconvolution>(keyOf(p, plan), [&] { return makeDeconvolution(p, plan); });
  if (!deconv->ok) return cpuConvolutionPlain(p, ctx);

  const ImageView& s = p.io.src;
  const ImageView& d = p.io.dst;
  std::unique_ptr<float[]> srcCopy, grid;
  const float* source = denseSourceWindow(s, 0, 0, d.n, s.h, s.w, p.inputChannels, srcCopy);
  float* out = static_cast<float*>(d.data());
  if (!plan.direct) {
    grid.reset(new float[size_t(d.n * d.h * d.w * p.outputChannels)]);
    out = grid.get();
  }
  const auto& engine = cpuEngine();
  std::unique_ptr<uint8_t[]> scratch(new uint8_t[std::max<size_t>(deconv->scratchpad.get_size(), 1)]);
  try {
    dnnl::stream stream(engine);
    dnnl::memory srcMem(deconv->src, engine, const_cast<float*>(source));
    dnnl::memory dstMem(deconv->dst, engine, out);
    dnnl::memory scratchMem(deconv->scratchpad, engine, scratch.get());
    std::unordered_map<int, dnnl::memory> args{{DNNL_ARG_SRC, srcMem},
                                               {DNNL_ARG_WEIGHTS, deconv->weights},
                                               {DNNL_ARG_DST, dstMem},
                                               {DNNL_ARG_SCRATCHPAD, scratchMem}};
    if (p.biases) args.emplace(DNNL_ARG_BIAS, deconv->bias);
    deconv->primitive.execute(stream, args);
    stream.wait();
  } catch (const dnnl::error& e) {
    throw DeviceError(std::string("oneDNN deconvolution failed: ") + e.what());
  }
  if (plan.direct)
    neuronInPlace(p.neuron, out, d.n * d.h * d.w, d.c);
  else
    storeFromGrid(p, out);
}

}  // namespace

Implementation<ConvolutionProblem> cpuConvolutionTransposeDeconvolution() {
  return {"cpu:onednn-deconvolution", deconvolutionSupports, deconvolutionRun};
}
#endif  // MPSNN_HAVE_DNNL

}  // namespace mpsnn::detail
