// mpsnn — errors and validation mode.
#pragma once
#include <stdexcept>
#include <string>

namespace mpsnn {

/// Thrown for any invalid argument or configuration. The message names the class, the property and
/// the offending value ("CNNConvolution: groups = 3 does not divide inputFeatureChannels = 8").
class InvalidArgument : public std::invalid_argument {
 public:
  explicit InvalidArgument(const std::string& what) : std::invalid_argument(what) {}
};

/// Thrown when a backend call fails (allocation, a CUDA or cuDNN error); carries the backend's text.
class DeviceError : public std::runtime_error {
 public:
  explicit DeviceError(const std::string& what) : std::runtime_error(what) {}
};

/// Spec 00 §0.2: by default restrictions that stem only from Metal textures (channel offsets in
/// multiples of 4, ...) are lifted. Strict validation re-enables MPS's rejections, for conformance tests.
void setStrictValidation(bool strict);
bool strictValidation();

}  // namespace mpsnn
