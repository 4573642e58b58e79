// SessionCore driven with a virtual clock and no sockets: frames travel between two cores through
// the real codec (encode + decode + validate), so every frame either side sends is also checked.
#include <shoal/peer/session/session-core.h>

#include <gtest/gtest.h>
#include <shoal/codec/frame.h>
#include <shoal/codec/frames.h>

#include "test-peers.h"

namespace shoal::peer {
namespace {

using Which = wire::Frame::Which;
using codec::rootOf;
using test::chunkAnswer;
using test::idOf;
using test::snapshotPage;

codec::FrameBuilder getChunk(uint32_t length = 4096) {
  return test::getChunkRequest(length);
}

template <typename T>
kj::Vector<T*> eventsOf(kj::Vector<SessionEvent>& events) {
  kj::Vector<T*> out;
  for (auto& e : events) {
    KJ_IF_MAYBE (t, e.tryGet<T>()) {
      out.add(t);
    }
  }
  return out;
}

// Two cores joined by the codec. A is the initiator, B the responder.
struct Pair {
  SessionConfig configA, configB;
  kj::TimePoint now = kj::origin<kj::TimePoint>();
  kj::Maybe<SessionCore> a, b;
  kj::Vector<SessionEvent> eventsA, eventsB;
  bool autoAccept = true;
  kj::Vector<kj::Array<kj::byte>> wireAtoB, wireBtoA;  // everything sent, for inspection

  void start(kj::Maybe<PeerId> bSeesA = nullptr, kj::Maybe<PeerId> aSeesB = nullptr) {
    a.emplace(Role::initiator, configA, test::testPeer(1, "alpha"), aSeesB, now);
    b.emplace(Role::responder, configB, test::testPeer(2, "beta"), bSeesA, now);
  }
  SessionCore& A() { return KJ_ASSERT_NONNULL(a); }
  SessionCore& B() { return KJ_ASSERT_NONNULL(b); }

  // Delivers frames both ways until neither side has anything to send.
  void exchange() {
    for (;;) {
      bool movedAB = deliver(A(), B(), wireAtoB);
      bool movedBA = deliver(B(), A(), wireBtoA);
      bool moved = movedAB || movedBA;
      collect();
      if (!moved) return;
    }
  }

  bool deliver(SessionCore& from, SessionCore& to, kj::Vector<kj::Array<kj::byte>>& log) {
    auto frames = from.takeOutgoing();
    for (auto& f : frames) {
      auto bytes = codec::encodeFrame(*f);
      auto decoded =
          codec::decodeFrame(bytes, to.isEstablished() ? codec::Limits() : codec::Limits());
      KJ_SWITCH_ONEOF(decoded) {
        KJ_CASE_ONEOF(frame, codec::InboundFrame) {
          to.onFrame(kj::mv(frame), now);
        }
        KJ_CASE_ONEOF(failure, codec::Failure) {
          ADD_FAILURE() << "a core sent an invalid frame: " << failure.message.cStr();
        }
      }
      log.add(kj::mv(bytes));
    }
    return frames.size() > 0;
  }

  void collect() {
    for (auto& e : A().takeEvents())
      eventsA.add(kj::mv(e));
    for (auto& e : B().takeEvents()) {
      if (autoAccept && e.is<event::HelloReceived>()) B().acceptHello(now);
      eventsB.add(kj::mv(e));
    }
  }

  // Injects a raw frame into `to` as if the other side had sent it.
  void inject(SessionCore& to, capnp::MessageBuilder& message) {
    auto decoded = codec::decodeFrame(codec::encodeFrame(message));
    KJ_IF_MAYBE (failure, decoded.tryGet<codec::Failure>()) {
      KJ_FAIL_ASSERT("injected frame is invalid", failure->message);
    }
    to.onFrame(kj::mv(decoded.get<codec::InboundFrame>()), now);
    collect();
  }

  void handshake() {
    start();
    exchange();
    ASSERT_TRUE(A().isEstablished());
    ASSERT_TRUE(B().isEstablished());
  }
};

codec::FrameBuilder getLibrary() {
  auto frame = codec::newFrame();
  rootOf(*frame).initGetLibrary();
  return frame;
}

CloseReason closedWith(kj::Vector<SessionEvent>& events) {
  auto closed = eventsOf<event::Closed>(events);
  KJ_ASSERT(closed.size() == 1, "exactly one Closed event", closed.size());
  return closed[0]->reason;
}

// --- handshake ----------------------------------------------------------------------------------

TEST(SessionCore, HandshakeEstablishesBothSides) {
  Pair p;
  p.start(idOf(1), idOf(2));
  p.exchange();
  auto estA = eventsOf<event::Established>(p.eventsA);
  auto estB = eventsOf<event::Established>(p.eventsB);
  ASSERT_EQ(estA.size(), 1u);
  ASSERT_EQ(estB.size(), 1u);
  EXPECT_EQ(estA[0]->peer.id, idOf(2));
  EXPECT_EQ(estB[0]->peer.id, idOf(1));
  EXPECT_EQ(estA[0]->peer.name, "beta");
  EXPECT_EQ(estA[0]->peer.version, 1);
  ASSERT_EQ(estA[0]->peer.features.size(), 1u);  // only "delta" is common
  EXPECT_EQ(estA[0]->peer.features[0], "delta");
  EXPECT_EQ(estB[0]->peer.library.rev, 1u);
  EXPECT_EQ(eventsOf<event::HelloReceived>(p.eventsB).size(), 1u);
}

TEST(SessionCore, VersionMismatchIsRejected) {
  Pair p;
  p.configA.versionMin = 2;
  p.configA.versionMax = 3;
  p.start();
  p.exchange();
  auto rejected = eventsOf<event::Rejected>(p.eventsA);
  ASSERT_EQ(rejected.size(), 1u);
  EXPECT_EQ(rejected[0]->code, wire::ErrorCode::UNSUPPORTED_VERSION);
  EXPECT_EQ(closedWith(p.eventsA), CloseReason::rejected);
  EXPECT_EQ(closedWith(p.eventsB), CloseReason::rejected);
  auto decoded = codec::decodeFrame(p.wireBtoA.back());
  auto reject = decoded.get<codec::InboundFrame>().root().getReject();
  EXPECT_EQ(reject.getVersionMin(), 1);
  EXPECT_EQ(reject.getVersionMax(), 1);
}

TEST(SessionCore, AnythingButHelloFirstIsAProtocolError) {
  Pair p;
  p.start();
  p.A().takeOutgoing();  // the Hello never arrives
  p.inject(p.B(), *codec::pingFrame(1));
  EXPECT_EQ(closedWith(p.eventsB), CloseReason::protocolError);
  auto out = p.B().takeOutgoing();
  ASSERT_EQ(out.size(), 1u);
  auto error = rootOf(*out[0]).getError();
  EXPECT_EQ(error.getId(), 0u);
  EXPECT_EQ(error.getCode(), wire::ErrorCode::PROTOCOL);
}

TEST(SessionCore, ErrorWithAnIdBeforeTheHandshakeIsAProtocolError) {
  // [HS-3]: only a connection-level Error (id 0) ends a handshake quietly (found by
  // fuzz_handshake).
  Pair p;
  p.start();
  p.A().takeOutgoing();
  p.inject(p.B(), *codec::errorFrame(5, wire::ErrorCode::BUSY, "not a request of yours"));
  EXPECT_EQ(closedWith(p.eventsB), CloseReason::protocolError);
  auto out = p.B().takeOutgoing();
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(rootOf(*out[0]).getError().getId(), 0u);
  // While Error{0} just closes, sending nothing back.
  Pair q;
  q.start();
  q.A().takeOutgoing();
  q.inject(q.B(), *codec::errorFrame(0, wire::ErrorCode::BUSY, "too many"));
  EXPECT_EQ(closedWith(q.eventsB), CloseReason::peerError);
  EXPECT_EQ(q.B().takeOutgoing().size(), 0u);
}

TEST(SessionCore, SecondHelloIsAProtocolError) {
  Pair p;
  p.handshake();
  auto again = codec::decodeFrame(p.wireAtoB[0]);  // replay A's Hello
  p.B().onFrame(kj::mv(again.get<codec::InboundFrame>()), p.now);
  p.collect();
  EXPECT_EQ(closedWith(p.eventsB), CloseReason::protocolError);
  EXPECT_TRUE(p.B().isClosed());
}

TEST(SessionCore, HandshakeDeadline) {
  Pair p;
  p.start();
  EXPECT_EQ(KJ_ASSERT_NONNULL(p.B().nextDeadline()), p.now + 10 * kj::SECONDS);
  p.B().onTick(p.now + 10 * kj::SECONDS - 1 * kj::MILLISECONDS);
  EXPECT_FALSE(p.B().isClosed());
  p.B().onTick(p.now + 10 * kj::SECONDS);
  p.collect();
  EXPECT_EQ(closedWith(p.eventsB), CloseReason::handshakeTimeout);
}

TEST(SessionCore, HelloClaimingAnotherKeysIdIsRejected) {
  Pair p;
  p.start(idOf(66));  // the TLS key B saw is not the id A claims
  p.exchange();
  EXPECT_EQ(eventsOf<event::Rejected>(p.eventsA)[0]->code, wire::ErrorCode::UNTRUSTED);
  EXPECT_EQ(eventsOf<event::HelloReceived>(p.eventsB).size(), 0u);
  EXPECT_EQ(closedWith(p.eventsB), CloseReason::rejected);
}

TEST(SessionCore, HelloAckClaimingAnotherKeysIdIsRefused) {
  Pair p;
  p.start(nullptr, idOf(66));
  p.exchange();
  EXPECT_EQ(closedWith(p.eventsA), CloseReason::protocolError);
  EXPECT_EQ(eventsOf<event::Established>(p.eventsA).size(), 0u);
  EXPECT_EQ(p.wireAtoB.size(), 1u);  // the Hello only: nothing sent after a bad HelloAck
}

TEST(SessionCore, ConnectionToSelfIsRejected) {
  Pair p;
  p.a.emplace(Role::initiator, p.configA, test::testPeer(2, "beta"), nullptr, p.now);
  p.b.emplace(Role::responder, p.configB, test::testPeer(2, "beta"), nullptr, p.now);
  p.exchange();
  EXPECT_EQ(eventsOf<event::Rejected>(p.eventsA)[0]->code, wire::ErrorCode::UNTRUSTED);
}

TEST(SessionCore, OwnerCanRejectAHello) {
  Pair p;
  p.autoAccept = false;
  p.start();
  p.exchange();
  ASSERT_EQ(p.B().state(), SessionCore::State::awaitingVerdict);
  p.B().rejectHello(wire::ErrorCode::UNTRUSTED, "not on the allow list");
  p.exchange();
  auto rejected = eventsOf<event::Rejected>(p.eventsA);
  ASSERT_EQ(rejected.size(), 1u);
  EXPECT_EQ(rejected[0]->message, "not on the allow list");
}

TEST(SessionCore, InitiatorMustWaitForHelloAck) {
  Pair p;
  p.autoAccept = false;
  p.start();
  p.exchange();
  auto early = getLibrary();
  codec::setRequestId(rootOf(*early), 1);
  p.inject(p.B(), *early);
  EXPECT_EQ(closedWith(p.eventsB), CloseReason::protocolError);
}

// --- requests -----------------------------------------------------------------------------------

TEST(SessionCore, RequestsAreAnsweredExactlyOnce) {
  Pair p;
  p.handshake();
  uint64_t id = p.A().request(getChunk());
  p.exchange();
  auto incoming = eventsOf<event::IncomingRequest>(p.eventsB);
  ASSERT_EQ(incoming.size(), 1u);
  EXPECT_EQ(incoming[0]->id, id);
  EXPECT_TRUE(p.B().answer(id, chunkAnswer(id), true));
  EXPECT_FALSE(p.B().answer(id, chunkAnswer(id), true));  // already answered
  EXPECT_FALSE(p.B().answerError(id, wire::ErrorCode::INTERNAL, "again"));
  p.exchange();
  auto responses = eventsOf<event::Response>(p.eventsA);
  ASSERT_EQ(responses.size(), 1u);
  EXPECT_TRUE(responses[0]->terminal);
  EXPECT_EQ(p.A().outgoingInFlight(), 0u);
  EXPECT_EQ(p.B().incomingInFlight(), 0u);
}

TEST(SessionCore, ResponderAnswersBusyAboveItsLimit) {
  Pair p;
  p.configB.maxInFlight = 2;
  p.handshake();
  // A misbehaving requester that ignores the announced limit.
  for (uint64_t id = 1; id <= 3; ++id) {
    auto frame = getChunk();
    codec::setRequestId(rootOf(*frame), id);
    p.inject(p.B(), *frame);
  }
  EXPECT_EQ(eventsOf<event::IncomingRequest>(p.eventsB).size(), 2u);
  auto out = p.B().takeOutgoing();
  ASSERT_EQ(out.size(), 1u);
  auto error = rootOf(*out[0]).getError();
  EXPECT_EQ(error.getId(), 3u);
  EXPECT_EQ(error.getCode(), wire::ErrorCode::BUSY);
  EXPECT_GT(error.getRetryAfterMs(), 0u);
  EXPECT_FALSE(p.B().isClosed());  // never a disconnect for busy
}

TEST(SessionCore, RequesterStaysWithinThePeersLimit) {
  Pair p;
  p.configB.maxInFlight = 2;
  p.handshake();
  for (int i = 0; i < 5; ++i)
    p.A().request(getChunk());
  p.exchange();
  auto incoming = eventsOf<event::IncomingRequest>(p.eventsB);
  ASSERT_EQ(incoming.size(), 2u);
  EXPECT_EQ(p.A().outgoingInFlight(), 2u);
  p.B().answer(incoming[0]->id, chunkAnswer(incoming[0]->id), true);
  p.exchange();
  EXPECT_EQ(eventsOf<event::IncomingRequest>(p.eventsB).size(), 3u);
}

TEST(SessionCore, CancelEndsARequestWithOneTerminalAnswer) {
  Pair p;
  p.handshake();
  uint64_t id = p.A().request(getChunk());
  p.exchange();
  p.A().cancel(id);
  p.exchange();
  auto cancelled = eventsOf<event::RequestCancelled>(p.eventsB);
  ASSERT_EQ(cancelled.size(), 1u);
  EXPECT_EQ(cancelled[0]->id, id);
  EXPECT_FALSE(p.B().answer(id, chunkAnswer(id), true));  // the cancel was the terminal answer
  EXPECT_EQ(eventsOf<event::Response>(p.eventsA).size(), 0u);
  EXPECT_EQ(eventsOf<event::RequestFailed>(p.eventsA).size(), 0u);  // no event after cancel()
  EXPECT_EQ(p.A().outgoingInFlight(), 0u);  // Error{cancelled} freed the slot
  // Cancel of an unknown id is ignored.
  auto stray = codec::cancelFrame(999);
  p.inject(p.B(), *stray);
  EXPECT_FALSE(p.B().isClosed());
}

TEST(SessionCore, RequestIdsMustIncrease) {
  Pair p;
  p.handshake();
  for (uint64_t id : {5, 5}) {
    auto frame = getChunk();
    codec::setRequestId(rootOf(*frame), id);
    p.inject(p.B(), *frame);
  }
  EXPECT_EQ(closedWith(p.eventsB), CloseReason::protocolError);
}

TEST(SessionCore, AnswersAreCheckedAgainstRequests) {
  {
    Pair p;  // an answer to a request never sent
    p.handshake();
    p.inject(p.A(), *chunkAnswer(77));
    EXPECT_EQ(closedWith(p.eventsA), CloseReason::protocolError);
  }
  {
    Pair p;  // the wrong kind of answer
    p.handshake();
    uint64_t id = p.A().request(getChunk());
    p.exchange();
    p.inject(p.A(), *snapshotPage(id, 0, true));
    EXPECT_EQ(closedWith(p.eventsA), CloseReason::protocolError);
  }
  {
    Pair p;  // pages out of order
    p.handshake();
    uint64_t id = p.A().request(getLibrary());
    p.exchange();
    p.inject(p.A(), *snapshotPage(id, 0, false));
    p.inject(p.A(), *snapshotPage(id, 2, true));
    EXPECT_EQ(closedWith(p.eventsA), CloseReason::protocolError);
  }
}

TEST(SessionCore, PagedAnswersArriveInOrder) {
  Pair p;
  p.handshake();
  uint64_t id = p.A().request(getLibrary());
  p.exchange();
  EXPECT_TRUE(p.B().answer(id, snapshotPage(id, 0, false), false));
  EXPECT_TRUE(p.B().answer(id, snapshotPage(id, 1, false), false));
  EXPECT_TRUE(p.B().answer(id, snapshotPage(id, 2, true), true));
  p.exchange();
  auto responses = eventsOf<event::Response>(p.eventsA);
  ASSERT_EQ(responses.size(), 3u);
  EXPECT_FALSE(responses[0]->terminal);
  EXPECT_FALSE(responses[1]->terminal);
  EXPECT_TRUE(responses[2]->terminal);
}

TEST(SessionCore, RangeFaultIsAnsweredAndTheConnectionContinues) {
  Pair p;
  p.handshake();
  auto frame = getChunk(0);  // length 0: a request-level range error
  codec::setRequestId(rootOf(*frame), 4);
  auto decoded = codec::decodeFrame(codec::encodeFrame(*frame));
  p.B().onDecodeFailure(kj::mv(decoded.get<codec::Failure>()), p.now);
  auto out = p.B().takeOutgoing();
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(rootOf(*out[0]).getError().getId(), 4u);
  EXPECT_EQ(rootOf(*out[0]).getError().getCode(), wire::ErrorCode::RANGE);
  EXPECT_FALSE(p.B().isClosed());

  p.B().onDecodeFailure(codec::fail(codec::CodecError::segmentCount, kj::str("wrapped")), p.now);
  p.collect();
  EXPECT_EQ(closedWith(p.eventsB), CloseReason::protocolError);
}

// --- goodbye, liveness, close -------------------------------------------------------------------

TEST(SessionCore, GoodbyeDrainsInFlightAndRefusesNewRequests) {
  Pair p;
  p.handshake();
  uint64_t first = p.A().request(getChunk());
  uint64_t second = p.A().request(getChunk());
  p.exchange();
  p.B().goodbye(wire::GoodbyeReason::SHUTDOWN, "stopping", p.now);
  EXPECT_FALSE(p.B().wantsWriteClose());  // two answers still owed
  // A request that crosses the Goodbye on the wire: A has not read it yet.
  uint64_t crossing = p.A().request(getChunk());
  p.deliver(p.A(), p.B(), p.wireAtoB);
  p.collect();
  EXPECT_EQ(eventsOf<event::IncomingRequest>(p.eventsB).size(), 2u);  // not the crossing one
  EXPECT_TRUE(p.B().answer(first, chunkAnswer(first), true));
  EXPECT_FALSE(p.B().wantsWriteClose());
  EXPECT_TRUE(p.B().answer(second, chunkAnswer(second), true));
  EXPECT_TRUE(p.B().wantsWriteClose());
  p.exchange();

  auto goodbye = eventsOf<event::GoodbyeReceived>(p.eventsA);
  ASSERT_EQ(goodbye.size(), 1u);
  EXPECT_EQ(goodbye[0]->lastRequestId, second);
  EXPECT_EQ(eventsOf<event::Response>(p.eventsA).size(), 2u);
  bool refused = false;  // B answered the crossing request with shuttingDown
  for (auto& bytes : p.wireBtoA) {
    auto f = codec::decodeFrame(bytes);
    auto root = f.get<codec::InboundFrame>().root();
    if (root.which() == Which::ERROR && root.getError().getId() == crossing) {
      refused = root.getError().getCode() == wire::ErrorCode::SHUTTING_DOWN;
    }
  }
  EXPECT_TRUE(refused);
  auto failed = eventsOf<event::RequestFailed>(p.eventsA);  // A failed it itself on Goodbye
  ASSERT_EQ(failed.size(), 1u);
  EXPECT_EQ(failed[0]->id, crossing);
  EXPECT_TRUE(failed[0]->local);

  uint64_t late = p.A().request(getChunk());  // no new requests to a peer that said Goodbye
  p.collect();
  failed = eventsOf<event::RequestFailed>(p.eventsA);
  ASSERT_EQ(failed.size(), 2u);
  EXPECT_EQ(failed[1]->id, late);
  EXPECT_TRUE(p.A().wantsWriteClose());  // nothing owed either way
  p.A().onEndOfStream(p.now);
  p.B().onEndOfStream(p.now);
  p.collect();
  EXPECT_EQ(closedWith(p.eventsA), CloseReason::goodbye);
  EXPECT_EQ(closedWith(p.eventsB), CloseReason::goodbye);
}

TEST(SessionCore, GoodbyeFailsRequestsAboveLastRequestId) {
  Pair p;
  p.handshake();
  uint64_t kept = p.A().request(getChunk());
  p.exchange();
  uint64_t dropped = p.A().request(getChunk());  // sent, but after B's Goodbye is written
  auto bye = codec::goodbyeFrame(wire::GoodbyeReason::SHUTDOWN, "bye", kept);
  p.inject(p.A(), *bye);
  auto failed = eventsOf<event::RequestFailed>(p.eventsA);
  ASSERT_EQ(failed.size(), 1u);
  EXPECT_EQ(failed[0]->id, dropped);
  EXPECT_EQ(failed[0]->code, wire::ErrorCode::SHUTTING_DOWN);
  EXPECT_FALSE(p.A().wantsWriteClose());  // still waiting for the answer to `kept`
  p.inject(p.A(), *chunkAnswer(kept));
  EXPECT_TRUE(p.A().wantsWriteClose());
}

TEST(SessionCore, DrainHasADeadline) {
  Pair p;
  p.handshake();
  p.A().request(getChunk());
  p.exchange();
  p.B().goodbye(wire::GoodbyeReason::SHUTDOWN, "stopping", p.now);
  EXPECT_EQ(KJ_ASSERT_NONNULL(p.B().nextDeadline()), p.now + 1 * kj::SECONDS);
  p.B().onTick(p.now + 1 * kj::SECONDS);
  p.collect();
  EXPECT_EQ(closedWith(p.eventsB), CloseReason::drainTimeout);
}

TEST(SessionCore, PingWhenIdleDropWhenDead) {
  Pair p;
  p.handshake();
  p.A().onTick(p.now + 14 * kj::SECONDS);
  EXPECT_EQ(p.A().takeOutgoing().size(), 0u);
  p.A().onTick(p.now + 15 * kj::SECONDS);
  auto ping = p.A().takeOutgoing();
  ASSERT_EQ(ping.size(), 1u);
  EXPECT_EQ(rootOf(*ping[0]).which(), Which::PING);
  // B answers with Pong; the Pong resets A's clock.
  p.now = p.now + 15 * kj::SECONDS;
  p.inject(p.B(), *ping[0]);
  p.exchange();
  EXPECT_FALSE(p.A().isClosed());
  p.A().onTick(p.now + 44 * kj::SECONDS);
  EXPECT_FALSE(p.A().isClosed());
  p.A().onTick(p.now + 45 * kj::SECONDS);
  p.collect();
  EXPECT_EQ(closedWith(p.eventsA), CloseReason::deadTimeout);
}

TEST(SessionCore, LibraryChangedIsDelivered) {
  Pair p;
  p.handshake();
  p.B().notifyLibraryChanged(codec::Summary{7, 9, idOf(9)});
  p.exchange();
  auto changed = eventsOf<event::LibraryChanged>(p.eventsA);
  ASSERT_EQ(changed.size(), 1u);
  EXPECT_EQ(changed[0]->summary.rev, 9u);
}

TEST(SessionCore, PeerErrorOrEofFailsOutstandingRequests) {
  for (bool eof : {false, true}) {
    Pair p;
    p.handshake();
    p.A().request(getChunk());
    p.exchange();
    if (eof) {
      p.A().onEndOfStream(p.now);
      p.collect();
    } else {
      p.inject(p.A(), *codec::errorFrame(0, wire::ErrorCode::INTERNAL, "boom"));
    }
    EXPECT_EQ(closedWith(p.eventsA), eof ? CloseReason::peerClosed : CloseReason::peerError);
    auto failed = eventsOf<event::RequestFailed>(p.eventsA);
    ASSERT_EQ(failed.size(), 1u);
    EXPECT_TRUE(failed[0]->local);
  }
}

// --- settled in docs/protocol.md (issue 7 §8) ---------------------------------------------------

// The frames recorded on one direction of the wire, decoded.
kj::Vector<codec::InboundFrame> sent(kj::Vector<kj::Array<kj::byte>>& wire) {
  kj::Vector<codec::InboundFrame> frames;
  for (auto& bytes : wire) {
    auto decoded = codec::decodeFrame(bytes);
    frames.add(kj::mv(decoded.get<codec::InboundFrame>()));
  }
  return frames;
}

TEST(SessionCore, GoodbyeNamesTheHighestRequestReceivedEvenWhenAnswered) {
  // [BYE-2]: the highest id received, answered or not; 0 only when none was received.
  Pair p;
  p.handshake();
  p.B().goodbye(wire::GoodbyeReason::IDLE, "nothing asked", p.now);
  p.exchange();
  ASSERT_EQ(eventsOf<event::GoodbyeReceived>(p.eventsA).size(), 1u);
  EXPECT_EQ(eventsOf<event::GoodbyeReceived>(p.eventsA)[0]->lastRequestId, 0u);

  Pair q;
  q.handshake();
  uint64_t first = q.A().request(getChunk());
  uint64_t second = q.A().request(getChunk());
  q.exchange();
  EXPECT_TRUE(q.B().answer(first, chunkAnswer(first), true));
  EXPECT_TRUE(q.B().answerError(second, wire::ErrorCode::NOT_FOUND, "no such item"));
  q.exchange();
  ASSERT_EQ(q.B().incomingInFlight(), 0u);  // everything answered
  q.B().goodbye(wire::GoodbyeReason::IDLE, "done", q.now);
  q.exchange();
  auto goodbye = eventsOf<event::GoodbyeReceived>(q.eventsA);
  ASSERT_EQ(goodbye.size(), 1u);
  EXPECT_EQ(goodbye[0]->lastRequestId, second);
}

TEST(SessionCore, GoodbyeReceiverAnswersWhatItOwesThenClosesAtOnce) {
  // [BYE-12]: the receiver does not close while it owes an answer; [BYE-9]: once it owes nothing
  // and waits for nothing, it closes at once. The Goodbye comes from a peer that does not cancel
  // its own requests (allowed: only the reference peer withdraws them).
  Pair p;
  p.handshake();
  uint64_t asked = p.B().request(getChunk());
  p.exchange();
  ASSERT_EQ(p.A().incomingInFlight(), 1u);
  p.inject(p.A(), *codec::goodbyeFrame(wire::GoodbyeReason::SHUTDOWN, "bye", 0));
  EXPECT_FALSE(p.A().wantsWriteClose());
  EXPECT_FALSE(p.A().isClosed());
  p.A().onTick(p.now + 999 * kj::MILLISECONDS);
  EXPECT_FALSE(p.A().wantsWriteClose());
  EXPECT_TRUE(p.A().answer(asked, chunkAnswer(asked), true));
  EXPECT_TRUE(p.A().wantsWriteClose());
  // The answer goes out before the close.
  auto out = p.A().takeOutgoing();
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(rootOf(*out[0]).which(), Which::CHUNK);
}

TEST(SessionCore, GoodbyeReceiverClosesAtItsDrainDeadline) {
  // [BYE-9]: the receiver's own deadline, 1 s after the Goodbye arrived, even though the
  // sender promised an answer it never sends.
  Pair p;
  p.handshake();
  uint64_t kept = p.A().request(getChunk());
  p.exchange();
  auto received = p.now + 3 * kj::SECONDS;
  p.now = received;
  p.B().goodbye(wire::GoodbyeReason::SHUTDOWN, "stopping", p.now);
  p.exchange();  // B never answers `kept` (id ≤ lastRequestId): A waits for it
  ASSERT_EQ(eventsOf<event::GoodbyeReceived>(p.eventsA).size(), 1u);
  ASSERT_EQ(eventsOf<event::GoodbyeReceived>(p.eventsA)[0]->lastRequestId, kept);
  EXPECT_FALSE(p.A().wantsWriteClose());
  EXPECT_EQ(KJ_ASSERT_NONNULL(p.A().nextHardDeadline()), received + 1 * kj::SECONDS);
  p.A().onTick(received + 1 * kj::SECONDS - 1 * kj::MILLISECONDS);
  EXPECT_FALSE(p.A().isClosed());
  p.A().onTick(received + 1 * kj::SECONDS);
  p.collect();
  EXPECT_EQ(closedWith(p.eventsA), CloseReason::drainTimeout);
  auto failed = eventsOf<event::RequestFailed>(p.eventsA);
  ASSERT_EQ(failed.size(), 1u);
  EXPECT_EQ(failed[0]->id, kept);
  EXPECT_TRUE(failed[0]->local);
}

TEST(SessionCore, CancelCrossingTheAnswerLeavesOneTerminalAnswer) {
  // [RQ-17], [RQ-19]: B has produced the Chunk (queued, not yet delivered) when A's Cancel
  // arrives: B ignores the Cancel, A takes the Chunk as the end of the request and drops it.
  Pair p;
  p.handshake();
  uint64_t id = p.A().request(getChunk());
  p.exchange();
  EXPECT_TRUE(p.B().answer(id, chunkAnswer(id), true));
  p.A().cancel(id);
  p.exchange();
  EXPECT_EQ(eventsOf<event::RequestCancelled>(p.eventsB).size(), 0u);
  size_t answers = 0;
  for (auto& frame : sent(p.wireBtoA)) {
    if (frame.kind() == Which::CHUNK || frame.kind() == Which::ERROR) {
      EXPECT_EQ(frame.kind(), Which::CHUNK);
      ++answers;
    }
  }
  EXPECT_EQ(answers, 1u);
  EXPECT_EQ(eventsOf<event::Response>(p.eventsA).size(), 0u);  // cancelled: not acted on
  EXPECT_EQ(eventsOf<event::RequestFailed>(p.eventsA).size(), 0u);
  EXPECT_EQ(p.A().outgoingInFlight(), 0u);
  EXPECT_FALSE(p.A().isClosed());
  EXPECT_FALSE(p.B().isClosed());
}

TEST(SessionCore, OnePingPerSilence) {
  // [LIV-7]: one Ping per period of silence; a frame starts a new period.
  Pair p;
  p.handshake();
  auto start = p.now;
  size_t pings = 0;
  uint64_t firstNonce = 0;
  for (int s = 1; s < 45; ++s) {
    p.A().onTick(start + s * kj::SECONDS);
    for (auto& frame : p.A().takeOutgoing()) {
      ASSERT_EQ(rootOf(*frame).which(), Which::PING);
      EXPECT_EQ(s, 15) << "a Ping at " << s << " s";
      firstNonce = rootOf(*frame).getPing().getNonce();
      ++pings;
    }
  }
  EXPECT_EQ(pings, 1u);
  // B answers at 20 s: silence starts again, and the next Ping is due at 35 s, with a new nonce.
  p.now = start + 20 * kj::SECONDS;
  p.inject(p.A(), *codec::pongFrame(firstNonce));
  p.A().onTick(start + 34 * kj::SECONDS);
  EXPECT_EQ(p.A().takeOutgoing().size(), 0u);
  p.A().onTick(start + 35 * kj::SECONDS);
  auto again = p.A().takeOutgoing();
  ASSERT_EQ(again.size(), 1u);
  ASSERT_EQ(rootOf(*again[0]).which(), Which::PING);
  EXPECT_NE(rootOf(*again[0]).getPing().getNonce(), firstNonce);
}

}  // namespace
}  // namespace shoal::peer
