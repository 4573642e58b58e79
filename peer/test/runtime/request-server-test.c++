// RequestServer::serve() driven directly, without sockets: GetLibrary, GetManifest, every GetChunk
// refusal in the spec's order, and served bytes. Files changed since hashed, failures on our own
// side and local limits: request-server-stale-test.c++.
#include <shoal/peer/runtime/request-server.h>

#include <gtest/gtest.h>

#include "request-server-fixture.h"

namespace shoal::peer {
namespace {

// --- GetLibrary ------------------------------------------------------------------------------

TEST(RequestServerUnpublished, GetLibraryIsUnavailableUntilTheFirstScan) {
  TempTree tree;
  library::Library lib(kEpoch);
  RequestServer server(lib, tree.fd());
  Requester requester(server);
  auto r = requester.refusal(3, getLibrary(3, 0, 0));
  EXPECT_EQ(r.code, wire::ErrorCode::UNAVAILABLE);
  // Once something is published, even an empty library, it is answered.
  lib.update(nullptr);
  auto answer = requester.ask(4, getLibrary(4, 0, 0));
  ASSERT_EQ(answer.size(), 1u);
  ASSERT_EQ(answer[0].kind(), wire::Frame::LIBRARY_SNAPSHOT);
  EXPECT_EQ(answer[0].root().getLibrarySnapshot().getItems().size(), 0u);
  EXPECT_EQ(answer[0].root().getLibrarySnapshot().getSummary().getRev(), 1u);
}

TEST_F(RequestServerTest, GetLibrarySnapshotListsEveryItem) {
  // A requester holding nothing, and one holding another epoch, both get the whole list.
  for (uint64_t epoch : {uint64_t(0), kEpoch + 1}) {
    auto answer = requester.ask(1, getLibrary(1, epoch, epoch == 0 ? 0 : 1));
    ASSERT_EQ(answer.size(), 1u);
    ASSERT_EQ(answer[0].kind(), wire::Frame::LIBRARY_SNAPSHOT);
    auto s = answer[0].root().getLibrarySnapshot();
    EXPECT_TRUE(s.getLast());
    EXPECT_EQ(codec::Summary::fromWire(s.getSummary()), lib.summary());
    auto items = s.getItems();
    ASSERT_EQ(items.size(), 2u);
    EXPECT_EQ(codec::itemInfoOf(items[0]), item("game")->info);
    EXPECT_EQ(codec::itemInfoOf(items[1]), item("tools")->info);
  }
}

TEST_F(RequestServerTest, GetLibraryDeltaSinceAnEarlierRevision) {
  auto before = lib.summary();
  tree.write("new-item/file", "new");
  KJ_SYSCALL(unlink(tree.at("tools/notes.txt").cStr()));
  KJ_SYSCALL(rmdir(tree.at("tools").cStr()));
  rescan();
  ASSERT_EQ(lib.summary().rev, before.rev + 1);

  auto answer = requester.ask(2, getLibrary(2, before.epoch, before.rev));
  ASSERT_EQ(answer.size(), 1u);
  ASSERT_EQ(answer[0].kind(), wire::Frame::LIBRARY_DELTA);
  auto d = answer[0].root().getLibraryDelta();
  EXPECT_EQ(d.getFromRev(), before.rev);
  EXPECT_EQ(codec::Summary::fromWire(d.getSummary()), lib.summary());
  ASSERT_EQ(d.getUpserts().size(), 1u);
  EXPECT_EQ(d.getUpserts()[0].getItemId(), "new-item");
  ASSERT_EQ(d.getRemovals().size(), 1u);
  EXPECT_EQ(d.getRemovals()[0], "tools");

  // A requester already up to date gets the empty delta.
  auto now = lib.summary();
  auto empty = requester.ask(3, getLibrary(3, now.epoch, now.rev));
  ASSERT_EQ(empty.size(), 1u);
  ASSERT_EQ(empty[0].kind(), wire::Frame::LIBRARY_DELTA);
  EXPECT_EQ(empty[0].root().getLibraryDelta().getUpserts().size(), 0u);
  EXPECT_EQ(empty[0].root().getLibraryDelta().getRemovals().size(), 0u);
}

// --- GetManifest -----------------------------------------------------------------------------

TEST_F(RequestServerTest, GetManifestOfAnUnknownItemIsNotFound) {
  auto r = requester.refusal(5, getManifest(5, "no-such-item"));
  EXPECT_EQ(r.code, wire::ErrorCode::NOT_FOUND);
  EXPECT_EQ(r.message, "no such item");
}

TEST_F(RequestServerTest, GetManifestAssemblesToTheIndexedManifest) {
  auto answer = requester.ask(6, getManifest(6, "game"));
  ASSERT_EQ(answer.size(), 1u);
  codec::ManifestAssembler assembler("game");
  EXPECT_EQ(assembler.feed(answer[0].root().getManifest()), nullptr);
  ASSERT_TRUE(assembler.isComplete());
  auto m = assembler.take();
  EXPECT_EQ(m.digest, gameDigest());
  EXPECT_EQ(m.files.size(), 3u);
}

TEST(RequestServerPaging, ManifestPagesFitASmallPeer) {
  // 1500 files of one chunk each: more than one 64 KiB frame of entries and hashes. Nothing is
  // read from disk to answer GetManifest, so the item needs no files.
  auto files = kj::heapArrayBuilder<codec::FileInfo>(1500);
  auto chunks = kj::heapArrayBuilder<codec::Digest>(1500);
  for (uint32_t i = 0; i < 1500; ++i) {
    files.add(
        codec::FileInfo{kj::str("folder-", 100 + i / 100, "/file-number-", 10000 + i), 100, 0644});
    auto seed = kj::str(i);
    chunks.add(codec::sha256(seed.asBytes()));
  }
  auto manifest = codec::makeManifest(kj::str("wide"), 4096, files.finish(), chunks.finish());
  auto digest = manifest.digest;
  library::Library lib(kEpoch);
  lib.update(kj::arr(library::newItem(kj::mv(manifest), kj::heapArray<library::FileStat>(1500))));
  TempTree tree;
  RequestServer server(lib, tree.fd());
  Requester requester(server);

  auto small = peerWithFrames(codec::kMinFrameBytes);
  auto pages = requester.ask(8, getManifest(8, "wide"), small);  // each page checked to fit
  ASSERT_GT(pages.size(), 1u);
  codec::ManifestAssembler assembler("wide");
  for (size_t i = 0; i < pages.size(); ++i) {
    auto page = pages[i].root().getManifest();
    EXPECT_EQ(page.getPage(), i);
    EXPECT_EQ(page.getLast(), i + 1 == pages.size());
    EXPECT_EQ(assembler.feed(page), nullptr) << "page " << i;
  }
  ASSERT_TRUE(assembler.isComplete());
  EXPECT_EQ(assembler.take().digest, digest);
  // A peer with large frames gets it in one.
  EXPECT_EQ(requester.ask(9, getManifest(9, "wide")).size(), 1u);
}

TEST_F(RequestServerTest, AnItemBeingDownloadedIsUnavailable) {
  auto digest = gameDigest();
  lib.setDownloading("game", true);
  auto m = requester.refusal(10, getManifest(10, "game"));
  EXPECT_EQ(m.code, wire::ErrorCode::UNAVAILABLE);
  auto c = requester.refusal(11, getChunk(11, "game", digest, 0, 0, 14));
  EXPECT_EQ(c.code, wire::ErrorCode::UNAVAILABLE);
  // Other items are not affected, and the item comes back once the download is over.
  EXPECT_EQ(requester.ask(12, getManifest(12, "tools")).size(), 1u);
  lib.setDownloading("game", false);
  EXPECT_EQ(requester.ask(13, getManifest(13, "game")).size(), 1u);
  EXPECT_EQ(server.staleFiles(), 0u);
}

// --- GetChunk: refusals before any file is opened ---------------------------------------------

TEST_F(RequestServerTest, GetChunkRefusalsInTheSpecsOrder) {
  // Each request below is also wrong in every way checked after the one it tests: the first
  // check that fails decides the answer.
  auto digest = gameDigest();
  auto old = item("tools")->manifest.digest;
  uint32_t files = item("game")->manifest.files.size();
  auto small = peerWithFrames(codec::kMinFrameBytes);
  // 1. The item: unknown, whatever the digest, index and range.
  EXPECT_EQ(requester.refusal(20, getChunk(20, "nope", old, UINT32_MAX, 1 << 30, 65536)).code,
            wire::ErrorCode::NOT_FOUND);
  // 2. The manifest digest: not the current one, whatever the index and range.
  EXPECT_EQ(requester.refusal(21, getChunk(21, "game", old, UINT32_MAX, 1 << 30, 65536)).code,
            wire::ErrorCode::STALE);
  // 3. The file index: past the end of the manifest, whatever the range.
  EXPECT_EQ(requester.refusal(22, getChunk(22, "game", digest, files, 1 << 30, 65536)).code,
            wire::ErrorCode::NOT_FOUND);
  EXPECT_EQ(requester.refusal(23, getChunk(23, "game", digest, UINT32_MAX, 0, 1)).code,
            wire::ErrorCode::NOT_FOUND);
  // 4. The range: starting past the end, at it, or running over it; before the frame limit.
  EXPECT_EQ(requester.refusal(24, gameChunk(24, "data/big.bin", 100001, 65536), small).code,
            wire::ErrorCode::RANGE);
  EXPECT_EQ(requester.refusal(25, gameChunk(25, "data/big.bin", 100000, 1)).code,
            wire::ErrorCode::RANGE);
  auto over = requester.refusal(26, gameChunk(26, "data/big.bin", 99990, 11));
  EXPECT_EQ(over.code, wire::ErrorCode::RANGE);
  EXPECT_EQ(over.message, "range 99990+11 beyond the file's 100000 bytes");
  EXPECT_EQ(requester.refusal(27, gameChunk(27, "zero", 0, 1)).code, wire::ErrorCode::RANGE);
  // None of these is a changed file, and nothing was served.
  EXPECT_EQ(server.staleFiles(), 0u);
  EXPECT_EQ(server.bytesServed(), 0u);
}

TEST_F(RequestServerTest, AChunkAboveTheRequestersOwnMaxChunkBytesIsRange) {
  // [CHK-4] binds the requester; Table 4 #5 holds it to it: a Chunk above the maxChunkBytes it
  // announced would break Table 1 at its end.
  auto modest = peerWithFrames(kBigFrames);
  modest.maxChunkBytes = 10000;
  auto r = requester.refusal(33, gameChunk(33, "data/big.bin", 0, 10001), modest);
  EXPECT_EQ(r.code, wire::ErrorCode::RANGE);
  EXPECT_EQ(r.message, "length 10001 above your maxChunkBytes of 10000");
  // Within both limits: served.
  EXPECT_EQ(requester.chunk(34, gameChunk(34, "data/big.bin", 0, 10000), modest).size(), 10000u);
  // Check 5 comes before check 6: a changed file does not hide a bad length.
  tree.write("game/data/big.bin", "shorter now");
  EXPECT_EQ(requester.refusal(35, gameChunk(35, "data/big.bin", 0, 10001), modest).code,
            wire::ErrorCode::RANGE);
  EXPECT_EQ(server.bytesServed(), 10000u);
}

TEST_F(RequestServerTest, TruncatedOnDiskIsStaleWithinTheManifestsSizeAndRangeBeyondIt) {
  // [CHK-12]: check 5 compares with the manifest's size, the file on disk is check 6.
  KJ_SYSCALL(truncate(tree.at("game/data/big.bin").cStr(), 50000));
  auto inside = requester.refusal(36, gameChunk(36, "data/big.bin", 60000, 4096));
  EXPECT_EQ(inside.code, wire::ErrorCode::STALE) << inside.message.cStr();
  auto beyond = requester.refusal(37, gameChunk(37, "data/big.bin", 99000, 4096));
  EXPECT_EQ(beyond.code, wire::ErrorCode::RANGE) << beyond.message.cStr();
}

TEST_F(RequestServerTest, AChunkTooLargeForThePeersFramesIsTooLarge) {
  // A second guard (Table 4 #7): a requester whose announced chunks do not fit its own frames,
  // which the codec refuses ([FR-19]), still never gets a frame above its limit.
  auto small = peerWithFrames(codec::kMinFrameBytes);
  small.maxChunkBytes = 4 << 20;
  auto r = requester.refusal(30, gameChunk(30, "data/big.bin", 0, 65536), small);
  EXPECT_EQ(r.code, wire::ErrorCode::TOO_LARGE);
  EXPECT_EQ(r.message, "a chunk of 65536 bytes does not fit your frame limit of 65536");
  EXPECT_EQ(server.bytesServed(), 0u);
  // Half of it fits; and the same request from a peer with large frames is served.
  EXPECT_EQ(requester.chunk(31, gameChunk(31, "data/big.bin", 0, 32768), small).size(), 32768u);
  EXPECT_EQ(requester.chunk(32, gameChunk(32, "data/big.bin", 0, 65536)).size(), 65536u);
  EXPECT_EQ(server.bytesServed(), 32768u + 65536u);
}

// --- GetChunk: served ------------------------------------------------------------------------

TEST_F(RequestServerTest, ServedChunksAreTheFilesBytes) {
  auto game = item("game");
  auto& m = game->manifest;
  uint32_t index = gameFile("data/big.bin");
  auto hashes = m.chunksOf(index);
  ASSERT_EQ(hashes.size(), 25u);
  uint64_t served = 0;
  for (uint64_t k = 0; k < hashes.size(); ++k) {
    uint64_t offset = m.chunkOffset(k);
    uint32_t length = m.chunkLength(index, k);
    auto data =
        requester.chunk(100 + k, getChunk(100 + k, "game", m.digest, index, offset, length));
    EXPECT_EQ(data.asPtr(), big.slice(offset, offset + length)) << "chunk " << k;
    EXPECT_EQ(codec::sha256(data), hashes[k]) << "chunk " << k;  // what the manifest promised
    served += length;
    EXPECT_EQ(server.bytesServed(), served);
  }
  EXPECT_EQ(served, big.size());
  // Any range inside the file, not only whole chunks; the whole of a small file.
  EXPECT_EQ(requester.chunk(200, gameChunk(200, "data/big.bin", 4095, 2)).asPtr(),
            big.slice(4095, 4097));
  EXPECT_EQ(textOf(requester.chunk(201, gameChunk(201, "readme.txt", 0, 14))), "read me first\n");
  EXPECT_EQ(server.bytesServed(), served + 2 + 14);
  EXPECT_EQ(server.staleFiles(), 0u);
}

TEST_F(RequestServerTest, NotARequestIsTheCallersBug) {
  auto ping = request([](auto f) { f.initPing().setNonce(1); });
  EXPECT_ANY_THROW(server.serve(1, ping.root(), peerWithFrames(kBigFrames)));
}

}  // namespace
}  // namespace shoal::peer
