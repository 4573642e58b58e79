// Target `session`: a full Session (the KJ driver) as the responder of a plaintext in-memory
// connection on a virtual timer, serving a real library (session-fixture.h) through RequestServer.
// The input scripts the other side (its language: session-script.h); a model of the protocol
// (session-model.h) predicts every answer and how the session must end, and everything the
// session sends is decoded and checked against it. This file is the driver: it writes the
// script's bytes, reads what the session sends, moves the virtual time and pauses reading.
#include <kj/async-io.h>
#include <kj/debug.h>
#include <kj/timer.h>
#include <shoal/codec/frame.h>
#include <shoal/codec/frames.h>
#include <shoal/peer/session/session.h>
#include <shoal/peer/transport/transport.h>
#include <stdio.h>
#include <stdlib.h>

#include "targets/session-model.h"
#include "targets/session-script.h"

using namespace shoal;
using namespace shoal::peer;
using fuzz::Ending;
using fuzz::Input;
using fuzz::Tag;
using wire::ErrorCode;

namespace {

constexpr size_t kMaxRequests = 256;  // bounds the work (and answer bytes) of one input

// The session stops reading while this much waits to be written to us. Small, so that short
// inputs reach the bound checkBacklog() holds it to.
constexpr size_t kBacklogBudget = 256 * 1024;

fuzz::LibraryFixture* world = nullptr;
size_t largestAnswer = 0;  // bytes: the biggest answer the library can give to one request

// Serves through the fixture's RequestServer, at once or when released.
class Handler final : public SessionHandler {
 public:
  Handler(bool refuse, bool hold) : refuse(refuse), hold(hold) {}

  kj::Maybe<Rejection> onHello(Session&, const RemotePeer&) override {
    if (refuse) return Rejection{ErrorCode::BUSY, kj::str("fuzz owner: too many peers")};
    return nullptr;
  }
  void onEstablished(Session&) override { ++established; }
  kj::Promise<kj::Array<codec::FrameBuilder>> serve(Session& session, uint64_t id,
                                                    codec::InboundFrame request) override {
    auto answer = [&session, id, request = kj::mv(request)]() mutable {
      return world->server().serve(id, request.root(), KJ_ASSERT_NONNULL(session.remote()));
    };
    if (!hold) return answer();
    auto paf = kj::newPromiseAndFulfiller<void>();
    held.add(kj::mv(paf.fulfiller));
    return paf.promise.then(kj::mv(answer));
  }
  void onLibraryChanged(Session&, const codec::Summary&) override {}
  void onGoodbye(Session&, const event::GoodbyeReceived&) override {}
  void onWriterDone(Session&) override { ++writerDone; }
  void onClosed(Session&, const event::Closed& closed) override {
    ++closedCount;
    reason = closed.reason;
    detail = kj::str(closed.detail);
  }

  // The oldest `n` held answers go (all when n is 0).
  void release(size_t n) {
    size_t count = n == 0 ? held.size() - releasedUpTo : kj::min(n, held.size() - releasedUpTo);
    for (size_t i = 0; i < count; ++i)
      held[releasedUpTo++]->fulfill();
  }

  size_t established = 0;
  size_t writerDone = 0;
  size_t closedCount = 0;
  kj::Maybe<CloseReason> reason;
  kj::String detail;

 private:
  bool refuse;
  bool hold;
  kj::Vector<kj::Own<kj::PromiseFulfiller<void>>> held;
  size_t releasedUpTo = 0;
};

kj::StringPtr textOf(const kj::Maybe<kj::String>& text) {
  KJ_IF_MAYBE (t, text) {
    return *t;
  }
  return "none";
}

class Conversation {
 public:
  explicit Conversation(uint8_t options)
      : handler(options & 1, options & 2), model(*world, config, options & 1, timer.now()) {
    config.maxInFlight = fuzz::kInFlight[(options >> 2) & 3];
    config.maxWriteBacklogBytes = kBacklogBudget;
    auto pipe = kj::newTwoWayPipe();
    end = kj::mv(pipe.ends[0]);
    auto features = kj::heapArray<kj::String>(1);
    features[0] = kj::str("delta");
    session = kj::heap<Session>(plaintextTransport(kj::mv(pipe.ends[1])), Role::responder, config,
                                LocalPeer{fuzz::kResponderId, kj::str("fuzz-responder"),
                                          kj::mv(features), world->library().summary(), 2002},
                                timer, handler, timer.now(), 1);
    run = session->run().then([this]() { runDone = true; }).eagerlyEvaluate(nullptr);
    reading = readLoop().eagerlyEvaluate(nullptr);
    settle();
  }

  ~Conversation() noexcept(false) {
    writing = nullptr;
    reading = nullptr;
    run = nullptr;
    session = nullptr;
  }

  void step(Input& in) {
    auto tag = Tag(in.byte() & 0x0f);
    if (fuzz::tracing()) fprintf(stderr, "[%s]\n", fuzz::nameOf(tag).cStr());
    switch (tag) {
      case Tag::FRAME: emit(in.take(in.u16())); break;
      case Tag::RAW: emit(in.take(in.byte())); break;
      case Tag::HELLO: emitFrame(*fuzz::helloFrame(in.byte())); break;
      case Tag::GET_LIBRARY: {
        uint64_t id = model.nextId(in.byte());
        emitRequest(*fuzz::getLibraryFrame(id, in));
        break;
      }
      case Tag::GET_MANIFEST: {
        uint64_t id = model.nextId(in.byte());
        emitRequest(*fuzz::getManifestFrame(id, in));
        break;
      }
      case Tag::GET_CHUNK: {
        uint64_t id = model.nextId(in.byte());
        auto frame = fuzz::getChunkFrame(id, in, world->library(), config.limits.maxChunkBytes);
        emitRequest(*frame);
        break;
      }
      case Tag::CANCEL: emitFrame(*codec::cancelFrame(cancelId(in.byte()))); break;
      case Tag::PING: emitFrame(*codec::pingFrame(in.byte())); break;
      case Tag::GOODBYE: {
        uint8_t reason = in.byte();
        uint8_t last = in.byte();
        auto frame = codec::goodbyeFrame(wire::GoodbyeReason(reason % 5), "fuzz: leaving", last);
        emitFrame(*frame);
        break;
      }
      case Tag::ERROR: {
        uint8_t id = in.byte();
        emitFrame(*codec::errorFrame(id < 0x80 ? 0 : id, ErrorCode(in.byte() % 13), "fuzz"));
        break;
      }
      case Tag::OTHER: {
        uint64_t last = model.lastIncoming();
        emitFrame(*fuzz::otherFrame(in.byte(), last == 0 ? 1 : last));
        break;
      }
      default: control(tag, in);
    }
  }

  // The end of the input: every answer owed, then our end of stream, then run() to completion.
  void finish() {
    batchLeft = 0;
    resume();
    flush();
    handler.release(0);
    settle();
    if (!model.ended() && !model.sentGoodbye()) model.checkAllAnswered();
    if (!model.ended() && model.sentGoodbye() && !stalled) {
      // [BYE-9]: with nothing of its own outstanding, the receiver of Goodbye ends its side.
      KJ_ASSERT(eof, "the session kept its write side open after our Goodbye");
    }

    // Our end of stream: inside a frame it is a truncation.
    if (!model.ended()) {
      if (model.streamEndsInsideFrame()) {
        model.expect(Ending::errorZero, ErrorCode::PROTOCOL, "stream ended inside a frame");
      } else {
        model.expect(
            model.sentGoodbye() && model.isEstablished() ? Ending::goodbye : Ending::peerClosed,
            nullptr, "our end of stream");
      }
    }
    if (!inSync() && !writesStopped) {
      KJ_ASSERT(session->isClosed(), "the session stopped reading while we read everything");
    }
    writing = nullptr;
    end->shutdownWrite();
    settle();
    // Past every deadline, one after another: run() must then have finished.
    for (int i = 0; i < 32 && !runDone; ++i) {
      KJ_IF_MAYBE (next, timer.nextEvent()) {
        timer.advanceTo(kj::max(*next, timer.now()));
      } else {
        break;
      }
      settle();
    }
    KJ_ASSERT(runDone, "Session::run() did not complete");
    checkEnding();
  }

 private:
  kj::EventLoop loop;
  kj::WaitScope ws{loop};
  kj::TimerImpl timer{kj::origin<kj::TimePoint>()};
  SessionConfig config;
  Handler handler;
  fuzz::SessionModel model;  // reads config: after it

  kj::Own<kj::AsyncIoStream> end;  // ours
  kj::Own<Session> session;
  kj::Promise<void> run = nullptr;
  bool runDone = false;

  // What the session sends: read by readLoop(), checked by settle().
  kj::Promise<void> reading = nullptr;
  codec::FrameDecoder inbound{codec::Limits()};
  kj::Vector<codec::DecodeResult> inbox;
  bool paused = false;
  kj::Maybe<kj::Own<kj::PromiseFulfiller<void>>> resumed;
  bool eof = false;
  kj::Maybe<kj::String> readError;
  uint64_t bytesIn = 0;
  size_t framesWhilePaused = 0;
  bool stalled = false;        // time passed while we did not read: the session may give up on us
  bool timingUnknown = false;  // time passed while it did not read us: deadlines are its call

  // What we send.
  kj::Vector<kj::byte> pending;
  size_t batchLeft = 0;
  kj::Maybe<kj::Promise<void>> writing;
  bool writeDone = false;
  bool writesStopped = false;
  size_t requestCount = 0;

  // --- the elements that send nothing ---------------------------------------------------------

  void control(Tag tag, Input& in) {
    switch (tag) {
      case Tag::ADVANCE: advance(in.byte()); break;
      case Tag::RELEASE:
        flush();
        handler.release(in.byte());
        settle();
        break;
      case Tag::PAUSE:
        flush();
        paused = true;
        break;
      case Tag::RESUME:
        flush();
        resume();
        break;
      case Tag::BATCH:
        flush();
        batchLeft = in.byte() % 16;
        break;
      default: KJ_UNREACHABLE;
    }
  }

  uint64_t cancelId(uint8_t which) const {
    uint64_t last = model.lastIncoming();
    switch (which >> 6) {
      case 0: return last - kj::min(last, uint64_t(which & 0x3f));
      case 1: return model.oldestOpenRequest();
      case 2: return 0;                           // invalid
      default: return last + 1 + (which & 0x3f);  // never used: ignored
    }
  }

  // --- what we send ---------------------------------------------------------------------------

  void emitRequest(capnp::MessageBuilder& frame) {
    if (requestCount++ >= kMaxRequests) return;
    emitFrame(frame);
  }

  void emitFrame(capnp::MessageBuilder& frame) {
    auto bytes = codec::encodeFrame(frame);
    emit(bytes);
  }

  // Our bytes: the model sees the frames in them now, the session when they are written.
  void emit(kj::ArrayPtr<const kj::byte> bytes) {
    if (writesStopped) return;
    if (model.ended()) {  // it reads no further: what is pending goes, nothing more
      batchLeft = 0;
      flush();
      return;
    }
    if (paused) ++framesWhilePaused;
    model.replay(bytes, timer.now());
    pending.addAll(bytes);
    if (batchLeft > 0) {
      --batchLeft;
      return;
    }
    flush();
  }

  void flush() {
    batchLeft = 0;  // anything but a frame ends a batch
    startWrite();
    settle();
    if (writeDone || writing == nullptr) return;
    if (session->isClosed()) {
      writing = nullptr;  // it reads no more: the write is cancelled
      pending.clear();
      writesStopped = true;
      return;
    }
    // An open session stops reading only to stop its answers piling up, while we do not read.
    KJ_ASSERT(paused, "the session stopped reading while open, and we read all it sent");
  }

  // Writes what is pending unless a write is still in progress (the session not reading).
  void startWrite() {
    if (pending.empty() || batchLeft > 0 || writesStopped) return;
    if (writing != nullptr && !writeDone) return;
    auto bytes = kj::heapArray(pending.asPtr());
    pending.clear();
    writeDone = false;
    auto write = end->write(bytes.begin(), bytes.size()).attach(kj::mv(bytes));
    writing =
        write.then([this]() { writeDone = true; }, [](kj::Exception&&) {}).eagerlyEvaluate(nullptr);
  }

  // The session has processed all we wrote: the model and the session agree on what it received.
  // While we do not read, it may hold frames it has read but not processed (backpressure).
  bool inSync() const {
    return batchLeft == 0 && pending.empty() && (writing == nullptr || writeDone) && !paused;
  }

  void advance(uint8_t amount) {
    flush();
    auto now = timer.now() + (amount & 0x3f) * fuzz::kUnits[amount >> 6];
    if (paused) stalled = true;
    // Frames it has not read yet will reach it later than the model assumed.
    if (!inSync()) timingUnknown = true;
    if (fuzz::tracing())
      fprintf(stderr, "time +%lld ms\n", (long long)((now - timer.now()) / kj::MILLISECONDS));
    model.predictTime(now, timingUnknown);
    timer.advanceTo(now);
    ws.poll();
    session->tick();  // the owner's periodic liveness tick
    settle();
  }

  void resume() {
    if (!paused) return;
    checkBacklog();
    paused = false;
    framesWhilePaused = 0;
    KJ_IF_MAYBE (f, resumed) {
      (*f)->fulfill();
      resumed = nullptr;
    }
    settle();
  }

  // While we do not read, what waits to be written to us stays bounded: the session reads no
  // further once its backlog reaches its budget, so beyond that come only the answers it was
  // already producing and one small frame (Pong, Error) per frame we sent — not one full answer
  // per request.
  void checkBacklog() {
    uint64_t queued = session->queuedBytes();
    uint64_t bound = kBacklogBudget + uint64_t(config.maxInFlight + 1) * largestAnswer +
                     2048 * framesWhilePaused;
    if (fuzz::tracing())
      fprintf(stderr, "backlog %llu (bound %llu)\n", (unsigned long long)queued,
              (unsigned long long)bound);
    KJ_ASSERT(queued <= bound,
              "the session queued answers without bound for a peer that does not read", queued,
              bound, config.maxInFlight);
  }

  // --- what the session sends -----------------------------------------------------------------

  kj::Promise<void> readLoop() {
    if (paused) {
      auto paf = kj::newPromiseAndFulfiller<void>();
      resumed = kj::mv(paf.fulfiller);
      return paf.promise.then([this]() { return readLoop(); });
    }
    auto space = inbound.writable();
    return end->tryRead(space.begin(), 1, space.size())
        .then(
            [this](size_t n) -> kj::Promise<void> {
              if (n == 0) {
                eof = true;
                return kj::READY_NOW;
              }
              inbound.commit(n);
              bytesIn += n;
              for (;;) {
                auto next = inbound.next();
                if (next == nullptr) break;
                bool failed = KJ_ASSERT_NONNULL(next).is<codec::Failure>();
                inbox.add(kj::mv(KJ_ASSERT_NONNULL(next)));
                if (failed) return kj::READY_NOW;  // settle() reports it
              }
              return readLoop();
            },
            [this](kj::Exception&& e) { readError = kj::str(e.getDescription()); });
  }

  // Runs the loop until nothing moves, then checks what arrived and the model's view of it.
  void settle() {
    for (;;) {
      ws.poll();
      if (!writeDone || pending.empty() || batchLeft > 0 || writesStopped) break;
      startWrite();  // the session read again: what waited behind goes now
    }
    for (auto& result : inbox) {
      KJ_SWITCH_ONEOF(result) {
        KJ_CASE_ONEOF(frame, codec::InboundFrame) {
          model.check(frame, timingUnknown);
        }
        KJ_CASE_ONEOF(failure, codec::Failure) {
          KJ_FAIL_ASSERT("the session sent bytes that do not decode", failure.error,
                         failure.message);
        }
      }
    }
    inbox.clear();
    if (paused) checkBacklog();
    if (timingUnknown && !model.ended() && session->isClosed()) {
      // Which of our frames arrived before a deadline is unknown: adopt a timeout it chose.
      auto reason = KJ_ASSERT_NONNULL(handler.reason);
      if (reason == CloseReason::deadTimeout)
        model.expect(Ending::deadTimeout, nullptr, "dead peer");
      if (reason == CloseReason::drainTimeout) model.expect(Ending::drainTimeout, nullptr, "drain");
    }
    if (inSync() && !runDone) {
      KJ_IF_MAYBE (e, model.expectation()) {
        KJ_ASSERT(
            session->isClosed() || e->ending == Ending::peerClosed || e->ending == Ending::goodbye,
            "the session should have closed", e->why);
      } else {
        KJ_ASSERT(!session->isClosed(), "the session closed for no reason the model knows",
                  fuzz::nameOf(handler.reason), handler.detail);
      }
    }
  }

  // How the session ended, against the model.
  void checkEnding() {
    KJ_ASSERT(handler.closedCount == 1, "one Closed event", handler.closedCount);
    KJ_ASSERT(handler.writerDone == 1, "one end of the writer", handler.writerDone);
    KJ_ASSERT(session->isClosed());
    if (!stalled) {
      // Everything it wrote arrived, and its write side ended at a frame boundary.
      KJ_ASSERT(eof && readError == nullptr, textOf(readError));
      KJ_ASSERT(inbound.finish() == nullptr, "the session's stream ended inside a frame");
      KJ_ASSERT(session->bytesWritten() == bytesIn, session->bytesWritten(), bytesIn);
    }
    model.checkEnding(KJ_ASSERT_NONNULL(handler.reason), handler.detail, stalled, timingUnknown);
  }
};

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  // The session logs what it refuses; the target checks behaviour on the wire instead.
  if (getenv("SHOAL_FUZZ_LOG") == nullptr) kj::_::Debug::setLogLevel(kj::LogSeverity::FATAL);
  static fuzz::LibraryFixture fixture;
  world = &fixture;
  largestAnswer = 0;
  for (auto& item : world->library().items()) {
    size_t manifest = 0;
    for (auto& page : codec::manifestPages(1, item->manifest, 16 << 20))
      manifest += codec::encodedSize(*page);
    largestAnswer = kj::max(largestAnswer, manifest);
    for (auto& file : item->manifest.files)
      largestAnswer = kj::max(largestAnswer, fuzz::chunkFrameBytes(file.size));
  }
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1 || size > fuzz::kMaxInput) return 0;
  if (world == nullptr) LLVMFuzzerInitialize(nullptr, nullptr);
  Input in(data + 1, size - 1);
  Conversation conversation(data[0]);
  while (!in.done())
    conversation.step(in);
  conversation.finish();
  return 0;
}
