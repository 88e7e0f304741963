// Classifies images with weights saved by train_fashion_mnist: builds the inference graph of spec 14,
// loads the weight file, and prints each image's most likely classes with their probabilities.
//
//   classify --weights FILE [--top K] [--device cpu|cuda] --idx IMAGES[.gz] [--labels LABELS[.gz]]
//            [--first N] [--count N]
//   classify --weights FILE [--top K] [--device cpu|cuda] image.pgm ...
//
// PGM images must be binary (P5) 28×28 with maxval 255, white object on black like Fashion-MNIST.
// Exit status: 0 on success, 1 on a runtime failure, 2 on bad arguments or unusable files.
#include <cstdio>
#include <fstream>
#include <numeric>
#include <sstream>

#include "trainer_common.h"

using namespace mpsnn;
using namespace mpsnn::example;

namespace {

const char* const kClassNames[10] = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                     "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};

/// Reads a binary PGM of 28×28 pixels with maxval 255 into `images`.
void appendPgm(const std::string& path, IdxImages& images) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw FileError(path + ": cannot open");
  std::string magic;
  uint64_t w = 0, h = 0, maxval = 0;
  auto next = [&](uint64_t& v) {
    in >> std::ws;
    while (in.peek() == '#') {
      std::string comment;
      std::getline(in, comment);
      in >> std::ws;
    }
    if (!(in >> v)) throw FileError(path + ": malformed PGM header");
  };
  in >> magic;
  if (magic != "P5") throw FileError(path + ": not a binary PGM (P5) file");
  next(w);
  next(h);
  next(maxval);
  in.get();  // the single whitespace before the pixels
  if (w != 28 || h != 28) throw FileError(path + ": " + std::to_string(w) + "x" + std::to_string(h) + ", need 28x28");
  if (maxval != 255) throw FileError(path + ": maxval " + std::to_string(maxval) + ", need 255");
  std::vector<uint8_t> pixels(28 * 28);
  if (!in.read(reinterpret_cast<char*>(pixels.data()), std::streamsize(pixels.size())))
    throw FileError(path + ": truncated pixel data");
  images.rows = images.columns = 28;
  images.pixels.insert(images.pixels.end(), pixels.begin(), pixels.end());
  ++images.count;
}

}  // namespace

int main(int argc, char** argv) {
  std::string weights, idx, labelsPath, device;
  uint64_t top = 3, first = 0, count = 10;
  std::vector<std::string> pgms;
  try {
    auto value = [&](int& i) -> std::string {
      if (i + 1 >= argc) throw ArgumentError(std::string(argv[i]) + " needs a value");
      return argv[++i];
    };
    for (int i = 1; i < argc; ++i) {
      const std::string a = argv[i];
      if (a == "--help" || a == "-h") {
        std::printf(
            "usage: classify --weights FILE [--top K] [--device cpu|cuda] --idx IMAGES [--labels LABELS]\n"
            "                [--first N] [--count N]\n"
            "       classify --weights FILE [--top K] [--device cpu|cuda] image.pgm ...\n");
        return 0;
      }
      if (a == "--weights") weights = value(i);
      else if (a == "--idx") idx = value(i);
      else if (a == "--labels") labelsPath = value(i);
      else if (a == "--top") top = parseInteger(a, value(i), 1, 10);
      else if (a == "--first") first = parseInteger(a, value(i), 0, UINT32_MAX);
      else if (a == "--count") count = parseInteger(a, value(i), 1, UINT32_MAX);
      else if (a == "--device") device = value(i);
      else if (!a.empty() && a[0] == '-') throw ArgumentError("unknown argument '" + a + "'");
      else pgms.push_back(a);
    }
    if (weights.empty()) throw ArgumentError("--weights FILE is required (written by train_fashion_mnist)");
    if (idx.empty() == pgms.empty()) throw ArgumentError("give either --idx IMAGES or PGM image paths");
    if (!device.empty() && device != "cpu" && device != "cuda") throw ArgumentError("--device must be cpu or cuda");
  } catch (const ArgumentError& e) {
    std::fprintf(stderr, "classify: %s\n", e.what());
    return 2;
  }

  IdxImages images;
  std::vector<uint8_t> labels;
  std::vector<std::string> names;
  try {
    if (!idx.empty()) {
      IdxImages all = readIdxImages(idx);
      if (all.rows != 28 || all.columns != 28) throw FileError(idx + ": images are not 28x28");
      if (first >= all.count) throw FileError(idx + ": --first " + std::to_string(first) + " but only " +
                                              std::to_string(all.count) + " images");
      count = std::min(count, all.count - first);
      images.rows = images.columns = 28;
      images.count = count;
      images.pixels.assign(all.image(first), all.image(first) + count * 28 * 28);
      if (!labelsPath.empty()) {
        std::vector<uint8_t> all = readIdxLabels(labelsPath);
        if (all.size() < first + count) throw FileError(labelsPath + ": fewer labels than images");
        labels.assign(all.begin() + long(first), all.begin() + long(first + count));
      }
      for (uint64_t i = 0; i < count; ++i) names.push_back(idx + "[" + std::to_string(first + i) + "]");
    } else {
      for (const auto& p : pgms) {
        appendPgm(p, images);
        names.push_back(p);
      }
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "classify: %s\n", e.what());
    return 2;
  }

  try {
    DevicePtr dev = selectDevice(device);
    Network net(dev, 1, 1e-3f);
    try {
      net.loadWeights(weights);
    } catch (const FileError& e) {
      std::fprintf(stderr, "classify: %s\n", e.what());
      return 2;
    }
    net.inferenceGraph()->reloadFromDataSources();
    std::vector<uint32_t> order(images.count);
    std::iota(order.begin(), order.end(), 0u);
    std::vector<float> p = net.probabilities(dev->newCommandQueue(), images, order.data(), images.count);
    uint64_t correct = 0;
    for (uint64_t i = 0; i < images.count; ++i) {
      const float* pi = &p[i * 10];
      std::vector<int> rank(10);
      std::iota(rank.begin(), rank.end(), 0);
      std::stable_sort(rank.begin(), rank.end(), [&](int a, int b) { return pi[a] > pi[b]; });
      std::printf("%s", names[i].c_str());
      if (!labels.empty()) {
        std::printf("  (label: %s%s)", kClassNames[labels[i]], rank[0] == labels[i] ? ", correct" : ", WRONG");
        correct += rank[0] == labels[i];
      }
      std::printf("\n");
      for (uint64_t k = 0; k < top; ++k) std::printf("  %-12s %6.2f%%\n", kClassNames[rank[k]], 100.0 * pi[rank[k]]);
    }
    if (!labels.empty())
      std::printf("%llu of %llu correct\n", (unsigned long long)correct, (unsigned long long)images.count);
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "classify: error: %s\n", e.what());
    return 1;
  }
}
