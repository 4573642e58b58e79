// Frames the harness sends: well-formed builders for every kind, and the tools to break them on
// purpose (raw segment tables, bad pointers, unknown members, extra fields). codec/frames.h
// builds the small control frames; these add the rest with every field the test wants to bend.
#pragma once

#include <kj/array.h>
#include <kj/string.h>
#include <kj/vector.h>
#include <shoal/codec/digest.h>
#include <shoal/codec/frames.h>
#include <shoal/codec/summary.h>

namespace shoal::conformance {

using codec::FrameBuilder;
using Which = wire::Frame::Which;
using PeerId = codec::Digest;

// What the harness announces in its Hello / HelloAck.
struct Announce {
  PeerId peerId;
  uint64_t instanceId = 4242;
  uint16_t versionMin = 1;
  uint16_t versionMax = 1;
  kj::StringPtr name = "shoal-conform";
  codec::Summary library;  // epoch 0 means: the empty library at epoch 1, rev 1
  uint32_t maxFrameBytes = 16 << 20;
  uint32_t maxInFlight = 64;
  uint32_t maxChunkBytes = 4 << 20;
  kj::ArrayPtr<const kj::StringPtr> features;
};

// The summary of an empty library at epoch 1, rev 1.
codec::Summary emptySummary();

FrameBuilder helloFrame(const Announce& a);
FrameBuilder helloAckFrame(const Announce& a, uint16_t version = 1);
FrameBuilder rejectFrame(wire::ErrorCode code, kj::StringPtr message, uint16_t versionMin = 1,
                         uint16_t versionMax = 1);
FrameBuilder getLibraryFrame(uint64_t id, uint64_t sinceEpoch = 0, uint64_t sinceRev = 0);
FrameBuilder getManifestFrame(uint64_t id, kj::StringPtr itemId);
FrameBuilder getChunkFrame(uint64_t id, kj::StringPtr itemId, const codec::Digest& manifest,
                           uint32_t fileIndex, uint64_t offset, uint32_t length);
FrameBuilder libraryChangedFrame(const codec::Summary& summary);
FrameBuilder chunkFrame(uint64_t id, kj::ArrayPtr<const kj::byte> data);

// Text fields set from raw bytes (they may be invalid UTF-8 or hold NUL on purpose).
capnp::Text::Reader rawText(kj::ArrayPtr<const char> bytes);
kj::ArrayPtr<const char> chars(kj::StringPtr text);

// The wire form of a frame.
kj::Array<kj::byte> encode(capnp::MessageBuilder& frame);

// --- hand-made bytes ---------------------------------------------------------------------------

// Little-endian words, for segment tables and raw messages.
void putU32(kj::Vector<kj::byte>& out, uint32_t value);
void putU64(kj::Vector<kj::byte>& out, uint64_t value);

// A segment table announcing `sizes` (in words), padded as the standard framing requires.
kj::Array<kj::byte> segmentTable(kj::ArrayPtr<const uint32_t> sizes);

// One single-segment frame from raw words: the segment table, then `words`.
kj::Array<kj::byte> rawFrame(kj::ArrayPtr<const uint64_t> words);

// A frame whose root Frame struct has union discriminant `which` and no pointer target (an unknown
// member when `which` is above the schema's last ordinal).
kj::Array<kj::byte> unionOnlyFrame(uint16_t which);

// `frame` re-encoded with `extraDataWords` data words and `extraPointers` pointers appended to its
// root struct (fields a newer schema might have); the extra pointers point to small structs.
kj::Array<kj::byte> withExtraFields(capnp::MessageBuilder& frame, uint16_t extraDataWords,
                                    uint16_t extraPointers, size_t extraStructWords = 0);

// Hex of `bytes` ("0a1b…"), at most `limit` bytes shown then "…(N bytes)".
kj::String hex(kj::ArrayPtr<const kj::byte> bytes, size_t limit = 256);
// Parses hex ("ff ff 00"), ignoring spaces; a harness constant, so bad input is a harness bug.
kj::Array<kj::byte> fromHex(kj::StringPtr text);

}  // namespace shoal::conformance
