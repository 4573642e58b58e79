// The harness's own TLS 1.3 over a KJ stream, driven through GnuTLS directly rather than through
// the reference peer's transport: the suite must be able to play odd peers (TLS 1.2 only, an
// X.509 certificate, no key, no ALPN, tickets invited) and to see what the transport hides — the
// alert the target sent, its close_notify, and whether TCP then ended with FIN or RST.
#pragma once

#include <kj/async-io.h>
#include <kj/one-of.h>
#include <shoal/codec/digest.h>
#include <shoal/peer/transport/identity.h>

namespace shoal::conformance {

using peer::Identity;
using PeerId = codec::Digest;

// What the harness presents and offers in one TLS handshake. The defaults are a conforming peer
// (docs/protocol.md [TR-2]..[TR-5]); each field bends one rule.
struct TlsProfile {
  enum class Credential : uint8_t {
    rawEd25519,  // the connection's identity as a raw public key
    rawEcdsa,    // a fresh ECDSA P-256 raw key (not Ed25519)
    x509,        // a self-signed X.509 certificate of the identity's key type
    none,        // no credential at all (an empty Certificate message)
  };
  Credential credential = Credential::rawEd25519;
  // GnuTLS priority string; the default allows TLS 1.3 with raw keys and Ed25519 only.
  kj::StringPtr priority = kDefaultPriority;
  // ALPN protocol offered (client) or accepted (server); null offers / selects none.
  kj::Maybe<kj::StringPtr> alpn = kj::StringPtr("shoal/1");
  bool inviteTickets = false;  // client: send psk_key_exchange_modes so a server may send tickets
  bool sendTickets = false;    // server: hand out session tickets to a client that invites them
  // Client: a session to resume (Channel::sessionData() of an earlier connection): the
  // ClientHello then offers its ticket as pre_shared_key.
  kj::ArrayPtr<const kj::byte> resume = nullptr;

  static constexpr kj::StringPtr kDefaultPriority =
      "NORMAL:-VERS-ALL:+VERS-TLS1.3:-CTYPE-ALL:+CTYPE-CLI-RAWPK:+CTYPE-SRV-RAWPK"
      ":-SIGN-ALL:+SIGN-EDDSA-ED25519"_kj;
  static constexpr kj::StringPtr kTls12Priority =
      "NORMAL:-VERS-ALL:+VERS-TLS1.2:-CTYPE-ALL:+CTYPE-CLI-RAWPK:+CTYPE-SRV-RAWPK"_kj;
  static constexpr kj::StringPtr kX509Priority =
      "NORMAL:-VERS-ALL:+VERS-TLS1.3:-CTYPE-ALL:+CTYPE-CLI-X509:+CTYPE-SRV-X509"
      ":+CTYPE-CLI-RAWPK:+CTYPE-SRV-RAWPK"_kj;
  static constexpr kj::StringPtr kEcdsaPriority =
      "NORMAL:-VERS-ALL:+VERS-TLS1.3:-CTYPE-ALL:+CTYPE-CLI-RAWPK:+CTYPE-SRV-RAWPK"_kj;
};

// What one side learnt from a completed handshake.
struct TlsFacts {
  kj::String version;                         // "TLS1.3"
  kj::String description;                     // GnuTLS's one-line summary of the session
  kj::Maybe<kj::String> alpn;                 // the protocol selected, if any
  bool rawKey = false;                        // the other side presented a raw public key
  kj::Maybe<PeerId> peerId;                   // SHA-256 of the SPKI it presented
  bool ed25519 = false;                       // that key is Ed25519
  kj::Array<uint16_t> clientHelloExtensions;  // server side: extension types of the ClientHello
  bool resumed = false;                       // the handshake resumed a session (a PSK was used)
};

// How a handshake ended when it did not complete.
struct TlsRefused {
  kj::String reason;            // GnuTLS's error text
  kj::Maybe<kj::String> alert;  // the alert the other side sent, by name
  bool ended = false;           // the TCP stream ended (FIN or RST) before or during it
};

// Something read from a connection: plaintext, TLS close_notify, a TLS alert, or the end of TCP.
struct Bytes {
  kj::Array<kj::byte> data;
};
struct CloseNotify {};
struct AlertReceived {
  kj::String name;
  bool fatal;
};
struct StreamEnd {
  enum Kind : uint8_t { fin, reset, error } kind;
  kj::String detail;
};
using ReadEvent = kj::OneOf<Bytes, CloseNotify, AlertReceived, StreamEnd>;

// A byte channel to the target: plaintext TCP, or TLS over it. Reads report every event in
// order; after close_notify or an alert the raw TCP stream is still read so that FIN and RST
// stay distinguishable. One read and one write at a time.
class Channel {
 public:
  virtual ~Channel() noexcept(false) = default;
  virtual kj::Promise<ReadEvent> read() = 0;
  virtual kj::Promise<void> write(kj::ArrayPtr<const kj::byte> bytes) = 0;
  // TLS close_notify (no-op in plaintext); FIN; RST (SO_LINGER 0, then the socket is closed).
  virtual kj::Promise<void> closeNotify() = 0;
  virtual void fin() = 0;
  virtual void reset() = 0;
  virtual bool isTls() const = 0;
  virtual kj::Maybe<const TlsFacts&> facts() const = 0;
  // A TLS 1.3 NewSessionTicket arrived since the handshake (client side).
  virtual bool sessionTicketReceived() const = 0;
  // Client side, after a ticket arrived: the session to offer for resumption (TlsProfile::resume).
  virtual kj::Maybe<kj::Array<kj::byte>> sessionData() const = 0;
};

kj::Own<Channel> plaintextChannel(kj::Own<kj::AsyncIoStream> stream);

using TlsResult = kj::OneOf<kj::Own<Channel>, TlsRefused>;

// Runs a TLS handshake as client or server over `stream` with `profile`, presenting `identity`
// where the profile calls for a key. Never rejects for a refusal by the other side: that is a
// TlsRefused value. No timeout here: the caller's step timer bounds it.
kj::Promise<TlsResult> tlsConnect(kj::Own<kj::AsyncIoStream> stream, const Identity& identity,
                                  const TlsProfile& profile);
kj::Promise<TlsResult> tlsAccept(kj::Own<kj::AsyncIoStream> stream, const Identity& identity,
                                 const TlsProfile& profile);

// TLS alert descriptions docs/protocol.md §2.6 names, and the name the harness reports an alert
// by (TlsRefused::alert, AlertReceived::name).
enum class TlsAlert : uint8_t {
  badCertificate = 42,
  unsupportedCertificate = 43,
  protocolVersion = 70,
  certificateRequired = 116,
  noApplicationProtocol = 120,
};
kj::String alertName(TlsAlert alert);

// Brings up GnuTLS once for the process (before worker threads start).
void initTls();

}  // namespace shoal::conformance
