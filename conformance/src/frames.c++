#include <shoal/conformance/frames.h>

#include <capnp/serialize.h>
#include <kj/debug.h>
#include <shoal/codec/frame.h>
#include <shoal/codec/limits.h>
#include <shoal/codec/manifest.h>

namespace shoal::conformance {

codec::Summary emptySummary() {
  return codec::Summary{1, 1, codec::libraryDigest(nullptr)};
}

namespace {

void fillLimits(wire::PeerLimits::Builder limits, const Announce& a) {
  limits.setMaxFrameBytes(a.maxFrameBytes);
  limits.setMaxInFlight(a.maxInFlight);
  // As large as the frames allow ([FR-19]): a chunk and its frame's fields fit one frame.
  uint32_t room = a.maxFrameBytes > codec::kFrameOverheadBytes
                      ? a.maxFrameBytes - codec::kFrameOverheadBytes
                      : a.maxChunkBytes;
  limits.setMaxChunkBytes(kj::min(a.maxChunkBytes, room));
}

codec::Summary summaryOf(const Announce& a) {
  return a.library.epoch == 0 ? emptySummary() : a.library;
}

}  // namespace

FrameBuilder helloFrame(const Announce& a) {
  auto frame = codec::newFrame();
  auto h = codec::rootOf(*frame).initHello();
  h.setVersionMin(a.versionMin);
  h.setVersionMax(a.versionMax);
  h.setPeerId(a.peerId.asBytes());
  h.setName(a.name);
  auto features = h.initFeatures(a.features.size());
  for (auto i : kj::indices(a.features))
    features.set(i, a.features[i]);
  summaryOf(a).toWire(h.initLibrary());
  fillLimits(h.initLimits(), a);
  h.setInstanceId(a.instanceId);
  return frame;
}

FrameBuilder helloAckFrame(const Announce& a, uint16_t version) {
  auto frame = codec::newFrame();
  auto h = codec::rootOf(*frame).initHelloAck();
  h.setVersion(version);
  h.setPeerId(a.peerId.asBytes());
  h.setName(a.name);
  auto features = h.initFeatures(a.features.size());
  for (auto i : kj::indices(a.features))
    features.set(i, a.features[i]);
  summaryOf(a).toWire(h.initLibrary());
  fillLimits(h.initLimits(), a);
  h.setInstanceId(a.instanceId);
  return frame;
}

FrameBuilder rejectFrame(wire::ErrorCode code, kj::StringPtr message, uint16_t versionMin,
                         uint16_t versionMax) {
  auto frame = codec::newFrame();
  auto r = codec::rootOf(*frame).initReject();
  r.setCode(code);
  r.setMessage(message);
  r.setVersionMin(versionMin);
  r.setVersionMax(versionMax);
  return frame;
}

FrameBuilder getLibraryFrame(uint64_t id, uint64_t sinceEpoch, uint64_t sinceRev) {
  auto frame = codec::newFrame();
  auto g = codec::rootOf(*frame).initGetLibrary();
  g.setId(id);
  g.setSinceEpoch(sinceEpoch);
  g.setSinceRev(sinceRev);
  return frame;
}

FrameBuilder getManifestFrame(uint64_t id, kj::StringPtr itemId) {
  auto frame = codec::newFrame();
  auto g = codec::rootOf(*frame).initGetManifest();
  g.setId(id);
  g.setItemId(itemId);
  return frame;
}

FrameBuilder getChunkFrame(uint64_t id, kj::StringPtr itemId, const codec::Digest& manifest,
                           uint32_t fileIndex, uint64_t offset, uint32_t length) {
  auto frame = codec::newFrame();
  auto g = codec::rootOf(*frame).initGetChunk();
  g.setId(id);
  g.setItemId(itemId);
  g.setManifestDigest(manifest.asBytes());
  g.setFileIndex(fileIndex);
  g.setOffset(offset);
  g.setLength(length);
  return frame;
}

FrameBuilder libraryChangedFrame(const codec::Summary& summary) {
  auto frame = codec::newFrame();
  summary.toWire(codec::rootOf(*frame).initLibraryChanged().initSummary());
  return frame;
}

FrameBuilder chunkFrame(uint64_t id, kj::ArrayPtr<const kj::byte> data) {
  auto frame = codec::newFrame(data.size() / 8 + 16);
  auto c = codec::rootOf(*frame).initChunk();
  c.setId(id);
  c.setData(data);
  return frame;
}

capnp::Text::Reader rawText(kj::ArrayPtr<const char> bytes) {
  return capnp::Text::Reader(bytes.begin(), bytes.size());
}

kj::ArrayPtr<const char> chars(kj::StringPtr text) {
  return text.asArray();
}

kj::Array<kj::byte> encode(capnp::MessageBuilder& frame) {
  return codec::encodeFrame(frame);
}

void putU32(kj::Vector<kj::byte>& out, uint32_t value) {
  for (int i = 0; i < 4; ++i)
    out.add(kj::byte(value >> (8 * i)));
}

void putU64(kj::Vector<kj::byte>& out, uint64_t value) {
  for (int i = 0; i < 8; ++i)
    out.add(kj::byte(value >> (8 * i)));
}

kj::Array<kj::byte> segmentTable(kj::ArrayPtr<const uint32_t> sizes) {
  kj::Vector<kj::byte> out;
  putU32(out, uint32_t(sizes.size() - 1));
  for (auto s : sizes)
    putU32(out, s);
  if (sizes.size() % 2 == 0) putU32(out, 0);
  return out.releaseAsArray();
}

kj::Array<kj::byte> rawFrame(kj::ArrayPtr<const uint64_t> words) {
  kj::Vector<kj::byte> out;
  uint32_t size = uint32_t(words.size());
  out.addAll(segmentTable(kj::arrayPtr(&size, 1)));
  for (auto w : words)
    putU64(out, w);
  return out.releaseAsArray();
}

namespace {

// Cap'n Proto struct pointers (docs: encoding spec): offset in words from the end of the pointer
// in bits 2..31, data words in bits 32..47, pointer count in bits 48..63.
constexpr uint64_t structPointer(int32_t offset, uint16_t dataWords, uint16_t pointers) {
  return (uint64_t(uint32_t(offset) << 2)) | (uint64_t(dataWords) << 32) |
         (uint64_t(pointers) << 48);
}

int32_t offsetOf(uint64_t pointer) {
  return int32_t(uint32_t(pointer)) >> 2;  // arithmetic shift keeps the sign
}

}  // namespace

kj::Array<kj::byte> unionOnlyFrame(uint16_t which) {
  uint64_t words[] = {structPointer(0, 1, 1), which, 0};
  return rawFrame(words);
}

kj::Array<kj::byte> withExtraFields(capnp::MessageBuilder& frame, uint16_t extraDataWords,
                                    uint16_t extraPointers, size_t extraStructWords) {
  auto flat = capnp::messageToFlatArray(frame);
  KJ_REQUIRE(flat.size() >= 2 && (flat.asBytes()[0] | flat.asBytes()[1]) == 0,
             "withExtraFields needs a single-segment frame");
  // Words of segment 0 (after the one-word table).
  kj::Vector<uint64_t> seg;
  auto bytes = flat.asBytes();
  for (size_t i = 8; i + 8 <= bytes.size(); i += 8) {
    uint64_t w = 0;
    for (int b = 7; b >= 0; --b)
      w = (w << 8) | bytes[i + b];
    seg.add(w);
  }
  // Root (Frame) -> pointer 0 (the message struct T).
  uint64_t root = seg[0];
  size_t rootAt = size_t(int64_t(1) + offsetOf(root));
  uint16_t rootData = uint16_t(root >> 32);
  size_t tPtrAt = rootAt + rootData;
  uint64_t tPtr = seg[tPtrAt];
  KJ_REQUIRE((tPtr & 3) == 0 && tPtr != 0, "the frame's member is not a struct");
  size_t tAt = size_t(int64_t(tPtrAt) + 1 + offsetOf(tPtr));
  uint16_t tData = uint16_t(tPtr >> 32);
  uint16_t tPointers = uint16_t(tPtr >> 48);

  size_t newAt = seg.size();
  seg.reserve(seg.size() + tData + extraDataWords + tPointers +
              extraPointers * (1 + extraStructWords));
  for (size_t i = 0; i < tData; ++i) {
    uint64_t w = seg[tAt + i];  // a copy: add() may move the vector
    seg.add(w);
  }
  for (size_t i = 0; i < extraDataWords; ++i)
    seg.add(0xa5a5a5a5a5a5a5a5ull);
  size_t newPointersAt = seg.size();
  for (size_t i = 0; i < tPointers; ++i) {
    uint64_t p = seg[tAt + tData + i];
    if (p != 0 && (p & 3) < 2) {  // struct or list pointer: relative, so re-aim it
      int64_t target = int64_t(tAt + tData + i) + 1 + offsetOf(p);
      int64_t moved = target - int64_t(newPointersAt + i + 1);
      p = (p & ~uint64_t(0xfffffffc)) | (uint64_t(uint32_t(int32_t(moved)) << 2) & 0xfffffffc);
    }
    seg.add(p);
  }
  size_t extraAt = seg.size();
  for (size_t i = 0; i < extraPointers; ++i)
    seg.add(0);
  for (size_t i = 0; i < extraPointers && extraStructWords > 0; ++i) {
    size_t structAt = seg.size();
    seg[extraAt + i] =
        structPointer(int32_t(structAt - (extraAt + i + 1)), uint16_t(extraStructWords), 0);
    for (size_t w = 0; w < extraStructWords; ++w)
      seg.add(0x5a5a5a5a5a5a5a5aull);
  }
  seg[tPtrAt] = structPointer(int32_t(newAt - (tPtrAt + 1)), uint16_t(tData + extraDataWords),
                              uint16_t(tPointers + extraPointers));
  return rawFrame(seg);
}

kj::String hex(kj::ArrayPtr<const kj::byte> bytes, size_t limit) {
  static constexpr char digits[] = "0123456789abcdef";
  size_t shown = kj::min(bytes.size(), limit);
  kj::Vector<char> out(shown * 2 + 32);
  for (size_t i = 0; i < shown; ++i) {
    out.add(digits[bytes[i] >> 4]);
    out.add(digits[bytes[i] & 15]);
  }
  if (shown < bytes.size()) out.addAll(kj::str("…(", bytes.size(), " bytes)"));
  out.add('\0');
  return kj::String(out.releaseAsArray());
}

kj::Array<kj::byte> fromHex(kj::StringPtr text) {
  kj::Vector<kj::byte> out;
  int high = -1;
  for (char c : text) {
    int v = c >= '0' && c <= '9'   ? c - '0'
            : c >= 'a' && c <= 'f' ? c - 'a' + 10
            : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                   : -1;
    if (v < 0) {
      KJ_ASSERT(c == ' ', "bad hex in a harness constant", text);
      continue;
    }
    if (high < 0) {
      high = v;
    } else {
      out.add(kj::byte(high << 4 | v));
      high = -1;
    }
  }
  KJ_ASSERT(high < 0, "odd hex digit count in a harness constant", text);
  return out.releaseAsArray();
}

}  // namespace shoal::conformance
