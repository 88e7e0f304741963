// Byte-moving ops (neuron, arithmetic, dropout) on bench/shapes/elementwise.txt at batch 1 and 32,
// with the device's plain copy of the same bytes as the bandwidth reference. The "bytes" counter is
// what each call must read and write at least once; compare.py turns it into a fraction of copy
// bandwidth. Names: elementwise/<shape>/<batch>.
#include "common.h"
#include "core/backend.h"
#include "core/image_access.h"

namespace mpsnn::bench {
namespace {

void registerAll() {
  for (const auto& row : readShapes("elementwise.txt")) {
    const std::string name = row[0], op = row[1];
    const uint64_t h = std::stoull(row[2]), w = std::stoull(row[3]), c = std::stoull(row[4]);
    for (uint64_t batch : {1, 32}) {
      benchmark::RegisterBenchmark(
          ("elementwise/" + name + "/" + std::to_string(batch)).c_str(),
          [=](benchmark::State& state) {
            const double elements = double(batch * h * w * c), f32 = 4.0;
            auto a = randomImage(batch, h, w, c);
            auto b = randomImage(batch, h, w, c);
            auto dst = Image::make(device(), a->descriptor());
            auto channelBias = randomImage(batch, 1, 1, c);
            double bytes = 2 * elements * f32;
            if (op == "copy") {
              auto src = detail::ImageAccess::view(*a, "bench"), out = detail::ImageAccess::view(*dst, "bench");
              const size_t n = size_t(elements * f32);
              timeEncoded(state, [&](const CommandBufferPtr& cb) {
                cb->encodeWork("copy", [src, out, n](detail::QueueContext& ctx) {
                  out.storage->device()->backend().copyOnQueue(ctx, out.data(), src.data(), n);
                });
              });
            } else if (op == "relu") {
              auto k = CNNNeuronReLU::make(device(), 0.0f);
              timeEncoded(state, [&](const CommandBufferPtr& cb) { k->encode(cb, a, dst); });
            } else if (op == "add" || op == "multiply") {
              std::shared_ptr<CNNArithmetic> k;
              if (op == "add") k = CNNAdd::make(device());
              else k = CNNMultiply::make(device());
              bytes = 3 * elements * f32;
              timeEncoded(state, [&](const CommandBufferPtr& cb) { k->encode(cb, a, b, dst); });
            } else if (op == "addchannel") {  // a bias per channel, broadcast over x and y
              auto k = CNNAdd::make(device());
              k->setSecondaryStrideInPixelsX(0);
              k->setSecondaryStrideInPixelsY(0);
              bytes = 2 * elements * f32 + double(batch * c) * f32;
              timeEncoded(state, [&](const CommandBufferPtr& cb) { k->encode(cb, a, channelBias, dst); });
            } else if (op == "dropout") {
              auto k = CNNDropout::make(device(), 0.5f, 1, IntSize{1, 1, 1});
              timeEncoded(state, [&](const CommandBufferPtr& cb) { k->encode(cb, a, dst); });
            } else {
              state.SkipWithError(("unknown op " + op).c_str());
              return;
            }
            state.counters["bytes"] = bytes;
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
