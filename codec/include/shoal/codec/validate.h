// Validation of one decoded frame against every rule of docs/protocol.md a single frame can show:
// ids, versions, text, paths, digests, counts, ranges. Rules that depend on connection state
// (what may come when) belong to the session.
#pragma once

#include <shoal/codec/error.h>
#include <shoal/codec/limits.h>
#include <shoal/schema/shoal.capnp.h>

namespace shoal::codec {

// Null when `frame` is valid. Reads every field the spec defines, so a frame that passes can be
// read afterwards without Cap'n Proto throwing. May throw a kj::Exception on a malformed message;
// decodeFrame()/FrameDecoder turn that into Failure{malformed}.
kj::Maybe<Failure> validate(wire::Frame::Reader frame, const Limits& limits);

// True for a request kind: one that carries an id and gets exactly one terminal answer.
bool isRequest(wire::Frame::Which kind);

// The id of a request or answer frame, or 0 for kinds without one.
uint64_t requestIdOf(wire::Frame::Reader frame);

kj::StringPtr name(wire::Frame::Which kind);

}  // namespace shoal::codec
