// Test harness: devices, random data (never zeros), poisoned outputs, host/image conversion,
// tolerance comparison, and the PyTorch case reader.
#pragma once
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <cstdint>
#include <fstream>
#include <map>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "core/format.h"
#include "mpsnn/mpsnn.h"
#include "ref/ref.h"

namespace mpsnn::test {

/// The device the suite runs on: Device::defaultDevice(), so MPSNN_DEVICE=cuda|cpu selects it.
inline DevicePtr device() { return Device::defaultDevice(); }
inline CommandQueuePtr queue() {
  static std::map<Device*, CommandQueuePtr> queues;
  auto& q = queues[device().get()];
  if (!q) q = device()->newCommandQueue();
  return q;
}
inline bool onCuda() { return device()->kind() == DeviceKind::CUDA; }

/// While alive, every kernel encoded uses its plain catch-all implementation when `on`
/// (MPSNN_FORCE_PLAIN=1, read at each encode), so tests can check fast paths against plain ones.
struct ForcePlain {
  explicit ForcePlain(bool on) {
    if (const char* v = std::getenv("MPSNN_FORCE_PLAIN")) previous_ = v, hadPrevious_ = true;
    setenv("MPSNN_FORCE_PLAIN", on ? "1" : "0", 1);  // explicit both ways: overrides the caller's setting
  }
  ~ForcePlain() {
    if (hadPrevious_) setenv("MPSNN_FORCE_PLAIN", previous_.c_str(), 1);
    else unsetenv("MPSNN_FORCE_PLAIN");
  }
  ForcePlain(const ForcePlain&) = delete;
  ForcePlain& operator=(const ForcePlain&) = delete;

 private:
  std::string previous_;
  bool hadPrevious_ = false;
};

/// A seeded generator per test, so a failure is reproducible from the printed seed.
inline std::mt19937_64& rng() {
  static std::mt19937_64 g(0x5eed);
  return g;
}
/// Uniform in [lo, hi] with |v| >= 1e-3·(hi − lo): never zero.
inline std::vector<double> randomValues(size_t n, double lo = -1.0, double hi = 1.0) {
  std::uniform_real_distribution<double> d(lo, hi);
  std::vector<double> v(n);
  const double tiny = 1e-3 * (hi - lo);
  for (auto& x : v) {
    do x = d(rng());
    while (std::fabs(x) < tiny);
  }
  return v;
}

inline ref::RefImage randomRefImage(int64_t n, int64_t h, int64_t w, int64_t c, double lo = -1.0, double hi = 1.0) {
  ref::RefImage r(n, h, w, c);
  r.data = randomValues(r.data.size(), lo, hi);
  return r;
}

/// Rounds a value through a storage format (what a write then read gives).
inline double roundTrip(double v, ImageFeatureChannelFormat f) {
  uint8_t buf[4];
  detail::storeFromFloat(buf, 0, f, float(v));
  return detail::loadAsFloat(buf, 0, f);
}
inline void roundTo(ref::RefImage& r, ImageFeatureChannelFormat f) {
  for (auto& x : r.data) x = roundTrip(x, f);
}

/// Raw bytes of `r` (all images, HWC) in format `f`.
inline std::vector<uint8_t> encodeHost(const ref::RefImage& r, ImageFeatureChannelFormat f) {
  std::vector<uint8_t> bytes(r.data.size() * bytesPerChannel(f));
  for (size_t i = 0; i < r.data.size(); ++i) detail::storeFromFloat(bytes.data(), int64_t(i), f, float(r.data[i]));
  return bytes;
}

/// Writes every image of `r` into `image` (whose shape must match).
inline void upload(Image& image, const ref::RefImage& r) {
  auto bytes = encodeHost(r, image.featureChannelFormat());
  size_t per = size_t(r.h * r.w * r.c) * bytesPerChannel(image.featureChannelFormat());
  for (int64_t k = 0; k < r.n; ++k)
    image.writeBytes(bytes.data() + size_t(k) * per, DataLayout::HeightxWidthxFeatureChannels, uint64_t(k));
}

/// A new image holding `r`, rounded to format `f`.
inline ImagePtr makeImage(const ref::RefImage& r, ImageFeatureChannelFormat f = ImageFeatureChannelFormat::Float32) {
  auto image = Image::make(device(), ImageDescriptor::make(f, uint64_t(r.w), uint64_t(r.h), uint64_t(r.c), uint64_t(r.n)));
  upload(*image, r);
  return image;
}

/// Reads every image back as float64.
inline ref::RefImage download(const Image& image) {
  ref::RefImage r(int64_t(image.numberOfImages()), int64_t(image.height()), int64_t(image.width()),
                  int64_t(image.featureChannels()));
  const auto f = image.featureChannelFormat();
  std::vector<uint8_t> bytes(size_t(r.h * r.w * r.c) * bytesPerChannel(f));
  for (int64_t k = 0; k < r.n; ++k) {
    image.readBytes(bytes.data(), DataLayout::HeightxWidthxFeatureChannels, uint64_t(k));
    for (int64_t i = 0; i < r.h * r.w * r.c; ++i)
      r.data[size_t(k * r.h * r.w * r.c + i)] = detail::loadAsFloat(bytes.data(), i, f);
  }
  return r;
}

/// Fills `image` with a poison value (NaN for float formats, 0.5 pattern-free 173/255 for unorm),
/// returning the float64 picture of what was written so that tests can check untouched pixels.
inline ref::RefImage poison(Image& image) {
  ref::RefImage r(int64_t(image.numberOfImages()), int64_t(image.height()), int64_t(image.width()),
                  int64_t(image.featureChannels()));
  const auto f = image.featureChannelFormat();
  const bool isFloat = f == ImageFeatureChannelFormat::Float32 || f == ImageFeatureChannelFormat::Float16 ||
                       f == ImageFeatureChannelFormat::BFloat16;
  for (auto& x : r.data) x = isFloat ? std::nan("") : 173.0 / 255.0;
  upload(image, r);
  return download(image);
}

/// Relative/absolute comparison; NaN matches only NaN. Reports the first few mismatches.
inline ::testing::AssertionResult close(const ref::RefImage& actual, const ref::RefImage& expected, double rtol,
                                        double atol) {
  if (actual.n != expected.n || actual.h != expected.h || actual.w != expected.w || actual.c != expected.c)
    return ::testing::AssertionFailure() << "shape " << actual.n << "x" << actual.h << "x" << actual.w << "x"
                                         << actual.c << " vs expected " << expected.n << "x" << expected.h << "x"
                                         << expected.w << "x" << expected.c;
  size_t bad = 0;
  std::ostringstream msg;
  double worst = 0;
  for (size_t i = 0; i < actual.data.size(); ++i) {
    double a = actual.data[i], e = expected.data[i];
    bool ok;
    if (std::isnan(e)) ok = std::isnan(a);
    else if (std::isinf(e)) ok = a == e;
    else ok = std::isfinite(a) && std::fabs(a - e) <= atol + rtol * std::fabs(e);
    if (!ok) {
      if (bad < 8) {
        int64_t c = int64_t(i) % actual.c, x = int64_t(i) / actual.c % actual.w;
        int64_t y = int64_t(i) / (actual.c * actual.w) % actual.h, n = int64_t(i) / (actual.c * actual.w * actual.h);
        msg << "\n  at n=" << n << " y=" << y << " x=" << x << " c=" << c << ": got " << a << ", expected " << e;
      }
      ++bad;
      if (std::isfinite(a) && std::isfinite(e)) worst = std::max(worst, std::fabs(a - e));
    }
  }
  if (bad == 0) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << bad << " of " << actual.data.size() << " values differ (worst abs "
                                       << worst << ")" << msg.str();
}

/// Tolerances per format (DESIGN §6): float32 ~1e-5 relative, 16-bit floats ~1e-2.
inline double rtolFor(ImageFeatureChannelFormat f) {
  switch (f) {
    case ImageFeatureChannelFormat::Float32: return 1e-5;
    case ImageFeatureChannelFormat::Float16: return 2e-3;
    case ImageFeatureChannelFormat::BFloat16: return 1e-2;
    default: return 1e-2;
  }
}

/// Builds the reference image of the destination: starts from the poisoned picture (untouched
/// pixels must keep it) and lets the reference write its pixels.
inline ref::RefImage expectedFrom(const ref::RefImage& poisoned) { return poisoned; }

/// Cases written by tests/pytorch/generate.py: "name" → list of arrays with shapes.
struct TorchCase {
  std::map<std::string, std::vector<double>> arrays;
  std::map<std::string, std::vector<int64_t>> shapes;
  std::map<std::string, double> scalars;
  std::string name;
};
/// Reads every case of `file` in the directory MPSNN_TORCH_CASES (set by ctest). Fails the test when
/// the file is missing: parity tests must not pass silently.
std::vector<TorchCase> readTorchCases(const std::string& file);

}  // namespace mpsnn::test
