// The control frames every peer builds (Error, Cancel, Ping, Pong, Goodbye) and their text: each
// builder gives a frame that passes validate() with the fields it was given, sanitizeText() makes
// any text fit a message field, and setRequestId() reaches every kind that carries an id.
#include <shoal/codec/frames.h>

#include <gtest/gtest.h>
#include <shoal/codec/frame.h>
#include <shoal/codec/text.h>
#include <shoal/codec/validate.h>

#include "samples.h"

namespace shoal::codec {
namespace {

using Which = wire::Frame::Which;

// The frame as a peer receives it: encoded, decoded and validated.
InboundFrame received(capnp::MessageBuilder& message) {
  auto result = decodeFrame(encodeFrame(message));
  KJ_IF_MAYBE (failure, result.tryGet<Failure>()) {
    KJ_FAIL_ASSERT("our own frame was refused", failure->message);
  }
  return kj::mv(result.get<InboundFrame>());
}

// sanitizeText() of a literal (a char array would otherwise bring its NUL along).
kj::String sanitize(kj::StringPtr text, size_t maxBytes) {
  return sanitizeText(text, maxBytes);
}

kj::ArrayPtr<const char> raw(std::initializer_list<uint8_t> bytes, kj::Vector<char>& store) {
  for (auto b : bytes)
    store.add(char(b));
  return store.asPtr();
}

TEST(ControlFrames, ErrorCarriesEveryField) {
  auto frame = received(*errorFrame(77, wire::ErrorCode::BUSY, "too many requests", 250));
  ASSERT_EQ(frame.kind(), Which::ERROR);
  auto e = frame.root().getError();
  EXPECT_EQ(e.getId(), 77u);
  EXPECT_EQ(e.getCode(), wire::ErrorCode::BUSY);
  EXPECT_EQ(e.getMessage(), "too many requests");
  EXPECT_EQ(e.getRetryAfterMs(), 250u);
  EXPECT_EQ(requestIdOf(frame.root()), 77u);
  // retryAfterMs defaults to 0; id 0 is the connection-level error.
  auto plain = received(*errorFrame(0, wire::ErrorCode::PROTOCOL, "bad frame"));
  EXPECT_EQ(plain.root().getError().getRetryAfterMs(), 0u);
  EXPECT_EQ(plain.root().getError().getId(), 0u);
}

TEST(ControlFrames, CancelPingPongAndGoodbye) {
  auto cancel = received(*cancelFrame(9));
  ASSERT_EQ(cancel.kind(), Which::CANCEL);
  EXPECT_EQ(cancel.root().getCancel().getId(), 9u);

  auto ping = received(*pingFrame(0x1122334455667788ull));
  ASSERT_EQ(ping.kind(), Which::PING);
  EXPECT_EQ(ping.root().getPing().getNonce(), 0x1122334455667788ull);
  auto pong = received(*pongFrame(0x1122334455667788ull));
  ASSERT_EQ(pong.kind(), Which::PONG);
  EXPECT_EQ(pong.root().getPong().getNonce(), 0x1122334455667788ull);

  auto goodbye = received(*goodbyeFrame(wire::GoodbyeReason::DUPLICATE, "already connected", 41));
  ASSERT_EQ(goodbye.kind(), Which::GOODBYE);
  auto g = goodbye.root().getGoodbye();
  EXPECT_EQ(g.getReason(), wire::GoodbyeReason::DUPLICATE);
  EXPECT_EQ(g.getMessage(), "already connected");
  EXPECT_EQ(g.getLastRequestId(), 41u);
}

TEST(ControlFrames, MessagesAreSanitizedAndCutToTheProtocolDefault) {
  // 2000 bytes of text with a NUL and an invalid byte: still a frame every peer accepts.
  auto text = kj::str(kj::repeat('m', 1000), '\0', "\xFF", kj::repeat('n', 998));
  ASSERT_EQ(text.size(), 2000u);
  Limits strict;  // the defaults: maxMessageBytes 1024
  FrameBuilder frames[] = {errorFrame(1, wire::ErrorCode::INTERNAL, text),
                           goodbyeFrame(wire::GoodbyeReason::OTHER, text, 0)};
  for (auto& frame : frames) {
    auto result = decodeFrame(encodeFrame(*frame), strict);
    ASSERT_TRUE(result.is<InboundFrame>());
    auto root = result.get<InboundFrame>().root();
    auto message = root.isError() ? root.getError().getMessage() : root.getGoodbye().getMessage();
    EXPECT_EQ(message.size(), 1024u);
    EXPECT_EQ(message, kj::str(kj::repeat('m', 1000), "??", kj::repeat('n', 22)));
  }
}

TEST(SanitizeText, InvalidBytesBecomeQuestionMarks) {
  kj::Vector<char> s1, s2, s3;
  // A stray continuation byte, bytes never valid in UTF-8, an overlong '/', a surrogate.
  EXPECT_EQ(sanitizeText(raw({'a', 0x80, 'b', 0xFE, 0xFF, 0xC0, 0xAF}, s1), 100), "a?b????");
  EXPECT_EQ(sanitizeText(raw({0xED, 0xA0, 0x80, 'z'}, s2), 100), "???z");
  // A sequence cut short by the end of the text.
  EXPECT_EQ(sanitizeText(raw({'x', 0xF0, 0x9F, 0x90}, s3), 100), "x???");
  // Valid characters of every length pass untouched.
  auto fine = kj::StringPtr("a é € 🐟");
  EXPECT_EQ(sanitizeText(fine, 100), fine);
}

TEST(SanitizeText, ControlCharactersBecomeQuestionMarks) {
  kj::Vector<char> s;
  EXPECT_EQ(sanitizeText(raw({'a', 0, 'b', '\t', '\n', 0x1F, 0x7F, 'c'}, s), 100), "a?b????c");
  // A C1 control (U+0085) leaves no byte of itself and nothing invalid behind.
  auto c1 = sanitize("a\xC2\x85z", 100);
  EXPECT_TRUE(c1.startsWith("a?")) << c1.cStr();
  EXPECT_TRUE(c1.endsWith("?z")) << c1.cStr();
  EXPECT_EQ(checkText(c1, 100, TextRule::name), nullptr) << c1.cStr();
  // U+00A0 shares the C1 controls' lead byte but is no control.
  EXPECT_EQ(sanitize("a\xC2\xA0z", 100), "a\xC2\xA0z");
}

TEST(SanitizeText, ClipsOnACharacterBoundary) {
  // Exactly at the limit: kept whole.
  EXPECT_EQ(sanitize("abcd", 4), "abcd");
  EXPECT_EQ(sanitize("ab€", 5), "ab€");
  // One byte over: the whole last character goes, never part of it.
  EXPECT_EQ(sanitize("abcde", 4), "abcd");
  EXPECT_EQ(sanitize("ab€", 4), "ab");
  EXPECT_EQ(sanitize("ab€", 3), "ab");
  EXPECT_EQ(sanitize("a🐟", 4), "a");
  EXPECT_EQ(sanitize("a🐟", 5), "a🐟");
  // Replacements count against the limit too.
  kj::Vector<char> s;
  EXPECT_EQ(sanitizeText(raw({0xFF, 0xFF, 0xFF}, s), 2), "??");
  EXPECT_EQ(sanitize("anything", 0), "");
  EXPECT_EQ(sanitizeText(nullptr, 10), "");
  // Whatever the input and the cut, the result is a valid message of at most the limit.
  auto mixed = kj::str("é€🐟\x01", "\xC3", "x");
  for (size_t limit = 0; limit <= mixed.size() + 1; ++limit) {
    auto out = sanitizeText(mixed, limit);
    EXPECT_LE(out.size(), limit);
    EXPECT_EQ(checkText(out, uint32_t(limit), TextRule::name), nullptr) << limit;
  }
}

TEST(SetRequestId, ReachesEveryKindThatCarriesAnId) {
  size_t withId = 0;
  for (auto kind : samples::allKinds()) {
    auto message = samples::make(kind);
    auto root = message->getRoot<wire::Frame>();
    if (requestIdOf(root) == 0) {
      // A kind without an id field: setting one is the caller's bug.
      EXPECT_ANY_THROW(setRequestId(root, 5)) << name(kind).cStr();
      continue;
    }
    ++withId;
    setRequestId(root, 0x0123456789ull);
    EXPECT_EQ(requestIdOf(root), 0x0123456789ull) << name(kind).cStr();
    EXPECT_EQ(root.which(), kind);  // the id is set in place, the member stays
    // Still a valid frame with the same content otherwise.
    auto back = received(*message);
    EXPECT_EQ(requestIdOf(back.root()), 0x0123456789ull) << name(kind).cStr();
  }
  EXPECT_EQ(withId, 9u);
}

}  // namespace
}  // namespace shoal::codec
