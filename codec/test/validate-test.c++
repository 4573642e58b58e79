// Message validation: every field rule of every kind rejects with the right typed error, and the
// error maps to the right wire code (docs/bad-inputs.md #13-15 at the codec level).
#include <shoal/codec/validate.h>

#include <kj/function.h>
#include <shoal/codec/frame.h>
#include <shoal/codec/frames.h>
#include <shoal/codec/text.h>

#include "samples.h"
#include "test-util.h"

namespace shoal::codec {
namespace {

using Which = wire::Frame::Which;
using Mutation = kj::Function<void(wire::Frame::Builder)>;

kj::Maybe<Failure> check(Which kind, Mutation mutate, const Limits& limits = Limits()) {
  auto message = samples::make(kind);
  mutate(message->getRoot<wire::Frame>());
  auto result = decodeFrame(encodeFrame(*message), limits);
  KJ_IF_MAYBE (f, result.tryGet<Failure>()) {
    return kj::mv(*f);
  }
  return nullptr;
}

CodecError errorOf(Which kind, Mutation mutate, const Limits& limits = Limits()) {
  KJ_IF_MAYBE (f, check(kind, kj::mv(mutate), limits)) {
    return f->error;
  }
  ADD_FAILURE() << name(kind).cStr() << ": mutation accepted";
  return CodecError::truncated;
}

auto shortDigest = kj::StringPtr("too short").asBytes();

TEST(Validate, EverySampleIsValid) {
  for (auto kind : samples::allKinds()) {
    EXPECT_EQ(check(kind, [](auto) {}), nullptr) << name(kind).cStr();
  }
}

TEST(Validate, Hello) {
  auto h = [](auto f) {
    return f.getHello();
  };
  EXPECT_EQ(errorOf(Which::HELLO, [&](auto f) { h(f).setVersionMin(0); }), CodecError::badField);
  EXPECT_EQ(errorOf(Which::HELLO, [&](auto f) { h(f).setVersionMin(3); }), CodecError::badField);
  EXPECT_EQ(errorOf(Which::HELLO, [&](auto f) { h(f).setPeerId(shortDigest); }),
            CodecError::badDigest);
  EXPECT_EQ(errorOf(Which::HELLO, [&](auto f) { h(f).setName("bell\a"); }), CodecError::badText);
  EXPECT_EQ(errorOf(Which::HELLO, [&](auto f) { h(f).initFeatures(33); }), CodecError::badCount);
  EXPECT_EQ(errorOf(Which::HELLO, [&](auto f) { h(f).getFeatures().set(0, "UPPER"); }),
            CodecError::badText);
  EXPECT_EQ(errorOf(Which::HELLO, [&](auto f) { h(f).getFeatures().set(0, ""); }),
            CodecError::badText);
  EXPECT_EQ(errorOf(Which::HELLO, [&](auto f) { h(f).getLibrary().setEpoch(0); }),
            CodecError::badField);
  EXPECT_EQ(errorOf(Which::HELLO, [&](auto f) { h(f).getLibrary().setRev(0); }),
            CodecError::badField);
  EXPECT_EQ(errorOf(Which::HELLO, [&](auto f) { h(f).getLibrary().setDigest(shortDigest); }),
            CodecError::badDigest);
  EXPECT_EQ(errorOf(Which::HELLO, [&](auto f) { h(f).getLimits().setMaxFrameBytes(65535); }),
            CodecError::badField);
  EXPECT_EQ(check(Which::HELLO,
                  [&](auto f) {
                    h(f).getLimits().setMaxFrameBytes(65536);
                    h(f).getLimits().setMaxChunkBytes(65536 - kFrameOverheadBytes);
                  }),
            nullptr);
  // [FR-19]: a chunk of maxChunkBytes must fit the announcer's own frames.
  EXPECT_EQ(errorOf(Which::HELLO,
                    [&](auto f) {
                      h(f).getLimits().setMaxFrameBytes(65536);
                      h(f).getLimits().setMaxChunkBytes(65536 - kFrameOverheadBytes + 1);
                    }),
            CodecError::badField);
  EXPECT_EQ(errorOf(Which::HELLO, [&](auto f) { h(f).getLimits().setMaxChunkBytes(UINT32_MAX); }),
            CodecError::badField);
  EXPECT_EQ(errorOf(Which::HELLO_ACK,
                    [&](auto f) { f.getHelloAck().getLimits().setMaxFrameBytes(65536); }),
            CodecError::badField);
  EXPECT_EQ(errorOf(Which::HELLO, [&](auto f) { h(f).getLimits().setMaxInFlight(0); }),
            CodecError::badField);
  EXPECT_EQ(errorOf(Which::HELLO, [&](auto f) { h(f).getLimits().setMaxChunkBytes(0); }),
            CodecError::badField);
  EXPECT_EQ(errorOf(Which::HELLO, [&](auto f) { h(f).setInstanceId(0); }), CodecError::badField);
  EXPECT_EQ(errorOf(Which::HELLO, [&](auto f) { f.initHello(); }), CodecError::badField);
}

TEST(Validate, HelloAck) {
  EXPECT_EQ(errorOf(Which::HELLO_ACK, [](auto f) { f.getHelloAck().setVersion(0); }),
            CodecError::badField);
  EXPECT_EQ(errorOf(Which::HELLO_ACK, [](auto f) { f.getHelloAck().setPeerId(shortDigest); }),
            CodecError::badDigest);
}

TEST(Validate, TextLimits) {
  Limits limits;
  limits.maxMessageBytes = 8;
  EXPECT_EQ(errorOf(
                Which::ERROR, [](auto f) { f.getError().setMessage("123456789"); }, limits),
            CodecError::badText);
  EXPECT_EQ(check(
                Which::ERROR, [](auto f) { f.getError().setMessage("12345678"); }, limits),
            nullptr);
  EXPECT_EQ(errorOf(Which::GOODBYE, [](auto f) { f.getGoodbye().setMessage("\xC0\xAF"); }),
            CodecError::badText);
  EXPECT_EQ(errorOf(Which::REJECT,
                    [](auto f) {
                      auto m = f.getReject().initMessage(3);
                      m[0] = 'a', m[1] = '\0', m[2] = 'b';
                    }),
            CodecError::badText);
}

TEST(Validate, RequestIdsAreNonZero) {
  EXPECT_EQ(errorOf(Which::CANCEL, [](auto f) { f.getCancel().setId(0); }), CodecError::badField);
  EXPECT_EQ(errorOf(Which::GET_LIBRARY, [](auto f) { f.getGetLibrary().setId(0); }),
            CodecError::badField);
  EXPECT_EQ(errorOf(Which::GET_MANIFEST, [](auto f) { f.getGetManifest().setId(0); }),
            CodecError::badField);
  EXPECT_EQ(errorOf(Which::CHUNK, [](auto f) { f.getChunk().setId(0); }), CodecError::badField);
  // Error id 0 is the connection-level error.
  EXPECT_EQ(check(Which::ERROR, [](auto f) { f.getError().setId(0); }), nullptr);
}

TEST(Validate, Library) {
  EXPECT_EQ(errorOf(Which::GET_LIBRARY, [](auto f) { f.getGetLibrary().setSinceEpoch(0); }),
            CodecError::badField);
  EXPECT_EQ(check(Which::GET_LIBRARY,
                  [](auto f) {
                    f.getGetLibrary().setSinceEpoch(0);
                    f.getGetLibrary().setSinceRev(0);
                  }),
            nullptr);
  auto items = [](auto f) {
    return f.getLibrarySnapshot().getItems();
  };
  EXPECT_EQ(errorOf(Which::LIBRARY_SNAPSHOT, [&](auto f) { items(f)[0].setItemId("../up"); }),
            CodecError::badPath);
  EXPECT_EQ(errorOf(Which::LIBRARY_SNAPSHOT, [&](auto f) { items(f)[1].setItemId("a/b"); }),
            CodecError::badPath);
  EXPECT_EQ(errorOf(Which::LIBRARY_SNAPSHOT, [&](auto f) { items(f)[1].setItemId("item-1"); }),
            CodecError::badField);  // duplicate id
  EXPECT_EQ(errorOf(Which::LIBRARY_SNAPSHOT, [&](auto f) { items(f)[0].setItemId("z"); }),
            CodecError::badField);  // unsorted
  EXPECT_EQ(
      errorOf(Which::LIBRARY_SNAPSHOT, [&](auto f) { items(f)[0].setManifestDigest(shortDigest); }),
      CodecError::badDigest);
  EXPECT_EQ(errorOf(Which::LIBRARY_SNAPSHOT, [&](auto f) { items(f)[0].setFileCount(2000000); }),
            CodecError::badCount);
  Limits limits;
  limits.maxItemsPerPage = 1;
  EXPECT_EQ(errorOf(
                Which::LIBRARY_SNAPSHOT, [](auto) {}, limits),
            CodecError::badCount);
  EXPECT_EQ(errorOf(Which::LIBRARY_DELTA, [](auto f) { f.getLibraryDelta().setFromRev(4); }),
            CodecError::badField);
  EXPECT_EQ(check(Which::LIBRARY_DELTA, [](auto f) { f.getLibraryDelta().setFromRev(3); }),
            nullptr);  // empty delta: already up to date
  EXPECT_EQ(errorOf(Which::LIBRARY_DELTA, [](auto f) { f.getLibraryDelta().setFromRev(0); }),
            CodecError::badField);
  EXPECT_EQ(
      errorOf(Which::LIBRARY_DELTA, [](auto f) { f.getLibraryDelta().getRemovals().set(0, ".."); }),
      CodecError::badPath);
  EXPECT_EQ(errorOf(Which::LIBRARY_DELTA,
                    [](auto f) {
                      auto r = f.getLibraryDelta().initRemovals(2);
                      r.set(0, "b");
                      r.set(1, "a");
                    }),
            CodecError::badField);
  EXPECT_EQ(errorOf(Which::LIBRARY_CHANGED,
                    [](auto f) { f.getLibraryChanged().getSummary().setEpoch(0); }),
            CodecError::badField);
}

TEST(Validate, Manifest) {
  // docs/bad-inputs.md #13 and 14: sizes, chunk size, counts and hash lengths; hostile paths are
  // refused whatever the hashes say.
  auto m = [](auto f) {
    return f.getManifest();
  };
  EXPECT_EQ(errorOf(Which::MANIFEST, [&](auto f) { m(f).getFiles()[0].setPath("../../etc/x"); }),
            CodecError::badPath);
  EXPECT_EQ(errorOf(Which::MANIFEST, [&](auto f) { m(f).getFiles()[1].setPath("/abs"); }),
            CodecError::badPath);
  EXPECT_EQ(errorOf(Which::MANIFEST, [&](auto f) { m(f).getFiles()[1].setPath("bin/game"); }),
            CodecError::badField);  // duplicate path
  EXPECT_EQ(errorOf(Which::MANIFEST, [&](auto f) { m(f).getFiles()[0].setSize(~uint64_t(0)); }),
            CodecError::badField);  // "negative" size
  EXPECT_EQ(errorOf(Which::MANIFEST, [&](auto f) { m(f).getFiles()[0].setMode(04755); }),
            CodecError::badField);  // setuid
  EXPECT_EQ(errorOf(Which::MANIFEST, [&](auto f) { m(f).setChunkSize(0); }), CodecError::badField);
  EXPECT_EQ(errorOf(Which::MANIFEST, [&](auto f) { m(f).setChunkSize(64 << 20); }),
            CodecError::badField);
  EXPECT_EQ(errorOf(Which::MANIFEST, [&](auto f) { m(f).setChunkCount(1000); }),
            CodecError::badCount);
  EXPECT_EQ(errorOf(Which::MANIFEST, [&](auto f) { m(f).setFileCount(1); }), CodecError::badCount);
  EXPECT_EQ(errorOf(Which::MANIFEST, [&](auto f) { m(f).setFirstFile(~uint32_t(0)); }),
            CodecError::badCount);
  EXPECT_EQ(errorOf(Which::MANIFEST, [&](auto f) { m(f).initHashes(31); }), CodecError::badDigest);
  EXPECT_EQ(errorOf(Which::MANIFEST, [&](auto f) { m(f).setFirstChunk(1); }),
            CodecError::badCount);  // 3 hashes from chunk 1 of 3
  EXPECT_EQ(errorOf(Which::MANIFEST, [&](auto f) { m(f).setFirstChunk(~uint64_t(0)); }),
            CodecError::badCount);
  EXPECT_EQ(errorOf(Which::MANIFEST, [&](auto f) { m(f).setDigest(shortDigest); }),
            CodecError::badDigest);
  EXPECT_EQ(errorOf(Which::GET_MANIFEST, [](auto f) { f.getGetManifest().setItemId(""); }),
            CodecError::badPath);
}

TEST(Validate, ChunkRangesAreRequestLevel) {
  // docs/bad-inputs.md #15: length 0, above the maximum, and offset + length overflowing.
  auto g = [](auto f) {
    return f.getGetChunk();
  };
  Limits limits;
  using SetRange = void (*)(wire::GetChunk::Builder);
  SetRange ranges[] = {[](auto c) { c.setLength(0); },
                       [](auto c) { c.setLength(4 * 1024 * 1024 + 1); },
                       [](auto c) { c.setOffset(~uint64_t(0)); },
                       [](auto c) {
                         c.setOffset(uint64_t(1) << 50);
                       }};
  for (auto setRange : ranges) {
    auto failure = check(Which::GET_CHUNK, [&](auto f) { setRange(g(f)); });
    auto& f = KJ_ASSERT_NONNULL(failure);
    EXPECT_EQ(f.error, CodecError::badRange);
    EXPECT_EQ(f.requestId, uint64_t(13));
    EXPECT_EQ(toWireCode(f.error), wire::ErrorCode::RANGE);
  }
  EXPECT_EQ(check(Which::GET_CHUNK, [&](auto f) { g(f).setLength(4 * 1024 * 1024); }), nullptr);
  EXPECT_EQ(errorOf(Which::GET_CHUNK, [&](auto f) { g(f).setManifestDigest(shortDigest); }),
            CodecError::badDigest);
  limits.maxChunkBytes = 4;
  EXPECT_EQ(errorOf(
                Which::CHUNK, [](auto) {}, limits),
            CodecError::badCount);
}

TEST(Validate, Announce) {
  EXPECT_EQ(errorOf(Which::ANNOUNCE, [](auto f) { f.getAnnounce().setPort(0); }),
            CodecError::badField);
  EXPECT_EQ(errorOf(Which::ANNOUNCE, [](auto f) { f.getAnnounce().setInstanceId(0); }),
            CodecError::badField);
  EXPECT_EQ(errorOf(Which::ANNOUNCE, [](auto f) { f.getAnnounce().setVersionMax(0); }),
            CodecError::badField);
}

TEST(Frames, OutgoingTextIsAlwaysValid) {
  // Found by fuzz_handshake: a failure's description quoted peer bytes into our own Error.
  kj::byte raw[] = {'b', 'a', 'd', 0, 0xFF, 0xC3, 0xA9, '\n', 0xE2, 0x82};
  auto messy = kj::arrayPtr(reinterpret_cast<const char*>(raw), sizeof(raw));
  auto clean = sanitizeText(messy, 1024);
  EXPECT_EQ(clean, "bad??\xC3\xA9???");
  auto frame = errorFrame(0, wire::ErrorCode::PROTOCOL, clean);
  EXPECT_TRUE(decodeFrame(encodeFrame(*frame)).is<InboundFrame>());
  // Cut on a character boundary, never inside "é".
  auto long_ = kj::str(kj::repeat('x', 1023), "\xC3\xA9");
  auto cut = sanitizeText(long_, 1024);
  EXPECT_EQ(cut.size(), 1023u);
  EXPECT_TRUE(isValidUtf8(cut));
}

TEST(Validate, WireCodes) {
  EXPECT_EQ(toWireCode(CodecError::frameTooLarge), wire::ErrorCode::TOO_LARGE);
  EXPECT_EQ(toWireCode(CodecError::badPath), wire::ErrorCode::PROTOCOL);
  EXPECT_EQ(toWireCode(CodecError::unknownMessage), wire::ErrorCode::PROTOCOL);
  EXPECT_TRUE(isRequest(Which::GET_CHUNK));
  EXPECT_FALSE(isRequest(Which::CHUNK));
  EXPECT_EQ(requestIdOf(samples::make(Which::CHUNK)->getRoot<wire::Frame>()), 13u);
}

}  // namespace
}  // namespace shoal::codec
