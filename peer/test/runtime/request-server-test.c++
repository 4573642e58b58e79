// RequestServer::serve() driven directly, without sockets: GetLibrary, GetManifest and every
// GetChunk refusal in the spec's order, served bytes, files changed since hashed in each way
// FileStat tells (never served, counted as stale), and failures on our own side answered internal.
#include <shoal/peer/runtime/request-server.h>

#include <fcntl.h>
#include <gtest/gtest.h>
#include <kj/function.h>
#include <linux/capability.h>
#include <shoal/codec/validate.h>
#include <shoal/peer/library/scanner.h>
#include <sys/resource.h>
#include <sys/syscall.h>

#include "../library/temp-tree.h"

namespace shoal::peer {
namespace {

using library::test::TempTree;

constexpr uint64_t kEpoch = 0x5eed0000cafe0001ull;
constexpr uint32_t kBigFrames = 16 << 20;
const kj::StringPtr kOutsideMarker = "MARKER-OF-A-FILE-OUTSIDE-THE-LIBRARY";

kj::Array<kj::byte> pattern(size_t size, uint8_t seed) {
  auto bytes = kj::heapArray<kj::byte>(size);
  for (size_t i = 0; i < size; ++i)
    bytes[i] = kj::byte(seed + i * 7 + i / 4096);
  return bytes;
}

// A requester as a valid Hello describes it: its chunks fit its frames ([FR-19]).
RemotePeer peerWithFrames(uint32_t maxFrameBytes) {
  RemotePeer peer{};
  peer.name = kj::str("requester");
  peer.maxFrameBytes = maxFrameBytes;
  peer.maxInFlight = 64;
  peer.maxChunkBytes = kj::min(uint32_t(4) << 20, maxFrameBytes - codec::kFrameOverheadBytes);
  peer.instanceId = 1;
  peer.version = 1;
  return peer;
}

// A request as the session hands it over: encoded, decoded and validated.
codec::InboundFrame request(kj::Function<void(wire::Frame::Builder)> fill) {
  auto frame = codec::newFrame();
  fill(codec::rootOf(*frame));
  auto result = codec::decodeFrame(codec::encodeFrame(*frame));
  KJ_IF_MAYBE (failure, result.tryGet<codec::Failure>()) {
    KJ_FAIL_ASSERT("request refused by the codec", failure->message);
  }
  return kj::mv(result.get<codec::InboundFrame>());
}

codec::InboundFrame getLibrary(uint64_t id, uint64_t sinceEpoch, uint64_t sinceRev) {
  return request([&](auto f) {
    auto g = f.initGetLibrary();
    g.setId(id);
    g.setSinceEpoch(sinceEpoch);
    g.setSinceRev(sinceRev);
  });
}

codec::InboundFrame getManifest(uint64_t id, kj::StringPtr itemId) {
  return request([&](auto f) {
    auto g = f.initGetManifest();
    g.setId(id);
    g.setItemId(itemId);
  });
}

codec::InboundFrame getChunk(uint64_t id, kj::StringPtr itemId, const codec::Digest& digest,
                             uint32_t fileIndex, uint64_t offset, uint32_t length) {
  return request([&](auto f) {
    auto g = f.initGetChunk();
    g.setId(id);
    g.setItemId(itemId);
    g.setManifestDigest(digest.asBytes());
    g.setFileIndex(fileIndex);
    g.setOffset(offset);
    g.setLength(length);
  });
}

kj::String textOf(kj::ArrayPtr<const kj::byte> bytes) {
  return kj::heapString(bytes.asChars());
}

bool contains(kj::ArrayPtr<const kj::byte> haystack, kj::StringPtr needle) {
  auto n = needle.asBytes();
  if (haystack.size() < n.size()) return false;
  for (size_t i = 0; i + n.size() <= haystack.size(); ++i) {
    if (memcmp(haystack.begin() + i, n.begin(), n.size()) == 0) return true;
  }
  return false;
}

struct Refusal {
  wire::ErrorCode code;
  kj::String message;
};

// Serves requests and checks every answer frame as the requester would: it fits the requester's
// frame limit, passes validate() and carries the request's id. Keeps every byte it sent.
class Requester {
 public:
  explicit Requester(RequestServer& server) : server(server) {}

  kj::Vector<codec::InboundFrame> ask(uint64_t id, const codec::InboundFrame& request,
                                      const RemotePeer& peer) {
    auto frames = server.serve(id, request.root(), peer);
    kj::Vector<codec::InboundFrame> out;
    for (auto& frame : frames) {
      auto bytes = codec::encodeFrame(*frame);
      EXPECT_LE(bytes.size(), peer.maxFrameBytes);
      sent.addAll(bytes);
      auto result = codec::decodeFrame(bytes);
      KJ_IF_MAYBE (failure, result.tryGet<codec::Failure>()) {
        ADD_FAILURE() << "answer refused by the codec: " << failure->message.cStr();
        continue;
      }
      auto& decoded = result.get<codec::InboundFrame>();
      EXPECT_EQ(codec::requestIdOf(decoded.root()), id);
      out.add(kj::mv(decoded));
    }
    return out;
  }
  kj::Vector<codec::InboundFrame> ask(uint64_t id, const codec::InboundFrame& request) {
    return ask(id, request, peerWithFrames(kBigFrames));
  }

  // The answer must be exactly one Error; its code and message.
  Refusal refusal(uint64_t id, const codec::InboundFrame& request, const RemotePeer& peer) {
    auto answer = ask(id, request, peer);
    if (answer.size() != 1 || answer[0].kind() != wire::Frame::ERROR) {
      ADD_FAILURE() << "expected one Error, got " << answer.size() << " frames";
      return {wire::ErrorCode::PROTOCOL, kj::str()};
    }
    auto e = answer[0].root().getError();
    return {e.getCode(), kj::str(e.getMessage())};
  }
  Refusal refusal(uint64_t id, const codec::InboundFrame& request) {
    return refusal(id, request, peerWithFrames(kBigFrames));
  }

  // The data of the single Chunk answering the request.
  kj::Array<kj::byte> chunk(uint64_t id, const codec::InboundFrame& request,
                            const RemotePeer& peer) {
    auto answer = ask(id, request, peer);
    if (answer.size() != 1 || answer[0].kind() != wire::Frame::CHUNK) {
      ADD_FAILURE() << "expected one Chunk";
      return nullptr;
    }
    return kj::heapArray(answer[0].root().getChunk().getData());
  }
  kj::Array<kj::byte> chunk(uint64_t id, const codec::InboundFrame& request) {
    return chunk(id, request, peerWithFrames(kBigFrames));
  }

  kj::ArrayPtr<const kj::byte> everythingSent() const { return sent; }

 private:
  RequestServer& server;
  kj::Vector<kj::byte> sent;
};

library::ScanOptions testOptions() {
  library::ScanOptions options;
  options.chunkSize = 4096;
  options.racyWindowNs = 0;
  return options;
}

// A scanned library: "game" (a 100000-byte file, a small one, an empty one) and "tools", with a
// folder outside the library holding the marker that must never be served.
class RequestServerTest : public testing::Test {
 protected:
  ~RequestServerTest() noexcept override {}

  void SetUp() override {
    big = pattern(100000, 3);
    tree.write("game/data/big.bin", big);
    tree.write("game/readme.txt", "read me first\n");
    tree.write("game/zero", "");
    tree.write("tools/notes.txt", "notes");
    outside.write("secret", kOutsideMarker);
    outside.write("data/big.bin", kOutsideMarker);
    rescan();
  }

  void TearDown() override {
    EXPECT_FALSE(contains(requester.everythingSent(), kOutsideMarker))
        << "a byte from outside the library was served";
  }

  void rescan() {
    library::IndexCache cache;
    auto scanned = library::scanLibrary(tree.path(), cache, testOptions());
    lib.update(kj::mv(scanned.items));
  }

  kj::Own<const library::Item> item(kj::StringPtr id) {
    auto found = lib.find(id);
    return kj::mv(KJ_ASSERT_NONNULL(found, id));
  }
  // Index of `path` in the manifest of "game".
  uint32_t gameFile(kj::StringPtr path) {
    return KJ_ASSERT_NONNULL(item("game")->manifest.fileIndex(path), path);
  }
  codec::Digest gameDigest() { return item("game")->manifest.digest; }

  // A chunk of "game"'s `path` as request `id`.
  codec::InboundFrame gameChunk(uint64_t id, kj::StringPtr path, uint64_t offset, uint32_t length) {
    return getChunk(id, "game", gameDigest(), gameFile(path), offset, length);
  }

  // After `change` to "game/data/big.bin" (done once it was hashed), its chunks are refused as
  // stale, counted, and never served.
  void expectStale(kj::Function<void()> change) {
    change();
    auto r = requester.refusal(50, gameChunk(50, "data/big.bin", 0, 4096));
    EXPECT_EQ(r.code, wire::ErrorCode::STALE) << r.message.cStr();
    EXPECT_EQ(server.staleFiles(), 1u);
    EXPECT_EQ(server.bytesServed(), 0u);
    // Every chunk, not only the first.
    auto last = requester.refusal(51, gameChunk(51, "data/big.bin", 98304, 1696));
    EXPECT_EQ(last.code, wire::ErrorCode::STALE) << last.message.cStr();
    EXPECT_EQ(server.staleFiles(), 2u);
    // The other files of the item are still served.
    EXPECT_EQ(textOf(requester.chunk(52, gameChunk(52, "readme.txt", 0, 14))), "read me first\n");
  }

  struct stat statOf(kj::StringPtr relative) {
    struct stat st;
    KJ_SYSCALL(lstat(tree.at(relative).cStr(), &st), relative);
    return st;
  }

  TempTree tree;
  TempTree outside;
  kj::Array<kj::byte> big;
  library::Library lib{kEpoch};
  RequestServer server{lib, tree.fd()};
  Requester requester{server};
};

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

// --- GetChunk: the file changed since it was hashed ([CHK-3], docs/bad-inputs.md #27)
// -------------------

TEST_F(RequestServerTest, StaleWhenTheFileGrew) {
  expectStale([&]() {
    int fd;
    KJ_SYSCALL(fd = open(tree.at("game/data/big.bin").cStr(), O_WRONLY | O_APPEND | O_CLOEXEC));
    kj::AutoCloseFd owned(fd);
    KJ_SYSCALL(write(fd, "more", 4));
  });
}

TEST_F(RequestServerTest, StaleWhenRewrittenInPlaceWithTheMtimeSetBack) {
  // Same size, same inode, the old mtime put back (cp -p, touch -d): only ctime tells.
  auto before = statOf("game/data/big.bin");
  auto hashed = item("game")->stats[gameFile("data/big.bin")];
  int fd;
  KJ_SYSCALL(fd = open(tree.at("game/data/big.bin").cStr(), O_WRONLY | O_CLOEXEC));
  kj::AutoCloseFd owned(fd);
  auto other = pattern(big.size(), 99);
  KJ_SYSCALL(pwrite(fd, other.begin(), other.size(), 0));
  struct timespec times[2] = {before.st_atim, before.st_mtim};
  KJ_SYSCALL(futimens(fd, times));
  auto after = library::FileStat::of(statOf("game/data/big.bin"));
  ASSERT_EQ(after.size, hashed.size);
  ASSERT_EQ(after.mtimeNs, hashed.mtimeNs);
  ASSERT_EQ(after.inode, hashed.inode);
  if (after.ctimeNs == hashed.ctimeNs) {
    // Coarse timestamps: the rewrite fell in the tick of the hashing and nothing tells them
    // apart; a requester's chunk digest check is then the only guard.
    GTEST_SKIP() << "ctime did not move within one clock tick on this filesystem";
  }
  expectStale([]() {});
}

TEST_F(RequestServerTest, StaleWhenReplacedByACopyWithTheSameSizeAndMtime) {
  auto before = statOf("game/data/big.bin");
  auto copy = pattern(big.size(), 42);
  tree.write("game/data/big.bin.tmp", copy);
  struct timespec times[2] = {before.st_atim, before.st_mtim};
  KJ_SYSCALL(utimensat(AT_FDCWD, tree.at("game/data/big.bin.tmp").cStr(), times, 0));
  expectStale([&]() {
    KJ_SYSCALL(
        rename(tree.at("game/data/big.bin.tmp").cStr(), tree.at("game/data/big.bin").cStr()));
    auto after = statOf("game/data/big.bin");
    EXPECT_EQ(after.st_size, before.st_size);
    EXPECT_NE(after.st_ino, before.st_ino);
  });
}

TEST_F(RequestServerTest, StaleWhenReplacedByAFifo) {
  // Opened without blocking, refused for its type: the server never waits on a writer.
  expectStale([&]() {
    KJ_SYSCALL(unlink(tree.at("game/data/big.bin").cStr()));
    tree.fifo("game/data/big.bin");
  });
}

TEST_F(RequestServerTest, StaleWhenReplacedByADirectory) {
  expectStale([&]() {
    KJ_SYSCALL(unlink(tree.at("game/data/big.bin").cStr()));
    tree.mkdir("game/data/big.bin");
  });
}

TEST_F(RequestServerTest, StaleWhenReplacedByASymlinkToOutside) {
  expectStale([&]() {
    KJ_SYSCALL(unlink(tree.at("game/data/big.bin").cStr()));
    tree.symlink(outside.at("secret"), "game/data/big.bin");
  });
}

TEST_F(RequestServerTest, StaleWhenAFolderOnTheWayBecomesASymlinkToOutside) {
  // outside/data/big.bin exists: following the link would serve the marker.
  expectStale([&]() {
    KJ_SYSCALL(rename(tree.at("game/data").cStr(), tree.at("game/data-old").cStr()));
    tree.symlink(outside.at("data"), "game/data");
  });
}

TEST_F(RequestServerTest, StaleWhenTheFileIsGone) {
  expectStale([&]() { KJ_SYSCALL(unlink(tree.at("game/data/big.bin").cStr())); });
}

TEST_F(RequestServerTest, StaleWhenTheItemFolderBecomesASymlinkToOutside) {
  auto digest = gameDigest();
  uint32_t index = gameFile("data/big.bin");
  KJ_SYSCALL(rename(tree.at("game").cStr(), tree.at("game-old").cStr()));
  tree.symlink(outside.path(), "game");
  auto r = requester.refusal(60, getChunk(60, "game", digest, index, 0, 36));
  EXPECT_EQ(r.code, wire::ErrorCode::STALE) << r.message.cStr();
  EXPECT_TRUE(r.message.startsWith("game: symlink")) << r.message.cStr();
  EXPECT_EQ(server.staleFiles(), 1u);
}

// --- GetChunk: failures on our side --------------------------------------------------------------

// Lowers the soft open-file limit to the lowest free descriptor while it lives: the next open,
// whoever makes it, fails with EMFILE.
class NoFreeDescriptors {
 public:
  NoFreeDescriptors() {
    KJ_SYSCALL(getrlimit(RLIMIT_NOFILE, &saved));
    int probe;
    KJ_SYSCALL(probe = open("/dev/null", O_RDONLY | O_CLOEXEC));
    close(probe);
    struct rlimit lowered = saved;
    lowered.rlim_cur = rlim_t(probe);
    KJ_SYSCALL(setrlimit(RLIMIT_NOFILE, &lowered));
  }
  ~NoFreeDescriptors() noexcept(false) { KJ_SYSCALL(setrlimit(RLIMIT_NOFILE, &saved)); }
  KJ_DISALLOW_COPY(NoFreeDescriptors);

 private:
  struct rlimit saved;
};

TEST_F(RequestServerTest, OutOfDescriptorsIsInternalNotStale) {
  auto request = gameChunk(70, "data/big.bin", 0, 4096);
  kj::Array<codec::FrameBuilder> answer;
  {
    NoFreeDescriptors guard;
    answer = server.serve(70, request.root(), peerWithFrames(kBigFrames));
  }
  ASSERT_EQ(answer.size(), 1u);
  auto e = answer[0]->getRoot<wire::Frame>().asReader().getError();
  EXPECT_EQ(e.getCode(), wire::ErrorCode::INTERNAL);
  EXPECT_TRUE(e.getMessage().startsWith("game: other")) << e.getMessage().cStr();
  EXPECT_EQ(server.staleFiles(), 0u);  // the file did not change: no rescan is due
  // With descriptors again, the same request is served.
  EXPECT_EQ(requester.chunk(71, gameChunk(71, "data/big.bin", 0, 4096)).asPtr(),
            big.slice(0, 4096));
}

// Takes CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH out of this thread's effective set while it
// lives (they stay permitted and come back), so file modes apply to root as well. Where the
// capability calls are not allowed it changes nothing; the test then checks what it got.
class WithoutAccessOverride {
 public:
  WithoutAccessOverride() {
    if (syscall(SYS_capget, &header, saved) != 0) return;
    __user_cap_data_struct lowered[2] = {saved[0], saved[1]};
    lowered[0].effective &= ~((1u << CAP_DAC_OVERRIDE) | (1u << CAP_DAC_READ_SEARCH));
    changed = syscall(SYS_capset, &header, lowered) == 0;
  }
  ~WithoutAccessOverride() noexcept(false) {
    if (changed) {
      KJ_SYSCALL(syscall(SYS_capset, &header, saved));
    }
  }
  KJ_DISALLOW_COPY(WithoutAccessOverride);

 private:
  __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct saved[2];
  bool changed = false;
};

TEST_F(RequestServerTest, PermissionDeniedIsInternalNotStale) {
  KJ_SYSCALL(chmod(tree.at("game/readme.txt").cStr(), 0));
  auto request = gameChunk(80, "readme.txt", 0, 14);
  kj::Array<codec::FrameBuilder> answer;
  {
    WithoutAccessOverride guard;
    int probe = open(tree.at("game/readme.txt").cStr(), O_RDONLY | O_CLOEXEC);
    if (probe >= 0) {
      close(probe);
      GTEST_SKIP() << "mode 000 does not deny this process";
    }
    answer = server.serve(80, request.root(), peerWithFrames(kBigFrames));
  }
  ASSERT_EQ(answer.size(), 1u);
  auto e = answer[0]->getRoot<wire::Frame>().asReader().getError();
  EXPECT_EQ(e.getCode(), wire::ErrorCode::INTERNAL);
  EXPECT_TRUE(e.getMessage().startsWith("readme.txt: denied")) << e.getMessage().cStr();
  EXPECT_EQ(server.staleFiles(), 0u);
}

TEST(RequestServerOpen, APathBreakingThePathRulesIsNeverOpened) {
  // An item whose manifest names "../secret" (never from a scan: the paths it lists pass
  // checkPath). The stat recorded is the secret's own, so only the path check stands between
  // the request and the file.
  TempTree tree;
  tree.mkdir("odd");
  tree.write("secret", kOutsideMarker);
  struct stat st;
  KJ_SYSCALL(stat(tree.at("secret").cStr(), &st));
  auto manifest = codec::makeManifest(
      kj::str("odd"), 4096,
      kj::arr(codec::FileInfo{kj::str("../secret"), kOutsideMarker.size(), 0644}),
      kj::arr(codec::sha256(kOutsideMarker.asBytes())));
  auto digest = manifest.digest;
  library::Library lib(kEpoch);
  lib.update(kj::arr(library::newItem(kj::mv(manifest), kj::arr(library::FileStat::of(st)))));
  RequestServer server(lib, tree.fd());
  Requester requester(server);
  auto r = requester.refusal(90, getChunk(90, "odd", digest, 0, 0, kOutsideMarker.size()));
  EXPECT_EQ(r.code, wire::ErrorCode::INTERNAL);
  EXPECT_EQ(r.message, "../secret: badPath");
  EXPECT_FALSE(contains(requester.everythingSent(), kOutsideMarker));
  EXPECT_EQ(server.staleFiles(), 0u);
}

// --- GetChunk: the read itself
// ---------------------------------------------------------------------

TEST(RequestServerReads, AFileShorterThanHashedIsStale) {
  // The file is opened, unchanged by its stat, yet the read ends early: as when it is truncated
  // between the open and the read. Staged with an item whose manifest says 8192 bytes for a file
  // of 16 bytes while its recorded stat is the file's real one.
  TempTree tree;
  tree.write("item/short.bin", "sixteen bytes!!\n");
  struct stat st;
  KJ_SYSCALL(stat(tree.at("item/short.bin").cStr(), &st));
  auto manifest = codec::makeManifest(
      kj::str("item"), 4096, kj::arr(codec::FileInfo{kj::str("short.bin"), 8192, 0644}),
      kj::heapArray<codec::Digest>({codec::sha256(nullptr), codec::sha256(nullptr)}));
  auto digest = manifest.digest;
  library::Library lib(kEpoch);
  lib.update(kj::arr(library::newItem(kj::mv(manifest), kj::arr(library::FileStat::of(st)))));
  RequestServer server(lib, tree.fd());
  Requester requester(server);
  // Some bytes, then the end.
  auto first = requester.refusal(1, getChunk(1, "item", digest, 0, 0, 4096));
  EXPECT_EQ(first.code, wire::ErrorCode::STALE);
  EXPECT_EQ(first.message, "the file is shorter than when it was hashed");
  EXPECT_FALSE(contains(requester.everythingSent(), "sixteen"));
  // No bytes at all.
  EXPECT_EQ(requester.refusal(2, getChunk(2, "item", digest, 0, 4096, 4096)).code,
            wire::ErrorCode::STALE);
  EXPECT_EQ(server.staleFiles(), 2u);
  EXPECT_EQ(server.bytesServed(), 0u);
}

TEST(RequestServerReads, AReadErrorIsInternal) {
  // /proc/<pid>/mem is a regular file whose read fails (EIO) where nothing is mapped, such as
  // at address 0: a read error on a file that opened fine and did not change.
  int procFd = open("/proc", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (procFd < 0) GTEST_SKIP() << "no /proc";
  kj::AutoCloseFd proc(procFd);
  auto pid = kj::str(getpid());
  // Held open so that the inode (and so its stat) stays the same for the server's open.
  int memFd = openat(proc, kj::str(pid, "/mem").cStr(), O_RDONLY | O_CLOEXEC);
  if (memFd < 0) GTEST_SKIP() << "cannot open /proc/" << pid.cStr() << "/mem";
  kj::AutoCloseFd mem(memFd);
  struct stat st;
  KJ_SYSCALL(fstat(mem, &st));
  ASSERT_TRUE(S_ISREG(st.st_mode));

  auto manifest =
      codec::makeManifest(kj::str(pid), 4096, kj::arr(codec::FileInfo{kj::str("mem"), 4096, 0600}),
                          kj::arr(codec::sha256(nullptr)));
  auto digest = manifest.digest;
  library::Library lib(kEpoch);
  lib.update(kj::arr(library::newItem(kj::mv(manifest), kj::arr(library::FileStat::of(st)))));
  RequestServer server(lib, proc);
  Requester requester(server);
  auto r = requester.refusal(1, getChunk(1, pid, digest, 0, 0, 4096));
  EXPECT_EQ(r.code, wire::ErrorCode::INTERNAL);
  EXPECT_EQ(r.message, "read failed: Input/output error");
  EXPECT_EQ(server.staleFiles(), 0u);
  EXPECT_EQ(server.bytesServed(), 0u);
}

// --- Local limits never list what the protocol cannot carry
// ---------------------------------------

// Writes <item>/<c0>/<c1>/.../<c(depth-1)> holding `content`, each component `componentBytes`
// long, by descriptors: the whole path may exceed PATH_MAX. Returns the path inside the item.
kj::String writeDeep(TempTree& tree, kj::StringPtr itemId, uint32_t depth, size_t componentBytes,
                     kj::StringPtr content) {
  tree.mkdir(itemId);
  int fd;
  KJ_SYSCALL(fd = openat(tree.fd(), itemId.cStr(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  kj::AutoCloseFd dir(fd);
  kj::Vector<char> path;
  for (uint32_t i = 0; i < depth; ++i) {
    auto component = kj::heapString(componentBytes);
    for (auto& c : component)
      c = char('a' + i % 26);
    if (i > 0) path.add('/');
    path.addAll(component);
    if (i + 1 < depth) {
      KJ_SYSCALL(mkdirat(dir, component.cStr(), 0755));
      KJ_SYSCALL(fd = openat(dir, component.cStr(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
      dir = kj::AutoCloseFd(fd);
    } else {
      KJ_SYSCALL(fd = openat(dir, component.cStr(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644));
      kj::FdOutputStream out{kj::AutoCloseFd(fd)};
      out.write(content.begin(), content.size());
    }
  }
  return kj::heapString(path.begin(), path.size());
}

// `shoal serve --max-path-bytes` and its siblings set local limits, and Limits::check() is the gate
// such a configuration passes before the runtime starts. Whatever passes it, the scan lists only
// what every peer accepts ([MAN-6], [MAN-15]) and what our own server serves. Once,
// --max-path-bytes 65536 passed the gate and listed files no peer could accept.
TEST(RequestServerLimits, EveryFileListedUnderCheckedLimitsIsDescribableAndServed) {
  TempTree tree;
  auto atPathLimit = writeDeep(tree, "at-path-limit", 17, 240, "edge");  // 4096 bytes
  ASSERT_EQ(atPathLimit.size(), codec::kMaxPathBytes);
  writeDeep(tree, "past-path-limit", 20, 250, "deep");  // 5019 bytes
  writeDeep(tree, "at-depth-limit", codec::kMaxPathDepth, 1, "depth");
  writeDeep(tree, "past-depth-limit", codec::kMaxPathDepth + 1, 1, "deeper");
  writeDeep(tree, "at-component-limit", 1, codec::kMaxComponentBytes, "wide");
  // (No longer components: Linux refuses names above 255 bytes itself.)

  struct Case {
    const char* flag;  // what the user typed
    kj::Function<void(codec::Limits&)> set;
    bool passesCheck;
    uint32_t listed;  // items listed when it does
  };
  Case cases[] = {
      {"(defaults)", [](codec::Limits&) {}, true, 3},
      {"--max-path-bytes 8192", [](codec::Limits& l) { l.maxPathBytes = 8192; }, false, 0},
      {"--max-path-bytes 65536", [](codec::Limits& l) { l.maxPathBytes = 65536; }, false, 0},
      {"--max-path-depth 100", [](codec::Limits& l) { l.maxPathDepth = 100; }, false, 0},
      {"--max-component-bytes 300", [](codec::Limits& l) { l.maxComponentBytes = 300; }, false, 0},
      {"--max-path-bytes 2000", [](codec::Limits& l) { l.maxPathBytes = 2000; }, true, 2},
  };
  for (auto& c : cases) {
    SCOPED_TRACE(c.flag);
    auto options = testOptions();
    c.set(options.limits);
    auto problem = options.limits.check();
    ASSERT_EQ(problem == nullptr, c.passesCheck);
    if (!c.passesCheck) continue;  // the runtime refuses to start with it

    library::IndexCache cache;
    auto scanned = library::scanLibrary(tree.path(), cache, options);
    library::Library lib(kEpoch);
    lib.update(kj::mv(scanned.items));
    RequestServer server(lib, tree.fd());
    Requester requester(server);
    EXPECT_EQ(lib.items().size(), c.listed);
    uint64_t id = 0;
    for (auto& item : lib.items()) {
      SCOPED_TRACE(item->itemId().cStr());
      EXPECT_FALSE(item->itemId().startsWith("past-"));
      // Described: every page of its manifest passes a peer's validation with protocol limits.
      for (auto& page : codec::manifestPages(1, item->manifest, kBigFrames)) {
        auto result = codec::decodeFrame(codec::encodeFrame(*page));
        KJ_IF_MAYBE (failure, result.tryGet<codec::Failure>()) {
          ADD_FAILURE() << "a peer refuses its manifest: " << failure->message.cStr();
        }
      }
      // Served: every file, whole.
      auto& m = item->manifest;
      for (uint32_t i = 0; i < m.files.size(); ++i) {
        auto length = uint32_t(m.files[i].size);
        ++id;
        auto data = requester.chunk(id, getChunk(id, item->itemId(), m.digest, i, 0, length));
        EXPECT_EQ(data.size(), length) << m.files[i].path.cStr();
      }
    }
  }
}

}  // namespace
}  // namespace shoal::peer
