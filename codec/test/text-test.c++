// Text rules at the byte level: C1 controls against the other characters sharing their lead byte,
// continuation bytes checked to the last byte of a sequence, and isControlAt() never reading past
// the end of its text.
#include <shoal/codec/text.h>

#include <gtest/gtest.h>
#include <kj/vector.h>

namespace shoal::codec {
namespace {

kj::ArrayPtr<const char> raw(std::initializer_list<uint8_t> bytes, kj::Vector<char>& store) {
  for (auto b : bytes)
    store.add(char(b));
  return store.asPtr();
}

TEST(TextRules, C1ControlsAreRefusedInNamesOnly) {
  // U+0080..U+009F are controls; U+00A0..U+00BF share their lead byte 0xC2 and are not.
  for (auto c1 : {"\xC2\x80", "\xC2\x85", "\xC2\x9F"}) {
    auto name = kj::str("a", c1, "b");
    EXPECT_NE(checkText(name, 100, TextRule::name), nullptr) << name.cStr();
    EXPECT_EQ(checkText(name, 100, TextRule::message), nullptr) << name.cStr();
    EXPECT_TRUE(isControlAt(name, 1));
  }
  for (auto printable : {"\xC2\xA0", "\xC2\xA9", "\xC2\xBF"}) {
    auto name = kj::str("a", printable, "b");
    EXPECT_EQ(checkText(name, 100, TextRule::name), nullptr) << name.cStr();
    EXPECT_FALSE(isControlAt(name, 1));
  }
  // Other lead bytes are never controls, whatever follows.
  EXPECT_FALSE(isControlAt(kj::StringPtr("\xC3\x85"), 0));
  EXPECT_EQ(checkText(kj::StringPtr("\xC3\x85"), 100, TextRule::name), nullptr);
}

TEST(TextRules, IsControlAtStaysWithinTheText) {
  // A lead byte 0xC2 at the very end (only possible on invalid text) reads nothing beyond it.
  kj::Vector<char> store;
  auto text = raw({'a', 0xC2, 0x85}, store).slice(0, 2);
  EXPECT_FALSE(isControlAt(text, 1));
  EXPECT_TRUE(isControlAt(raw({0x7F}, store).slice(3, 4), 0));
}

TEST(TextRules, EveryContinuationByteIsChecked) {
  kj::Vector<char> a, b, c, d, e;
  EXPECT_TRUE(isValidUtf8(raw({0xE2, 0x82, 0xAC}, a)));              // €
  EXPECT_FALSE(isValidUtf8(raw({0xE2, 0x82, 0x41}, b)));             // third byte 'A'
  EXPECT_TRUE(isValidUtf8(raw({0xF0, 0x9F, 0x90, 0x9F}, c)));        // 🐟
  EXPECT_FALSE(isValidUtf8(raw({0xF0, 0x9F, 0x90, 0xC0}, d)));       // fourth byte a lead byte
  EXPECT_FALSE(isValidUtf8(raw({0xF0, 0x9F, 0x41, 0x9F, 'x'}, e)));  // third byte 'A'
  kj::Vector<char> f;
  EXPECT_NE(checkText(raw({'o', 'k', 0xE2, 0x82, 0x41}, f), 100, TextRule::message), nullptr);
}

}  // namespace
}  // namespace shoal::codec
