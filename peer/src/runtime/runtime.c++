// Runtime lifecycle: construction, start, the shutdown sequence, library scans and events.
// Connections and what their sessions report live in connections.c++, services in services.c++.
#include <shoal/peer/runtime/runtime.h>

#include <fcntl.h>
#include <kj/debug.h>
#include <shoal/codec/frames.h>
#include <shoal/mutant.h>
#include <shoal/peer/runtime/event-fields.h>
#include <sys/file.h>
#include <unistd.h>

#include "runtime-internal.h"

namespace shoal::peer {

namespace {

// The default display name: the host name, made to fit the wire's name rules.
kj::String hostName() {
  char name[256] = {};
  if (gethostname(name, sizeof(name) - 1) != 0 || name[0] == '\0') return kj::str("shoal");
  return codec::sanitizeText(kj::StringPtr(name), codec::Limits().maxNameBytes);
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

kj::AutoCloseFd openFolder(kj::StringPtr dir, kj::StringPtr what) {
  int fd;
  KJ_SYSCALL_HANDLE_ERRORS(fd = open(dir.cStr(), O_RDONLY | O_DIRECTORY | O_CLOEXEC)) {
    default: KJ_FAIL_REQUIRE("cannot open the folder", what, dir, strerror(error));
  }
  return kj::AutoCloseFd(fd);
}

}  // namespace

void fillScanProgress(control::ScanProgress::Builder out, const library::ScanReport& report,
                      bool done) {
  out.setWalked(report.walked);
  out.setFilesHashed(report.filesHashed);
  out.setFilesToHash(report.filesToHash);
  out.setBytesHashed(report.bytesHashed);
  out.setBytesToHash(report.bytesToHash);
  out.setBytesPerSecond(report.bytesPerSecond);
  KJ_IF_MAYBE (eta, report.etaMs) {
    out.setEtaMs(done ? 0 : *eta);
  }
  out.setDone(done);
}

Runtime::Runtime(RuntimeConfig configParam, kj::AsyncIoContext& io, EventBus& bus)
    : config(kj::mv(configParam)),
      io(io),
      timer(io.provider->getTimer()),
      clock(config.clock.orDefault(kj::systemPreciseMonotonicClock())),
      bus(bus),
      startedAt(timer.now()),
      instanceId(codec::randomNonZero()),
      stopStartedAt(startedAt),
      rootFd(openFolder(config.libraryDir, "library")),
      identity(Identity::loadOrCreate(config.stateDir)),
      stateLock(lockStateDir(config.stateDir)),
      stateFd(openFolder(config.stateDir, "state")),
      cache(library::IndexCache::load(config.stateDir)),
      library(codec::randomNonZero(), config.historyRevs),
      peers(identity->id()),
      admission(config.admission),
      failureReports(config.failureReportInterval),
      supervisor(timer, *this),
      tasks(kj::heap<kj::TaskSet>(taskErrors)),
      connections(kj::heap<kj::TaskSet>(taskErrors)) {
  KJ_IF_MAYBE (problem, config.session.limits.check()) {
    KJ_FAIL_REQUIRE("inconsistent limits", *problem);
  }
  KJ_IF_MAYBE (problem, checkAddress(config.listen, AddressUse::listen)) {
    KJ_FAIL_REQUIRE("bad listen address", config.listen, *problem);
  }
  for (auto& address : config.peers) {
    KJ_IF_MAYBE (problem, checkAddress(address, AddressUse::dial)) {
      KJ_FAIL_REQUIRE("bad peer address", address, *problem);
    }
    staticPeers.add(kj::heap<StaticPeer>(StaticPeer{
        kj::str(address), nullptr,
        RedialBackoff(config.reconnectMin, config.reconnectMax, codec::randomNonZero())}));
  }
  if (config.name.size() == 0) config.name = hostName();
  KJ_IF_MAYBE (problem, checkName(config.name)) {
    KJ_FAIL_REQUIRE("bad name", *problem);
  }
  if (!config.plaintext) tls = kj::heap<TlsContext>(*identity);
  server.emplace(library, rootFd.get());
  KJ_IF_MAYBE (options, config.discovery) {
    discovery::Discovery::Host& host = *this;
    discovery = kj::heap<discovery::Discovery>(options->clone(), host, io, identity->id(),
                                               config.session.versionMin, config.session.versionMax,
                                               codec::randomNonZero());
  }
  if (config.maxUploadRate > 0) uploadLimit.emplace(config.maxUploadRate, timer.now());
  readers = kj::heap<ChunkReaders>(rootFd.get(), config.readers, config.readGate);
  config.download.ours = config.session.limits;
  download::DownloadSources& sources = *this;
  downloads = kj::heap<DownloadService>(
      config.download, folders(), timer, sources,
      [this](kj::StringPtr item, bool active) {
        if (library.setDownloading(item, active)) publishLibrary();
      },
      [this](kj::StringPtr item, const download::DownloadEvent& event) {
        emitDownloadEvent(item, event);
      },
      [this](kj::StringPtr item, DownloadService::Ending ending) {
        downloadEnded(item, kj::mv(ending));
      });
  auto paf = kj::newPromiseAndFulfiller<void>();
  stopRequested = kj::mv(paf.fulfiller);
  stopSignal = kj::mv(paf.promise);
}

Runtime::~Runtime() noexcept(false) {
  // Normally run() has joined everything; this covers a runtime destroyed mid-flight.
  stopScan = true;
  downloads = nullptr;
  connections = nullptr;
  readers = nullptr;
  supervisor.stopAll();
  scanThread = nullptr;
  tasks = nullptr;
}

void Runtime::addService(kj::StringPtr name, Policy policy, kj::Function<kj::Promise<void>()> body,
                         Stage stage) {
  supervisor.start(name, kj::mv(policy), kj::mv(body), stage);
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
  // Bind first: a taken port fails at once, not after a long first scan. The first scan then
  // completes before anyone is accepted, so the first Hello carries a real summary.
  return bind().then(
      [this]() {
        return rescan().then([this](bool) {
          if (stopping) return;
          auto& listening = *KJ_ASSERT_NONNULL(receiver);
          supervisor.start("listener", policy::Required{},
                           [this, &listening]() { return acceptLoop(listening); });
          supervisor.start("admission", policy::Restart{config.restartBackoff},
                           [this]() { return admissionTimer(); });
          supervisor.start("static-peers", policy::Restart{config.restartBackoff},
                           [this]() { return dialAll(); });
          if (discovery != nullptr) {  // bound: announces carry the port
            supervisor.start("discovery", policy::Restart{config.restartBackoff},
                             [this]() { return discover(); });
          }
          supervisor.start("liveness", policy::Restart{config.restartBackoff},
                           [this]() { return liveness(); });
          supervisor.start("library-watcher", policy::BestEffort{},
                           [this]() { return watchLibrary(); });
          emit([&](control::Event::Builder e) {
            auto s = e.initStarted();
            s.setPeerId(formatPeerId(identity->id()));
            s.setListen(KJ_ASSERT_NONNULL(bound));
            s.setItems(library.items().size());
          });
        });
      },
      [this](kj::Exception&& exception) {
        onRequiredFailed("listener", exception.getDescription());
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
  receiver = nullptr;
  stopScan = true;
  // 2. Downloads stop between chunks and save their progress; their requests are cancelled now.
  auto downloadsEnded = KJ_ASSERT_NONNULL(downloads)->shutdown();
  // 3. Goodbye to every established session; connections still in their handshake are cut.
  uint32_t goodbyes = 0;
  kj::Vector<Connection*> all;
  for (auto& entry : live)
    all.add(entry.value);
  for (auto* connection : all) {
    if (connection->isEstablished()) {
      auto& session = *KJ_ASSERT_NONNULL(connection->session);
      if (session.isEstablished()) ++goodbyes;
      session.goodbye(wire::GoodbyeReason::SHUTDOWN, "shutting down");
    } else if (!isMutant(Mutant::handshakesWhileStopping)) {
      connection->handshake.cancel("shutting down");
    }
  }
  // 4. Drain: every session answers what it owes and closes, every download saves, within the
  // deadline.
  auto& set = *KJ_ASSERT_NONNULL(connections);
  auto drain = kj::joinPromises(kj::arr(set.onEmpty(), kj::mv(downloadsEnded)));
  return timer.timeoutAt(stopStartedAt + config.shutdownDeadline, kj::mv(drain))
      .then([]() { return true; }, [](kj::Exception&&) { return false; })
      .then([this](bool drained) {
        // 5. Join: whatever did not drain in time is cut now (a download keeps its last saved
        // progress); then the scan.
        KJ_ASSERT_NONNULL(downloads)->abort();
        downloads = nullptr;
        connections = nullptr;
        return joinScan().then([drained]() { return drained; });
      })
      .then([this, goodbyes](bool drained) {
        tasks = nullptr;
        scanThread = nullptr;
        auto elapsed = timer.now() - stopStartedAt;
        emit([&](control::Event::Builder e) {
          auto s = e.initStopped();
          s.setClean(drained && !failed);
          s.setElapsedMs(elapsed / kj::MILLISECONDS);
          s.setGoodbyes(goodbyes);
        });
        // 6. The last services (the control socket) pass Stopped on, then end.
        return timer.timeoutAfter(config.lastServicesGrace, supervisor.whenIdle())
            .then([]() {}, [](kj::Exception&&) {});
      })
      .then([this]() { supervisor.stopAll(); });
}

// --- scanning ------------------------------------------------------------------------------

kj::Promise<bool> Runtime::rescan() {
  if (stopScan) return false;  // stopping: no new scan
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
  options.progress = &scanProgress;
  options.racyWindowNs = config.racyWindow / kj::NANOSECONDS;
  scanStartedAt = timer.now();
  // Finished downloads: their digests were verified chunk by chunk as they were written, and
  // their files were ours alone (in the state folder) until after the stat taken of them.
  for (auto& item : verifiedItems) {
    auto& m = item->manifest;
    for (uint32_t i = 0; i < m.files.size(); ++i)
      cache.put(m.itemId, m.files[i].path, item->stats[i], m.chunkSize, m.chunksOf(i));
    cacheGrew = true;
  }
  verifiedItems.clear();
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
  // The progress reports run until the scan ends: the join drops (cancels) them then.
  auto reports = reportScanProgress().then([]() -> library::ScanResult { KJ_UNREACHABLE; });
  KJ_ASSERT_NONNULL(tasks)->add(paf.promise.exclusiveJoin(kj::mv(reports))
                                    .then(
                                        [this](library::ScanResult result) {
                                          scanThread = nullptr;  // finished: joins at once
                                          if (result.complete) emitScanProgress(true);
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

// Never resolves: a report every scanProgressInterval while there is something to hash.
kj::Promise<void> Runtime::reportScanProgress() {
  return timer.afterDelay(config.scanProgressInterval).then([this]() {
    if (scanProgress.filesToHash.load(std::memory_order_relaxed) > 0) emitScanProgress(false);
    return reportScanProgress();
  });
}

// Said only of scans that hash something: a rescan that finds nothing new stays quiet.
void Runtime::emitScanProgress(bool done) {
  auto report = scanProgress.report(timer.now() - scanStartedAt);
  if (report.filesToHash == 0) return;
  emit([&](control::Event::Builder e) { fillScanProgress(e.initScanProgress(), report, done); });
}

// The stop flag ends a scan at its next file or chunk; its result is then dropped.
kj::Promise<void> Runtime::joinScan() {
  if (!scanInProgress) return kj::READY_NOW;
  auto paf = kj::newPromiseAndFulfiller<bool>();
  scanWaiters.add(kj::mv(paf.fulfiller));
  return paf.promise.ignoreResult();
}

bool Runtime::applyScan(library::ScanResult result) {
  if (!result.complete || stopping) return false;
  reportLeftOut(result.skipped);
  if (result.stats.filesHashed > 0 || cacheGrew || !library.isPublished()) {
    cacheGrew = false;
    KJ_IF_MAYBE (problem, cache.save(config.stateDir)) {
      KJ_LOG(WARNING, "index cache not saved", *problem);
    }
  }
  if (!library.update(kj::mv(result.items))) return false;
  publishLibrary();
  return true;
}

// A new revision of our library: every session says LibraryChanged, and so do discovery's
// announcements and an event.
void Runtime::publishLibrary() {
  KJ_IF_MAYBE (d, discovery) {
    (*d)->localChanged();
  }
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
}

// Each left-out path is said once, until its reason changes or it comes back after a scan
// without it; the count is in `shoal status`.
void Runtime::reportLeftOut(kj::ArrayPtr<const kj::String> skipped) {
  kj::HashSet<kj::String> now;
  for (auto& reason : skipped) {
    if (leftOut.find(reason) == nullptr) KJ_LOG(WARNING, "not indexed", reason);
    now.findOrCreate(reason, [&]() { return kj::str(reason); });
  }
  leftOut = kj::mv(now);
}

// --- events and queries --------------------------------------------------------------------

void Runtime::emit(kj::FunctionParam<void(control::Event::Builder)> fill) {
  capnp::MallocMessageBuilder message;
  auto event = message.initRoot<control::Event>();
  event.setTimeMs((timer.now() - startedAt) / kj::MILLISECONDS);
  fill(event);
  auto record = kj::atomicRefcounted<EventRecord>(message);
  bus.publish(*record);
  for (auto& listener : listeners)
    listener(*record);
}

LocalPeer Runtime::localPeer() const {
  return LocalPeer{identity->id(), kj::str(config.name), nullptr, library.summary(), instanceId};
}

RuntimeFacts Runtime::facts() const {
  RuntimeFacts out;
  KJ_IF_MAYBE (address, bound) {
    out.listen = kj::StringPtr(*address);
  }
  out.uptime = timer.now() - startedAt;
  out.peers = peers.size();
  out.handshakeFailures = handshakeFailures;
  out.admissionDrops = admissionDrops;
  out.leftOutPaths = leftOut.size();
  out.handshakesPending = admission.pending();
  KJ_IF_MAYBE (d, downloads) {
    out.downloadTasks = (*d)->taskCount();
  } else {
    out.downloadTasks = 0;
  }
  if (scanInProgress) out.scan = scanProgress.report(timer.now() - scanStartedAt);
  return out;
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
