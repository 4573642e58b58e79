// Session: the KJ driver around SessionCore for one connection. One reader loop, one chained
// writer, this connection's serving tasks and its exact deadlines (handshake, drain) — all
// started by run(), which resolves only once every one of them has finished.
#pragma once

#include <kj/async.h>
#include <kj/function.h>
#include <kj/timer.h>
#include <shoal/codec/frame-reader.h>
#include <shoal/codec/frame-writer.h>
#include <shoal/codec/frames.h>
#include <shoal/peer/session/session-core.h>
#include <shoal/peer/transport/transport.h>

namespace shoal::peer {

class Session;

struct Rejection {
  wire::ErrorCode code;
  kj::String message;
};

// How a request of ours ended without a response.
struct RequestError {
  wire::ErrorCode code;
  kj::String message;
  uint32_t retryAfterMs;
  bool local;  // the connection ended or is draining; retry elsewhere
};

// The terminal answer to one of our requests.
using Reply = kj::OneOf<codec::InboundFrame, RequestError>;

// What the owner of sessions provides. Every callback runs on the event loop, synchronously
// inside the session's own processing: keep them short and never destroy the session from one.
class SessionHandler {
 public:
  virtual ~SessionHandler() noexcept(false) = default;
  // Responder only: accept (null) or refuse a valid Hello — trust, load, shutting down.
  virtual kj::Maybe<Rejection> onHello(Session& session, const RemotePeer& peer) = 0;
  virtual void onEstablished(Session& session) = 0;
  // Answers request `id`: the pages in order (the last one terminal) or one Error frame. Each
  // frame must fit the peer's maxFrameBytes. A rejected promise is answered Error{internal}.
  virtual kj::Promise<kj::Array<codec::FrameBuilder>> serve(Session& session, uint64_t id,
                                                            codec::InboundFrame request) = 0;
  // The peer cancelled request `id`; Error{cancelled} is already sent and a late answer is
  // dropped, so this only lets the server stop early.
  virtual void onRequestCancelled(Session& session, uint64_t id) {
    (void)session;
    (void)id;
  }
  virtual void onLibraryChanged(Session& session, const codec::Summary& summary) = 0;
  virtual void onGoodbye(Session& session, const event::GoodbyeReceived& goodbye) = 0;
  // The writer has ended: nothing more will be sent on this connection.
  virtual void onWriterDone(Session& session) = 0;
  virtual void onClosed(Session& session, const event::Closed& closed) = 0;
};

class Session {
 public:
  // `startedAt` is when the connection was accepted or dialled: the handshake deadline counts
  // from there, TLS included. `generation` tells reconnections of the same peer apart.
  Session(kj::Own<Transport> transport, Role role, const SessionConfig& config, LocalPeer local,
          kj::Timer& timer, SessionHandler& handler, kj::TimePoint startedAt, uint64_t generation);
  ~Session() noexcept(false);
  KJ_DISALLOW_COPY(Session);

  // Drives the connection until it has ended and everything this session started has finished.
  // Never rejects: how it ended is reported through SessionHandler::onClosed().
  kj::Promise<void> run();

  // Sends a request; the promise resolves with the terminal answer, `onPage` sees every earlier
  // page. Dropping the promise cancels the request (Cancel{id} on the wire).
  kj::Promise<Reply> request(
      codec::FrameBuilder frame,
      kj::Maybe<kj::Function<void(const codec::InboundFrame&)>> onPage = nullptr);

  void goodbye(wire::GoodbyeReason reason, kj::StringPtr message);
  void notifyLibraryChanged(const codec::Summary& summary);
  void abort(wire::ErrorCode code, kj::StringPtr message);
  // Liveness: lets the core send a Ping or drop a silent peer. Called periodically by the owner.
  void tick();

  Role role() const { return sessionRole; }
  uint64_t generation() const { return sessionGeneration; }
  kj::Maybe<PeerId> authenticatedPeer() const { return transport->peerId(); }
  kj::Maybe<const RemotePeer&> remote() const { return core.remote(); }
  bool isEstablished() const { return core.isEstablished(); }
  bool isClosed() const { return core.isClosed(); }
  kj::Maybe<const event::Closed&> closedEvent() const { return closed; }
  kj::Maybe<const Rejection&> rejection() const { return rejectedWith; }
  uint64_t bytesRead() const { return reader.bytesRead(); }
  uint64_t bytesWritten() const { return writer.bytesWritten(); }
  size_t queuedBytes() const { return writer.queuedBytes(); }
  // Resolves once what waits to be written to the peer is below maxWriteBacklogBytes: a handler
  // that produces answers only then holds at most one beyond the mark for a peer that stops
  // reading (requests that arrive together are all in progress at once, up to maxInFlight).
  kj::Promise<void> whenWritable() { return writer.whenQueuedBelow(config.maxWriteBacklogBytes); }

 private:
  class ReplyAdapter;
  struct Pending {
    ReplyAdapter* adapter;
  };

  kj::Own<Transport> transport;
  Role sessionRole;
  const SessionConfig& config;
  kj::Timer& timer;
  SessionHandler& handler;
  uint64_t sessionGeneration;
  SessionCore core;
  codec::FrameReader reader;
  codec::FrameWriter writer;
  kj::HashMap<uint64_t, Pending> pending;
  kj::Maybe<event::Closed> closed;
  kj::Maybe<Rejection> rejectedWith;

  kj::Maybe<kj::TimePoint> armedDeadline;
  kj::Maybe<kj::Own<kj::PromiseFulfiller<void>>> deadlineChanged;
  kj::Maybe<kj::ForkedPromise<void>> writerDone;

  class ServeErrors final : public kj::TaskSet::ErrorHandler {
   public:
    void taskFailed(kj::Exception&& exception) override;
  };
  ServeErrors serveErrors;
  kj::Maybe<kj::Own<kj::TaskSet>> serving;       // destroyed when the session ends: cancels serving
  kj::Promise<void> lastServed = kj::READY_NOW;  // the request served last has been answered
  kj::HashSet<uint64_t> cancelledWaiting;        // cancelled before their turn to be served

  void pump();
  void dispatch(SessionEvent& event);
  void startServing(uint64_t id, codec::InboundFrame frame);
  void settle(uint64_t id, Reply reply);
  kj::Promise<void> readLoop();
  bool onRead(codec::ReadResult result);
  kj::Promise<void> deadlineLoop();
  kj::Promise<void> writeLoop();
  kj::Promise<void> finish();
};

}  // namespace shoal::peer
