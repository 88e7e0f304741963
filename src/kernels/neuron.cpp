// CNNNeuron and NNNeuronDescriptor (spec 03): validation and dispatch.
#include "mpsnn/neuron.h"

#include "core/image_access.h"
#include "kernels/describe.h"
#include "kernels/neuron_impl.h"
#include "mpsnn/error.h"

namespace mpsnn {

using namespace detail;

std::string toString(CNNNeuronType type) {
  static const char* names[] = {"None",     "ReLU", "Linear", "Sigmoid", "HardSigmoid", "TanH",
                                "Absolute", "SoftPlus", "SoftSign", "ELU", "PReLU", "ReLUN",
                                "Power",    "Exponential", "Logarithm", "GeLU"};
  uint32_t v = uint32_t(type);
  return v < 16 ? names[v] : "CNNNeuronType(" + std::to_string(v) + ")";
}

namespace {
// Spec 03 §1 "Default parameters" column; types without parameters store 0.
struct Defaults {
  float a, b, c;
};
Defaults defaultsFor(CNNNeuronType t) {
  switch (t) {
    case CNNNeuronType::Linear: return {1, 0, 0};
    case CNNNeuronType::HardSigmoid: return {0.2f, 0.5f, 0};
    case CNNNeuronType::TanH: return {1, 1, 0};
    case CNNNeuronType::SoftPlus: return {1, 1, 0};
    case CNNNeuronType::ELU: return {1, 0, 0};
    case CNNNeuronType::ReLUN: return {1, 6, 0};
    case CNNNeuronType::Power: return {1, 0, 1};
    case CNNNeuronType::Exponential: return {1, 0, -1};
    case CNNNeuronType::Logarithm: return {1, 0, -1};
    default: return {0, 0, 0};
  }
}
}  // namespace

NNNeuronDescriptor NNNeuronDescriptor::make(CNNNeuronType type) {
  Defaults d = defaultsFor(type);
  return make(type, d.a, d.b, d.c);
}
NNNeuronDescriptor NNNeuronDescriptor::make(CNNNeuronType type, float a) {
  Defaults d = defaultsFor(type);
  return make(type, a, d.b, d.c);
}
NNNeuronDescriptor NNNeuronDescriptor::make(CNNNeuronType type, float a, float b) {
  return make(type, a, b, defaultsFor(type).c);
}
NNNeuronDescriptor NNNeuronDescriptor::make(CNNNeuronType type, float a, float b, float c) {
  NNNeuronDescriptor d;
  d.type_ = type;
  d.a_ = a;
  d.b_ = b;
  d.c_ = c;
  d.validate("NNNeuronDescriptor");
  return d;
}
NNNeuronDescriptor NNNeuronDescriptor::makePReLU(std::shared_ptr<const std::vector<float>> data, bool) {
  NNNeuronDescriptor d;
  d.type_ = CNNNeuronType::PReLU;
  d.data_ = std::move(data);
  if (!d.data_ || d.data_->empty()) throw InvalidArgument("NNNeuronDescriptor: makePReLU data = null or empty");
  return d;
}

void NNNeuronDescriptor::validate(const char* who) const {
  if (uint32_t(type_) > uint32_t(CNNNeuronType::GeLU))
    throw InvalidArgument(std::string(who) + ": neuronType = " + toString(type_) + " is not a neuron type");
  if (type_ == CNNNeuronType::PReLU && (!data_ || data_->empty()))
    throw InvalidArgument(std::string(who) + ": neuronType = PReLU needs per-channel data (data = null)");
}

CNNNeuron::CNNNeuron(DevicePtr device, const NNNeuronDescriptor& descriptor)
    : CNNKernel(std::move(device)), descriptor_(descriptor) {
  descriptor_.validate("CNNNeuron");
  if (descriptor_.neuronType() == CNNNeuronType::PReLU)
    preluOnDevice_ = uploadToDevice(device_, descriptor_.data()->data(), descriptor_.data()->size() * sizeof(float));
}

void CNNNeuron::validateImages(const Image& source, const Image& destination) const {
  CNNKernel::validateImages(source, destination);
  if (descriptor_.neuronType() == CNNNeuronType::PReLU) {
    uint64_t cRead = std::min(sourceFeatureChannelMaxCount_, source.featureChannels() - sourceFeatureChannelOffset_);
    if (descriptor_.data()->size() < cRead)
      throw InvalidArgument(std::string(className()) + ": PReLU data has " + std::to_string(descriptor_.data()->size()) +
                            " slopes for " + std::to_string(cRead) + " channels");
  }
}

void CNNNeuron::encodeProblem(CommandBuffer& cb, const UnaryProblem& problem) {
  NeuronProblem p{problem, {descriptor_.neuronType(), descriptor_.a(), descriptor_.b(), descriptor_.c(), nullptr}};
  if (preluOnDevice_) p.neuron.prelu = static_cast<const float*>(preluOnDevice_->data());
#if defined(MPSNN_HAVE_CUDA)
  auto& list = device_->kind() == DeviceKind::CUDA ? cudaNeuronImplementations() : cpuNeuronImplementations();
#else
  auto& list = cpuNeuronImplementations();
#endif
  const auto& impl = chooseImplementation(list, p, className());
  auto keep = preluOnDevice_;
  auto run = impl.run;
  cb.encodeWork(describeWork(className(), impl.name, problem, toString(descriptor_.neuronType())),
                [p, keep, run](QueueContext& ctx) { run(p, ctx); });
}

// ---- typed neurons ----
#define MPSNN_DEFINE_TYPED(Name, Params, Descriptor) \
  Name::Name Params : CNNNeuron(std::move(device), Descriptor) {}
MPSNN_DEFINE_TYPED(CNNNeuronLinear, (DevicePtr device, float a, float b),
                   NNNeuronDescriptor::make(CNNNeuronType::Linear, a, b))
MPSNN_DEFINE_TYPED(CNNNeuronReLU, (DevicePtr device, float a), NNNeuronDescriptor::make(CNNNeuronType::ReLU, a))
MPSNN_DEFINE_TYPED(CNNNeuronSigmoid, (DevicePtr device), NNNeuronDescriptor::make(CNNNeuronType::Sigmoid))
MPSNN_DEFINE_TYPED(CNNNeuronHardSigmoid, (DevicePtr device, float a, float b),
                   NNNeuronDescriptor::make(CNNNeuronType::HardSigmoid, a, b))
MPSNN_DEFINE_TYPED(CNNNeuronTanH, (DevicePtr device, float a, float b),
                   NNNeuronDescriptor::make(CNNNeuronType::TanH, a, b))
MPSNN_DEFINE_TYPED(CNNNeuronAbsolute, (DevicePtr device), NNNeuronDescriptor::make(CNNNeuronType::Absolute))
MPSNN_DEFINE_TYPED(CNNNeuronSoftPlus, (DevicePtr device, float a, float b),
                   NNNeuronDescriptor::make(CNNNeuronType::SoftPlus, a, b))
MPSNN_DEFINE_TYPED(CNNNeuronSoftSign, (DevicePtr device), NNNeuronDescriptor::make(CNNNeuronType::SoftSign))
MPSNN_DEFINE_TYPED(CNNNeuronELU, (DevicePtr device, float a), NNNeuronDescriptor::make(CNNNeuronType::ELU, a))
MPSNN_DEFINE_TYPED(CNNNeuronReLUN, (DevicePtr device, float a, float b),
                   NNNeuronDescriptor::make(CNNNeuronType::ReLUN, a, b))
MPSNN_DEFINE_TYPED(CNNNeuronPower, (DevicePtr device, float a, float b, float c),
                   NNNeuronDescriptor::make(CNNNeuronType::Power, a, b, c))
MPSNN_DEFINE_TYPED(CNNNeuronExponential, (DevicePtr device, float a, float b, float c),
                   NNNeuronDescriptor::make(CNNNeuronType::Exponential, a, b, c))
MPSNN_DEFINE_TYPED(CNNNeuronLogarithm, (DevicePtr device, float a, float b, float c),
                   NNNeuronDescriptor::make(CNNNeuronType::Logarithm, a, b, c))
#undef MPSNN_DEFINE_TYPED

namespace {
NNNeuronDescriptor preluDescriptor(const float* a, size_t count) {
  if (!a || count == 0) throw InvalidArgument("CNNNeuronPReLU: a = null or count = 0");
  return NNNeuronDescriptor::makePReLU(std::make_shared<const std::vector<float>>(a, a + count), false);
}
}  // namespace
CNNNeuronPReLU::CNNNeuronPReLU(DevicePtr device, const float* a, size_t count)
    : CNNNeuron(std::move(device), preluDescriptor(a, count)) {}

}  // namespace mpsnn
