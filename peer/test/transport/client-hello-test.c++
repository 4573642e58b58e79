// ClientHelloOffer and refusalOf(): what a ClientHello's extensions offer, read from bytes built
// here by hand (RFC 8446 §4.1.2, §4.2.1; RFC 7250 §3; RFC 7301 §3.1), malformed ones included, and
// the refusal the shoal profile gives each offer it cannot accept, in the order of
// docs/protocol.md §2.6.
#include <shoal/peer/transport/client-hello.h>

#include <gtest/gtest.h>
#include <kj/debug.h>
#include <kj/string.h>
#include <kj/vector.h>

namespace shoal::peer::tls {
namespace {

struct Extension {
  uint16_t type;
  kj::Array<kj::byte> data;
};

kj::Array<kj::byte> bytes(std::initializer_list<uint8_t> values) {
  return kj::heapArray<kj::byte>(values.begin(), values.size());
}

void putU16(kj::Vector<kj::byte>& out, size_t value) {
  out.add(kj::byte(value >> 8));
  out.add(kj::byte(value));
}

// A ClientHello without its handshake header: legacy version, random, an empty session id, one
// cipher suite, null compression, then `extensions`.
kj::Array<kj::byte> clientHello(kj::ArrayPtr<const Extension> extensions) {
  kj::Vector<kj::byte> out;
  putU16(out, 0x0303);
  for (int i = 0; i < 32; ++i)
    out.add(kj::byte(i));
  out.add(0);  // session id
  putU16(out, 2);
  putU16(out, 0x1301);  // TLS_AES_128_GCM_SHA256
  out.add(1);
  out.add(0);  // compression: null
  kj::Vector<kj::byte> block;
  for (auto& e : extensions) {
    putU16(block, e.type);
    putU16(block, e.data.size());
    block.addAll(e.data);
  }
  putU16(out, block.size());
  out.addAll(block);
  return out.releaseAsArray();
}

ClientHelloOffer parse(kj::ArrayPtr<const Extension> extensions) {
  auto body = clientHello(extensions);
  gnutls_datum_t datum{body.begin(), unsigned(body.size())};
  return ClientHelloOffer::parse(datum);
}

kj::Array<kj::byte> alpn(std::initializer_list<kj::StringPtr> names) {
  kj::Vector<kj::byte> list;
  for (auto name : names) {
    list.add(kj::byte(name.size()));
    list.addAll(name.asBytes());
  }
  kj::Vector<kj::byte> out;
  putU16(out, list.size());
  out.addAll(list);
  return out.releaseAsArray();
}

// What a shoal client offers: TLS 1.3, raw public keys both ways, ALPN shoal/1.
kj::Vector<Extension> shoalOffer() {
  kj::Vector<Extension> e;
  e.add(Extension{ClientHelloOffer::kSupportedVersions, bytes({2, 0x03, 0x04})});
  e.add(Extension{ClientHelloOffer::kServerCertType, bytes({1, 2})});
  e.add(Extension{ClientHelloOffer::kClientCertType, bytes({1, 2})});
  e.add(Extension{ClientHelloOffer::kAlpn, alpn({"shoal/1"})});
  return e;
}

// Replaces (or with null data, removes) the extension of `type`.
kj::Vector<Extension> with(kj::Vector<Extension> e, uint16_t type,
                           kj::Maybe<kj::Array<kj::byte>> data) {
  kj::Vector<Extension> out;
  for (auto& x : e) {
    if (x.type != type) out.add(kj::mv(x));
  }
  KJ_IF_MAYBE (d, data) {
    out.add(Extension{type, kj::mv(*d)});
  }
  return out;
}

kj::StringPtr refusal(kj::ArrayPtr<const Extension> extensions) {
  KJ_IF_MAYBE (r, refusalOf(parse(extensions))) {
    return r->why;
  }
  return "accepted";
}

gnutls_alert_description_t alertOf(kj::ArrayPtr<const Extension> extensions) {
  return KJ_ASSERT_NONNULL(refusalOf(parse(extensions)), "accepted").alert;
}

TEST(ClientHello, AShoalClientIsAccepted) {
  auto offer = parse(shoalOffer());
  EXPECT_TRUE(offer.tls13);
  EXPECT_TRUE(offer.rawKeyFromServer);
  EXPECT_FALSE(offer.otherClientCertificate);
  EXPECT_TRUE(offer.shoalAlpn);
  EXPECT_TRUE(refusalOf(offer) == nullptr);
}

TEST(ClientHello, WithoutTls13ItIsAProtocolVersionRefusal) {
  auto absent = with(shoalOffer(), ClientHelloOffer::kSupportedVersions, nullptr);
  EXPECT_EQ(alertOf(absent), GNUTLS_A_PROTOCOL_VERSION);
  auto older =
      with(shoalOffer(), ClientHelloOffer::kSupportedVersions, bytes({4, 0x03, 0x03, 0x03, 0x02}));
  EXPECT_EQ(alertOf(older), GNUTLS_A_PROTOCOL_VERSION);
  // TLS 1.3 anywhere in the list is enough.
  auto later = with(shoalOffer(), ClientHelloOffer::kSupportedVersions,
                    bytes({6, 0x7f, 0x1c, 0x03, 0x03, 0x03, 0x04}));
  EXPECT_EQ(refusal(later), "accepted"_kj);
}

TEST(ClientHello, CertificateTypesNeedRawPublicKeys) {
  // The server's key must be acceptable as a raw public key.
  auto absent = with(shoalOffer(), ClientHelloOffer::kServerCertType, nullptr);
  EXPECT_EQ(alertOf(absent), GNUTLS_A_UNSUPPORTED_CERTIFICATE);
  auto x509Server = with(shoalOffer(), ClientHelloOffer::kServerCertType, bytes({1, 0}));
  EXPECT_EQ(alertOf(x509Server), GNUTLS_A_UNSUPPORTED_CERTIFICATE);
  // The client offering only X.509 is refused; offering nothing is left to certificate_required.
  auto x509 = with(shoalOffer(), ClientHelloOffer::kClientCertType, bytes({1, 0}));
  EXPECT_EQ(refusal(x509), "the peer offers a certificate, not a raw public key"_kj);
  auto none = with(shoalOffer(), ClientHelloOffer::kClientCertType, nullptr);
  EXPECT_EQ(refusal(none), "accepted"_kj);
  auto both = with(shoalOffer(), ClientHelloOffer::kClientCertType, bytes({2, 0, 2}));
  EXPECT_EQ(refusal(both), "accepted"_kj);
}

TEST(ClientHello, AlpnMustListShoal) {
  auto none = with(shoalOffer(), ClientHelloOffer::kAlpn, nullptr);
  EXPECT_EQ(alertOf(none), GNUTLS_A_NO_APPLICATION_PROTOCOL);
  auto other = with(shoalOffer(), ClientHelloOffer::kAlpn, alpn({"h2", "http/1.1"}));
  EXPECT_EQ(alertOf(other), GNUTLS_A_NO_APPLICATION_PROTOCOL);
  auto prefix = with(shoalOffer(), ClientHelloOffer::kAlpn, alpn({"shoal/10", "shoal"}));
  EXPECT_FALSE(parse(prefix).shoalAlpn);
  auto among = with(shoalOffer(), ClientHelloOffer::kAlpn, alpn({"h2", "shoal/1"}));
  EXPECT_EQ(refusal(among), "accepted"_kj);
}

TEST(ClientHello, MalformedExtensionsOfferNothing) {
  // Lengths that run past the extension: nothing in them counts.
  auto versions = with(shoalOffer(), ClientHelloOffer::kSupportedVersions, bytes({9, 0x03, 0x04}));
  EXPECT_FALSE(parse(versions).tls13);
  auto empty = with(shoalOffer(), ClientHelloOffer::kSupportedVersions, bytes({}));
  EXPECT_FALSE(parse(empty).tls13);
  auto odd = with(shoalOffer(), ClientHelloOffer::kSupportedVersions, bytes({1, 0x03}));
  EXPECT_FALSE(parse(odd).tls13);
  auto types = with(shoalOffer(), ClientHelloOffer::kServerCertType, bytes({5, 2}));
  EXPECT_FALSE(parse(types).rawKeyFromServer);
  auto list = alpn({"shoal/1"});
  list[2] = 40;  // the name's length runs past the list
  auto names = with(shoalOffer(), ClientHelloOffer::kAlpn, kj::mv(list));
  EXPECT_FALSE(parse(names).shoalAlpn);
  auto total = with(shoalOffer(), ClientHelloOffer::kAlpn, bytes({0, 200, 7}));
  EXPECT_FALSE(parse(total).shoalAlpn);
}

TEST(ClientHello, RefusalsComeInTheProfilesOrder) {
  // No TLS 1.3, no raw key, X.509 only, no ALPN: the version is named first (§2.6).
  kj::Vector<Extension> bad;
  bad.add(Extension{ClientHelloOffer::kClientCertType, bytes({1, 0})});
  EXPECT_EQ(alertOf(bad), GNUTLS_A_PROTOCOL_VERSION);
  bad.add(Extension{ClientHelloOffer::kSupportedVersions, bytes({2, 0x03, 0x04})});
  EXPECT_EQ(refusal(bad), "the peer does not accept a raw public key"_kj);
  bad.add(Extension{ClientHelloOffer::kServerCertType, bytes({1, 2})});
  EXPECT_EQ(refusal(bad), "the peer offers a certificate, not a raw public key"_kj);
}

}  // namespace
}  // namespace shoal::peer::tls
