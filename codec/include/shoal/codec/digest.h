// SHA-256 through GnuTLS, the fixed-size Digest value every id and hash on the wire uses, and the
// random ids the protocol needs.
#pragma once

#include <stdint.h>

#include <gnutls/crypto.h>
#include <kj/common.h>
#include <kj/string.h>
#include <shoal/codec/limits.h>

namespace shoal::codec {

struct Digest {
  kj::byte bytes[kDigestBytes] = {};

  bool operator==(const Digest& other) const;
  bool operator!=(const Digest& other) const { return !(*this == other); }
  bool operator<(const Digest& other) const;
  kj::ArrayPtr<const kj::byte> asBytes() const { return kj::arrayPtr(bytes, kDigestBytes); }

  // Null unless `data` is exactly kDigestBytes long.
  static kj::Maybe<Digest> from(kj::ArrayPtr<const kj::byte> data);
};

kj::String toHex(const Digest& digest);

// Incremental SHA-256. Not copyable; one object per hash.
class Sha256 {
 public:
  Sha256();
  ~Sha256() noexcept(false);
  KJ_DISALLOW_COPY(Sha256);

  void update(kj::ArrayPtr<const kj::byte> data);
  void update(kj::ArrayPtr<const char> text) { update(text.asBytes()); }
  void updateU32(uint32_t value);  // little-endian
  void updateU64(uint64_t value);  // little-endian
  Digest finish();                 // the hash; the object is then reset for reuse

 private:
  gnutls_hash_hd_t handle;
};

Digest sha256(kj::ArrayPtr<const kj::byte> data);

// A random non-zero 64-bit value from GnuTLS's nonce generator: library epochs ([LIB-5]) and
// instance ids ([HS-16]), for which 0 means "none" on the wire.
uint64_t randomNonZero();

// For kj::str() and KJ_LOG.
inline kj::String KJ_STRINGIFY(const Digest& d) {
  return toHex(d);
}

}  // namespace shoal::codec
