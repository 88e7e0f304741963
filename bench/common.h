// Benchmark helpers: random images, a data source, shape files, and timing of encoded work so that
// CPU and CUDA runs measure the same thing as PyTorch (work per call, back to back).
#pragma once
#include <benchmark/benchmark.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <map>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "mpsnn/mpsnn.h"

namespace mpsnn::bench {

inline DevicePtr device() { return Device::defaultDevice(); }
inline CommandQueuePtr queue() {
  static CommandQueuePtr q = device()->newCommandQueue();
  return q;
}

/// compare.py --tf32 sets MPSNN_BENCH_TF32=1: both sides may then use TF32 tensor cores.
inline bool tf32Allowed() {
  const char* v = std::getenv("MPSNN_BENCH_TF32");
  return v && *v == '1';
}

/// A float32 image filled with uniform values in [-1, 1] (never zeros: zeros can run faster).
inline ImagePtr randomImage(uint64_t n, uint64_t h, uint64_t w, uint64_t c,
                            ImageFeatureChannelFormat f = ImageFeatureChannelFormat::Float32) {
  auto image = Image::make(device(), ImageDescriptor::make(ImageFeatureChannelFormat::Float32, w, h, c, n));
  std::mt19937 g(1234);
  std::uniform_real_distribution<float> d(-1.0f, 1.0f);
  std::vector<float> v(h * w * c);
  for (uint64_t k = 0; k < n; ++k) {
    for (auto& x : v) x = d(g);
    image->writeBytes(v.data(), DataLayout::HeightxWidthxFeatureChannels, k);
  }
  (void)f;
  return image;
}

/// Rows of a whitespace-separated shape file; '#' starts a comment.
inline std::vector<std::vector<std::string>> readShapes(const std::string& file) {
  std::ifstream in(std::string(MPSNN_BENCH_DIR) + "/shapes/" + file);
  std::vector<std::vector<std::string>> rows;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::istringstream s(line);
    std::vector<std::string> row;
    std::string tok;
    while (s >> tok) row.push_back(tok);
    if (!row.empty()) rows.push_back(row);
  }
  return rows;
}

/// Times `encode(cb)` called `repeats` times per command buffer; reports seconds per call as the
/// benchmark's manual time. Repeating inside one buffer amortises the commit/wait hand-off the way
/// PyTorch's back-to-back launches do.
template <class Encode>
void timeEncoded(benchmark::State& state, Encode encode) {
  const int repeats = device()->kind() == DeviceKind::CUDA ? 20 : 1;
  {  // warm-up: caches, algorithm choice, workspace
    auto cb = queue()->commandBuffer();
    encode(cb);
    cb->commit();
    cb->waitUntilCompleted();
  }
  for (auto _ : state) {
    auto t0 = std::chrono::steady_clock::now();
    auto cb = queue()->commandBuffer();
    for (int i = 0; i < repeats; ++i) encode(cb);
    cb->commit();
    cb->waitUntilCompleted();
    state.SetIterationTime(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / repeats);
  }
}

}  // namespace mpsnn::bench
