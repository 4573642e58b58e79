// What a TLS ClientHello offers, read before GnuTLS reads it, and the refusal the shoal profile
// gives an offer it cannot accept (README.md, "TLS profile"). Pure parsing: no session, no I/O.
#pragma once

#include <gnutls/gnutls.h>
#include <stdint.h>

#include <kj/common.h>

namespace shoal::peer::tls {

// Why we refuse the other side, and the alert that says so.
struct Refusal {
  const char* why;
  gnutls_alert_description_t alert;
};

// What a ClientHello offers, as far as the shoal profile cares (RFC 8446 §4.2.1, RFC 7250 §3,
// RFC 7301 §3.1).
struct ClientHelloOffer {
  bool tls13 = false;             // supported_versions lists TLS 1.3
  bool rawKeyFromServer = false;  // server_certificate_type lists RawPublicKey
  // client_certificate_type lists types without RawPublicKey. Absent, the client has no key to
  // offer: it will send an empty Certificate, refused with certificate_required.
  bool otherClientCertificate = false;
  bool shoalAlpn = false;  // ALPN lists "shoal/1"
  bool psk = false;        // pre_shared_key: a resumption offer ([TR-5]: never taken up)

  static constexpr unsigned kAlpn = 16, kClientCertType = 19, kServerCertType = 20,
                            kSupportedVersions = 43, kPreSharedKey = 41;
  static constexpr uint8_t kRawPublicKey = 2;

  // `body` is the ClientHello without its handshake header. Malformed extensions count as
  // offering nothing; GnuTLS refuses the message itself.
  static ClientHelloOffer parse(const gnutls_datum_t& body);

 private:
  static int onExtension(void* context, unsigned type, const unsigned char* data, unsigned size);
};

// Null when the offer is acceptable; else the first reason to refuse it, in the order of
// docs/protocol.md §2.6.
kj::Maybe<Refusal> refusalOf(const ClientHelloOffer& offer);

}  // namespace shoal::peer::tls
