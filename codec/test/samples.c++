#include "samples.h"

#include <kj/debug.h>
#include <kj/vector.h>
#include <shoal/codec/validate.h>
#include <string.h>

namespace shoal::codec::samples {

using Which = wire::Frame::Which;

kj::Array<Which> allKinds() {
  auto kinds = kj::heapArrayBuilder<Which>(17);
  for (uint16_t k = 0; k <= uint16_t(Which::ANNOUNCE); ++k)
    kinds.add(Which(k));
  return kinds.finish();
}

Digest digest(uint8_t seed) {
  Digest d;
  for (kj::uint i = 0; i < kDigestBytes; ++i)
    d.bytes[i] = kj::byte(seed * 31 + i * 7);
  return d;
}

void fillSummary(wire::LibrarySummary::Builder summary, uint64_t rev) {
  summary.setEpoch(0x5eed5eed12345678ull);
  summary.setRev(rev);
  summary.setDigest(digest(1).asBytes());
}

namespace {

void fillLimits(wire::PeerLimits::Builder limits) {
  limits.setMaxFrameBytes(16 * 1024 * 1024);
  limits.setMaxInFlight(64);
  limits.setMaxChunkBytes(4 * 1024 * 1024);
}

void fillItem(wire::ItemEntry::Builder item, uint32_t index) {
  auto id = kj::str("item-", kj::hex(index));
  item.setItemId(id);
  item.setName(kj::str("Item ", index));
  item.setSize(uint64_t(index) * 1048576 + 17);
  item.setFileCount(index % 100 + 1);
  item.setManifestDigest(digest(uint8_t(index)).asBytes());
}

void fillHello(wire::Hello::Builder h) {
  h.setVersionMin(1);
  h.setVersionMax(1);
  h.setPeerId(digest(7).asBytes());
  h.setName("alpha");
  auto features = h.initFeatures(2);
  features.set(0, "delta");
  features.set(1, "paging");
  fillSummary(h.initLibrary(), 3);
  fillLimits(h.initLimits());
  h.setInstanceId(0x0123456789abcdefull);
}

void fillManifest(wire::Manifest::Builder m) {
  m.setId(12);
  m.setItemId("item-1");
  m.setDigest(digest(5).asBytes());
  m.setChunkSize(1048576);
  m.setFileCount(2);
  m.setChunkCount(3);
  m.setTotalBytes(1048576 + 1048577);
  m.setPage(0);
  m.setLast(true);
  m.setFirstFile(0);
  auto files = m.initFiles(2);
  files[0].setPath("bin/game");
  files[0].setSize(1048576);
  files[0].setMode(0755);
  files[1].setPath("data/level 1.pak");
  files[1].setSize(1048577);
  files[1].setMode(0644);
  m.setFirstChunk(0);
  auto hashes = m.initHashes(3 * kDigestBytes);
  for (kj::uint i = 0; i < 3; ++i) {
    memcpy(hashes.begin() + i * kDigestBytes, digest(uint8_t(40 + i)).bytes, kDigestBytes);
  }
}

void fillHelloAck(wire::HelloAck::Builder a) {
  a.setVersion(1);
  a.setPeerId(digest(8).asBytes());
  a.setName("beta");
  a.initFeatures(1).set(0, "delta");
  fillSummary(a.initLibrary(), 9);
  fillLimits(a.initLimits());
  a.setInstanceId(0xfedcba9876543210ull);
}

void fillReject(wire::Reject::Builder r) {
  r.setCode(wire::ErrorCode::UNSUPPORTED_VERSION);
  r.setMessage("no common version: we speak 2..3");
  r.setVersionMin(2);
  r.setVersionMax(3);
}

void fillError(wire::Error::Builder e) {
  e.setId(42);
  e.setCode(wire::ErrorCode::BUSY);
  e.setMessage("64 requests in flight");
  e.setRetryAfterMs(50);
}

void fillGetLibrary(wire::GetLibrary::Builder g) {
  g.setId(1);
  g.setSinceEpoch(0x5eed5eed12345678ull);
  g.setSinceRev(2);
}

void fillLibrarySnapshot(wire::LibrarySnapshot::Builder s) {
  s.setId(1);
  fillSummary(s.initSummary(), 3);
  s.setPage(0);
  s.setLast(true);
  auto items = s.initItems(2);
  fillItem(items[0], 1);
  fillItem(items[1], 2);
}

void fillLibraryDelta(wire::LibraryDelta::Builder d) {
  d.setId(1);
  d.setFromRev(2);
  fillSummary(d.initSummary(), 3);
  d.setPage(0);
  d.setLast(true);
  fillItem(d.initUpserts(1)[0], 3);
  d.initRemovals(1).set(0, "item-old");
}

void fillGetManifest(wire::GetManifest::Builder g) {
  g.setId(12);
  g.setItemId("item-1");
}

void fillGetChunk(wire::GetChunk::Builder g) {
  g.setId(13);
  g.setItemId("item-1");
  g.setManifestDigest(digest(5).asBytes());
  g.setFileIndex(1);
  g.setOffset(1048576);
  g.setLength(1);
}

void fillChunk(wire::Chunk::Builder c) {
  c.setId(13);
  c.setData(kj::StringPtr("shoal").asBytes());
}

void fillGoodbye(wire::Goodbye::Builder g) {
  g.setReason(wire::GoodbyeReason::SHUTDOWN);
  g.setMessage("stopping");
  g.setLastRequestId(41);
}

void fillAnnounce(wire::Announce::Builder a) {
  a.setPeerId(digest(7).asBytes());
  a.setInstanceId(0x0123456789abcdefull);
  a.setPort(4747);
  a.setName("alpha");
  a.setVersionMin(1);
  a.setVersionMax(1);
  fillSummary(a.initSummary(), 3);
}

void fill(wire::Frame::Builder f, Which kind) {
  switch (kind) {
    case Which::HELLO: fillHello(f.initHello()); return;
    case Which::HELLO_ACK: fillHelloAck(f.initHelloAck()); return;
    case Which::REJECT: fillReject(f.initReject()); return;
    case Which::ERROR: fillError(f.initError()); return;
    case Which::CANCEL: f.initCancel().setId(42); return;
    case Which::PING: f.initPing().setNonce(0xabcdef); return;
    case Which::PONG: f.initPong().setNonce(0xabcdef); return;
    case Which::GET_LIBRARY: fillGetLibrary(f.initGetLibrary()); return;
    case Which::LIBRARY_SNAPSHOT: fillLibrarySnapshot(f.initLibrarySnapshot()); return;
    case Which::LIBRARY_DELTA: fillLibraryDelta(f.initLibraryDelta()); return;
    case Which::LIBRARY_CHANGED: fillSummary(f.initLibraryChanged().initSummary(), 4); return;
    case Which::GET_MANIFEST: fillGetManifest(f.initGetManifest()); return;
    case Which::MANIFEST: fillManifest(f.initManifest()); return;
    case Which::GET_CHUNK: fillGetChunk(f.initGetChunk()); return;
    case Which::CHUNK: fillChunk(f.initChunk()); return;
    case Which::GOODBYE: fillGoodbye(f.initGoodbye()); return;
    case Which::ANNOUNCE: fillAnnounce(f.initAnnounce()); return;
  }
  KJ_FAIL_ASSERT("no sample for kind", uint(kind));
}

}  // namespace

kj::Own<capnp::MallocMessageBuilder> make(Which kind) {
  auto message = kj::heap<capnp::MallocMessageBuilder>();
  fill(message->initRoot<wire::Frame>(), kind);
  return message;
}

kj::Own<capnp::MallocMessageBuilder> chunk(uint64_t id, size_t bytes) {
  auto message = kj::heap<capnp::MallocMessageBuilder>(bytes / sizeof(capnp::word) + 16);
  auto c = message->initRoot<wire::Frame>().initChunk();
  c.setId(id);
  auto data = c.initData(bytes);
  for (size_t i = 0; i < bytes; ++i)
    data[i] = kj::byte(i * 131 + (i >> 11));
  return message;
}

kj::Own<capnp::MallocMessageBuilder> snapshot(uint64_t id, uint32_t count) {
  auto message = kj::heap<capnp::MallocMessageBuilder>(count * 24 + 64);
  auto s = message->initRoot<wire::Frame>().initLibrarySnapshot();
  s.setId(id);
  fillSummary(s.initSummary(), 3);
  s.setLast(true);
  auto items = s.initItems(count);
  // Hex ids of equal width sort like their numbers.
  for (uint32_t i = 0; i < count; ++i) {
    auto item = items[i];
    item.setItemId(kj::str("item-", kj::hex(0x10000000u + i)));
    item.setName(kj::str("Item ", i));
    item.setSize(uint64_t(i) * 1048576 + 17);
    item.setFileCount(i % 100 + 1);
    item.setManifestDigest(digest(uint8_t(i)).asBytes());
  }
  return message;
}

kj::String fileStem(Which kind) {
  auto n = name(kind);
  kj::Vector<char> out;
  for (size_t i = 0; i < n.size(); ++i) {
    char c = n[i];
    if (c >= 'A' && c <= 'Z') {
      if (i > 0) out.add('-');
      c = char(c - 'A' + 'a');
    }
    out.add(c);
  }
  out.add('\0');
  return kj::String(out.releaseAsArray());
}

}  // namespace shoal::codec::samples
