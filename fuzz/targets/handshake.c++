// Target `handshake`: one SessionCore (sans-I/O) fed the other side's bytes — an initiator's output
// to our responder, or a responder's output to our initiator — frame by frame on a virtual clock
// the input moves. Invariants: every frame the core emits is valid, §4's order holds, nothing
// follows Reject / Error{0} / Closed, one terminal answer per id, deadlines never in the past.
#include <kj/debug.h>
#include <shoal/codec/frame.h>
#include <shoal/codec/frames.h>
#include <shoal/codec/validate.h>
#include <shoal/peer/session/session-core.h>
#include <string.h>

#include "session/test-peers.h"

using namespace shoal;
using namespace shoal::peer;
using Which = wire::Frame::Which;
using test::idOf;
using test::requestFrame;

namespace {

// Input layout (fuzz/dict/handshake.dict has tokens for it):
//   byte 0  bit 0: our role: 0 responder (the stream is an initiator's output), 1 initiator
//           bit 1: the transport authenticated the peer (TLS); bit 2: with another key than the
//                  one the peer claims (a spoof)
//           bit 3: responder: refuse the Hello, with the code picked by bits 4-5
//           bit 6: small config (maxInFlight 2): the busy path is reachable
//   byte 1  bits 0-1: clock unit; bits 2-3: initiator: requests issued once established (0-3);
//           bits 4-7: length of the tape that follows
//   tape    one byte per frame, reused cyclically: bits 0-5 clock steps before the frame,
//           bits 6-7 what the owner does then (2: answer / cancel the oldest request, 3: goodbye)
//   rest    the other side's bytes
constexpr size_t kMaxInput = 64 * 1024;
constexpr kj::Duration kUnits[4] = {1 * kj::MILLISECONDS, 100 * kj::MILLISECONDS, 1 * kj::SECONDS,
                                    5 * kj::SECONDS};
constexpr wire::ErrorCode kRejectCodes[4] = {wire::ErrorCode::UNTRUSTED, wire::ErrorCode::BUSY,
                                             wire::ErrorCode::SHUTTING_DOWN,
                                             wire::ErrorCode::PROTOCOL};

bool isTerminal(wire::Frame::Reader frame) {
  switch (frame.which()) {
    case Which::ERROR: return frame.getError().getId() != 0;
    case Which::CHUNK: return true;
    case Which::LIBRARY_SNAPSHOT: return frame.getLibrarySnapshot().getLast();
    case Which::LIBRARY_DELTA: return frame.getLibraryDelta().getLast();
    case Which::MANIFEST: return frame.getManifest().getLast();
    default: return false;
  }
}

// Drives one core and checks everything it emits after each input.
class Harness {
 public:
  Harness(Role role, const SessionConfig& config, kj::Maybe<PeerId> authenticated,
          kj::TimePoint now, bool refuse, wire::ErrorCode refusal, uint32_t plannedRequests)
      : role(role),
        config(config),
        local(role == Role::responder ? idOf(2) : idOf(1)),
        authenticated(authenticated),
        refuse(refuse),
        refusal(refusal),
        plannedRequests(plannedRequests),
        core(role, config,
             role == Role::responder ? test::testPeer(2, "beta") : test::testPeer(1, "alpha"),
             authenticated, now) {
    settle(now);
    if (role == Role::initiator) {
      // [HS-1]: the initiator opens with Hello, and nothing else until the verdict.
      KJ_ASSERT(framesSent == 1 && firstKind == Which::HELLO, framesSent);
    } else {
      KJ_ASSERT(framesSent == 0, "a responder spoke before anything arrived");
    }
  }

  void frame(codec::InboundFrame frame, kj::TimePoint now) {
    auto root = frame.root();
    auto kind = root.which();
    bool wasOpen = !core.isClosed();
    bool first = framesReceived++ == 0;
    auto state = core.state();
    bool errorZero = kind == Which::ERROR && root.getError().getId() == 0;
    if (wasOpen && role == Role::responder && state == SessionCore::State::awaitingHello &&
        kind == Which::HELLO) {
      validHelloReceived = true;
    }
    if (wasOpen && role == Role::initiator && state == SessionCore::State::awaitingHelloAck &&
        kind == Which::HELLO_ACK) {
      helloAckReceived = true;
    }
    if (wasOpen && core.isEstablished() && codec::isRequest(kind)) {
      uint64_t id = codec::requestIdOf(root);
      if (answered.find(id) == nullptr) answered.insert(id, false);
    }
    size_t sentBefore = framesSent;
    core.onFrame(kj::mv(frame), now);
    settle(now);
    if (!wasOpen) {
      KJ_ASSERT(framesSent == sentBefore, "a closed core answered a frame");
      return;
    }
    bool theirVerdict = role == Role::initiator && state == SessionCore::State::awaitingHelloAck;
    if (errorZero || (theirVerdict && kind == Which::REJECT)) {
      // [HS-4], [ERR-3]: Error{0}, or the Reject we waited for, ends the session without a word.
      KJ_ASSERT(core.isClosed(), codec::name(kind));
      KJ_ASSERT(framesSent == sentBefore, "answered a Reject / Error{0}");
    }
    if (theirVerdict && kind == Which::HELLO_ACK && !core.isEstablished()) {
      // [HS-10]: a HelloAck we cannot accept closes the connection with no further frame.
      KJ_ASSERT(core.isClosed() && framesSent == sentBefore);
    }
    bool expected = role == Role::responder ? kind == Which::HELLO
                                            : kind == Which::HELLO_ACK || kind == Which::REJECT;
    if (first && !expected && !errorZero) {
      // [HS-3], [HS-4]: a first frame out of place is answered Error{0, protocol}; only an
      // Error{0} is met with silence.
      KJ_ASSERT(core.isClosed() && lastErrorZeroCode == wire::ErrorCode::PROTOCOL,
                "[HS-3]/[HS-4] a misplaced first frame must get Error{0, protocol}",
                codec::name(kind), role == Role::responder ? "responder" : "initiator");
    }
  }

  void failure(codec::Failure failure, kj::TimePoint now) {
    bool wasOpen = !core.isClosed();
    ++framesReceived;
    bool requestLevel = failure.requestId != nullptr && core.isEstablished();
    KJ_IF_MAYBE (id, failure.requestId) {
      if (requestLevel && answered.find(*id) == nullptr) answered.insert(*id, false);
    }
    size_t sentBefore = framesSent;
    core.onDecodeFailure(kj::mv(failure), now);
    settle(now);
    if (!wasOpen) {
      KJ_ASSERT(framesSent == sentBefore, "a closed core answered a failure");
    } else if (!requestLevel) {
      // Framing or the handshake is broken: Error{0, code} (or Reject, [HS-7]) and close.
      KJ_ASSERT(core.isClosed() && finalFrameSent, "a broken frame must end the session");
    }
  }

  void tick(kj::TimePoint now) {
    bool wasOpen = !core.isClosed();
    bool wasEstablished = core.isEstablished();
    size_t sentBefore = framesSent;
    core.onTick(now);
    settle(now);
    if (!core.isClosed()) {
      auto next = KJ_ASSERT_NONNULL(core.nextDeadline(), "an open core with no deadline");
      KJ_ASSERT(next > now, "onTick(now) left a deadline in the past",
                (now - next) / kj::MILLISECONDS);
      KJ_IF_MAYBE (hard, core.nextHardDeadline()) {
        KJ_ASSERT(next <= *hard);
      }
    } else if (wasOpen) {
      // [ERR-6]: a timeout (handshake, dead peer, drain) closes without a frame.
      KJ_ASSERT(framesSent == sentBefore, "a timeout sent a frame", wasEstablished);
    }
  }

  void act(uint8_t action, kj::TimePoint now) {
    if (action == 3) {
      core.goodbye(wire::GoodbyeReason::IDLE, "fuzz says goodbye", now);
    } else if (action == 2) {
      if (role == Role::responder) {
        answerOldest();
      } else if (ours.size() > 0) {
        auto id = ours.begin()->key;
        core.cancel(id);
        cancelledIds.add(id);
        ours.erase(id);
      }
    }
    settle(now);
  }

  void end(kj::TimePoint now) {
    core.onEndOfStream(now);
    settle(now);
    KJ_ASSERT(core.isClosed(), "still open after the end of the stream");
    KJ_ASSERT(closedEvents == 1, "exactly one Closed event", closedEvents);
    KJ_ASSERT(core.nextDeadline() == nullptr && core.nextHardDeadline() == nullptr);
    KJ_ASSERT(core.wantsWriteClose());
    // Ticking a closed core does nothing.
    core.onTick(now + 1000 * kj::SECONDS);
    settle(now);
  }

 private:
  Role role;
  const SessionConfig& config;
  PeerId local;
  kj::Maybe<PeerId> authenticated;
  bool refuse;
  wire::ErrorCode refusal;
  uint32_t plannedRequests;
  SessionCore core;

  size_t framesSent = 0;
  size_t framesReceived = 0;
  kj::Maybe<Which> firstKind;
  kj::Maybe<wire::ErrorCode> lastErrorZeroCode;
  bool finalFrameSent = false;  // Reject or Error{0}
  bool validHelloReceived = false;
  bool helloAckReceived = false;
  bool accepted = false;
  bool requestsIssued = false;
  size_t establishedEvents = 0;
  size_t closedEvents = 0;

  kj::HashMap<uint64_t, bool> answered;        // the peer's ids: terminal answer sent
  kj::Vector<uint64_t> pendingIncoming;        // the peer's requests, from pendingHead on
  size_t pendingHead = 0;                      // not yet answered by the owner
  kj::HashMap<uint64_t, Which> incomingKinds;  // their kinds
  kj::TreeMap<uint64_t, bool> ours;            // our requests with no final event yet
  kj::Vector<uint64_t> cancelledIds;

  // Takes what the core produced after an input and checks it; decides a HelloReceived at once
  // (a real owner does so before the next input, as the API demands).
  void settle(kj::TimePoint now) {
    for (;;) {
      auto frames = core.takeOutgoing();
      auto events = core.takeEvents();
      if (frames.empty() && events.empty()) break;
      for (auto& f : frames)
        checkSent(*f);
      bool decide = false;
      for (auto& e : events)
        decide = checkEvent(e) || decide;
      if (decide) {
        KJ_ASSERT(core.state() == SessionCore::State::awaitingVerdict);
        if (refuse) {
          core.rejectHello(refusal, "refused by the fuzz owner");
        } else {
          accepted = true;
          core.acceptHello(now);
        }
      }
    }
    // After Closed nothing may still be pending, and a closed core must have said so.
    if (core.isClosed()) {
      KJ_ASSERT(closedEvents == 1, "closed without one Closed event");
    }
    if (core.isEstablished()) {
      KJ_ASSERT(establishedEvents == 1);
      auto& remote = KJ_ASSERT_NONNULL(core.remote());
      KJ_ASSERT(core.outgoingInFlight() <= remote.maxInFlight, "[RQ-14] above the peer's limit");
      KJ_ASSERT(core.incomingInFlight() <= config.maxInFlight);
      if (role == Role::initiator && !requestsIssued) {
        requestsIssued = true;
        for (uint32_t n = 0; n < plannedRequests; ++n) {
          auto id = core.request(requestFrame(n));
          ours.insert(id, true);
        }
        settle(now);
      }
    }
  }

  // Checks one event; true when it asks the owner for a verdict on a Hello.
  bool checkEvent(SessionEvent& e) {
    KJ_ASSERT(closedEvents == 0, "an event after Closed");
    KJ_SWITCH_ONEOF(e) {
      KJ_CASE_ONEOF(hello, event::HelloReceived) {
        KJ_ASSERT(role == Role::responder && validHelloReceived);
        KJ_ASSERT(hello.peer.id != local, "connection to self not refused");
        KJ_IF_MAYBE (proven, authenticated) {
          KJ_ASSERT(hello.peer.id == *proven, "[HS-8] spoofed id accepted for a verdict");
        }
        return true;
      }
      KJ_CASE_ONEOF(est, event::Established) {
        checkEstablished(est);
      }
      KJ_CASE_ONEOF(rejected, event::Rejected) {
        KJ_ASSERT(role == Role::initiator);
        (void)rejected;
      }
      KJ_CASE_ONEOF(request, event::IncomingRequest) {
        KJ_ASSERT(core.isEstablished(), "[RQ-1] a request before the handshake");
        KJ_ASSERT(codec::requestIdOf(request.frame.root()) == request.id);
        KJ_ASSERT(!KJ_ASSERT_NONNULL(answered.find(request.id)), "answered before asked");
        incomingKinds.insert(request.id, request.frame.kind());
        pendingIncoming.add(request.id);
      }
      KJ_CASE_ONEOF(cancelled, event::RequestCancelled) {
        KJ_ASSERT(answered.find(cancelled.id) != nullptr);
      }
      KJ_CASE_ONEOF(response, event::Response) {
        ourEvent(response.id, response.terminal);
      }
      KJ_CASE_ONEOF(failed, event::RequestFailed) {
        ourEvent(failed.id, true);
      }
      KJ_CASE_ONEOF(changed, event::LibraryChanged) {
        KJ_ASSERT(core.isEstablished());
        (void)changed;
      }
      KJ_CASE_ONEOF(goodbye, event::GoodbyeReceived) {
        KJ_ASSERT(core.isEstablished());
        (void)goodbye;
      }
      KJ_CASE_ONEOF(closed, event::Closed) {
        ++closedEvents;
        (void)closed;
      }
    }
    return false;
  }

  void checkEstablished(const event::Established& est) {
    KJ_ASSERT(++establishedEvents == 1);
    KJ_ASSERT(role == Role::responder ? accepted : helloAckReceived,
              "established without a valid HelloAck / accepted Hello");
    KJ_ASSERT(est.peer.id != local);
    KJ_ASSERT(est.peer.version >= config.versionMin && est.peer.version <= config.versionMax);
    KJ_IF_MAYBE (proven, authenticated) {
      KJ_ASSERT(est.peer.id == *proven, "[HS-8]/[HS-10] spoofed id established");
    }
  }

  void ourEvent(uint64_t id, bool terminal) {
    KJ_ASSERT(role == Role::initiator);
    for (auto c : cancelledIds)
      KJ_ASSERT(c != id, "an event after cancel()", id);
    KJ_ASSERT(ours.find(id) != nullptr, "an event for a request already ended", id);
    if (terminal) ours.erase(id);
  }

  void checkSent(capnp::MessageBuilder& message) {
    KJ_ASSERT(!finalFrameSent, "a frame after Reject / Error{0}");
    KJ_ASSERT(closedEvents == 0, "a frame after Closed");
    auto bytes = codec::encodeFrame(message);
    // Before the handshake our frames must fit the protocol minimum; after it, every peer's.
    KJ_ASSERT(bytes.size() <= codec::kMinFrameBytes, bytes.size());
    // Our own builder is safe to read; the decode is what the peer would make of it.
    auto root = message.getRoot<wire::Frame>().asReader();
    auto kind = root.which();
    auto decoded = codec::decodeFrame(bytes, codec::Limits());
    KJ_IF_MAYBE (failure, decoded.tryGet<codec::Failure>()) {
      KJ_FAIL_ASSERT("the core sent an invalid frame", codec::name(kind), failure->error,
                     failure->message);
    }
    if (framesSent++ == 0) firstKind = kind;
    checkSentInOrder(root);
    if (kind == Which::REJECT) {
      KJ_ASSERT(role == Role::responder);
      auto code = root.getReject().getCode();
      // [HS-12]: the codes of Table 3 only.
      KJ_ASSERT(code == wire::ErrorCode::PROTOCOL || code == wire::ErrorCode::UNTRUSTED ||
                    code == wire::ErrorCode::UNSUPPORTED_VERSION ||
                    code == wire::ErrorCode::SHUTTING_DOWN || code == wire::ErrorCode::BUSY,
                codec::name(code));
      finalFrameSent = true;
      KJ_ASSERT(core.isClosed(), "[HS-12] open after Reject");
    }
    if (kind == Which::ERROR && root.getError().getId() == 0) {
      finalFrameSent = true;
      lastErrorZeroCode = root.getError().getCode();
      KJ_ASSERT(core.isClosed(), "[ERR-2] open after Error{0}");
    }
    if (codec::isRequest(kind)) {
      KJ_ASSERT(role == Role::initiator && core.isEstablished(), "[RQ-1]");
    }
    uint64_t id = codec::requestIdOf(root);
    if (role == Role::responder && id != 0 && !codec::isRequest(kind) && kind != Which::CANCEL) {
      // [RQ-4]: one terminal answer per request, nothing after it.
      auto& done = KJ_ASSERT_NONNULL(answered.find(id), "an answer to an id never received", id);
      KJ_ASSERT(!done, "a frame after the terminal answer", id, codec::name(kind));
      if (isTerminal(root)) done = true;
    }
  }

  // [HS-2]: who may say what before the handshake completes.
  void checkSentInOrder(wire::Frame::Reader root) {
    auto kind = root.which();
    if (role == Role::responder) {
      if (!validHelloReceived) {
        // [HS-2]: before Hello only the Error{0} answering a frame out of place.
        KJ_ASSERT(framesReceived > 0 && kind == Which::ERROR && root.getError().getId() == 0,
                  "a responder spoke before it received Hello", codec::name(kind));
      }
      if (framesSent == 1) {
        KJ_ASSERT(kind == Which::HELLO_ACK || kind == Which::REJECT || kind == Which::ERROR,
                  "first frame of a responder", codec::name(kind));
      }
      if (kind == Which::HELLO_ACK) {
        KJ_ASSERT(accepted && framesSent == 1);
      }
      KJ_ASSERT(kind != Which::HELLO);
    } else {
      if (framesSent == 1) {
        KJ_ASSERT(kind == Which::HELLO);
      }
      if (framesSent > 1 && establishedEvents == 0) {
        // [HS-2]: after Hello the initiator waits; it may only give up with Error{0}.
        KJ_ASSERT(kind == Which::ERROR && root.getError().getId() == 0, codec::name(kind));
      }
      KJ_ASSERT(kind != Which::HELLO_ACK && kind != Which::REJECT);
    }
  }

  // The owner answers the oldest request: a real answer when it is cheap, else an Error.
  void answerOldest() {
    if (pendingHead < pendingIncoming.size()) {
      uint64_t id = pendingIncoming[pendingHead++];
      auto kind = KJ_ASSERT_NONNULL(incomingKinds.find(id));
      auto frame = codec::newFrame();
      if (kind == Which::GET_LIBRARY) {
        auto s = codec::rootOf(*frame).initLibrarySnapshot();
        s.setId(id);
        codec::Summary{7, 1, idOf(0xAB)}.toWire(s.initSummary());
        s.setLast(true);
      } else if (kind == Which::GET_CHUNK && id % 2 == 1) {
        auto c = codec::rootOf(*frame).initChunk();
        c.setId(id);
        c.initData(64);
      } else {
        frame = codec::errorFrame(id, wire::ErrorCode::NOT_FOUND, "fuzz owner: not here");
      }
      core.answer(id, kj::mv(frame), true);
    }
  }
};

// Feeds `stream` as the decoder asks for it, like a reader would, one frame at a time; before each
// frame a byte of `tape` (cycled) moves the clock by (t & 0x3f) units and picks an owner action.
void converse(Harness& harness, kj::ArrayPtr<const uint8_t> tape,
              kj::ArrayPtr<const uint8_t> stream, kj::Duration unit, kj::TimePoint now) {
  codec::FrameDecoder decoder{codec::Limits()};
  size_t at = 0;
  auto next = [&]() -> kj::Maybe<codec::DecodeResult> {
    for (;;) {
      KJ_IF_MAYBE (result, decoder.next()) {
        return kj::mv(*result);
      }
      if (at == stream.size()) return nullptr;
      auto space = decoder.writable();
      size_t n = kj::min(space.size(), stream.size() - at);
      memcpy(space.begin(), stream.begin() + at, n);
      decoder.commit(n);
      at += n;
    }
  };

  bool framingLost = false;
  for (size_t i = 0;; ++i) {
    if (tape.size() > 0) {
      uint8_t t = tape[i % tape.size()];
      now += (t & 0x3f) * unit;
      harness.tick(now);
      harness.act(t >> 6, now);
    }
    auto result = next();
    if (result == nullptr) break;
    KJ_SWITCH_ONEOF(KJ_ASSERT_NONNULL(result)) {
      KJ_CASE_ONEOF(frame, codec::InboundFrame) {
        harness.frame(kj::mv(frame), now);
      }
      KJ_CASE_ONEOF(failure, codec::Failure) {
        framingLost = failure.requestId == nullptr;  // then the decoder stays failed
        harness.failure(kj::mv(failure), now);
      }
    }
    if (framingLost) break;
  }
  if (!framingLost) {
    KJ_IF_MAYBE (truncated, decoder.finish()) {
      harness.failure(kj::mv(*truncated), now);
    }
  }
  harness.end(now);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2 || size > kMaxInput) return 0;
  uint8_t options = data[0];
  Role role = (options & 1) ? Role::initiator : Role::responder;
  PeerId claimed = role == Role::responder ? idOf(1) : idOf(2);
  kj::Maybe<PeerId> authenticated;
  if (options & 2) authenticated = (options & 4) ? idOf(0x66) : claimed;
  bool refuse = options & 8;
  auto refusal = kRejectCodes[(options >> 4) & 3];
  SessionConfig config;
  if (options & 0x40) config.maxInFlight = 2;

  kj::Duration unit = kUnits[data[1] & 3];
  uint32_t plannedRequests = (data[1] >> 2) & 3;
  size_t tapeLength = kj::min(size_t(data[1] >> 4), size - 2);
  auto tape = kj::arrayPtr(data + 2, tapeLength);
  auto stream = kj::arrayPtr(data + 2 + tapeLength, size - 2 - tapeLength);

  kj::TimePoint now = kj::origin<kj::TimePoint>() + 1000 * kj::SECONDS;
  Harness harness(role, config, authenticated, now, refuse, refusal, plannedRequests);
  converse(harness, tape, stream, unit, now);
  return 0;
}
