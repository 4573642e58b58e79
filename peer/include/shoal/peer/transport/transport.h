// Transport: a connection's byte stream plus what its handshake proved about the other end. The
// session layer reads and writes stream() and pins peerId(); TLS (tls.h) and plaintext (tests,
// fuzzing, benchmarks) connections look the same to it.
#pragma once

#include <kj/async-io.h>
#include <kj/function.h>
#include <shoal/peer/transport/identity.h>

namespace shoal::peer {

class Transport {
 public:
  virtual ~Transport() noexcept(false) = default;

  // The application byte stream. tryRead() resolving short with 0 more bytes is a clean end of
  // the other side's writes; an unclean end rejects with a DISCONNECTED exception.
  virtual kj::AsyncIoStream& stream() = 0;

  // Id of the key the other end proved it holds; null in plaintext mode (unauthenticated).
  virtual kj::Maybe<PeerId> peerId() const = 0;

  // Clean end of our write side: TLS close_notify (gnutls_bye SHUT_WR) + flush, then the inner
  // stream's shutdownWrite(). Call after the last write completed; idempotent.
  virtual kj::Promise<void> end() = 0;
};

// No authentication, no encryption: bytes pass through unchanged. Must be chosen on both sides.
kj::Own<Transport> plaintextTransport(kj::Own<kj::AsyncIoStream> stream);

// The mutant plaintext-fallback ([TR-11] forbids what it does): reads an inbound connection's
// first byte and hands the stream, that byte put back, to `tls` when it starts a TLS handshake
// record, else to the plaintext transport.
kj::Promise<kj::Own<Transport>> sniffedTransport(
    kj::Own<kj::AsyncIoStream> stream,
    kj::Function<kj::Promise<kj::Own<Transport>>(kj::Own<kj::AsyncIoStream>)> tls);

}  // namespace shoal::peer
