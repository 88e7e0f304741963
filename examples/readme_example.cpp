// The README's example: a 3x3 convolution with a fused ReLU on one image, read back on the host.
#include <cstdio>
#include <vector>

#include <mpsnn/mpsnn.h>

using namespace mpsnn;

// Weights come from a data source, as in MPS. This one holds them in memory.
class MyWeights final : public CNNConvolutionDataSource {
 public:
  MyWeights() : desc_(CNNConvolutionDescriptor::make(3, 3, /*in*/ 1, /*out*/ 2)) {
    desc_.setFusedNeuronDescriptor(NNNeuronDescriptor::make(CNNNeuronType::ReLU));
    for (int i = 0; i < 2 * 3 * 3 * 1; ++i) weights_.push_back(i % 2 ? 0.5f : -0.25f);  // OHWI
  }
  DataType dataType() const override { return DataType::Float32; }
  DataType kernelWeightsDataType() const override { return DataType::Float32; }  // exact float32 weights
  const CNNConvolutionDescriptor& descriptor() const override { return desc_; }
  const void* weights() override { return weights_.data(); }
  const float* biasTerms() override { return bias_; }
  bool load() override { return true; }
  void purge() override {}
  std::string label() const override { return "my 3x3 convolution"; }

 private:
  CNNConvolutionDescriptor desc_;
  std::vector<float> weights_;
  float bias_[2] = {0.1f, -0.1f};
};

int main() {
  auto device = Device::defaultDevice();  // CUDA when built with it and a GPU is present; MPSNN_DEVICE overrides
  auto queue = device->newCommandQueue();

  auto src = Image::make(device, ImageDescriptor::make(ImageFeatureChannelFormat::Float32, 5, 4, 1));
  std::vector<float> pixels(5 * 4);
  for (size_t i = 0; i < pixels.size(); ++i) pixels[i] = float(i) / 10.0f;
  src->writeBytes(pixels.data(), DataLayout::HeightxWidthxFeatureChannels, 0);

  auto conv = CNNConvolution::make(device, std::make_shared<MyWeights>());
  conv->setDestinationImageAllocator(Image::defaultAllocator());  // a persistent result we can read

  auto cb = queue->commandBuffer();
  ImagePtr dst = conv->encode(cb, src);  // sized by the padding policy: 5x4x2 ("same")
  cb->commit();
  cb->waitUntilCompleted();

  std::vector<float> out(dst->width() * dst->height() * dst->featureChannels());
  dst->readBytes(out.data(), DataLayout::FeatureChannelsxHeightxWidth, 0);
  std::printf("%s: %llux%llux%llu\n", device->name().c_str(), (unsigned long long)dst->width(),
              (unsigned long long)dst->height(), (unsigned long long)dst->featureChannels());
  for (size_t c = 0; c < 2; ++c) {
    for (size_t y = 0; y < 4; ++y) {
      for (size_t x = 0; x < 5; ++x) std::printf(" %6.3f", out[(c * 4 + y) * 5 + x]);
      std::printf("\n");
    }
    std::printf("\n");
  }
  return 0;
}
