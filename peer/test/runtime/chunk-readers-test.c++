// ChunkReaders: GetChunk's disk work on reader threads, its answers back on the event loop; the
// cache of open files (one open per file, the least recently used evicted, a stale file dropped);
// reads still queued when the readers go.
#include <shoal/peer/runtime/chunk-readers.h>

#include <gtest/gtest.h>

#include "request-server-fixture.h"

namespace shoal::peer {
namespace {

class ChunkReadersTest : public RequestServerTest {
 protected:
  ~ChunkReadersTest() noexcept override {}

  ChunkRead check(uint64_t id, kj::StringPtr path, uint64_t offset, uint32_t length) {
    auto request = gameChunk(id, path, offset, length);
    auto checked = server.checkChunk(id, request.root().getGetChunk(), peerWithFrames(kBigFrames));
    return kj::mv(KJ_ASSERT_NONNULL(checked.tryGet<ChunkRead>(), "refused"));
  }

  // The chunk's bytes, or the Error's code as a failure.
  kj::Array<kj::byte> dataOf(ChunkAnswer& answer) {
    KJ_ASSERT(answer.frames.size() == 1);
    auto root = codec::rootOf(*answer.frames[0]);
    if (!root.isChunk()) {
      ADD_FAILURE() << "not a chunk: " << kj::str(root.getError().getMessage()).cStr();
      return nullptr;
    }
    return kj::heapArray(root.getChunk().getData().asBytes());
  }

  kj::EventLoop loop;
  kj::WaitScope waitScope{loop};
};

TEST_F(ChunkReadersTest, EveryChunkIsReadOffTheLoopFromOneOpenFile) {
  ChunkReaders readers(tree.fd(), ChunkReaderLimits{4, 8});
  auto& m = item("game")->manifest;
  uint32_t index = gameFile("data/big.bin");
  kj::Vector<kj::Promise<ChunkAnswer>> reads;
  for (uint64_t k = 0; k < m.chunksOf(index).size(); ++k)
    reads.add(
        readers.read(check(k + 1, "data/big.bin", m.chunkOffset(k), m.chunkLength(index, k))));
  auto answers = kj::joinPromises(reads.releaseAsArray()).wait(waitScope);
  uint64_t served = 0;
  for (auto k : kj::indices(answers)) {
    auto offset = m.chunkOffset(k);
    EXPECT_EQ(dataOf(answers[k]).asPtr(), big.slice(offset, offset + m.chunkLength(index, k)));
    EXPECT_FALSE(answers[k].stale);
    served += answers[k].served;
  }
  EXPECT_EQ(served, big.size());
  // Readers that missed the cache at once may each have opened it; after that, none opens again.
  auto opens = readers.opens();
  EXPECT_LE(opens, 4u);
  readers.read(check(99, "data/big.bin", 0, 4096)).wait(waitScope);
  EXPECT_EQ(readers.opens(), opens);
}

TEST_F(ChunkReadersTest, AFileChangedSinceHashedIsStaleAndLeavesTheCache) {
  ChunkReaders readers(tree.fd(), ChunkReaderLimits{1, 8});
  auto first = readers.read(check(1, "data/big.bin", 0, 4096)).wait(waitScope);
  EXPECT_FALSE(first.stale);
  EXPECT_EQ(readers.opens(), 1u);
  tree.write("game/data/big.bin", pattern(100001, 9));  // rewritten: another size
  auto second = readers.read(check(2, "data/big.bin", 0, 4096)).wait(waitScope);
  EXPECT_TRUE(second.stale);
  EXPECT_EQ(second.served, 0u);
  EXPECT_EQ(codec::rootOf(*second.frames[0]).getError().getCode(), wire::ErrorCode::STALE);
  // Dropped from the cache: the next read opens the file again (and finds it changed again).
  auto third = readers.read(check(3, "data/big.bin", 0, 4096)).wait(waitScope);
  EXPECT_TRUE(third.stale);
  EXPECT_EQ(readers.opens(), 2u);
}

TEST_F(ChunkReadersTest, TheLeastRecentlyUsedFileIsClosedFirst) {
  ChunkReaders readers(tree.fd(), ChunkReaderLimits{1, 1});
  readers.read(check(1, "data/big.bin", 0, 10)).wait(waitScope);
  readers.read(check(2, "readme.txt", 0, 10)).wait(waitScope);  // evicts big.bin
  readers.read(check(3, "readme.txt", 0, 4)).wait(waitScope);   // cached
  EXPECT_EQ(readers.opens(), 2u);
  auto again = readers.read(check(4, "data/big.bin", 0, 10)).wait(waitScope);
  EXPECT_EQ(dataOf(again).asPtr(), big.slice(0, 10));
  EXPECT_EQ(readers.opens(), 3u);
}

TEST_F(ChunkReadersTest, ReadsAskedInOneTurnShareJobsUpToTheBatchBytes) {
  ChunkReaderLimits limits{2, 8};
  limits.maxBatchBytes = 4 * 4096;
  ChunkReaders readers(tree.fd(), limits);
  kj::Vector<kj::Promise<ChunkAnswer>> reads;
  for (uint64_t i = 0; i < 10; ++i)
    reads.add(readers.read(check(i + 1, "data/big.bin", i * 4096, 4096)));
  EXPECT_EQ(readers.underWay(), 10u);
  auto answers = kj::joinPromises(reads.releaseAsArray()).wait(waitScope);
  EXPECT_EQ(readers.jobs(), 3u);  // 4 + 4 + 2 reads
  EXPECT_EQ(readers.underWay(), 0u);
  for (auto i : kj::indices(answers))
    EXPECT_EQ(dataOf(answers[i]).asPtr(), big.slice(i * 4096, (i + 1) * 4096));
  // A later turn: a job of its own.
  readers.read(check(20, "data/big.bin", 0, 4096)).wait(waitScope);
  EXPECT_EQ(readers.jobs(), 4u);
}

TEST_F(ChunkReadersTest, AReadBeyondMaxQueuedReadsIsAnsweredBusyAtOnce) {
  ChunkReaderLimits limits{1, 8};
  limits.maxQueuedReads = 3;
  ChunkReaders readers(tree.fd(), limits);
  kj::Vector<kj::Promise<ChunkAnswer>> reads;
  for (uint64_t i = 0; i < 3; ++i)
    reads.add(readers.read(check(i + 1, "data/big.bin", 0, 4096)));
  auto refused = readers.read(check(4, "data/big.bin", 0, 4096));
  ASSERT_TRUE(refused.poll(waitScope));  // settled without any reader
  auto busy = refused.wait(waitScope);
  ASSERT_EQ(busy.frames.size(), 1u);
  auto root = codec::rootOf(*busy.frames[0]);
  ASSERT_TRUE(root.isError());
  EXPECT_EQ(root.getError().getCode(), wire::ErrorCode::BUSY);
  EXPECT_EQ(root.getError().getId(), 4u);
  EXPECT_EQ(busy.served, 0u);
  for (auto& answer : kj::joinPromises(reads.releaseAsArray()).wait(waitScope))
    EXPECT_EQ(dataOf(answer).size(), 4096u);
  // Answered: room again.
  auto last = readers.read(check(5, "data/big.bin", 0, 4096)).wait(waitScope);
  EXPECT_EQ(dataOf(last).size(), 4096u);
}

TEST_F(ChunkReadersTest, ReadsQueuedWhenTheReadersGoEndEitherWay) {
  kj::Vector<kj::Promise<bool>> reads;
  {
    ChunkReaders readers(tree.fd(), ChunkReaderLimits{1, 8});
    for (uint64_t i = 0; i < 64; ++i) {
      reads.add(readers.read(check(i + 1, "data/big.bin", 0, 4096))
                    .then([](ChunkAnswer) { return true; }, [](kj::Exception&&) { return false; }));
    }
  }  // joined here, with most reads still queued
  auto ended = kj::joinPromises(reads.releaseAsArray()).wait(waitScope);
  EXPECT_EQ(ended.size(), 64u);  // every promise settled: answered, or rejected, none left hanging
}

}  // namespace
}  // namespace shoal::peer
