// State, StateBatch helpers and the gradient-state base classes (spec 10 §10.1; include/mpsnn/state.h).
#include <vector>

#include "harness.h"

namespace mpsnn {
namespace {

TEST(State, PersistentBufferStateAllocatesLazily) {
  auto s = State::make(test::device(), 64);
  EXPECT_FALSE(s->isTemporary());
  EXPECT_EQ(s->readCount(), 0u);
  EXPECT_EQ(s->resourceCount(), 1u);
  EXPECT_EQ(s->resourceTypeAt(0), StateResourceType::Buffer);
  EXPECT_EQ(s->bufferSizeAt(0), 64u);
  EXPECT_EQ(s->textureInfoAt(0).width, 0u);
  EXPECT_EQ(s->resourceAt(0, false), nullptr);
  auto b = s->resourceAt(0, true);
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(b->length(), 64u);
  EXPECT_EQ(s->resourceAt(0, false), b);
  EXPECT_EQ(s->resourceSize(), 64u);
  EXPECT_THROW(s->resourceAt(1, true), InvalidArgument);
  s->setReadCount(5);  // persistent states ignore read counts
  EXPECT_EQ(s->readCount(), 0u);
}

TEST(State, ResourceListOrdersTexturesFirst) {
  StateResourceList list;
  list.appendBuffer(12);
  list.appendTexture({3, 2, 1, 1, 4, ImageFeatureChannelFormat::Float16});
  auto s = State::make(test::device(), list);
  ASSERT_EQ(s->resourceCount(), 2u);
  EXPECT_EQ(s->resourceTypeAt(0), StateResourceType::Texture);
  EXPECT_EQ(s->resourceTypeAt(1), StateResourceType::Buffer);
  EXPECT_EQ(s->textureInfoAt(0).width, 3u);
  EXPECT_EQ(s->bufferSizeAt(0), 0u);
  EXPECT_EQ(s->bufferSizeAt(1), 12u);
  EXPECT_EQ(s->resourceSize(), 3u * 2 * 4 * 2 + 12);
  EXPECT_EQ(s->resourceTypeAt(7), StateResourceType::None);
}

TEST(State, GivenResourcesAndNullSlots) {
  auto b = Buffer::make(test::device(), 8);
  auto s = State::make(std::vector<ResourcePtr>{b, nullptr});
  EXPECT_EQ(s->resourceCount(), 2u);
  EXPECT_EQ(s->resourceAt(0, false), b);
  EXPECT_EQ(s->resourceTypeAt(1), StateResourceType::None);
  EXPECT_EQ(s->resourceAt(1, true), nullptr);
}

TEST(State, TemporaryReadCountRules) {
  auto cb = test::queue()->commandBuffer();
  auto s = State::temporary(cb, 16);
  EXPECT_TRUE(s->isTemporary());
  EXPECT_EQ(s->readCount(), 1u);
  s->setReadCount(2);
  s->consumeRead(*cb);
  EXPECT_EQ(s->readCount(), 1u);
  EXPECT_NE(s->resourceAt(0, true), nullptr);
  s->consumeRead(*cb);
  EXPECT_EQ(s->readCount(), 0u);
  EXPECT_THROW(s->resourceAt(0, true), InvalidArgument);  // released
  EXPECT_THROW(s->consumeRead(*cb), InvalidArgument);
  EXPECT_THROW(s->setReadCount(3), InvalidArgument);
  EXPECT_THROW(s->checkUsable(*cb, "test"), InvalidArgument);
  auto other = test::queue()->commandBuffer();
  auto t = State::temporary(cb, 16);
  EXPECT_THROW(t->checkUsable(*other, "test"), InvalidArgument);
  t->setReadCount(0);  // releases now
  EXPECT_THROW(t->resourceAt(0, true), InvalidArgument);
  cb->commit();
  cb->waitUntilCompleted();
  EXPECT_THROW(State::temporary(cb, 16), InvalidArgument);  // committed
}

TEST(State, TemporaryWithoutResourcesIsNotTemporary) {
  auto cb = test::queue()->commandBuffer();
  EXPECT_FALSE(State::temporary(cb)->isTemporary());
  EXPECT_THROW(State::temporary(nullptr, 4), InvalidArgument);
  EXPECT_THROW(State::make(nullptr, 4), InvalidArgument);
  EXPECT_THROW(State::make(test::device(), 0), InvalidArgument);
}

TEST(State, BatchHelpersCountDistinctObjects) {
  auto cb = test::queue()->commandBuffer();
  auto a = State::temporary(cb, 4), b = State::temporary(cb, 8);
  auto p = State::make(test::device(), 32);
  StateBatch batch{a, a, b, p, a};
  EXPECT_EQ(stateBatchIncrementReadCount(&batch, 2), 3u);
  EXPECT_EQ(a->readCount(), 3u);
  EXPECT_EQ(b->readCount(), 3u);
  EXPECT_EQ(p->readCount(), 0u);
  EXPECT_EQ(stateBatchIncrementReadCount(nullptr, 1), 0u);
  EXPECT_EQ(stateBatchResourceSize(&batch), 4u + 8 + 32);
  stateBatchSynchronize(batch, cb);
}

TEST(NNGradientState, TemporaryAndPersistentForms) {
  auto cb = test::queue()->commandBuffer();
  auto t = NNGradientState::make(test::device(), cb);
  EXPECT_TRUE(t->isTemporary());
  EXPECT_EQ(t->readCount(), 1u);
  EXPECT_FALSE(t->forwardRecord().recorded);
  auto p = NNBinaryGradientState::make(test::device());
  EXPECT_FALSE(p->isTemporary());
  auto m = NNMultiaryGradientState::make(test::device());
  EXPECT_TRUE(m->sources().empty());
  EXPECT_THROW(NNGradientState::make(nullptr), InvalidArgument);
}

TEST(NNGradientState, ForwardKernelsMakeAndFillThem) {
  auto cb = test::queue()->commandBuffer();
  auto x = Image::make(test::device(), ImageDescriptor::make(ImageFeatureChannelFormat::Float32, 5, 4, 3, 1));
  auto relu = CNNNeuron::make(test::device(), NNNeuronDescriptor::make(CNNNeuronType::ReLU));
  relu->setDestinationImageAllocator(Image::defaultAllocator());
  StateBatch states;
  auto x2 = Image::make(test::device(), x->descriptor());
  ImageBatch out = relu->encodeBatch(cb, {x, x2}, &states, true);
  ASSERT_EQ(states.size(), 2u);
  EXPECT_NE(states[0], states[1]);  // not reused across the batch
  for (const auto& s : states) {
    auto gs = std::dynamic_pointer_cast<NNGradientState>(s);
    ASSERT_NE(gs, nullptr);
    EXPECT_TRUE(gs->isTemporary());
    EXPECT_EQ(gs->readCount(), 1u);  // writing does not consume a read
    EXPECT_TRUE(gs->forwardRecord().recorded);
    EXPECT_EQ(gs->forwardRecord().primary.width, 5u);
  }
  // A state of the wrong type is rejected before anything is written.
  auto dst = Image::make(test::device(), x->descriptor());
  EXPECT_THROW(relu->encode(cb, x, State::make(test::device(), 4), dst), InvalidArgument);
  EXPECT_THROW(relu->encode(cb, x, StatePtr{}, dst), InvalidArgument);
  cb->commit();
  cb->waitUntilCompleted();
}

}  // namespace
}  // namespace mpsnn
