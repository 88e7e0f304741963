// IDX data-set files (include/mpsnn/io.h), read through zlib so .gz and plain files both work.
#include <zlib.h>

#include <filesystem>

#include "mpsnn/io.h"

namespace mpsnn {

namespace {

/// The whole (decompressed) file. gzread passes uncompressed files through unchanged.
std::vector<uint8_t> readAll(const std::string& path) {
  if (!std::filesystem::is_regular_file(path)) throw FileError(path + ": no such file");
  gzFile f = gzopen(path.c_str(), "rb");
  if (!f) throw FileError(path + ": cannot open");
  std::vector<uint8_t> data;
  uint8_t chunk[1 << 16];
  for (;;) {
    const int n = gzread(f, chunk, sizeof chunk);
    if (n < 0) {
      int code = 0;
      std::string msg = gzerror(f, &code);
      gzclose(f);
      throw FileError(path + ": corrupt compressed data (" + msg + ")");
    }
    if (n == 0) break;
    data.insert(data.end(), chunk, chunk + n);
  }
  gzclose(f);
  return data;
}

uint32_t bigEndian32(const std::vector<uint8_t>& d, size_t at) {
  return uint32_t(d[at]) << 24 | uint32_t(d[at + 1]) << 16 | uint32_t(d[at + 2]) << 8 | uint32_t(d[at + 3]);
}

}  // namespace

IdxImages readIdxImages(const std::string& path) {
  std::vector<uint8_t> d = readAll(path);
  if (d.size() < 16)
    throw FileError(path + ": " + std::to_string(d.size()) + " bytes, too short for an IDX image header");
  if (bigEndian32(d, 0) != 0x00000803)
    throw FileError(path + ": not an IDX image file (magic " + std::to_string(bigEndian32(d, 0)) +
                    ", expected 2051)");
  IdxImages images;
  images.count = bigEndian32(d, 4);
  images.rows = bigEndian32(d, 8);
  images.columns = bigEndian32(d, 12);
  if (images.rows == 0 || images.columns == 0 || images.rows > 65536 || images.columns > 65536)
    throw FileError(path + ": image size " + std::to_string(images.rows) + "x" +
                    std::to_string(images.columns) + " is not plausible");
  const uint64_t bytes = images.count * images.rows * images.columns;
  if (d.size() - 16 != bytes)
    throw FileError(path + ": header announces " + std::to_string(images.count) + " images of " +
                    std::to_string(images.rows) + "x" + std::to_string(images.columns) + " (" +
                    std::to_string(bytes) + " bytes), the file holds " + std::to_string(d.size() - 16));
  images.pixels.assign(d.begin() + 16, d.end());
  return images;
}

std::vector<uint8_t> readIdxLabels(const std::string& path) {
  std::vector<uint8_t> d = readAll(path);
  if (d.size() < 8)
    throw FileError(path + ": " + std::to_string(d.size()) + " bytes, too short for an IDX label header");
  if (bigEndian32(d, 0) != 0x00000801)
    throw FileError(path + ": not an IDX label file (magic " + std::to_string(bigEndian32(d, 0)) +
                    ", expected 2049)");
  const uint64_t count = bigEndian32(d, 4);
  if (d.size() - 8 != count)
    throw FileError(path + ": header announces " + std::to_string(count) + " labels, the file holds " +
                    std::to_string(d.size() - 8));
  return {d.begin() + 8, d.end()};
}

std::string fashionMnistDirectory() {
  const std::string dir = "/usr/share/datasets/fashion-mnist";
  for (const char* f : {"train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
                        "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"})
    if (!std::filesystem::is_regular_file(dir + "/" + f)) return "";
  return dir;
}

}  // namespace mpsnn
