// Weight files (include/mpsnn/io.h): "MPSNNW1", a count, then per tensor its name, length, values
// (float32 little-endian) and the CRC-32 of those values, so truncation and corruption are detected.
#include <zlib.h>

#include <cstring>
#include <fstream>

#include "mpsnn/io.h"

namespace mpsnn {

namespace {
constexpr char kMagic[8] = {'M', 'P', 'S', 'N', 'N', 'W', '1', '\0'};
constexpr uint64_t kMaxName = 4096;

void put64(std::ofstream& out, uint64_t v) {
  uint8_t b[8];
  for (int i = 0; i < 8; ++i) b[i] = uint8_t(v >> (8 * i));
  out.write(reinterpret_cast<const char*>(b), 8);
}

uint64_t get64(std::ifstream& in, const std::string& path) {
  uint8_t b[8];
  if (!in.read(reinterpret_cast<char*>(b), 8)) throw FileError(path + ": truncated weight file");
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v |= uint64_t(b[i]) << (8 * i);
  return v;
}

uint32_t crcOf(const std::vector<float>& values) {
  return uint32_t(
      crc32(0L, reinterpret_cast<const Bytef*>(values.data()), uInt(values.size() * sizeof(float))));
}
}  // namespace

void saveTensors(const std::string& path, const std::vector<NamedTensor>& tensors) {
  static_assert(sizeof(float) == 4);
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) throw FileError(path + ": cannot write");
    out.write(kMagic, sizeof kMagic);
    put64(out, tensors.size());
    for (const NamedTensor& t : tensors) {
      put64(out, t.name.size());
      out.write(t.name.data(), std::streamsize(t.name.size()));
      put64(out, t.values.size());
      out.write(reinterpret_cast<const char*>(t.values.data()),
                std::streamsize(t.values.size() * sizeof(float)));
      put64(out, crcOf(t.values));
    }
    if (!out.flush()) throw FileError(path + ": write failed");
  }
  // Replace atomically, so an interrupted save never leaves a half-written weight file.
  if (std::rename(tmp.c_str(), path.c_str()) != 0) throw FileError(path + ": cannot replace the file");
}

std::vector<NamedTensor> loadTensors(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw FileError(path + ": cannot open");
  char magic[8];
  if (!in.read(magic, 8) || std::memcmp(magic, kMagic, 8) != 0)
    throw FileError(path + ": not an mpsnn weight file");
  const uint64_t count = get64(in, path);
  if (count > 1u << 20) throw FileError(path + ": implausible tensor count " + std::to_string(count));
  std::vector<NamedTensor> tensors;
  for (uint64_t i = 0; i < count; ++i) {
    NamedTensor t;
    const uint64_t nameLength = get64(in, path);
    if (nameLength > kMaxName) throw FileError(path + ": corrupt tensor name length");
    t.name.resize(nameLength);
    if (!in.read(t.name.data(), std::streamsize(nameLength)))
      throw FileError(path + ": truncated weight file");
    const uint64_t length = get64(in, path);
    if (length > (uint64_t(1) << 34)) throw FileError(path + ": corrupt length of tensor '" + t.name + "'");
    t.values.resize(length);
    if (!in.read(reinterpret_cast<char*>(t.values.data()), std::streamsize(length * sizeof(float))))
      throw FileError(path + ": truncated weight file (tensor '" + t.name + "')");
    if (get64(in, path) != crcOf(t.values))
      throw FileError(path + ": checksum mismatch in tensor '" + t.name + "'");
    tensors.push_back(std::move(t));
  }
  return tensors;
}

}  // namespace mpsnn
