// mpsnn — files: IDX data sets (MNIST, Fashion-MNIST), weight files, SVG line charts.
// Library extensions with no MPS counterpart; the trainer and the classify example use them.
#pragma once
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace mpsnn {

/// Thrown when a file cannot be read or written, or its contents are malformed; the message names the
/// file and what is wrong with it.
class FileError : public std::runtime_error {
 public:
  explicit FileError(const std::string& what) : std::runtime_error(what) {}
};

/// Images of an IDX file (magic 0x00000803): `count` images of rows × columns unsigned bytes, row-major,
/// image after image.
struct IdxImages {
  uint64_t count = 0, rows = 0, columns = 0;
  std::vector<uint8_t> pixels;
  const uint8_t* image(uint64_t index) const { return pixels.data() + index * rows * columns; }
};

/// Reads an IDX image file, gzip-compressed (".gz", detected by content) or not. FileError when the
/// file is missing, truncated, or not an IDX image file.
IdxImages readIdxImages(const std::string& path);
/// Reads an IDX label file (magic 0x00000801): one byte per item.
std::vector<uint8_t> readIdxLabels(const std::string& path);
/// The folder where Debian's dataset-fashion-mnist package installs Fashion-MNIST
/// (/usr/share/datasets/fashion-mnist), or "" when its four files are not there.
std::string fashionMnistDirectory();

/// A named float32 array, the unit of a weight file.
struct NamedTensor {
  std::string name;
  std::vector<float> values;
};

/// Writes the tensors to `path` (format "MPSNNW1": count, then name, length, float32 little-endian
/// values and a CRC-32 per tensor). FileError on I/O failure.
void saveTensors(const std::string& path, const std::vector<NamedTensor>& tensors);
/// Reads a file written by saveTensors. FileError when it is missing, truncated, of another format or
/// fails its checksums.
std::vector<NamedTensor> loadTensors(const std::string& path);

/// One line of a chart.
struct ChartSeries {
  std::string name;
  std::string color;         ///< SVG colour, e.g. "#1f77b4"
  std::vector<double> x, y;  ///< same length
  bool rightAxis = false;    ///< plotted against the right-hand axis (e.g. accuracy next to loss)
};

/// Writes a self-contained SVG line chart (axes, ticks, legend). FileError on I/O failure.
void writeLineChartSvg(const std::string& path, const std::string& title, const std::string& xLabel,
                       const std::string& leftLabel, const std::string& rightLabel,
                       const std::vector<ChartSeries>& series);

}  // namespace mpsnn
