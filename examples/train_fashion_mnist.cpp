// Trains the network of spec 14 (LeNet-style: conv 5×5 32 → pool → conv 5×5 64 → pool → fc 1024 →
// dropout → fc 10) on Fashion-MNIST with NNGraph: a training graph derived from the loss node, Adam
// updates inside the data sources on the device, and an inference graph sharing the data sources.
//
//   train_fashion_mnist [--epochs N] [--batch-size N] [--learning-rate X] [--device cpu|cuda]
//                       [--seed N] [--data DIR] [--save FILE] [--load FILE] [--evaluate]
//                       [--curve FILE.svg] [--train-limit N] [--test-limit N] [--no-progress]
//
// Run with --help for the details. Exit status: 0 on success, 1 on a runtime failure, 2 on bad
// arguments or unusable data files.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <map>
#include <numeric>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "mpsnn/mpsnn.h"
#include "trainer_common.h"

using namespace mpsnn;
using namespace mpsnn::example;

namespace {

struct Options {
  int epochs = 3;
  uint64_t batchSize = 64;
  float learningRate = 1e-3f;
  std::string device;  // "" = default device
  uint64_t seed = 1;
  std::string data;
  std::string save = "fashion-mnist.weights";
  std::string load;
  std::string curve = "training-curve.svg";
  bool evaluateOnly = false;
  uint64_t trainLimit = 0, testLimit = 0;
  bool progress = true;
};

[[noreturn]] void usage(int status) {
  std::FILE* out = status ? stderr : stdout;
  std::fprintf(out,
               "usage: train_fashion_mnist [options]\n"
               "  --epochs N          training epochs (default 3)\n"
               "  --batch-size N      images per training step (default 64)\n"
               "  --learning-rate X   Adam learning rate (default 0.001)\n"
               "  --device cpu|cuda   device (default: MPSNN_DEVICE, else CUDA when present, else CPU)\n"
               "  --seed N            seed of initialisation, shuffling and dropout (default 1)\n"
               "  --data DIR          folder with the four IDX files {train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]\n"
               "                      (default: Debian's dataset-fashion-mnist folder)\n"
               "  --save FILE         weights written after each epoch (default fashion-mnist.weights)\n"
               "  --load FILE         start from saved weights (resume training, or evaluate with --evaluate)\n"
               "  --evaluate          only evaluate the loaded weights on the test set\n"
               "  --curve FILE        training curve, SVG (default training-curve.svg; '' to skip)\n"
               "  --train-limit N     use only the first N training images (default all)\n"
               "  --test-limit N      use only the first N test images (default all)\n"
               "  --no-progress       no progress bar (one line per epoch)\n");
  std::exit(status);
}

Options parse(int argc, char** argv) {
  Options o;
  o.progress = isatty(fileno(stdout));
  auto value = [&](int& i) -> std::string {
    if (i + 1 >= argc) throw ArgumentError(std::string(argv[i]) + " needs a value");
    return argv[++i];
  };
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--help" || a == "-h") usage(0);
    if (a == "--epochs") o.epochs = int(parseInteger(a, value(i), 0, 100000));
    else if (a == "--batch-size") o.batchSize = parseInteger(a, value(i), 1, 4096);
    else if (a == "--learning-rate") o.learningRate = float(parseReal(a, value(i), 0, 10));
    else if (a == "--device") {
      o.device = value(i);
      if (o.device != "cpu" && o.device != "cuda") throw ArgumentError("--device must be cpu or cuda, not '" + o.device + "'");
    } else if (a == "--seed") o.seed = parseInteger(a, value(i), 0, UINT32_MAX);
    else if (a == "--data") o.data = value(i);
    else if (a == "--save") o.save = value(i);
    else if (a == "--load") o.load = value(i);
    else if (a == "--curve") o.curve = value(i);
    else if (a == "--evaluate") o.evaluateOnly = true;
    else if (a == "--train-limit") o.trainLimit = parseInteger(a, value(i), 1, UINT32_MAX);
    else if (a == "--test-limit") o.testLimit = parseInteger(a, value(i), 1, UINT32_MAX);
    else if (a == "--no-progress") o.progress = false;
    else throw ArgumentError("unknown argument '" + a + "' (see --help)");
  }
  if (o.evaluateOnly && o.load.empty()) throw ArgumentError("--evaluate needs --load FILE");
  return o;
}

std::string duration(double seconds) {
  const long s = std::lround(std::max(0.0, seconds));
  char buf[32];
  if (s >= 3600)
    std::snprintf(buf, sizeof buf, "%ldh%02ldm", s / 3600, s / 60 % 60);
  else
    std::snprintf(buf, sizeof buf, "%ldm%02lds", s / 60, s % 60);
  return buf;
}

}  // namespace

int main(int argc, char** argv) {
  Options opt;
  try {
    opt = parse(argc, argv);
  } catch (const ArgumentError& e) {
    std::fprintf(stderr, "train_fashion_mnist: %s\n", e.what());
    return 2;
  }
  DataSet data;
  try {
    data = loadDataSet(opt.data, opt.trainLimit, opt.testLimit);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "train_fashion_mnist: %s\n", e.what());
    return 2;
  }
  try {
    DevicePtr device = selectDevice(opt.device);
    CommandQueuePtr queue = device->newCommandQueue();
    Network net(device, opt.seed, opt.learningRate);
    if (!opt.load.empty()) {
      try {
        net.loadWeights(opt.load);
      } catch (const FileError& e) {
        std::fprintf(stderr, "train_fashion_mnist: %s\n", e.what());
        return 2;
      }
    }
    std::printf("mpsnn %s — Fashion-MNIST on %s: %llu training, %llu test images, %llu parameters\n",
                MPSNN_VERSION_STRING, device->name().c_str(), (unsigned long long)data.train.count,
                (unsigned long long)data.test.count, (unsigned long long)net.parameterCount());
    if (opt.evaluateOnly) {
      const double acc = net.evaluate(queue, data.test, data.testLabels);
      std::printf("test accuracy %.4f\n", acc);
      return 0;
    }
    TrainingGraph training = net.trainingGraph(opt.batchSize);
    std::printf("training graph: %zu nodes, planned peak of intermediate images %.1f MiB at batch %llu\n",
                training.nodeCount, double(training.plannedPeakBytes) / (1 << 20), (unsigned long long)opt.batchSize);

    std::vector<double> curveStep, curveLoss, epochX, epochAcc;
    const uint64_t steps = data.train.count / opt.batchSize;
    if (steps == 0) throw ArgumentError("--batch-size is larger than the training set");
    std::mt19937_64 rng(opt.seed);
    std::vector<uint32_t> order(data.train.count);
    std::iota(order.begin(), order.end(), 0u);
    const auto start = std::chrono::steady_clock::now();
    uint64_t imagesDone = 0;
    const uint64_t imagesTotal = steps * opt.batchSize * uint64_t(opt.epochs);
    for (int epoch = 1; epoch <= opt.epochs; ++epoch) {
      std::shuffle(order.begin(), order.end(), rng);
      double lossSum = 0;
      uint64_t correct = 0, seen = 0;
      StepRunner runner(training, queue);
      for (uint64_t step = 0; step < steps; ++step) {
        runner.submit(data.train, data.trainLabels, order.data() + step * opt.batchSize, opt.batchSize,
                      [&](const StepResult& r) {
                        lossSum += r.lossSum;
                        correct += r.correct;
                        seen += r.images;
                        imagesDone += r.images;
                        curveStep.push_back(double(epoch - 1) + double(seen) / double(steps * opt.batchSize));
                        curveLoss.push_back(r.lossSum / double(r.images));
                      });
        if (opt.progress && (step % 8 == 7 || step + 1 == steps)) {
          const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
          const double rate = imagesDone / std::max(elapsed, 1e-9);
          const double left = double(imagesTotal - imagesDone) / std::max(rate, 1e-9);
          printProgress(epoch, opt.epochs, double(step + 1) / double(steps), seen ? lossSum / double(seen) : 0,
                        seen ? double(correct) / double(seen) : 0, rate, duration(left));
        }
      }
      runner.finish();
      const double acc = net.evaluate(queue, data.test, data.testLabels);
      const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      if (opt.progress) std::printf("\n");
      std::printf("epoch %d/%d  loss %.4f  train accuracy %.4f  test accuracy %.4f  %.0f images/s  %s elapsed\n",
                  epoch, opt.epochs, lossSum / double(std::max<uint64_t>(seen, 1)),
                  double(correct) / double(std::max<uint64_t>(seen, 1)), acc, imagesDone / std::max(elapsed, 1e-9),
                  duration(elapsed).c_str());
      std::fflush(stdout);
      epochX.push_back(epoch);
      epochAcc.push_back(acc);
      if (!opt.save.empty()) net.saveWeights(opt.save);
    }
    if (!opt.save.empty()) std::printf("weights saved to %s\n", opt.save.c_str());
    if (!opt.curve.empty() && !curveStep.empty()) {
      writeLineChartSvg(opt.curve, "Fashion-MNIST training (mpsnn)", "epoch", "training loss", "test accuracy",
                        {{"training loss (per step)", "#1f77b4", curveStep, curveLoss, false},
                         {"test accuracy", "#d62728", epochX, epochAcc, true}});
      std::printf("training curve written to %s\n", opt.curve.c_str());
    }
    return 0;
  } catch (const ArgumentError& e) {
    std::fprintf(stderr, "train_fashion_mnist: %s\n", e.what());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "train_fashion_mnist: error: %s\n", e.what());
    return 1;
  }
}
