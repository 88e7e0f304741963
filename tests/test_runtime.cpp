// Device, CommandQueue, CommandBuffer (DESIGN §1 execution model; include/mpsnn/runtime.h).
// Device-agnostic: every test runs on test::device() (MPSNN_DEVICE selects it) unless it is about
// device selection itself.
#include <atomic>
#include <cstdlib>
#include <future>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "harness.h"

namespace mpsnn {
namespace {

/// Sets (or unsets, for nullopt) MPSNN_DEVICE for the lifetime of the object, then restores it.
class ScopedDeviceEnv {
 public:
  explicit ScopedDeviceEnv(std::optional<std::string> value) {
    if (const char* old = std::getenv("MPSNN_DEVICE")) old_ = std::string(old);
    if (value)
      ::setenv("MPSNN_DEVICE", value->c_str(), 1);
    else
      ::unsetenv("MPSNN_DEVICE");
  }
  ~ScopedDeviceEnv() {
    if (old_)
      ::setenv("MPSNN_DEVICE", old_->c_str(), 1);
    else
      ::unsetenv("MPSNN_DEVICE");
  }

 private:
  std::optional<std::string> old_;
};

/// A gate that blocks a work item until opened; opens itself on destruction so that a failing
/// assertion never leaves a queue worker blocked forever.
class Gate {
 public:
  Gate() : opened_(open_.get_future().share()), startedFuture_(started_.get_future()) {}
  ~Gate() { open(); }
  /// The work item: signals that it started, then waits for open().
  std::function<void(detail::QueueContext&)> work() {
    return [this](detail::QueueContext&) {
      started_.set_value();
      opened_.wait();
    };
  }
  void waitStarted() { startedFuture_.wait(); }
  void open() {
    if (!isOpen_.exchange(true)) open_.set_value();
  }

 private:
  std::promise<void> open_, started_;
  std::shared_future<void> opened_;
  std::future<void> startedFuture_;
  std::atomic<bool> isOpen_{false};
};

/// A thread-safe append-only log.
struct Log {
  std::mutex mutex;
  std::vector<std::string> items;
  void add(std::string s) {
    std::lock_guard lock(mutex);
    items.push_back(std::move(s));
  }
  std::vector<std::string> get() {
    std::lock_guard lock(mutex);
    return items;
  }
};

// =============================================================================================
// Device

TEST(Device, CpuDeviceIsSingletonAndCpu) {
  auto a = Device::cpuDevice();
  auto b = Device::cpuDevice();
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a, b);
  EXPECT_EQ(a->kind(), DeviceKind::CPU);
  EXPECT_FALSE(a->name().empty());
}

TEST(Device, DefaultDeviceWithoutOverrideIsCudaExactlyWhenAvailable) {
  ScopedDeviceEnv env(std::nullopt);
  auto d = Device::defaultDevice();
  ASSERT_NE(d, nullptr);
  if (Device::cudaAvailable()) {
    EXPECT_EQ(d->kind(), DeviceKind::CUDA);
    EXPECT_EQ(d, Device::cudaDevice(0));
  } else {
    EXPECT_EQ(d->kind(), DeviceKind::CPU);
    EXPECT_EQ(d, Device::cpuDevice());
  }
  // The same object every time.
  EXPECT_EQ(d, Device::defaultDevice());
}

TEST(Device, OverrideCpu) {
  ScopedDeviceEnv env(std::string("cpu"));
  auto d = Device::defaultDevice();
  ASSERT_NE(d, nullptr);
  EXPECT_EQ(d->kind(), DeviceKind::CPU);
  EXPECT_EQ(d, Device::cpuDevice());
}

TEST(Device, OverrideCudaIsCudaOrThrowsDeviceError) {
  ScopedDeviceEnv env(std::string("cuda"));
  if (Device::cudaAvailable()) {
    auto d = Device::defaultDevice();
    ASSERT_NE(d, nullptr);
    EXPECT_EQ(d->kind(), DeviceKind::CUDA);
    EXPECT_EQ(d->ordinal(), 0);
    EXPECT_FALSE(d->name().empty());
  } else {
    EXPECT_THROW(Device::defaultDevice(), DeviceError);
  }
}

TEST(Device, OverrideWithAnUnknownValueIsInvalidArgument) {
  for (const char* bad : {"gpu", "cpux", "cuda0", "metal"}) {
    ScopedDeviceEnv env{std::string(bad)};
    EXPECT_THROW(Device::defaultDevice(), InvalidArgument) << "MPSNN_DEVICE=" << bad;
    try {
      Device::defaultDevice();
    } catch (const InvalidArgument& e) {
      EXPECT_NE(std::string(e.what()).find(bad), std::string::npos)
          << "message must name the value: " << e.what();
    }
  }
}

TEST(Device, CudaDeviceWithABadOrdinalThrowsDeviceError) {
  EXPECT_THROW(Device::cudaDevice(-1), DeviceError);
  EXPECT_THROW(Device::cudaDevice(100000), DeviceError);
  if (!Device::cudaAvailable()) {
    EXPECT_THROW(Device::cudaDevice(0), DeviceError);
  }
}

TEST(Device, NewCommandQueueIsBoundToTheDevice) {
  auto d = test::device();
  auto q = d->newCommandQueue();
  ASSERT_NE(q, nullptr);
  EXPECT_EQ(q->device(), d);
  auto q2 = CommandQueue::make(d);
  EXPECT_EQ(q2->device(), d);
  EXPECT_NE(q, q2);
  EXPECT_THROW(CommandQueue::make(nullptr), InvalidArgument);
}

// =============================================================================================
// CommandQueue

TEST(CommandQueue, LabelAndCommandBuffers) {
  auto q = test::device()->newCommandQueue();
  EXPECT_EQ(q->label(), "");
  q->setLabel("my queue");
  EXPECT_EQ(q->label(), "my queue");
  auto cb1 = q->commandBuffer();
  auto cb2 = q->commandBuffer();
  ASSERT_NE(cb1, nullptr);
  EXPECT_NE(cb1, cb2);
  EXPECT_EQ(cb1->commandQueue(), q);
  EXPECT_EQ(cb1->device(), test::device());
}

TEST(CommandQueue, BuffersRunInCommitOrder) {
  auto q = test::device()->newCommandQueue();
  constexpr int kCount = 24;
  std::vector<CommandBufferPtr> buffers;
  for (int i = 0; i < kCount; ++i) buffers.push_back(q->commandBuffer());
  // Commit order: a permutation that is neither creation order nor its reverse.
  std::vector<int> order;
  for (int i = 0; i < kCount; ++i) order.push_back((i * 7 + 3) % kCount);
  Log work, done;
  for (int i = 0; i < kCount; ++i) {
    buffers[size_t(i)]->encodeWork("first",
                                   [&work, i](detail::QueueContext&) { work.add(std::to_string(i) + "a"); });
    buffers[size_t(i)]->encodeWork("second",
                                   [&work, i](detail::QueueContext&) { work.add(std::to_string(i) + "b"); });
    buffers[size_t(i)]->addCompletedHandler([&done, i](CommandBuffer&) { done.add(std::to_string(i)); });
  }
  for (int i : order) buffers[size_t(i)]->commit();
  for (auto& b : buffers) b->waitUntilCompleted();
  std::vector<std::string> expectedWork, expectedDone;
  for (int i : order) {
    expectedWork.push_back(std::to_string(i) + "a");
    expectedWork.push_back(std::to_string(i) + "b");
    expectedDone.push_back(std::to_string(i));
  }
  EXPECT_EQ(work.get(), expectedWork);
  // Completed handlers run once each, after the buffer's work; waitUntilCompleted may return before
  // the handler ran, so wait for a final buffer whose completion follows all earlier handlers.
  auto last = q->commandBuffer();
  std::promise<void> lastDone;
  last->addCompletedHandler([&](CommandBuffer&) { lastDone.set_value(); });
  last->commit();
  lastDone.get_future().wait();
  EXPECT_EQ(done.get(), expectedDone);
}

TEST(CommandQueue, EnqueueReservesThePlaceInTheQueue) {
  // runtime.h: enqueue() reserves a place in the queue's order; commit implies it.
  auto q = test::device()->newCommandQueue();
  auto a = q->commandBuffer();
  auto b = q->commandBuffer();
  Log log;
  a->encodeWork("a", [&](detail::QueueContext&) { log.add("a"); });
  b->encodeWork("b", [&](detail::QueueContext&) { log.add("b"); });
  a->enqueue();
  EXPECT_EQ(a->status(), CommandBufferStatus::Enqueued);
  b->commit();
  a->commit();
  b->waitUntilCompleted();
  a->waitUntilCompleted();
  EXPECT_EQ(log.get(), (std::vector<std::string>{"a", "b"}));
}

TEST(CommandQueue, AnEnqueuedBufferThatIsDroppedDoesNotBlockTheQueue) {
  auto q = test::device()->newCommandQueue();
  {
    auto a = q->commandBuffer();
    a->enqueue();
  }  // destroyed without commit
  auto b = q->commandBuffer();
  std::atomic<bool> ran{false};
  b->encodeWork("b", [&](detail::QueueContext&) { ran = true; });
  b->commit();
  b->waitUntilCompleted();
  EXPECT_TRUE(ran.load());
}

TEST(CommandQueue, ACommandBufferKeepsItsQueueAlive) {
  // A common porting pattern: the queue is a temporary. The buffer must still run.
  auto cb = test::device()->newCommandQueue()->commandBuffer();
  ASSERT_NE(cb->commandQueue(), nullptr);
  std::atomic<int> ran{0};
  cb->encodeWork("work", [&](detail::QueueContext&) { ++ran; });
  cb->commit();
  cb->waitUntilCompleted();
  EXPECT_EQ(ran.load(), 1);
  EXPECT_EQ(cb->status(), CommandBufferStatus::Completed);
}

TEST(CommandQueue, ABufferHeldOnlyByTheQueueStillCompletes) {
  auto q = test::device()->newCommandQueue();
  std::promise<void> done;
  {
    auto cb = q->commandBuffer();
    cb->encodeWork("work", [](detail::QueueContext&) {});
    cb->addCompletedHandler([&](CommandBuffer& b) {
      EXPECT_EQ(b.status(), CommandBufferStatus::Completed);
      done.set_value();
    });
    cb->commit();
  }
  done.get_future().wait();
}

TEST(CommandQueue, QueueAndBufferDroppedBeforeCompletion) {
  // The last references to both go away on the queue's own thread once the work finished.
  for (int i = 0; i < 20; ++i) {
    std::promise<void> done;
    {
      auto q = test::device()->newCommandQueue();
      auto cb = q->commandBuffer();
      cb->encodeWork("work", [](detail::QueueContext&) {});
      cb->addCompletedHandler([&](CommandBuffer&) { done.set_value(); });
      cb->commit();
    }
    done.get_future().wait();
  }
}

TEST(CommandQueue, QueuesAreIndependent) {
  auto q1 = test::device()->newCommandQueue();
  auto q2 = test::device()->newCommandQueue();
  Gate gate;
  auto blocked = q1->commandBuffer();
  blocked->encodeWork("gate", gate.work());
  blocked->commit();
  gate.waitStarted();
  // q1 is busy; q2 still runs its work.
  auto other = q2->commandBuffer();
  std::atomic<bool> ran{false};
  other->encodeWork("other", [&](detail::QueueContext&) { ran = true; });
  other->commit();
  other->waitUntilCompleted();
  EXPECT_TRUE(ran.load());
  EXPECT_EQ(blocked->status(), CommandBufferStatus::Scheduled);
  gate.open();
  blocked->waitUntilCompleted();
  EXPECT_EQ(blocked->status(), CommandBufferStatus::Completed);
}

// =============================================================================================
// CommandBuffer

TEST(CommandBuffer, StatusTransitions) {
  auto q = test::device()->newCommandQueue();
  Gate gate;
  auto first = q->commandBuffer();
  EXPECT_EQ(first->status(), CommandBufferStatus::NotEnqueued);
  EXPECT_FALSE(first->isCommitted());
  first->encodeWork("gate", gate.work());
  first->commit();
  EXPECT_TRUE(first->isCommitted());
  gate.waitStarted();
  EXPECT_EQ(first->status(), CommandBufferStatus::Scheduled);  // running

  // The queue is busy with `first`: a second buffer stays Committed until it runs.
  auto second = q->commandBuffer();
  EXPECT_EQ(second->status(), CommandBufferStatus::NotEnqueued);
  second->enqueue();
  EXPECT_EQ(second->status(), CommandBufferStatus::Enqueued);
  EXPECT_FALSE(second->isCommitted());
  second->encodeWork("noop", [](detail::QueueContext&) {});
  second->commit();
  EXPECT_EQ(second->status(), CommandBufferStatus::Committed);
  EXPECT_TRUE(second->isCommitted());
  EXPECT_EQ(second->error(), "");

  gate.open();
  second->waitUntilCompleted();
  EXPECT_EQ(first->status(), CommandBufferStatus::Completed);
  EXPECT_EQ(second->status(), CommandBufferStatus::Completed);
  EXPECT_EQ(first->error(), "");
  EXPECT_EQ(second->error(), "");
  // Waiting again returns at once.
  EXPECT_NO_THROW(second->waitUntilCompleted());
  EXPECT_NO_THROW(second->waitUntilScheduled());
}

TEST(CommandBuffer, NothingRunsBeforeCommit) {
  auto cb = test::queue()->commandBuffer();
  std::atomic<int> ran{0};
  cb->encodeWork("work", [&](detail::QueueContext&) { ++ran; });
  // A later buffer on the same queue completes; the uncommitted one has not run.
  auto other = test::queue()->commandBuffer();
  other->commit();
  other->waitUntilCompleted();
  EXPECT_EQ(ran.load(), 0);
  EXPECT_EQ(cb->status(), CommandBufferStatus::NotEnqueued);
  cb->commit();
  cb->waitUntilCompleted();
  EXPECT_EQ(ran.load(), 1);
}

TEST(CommandBuffer, EmptyBufferCompletes) {
  auto cb = test::queue()->commandBuffer();
  cb->commit();
  cb->waitUntilCompleted();
  EXPECT_EQ(cb->status(), CommandBufferStatus::Completed);
  EXPECT_EQ(cb->error(), "");
}

TEST(CommandBuffer, WorkItemsRunInEncodeOrderAndHandlersAroundThem) {
  auto cb = test::queue()->commandBuffer();
  Log log;
  std::promise<void> completed;
  cb->addScheduledHandler([&](CommandBuffer& b) {
    EXPECT_EQ(&b, cb.get());
    log.add("scheduled");
  });
  for (int i = 0; i < 5; ++i)
    cb->encodeWork("w", [&log, i](detail::QueueContext&) { log.add("w" + std::to_string(i)); });
  cb->addCompletedHandler([&](CommandBuffer& b) {
    EXPECT_EQ(&b, cb.get());
    EXPECT_EQ(b.status(), CommandBufferStatus::Completed);
    log.add("completed1");
  });
  cb->addCompletedHandler([&](CommandBuffer&) {
    log.add("completed2");
    completed.set_value();
  });
  cb->commit();
  completed.get_future().wait();
  EXPECT_EQ(log.get(), (std::vector<std::string>{"scheduled", "w0", "w1", "w2", "w3", "w4", "completed1",
                                                 "completed2"}));
}

TEST(CommandBuffer, ErrorInsideWorkIsReported) {
  auto q = test::device()->newCommandQueue();
  auto cb = q->commandBuffer();
  std::promise<CommandBufferStatus> seenByHandler;
  std::atomic<int> before{0};
  cb->encodeWork("Before", [&](detail::QueueContext&) { ++before; });
  cb->encodeWork("FailingOp, 3x3",
                 [](detail::QueueContext&) { throw std::runtime_error("boom: the op failed 4711"); });
  cb->addCompletedHandler([&](CommandBuffer& b) { seenByHandler.set_value(b.status()); });
  cb->commit();
  try {
    cb->waitUntilCompleted();
    ADD_FAILURE() << "waitUntilCompleted must throw DeviceError";
  } catch (const DeviceError& e) {
    EXPECT_NE(std::string(e.what()).find("boom: the op failed 4711"), std::string::npos) << e.what();
  }
  EXPECT_EQ(cb->status(), CommandBufferStatus::Error);
  EXPECT_NE(cb->error().find("boom: the op failed 4711"), std::string::npos) << cb->error();
  EXPECT_NE(cb->error().find("FailingOp"), std::string::npos) << "error names the op: " << cb->error();
  EXPECT_EQ(before.load(), 1);
  // Every wait reports the failure.
  EXPECT_THROW(cb->waitUntilCompleted(), DeviceError);
  // The completed handler runs on failure too, and sees the Error status.
  EXPECT_EQ(seenByHandler.get_future().get(), CommandBufferStatus::Error);

  // The queue is not poisoned: the next buffer succeeds.
  auto next = q->commandBuffer();
  std::atomic<bool> ran{false};
  next->encodeWork("after", [&](detail::QueueContext&) { ran = true; });
  next->commit();
  EXPECT_NO_THROW(next->waitUntilCompleted());
  EXPECT_TRUE(ran.load());
  EXPECT_EQ(next->status(), CommandBufferStatus::Completed);
  EXPECT_EQ(next->error(), "");
}

TEST(CommandBuffer, LibraryExceptionsInsideWorkAreReported) {
  for (int kind = 0; kind < 2; ++kind) {
    auto cb = test::queue()->commandBuffer();
    cb->encodeWork("Op", [kind](detail::QueueContext&) {
      if (kind == 0) throw DeviceError("device says no 17");
      throw InvalidArgument("argument says no 17");
    });
    cb->commit();
    EXPECT_THROW(cb->waitUntilCompleted(), DeviceError);
    EXPECT_EQ(cb->status(), CommandBufferStatus::Error);
    EXPECT_NE(cb->error().find("says no 17"), std::string::npos) << cb->error();
  }
}

TEST(CommandBuffer, NonStandardExceptionInsideWorkIsReportedNotFatal) {
  auto cb = test::queue()->commandBuffer();
  cb->encodeWork("Weird", [](detail::QueueContext&) { throw 42; });
  cb->commit();
  EXPECT_THROW(cb->waitUntilCompleted(), DeviceError);
  EXPECT_EQ(cb->status(), CommandBufferStatus::Error);
  EXPECT_FALSE(cb->error().empty());
}

TEST(CommandBuffer, ThrowingHandlersDoNotKillTheQueue) {
  auto q = test::device()->newCommandQueue();
  auto cb = q->commandBuffer();
  std::atomic<int> ran{0};
  cb->addScheduledHandler([](CommandBuffer&) { throw std::runtime_error("scheduled handler throws"); });
  cb->encodeWork("w", [&](detail::QueueContext&) { ++ran; });
  cb->addCompletedHandler([](CommandBuffer&) { throw std::runtime_error("completed handler throws"); });
  cb->commit();
  cb->waitUntilCompleted();
  // The queue still works afterwards.
  auto next = q->commandBuffer();
  next->encodeWork("w", [&](detail::QueueContext&) { ++ran; });
  next->commit();
  next->waitUntilCompleted();
  EXPECT_EQ(next->status(), CommandBufferStatus::Completed);
  EXPECT_GE(ran.load(), 1);
}

TEST(CommandBuffer, ScheduledAndCompletedHandlersAreCalledOnce) {
  auto cb = test::queue()->commandBuffer();
  std::atomic<int> scheduled{0}, completed{0};
  std::promise<void> done;
  cb->addScheduledHandler([&](CommandBuffer&) { ++scheduled; });
  cb->addScheduledHandler([&](CommandBuffer&) { ++scheduled; });
  cb->addCompletedHandler([&](CommandBuffer&) { ++completed; });
  cb->addCompletedHandler([&](CommandBuffer&) {
    ++completed;
    done.set_value();
  });
  cb->commit();
  cb->waitUntilScheduled();
  done.get_future().wait();
  EXPECT_EQ(scheduled.load(), 2);
  EXPECT_EQ(completed.load(), 2);
}

TEST(CommandBuffer, EncodeAndHandlersAfterCommitAreInvalid) {
  auto q = test::device()->newCommandQueue();
  Gate gate;
  auto cb = q->commandBuffer();
  cb->encodeWork("gate", gate.work());
  cb->commit();
  // While committed (running) ...
  EXPECT_THROW(cb->encodeWork("late", [](detail::QueueContext&) {}), InvalidArgument);
  EXPECT_THROW(cb->addCompletedHandler([](CommandBuffer&) {}), InvalidArgument);
  EXPECT_THROW(cb->addScheduledHandler([](CommandBuffer&) {}), InvalidArgument);
  EXPECT_THROW(cb->commit(), InvalidArgument);
  gate.open();
  cb->waitUntilCompleted();
  // ... and after completion.
  EXPECT_THROW(cb->encodeWork("late", [](detail::QueueContext&) {}), InvalidArgument);
  EXPECT_THROW(cb->addCompletedHandler([](CommandBuffer&) {}), InvalidArgument);
  EXPECT_THROW(cb->addScheduledHandler([](CommandBuffer&) {}), InvalidArgument);
  EXPECT_THROW(cb->commit(), InvalidArgument);
  EXPECT_EQ(cb->status(), CommandBufferStatus::Completed);
}

TEST(CommandBuffer, CommitTwiceIsInvalid) {
  auto cb = test::queue()->commandBuffer();
  cb->commit();
  EXPECT_THROW(cb->commit(), InvalidArgument);
  cb->waitUntilCompleted();
  EXPECT_THROW(cb->commit(), InvalidArgument);
}

TEST(CommandBuffer, WaitBeforeCommitIsInvalid) {
  auto cb = test::queue()->commandBuffer();
  EXPECT_THROW(cb->waitUntilCompleted(), InvalidArgument);
  EXPECT_THROW(cb->waitUntilScheduled(), InvalidArgument);
  cb->enqueue();
  EXPECT_THROW(cb->waitUntilCompleted(), InvalidArgument);
  cb->commit();
  EXPECT_NO_THROW(cb->waitUntilCompleted());
}

TEST(CommandBuffer, Label) {
  auto cb = test::queue()->commandBuffer();
  EXPECT_EQ(cb->label(), "");
  cb->setLabel("step 3");
  EXPECT_EQ(cb->label(), "step 3");
}

TEST(CommandBuffer, HandlersMayCommitFurtherWork) {
  auto q = test::device()->newCommandQueue();
  auto first = q->commandBuffer();
  auto second = q->commandBuffer();
  std::atomic<bool> ran{false};
  second->encodeWork("second", [&](detail::QueueContext&) { ran = true; });
  first->addCompletedHandler([second](CommandBuffer&) { second->commit(); });
  first->commit();
  first->waitUntilCompleted();
  // `second` is committed by the handler on the queue's thread; wait until that happened.
  while (!second->isCommitted()) std::this_thread::yield();
  second->waitUntilCompleted();
  EXPECT_TRUE(ran.load());
}

}  // namespace
}  // namespace mpsnn
