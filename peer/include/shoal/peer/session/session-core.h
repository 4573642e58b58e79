// SessionCore: the sans-I/O protocol state machine of one connection (docs/protocol.md §4-§11).
// Frames, failures and `now` go in; frames to send, events and "close" come out. It owns no
// stream, clock or thread, so tests and fuzzers drive it directly; Session is its KJ driver.
#pragma once

#include <capnp/message.h>
#include <kj/map.h>
#include <kj/one-of.h>
#include <kj/time.h>
#include <kj/vector.h>
#include <shoal/codec/frame.h>
#include <shoal/codec/summary.h>

namespace shoal::peer {

using PeerId = codec::Digest;

enum class Role : uint8_t { initiator, responder };

struct SessionConfig {
  codec::Limits limits;       // ours: maxFrameBytes and maxChunkBytes are announced
  uint32_t maxInFlight = 64;  // announced: requests we accept outstanding from the peer
  kj::Duration handshakeTimeout = 10 * kj::SECONDS;
  kj::Duration idleTimeout = 15 * kj::SECONDS;  // silence before we Ping
  kj::Duration deadTimeout = 45 * kj::SECONDS;  // silence before we drop the connection
  kj::Duration drainTimeout = 1 * kj::SECONDS;  // Goodbye drain deadline
  uint32_t busyRetryAfterMs = 100;
  // While more than this is waiting to be written to the peer, we read no further frames from
  // it: a peer that sends requests without reading the answers only stalls itself. Two peers
  // that both stop reading with this much queued each way would wait for each other until the
  // dead timeout ends the connection; per-direction flow-control windows (HTTP/2's) would be the
  // complete answer, and maxInFlight keeps well-behaved peers far below the mark.
  size_t maxWriteBacklogBytes = 16 * 1024 * 1024;
  uint16_t versionMin = 1;
  uint16_t versionMax = 1;
};

// What we announce in Hello / HelloAck.
struct LocalPeer {
  PeerId id;
  kj::String name;
  kj::Array<kj::String> features;
  codec::Summary library;
  uint64_t instanceId;
};

// What the other side announced.
struct RemotePeer {
  PeerId id;
  kj::String name;
  kj::Array<kj::String> features;  // after the handshake: the negotiated intersection
  codec::Summary library;
  uint32_t maxFrameBytes;
  uint32_t maxInFlight;
  uint32_t maxChunkBytes;
  uint64_t instanceId;
  uint16_t version = 0;  // negotiated
};

enum class CloseReason : uint8_t {
  goodbye,        // drained after a Goodbye (ours or theirs)
  peerClosed,     // EOF at a frame boundary without a Goodbye
  peerError,      // the peer sent a connection-level Error
  protocolError,  // we sent a connection-level Error
  rejected,       // Reject sent or received
  handshakeTimeout,
  deadTimeout,     // nothing received for SessionConfig::deadTimeout
  drainTimeout,    // the Goodbye drain did not finish in time
  transportError,  // reset, unclean TLS close, I/O error
  local,           // the owner closed without Goodbye
};
kj::StringPtr name(CloseReason reason);

namespace event {
// Responder only: a valid Hello arrived; call acceptHello() or rejectHello() before the next input.
struct HelloReceived {
  RemotePeer peer;
};
struct Established {
  RemotePeer peer;
};
struct Rejected {
  wire::ErrorCode code;
  kj::String message;
};
// A request from the peer, to be answered with answer()/answerError() exactly once.
struct IncomingRequest {
  uint64_t id;
  codec::InboundFrame frame;
};
// The peer cancelled request `id`; Error{cancelled} was already sent, stop working on it.
struct RequestCancelled {
  uint64_t id;
};
// A page or the final answer to one of our requests.
struct Response {
  uint64_t id;
  codec::InboundFrame frame;
  bool terminal;
};
// One of our requests ended without a response: Error from the peer, or failed locally.
struct RequestFailed {
  uint64_t id;
  wire::ErrorCode code;
  kj::String message;
  uint32_t retryAfterMs;
  bool local;  // true: the connection ended or is draining; the request may be retried elsewhere
};
struct LibraryChanged {
  codec::Summary summary;
};
// The peer said Goodbye: mark it gone at once.
struct GoodbyeReceived {
  wire::GoodbyeReason reason;
  kj::String message;
  uint64_t lastRequestId;
};
// Exactly once, last.
struct Closed {
  CloseReason reason;
  kj::String detail;
};
}  // namespace event

using SessionEvent =
    kj::OneOf<event::HelloReceived, event::Established, event::Rejected, event::IncomingRequest,
              event::RequestCancelled, event::Response, event::RequestFailed, event::LibraryChanged,
              event::GoodbyeReceived, event::Closed>;

class SessionCore {
 public:
  enum class State : uint8_t {
    awaitingHello,     // responder, before Hello
    awaitingVerdict,   // responder, Hello received, the owner decides
    awaitingHelloAck,  // initiator, Hello sent
    established,
    draining,  // Goodbye sent or received: finishing what is in flight
    closed,    // nothing more is read; flush what is queued, then end the transport
  };

  // `authenticated` is the peer id the transport proved (TLS key), or null in plaintext mode.
  SessionCore(Role role, const SessionConfig& config, LocalPeer local,
              kj::Maybe<PeerId> authenticated, kj::TimePoint now);
  KJ_DISALLOW_COPY(SessionCore);

  // --- inputs ---------------------------------------------------------------------------------
  void onFrame(codec::InboundFrame frame, kj::TimePoint now);
  void onDecodeFailure(codec::Failure failure, kj::TimePoint now);
  void onEndOfStream(kj::TimePoint now);
  void onTransportError(kj::StringPtr description);
  void onTick(kj::TimePoint now);  // timers: handshake, ping, dead peer, drain

  void acceptHello(kj::TimePoint now);
  void rejectHello(wire::ErrorCode code, kj::StringPtr message);

  // Sends a request (GetLibrary, GetManifest or GetChunk; its id field is assigned here), or queues
  // it until the peer's maxInFlight allows. Returns the id. While draining or closed the request
  // fails at once with a local RequestFailed event.
  uint64_t request(kj::Own<capnp::MessageBuilder> frame);
  // We no longer want the answer: Cancel{id} is sent (or the queued request dropped) and no event
  // for `id` follows.
  void cancel(uint64_t id);

  // Answers the peer's request `id` (the frame's id field must already be `id`). `terminal` marks
  // the final page. Returns false when the request is no longer live (cancelled, answered, or the
  // connection closing): the caller stops producing pages.
  bool answer(uint64_t id, kj::Own<capnp::MessageBuilder> frame, bool terminal);
  bool answerError(uint64_t id, wire::ErrorCode code, kj::StringPtr message,
                   uint32_t retryAfterMs = 0);

  void notifyLibraryChanged(const codec::Summary& summary);
  // Starts the Goodbye drain (or, before the handshake completed, closes).
  void goodbye(wire::GoodbyeReason reason, kj::StringPtr message, kj::TimePoint now);
  // Ends at once: connection-level Error{0, code} when established, then closed.
  void abort(wire::ErrorCode code, kj::StringPtr message);

  // --- outputs --------------------------------------------------------------------------------
  kj::Vector<kj::Own<capnp::MessageBuilder>> takeOutgoing();
  kj::Vector<SessionEvent> takeEvents();
  // The earliest time onTick() has something to do.
  kj::Maybe<kj::TimePoint> nextDeadline() const;
  // Only the deadlines that must be exact: the handshake and the Goodbye drain. Liveness
  // (ping, dead peer) tolerates a coarse periodic tick.
  kj::Maybe<kj::TimePoint> nextHardDeadline() const;

  State state() const { return currentState; }
  bool isEstablished() const {
    return currentState == State::established || currentState == State::draining;
  }
  bool isClosed() const { return currentState == State::closed; }
  // Every answer we owe is queued: once the queue is written, end our write side.
  bool wantsWriteClose() const { return writeCloseWanted; }
  kj::Maybe<const RemotePeer&> remote() const;
  uint32_t incomingInFlight() const { return incoming.size(); }
  uint32_t outgoingInFlight() const { return outgoing.size(); }

 private:
  struct Incoming {
    wire::Frame::Which kind;
  };
  struct Outgoing {
    wire::Frame::Which kind;
    bool cancelled = false;  // Cancel sent; the terminal answer still frees the slot
    uint32_t nextPage = 0;
    kj::Maybe<wire::Frame::Which> answerKind;  // snapshot or delta, fixed by the first page
  };
  struct Queued {
    uint64_t id;
    kj::Own<capnp::MessageBuilder> frame;
  };

  Role role;
  const SessionConfig& config;
  LocalPeer local;
  kj::Maybe<PeerId> authenticated;
  State currentState;
  kj::Maybe<RemotePeer> peer;

  kj::Vector<kj::Own<capnp::MessageBuilder>> outgoingFrames;
  kj::Vector<SessionEvent> events;

  kj::HashMap<uint64_t, Incoming> incoming;  // the peer's requests we still owe an answer
  uint64_t lastIncomingId = 0;
  kj::Maybe<uint64_t> goodbyeLastId;  // set once we sent Goodbye

  kj::HashMap<uint64_t, Outgoing> outgoing;  // our requests sent and not yet answered
  kj::Vector<Queued> queued;                 // our requests waiting for a slot, from queuedHead
  size_t queuedHead = 0;
  uint64_t lastOutgoingId = 0;  // last id assigned
  uint64_t lastSentId = 0;      // last id actually sent

  kj::TimePoint handshakeDeadline;
  kj::TimePoint lastReceived;
  bool pingSent = false;
  uint64_t pingNonce = 0;
  kj::Maybe<kj::TimePoint> drainDeadline;
  bool peerSaidGoodbye = false;
  bool writeCloseWanted = false;

  void send(kj::Own<capnp::MessageBuilder> frame);
  void sendError(uint64_t id, wire::ErrorCode code, kj::StringPtr message, uint32_t retryAfterMs);
  void protocolError(kj::StringPtr message, wire::ErrorCode code = wire::ErrorCode::PROTOCOL);
  void close(CloseReason reason, kj::StringPtr detail);
  void failLocally(uint64_t id, wire::ErrorCode code, kj::StringPtr message);
  void failQueued(wire::ErrorCode code, kj::StringPtr message);
  void failAllOutgoing(wire::ErrorCode code, kj::StringPtr message);

  template <typename Builder>
  void introduce(Builder out, kj::ArrayPtr<const kj::String> features) const;
  template <typename Reader>
  RemotePeer introduced(Reader in, uint16_t version) const;
  void sendHello();
  void onHandshakeFrame(wire::Frame::Reader root);
  void onPeerError(wire::Error::Reader error);
  void onHello(wire::Hello::Reader hello);
  void onHelloAck(wire::HelloAck::Reader ack);
  void onRequest(codec::InboundFrame frame);
  void onCancel(uint64_t id);
  void onAnswer(codec::InboundFrame frame);
  void onGoodbye(wire::Goodbye::Reader goodbye, kj::TimePoint now);
  void established();
  void pump();
  void checkDrained();
  bool identityMatches(const PeerId& claimed, kj::StringPtr field);
};

}  // namespace shoal::peer
