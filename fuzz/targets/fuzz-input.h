// The bytes of one fuzz input, read front to back by a target's decoder. Reads past the end give
// 0 (and take() what is left), so every input, however short, is a complete script.
#pragma once

#include <kj/common.h>

namespace shoal::fuzz {

class Input {
 public:
  explicit Input(kj::ArrayPtr<const kj::byte> bytes) : bytes(bytes) {}
  Input(const uint8_t* data, size_t size) : bytes(data, size) {}

  bool done() const { return at >= bytes.size(); }
  uint8_t byte() { return done() ? 0 : bytes[at++]; }
  // Little-endian; the low byte is read first.
  uint16_t u16() {
    uint16_t lo = byte();
    return uint16_t(lo | uint16_t(byte()) << 8);
  }
  kj::ArrayPtr<const kj::byte> take(size_t n) {
    n = kj::min(n, bytes.size() - at);
    auto out = bytes.slice(at, at + n);
    at += n;
    return out;
  }

 private:
  kj::ArrayPtr<const kj::byte> bytes;
  size_t at = 0;
};

}  // namespace shoal::fuzz
