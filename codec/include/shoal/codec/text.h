// UTF-8 and text-field rules shared by path validation and message validation.
#pragma once

#include <stdint.h>

#include <kj/common.h>
#include <kj/string.h>

namespace shoal::codec {

// Strict UTF-8: shortest form only, no surrogates, nothing above U+10FFFF.
bool isValidUtf8(kj::ArrayPtr<const char> text);

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
