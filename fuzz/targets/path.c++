// Target `path`: codec::checkPath / checkComponent against an independent reference written
// from the spec's text (docs/protocol.md §7.2), decoding code points instead of matching byte
// patterns. Both must accept and reject exactly the same inputs, at default and at tiny limits.
#include <kj/debug.h>
#include <shoal/codec/path.h>

#include <vector>

using namespace shoal::codec;

namespace {

// Code points of strict UTF-8, or false.
bool decode(const uint8_t* s, size_t n, std::vector<uint32_t>& out) {
  size_t i = 0;
  while (i < n) {
    uint8_t b = s[i];
    uint32_t cp;
    size_t len;
    if (b < 0x80) {
      cp = b, len = 1;
    } else if ((b & 0xE0) == 0xC0) {
      cp = b & 0x1F, len = 2;
    } else if ((b & 0xF0) == 0xE0) {
      cp = b & 0x0F, len = 3;
    } else if ((b & 0xF8) == 0xF0) {
      cp = b & 0x07, len = 4;
    } else {
      return false;
    }
    if (i + len > n) return false;
    for (size_t k = 1; k < len; ++k) {
      if ((s[i + k] & 0xC0) != 0x80) return false;
      cp = cp << 6 | (s[i + k] & 0x3F);
    }
    static const uint32_t kMin[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < kMin[len]) return false;                // overlong
    if (cp >= 0xD800 && cp <= 0xDFFF) return false;  // surrogate
    if (cp > 0x10FFFF) return false;
    out.push_back(cp);
    i += len;
  }
  return true;
}

bool referencePath(const uint8_t* s, size_t n, const Limits& limits, bool single) {
  if (n == 0 || (!single && n > limits.maxPathBytes)) return false;
  std::vector<uint32_t> cps;
  if (!decode(s, n, cps)) return false;
  for (uint32_t cp : cps) {
    if (cp < 0x20 || cp == 0x7F || (cp >= 0x80 && cp <= 0x9F) || cp == '\\') return false;
    if (single && cp == '/') return false;
  }
  size_t depth = 0, start = 0;
  for (size_t i = 0; i <= n; ++i) {
    if (i == n || s[i] == '/') {
      size_t len = i - start;
      if (len == 0 || len > limits.maxComponentBytes) return false;
      if (len == 1 && s[start] == '.') return false;
      if (len == 2 && s[start] == '.' && s[start + 1] == '.') return false;
      if (++depth > limits.maxPathDepth) return false;
      start = i + 1;
    }
  }
  return true;
}

void compare(const uint8_t* data, size_t size, const Limits& limits) {
  kj::ArrayPtr<const char> text(reinterpret_cast<const char*>(data), size);
  bool ours = checkPath(text, limits) == nullptr;
  KJ_ASSERT(ours == referencePath(data, size, limits, false), ours);
  bool component = checkComponent(text, limits) == nullptr;
  KJ_ASSERT(component == referencePath(data, size, limits, true), component);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > 70000) return 0;
  compare(data, size, Limits());
  Limits tiny;
  tiny.maxPathBytes = 32;
  tiny.maxComponentBytes = 8;
  tiny.maxPathDepth = 4;
  compare(data, size, tiny);
  return 0;
}
