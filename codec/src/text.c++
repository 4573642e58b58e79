#include <shoal/codec/text.h>

namespace shoal::codec {

bool isValidUtf8(kj::ArrayPtr<const char> text) {
  auto bytes = text.asBytes();
  size_t i = 0;
  while (i < bytes.size()) {
    kj::byte b = bytes[i];
    if (b < 0x80) {
      ++i;
      continue;
    }
    // Lead byte: number of continuation bytes and the smallest valid second byte range, which
    // rules out overlong forms, surrogates and code points above U+10FFFF in one comparison.
    size_t extra;
    kj::byte lo = 0x80, hi = 0xBF;
    if (b >= 0xC2 && b <= 0xDF) {
      extra = 1;
    } else if (b >= 0xE0 && b <= 0xEF) {
      extra = 2;
      if (b == 0xE0) lo = 0xA0;
      if (b == 0xED) hi = 0x9F;
    } else if (b >= 0xF0 && b <= 0xF4) {
      extra = 3;
      if (b == 0xF0) lo = 0x90;
      if (b == 0xF4) hi = 0x8F;
    } else {
      return false;
    }
    if (bytes.size() - i <= extra) return false;
    if (bytes[i + 1] < lo || bytes[i + 1] > hi) return false;
    for (size_t k = 2; k <= extra; ++k) {
      if ((bytes[i + k] & 0xC0) != 0x80) return false;
    }
    i += extra + 1;
  }
  return true;
}

bool isControlAt(kj::ArrayPtr<const char> text, size_t i) {
  kj::byte b = text[i];
  if (b < 0x20 || b == 0x7F) return true;
  return b == 0xC2 && i + 1 < text.size() && kj::byte(text[i + 1]) <= 0x9F;
}

kj::Maybe<kj::String> checkText(kj::ArrayPtr<const char> text, uint32_t maxBytes, TextRule rule) {
  if (text.size() > maxBytes) {
    return kj::str("text of ", text.size(), " bytes exceeds the limit of ", maxBytes);
  }
  if (!isValidUtf8(text)) return kj::str("text is not valid UTF-8");
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '\0') return kj::str("text contains NUL at byte ", i);
    if (rule == TextRule::name && isControlAt(text, i)) {
      return kj::str("name contains a control character at byte ", i);
    }
  }
  return nullptr;
}

}  // namespace shoal::codec
