// IDX readers, weight files and SVG charts (include/mpsnn/io.h).
#include <zlib.h>

#include <unistd.h>

#include <gtest/gtest.h>
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "mpsnn/io.h"

namespace mpsnn {
namespace {

std::string tempPath(const std::string& name) {
  return (std::filesystem::temp_directory_path() /
          ("mpsnn_test_io_" + std::to_string(::getpid()) + "_" + name))
      .string();
}

std::vector<uint8_t> idxImageBytes(uint32_t count, uint32_t rows, uint32_t cols) {
  std::vector<uint8_t> d;
  for (uint32_t v : {0x00000803u, count, rows, cols})
    for (int s = 24; s >= 0; s -= 8) d.push_back(uint8_t(v >> s));
  for (uint32_t i = 0; i < count * rows * cols; ++i) d.push_back(uint8_t(i * 7 + 3));
  return d;
}

void writeFile(const std::string& path, const std::vector<uint8_t>& bytes, bool gzip) {
  if (gzip) {
    gzFile f = gzopen(path.c_str(), "wb");
    ASSERT_NE(f, nullptr);
    ASSERT_EQ(gzwrite(f, bytes.data(), unsigned(bytes.size())), int(bytes.size()));
    gzclose(f);
  } else {
    std::ofstream(path, std::ios::binary)
        .write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
  }
}

TEST(IdxFiles, ReadsPlainAndGzipImages) {
  for (bool gz : {false, true}) {
    const std::string path = tempPath(gz ? "img.gz" : "img");
    writeFile(path, idxImageBytes(3, 4, 5), gz);
    IdxImages im = readIdxImages(path);
    EXPECT_EQ(im.count, 3u);
    EXPECT_EQ(im.rows, 4u);
    EXPECT_EQ(im.columns, 5u);
    ASSERT_EQ(im.pixels.size(), 60u);
    EXPECT_EQ(im.image(2)[1], uint8_t(41 * 7 + 3));
    std::filesystem::remove(path);
  }
}

TEST(IdxFiles, RejectsMissingTruncatedAndWrongFiles) {
  EXPECT_THROW(readIdxImages(tempPath("does_not_exist")), FileError);
  const std::string path = tempPath("bad");
  auto bytes = idxImageBytes(2, 3, 3);
  bytes.pop_back();
  writeFile(path, bytes, false);
  EXPECT_THROW(readIdxImages(path), FileError);  // truncated
  writeFile(path, idxImageBytes(2, 3, 3), false);
  EXPECT_THROW(readIdxLabels(path), FileError);  // an image file is not a label file
  writeFile(path, {0x1f, 0x8b, 0x08, 0x00, 0x01, 0x02}, false);
  EXPECT_THROW(readIdxImages(path), FileError);  // corrupt gzip
  std::filesystem::remove(path);
}

TEST(IdxFiles, ReadsLabels) {
  const std::string path = tempPath("labels");
  writeFile(path, {0, 0, 8, 1, 0, 0, 0, 3, 7, 1, 9}, false);
  EXPECT_EQ(readIdxLabels(path), (std::vector<uint8_t>{7, 1, 9}));
  std::filesystem::remove(path);
}

TEST(WeightFile, RoundTripsAndDetectsCorruption) {
  const std::string path = tempPath("weights.bin");
  std::vector<NamedTensor> tensors{
      {"conv1.weights", {1.5f, -2.25f, 3e-8f}}, {"empty", {}}, {"fc.bias", {0.1f}}};
  saveTensors(path, tensors);
  auto back = loadTensors(path);
  ASSERT_EQ(back.size(), 3u);
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(back[i].name, tensors[i].name);
    EXPECT_EQ(back[i].values, tensors[i].values);
  }
  // Flip one value byte: the checksum catches it.
  {
    std::fstream f(path, std::ios::binary | std::ios::in | std::ios::out);
    f.seekp(8 + 8 + 8 + 13 + 8 + 2);
    f.put(char(0x55));
  }
  EXPECT_THROW(loadTensors(path), FileError);
  std::filesystem::resize_file(path, 20);
  EXPECT_THROW(loadTensors(path), FileError);  // truncated
  writeFile(path, {'n', 'o', 'p', 'e'}, false);
  EXPECT_THROW(loadTensors(path), FileError);  // another format
  std::filesystem::remove(path);
  EXPECT_THROW(loadTensors(path), FileError);  // missing
}

TEST(SvgChart, WritesSeriesAndEscapesText) {
  const std::string path = tempPath("chart.svg");
  writeLineChartSvg(path, "loss <&> accuracy", "epoch", "loss", "accuracy",
                    {{"train loss", "#1f77b4", {0, 1, 2}, {2.3, 0.9, 0.5}, false},
                     {"test accuracy", "#d62728", {1, 2}, {0.8, 0.9}, true}});
  std::ifstream in(path);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_NE(text.find("<svg"), std::string::npos);
  EXPECT_NE(text.find("loss &lt;&amp;&gt; accuracy"), std::string::npos);
  EXPECT_NE(text.find("test accuracy"), std::string::npos);
  EXPECT_EQ(std::count(text.begin(), text.end(), '\n') > 10, true);
  EXPECT_THROW(writeLineChartSvg("/nonexistent_dir/x.svg", "t", "x", "y", "", {}), FileError);
  std::filesystem::remove(path);
}

}  // namespace
}  // namespace mpsnn
