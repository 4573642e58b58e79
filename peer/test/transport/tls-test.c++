// TLS transport: handshakes over in-memory pipes and loopback TCP, data both ways, clean and
// unclean close, and refusal of peers that break the profile (those are built with GnuTLS
// directly, on a thread with blocking sockets, so they share no code with tls.c++).
#include <gnutls/abstract.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <gtest/gtest.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <kj/async-io.h>
#include <kj/debug.h>
#include <kj/vector.h>
#include <shoal/peer/transport/tls.h>
#include <thread>

namespace shoal::peer {
namespace {

// ---------------------------------------------------------------------------------------------
// Helpers

// Deterministic bytes: a lost, repeated or reordered byte shows up in the comparison.
kj::Array<kj::byte> pattern(size_t size, uint32_t seed) {
  auto out = kj::heapArray<kj::byte>(size);
  uint32_t x = seed * 2654435761u + 1;
  for (auto& b : out) {
    x = x * 1103515245u + 12345u;
    b = kj::byte(x >> 23);
  }
  return out;
}

// Reads exactly out.size() bytes through tryRead() calls of varying maxBytes.
kj::Promise<void> readExactly(kj::AsyncInputStream& in, kj::ArrayPtr<kj::byte> out,
                              size_t step = 0) {
  static const size_t kSteps[] = {1, 7, 4096, 65536, 1 << 20, 100000, 3, 16384};
  if (out.size() == 0) return kj::READY_NOW;
  size_t max = kj::min(out.size(), kSteps[step % kj::size(kSteps)]);
  return in.tryRead(out.begin(), 1, max).then([&in, out, step](size_t n) mutable {
    KJ_ASSERT(n > 0, "premature end of stream", out.size());
    return readExactly(in, out.slice(n, out.size()), step + 1);
  });
}

// Writes `data` in gather writes shaped like FrameWriter batches: 8-byte segment tables between
// segments of very different sizes, about 2 MiB per write().
kj::Promise<void> writeGathered(kj::AsyncOutputStream& out, kj::ArrayPtr<const kj::byte> data) {
  static const size_t kSizes[] = {8, 100, 8, 70000, 8, 1, 8, 16384, 8, 300000, 8, 5};
  if (data.size() == 0) return kj::READY_NOW;
  size_t batch = kj::min(data.size(), size_t(2 << 20) + 12345);
  auto pieces = kj::heap<kj::Vector<kj::ArrayPtr<const kj::byte>>>();
  for (size_t at = 0, i = 0; at < batch; ++i) {
    size_t n = kj::min(kSizes[i % kj::size(kSizes)], batch - at);
    pieces->add(data.slice(at, at + n));
    at += n;
  }
  auto ptr = pieces->asPtr();
  return out.write(ptr).attach(kj::mv(pieces)).then([&out, data, batch]() {
    return writeGathered(out, data.slice(batch, data.size()));
  });
}

kj::Promise<void> writeText(kj::AsyncOutputStream& out, kj::StringPtr text) {
  return out.write(text.begin(), text.size());
}

kj::String readText(kj::AsyncInputStream& in, size_t size, kj::WaitScope& ws) {
  auto bytes = kj::heapArray<char>(size);
  readExactly(in, bytes.asBytes()).wait(ws);
  return kj::heapString(bytes);
}

// A pass-through stream that counts the writes reaching it and notices overlapping ones.
class CountingStream final : public kj::AsyncIoStream {
 public:
  explicit CountingStream(kj::Own<kj::AsyncIoStream> inner) : inner(kj::mv(inner)) {}

  size_t writes = 0;
  uint64_t bytesWritten = 0;
  bool overlapped = false;

  kj::Promise<size_t> tryRead(void* buffer, size_t minBytes, size_t maxBytes) override {
    return inner->tryRead(buffer, minBytes, maxBytes);
  }
  kj::Promise<void> write(const void* buffer, size_t size) override {
    return track(size, inner->write(buffer, size));
  }
  kj::Promise<void> write(kj::ArrayPtr<const kj::ArrayPtr<const kj::byte>> pieces) override {
    size_t size = 0;
    for (auto& piece : pieces)
      size += piece.size();
    return track(size, inner->write(pieces));
  }
  kj::Promise<void> whenWriteDisconnected() override { return inner->whenWriteDisconnected(); }
  void shutdownWrite() override { inner->shutdownWrite(); }
  void abortRead() override { inner->abortRead(); }

 private:
  kj::Promise<void> track(size_t size, kj::Promise<void> promise) {
    if (inFlight) overlapped = true;
    inFlight = true;
    ++writes;
    bytesWritten += size;
    return promise.then([this]() { inFlight = false; });
  }

  kj::Own<kj::AsyncIoStream> inner;
  bool inFlight = false;
};

struct Pair {
  kj::Own<Transport> client;
  kj::Own<Transport> server;
};

Pair handshake(TlsContext& client, TlsContext& server, kj::Own<kj::AsyncIoStream> clientInner,
               kj::Own<kj::AsyncIoStream> serverInner, kj::WaitScope& ws) {
  auto both = kj::heapArrayBuilder<kj::Promise<kj::Own<Transport>>>(2);
  both.add(client.connect(kj::mv(clientInner)));
  both.add(server.accept(kj::mv(serverInner)));
  auto done = kj::joinPromises(both.finish()).wait(ws);
  return {kj::mv(done[0]), kj::mv(done[1])};
}

void joinAll(kj::ArrayPtr<kj::Promise<void>> promises, kj::WaitScope& ws) {
  auto builder = kj::heapArrayBuilder<kj::Promise<void>>(promises.size());
  for (auto& p : promises)
    builder.add(kj::mv(p));
  kj::joinPromises(builder.finish()).wait(ws);
}

// The exception a handshake rejected with; a test failure if it succeeded.
kj::Exception refusalOf(kj::Promise<kj::Own<Transport>> handshake, kj::WaitScope& ws) {
  kj::Maybe<kj::Exception> refusal;
  handshake
      .then([](kj::Own<Transport>) { ADD_FAILURE() << "the handshake succeeded"; },
            [&](kj::Exception&& e) { refusal = kj::mv(e); })
      .wait(ws);
  KJ_IF_MAYBE (e, refusal) {
    return kj::mv(*e);
  }
  return KJ_EXCEPTION(FAILED, "(no refusal)");
}

// The exception `f` throws; a test failure if it does not throw.
template <typename Func>
kj::Exception thrownBy(Func&& f) {
  KJ_IF_MAYBE (e, kj::runCatchingExceptions(kj::fwd<Func>(f))) {
    return kj::mv(*e);
  }
  ADD_FAILURE() << "no exception";
  return KJ_EXCEPTION(FAILED, "(no exception)");
}

bool same(kj::ArrayPtr<const kj::byte> a, kj::ArrayPtr<const kj::byte> b) {
  return a == b;
}

bool contains(kj::StringPtr haystack, kj::StringPtr needle) {
  return strstr(haystack.cStr(), needle.cStr()) != nullptr;
}

#define EXPECT_CONTAINS(haystack, needle)                                           \
  EXPECT_TRUE(contains(haystack, needle)) << "\"" << kj::StringPtr(haystack).cStr() \
                                          << "\" lacks \"" << kj::StringPtr(needle).cStr() << "\""

void expectHandshakeRefusal(const kj::Exception& e) {
  EXPECT_TRUE(e.getDescription().startsWith("TLS handshake failed: ")) << e.getDescription().cStr();
}

// ---------------------------------------------------------------------------------------------
// A peer made with GnuTLS directly, blocking, on its own thread

struct RawConfig {
  kj::StringPtr priority = kTlsPriority;
  bool rawKeys = true;  // GNUTLS_ENABLE_RAWPK
  bool presentKey = true;
  bool ecdsaKey = false;  // present an ECDSA P-256 raw key instead of the Ed25519 identity
  bool x509 = false;      // present a self-signed X.509 certificate of a fresh Ed25519 key
  kj::Maybe<kj::StringPtr> alpn = kAlpnProtocol;
};

gnutls_datum_t datumOf(kj::ArrayPtr<const kj::byte> bytes) {
  return {const_cast<kj::byte*>(bytes.begin()), unsigned(bytes.size())};
}

// Loads a fresh ECDSA P-256 key pair as a raw public key.
void setEcdsaKey(gnutls_certificate_credentials_t credentials) {
  gnutls_x509_privkey_t x509;
  gnutls_privkey_t priv;
  gnutls_pubkey_t pub;
  EXPECT_EQ(gnutls_x509_privkey_init(&x509), 0);
  EXPECT_EQ(gnutls_x509_privkey_generate(x509, GNUTLS_PK_ECDSA,
                                         GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1), 0),
            0);
  EXPECT_EQ(gnutls_privkey_init(&priv), 0);
  EXPECT_EQ(gnutls_privkey_import_x509(priv, x509, GNUTLS_PRIVKEY_IMPORT_COPY), 0);
  EXPECT_EQ(gnutls_pubkey_init(&pub), 0);
  EXPECT_EQ(gnutls_pubkey_import_privkey(pub, priv, 0, 0), 0);
  gnutls_datum_t spki, pkcs8;
  EXPECT_EQ(gnutls_pubkey_export2(pub, GNUTLS_X509_FMT_DER, &spki), 0);
  EXPECT_EQ(gnutls_x509_privkey_export2_pkcs8(x509, GNUTLS_X509_FMT_DER, nullptr, GNUTLS_PKCS_PLAIN,
                                              &pkcs8),
            0);
  EXPECT_EQ(gnutls_certificate_set_rawpk_key_mem(credentials, &spki, &pkcs8, GNUTLS_X509_FMT_DER,
                                                 nullptr, 0, nullptr, 0, 0),
            0);
  gnutls_free(spki.data);
  gnutls_free(pkcs8.data);
  gnutls_pubkey_deinit(pub);
  gnutls_privkey_deinit(priv);
  gnutls_x509_privkey_deinit(x509);
}

// Loads a self-signed X.509 certificate of a fresh Ed25519 key: what a TLS stack without RFC 7250
// support presents.
void setX509Certificate(gnutls_certificate_credentials_t credentials) {
  gnutls_x509_privkey_t key;
  gnutls_x509_crt_t crt;
  EXPECT_EQ(gnutls_x509_privkey_init(&key), 0);
  EXPECT_EQ(gnutls_x509_privkey_generate(key, GNUTLS_PK_EDDSA_ED25519, 0, 0), 0);
  EXPECT_EQ(gnutls_x509_crt_init(&crt), 0);
  EXPECT_EQ(gnutls_x509_crt_set_version(crt, 3), 0);
  EXPECT_EQ(gnutls_x509_crt_set_key(crt, key), 0);
  const kj::byte serial[] = {1};
  EXPECT_EQ(gnutls_x509_crt_set_serial(crt, serial, sizeof(serial)), 0);
  time_t now = time(nullptr);
  EXPECT_EQ(gnutls_x509_crt_set_activation_time(crt, now - 3600), 0);
  EXPECT_EQ(gnutls_x509_crt_set_expiration_time(crt, now + 3600), 0);
  EXPECT_EQ(gnutls_x509_crt_set_dn(crt, "CN=not-a-raw-key", nullptr), 0);
  EXPECT_EQ(gnutls_x509_crt_sign2(crt, crt, key, GNUTLS_DIG_SHA512, 0), 0);
  EXPECT_EQ(gnutls_certificate_set_x509_key(credentials, &crt, 1, key), 0);
  gnutls_x509_crt_deinit(crt);
  gnutls_x509_privkey_deinit(key);
}

// What a raw peer saw: the handshake's result, the fatal alert it received during the handshake
// or the reads after it (-1: none), and the key exchange group of a completed handshake.
struct RawOutcome {
  int handshake = 1;
  int alert = -1;
  int group = -1;
  int clientHellos = 0;  // ClientHellos a server received: 2 after a HelloRetryRequest
};

// Handshakes on `fd`, then reads until the other side closes.
RawOutcome runRawPeer(int fd, bool server, const RawConfig& config, const Identity& identity) {
  RawOutcome outcome;
  gnutls_certificate_credentials_t credentials;
  EXPECT_EQ(gnutls_certificate_allocate_credentials(&credentials), 0);
  if (config.ecdsaKey) {
    setEcdsaKey(credentials);
  } else if (config.x509) {
    setX509Certificate(credentials);
  } else if (config.presentKey) {
    auto spki = datumOf(identity.publicKeyDer());
    auto key = datumOf(identity.privateKeyPkcs8Der());
    EXPECT_EQ(gnutls_certificate_set_rawpk_key_mem(credentials, &spki, &key, GNUTLS_X509_FMT_DER,
                                                   nullptr, 0, nullptr, 0, 0),
              0);
  }
  gnutls_session_t s;
  unsigned flags =
      (config.rawKeys ? GNUTLS_ENABLE_RAWPK : 0) | GNUTLS_NO_TICKETS | GNUTLS_NO_SIGNAL;
  EXPECT_EQ(gnutls_init(&s, flags | (server ? GNUTLS_SERVER : GNUTLS_CLIENT)), 0);
  EXPECT_EQ(gnutls_priority_set_direct(s, config.priority.cStr(), nullptr), 0);
  EXPECT_EQ(gnutls_credentials_set(s, GNUTLS_CRD_CERTIFICATE, credentials), 0);
  if (server) gnutls_certificate_server_set_request(s, GNUTLS_CERT_REQUEST);
  KJ_IF_MAYBE (protocol, config.alpn) {
    auto datum = datumOf(protocol->asBytes());
    EXPECT_EQ(gnutls_alpn_set_protocols(s, &datum, 1, 0), 0);
  }
  gnutls_session_set_ptr(s, &outcome);
  gnutls_handshake_set_hook_function(
      s, GNUTLS_HANDSHAKE_CLIENT_HELLO, GNUTLS_HOOK_PRE,
      [](gnutls_session_t session, unsigned, unsigned, unsigned, const gnutls_datum_t*) {
        ++static_cast<RawOutcome*>(gnutls_session_get_ptr(session))->clientHellos;
        return 0;
      });
  gnutls_transport_set_int(s, fd);
  gnutls_handshake_set_timeout(s, 20000);  // a broken test fails instead of hanging
  gnutls_record_set_timeout(s, 20000);
  int rc;
  do {
    rc = gnutls_handshake(s);
  } while (rc < 0 && !gnutls_error_is_fatal(rc));
  outcome.handshake = rc;
  if (rc == GNUTLS_E_FATAL_ALERT_RECEIVED) outcome.alert = int(gnutls_alert_get(s));
  if (rc == 0) {
    outcome.group = int(gnutls_group_get(s));
    char buffer[256];
    ssize_t n;
    do {
      n = gnutls_record_recv(s, buffer, sizeof(buffer));
    } while (n > 0 || n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED);
    if (n == GNUTLS_E_FATAL_ALERT_RECEIVED) outcome.alert = int(gnutls_alert_get(s));
  }
  gnutls_deinit(s);
  gnutls_certificate_free_credentials(credentials);
  return outcome;
}

class RawPeer {
 public:
  RawPeer(kj::AsyncIoContext& io, bool server, const RawConfig& config)
      : identity(Identity::generate()) {
    int fds[2];
    KJ_SYSCALL(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds));
    ours = io.lowLevelProvider->wrapSocketFd(fds[0], kj::LowLevelAsyncIoProvider::TAKE_OWNERSHIP);
    thread = std::thread([this, fd = fds[1], server, config]() {
      outcome = runRawPeer(fd, server, config, *identity);
      close(fd);
    });
  }
  ~RawPeer() {
    if (thread.joinable()) thread.join();
  }

  kj::Own<kj::AsyncIoStream> stream() { return kj::mv(ours); }
  // The raw peer's handshake result, once our end of the socket is gone.
  int join() { return seen().handshake; }
  // The fatal alert the raw peer received from us (-1: none).
  int alert() { return seen().alert; }
  // The key exchange group of its completed handshake.
  int group() { return seen().group; }
  int clientHellos() { return seen().clientHellos; }

  kj::Own<Identity> identity;

 private:
  kj::Own<kj::AsyncIoStream> ours;
  std::thread thread;
  RawOutcome outcome;

  const RawOutcome& seen() {
    if (thread.joinable()) thread.join();
    return outcome;
  }
};

// ---------------------------------------------------------------------------------------------
// Handshake and data over in-memory pipes

class TlsTest : public testing::Test {
 protected:
  // KJ members may throw from destructors; gtest's base destructor may not.
  ~TlsTest() noexcept override {}

  kj::AsyncIoContext io = kj::setupAsyncIo();
  kj::WaitScope& ws = io.waitScope;
  kj::Own<Identity> alice = Identity::generate();
  kj::Own<Identity> bob = Identity::generate();
  TlsContext aliceTls{*alice};
  TlsContext bobTls{*bob};

  Pair pipePair() {
    auto pipe = kj::newTwoWayPipe();
    return handshake(aliceTls, bobTls, kj::mv(pipe.ends[0]), kj::mv(pipe.ends[1]), ws);
  }
};

TEST_F(TlsTest, HandshakeOverAPipeProvesBothIds) {
  auto pair = pipePair();
  EXPECT_EQ(KJ_ASSERT_NONNULL(pair.client->peerId()), bob->id());
  EXPECT_EQ(KJ_ASSERT_NONNULL(pair.server->peerId()), alice->id());

  auto up = writeText(pair.client->stream(), "hello bob");
  EXPECT_EQ(readText(pair.server->stream(), 9, ws), "hello bob");
  up.wait(ws);
  auto down = writeText(pair.server->stream(), "hello alice");
  EXPECT_EQ(readText(pair.client->stream(), 11, ws), "hello alice");
  down.wait(ws);
}

TEST_F(TlsTest, EightMebibytesEachWayInGatherWritesAreBatched) {
  auto pipe = kj::newTwoWayPipe();
  auto counting = kj::heap<CountingStream>(kj::mv(pipe.ends[0]));
  auto& counter = *counting;
  auto pair = handshake(aliceTls, bobTls, kj::mv(counting), kj::mv(pipe.ends[1]), ws);
  size_t writesBefore = counter.writes;
  uint64_t bytesBefore = counter.bytesWritten;

  auto up = pattern(8 << 20, 1), down = pattern((8 << 20) + 13, 2);
  auto gotUp = kj::heapArray<kj::byte>(up.size()), gotDown = kj::heapArray<kj::byte>(down.size());
  kj::Promise<void> all[] = {
      writeGathered(pair.client->stream(), up), readExactly(pair.server->stream(), gotUp),
      writeGathered(pair.server->stream(), down), readExactly(pair.client->stream(), gotDown)};
  joinAll(all, ws);
  EXPECT_TRUE(same(gotUp, up));
  EXPECT_TRUE(same(gotDown, down));

  // 8 MiB is 512 full records; they must reach the inner stream in a few large writes, one at a
  // time, and small pieces must share records (not one record, 22 bytes of overhead, each).
  size_t writes = counter.writes - writesBefore;
  uint64_t ciphertext = counter.bytesWritten - bytesBefore;
  EXPECT_FALSE(counter.overlapped);
  EXPECT_GE(writes, 2u);
  EXPECT_LE(writes, 40u);
  size_t writeCalls = up.size() / ((2 << 20) + 12345) + 1;
  uint64_t maxRecords = up.size() / 16384 + writeCalls;
  EXPECT_GE(ciphertext, up.size() + (up.size() / 16384) * 22);
  EXPECT_LE(ciphertext, up.size() + maxRecords * 22);
}

TEST_F(TlsTest, OneByteReadsAcrossRecords) {
  auto pair = pipePair();
  auto data = pattern(100000, 3);  // 7 records
  auto writing = pair.server->stream().write(data.begin(), data.size());
  auto got = kj::heapArray<kj::byte>(data.size());
  auto& in = pair.client->stream();
  for (size_t i = 0; i < 40000; ++i) {
    ASSERT_EQ(in.tryRead(got.begin() + i, 1, 1).wait(ws), 1u) << i;
  }
  // A minBytes spanning two records is met in full, never exceeding maxBytes.
  EXPECT_EQ(in.tryRead(got.begin() + 40000, 30000, 30000).wait(ws), 30000u);
  readExactly(in, got.slice(70000, got.size())).wait(ws);
  writing.wait(ws);
  EXPECT_TRUE(same(got, data));
}

TEST_F(TlsTest, ACancelledReadLosesNoCiphertext) {
  // A tryRead() raced against a timer and cancelled just after the inner stream handed over
  // ciphertext (its continuation not yet run) must not lose those bytes.
  auto pair = pipePair();
  auto sending = writeText(pair.server->stream(), "kept");
  EXPECT_FALSE(sending.poll(ws));  // the ciphertext now waits in the pipe for a reader
  char text[4];
  {
    auto cancelled = pair.client->stream().tryRead(text, 4, 4);
    // Dropped here: the pipe copied the ciphertext into the transport synchronously.
  }
  auto& timer = io.provider->getTimer();
  auto reading = timer.timeoutAfter(10 * kj::SECONDS, pair.client->stream().tryRead(text, 4, 4));
  EXPECT_EQ(reading.wait(ws), 4u);
  EXPECT_EQ(kj::heapString(text, 4), "kept");
  sending.wait(ws);
}

TEST_F(TlsTest, CloseNotifyIsACleanEndOfStream) {
  auto pair = pipePair();
  auto sending = writeText(pair.client->stream(), "last words");
  EXPECT_EQ(readText(pair.server->stream(), 10, ws), "last words");
  sending.wait(ws);

  auto ending = pair.client->end();
  char byte;
  EXPECT_EQ(pair.server->stream().tryRead(&byte, 1, 1).wait(ws), 0u);
  ending.wait(ws);
  pair.client->end().wait(ws);                                         // idempotent
  EXPECT_EQ(pair.server->stream().tryRead(&byte, 1, 1).wait(ws), 0u);  // and stays ended

  // Half close: the other direction still works until its own end().
  auto reply = writeText(pair.server->stream(), "still here");
  EXPECT_EQ(readText(pair.client->stream(), 10, ws), "still here");
  reply.wait(ws);
  auto serverEnding = pair.server->end();
  EXPECT_EQ(pair.client->stream().tryRead(&byte, 1, 1).wait(ws), 0u);
  serverEnding.wait(ws);

  auto e = thrownBy([&]() { writeText(pair.client->stream(), "more").wait(ws); });
  EXPECT_CONTAINS(e.getDescription(), "after end()");
}

TEST_F(TlsTest, DroppingTheInnerStreamWithoutCloseNotifyIsUnclean) {
  auto pair = pipePair();
  auto sending = writeText(pair.client->stream(), "partial");
  EXPECT_EQ(readText(pair.server->stream(), 7, ws), "partial");
  sending.wait(ws);
  pair.client = nullptr;  // the pipe end goes with it; no close_notify was sent

  char byte;
  auto e = thrownBy([&]() { pair.server->stream().tryRead(&byte, 1, 1).wait(ws); });
  EXPECT_EQ(e.getType(), kj::Exception::Type::DISCONNECTED);
  EXPECT_CONTAINS(e.getDescription(), "unclean TLS close");
}

TEST_F(TlsTest, ConnectionsOutliveTheirContext) {
  Pair pair;
  {
    TlsContext a(*alice), b(*bob);
    auto pipe = kj::newTwoWayPipe();
    pair = handshake(a, b, kj::mv(pipe.ends[0]), kj::mv(pipe.ends[1]), ws);
  }
  auto data = pattern(300000, 4);
  auto got = kj::heapArray<kj::byte>(data.size());
  kj::Promise<void> all[] = {pair.client->stream().write(data.begin(), data.size()),
                             readExactly(pair.server->stream(), got)};
  joinAll(all, ws);
  EXPECT_TRUE(same(got, data));
}

TEST_F(TlsTest, GarbageOrAnEarlyCloseFailsTheHandshake) {
  {
    auto pipe = kj::newTwoWayPipe();
    auto accepting = bobTls.accept(kj::mv(pipe.ends[1]));
    auto garbage = writeText(*pipe.ends[0], "GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    auto e = refusalOf(kj::mv(accepting), ws);
    expectHandshakeRefusal(e);
    EXPECT_EQ(e.getType(), kj::Exception::Type::FAILED);
  }
  {
    auto pipe = kj::newTwoWayPipe();
    auto connecting = aliceTls.connect(kj::mv(pipe.ends[0]));
    pipe.ends[1] = nullptr;
    auto e = refusalOf(kj::mv(connecting), ws);
    expectHandshakeRefusal(e);
    EXPECT_EQ(e.getType(), kj::Exception::Type::DISCONNECTED);
  }
}

// ---------------------------------------------------------------------------------------------
// Peers that break the profile

TEST_F(TlsTest, ARawGnutlsClientFollowingTheProfileIsAccepted) {
  // The control for the refusals below: the raw client itself works.
  RawPeer client(io, false, RawConfig());
  auto server = bobTls.accept(client.stream()).wait(ws);
  EXPECT_EQ(KJ_ASSERT_NONNULL(server->peerId()), client.identity->id());
  server = nullptr;
  EXPECT_EQ(client.join(), 0);
  EXPECT_EQ(client.alert(), -1);
}

TEST_F(TlsTest, TheKeyExchangeIsX25519) {
  // Our client offers X25519 first; a GnuTLS server with NORMAL's group order (SECP256R1 first)
  // takes the key share it is given.
  RawConfig config;
  config.priority = "NORMAL:-VERS-ALL:+VERS-TLS1.3:-CTYPE-ALL:+CTYPE-CLI-RAWPK:+CTYPE-SRV-RAWPK"_kj;
  RawPeer server(io, true, config);
  auto client = aliceTls.connect(server.stream()).wait(ws);
  client = nullptr;
  EXPECT_EQ(server.group(), GNUTLS_GROUP_X25519);
  EXPECT_EQ(server.clientHellos(), 1);  // no HelloRetryRequest
}

TEST_F(TlsTest, AServerWithoutX25519AsksForItsGroup) {
  // Our client sends one key share, X25519's (GNUTLS_KEY_SHARE_TOP); a server without X25519
  // asks for another group with a HelloRetryRequest and the handshake completes with it.
  RawConfig config;
  config.priority =
      "NORMAL:-VERS-ALL:+VERS-TLS1.3:-CTYPE-ALL:+CTYPE-CLI-RAWPK:+CTYPE-SRV-RAWPK"
      ":-GROUP-ALL:+GROUP-SECP256R1"_kj;
  RawPeer server(io, true, config);
  auto client = aliceTls.connect(server.stream()).wait(ws);
  client = nullptr;
  EXPECT_EQ(server.group(), GNUTLS_GROUP_SECP256R1);
  EXPECT_EQ(server.clientHellos(), 2);  // after the HelloRetryRequest
}

// Refusals say why with the alert the situation calls for (docs/protocol.md §2.6); those that
// depend only on the ClientHello come before our first flight, so the client's own handshake
// fails with the alert.

TEST_F(TlsTest, AClientOfferingOnlyTls12IsRefused) {
  RawConfig config;
  config.priority = "NORMAL:-VERS-ALL:+VERS-TLS1.2:-CTYPE-ALL:+CTYPE-CLI-RAWPK:+CTYPE-SRV-RAWPK"_kj;
  RawPeer client(io, false, config);
  auto e = refusalOf(bobTls.accept(client.stream()), ws);
  EXPECT_EQ(e.getDescription(), "TLS handshake failed: the peer does not offer TLS 1.3");
  EXPECT_EQ(client.join(), GNUTLS_E_FATAL_ALERT_RECEIVED);
  EXPECT_EQ(client.alert(), GNUTLS_A_PROTOCOL_VERSION);
}

TEST_F(TlsTest, AClientPresentingNoKeyIsRefused) {
  RawConfig config;
  config.presentKey = false;
  RawPeer client(io, false, config);
  auto e = refusalOf(bobTls.accept(client.stream()), ws);
  expectHandshakeRefusal(e);
  EXPECT_CONTAINS(e.getDescription(), "Certificate is required");  // GnuTLS's words
  // TLS 1.3: the client has finished its side when it sends its (empty) Certificate; the alert
  // arrives in place of our Finished-acknowledging traffic.
  EXPECT_EQ(client.alert(), GNUTLS_A_CERTIFICATE_REQUIRED);
}

TEST_F(TlsTest, AClientWithAnEcdsaKeyIsRefused) {
  // The server accepts only Ed25519 signatures, so the client cannot use its key at all.
  RawConfig config;
  config.priority = "NORMAL:-VERS-ALL:+VERS-TLS1.3:-CTYPE-ALL:+CTYPE-CLI-RAWPK:+CTYPE-SRV-RAWPK"_kj;
  config.ecdsaKey = true;
  RawPeer client(io, false, config);
  auto e = refusalOf(bobTls.accept(client.stream()), ws);
  expectHandshakeRefusal(e);
  EXPECT_CONTAINS(e.getDescription(), "Certificate is required");
  EXPECT_EQ(client.alert(), GNUTLS_A_CERTIFICATE_REQUIRED);
}

TEST_F(TlsTest, AClientWithoutRawPublicKeysIsRefused) {
  // [TR-3]: a TLS 1.3 client that knows only X.509 (no RFC 7250 certificate types offered), holding
  // a certificate. The server has nothing it may present to such a client: refused from its
  // ClientHello, before any client certificate is asked for, for that reason and not for a
  // missing key.
  RawConfig config;
  config.priority = "NORMAL:-VERS-ALL:+VERS-TLS1.3"_kj;
  config.rawKeys = false;
  config.x509 = true;
  RawPeer client(io, false, config);
  auto e = refusalOf(bobTls.accept(client.stream()), ws);
  EXPECT_EQ(e.getDescription(), "TLS handshake failed: the peer does not accept a raw public key");
  EXPECT_EQ(client.join(), GNUTLS_E_FATAL_ALERT_RECEIVED);
  EXPECT_EQ(client.alert(), GNUTLS_A_UNSUPPORTED_CERTIFICATE);
}

TEST_F(TlsTest, AClientPresentingAnX509CertificateIsRefused) {
  // [TR-3]: clients that take our raw key but present an X.509 certificate for themselves
  // (offering only X.509 for themselves, which GnuTLS sends as no client_certificate_type at all,
  // or raw keys too). GnuTLS would complete that handshake although our priority allows raw
  // client keys only (docs/dependencies.md): our check when the Certificate arrives refuses it.
  for (auto priority :
       {"NORMAL:-VERS-ALL:+VERS-TLS1.3:-CTYPE-ALL:+CTYPE-SRV-RAWPK:+CTYPE-CLI-X509"_kj,
        "NORMAL:-VERS-ALL:+VERS-TLS1.3:+CTYPE-CLI-RAWPK:+CTYPE-SRV-RAWPK"_kj}) {
    RawConfig config;
    config.priority = priority;
    config.x509 = true;
    RawPeer client(io, false, config);
    auto e = refusalOf(bobTls.accept(client.stream()), ws);
    EXPECT_EQ(e.getDescription(),
              "TLS handshake failed: the peer did not present a raw public key");
    EXPECT_EQ(client.alert(), GNUTLS_A_UNSUPPORTED_CERTIFICATE);
  }
}

TEST_F(TlsTest, AClientWithoutShoalAlpnIsRefused) {
  RawConfig none;
  none.alpn = nullptr;
  RawConfig other;
  other.alpn = "h2"_kj;
  // GnuTLS's GNUTLS_ALPN_MANDATORY lets a client that sends no ALPN at all through: our check
  // of the ClientHello refuses both, before our first flight.
  for (auto& config : {none, other}) {
    RawPeer client(io, false, config);
    auto e = refusalOf(bobTls.accept(client.stream()), ws);
    EXPECT_EQ(e.getDescription(), "TLS handshake failed: the peer did not negotiate ALPN shoal/1");
    EXPECT_EQ(client.join(), GNUTLS_E_FATAL_ALERT_RECEIVED);
    EXPECT_EQ(client.alert(), GNUTLS_A_NO_APPLICATION_PROTOCOL);
  }
}

TEST_F(TlsTest, AServerWithoutShoalAlpnIsRefused) {
  RawConfig config;
  config.alpn = nullptr;
  RawPeer server(io, true, config);
  auto e = refusalOf(aliceTls.connect(server.stream()), ws);
  EXPECT_EQ(e.getDescription(), "TLS handshake failed: the peer did not negotiate ALPN shoal/1");
  // Refused when its Certificate arrives, before our Finished: its handshake fails too.
  EXPECT_EQ(server.join(), GNUTLS_E_FATAL_ALERT_RECEIVED);
  EXPECT_EQ(server.alert(), GNUTLS_A_NO_APPLICATION_PROTOCOL);
}

// ---------------------------------------------------------------------------------------------
// Loopback TCP

// A connected client/server pair over real loopback TCP.
Pair tcpPair(kj::AsyncIoContext& io, TlsContext& client, TlsContext& server) {
  auto& network = io.provider->getNetwork();
  auto listener = network.parseAddress("127.0.0.1", 0).wait(io.waitScope)->listen();
  auto address = network.parseAddress("127.0.0.1", listener->getPort()).wait(io.waitScope);
  auto both = kj::heapArrayBuilder<kj::Promise<kj::Own<Transport>>>(2);
  both.add(address->connect().then(
      [&client](kj::Own<kj::AsyncIoStream> s) { return client.connect(kj::mv(s)); }));
  both.add(listener->accept().then(
      [&server](kj::Own<kj::AsyncIoStream> s) { return server.accept(kj::mv(s)); }));
  auto done = kj::joinPromises(both.finish()).wait(io.waitScope);
  return {kj::mv(done[0]), kj::mv(done[1])};
}

TEST_F(TlsTest, HandshakeAndDataOverLoopbackTcp) {
  auto pair = tcpPair(io, aliceTls, bobTls);
  auto& client = *pair.client;
  auto& server = *pair.server;
  EXPECT_EQ(KJ_ASSERT_NONNULL(client.peerId()), bob->id());
  EXPECT_EQ(KJ_ASSERT_NONNULL(server.peerId()), alice->id());

  auto up = pattern(8 << 20, 5), down = pattern(1 << 20, 6);
  auto gotUp = kj::heapArray<kj::byte>(up.size()), gotDown = kj::heapArray<kj::byte>(down.size());
  kj::Promise<void> all[] = {
      writeGathered(client.stream(), up).then([&]() { return client.end(); }),
      readExactly(server.stream(), gotUp),
      server.stream().write(down.begin(), down.size()),
      readExactly(client.stream(), gotDown),
  };
  joinAll(all, ws);
  EXPECT_TRUE(same(gotUp, up));
  EXPECT_TRUE(same(gotDown, down));
  char byte;
  EXPECT_EQ(server.stream().tryRead(&byte, 1, 1).wait(ws), 0u);

  // The server now drops its socket without close_notify: over TCP that is a FIN at a record
  // boundary, which must still read as unclean.
  pair.server = nullptr;
  auto e = thrownBy([&]() { client.stream().tryRead(&byte, 1, 1).wait(ws); });
  EXPECT_EQ(e.getType(), kj::Exception::Type::DISCONNECTED);
  EXPECT_CONTAINS(e.getDescription(), "unclean TLS close");
}

TEST_F(TlsTest, AConnectionResetIsAnUncleanClose) {
  auto pair = tcpPair(io, aliceTls, bobTls);
  // Linger 0 turns the close into a TCP reset; the option reaches the socket through TLS.
  struct linger reset = {1, 0};
  pair.server->stream().setsockopt(SOL_SOCKET, SO_LINGER, &reset, sizeof(reset));
  pair.server = nullptr;
  char byte;
  auto e = thrownBy([&]() { pair.client->stream().tryRead(&byte, 1, 1).wait(ws); });
  EXPECT_EQ(e.getType(), kj::Exception::Type::DISCONNECTED);
  EXPECT_CONTAINS(e.getDescription(), "unclean TLS close");
}

}  // namespace
}  // namespace shoal::peer
