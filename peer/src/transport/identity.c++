#include <shoal/peer/transport/identity.h>

#include <errno.h>
#include <fcntl.h>
#include <gnutls/abstract.h>
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include <kj/debug.h>
#include <kj/encoding.h>
#include <kj/io.h>
#include <shoal/mutant.h>

namespace shoal::peer {

// ---------------------------------------------------------------------------------------------
// Peer id text form

namespace {

constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
constexpr size_t kDataChars = 52;  // ceil(256 / 5)
constexpr size_t kGroupChars = 13;
constexpr size_t kGroups = kDataChars / kGroupChars;
constexpr size_t kCheckedChars = kDataChars + kGroups;  // 56
constexpr size_t kPrintGroup = 7;

int valueOf(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z' && !isMutant(Mutant::idParserCaseSensitive)) return c - 'a';
  if (c >= '2' && c <= '7') return c - '2' + 26;
  return -1;
}

// Syncthing's Luhn mod 32 over alphabet indices: the check value that completes `values`.
kj::byte luhn32(const kj::byte* values, size_t count) {
  unsigned factor = 1, sum = 0;
  for (size_t i = 0; i < count; ++i) {
    unsigned addend = factor * values[i];
    factor = factor == 1 ? 2 : 1;
    sum += addend / 32 + addend % 32;
  }
  return kj::byte((32 - sum % 32) % 32);
}

}  // namespace

kj::String formatPeerId(const PeerId& id) {
  // Base32 values, most significant bits first; the last value carries one bit and four zeros.
  kj::byte values[kDataChars];
  uint32_t bits = 0, pending = 0;
  size_t n = 0;
  for (kj::byte b : id.bytes) {
    bits = (bits << 8) | b;
    pending += 8;
    while (pending >= 5) {
      pending -= 5;
      values[n++] = (bits >> pending) & 31;
    }
  }
  values[n++] = (bits << (5 - pending)) & 31;
  KJ_ASSERT(n == kDataChars);

  kj::byte checked[kCheckedChars];
  for (size_t g = 0; g < kGroups; ++g) {
    memcpy(checked + g * (kGroupChars + 1), values + g * kGroupChars, kGroupChars);
    checked[g * (kGroupChars + 1) + kGroupChars] = luhn32(values + g * kGroupChars, kGroupChars);
  }

  auto text = kj::heapString(kCheckedChars + kCheckedChars / kPrintGroup - 1);
  size_t at = 0;
  for (size_t i = 0; i < kCheckedChars; ++i) {
    if (i > 0 && i % kPrintGroup == 0) text[at++] = '-';
    text[at++] = kAlphabet[checked[i]];
  }
  return text;
}

kj::Maybe<PeerId> parsePeerId(kj::StringPtr text) {
  kj::byte checked[kCheckedChars];
  size_t n = 0;
  for (char c : text) {
    if (c == '-' || c == ' ') continue;
    int v = valueOf(c);
    if (v < 0 || n == kCheckedChars) return nullptr;
    checked[n++] = kj::byte(v);
  }
  if (n != kCheckedChars) return nullptr;

  kj::byte values[kDataChars];
  for (size_t g = 0; g < kGroups; ++g) {
    const kj::byte* group = checked + g * (kGroupChars + 1);
    bool lenient = isMutant(Mutant::lenientIdParser);
    if (luhn32(group, kGroupChars) != group[kGroupChars] && !lenient) return nullptr;
    memcpy(values + g * kGroupChars, group, kGroupChars);
  }

  PeerId id;
  uint32_t bits = 0, pending = 0;
  size_t out = 0;
  for (kj::byte v : values) {
    bits = (bits << 5) | v;
    pending += 5;
    if (pending >= 8) {
      pending -= 8;
      if (out < sizeof(id.bytes)) id.bytes[out++] = kj::byte(bits >> pending);
    }
  }
  // 52 * 5 = 260 bits: the 4 left over must be zero, or two texts would name one id.
  if (pending != 4 || (bits & 15) != 0) return nullptr;
  return id;
}

PeerId peerIdOf(kj::ArrayPtr<const kj::byte> spkiDer) {
  return codec::sha256(spkiDer);
}

// ---------------------------------------------------------------------------------------------
// Keys

namespace {

// Frees memory GnuTLS allocated, wiping it first: it may hold a private key.
class GnutlsArrayDisposer final : public kj::ArrayDisposer {
 protected:
  void disposeImpl(void* first, size_t elementSize, size_t elementCount, size_t,
                   void (*)(void*)) const override {
    gnutls_memset(first, 0, elementSize * elementCount);
    gnutls_free(first);
  }
};
const GnutlsArrayDisposer kGnutlsArrayDisposer;

kj::Array<kj::byte> adopt(gnutls_datum_t datum) {
  return kj::Array<kj::byte>(datum.data, datum.size, kGnutlsArrayDisposer);
}

gnutls_datum_t datumOf(kj::ArrayPtr<const kj::byte> bytes) {
  return {const_cast<kj::byte*>(bytes.begin()), static_cast<unsigned>(bytes.size())};
}

// Failures of GnuTLS on our own valid inputs: a bug or a broken library, not a peer fault.
void check(int rc, const char* what) {
  KJ_ASSERT(rc >= 0, what, gnutls_strerror(rc));
}

struct X509Key {
  gnutls_x509_privkey_t key;
  X509Key() { check(gnutls_x509_privkey_init(&key), "gnutls_x509_privkey_init"); }
  ~X509Key() { gnutls_x509_privkey_deinit(key); }
  KJ_DISALLOW_COPY(X509Key);
};

struct KeyParts {
  kj::Array<kj::byte> pkcs8Der;
  kj::Array<kj::byte> spkiDer;
};

KeyParts partsOf(gnutls_x509_privkey_t key) {
  // PKCS#8 is what gnutls_certificate_set_rawpk_key_mem() accepts for Ed25519
  // (docs/dependencies.md).
  gnutls_datum_t pkcs8;
  check(gnutls_x509_privkey_export2_pkcs8(key, GNUTLS_X509_FMT_DER, nullptr, GNUTLS_PKCS_PLAIN,
                                          &pkcs8),
        "exporting the private key");
  auto pkcs8Der = adopt(pkcs8);

  gnutls_privkey_t priv;
  check(gnutls_privkey_init(&priv), "gnutls_privkey_init");
  KJ_DEFER(gnutls_privkey_deinit(priv));
  check(gnutls_privkey_import_x509(priv, key, GNUTLS_PRIVKEY_IMPORT_COPY), "importing the key");
  gnutls_pubkey_t pub;
  check(gnutls_pubkey_init(&pub), "gnutls_pubkey_init");
  KJ_DEFER(gnutls_pubkey_deinit(pub));
  check(gnutls_pubkey_import_privkey(pub, priv, 0, 0), "deriving the public key");
  gnutls_datum_t spki;
  check(gnutls_pubkey_export2(pub, GNUTLS_X509_FMT_DER, &spki), "exporting the public key");
  return {kj::mv(pkcs8Der), adopt(spki)};
}

}  // namespace

Identity::Identity(Token, kj::Array<kj::byte> pkcs8Der, kj::Array<kj::byte> spkiDer)
    : pkcs8(kj::mv(pkcs8Der)), spki(kj::mv(spkiDer)), peerId(peerIdOf(spki)) {}

Identity::~Identity() noexcept(false) {
  gnutls_memset(pkcs8.begin(), 0, pkcs8.size());
}

kj::Own<Identity> Identity::generate() {
  X509Key k;
  check(gnutls_x509_privkey_generate(k.key, GNUTLS_PK_EDDSA_ED25519,
                                     GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_ED25519), 0),
        "generating an Ed25519 key");
  auto parts = partsOf(k.key);
  return kj::heap<Identity>(Token(), kj::mv(parts.pkcs8Der), kj::mv(parts.spkiDer));
}

kj::Own<Identity> Identity::fromPem(kj::ArrayPtr<const kj::byte> pem, kj::StringPtr origin) {
  X509Key k;
  auto datum = datumOf(pem);
  int rc = gnutls_x509_privkey_import_pkcs8(k.key, &datum, GNUTLS_X509_FMT_PEM, nullptr,
                                            GNUTLS_PKCS_PLAIN);
  if (rc < 0) {
    kj::StringPtr reason = gnutls_strerror(rc);
    KJ_FAIL_REQUIRE("identity key is not an unencrypted PKCS#8 PEM private key", origin, reason);
  }
  int algorithm = gnutls_x509_privkey_get_pk_algorithm2(k.key, nullptr);
  if (algorithm != GNUTLS_PK_EDDSA_ED25519) {
    const char* name = gnutls_pk_algorithm_get_name(gnutls_pk_algorithm_t(algorithm));
    kj::StringPtr found = name != nullptr ? name : "an unknown algorithm";
    KJ_FAIL_REQUIRE("identity key is not an Ed25519 key", origin, found);
  }
  auto parts = partsOf(k.key);
  return kj::heap<Identity>(Token(), kj::mv(parts.pkcs8Der), kj::mv(parts.spkiDer));
}

kj::Array<kj::byte> Identity::privateKeyPem() const {
  auto der = datumOf(pkcs8);
  gnutls_datum_t pem;
  check(gnutls_pem_base64_encode2("PRIVATE KEY", &der, &pem), "encoding the key as PEM");
  return adopt(pem);
}

// ---------------------------------------------------------------------------------------------
// The key file

namespace {

constexpr size_t kMaxKeyFileBytes = size_t(64) << 10;  // an Ed25519 PKCS#8 PEM is about 120 bytes

kj::String octal(mode_t mode) {
  char text[8];
  snprintf(text, sizeof(text), "%04o", unsigned(mode & 07777));
  return kj::heapString(text);
}

// The key file's bytes, or null if it does not exist. Checks type and mode on the open file, so
// what is checked is what is read.
kj::Maybe<kj::Array<kj::byte>> readKeyFile(kj::StringPtr file) {
  int fd;
  // O_NONBLOCK: opening a FIFO planted at this path must fail the type check, not hang.
  KJ_SYSCALL_HANDLE_ERRORS(fd = open(file.cStr(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK)) {
    case ENOENT: return nullptr;
    default: KJ_FAIL_SYSCALL("open(identity key)", error, file);
  }
  kj::AutoCloseFd owned(fd);
  struct stat st;
  KJ_SYSCALL(fstat(fd, &st), file);
  if (!S_ISREG(st.st_mode)) {
    KJ_FAIL_REQUIRE("identity key is not a regular file", file);
  }
  if ((st.st_mode & (S_IRGRP | S_IWGRP | S_IROTH | S_IWOTH)) != 0) {
    auto mode = octal(st.st_mode);
    auto fix = kj::str("chmod 600 ", file);
    KJ_FAIL_REQUIRE("identity key file is readable or writable by group or others", file, mode,
                    fix);
  }
  if (size_t(st.st_size) > kMaxKeyFileBytes) {
    KJ_FAIL_REQUIRE("identity key file is too large to be a key", file);
  }
  auto bytes = kj::heapArray<kj::byte>(st.st_size);
  size_t n = kj::FdInputStream(fd).tryRead(bytes.begin(), bytes.size(), bytes.size());
  KJ_REQUIRE(n == bytes.size(), "identity key file changed while being read", file);
  return kj::mv(bytes);
}

// mkdir -p, creating what is missing with mode 0700.
void makeDirectories(kj::StringPtr path) {
  for (size_t i = 1; i <= path.size(); ++i) {
    if (i < path.size() && path[i] != '/') continue;
    auto prefix = kj::heapString(path.slice(0, i));
    KJ_SYSCALL_HANDLE_ERRORS(mkdir(prefix.cStr(), 0700)) {
      case EEXIST: break;
      default: KJ_FAIL_SYSCALL("mkdir(state directory)", error, prefix);
    }
  }
}

void syncDirectory(kj::StringPtr dir) {
  int fd;
  KJ_SYSCALL(fd = open(dir.cStr(), O_RDONLY | O_DIRECTORY | O_CLOEXEC), dir);
  kj::AutoCloseFd owned(fd);
  KJ_SYSCALL(fsync(fd), dir);
}

// Writes `pem` to `file` atomically: a 0600 temp file, written fully and fsynced, then renamed
// into place. Never replaces an existing key: if a concurrent first run made one meanwhile, ours
// is dropped.
void publishKeyFile(kj::StringPtr dir, kj::StringPtr file, kj::ArrayPtr<const kj::byte> pem) {
  kj::byte nonce[8];
  check(gnutls_rnd(GNUTLS_RND_NONCE, nonce, sizeof(nonce)), "gnutls_rnd");
  auto temp = kj::str(dir, "/.", Identity::kKeyFileName, ".", kj::encodeHex(nonce), ".tmp");
  int fd;
  KJ_SYSCALL(fd = open(temp.cStr(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600),
             temp);
  bool renamed = false;
  KJ_DEFER(if (!renamed) unlink(temp.cStr()));
  {
    kj::AutoCloseFd owned(fd);
    kj::FdOutputStream(fd).write(pem.begin(), pem.size());
    KJ_SYSCALL(fsync(fd), temp);
  }
  int rc = renameat2(AT_FDCWD, temp.cStr(), AT_FDCWD, file.cStr(), RENAME_NOREPLACE);
  if (rc < 0 && (errno == EINVAL || errno == ENOSYS)) {
    // A file system without RENAME_NOREPLACE: a plain rename, which a concurrent first run could
    // race. The caller reloads the file, so at least this process uses what is on disk.
    rc = rename(temp.cStr(), file.cStr());
  }
  if (rc < 0) {
    int error = errno;
    if (error == EEXIST) return;
    KJ_FAIL_SYSCALL("rename(identity key)", error, temp, file);
  }
  renamed = true;
  syncDirectory(dir);
}

}  // namespace

kj::Own<Identity> Identity::loadOrCreate(kj::StringPtr stateDir) {
  KJ_REQUIRE(stateDir.size() > 0, "empty state directory");
  auto dir = stateDir.endsWith("/") && stateDir.size() > 1
                 ? kj::heapString(stateDir.slice(0, stateDir.size() - 1))
                 : kj::heapString(stateDir);
  auto file = kj::str(dir, "/", kKeyFileName);
  auto load = [&](kj::Array<kj::byte> pem) {
    KJ_DEFER(gnutls_memset(pem.begin(), 0, pem.size()));
    return fromPem(pem, file);
  };

  KJ_IF_MAYBE (pem, readKeyFile(file)) {
    return load(kj::mv(*pem));
  }
  makeDirectories(dir);
  auto created = generate();
  auto pem = created->privateKeyPem();
  publishKeyFile(dir, file, pem);
  // Read back what is on disk (ours, or a concurrent first run's): the key we use is the key
  // the file holds, with the mode checks applied.
  return load(KJ_REQUIRE_NONNULL(readKeyFile(file), "identity key vanished after creation", file));
}

}  // namespace shoal::peer
