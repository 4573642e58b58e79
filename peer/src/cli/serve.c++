// `shoal serve`: runs a peer until SIGINT/SIGTERM or `shoal stop`, printing its events as text
// or, with --json, as one JSON object per line.
#include <kj/async-unix.h>
#include <kj/debug.h>
#include <kj/io.h>
#include <net/if.h>
#include <shoal/mutant.h>
#include <shoal/peer/control/control-server.h>
#include <shoal/peer/runtime/runtime-handle.h>
#include <signal.h>

#include "cli.h"

namespace shoal::peer::cli {

namespace {

using Validity = kj::MainBuilder::Validity;

// After the last event the runtime thread only has to unwind: a bound, not a wait.
constexpr kj::Duration kThreadExitWait = 5 * kj::SECONDS;

// SIGINT and SIGTERM start the clean shutdown. The runtime's own event loop takes them (KJ's
// UnixEventPort::onSignal): no thread polls for them.
void handleSignals(Runtime& runtime, kj::AsyncIoContext& io) {
  runtime.addService("signals", policy::BestEffort{}, [&runtime, &io]() {
    auto interrupt = io.unixEventPort.onSignal(SIGINT).ignoreResult();
    auto terminate = io.unixEventPort.onSignal(SIGTERM).ignoreResult();
    return interrupt.exclusiveJoin(kj::mv(terminate)).then([&runtime]() {
      runtime.shutdown("signal");
    });
  });
}

class ServeCommand {
 public:
  explicit ServeCommand(Terminal& terminal) : terminal(terminal) {}

  kj::MainFunc getMain() {
    kj::MainBuilder builder(terminal, "shoal serve",
                            "Runs a peer: serves the library's top-level folders as items, dials "
                            "the static peers, and lists theirs. Stops cleanly on SIGINT, SIGTERM "
                            "or `shoal stop`.");
    // The option groups in the order `--help` lists them.
    addPlaceOptions(builder);
    addDiscoveryOptions(builder);
    addTrustOptions(builder);
    addLimitOptions(builder);
    addTimeoutOptions(builder);
    addServingOptions(builder);
    return builder.callAfterParsing(KJ_BIND_METHOD(*this, run)).build();
  }

 private:
  // Where the library and state live, where we listen, whom we dial.
  void addPlaceOptions(kj::MainBuilder& builder) {
    builder
        .addOptionWithArg({'l', "library"}, KJ_BIND_METHOD(*this, setLibrary), "<dir>",
                          "the library folder: its top-level folders are the items (required)")
        .addOptionWithArg({'s', "state"}, KJ_BIND_METHOD(*this, setState), "<dir>",
                          "state folder: identity key, index cache, control socket "
                          "(default <library>/.shoal)")
        .addOptionWithArg({"listen"}, KJ_BIND_METHOD(*this, setListen), "<host:port>",
                          "address to accept peers on (default 0.0.0.0:4747)")
        .addOptionWithArg({"peer"}, KJ_BIND_METHOD(*this, addPeer), "<host:port>",
                          "a static peer to keep connected to (repeatable)");
  }

  // Finding peers on the LAN.
  void addDiscoveryOptions(kj::MainBuilder& builder) {
    builder
        .addOption({"discover"}, KJ_BIND_METHOD(*this, setDiscover),
                   "find peers on the LAN: multicast beacon, and mDNS where Avahi runs, on every "
                   "multicast-capable interface (off by default)")
        .addOptionWithArg({"discover-iface"}, KJ_BIND_METHOD(*this, addDiscoverIface), "<name>",
                          "find peers on this interface only (repeatable; implies --discover)")
        .addOptionWithArg({"discover-interval"}, KJ_BIND_METHOD(*this, setDiscoverInterval), "<ms>",
                          "announce interval, jitter a fifth of it (default 5000)")
        .addOption({"no-mdns"}, KJ_BIND_METHOD(*this, setNoMdns),
                   "discovery by the beacon only: neither publish nor browse through Avahi")
        .addOption({"no-beacon"}, KJ_BIND_METHOD(*this, setNoBeacon),
                   "discovery by mDNS only: no multicast beacon");
  }

  // Whom we accept, and how we present ourselves.
  void addTrustOptions(kj::MainBuilder& builder) {
    builder
        .addOptionWithArg({"trust"}, KJ_BIND_METHOD(*this, setTrust), "open|pinned",
                          "open: any peer; pinned: only --allow ids (default open)")
        .addOptionWithArg({"allow"}, KJ_BIND_METHOD(*this, addAllow), "<peer-id>",
                          "a peer id accepted in pinned mode (repeatable)")
        .addOption({"plaintext"}, KJ_BIND_METHOD(*this, setPlaintext),
                   "no TLS (tests and benchmarks only; the other side must agree)")
        .addOptionWithArg({"name"}, KJ_BIND_METHOD(*this, setName), "<name>",
                          "display name: UTF-8, no control characters, at most 256 bytes "
                          "(default: the host name)");
  }

  // Limits on what peers may make us hold.
  void addLimitOptions(kj::MainBuilder& builder) {
    builder
        .addOptionWithArg({"max-connections"}, KJ_BIND_METHOD(*this, setMaxConnections), "<n>",
                          "established peers accepted at once (default 64)")
        .addOptionWithArg({"max-handshakes"}, KJ_BIND_METHOD(*this, setMaxHandshakes), "<n>",
                          "inbound connections still in their handshake, in all (default 64); "
                          "the one that got least far makes room for a newcomer")
        .addOptionWithArg({"max-handshakes-per-address"},
                          KJ_BIND_METHOD(*this, setMaxHandshakesPerAddress), "<n>",
                          "of those, from one address (default 16)")
        .addOptionWithArg({"first-bytes-timeout"}, KJ_BIND_METHOD(*this, setFirstBytesTimeout),
                          "<ms>",
                          "an inbound connection that sends nothing is closed after this "
                          "(default 2000)")
        .addOptionWithArg({"max-in-flight"}, KJ_BIND_METHOD(*this, setMaxInFlight), "<n>",
                          "requests a peer may have outstanding with us (default 64)")
        .addOptionWithArg({"max-frame-bytes"}, KJ_BIND_METHOD(*this, setMaxFrameBytes), "<n>",
                          "largest frame we read (default 16777216, at least 65536)")
        .addOptionWithArg({"max-path-bytes"}, KJ_BIND_METHOD(*this, setMaxPathBytes), "<n>",
                          "longest file path accepted (default and maximum 4096)");
  }

  // Session timers.
  void addTimeoutOptions(kj::MainBuilder& builder) {
    builder
        .addOptionWithArg({"handshake-timeout"}, KJ_BIND_METHOD(*this, setHandshakeTimeout), "<ms>",
                          "TLS + Hello must finish within this (default 10000)")
        .addOptionWithArg({"idle-timeout"}, KJ_BIND_METHOD(*this, setIdleTimeout), "<ms>",
                          "silence before we Ping a peer (default 15000)")
        .addOptionWithArg({"dead-timeout"}, KJ_BIND_METHOD(*this, setDeadTimeout), "<ms>",
                          "silence before we drop a peer (default 45000, above --idle-timeout)")
        .addOptionWithArg({"drain-timeout"}, KJ_BIND_METHOD(*this, setDrainTimeout), "<ms>",
                          "how long a Goodbye drain may take (default 1000)");
  }

  // What we serve and how, and how events are printed.
  void addServingOptions(kj::MainBuilder& builder) {
    builder
        .addOptionWithArg({"chunk-size"}, KJ_BIND_METHOD(*this, setChunkSize), "<bytes>",
                          "chunk size of the manifests we build (default 1048576)")
        .addOptionWithArg({"max-upload-rate"}, KJ_BIND_METHOD(*this, setUploadRate), "<bytes/s>",
                          "chunk bytes per second sent to all peers together (default 0: no "
                          "limit)")
        .addOptionWithArg({"rescan"}, KJ_BIND_METHOD(*this, setRescan), "<ms>",
                          "how often the library is rescanned (default 5000)")
        .addOption({"json"}, KJ_BIND_METHOD(*this, setJson),
                   "print events as NDJSON on stdout instead of text")
        .addOptionWithArg({"mutant"}, KJ_BIND_METHOD(*this, setMutant), "<name>|list",
                          "test builds only: run with one deliberate defect, for the conformance "
                          "suite's self-test; `list` prints them (give it first)");
  }

  Terminal& terminal;
  RuntimeConfig config;
  bool haveLibrary = false;
  bool json = false;
  bool discover = false;
  discovery::DiscoveryOptions discoveryOptions;

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
    KJ_IF_MAYBE (problem, checkAddress(address, AddressUse::listen)) {
      return kj::mv(*problem);
    }
    config.listen = kj::str(address);
    return true;
  }
  Validity addPeer(kj::StringPtr address) {
    KJ_IF_MAYBE (problem, checkAddress(address, AddressUse::dial)) {
      return kj::mv(*problem);
    }
    config.peers.add(kj::str(address));
    return true;
  }
  Validity setDiscover() {
    discover = true;
    discoveryOptions.interfaces.all = true;
    return true;
  }
  Validity addDiscoverIface(kj::StringPtr name) {
    if (name.size() == 0 || name.size() >= IF_NAMESIZE) return "not an interface name";
    discover = true;
    for (auto& known : discoveryOptions.interfaces.names) {
      if (known == name) return true;
    }
    discoveryOptions.interfaces.names.add(kj::str(name));
    return true;
  }
  Validity setDiscoverInterval(kj::StringPtr t) {
    uint64_t n = 5000;
    auto v = count(t, 100, 3600000, n);
    discoveryOptions.setInterval(n * kj::MILLISECONDS);
    return v;
  }
  Validity setNoMdns() {
    discoveryOptions.useMdns = false;
    return true;
  }
  Validity setNoBeacon() {
    discoveryOptions.useBeacon = false;
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
    // The wire's own rules: every peer would refuse a Hello carrying anything else.
    KJ_IF_MAYBE (problem, checkName(name)) {
      return kj::str("not a usable name: ", *problem);
    }
    config.name = kj::str(name);
    return true;
  }
  Validity setJson() {
    json = true;
    return true;
  }
  Validity setMutant(kj::StringPtr name) {
    if (!kMutantsBuilt) {
      return "this shoal has no mutants: it is a release build (configure with "
             "-DSHOAL_MUTANTS=ON, as the asan and debug presets do)";
    }
    if (name == "list") {
      // One row each: name, area, requirement ids, what it breaks (shoal-mutation reads it).
      auto rows = KJ_MAP(m, allMutants()) {
        return kj::arr(kj::str(m.name), kj::str(m.area), kj::str(m.requirements),
                       kj::str(m.breaks));
      };
      terminal.table(rows);
      terminal.exit();
    }
    if (name == "none") return true;  // the baseline of a mutation run
    KJ_IF_MAYBE (m, findMutant(name)) {
      activateMutant(m->mutant);  // before any thread starts: run() has not begun
      terminal.note(kj::str("shoal serve: mutant ", m->name, " is on: ", m->breaks,
                            " (a deliberately broken peer, for tests)"));
      return true;
    }
    return "no such mutant (`shoal serve --mutant list` lists them)";
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
  Validity setMaxHandshakes(kj::StringPtr t) {
    uint64_t n;
    auto v = count(t, 1, 100000, n);
    config.admission.maxPending = n;
    return v;
  }
  Validity setMaxHandshakesPerAddress(kj::StringPtr t) {
    uint64_t n;
    auto v = count(t, 1, 100000, n);
    config.admission.maxPendingPerSource = n;
    return v;
  }
  Validity setFirstBytesTimeout(kj::StringPtr t) {
    uint64_t n;
    auto v = count(t, 10, 600000, n);
    config.admission.firstBytesTimeout = n * kj::MILLISECONDS;
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
  Validity setUploadRate(kj::StringPtr t) {
    uint64_t n;
    auto v = count(t, 0, uint64_t(1) << 40, n);
    config.maxUploadRate = n;
    return v;
  }
  Validity setRescan(kj::StringPtr t) {
    uint64_t n;
    auto v = count(t, 100, 86400000, n);
    config.rescanInterval = n * kj::MILLISECONDS;
    return v;
  }

  Validity run() {
    if (!haveLibrary) return "--library is required";
    if (config.session.deadTimeout <= config.session.idleTimeout) {
      return "--dead-timeout must be above --idle-timeout";
    }
    if (!discover && isMutant(Mutant::discoverByDefault)) {
      discover = true;
      discoveryOptions.interfaces.all = true;
    }
    if (discover) {
      // --discover-iface names the interfaces; --discover alone means all of them.
      if (discoveryOptions.interfaces.names.size() > 0) discoveryOptions.interfaces.all = false;
      if (!discoveryOptions.useBeacon && !discoveryOptions.useMdns) {
        return "--no-beacon and --no-mdns leave discovery nothing to do";
      }
      config.discovery = kj::mv(discoveryOptions);
    }
    if (config.stateDir.size() == 0) config.stateDir = kj::str(config.libraryDir, "/.shoal");
    // Blocked here, before any thread exists, so that every thread inherits the mask and only
    // the runtime's event loop takes them.
    kj::UnixEventPort::captureSignal(SIGINT);
    kj::UnixEventPort::captureSignal(SIGTERM);
    terminal.keepRunningWhenOutputCloses();

    RuntimeHandle handle;
    auto events = handle.subscribe();
    RuntimeHandle::Setup setup = [](Runtime& runtime, kj::AsyncIoContext& io) {
      serveControl(runtime, io);
      handleSignals(runtime, io);
    };
    KJ_IF_MAYBE (exception, kj::runCatchingExceptions(
                                [&]() { handle.start(kj::mv(config), kj::mv(setup)); })) {
      terminal.fail(kj::str("shoal serve: cannot start: ", exception->getDescription()));
    }
    kj::Maybe<kj::String> failure;
    bool clean = false, stopAsked = false;
    for (;;) {
      auto next = events->wait();
      if (next == nullptr) break;  // the runtime stopped and every event was taken
      auto& record = *KJ_ASSERT_NONNULL(next);
      auto view = record.view();
      auto event = view->get();
      if (event.isRuntimeFailed()) {
        auto f = event.getRuntimeFailed();
        failure = kj::str(f.getComponent(), " failed: ", f.getError());
      }
      if (event.isStopped()) clean = event.getStopped().getClean();
      if (json) {
        terminal.json(record.json());
      } else {
        terminal.line(describeEvent(event));
      }
      if (terminal.outputClosed() && !stopAsked) {
        stopAsked = true;  // nobody reads our events any more: stop cleanly and quietly
        handle.shutdown();
      }
    }
    handle.waitStopped(kThreadExitWait);
    KJ_IF_MAYBE (f, failure) {
      terminal.fail(kj::str("shoal serve: ", *f));
    }
    if (!clean) terminal.fail("shoal serve: did not stop cleanly");
    terminal.exit();
  }
};

}  // namespace

kj::MainFunc serveMain(Terminal& terminal) {
  auto command = kj::heap<ServeCommand>(terminal);
  auto main = command->getMain();
  return [command = kj::mv(command), main = kj::mv(main)](
             kj::StringPtr program, kj::ArrayPtr<const kj::StringPtr> params) mutable {
    main(program, params);
  };
}

}  // namespace shoal::peer::cli
