#include "targets/session-script.h"

#include <shoal/codec/frame.h>

#include "targets/session-fixture.h"

namespace shoal::fuzz {

using peer::test::idOf;

kj::StringPtr nameOf(Tag tag) {
  static constexpr kj::StringPtr kNames[] = {
      "FRAME"_kj,   "RAW"_kj,   "HELLO"_kj,   "GET_LIBRARY"_kj, "GET_MANIFEST"_kj, "GET_CHUNK"_kj,
      "CANCEL"_kj,  "PING"_kj,  "GOODBYE"_kj, "ERROR"_kj,       "OTHER"_kj,        "ADVANCE"_kj,
      "RELEASE"_kj, "PAUSE"_kj, "RESUME"_kj,  "BATCH"_kj};
  return kNames[uint8_t(tag) & 0x0f];
}

kj::StringPtr itemChoice(uint8_t b) {
  switch (b % 8) {
    case 6: return "Alpha";               // ids are case-sensitive
    case 7: return b & 8 ? ".." : "a/b";  // not an item id at all: a protocol error
    default: return kItemIds[b % 8];
  }
}

codec::FrameBuilder helloFrame(uint8_t choices) {
  static constexpr uint16_t kVersions[4][2] = {{1, 1}, {1, 1}, {2, 3}, {1, 2}};
  static constexpr uint32_t kFrameLimits[4] = {16 << 20, codec::kMinFrameBytes, 1 << 20,
                                               codec::kMinFrameBytes - 1};
  static constexpr uint32_t kInFlightLimits[4] = {64, 1, 4, 0};
  auto frame = codec::newFrame();
  auto hello = codec::rootOf(*frame).initHello();
  hello.setVersionMin(kVersions[choices & 3][0]);
  hello.setVersionMax(kVersions[choices & 3][1]);
  hello.setPeerId(((choices & 4) ? kResponderId : kInitiatorId).asBytes());
  hello.setName("fuzz-initiator");
  hello.initFeatures(1).set(0, "delta");
  codec::Summary{1, 1, idOf(0xcd)}.toWire(hello.initLibrary());
  auto limits = hello.initLimits();
  uint32_t frameLimit = kFrameLimits[(choices >> 3) & 3];
  limits.setMaxFrameBytes(frameLimit);
  limits.setMaxInFlight(kInFlightLimits[(choices >> 5) & 3]);
  // [FR-19]: as large as the frames allow (the 64 KiB - 1 frames are invalid anyway).
  limits.setMaxChunkBytes(
      (choices & 0x80) ? 4096
                       : kj::min(uint32_t(4) << 20, frameLimit - codec::kFrameOverheadBytes));
  hello.setInstanceId(99);
  return frame;
}

codec::FrameBuilder getLibraryFrame(uint64_t id, Input& in) {
  uint8_t since = in.byte();
  auto frame = codec::newFrame();
  auto g = codec::rootOf(*frame).initGetLibrary();
  g.setId(id);
  switch (since & 3) {
    case 0: break;  // nothing held: a snapshot
    case 1:         // a revision of ours, maybe from the future
      g.setSinceEpoch(kEpoch);
      g.setSinceRev(1 + (since >> 2) % 6);
      break;
    case 2:  // another epoch
      g.setSinceEpoch(kEpoch + 1);
      g.setSinceRev(1);
      break;
    case 3: g.setSinceEpoch(kEpoch); break;  // rev 0 with an epoch: invalid
  }
  return frame;
}

codec::FrameBuilder getManifestFrame(uint64_t id, Input& in) {
  auto frame = codec::newFrame();
  auto g = codec::rootOf(*frame).initGetManifest();
  g.setId(id);
  g.setItemId(itemChoice(in.byte()));
  return frame;
}

codec::FrameBuilder getChunkFrame(uint64_t id, Input& in, const peer::library::Library& library,
                                  uint32_t ourMaxChunkBytes) {
  auto item = itemChoice(in.byte());
  uint8_t file = in.byte();
  uint8_t offset = in.byte();
  uint16_t length = in.u16();
  auto frame = codec::newFrame();
  auto g = codec::rootOf(*frame).initGetChunk();
  g.setId(id);
  g.setItemId(item);
  codec::Digest digest = idOf(0x77);
  KJ_IF_MAYBE (found, library.find(item)) {
    if (!(file & 0x40)) digest = (*found)->manifest.digest;
  }
  g.setManifestDigest(digest.asBytes());
  // "many" has 700 files: spread the small choices over them, and past the end.
  uint32_t index = file & 0x3f;
  if (item == "many") index *= 12;
  if (file & 0x80) index = 0xffffffffu - (file & 1);
  g.setFileIndex(index);
  uint64_t at = uint64_t(offset & 0x3f) * kChunkSize + ((offset & 0x40) ? 100 : 0);
  if (offset & 0x80) at = (uint64_t(1) << 50) - (offset & 0x3f) * 1024;  // at the 2^50 edge
  g.setOffset(at);
  uint32_t bytes = length;
  if (length == 0xffff) {
    bytes = ourMaxChunkBytes + 1;  // above our limit: Error{range}
  } else if (length >= 0xff00) {
    bytes = 65536 - 512 + (length & 0xff) * 4;  // around the 64 KiB frame limit
  }
  g.setLength(bytes);
  return frame;
}

namespace {

void fillHelloAck(wire::HelloAck::Builder ack) {
  ack.setVersion(1);
  ack.setPeerId(kInitiatorId.asBytes());
  ack.setName("fuzz");
  codec::Summary{1, 1, idOf(0xcd)}.toWire(ack.initLibrary());
  auto limits = ack.initLimits();
  limits.setMaxFrameBytes(codec::kMinFrameBytes);
  limits.setMaxInFlight(1);
  limits.setMaxChunkBytes(4096);
  ack.setInstanceId(99);
}

void fillAnnounce(wire::Announce::Builder a) {
  a.setPeerId(kInitiatorId.asBytes());
  a.setInstanceId(99);
  a.setPort(1);
  a.setName("fuzz");
  a.setVersionMin(1);
  a.setVersionMax(1);
  codec::Summary{1, 1, idOf(0xcd)}.toWire(a.initSummary());
}

}  // namespace

codec::FrameBuilder otherFrame(uint8_t kind, uint64_t id) {
  auto frame = codec::newFrame();
  auto root = codec::rootOf(*frame);
  switch (kind % 8) {
    case 0: root.initPong().setNonce(kind); break;
    case 1: codec::Summary{1, 2, idOf(0xce)}.toWire(root.initLibraryChanged().initSummary()); break;
    case 2: fillHelloAck(root.initHelloAck()); break;
    case 3: {
      auto reject = root.initReject();
      reject.setCode(wire::ErrorCode::BUSY);
      reject.setMessage("fuzz");
      break;
    }
    case 4: fillAnnounce(root.initAnnounce()); break;
    case 5: {
      auto c = root.initChunk();
      c.setId(id);
      c.initData(8);
      break;
    }
    case 6: {
      auto s = root.initLibrarySnapshot();
      s.setId(id);
      codec::Summary{1, 1, idOf(0xcd)}.toWire(s.initSummary());
      s.setLast(true);
      break;
    }
    default: {
      auto m = root.initManifest();
      m.setId(id);
      m.setItemId("alpha");
      m.setDigest(idOf(0x55).asBytes());
      m.setChunkSize(kChunkSize);
      m.setLast(true);
    }
  }
  return frame;
}

}  // namespace shoal::fuzz
