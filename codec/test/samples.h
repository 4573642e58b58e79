// One valid sample of every Frame kind, deterministic: the source of the golden vectors, the
// round-trip tests, fuzz seed corpora and codec benchmarks.
#pragma once

#include <capnp/message.h>
#include <kj/array.h>
#include <shoal/codec/digest.h>
#include <shoal/schema/shoal.capnp.h>

namespace shoal::codec::samples {

// Every kind the v1 schema defines, in ordinal order.
kj::Array<wire::Frame::Which> allKinds();

// A valid frame of `kind` with every field set.
kj::Own<capnp::MallocMessageBuilder> make(wire::Frame::Which kind);

// A fixed digest derived from `seed`.
Digest digest(uint8_t seed);

// Fills a summary with fixed values.
void fillSummary(wire::LibrarySummary::Builder summary, uint64_t rev);

// A Chunk answer carrying `bytes` bytes of patterned data.
kj::Own<capnp::MallocMessageBuilder> chunk(uint64_t id, size_t bytes);

// A snapshot page of `count` entries.
kj::Own<capnp::MallocMessageBuilder> snapshot(uint64_t id, uint32_t count);

// The lower-case file name stem for a kind ("hello", "get-chunk", ...).
kj::String fileStem(wire::Frame::Which kind);

}  // namespace shoal::codec::samples
