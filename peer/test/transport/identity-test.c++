// Identity: key generation, the key file's life (creation, modes, reload) and every refusal.
#include <dirent.h>
#include <fcntl.h>
#include <gnutls/abstract.h>
#include <gnutls/x509.h>
#include <gtest/gtest.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <kj/debug.h>
#include <kj/io.h>
#include <kj/vector.h>
#include <shoal/peer/transport/identity.h>
#include <filesystem>

namespace shoal::peer {
namespace {

// A fresh directory under /tmp, removed with everything in it.
class TempDir {
 public:
  TempDir() {
    char path[] = "/tmp/shoal-identity-test-XXXXXX";
    KJ_ASSERT(mkdtemp(path) != nullptr);
    root = kj::heapString(path);
  }
  ~TempDir() { std::filesystem::remove_all(root.cStr()); }
  kj::String operator/(kj::StringPtr name) const { return kj::str(root, "/", name); }
  kj::StringPtr path() const { return root; }

 private:
  kj::String root;
};

mode_t modeOf(kj::StringPtr path) {
  struct stat st;
  KJ_SYSCALL(lstat(path.cStr(), &st), path);
  return st.st_mode;
}

kj::Vector<kj::String> entries(kj::StringPtr dir) {
  kj::Vector<kj::String> names;
  DIR* d = opendir(dir.cStr());
  KJ_ASSERT(d != nullptr);
  while (auto entry = readdir(d)) {
    kj::StringPtr name = entry->d_name;
    if (name != "." && name != "..") names.add(kj::heapString(name));
  }
  closedir(d);
  return names;
}

void writeFile(kj::StringPtr path, kj::ArrayPtr<const kj::byte> bytes, mode_t mode) {
  int fd;
  KJ_SYSCALL(fd = open(path.cStr(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode), path);
  kj::FdOutputStream(kj::AutoCloseFd(fd)).write(bytes.begin(), bytes.size());
  KJ_SYSCALL(chmod(path.cStr(), mode), path);
}

// The description of the exception `load()` throws; a test failure if it does not throw.
kj::String refusal(kj::StringPtr stateDir) {
  KJ_IF_MAYBE (e, kj::runCatchingExceptions([&]() { Identity::loadOrCreate(stateDir); })) {
    return kj::str(e->getDescription());
  }
  ADD_FAILURE() << "loadOrCreate accepted " << stateDir.cStr();
  return kj::str();
}

bool contains(kj::StringPtr haystack, kj::StringPtr needle) {
  return strstr(haystack.cStr(), needle.cStr()) != nullptr;
}

#define EXPECT_CONTAINS(haystack, needle)                                           \
  EXPECT_TRUE(contains(haystack, needle)) << "\"" << kj::StringPtr(haystack).cStr() \
                                          << "\" lacks \"" << kj::StringPtr(needle).cStr() << "\""

bool isEd25519Spki(kj::ArrayPtr<const kj::byte> spki) {
  gnutls_pubkey_t key;
  KJ_ASSERT(gnutls_pubkey_init(&key) == 0);
  KJ_DEFER(gnutls_pubkey_deinit(key));
  gnutls_datum_t datum = {const_cast<kj::byte*>(spki.begin()), unsigned(spki.size())};
  if (gnutls_pubkey_import(key, &datum, GNUTLS_X509_FMT_DER) < 0) return false;
  return gnutls_pubkey_get_pk_algorithm(key, nullptr) == GNUTLS_PK_EDDSA_ED25519;
}

// A PKCS#8 PEM private key of another algorithm, made with GnuTLS directly.
kj::Array<kj::byte> otherKeyPem(gnutls_pk_algorithm_t algorithm, unsigned bits) {
  gnutls_x509_privkey_t key;
  KJ_ASSERT(gnutls_x509_privkey_init(&key) == 0);
  KJ_DEFER(gnutls_x509_privkey_deinit(key));
  KJ_ASSERT(gnutls_x509_privkey_generate(key, algorithm, bits, 0) == 0);
  gnutls_datum_t pem;
  KJ_ASSERT(gnutls_x509_privkey_export2_pkcs8(key, GNUTLS_X509_FMT_PEM, nullptr, GNUTLS_PKCS_PLAIN,
                                              &pem) == 0);
  auto copy = kj::heapArray<kj::byte>(pem.data, pem.size);
  gnutls_free(pem.data);
  return copy;
}

TEST(Identity, GeneratesDistinctEd25519Keys) {
  auto a = Identity::generate();
  auto b = Identity::generate();
  EXPECT_TRUE(isEd25519Spki(a->publicKeyDer()));
  EXPECT_EQ(a->id(), peerIdOf(a->publicKeyDer()));
  EXPECT_NE(a->id(), b->id());
  EXPECT_FALSE(a->publicKeyDer() == b->publicKeyDer());

  // The PEM form is an unencrypted PKCS#8 key that reads back as the same identity.
  auto pem = a->privateKeyPem();
  EXPECT_TRUE(kj::heapString(pem.asChars().begin(), 27) == "-----BEGIN PRIVATE KEY-----");
  auto again = Identity::fromPem(pem, "memory");
  EXPECT_EQ(again->id(), a->id());
  EXPECT_TRUE(again->privateKeyPkcs8Der() == a->privateKeyPkcs8Der());
}

TEST(Identity, CreatesA0600KeyInA0700DirectoryAndReloadsIt) {
  TempDir temp;
  auto stateDir = temp / "state/nested";  // neither exists yet
  auto created = Identity::loadOrCreate(stateDir);

  EXPECT_EQ(modeOf(temp / "state") & 07777, 0700u);
  EXPECT_EQ(modeOf(stateDir) & 07777, 0700u);
  auto file = kj::str(stateDir, "/identity.key");
  EXPECT_TRUE(S_ISREG(modeOf(file)));
  EXPECT_EQ(modeOf(file) & 07777, 0600u);
  auto names = entries(stateDir);
  ASSERT_EQ(names.size(), 1u) << "temporary files left behind";
  EXPECT_TRUE(names[0] == "identity.key");

  auto reloaded = Identity::loadOrCreate(stateDir);
  EXPECT_EQ(reloaded->id(), created->id());
  auto viaSlash = Identity::loadOrCreate(kj::str(stateDir, "/"));
  EXPECT_EQ(viaSlash->id(), created->id());
  EXPECT_EQ(modeOf(file) & 07777, 0600u);  // loading leaves the file alone
}

TEST(Identity, UsesAnExistingDirectoryAndAnOwnerOnlyKey) {
  TempDir temp;
  auto key = Identity::generate();
  writeFile(temp / "identity.key", key->privateKeyPem(), 0400);
  EXPECT_EQ(Identity::loadOrCreate(temp.path())->id(), key->id());
  EXPECT_EQ(modeOf(temp.path()) & 07777, 0700u);  // mkdtemp's mode, not changed
}

TEST(Identity, RefusesAKeyReadableOrWritableByOthers) {
  TempDir temp;
  auto file = temp / "identity.key";
  auto pem = Identity::generate()->privateKeyPem();
  for (mode_t mode : {0644, 0640, 0604, 0620, 0602, 0660}) {
    writeFile(file, pem, mode);
    auto why = refusal(temp.path());
    EXPECT_CONTAINS(why, "readable or writable by group or others");
    EXPECT_CONTAINS(why, file);
    char expected[16];
    snprintf(expected, sizeof(expected), "mode = %04o", unsigned(mode));
    EXPECT_CONTAINS(why, expected);
    EXPECT_CONTAINS(why, kj::str("chmod 600 ", file));
    EXPECT_FALSE(contains(why, "\n"));
  }
  writeFile(file, pem, 0600);
  EXPECT_NO_THROW(Identity::loadOrCreate(temp.path()));
  writeFile(file, pem, 0700);  // execute bits alone give nobody the key
  EXPECT_NO_THROW(Identity::loadOrCreate(temp.path()));
}

TEST(Identity, RefusesAKeyPathThatIsNotARegularFile) {
  TempDir temp;
  auto file = temp / "identity.key";
  KJ_SYSCALL(mkdir(file.cStr(), 0700));
  EXPECT_CONTAINS(refusal(temp.path()), "not a regular file");
  KJ_SYSCALL(rmdir(file.cStr()));

  // A FIFO would block a plain open() forever; it must be refused at once.
  KJ_SYSCALL(mkfifo(file.cStr(), 0600));
  EXPECT_CONTAINS(refusal(temp.path()), "not a regular file");
}

TEST(Identity, RefusesKeysThatAreNotEd25519) {
  TempDir temp;
  auto file = temp / "identity.key";
  struct Case {
    gnutls_pk_algorithm_t algorithm;
    unsigned bits;
    const char* name;
  };
  Case cases[] = {
      {GNUTLS_PK_ECDSA, GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1), "ECDSA"},
      {GNUTLS_PK_EDDSA_ED448, GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_ED448), "Ed448"},
  };
  for (auto& c : cases) {
    writeFile(file, otherKeyPem(c.algorithm, c.bits), 0600);
    auto why = refusal(temp.path());
    EXPECT_CONTAINS(why, "not an Ed25519 key");
    EXPECT_CONTAINS(why, c.name);
    EXPECT_CONTAINS(why, file);
  }
}

TEST(Identity, RefusesGarbageAndEmptyKeyFiles) {
  TempDir temp;
  auto file = temp / "identity.key";
  const char* garbage[] = {
      "-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5IGF0IGFsbA==\n-----END PRIVATE KEY-----\n",
      "hello\n",
      "",
  };
  for (auto text : garbage) {
    writeFile(file, kj::StringPtr(text).asBytes(), 0600);
    auto why = refusal(temp.path());
    EXPECT_CONTAINS(why, "not an unencrypted PKCS#8 PEM private key");
    EXPECT_CONTAINS(why, file);
  }
  // A bad key is never replaced by a new one: the file is the user's to fix.
  EXPECT_EQ(modeOf(file) & 07777, 0600u);
  EXPECT_EQ(entries(temp.path()).size(), 1u);
}

}  // namespace
}  // namespace shoal::peer
