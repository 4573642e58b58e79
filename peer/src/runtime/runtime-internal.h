// Runtime internals shared by runtime.c++, connections.c++ and services.c++.
#pragma once

#include <shoal/peer/runtime/runtime.h>

namespace shoal::peer {

// How a connection ended, as far as it got: what the dialler's backoff and the failure reports
// need. Filled in as the connection goes (connections.c++).
struct Runtime::ConnectionEnd {
  enum class Kind : uint8_t {
    established,  // a session was established (and has ended; a discovery dial is told at once)
    failed,       // ended before a session: unreachable, TLS, timeout, closed, dropped
    refused,      // the peer refused our Hello (Reject) or ended the handshake (Error)
    self,         // the other end is this very peer
  };
  Kind kind = Kind::failed;
  kj::StringPtr stage = "tls";  // admission | tls | hello
  kj::String code = kj::str("closed");
  kj::String message = kj::str("the connection ended");
  kj::Maybe<PeerId> peer;
};

// One TCP connection from accept/dial to its end: the TLS phase, then its Session, then the
// peer-scope work (library sync) that must not outlive it. It is its session's handler: what the
// session reports reaches the runtime with the connection it concerns, never looked up. Owned by
// its task in Runtime::connections; removes itself from Runtime::live (and an inbound one from the
// admission) when destroyed, on every path.
struct Runtime::Connection final : public SessionHandler {
  Connection(Runtime& runtime, uint64_t generation, Role role, kj::String address,
             kj::TimePoint startedAt, library::LibrarySyncLimits syncLimits);
  ~Connection() noexcept(false);
  KJ_DISALLOW_COPY(Connection);

  Runtime& runtime;
  uint64_t generation;
  Role role;
  kj::String address;
  kj::TimePoint startedAt;
  // Cuts the connection before its session is established: at shutdown, or when the admission
  // drops it. Never used once the session is established.
  kj::Canceler handshake;
  ConnectionEnd end;
  kj::Maybe<kj::Own<kj::PromiseFulfiller<ConnectionEnd>>> ended;  // a dialler waits on it
  // Why we dialled (outbound only): what `shoal peers` reports as how the peer was found.
  control::FoundBy foundBy = control::FoundBy::INCOMING;
  kj::TimePoint foundAt;

  // The request served last has its answer, or its chunk is being read and this connection's reads
  // are below ChunkReaderLimits::maxReadingBytesPerSession.
  kj::Promise<void> lastServed = kj::READY_NOW;
  uint64_t readingBytes = 0;        // chunk bytes of this connection's requests being read
  kj::HashSet<uint64_t> cancelled;  // cancelled by the peer before their turn to be served

  library::LibrarySync sync;           // the peer's library, as we follow it
  kj::Maybe<kj::TimePoint> syncTimer;  // the deadline a timer is armed for

  kj::Maybe<kj::Own<Session>> session;
  // Declared last so it is destroyed first: its tasks hold requests of `session`.
  kj::Own<kj::TaskSet> tasks;

  bool isEstablished() const { return end.kind == ConnectionEnd::Kind::established; }
  Session& established() { return *KJ_ASSERT_NONNULL(session); }

  // SessionHandler: to the runtime, with this connection.
  kj::Maybe<Rejection> onHello(Session& s, const RemotePeer& peer) override;
  void onEstablished(Session& s) override;
  kj::Promise<kj::Array<codec::FrameBuilder>> serve(Session& s, uint64_t id,
                                                    codec::InboundFrame request) override;
  void onRequestCancelled(Session& s, uint64_t id) override;
  void onLibraryChanged(Session& s, const codec::Summary& summary) override;
  void onGoodbye(Session& s, const event::GoodbyeReceived& goodbye) override;
  void onWriterDone(Session& s) override;
  void onClosed(Session& s, const event::Closed& closed) override;
};

// A static peer (--peer) and its redial state, for the runtime's lifetime.
struct Runtime::StaticPeer {
  kj::String address;
  kj::Maybe<PeerId> knownId;  // learned from its first session
  RedialBackoff backoff;
};

}  // namespace shoal::peer
