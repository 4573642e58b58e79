// Runtime lifecycle: construction, start, the shutdown sequence, library scans and events.
// Connections and the SessionHandler live in connections.c++, services in services.c++.
#include <shoal/peer/runtime/runtime.h>

#include <fcntl.h>
#include <kj/debug.h>
#include <sys/file.h>
#include <unistd.h>

#include "runtime-internal.h"

namespace shoal::peer {

namespace {

kj::String hostName() {
  char name[256] = {};
  if (gethostname(name, sizeof(name) - 1) != 0 || name[0] == '\0') return kj::str("shoal");
  return kj::str(name);
}

// An exclusive lock on <stateDir>/lock for the runtime's lifetime: two daemons on one state folder
// would fight over the identity's socket and the index cache.
kj::AutoCloseFd lockStateDir(kj::StringPtr stateDir) {
  auto path = kj::str(stateDir, "/lock");
  int fd;
  KJ_SYSCALL_HANDLE_ERRORS(fd = open(path.cStr(), O_RDWR | O_CREAT | O_CLOEXEC, 0600)) {
    default: KJ_FAIL_REQUIRE("cannot create the state lock", path, strerror(error));
  }
  kj::AutoCloseFd owned(fd);
  int rc;
  KJ_SYSCALL_HANDLE_ERRORS(rc = flock(fd, LOCK_EX | LOCK_NB)) {
    case EWOULDBLOCK: KJ_FAIL_REQUIRE("another shoal is running with this state folder", stateDir);
    default: KJ_FAIL_REQUIRE("cannot lock the state folder", path, strerror(error));
  }
  (void)rc;
  return owned;
}

kj::AutoCloseFd openRoot(kj::StringPtr dir) {
  int fd;
  KJ_SYSCALL_HANDLE_ERRORS(fd = open(dir.cStr(), O_RDONLY | O_DIRECTORY | O_CLOEXEC)) {
    default: KJ_FAIL_REQUIRE("cannot open the library folder", dir, strerror(error));
  }
  return kj::AutoCloseFd(fd);
}

}  // namespace

Runtime::Runtime(RuntimeConfig configParam, kj::AsyncIoContext& io, EventBus& bus)
    : config(kj::mv(configParam)),
      io(io),
      timer(io.provider->getTimer()),
      bus(bus),
      startedAt(timer.now()),
      instanceId(codec::randomNonZero()),
      stopStartedAt(startedAt),
      rootFd(openRoot(config.libraryDir)),
      identity(Identity::loadOrCreate(config.stateDir)),
      stateLock(lockStateDir(config.stateDir)),
      library(codec::randomNonZero(), config.historyRevs),
      peers(identity->id()),
      supervisor(timer, *this),
      tasks(taskErrors),
      connections(kj::heap<kj::TaskSet>(taskErrors)) {
  KJ_IF_MAYBE (problem, config.session.limits.check()) {
    KJ_FAIL_REQUIRE("inconsistent limits", *problem);
  }
  if (config.name.size() == 0) config.name = hostName();
  if (!config.plaintext) tls = kj::heap<TlsContext>(*identity);
  server.emplace(library, rootFd.get());
  auto paf = kj::newPromiseAndFulfiller<void>();
  stopRequested = kj::mv(paf.fulfiller);
  stopSignal = kj::mv(paf.promise);
}

Runtime::~Runtime() noexcept(false) {
  // Normally run() has joined everything; this covers a runtime destroyed mid-flight.
  stopScan = true;
  connections = nullptr;
  supervisor.stop();
  scanThread = nullptr;
}

void Runtime::addService(kj::StringPtr name, Policy policy,
                         kj::Function<kj::Promise<void>()> body) {
  supervisor.start(name, kj::mv(policy), kj::mv(body));
}

void Runtime::onEvent(kj::Function<void(const EventRecord&)> listener) {
  listeners.add(kj::mv(listener));
}

kj::Promise<void> Runtime::run() {
  auto stopped = kj::mv(KJ_ASSERT_NONNULL(stopSignal, "run() called twice"));
  stopSignal = nullptr;
  return start()
      .then([stopped = kj::mv(stopped)]() mutable { return kj::mv(stopped); },
            [this](kj::Exception&& exception) {
              // Start-up failed (e.g. the first scan): report it like a Required failure.
              onRequiredFailed("startup", exception.getDescription());
            })
      .then([this]() { return stop(); });
}

kj::Promise<void> Runtime::start() {
  // The first scan completes before anyone can connect: the first Hello carries a real summary.
  return rescan().then([this](bool) {
    if (stopping) return;
    supervisor.start("listener", policy::Required{}, [this]() { return listen(); });
    supervisor.start("discovery", policy::Restart{config.restartBackoff},
                     [this]() { return dialAll(); });
    supervisor.start("liveness", policy::Restart{config.restartBackoff},
                     [this]() { return liveness(); });
    supervisor.start("library-watcher", policy::BestEffort{}, [this]() { return watchLibrary(); });
  });
}

void Runtime::shutdown(kj::StringPtr why) {
  if (stopping) return;
  stopping = true;
  stopStartedAt = timer.now();
  KJ_LOG(INFO, "shutting down", why);
  stopRequested->fulfill();
}

kj::Promise<void> Runtime::stop() {
  if (!stopping) {
    stopping = true;
    stopStartedAt = timer.now();
  }
  // 1. Stop accepting, dialling, ticking and scanning.
  supervisor.stop();
  stopScan = true;
  // 2. Goodbye to every session; connections still in their handshake are cut.
  uint32_t goodbyes = 0;
  kj::Vector<Connection*> all;
  for (auto& entry : live)
    all.add(entry.value);
  for (auto* connection : all) {
    KJ_IF_MAYBE (session, connection->session) {
      if ((*session)->isEstablished()) ++goodbyes;
      (*session)->goodbye(wire::GoodbyeReason::SHUTDOWN, "shutting down");
    } else {
      connection->handshake.cancel("shutting down");
    }
  }
  // 3. Drain: every session answers what it owes and closes, within the deadline.
  auto& set = *KJ_ASSERT_NONNULL(connections);
  return timer.timeoutAt(stopStartedAt + config.shutdownDeadline, set.onEmpty())
      .then([]() { return true; }, [](kj::Exception&&) { return false; })
      .then([this, goodbyes](bool drained) {
        // 4. Join: whatever did not drain in time is cancelled now.
        connections = nullptr;
        scanThread = nullptr;  // the stop flag ends a scan at its next chunk
        auto elapsed = timer.now() - stopStartedAt;
        emit([&](control::Event::Builder e) {
          auto s = e.initStopped();
          s.setClean(drained && !failed);
          s.setElapsedMs(elapsed / kj::MILLISECONDS);
          s.setGoodbyes(goodbyes);
        });
      });
}

// --- scanning ------------------------------------------------------------------------------

kj::Promise<bool> Runtime::rescan() {
  auto paf = kj::newPromiseAndFulfiller<bool>();
  scanWaiters.add(kj::mv(paf.fulfiller));
  if (!scanInProgress) startScan();
  return kj::mv(paf.promise);
}

void Runtime::startScan() {
  scanInProgress = true;
  auto paf = kj::newPromiseAndCrossThreadFulfiller<library::ScanResult>();
  library::ScanOptions options;
  options.chunkSize = config.chunkSize;
  options.limits = config.session.limits;
  // The worker owns the cache until it fulfils; the loop touches it again only after that.
  scanThread = kj::heap<kj::Thread>(
      [this, options = kj::mv(options), fulfiller = kj::mv(paf.fulfiller)]() mutable {
        KJ_IF_MAYBE (exception, kj::runCatchingExceptions([&]() {
                       fulfiller->fulfill(
                           library::scanLibrary(config.libraryDir, cache, options, &stopScan));
                     })) {
          fulfiller->reject(kj::mv(*exception));
        }
      });
  tasks.add(paf.promise
                .then(
                    [this](library::ScanResult result) {
                      scanThread = nullptr;  // finished: joins at once
                      return applyScan(kj::mv(result));
                    },
                    [this](kj::Exception&& exception) {
                      scanThread = nullptr;
                      KJ_LOG(ERROR, "library scan failed", exception);
                      return false;
                    })
                .then([this](bool changed) {
                  scanInProgress = false;
                  auto waiters = kj::mv(scanWaiters);
                  for (auto& w : waiters)
                    w->fulfill(kj::cp(changed));
                }));
}

bool Runtime::applyScan(library::ScanResult result) {
  if (!result.complete || stopping) return false;
  for (auto& reason : result.skipped)
    KJ_LOG(WARNING, "not indexed", reason);
  if (result.stats.filesHashed > 0 || !library.isPublished()) {
    KJ_IF_MAYBE (problem, cache.save(config.stateDir)) {
      KJ_LOG(WARNING, "index cache not saved", *problem);
    }
  }
  if (!library.update(kj::mv(result.items))) return false;
  auto summary = library.summary();
  for (auto& entry : live) {
    KJ_IF_MAYBE (session, entry.value->session) {
      (*session)->notifyLibraryChanged(summary);
    }
  }
  emit([&](control::Event::Builder e) {
    auto changed = e.initLibraryChanged();
    changed.setPeerId("");
    fillSummary(changed.initSummary(), summary);
    changed.setItems(library.items().size());
  });
  return true;
}

// --- events and queries --------------------------------------------------------------------

void Runtime::emit(kj::FunctionParam<void(control::Event::Builder)> fill) {
  capnp::MallocMessageBuilder message;
  auto event = message.initRoot<control::Event>();
  event.setTimeMs((timer.now() - startedAt) / kj::MILLISECONDS);
  fill(event);
  bus.publish(message);
  if (listeners.size() > 0) {
    auto record = kj::atomicRefcounted<EventRecord>(message);
    for (auto& listener : listeners)
      listener(*record);
  }
}

LocalPeer Runtime::localPeer() const {
  return LocalPeer{identity->id(), kj::str(config.name), nullptr, library.summary(), instanceId};
}

void Runtime::fillStatus(control::Status::Builder status) {
  status.setPeerId(formatPeerId(identity->id()));
  status.setName(config.name);
  KJ_IF_MAYBE (address, bound) {
    status.setListen(*address);
  }
  fillSummary(status.initLibrary(), library.summary());
  status.setItems(library.items().size());
  uint64_t bytes = 0;
  for (auto& item : library.items())
    bytes += item->info.size;
  status.setBytes(bytes);
  status.setPeers(peers.size());
  status.setUptimeMs((timer.now() - startedAt) / kj::MILLISECONDS);
  status.setTrust(config.trust == TrustMode::open ? "open" : "pinned");
  status.setPlaintext(config.plaintext);
  status.setLibraryDir(config.libraryDir);
}

void Runtime::TaskErrors::taskFailed(kj::Exception&& exception) {
  // Connection and scan tasks report their own failures; reaching here is a bug of ours.
  KJ_LOG(ERROR, "runtime task failed", exception);
}

// --- Supervisor::Observer -----------------------------------------------------------------

void Runtime::onRequiredFailed(kj::StringPtr service, kj::StringPtr error) {
  failed = true;
  emit([&](control::Event::Builder e) {
    auto f = e.initRuntimeFailed();
    f.setComponent(service);
    f.setError(error);
  });
  shutdown(kj::str("required service ", service, " failed"));
}

void Runtime::onRestarting(kj::StringPtr service, kj::StringPtr error, kj::Duration backoff) {
  emit([&](control::Event::Builder e) {
    auto r = e.initServiceRestarted();
    r.setComponent(service);
    r.setError(error);
    r.setBackoffMs(backoff / kj::MILLISECONDS);
  });
}

void Runtime::onGaveUp(kj::StringPtr service, kj::StringPtr error) {
  KJ_LOG(WARNING, "best-effort service stopped", service, error);
}

}  // namespace shoal::peer
