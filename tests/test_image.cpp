// Images (spec 00 §1–§2): descriptors, channel formats and their conversions, host transfers in
// both layouts for every format and overload, views, temporary images and batch helpers.
//
// Expected values are built here from the spec text (address formulas of §2.4, conversion rules
// of §1.1), never from the code under test.
#include <algorithm>
#include <cfenv>
#include <cmath>
#include <cstring>
#include <limits>
#include <set>
#include <string>
#include <vector>

#include "core/runtime_impl.h"
#include "harness.h"

namespace mpsnn {
namespace {

using F = ImageFeatureChannelFormat;
const F kFormats[] = {F::Float32, F::Float16, F::BFloat16, F::Unorm8, F::Unorm16};
const DataLayout kLayouts[] = {DataLayout::HeightxWidthxFeatureChannels,
                               DataLayout::FeatureChannelsxHeightxWidth};

/// Element size in bytes per spec 00 §1.1 (independent of bytesPerChannel()).
size_t elementSize(F f) {
  switch (f) {
    case F::Float32:
      return 4;
    case F::Float16:
      return 2;
    case F::BFloat16:
      return 2;
    case F::Unorm8:
      return 1;
    case F::Unorm16:
      return 2;
    default:
      return 0;
  }
}

std::string name(F f) {
  switch (f) {
    case F::Float32:
      return "Float32";
    case F::Float16:
      return "Float16";
    case F::BFloat16:
      return "BFloat16";
    case F::Unorm8:
      return "Unorm8";
    case F::Unorm16:
      return "Unorm16";
    default:
      return "?";
  }
}
std::string name(DataLayout l) { return l == DataLayout::HeightxWidthxFeatureChannels ? "HWC" : "CHW"; }

/// Restores relaxed validation when it goes out of scope.
struct StrictScope {
  StrictScope() { setStrictValidation(true); }
  ~StrictScope() { setStrictValidation(false); }
};

/// `count` elements of `e` bytes with random bit patterns, none of them all-zero.
std::vector<uint8_t> randomElements(size_t count, size_t e) {
  std::vector<uint8_t> v(count * e);
  std::uniform_int_distribution<int> byte(0, 255);
  for (size_t i = 0; i < count; ++i) {
    bool zero;
    do {
      zero = true;
      for (size_t b = 0; b < e; ++b) {
        v[i * e + b] = uint8_t(byte(test::rng()));
        zero = zero && v[i * e + b] == 0;
      }
    } while (zero);
  }
  return v;
}

/// Host model of an image's contents: raw elements, dense NHWC.
struct Content {
  uint64_t n = 0, h = 0, w = 0, c = 0;
  size_t e = 0;
  std::vector<uint8_t> bytes;
  uint8_t* at(uint64_t in, uint64_t y, uint64_t x, uint64_t ch) {
    return bytes.data() + (((in * h + y) * w + x) * c + ch) * e;
  }
  const uint8_t* at(uint64_t in, uint64_t y, uint64_t x, uint64_t ch) const {
    return bytes.data() + (((in * h + y) * w + x) * c + ch) * e;
  }
};

Content randomContent(const Image& image) {
  Content k{image.numberOfImages(),
            image.height(),
            image.width(),
            image.featureChannels(),
            elementSize(image.featureChannelFormat()),
            {}};
  k.bytes = randomElements(k.n * k.h * k.w * k.c, k.e);
  return k;
}

/// Writes `k` through overload A in HWC (a plain dense copy per image).
void store(Image& image, const Content& k) {
  const size_t per = k.h * k.w * k.c * k.e;
  for (uint64_t i = 0; i < k.n; ++i)
    image.writeBytes(k.bytes.data() + i * per, DataLayout::HeightxWidthxFeatureChannels, i);
}

/// Reads the whole image through overload A in HWC.
Content load(const Image& image) {
  Content k{image.numberOfImages(),
            image.height(),
            image.width(),
            image.featureChannels(),
            elementSize(image.featureChannelFormat()),
            {}};
  k.bytes.assign(k.n * k.h * k.w * k.c * k.e, 0xEE);
  const size_t per = k.h * k.w * k.c * k.e;
  for (uint64_t i = 0; i < k.n; ++i)
    image.readBytes(k.bytes.data() + i * per, DataLayout::HeightxWidthxFeatureChannels, i);
  return k;
}

::testing::AssertionResult sameBytes(const std::vector<uint8_t>& got, const std::vector<uint8_t>& want) {
  if (got.size() != want.size())
    return ::testing::AssertionFailure() << "size " << got.size() << " vs " << want.size();
  for (size_t i = 0; i < got.size(); ++i)
    if (got[i] != want[i])
      return ::testing::AssertionFailure()
             << "first difference at byte " << i << ": got " << int(got[i]) << ", expected " << int(want[i]);
  return ::testing::AssertionSuccess();
}

// ---------------------------------------------------------------------------------------------
// A host transfer described independently of the library: spec 00 §2.4.

enum class Overload { A, B, C, D };
std::string name(Overload o) { return std::string(1, char('A' + int(o))); }

struct Transfer {
  DataLayout layout = DataLayout::HeightxWidthxFeatureChannels;
  Overload overload = Overload::A;
  uint64_t bytesPerColumn = 0, bytesPerRow = 0,
           bytesPerImage = 0;  // as passed (B: row; C: row, image; D: all)
  IntRegion region{};
  ImageReadWriteParams channels{};
  uint64_t imageIndex = 0;
};

/// The transfer's geometry with every default resolved as the spec states.
struct Geometry {
  bool hwc;
  size_t e;
  uint64_t x0, y0, w, h, first, count, c0, cn;
  uint64_t bpc, bpr, bpi, plane;
  size_t address(uint64_t k, uint64_t y, uint64_t x, uint64_t c) const {
    return hwc ? k * bpi + y * bpr + x * bpc + c * e : k * bpi + c * plane + y * bpr + x * bpc;
  }
  size_t bufferSize() const {
    size_t end = 0;
    for (uint64_t k = 0; k < count; ++k)
      for (uint64_t y = 0; y < h; ++y)
        for (uint64_t x = 0; x < w; ++x)
          for (uint64_t c = 0; c < cn; ++c) end = std::max(end, address(k, y, x, c) + e);
    return end + 16;  // slack that must stay untouched
  }
};

Geometry geometryOf(const Image& image, const Transfer& t) {
  Geometry g{};
  g.hwc = t.layout == DataLayout::HeightxWidthxFeatureChannels;
  g.e = elementSize(image.featureChannelFormat());
  if (t.overload == Overload::A) {
    g.x0 = g.y0 = 0;
    g.w = image.width();
    g.h = image.height();
    g.first = t.imageIndex;
    g.count = 1;
    g.c0 = 0;
    g.cn = image.featureChannels();
    // Dense defaults: HWC bytesPerRow = W*C*e; CHW bytesPerRow = W*e; bytesPerImage = H*bytesPerRow*(CHW ? C
    // : 1).
    g.bpc = g.hwc ? g.cn * g.e : g.e;
    g.bpr = g.hwc ? g.w * g.cn * g.e : g.w * g.e;
    g.plane = g.bpr * g.h;
    g.bpi = g.h * g.bpr * (g.hwc ? 1 : g.cn);
    return g;
  }
  g.x0 = t.region.origin.x;
  g.y0 = t.region.origin.y;
  g.w = t.region.size.width;
  g.h = t.region.size.height;
  g.first = t.imageIndex + t.region.origin.z;
  g.count = t.region.size.depth;
  g.c0 = t.channels.featureChannelOffset;
  g.cn = t.channels.numberOfFeatureChannelsToReadWrite;
  g.bpc = t.overload == Overload::D ? t.bytesPerColumn : (g.hwc ? g.cn * g.e : g.e);
  g.bpr = t.bytesPerRow;
  g.plane = g.bpr * g.h;  // CHW plane stride: bytesPerRow * region.size.height
  // Overload B has no bytesPerImage: consecutive images follow each other densely.
  g.bpi = t.overload == Overload::B ? (g.hwc ? g.h * g.bpr : g.cn * g.plane) : t.bytesPerImage;
  return g;
}

void doRead(const Image& image, void* buf, const Transfer& t) {
  switch (t.overload) {
    case Overload::A:
      image.readBytes(buf, t.layout, t.imageIndex);
      break;
    case Overload::B:
      image.readBytes(buf, t.layout, t.bytesPerRow, t.region, t.channels, t.imageIndex);
      break;
    case Overload::C:
      image.readBytes(buf, t.layout, t.bytesPerRow, t.bytesPerImage, t.region, t.channels, t.imageIndex);
      break;
    case Overload::D:
      image.readBytes(buf, t.layout, t.bytesPerColumn, t.bytesPerRow, t.bytesPerImage, t.region, t.channels,
                      t.imageIndex);
      break;
  }
}

void doWrite(Image& image, const void* buf, const Transfer& t) {
  switch (t.overload) {
    case Overload::A:
      image.writeBytes(buf, t.layout, t.imageIndex);
      break;
    case Overload::B:
      image.writeBytes(buf, t.layout, t.bytesPerRow, t.region, t.channels, t.imageIndex);
      break;
    case Overload::C:
      image.writeBytes(buf, t.layout, t.bytesPerRow, t.bytesPerImage, t.region, t.channels, t.imageIndex);
      break;
    case Overload::D:
      image.writeBytes(buf, t.layout, t.bytesPerColumn, t.bytesPerRow, t.bytesPerImage, t.region, t.channels,
                       t.imageIndex);
      break;
  }
}

/// Reads through `t` into a buffer of random garbage; checks every addressed element (padding lanes
/// read 0) and that nothing else in the buffer changed.
void checkRead(const Image& image, const Content& content, const Transfer& t) {
  const Geometry g = geometryOf(image, t);
  std::vector<uint8_t> buf = randomElements(g.bufferSize(), 1);
  std::vector<uint8_t> expected = buf;
  for (uint64_t k = 0; k < g.count; ++k)
    for (uint64_t y = 0; y < g.h; ++y)
      for (uint64_t x = 0; x < g.w; ++x)
        for (uint64_t c = 0; c < g.cn; ++c) {
          uint8_t* dst = expected.data() + g.address(k, y, x, c);
          const uint64_t ch = g.c0 + c;
          if (ch < content.c)
            std::memcpy(dst, content.at(g.first + k, g.y0 + y, g.x0 + x, ch), g.e);
          else
            std::memset(dst, 0, g.e);  // padding lane reads 0
        }
  doRead(image, buf.data(), t);
  EXPECT_TRUE(sameBytes(buf, expected));
}

/// Writes through `t` from a buffer of random data; checks the image afterwards (padding lanes
/// ignored, everything outside the transfer unchanged) and that the buffer was not modified.
void checkWrite(Image& image, Content& content, const Transfer& t) {
  const Geometry g = geometryOf(image, t);
  std::vector<uint8_t> buf = randomElements(g.bufferSize(), 1);
  const std::vector<uint8_t> original = buf;
  for (uint64_t k = 0; k < g.count; ++k)
    for (uint64_t y = 0; y < g.h; ++y)
      for (uint64_t x = 0; x < g.w; ++x)
        for (uint64_t c = 0; c < g.cn; ++c) {
          const uint64_t ch = g.c0 + c;
          if (ch < content.c)
            std::memcpy(content.at(g.first + k, g.y0 + y, g.x0 + x, ch), buf.data() + g.address(k, y, x, c),
                        g.e);
        }
  doWrite(image, buf.data(), t);
  EXPECT_TRUE(sameBytes(buf, original)) << "writeBytes modified the caller's buffer";
  EXPECT_TRUE(sameBytes(load(image).bytes, content.bytes));
}

/// A transfer with custom strides that leave gaps (multiples of the element size).
Transfer withStrides(const Image& image, DataLayout layout, Overload o, IntRegion region,
                     ImageReadWriteParams ch, uint64_t imageIndex) {
  Transfer t;
  t.layout = layout;
  t.overload = o;
  t.region = region;
  t.channels = ch;
  t.imageIndex = imageIndex;
  const size_t e = elementSize(image.featureChannelFormat());
  const bool hwc = layout == DataLayout::HeightxWidthxFeatureChannels;
  const uint64_t cn = ch.numberOfFeatureChannelsToReadWrite, w = region.size.width, h = region.size.height;
  const uint64_t bpc = o == Overload::D ? (hwc ? cn * e + 2 * e : 3 * e) : (hwc ? cn * e : e);
  t.bytesPerColumn = bpc;
  t.bytesPerRow = w * bpc + (o == Overload::A ? 0 : 3 * e);
  const uint64_t imageBytes = hwc ? h * t.bytesPerRow : cn * t.bytesPerRow * h;
  t.bytesPerImage = imageBytes + 5 * e;
  return t;
}

// =============================================================================================
// Enumerations and plain structs (spec 00 §1)

TEST(ImageFeatureChannelFormat, EnumeratorValuesAndSizes) {
  EXPECT_EQ(uint32_t(F::None), 0u);
  EXPECT_EQ(uint32_t(F::Unorm8), 1u);
  EXPECT_EQ(uint32_t(F::Unorm16), 2u);
  EXPECT_EQ(uint32_t(F::Float16), 3u);
  EXPECT_EQ(uint32_t(F::Float32), 4u);
  EXPECT_EQ(uint32_t(F::Reserved0), 5u);
  EXPECT_EQ(uint32_t(F::Count), 6u);
  EXPECT_EQ(uint32_t(F::BFloat16), 0x100u);
  for (F f : kFormats) EXPECT_EQ(bytesPerChannel(f), elementSize(f)) << name(f);
  for (F f : {F::None, F::Reserved0, F::Count, F(7), F(0x101)}) EXPECT_EQ(bytesPerChannel(f), 0u);
  for (F f : kFormats) EXPECT_EQ(toString(f), name(f));
}

TEST(DataLayout, EnumeratorValues) {
  EXPECT_EQ(uint32_t(DataLayout::HeightxWidthxFeatureChannels), 0u);
  EXPECT_EQ(uint32_t(DataLayout::FeatureChannelsxHeightxWidth), 1u);
}

TEST(ImageEdgeMode, EnumeratorValues) {
  EXPECT_EQ(uint32_t(ImageEdgeMode::Zero), 0u);
  EXPECT_EQ(uint32_t(ImageEdgeMode::Clamp), 1u);
  EXPECT_EQ(uint32_t(ImageEdgeMode::Mirror), 2u);
  EXPECT_EQ(uint32_t(ImageEdgeMode::MirrorWithEdge), 3u);
  EXPECT_EQ(uint32_t(ImageEdgeMode::Constant), 4u);
}

TEST(IntRegion, RectNoClipSentinel) {
  constexpr uint64_t m = std::numeric_limits<uint64_t>::max();
  EXPECT_EQ(RectNoClip.origin, (IntOrigin{0, 0, 0}));
  EXPECT_EQ(RectNoClip.size, (IntSize{m, m, m}));
  EXPECT_TRUE(isRectNoClip(RectNoClip));
  EXPECT_TRUE(isRectNoClip(IntRegion{{3, 4, 5}, {m, m, m}}));  // any region with all-max sizes
  EXPECT_FALSE(isRectNoClip(IntRegion{{0, 0, 0}, {m, m, 1}}));
  EXPECT_FALSE(isRectNoClip(IntRegion{{0, 0, 0}, {5, 5, 5}}));
}

TEST(Offset, DefaultsAndSignedness) {
  Offset o;
  EXPECT_EQ(o, (Offset{0, 0, 0}));
  o = {-3, -4, -5};
  EXPECT_EQ(o.x, -3);
  EXPECT_EQ(o.y, -4);
  EXPECT_EQ(o.z, -5);
}

TEST(DataType, EnumeratorValues) {
  EXPECT_EQ(uint32_t(DataType::Invalid), 0u);
  EXPECT_EQ(uint32_t(DataType::Float32), 0x10000020u);
  EXPECT_EQ(uint32_t(DataType::Float16), 0x10000010u);
  EXPECT_EQ(uint32_t(DataType::Int8), 0x20000008u);
  EXPECT_EQ(uint32_t(DataType::Int16), 0x20000010u);
  EXPECT_EQ(uint32_t(DataType::Int32), 0x20000020u);
  EXPECT_EQ(uint32_t(DataType::Int64), 0x20000040u);
  EXPECT_EQ(uint32_t(DataType::UInt8), 8u);
  EXPECT_EQ(uint32_t(DataType::UInt16), 16u);
  EXPECT_EQ(uint32_t(DataType::UInt32), 32u);
  EXPECT_EQ(uint32_t(DataType::UInt64), 64u);
  EXPECT_EQ(uint32_t(DataType::Bool), 0x80000008u);
  EXPECT_EQ(uint32_t(DataType::Unorm1), 0x40000001u);
  EXPECT_EQ(uint32_t(DataType::Unorm8), 0x40000008u);
  EXPECT_EQ(uint32_t(DataType::BFloat16), 0x90000010u);
}

// =============================================================================================
// Conversions (spec 00 §1.1), against references written here.

uint32_t bitsOf(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}
float floatOf(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

/// IEEE binary16 decoded by its definition.
double refHalfValue(uint16_t h) {
  const int sign = (h & 0x8000) ? -1 : 1;
  const int exp = (h >> 10) & 0x1f;
  const int mant = h & 0x3ff;
  if (exp == 0) return sign * std::ldexp(double(mant), -24);
  if (exp == 31)
    return mant ? std::numeric_limits<double>::quiet_NaN() : sign * std::numeric_limits<double>::infinity();
  return sign * std::ldexp(1.0 + mant / 1024.0, exp - 15);
}

/// Round-to-nearest-even of |v| to a multiple of 2^q (v finite, double exact enough).
double roundToQuantum(double v, int q) {
  const double scaled = std::ldexp(v, -q);  // exact: scaling by a power of two
  const double fl = std::floor(scaled);
  const double diff = scaled - fl;
  double r;
  if (diff > 0.5)
    r = fl + 1;
  else if (diff < 0.5)
    r = fl;
  else
    r = std::fmod(fl, 2.0) == 0.0 ? fl : fl + 1;
  return std::ldexp(r, q);
}

/// float → binary16 by value: round |v| to 11 significant bits (quantum 2^-24 below 2^-14), then encode.
uint16_t refFloatToHalf(float f) {
  const uint16_t sign = std::signbit(f) ? 0x8000 : 0;
  if (std::isnan(f)) return 0x7e00;
  const double a = std::fabs(double(f));
  if (std::isinf(f)) return sign | 0x7c00;
  if (a == 0) return sign;
  int e;
  std::frexp(a, &e);                    // a = m * 2^e, m in [0.5, 1)
  const int q = std::max(e - 11, -24);  // unit in the last place of the result
  const double r = roundToQuantum(a, q);
  if (r >= 65536.0) return sign | 0x7c00;  // overflow → inf
  if (r == 0) return sign;
  if (r < std::ldexp(1.0, -14)) return uint16_t(sign | uint16_t(std::ldexp(r, 24)));  // subnormal
  int re;
  const double m = std::frexp(r, &re);  // r = m * 2^re
  const int exp = re - 1 + 15;
  const int mant = int(std::ldexp(m * 2.0 - 1.0, 10));
  return uint16_t(sign | (exp << 10) | mant);
}

/// float → bfloat16 by value: 8 significant bits (quantum 2^-133 in the subnormal range).
uint16_t refFloatToBFloat16(float f) {
  const uint16_t sign = std::signbit(f) ? 0x8000 : 0;
  const double a = std::fabs(double(f));
  if (std::isinf(f)) return sign | 0x7f80;
  if (a == 0) return sign;
  int e;
  std::frexp(a, &e);
  const int q = std::max(e - 8, -133);
  const double r = roundToQuantum(a, q);
  if (r >= std::ldexp(1.0, 128)) return sign | 0x7f80;
  return uint16_t(bitsOf(float(r)) >> 16) | sign;  // r has <= 8 significant bits: exact in float
}

TEST(ImageFeatureChannelFormat, HalfToFloatExhaustive) {
  for (uint32_t h = 0; h < 65536; ++h) {
    const float got = detail::halfToFloat(uint16_t(h));
    const double want = refHalfValue(uint16_t(h));
    if (std::isnan(want)) {
      ASSERT_TRUE(std::isnan(got)) << std::hex << h;
      EXPECT_EQ(std::signbit(got), (h & 0x8000) != 0) << std::hex << h;
    } else {
      ASSERT_EQ(double(got), want) << std::hex << h;
      ASSERT_EQ(std::signbit(got), (h & 0x8000) != 0) << std::hex << h;  // -0 stays -0
    }
  }
}

TEST(ImageFeatureChannelFormat, FloatToHalfRoundTripExhaustive) {
  for (uint32_t h = 0; h < 65536; ++h) {
    const float f = detail::halfToFloat(uint16_t(h));
    const uint16_t back = detail::floatToHalf(f);
    if (std::isnan(refHalfValue(uint16_t(h)))) {
      EXPECT_TRUE(std::isnan(refHalfValue(back))) << std::hex << h << " → " << back;
    } else {
      ASSERT_EQ(back, h) << std::hex << h;
    }
  }
}

TEST(ImageFeatureChannelFormat, FloatToHalfEveryRoundingBoundary) {
  // Between every pair of neighbouring finite halves: the midpoint ties to even, one float ulp
  // below goes down and one above goes up. Covers subnormals, the normal range and the top
  // (65504 → 65520 ties to the even neighbour, which is infinity).
  for (uint32_t sign : {0u, 0x8000u})
    for (uint32_t h = 0; h < 0x7c00; ++h) {
      const double lo = std::fabs(refHalfValue(uint16_t(h)));
      const double hi = std::fabs(h + 1 == 0x7c00 ? 65536.0 : refHalfValue(uint16_t(h + 1)));
      const double midD = (lo + hi) / 2;
      const float mid = float(midD);
      ASSERT_EQ(double(mid), midD) << "midpoint must be exact in float";
      const float s = sign ? -1.0f : 1.0f;
      const uint16_t even = (h % 2 == 0) ? uint16_t(h) : uint16_t(h + 1);
      ASSERT_EQ(detail::floatToHalf(s * mid), uint16_t(sign | even)) << std::hex << h;
      ASSERT_EQ(detail::floatToHalf(s * std::nextafter(mid, 0.0f)), uint16_t(sign | h)) << std::hex << h;
      ASSERT_EQ(detail::floatToHalf(s * std::nextafter(mid, INFINITY)), uint16_t(sign | (h + 1)))
          << std::hex << h;
    }
}

TEST(ImageFeatureChannelFormat, FloatToHalfRandomAgainstReference) {
  std::uniform_int_distribution<uint32_t> bits;
  std::uniform_int_distribution<int> exps(100, 150);  // concentrate on the half range
  for (int i = 0; i < 400000; ++i) {
    uint32_t u = bits(test::rng());
    if (i % 2) u = (u & 0x807fffffu) | (uint32_t(exps(test::rng())) << 23);
    const float f = floatOf(u);
    if (std::isnan(f)) continue;
    ASSERT_EQ(detail::floatToHalf(f), refFloatToHalf(f)) << std::hex << "float bits 0x" << u;
  }
}

TEST(ImageFeatureChannelFormat, Float16Specials) {
  EXPECT_EQ(detail::floatToHalf(0.0f), 0x0000);
  EXPECT_EQ(detail::floatToHalf(-0.0f), 0x8000);
  EXPECT_EQ(detail::floatToHalf(1.0f), 0x3c00);
  EXPECT_EQ(detail::floatToHalf(-2.0f), 0xc000);
  EXPECT_EQ(detail::floatToHalf(65504.0f), 0x7bff);
  EXPECT_EQ(detail::floatToHalf(65519.99f), 0x7bff);
  EXPECT_EQ(detail::floatToHalf(65520.0f), 0x7c00);  // overflow → inf
  EXPECT_EQ(detail::floatToHalf(1e10f), 0x7c00);
  EXPECT_EQ(detail::floatToHalf(-1e10f), 0xfc00);
  EXPECT_EQ(detail::floatToHalf(std::numeric_limits<float>::max()), 0x7c00);
  EXPECT_EQ(detail::floatToHalf(INFINITY), 0x7c00);
  EXPECT_EQ(detail::floatToHalf(-INFINITY), 0xfc00);
  EXPECT_EQ(detail::floatToHalf(std::ldexp(1.0f, -24)), 0x0001);   // smallest subnormal
  EXPECT_EQ(detail::floatToHalf(std::ldexp(1.0f, -25)), 0x0000);   // tie → even (0)
  EXPECT_EQ(detail::floatToHalf(std::ldexp(3.0f, -25)), 0x0002);   // 1.5 ulp → tie → even (2)
  EXPECT_EQ(detail::floatToHalf(-std::ldexp(1.0f, -30)), 0x8000);  // underflow keeps the sign
  EXPECT_EQ(detail::floatToHalf(std::numeric_limits<float>::denorm_min()), 0x0000);
  EXPECT_EQ(detail::floatToHalf(std::ldexp(1.0f, -14)), 0x0400);  // smallest normal
  for (uint32_t nan : {0x7fc00000u, 0x7f800001u, 0xffc00000u, 0x7fffffffu, 0xff812345u}) {
    const uint16_t h = detail::floatToHalf(floatOf(nan));
    EXPECT_EQ(h & 0x7c00, 0x7c00) << std::hex << nan;
    EXPECT_NE(h & 0x03ff, 0) << "NaN must stay NaN, not become inf: " << std::hex << nan;
  }
}

TEST(ImageFeatureChannelFormat, BFloat16ExhaustiveDecodeAndRoundTrip) {
  for (uint32_t b = 0; b < 65536; ++b) {
    const float f = detail::bfloat16ToFloat(uint16_t(b));
    ASSERT_EQ(bitsOf(f), b << 16) << std::hex << b;  // the upper 16 bits of a binary32
    const bool isNan = (b & 0x7f80) == 0x7f80 && (b & 0x7f) != 0;
    const uint16_t back = detail::floatToBFloat16(f);
    if (isNan) {
      EXPECT_EQ(back & 0x7f80, 0x7f80) << std::hex << b;
      EXPECT_NE(back & 0x7f, 0) << std::hex << b;
    } else {
      ASSERT_EQ(back, b) << std::hex << b;
    }
  }
}

TEST(ImageFeatureChannelFormat, BFloat16EveryRoundingBoundary) {
  for (uint32_t sign : {0u, 0x8000u})
    for (uint32_t b = 0; b < 0x7f80; ++b) {
      // Midpoint between b and b+1 in binary32: the low 16 bits are exactly half an ulp.
      const uint32_t mid = ((sign | b) << 16) | 0x8000u;
      const uint16_t even = (b % 2 == 0) ? uint16_t(b) : uint16_t(b + 1);
      ASSERT_EQ(detail::floatToBFloat16(floatOf(mid)), uint16_t(sign | even)) << std::hex << b;
      ASSERT_EQ(detail::floatToBFloat16(floatOf(mid - 1)), uint16_t(sign | b)) << std::hex << b;
      ASSERT_EQ(detail::floatToBFloat16(floatOf(mid + 1)), uint16_t(sign | (b + 1))) << std::hex << b;
    }
}

TEST(ImageFeatureChannelFormat, BFloat16RandomAgainstReference) {
  std::uniform_int_distribution<uint32_t> bits;
  for (int i = 0; i < 400000; ++i) {
    const uint32_t u = bits(test::rng());
    const float f = floatOf(u);
    if (std::isnan(f)) continue;
    ASSERT_EQ(detail::floatToBFloat16(f), refFloatToBFloat16(f)) << std::hex << "float bits 0x" << u;
  }
}

TEST(ImageFeatureChannelFormat, BFloat16SpecialsAndQuietNaN) {
  EXPECT_EQ(detail::floatToBFloat16(1.0f), 0x3f80);
  EXPECT_EQ(detail::floatToBFloat16(-0.0f), 0x8000);
  EXPECT_EQ(detail::floatToBFloat16(INFINITY), 0x7f80);
  EXPECT_EQ(detail::floatToBFloat16(-INFINITY), 0xff80);
  EXPECT_EQ(detail::floatToBFloat16(std::numeric_limits<float>::max()), 0x7f80);  // overflow → inf
  EXPECT_EQ(detail::floatToBFloat16(-std::numeric_limits<float>::max()), 0xff80);
  EXPECT_EQ(detail::floatToBFloat16(floatOf(0x7f7f7fffu)), 0x7f7f);  // just below the overflow midpoint
  std::uniform_int_distribution<uint32_t> mant(1, 0x7fffff);
  std::vector<uint32_t> nans = {0x7f800001u, 0x7fbfffffu, 0x7fc00000u, 0xff800001u, 0xffffffffu, 0x7f80ffffu};
  for (int i = 0; i < 1000; ++i) nans.push_back(0x7f800000u | mant(test::rng()) | (i % 2 ? 0x80000000u : 0));
  for (uint32_t nan : nans) {
    const uint16_t b = detail::floatToBFloat16(floatOf(nan));
    EXPECT_TRUE(std::isnan(detail::bfloat16ToFloat(b))) << std::hex << nan;
    EXPECT_NE(b & 0x0040, 0) << "quiet NaN expected for 0x" << std::hex << nan;
  }
}

/// round_half_even(clamp(v, 0, 1) * maxval) with the product in float32 (spec 00 conventions:
/// kernel arithmetic is float32); NaN → 0.
uint32_t refUnorm(float v, float maxval) {
  if (std::isnan(v)) return 0;
  const float clamped = std::min(std::max(v, 0.0f), 1.0f);
  const float p = clamped * maxval;
  const double fl = std::floor(double(p));
  const double diff = double(p) - fl;
  double r = diff > 0.5 ? fl + 1 : diff < 0.5 ? fl : (std::fmod(fl, 2.0) == 0 ? fl : fl + 1);
  return uint32_t(r);
}

TEST(ImageFeatureChannelFormat, UnormConversions) {
  for (float maxval : {255.0f, 65535.0f}) {
    SCOPED_TRACE(maxval);
    const uint32_t top = uint32_t(maxval);
    // Every code decodes to v/maxval and encodes back to itself.
    for (uint32_t u = 0; u <= top; ++u) {
      uint8_t buf[2];
      float decoded;
      if (top == 255) {
        buf[0] = uint8_t(u);
        decoded = detail::loadAsFloat(buf, 0, F::Unorm8);
      } else {
        const uint16_t v = uint16_t(u);
        std::memcpy(buf, &v, 2);
        decoded = detail::loadAsFloat(buf, 0, F::Unorm16);
      }
      ASSERT_EQ(decoded, float(double(u) / double(top))) << u;
      ASSERT_EQ(detail::floatToUnorm(decoded, maxval), u) << u;
    }
    // Clamping and NaN.
    EXPECT_EQ(detail::floatToUnorm(-0.25f, maxval), 0u);
    EXPECT_EQ(detail::floatToUnorm(-INFINITY, maxval), 0u);
    EXPECT_EQ(detail::floatToUnorm(1.5f, maxval), top);
    EXPECT_EQ(detail::floatToUnorm(INFINITY, maxval), top);
    EXPECT_EQ(detail::floatToUnorm(NAN, maxval), 0u);
    EXPECT_EQ(detail::floatToUnorm(-NAN, maxval), 0u);
    EXPECT_EQ(detail::floatToUnorm(0.0f, maxval), 0u);
    EXPECT_EQ(detail::floatToUnorm(1.0f, maxval), top);
    // Half-even ties: 0.5 * 255 = 127.5 → 128; 0.5 * 65535 = 32767.5 → 32768.
    EXPECT_EQ(detail::floatToUnorm(0.5f, maxval), top == 255 ? 128u : 32768u);
    // Near-ties and random values against the reference.
    for (uint32_t k = 0; k < top; k += (top == 255 ? 1 : 97)) {
      const float t = float((k + 0.5) / double(top));
      for (float v : {t, std::nextafter(t, 0.0f), std::nextafter(t, 2.0f)})
        ASSERT_EQ(detail::floatToUnorm(v, maxval), refUnorm(v, maxval)) << v;
    }
    std::uniform_real_distribution<float> dist(-0.5f, 1.5f);
    for (int i = 0; i < 100000; ++i) {
      const float v = dist(test::rng());
      ASSERT_EQ(detail::floatToUnorm(v, maxval), refUnorm(v, maxval)) << v;
    }
  }
}

TEST(ImageFeatureChannelFormat, StoreAndLoadPerFormat) {
  // storeFromFloat/loadAsFloat follow the per-format rules above.
  std::uniform_real_distribution<float> dist(-3.0f, 3.0f);
  for (int i = 0; i < 20000; ++i) {
    const float v = dist(test::rng());
    uint8_t buf[8] = {};
    detail::storeFromFloat(buf, 1, F::Float32, v);
    EXPECT_EQ(detail::loadAsFloat(buf, 1, F::Float32), v);
    detail::storeFromFloat(buf, 1, F::Float16, v);
    uint16_t h;
    std::memcpy(&h, buf + 2, 2);
    EXPECT_EQ(h, refFloatToHalf(v));
    EXPECT_EQ(double(detail::loadAsFloat(buf, 1, F::Float16)), refHalfValue(refFloatToHalf(v)));
    detail::storeFromFloat(buf, 1, F::BFloat16, v);
    std::memcpy(&h, buf + 2, 2);
    EXPECT_EQ(h, refFloatToBFloat16(v));
    detail::storeFromFloat(buf, 1, F::Unorm8, v);
    EXPECT_EQ(buf[1], refUnorm(v, 255.0f));
    detail::storeFromFloat(buf, 1, F::Unorm16, v);
    std::memcpy(&h, buf + 2, 2);
    EXPECT_EQ(h, refUnorm(v, 65535.0f));
  }
}

// =============================================================================================
// ImageDescriptor (spec 00 §2.1)

TEST(ImageDescriptor, Defaults) {
  ImageDescriptor d;
  EXPECT_EQ(d.width(), 1u);
  EXPECT_EQ(d.height(), 1u);
  EXPECT_EQ(d.featureChannels(), 1u);
  EXPECT_EQ(d.numberOfImages(), 1u);
  EXPECT_EQ(d.channelFormat(), F::Float32);
  EXPECT_EQ(d.featureChannelFormat(), F::Float32);
  EXPECT_EQ(d.storageMode(), StorageMode::Shared);
  EXPECT_EQ(d.cpuCacheMode(), CPUCacheMode::DefaultCache);
  EXPECT_EQ(uint32_t(d.usage()), uint32_t(TextureUsage::ShaderRead) | uint32_t(TextureUsage::ShaderWrite));
}

TEST(ImageDescriptor, Factories) {
  auto a = ImageDescriptor::make(F::Float16, 7, 5, 13);
  EXPECT_EQ(a.width(), 7u);
  EXPECT_EQ(a.height(), 5u);
  EXPECT_EQ(a.featureChannels(), 13u);
  EXPECT_EQ(a.numberOfImages(), 1u);
  EXPECT_EQ(a.channelFormat(), F::Float16);
  auto b = ImageDescriptor::make(F::Unorm8, 3, 2, 4, 9, TextureUsage::ShaderRead);
  EXPECT_EQ(b.numberOfImages(), 9u);
  EXPECT_EQ(b.usage(), TextureUsage::ShaderRead);
  EXPECT_EQ(b.channelFormat(), F::Unorm8);
  // A copyable value.
  ImageDescriptor c = b;
  EXPECT_EQ(c, b);
  c.setWidth(8);
  EXPECT_NE(c, b);
  EXPECT_EQ(b.width(), 3u);
  EXPECT_FALSE(b.toString().empty());
}

TEST(ImageDescriptor, Setters) {
  ImageDescriptor d;
  d.setWidth(11);
  d.setHeight(12);
  d.setFeatureChannels(13);
  d.setNumberOfImages(14);
  d.setChannelFormat(F::BFloat16);
  d.setStorageMode(StorageMode::Private);
  d.setCpuCacheMode(CPUCacheMode::WriteCombined);
  d.setUsage(TextureUsage::ShaderWrite);
  EXPECT_EQ(d.width(), 11u);
  EXPECT_EQ(d.height(), 12u);
  EXPECT_EQ(d.featureChannels(), 13u);
  EXPECT_EQ(d.numberOfImages(), 14u);
  EXPECT_EQ(d.featureChannelFormat(), F::BFloat16);
  EXPECT_EQ(d.storageMode(), StorageMode::Private);
  EXPECT_EQ(d.cpuCacheMode(), CPUCacheMode::WriteCombined);
  d.setFeatureChannelFormat(F::Unorm16);
  EXPECT_EQ(d.channelFormat(), F::Unorm16);
}

TEST(ImageDescriptor, InvalidWhenCreatingStorage) {
  auto dev = test::device();
  auto cb = test::queue()->commandBuffer();
  struct Case {
    ImageDescriptor d;
    const char* property;
  };
  std::vector<Case> cases = {
      {ImageDescriptor::make(F::Float32, 0, 4, 4), "width"},
      {ImageDescriptor::make(F::Float32, 4, 0, 4), "height"},
      {ImageDescriptor::make(F::Float32, 4, 4, 0), "featureChannels"},
      {ImageDescriptor::make(F::Float32, 4, 4, 4, 0), "numberOfImages"},
      {ImageDescriptor::make(F::None, 4, 4, 4), "None"},
      {ImageDescriptor::make(F::Reserved0, 4, 4, 4), "Reserved0"},
      {ImageDescriptor::make(F::Count, 4, 4, 4), "Count"},
      {ImageDescriptor::make(F(0x101), 4, 4, 4), "ImageFeatureChannelFormat"},
      {ImageDescriptor::make(F::Float32, uint64_t(1) << 40, uint64_t(1) << 40, 4), "large"},
      {ImageDescriptor::make(F::Float32, UINT64_MAX, 1, 1), "large"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.d.toString());
    EXPECT_THROW(Image::make(dev, c.d), InvalidArgument);
    EXPECT_THROW(TemporaryImage::make(cb, c.d), InvalidArgument);
    try {
      Image::make(dev, c.d);
    } catch (const InvalidArgument& e) {
      EXPECT_NE(std::string(e.what()).find(c.property), std::string::npos) << e.what();
    }
  }
  EXPECT_THROW(Image::make(nullptr, ImageDescriptor()), InvalidArgument);
  cb->commit();
  cb->waitUntilCompleted();
}

// =============================================================================================
// Image (spec 00 §2.2–§2.4)

TEST(Image, PropertiesOfANewImage) {
  auto image = Image::make(test::device(), ImageDescriptor::make(F::Float16, 7, 5, 6, 3));
  EXPECT_EQ(image->device(), test::device());
  EXPECT_EQ(image->width(), 7u);
  EXPECT_EQ(image->height(), 5u);
  EXPECT_EQ(image->featureChannels(), 6u);
  EXPECT_EQ(image->numberOfImages(), 3u);
  EXPECT_EQ(image->featureChannelFormat(), F::Float16);
  EXPECT_EQ(image->parent(), nullptr);
  EXPECT_FALSE(image->isTemporary());
  EXPECT_EQ(image->label(), "");
  image->setLabel("activations");
  EXPECT_EQ(image->label(), "activations");
  EXPECT_EQ(image->descriptor(), ImageDescriptor::make(F::Float16, 7, 5, 6, 3));
  EXPECT_GE(image->resourceSize(), 7u * 5u * 6u * 3u * 2u);
}

TEST(Image, NewImagesAreZeroFilled) {
  for (F f : kFormats) {
    auto image = Image::make(test::device(), ImageDescriptor::make(f, 5, 3, 7, 2));
    Content k = load(*image);
    EXPECT_TRUE(std::all_of(k.bytes.begin(), k.bytes.end(), [](uint8_t b) { return b == 0; })) << name(f);
  }
}

TEST(Image, Precision) {
  const std::pair<F, uint64_t> table[] = {
      {F::Float32, 24}, {F::Float16, 11}, {F::BFloat16, 8}, {F::Unorm8, 8}, {F::Unorm16, 16}};
  for (auto [f, bits] : table)
    EXPECT_EQ(Image::make(test::device(), ImageDescriptor::make(f, 2, 2, 3))->precision(), bits) << name(f);
}

TEST(Image, PixelSize) {
  // bytesPerChannel * (C == 1 ? 1 : C == 2 ? 2 : 4).
  for (F f : kFormats)
    for (uint64_t c : {1, 2, 3, 4, 5, 8, 13}) {
      const uint64_t lanes = c == 1 ? 1 : c == 2 ? 2 : 4;
      EXPECT_EQ(Image::make(test::device(), ImageDescriptor::make(f, 3, 2, c))->pixelSize(),
                elementSize(f) * lanes)
          << name(f) << " C=" << c;
    }
}

TEST(Image, DenseRoundTripEveryFormatAndLayout) {
  for (F f : kFormats)
    for (DataLayout layout : kLayouts)
      for (uint64_t C : {1, 2, 3, 4, 5, 9}) {
        SCOPED_TRACE(name(f) + " " + name(layout) + " C=" + std::to_string(C));
        auto image = Image::make(test::device(), ImageDescriptor::make(f, 5, 3, C, 2));
        const size_t e = elementSize(f);
        const size_t per = 5 * 3 * C * e;
        auto data = randomElements(2 * 5 * 3 * C, e);
        for (uint64_t i = 0; i < 2; ++i) image->writeBytes(data.data() + i * per, layout, i);
        std::vector<uint8_t> back(data.size(), 0xCD);
        for (uint64_t i = 0; i < 2; ++i) image->readBytes(back.data() + i * per, layout, i);
        EXPECT_TRUE(sameBytes(back, data));
      }
}

TEST(Image, LayoutsAreTranspositionsOfEachOther) {
  // HWC element (y, x, c) is at ((y*W + x)*C + c)*e; CHW element at ((c*H + y)*W + x)*e.
  for (F f : kFormats) {
    const uint64_t W = 6, H = 4, C = 5;
    const size_t e = elementSize(f);
    auto image = Image::make(test::device(), ImageDescriptor::make(f, W, H, C));
    auto hwc = randomElements(W * H * C, e);
    image->writeBytes(hwc.data(), DataLayout::HeightxWidthxFeatureChannels, 0);
    std::vector<uint8_t> chw(hwc.size());
    image->readBytes(chw.data(), DataLayout::FeatureChannelsxHeightxWidth, 0);
    for (uint64_t y = 0; y < H; ++y)
      for (uint64_t x = 0; x < W; ++x)
        for (uint64_t c = 0; c < C; ++c)
          ASSERT_EQ(
              std::memcmp(chw.data() + ((c * H + y) * W + x) * e, hwc.data() + ((y * W + x) * C + c) * e, e),
              0)
              << name(f) << " y=" << y << " x=" << x << " c=" << c;
    // And the other way round.
    auto chw2 = randomElements(W * H * C, e);
    image->writeBytes(chw2.data(), DataLayout::FeatureChannelsxHeightxWidth, 0);
    std::vector<uint8_t> hwc2(chw2.size());
    image->readBytes(hwc2.data(), DataLayout::HeightxWidthxFeatureChannels, 0);
    for (uint64_t y = 0; y < H; ++y)
      for (uint64_t x = 0; x < W; ++x)
        for (uint64_t c = 0; c < C; ++c)
          ASSERT_EQ(std::memcmp(chw2.data() + ((c * H + y) * W + x) * e,
                                hwc2.data() + ((y * W + x) * C + c) * e, e),
                    0);
  }
}

TEST(Image, ImagesOfABatchAreIndependent) {
  auto image = Image::make(test::device(), ImageDescriptor::make(F::Float32, 3, 2, 3, 4));
  Content k = randomContent(*image);
  store(*image, k);
  // Rewrite image 2 only.
  auto fresh = randomElements(3 * 2 * 3, 4);
  image->writeBytes(fresh.data(), DataLayout::HeightxWidthxFeatureChannels, 2);
  std::memcpy(k.at(2, 0, 0, 0), fresh.data(), fresh.size());
  EXPECT_TRUE(sameBytes(load(*image).bytes, k.bytes));
}

/// Every overload, both layouts, every format: regions in x, y and z, channel ranges (including
/// padding lanes), custom strides.
TEST(Image, ReadAndWriteEveryOverloadFormatLayoutAgainstTheAddressFormulas) {
  struct Shape {
    uint64_t w, h, c, n;
  };
  const Shape shapes[] = {{5, 4, 6, 3}, {3, 3, 1, 2}, {4, 2, 9, 3}};
  int transfers = 0;
  for (F f : kFormats)
    for (DataLayout layout : kLayouts)
      for (const Shape& s : shapes) {
        auto image = Image::make(test::device(), ImageDescriptor::make(f, s.w, s.h, s.c, s.n));
        Content content = randomContent(*image);
        store(*image, content);
        const uint64_t padded = (s.c + 3) / 4 * 4;
        // Channel selections: all; a suffix; a middle range; including padding lanes; padding only.
        std::vector<ImageReadWriteParams> channelSets = {{0, s.c}, {0, padded}};
        if (s.c > 1) channelSets.push_back({1, s.c - 1});
        if (s.c > 4) channelSets.push_back({4, padded - 4});
        if (s.c > 2) channelSets.push_back({1, 2});
        if (padded > s.c) channelSets.push_back({s.c, padded - s.c});
        // Regions: whole image; interior sub-rectangle; a single pixel at the far corner.
        std::vector<IntRegion> regions = {
            {{0, 0, 0}, {s.w, s.h, 1}},
            {{1, 1, 0}, {s.w - 2, s.h - 1, 1}},
            {{s.w - 1, s.h - 1, 0}, {1, 1, 1}},
        };
        // Several images: z in the region, combined with imageIndex.
        regions.push_back({{1, 0, 1}, {s.w - 1, s.h, s.n - 1}});
        for (uint64_t index = 0; index < s.n; ++index) {
          Transfer a;
          a.layout = layout;
          a.overload = Overload::A;
          a.imageIndex = index;
          SCOPED_TRACE(name(f) + " " + name(layout) + " A image " + std::to_string(index));
          checkRead(*image, content, a);
          checkWrite(*image, content, a);
          ++transfers;
        }
        for (Overload o : {Overload::B, Overload::C, Overload::D})
          for (const IntRegion& r : regions)
            for (const ImageReadWriteParams& ch : channelSets)
              for (uint64_t index : {uint64_t(0), s.n - r.size.depth - r.origin.z}) {
                Transfer t = withStrides(*image, layout, o, r, ch, index);
                SCOPED_TRACE(name(f) + " " + name(layout) + " " + name(o) + " region (" +
                             std::to_string(r.origin.x) + "," + std::to_string(r.origin.y) + "," +
                             std::to_string(r.origin.z) + ") size (" + std::to_string(r.size.width) + "," +
                             std::to_string(r.size.height) + "," + std::to_string(r.size.depth) +
                             ") channels [" + std::to_string(ch.featureChannelOffset) + ", +" +
                             std::to_string(ch.numberOfFeatureChannelsToReadWrite) + ") imageIndex " +
                             std::to_string(index));
                checkRead(*image, content, t);
                checkWrite(*image, content, t);
                ++transfers;
              }
      }
  EXPECT_GT(transfers, 1000);
}

TEST(Image, OverloadBPacksImagesDensely) {
  // Overload B has no bytesPerImage: images follow each other (HWC: h*bytesPerRow, CHW: Cn planes).
  for (DataLayout layout : kLayouts) {
    auto image = Image::make(test::device(), ImageDescriptor::make(F::Float32, 4, 3, 5, 3));
    Content content = randomContent(*image);
    store(*image, content);
    Transfer t;
    t.layout = layout;
    t.overload = Overload::B;
    t.region = {{0, 0, 0}, {4, 3, 3}};
    t.channels = {0, 5};
    t.bytesPerRow = layout == DataLayout::HeightxWidthxFeatureChannels ? 4 * 5 * 4 : 4 * 4;
    checkRead(*image, content, t);
    checkWrite(*image, content, t);
  }
}

TEST(Image, PaddingLanesReadZeroAndIgnoreWrites) {
  for (F f : kFormats) {
    auto image = Image::make(test::device(), ImageDescriptor::make(f, 2, 2, 3));  // lane 3 is padding
    Content content = randomContent(*image);
    store(*image, content);
    const size_t e = elementSize(f);
    // Read channels [0, 4): lane 3 is 0.
    std::vector<uint8_t> buf(2 * 2 * 4 * e, 0xAB);
    image->readBytes(buf.data(), DataLayout::HeightxWidthxFeatureChannels, 2 * 4 * e, {{0, 0, 0}, {2, 2, 1}},
                     {0, 4}, 0);
    for (uint64_t p = 0; p < 4; ++p) {
      for (size_t b = 0; b < e; ++b) EXPECT_EQ(buf[(p * 4 + 3) * e + b], 0) << name(f);
      EXPECT_EQ(std::memcmp(buf.data() + p * 4 * e, content.bytes.data() + p * 3 * e, 3 * e), 0) << name(f);
    }
    // Write channels [2, 4): lane 3 ignored, channel 2 written.
    auto src = randomElements(2 * 2 * 2, e);
    image->writeBytes(src.data(), DataLayout::HeightxWidthxFeatureChannels, 2 * 2 * e, {{0, 0, 0}, {2, 2, 1}},
                      {2, 2}, 0);
    for (uint64_t p = 0; p < 4; ++p)
      std::memcpy(content.bytes.data() + (p * 3 + 2) * e, src.data() + p * 2 * e, e);
    EXPECT_TRUE(sameBytes(load(*image).bytes, content.bytes)) << name(f);
    // Reading only the padding lane gives zeros.
    std::vector<uint8_t> lane(4 * e, 0xAB);
    image->readBytes(lane.data(), DataLayout::FeatureChannelsxHeightxWidth, 2 * e, {{0, 0, 0}, {2, 2, 1}},
                     {3, 1}, 0);
    EXPECT_TRUE(std::all_of(lane.begin(), lane.end(), [](uint8_t b) { return b == 0; })) << name(f);
  }
}

TEST(Image, BytesPerRowExactlyOneRowIsAccepted) {
  for (DataLayout layout : kLayouts)
    for (F f : kFormats) {
      auto image = Image::make(test::device(), ImageDescriptor::make(f, 5, 3, 6));
      Content content = randomContent(*image);
      store(*image, content);
      const size_t e = elementSize(f);
      Transfer t;
      t.layout = layout;
      t.overload = Overload::C;
      t.region = {{1, 0, 0}, {3, 3, 1}};
      t.channels = {2, 3};
      t.bytesPerRow = layout == DataLayout::HeightxWidthxFeatureChannels ? 3 * 3 * e : 3 * e;
      t.bytesPerImage = 0;
      checkRead(*image, content, t);
    }
}

// ---- invalid transfers (spec 00 §2.4 "Invalid") -------------------------------------------

/// Every overload that can express `t` must reject it, without touching the image.
void expectRejected(Image& image, const Transfer& t) {
  const Content before = load(image);
  std::vector<uint8_t> buf(1 << 16, 0x11);
  EXPECT_THROW(doRead(image, buf.data(), t), InvalidArgument);
  EXPECT_THROW(doWrite(image, buf.data(), t), InvalidArgument);
  EXPECT_TRUE(sameBytes(load(image).bytes, before.bytes)) << "a rejected write changed the image";
}

#define EXPECT_REJECTED(image, t)                                       \
  do {                                                                  \
    SCOPED_TRACE("rejection case at line " + std::to_string(__LINE__)); \
    expectRejected(image, t);                                           \
  } while (0)

Transfer basic(Overload o, uint64_t w, uint64_t h, uint64_t c, size_t e, DataLayout layout) {
  Transfer t;
  t.layout = layout;
  t.overload = o;
  t.region = {{0, 0, 0}, {w, h, 1}};
  t.channels = {0, c};
  t.bytesPerColumn = layout == DataLayout::HeightxWidthxFeatureChannels ? c * e : e;
  t.bytesPerRow = w * t.bytesPerColumn;
  t.bytesPerImage =
      layout == DataLayout::HeightxWidthxFeatureChannels ? h * t.bytesPerRow : c * h * t.bytesPerRow;
  return t;
}

TEST(Image, InvalidTransfers) {
  for (DataLayout layout : kLayouts)
    for (F f : {F::Float32, F::Unorm8}) {
      const size_t e = elementSize(f);
      auto image = Image::make(test::device(), ImageDescriptor::make(f, 5, 4, 6, 3));  // padded channels: 8
      store(*image, randomContent(*image));
      for (Overload o : {Overload::B, Overload::C, Overload::D}) {
        SCOPED_TRACE(name(f) + " " + name(layout) + " " + name(o));
        const Transfer ok = basic(o, 5, 4, 6, e, layout);
        {  // sanity: the base case is valid
          std::vector<uint8_t> buf(1 << 16);
          EXPECT_NO_THROW(doRead(*image, buf.data(), ok));
        }
        Transfer t = ok;
        t.channels = {0, 0};  // no channels
        EXPECT_REJECTED(*image, t);
        t = ok;
        t.channels = {4, 5};  // 4 + 5 > 8
        EXPECT_REJECTED(*image, t);
        t = ok;
        t.channels = {0, 9};
        EXPECT_REJECTED(*image, t);
        t = ok;
        t.channels = {8, 1};
        EXPECT_REJECTED(*image, t);
        t = ok;
        t.channels = {UINT64_MAX - 1, 4};  // wraps around
        EXPECT_REJECTED(*image, t);
        t = ok;
        t.channels = {4, UINT64_MAX};
        EXPECT_REJECTED(*image, t);
        // Region outside the image, per axis.
        t = ok;
        t.region = {{1, 0, 0}, {5, 4, 1}};
        EXPECT_REJECTED(*image, t);
        t = ok;
        t.region = {{0, 1, 0}, {5, 4, 1}};
        EXPECT_REJECTED(*image, t);
        t = ok;
        t.region = {{5, 0, 0}, {1, 1, 1}};
        EXPECT_REJECTED(*image, t);
        t = ok;
        t.region = {{0, 4, 0}, {1, 1, 1}};
        EXPECT_REJECTED(*image, t);
        t = ok;
        t.region = {{UINT64_MAX, 0, 0}, {2, 1, 1}};  // wraps around
        EXPECT_REJECTED(*image, t);
        t = ok;
        t.region = {{0, UINT64_MAX - 1, 0}, {1, 3, 1}};
        EXPECT_REJECTED(*image, t);
        // Image range outside [0, numberOfImages).
        t = ok;
        t.imageIndex = 3;
        EXPECT_REJECTED(*image, t);
        t = ok;
        t.imageIndex = 1;
        t.region.origin.z = 2;
        EXPECT_REJECTED(*image, t);
        t = ok;
        t.imageIndex = 1;
        t.region.size.depth = 3;
        EXPECT_REJECTED(*image, t);
        t = ok;
        t.imageIndex = UINT64_MAX;
        t.region.origin.z = 1;  // wraps to image 0
        EXPECT_REJECTED(*image, t);
        t = ok;
        t.region.origin.z = UINT64_MAX;
        t.region.size.depth = 2;
        EXPECT_REJECTED(*image, t);
        t = ok;
        t.region.size.depth = UINT64_MAX;
        EXPECT_REJECTED(*image, t);
        // bytesPerRow smaller than one row.
        t = ok;
        t.bytesPerRow = ok.bytesPerRow - 1;
        EXPECT_REJECTED(*image, t);
        t = ok;
        t.bytesPerRow = 0;
        EXPECT_REJECTED(*image, t);
        // Null buffer and a layout outside the enum.
        EXPECT_THROW(doRead(*image, nullptr, ok), InvalidArgument);
        EXPECT_THROW(doWrite(*image, nullptr, ok), InvalidArgument);
        t = ok;
        t.layout = DataLayout(7);
        EXPECT_REJECTED(*image, t);
      }
      // Overload A: image index outside the image, null buffer, bad layout.
      Transfer a;
      a.overload = Overload::A;
      a.layout = layout;
      a.imageIndex = 3;
      EXPECT_REJECTED(*image, a);
      a.imageIndex = UINT64_MAX;
      EXPECT_REJECTED(*image, a);
      std::vector<uint8_t> buf(1 << 12);
      EXPECT_THROW(image->readBytes(nullptr, layout, 0), InvalidArgument);
      EXPECT_THROW(image->writeBytes(nullptr, layout, 0), InvalidArgument);
      EXPECT_THROW(image->readBytes(buf.data(), DataLayout(2), 0), InvalidArgument);
    }
}

TEST(Image, InvalidBytesPerImageForSeveralImages) {
  // An image stride smaller than one image would overlap the images in the caller's buffer.
  auto image = Image::make(test::device(), ImageDescriptor::make(F::Float32, 3, 2, 4, 3));
  for (DataLayout layout : kLayouts) {
    Transfer t = basic(Overload::C, 3, 2, 4, 4, layout);
    t.region.size.depth = 2;
    t.bytesPerImage =
        (layout == DataLayout::HeightxWidthxFeatureChannels ? 2 * t.bytesPerRow : 4 * 2 * t.bytesPerRow) - 4;
    EXPECT_REJECTED(*image, t);
  }
}

TEST(Image, ChannelRangeRulesRelaxedAndStrict) {
  auto image = Image::make(test::device(), ImageDescriptor::make(F::Float32, 3, 2, 10));  // padded 12
  Content content = randomContent(*image);
  store(*image, content);
  auto transfer = [&](uint64_t c0, uint64_t cn) {
    Transfer t = basic(Overload::B, 3, 2, cn, 4, DataLayout::HeightxWidthxFeatureChannels);
    t.channels = {c0, cn};
    return t;
  };
  // Relaxed (default): offsets and counts that are not multiples of 4 work and move the right channels.
  ASSERT_FALSE(strictValidation());
  for (auto [c0, cn] : std::vector<std::pair<uint64_t, uint64_t>>{{1, 1}, {2, 5}, {4, 3}, {3, 9}, {0, 3}}) {
    SCOPED_TRACE(std::to_string(c0) + "+" + std::to_string(cn));
    checkRead(*image, content, transfer(c0, cn));
    checkWrite(*image, content, transfer(c0, cn));
  }
  {
    StrictScope strict;
    ASSERT_TRUE(strictValidation());
    expectRejected(*image, transfer(1, 1));  // offset not a multiple of 4
    expectRejected(*image, transfer(2, 4));
    expectRejected(*image, transfer(4, 3));  // count not a multiple of 4 with offset != 0
    expectRejected(*image, transfer(8, 2));
    // Accepted under strict validation too.
    checkRead(*image, content, transfer(0, 3));  // offset 0: any count
    checkRead(*image, content, transfer(0, 10));
    checkRead(*image, content, transfer(4, 4));
    checkRead(*image, content, transfer(8, 4));  // includes the padding lanes
    checkWrite(*image, content, transfer(4, 8));
  }
  EXPECT_FALSE(strictValidation());
}

// ---- views ----------------------------------------------------------------------------------

TEST(Image, SubImageAliasesTheParent) {
  for (F f : kFormats) {
    SCOPED_TRACE(name(f));
    auto parent = Image::make(test::device(), ImageDescriptor::make(f, 4, 3, 10, 2));
    Content content = randomContent(*parent);
    store(*parent, content);
    auto view = parent->subImageWithFeatureChannelRange({4, 4});
    ASSERT_NE(view, nullptr);
    EXPECT_EQ(view->parent(), parent);
    EXPECT_EQ(view->featureChannels(), 4u);
    EXPECT_EQ(view->width(), 4u);
    EXPECT_EQ(view->height(), 3u);
    EXPECT_EQ(view->numberOfImages(), 2u);
    EXPECT_EQ(view->featureChannelFormat(), f);
    EXPECT_EQ(view->resourceSize(), 0u);
    EXPECT_FALSE(view->isTemporary());
    // Reading through the view gives the parent's channels 4..7.
    Content seen = load(*view);
    for (uint64_t n = 0; n < 2; ++n)
      for (uint64_t y = 0; y < 3; ++y)
        for (uint64_t x = 0; x < 4; ++x)
          for (uint64_t c = 0; c < 4; ++c)
            ASSERT_EQ(std::memcmp(seen.at(n, y, x, c), content.at(n, y, x, c + 4), content.e), 0);
    // Writing through the view changes exactly those channels of the parent.
    Content fresh = randomContent(*view);
    store(*view, fresh);
    for (uint64_t n = 0; n < 2; ++n)
      for (uint64_t y = 0; y < 3; ++y)
        for (uint64_t x = 0; x < 4; ++x)
          for (uint64_t c = 0; c < 4; ++c)
            std::memcpy(content.at(n, y, x, c + 4), fresh.at(n, y, x, c), content.e);
    EXPECT_TRUE(sameBytes(load(*parent).bytes, content.bytes));
    // And writes to the parent are visible through the view.
    Content again = randomContent(*parent);
    store(*parent, again);
    seen = load(*view);
    for (uint64_t n = 0; n < 2; ++n)
      for (uint64_t y = 0; y < 3; ++y)
        for (uint64_t x = 0; x < 4; ++x)
          for (uint64_t c = 0; c < 4; ++c)
            ASSERT_EQ(std::memcmp(seen.at(n, y, x, c), again.at(n, y, x, c + 4), again.e), 0);
  }
}

TEST(Image, SubImageLengthIsReducedToFit) {
  auto parent = Image::make(test::device(), ImageDescriptor::make(F::Float32, 2, 2, 10));
  Content content = randomContent(*parent);
  store(*parent, content);
  auto view = parent->subImageWithFeatureChannelRange({8, 100});
  EXPECT_EQ(view->featureChannels(), 2u);
  Content seen = load(*view);
  for (uint64_t p = 0; p < 4; ++p)
    EXPECT_EQ(std::memcmp(seen.bytes.data() + p * 2 * 4, content.bytes.data() + (p * 10 + 8) * 4, 8), 0);
  EXPECT_EQ(parent->subImageWithFeatureChannelRange({0, UINT64_MAX})->featureChannels(), 10u);
  // A view of a view.
  auto outer = parent->subImageWithFeatureChannelRange({4, 6});
  auto inner = outer->subImageWithFeatureChannelRange({4, 4});
  EXPECT_EQ(inner->featureChannels(), 2u);
  EXPECT_EQ(inner->parent(), outer);
  seen = load(*inner);
  for (uint64_t p = 0; p < 4; ++p)
    EXPECT_EQ(std::memcmp(seen.bytes.data() + p * 2 * 4, content.bytes.data() + (p * 10 + 8) * 4, 8), 0);
}

TEST(Image, SubImageInvalidRanges) {
  auto parent = Image::make(test::device(), ImageDescriptor::make(F::Float32, 2, 2, 10));
  EXPECT_THROW(parent->subImageWithFeatureChannelRange({0, 0}), InvalidArgument);   // length 0
  EXPECT_THROW(parent->subImageWithFeatureChannelRange({10, 4}), InvalidArgument);  // location >= C
  EXPECT_THROW(parent->subImageWithFeatureChannelRange({12, 4}), InvalidArgument);
  EXPECT_THROW(parent->subImageWithFeatureChannelRange({UINT64_MAX, 4}), InvalidArgument);
  // RELAXED by default: any location / length.
  auto relaxed = parent->subImageWithFeatureChannelRange({2, 3});
  EXPECT_EQ(relaxed->featureChannels(), 3u);
  Content content = randomContent(*parent);
  store(*parent, content);
  Content seen = load(*relaxed);
  for (uint64_t p = 0; p < 4; ++p)
    EXPECT_EQ(std::memcmp(seen.bytes.data() + p * 3 * 4, content.bytes.data() + (p * 10 + 2) * 4, 12), 0);
  {
    StrictScope strict;
    EXPECT_THROW(parent->subImageWithFeatureChannelRange({2, 4}), InvalidArgument);  // location
    EXPECT_THROW(parent->subImageWithFeatureChannelRange({0, 3}), InvalidArgument);  // length
    EXPECT_THROW(parent->subImageWithFeatureChannelRange({4, 5}), InvalidArgument);
    EXPECT_NO_THROW(parent->subImageWithFeatureChannelRange({4, 4}));
    EXPECT_NO_THROW(parent->subImageWithFeatureChannelRange({8, 4}));  // reduced to the end: 2 channels
    EXPECT_EQ(parent->subImageWithFeatureChannelRange({8, 4})->featureChannels(), 2u);
  }
}

TEST(Image, BatchRepresentationViews) {
  for (F f : {F::Float32, F::Float16, F::Unorm8}) {
    SCOPED_TRACE(name(f));
    auto parent = Image::make(test::device(), ImageDescriptor::make(f, 3, 2, 5, 4));
    Content content = randomContent(*parent);
    store(*parent, content);
    ImageBatch batch = parent->batchRepresentation();
    ASSERT_EQ(batch.size(), 4u);
    for (uint64_t i = 0; i < 4; ++i) {
      const auto& v = batch[i];
      EXPECT_EQ(v->parent(), parent);
      EXPECT_EQ(v->numberOfImages(), 1u);
      EXPECT_EQ(v->featureChannels(), 5u);
      EXPECT_EQ(v->width(), 3u);
      EXPECT_EQ(v->height(), 2u);
      EXPECT_EQ(v->resourceSize(), 0u);
      Content seen = load(*v);
      EXPECT_EQ(std::memcmp(seen.bytes.data(), content.at(i, 0, 0, 0), seen.bytes.size()), 0) << i;
    }
    EXPECT_EQ(imageBatchResourceSize(batch), 0u);
    // Writes through a view reach the parent's image.
    Content fresh = randomContent(*batch[2]);
    store(*batch[2], fresh);
    std::memcpy(content.at(2, 0, 0, 0), fresh.bytes.data(), fresh.bytes.size());
    EXPECT_TRUE(sameBytes(load(*parent).bytes, content.bytes));
    // A sub-range.
    ImageBatch sub = parent->batchRepresentationWithSubRange({1, 2});
    ASSERT_EQ(sub.size(), 2u);
    for (uint64_t i = 0; i < 2; ++i) {
      Content seen = load(*sub[i]);
      EXPECT_EQ(std::memcmp(seen.bytes.data(), content.at(i + 1, 0, 0, 0), seen.bytes.size()), 0) << i;
    }
  }
}

TEST(Image, BatchRepresentationInvalidRanges) {
  auto parent = Image::make(test::device(), ImageDescriptor::make(F::Float32, 3, 2, 5, 4));
  EXPECT_THROW(parent->batchRepresentationWithSubRange({0, 0}), InvalidArgument);
  EXPECT_THROW(parent->batchRepresentationWithSubRange({3, 2}), InvalidArgument);
  EXPECT_THROW(parent->batchRepresentationWithSubRange({4, 1}), InvalidArgument);
  EXPECT_THROW(parent->batchRepresentationWithSubRange({UINT64_MAX, 2}), InvalidArgument);
  EXPECT_EQ(parent->batchRepresentationWithSubRange({3, 1}).size(), 1u);
}

// =============================================================================================
// TemporaryImage (spec 00 §2.5)

const ImageDescriptor kTempDesc = ImageDescriptor::make(F::Float32, 8, 8, 4);

TEST(TemporaryImage, Creation) {
  auto cb = test::queue()->commandBuffer();
  auto t = TemporaryImage::make(cb, ImageDescriptor::make(F::Float16, 5, 4, 3, 2));
  EXPECT_TRUE(t->isTemporary());
  EXPECT_EQ(t->readCount(), 1u);
  EXPECT_EQ(t->commandBuffer(), cb);
  EXPECT_EQ(t->device(), cb->device());
  EXPECT_EQ(t->descriptor(), ImageDescriptor::make(F::Float16, 5, 4, 3, 2));
  EXPECT_EQ(t->parent(), nullptr);
  EXPECT_THROW(TemporaryImage::make(nullptr, kTempDesc), InvalidArgument);
  cb->commit();
  EXPECT_THROW(TemporaryImage::make(cb, kTempDesc), InvalidArgument);  // bound to an open command buffer
  cb->waitUntilCompleted();
}

TEST(TemporaryImage, ReleasedStorageIsReusedByTheCommandBuffer) {
  auto cb = test::queue()->commandBuffer();
  auto& pool = cb->temporaryPool();
  EXPECT_EQ(pool.allocatedBytes(), 0u);
  auto a = TemporaryImage::make(cb, kTempDesc);
  const size_t afterFirst = pool.allocatedBytes();
  EXPECT_GE(afterFirst, 8u * 8u * 4u * 4u);
  a->setReadCount(0);  // releases now
  auto b = TemporaryImage::make(cb, kTempDesc);
  EXPECT_EQ(pool.allocatedBytes(), afterFirst) << "released storage must be reused";
  // While `b` lives, another one needs new storage.
  auto c = TemporaryImage::make(cb, kTempDesc);
  EXPECT_GT(pool.allocatedBytes(), afterFirst);
  const size_t afterThird = pool.allocatedBytes();
  // Reads by kernels release too (consumeRead is what every encode calls).
  b->setReadCount(2);
  b->consumeRead(*cb);
  EXPECT_EQ(b->readCount(), 1u);
  auto d = TemporaryImage::make(cb, kTempDesc);  // b still alive
  EXPECT_GT(pool.allocatedBytes(), afterThird);
  const size_t afterFourth = pool.allocatedBytes();
  b->consumeRead(*cb);
  EXPECT_EQ(b->readCount(), 0u);
  auto e = TemporaryImage::make(cb, kTempDesc);  // reuses b's storage
  EXPECT_EQ(pool.allocatedBytes(), afterFourth);
  // A smaller image fits in released larger storage.
  c->setReadCount(0);
  auto small = TemporaryImage::make(cb, ImageDescriptor::make(F::Float32, 2, 2, 4));
  EXPECT_EQ(pool.allocatedBytes(), afterFourth);
  cb->commit();
  cb->waitUntilCompleted();
}

TEST(TemporaryImage, DestroyedWithReadCountReleasesToThePool) {
  auto cb = test::queue()->commandBuffer();
  { auto t = TemporaryImage::make(cb, kTempDesc); }
  const size_t bytes = cb->temporaryPool().allocatedBytes();
  auto again = TemporaryImage::make(cb, kTempDesc);
  EXPECT_EQ(cb->temporaryPool().allocatedBytes(), bytes);
  cb->commit();
  cb->waitUntilCompleted();
}

TEST(TemporaryImage, CpuAccessIsInvalid) {
  auto cb = test::queue()->commandBuffer();
  auto t = TemporaryImage::make(cb, kTempDesc);
  std::vector<uint8_t> buf(1 << 12);
  const IntRegion r{{0, 0, 0}, {8, 8, 1}};
  for (DataLayout layout : kLayouts) {
    EXPECT_THROW(t->readBytes(buf.data(), layout, 0), InvalidArgument);
    EXPECT_THROW(t->readBytes(buf.data(), layout, 8 * 16, r, {0, 4}, 0), InvalidArgument);
    EXPECT_THROW(t->readBytes(buf.data(), layout, 8 * 16, 8 * 8 * 16, r, {0, 4}, 0), InvalidArgument);
    EXPECT_THROW(t->readBytes(buf.data(), layout, 16, 8 * 16, 8 * 8 * 16, r, {0, 4}, 0), InvalidArgument);
    EXPECT_THROW(t->writeBytes(buf.data(), layout, 0), InvalidArgument);
    EXPECT_THROW(t->writeBytes(buf.data(), layout, 8 * 16, r, {0, 4}, 0), InvalidArgument);
    EXPECT_THROW(t->writeBytes(buf.data(), layout, 8 * 16, 8 * 8 * 16, r, {0, 4}, 0), InvalidArgument);
    EXPECT_THROW(t->writeBytes(buf.data(), layout, 16, 8 * 16, 8 * 8 * 16, r, {0, 4}, 0), InvalidArgument);
  }
  EXPECT_EQ(t->readCount(), 1u);  // rejected accesses do not count as reads
  cb->commit();
  cb->waitUntilCompleted();
}

TEST(TemporaryImage, UseAfterReleaseIsInvalid) {
  auto cb = test::queue()->commandBuffer();
  auto t = TemporaryImage::make(cb, kTempDesc);
  t->setReadCount(0);
  EXPECT_EQ(t->readCount(), 0u);
  EXPECT_THROW(t->setReadCount(1), InvalidArgument);  // changing readCount after it reached 0
  EXPECT_THROW(t->setReadCount(0), InvalidArgument);
  EXPECT_THROW(t->consumeRead(*cb), InvalidArgument);
  EXPECT_THROW(t->subImageWithFeatureChannelRange({0, 4}), InvalidArgument);
  EXPECT_THROW(t->batchRepresentation(), InvalidArgument);
  std::vector<uint8_t> buf(1 << 12);
  EXPECT_THROW(t->readBytes(buf.data(), DataLayout::HeightxWidthxFeatureChannels, 0), InvalidArgument);
  // Reaching 0 by reads has the same effect.
  auto u = TemporaryImage::make(cb, kTempDesc);
  u->consumeRead(*cb);
  EXPECT_THROW(u->consumeRead(*cb), InvalidArgument);
  EXPECT_THROW(u->setReadCount(3), InvalidArgument);
  cb->commit();
  cb->waitUntilCompleted();
}

TEST(TemporaryImage, UseOnAnotherCommandBufferIsInvalid) {
  auto cb = test::queue()->commandBuffer();
  auto other = test::queue()->commandBuffer();
  auto t = TemporaryImage::make(cb, kTempDesc);
  EXPECT_THROW(t->consumeRead(*other), InvalidArgument);
  EXPECT_EQ(t->readCount(), 1u);
  // Through a kernel: reading it, and writing it, from another command buffer.
  auto neuron = CNNNeuron::make(test::device(), NNNeuronDescriptor::make(CNNNeuronType::None));
  auto persistent = Image::make(test::device(), kTempDesc);
  EXPECT_THROW(neuron->encode(other, t, persistent), InvalidArgument);
  EXPECT_THROW(neuron->encode(other, persistent, t), InvalidArgument);
  EXPECT_EQ(t->readCount(), 1u);
  other->commit();
  other->waitUntilCompleted();
  cb->commit();
  cb->waitUntilCompleted();
}

TEST(TemporaryImage, ChangingReadCountWhileLive) {
  auto cb = test::queue()->commandBuffer();
  auto t = TemporaryImage::make(cb, kTempDesc);
  t->setReadCount(5);
  EXPECT_EQ(t->readCount(), 5u);
  t->setReadCount(2);
  EXPECT_EQ(t->readCount(), 2u);
  t->consumeRead(*cb);
  t->consumeRead(*cb);
  EXPECT_EQ(t->readCount(), 0u);
  cb->commit();
  cb->waitUntilCompleted();
}

TEST(TemporaryImage, KernelReadsDecrementByOneWritesNever) {
  auto cb = test::queue()->commandBuffer();
  auto neuron = CNNNeuron::make(test::device(), NNNeuronDescriptor::make(CNNNeuronType::None));
  auto src = TemporaryImage::make(cb, kTempDesc);
  auto dst = TemporaryImage::make(cb, kTempDesc);
  src->setReadCount(3);
  dst->setReadCount(2);
  neuron->encode(cb, src, dst);
  EXPECT_EQ(src->readCount(), 2u);
  EXPECT_EQ(dst->readCount(), 2u);  // writing does not change it
  const size_t bytes = cb->temporaryPool().allocatedBytes();
  neuron->encode(cb, src, dst);
  neuron->encode(cb, src, dst);
  EXPECT_EQ(src->readCount(), 0u);
  // Released by the last read: a new temporary reuses its storage.
  auto next = TemporaryImage::make(cb, kTempDesc);
  EXPECT_EQ(cb->temporaryPool().allocatedBytes(), bytes);
  // A further read is invalid.
  EXPECT_THROW(neuron->encode(cb, src, dst), InvalidArgument);
  cb->commit();
  cb->waitUntilCompleted();
}

TEST(TemporaryImage, ViewsHoldOneReadCountOnTheParent) {
  // MPS: "If the original is a temporary image, the result will be a temporary image. It will hold
  // 1 readCount on the original. When the readCount drops to 0, it will decrement the appropriate
  // counter on the parent." (spec 00 §2.5 "Views").
  auto cb = test::queue()->commandBuffer();
  auto parent = TemporaryImage::make(cb, ImageDescriptor::make(F::Float32, 4, 4, 8, 3));
  EXPECT_EQ(parent->readCount(), 1u);
  ImageBatch views = parent->batchRepresentation();
  ASSERT_EQ(views.size(), 3u);
  for (const auto& v : views) {
    EXPECT_TRUE(v->isTemporary());
    EXPECT_EQ(static_cast<TemporaryImage&>(*v).readCount(), 1u);
    EXPECT_EQ(v->parent(), parent);
  }
  EXPECT_EQ(parent->readCount(), 4u);  // 1 of its own + 1 held by each view
  auto sub = parent->subImageWithFeatureChannelRange({4, 4});
  EXPECT_TRUE(sub->isTemporary());
  EXPECT_EQ(parent->readCount(), 5u);

  // Consuming one view leaves the others and the parent usable, and the storage in use.
  const size_t bytes = cb->temporaryPool().allocatedBytes();
  static_cast<TemporaryImage&>(*views[0]).consumeRead(*cb);
  EXPECT_EQ(parent->readCount(), 4u);
  EXPECT_NO_THROW(views[1]->subImageWithFeatureChannelRange({0, 4}));  // usable (and holds one more)
  EXPECT_EQ(parent->readCount(), 4u) << "a view of a view holds its count on the view";
  auto other = TemporaryImage::make(cb, ImageDescriptor::make(F::Float32, 4, 4, 8, 3));
  EXPECT_GT(cb->temporaryPool().allocatedBytes(), bytes) << "the parent's storage is still in use";
  other->setReadCount(0);
  cb->commit();
  cb->waitUntilCompleted();
}

TEST(TemporaryImage, ParentStorageReturnsWhenItAndAllViewsAreDone) {
  auto cb = test::queue()->commandBuffer();
  const auto desc = ImageDescriptor::make(F::Float32, 4, 4, 8, 2);
  auto parent = TemporaryImage::make(cb, desc);
  ImageBatch views = parent->batchRepresentation();
  const size_t bytes = cb->temporaryPool().allocatedBytes();
  for (const auto& v : views) static_cast<TemporaryImage&>(*v).consumeRead(*cb);
  EXPECT_EQ(parent->readCount(), 1u);  // its own read is left
  for (const auto& v : views)
    EXPECT_THROW(static_cast<TemporaryImage&>(*v).consumeRead(*cb), InvalidArgument);
  EXPECT_NO_THROW(parent->synchronize(cb));  // still usable
  parent->consumeRead(*cb);
  EXPECT_EQ(parent->readCount(), 0u);
  // Now the storage is back in the pool.
  auto again = TemporaryImage::make(cb, desc);
  EXPECT_EQ(cb->temporaryPool().allocatedBytes(), bytes);
  cb->commit();
  cb->waitUntilCompleted();
}

TEST(TemporaryImage, PrefetchAndAllocators) {
  auto cb = test::queue()->commandBuffer();
  EXPECT_NO_THROW(
      TemporaryImage::prefetchStorage(cb, {kTempDesc, ImageDescriptor::make(F::Float16, 3, 3, 3)}));
  auto t = TemporaryImage::defaultAllocator()->imageForCommandBuffer(cb, kTempDesc, nullptr);
  ASSERT_NE(t, nullptr);
  EXPECT_TRUE(t->isTemporary());
  EXPECT_EQ(t->descriptor(), kTempDesc);
  auto p = Image::defaultAllocator()->imageForCommandBuffer(cb, kTempDesc, nullptr);
  ASSERT_NE(p, nullptr);
  EXPECT_FALSE(p->isTemporary());
  EXPECT_EQ(p->descriptor(), kTempDesc);
  ImageBatch batch =
      TemporaryImage::defaultAllocator()->imageBatchForCommandBuffer(cb, kTempDesc, nullptr, 3);
  ASSERT_EQ(batch.size(), 3u);
  EXPECT_EQ(std::set<Image*>({batch[0].get(), batch[1].get(), batch[2].get()}).size(), 3u);
  for (const auto& b : batch) EXPECT_TRUE(b->isTemporary());
  cb->commit();
  cb->waitUntilCompleted();
}

// =============================================================================================
// ImageBatch helpers (spec 00 §2.6)

TEST(ImageBatch, IncrementReadCountCountsDistinctImages) {
  auto cb = test::queue()->commandBuffer();
  auto t1 = TemporaryImage::make(cb, kTempDesc);
  auto t2 = TemporaryImage::make(cb, kTempDesc);
  auto released = TemporaryImage::make(cb, kTempDesc);
  released->setReadCount(0);
  auto p = Image::make(test::device(), kTempDesc);
  t2->setReadCount(2);
  ImageBatch batch = {t1, t1, t2, p, released, t2};
  EXPECT_EQ(imageBatchIncrementReadCount(batch, 3), 4u);  // t1, t2, p, released
  EXPECT_EQ(t1->readCount(), 4u);                         // once per distinct image
  EXPECT_EQ(t2->readCount(), 5u);
  EXPECT_EQ(released->readCount(), 0u);  // only images with readCount > 0
  // Negative amounts; reaching 0 releases.
  EXPECT_EQ(imageBatchIncrementReadCount({t1, t2}, -4), 2u);
  EXPECT_EQ(t1->readCount(), 0u);
  EXPECT_EQ(t2->readCount(), 1u);
  EXPECT_THROW(t1->consumeRead(*cb), InvalidArgument);
  cb->commit();
  cb->waitUntilCompleted();
}

TEST(ImageBatch, ResourceSizeSumsDistinctImages) {
  auto a = Image::make(test::device(), ImageDescriptor::make(F::Float32, 4, 4, 4));
  auto b = Image::make(test::device(), ImageDescriptor::make(F::Float16, 8, 2, 3, 2));
  EXPECT_GT(a->resourceSize(), 0u);
  EXPECT_GT(b->resourceSize(), 0u);
  EXPECT_EQ(imageBatchResourceSize({a, b, a, a}), a->resourceSize() + b->resourceSize());
  EXPECT_EQ(imageBatchResourceSize({}), 0u);
  auto views = b->batchRepresentation();
  EXPECT_EQ(imageBatchResourceSize({a, views[0], views[1]}), a->resourceSize());
}

TEST(ImageBatch, IterateVisitsDistinctImagesAndStopsEarly) {
  auto a = Image::make(test::device(), kTempDesc);
  auto b = Image::make(test::device(), kTempDesc);
  auto c = Image::make(test::device(), kTempDesc);
  ImageBatch batch = {a, b, a, c, b};
  std::vector<std::pair<Image*, uint64_t>> visits;
  int64_t r = imageBatchIterate(batch, [&](Image& image, uint64_t index) {
    visits.push_back({&image, index});
    return std::numeric_limits<int64_t>::min();
  });
  EXPECT_EQ(r, std::numeric_limits<int64_t>::min());
  ASSERT_EQ(visits.size(), 3u);
  EXPECT_EQ(visits[0], std::make_pair(a.get(), uint64_t(0)));
  EXPECT_EQ(visits[1], std::make_pair(b.get(), uint64_t(1)));
  EXPECT_EQ(visits[2], std::make_pair(c.get(), uint64_t(3)));
  // Early stop: the first value > INT64_MIN ends the iteration and is returned.
  visits.clear();
  r = imageBatchIterate(batch, [&](Image& image, uint64_t index) -> int64_t {
    visits.push_back({&image, index});
    return &image == b.get() ? -7 : std::numeric_limits<int64_t>::min();
  });
  EXPECT_EQ(r, -7);
  EXPECT_EQ(visits.size(), 2u);
  EXPECT_EQ(imageBatchIterate({}, [](Image&, uint64_t) -> int64_t { return 1; }),
            std::numeric_limits<int64_t>::min());
}

TEST(ImageBatch, Synchronize) {
  auto a = Image::make(test::device(), kTempDesc);
  Content k = randomContent(*a);
  store(*a, k);
  auto cb = test::queue()->commandBuffer();
  EXPECT_NO_THROW(imageBatchSynchronize({a, a}, cb));
  cb->commit();
  cb->waitUntilCompleted();
  EXPECT_TRUE(sameBytes(load(*a).bytes, k.bytes));
}

}  // namespace
}  // namespace mpsnn
