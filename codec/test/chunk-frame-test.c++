// ChunkFramePool: the frames it builds are valid one-segment Chunk frames carrying exactly what
// `fill` wrote, their size is what chunkFrameBytes() says, a freed frame's buffer is lent again,
// and nothing an earlier frame left in a reused buffer reaches the wire (header and padding are
// zeroed; a fill that fails makes no frame).
#include <shoal/codec/chunk-frame.h>

#include <string.h>

#include <gtest/gtest.h>
#include <shoal/codec/frame.h>

namespace shoal::codec {
namespace {

InboundFrame received(capnp::MessageBuilder& message) {
  auto result = decodeFrame(encodeFrame(message));
  KJ_IF_MAYBE (failure, result.tryGet<Failure>()) {
    KJ_FAIL_ASSERT("our own frame was refused", failure->message);
  }
  return kj::mv(result.get<InboundFrame>());
}

FrameBuilder build(ChunkFramePool& pool, uint64_t id, uint32_t length, uint8_t seed) {
  auto frame = pool.build(id, length, [&](kj::ArrayPtr<kj::byte> data) {
    EXPECT_EQ(data.size(), length);
    for (size_t i = 0; i < data.size(); ++i)
      data[i] = kj::byte(seed + i * 31);
    return true;
  });
  return kj::mv(KJ_ASSERT_NONNULL(frame));
}

TEST(ChunkFrame, CarriesWhatFillWroteInOneSegment) {
  auto pool = kj::atomicRefcounted<ChunkFramePool>();
  for (uint32_t length : {0u, 1u, 7u, 8u, 9u, 4095u, 65536u, 1000003u}) {
    auto frame = build(*pool, 42, length, 3);
    EXPECT_EQ(frame->getSegmentsForOutput().size(), 1u) << length;
    EXPECT_EQ(encodedSize(*frame), chunkFrameBytes(length)) << length;
    auto in = received(*frame);
    ASSERT_TRUE(in.root().isChunk());
    auto chunk = in.root().getChunk();
    EXPECT_EQ(chunk.getId(), 42u);
    auto data = chunk.getData();
    ASSERT_EQ(data.size(), length);
    for (size_t i = 0; i < length; ++i)
      ASSERT_EQ(data[i], kj::byte(3 + i * 31)) << i;
  }
}

TEST(ChunkFrame, AFreedBufferIsLentAgainWithNothingOfTheOldFrameOnTheWire) {
  auto pool = kj::atomicRefcounted<ChunkFramePool>();
  const kj::byte* first;
  {
    auto frame = build(*pool, 1, 100000, 0xff);  // every byte non-zero where it matters
    first = frame->getSegmentsForOutput()[0].asBytes().begin();
  }
  EXPECT_EQ(pool->pooled(), 1u);
  auto frame = build(*pool, 2, 99997, 0x10);  // same size class, 3 bytes of padding now
  EXPECT_EQ(frame->getSegmentsForOutput()[0].asBytes().begin(), first);  // the same buffer
  EXPECT_EQ(pool->pooled(), 0u);
  auto bytes = encodeFrame(*frame);
  // The padding after the data is zero, whatever the old frame had there.
  for (size_t i = bytes.size() - 3; i < bytes.size(); ++i)
    EXPECT_EQ(bytes[i], 0) << i;
  auto again = build(*pool, 2, 99997, 0x10);  // a new buffer (the first one is in use), same frame
  EXPECT_EQ(encodeFrame(*again).slice(16, bytes.size()), bytes.slice(16, bytes.size()));
}

TEST(ChunkFrame, AFailedFillMakesNoFrameAndReturnsTheBuffer) {
  auto pool = kj::atomicRefcounted<ChunkFramePool>();
  auto none = pool->build(5, 4096, [](kj::ArrayPtr<kj::byte>) { return false; });
  EXPECT_EQ(none, nullptr);
  EXPECT_EQ(pool->pooled(), 1u);
}

TEST(ChunkFrame, ThePoolKeepsAtMostItsBytes) {
  // The smallest buffer holds a chunk of 10 bytes; one of 1 MiB is about 32 of them. A bound of
  // two small buffers keeps two small ones, then no big one: bytes are capped, not buffers.
  size_t small = 0;
  {
    auto probe = kj::atomicRefcounted<ChunkFramePool>();
    build(*probe, 1, 10, 1);
    small = probe->pooledBytes();
  }
  ASSERT_GT(small, 0u);
  auto pool = kj::atomicRefcounted<ChunkFramePool>(2 * small);
  {
    auto a = build(*pool, 1, 10, 1);
    auto b = build(*pool, 2, 10, 1);
    auto c = build(*pool, 3, 10, 1);
  }
  EXPECT_EQ(pool->pooled(), 2u);
  EXPECT_EQ(pool->pooledBytes(), 2 * small);
  auto big = kj::atomicRefcounted<ChunkFramePool>(2 * small);
  { auto frame = build(*big, 4, 1 << 20, 1); }
  EXPECT_EQ(big->pooled(), 0u);  // one buffer above the cap is not kept
  EXPECT_EQ(big->pooledBytes(), 0u);
  // Taking a kept buffer gives its bytes back to the budget.
  auto again = build(*pool, 5, 10, 1);
  EXPECT_EQ(pool->pooled(), 1u);
  EXPECT_EQ(pool->pooledBytes(), small);
}

TEST(ChunkFrame, AFrameOutlivesItsPool) {
  FrameBuilder frame;
  {
    auto pool = kj::atomicRefcounted<ChunkFramePool>();
    frame = build(*pool, 9, 5000, 7);
  }
  EXPECT_EQ(received(*frame).root().getChunk().getData().size(), 5000u);
}

}  // namespace
}  // namespace shoal::codec
