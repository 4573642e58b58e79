#include <shoal/codec/digest.h>

#include <kj/debug.h>
#include <kj/encoding.h>
#include <string.h>

namespace shoal::codec {

bool Digest::operator==(const Digest& other) const {
  return memcmp(bytes, other.bytes, kDigestBytes) == 0;
}

bool Digest::operator<(const Digest& other) const {
  return memcmp(bytes, other.bytes, kDigestBytes) < 0;
}

kj::Maybe<Digest> Digest::from(kj::ArrayPtr<const kj::byte> data) {
  if (data.size() != kDigestBytes) return nullptr;
  Digest d;
  memcpy(d.bytes, data.begin(), kDigestBytes);
  return d;
}

kj::String toHex(const Digest& digest) {
  return kj::encodeHex(digest.asBytes());
}

Sha256::Sha256() {
  int rc = gnutls_hash_init(&handle, GNUTLS_DIG_SHA256);
  KJ_ASSERT(rc == 0, "gnutls_hash_init failed", gnutls_strerror(rc));
}

Sha256::~Sha256() noexcept(false) {
  gnutls_hash_deinit(handle, nullptr);
}

void Sha256::update(kj::ArrayPtr<const kj::byte> data) {
  if (data.size() == 0) return;
  int rc = gnutls_hash(handle, data.begin(), data.size());
  KJ_ASSERT(rc == 0, "gnutls_hash failed", gnutls_strerror(rc));
}

void Sha256::updateU32(uint32_t value) {
  kj::byte le[4];
  for (int i = 0; i < 4; ++i)
    le[i] = kj::byte(value >> (8 * i));
  update(kj::arrayPtr(le, 4));
}

void Sha256::updateU64(uint64_t value) {
  kj::byte le[8];
  for (int i = 0; i < 8; ++i)
    le[i] = kj::byte(value >> (8 * i));
  update(kj::arrayPtr(le, 8));
}

Digest Sha256::finish() {
  Digest d;
  gnutls_hash_output(handle, d.bytes);  // also resets the state
  return d;
}

Digest sha256(kj::ArrayPtr<const kj::byte> data) {
  Digest d;
  int rc = gnutls_hash_fast(GNUTLS_DIG_SHA256, data.begin(), data.size(), d.bytes);
  KJ_ASSERT(rc == 0, "gnutls_hash_fast failed", gnutls_strerror(rc));
  return d;
}

uint64_t randomNonZero() {
  uint64_t value = 0;
  while (value == 0) {
    int rc = gnutls_rnd(GNUTLS_RND_NONCE, &value, sizeof(value));
    KJ_ASSERT(rc == 0, "gnutls_rnd failed", gnutls_strerror(rc));
  }
  return value;
}

}  // namespace shoal::codec
