// A peer's identity: its Ed25519 key pair, kept as a PKCS#8 file in the state folder, and the peer
// id derived from it (SHA-256 of the SubjectPublicKeyInfo) with its check-character text form.
// The TLS layer (tls.h) proves possession of the key; pinning ids is the session layer's job.
#pragma once

#include <kj/array.h>
#include <kj/memory.h>
#include <kj/string.h>
#include <shoal/codec/digest.h>

namespace shoal::peer {

using PeerId = codec::Digest;

// Text form (Syncthing's device-id scheme): RFC 4648 base32 of the 32 bytes without padding (52
// chars), cut into 4 groups of 13, each followed by a Luhn mod-32 check char (56 chars), printed
// as 8 groups of 7 joined by '-'.
kj::String formatPeerId(const PeerId& id);
// Accepts lower or upper case and ignores '-' and spaces. Null on a bad length, a character
// outside the alphabet, a wrong check char, or non-zero padding bits in the last data char (so
// that every id has exactly one text form).
kj::Maybe<PeerId> parsePeerId(kj::StringPtr text);
// SHA-256 of a DER SubjectPublicKeyInfo.
PeerId peerIdOf(kj::ArrayPtr<const kj::byte> spkiDer);

// An Ed25519 key pair and its peer id. Immutable; the private key is wiped from memory when the
// object is destroyed.
class Identity {
  struct Token {  // makes the constructor usable by the factories only
    explicit Token() = default;
  };

 public:
  static kj::Own<Identity> generate();

  // Loads <stateDir>/identity.key (PKCS#8 PEM, unencrypted). If the file is missing, creates
  // stateDir (and missing parents, mode 0700) and a new key file of mode 0600, written under a
  // temporary name, fsynced and renamed into place without replacing a file another process may
  // have created meanwhile. Refuses a key file readable or writable by group or others, one that
  // is not a regular file, and a key that is not Ed25519.
  static kj::Own<Identity> loadOrCreate(kj::StringPtr stateDir);

  // Parses an unencrypted PKCS#8 PEM Ed25519 private key; `origin` names it in errors.
  static kj::Own<Identity> fromPem(kj::ArrayPtr<const kj::byte> pem, kj::StringPtr origin);

  static constexpr kj::StringPtr kKeyFileName = "identity.key"_kj;

  Identity(Token, kj::Array<kj::byte> pkcs8Der, kj::Array<kj::byte> spkiDer);
  KJ_DISALLOW_COPY(Identity);
  ~Identity() noexcept(false);

  const PeerId& id() const { return peerId; }
  kj::ArrayPtr<const kj::byte> publicKeyDer() const { return spki; }  // SPKI DER

  // Secret: the private key as PKCS#8 DER (what GnuTLS's raw-key credentials take) and as the
  // PEM text of the key file.
  kj::ArrayPtr<const kj::byte> privateKeyPkcs8Der() const { return pkcs8; }
  kj::Array<kj::byte> privateKeyPem() const;

 private:
  kj::Array<kj::byte> pkcs8;
  kj::Array<kj::byte> spki;
  PeerId peerId;
};

}  // namespace shoal::peer
