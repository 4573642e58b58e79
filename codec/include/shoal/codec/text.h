// UTF-8 and text-field rules shared by path validation and message validation, and the one
// escape every human-readable output applies to text it did not write itself (displayText()).
#pragma once

#include <stdint.h>

#include <kj/common.h>
#include <kj/string.h>

namespace shoal::codec {

// Strict UTF-8: shortest form only, no surrogates, nothing above U+10FFFF.
bool isValidUtf8(kj::ArrayPtr<const char> text);

// One strictly valid UTF-8 character starting at byte `i` of `text`, or null when the bytes there
// are not one (a stray continuation byte, a truncated or overlong sequence, a surrogate...).
struct Utf8Char {
  uint32_t codePoint;
  uint8_t bytes;  // 1..4
};
kj::Maybe<Utf8Char> decodeUtf8At(kj::ArrayPtr<const char> text, size_t i);

// Characters that change how a terminal shows the text around them: C0 controls, DEL, C1
// controls, the line and paragraph separators U+2028/U+2029, and the bidirectional marks,
// embeddings, overrides and isolates (U+061C, U+200E/F, U+202A..U+202E, U+2066..U+2069).
bool isDisplayControl(uint32_t codePoint);

// `text` made safe for a terminal or a log line: every display control and every byte that is
// not valid UTF-8 becomes a visible escape (`\n`, `\r`, `\t`, `\x1B` for single bytes, `\u202E`
// for other characters); everything else is kept. The result holds no display control, so
// applying it twice changes nothing (a backslash is kept as it is: the escape is for safety, not
// a reversible encoding — JSON output is the exact form).
kj::String displayText(kj::ArrayPtr<const char> text);

// True for C0 controls, DEL and C1 controls (U+0080..U+009F, encoded 0xC2 0x80..0x9F).
// Assumes valid UTF-8; `i` indexes the first byte of a character.
bool isControlAt(kj::ArrayPtr<const char> text, size_t i);

enum class TextRule : uint8_t {
  message,  // any valid UTF-8 without NUL (Error, Reject and Goodbye messages)
  name,     // valid UTF-8 without any control character (display names)
};

// Why `text` breaks `rule` or `maxBytes`, or null when it is fine.
kj::Maybe<kj::String> checkText(kj::ArrayPtr<const char> text, uint32_t maxBytes, TextRule rule);

}  // namespace shoal::codec
