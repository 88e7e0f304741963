// CNNPoolingMax / CNNPoolingAverage on the shapes of bench/shapes/pooling.txt at batch 1 and 32.
// Names: pooling/<shape>/<batch>. bench/compare.py runs PyTorch on the same shapes.
#include "common.h"

namespace mpsnn::bench {
namespace {

void registerAll() {
  for (const auto& row : readShapes("pooling.txt")) {
    const std::string name = row[0], kind = row[7];
    const uint64_t h = std::stoull(row[1]), w = std::stoull(row[2]), c = std::stoull(row[3]),
                   k = std::stoull(row[4]), s = std::stoull(row[5]), p = std::stoull(row[6]);
    for (uint64_t batch : {1, 32}) {
      benchmark::RegisterBenchmark(
          ("pooling/" + name + "/" + std::to_string(batch)).c_str(),
          [=](benchmark::State& state) {
            std::shared_ptr<CNNPooling> pool;
            if (kind == "max") {
              pool = CNNPoolingMax::make(device(), k, k, s, s);
              // Clamp: out-of-image taps repeat the edge, which for a window
              // overlapping the image equals PyTorch's −∞ padding.
              pool->setEdgeMode(ImageEdgeMode::Clamp);
            } else {
              pool = CNNPoolingAverage::make(device(), k, k, s, s);
            }
            // PyTorch padding p ↔ MPS offset floor(k/2) − p (spec 02 §1.1).
            const int64_t offset = int64_t(k / 2) - int64_t(p);
            pool->setOffset({offset, offset, 0});
            const uint64_t oh = (h + 2 * p - k) / s + 1, ow = (w + 2 * p - k) / s + 1;
            auto src = randomImage(batch, h, w, c);
            auto dst = Image::make(
                device(), ImageDescriptor::make(ImageFeatureChannelFormat::Float32, ow, oh, c, batch));
            timeEncoded(state, [&](const CommandBufferPtr& cb) { pool->encode(cb, src, dst); });
            // What each call must read and write at least once (compare.py
            // turns it into GB/s).
            state.counters["bytes"] = 4.0 * double(batch * c * (h * w + oh * ow));
          })
          ->UseManualTime()
          ->Unit(benchmark::kMicrosecond)
          ->MinTime(0.2);
    }
  }
}

}  // namespace
}  // namespace mpsnn::bench

int main(int argc, char** argv) {
  mpsnn::bench::registerAll();
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
