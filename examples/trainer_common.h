// Shared by the Fashion-MNIST trainer and the classify example: the spec-14 network built with
// NNGraph, its trainable data sources (Adam on the device), data loading and argument parsing.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <functional>
#include <memory>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "mpsnn/mpsnn.h"

namespace mpsnn::example {

/// A bad command-line argument (exit status 2).
class ArgumentError : public std::runtime_error {
 public:
  explicit ArgumentError(const std::string& what) : std::runtime_error(what) {}
};

inline uint64_t parseInteger(const std::string& flag, const std::string& text, uint64_t lo, uint64_t hi) {
  size_t used = 0;
  unsigned long long v = 0;
  try {
    if (!text.empty() && text[0] == '-') throw std::invalid_argument("negative");
    v = std::stoull(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used != text.size() || text.empty() || v < lo || v > hi)
    throw ArgumentError(flag + " needs an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) + "], not '" +
                        text + "'");
  return v;
}

inline double parseReal(const std::string& flag, const std::string& text, double lo, double hi) {
  size_t used = 0;
  double v = 0;
  try {
    v = std::stod(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used != text.size() || text.empty() || !std::isfinite(v) || v <= lo || v > hi)
    throw ArgumentError(flag + " needs a number in (" + std::to_string(lo) + ", " + std::to_string(hi) + "], not '" +
                        text + "'");
  return v;
}

inline DevicePtr selectDevice(const std::string& name) {
  if (name.empty()) return Device::defaultDevice();
  for (const DevicePtr& d : Device::allDevices())
    if ((name == "cuda") == (d->kind() == DeviceKind::CUDA)) return d;
  throw ArgumentError("--device " + name + ": no such device in this build/machine");
}

/// Training and test images with their labels.
struct DataSet {
  IdxImages train, test;
  std::vector<uint8_t> trainLabels, testLabels;
};

/// Finds `stem` or `stem.gz` in `dir`.
inline std::string idxFile(const std::string& dir, const std::string& stem) {
  for (const std::string& name : {stem + ".gz", stem})
    if (std::FILE* f = std::fopen((dir + "/" + name).c_str(), "rb")) {
      std::fclose(f);
      return dir + "/" + name;
    }
  throw FileError(dir + ": neither " + stem + " nor " + stem + ".gz found");
}

inline void checkPair(const IdxImages& images, const std::vector<uint8_t>& labels, const std::string& what) {
  if (images.rows != 28 || images.columns != 28)
    throw FileError(what + " images are " + std::to_string(images.rows) + "x" + std::to_string(images.columns) +
                    ", the network needs 28x28");
  if (labels.size() != images.count)
    throw FileError(what + ": " + std::to_string(images.count) + " images but " + std::to_string(labels.size()) +
                    " labels");
  for (uint8_t l : labels)
    if (l > 9) throw FileError(what + ": label " + std::to_string(l) + " out of range 0..9");
}

/// Reads the IDX files of `dir` (default: Debian's Fashion-MNIST folder), keeping the first
/// `trainLimit` / `testLimit` images when non-zero. FileError with a clear message otherwise.
inline DataSet loadDataSet(std::string dir, uint64_t trainLimit, uint64_t testLimit) {
  if (dir.empty()) {
    dir = fashionMnistDirectory();
    if (dir.empty())
      throw FileError("Fashion-MNIST not found in /usr/share/datasets/fashion-mnist: install Debian's "
                      "dataset-fashion-mnist package or pass --data DIR");
  }
  DataSet d;
  d.train = readIdxImages(idxFile(dir, "train-images-idx3-ubyte"));
  d.trainLabels = readIdxLabels(idxFile(dir, "train-labels-idx1-ubyte"));
  d.test = readIdxImages(idxFile(dir, "t10k-images-idx3-ubyte"));
  d.testLabels = readIdxLabels(idxFile(dir, "t10k-labels-idx1-ubyte"));
  checkPair(d.train, d.trainLabels, "training set");
  checkPair(d.test, d.testLabels, "test set");
  auto limit = [](IdxImages& images, std::vector<uint8_t>& labels, uint64_t n) {
    if (!n || n >= images.count) return;
    images.count = n;
    images.pixels.resize(n * images.rows * images.columns);
    labels.resize(n);
  };
  limit(d.train, d.trainLabels, trainLimit);
  limit(d.test, d.testLabels, testLimit);
  return d;
}

/// Weights and biases of one layer: host copies (what weights()/biasTerms() return), a device state
/// the graph reloads from, and Adam's moment vectors. The graph calls update() once per training
/// step after the layer's gradient is complete; Adam updates the state in place on the device.
class LayerWeights final : public CNNConvolutionDataSource {
 public:
  LayerWeights(DevicePtr device, CNNConvolutionDescriptor descriptor, std::string label, std::mt19937_64& rng,
               float learningRate)
      : device_(std::move(device)), descriptor_(std::move(descriptor)), label_(std::move(label)) {
    const uint64_t fanIn = descriptor_.kernelWidth() * descriptor_.kernelHeight() * descriptor_.inputFeatureChannels();
    weights_.resize(fanIn * descriptor_.outputFeatureChannels());
    biases_.resize(descriptor_.outputFeatureChannels());
    // CHOICE: PyTorch's default initialisation of Conv2d/Linear (uniform ±1/sqrt(fan_in) for both),
    // so the comparison benchmark trains the same model; spec 14's sample draws ±0.2 and 0.1.
    const float bound = 1.0f / std::sqrt(float(fanIn));
    std::uniform_real_distribution<float> u(-bound, bound);
    for (float& w : weights_) w = u(rng);
    for (float& b : biases_) b = u(rng);
    state_ = CNNConvolutionWeightsAndBiasesState::make(device_, descriptor_);
    uploadHost();
    adam_ = NNOptimizerAdam::make(device_, 0.9, 0.999, 1e-8f, 0,
                                  NNOptimizerDescriptor::make(learningRate, 1.0f, NNRegularizationType::None, 0.0f));
    for (uint64_t n : {uint64_t(weights_.size()), uint64_t(biases_.size())}) {
      momentum_.push_back(Vector::make(device_, VectorDescriptor::make(n, DataType::Float32)));
      velocity_.push_back(Vector::make(device_, VectorDescriptor::make(n, DataType::Float32)));
    }
  }

  DataType dataType() const override { return DataType::Float32; }
  const CNNConvolutionDescriptor& descriptor() const override { return descriptor_; }
  const void* weights() override { return weights_.data(); }
  const float* biasTerms() override { return biases_.data(); }
  /// Brings the device state (updated by Adam) to the host copies. Callers have waited for the
  /// command buffers that update it.
  bool load() override {
    state_->weights()->readBytes(weights_.data(), state_->weightsOffset(), weights_.size() * sizeof(float));
    state_->biases()->readBytes(biases_.data(), state_->biasesOffset(), biases_.size() * sizeof(float));
    return true;
  }
  void purge() override {}
  std::string label() const override { return label_; }
  CNNConvolutionWeightsAndBiasesStatePtr update(CommandBufferPtr commandBuffer, CNNConvolutionGradientState& gradient,
                                                CNNConvolutionWeightsAndBiasesState& source) override {
    adam_->encode(commandBuffer, gradient, source, momentum_, velocity_, *state_);
    return state_;
  }

  uint64_t parameterCount() const { return weights_.size() + biases_.size(); }
  uint64_t adamTimeStep() const { return adam_->timeStep(); }
  std::vector<float>& hostWeights() { return weights_; }
  std::vector<float>& hostBiases() { return biases_; }
  /// Host copies → device state (after loading saved weights).
  void uploadHost() {
    state_->weights()->writeBytes(weights_.data(), state_->weightsOffset(), weights_.size() * sizeof(float));
    state_->biases()->writeBytes(biases_.data(), state_->biasesOffset(), biases_.size() * sizeof(float));
  }

 private:
  DevicePtr device_;
  CNNConvolutionDescriptor descriptor_;
  std::string label_;
  std::vector<float> weights_, biases_;
  CNNConvolutionWeightsAndBiasesStatePtr state_;
  NNOptimizerAdamPtr adam_;
  std::vector<VectorPtr> momentum_, velocity_;
};

/// A training graph for one batch size and what the trainer reads from it.
struct TrainingGraph {
  NNGraphPtr graph;
  uint64_t batchSize = 0;
  size_t nodeCount = 0;
  uint64_t plannedPeakBytes = 0;
  DevicePtr device;
};

/// What one finished training step reports.
struct StepResult {
  double lossSum = 0;  ///< Σ over images of the per-image cross-entropy
  uint64_t correct = 0, images = 0;
};

/// Writes `count` 28×28 images (selected by `indices`) into single Unorm8 images.
inline ImageBatch makeInputBatch(const DevicePtr& device, const IdxImages& images, const uint32_t* indices,
                                 uint64_t count) {
  ImageBatch batch;
  const auto desc = ImageDescriptor::make(ImageFeatureChannelFormat::Unorm8, 28, 28, 1, 1);
  for (uint64_t i = 0; i < count; ++i) {
    auto image = Image::make(device, desc);
    image->writeBytes(images.image(indices[i]), DataLayout::HeightxWidthxFeatureChannels, 0);
    batch.push_back(image);
  }
  return batch;
}

inline uint64_t argmax(const float* v, uint64_t n) { return uint64_t(std::max_element(v, v + n) - v); }

/// Keeps two training steps in flight: encoding step k overlaps running step k−1.
class StepRunner {
 public:
  StepRunner(TrainingGraph& graph, CommandQueuePtr queue) : graph_(graph), queue_(std::move(queue)) {}
  ~StepRunner() {
    try {
      finish();
    } catch (...) {
    }
  }
  void submit(const IdxImages& images, const std::vector<uint8_t>& labels, const uint32_t* indices, uint64_t count,
              std::function<void(const StepResult&)> done) {
    Pending p;
    p.done = std::move(done);
    p.inputs = makeInputBatch(graph_.device, images, indices, count);
    for (uint64_t i = 0; i < count; ++i) {
      float oneHot[10] = {};
      oneHot[labels[indices[i]]] = 1.0f;
      p.labelValues.push_back(labels[indices[i]]);
      p.labels.push_back(CNNLossLabels::make(
          graph_.device, CNNLossDataDescriptor::make(oneHot, sizeof oneHot, DataLayout::HeightxWidthxFeatureChannels,
                                                     IntSize{1, 1, 10})));
    }
    p.commandBuffer = queue_->commandBuffer();
    std::vector<ImageBatch> intermediates;
    StateBatch states(p.labels.begin(), p.labels.end());
    std::vector<StateBatch> sourceStates{states};
    graph_.graph->encodeBatch(p.commandBuffer, {p.inputs}, &sourceStates, &intermediates, nullptr);
    p.logits = intermediates.at(0);
    p.commandBuffer->commit();
    if (pending_.size() == 1) complete();
    pending_.push_back(std::move(p));
  }
  void finish() {
    while (!pending_.empty()) complete();
  }

 private:
  struct Pending {
    CommandBufferPtr commandBuffer;
    ImageBatch inputs, logits;
    std::vector<CNNLossLabelsPtr> labels;
    std::vector<uint8_t> labelValues;
    std::function<void(const StepResult&)> done;
  };
  void complete() {
    Pending p = std::move(pending_.front());
    pending_.erase(pending_.begin());
    p.commandBuffer->waitUntilCompleted();
    StepResult r;
    r.images = p.labels.size();
    const double batch = double(r.images);
    for (size_t i = 0; i < p.labels.size(); ++i) {
      float loss = 0;
      p.labels[i]->lossImage()->readBytes(&loss, DataLayout::HeightxWidthxFeatureChannels, 0);
      r.lossSum += double(loss) * batch;  // each loss carries the weight 1/batch
      float logits[10];
      p.logits[i]->readBytes(logits, DataLayout::HeightxWidthxFeatureChannels, 0);
      r.correct += argmax(logits, 10) == p.labelValues[i];
    }
    p.done(r);
  }
  TrainingGraph& graph_;
  CommandQueuePtr queue_;
  std::vector<Pending> pending_;
};

/// The spec-14 network: four trainable layers shared by a training graph (with dropout and the
/// softmax cross-entropy loss) and an inference graph (softmax output).
class Network {
 public:
  Network(DevicePtr device, uint64_t seed, float learningRate) : device_(std::move(device)) {
    std::mt19937_64 rng(seed);
    auto conv = [](uint64_t k, uint64_t in, uint64_t out) { return CNNConvolutionDescriptor::make(k, k, in, out); };
    conv1_ = std::make_shared<LayerWeights>(device_, conv(5, 1, 32), "conv1", rng, learningRate);
    conv2_ = std::make_shared<LayerWeights>(device_, conv(5, 32, 64), "conv2", rng, learningRate);
    fc1_ = std::make_shared<LayerWeights>(device_, conv(7, 64, 1024), "fc1", rng, learningRate);
    fc2_ = std::make_shared<LayerWeights>(device_, conv(1, 1024, 10), "fc2", rng, learningRate);
    seed_ = seed;
  }

  uint64_t parameterCount() const {
    return conv1_->parameterCount() + conv2_->parameterCount() + fc1_->parameterCount() + fc2_->parameterCount();
  }

  /// conv → ReLU → pool → conv → ReLU → pool → fc → ReLU, the part both graphs share.
  NNImageNodePtr trunk(const NNImageNodePtr& input) const {
    auto same = NNDefaultPadding::paddingWithMethod(NNPaddingMethod::AlignCentered |
                                                    NNPaddingMethod::AddRemainderToTopLeft | NNPaddingMethod::SizeSame);
    auto c1 = CNNConvolutionNode::make(input, conv1_);
    c1->setPaddingPolicy(same);
    auto r1 = CNNNeuronReLUNode::make(c1->resultImage(), 0.0f);
    auto p1 = CNNPoolingMaxNode::make(r1->resultImage(), 2, 2);
    p1->setPaddingPolicy(NNDefaultPadding::paddingForTensorflowAveragePooling());
    auto c2 = CNNConvolutionNode::make(p1->resultImage(), conv2_);
    c2->setPaddingPolicy(same);
    auto r2 = CNNNeuronReLUNode::make(c2->resultImage(), 0.0f);
    auto p2 = CNNPoolingMaxNode::make(r2->resultImage(), 2, 2);
    p2->setPaddingPolicy(NNDefaultPadding::paddingForTensorflowAveragePooling());
    auto f1 = CNNFullyConnectedNode::make(p2->resultImage(), fc1_);
    auto r3 = CNNNeuronReLUNode::make(f1->resultImage(), 0.0f);
    return r3->resultImage();
  }

  TrainingGraph trainingGraph(uint64_t batchSize) {
    auto input = NNImageNode::make(nullptr);
    auto drop = CNNDropoutNode::make(trunk(input), 0.5f, seed_, IntSize{1, 1, 1});
    auto f2 = CNNFullyConnectedNode::make(drop->resultImage(), fc2_);
    f2->resultImage()->setExportFromGraph(true);  // logits, for the running accuracy
    auto lossDescriptor = CNNLossDescriptor::make(CNNLossType::SoftMaxCrossEntropy, CNNReductionType::Sum);
    lossDescriptor.setWeight(1.0f / float(batchSize));  // Σ over the batch of CE/B = mean cross-entropy
    auto loss = CNNLossNode::make(f2->resultImage(), lossDescriptor);
    auto termini = loss->trainingGraphWithSourceGradient(
        nullptr, [](NNFilterNode& gradient, NNFilterNode*, NNImageNode&, NNImageNode&) {
          gradient.resultImage()->setFormat(ImageFeatureChannelFormat::Float32);
        });
    if (termini.size() != 1) throw std::runtime_error("training graph: expected one terminus");
    TrainingGraph t;
    t.graph = NNGraph::make(device_, termini[0]->resultImage(), false);
    t.graph->setFormat(ImageFeatureChannelFormat::Float32);
    t.batchSize = batchSize;
    t.nodeCount = t.graph->nodeCount();
    t.plannedPeakBytes = t.graph->plannedPeakBytes(batchSize);
    t.device = device_;
    return t;
  }

  NNGraphPtr inferenceGraph() {
    if (!inference_) {
      auto input = NNImageNode::make(nullptr);
      auto f2 = CNNFullyConnectedNode::make(trunk(input), fc2_);
      auto softmax = CNNSoftMaxNode::make(f2->resultImage());
      inference_ = NNGraph::make(device_, softmax->resultImage(), true);
      inference_->setFormat(ImageFeatureChannelFormat::Float32);
    }
    return inference_;
  }

  /// Class probabilities of `count` images (10 floats each), computed with the current weights.
  std::vector<float> probabilities(const CommandQueuePtr& queue, const IdxImages& images, const uint32_t* indices,
                                   uint64_t count) {
    NNGraphPtr g = inferenceGraph();
    std::vector<float> out(count * 10);
    const uint64_t chunk = 256;
    for (uint64_t start = 0; start < count; start += chunk) {
      const uint64_t n = std::min(chunk, count - start);
      auto cb = queue->commandBuffer();
      ImageBatch result = g->encodeBatch(cb, {makeInputBatch(device_, images, indices + start, n)}, nullptr);
      cb->commit();
      cb->waitUntilCompleted();
      for (uint64_t i = 0; i < n; ++i)
        result[i]->readBytes(out.data() + (start + i) * 10, DataLayout::HeightxWidthxFeatureChannels, 0);
    }
    return out;
  }

  /// Test accuracy: reloads the shared data sources into the inference graph first.
  double evaluate(const CommandQueuePtr& queue, const IdxImages& images, const std::vector<uint8_t>& labels) {
    inferenceGraph()->reloadFromDataSources();
    std::vector<uint32_t> all(images.count);
    for (uint32_t i = 0; i < all.size(); ++i) all[i] = i;
    std::vector<float> p = probabilities(queue, images, all.data(), images.count);
    uint64_t correct = 0;
    for (uint64_t i = 0; i < images.count; ++i) correct += argmax(&p[i * 10], 10) == labels[i];
    return images.count ? double(correct) / double(images.count) : 0.0;
  }

  void saveWeights(const std::string& path) {
    std::vector<NamedTensor> tensors;
    for (auto* l : layers()) {
      l->load();
      tensors.push_back({l->label() + ".weights", l->hostWeights()});
      tensors.push_back({l->label() + ".biases", l->hostBiases()});
    }
    saveTensors(path, tensors);
  }

  /// Loads a file written by saveWeights; FileError when a tensor is missing or has another size.
  void loadWeights(const std::string& path) {
    std::vector<NamedTensor> tensors = loadTensors(path);
    auto find = [&](const std::string& name, size_t size) -> const std::vector<float>& {
      for (const auto& t : tensors)
        if (t.name == name) {
          if (t.values.size() != size)
            throw FileError(path + ": tensor '" + name + "' has " + std::to_string(t.values.size()) +
                            " values, the network needs " + std::to_string(size));
          return t.values;
        }
      throw FileError(path + ": tensor '" + name + "' missing (not a weight file of this network?)");
    };
    for (auto* l : layers()) {
      l->hostWeights() = find(l->label() + ".weights", l->hostWeights().size());
      l->hostBiases() = find(l->label() + ".biases", l->hostBiases().size());
      l->uploadHost();
    }
  }

  std::vector<LayerWeights*> layers() const { return {conv1_.get(), conv2_.get(), fc1_.get(), fc2_.get()}; }

 private:
  DevicePtr device_;
  uint64_t seed_ = 1;
  std::shared_ptr<LayerWeights> conv1_, conv2_, fc1_, fc2_;
  NNGraphPtr inference_;
};

inline void printProgress(int epoch, int epochs, double fraction, double loss, double accuracy, double rate,
                          const std::string& left) {
  const int width = 30;
  const int filled = int(fraction * width + 0.5);
  std::printf("\repoch %d/%d [%.*s%*s] %3.0f%%  loss %.4f  accuracy %.4f  %5.0f images/s  %s left   ", epoch, epochs,
              filled, "##############################", width - filled, "", fraction * 100, loss, accuracy, rate,
              left.c_str());
  std::fflush(stdout);
}

}  // namespace mpsnn::example
