// Everything a runtime is configured with: folders, addresses, trust, limits and timers. Every
// limit the spec names is here with its default, and `shoal serve` exposes the ones users tune.
#pragma once

#include <kj/string.h>
#include <kj/time.h>
#include <kj/vector.h>
#include <shoal/peer/session/session-core.h>

namespace shoal::peer {

enum class TrustMode : uint8_t { open, pinned };

struct RuntimeConfig {
  kj::String libraryDir;
  kj::String stateDir;  // default: <libraryDir>/.shoal
  kj::String listen = kj::str("0.0.0.0:4747");
  kj::Vector<kj::String> peers;  // static peers to dial, host:port
  TrustMode trust = TrustMode::open;
  kj::Vector<PeerId> allow;  // pinned mode: the only ids accepted
  bool plaintext = false;    // tests and benchmarks only; both sides must agree
  kj::String name;           // display name; default: the host name

  SessionConfig session;
  uint32_t maxConnections = 64;  // established sessions ([HS-11])
  uint32_t maxHandshakes = 64;   // connections still in TLS/Hello at once
  uint32_t chunkSize = 1 << 20;  // for manifests we build
  uint32_t historyRevs = 64;

  kj::Duration shutdownDeadline = 2 * kj::SECONDS;
  kj::Duration rescanInterval = 5 * kj::SECONDS;
  kj::Duration livenessInterval = 500 * kj::MILLISECONDS;
  kj::Duration reconnectMin = 250 * kj::MILLISECONDS;  // static peer redial backoff, doubling
  kj::Duration reconnectMax = 10 * kj::SECONDS;
  kj::Duration restartBackoff = 5 * kj::SECONDS;  // Restart policy of supervised services

  bool controlSocket = true;  // serve the control API at <stateDir>/control.sock
};

}  // namespace shoal::peer
