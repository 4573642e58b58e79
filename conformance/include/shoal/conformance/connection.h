// One scripted connection to the target: the harness's end of a TCP connection (plaintext or the
// harness's own TLS), a read loop that is never cancelled (so a step's timeout never loses half a
// frame), the frames and closes it saw, a write chain for frames and hand-made bytes, and the
// background duties of a well-behaved peer (answer Ping, serve the target's requests from a
// Source) unless the case turns them off. Every byte and event goes to the case's transcript, and
// every frame from the target through the Monitor.
#pragma once

#include <kj/async-io.h>
#include <kj/one-of.h>
#include <kj/time.h>
#include <shoal/codec/frame.h>
#include <shoal/conformance/frames.h>
#include <shoal/conformance/monitor.h>
#include <shoal/conformance/tls-wire.h>
#include <shoal/conformance/transcript.h>

namespace shoal::conformance {

class Connection;

// Answers the target's requests on a connection (an honest, slow, lying or vanishing library,
// source.h). Called from the read loop; may answer at once, later (on the connection's tasks), or
// never.
class Source {
 public:
  virtual ~Source() noexcept(false) = default;
  virtual void onRequest(Connection& connection, const codec::InboundFrame& request) = 0;
};

// A frame from the target; `background` when an automatic duty consumed it.
struct FrameEvent {
  codec::InboundFrame frame;
};
// Bytes from the target that are not a valid frame (the decoder is then stopped).
struct BadBytes {
  codec::Failure failure;
};
// The end of the connection as the harness saw it.
struct Closed {
  bool closeNotify = false;  // TLS close_notify arrived first
  StreamEnd::Kind end = StreamEnd::fin;
  bool midFrame = false;        // the stream ended inside a frame
  kj::Maybe<kj::String> alert;  // a fatal TLS alert arrived first
  kj::String detail;

  // TLS: close_notify then FIN at a frame boundary; plaintext: FIN at a frame boundary ([TR-12]).
  bool clean(bool tls) const;
  kj::String describe(bool tls) const;
};
using Event = kj::OneOf<FrameEvent, BadBytes, Closed>;

// What the target announced in its Hello / HelloAck.
struct TheirHello {
  PeerId peerId;
  uint64_t instanceId;
  uint32_t maxFrameBytes;
  uint32_t maxInFlight;
  uint32_t maxChunkBytes;
  codec::Summary library;
  uint16_t versionMin, versionMax;  // HelloAck: both = its chosen version
};

struct ConnectionContext {
  kj::Timer& timer;
  Transcript& transcript;
  kj::Function<void(Violation)> onViolation;
};

class Connection {
 public:
  Connection(ConnectionContext& context, uint32_t number, Role targetRole, kj::Own<Channel> channel,
             Announce ours);
  ~Connection() noexcept(false);
  KJ_DISALLOW_COPY(Connection);

  uint32_t number() const { return index; }
  Role targetRole() const { return role; }
  bool isTls() const { return channel->isTls(); }
  kj::Maybe<const TlsFacts&> tls() const { return channel->facts(); }
  bool sessionTicketReceived() const { return channel->sessionTicketReceived(); }
  kj::Maybe<kj::Array<kj::byte>> sessionData() const { return channel->sessionData(); }
  // Bytes that are not frames are expected here (a TLS record on a plaintext connection): they
  // end the connection's frames but break no requirement.
  void tolerateBadBytes() { badBytesExpected = true; }
  const Announce& ours() const { return announce; }
  Announce& ours() { return announce; }
  kj::Maybe<const TheirHello&> theirs() const { return their; }
  Monitor& monitor() { return checks; }

  // --- sending: queued in order on one write chain ---------------------------------------------
  void send(kj::Own<capnp::MessageBuilder> frame, bool background = false);
  void sendBytes(kj::ArrayPtr<const kj::byte> bytes, kj::StringPtr what);
  // The frames in one write (one TLS record when they fit): a target reads them together.
  void sendTogether(kj::ArrayPtr<kj::Own<capnp::MessageBuilder>> frames);
  // The bytes in writes of `pieces` bytes each (the last one shorter).
  void sendSplit(kj::ArrayPtr<const kj::byte> bytes, size_t pieces, kj::StringPtr what);
  // One byte per `interval`; resolves when the last byte went out or the connection failed.
  kj::Promise<void> trickle(kj::Array<kj::byte> bytes, kj::Duration interval, kj::StringPtr what);
  kj::Promise<void> flushed();
  // TLS close_notify (then optionally FIN); a plaintext FIN; a reset.
  kj::Promise<void> closeNotify();
  void fin();
  void reset();

  // Next request id the harness uses on this connection (strictly increasing).
  uint64_t nextRequestId() { return ++lastRequestId; }

  // --- receiving -------------------------------------------------------------------------------
  // The next event no background duty consumed, within `timeout`; null on timeout.
  kj::Promise<kj::Maybe<Event>> next(kj::Duration timeout);
  bool closed() const { return sawClose; }
  kj::Maybe<const Closed&> closeEvent() const { return closeSeen; }

  // --- background duties -------------------------------------------------------------------------
  void answerPings(bool on) { pongs = on; }
  void setSource(kj::Maybe<Source&> source) { serving = source; }
  // Frames of these kinds are delivered to the case instead of a background duty.
  void deliver(Which kind) { delivered.add(kind); }

  kj::Timer& timer() { return context.timer; }
  kj::TaskSet& tasks() { return *work; }
  void note(EntryKind kind, kj::String text);

 private:
  class ErrorHandler final : public kj::TaskSet::ErrorHandler {
   public:
    explicit ErrorHandler(Connection& c) : c(c) {}
    void taskFailed(kj::Exception&& e) override;
    Connection& c;
  };

  kj::Promise<void> readLoop();
  void onBytes(kj::ArrayPtr<const kj::byte> bytes);
  void onFrame(codec::InboundFrame frame);
  bool handledInBackground(const codec::InboundFrame& frame);
  void push(Event event);
  void enqueueWrite(kj::Array<kj::byte> bytes);
  void learnHello(const codec::InboundFrame& frame);

  ConnectionContext& context;
  uint32_t index;
  Role role;
  kj::Own<Channel> channel;
  Announce announce;
  Monitor checks;
  kj::Maybe<TheirHello> their;
  codec::FrameDecoder decoder;
  bool decoderFailed = false;
  bool badBytesExpected = false;
  uint64_t lastRequestId = 0;

  kj::Vector<Event> inbox;
  size_t head = 0;
  kj::Maybe<kj::Own<kj::PromiseFulfiller<void>>> arrived;
  bool sawClose = false;
  kj::Maybe<Closed> closeSeen;
  bool closeNotifySeen = false;
  kj::Maybe<kj::String> alertSeen;

  bool pongs = true;
  kj::Maybe<Source&> serving;
  kj::Vector<Which> delivered;

  kj::ForkedPromise<void> writes = kj::Promise<void>(kj::READY_NOW).fork();
  bool writeFailed = false;
  ErrorHandler handler{*this};
  kj::Own<kj::TaskSet> work = kj::heap<kj::TaskSet>(handler);
  kj::Promise<void> reading = nullptr;  // last: destroyed first
};

}  // namespace shoal::conformance
