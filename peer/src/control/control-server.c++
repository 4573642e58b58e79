#include <shoal/peer/control/control-server.h>

#include <capnp/rpc-twoparty.h>
#include <kj/debug.h>
#include <kj/map.h>
#include <shoal/peer/control/control-replies.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

namespace shoal::peer {

namespace {

// Fans the runtime's events out to RPC subscribers, one ordered stream per subscriber, and
// tells them `done` after Stopped. Refcounted: the runtime's listener and the server share it.
class ControlHub final : public kj::Refcounted {
 public:
  explicit ControlHub(uint32_t maxPending) : maxPending(maxPending) {}

  void add(control::EventSink::Client sink) {
    sinks.add(kj::heap<Sink>(Sink{kj::mv(sink), kj::READY_NOW, 0, false}));
  }

  void deliver(const EventRecord& record) {
    bool last = record.view()->get().isStopped();
    for (auto& sink : sinks) {
      if (sink->dead) continue;
      if (sink->pending >= maxPending) {
        KJ_LOG(WARNING, "dropping a control subscriber that stopped reading events");
        sink->dead = true;
        sink->chain = kj::READY_NOW;  // cancels what it had queued
        continue;
      }
      ++sink->pending;
      auto words = kj::atomicAddRef(record);
      auto& s = *sink;
      s.chain = s.chain
                    .then([&s, words = kj::mv(words)]() {
                      auto request = s.client.pushRequest();
                      request.setEvent(words->view()->get());
                      return request.send();
                    })
                    .then([&s, last]() -> kj::Promise<void> {
                      --s.pending;
                      if (!last) return kj::READY_NOW;
                      return s.client.doneRequest().send().ignoreResult();
                    })
                    .catch_([&s](kj::Exception&&) { s.dead = true; })  // subscriber went away
                    .eagerlyEvaluate(nullptr);
    }
    if (last) stopped = true;
  }

  // After Stopped: resolves once every subscriber has its last event (or is gone).
  kj::Promise<void> drained() {
    auto all = KJ_MAP(sink, sinks) {
      return sink->chain.then([]() {});
    };
    // Chains are single-use promises; keep fresh ones for anyone still adding.
    for (auto& sink : sinks)
      sink->chain = kj::READY_NOW;
    return kj::joinPromises(kj::mv(all));
  }

  bool isStopped() const { return stopped; }

 private:
  struct Sink {
    control::EventSink::Client client;
    kj::Promise<void> chain;
    uint32_t pending = 0;
    bool dead = false;
  };
  uint32_t maxPending;
  kj::Vector<kj::Own<Sink>> sinks;
  bool stopped = false;
};

control::DownloadStart toWire(DownloadStart start) {
  switch (start) {
    case DownloadStart::started: return control::DownloadStart::STARTED;
    case DownloadStart::alreadyRunning: return control::DownloadStart::ALREADY_RUNNING;
    case DownloadStart::inLibrary: return control::DownloadStart::IN_LIBRARY;
    case DownloadStart::stopping: return control::DownloadStart::STOPPING;
    case DownloadStart::badId: return control::DownloadStart::BAD_ID;
  }
  KJ_UNREACHABLE;
}

class ControlServer final : public control::Control::Server {
 public:
  ControlServer(Runtime& runtime, kj::Own<ControlHub> hub) : runtime(runtime), hub(kj::mv(hub)) {}

  kj::Promise<void> status(StatusContext context) override {
    fillStatus(runtime, context.getResults().initStatus());
    return kj::READY_NOW;
  }

  kj::Promise<void> peers(PeersContext context) override {
    auto results = context.getResults();
    fillPeers(runtime, [&](kj::uint n) { return results.initPeers(n); });
    return kj::READY_NOW;
  }

  kj::Promise<void> items(ItemsContext context) override {
    auto results = context.getResults();
    fillItems(runtime, [&](kj::uint n) { return results.initItems(n); });
    return kj::READY_NOW;
  }

  kj::Promise<void> stop(StopContext context) override {
    (void)context;
    runtime.shutdown("stop requested over the control socket");
    return kj::READY_NOW;
  }

  kj::Promise<void> subscribe(SubscribeContext context) override {
    hub->add(context.getParams().getSink());
    return kj::READY_NOW;
  }

  kj::Promise<void> download(DownloadContext context) override {
    kj::String message;
    auto result = runtime.startDownload(context.getParams().getItemId(), message);
    auto results = context.getResults();
    results.setResult(toWire(result));
    results.setMessage(message);
    return kj::READY_NOW;
  }

  kj::Promise<void> cancel(CancelContext context) override {
    context.getResults().setCancelled(runtime.cancelDownload(context.getParams().getItemId()));
    return kj::READY_NOW;
  }

  kj::Promise<void> rescan(RescanContext context) override {
    return runtime.rescan().then(
        [context](bool changed) mutable { context.getResults().setChanged(changed); });
  }

 private:
  Runtime& runtime;
  kj::Own<ControlHub> hub;
};

}  // namespace

kj::String controlSocketPath(kj::StringPtr stateDir) {
  return kj::str(stateDir, "/control.sock");
}

namespace {

// Binds and listens on a Unix socket at `path`, mode 0600, synchronously: a failure is a start-up
// error of the daemon, reported before anything runs.
kj::Own<kj::ConnectionReceiver> bindControlSocket(kj::AsyncIoContext& io, kj::StringPtr path,
                                                  uint32_t backlog) {
  struct sockaddr_un addr = {};
  KJ_REQUIRE(path.size() < sizeof(addr.sun_path), "control socket path too long", path);
  addr.sun_family = AF_UNIX;
  memcpy(addr.sun_path, path.begin(), path.size());
  int fd;
  KJ_SYSCALL(fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  kj::AutoCloseFd owned(fd);
  unlink(path.cStr());  // stale from a crashed daemon; the state lock says no one else uses it
  // umask-independent: nobody but the owner may ever connect, even for an instant.
  KJ_SYSCALL(fchmod(fd, 0600));
  KJ_SYSCALL(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), path);
  KJ_SYSCALL(chmod(path.cStr(), 0600), path);
  KJ_SYSCALL(::listen(fd, int(backlog)), path);
  return io.lowLevelProvider->wrapListenSocketFd(kj::mv(owned));
}

// A control client's socket, counting the writes under way so the service can let the answers it
// has written (stop()'s above all) reach the socket before the connection is cut.
class ClientStream final : public kj::AsyncIoStream {
 public:
  ClientStream(kj::Own<kj::AsyncIoStream> inner, kj::HashSet<ClientStream*>& open)
      : inner(kj::mv(inner)), open(open) {
    open.insert(this);
  }
  ~ClientStream() noexcept(false) {
    open.eraseMatch(this);        // erase(row) would take a row of the table itself, not a key
    for (auto& waiter : waiters)  // its connection ended: nothing more will be written
      waiter->fulfill();
  }
  KJ_DISALLOW_COPY(ClientStream);

  kj::Promise<size_t> tryRead(void* buffer, size_t minBytes, size_t maxBytes) override {
    return inner->tryRead(buffer, minBytes, maxBytes);
  }
  kj::Promise<void> write(const void* buffer, size_t size) override {
    return track(inner->write(buffer, size));
  }
  kj::Promise<void> write(kj::ArrayPtr<const kj::ArrayPtr<const kj::byte>> pieces) override {
    return track(inner->write(pieces));
  }
  kj::Promise<void> whenWriteDisconnected() override { return inner->whenWriteDisconnected(); }
  void shutdownWrite() override { inner->shutdownWrite(); }
  void abortRead() override { inner->abortRead(); }

  bool isWriting() const { return writing > 0; }
  // Resolves once no write is under way (at once if none is).
  kj::Promise<void> writesEnded() {
    if (writing == 0) return kj::READY_NOW;
    auto paf = kj::newPromiseAndFulfiller<void>();
    waiters.add(kj::mv(paf.fulfiller));
    return kj::mv(paf.promise);
  }

 private:
  kj::Promise<void> track(kj::Promise<void> write) {
    ++writing;
    // On every path, a cancelled write too: the RPC system drops its writes with the connection.
    return write.attach(kj::defer([this]() {
      if (--writing > 0) return;
      for (auto& waiter : waiters)
        waiter->fulfill();
      waiters.clear();
    }));
  }

  kj::Own<kj::AsyncIoStream> inner;
  kj::HashSet<ClientStream*>& open;
  uint32_t writing = 0;
  kj::Vector<kj::Own<kj::PromiseFulfiller<void>>> waiters;
};

// The bound socket, its RPC server and its clients' connections, owned by the supervised service
// for the runtime's life.
struct ControlService final : private kj::TaskSet::ErrorHandler {
  ControlService(kj::String path, kj::Own<kj::ConnectionReceiver> receiver, kj::Own<ControlHub> hub,
                 kj::Own<capnp::TwoPartyServer> server, kj::Promise<void> stopped)
      : path(kj::mv(path)),
        receiver(kj::mv(receiver)),
        hub(kj::mv(hub)),
        server(kj::mv(server)),
        stopped(kj::mv(stopped)),
        connections(*this) {}
  KJ_DISALLOW_COPY(ControlService);

  kj::String path;
  kj::Own<kj::ConnectionReceiver> receiver;
  kj::Own<ControlHub> hub;
  kj::Own<capnp::TwoPartyServer> server;
  kj::Maybe<kj::Promise<void>> stopped;  // resolves on Stopped
  kj::HashSet<ClientStream*> open;       // every client stream, while it lives
  // Declared last so it is destroyed first: each task owns a client's RPC connection and stream.
  kj::TaskSet connections;

  ~ControlService() noexcept(false) { unlink(path.cStr()); }

  // Serves until Stopped, then until every subscriber has its last event and every answer given
  // has been written: a client that asked stop() gets its answer, not a closed connection. The
  // runtime bounds this wait (RuntimeConfig::lastServicesGrace).
  kj::Promise<void> run() {
    auto afterStop = KJ_ASSERT_NONNULL(kj::mv(stopped), "the control service runs once")
                         .then([this]() { return hub->drained(); })
                         .then([this]() { return flushed(); });
    stopped = nullptr;
    return acceptLoop().exclusiveJoin(kj::mv(afterStop));
  }

 private:
  kj::Promise<void> acceptLoop() {
    return receiver->accept().then([this](kj::Own<kj::AsyncIoStream> accepted) {
      auto stream = kj::heap<ClientStream>(kj::mv(accepted), open);
      connections.add(server->accept(*stream).attach(kj::mv(stream)));
      return acceptLoop();
    });
  }

  // Once the queue of ready events is empty, every answer due has begun to be written; a write
  // waiting for room in the socket may have more queued behind it, so look again after it.
  kj::Promise<void> flushed() {
    return kj::evalLast([this]() -> kj::Promise<void> {
      for (auto* client : open) {
        if (client->isWriting()) return client->writesEnded().then([this]() { return flushed(); });
      }
      return kj::READY_NOW;
    });
  }

  void taskFailed(kj::Exception&& exception) override {
    // A client's connection ending badly is that client's business.
    KJ_LOG(INFO, "control connection ended", exception);
  }
};

}  // namespace

void serveControl(Runtime& runtime, kj::AsyncIoContext& io, ControlOptions options) {
  auto path = controlSocketPath(runtime.configuration().stateDir);
  auto receiver = bindControlSocket(io, path, options.listenBacklog);
  auto hub = kj::refcounted<ControlHub>(options.maxPendingEvents);
  runtime.onEvent(
      [hub = kj::addRef(*hub)](const EventRecord& record) mutable { hub->deliver(record); });
  auto server = kj::heap<capnp::TwoPartyServer>(kj::heap<ControlServer>(runtime, kj::addRef(*hub)));
  auto stopped = kj::newPromiseAndFulfiller<void>();
  runtime.onEvent([fulfiller = kj::mv(stopped.fulfiller)](const EventRecord& record) mutable {
    if (record.view()->get().isStopped()) fulfiller->fulfill();
  });
  auto service = kj::heap<ControlService>(kj::mv(path), kj::mv(receiver), kj::mv(hub),
                                          kj::mv(server), kj::mv(stopped.promise));
  // Required: a daemon that lost its control socket can no longer be stopped by `shoal stop`.
  runtime.addService(
      "control", policy::Required{},
      [service = kj::mv(service)]() mutable { return service->run(); }, Stage::last);
}

}  // namespace shoal::peer
