#include <shoal/codec/digest.h>

#include <gtest/gtest.h>

namespace shoal::codec {
namespace {

TEST(Digest, Sha256KnownAnswers) {
  // FIPS 180-2 test vectors.
  EXPECT_EQ(toHex(sha256(kj::StringPtr("abc").asBytes())),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(toHex(sha256(nullptr)),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  Sha256 incremental;
  incremental.update(kj::StringPtr("ab"));
  incremental.update(kj::StringPtr("c"));
  EXPECT_EQ(incremental.finish(), sha256(kj::StringPtr("abc").asBytes()));
  // finish() resets: the object hashes a new message.
  incremental.update(kj::StringPtr("abc"));
  EXPECT_EQ(incremental.finish(), sha256(kj::StringPtr("abc").asBytes()));
}

TEST(Digest, FromRequiresExactLength) {
  kj::byte raw[33] = {};
  EXPECT_EQ(Digest::from(kj::arrayPtr(raw, 31)), nullptr);
  EXPECT_EQ(Digest::from(kj::arrayPtr(raw, 33)), nullptr);
  EXPECT_NE(Digest::from(kj::arrayPtr(raw, 32)), nullptr);
}

TEST(Digest, LittleEndianIntegers) {
  Sha256 a, b;
  a.updateU32(0x01020304);
  a.updateU64(0x0102030405060708ull);
  kj::byte raw[] = {4, 3, 2, 1, 8, 7, 6, 5, 4, 3, 2, 1};
  b.update(kj::arrayPtr(raw, sizeof(raw)));
  EXPECT_EQ(a.finish(), b.finish());
}

}  // namespace
}  // namespace shoal::codec
