#include "mpsnn/padding.h"

#include <limits>
#include <sstream>

#include "mpsnn/error.h"
#include "mpsnn/kernel.h"

namespace mpsnn {

namespace {
int style(NNPaddingMethod m) {
  switch (uint32_t(m & NNPaddingMethod::Size_reserved)) {
    case uint32_t(NNPaddingMethod::SizeValidOnly): return -1;
    case uint32_t(NNPaddingMethod::SizeSame): return 0;
    default: return 1;
  }
}
}  // namespace

void validatePaddingMethod(NNPaddingMethod m, const char* who) {
  if ((m & NNPaddingMethod::AlignMask) == NNPaddingMethod::Align_reserved)
    throw InvalidArgument(std::string(who) + ": paddingMethod = " + std::to_string(uint32_t(m)) +
                          " has the reserved alignment 3");
  if ((m & NNPaddingMethod::Size_reserved) == NNPaddingMethod::Size_reserved)
    throw InvalidArgument(std::string(who) + ": paddingMethod = " + std::to_string(uint32_t(m)) +
                          " has the reserved size 48");
  if (uint32_t(m) & 0x7c0)
    throw InvalidArgument(std::string(who) + ": paddingMethod = " + std::to_string(uint32_t(m)) +
                          " sets reserved size bits");
}

int64_t paddingDestinationSize(int64_t S, int64_t s, int64_t k, NNPaddingMethod m, bool backwards, const char* who) {
  validatePaddingMethod(m, who);
  if (s <= 0) throw InvalidArgument(std::string(who) + ": stride = " + std::to_string(s) + " must be positive");
  if (k <= 0) throw InvalidArgument(std::string(who) + ": window = " + std::to_string(k) + " must be positive");
  const int st = style(m);
  // 128-bit intermediates: no input may overflow (a result beyond int64 is rejected below).
  __int128 d;
  if (backwards) {
    d = (__int128(S) - 1) * s + 1 + __int128(st) * (k - 1);
  } else {
    __int128 num = __int128(S) + __int128(st) * (k - 1);
    d = num <= 0 ? 0 : (num + s - 1) / s;
  }
  if (d <= 0)
    throw InvalidArgument(std::string(who) + ": source extent " + std::to_string(S) + " is too small for window " +
                          std::to_string(k) + " with " + describePaddingMethod(m) + " padding");
  if (d > std::numeric_limits<int64_t>::max())
    throw InvalidArgument(std::string(who) + ": destination extent for source extent " + std::to_string(S) +
                          ", stride " + std::to_string(s) + ", window " + std::to_string(k) + " is too large");
  return int64_t(d);
}

int64_t paddingOffset(int64_t S, int64_t s, int64_t k, NNPaddingMethod m, bool isX) {
  int64_t d = paddingDestinationSize(S, s, k, m, false, "NNPadding");
  __int128 readSize = (__int128(d) - 1) * s + k;
  const __int128 extra = readSize - S;  // 128-bit: no input may overflow
  __int128 lead = 0;
  switch (uint32_t(m & NNPaddingMethod::AlignMask)) {
    case uint32_t(NNPaddingMethod::AlignCentered): {
      uint32_t rem = uint32_t(m & NNPaddingMethod::AddRemainderToMask);
      bool toTopOrLeft = isX ? (rem == uint32_t(NNPaddingMethod::AddRemainderToTopLeft) ||
                                rem == uint32_t(NNPaddingMethod::AddRemainderToBottomLeft))
                             : (rem == uint32_t(NNPaddingMethod::AddRemainderToTopLeft) ||
                                rem == uint32_t(NNPaddingMethod::AddRemainderToTopRight));
      lead = (extra + (toTopOrLeft ? 1 : 0)) / 2;  // C++ division truncates toward zero, as the spec says
      break;
    }
    case uint32_t(NNPaddingMethod::AlignTopLeft): lead = extra; break;
    default: lead = 0; break;
  }
  const __int128 offset = k / 2 - lead;
  if (offset < std::numeric_limits<int64_t>::min() || offset > std::numeric_limits<int64_t>::max())
    throw InvalidArgument("NNPadding: offset for source extent " + std::to_string(S) + ", stride " + std::to_string(s) +
                          ", window " + std::to_string(k) + " is out of range");
  return int64_t(offset);
}

std::string describePaddingMethod(NNPaddingMethod m) {
  std::ostringstream s;
  static const char* align[] = {"AlignCentered", "AlignTopLeft", "AlignBottomRight", "Align_reserved"};
  static const char* rem[] = {"AddRemainderToTopLeft", "AddRemainderToTopRight", "AddRemainderToBottomLeft",
                              "AddRemainderToBottomRight"};
  static const char* size[] = {"SizeValidOnly", "SizeSame", "SizeFull", "Size_reserved"};
  s << align[uint32_t(m) & 3] << "|" << rem[(uint32_t(m) >> 2) & 3] << "|" << size[(uint32_t(m) >> 4) & 3];
  if (any(m & NNPaddingMethod::CustomAllowForNodeFusion)) s << "|CustomAllowForNodeFusion";
  if (any(m & NNPaddingMethod::Custom)) s << "|Custom";
  if (any(m & NNPaddingMethod::ExcludeEdges)) s << "|ExcludeEdges";
  return s.str();
}

std::string NNPadding::label() const { return describePaddingMethod(paddingMethod()); }

ImageDescriptor NNPadding::destinationImageDescriptor(const ImageBatch&, const StateBatch&, Kernel& kernel,
                                                      const ImageDescriptor&) const {
  throw InvalidArgument(std::string(kernel.className()) +
                        ": padding policy sets Custom but does not override destinationImageDescriptor");
}

std::shared_ptr<NNDefaultPadding> NNDefaultPadding::paddingWithMethod(NNPaddingMethod method) {
  validatePaddingMethod(method, "NNDefaultPadding");
  if (any(method & NNPaddingMethod::Custom))
    throw InvalidArgument("NNDefaultPadding: paddingWithMethod(" + describePaddingMethod(method) +
                          ") must not contain Custom");
  return std::shared_ptr<NNDefaultPadding>(new NNDefaultPadding(method, false));
}

std::shared_ptr<NNDefaultPadding> NNDefaultPadding::paddingForTensorflowAveragePooling() {
  return std::shared_ptr<NNDefaultPadding>(
      new NNDefaultPadding(NNPaddingMethod::Custom | NNPaddingMethod::SizeSame | NNPaddingMethod::AlignCentered |
                               NNPaddingMethod::AddRemainderToBottomRight,
                           true));
}

std::shared_ptr<NNDefaultPadding> NNDefaultPadding::paddingForTensorflowAveragePoolingValidOnly() {
  return std::shared_ptr<NNDefaultPadding>(
      new NNDefaultPadding(NNPaddingMethod::Custom | NNPaddingMethod::SizeValidOnly |
                               NNPaddingMethod::AlignCentered | NNPaddingMethod::AddRemainderToBottomRight,
                           true));
}

std::string NNDefaultPadding::label() const {
  return (tfPooling_ ? std::string("TensorflowAveragePooling ") : std::string()) + describePaddingMethod(method_);
}

ImageDescriptor NNDefaultPadding::destinationImageDescriptor(const ImageBatch&, const StateBatch&, Kernel& kernel,
                                                             const ImageDescriptor& suggested) const {
  if (!tfPooling_) return suggested;
  if (auto* k = dynamic_cast<CNNKernel*>(&kernel)) k->setEdgeMode(ImageEdgeMode::Clamp);
  return suggested;
}

std::shared_ptr<NNPadding> NNDefaultPadding::inverse() const {
  NNPaddingMethod size = method_ & NNPaddingMethod::Size_reserved;
  NNPaddingMethod rest = NNPaddingMethod(uint32_t(method_) & ~uint32_t(NNPaddingMethod::Size_reserved));
  NNPaddingMethod flipped = size == NNPaddingMethod::SizeValidOnly ? NNPaddingMethod::SizeFull
                            : size == NNPaddingMethod::SizeFull   ? NNPaddingMethod::SizeValidOnly
                                                                  : size;
  return std::shared_ptr<NNDefaultPadding>(new NNDefaultPadding(rest | flipped, tfPooling_));
}

}  // namespace mpsnn
