// Helpers shared by the codec tests.
#pragma once

#include <capnp/any.h>
#include <gtest/gtest.h>
#include <kj/vector.h>
#include <shoal/codec/frame.h>

namespace shoal::codec::test {

inline kj::Array<kj::byte> bytesOf(capnp::MessageBuilder& message) {
  return encodeFrame(message);
}

// The failure decodeFrame() reports, or a test failure if it decodes.
inline CodecError failureOf(kj::ArrayPtr<const kj::byte> bytes, const Limits& limits = Limits()) {
  auto result = decodeFrame(bytes, limits);
  KJ_IF_MAYBE (f, result.tryGet<Failure>()) {
    return f->error;
  }
  ADD_FAILURE() << "frame decoded but a failure was expected";
  return CodecError::malformed;
}

inline void putU32(kj::ArrayPtr<kj::byte> bytes, size_t offset, uint32_t value) {
  for (int i = 0; i < 4; ++i)
    bytes[offset + i] = kj::byte(value >> (8 * i));
}

// Feeds `bytes` to a decoder in pieces of the given sizes (cycled) and collects what it yields.
struct Fed {
  kj::Vector<InboundFrame> frames;
  kj::Vector<Failure> failures;
};
inline Fed feed(FrameDecoder& decoder, kj::ArrayPtr<const kj::byte> bytes,
                kj::ArrayPtr<const size_t> pieces) {
  Fed out;
  size_t at = 0, piece = 0;
  auto drain = [&]() {
    for (;;) {
      KJ_IF_MAYBE (r, decoder.next()) {
        if (r->is<Failure>()) {
          out.failures.add(kj::mv(r->get<Failure>()));
          return false;
        }
        out.frames.add(kj::mv(r->get<InboundFrame>()));
      } else {
        return true;
      }
    }
  };
  while (at < bytes.size()) {
    if (!drain()) return out;
    auto space = decoder.writable();
    size_t n = kj::min(kj::min(space.size(), bytes.size() - at), pieces[piece++ % pieces.size()]);
    memcpy(space.begin(), bytes.begin() + at, n);
    decoder.commit(n);
    at += n;
  }
  if (drain()) {
    KJ_IF_MAYBE (f, decoder.finish()) {
      out.failures.add(kj::mv(*f));
    }
  }
  return out;
}

}  // namespace shoal::codec::test
