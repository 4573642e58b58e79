// The input language of the `session` fuzz target (session.c++): byte 0 holds options, then
// elements until the input ends, each a tag byte (low nibble) and its fields. Frames are built
// from the fields, so ids, digests and ranges stay meaningful under mutation; FRAME and RAW carry
// bytes verbatim (recorded seeds use FRAME). The frame builders live here; the driver decides when
// the frames go out, the model (session-model.h) what must come back.
//   options bit 0: the owner refuses the Hello        bit 1: answers held until RELEASE
//           bits 2-3: our maxInFlight: 64, 2, 1, 8
#pragma once

#include <kj/time.h>
#include <shoal/codec/frames.h>
#include <shoal/peer/library/library.h>

#include "session/test-peers.h"
#include "targets/fuzz-input.h"

namespace shoal::fuzz {

enum class Tag : uint8_t {
  FRAME,         // u16 length, bytes
  RAW,           // u8 length, bytes
  HELLO,         // u8 choices (versions, peer id, limits)
  GET_LIBRARY,   // u8 id step, u8 since
  GET_MANIFEST,  // u8 id step, u8 item
  GET_CHUNK,     // u8 id step, u8 item, u8 file (+ wrong digest), u8 offset, u16 length
  CANCEL,        // u8 which id
  PING,          // u8 nonce
  GOODBYE,       // u8 reason, u8 lastRequestId
  ERROR,         // u8 id, u8 code
  OTHER,         // u8 kind: a valid frame the responder must not get (HelloAck, Chunk, ...)
  ADVANCE,       // u8 amount: virtual time passes (deadlines fire), then the owner's tick()
  RELEASE,       // u8 count: held answers go out (0: all)
  PAUSE,         // we stop reading what the session sends
  RESUME,        // we read again; the session's backlog is measured
  BATCH,         // u8 n: the next n frames go out in one write
};
kj::StringPtr nameOf(Tag tag);

constexpr size_t kMaxInput = 32 * 1024;
constexpr uint32_t kInFlight[4] = {64, 2, 1, 8};
// ADVANCE: amount bits 0-5 count units of bits 6-7.
constexpr kj::Duration kUnits[4] = {10 * kj::MILLISECONDS, 250 * kj::MILLISECONDS, 1 * kj::SECONDS,
                                    5 * kj::SECONDS};

inline const peer::PeerId kResponderId = peer::test::idOf(2);  // the session under test
inline const peer::PeerId kInitiatorId = peer::test::idOf(1);  // the script

// An item id a request names: the fixture's ids, one in the wrong case, or no valid id at all.
kj::StringPtr itemChoice(uint8_t b);

// The frames of the elements; each reads its fields from `in` in the order the tags list them.
codec::FrameBuilder helloFrame(uint8_t choices);
codec::FrameBuilder getLibraryFrame(uint64_t id, Input& in);
codec::FrameBuilder getManifestFrame(uint64_t id, Input& in);
// `ourMaxChunkBytes`: the limit the session announced (a length above it is a range error).
codec::FrameBuilder getChunkFrame(uint64_t id, Input& in, const peer::library::Library& library,
                                  uint32_t ourMaxChunkBytes);
// A valid frame a responder must not get; `id` for those that carry a request id.
codec::FrameBuilder otherFrame(uint8_t kind, uint64_t id);

}  // namespace shoal::fuzz
