#include <shoal/codec/frames.h>

#include <kj/debug.h>
#include <kj/vector.h>
#include <shoal/codec/limits.h>
#include <shoal/codec/text.h>

namespace shoal::codec {

FrameBuilder newFrame(size_t firstSegmentWords) {
  auto message = kj::heap<capnp::MallocMessageBuilder>(firstSegmentWords);
  message->initRoot<wire::Frame>();
  return message;
}

kj::String sanitizeText(kj::ArrayPtr<const char> text, size_t maxBytes) {
  kj::Vector<char> out(kj::min(text.size(), maxBytes) + 1);
  size_t i = 0;
  while (i < text.size()) {
    // Length of the valid UTF-8 sequence at i, or 0.
    size_t length = 0;
    for (size_t n = 1; n <= 4 && i + n <= text.size(); ++n) {
      if (isValidUtf8(text.slice(i, i + n))) {
        length = n;
        break;
      }
    }
    bool keep = length > 0 && !isControlAt(text.slice(i, i + length), 0);
    size_t take = length > 0 ? length : 1;  // a whole control character becomes one '?'
    if (out.size() + (keep ? length : 1) > maxBytes) break;
    if (keep) {
      out.addAll(text.slice(i, i + length));
    } else {
      out.add('?');
    }
    i += take;
  }
  out.add('\0');
  return kj::String(out.releaseAsArray());
}

FrameBuilder errorFrame(uint64_t id, wire::ErrorCode code, kj::StringPtr message,
                        uint32_t retryAfterMs) {
  auto frame = newFrame();
  auto error = rootOf(*frame).initError();
  error.setId(id);
  error.setCode(code);
  error.setMessage(sanitizeText(message, kMaxMessageBytes));
  error.setRetryAfterMs(retryAfterMs);
  return frame;
}

FrameBuilder cancelFrame(uint64_t id) {
  auto frame = newFrame(16);
  rootOf(*frame).initCancel().setId(id);
  return frame;
}

FrameBuilder pingFrame(uint64_t nonce) {
  auto frame = newFrame(16);
  rootOf(*frame).initPing().setNonce(nonce);
  return frame;
}

FrameBuilder pongFrame(uint64_t nonce) {
  auto frame = newFrame(16);
  rootOf(*frame).initPong().setNonce(nonce);
  return frame;
}

FrameBuilder goodbyeFrame(wire::GoodbyeReason reason, kj::StringPtr message,
                          uint64_t lastRequestId) {
  auto frame = newFrame();
  auto goodbye = rootOf(*frame).initGoodbye();
  goodbye.setReason(reason);
  goodbye.setMessage(sanitizeText(message, kMaxMessageBytes));
  goodbye.setLastRequestId(lastRequestId);
  return frame;
}

void setRequestId(wire::Frame::Builder frame, uint64_t id) {
  using Which = wire::Frame::Which;
  switch (frame.which()) {
    case Which::GET_LIBRARY: frame.getGetLibrary().setId(id); return;
    case Which::GET_MANIFEST: frame.getGetManifest().setId(id); return;
    case Which::GET_CHUNK: frame.getGetChunk().setId(id); return;
    case Which::LIBRARY_SNAPSHOT: frame.getLibrarySnapshot().setId(id); return;
    case Which::LIBRARY_DELTA: frame.getLibraryDelta().setId(id); return;
    case Which::MANIFEST: frame.getManifest().setId(id); return;
    case Which::CHUNK: frame.getChunk().setId(id); return;
    case Which::ERROR: frame.getError().setId(id); return;
    case Which::CANCEL: frame.getCancel().setId(id); return;
    default: KJ_FAIL_ASSERT("frame kind has no request id", kj::uint(frame.which()));
  }
}

kj::StringPtr name(wire::ErrorCode code) {
  using C = wire::ErrorCode;
  switch (code) {
    case C::PROTOCOL: return "protocol";
    case C::UNSUPPORTED_VERSION: return "unsupportedVersion";
    case C::UNTRUSTED: return "untrusted";
    case C::NOT_FOUND: return "notFound";
    case C::UNAVAILABLE: return "unavailable";
    case C::RANGE: return "range";
    case C::STALE: return "stale";
    case C::BUSY: return "busy";
    case C::TOO_LARGE: return "tooLarge";
    case C::CANCELLED: return "cancelled";
    case C::SHUTTING_DOWN: return "shuttingDown";
    case C::INTERNAL: return "internal";
  }
  return "unknown";
}

}  // namespace shoal::codec
