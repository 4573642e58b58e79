// Peer id text form: Syncthing's published device ids as known answers, round trips, and the
// check characters catching every single-character change.
#include <gtest/gtest.h>
#include <kj/debug.h>
#include <kj/encoding.h>
#include <shoal/peer/transport/identity.h>
#include <random>

namespace shoal::peer {
namespace {

PeerId fromHex(kj::StringPtr hex) {
  auto bytes = kj::decodeHex(hex);
  EXPECT_FALSE(bytes.hadErrors);
  return KJ_ASSERT_NONNULL(PeerId::from(bytes));
}

// Syncthing device ids from its own test suites (lib/protocol, lib/config), decoded to bytes with
// Python's base64.b32decode: an implementation independent of ours.
struct Known {
  const char* text;
  const char* hex;
};
const Known kKnown[] = {
    {"P56IOI7-MZJNU2Y-IQGDREY-DM2MGTI-MGL3BXN-PQ6W5BM-TBBZ4TJ-XZWICQ2",
     "7f7c8723ecca5b4d22061c4981b34c34d865ec376be1eb74330873c9a6f9b205"},
    {"GYRZZQB-IRNPV4Z-T7TC52W-EQYJ3TT-FDQW6MW-DFLMU42-SSSU6EM-FBK2VAY",
     "36239cc0288b5f5e4ff31775624309dcca385bccb0cab6539294a9e230a156aa"},
    {"LGFPDIT-7SKNNJL-VJZA4FC-7QNCRKA-CE753K7-2BW5QDK-2FOZ7FR-FEP57QJ",
     "598af1a27f929ad4d539070a2fc1a28a844ff76afe836ec07a2bb3f2c4a47f7f"},
};

TEST(PeerId, FormatsSyncthingsKnownIds) {
  for (auto& known : kKnown) {
    EXPECT_EQ(formatPeerId(fromHex(known.hex)), kj::StringPtr(known.text));
    EXPECT_EQ(KJ_ASSERT_NONNULL(parsePeerId(known.text)), fromHex(known.hex)) << known.text;
  }
}

TEST(PeerId, RoundTripsRandomIds) {
  std::mt19937 random(12345);
  for (int i = 0; i < 1000; ++i) {
    PeerId id;
    for (auto& b : id.bytes)
      b = kj::byte(random());
    auto text = formatPeerId(id);
    ASSERT_EQ(text.size(), 63u);
    for (size_t at = 7; at < text.size(); at += 8)
      EXPECT_EQ(text[at], '-');
    EXPECT_EQ(KJ_ASSERT_NONNULL(parsePeerId(text)), id) << text.cStr();
  }
}

TEST(PeerId, AcceptsLowerCaseAndAnyDashesOrSpaces) {
  auto id = fromHex(kKnown[0].hex);
  const char* forms[] = {
      "p56ioi7-mzjnu2y-iqgdrey-dm2mgti-mgl3bxn-pq6w5bm-tbbz4tj-xzwicq2",
      "P56IOI7MZJNU2YIQGDREYDM2MGTIMGL3BXNPQ6W5BMTBBZ4TJXZWICQ2",
      "P56IOI7 MZJNU2Y IQGDREY DM2MGTI MGL3BXN PQ6W5BM TBBZ4TJ XZWICQ2",
      "P56IOI-7MZJNU2Y-IQGDR-EYDM2M-GTI-MGL3-BXNPQ6-W5BM-TBB-Z4TJ-XZWICQ2",
      "-P56ioi7MZJNU2YIQGDREYDM2MGTIMGL3BXNPQ6W5BMTBBZ4TJXZWICQ2- ",
  };
  for (auto form : forms) {
    KJ_IF_MAYBE (parsed, parsePeerId(form)) {
      EXPECT_EQ(*parsed, id) << form;
    } else {
      ADD_FAILURE() << "refused " << form;
    }
  }
}

TEST(PeerId, EverySingleCharacterChangeIsRefused) {
  // Luhn mod 32 detects every substitution: each of the 56 characters (data and check) replaced
  // by each of the 31 other alphabet characters must be refused.
  const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  auto text = kj::heapString(kKnown[1].text);
  size_t changes = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '-') continue;
    char original = text[i];
    for (size_t a = 0; a < 32; ++a) {
      if (alphabet[a] == original) continue;
      text[i] = alphabet[a];
      EXPECT_EQ(parsePeerId(text), nullptr) << text.cStr();
      ++changes;
    }
    text[i] = original;
  }
  EXPECT_EQ(changes, 56u * 31u);
  EXPECT_NE(parsePeerId(text), nullptr);  // restored
}

TEST(PeerId, SwappedNeighboursAreRefused) {
  auto text = kj::heapString(kKnown[2].text);
  size_t refused = 0, swaps = 0;
  for (size_t i = 0; i + 1 < text.size(); ++i) {
    if (text[i] == '-' || text[i + 1] == '-' || text[i] == text[i + 1]) continue;
    std::swap(text[i], text[i + 1]);
    ++swaps;
    if (parsePeerId(text) == nullptr) ++refused;
    std::swap(text[i], text[i + 1]);
  }
  // Luhn catches most transpositions, not all; a check that ignored order would catch none.
  EXPECT_GT(refused, swaps * 8 / 10);
}

TEST(PeerId, RefusesBadLengthsAndCharacters) {
  auto good = kj::StringPtr(kKnown[0].text);
  EXPECT_EQ(parsePeerId(""), nullptr);
  EXPECT_EQ(parsePeerId(good.slice(1)), nullptr);              // 55 characters
  EXPECT_EQ(parsePeerId(kj::str(good, "A")), nullptr);         // 57 characters
  EXPECT_EQ(parsePeerId(kj::str(good, "-P56IOI7")), nullptr);  // far too long
  EXPECT_EQ(parsePeerId("P56IOI7MZJNU2IQGDREYDM2MGTMGL3BXNPQ6W5BTBBZ4TJXZWICQ"), nullptr);
  for (char bad : {'0', '1', '8', '9', '=', '_', '.', '\t', '\n', '\0'}) {
    auto text = kj::heapString(good);
    text[3] = bad;
    EXPECT_EQ(parsePeerId(text), nullptr) << int(bad);
  }
  EXPECT_EQ(parsePeerId(kj::str(good, "=")), nullptr);
  EXPECT_EQ(parsePeerId("P56IOI7-MZJNU2Y-IQGDREY-DM2MGTI-MGL3BXN-PQ6W5BM-TBBZ4TJ-XZWICQ\xc3\xa9"),
            nullptr);
}

// Our own Luhn, to build texts that pass the check but break another rule.
char luhn(kj::StringPtr group) {
  const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  unsigned factor = 1, sum = 0;
  for (char c : group) {
    unsigned addend = factor * unsigned(strchr(alphabet, c) - alphabet);
    factor = 3 - factor;
    sum += addend / 32 + addend % 32;
  }
  return alphabet[(32 - sum % 32) % 32];
}

TEST(PeerId, RefusesNonZeroPaddingBits) {
  // The last data character carries 1 bit of the id and 4 zero bits. "TBBZ4TJXZWICQ" ends in Q
  // (10000); R (10001) names the same id with a padding bit set and must be refused, even with a
  // correct check character.
  auto text = kj::str("P56IOI7MZJNU2YIQGDREYDM2MGTIMGL3BXNPQ6W5BM");
  EXPECT_EQ(luhn("TBBZ4TJXZWICQ"), '2');  // our Luhn agrees with Syncthing's
  EXPECT_NE(parsePeerId(kj::str(text, "TBBZ4TJXZWICQ2")), nullptr);
  EXPECT_EQ(parsePeerId(kj::str(text, "TBBZ4TJXZWICR", luhn("TBBZ4TJXZWICR"))), nullptr);
  EXPECT_EQ(parsePeerId(kj::str(text, "TBBZ4TJXZWICB", luhn("TBBZ4TJXZWICB"))), nullptr);
  // ...while a changed data bit with its recomputed check char is simply another id.
  KJ_IF_MAYBE (other, parsePeerId(kj::str(text, "TBBZ4TJXZWICA", luhn("TBBZ4TJXZWICA")))) {
    EXPECT_NE(*other, fromHex(kKnown[0].hex));
    EXPECT_EQ(other->bytes[31], 0x04);  // 0x05 with its lowest bit cleared
  } else {
    ADD_FAILURE() << "a valid id was refused";
  }
}

TEST(PeerId, IsTheSha256OfTheKey) {
  auto spki = kj::heapArray<kj::byte>({1, 2, 3});
  // SHA-256("\x01\x02\x03"), from coreutils' sha256sum.
  EXPECT_EQ(toHex(peerIdOf(spki)),
            "039058c6f2c0cb492c533b0a4d14ef77cc0f78abccced5287d84a1a2011cfb81");
}

}  // namespace
}  // namespace shoal::peer
