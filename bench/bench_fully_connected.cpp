// CNNFullyConnected on the shapes of bench/shapes/fully_connected.txt at batch 1 and 32.
// Names: fully_connected/<shape>/<batch>. bench/compare.py runs PyTorch on the same shapes.
#include "common.h"

namespace mpsnn::bench {
namespace {

class RandomWeights final : public CNNConvolutionDataSource {
 public:
  explicit RandomWeights(CNNConvolutionDescriptor d) : desc_(std::move(d)) {
    std::mt19937 g(42);
    std::uniform_real_distribution<float> u(-0.1f, 0.1f);
    weights_.resize(desc_.outputFeatureChannels() * desc_.kernelHeight() * desc_.kernelWidth() *
                    desc_.inputFeatureChannels());
    for (auto& w : weights_) w = u(g);
    bias_.assign(desc_.outputFeatureChannels(), 0.01f);
  }
  DataType dataType() const override { return DataType::Float32; }
  DataType kernelWeightsDataType() const override { return DataType::Float32; }
  const CNNConvolutionDescriptor& descriptor() const override { return desc_; }
  const void* weights() override { return weights_.data(); }
  const float* biasTerms() override { return bias_.data(); }
  bool load() override { return true; }
  void purge() override {}
  std::string label() const override { return "bench"; }

 private:
  CNNConvolutionDescriptor desc_;
  std::vector<float> weights_, bias_;
};

void registerAll() {
  for (const auto& row : readShapes("fully_connected.txt")) {
    const std::string name = row[0];
    const uint64_t h = std::stoull(row[1]), w = std::stoull(row[2]), ci = std::stoull(row[3]),
                   co = std::stoull(row[4]);
    for (uint64_t batch : {1, 32}) {
      benchmark::RegisterBenchmark(
          ("fully_connected/" + name + "/" + std::to_string(batch)).c_str(),
          [=](benchmark::State& state) {
            // The kernel covers the whole h × w × ci source (spec 01 §5).
            auto d = CNNConvolutionDescriptor::make(w, h, ci, co);
            auto fc = CNNFullyConnected::make(device(), std::make_shared<RandomWeights>(d));
            fc->setAllowsTF32(tf32Allowed());
            auto src = randomImage(batch, h, w, ci);
            auto dst = Image::make(
                device(), ImageDescriptor::make(ImageFeatureChannelFormat::Float32, 1, 1, co, batch));
            timeEncoded(state, [&](const CommandBufferPtr& cb) { fc->encode(cb, src, dst); });
            state.counters["flops"] = benchmark::Counter(2.0 * double(batch * co * ci * h * w),
                                                         benchmark::Counter::kIsIterationInvariantRate);
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
