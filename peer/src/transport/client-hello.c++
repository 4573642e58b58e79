#include <shoal/peer/transport/client-hello.h>

#include <shoal/mutant.h>
#include <shoal/peer/transport/tls.h>

namespace shoal::peer::tls {

ClientHelloOffer ClientHelloOffer::parse(const gnutls_datum_t& body) {
  ClientHelloOffer offer;
  gnutls_ext_raw_parse(&offer, &onExtension, &body, GNUTLS_EXT_RAW_FLAG_TLS_CLIENT_HELLO);
  return offer;
}

int ClientHelloOffer::onExtension(void* context, unsigned type, const unsigned char* data,
                                  unsigned size) {
  auto& offer = *static_cast<ClientHelloOffer*>(context);
  auto bytes = kj::arrayPtr(data, size);
  switch (type) {
    case kSupportedVersions:  // u8 length, then u16 versions
      if (size < 1 || bytes[0] + 1u > size) break;
      for (size_t i = 1; i + 1 < size_t(bytes[0]) + 1; i += 2)
        offer.tls13 = offer.tls13 || (bytes[i] == 0x03 && bytes[i + 1] == 0x04);
      break;
    case kClientCertType:  // u8 length, then u8 types
    case kServerCertType: {
      bool raw = false;
      if (size < 1 || bytes[0] + 1u > size) break;
      for (size_t i = 1; i < size_t(bytes[0]) + 1; ++i)
        raw = raw || bytes[i] == kRawPublicKey;
      if (type == kServerCertType) {
        offer.rawKeyFromServer = raw;
      } else {
        offer.otherClientCertificate = !raw;
      }
      break;
    }
    case kPreSharedKey: offer.psk = true; break;
    case kAlpn: {  // u16 length, then (u8 length, name)...
      if (size < 2 || (size_t(bytes[0]) << 8 | bytes[1]) + 2 > size) break;
      for (size_t i = 2; i < size;) {
        size_t n = bytes[i];
        if (i + 1 + n > size) break;
        offer.shoalAlpn =
            offer.shoalAlpn || bytes.slice(i + 1, i + 1 + n) == kAlpnProtocol.asBytes();
        i += 1 + n;
      }
      break;
    }
  }
  return 0;
}

kj::Maybe<Refusal> refusalOf(const ClientHelloOffer& offer) {
  if (!offer.tls13 && !isMutant(Mutant::tls12Allowed))
    return Refusal{"the peer does not offer TLS 1.3", GNUTLS_A_PROTOCOL_VERSION};
  if (!offer.rawKeyFromServer) {
    return Refusal{"the peer does not accept a raw public key", GNUTLS_A_UNSUPPORTED_CERTIFICATE};
  }
  if (offer.otherClientCertificate) {
    return Refusal{"the peer offers a certificate, not a raw public key",
                   GNUTLS_A_UNSUPPORTED_CERTIFICATE};
  }
  if (!offer.shoalAlpn && !isMutant(Mutant::alpnOptional)) {
    return Refusal{"the peer did not negotiate ALPN shoal/1", GNUTLS_A_NO_APPLICATION_PROTOCOL};
  }
  return nullptr;
}

}  // namespace shoal::peer::tls
