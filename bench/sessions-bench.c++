// Many live sessions against one runtime (docs/benchmarks.md):
//  shutdown ROUNDS SESSIONS DIR — a runtime (RuntimeHandle, library in DIR) with SESSIONS
//    established sessions from a fleet on another thread: the time from shutdown() until
//    waitStopped() returns, per round, and how many sessions received Goodbye.
//  hold ADDRESS SESSIONS — opens SESSIONS idle sessions to a running `shoal serve`, prints
//    "ready N" once all are established and holds them until killed (memory per connection).
// TLS 1.3 with raw keys as in production; each session has an identity of its own (a runtime keeps
// one session per peer id). Output: one JSON object per line.
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>

#include <kj/async-io.h>
#include <kj/debug.h>
#include <kj/main.h>
#include <kj/mutex.h>
#include <kj/thread.h>
#include <shoal/peer/library/library.h>
#include <shoal/peer/runtime/runtime-handle.h>
#include <shoal/peer/session/session.h>
#include <shoal/peer/transport/tls.h>

namespace shoal::peer {
namespace {

// How many handshakes the fleet keeps in flight: below the runtime's per-address admission limit.
constexpr uint32_t kDialsInFlight = 8;

// N client sessions on one event loop: each with its own identity, answering GetLibrary with an
// empty library and counting what the other side does.
class Fleet final : public SessionHandler {
 public:
  Fleet(kj::AsyncIoContext& io, kj::StringPtr address, uint32_t count)
      : io(io), address(kj::str(address)), count(count), tasks(errors) {
    clients.reserve(count);
    library.update(nullptr);
  }

  // Resolves once all `count` sessions are established.
  kj::Promise<void> connectAll() {
    for (uint32_t i = 0; i < kj::min(count, kDialsInFlight); ++i)
      dialNext();
    auto paf = kj::newPromiseAndFulfiller<void>();
    allEstablished = kj::mv(paf.fulfiller);
    return kj::mv(paf.promise);
  }
  // Resolves once every session has closed.
  kj::Promise<void> allClosed() {
    if (closed == count) return kj::READY_NOW;
    auto paf = kj::newPromiseAndFulfiller<void>();
    closedAll = kj::mv(paf.fulfiller);
    return kj::mv(paf.promise);
  }
  uint32_t goodbyes = 0;

 private:
  struct Client {
    kj::Own<Identity> identity;
    kj::Own<TlsContext> tls;
    kj::Maybe<kj::Own<Session>> session;
  };
  struct Errors final : public kj::TaskSet::ErrorHandler {
    void taskFailed(kj::Exception&& e) override { KJ_LOG(ERROR, "fleet task failed", e); }
  };

  void dialNext() {
    if (dialled == count) return;
    uint64_t index = dialled++;
    auto identity = Identity::generate();
    auto tls = kj::heap<TlsContext>(*identity);
    auto& client = clients.add(Client{kj::mv(identity), kj::mv(tls), nullptr});
    auto& timer = io.provider->getTimer();
    auto started = timer.now();
    tasks.add(io.provider->getNetwork()
                  .parseAddress(address)
                  .then([](kj::Own<kj::NetworkAddress> a) { return a->connect(); })
                  .then([&client](kj::Own<kj::AsyncIoStream> s) {
                    return client.tls->connect(kj::mv(s));
                  })
                  .then([this, &client, &timer, started, index](kj::Own<Transport> t) {
                    LocalPeer local{client.identity->id(), kj::str("fleet"), nullptr,
                                    library.summary(), index + 1};
                    auto session = kj::heap<Session>(kj::mv(t), Role::initiator, config,
                                                     kj::mv(local), timer, *this, started, index);
                    auto run = session->run();
                    client.session = kj::mv(session);
                    return run;
                  }));
  }

  kj::Maybe<Rejection> onHello(Session&, const RemotePeer&) override { return nullptr; }
  void onEstablished(Session&) override {
    if (++established == count) {
      KJ_IF_MAYBE (f, allEstablished) {
        (*f)->fulfill();
      }
    }
    dialNext();
  }
  kj::Promise<kj::Array<codec::FrameBuilder>> serve(Session& session, uint64_t id,
                                                    codec::InboundFrame request) override {
    auto root = request.root();
    KJ_REQUIRE(root.isGetLibrary(), "the fleet serves only its (empty) library");
    auto frameLimit = KJ_ASSERT_NONNULL(session.remote()).maxFrameBytes;
    auto answer =
        library.answer(root.getGetLibrary().getSinceEpoch(), root.getGetLibrary().getSinceRev());
    return KJ_MAP(p, library::libraryPages(id, answer, frameLimit))->codec::FrameBuilder {
      return kj::mv(p);
    };
  }
  void onLibraryChanged(Session&, const codec::Summary&) override {}
  void onGoodbye(Session&, const event::GoodbyeReceived&) override { ++goodbyes; }
  void onWriterDone(Session&) override {}
  void onClosed(Session&, const event::Closed&) override {
    if (++closed == count) {
      KJ_IF_MAYBE (f, closedAll) {
        (*f)->fulfill();
      }
    }
  }

  kj::AsyncIoContext& io;
  kj::String address;
  uint32_t count;
  uint32_t dialled = 0, established = 0, closed = 0;
  SessionConfig config;
  library::Library library{1};
  kj::Maybe<kj::Own<kj::PromiseFulfiller<void>>> allEstablished, closedAll;
  kj::Vector<Client> clients;  // reserved up front: tasks hold references into it
  Errors errors;
  kj::TaskSet tasks;  // last: cancelled before the clients go
};

uint32_t number(kj::StringPtr text) {
  char* end;
  errno = 0;
  unsigned long n = strtoul(text.cStr(), &end, 10);
  KJ_REQUIRE(errno == 0 && *end == '\0' && n > 0 && n <= 100000, "not a count", text);
  return uint32_t(n);
}

// One shutdown round: the runtime on its thread, the fleet on this one's twin.
struct Round {
  double ms = 0;
  uint32_t goodbyes = 0;
  bool stopped = false;
};

Round shutdownRound(kj::StringPtr dir, uint32_t sessions, uint32_t round) {
  auto library = kj::str(dir, "/round-", round);
  KJ_SYSCALL(mkdir(library.cStr(), 0700));
  RuntimeConfig config;
  config.libraryDir = kj::str(library);
  config.stateDir = kj::str(library, "/.shoal");
  config.listen = kj::str("127.0.0.1:0");
  config.name = kj::str("target");
  config.maxConnections = sessions + 8;
  RuntimeHandle handle;
  auto events = handle.subscribe();
  handle.start(kj::mv(config));
  kj::String address;
  for (;;) {
    auto record = KJ_REQUIRE_NONNULL(events->next(30 * kj::SECONDS), "the runtime never started");
    auto view = record->view();
    if (view->get().isStarted()) {
      address = kj::str(view->get().getStarted().getListen());
      break;
    }
  }

  struct Shared {
    bool ready = false;
    bool done = false;
    uint32_t goodbyes = 0;
  };
  kj::MutexGuarded<Shared> shared;
  kj::Thread fleetThread([&]() {
    auto io = kj::setupAsyncIo();
    Fleet fleet(io, address, sessions);
    fleet.connectAll().wait(io.waitScope);
    shared.lockExclusive()->ready = true;
    io.provider->getTimer()
        .timeoutAfter(30 * kj::SECONDS, fleet.allClosed())
        .then([]() {}, [](kj::Exception&&) {})
        .wait(io.waitScope);
    auto s = shared.lockExclusive();
    s->goodbyes = fleet.goodbyes;
    s->done = true;
  });
  shared.when([](const Shared& s) { return s.ready; }, [](Shared&) {});
  // Every session is established on the runtime's side too before the clock starts.
  uint32_t found = 0;
  while (found < sessions) {
    auto record = KJ_REQUIRE_NONNULL(events->next(30 * kj::SECONDS), "sessions never found");
    if (record->view()->get().isPeerFound()) ++found;
  }
  auto start = kj::systemPreciseMonotonicClock().now();
  handle.shutdown();
  Round result;
  result.stopped = handle.waitStopped(30 * kj::SECONDS);
  result.ms = double((kj::systemPreciseMonotonicClock().now() - start) / kj::NANOSECONDS) / 1e6;
  shared.when([](const Shared& s) { return s.done; }, [](Shared&) {});
  result.goodbyes = shared.lockShared()->goodbyes;
  return result;
}

int shutdown(kj::StringPtr rounds, kj::StringPtr sessions, kj::StringPtr dir) {
  uint32_t n = number(rounds), count = number(sessions);
  kj::Vector<double> times;
  uint32_t allGoodbyes = 0, unclean = 0;
  for (uint32_t r = 0; r < n; ++r) {
    auto round = shutdownRound(dir, count, r);
    times.add(round.ms);
    unclean += !round.stopped;
    allGoodbyes += round.goodbyes == count;
  }
  kj::Vector<kj::String> samples;
  for (auto t : times)
    samples.add(kj::str(t));
  std::sort(times.begin(), times.end());
  auto at = [&](double q) {
    return times[size_t(q * double(times.size() - 1) + 0.5)];
  };
  printf(
      "{\"rounds\": %u, \"sessions\": %u, \"p50_ms\": %.2f, \"p99_ms\": %.2f, \"max_ms\": %.2f, "
      "\"rounds_with_goodbye_to_all\": %u, \"rounds_not_stopped\": %u, \"samples_ms\": [%s]}\n",
      n, count, at(0.5), at(0.99), times.back(), allGoodbyes, unclean,
      kj::strArray(samples, ", ").cStr());
  return unclean == 0 && allGoodbyes == n ? 0 : 1;
}

int hold(kj::StringPtr address, uint32_t count) {
  auto io = kj::setupAsyncIo();
  Fleet fleet(io, address, count);
  fleet.connectAll().wait(io.waitScope);
  printf("ready %u\n", count);
  fflush(stdout);
  fleet.allClosed().wait(io.waitScope);  // until the target goes or we are killed
  return 0;
}

}  // namespace
}  // namespace shoal::peer

int main(int argc, char** argv) {
  kj::TopLevelProcessContext context(argv[0]);
  context.increaseLoggingVerbosity();
  int status = 2;
  KJ_IF_MAYBE (e, kj::runCatchingExceptions([&]() {
                 if (argc == 5 && kj::StringPtr(argv[1]) == "shutdown") {
                   status = shoal::peer::shutdown(argv[2], argv[3], argv[4]);
                 } else if (argc == 4 && kj::StringPtr(argv[1]) == "hold") {
                   status = shoal::peer::hold(argv[2], shoal::peer::number(argv[3]));
                 } else {
                   fprintf(stderr,
                           "usage: %s shutdown ROUNDS SESSIONS DIR | hold ADDRESS SESSIONS\n",
                           argv[0]);
                 }
               })) {
    fprintf(stderr, "%s\n", e->getDescription().cStr());
    return 1;
  }
  return status;
}
