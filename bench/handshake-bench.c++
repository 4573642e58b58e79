// Connection set-up on loopback, time from connect() until both Sessions are established:
// TCP + TLS 1.3 (raw public keys, Ed25519) + Hello/HelloAck, beside two baselines measured in the
// same run — plaintext TCP + Hello/HelloAck, and a bare TCP connect/accept — and the parts of the
// TLS set-up measured alone: the same handshake over a memory pipe, GnuTLS alone with shoal's
// profile (server key only, as gnutls-cli's benchmark, and mutual), one Ed25519 sign and verify.
#include <benchmark/benchmark.h>
#include <gnutls/abstract.h>
#include <gnutls/gnutls.h>
#include <string.h>
#include <time.h>

#include <kj/async-io.h>
#include <kj/debug.h>
#include <kj/vector.h>
#include <shoal/peer/session/session.h>
#include <shoal/peer/transport/tls.h>

namespace shoal::peer {
namespace {

// TLS_ONLY (TCP + TLS without Hello/HelloAck) comes last so that `connectionSetup/2` stays the
// figure bench/run.py reads.
enum Mode { TCP_ONLY, PLAINTEXT, TLS, TLS_ONLY };
const char* const kModeNames[] = {"tcp-connect", "plaintext+hello", "tls1.3+hello",
                                  "tls1.3, no hello"};

// Counts established sessions; serves nothing.
struct Handler final : public SessionHandler {
  uint32_t established = 0;
  kj::Maybe<kj::Own<kj::PromiseFulfiller<void>>> both;
  kj::Maybe<Rejection> onHello(Session&, const RemotePeer&) override { return nullptr; }
  void onEstablished(Session&) override {
    if (++established == 2)
      KJ_IF_MAYBE (f, both) {
        (*f)->fulfill();
      }
  }
  kj::Promise<kj::Array<codec::FrameBuilder>> serve(Session&, uint64_t,
                                                    codec::InboundFrame) override {
    KJ_FAIL_ASSERT("no requests in this benchmark");
  }
  void onLibraryChanged(Session&, const codec::Summary&) override {}
  void onGoodbye(Session&, const event::GoodbyeReceived&) override {}
  void onWriterDone(Session&) override {}
  void onClosed(Session&, const event::Closed&) override {}
};

LocalPeer local(const Identity& id, uint64_t instance) {
  return LocalPeer{id.id(), kj::str("bench"), nullptr, codec::Summary{1, 1, codec::sha256(nullptr)},
                   instance};
}

void connectionSetup(benchmark::State& state) {
  auto mode = Mode(state.range(0));
  auto io = kj::setupAsyncIo();
  auto& ws = io.waitScope;
  auto& network = io.provider->getNetwork();
  auto& timer = io.provider->getTimer();
  auto alice = Identity::generate();
  auto bob = Identity::generate();
  TlsContext aliceTls(*alice), bobTls(*bob);
  auto listener = network.parseAddress("127.0.0.1", 0).wait(ws)->listen();
  auto address = network.parseAddress("127.0.0.1", listener->getPort()).wait(ws);
  SessionConfig config;

  for (auto _ : state) {
    auto start = kj::systemPreciseMonotonicClock().now();
    auto accepted = listener->accept();
    auto dialled = address->connect().wait(ws);
    auto server = accepted.wait(ws);
    if (mode == TCP_ONLY) {
      state.SetIterationTime(
          double((kj::systemPreciseMonotonicClock().now() - start) / kj::NANOSECONDS) / 1e9);
      continue;
    }
    kj::Own<Transport> a, b;
    if (mode == TLS || mode == TLS_ONLY) {
      auto client = aliceTls.connect(kj::mv(dialled));
      auto secured = bobTls.accept(kj::mv(server));
      a = client.wait(ws);
      b = secured.wait(ws);
      if (mode == TLS_ONLY) {
        state.SetIterationTime(
            double((kj::systemPreciseMonotonicClock().now() - start) / kj::NANOSECONDS) / 1e9);
        continue;
      }
    } else {
      a = plaintextTransport(kj::mv(dialled));
      b = plaintextTransport(kj::mv(server));
    }
    Handler handler;
    auto paf = kj::newPromiseAndFulfiller<void>();
    handler.both = kj::mv(paf.fulfiller);
    auto now = timer.now();
    Session initiator(kj::mv(a), Role::initiator, config, local(*alice, 1), timer, handler, now, 1);
    Session responder(kj::mv(b), Role::responder, config, local(*bob, 2), timer, handler, now, 2);
    auto runs = initiator.run().exclusiveJoin(responder.run()).eagerlyEvaluate(nullptr);
    paf.promise.wait(ws);
    state.SetIterationTime(
        double((kj::systemPreciseMonotonicClock().now() - start) / kj::NANOSECONDS) / 1e9);
    initiator.abort(wire::ErrorCode::SHUTTING_DOWN, "done");
    responder.abort(wire::ErrorCode::SHUTTING_DOWN, "done");
    ws.poll();
  }
  state.SetLabel(kModeNames[mode]);
}

// Real time is the wall clock of the set-up alone; CPU time is the process's (both ends, the
// kernel's TCP work included) over the whole iteration, the clock `gnutls-cli --benchmark-tls-kx`
// uses for its handshake time.
BENCHMARK(connectionSetup)
    ->DenseRange(TCP_ONLY, TLS_ONLY)
    ->UseManualTime()
    ->MeasureProcessCPUTime()
    ->Unit(benchmark::kMicrosecond);

// ---------------------------------------------------------------------------------------------
// The split of a set-up (docs/benchmarks.md, "TLS and handshake: where the time goes"): the same
// TLS profile without our stream adapter, sockets or Hello, and its signatures alone.

// Process CPU time, the clock gnutls-cli's handshake benchmark reads.
double processCpuSeconds() {
  struct timespec t;
  KJ_SYSCALL(clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t));
  return double(t.tv_sec) + double(t.tv_nsec) / 1e9;
}

void gnutlsCheck(int rc, const char* what) {
  KJ_ASSERT(rc >= 0, what, gnutls_strerror(rc));
}

gnutls_datum_t datumOf(kj::ArrayPtr<const kj::byte> bytes) {
  return {const_cast<kj::byte*>(bytes.begin()), static_cast<unsigned>(bytes.size())};
}

// One end of an in-memory GnuTLS session: push appends to the other end's inbox.
struct MemoryEnd {
  gnutls_session_t session = nullptr;
  kj::Vector<kj::byte> inbox;
  size_t read = 0;
  MemoryEnd* other = nullptr;

  static ssize_t push(gnutls_transport_ptr_t ptr, const void* data, size_t size) {
    auto& self = *static_cast<MemoryEnd*>(ptr);
    auto bytes = static_cast<const kj::byte*>(data);
    self.other->inbox.addAll(bytes, bytes + size);
    return ssize_t(size);
  }
  static ssize_t pull(gnutls_transport_ptr_t ptr, void* data, size_t size) {
    auto& self = *static_cast<MemoryEnd*>(ptr);
    size_t n = kj::min(size, self.inbox.size() - self.read);
    if (n == 0) {
      gnutls_transport_set_errno(self.session, EAGAIN);
      return -1;
    }
    memcpy(data, self.inbox.begin() + self.read, n);
    self.read += n;
    return ssize_t(n);
  }
  static int pullTimeout(gnutls_transport_ptr_t ptr, unsigned) {
    auto& self = *static_cast<MemoryEnd*>(ptr);
    return self.inbox.size() > self.read ? 1 : 0;
  }

  void init(unsigned flags, gnutls_priority_t priority, gnutls_certificate_credentials_t creds) {
    gnutlsCheck(gnutls_init(&session, flags | GNUTLS_NONBLOCK | GNUTLS_ENABLE_RAWPK |
                                          GNUTLS_NO_TICKETS | GNUTLS_KEY_SHARE_TOP),
                "gnutls_init");
    gnutlsCheck(gnutls_priority_set(session, priority), "gnutls_priority_set");
    gnutlsCheck(gnutls_credentials_set(session, GNUTLS_CRD_CERTIFICATE, creds), "credentials");
    gnutls_transport_set_ptr(session, this);
    gnutls_transport_set_push_function(session, &push);
    gnutls_transport_set_pull_function(session, &pull);
    gnutls_transport_set_pull_timeout_function(session, &pullTimeout);
    inbox.clear();
    read = 0;
  }
  ~MemoryEnd() {
    if (session != nullptr) gnutls_deinit(session);
  }
};

gnutls_certificate_credentials_t rawKeyCredentials(const Identity* id) {
  gnutls_certificate_credentials_t creds;
  gnutlsCheck(gnutls_certificate_allocate_credentials(&creds), "credentials");
  if (id != nullptr) {
    auto spki = datumOf(id->publicKeyDer());
    auto key = datumOf(id->privateKeyPkcs8Der());
    gnutlsCheck(gnutls_certificate_set_rawpk_key_mem(creds, &spki, &key, GNUTLS_X509_FMT_DER,
                                                     nullptr, 0, nullptr, 0, 0),
                "raw key");
  }
  return creds;
}

// GnuTLS alone, both ends in memory on one thread, shoal's priority string and raw Ed25519 keys,
// credentials and priorities built once: what `gnutls-cli --benchmark-tls-kx` measures, timed
// the same way (process CPU time of the handshake calls, not of gnutls_init/deinit). Arg 0: only
// the server proves its key (as gnutls-cli's benchmark: one signature, one verification); arg 1:
// both do (shoal's profile). No ALPN, no verify callback: the profile's crypto floor.
void gnutlsInMemory(benchmark::State& state) {
  bool mutual = state.range(0) == 1;
  auto alice = Identity::generate();
  auto bob = Identity::generate();
  auto clientCreds = rawKeyCredentials(mutual ? alice.get() : nullptr);
  auto serverCreds = rawKeyCredentials(bob.get());
  KJ_DEFER(gnutls_certificate_free_credentials(clientCreds));
  KJ_DEFER(gnutls_certificate_free_credentials(serverCreds));
  gnutls_priority_t priority;
  gnutlsCheck(gnutls_priority_init2(&priority, kTlsPriority.cStr(), nullptr, 0), "priority");
  KJ_DEFER(gnutls_priority_deinit(priority));

  for (auto _ : state) {
    MemoryEnd client, server;
    client.other = &server;
    server.other = &client;
    client.init(GNUTLS_CLIENT, priority, clientCreds);
    server.init(GNUTLS_SERVER, priority, serverCreds);
    if (mutual) gnutls_certificate_server_set_request(server.session, GNUTLS_CERT_REQUIRE);
    double start = processCpuSeconds();
    int c = GNUTLS_E_AGAIN, s = GNUTLS_E_AGAIN;
    while (c == GNUTLS_E_AGAIN || s == GNUTLS_E_AGAIN) {
      if (c == GNUTLS_E_AGAIN) c = gnutls_handshake(client.session);
      if (s == GNUTLS_E_AGAIN) s = gnutls_handshake(server.session);
    }
    state.SetIterationTime(processCpuSeconds() - start);
    gnutlsCheck(c, "client handshake");
    gnutlsCheck(s, "server handshake");
  }
  state.SetLabel(mutual ? "gnutls alone, mutual" : "gnutls alone, server key only");
}

// One Ed25519 signature (arg 0) or verification (arg 1) of a CertificateVerify-sized message
// through GnuTLS's abstract key API: the second pair mutual authentication adds. Beside them what
// checking a peer's key costs: parsing its SPKI (2), its peer id (3).
void ed25519(benchmark::State& state) {
  auto id = Identity::generate();
  gnutls_privkey_t priv;
  gnutls_pubkey_t pub;
  gnutlsCheck(gnutls_privkey_init(&priv), "privkey");
  KJ_DEFER(gnutls_privkey_deinit(priv));
  gnutlsCheck(gnutls_pubkey_init(&pub), "pubkey");
  KJ_DEFER(gnutls_pubkey_deinit(pub));
  auto key = datumOf(id->privateKeyPkcs8Der());
  auto spki = datumOf(id->publicKeyDer());
  gnutlsCheck(gnutls_privkey_import_x509_raw(priv, &key, GNUTLS_X509_FMT_DER, nullptr, 0),
              "import private key");
  gnutlsCheck(gnutls_pubkey_import(pub, &spki, GNUTLS_X509_FMT_DER), "import public key");
  kj::byte message[130] = {};  // 64 spaces, the context string, a SHA-384 transcript hash
  auto data = datumOf(message);
  gnutls_datum_t signature;
  gnutlsCheck(gnutls_privkey_sign_data2(priv, GNUTLS_SIGN_EDDSA_ED25519, 0, &data, &signature),
              "sign");
  KJ_DEFER(gnutls_free(signature.data));
  for (auto _ : state) {
    if (state.range(0) == 0) {
      gnutls_datum_t s;
      gnutlsCheck(gnutls_privkey_sign_data2(priv, GNUTLS_SIGN_EDDSA_ED25519, 0, &data, &s), "sign");
      gnutls_free(s.data);
    } else if (state.range(0) == 1) {
      gnutlsCheck(gnutls_pubkey_verify_data2(pub, GNUTLS_SIGN_EDDSA_ED25519, 0, &data, &signature),
                  "verify");
    } else if (state.range(0) == 2) {
      gnutls_pubkey_t parsed;
      gnutlsCheck(gnutls_pubkey_init(&parsed), "pubkey");
      gnutlsCheck(gnutls_pubkey_import(parsed, &spki, GNUTLS_X509_FMT_DER), "import");
      gnutls_pubkey_deinit(parsed);
    } else {
      benchmark::DoNotOptimize(peerIdOf(id->publicKeyDer()));
    }
  }
  const char* const labels[] = {"ed25519 sign", "ed25519 verify", "parse an SPKI (libtasn1)",
                                "peer id of an SPKI (SHA-256)"};
  state.SetLabel(labels[state.range(0)]);
}

// shoal's TLS handshake (TlsContext: mutual raw keys, ALPN, our verify callback, the KJ stream
// adapter) over an in-memory KJ pipe: no sockets, no Hello/HelloAck.
void tlsOverPipe(benchmark::State& state) {
  auto io = kj::setupAsyncIo();
  auto& ws = io.waitScope;
  auto alice = Identity::generate();
  auto bob = Identity::generate();
  TlsContext aliceTls(*alice), bobTls(*bob);
  for (auto _ : state) {
    auto start = kj::systemPreciseMonotonicClock().now();
    auto pipe = kj::newTwoWayPipe();
    auto client = aliceTls.connect(kj::mv(pipe.ends[0]));
    auto server = bobTls.accept(kj::mv(pipe.ends[1]));
    auto a = client.wait(ws);
    auto b = server.wait(ws);
    state.SetIterationTime(
        double((kj::systemPreciseMonotonicClock().now() - start) / kj::NANOSECONDS) / 1e9);
    KJ_ASSERT(a->peerId() != nullptr && b->peerId() != nullptr);
  }
  state.SetLabel("tls1.3 over a memory pipe, no hello");
}

// Time: gnutls-cli's clock (CPU time of the handshake calls); CPU: the whole iteration, session
// set-up and teardown included.
BENCHMARK(gnutlsInMemory)
    ->DenseRange(0, 1)
    ->UseManualTime()
    ->MeasureProcessCPUTime()
    ->Unit(benchmark::kMicrosecond);
BENCHMARK(tlsOverPipe)->UseManualTime()->MeasureProcessCPUTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(ed25519)->DenseRange(0, 3)->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace shoal::peer

BENCHMARK_MAIN();
