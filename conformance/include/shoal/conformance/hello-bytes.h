// TLS 1.3 handshake messages built and read byte by byte, for offers GnuTLS's client will not
// make: a ClientHello with a pre_shared_key the target never issued, with an empty key_share
// that asks for a HelloRetryRequest, and the second ClientHello without the PSK (docs/protocol.md
// [TR-5], bad-inputs #22). Only the plaintext start of a handshake: the harness reads the
// target's ServerHello and stops there.
#pragma once

#include <stdint.h>

#include <kj/array.h>
#include <kj/async-io.h>
#include <kj/vector.h>

namespace shoal::conformance {

// What one hand-built ClientHello offers besides the shoal profile (TLS 1.3, raw public keys,
// Ed25519, ALPN shoal/1, X25519).
struct ClientHelloBytes {
  kj::byte random[32];              // keep random and session id for the second ClientHello
  kj::byte sessionId[32];           // legacy_session_id: middlebox compatibility mode
  bool keyShare = true;             // one X25519 share; false: none, so the server must ask (HRR)
  bool psk = false;                 // psk_key_exchange_modes and a pre_shared_key no server issued
  static ClientHelloBytes fresh();  // random and session id drawn at random
};

// The ClientHello as one TLS record.
kj::Array<kj::byte> clientHelloRecord(const ClientHelloBytes& hello);

// One TLS record: content type (20 change_cipher_spec, 21 alert, 22 handshake) and payload.
struct TlsRecord {
  uint8_t type;
  kj::Array<kj::byte> payload;
};

// Reads whole records from a raw stream; null at the end of the stream or on a read error.
class RecordReader {
 public:
  explicit RecordReader(kj::AsyncIoStream& stream) : stream(stream) {}
  kj::Promise<kj::Maybe<TlsRecord>> next();

 private:
  kj::AsyncIoStream& stream;
  kj::Vector<kj::byte> buffered;
};

// A ServerHello (or HelloRetryRequest, the same message with a fixed random) at the start of a
// handshake record's payload; null when the payload starts with anything else or is malformed.
struct ServerHelloFacts {
  bool retryRequest = false;
  kj::Array<uint16_t> extensions;  // extension types, in order
};
kj::Maybe<ServerHelloFacts> parseServerHello(kj::ArrayPtr<const kj::byte> payload);

}  // namespace shoal::conformance
