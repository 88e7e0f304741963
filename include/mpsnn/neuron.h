// mpsnn — neurons (activation functions), spec 03.
#pragma once
#include <memory>
#include <vector>

#include "mpsnn/kernel.h"

namespace mpsnn {

/// Activation function types (MPSCNNNeuronType).
enum class CNNNeuronType : uint32_t {
  None = 0,
  ReLU = 1,
  Linear = 2,
  Sigmoid = 3,
  HardSigmoid = 4,
  TanH = 5,
  Absolute = 6,
  SoftPlus = 7,
  SoftSign = 8,
  ELU = 9,
  PReLU = 10,
  ReLUN = 11,
  Power = 12,
  Exponential = 13,
  Logarithm = 14,
  GeLU = 15,
  Count = 16,
};
std::string toString(CNNNeuronType type);

/// A neuron's type and parameters (MPSNNNeuronDescriptor). A copyable value; PReLU's per-channel
/// array is shared read-only. Factories store the documented default of every omitted parameter.
class NNNeuronDescriptor {
 public:
  /// Type None (identity).
  NNNeuronDescriptor() = default;
  static NNNeuronDescriptor make(CNNNeuronType type);
  static NNNeuronDescriptor make(CNNNeuronType type, float a);
  static NNNeuronDescriptor make(CNNNeuronType type, float a, float b);
  static NNNeuronDescriptor make(CNNNeuronType type, float a, float b, float c);
  /// PReLU with one slope per channel.
  static NNNeuronDescriptor makePReLU(std::shared_ptr<const std::vector<float>> data, bool noCopy = false);

  CNNNeuronType neuronType() const { return type_; }
  float a() const { return a_; }
  float b() const { return b_; }
  float c() const { return c_; }
  const std::shared_ptr<const std::vector<float>>& data() const { return data_; }
  void setNeuronType(CNNNeuronType t) { type_ = t; }
  void setA(float v) { a_ = v; }
  void setB(float v) { b_ = v; }
  void setC(float v) { c_ = v; }
  void setData(std::shared_ptr<const std::vector<float>> d) { data_ = std::move(d); }

  /// Throws InvalidArgument (naming `who`) for a type outside [None, GeLU] or PReLU without data.
  void validate(const char* who) const;

 private:
  CNNNeuronType type_ = CNNNeuronType::None;
  float a_ = 0, b_ = 0, c_ = 0;
  std::shared_ptr<const std::vector<float>> data_;
};

/// Element-wise activation (MPSCNNNeuron): dst = f(src) per channel, unwindowed mapping of spec 00 §4.2.
class CNNNeuron : public CNNKernel {
 public:
  CNNNeuron(DevicePtr device, const NNNeuronDescriptor& descriptor);
  static std::shared_ptr<CNNNeuron> make(DevicePtr device, const NNNeuronDescriptor& descriptor) {
    return std::make_shared<CNNNeuron>(std::move(device), descriptor);
  }
  const char* className() const override { return "CNNNeuron"; }
  CNNNeuronType neuronType() const { return descriptor_.neuronType(); }
  float a() const { return descriptor_.a(); }
  float b() const { return descriptor_.b(); }
  float c() const { return descriptor_.c(); }
  const std::shared_ptr<const std::vector<float>>& data() const { return descriptor_.data(); }
  const NNNeuronDescriptor& neuronDescriptor() const { return descriptor_; }

 protected:
  void validateImages(const Image& source, const Image& destination) const override;
  void encodeProblem(CommandBuffer& commandBuffer, const detail::UnaryProblem& problem) override;

 private:
  NNNeuronDescriptor descriptor_;
  std::shared_ptr<detail::Storage> preluOnDevice_;  // PReLU slopes in the device's memory
};

// Typed neurons (deprecated in MPS, kept for porting): thin constructors over CNNNeuron.
#define MPSNN_TYPED_NEURON(Name, Params)                  \
  class Name : public CNNNeuron {                                \
   public:                                                       \
    Name Params;                                                 \
    const char* className() const override { return #Name; }     \
    template <class... A>                                        \
    static std::shared_ptr<Name> make(A&&... args) {             \
      return std::make_shared<Name>(std::forward<A>(args)...);   \
    }                                                            \
  };
/// CNNNeuronLinear: CNNNeuron of type Linear, constructed from its parameters (DevicePtr device, float a, float b).
MPSNN_TYPED_NEURON(CNNNeuronLinear, (DevicePtr device, float a, float b))
/// CNNNeuronReLU: CNNNeuron of type ReLU, constructed from its parameters (DevicePtr device, float a).
MPSNN_TYPED_NEURON(CNNNeuronReLU, (DevicePtr device, float a))
/// CNNNeuronPReLU: CNNNeuron of type PReLU, constructed from its parameters (DevicePtr device, const float* a, size_t count).
MPSNN_TYPED_NEURON(CNNNeuronPReLU, (DevicePtr device, const float* a, size_t count))
/// CNNNeuronSigmoid: CNNNeuron of type Sigmoid, constructed from its parameters (DevicePtr device).
MPSNN_TYPED_NEURON(CNNNeuronSigmoid, (DevicePtr device))
/// CNNNeuronHardSigmoid: CNNNeuron of type HardSigmoid, constructed from its parameters (DevicePtr device, float a, float b).
MPSNN_TYPED_NEURON(CNNNeuronHardSigmoid, (DevicePtr device, float a, float b))
/// CNNNeuronTanH: CNNNeuron of type TanH, constructed from its parameters (DevicePtr device, float a, float b).
MPSNN_TYPED_NEURON(CNNNeuronTanH, (DevicePtr device, float a, float b))
/// CNNNeuronAbsolute: CNNNeuron of type Absolute, constructed from its parameters (DevicePtr device).
MPSNN_TYPED_NEURON(CNNNeuronAbsolute, (DevicePtr device))
/// CNNNeuronSoftPlus: CNNNeuron of type SoftPlus, constructed from its parameters (DevicePtr device, float a, float b).
MPSNN_TYPED_NEURON(CNNNeuronSoftPlus, (DevicePtr device, float a, float b))
/// CNNNeuronSoftSign: CNNNeuron of type SoftSign, constructed from its parameters (DevicePtr device).
MPSNN_TYPED_NEURON(CNNNeuronSoftSign, (DevicePtr device))
/// CNNNeuronELU: CNNNeuron of type ELU, constructed from its parameters (DevicePtr device, float a).
MPSNN_TYPED_NEURON(CNNNeuronELU, (DevicePtr device, float a))
/// CNNNeuronReLUN: CNNNeuron of type ReLUN, constructed from its parameters (DevicePtr device, float a, float b).
MPSNN_TYPED_NEURON(CNNNeuronReLUN, (DevicePtr device, float a, float b))
/// CNNNeuronPower: CNNNeuron of type Power, constructed from its parameters (DevicePtr device, float a, float b, float c).
MPSNN_TYPED_NEURON(CNNNeuronPower, (DevicePtr device, float a, float b, float c))
/// CNNNeuronExponential: CNNNeuron of type Exponential, constructed from its parameters (DevicePtr device, float a, float b, float c).
MPSNN_TYPED_NEURON(CNNNeuronExponential, (DevicePtr device, float a, float b, float c))
/// CNNNeuronLogarithm: CNNNeuron of type Logarithm, constructed from its parameters (DevicePtr device, float a, float b, float c).
MPSNN_TYPED_NEURON(CNNNeuronLogarithm, (DevicePtr device, float a, float b, float c))
#undef MPSNN_TYPED_NEURON

}  // namespace mpsnn
