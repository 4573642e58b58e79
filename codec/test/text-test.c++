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

TEST(DisplayText, ControlsBecomeVisibleEscapes) {
  EXPECT_EQ(displayText(kj::StringPtr("a\x1B]0;pwned\x07"
                                      "b")),
            "a\\x1B]0;pwned\\x07b");  // OSC title
  EXPECT_EQ(displayText(kj::StringPtr("1\r2\n3\t4\x7F")), "1\\r2\\n3\\t4\\x7F");
  EXPECT_EQ(displayText(kj::StringPtr("x\xC2\x9By")), "x\\u009By");  // C1 CSI
  // Bidi overrides, isolates and marks, and the line separators.
  EXPECT_EQ(displayText(kj::StringPtr("evil\xE2\x80\xAEtxt.exe")), "evil\\u202Etxt.exe");
  EXPECT_EQ(displayText(kj::StringPtr("\xE2\x81\xA6"
                                      "a\xE2\x81\xA9")),
            "\\u2066a\\u2069");
  EXPECT_EQ(displayText(kj::StringPtr("\xE2\x80\x8F\xD8\x9C")), "\\u200F\\u061C");
  EXPECT_EQ(displayText(kj::StringPtr("\xE2\x80\xA8\xE2\x80\xA9")), "\\u2028\\u2029");
}

TEST(DisplayText, InvalidBytesAreEscapedOneByOne) {
  kj::Vector<char> a, b;
  EXPECT_EQ(displayText(raw({'a', 0xFF, 0xC0, 0xAF, 'b'}, a)), "a\\xFF\\xC0\\xAFb");
  EXPECT_EQ(displayText(raw({'x', 0xF0, 0x9F, 0x90}, b)), "x\\xF0\\x9F\\x90");  // truncated
}

TEST(DisplayText, PrintableTextIsKeptAndTheEscapeIsIdempotent) {
  kj::StringPtr fine = "caf\xC3\xA9 \xF0\x9F\x90\x9F \xC2\xA0 back\\slash \xE2\x80\x8B";
  EXPECT_EQ(displayText(fine), fine);
  auto once = displayText(kj::StringPtr("\x1B[2J\xE2\x80\xAE\xFF"));
  EXPECT_EQ(displayText(once), once);
  for (auto c : once)
    EXPECT_FALSE(isDisplayControl(kj::byte(c)) && kj::byte(c) < 0x80) << int(c);
}

}  // namespace
}  // namespace shoal::codec
