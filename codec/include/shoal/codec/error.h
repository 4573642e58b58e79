// Typed codec failures. Every way bytes from a peer can be wrong has a CodecError value; each maps
// to the wire ErrorCode a peer sends back (docs/protocol.md "Errors").
#pragma once

#include <stdint.h>

#include <kj/common.h>
#include <kj/string.h>
#include <shoal/schema/shoal.capnp.h>

namespace shoal::codec {

enum class CodecError : uint8_t {
  truncated,       // the stream ended inside a frame
  segmentCount,    // segment count 0 (first word 0xFFFFFFFF) or above Limits::maxSegments
  frameTooLarge,   // segment table announces more than Limits::maxFrameBytes
  malformed,       // Cap'n Proto rejected the message (bad pointer, traversal or nesting limit)
  unknownMessage,  // a Frame union member this version does not know
  badField,        // a scalar field outside its allowed values (zero id, version order, ...)
  badText,         // text not UTF-8, with NUL or control characters, or too long
  badPath,         // a path or item id breaking the path rules
  badDigest,       // a digest or peer id that is not exactly 32 bytes
  badCount,        // a list longer than its limit, or page counters that do not add up
  badRange,        // a chunk range that is empty, too long or overflows
};

kj::StringPtr name(CodecError error);

// The wire code a peer answers with when it receives bytes failing this way.
wire::ErrorCode toWireCode(CodecError error);

// A failure with its detail. `requestId` is set when the fault concerns a single request that can
// be answered with Error{id} without closing the connection (docs/protocol.md [RQ-8]).
struct Failure {
  CodecError error;
  kj::String message;
  kj::Maybe<uint64_t> requestId = nullptr;
};

Failure fail(CodecError error, kj::String message);

// For kj::str() and KJ_LOG.
inline kj::StringPtr KJ_STRINGIFY(CodecError e) {
  return name(e);
}

}  // namespace shoal::codec
