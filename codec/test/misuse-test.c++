// Misuse by our own code is caught where it happens, never turned into a wrong digest, a page too
// large or a corrupt buffer: manifest and library digest preconditions, paging at a frame limit too
// small, taking an assembly twice, and driving FrameDecoder or FrameWriter out of order.
#include <shoal/codec/manifest.h>

#include <gtest/gtest.h>
#include <kj/async-io.h>
#include <kj/async.h>
#include <shoal/codec/frame-writer.h>
#include <shoal/codec/frame.h>

#include "samples.h"

namespace shoal::codec {
namespace {

Digest seeded(uint8_t seed) {
  return sha256(kj::arrayPtr(&seed, 1));
}

// "a" (5000 bytes, two chunks) and "b" (empty) at 4 KiB chunks.
Manifest sample() {
  return makeManifest(kj::str("item"), 4096,
                      kj::arr(FileInfo{kj::str("a"), 5000, 0644}, FileInfo{kj::str("b"), 0, 0600}),
                      kj::heapArray<Digest>({seeded(1), seeded(2)}));
}

TEST(ManifestMisuse, CloneIsADeepEqualCopy) {
  auto original = sample();
  auto copy = original.clone();
  EXPECT_EQ(copy.itemId, "item");
  EXPECT_EQ(copy.chunkSize, 4096u);
  EXPECT_EQ(copy.digest, original.digest);
  EXPECT_EQ(copy.totalBytes, 5000u);
  EXPECT_EQ(copy.chunks.asPtr(), original.chunks.asPtr());
  EXPECT_EQ(copy.firstChunk.asPtr(), original.firstChunk.asPtr());
  ASSERT_EQ(copy.files.size(), 2u);
  EXPECT_EQ(copy.files[1].path, "b");
  EXPECT_EQ(copy.files[1].mode, 0600u);
  // Nothing shared: changing the copy leaves the original as it was.
  EXPECT_NE(copy.files[0].path.begin(), original.files[0].path.begin());
  EXPECT_NE(copy.chunks.begin(), original.chunks.begin());
  copy.files[0].path = kj::str("changed");
  copy.chunks[0] = seeded(9);
  copy.firstChunk[1] = 7;
  EXPECT_EQ(original.files[0].path, "a");
  EXPECT_EQ(original.chunks[0], seeded(1));
  EXPECT_EQ(original.firstChunk[1], 2u);
}

TEST(ManifestMisuse, ChunkQueriesOutsideTheManifestThrow) {
  auto m = sample();
  EXPECT_EQ(m.chunkRange(1).count, 0u);
  EXPECT_ANY_THROW(m.chunkRange(2));  // no third file
  EXPECT_EQ(m.chunkLength(0, 1), 904u);
  EXPECT_ANY_THROW(m.chunkLength(0, 2));  // "a" has two chunks
  EXPECT_ANY_THROW(m.chunkLength(1, 0));  // "b" has none
  EXPECT_ANY_THROW(chunkCountFor(100, 0));
}

TEST(ManifestMisuse, PartsThatDoNotAgreeAreRefused) {
  auto files = [] {
    return kj::arr(FileInfo{kj::str("a"), 5000, 0644}, FileInfo{kj::str("b"), 10, 0644});
  };
  // Two chunks for three needed, four for three: neither gives a digest.
  EXPECT_ANY_THROW(manifestDigest(4096, files(), kj::arr(seeded(1), seeded(2))));
  EXPECT_ANY_THROW(
      manifestDigest(4096, files(), kj::arr(seeded(1), seeded(2), seeded(3), seeded(4))));
  EXPECT_ANY_THROW(makeManifest(kj::str("x"), 4096, files(), kj::arr(seeded(1))));
  // Files out of order.
  EXPECT_ANY_THROW(makeManifest(
      kj::str("x"), 4096, kj::arr(FileInfo{kj::str("b"), 1, 0644}, FileInfo{kj::str("a"), 1, 0644}),
      kj::arr(seeded(1), seeded(2))));
  EXPECT_NO_THROW(
      makeManifest(kj::str("x"), 4096, files(), kj::arr(seeded(1), seeded(2), seeded(3))));
}

ItemInfo itemNamed(kj::StringPtr id) {
  return {kj::str(id), kj::str(id), 1, 1, seeded(1)};
}

TEST(ManifestMisuse, LibraryHasherHoldsToItsAnnouncedCountAndOrder) {
  {
    LibraryHasher hasher(1);
    hasher.add(itemNamed("a"));
    EXPECT_ANY_THROW(hasher.add(itemNamed("b")));  // more than announced
  }
  {
    LibraryHasher hasher(2);
    hasher.add(itemNamed("b"));
    EXPECT_ANY_THROW(hasher.add(itemNamed("a")));  // not ascending
  }
  {
    LibraryHasher hasher(2);
    hasher.add(itemNamed("a"));
    EXPECT_ANY_THROW(hasher.add(itemNamed("a")));  // repeated
  }
  {
    LibraryHasher hasher(2);
    hasher.add(itemNamed("a"));
    EXPECT_ANY_THROW(hasher.finish());  // fewer than announced
  }
  LibraryHasher hasher(2);
  hasher.add(itemNamed("a"));
  hasher.add(itemNamed("b"));
  auto items = kj::arr(itemNamed("a"), itemNamed("b"));
  EXPECT_EQ(hasher.finish(), libraryDigest(items));
}

TEST(ManifestMisuse, PagingRefusesAFrameLimitTooSmall) {
  auto m = sample();
  EXPECT_ANY_THROW(manifestPages(1, m, 128));  // not even a header fits
  // The header fits, but one file entry does not: refused rather than sent oversize.
  auto longPath = kj::str(kj::repeat('p', 250), "/", kj::repeat('q', 250), "/",
                          kj::repeat('r', 250), "/", kj::repeat('s', 250));
  auto wide =
      makeManifest(kj::str("item"), 4096, kj::arr(FileInfo{kj::mv(longPath), 0, 0644}), nullptr);
  EXPECT_ANY_THROW(manifestPages(1, wide, 512));
  EXPECT_EQ(manifestPages(1, wide, 2048).size(), 1u);
}

TEST(ManifestMisuse, TakeOnlyOnceAndOnlyWhenComplete) {
  auto m = sample();
  auto pages = manifestPages(3, m, 16 << 20);
  auto result = decodeFrame(encodeFrame(*pages[0]));
  ASSERT_TRUE(result.is<InboundFrame>());
  ManifestAssembler assembler("item");
  EXPECT_ANY_THROW(assembler.take());  // nothing fed yet
  EXPECT_EQ(assembler.feed(result.get<InboundFrame>().root().getManifest()), nullptr);
  EXPECT_EQ(assembler.take().digest, m.digest);
  EXPECT_ANY_THROW(assembler.take());  // already taken
}

TEST(FramingMisuse, DecoderRefusesMoreSegmentsThanCapnProtoAllows) {
  Limits limits;
  limits.maxSegments = 513;
  EXPECT_ANY_THROW(FrameDecoder{limits});
  limits.maxSegments = 512;
  EXPECT_NO_THROW(FrameDecoder{limits});
}

TEST(FramingMisuse, DecoderBuffersAreNeverOverrun) {
  auto ping = encodeFrame(*samples::make(wire::Frame::PING));
  {
    // Staging filled with whole frames that were never taken: writable() has no room to give.
    FrameDecoder decoder{Limits(), 4096};
    auto space = decoder.writable();
    ASSERT_EQ(space.size(), 4096u);
    // Pings back to back, the last one cut by the end of the buffer.
    for (size_t at = 0; at < space.size(); ++at)
      space[at] = ping[at % ping.size()];
    decoder.commit(space.size());
    EXPECT_ANY_THROW(decoder.writable());
    // Taking the frames makes room again.
    size_t taken = 0;
    for (;;) {
      auto next = decoder.next();
      KJ_IF_MAYBE (result, next) {
        ASSERT_TRUE(result->is<InboundFrame>());
        ++taken;
      } else {
        break;
      }
    }
    EXPECT_EQ(taken, 4096 / ping.size());
    EXPECT_GT(decoder.writable().size(), 0u);
  }
  {
    // More committed than writable() offered.
    FrameDecoder decoder{Limits(), 4096};
    size_t room = decoder.writable().size();
    EXPECT_ANY_THROW(decoder.commit(room + 1));
  }
  {
    // The same inside a large frame's own buffer.
    auto big = encodeFrame(*samples::chunk(1, 100000));
    FrameDecoder decoder{Limits(), 4096};
    auto space = decoder.writable();
    memcpy(space.begin(), big.begin(), space.size());
    decoder.commit(space.size());
    EXPECT_EQ(decoder.next(), nullptr);  // the body now goes to its own buffer
    size_t room = decoder.writable().size();
    EXPECT_EQ(room, big.size() - 4096);
    EXPECT_ANY_THROW(decoder.commit(room + 1));
  }
}

TEST(FramingMisuse, NoFrameIsQueuedAfterClose) {
  kj::EventLoop loop;
  kj::WaitScope waitScope(loop);
  auto pipe = kj::newOneWayPipe();
  FrameWriter writer(*pipe.out, 16 << 20);
  EXPECT_EQ(writer.queue(samples::make(wire::Frame::PING)), nullptr);
  writer.close();
  EXPECT_TRUE(writer.isClosed());
  EXPECT_ANY_THROW(writer.queue(samples::make(wire::Frame::PING)));
  EXPECT_EQ(writer.queuedBytes(), encodeFrame(*samples::make(wire::Frame::PING)).size());
}

}  // namespace
}  // namespace shoal::codec
