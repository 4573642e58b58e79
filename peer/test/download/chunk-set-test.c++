// ChunkSet: membership, population, iteration and the serialised form a resume file stores.
#include <shoal/peer/download/chunk-set.h>

#include <gtest/gtest.h>
#include <kj/debug.h>
#include <kj/vector.h>

namespace shoal::peer::download {
namespace {

TEST(ChunkSet, AddRemoveAndCount) {
  ChunkSet set(10);
  EXPECT_TRUE(set.isEmpty());
  EXPECT_TRUE(set.add(3));
  EXPECT_FALSE(set.add(3));
  EXPECT_TRUE(set.add(9));
  EXPECT_EQ(set.count(), 2u);
  EXPECT_TRUE(set.has(3));
  EXPECT_FALSE(set.has(4));
  EXPECT_TRUE(set.remove(3));
  EXPECT_FALSE(set.remove(3));
  EXPECT_EQ(set.count(), 1u);
}

TEST(ChunkSet, FullSetsHaveNoBitsPastTheEnd) {
  ChunkSet full(11, true);
  EXPECT_TRUE(full.isFull());
  EXPECT_EQ(full.count(), 11u);
  ASSERT_EQ(full.bytes().size(), 2u);
  EXPECT_EQ(full.bytes()[1], 0x07);
  ChunkSet empty(0, true);
  EXPECT_TRUE(empty.isFull());
  EXPECT_TRUE(empty.isEmpty());
}

TEST(ChunkSet, NextWalksHeldChunksInOrder) {
  ChunkSet set(100);
  for (uint64_t c : {0, 7, 8, 63, 64, 99})
    set.add(c);
  kj::Vector<uint64_t> seen;
  for (auto c = set.next(0); c != nullptr; c = set.next(KJ_ASSERT_NONNULL(c) + 1))
    seen.add(KJ_ASSERT_NONNULL(c));
  EXPECT_EQ(seen.size(), 6u);
  EXPECT_EQ(seen[1], 7u);
  EXPECT_EQ(seen[5], 99u);
  EXPECT_EQ(KJ_ASSERT_NONNULL(set.next(9)), 63u);
  EXPECT_TRUE(set.next(100) == nullptr);
}

TEST(ChunkSet, SerialisedFormRoundTripsAndRejectsStrayBits) {
  ChunkSet set(13);
  set.add(0);
  set.add(12);
  auto copy = KJ_ASSERT_NONNULL(ChunkSet::fromBytes(13, set.bytes()));
  EXPECT_TRUE(copy == set);
  EXPECT_EQ(copy.count(), 2u);
  kj::byte stray[2] = {0x01, 0x20};  // bit 13 is past the end
  EXPECT_TRUE(ChunkSet::fromBytes(13, stray) == nullptr);
  EXPECT_TRUE(ChunkSet::fromBytes(17, set.bytes()) == nullptr);  // wrong length
}

}  // namespace
}  // namespace shoal::peer::download
