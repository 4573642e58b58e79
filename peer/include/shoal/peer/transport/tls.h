// TLS 1.3 with raw Ed25519 public keys (RFC 7250) over any kj::AsyncIoStream, through GnuTLS:
// mutual authentication, ALPN "shoal/1", no session tickets. The handshake proves which key the
// other end holds (Transport::peerId()); deciding whether that key is welcome is the caller's job.
#pragma once

#include <kj/async-io.h>
#include <shoal/peer/transport/identity.h>
#include <shoal/peer/transport/transport.h>

namespace shoal::peer {

constexpr kj::StringPtr kAlpnProtocol = "shoal/1"_kj;

// The GnuTLS priority string every shoal connection uses: TLS 1.3 only, raw public keys both
// ways, Ed25519 signatures only, X25519 first for the key exchange (faster than NORMAL's first
// choice SECP256R1; the others stay for peers without it). Ciphers keep NORMAL's order, AES-GCM
// first.
constexpr kj::StringPtr kTlsPriority =
    "NORMAL:-VERS-ALL:+VERS-TLS1.3:-CTYPE-ALL:+CTYPE-CLI-RAWPK:+CTYPE-SRV-RAWPK"
    ":-SIGN-ALL:+SIGN-EDDSA-ED25519"
    ":-GROUP-ALL:+GROUP-X25519:+GROUP-SECP256R1:+GROUP-SECP384R1:+GROUP-SECP521R1:+GROUP-X448"_kj;

struct TlsOptions {
  // Ciphertext is gathered into batches of about this many bytes per write to the inner stream;
  // one batch is written while the next is encrypted.
  size_t writeBatchBytes = size_t(1) << 20;
  // Ciphertext is read from the inner stream in reads of up to this many bytes (the buffer starts
  // at 16 KiB and doubles each time a read fills it: idle connections stay small).
  size_t readBufferBytes = size_t(256) << 10;
};

// Credentials and priorities for one identity, shared by all its connections. Connections keep
// what they need alive, so they may outlive the context; the identity need not outlive either.
// Use on the event loop thread that runs the connections.
class TlsContext {
 public:
  explicit TlsContext(const Identity& identity, TlsOptions options = {});
  ~TlsContext() noexcept(false);
  KJ_DISALLOW_COPY(TlsContext);

  // Run the TLS 1.3 handshake as client / server over `inner`; resolve once it completes and the
  // other end proved a raw Ed25519 key and agreed on ALPN "shoal/1". Any failure rejects with a
  // kj::Exception whose description starts "TLS handshake failed: " (DISCONNECTED if the inner
  // stream ended or failed, FAILED otherwise). No timeout here: bound it with a kj::Timer.
  kj::Promise<kj::Own<Transport>> connect(kj::Own<kj::AsyncIoStream> inner);
  kj::Promise<kj::Own<Transport>> accept(kj::Own<kj::AsyncIoStream> inner);

  struct Shared;  // GnuTLS credentials and priority cache, refcounted

 private:
  kj::Promise<kj::Own<Transport>> start(bool server, kj::Own<kj::AsyncIoStream> inner);

  kj::Own<const Shared> shared;
  TlsOptions options;
};

}  // namespace shoal::peer
