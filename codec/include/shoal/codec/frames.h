// Builders for the small control frames every peer sends (Error, Cancel, Ping, Pong, Goodbye).
// Text is cut to the protocol's message limit at a UTF-8 boundary, so a long local message can
// never make our own frame invalid.
#pragma once

#include <capnp/message.h>
#include <shoal/schema/shoal.capnp.h>

namespace shoal::codec {

using FrameBuilder = kj::Own<capnp::MallocMessageBuilder>;

// A new message whose root is a Frame; set the union member on `.root()`.
FrameBuilder newFrame(size_t firstSegmentWords = 256);
inline wire::Frame::Builder rootOf(capnp::MessageBuilder& message) {
  return message.getRoot<wire::Frame>();
}

FrameBuilder errorFrame(uint64_t id, wire::ErrorCode code, kj::StringPtr message,
                        uint32_t retryAfterMs = 0);
FrameBuilder cancelFrame(uint64_t id);
FrameBuilder pingFrame(uint64_t nonce);
FrameBuilder pongFrame(uint64_t nonce);
FrameBuilder goodbyeFrame(wire::GoodbyeReason reason, kj::StringPtr message,
                          uint64_t lastRequestId);

// `text` cut to at most `maxBytes` without splitting a UTF-8 sequence (a copy: NUL-terminated).
kj::String clipUtf8(kj::StringPtr text, size_t maxBytes);

// Sets the id of a request or answer frame (kinds for which requestIdOf() is non-zero).
void setRequestId(wire::Frame::Builder frame, uint64_t id);

kj::StringPtr name(wire::ErrorCode code);

}  // namespace shoal::codec
