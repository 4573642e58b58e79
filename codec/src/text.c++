#include <shoal/codec/text.h>

#include <kj/debug.h>
#include <kj/vector.h>

namespace shoal::codec {

kj::Maybe<Utf8Char> decodeUtf8At(kj::ArrayPtr<const char> text, size_t i) {
  auto bytes = text.asBytes();
  KJ_IREQUIRE(i < bytes.size());
  kj::byte b = bytes[i];
  if (b < 0x80) return Utf8Char{b, 1};
  // Lead byte: number of continuation bytes and the valid range of the second byte, which rules
  // out overlong forms, surrogates and code points above U+10FFFF in one comparison.
  size_t extra;
  kj::byte lo = 0x80, hi = 0xBF;
  uint32_t codePoint;
  if (b >= 0xC2 && b <= 0xDF) {
    extra = 1;
    codePoint = b & 0x1F;
  } else if (b >= 0xE0 && b <= 0xEF) {
    extra = 2;
    codePoint = b & 0x0F;
    if (b == 0xE0) lo = 0xA0;
    if (b == 0xED) hi = 0x9F;
  } else if (b >= 0xF0 && b <= 0xF4) {
    extra = 3;
    codePoint = b & 0x07;
    if (b == 0xF0) lo = 0x90;
    if (b == 0xF4) hi = 0x8F;
  } else {
    return nullptr;
  }
  if (bytes.size() - i <= extra) return nullptr;
  if (bytes[i + 1] < lo || bytes[i + 1] > hi) return nullptr;
  for (size_t k = 1; k <= extra; ++k) {
    if ((bytes[i + k] & 0xC0) != 0x80) return nullptr;
    codePoint = codePoint << 6 | (bytes[i + k] & 0x3F);
  }
  return Utf8Char{codePoint, uint8_t(extra + 1)};
}

bool isValidUtf8(kj::ArrayPtr<const char> text) {
  size_t i = 0;
  while (i < text.size()) {
    KJ_IF_MAYBE (c, decodeUtf8At(text, i)) {
      i += c->bytes;
    } else {
      return false;
    }
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

bool isDisplayControl(uint32_t c) {
  return c < 0x20 || (c >= 0x7F && c <= 0x9F) || c == 0x061C || c == 0x200E || c == 0x200F ||
         c == 0x2028 || c == 0x2029 || (c >= 0x202A && c <= 0x202E) || (c >= 0x2066 && c <= 0x2069);
}

kj::String displayText(kj::ArrayPtr<const char> text) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  kj::Vector<char> out(text.size());
  size_t i = 0;
  while (i < text.size()) {
    auto c = decodeUtf8At(text, i);
    uint32_t codePoint = 0;
    KJ_IF_MAYBE (valid, c) {
      if (!isDisplayControl(valid->codePoint)) {
        out.addAll(text.slice(i, i + valid->bytes));
        i += valid->bytes;
        continue;
      }
      codePoint = valid->codePoint;
    }
    out.add('\\');
    if (c == nullptr || codePoint < 0x80) {
      kj::byte b = c == nullptr ? kj::byte(text[i]) : kj::byte(codePoint);
      switch (b) {
        case '\n': out.add('n'); break;
        case '\r': out.add('r'); break;
        case '\t': out.add('t'); break;
        default: out.addAll(std::initializer_list<char>{'x', kHex[b >> 4], kHex[b & 15]});
      }
      ++i;
    } else {
      out.add('u');
      for (int shift = 12; shift >= 0; shift -= 4)
        out.add(kHex[(codePoint >> shift) & 15]);
      i += KJ_ASSERT_NONNULL(c).bytes;
    }
  }
  return kj::heapString(out.begin(), out.size());
}

}  // namespace shoal::codec
