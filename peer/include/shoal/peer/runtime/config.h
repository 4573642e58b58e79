// Everything a runtime is configured with: folders, addresses, trust, limits and timers. Every
// limit the spec names is here with its default, and `shoal serve` exposes the ones users tune.
#pragma once

#include <kj/async.h>
#include <kj/function.h>
#include <kj/string.h>
#include <kj/time.h>
#include <kj/vector.h>
#include <shoal/peer/discovery/options.h>
#include <shoal/peer/download/download.h>
#include <shoal/peer/runtime/admission.h>
#include <shoal/peer/runtime/chunk-readers.h>
#include <shoal/peer/session/session-core.h>

namespace shoal::peer {

class Runtime;

enum class TrustMode : uint8_t { open, pinned };

struct RuntimeConfig {
  kj::String libraryDir;
  kj::String stateDir;  // default: <libraryDir>/.shoal
  kj::String listen = kj::str("0.0.0.0:4747");
  kj::Vector<kj::String> peers;  // static peers to dial, host:port
  // LAN discovery (beacon, mDNS); null: off, as docs/protocol.md [DSC-1] requires by default.
  kj::Maybe<discovery::DiscoveryOptions> discovery;
  TrustMode trust = TrustMode::open;
  kj::Vector<PeerId> allow;  // pinned mode: the only ids accepted
  bool plaintext = false;    // tests and benchmarks only; both sides must agree
  kj::String name;           // display name (the wire's name rules); default: the host name

  SessionConfig session;
  uint32_t maxConnections = 64;  // established sessions ([HS-11])
  AdmissionLimits admission;     // inbound connections before their session
  uint32_t chunkSize = 1 << 20;  // for manifests we build
  uint32_t historyRevs = 64;
  // Downloads (docs/downloads.md): the scheduler's limits and the writer. `ours` is set from
  // session.limits by the runtime.
  download::DownloadConfig download;
  // Chunk bytes per second sent over all sessions (UploadLimit); 0 = unlimited.
  uint64_t maxUploadRate = 0;
  ChunkReaderLimits readers;      // GetChunk's reader threads and their open files
  kj::Maybe<ReadGate&> readGate;  // tests only: holds reads on the reader threads

  kj::Duration shutdownDeadline = 2 * kj::SECONDS;
  kj::Duration rescanInterval = 5 * kj::SECONDS;
  kj::Duration scanProgressInterval = 1 * kj::SECONDS;  // scanProgress events while hashing
  // Files changed this shortly before they were hashed are hashed again by the next scan
  // (library::ScanOptions::racyWindowNs).
  kj::Duration racyWindow = 2 * kj::SECONDS;
  kj::Duration livenessInterval = 500 * kj::MILLISECONDS;
  kj::Duration reconnectMin = 250 * kj::MILLISECONDS;  // static peer redial backoff, doubling
  kj::Duration reconnectMax = 10 * kj::SECONDS;
  kj::Duration restartBackoff = 5 * kj::SECONDS;  // Restart policy of supervised services
  // handshakeFailed events: at most one per interval, the rest counted into the next.
  kj::Duration failureReportInterval = 1 * kj::SECONDS;
  // A peer's GetLibrary answered busy/unavailable is asked again after its retryAfterMs, but not
  // sooner than this.
  kj::Duration syncRetryMin = 100 * kj::MILLISECONDS;
  // A peer whose library digest keeps failing after this many fresh snapshots is dropped.
  uint32_t maxResyncs = 3;
  // After Stopped, how long the last services (the control socket telling its subscribers) get
  // to finish before they are cancelled.
  kj::Duration lastServicesGrace = 300 * kj::MILLISECONDS;

  // The clock an answer's arrival time is read from; null: the one the loop's timer follows. A test
  // sets a virtual one to stand for a loop whose timer lags behind the arrivals.
  kj::Maybe<const kj::MonotonicClock&> clock;

  // Test hook: awaited when a connection's TLS phase has completed, before the runtime acts on
  // it. A test uses it to let other work (a shutdown) run inside that window.
  kj::Maybe<kj::Function<kj::Promise<void>(Runtime&)>> afterTlsHook;
};

// Why `address` ("host:port", "[v6]:port") cannot be used, or null. A listen address may use
// port 0 (any free port) and host `*` (every interface); a peer address needs a real port.
enum class AddressUse : uint8_t { listen, dial };
kj::Maybe<kj::String> checkAddress(kj::StringPtr address, AddressUse use);
// The host part of a checked address (brackets of an IPv6 literal kept).
kj::String hostOf(kj::StringPtr address);

// Why `name` cannot be our display name (the wire's own rules for names), or null.
kj::Maybe<kj::String> checkName(kj::StringPtr name);

}  // namespace shoal::peer
