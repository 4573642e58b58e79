// Connection set-up on loopback, time from connect() until both Sessions are established:
// TCP + TLS 1.3 (raw public keys, Ed25519) + Hello/HelloAck, beside two baselines measured in the
// same run — plaintext TCP + Hello/HelloAck, and a bare TCP connect/accept.
#include <benchmark/benchmark.h>
#include <kj/async-io.h>
#include <kj/debug.h>
#include <shoal/peer/session/session.h>
#include <shoal/peer/transport/tls.h>

namespace shoal::peer {
namespace {

enum Mode { TCP_ONLY, PLAINTEXT, TLS };
const char* const kModeNames[] = {"tcp-connect", "plaintext+hello", "tls1.3+hello"};

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
    if (mode == TLS) {
      auto client = aliceTls.connect(kj::mv(dialled));
      auto secured = bobTls.accept(kj::mv(server));
      a = client.wait(ws);
      b = secured.wait(ws);
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
    ->DenseRange(TCP_ONLY, TLS)
    ->UseManualTime()
    ->MeasureProcessCPUTime()
    ->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace shoal::peer

BENCHMARK_MAIN();
