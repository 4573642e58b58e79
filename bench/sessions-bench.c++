// Many live sessions against one runtime (docs/benchmarks.md):
//  shutdown ROUNDS SESSIONS DIR — a runtime (RuntimeHandle, library in DIR) with SESSIONS
//    established sessions from a fleet on another thread and two downloads running from a source
//    runtime (its uploads throttled so neither can finish first): the time from shutdown() until
//    waitStopped() returns, per round, how many sessions received Goodbye (the fleet's and the
//    source's) and whether both downloads were still running when the clock started.
//  hold ADDRESS SESSIONS — opens SESSIONS idle sessions to a running `shoal serve`, prints
//    "ready N" once all are established and holds them until killed (memory per connection).
// TLS 1.3 with raw keys as in production; each session has an identity of its own (a runtime keeps
// one session per peer id). Output: one JSON object per line.
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>

#include <kj/async-io.h>
#include <kj/debug.h>
#include <kj/io.h>
#include <kj/main.h>
#include <kj/mutex.h>
#include <kj/thread.h>
#include <shoal/peer/library/library.h>
#include <shoal/peer/runtime/runtime-handle.h>
#include <shoal/peer/runtime/runtime.h>
#include <shoal/peer/session/session.h>
#include <shoal/peer/transport/identity.h>
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

// The two items the target downloads in every round, and how fast the source sends them: 2 ×
// 64 MiB at 4 MiB/s take 32 s, far longer than a round runs before its shutdown.
constexpr uint32_t kDownloads = 2;
constexpr size_t kItemBytes = 64 << 20;
constexpr uint64_t kSourceUploadRate = 4 << 20;

kj::String itemName(uint32_t i) {
  return kj::str("dl-", i);
}

// A runtime's next event for which `match` holds (the others are skipped), within 30 s.
template <typename Match>
void waitFor(EventSubscription& events, kj::StringPtr what, Match&& match) {
  for (;;) {
    auto record = KJ_REQUIRE_NONNULL(events.next(30 * kj::SECONDS), "timed out waiting", what);
    if (match(record->view()->get())) return;
  }
}

void writeFile(kj::StringPtr path, size_t bytes) {
  int fd;
  KJ_SYSCALL(fd = open(path.cStr(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600), path);
  kj::AutoCloseFd file(fd);
  auto block = kj::heapArray<kj::byte>(1 << 20);
  for (size_t i = 0; i < block.size(); ++i)
    block[i] = kj::byte(i * 2654435761u >> 24);
  for (size_t done = 0; done < bytes; done += block.size()) {
    block[0] = kj::byte(done >> 20);  // no two chunks alike
    kj::FdOutputStream(file.get()).write(block.begin(), block.size());
  }
}

// The runtime both downloads come from, for every round.
class Source {
 public:
  explicit Source(kj::StringPtr dir) : events(handle.subscribe()) {
    auto library = kj::str(dir, "/source");
    KJ_SYSCALL(mkdir(library.cStr(), 0700));
    for (uint32_t i = 0; i < kDownloads; ++i) {
      auto item = kj::str(library, "/", itemName(i));
      KJ_SYSCALL(mkdir(item.cStr(), 0700));
      writeFile(kj::str(item, "/data.bin"), kItemBytes);
    }
    RuntimeConfig config;
    config.libraryDir = kj::str(library);
    config.stateDir = kj::str(library, "/.shoal");
    config.listen = kj::str("127.0.0.1:0");
    config.name = kj::str("source");
    config.maxUploadRate = kSourceUploadRate;
    handle.start(kj::mv(config));
    waitFor(*events, "the source's start", [this](control::Event::Reader e) {
      if (!e.isStarted()) return false;
      address = kj::str(e.getStarted().getListen());
      return true;
    });
  }

  // Whether the source received Goodbye from `peer` (its events up to that one are consumed).
  bool goodbyeFrom(const PeerId& peer) {
    auto id = formatPeerId(peer);
    for (;;) {
      KJ_IF_MAYBE (record, events->next(5 * kj::SECONDS)) {
        auto e = (*record)->view()->get();
        if (e.isGoodbyeReceived() && e.getGoodbyeReceived().getPeerId() == id) return true;
      } else {
        return false;
      }
    }
  }

  kj::String address;

 private:
  RuntimeHandle handle;
  kj::Own<EventSubscription> events;
};

// One shutdown round: the runtime on its thread, the fleet on this one's twin.
struct Round {
  double ms = 0;
  uint32_t goodbyes = 0;  // of the fleet's sessions
  bool sourceGoodbye = false;
  uint32_t downloadsRunning = 0;
  bool stopped = false;
};

// Starts the target's two downloads from the source and returns once chunks of both arrive.
void startDownloads(RuntimeHandle& handle, EventSubscription& events) {
  waitFor(events, "the source's library", [](control::Event::Reader e) {
    return e.isLibraryChanged() && e.getLibraryChanged().getPeerId().size() > 0 &&
           e.getLibraryChanged().getItems() == kDownloads;
  });
  for (uint32_t i = 0; i < kDownloads; ++i) {
    auto item = itemName(i);
    auto start = handle.call([&](Runtime& runtime) {
      kj::String message;
      return runtime.startDownload(item, message);
    });
    KJ_REQUIRE(start == DownloadStart::started, "a download did not start", item);
  }
  uint32_t flowing = 0;
  bool seen[kDownloads] = {};
  waitFor(events, "chunks of both downloads", [&](control::Event::Reader e) {
    if (!e.isDownloadProgress() || e.getDownloadProgress().getBytesDone() == 0) return false;
    auto id = e.getDownloadProgress().getItemId();
    for (uint32_t i = 0; i < kDownloads; ++i) {
      if (id == itemName(i) && !seen[i]) {
        seen[i] = true;
        ++flowing;
      }
    }
    return flowing == kDownloads;
  });
}

Round shutdownRound(kj::StringPtr dir, Source& source, uint32_t sessions, uint32_t round) {
  auto library = kj::str(dir, "/round-", round);
  KJ_SYSCALL(mkdir(library.cStr(), 0700));
  RuntimeConfig config;
  config.libraryDir = kj::str(library);
  config.stateDir = kj::str(library, "/.shoal");
  config.listen = kj::str("127.0.0.1:0");
  config.name = kj::str("target");
  config.peers.add(kj::str(source.address));
  config.maxConnections = sessions + 8;
  RuntimeHandle handle;
  auto events = handle.subscribe();
  handle.start(kj::mv(config));
  kj::String address;
  waitFor(*events, "the runtime's start", [&](control::Event::Reader e) {
    if (!e.isStarted()) return false;
    address = kj::str(e.getStarted().getListen());
    return true;
  });
  startDownloads(handle, *events);

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
  waitFor(*events, "the fleet's sessions",
          [&](control::Event::Reader e) { return e.isPeerFound() && ++found == sessions; });
  Round result;
  result.downloadsRunning = handle.call([](Runtime& runtime) {
    uint32_t running = 0;
    for (uint32_t i = 0; i < kDownloads; ++i)
      running += runtime.isDownloading(itemName(i));
    return running;
  });
  auto start = kj::systemPreciseMonotonicClock().now();
  handle.shutdown();
  result.stopped = handle.waitStopped(30 * kj::SECONDS);
  result.ms = double((kj::systemPreciseMonotonicClock().now() - start) / kj::NANOSECONDS) / 1e6;
  shared.when([](const Shared& s) { return s.done; }, [](Shared&) {});
  result.goodbyes = shared.lockShared()->goodbyes;
  result.sourceGoodbye = source.goodbyeFrom(handle.id());
  return result;
}

int shutdown(kj::StringPtr rounds, kj::StringPtr sessions, kj::StringPtr dir) {
  uint32_t n = number(rounds), count = number(sessions);
  Source source(dir);
  kj::Vector<double> times;
  uint32_t allGoodbyes = 0, unclean = 0, withDownloads = 0;
  for (uint32_t r = 0; r < n; ++r) {
    auto round = shutdownRound(dir, source, count, r);
    times.add(round.ms);
    unclean += !round.stopped;
    allGoodbyes += round.goodbyes == count && round.sourceGoodbye;
    withDownloads += round.downloadsRunning == kDownloads;
  }
  kj::Vector<kj::String> samples;
  for (auto t : times)
    samples.add(kj::str(t));
  std::sort(times.begin(), times.end());
  auto at = [&](double q) {
    return times[size_t(q * double(times.size() - 1) + 0.5)];
  };
  printf(
      "{\"rounds\": %u, \"sessions\": %u, \"downloads\": %u, \"p50_ms\": %.2f, \"p99_ms\": %.2f, "
      "\"max_ms\": %.2f, \"rounds_with_goodbye_to_all\": %u, "
      "\"rounds_with_downloads_running\": %u, \"rounds_not_stopped\": %u, "
      "\"samples_ms\": [%s]}\n",
      n, count, kDownloads, at(0.5), at(0.99), times.back(), allGoodbyes, withDownloads, unclean,
      kj::strArray(samples, ", ").cStr());
  return unclean == 0 && allGoodbyes == n && withDownloads == n ? 0 : 1;
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
