// The peers and frames that the session tests, the `handshake` and `session` fuzz targets and the
// seed recorder (fuzz/targets/make-session-seeds.c++) share: ids made of one repeated byte, the
// peers alpha (1) and beta (2), and the requests and answers of their conversations. Committed fuzz
// seeds were recorded with these values: change one and re-record the seeds.
#pragma once

#include <shoal/codec/frames.h>
#include <shoal/peer/session/session-core.h>

namespace shoal::peer::test {

// 32 bytes of `seed`: an id or digest that is easy to recognise in a dump.
inline PeerId idOf(uint8_t seed) {
  PeerId id;
  for (auto& b : id.bytes)
    b = seed;
  return id;
}

// Peer `seed` named `name`: features "delta" (which both share) and "<name>-only", library
// summary {epoch 7, rev 1}, instance id seed·1000 + 1.
inline LocalPeer testPeer(uint8_t seed, kj::StringPtr name) {
  auto features = kj::heapArray<kj::String>(2);
  features[0] = kj::str("delta");
  features[1] = kj::str(name, "-only");
  return LocalPeer{idOf(seed), kj::str(name), kj::mv(features), codec::Summary{7, 1, idOf(0xAB)},
                   uint64_t(seed) * 1000 + 1};
}

// GetChunk of `length` bytes of item "item", manifest digest idOf(9); the id is set on sending.
inline codec::FrameBuilder getChunkRequest(uint32_t length = 4096) {
  auto frame = codec::newFrame();
  auto g = codec::rootOf(*frame).initGetChunk();
  g.setItemId("item");
  g.setManifestDigest(idOf(9).asBytes());
  g.setLength(length);
  return frame;
}

// Request number n of a conversation: GetLibrary, GetManifest "item", GetChunk, in turn.
inline codec::FrameBuilder requestFrame(uint32_t n) {
  if (n % 3 == 2) return getChunkRequest();
  auto frame = codec::newFrame();
  auto root = codec::rootOf(*frame);
  if (n % 3 == 0) {
    root.initGetLibrary();
  } else {
    root.initGetManifest().setItemId("item");
  }
  return frame;
}

// The Chunk answering request `id`: the four bytes "data".
inline codec::FrameBuilder chunkAnswer(uint64_t id) {
  auto frame = codec::newFrame();
  auto c = codec::rootOf(*frame).initChunk();
  c.setId(id);
  c.setData(kj::StringPtr("data").asBytes());
  return frame;
}

// Page `page` of a snapshot answering `id`, summary {7, 3}; every page but the last carries one
// item, as [RQ-5] wants.
inline codec::FrameBuilder snapshotPage(uint64_t id, uint32_t page, bool last) {
  auto frame = codec::newFrame();
  auto s = codec::rootOf(*frame).initLibrarySnapshot();
  s.setId(id);
  codec::Summary{7, 3, idOf(3)}.toWire(s.initSummary());
  s.setPage(page);
  s.setLast(last);
  if (!last) {
    auto e = s.initItems(1)[0];
    e.setItemId(kj::str("item", page));
    e.setName("an item");
    e.setManifestDigest(idOf(5).asBytes());
  }
  return frame;
}

}  // namespace shoal::peer::test
