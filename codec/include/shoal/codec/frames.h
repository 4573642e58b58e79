// Builders for the small control frames every peer sends (Error, Cancel, Ping, Pong, Goodbye).
// Their text goes through sanitizeText(), so no local message can make our own frame invalid.
#pragma once

#include <capnp/message.h>
#include <shoal/schema/shoal.capnp.h>

namespace shoal::codec {

// An outgoing frame: a MallocMessageBuilder, or a pooled chunk frame (chunk-frame.h).
using FrameBuilder = kj::Own<capnp::MessageBuilder>;

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

// `text` made fit for a message field whatever it holds (a failure's description may quote peer
// bytes): invalid UTF-8 and control characters become '?', and it is cut to `maxBytes` on a
// character boundary. Every text we put in an Error, Reject or Goodbye goes through here.
kj::String sanitizeText(kj::ArrayPtr<const char> text, size_t maxBytes);

// Sets the id of a request or answer frame (kinds for which requestIdOf() is non-zero).
void setRequestId(wire::Frame::Builder frame, uint64_t id);

kj::StringPtr name(wire::ErrorCode code);

}  // namespace shoal::codec
