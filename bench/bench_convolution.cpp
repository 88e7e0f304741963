// CNNConvolution on the shapes of bench/shapes/convolution.txt at batch 1 and 32.
// Names: convolution/<shape>/<batch>. bench/compare.py runs PyTorch on the same shapes.
#include "common.h"

namespace mpsnn::bench {
namespace {

class RandomWeights final : public CNNConvolutionDataSource {
 public:
  explicit RandomWeights(CNNConvolutionDescriptor d) : desc_(std::move(d)) {
    std::mt19937 g(42);
    std::uniform_real_distribution<float> u(-0.1f, 0.1f);
    weights_.resize(desc_.outputFeatureChannels() * desc_.kernelHeight() * desc_.kernelWidth() *
                    desc_.inputFeatureChannels() / desc_.groups());
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
  for (const auto& row : readShapes("convolution.txt")) {
    const std::string name = row[0];
    const uint64_t h = std::stoull(row[1]), w = std::stoull(row[2]), ci = std::stoull(row[3]),
                   co = std::stoull(row[4]), kh = std::stoull(row[5]), kw = std::stoull(row[6]),
                   s = std::stoull(row[7]), p = std::stoull(row[8]);
    for (uint64_t batch : {1, 32}) {
      benchmark::RegisterBenchmark(("convolution/" + name + "/" + std::to_string(batch)).c_str(),
                                   [=](benchmark::State& state) {
                                     auto d = CNNConvolutionDescriptor::make(kw, kh, ci, co);
                                     d.setStrideInPixelsX(s);
                                     d.setStrideInPixelsY(s);
                                     auto conv = CNNConvolution::make(device(), std::make_shared<RandomWeights>(d));
                                     conv->setAllowsTF32(tf32Allowed());
                                     // PyTorch zero padding p ↔ MPS offset floor(k/2) − p (spec 01 §4.1).
                                     conv->setOffset({int64_t(kw / 2) - int64_t(p), int64_t(kh / 2) - int64_t(p), 0});
                                     const uint64_t oh = (h + 2 * p - kh) / s + 1, ow = (w + 2 * p - kw) / s + 1;
                                     auto src = randomImage(batch, h, w, ci);
                                     auto dst = Image::make(device(), ImageDescriptor::make(
                                                                          ImageFeatureChannelFormat::Float32, ow, oh,
                                                                          co, batch));
                                     timeEncoded(state, [&](const CommandBufferPtr& cb) { conv->encode(cb, src, dst); });
                                     state.counters["flops"] = benchmark::Counter(
                                         2.0 * double(batch * oh * ow * co * ci * kh * kw),
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
