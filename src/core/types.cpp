#include "mpsnn/types.h"

#include <atomic>
#include <sstream>

#include "mpsnn/error.h"

namespace mpsnn {

namespace {
std::atomic<bool> gStrict{false};
}
void setStrictValidation(bool strict) { gStrict = strict; }
bool strictValidation() { return gStrict; }

size_t bytesPerChannel(ImageFeatureChannelFormat format) {
  switch (format) {
    case ImageFeatureChannelFormat::Unorm8: return 1;
    case ImageFeatureChannelFormat::Unorm16:
    case ImageFeatureChannelFormat::Float16:
    case ImageFeatureChannelFormat::BFloat16: return 2;
    case ImageFeatureChannelFormat::Float32: return 4;
    default: return 0;
  }
}

std::string toString(ImageFeatureChannelFormat format) {
  switch (format) {
    case ImageFeatureChannelFormat::None: return "None";
    case ImageFeatureChannelFormat::Unorm8: return "Unorm8";
    case ImageFeatureChannelFormat::Unorm16: return "Unorm16";
    case ImageFeatureChannelFormat::Float16: return "Float16";
    case ImageFeatureChannelFormat::Float32: return "Float32";
    case ImageFeatureChannelFormat::BFloat16: return "BFloat16";
    case ImageFeatureChannelFormat::Reserved0: return "Reserved0";
    case ImageFeatureChannelFormat::Count: return "Count";
  }
  return "ImageFeatureChannelFormat(" + std::to_string(uint32_t(format)) + ")";
}

std::string toString(ImageEdgeMode mode) {
  switch (mode) {
    case ImageEdgeMode::Zero: return "Zero";
    case ImageEdgeMode::Clamp: return "Clamp";
    case ImageEdgeMode::Mirror: return "Mirror";
    case ImageEdgeMode::MirrorWithEdge: return "MirrorWithEdge";
    case ImageEdgeMode::Constant: return "Constant";
  }
  return "ImageEdgeMode(" + std::to_string(uint32_t(mode)) + ")";
}

std::string toString(DataType type) {
  switch (type) {
    case DataType::Invalid: return "Invalid";
    case DataType::Float32: return "Float32";
    case DataType::Float16: return "Float16";
    case DataType::BFloat16: return "BFloat16";
    case DataType::Int8: return "Int8";
    case DataType::Int16: return "Int16";
    case DataType::Int32: return "Int32";
    case DataType::Int64: return "Int64";
    case DataType::UInt8: return "UInt8";
    case DataType::UInt16: return "UInt16";
    case DataType::UInt32: return "UInt32";
    case DataType::UInt64: return "UInt64";
    case DataType::Bool: return "Bool";
    case DataType::Unorm1: return "Unorm1";
    case DataType::Unorm8: return "Unorm8";
  }
  std::ostringstream s;
  s << "DataType(0x" << std::hex << uint32_t(type) << ")";
  return s.str();
}

}  // namespace mpsnn
