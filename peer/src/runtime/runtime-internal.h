// Runtime internals shared by runtime.c++, connections.c++ and services.c++.
#pragma once

#include <shoal/peer/runtime/runtime.h>

namespace shoal::peer {

// One TCP connection from accept/dial to its end: the TLS phase, then its Session, then the
// peer-scope work (library sync) that must not outlive it. Owned by its task in
// Runtime::connections; removes itself from Runtime::live when destroyed, on every path.
struct Runtime::Connection {
  Connection(Runtime& runtime, uint64_t generation, Role role, kj::String address,
             kj::TimePoint startedAt);
  ~Connection() noexcept(false);
  KJ_DISALLOW_COPY(Connection);

  Runtime& runtime;
  uint64_t generation;
  Role role;
  kj::String address;
  kj::TimePoint startedAt;
  kj::Canceler handshake;  // cuts the TLS phase at shutdown
  bool inHandshake = true;
  kj::Maybe<PeerId> peerId;  // from TLS, or from Hello in plaintext mode
  kj::Maybe<kj::Own<kj::PromiseFulfiller<kj::Maybe<PeerId>>>> ended;  // a dialler waits on it

  library::LibraryView view;
  bool syncing = false;
  bool syncAgain = false;
  uint32_t resyncs = 0;

  kj::Maybe<kj::Own<Session>> session;
  // Declared last so it is destroyed first: its tasks hold requests of `session`.
  kj::Own<kj::TaskSet> tasks;

  void leaveHandshake();
};

void fillSummary(control::Summary::Builder out, const codec::Summary& summary);

}  // namespace shoal::peer
