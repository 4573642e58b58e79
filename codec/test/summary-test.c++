// Summary and Digest as values: a summary survives the wire unchanged and refuses an unvalidated
// digest, prints in its short log form; digests order bytewise (unsigned) and print as lower-case
// hex; hashing in pieces, empty ones included, equals hashing at once.
#include <shoal/codec/summary.h>

#include <algorithm>

#include <gtest/gtest.h>
#include <shoal/codec/frame.h>
#include <shoal/codec/frames.h>

namespace shoal::codec {
namespace {

Digest counting(uint8_t first = 0) {
  Digest d;
  for (uint32_t i = 0; i < kDigestBytes; ++i)
    d.bytes[i] = kj::byte(first + i);
  return d;
}

Digest withFirstByte(uint8_t b) {
  Digest d;
  d.bytes[0] = b;
  return d;
}

TEST(Summary, RoundTripsThroughTheWire) {
  Summary s{0x5eed5eed12345678ull, 42, counting()};
  auto frame = newFrame();
  s.toWire(rootOf(*frame).initLibraryChanged().initSummary());
  auto result = decodeFrame(encodeFrame(*frame));
  ASSERT_TRUE(result.is<InboundFrame>());
  auto reader = result.get<InboundFrame>().root().getLibraryChanged().getSummary();
  EXPECT_EQ(reader.getEpoch(), 0x5eed5eed12345678ull);
  EXPECT_EQ(reader.getRev(), 42u);
  EXPECT_EQ(reader.getDigest(), counting().asBytes());
  auto back = Summary::fromWire(reader);
  EXPECT_EQ(back, s);
  EXPECT_FALSE(back != s);
}

TEST(Summary, EqualityLooksAtEveryField) {
  Summary s{7, 3, counting()};
  EXPECT_EQ(s, (Summary{7, 3, counting()}));
  EXPECT_NE(s, (Summary{8, 3, counting()}));
  EXPECT_NE(s, (Summary{7, 4, counting()}));
  EXPECT_NE(s, (Summary{7, 3, counting(1)}));
  EXPECT_NE(Summary(), s);  // nothing published yet: epoch 0, rev 0
}

TEST(Summary, FromWireRefusesADigestOfTheWrongLength) {
  // Only validated frames may reach fromWire(); anything else is a bug, never a summary.
  capnp::MallocMessageBuilder message;
  auto builder = message.initRoot<wire::LibrarySummary>();
  builder.setEpoch(1);
  builder.setRev(1);
  builder.setDigest(kj::StringPtr("short").asBytes());
  EXPECT_ANY_THROW(Summary::fromWire(builder.asReader()));
}

TEST(Summary, StringifiesShortForLogs) {
  Summary s{0x5eed5eed12345678ull, 42, counting()};
  EXPECT_EQ(kj::str(s), "{epoch 5eed5eed12345678, rev 42, digest 000102030405…}");
  EXPECT_EQ(kj::str(Summary()), "{epoch 0, rev 0, digest 000000000000…}");
}

TEST(Digest, OrdersBytewiseAsUnsigned) {
  EXPECT_LT(withFirstByte(0x01), withFirstByte(0x02));
  EXPECT_LT(withFirstByte(0x7F), withFirstByte(0x80));  // not signed: 0x80 sorts last
  EXPECT_FALSE(withFirstByte(0x80) < withFirstByte(0x7F));
  EXPECT_FALSE(counting() < counting());  // strict
  // The first differing byte decides, whatever follows.
  auto a = counting(), b = counting();
  a.bytes[5] = 1, b.bytes[5] = 2;
  a.bytes[31] = 0xFF, b.bytes[31] = 0;
  EXPECT_TRUE(a < b);
  EXPECT_FALSE(b < a);

  Digest list[] = {withFirstByte(0xFF), counting(), withFirstByte(0x80), Digest()};
  std::sort(std::begin(list), std::end(list));
  EXPECT_EQ(list[0], Digest());
  EXPECT_EQ(list[1], counting());
  EXPECT_EQ(list[2], withFirstByte(0x80));
  EXPECT_EQ(list[3], withFirstByte(0xFF));
}

TEST(Digest, HexIsLowerCaseAndWhole) {
  auto hex = toHex(counting(0xE0));
  EXPECT_EQ(hex, "e0e1e2e3e4e5e6e7e8e9eaebecedeeeff0f1f2f3f4f5f6f7f8f9fafbfcfdfeff");
  EXPECT_EQ(toHex(Digest()), kj::str(kj::repeat('0', 64)));
  EXPECT_EQ(kj::str(counting(0xE0)), hex);  // KJ_STRINGIFY
}

TEST(Digest, EmptyPiecesChangeNothing) {
  auto whole = sha256(kj::StringPtr("shoal").asBytes());
  Sha256 pieces;
  pieces.update(kj::StringPtr("sh"));
  pieces.update(kj::ArrayPtr<const kj::byte>());
  pieces.update(kj::StringPtr("oal"));
  pieces.update(kj::StringPtr(""));
  EXPECT_EQ(pieces.finish(), whole);
  // Only empty pieces: the digest of nothing.
  Sha256 nothing;
  nothing.update(kj::ArrayPtr<const kj::byte>());
  EXPECT_EQ(nothing.finish(), sha256(nullptr));
}

}  // namespace
}  // namespace shoal::codec
