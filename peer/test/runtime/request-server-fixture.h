// The fixture of the RequestServer tests (request-server-test.c++, request-server-stale-test.c++):
// a scanned library with a file outside it that must never be served, requests as the session
// hands them over, and a Requester that checks every answer as a peer would.
#pragma once

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

using library::test::TempTree;

constexpr uint64_t kEpoch = 0x5eed0000cafe0001ull;
constexpr uint32_t kBigFrames = 16 << 20;
inline const kj::StringPtr kOutsideMarker = "MARKER-OF-A-FILE-OUTSIDE-THE-LIBRARY";

inline kj::Array<kj::byte> pattern(size_t size, uint8_t seed) {
  auto bytes = kj::heapArray<kj::byte>(size);
  for (size_t i = 0; i < size; ++i)
    bytes[i] = kj::byte(seed + i * 7 + i / 4096);
  return bytes;
}

// A requester as a valid Hello describes it: its chunks fit its frames ([FR-19]).
inline RemotePeer peerWithFrames(uint32_t maxFrameBytes) {
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
inline codec::InboundFrame request(kj::Function<void(wire::Frame::Builder)> fill) {
  auto frame = codec::newFrame();
  fill(codec::rootOf(*frame));
  auto result = codec::decodeFrame(codec::encodeFrame(*frame));
  KJ_IF_MAYBE (failure, result.tryGet<codec::Failure>()) {
    KJ_FAIL_ASSERT("request refused by the codec", failure->message);
  }
  return kj::mv(result.get<codec::InboundFrame>());
}

inline codec::InboundFrame getLibrary(uint64_t id, uint64_t sinceEpoch, uint64_t sinceRev) {
  return request([&](auto f) {
    auto g = f.initGetLibrary();
    g.setId(id);
    g.setSinceEpoch(sinceEpoch);
    g.setSinceRev(sinceRev);
  });
}

inline codec::InboundFrame getManifest(uint64_t id, kj::StringPtr itemId) {
  return request([&](auto f) {
    auto g = f.initGetManifest();
    g.setId(id);
    g.setItemId(itemId);
  });
}

inline codec::InboundFrame getChunk(uint64_t id, kj::StringPtr itemId, const codec::Digest& digest,
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

inline kj::String textOf(kj::ArrayPtr<const kj::byte> bytes) {
  return kj::heapString(bytes.asChars());
}

inline bool contains(kj::ArrayPtr<const kj::byte> haystack, kj::StringPtr needle) {
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

inline library::ScanOptions testOptions() {
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

}  // namespace shoal::peer
