// Uses the installed headers and library: a ReLU on a CPU image, checked.
#include <mpsnn/mpsnn.h>

#include <cstdio>
#include <vector>

int main() {
  using namespace mpsnn;
  auto device = Device::cpuDevice();
  auto queue = device->newCommandQueue();
  auto src = Image::make(device, ImageDescriptor::make(ImageFeatureChannelFormat::Float32, 2, 1, 1));
  auto dst = Image::make(device, src->descriptor());
  std::vector<float> in = {-1.5f, 2.5f}, out(2);
  src->writeBytes(in.data(), DataLayout::HeightxWidthxFeatureChannels, 0);
  auto relu = CNNNeuronReLU::make(device, 0.0f);
  auto cb = queue->commandBuffer();
  relu->encode(cb, src, dst);
  cb->commit();
  cb->waitUntilCompleted();
  dst->readBytes(out.data(), DataLayout::HeightxWidthxFeatureChannels, 0);
  std::printf("mpsnn %d.%d.%d: %g %g\n", MPSNN_VERSION_MAJOR, MPSNN_VERSION_MINOR, MPSNN_VERSION_PATCH, out[0], out[1]);
  return out[0] == 0.0f && out[1] == 2.5f ? 0 : 1;
}
