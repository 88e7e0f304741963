// Test support shared by the convolution family's suites (test_convolution.cpp,
// test_fully_connected.cpp, test_convolution_transpose.cpp, test_binary_convolution.cpp): a fully
// controllable data source, the weights a kernel must compute with, the plain-path hook, the
// per-value tolerance check against the float64 reference, and invalid-argument helpers.
#pragma once
#include <algorithm>
#include <array>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "harness.h"
#include "kernels/convolution_impl.h"

namespace mpsnn::test {

using Fmt = ImageFeatureChannelFormat;
using ref::RefImage;

// ---------------------------------------------------------------------------------------------
// A data source whose every answer a test can set; it counts load/purge and accesses while unloaded.

class TestSource : public CNNConvolutionDataSource {
 public:
  CNNConvolutionDescriptor desc;
  DataType type = DataType::Float32;
  std::optional<DataType> kernelType = DataType::Float32;  // nullopt: the protocol's default
  std::vector<float> floats;                               // Float32 data
  std::vector<uint16_t> halves;                            // Float16 data
  std::vector<uint8_t> bytes;                              // UInt8 data
  std::vector<uint32_t> words;                             // UInt32 data (binary convolution bits)
  std::vector<float> bias;                                 // empty: no bias
  CNNWeightsQuantizationType quantization = CNNWeightsQuantizationType::None;
  std::vector<std::array<float, 2>> ranges;
  std::vector<float> table;
  CNNConvolutionWeightsLayout layout = CNNConvolutionWeightsLayout::OHWI;
  bool loadResult = true, nullWeights = false;
  std::string name = "test-source";
  int loads = 0, purges = 0, accessesWhileUnloaded = 0;

  DataType dataType() const override { return type; }
  const CNNConvolutionDescriptor& descriptor() const override { return desc; }
  const void* weights() override {
    touch();
    if (nullWeights) return nullptr;
    if (type == DataType::Float16) return halves.data();
    if (type == DataType::UInt8) return bytes.data();
    if (type == DataType::UInt32) return words.data();
    return floats.data();
  }
  const float* biasTerms() override {
    touch();
    return bias.empty() ? nullptr : bias.data();
  }
  bool load() override {
    ++loads;
    loaded_ = loadResult;
    return loadResult;
  }
  void purge() override {
    ++purges;
    loaded_ = false;
  }
  std::string label() const override { return name; }
  CNNWeightsQuantizationType weightsQuantizationType() const override { return quantization; }
  const std::array<float, 2>* rangesForUInt8Kernel() override {
    touch();
    return ranges.empty() ? nullptr : ranges.data();
  }
  const float* lookupTableForUInt8Kernel() override {
    touch();
    return table.empty() ? nullptr : table.data();
  }
  CNNConvolutionWeightsLayout weightsLayout() const override { return layout; }
  DataType kernelWeightsDataType() const override {
    return kernelType ? *kernelType : CNNConvolutionDataSource::kernelWeightsDataType();
  }

 private:
  void touch() {
    if (!loaded_) ++accessesWhileUnloaded;
  }
  bool loaded_ = false;
};

inline size_t weightCountOf(const CNNConvolutionDescriptor& d) {
  const uint64_t cig = d.isDepthWise() ? 1 : d.inputFeatureChannels() / d.groups();
  return size_t(d.outputFeatureChannels() * d.kernelHeight() * d.kernelWidth() * cig);
}

/// Float32 weights in ±scale (default ±1/sqrt(weights per output), so sums stay O(1)) and a bias.
inline std::shared_ptr<TestSource> makeSource(const CNNConvolutionDescriptor& d, bool bias = true,
                                              double scale = 0) {
  auto s = std::make_shared<TestSource>();
  s->desc = d;
  const size_t count = weightCountOf(d);
  if (scale == 0) scale = 1.5 / std::sqrt(double(count / d.outputFeatureChannels()));
  for (double v : randomValues(count, -scale, scale)) s->floats.push_back(float(v));
  if (bias)
    for (double v : randomValues(d.outputFeatureChannels(), -0.5, 0.5)) s->bias.push_back(float(v));
  return s;
}

/// The weights a kernel must compute with, derived here independently of the kernel: decode the
/// data source (spec 01 §3), fold batch norm (§2.1), round to float16 unless the source asks for
/// float32 (kernelWeightsDataType QUIRK; rounding after folding, the library's CHOICE).
inline ref::ConvolutionWeights expectedWeights(const TestSource& s) {
  const size_t count = weightCountOf(s.desc);
  const size_t perOutput = count / s.desc.outputFeatureChannels();
  ref::ConvolutionWeights w;
  for (size_t i = 0; i < count; ++i) {
    double v = 0;
    switch (s.type) {
      case DataType::Float32:
        v = s.floats[i];
        break;
      case DataType::Float16:
        v = detail::halfToFloat(s.halves[i]);
        break;
      default:
        if (s.quantization == CNNWeightsQuantizationType::LookupTable) {
          v = s.table[s.bytes[i]];
        } else {
          const auto& mm = s.ranges[i / perOutput];
          v = float(s.bytes[i] / 255.0 * (double(mm[1]) - double(mm[0])) + double(mm[0]));
        }
    }
    w.weights.push_back(v);
  }
  for (float b : s.bias) w.biases.push_back(b);
  w = ref::foldBatchNorm(s.desc, w);
  const bool toHalf = s.kernelWeightsDataType() != DataType::Float32;
  for (double& v : w.weights) v = toHalf ? roundTrip(float(v), Fmt::Float16) : double(float(v));
  for (double& b : w.biases) b = double(float(b));
  return w;
}

// ---------------------------------------------------------------------------------------------
// Running a kernel and comparing with the reference.

/// Forces the plain convolution implementation while alive, or (on = false) the default dispatch
/// even when MPSNN_FORCE_PLAIN is set: the internal hook overrides the environment both ways.
struct ForcePlainConvolution {
  explicit ForcePlainConvolution(bool on) { detail::setForcePlainConvolution(on ? 1 : 0); }
  ~ForcePlainConvolution() { detail::setForcePlainConvolution(-1); }
  ForcePlainConvolution(const ForcePlainConvolution&) = delete;
  ForcePlainConvolution& operator=(const ForcePlainConvolution&) = delete;
};

inline std::vector<std::string> implementations() {
  return detail::convolutionImplementationNames(device()->kind());
}
inline std::string plainImplementation() { return implementations().back(); }
/// True when this build has a general convolution fast path on this device (oneDNN / cuDNN): the
/// whole-source GEMM of fully-connected layers is always in the list and takes only its own shape.
inline bool hasConvolutionFastPath() {
  const auto names = implementations();
  return std::find(names.begin(), names.end(), onCuda() ? "cuda:cudnn" : "cpu:onednn") != names.end();
}

/// Per-value expectation: the reference's values, and the scale Σ|w·x| + |b| each is compared at.
struct Reference {
  RefImage expected;   // poisoned picture with the reference's pixels written
  RefImage magnitude;  // Σ|w·x| + |b| per written value, −1 where the kernel must not write
};

/// The reference of a linear kernel: `run(neuron, weights, source, destination)` computes it with
/// the given neuron and weights; the magnitude is the same kernel without neuron on |w| and |x|.
template <class Run>
Reference referenceOf(Run&& run, const NNNeuronDescriptor& neuron, const ref::ConvolutionWeights& w,
                      const RefImage& src, const RefImage& poisoned) {
  Reference r;
  r.expected = poisoned;
  run(neuron, w, src, r.expected);
  r.magnitude = poisoned;
  std::fill(r.magnitude.data.begin(), r.magnitude.data.end(), -1.0);
  ref::ConvolutionWeights a = w;
  for (double& v : a.weights) v = std::fabs(v);
  for (double& v : a.biases) v = std::fabs(v);
  RefImage absSrc = src;
  for (double& v : absSrc.data) v = std::fabs(v);
  run(NNNeuronDescriptor(), a, absSrc, r.magnitude);
  return r;
}

inline double relativeTolerance(Fmt f) {
  switch (f) {
    case Fmt::Float32:
      return 1e-5;
    case Fmt::Float16:
      return 2e-3;
    default:
      return 1e-2;
  }
}

/// Per-value tolerance: rtol·(|e| + L·Σ|w·x|), plus half a unit of a unorm destination, where rtol
/// is that of the coarser of the two formats and L bounds the neuron's slope. Values the reference
/// did not write must keep the poison exactly.
inline ::testing::AssertionResult matches(const RefImage& actual, const Reference& ref, Fmt srcFormat,
                                          Fmt dstFormat, double lipschitz = 1.0) {
  const RefImage& e = ref.expected;
  if (actual.data.size() != e.data.size()) return ::testing::AssertionFailure() << "shape mismatch";
  const double rtol = std::max(relativeTolerance(srcFormat), relativeTolerance(dstFormat));
  const bool unorm = dstFormat == Fmt::Unorm8 || dstFormat == Fmt::Unorm16;
  const double unit = dstFormat == Fmt::Unorm8 ? 1.0 / 255 : dstFormat == Fmt::Unorm16 ? 1.0 / 65535 : 0.0;
  size_t bad = 0, written = 0;
  std::ostringstream msg;
  for (size_t i = 0; i < actual.data.size(); ++i) {
    const double a = actual.data[i], m = ref.magnitude.data[i];
    double x = e.data[i];
    const bool untouched = m == -1.0;  // (a NaN magnitude marks a written value read from a NaN)
    bool ok;
    if (untouched) {
      ok = std::isnan(x) ? std::isnan(a) : a == x;
    } else {
      ++written;
      if (unorm) x = std::isnan(x) ? 0.0 : std::clamp(x, 0.0, 1.0);
      if (std::isnan(x))
        ok = std::isnan(a);
      else if (std::isinf(x))
        ok = a == x;
      else
        ok = std::fabs(a - x) <= 0.51 * unit + rtol * (std::fabs(x) + lipschitz * m);
    }
    if (!ok) {
      if (bad < 8) {
        const int64_t c = int64_t(i) % actual.c, px = int64_t(i) / actual.c % actual.w;
        const int64_t py = int64_t(i) / (actual.c * actual.w) % actual.h;
        const int64_t n = int64_t(i) / (actual.c * actual.w * actual.h);
        msg << "\n  n=" << n << " y=" << py << " x=" << px << " c=" << c << ": got " << a << ", expected "
            << x << (untouched ? " (untouched)" : "");
      }
      ++bad;
    }
  }
  if (bad)
    return ::testing::AssertionFailure()
           << bad << " of " << actual.data.size() << " values differ" << msg.str();
  if (written == 0)
    return ::testing::AssertionFailure() << "the reference wrote nothing: the case tests nothing";
  return ::testing::AssertionSuccess();
}

inline CNNConvolutionDescriptor conv(uint64_t kW, uint64_t kH, uint64_t ci, uint64_t co, uint64_t sX = 1,
                                     uint64_t sY = 1, uint64_t dX = 1, uint64_t dY = 1, uint64_t groups = 1) {
  auto d = CNNConvolutionDescriptor::make(kW, kH, ci, co);
  d.setStrideInPixelsX(sX);
  d.setStrideInPixelsY(sY);
  d.setDilationRateX(dX);
  d.setDilationRateY(dY);
  d.setGroups(groups);
  return d;
}

inline std::string describe(const CNNConvolutionDescriptor& d) {
  std::ostringstream s;
  s << d.descriptorClassName() << " k=" << d.kernelWidth() << "x" << d.kernelHeight()
    << " Ci=" << d.inputFeatureChannels() << " Co=" << d.outputFeatureChannels()
    << " s=" << d.strideInPixelsX() << "x" << d.strideInPixelsY() << " d=" << d.dilationRateX() << "x"
    << d.dilationRateY() << " g=" << d.groups() << " r=" << d.subPixelScaleFactor()
    << " neuron=" << toString(d.fusedNeuronDescriptor().neuronType());
  return s.str();
}

/// Expects `f` to throw InvalidArgument whose message contains every word of `words`.
template <class F>
inline void expectInvalid(F&& f, std::initializer_list<const char*> words) {
  try {
    f();
    ADD_FAILURE() << "no InvalidArgument thrown (expected one naming " << *words.begin() << ")";
  } catch (const InvalidArgument& e) {
    for (const char* w : words) EXPECT_NE(std::string(e.what()).find(w), std::string::npos) << e.what();
  }
}

inline void runAndWait(const std::function<void(CommandBufferPtr)>& encode) {
  auto cb = queue()->commandBuffer();
  encode(cb);
  cb->commit();
  cb->waitUntilCompleted();
}

struct NeuronCase {
  NNNeuronDescriptor neuron;
  double lipschitz;
};

inline std::vector<NeuronCase> everyNeuron(uint64_t co) {
  std::vector<float> slopes;
  for (double v : randomValues(co, -0.5, 0.5)) slopes.push_back(float(v));
  using T = CNNNeuronType;
  return {
      {NNNeuronDescriptor::make(T::None), 1},
      {NNNeuronDescriptor::make(T::ReLU), 1},
      {NNNeuronDescriptor::make(T::ReLU, 0.1f), 1},
      {NNNeuronDescriptor::make(T::Linear, 2.0f, -0.5f), 2},
      {NNNeuronDescriptor::make(T::Sigmoid), 1},
      {NNNeuronDescriptor::make(T::HardSigmoid, 0.2f, 0.5f), 1},
      {NNNeuronDescriptor::make(T::TanH, 1.5f, 0.7f), 1.1},
      {NNNeuronDescriptor::make(T::Absolute), 1},
      {NNNeuronDescriptor::make(T::SoftPlus, 1.0f, 1.5f), 1.5},
      {NNNeuronDescriptor::make(T::SoftSign), 1},
      {NNNeuronDescriptor::make(T::ELU, 0.7f), 1},
      {NNNeuronDescriptor::makePReLU(std::make_shared<const std::vector<float>>(slopes)), 1},
      {NNNeuronDescriptor::make(T::ReLUN, 0.1f, 0.4f), 1},
      {NNNeuronDescriptor::make(T::Power, 0.1f, 2.0f, 1.5f), 1},
      {NNNeuronDescriptor::make(T::Exponential, 0.5f, 0.0f, -1.0f), 20},
      {NNNeuronDescriptor::make(T::Exponential, 0.3f, 0.1f, 2.0f), 20},
      {NNNeuronDescriptor::make(T::Logarithm, 0.1f, 3.0f, -1.0f), 1},
      {NNNeuronDescriptor::make(T::Logarithm, 0.1f, 3.0f, 10.0f), 1},
      {NNNeuronDescriptor::make(T::GeLU), 1.2},
  };
}

/// One run of a kernel on one path: what it wrote, what the reference says, and the implementation.
struct PathOutcome {
  RefImage actual;
  Reference ref;
  std::string implementation;
};

/// Poisons `dst`, runs `encode(commandBuffer)` on the plain path or the default dispatch, and asks
/// `expect(poisoned)` for the reference.
template <class Encode, class Expect>
PathOutcome runPath(bool plain, Encode&& encode, const ImagePtr& dst, Expect&& expect) {
  ForcePlainConvolution force(plain);
  PathOutcome out;
  const RefImage poisoned = poison(*dst);
  auto cb = queue()->commandBuffer();
  encode(cb);
  out.implementation = detail::lastConvolutionImplementation();
  cb->commit();
  cb->waitUntilCompleted();
  out.actual = download(*dst);
  out.ref = expect(poisoned);
  return out;
}

/// Runs through the default dispatch and through the plain implementation; both must match the
/// reference and each other. `wantFast`: the implementation the default dispatch must choose when
/// this build has it on this device ("" = any).
template <class Encode, class Expect>
void checkFastAndPlain(Encode&& encode, const ImagePtr& dst, Expect&& expect, Fmt sf, Fmt df,
                       double lipschitz = 1.0, const std::string& wantFast = "") {
  PathOutcome fast = runPath(false, encode, dst, expect);
  EXPECT_TRUE(matches(fast.actual, fast.ref, sf, df, lipschitz)) << "implementation " << fast.implementation;
  const auto names = implementations();
  if (!wantFast.empty() && std::find(names.begin(), names.end(), wantFast) != names.end()) {
    EXPECT_EQ(fast.implementation, wantFast) << "the fast path did not take this case";
  }
  PathOutcome plain = runPath(true, encode, dst, expect);
  EXPECT_EQ(plain.implementation, plainImplementation());
  EXPECT_TRUE(matches(plain.actual, plain.ref, sf, df, lipschitz))
      << "implementation " << plain.implementation;
  Reference agree = plain.ref;  // the two paths agree with each other
  agree.expected = plain.actual;
  EXPECT_TRUE(matches(fast.actual, agree, sf, df, 2 * lipschitz)) << fast.implementation << " vs plain";
}

/// Expects every value of `image` to still be the poison of `poisoned` (NaN, or the unorm pattern).
inline void expectUntouched(const Image& image, const RefImage& poisoned) {
  const RefImage after = download(image);
  for (size_t i = 0; i < after.data.size(); ++i) {
    const bool same =
        std::isnan(poisoned.data[i]) ? std::isnan(after.data[i]) : after.data[i] == poisoned.data[i];
    ASSERT_TRUE(same) << "destination written at " << i;
  }
}

/// Encodes `kernel` from `in` into a poisoned `out`, expecting an InvalidArgument whose message names
/// `className` and every one of `words`, and the destination left as it was.
template <class Kernel>
void expectEncodeRejected(Kernel& kernel, const char* className, const ImagePtr& in, const ImagePtr& out,
                          const std::vector<const char*>& words) {
  const RefImage poisoned = poison(*out);
  auto cb = queue()->commandBuffer();
  try {
    kernel.encode(cb, in, out);
    ADD_FAILURE() << "accepted";
  } catch (const InvalidArgument& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find(className), std::string::npos) << msg;
    for (const char* w : words) EXPECT_NE(msg.find(w), std::string::npos) << msg;
  }
  cb->commit();
  cb->waitUntilCompleted();
  expectUntouched(*out, poisoned);
}

}  // namespace mpsnn::test
