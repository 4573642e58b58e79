// `shoal serve`: runs a peer until SIGINT/SIGTERM or `shoal stop`, printing its events as text
// or, with --json, as one JSON object per line.
#include <kj/debug.h>
#include <kj/io.h>
#include <shoal/peer/control/control-server.h>
#include <shoal/peer/runtime/runtime-handle.h>
#include <signal.h>
#include <unistd.h>

#include "cli.h"

namespace shoal::peer::cli {

namespace {

using Validity = kj::MainBuilder::Validity;

kj::String shortId(kj::StringPtr id) {
  return kj::str(id.slice(0, kj::min(id.size(), size_t(15))));
}

kj::String describe(control::Event::Reader e) {
  switch (e.which()) {
    case control::Event::STARTED: {
      auto s = e.getStarted();
      return kj::str("started: peer ", s.getPeerId(), " listening on ", s.getListen(), ", ",
                     s.getItems(), " items");
    }
    case control::Event::PEER_FOUND: {
      auto p = e.getPeerFound();
      return kj::str(
          "peer found: ", p.getName(), " (", shortId(p.getPeerId()), "…) at ", p.getAddress(),
          p.getDirection() == control::Direction::OUTBOUND ? ", dialled" : ", dialled us",
          p.getAuthenticated() ? ", TLS" : ", PLAINTEXT");
    }
    case control::Event::PEER_LOST: {
      auto p = e.getPeerLost();
      return kj::str("peer lost: ", shortId(p.getPeerId()), "… (", p.getReason(), ")");
    }
    case control::Event::LIBRARY_CHANGED: {
      auto l = e.getLibraryChanged();
      auto who = l.getPeerId().size() == 0 ? kj::str("our library")
                                           : kj::str("library of ", shortId(l.getPeerId()), "…");
      return kj::str(who, ": rev ", l.getSummary().getRev(), ", ", l.getItems(), " items");
    }
    case control::Event::RUNTIME_FAILED: {
      auto f = e.getRuntimeFailed();
      return kj::str("FAILED: ", f.getComponent(), ": ", f.getError());
    }
    case control::Event::SERVICE_RESTARTED: {
      auto r = e.getServiceRestarted();
      return kj::str("restarting ", r.getComponent(), " in ", r.getBackoffMs(),
                     " ms: ", r.getError());
    }
    case control::Event::GOODBYE_RECEIVED: {
      auto g = e.getGoodbyeReceived();
      return kj::str("goodbye from ", shortId(g.getPeerId()), "… (", g.getReason(), ": ",
                     g.getMessage(), ")");
    }
    case control::Event::STOPPED: {
      auto s = e.getStopped();
      return kj::str("stopped ", s.getClean() ? "cleanly" : "UNCLEANLY", " in ", s.getElapsedMs(),
                     " ms (Goodbye sent to ", s.getGoodbyes(), " peers)");
    }
  }
  return kj::str("event");
}

class ServeCommand {
 public:
  explicit ServeCommand(kj::ProcessContext& context) : context(context) {}

  kj::MainFunc getMain() {
    return kj::MainBuilder(context, "shoal serve",
                           "Runs a peer: serves the library's top-level folders as items, dials "
                           "the static peers, and lists theirs. Stops cleanly on SIGINT, SIGTERM "
                           "or `shoal stop`.")
        .addOptionWithArg({'l', "library"}, KJ_BIND_METHOD(*this, setLibrary), "<dir>",
                          "the library folder: its top-level folders are the items (required)")
        .addOptionWithArg({'s', "state"}, KJ_BIND_METHOD(*this, setState), "<dir>",
                          "state folder: identity key, index cache, control socket "
                          "(default <library>/.shoal)")
        .addOptionWithArg({"listen"}, KJ_BIND_METHOD(*this, setListen), "<host:port>",
                          "address to accept peers on (default 0.0.0.0:4747)")
        .addOptionWithArg({"peer"}, KJ_BIND_METHOD(*this, addPeer), "<host:port>",
                          "a static peer to keep connected to (repeatable)")
        .addOptionWithArg({"trust"}, KJ_BIND_METHOD(*this, setTrust), "open|pinned",
                          "open: any peer; pinned: only --allow ids (default open)")
        .addOptionWithArg({"allow"}, KJ_BIND_METHOD(*this, addAllow), "<peer-id>",
                          "a peer id accepted in pinned mode (repeatable)")
        .addOption({"plaintext"}, KJ_BIND_METHOD(*this, setPlaintext),
                   "no TLS (tests and benchmarks only; the other side must agree)")
        .addOptionWithArg({"name"}, KJ_BIND_METHOD(*this, setName), "<name>",
                          "display name (default: the host name)")
        .addOptionWithArg({"max-connections"}, KJ_BIND_METHOD(*this, setMaxConnections), "<n>",
                          "established peers accepted at once (default 64)")
        .addOptionWithArg({"max-in-flight"}, KJ_BIND_METHOD(*this, setMaxInFlight), "<n>",
                          "requests a peer may have outstanding with us (default 64)")
        .addOptionWithArg({"max-frame-bytes"}, KJ_BIND_METHOD(*this, setMaxFrameBytes), "<n>",
                          "largest frame we read (default 16777216, at least 65536)")
        .addOptionWithArg({"max-path-bytes"}, KJ_BIND_METHOD(*this, setMaxPathBytes), "<n>",
                          "longest file path accepted (default and maximum 4096)")
        .addOptionWithArg({"handshake-timeout"}, KJ_BIND_METHOD(*this, setHandshakeTimeout), "<ms>",
                          "TLS + Hello must finish within this (default 10000)")
        .addOptionWithArg({"idle-timeout"}, KJ_BIND_METHOD(*this, setIdleTimeout), "<ms>",
                          "silence before we Ping a peer (default 15000)")
        .addOptionWithArg({"dead-timeout"}, KJ_BIND_METHOD(*this, setDeadTimeout), "<ms>",
                          "silence before we drop a peer (default 45000, above --idle-timeout)")
        .addOptionWithArg({"drain-timeout"}, KJ_BIND_METHOD(*this, setDrainTimeout), "<ms>",
                          "how long a Goodbye drain may take (default 1000)")
        .addOptionWithArg({"chunk-size"}, KJ_BIND_METHOD(*this, setChunkSize), "<bytes>",
                          "chunk size of the manifests we build (default 1048576)")
        .addOptionWithArg({"rescan"}, KJ_BIND_METHOD(*this, setRescan), "<ms>",
                          "how often the library is rescanned (default 5000)")
        .addOption({"json"}, KJ_BIND_METHOD(*this, setJson),
                   "print events as NDJSON on stdout instead of text")
        .callAfterParsing(KJ_BIND_METHOD(*this, run))
        .build();
  }

 private:
  kj::ProcessContext& context;
  RuntimeConfig config;
  bool haveLibrary = false;
  bool json = false;

  Validity setLibrary(kj::StringPtr dir) {
    config.libraryDir = kj::str(dir);
    haveLibrary = true;
    return true;
  }
  Validity setState(kj::StringPtr dir) {
    config.stateDir = kj::str(dir);
    return true;
  }
  Validity setListen(kj::StringPtr address) {
    if (address.findLast(':') == nullptr) return "expected host:port";
    config.listen = kj::str(address);
    return true;
  }
  Validity addPeer(kj::StringPtr address) {
    if (address.findLast(':') == nullptr) return "expected host:port";
    config.peers.add(kj::str(address));
    return true;
  }
  Validity setTrust(kj::StringPtr mode) {
    if (mode == "open") {
      config.trust = TrustMode::open;
    } else if (mode == "pinned") {
      config.trust = TrustMode::pinned;
    } else {
      return "expected open or pinned";
    }
    return true;
  }
  Validity addAllow(kj::StringPtr text) {
    KJ_IF_MAYBE (id, parsePeerId(text)) {
      config.allow.add(*id);
      return true;
    }
    return "not a peer id (56 base32 characters with check characters, as `shoal id` prints)";
  }
  Validity setPlaintext() {
    config.plaintext = true;
    return true;
  }
  Validity setName(kj::StringPtr name) {
    config.name = kj::str(name);
    return true;
  }
  Validity setJson() {
    json = true;
    return true;
  }
  Validity count(kj::StringPtr text, uint64_t min, uint64_t max, uint64_t& out) {
    KJ_IF_MAYBE (n, parseCount(text, max)) {
      if (*n >= min) {
        out = *n;
        return true;
      }
    }
    return kj::str("expected a whole number from ", min, " to ", max);
  }
  Validity setMaxConnections(kj::StringPtr t) {
    uint64_t n;
    auto v = count(t, 1, 100000, n);
    config.maxConnections = n;
    return v;
  }
  Validity setMaxInFlight(kj::StringPtr t) {
    uint64_t n;
    auto v = count(t, 1, 1000000, n);
    config.session.maxInFlight = n;
    return v;
  }
  Validity setMaxFrameBytes(kj::StringPtr t) {
    uint64_t n;
    auto v = count(t, codec::kMinFrameBytes, uint64_t(1) << 30, n);
    config.session.limits.maxFrameBytes = n;
    config.session.limits.traversalLimitWords = kj::max(n / 2, uint64_t(8) << 20);
    return v;
  }
  Validity setMaxPathBytes(kj::StringPtr t) {
    uint64_t n;
    auto v = count(t, 256, codec::kMaxPathBytes, n);
    config.session.limits.maxPathBytes = n;
    return v;
  }
  Validity setHandshakeTimeout(kj::StringPtr t) {
    uint64_t n;
    auto v = count(t, 10, 600000, n);
    config.session.handshakeTimeout = n * kj::MILLISECONDS;
    return v;
  }
  Validity setIdleTimeout(kj::StringPtr t) {
    uint64_t n;
    auto v = count(t, 10, 3600000, n);
    config.session.idleTimeout = n * kj::MILLISECONDS;
    return v;
  }
  Validity setDeadTimeout(kj::StringPtr t) {
    uint64_t n;
    auto v = count(t, 10, 3600000, n);
    config.session.deadTimeout = n * kj::MILLISECONDS;
    return v;
  }
  Validity setDrainTimeout(kj::StringPtr t) {
    uint64_t n;
    auto v = count(t, 10, 600000, n);
    config.session.drainTimeout = n * kj::MILLISECONDS;
    return v;
  }
  Validity setChunkSize(kj::StringPtr t) {
    uint64_t n;
    auto v = count(t, 4096, codec::kMaxChunkSize, n);
    config.chunkSize = n;
    return v;
  }
  Validity setRescan(kj::StringPtr t) {
    uint64_t n;
    auto v = count(t, 100, 86400000, n);
    config.rescanInterval = n * kj::MILLISECONDS;
    return v;
  }

  void print(kj::StringPtr line) {
    kj::FdOutputStream out(STDOUT_FILENO);
    auto text = kj::str(line, "\n");
    out.write(text.begin(), text.size());
  }

  Validity run() {
    if (!haveLibrary) return "--library is required";
    if (config.session.deadTimeout <= config.session.idleTimeout) {
      return "--dead-timeout must be above --idle-timeout";
    }
    if (config.stateDir.size() == 0) config.stateDir = kj::str(config.libraryDir, "/.shoal");
    if (config.maxConnections > config.maxHandshakes) config.maxHandshakes = config.maxConnections;
    // Signals are taken by this thread with sigtimedwait(); the runtime thread inherits the mask.
    sigset_t signals;
    sigemptyset(&signals);
    sigaddset(&signals, SIGINT);
    sigaddset(&signals, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &signals, nullptr);

    RuntimeHandle handle;
    auto events = handle.subscribe();
    RuntimeHandle::Setup setup = [](Runtime& runtime, kj::AsyncIoContext& io) {
      return serveControl(runtime, io);
    };
    KJ_IF_MAYBE (exception, kj::runCatchingExceptions(
                                [&]() { handle.start(kj::mv(config), kj::mv(setup)); })) {
      context.exitError(kj::str("shoal serve: cannot start: ", exception->getDescription()));
    }
    bool failed = false, clean = false, signalled = false;
    for (;;) {
      KJ_IF_MAYBE (record, events->next(100 * kj::MILLISECONDS)) {
        auto view = (*record)->view();
        auto event = view->get();
        if (event.isRuntimeFailed()) failed = true;
        if (event.isStopped()) clean = event.getStopped().getClean();
        print(json ? (*record)->json() : describe(event));
      } else if (events->isClosed()) {
        break;
      }
      struct timespec now = {0, 0};
      int signal = sigtimedwait(&signals, nullptr, &now);
      if (signal > 0 && !signalled) {
        signalled = true;
        handle.shutdown();
      }
    }
    handle.waitStopped(5 * kj::SECONDS);
    if (failed) context.exitError("shoal serve: a required service failed");
    if (!clean) context.exitError("shoal serve: did not stop cleanly");
    context.exit();
    KJ_UNREACHABLE;
  }
};

}  // namespace

kj::MainFunc serveMain(kj::ProcessContext& context) {
  auto command = kj::heap<ServeCommand>(context);
  auto main = command->getMain();
  return [command = kj::mv(command), main = kj::mv(main)](
             kj::StringPtr program, kj::ArrayPtr<const kj::StringPtr> params) mutable {
    main(program, params);
  };
}

}  // namespace shoal::peer::cli
