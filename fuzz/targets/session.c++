// Target `session`: a full Session (the KJ driver) as the responder of a plaintext in-memory
// connection on a virtual timer, serving a real library (session-fixture.h) through RequestServer.
// The input scripts the other side; a model of the protocol predicts every answer and how the
// session must end, and everything the session sends is decoded and checked against it.
#include <kj/async-io.h>
#include <kj/debug.h>
#include <kj/timer.h>
#include <shoal/codec/frame.h>
#include <shoal/codec/frames.h>
#include <shoal/codec/manifest.h>
#include <shoal/codec/validate.h>
#include <shoal/peer/session/session.h>
#include <shoal/peer/transport/transport.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "session/test-peers.h"
#include "targets/session-fixture.h"

using namespace shoal;
using namespace shoal::peer;
using Which = wire::Frame::Which;
using test::idOf;
using wire::ErrorCode;

namespace {

// Input: byte 0 holds options, then elements until the input ends, each a tag byte (low nibble)
// and its fields. Frames are built from the fields, so ids, digests and ranges stay meaningful
// under mutation; FRAME and RAW carry bytes verbatim (recorded seeds use FRAME).
//   options bit 0: the owner refuses the Hello        bit 1: answers held until RELEASE
//           bits 2-3: our maxInFlight: 64, 2, 1, 8
enum class Tag : uint8_t {
  FRAME,         // u16 length, bytes
  RAW,           // u8 length, bytes
  HELLO,         // u8 choices (versions, peer id, limits)
  GET_LIBRARY,   // u8 id step, u8 since
  GET_MANIFEST,  // u8 id step, u8 item
  GET_CHUNK,     // u8 id step, u8 item, u8 file (+ wrong digest), u8 offset, u16 length
  CANCEL,        // u8 which id
  PING,          // u8 nonce
  GOODBYE,       // u8 reason, u8 lastRequestId
  ERROR,         // u8 id, u8 code
  OTHER,         // u8 kind: a valid frame the responder must not get (HelloAck, Chunk, ...)
  ADVANCE,       // u8 amount: virtual time passes (deadlines fire), then the owner's tick()
  RELEASE,       // u8 count: held answers go out (0: all)
  PAUSE,         // we stop reading what the session sends
  RESUME,        // we read again; the session's backlog is measured
  BATCH,         // u8 n: the next n frames go out in one write
};

constexpr size_t kMaxInput = 32 * 1024;
constexpr size_t kMaxRequests = 256;  // bounds the work (and answer bytes) of one input
constexpr uint32_t kInFlight[4] = {64, 2, 1, 8};
constexpr kj::Duration kUnits[4] = {10 * kj::MILLISECONDS, 250 * kj::MILLISECONDS, 1 * kj::SECONDS,
                                    5 * kj::SECONDS};

// The session stops reading while this much waits to be written to us. Small, so that short
// inputs reach the bound checkBacklog() holds it to.
constexpr size_t kBacklogBudget = 256 * 1024;

fuzz::LibraryFixture* world = nullptr;
bool tracing = false;      // SHOAL_FUZZ_TRACE: print the conversation (to read a crash)
size_t largestAnswer = 0;  // bytes: the biggest answer the library can give to one request

const PeerId kResponderId = idOf(2);
const PeerId kInitiatorId = idOf(1);

class Input {
 public:
  Input(const uint8_t* data, size_t size) : data(data), size(size) {}
  bool done() const { return at >= size; }
  uint8_t byte() { return at < size ? data[at++] : 0; }
  uint16_t u16() {
    uint16_t lo = byte();
    return lo | uint16_t(byte()) << 8;
  }
  kj::ArrayPtr<const kj::byte> take(size_t n) {
    n = kj::min(n, size - at);
    auto out = kj::arrayPtr(data + at, n);
    at += n;
    return out;
  }

 private:
  const uint8_t* data;
  size_t size;
  size_t at = 0;
};

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

// How the model says the session must end.
enum class Ending : uint8_t {
  errorZero,  // it sends Error{0, code} and closes
  reject,     // it sends Reject{code} and closes
  peerError,  // we sent Error{0}: it closes without a word
  handshakeTimeout,
  deadTimeout,
  drainTimeout,
  peerClosed,  // our end of stream
  goodbye,     // our end of stream after our Goodbye
};

CloseReason reasonOf(Ending e) {
  switch (e) {
    case Ending::errorZero: return CloseReason::protocolError;
    case Ending::reject: return CloseReason::rejected;
    case Ending::peerError: return CloseReason::peerError;
    case Ending::handshakeTimeout: return CloseReason::handshakeTimeout;
    case Ending::deadTimeout: return CloseReason::deadTimeout;
    case Ending::drainTimeout: return CloseReason::drainTimeout;
    case Ending::peerClosed: return CloseReason::peerClosed;
    case Ending::goodbye: return CloseReason::goodbye;
  }
  KJ_UNREACHABLE;
}

struct Expected {
  Ending ending;
  kj::Maybe<ErrorCode> code;
  kj::String why;
};

// One request the session received, and what its answer must be.
struct Request {
  Request(Which kind, bool guaranteed) : kind(kind), guaranteed(guaranteed) {}
  Which kind;
  bool guaranteed;  // must get its terminal answer while the session stays open
  bool cancelled = false;
  bool done = false;  // terminal answer seen
  uint32_t nextPage = 0;
  kj::Maybe<Which> answerKind;
  kj::Maybe<ErrorCode> expectedError;  // null: the answer itself is due
  bool tooLargeOrChunk = false;        // at the frame limit: either is right
  // GetChunk
  kj::String itemId;
  uint32_t fileIndex = 0;
  uint64_t offset = 0;
  uint32_t length = 0;
  // GetManifest
  kj::Maybe<kj::Own<codec::ManifestAssembler>> manifest;
  // GetLibrary: the answer the library gives, and what the pages carried so far
  kj::Maybe<peer::library::LibraryAnswer> library;
  kj::Vector<kj::String> items;
  kj::Vector<kj::String> removals;
};

bool answers(Which request, Which answer) {
  switch (request) {
    case Which::GET_LIBRARY:
      return answer == Which::LIBRARY_SNAPSHOT || answer == Which::LIBRARY_DELTA;
    case Which::GET_MANIFEST: return answer == Which::MANIFEST;
    case Which::GET_CHUNK: return answer == Which::CHUNK;
    default: return false;
  }
}

// Size on the wire of the Chunk RequestServer builds for `length` bytes.
size_t chunkFrameBytes(uint32_t length) {
  auto frame = codec::newFrame(length / sizeof(capnp::word) + 16);
  auto chunk = codec::rootOf(*frame).initChunk();
  chunk.setId(1);
  chunk.initData(length);
  return codec::encodedSize(*frame);
}

// For failure messages: KJ cannot print a Maybe.
kj::StringPtr nameOf(kj::Maybe<ErrorCode> code) {
  KJ_IF_MAYBE (c, code) {
    return codec::name(*c);
  }
  return "none";
}
kj::StringPtr nameOf(kj::Maybe<CloseReason> reason) {
  KJ_IF_MAYBE (r, reason) {
    return name(*r);
  }
  return "still open";
}
kj::StringPtr textOf(const kj::Maybe<kj::String>& text) {
  KJ_IF_MAYBE (t, text) {
    return *t;
  }
  return "none";
}

void trace(kj::StringPtr direction, wire::Frame::Reader root) {
  if (!tracing) return;
  auto kind = root.which();
  auto line = kj::str(direction, ' ', codec::name(kind), ' ', codec::requestIdOf(root));
  if (kind == Which::ERROR) line = kj::str(line, ' ', codec::name(root.getError().getCode()));
  if (kind == Which::REJECT) line = kj::str(line, ' ', codec::name(root.getReject().getCode()));
  fprintf(stderr, "%s\n", line.cStr());
}

bool contains(kj::ArrayPtr<const kj::byte> haystack, kj::ArrayPtr<const kj::byte> needle) {
  return memmem(haystack.begin(), haystack.size(), needle.begin(), needle.size()) != nullptr;
}

class Conversation {
 public:
  explicit Conversation(uint8_t options) : handler(options & 1, options & 2), refuse(options & 1) {
    config.maxInFlight = kInFlight[(options >> 2) & 3];
    config.maxWriteBacklogBytes = kBacklogBudget;
    start = timer.now();
    auto pipe = kj::newTwoWayPipe();
    end = kj::mv(pipe.ends[0]);
    auto features = kj::heapArray<kj::String>(1);
    features[0] = kj::str("delta");
    session = kj::heap<Session>(plaintextTransport(kj::mv(pipe.ends[1])), Role::responder, config,
                                LocalPeer{kResponderId, kj::str("fuzz-responder"), kj::mv(features),
                                          world->library().summary(), 2002},
                                timer, handler, start, 1);
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
    uint8_t tag = in.byte();
    if (tracing) {
      static constexpr const char* kNames[] = {"FRAME",        "RAW",       "HELLO",  "GET_LIBRARY",
                                               "GET_MANIFEST", "GET_CHUNK", "CANCEL", "PING",
                                               "GOODBYE",      "ERROR",     "OTHER",  "ADVANCE",
                                               "RELEASE",      "PAUSE",     "RESUME", "BATCH"};
      fprintf(stderr, "[%s]\n", kNames[tag & 0x0f]);
    }
    switch (Tag(tag & 0x0f)) {
      case Tag::FRAME: emit(in.take(in.u16())); break;
      case Tag::RAW: emit(in.take(in.byte())); break;
      case Tag::HELLO: emitHello(in.byte()); break;
      case Tag::GET_LIBRARY: {
        uint64_t id = nextId(in.byte());
        uint8_t since = in.byte();
        auto frame = codec::newFrame();
        auto g = codec::rootOf(*frame).initGetLibrary();
        g.setId(id);
        switch (since & 3) {
          case 0: break;  // nothing held: a snapshot
          case 1:         // a revision of ours, maybe from the future
            g.setSinceEpoch(fuzz::kEpoch);
            g.setSinceRev(1 + (since >> 2) % 6);
            break;
          case 2:  // another epoch
            g.setSinceEpoch(fuzz::kEpoch + 1);
            g.setSinceRev(1);
            break;
          case 3: g.setSinceEpoch(fuzz::kEpoch); break;  // rev 0 with an epoch: invalid
        }
        emitRequest(*frame);
        break;
      }
      case Tag::GET_MANIFEST: {
        uint64_t id = nextId(in.byte());
        auto frame = codec::newFrame();
        auto g = codec::rootOf(*frame).initGetManifest();
        g.setId(id);
        g.setItemId(itemChoice(in.byte()));
        emitRequest(*frame);
        break;
      }
      case Tag::GET_CHUNK: {
        uint64_t id = nextId(in.byte());
        auto item = itemChoice(in.byte());
        uint8_t file = in.byte();
        uint8_t offset = in.byte();
        uint16_t length = in.u16();
        auto frame = codec::newFrame();
        auto g = codec::rootOf(*frame).initGetChunk();
        g.setId(id);
        g.setItemId(item);
        codec::Digest digest = idOf(0x77);
        KJ_IF_MAYBE (found, world->library().find(item)) {
          if (!(file & 0x40)) digest = (*found)->manifest.digest;
        }
        g.setManifestDigest(digest.asBytes());
        // "many" has 700 files: spread the small choices over them, and past the end.
        uint32_t index = file & 0x3f;
        if (item == "many") index *= 12;
        if (file & 0x80) index = 0xffffffffu - (file & 1);
        g.setFileIndex(index);
        uint64_t at = uint64_t(offset & 0x3f) * fuzz::kChunkSize + ((offset & 0x40) ? 100 : 0);
        if (offset & 0x80) at = (uint64_t(1) << 50) - (offset & 0x3f) * 1024;  // at the 2^50 edge
        g.setOffset(at);
        uint32_t bytes = length;
        if (length == 0xffff) {
          bytes = config.limits.maxChunkBytes + 1;  // above our limit: Error{range}
        } else if (length >= 0xff00) {
          bytes = 65536 - 512 + (length & 0xff) * 4;  // around the 64 KiB frame limit
        }
        g.setLength(bytes);
        emitRequest(*frame);
        break;
      }
      case Tag::CANCEL: {
        uint8_t which = in.byte();
        uint64_t id;
        switch (which >> 6) {
          case 0: id = lastIncomingId - kj::min(lastIncomingId, uint64_t(which & 0x3f)); break;
          case 1: id = oldestOpenRequest(); break;
          case 2: id = 0; break;                                     // invalid
          default: id = lastIncomingId + 1 + (which & 0x3f); break;  // never used: ignored
        }
        emitFrame(*codec::cancelFrame(id));
        break;
      }
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
      case Tag::OTHER: emitOther(in.byte()); break;
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
    }
  }

  // The end of the input: every answer owed, then our end of stream, then run() to completion.
  void finish() {
    batchLeft = 0;
    resume();
    flush();
    handler.release(0);
    settle();
    if (expected == nullptr && !goodbyeSent) {
      for (auto& entry : requests) {
        // [RQ-4]: exactly one terminal answer to every request, while the connection lasts.
        KJ_ASSERT(!entry.value.guaranteed || entry.value.done, "request never answered", entry.key,
                  codec::name(entry.value.kind));
      }
    }
    if (expected == nullptr && goodbyeSent && !stalled) {
      // [BYE-9]: with nothing of its own outstanding, the receiver of Goodbye ends its side.
      KJ_ASSERT(eof, "the session kept its write side open after our Goodbye");
    }

    // Our end of stream: inside a frame it is a truncation.
    if (expected == nullptr) {
      if (!shadowFailed && shadow.finish() != nullptr) {
        expect(Ending::errorZero, ErrorCode::PROTOCOL, "stream ended inside a frame");
      } else {
        expect(goodbyeSent && established ? Ending::goodbye : Ending::peerClosed, nullptr,
               "our end of stream");
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
  bool refuse;
  kj::TimePoint start = kj::origin<kj::TimePoint>();

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
  size_t framesIn = 0;
  bool finalSeen = false;  // Reject or Error{0} received
  kj::Maybe<ErrorCode> errorZeroSeen;
  kj::Maybe<ErrorCode> rejectSeen;
  size_t pingsIn = 0;
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

  // The model: what the session has received, and what it owes.
  // The session's reader, replayed: kMinFrameBytes until the handshake completes ([FR-9]).
  codec::FrameDecoder shadow{[]() {
    codec::Limits limits;
    limits.maxFrameBytes = codec::kMinFrameBytes;
    return limits;
  }()};
  bool shadowFailed = false;
  bool established = false;
  kj::Maybe<Expected> expected;  // set once the session must end
  uint64_t lastIncomingId = 0;
  kj::TimePoint lastReceived = kj::origin<kj::TimePoint>();
  bool pingDue = false;
  size_t pingsPredicted = 0;
  bool goodbyeSent = false;
  kj::TimePoint goodbyeAt = kj::origin<kj::TimePoint>();
  uint32_t maxFrameBytes = codec::kMinFrameBytes;  // ours, as our Hello announced it
  uint32_t maxChunkBytes = 1;                      // ours, likewise
  kj::HashMap<uint64_t, Request> requests;
  kj::Vector<uint64_t> pingNonces;

  // --- building what we send ------------------------------------------------------------------

  uint64_t nextId(uint8_t step) {
    if (step < 0xe0) return lastIncomingId + 1 + (step >= 0x80 ? (step & 0x1f) : 0);
    if (step < 0xf0) return lastIncomingId - (step & 1);  // reused or lower: a protocol error
    return lastIncomingId + (uint64_t(1) << 62) + (step & 0x0f);
  }

  kj::StringPtr itemChoice(uint8_t b) {
    switch (b % 8) {
      case 6: return "Alpha";               // ids are case-sensitive
      case 7: return b & 8 ? ".." : "a/b";  // not an item id at all: a protocol error
      default: return fuzz::kItemIds[b % 8];
    }
  }

  uint64_t oldestOpenRequest() {
    uint64_t best = 0;
    for (auto& entry : requests) {
      if (!entry.value.done && (best == 0 || entry.key < best)) best = entry.key;
    }
    return best == 0 ? lastIncomingId : best;
  }

  void emitHello(uint8_t choices) {
    static constexpr uint16_t kVersions[4][2] = {{1, 1}, {1, 1}, {2, 3}, {1, 2}};
    static constexpr uint32_t kFrameLimits[4] = {16 << 20, codec::kMinFrameBytes, 1 << 20,
                                                 codec::kMinFrameBytes - 1};
    static constexpr uint32_t kInFlightLimits[4] = {64, 1, 4, 0};
    auto frame = codec::newFrame();
    auto hello = codec::rootOf(*frame).initHello();
    hello.setVersionMin(kVersions[choices & 3][0]);
    hello.setVersionMax(kVersions[choices & 3][1]);
    hello.setPeerId(((choices & 4) ? kResponderId : kInitiatorId).asBytes());
    hello.setName("fuzz-initiator");
    hello.initFeatures(1).set(0, "delta");
    codec::Summary{1, 1, idOf(0xcd)}.toWire(hello.initLibrary());
    auto limits = hello.initLimits();
    uint32_t frameLimit = kFrameLimits[(choices >> 3) & 3];
    limits.setMaxFrameBytes(frameLimit);
    limits.setMaxInFlight(kInFlightLimits[(choices >> 5) & 3]);
    // [FR-19]: as large as the frames allow (the 64 KiB - 1 frames are invalid anyway).
    limits.setMaxChunkBytes(
        (choices & 0x80) ? 4096
                         : kj::min(uint32_t(4) << 20, frameLimit - codec::kFrameOverheadBytes));
    hello.setInstanceId(99);
    emitFrame(*frame);
  }

  void emitOther(uint8_t kind) {
    auto frame = codec::newFrame();
    auto root = codec::rootOf(*frame);
    uint64_t id = lastIncomingId == 0 ? 1 : lastIncomingId;
    switch (kind % 8) {
      case 0: root.initPong().setNonce(kind); break;
      case 1:
        codec::Summary{1, 2, idOf(0xce)}.toWire(root.initLibraryChanged().initSummary());
        break;
      case 2: {
        auto ack = root.initHelloAck();
        ack.setVersion(1);
        ack.setPeerId(kInitiatorId.asBytes());
        ack.setName("fuzz");
        codec::Summary{1, 1, idOf(0xcd)}.toWire(ack.initLibrary());
        auto limits = ack.initLimits();
        limits.setMaxFrameBytes(codec::kMinFrameBytes);
        limits.setMaxInFlight(1);
        limits.setMaxChunkBytes(4096);
        ack.setInstanceId(99);
        break;
      }
      case 3: {
        auto reject = root.initReject();
        reject.setCode(ErrorCode::BUSY);
        reject.setMessage("fuzz");
        break;
      }
      case 4: {
        auto a = root.initAnnounce();
        a.setPeerId(kInitiatorId.asBytes());
        a.setInstanceId(99);
        a.setPort(1);
        a.setName("fuzz");
        a.setVersionMin(1);
        a.setVersionMax(1);
        codec::Summary{1, 1, idOf(0xcd)}.toWire(a.initSummary());
        break;
      }
      case 5: {
        auto c = root.initChunk();
        c.setId(id);
        c.initData(8);
        break;
      }
      case 6: {
        auto s = root.initLibrarySnapshot();
        s.setId(id);
        codec::Summary{1, 1, idOf(0xcd)}.toWire(s.initSummary());
        s.setLast(true);
        break;
      }
      default: {
        auto m = root.initManifest();
        m.setId(id);
        m.setItemId("alpha");
        m.setDigest(idOf(0x55).asBytes());
        m.setChunkSize(fuzz::kChunkSize);
        m.setLast(true);
      }
    }
    emitFrame(*frame);
  }

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
    if (expected != nullptr) {  // it reads no further: what is pending goes, nothing more
      batchLeft = 0;
      flush();
      return;
    }
    if (paused) ++framesWhilePaused;
    replay(bytes);
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
    auto now = timer.now() + (amount & 0x3f) * kUnits[amount >> 6];
    if (paused) stalled = true;
    // Frames it has not read yet will reach it later than the model assumed.
    if (!inSync()) timingUnknown = true;
    if (tracing)
      fprintf(stderr, "time +%lld ms\n", (long long)((now - timer.now()) / kj::MILLISECONDS));
    predictTime(now);
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
    if (tracing)
      fprintf(stderr, "backlog %llu (bound %llu)\n", (unsigned long long)queued,
              (unsigned long long)bound);
    KJ_ASSERT(queued <= bound,
              "the session queued answers without bound for a peer that does not read", queued,
              bound, config.maxInFlight);
  }

  // --- the model ------------------------------------------------------------------------------

  void expect(Ending ending, kj::Maybe<ErrorCode> code, kj::StringPtr why) {
    if (expected == nullptr) expected = Expected{ending, code, kj::str(why)};
  }

  void replay(kj::ArrayPtr<const kj::byte> bytes) {
    for (size_t at = 0; at < bytes.size() && !shadowFailed;) {
      auto space = shadow.writable();
      size_t n = kj::min(space.size(), bytes.size() - at);
      memcpy(space.begin(), bytes.begin() + at, n);
      shadow.commit(n);
      at += n;
      for (;;) {
        auto next = shadow.next();
        if (next == nullptr) break;
        KJ_SWITCH_ONEOF(KJ_ASSERT_NONNULL(next)) {
          KJ_CASE_ONEOF(frame, codec::InboundFrame) {
            received(frame);
          }
          KJ_CASE_ONEOF(failure, codec::Failure) {
            if (failure.requestId == nullptr) shadowFailed = true;
            received(failure);
          }
        }
        if (shadowFailed) break;
      }
    }
  }

  // A frame the session will process, at the current time.
  void received(const codec::InboundFrame& frame) {
    trace("->", frame.root());
    if (expected != nullptr) return;
    auto now = timer.now();
    auto root = frame.root();
    auto kind = root.which();
    if (!established) {
      if (kind == Which::HELLO) {
        auto hello = root.getHello();
        if (hello.getVersionMin() > 1) {
          expect(Ending::reject, ErrorCode::UNSUPPORTED_VERSION, "no common version");
        } else if (KJ_ASSERT_NONNULL(codec::Digest::from(hello.getPeerId())) == kResponderId) {
          expect(Ending::reject, ErrorCode::UNTRUSTED, "connection to self");
        } else if (refuse) {
          expect(Ending::reject, ErrorCode::BUSY, "the owner refuses");
        } else {
          established = true;
          shadow.setMaxFrameBytes(config.limits.maxFrameBytes);
          lastReceived = now;
          maxFrameBytes = hello.getLimits().getMaxFrameBytes();
          maxChunkBytes = hello.getLimits().getMaxChunkBytes();
        }
      } else if (kind == Which::ERROR && root.getError().getId() == 0) {
        expect(Ending::peerError, nullptr, "Error{0} from us");
      } else {
        expect(Ending::errorZero, ErrorCode::PROTOCOL, "[HS-3] not Hello first");
      }
      return;
    }
    lastReceived = now;
    pingDue = false;
    switch (kind) {
      case Which::HELLO:
      case Which::HELLO_ACK:
      case Which::REJECT:
      case Which::ANNOUNCE:
      case Which::LIBRARY_SNAPSHOT:
      case Which::LIBRARY_DELTA:
      case Which::MANIFEST:
      case Which::CHUNK: expect(Ending::errorZero, ErrorCode::PROTOCOL, codec::name(kind)); break;
      case Which::ERROR:
        if (root.getError().getId() == 0) {
          expect(Ending::peerError, nullptr, "Error{0} from us");
        } else {
          expect(Ending::errorZero, ErrorCode::PROTOCOL, "[RQ-11] an answer to nothing");
        }
        break;
      case Which::GET_LIBRARY:
      case Which::GET_MANIFEST:
      case Which::GET_CHUNK: request(root); break;
      case Which::CANCEL:
        KJ_IF_MAYBE (r, requests.find(root.getCancel().getId())) {
          r->cancelled = true;
        }
        break;
      case Which::PING: pingNonces.add(root.getPing().getNonce()); break;
      case Which::PONG:
      case Which::LIBRARY_CHANGED: break;
      case Which::GOODBYE:
        if (!goodbyeSent) {
          goodbyeSent = true;
          goodbyeAt = now;
        }
        break;
    }
  }

  void received(const codec::Failure& failure) {
    if (tracing) fprintf(stderr, "-> broken frame: %s\n", failure.message.cStr());
    if (expected != nullptr) return;
    KJ_IF_MAYBE (id, failure.requestId) {
      if (established) {
        // A GetChunk whose only fault is its range: answered Error{id, range} ([RQ-8]).
        lastReceived = timer.now();
        pingDue = false;
        if (*id <= lastIncomingId) {
          expect(Ending::errorZero, ErrorCode::PROTOCOL, "[RQ-3] request id not increasing");
          return;
        }
        lastIncomingId = *id;
        Request r(Which::GET_CHUNK, !goodbyeSent);
        r.expectedError = ErrorCode::RANGE;
        requests.insert(*id, kj::mv(r));
        return;
      }
    }
    expect(Ending::errorZero, codec::toWireCode(failure.error), failure.message);
  }

  void request(wire::Frame::Reader root) {
    uint64_t id = codec::requestIdOf(root);
    if (id <= lastIncomingId) {
      expect(Ending::errorZero, ErrorCode::PROTOCOL, "[RQ-3] request id not increasing");
      return;
    }
    lastIncomingId = id;
    auto& lib = world->library();
    Request r(root.which(), !goodbyeSent);
    switch (root.which()) {
      case Which::GET_LIBRARY: {
        auto g = root.getGetLibrary();
        r.library = lib.answer(g.getSinceEpoch(), g.getSinceRev());
        break;
      }
      case Which::GET_MANIFEST: {
        kj::StringPtr item = root.getGetManifest().getItemId();
        if (lib.find(item) != nullptr) {
          r.manifest = kj::heap<codec::ManifestAssembler>(item);
          r.itemId = kj::str(item);
        } else {
          r.expectedError = lib.isDownloading(item) ? ErrorCode::UNAVAILABLE : ErrorCode::NOT_FOUND;
        }
        break;
      }
      default: {
        auto g = root.getGetChunk();
        r.itemId = kj::str(g.getItemId());
        r.fileIndex = g.getFileIndex();
        r.offset = g.getOffset();
        r.length = g.getLength();
        r.expectedError =
            chunkVerdict(r, KJ_ASSERT_NONNULL(codec::Digest::from(g.getManifestDigest())));
      }
    }
    requests.insert(id, kj::mv(r));
  }

  // Table 4, in its order; null when the Chunk is due.
  kj::Maybe<ErrorCode> chunkVerdict(Request& r, const codec::Digest& digest) {
    auto& lib = world->library();
    KJ_IF_MAYBE (item, lib.find(r.itemId)) {
      auto& manifest = (*item)->manifest;
      if (digest != manifest.digest) return ErrorCode::STALE;
      if (r.fileIndex >= manifest.files.size()) return ErrorCode::NOT_FOUND;
      uint64_t size = manifest.files[r.fileIndex].size;
      if (r.offset > size || r.length > size - r.offset) return ErrorCode::RANGE;
      if (r.length > maxChunkBytes) return ErrorCode::RANGE;  // [CHK-4]: above what we announced
      auto& file = KJ_ASSERT_NONNULL(world->file(r.itemId, r.fileIndex));
      if (file.swapped) return ErrorCode::STALE;  // [CHK-3]: no longer the file hashed
      // Table 4 #7: the Chunk frame must fit our limit. A responder may keep a margin for the
      // frame's fields (codec::kFrameOverheadBytes) and refuse a chunk that would just fit.
      size_t bytes = chunkFrameBytes(r.length);
      if (r.length + codec::kFrameOverheadBytes > maxFrameBytes) r.tooLargeOrChunk = true;
      if (bytes > maxFrameBytes) {
        return ErrorCode::TOO_LARGE;  // Table 4 #7
      }
      return nullptr;
    }
    return lib.isDownloading(r.itemId) ? ErrorCode::UNAVAILABLE : ErrorCode::NOT_FOUND;
  }

  void predictTime(kj::TimePoint now) {
    if (expected != nullptr) return;
    if (!established) {
      if (now >= start + config.handshakeTimeout) {
        expect(Ending::handshakeTimeout, nullptr, "[HS-6]");
      }
      return;
    }
    if (timingUnknown) return;  // adopted from what the session does, in settle()
    if (goodbyeSent && now >= goodbyeAt + config.drainTimeout) {
      expect(Ending::drainTimeout, nullptr, "[BYE-9] drain deadline");
    } else if (now - lastReceived >= config.deadTimeout) {
      expect(Ending::deadTimeout, nullptr, "dead peer");
    } else if (!pingDue && now - lastReceived >= config.idleTimeout) {
      pingDue = true;
      ++pingsPredicted;
    }
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
          check(frame);
        }
        KJ_CASE_ONEOF(failure, codec::Failure) {
          KJ_FAIL_ASSERT("the session sent bytes that do not decode", failure.error,
                         failure.message);
        }
      }
    }
    inbox.clear();
    if (paused) checkBacklog();
    if (timingUnknown && expected == nullptr && session->isClosed()) {
      // Which of our frames arrived before a deadline is unknown: adopt a timeout it chose.
      auto reason = KJ_ASSERT_NONNULL(handler.reason);
      if (reason == CloseReason::deadTimeout) expect(Ending::deadTimeout, nullptr, "dead peer");
      if (reason == CloseReason::drainTimeout) expect(Ending::drainTimeout, nullptr, "drain");
    }
    if (inSync() && !runDone) {
      KJ_IF_MAYBE (e, expected) {
        KJ_ASSERT(
            session->isClosed() || e->ending == Ending::peerClosed || e->ending == Ending::goodbye,
            "the session should have closed", e->why);
      } else {
        KJ_ASSERT(!session->isClosed(), "the session closed for no reason the model knows",
                  nameOf(handler.reason), handler.detail);
      }
    }
  }

  void check(const codec::InboundFrame& frame) {
    auto root = frame.root();
    auto kind = root.which();
    auto bytes = frame.bytes();
    trace("<-", root);
    KJ_ASSERT(!finalSeen, "a frame after Reject / Error{0}", codec::name(kind));
    KJ_ASSERT(!contains(bytes, fuzz::kMarker.asBytes()), "bytes from outside the library");
    if (++framesIn == 1) {
      // [HS-2]: the first frame answers the Hello (or the frame that was not one).
      KJ_ASSERT(kind == Which::HELLO_ACK || kind == Which::REJECT ||
                    (kind == Which::ERROR && root.getError().getId() == 0),
                codec::name(kind));
      KJ_ASSERT(bytes.size() <= codec::kMinFrameBytes);
    } else {
      KJ_ASSERT(bytes.size() <= maxFrameBytes, "[RQ-9] above our maxFrameBytes", bytes.size(),
                maxFrameBytes);
    }
    switch (kind) {
      case Which::HELLO_ACK: {
        KJ_ASSERT(framesIn == 1 && established, "HelloAck without an acceptable Hello");
        auto ack = root.getHelloAck();
        KJ_ASSERT(ack.getVersion() == 1 && ack.getPeerId() == kResponderId.asBytes());
        break;
      }
      case Which::REJECT: {
        finalSeen = true;
        rejectSeen = root.getReject().getCode();
        KJ_ASSERT(framesIn == 1, "[HS-12] Reject after the handshake");
        break;
      }
      case Which::ERROR:
        if (root.getError().getId() == 0) {
          finalSeen = true;
          errorZeroSeen = root.getError().getCode();
        } else {
          answer(root);
        }
        break;
      case Which::PONG: {
        // Every Pong echoes a Ping of ours.
        uint64_t nonce = root.getPong().getNonce();
        bool found = false;
        for (auto& n : pingNonces) {
          if (n == nonce && !found) {
            n = pingNonces.back();
            pingNonces.removeLast();
            found = true;
            break;
          }
        }
        KJ_ASSERT(found, "a Pong for no Ping", nonce);
        break;
      }
      case Which::PING:
        // [LIV]: only after idleTimeout of silence, once per silence.
        KJ_ASSERT(++pingsIn <= pingsPredicted || timingUnknown, "a Ping before the peer was idle");
        break;
      case Which::LIBRARY_SNAPSHOT:
      case Which::LIBRARY_DELTA:
      case Which::MANIFEST:
      case Which::CHUNK: answer(root); break;
      default: KJ_FAIL_ASSERT("the responder sent", codec::name(kind));
    }
  }

  void answer(wire::Frame::Reader root) {
    auto kind = root.which();
    uint64_t id = codec::requestIdOf(root);
    auto& r = KJ_ASSERT_NONNULL(requests.find(id), "an answer to a request never made", id);
    KJ_ASSERT(!r.done, "[RQ-4] a frame after the terminal answer", id, codec::name(kind));
    if (kind == Which::ERROR) {
      auto code = root.getError().getCode();
      r.done = true;
      bool ok = (code == ErrorCode::BUSY && r.nextPage == 0) ||
                (code == ErrorCode::CANCELLED && r.cancelled) ||
                (r.nextPage == 0 && r.expectedError == code) ||
                (code == ErrorCode::TOO_LARGE && r.tooLargeOrChunk);
      KJ_ASSERT(ok, "wrong Error", id, codec::name(r.kind), codec::name(code),
                nameOf(r.expectedError), r.itemId, r.fileIndex, r.offset, r.length);
      return;
    }
    KJ_ASSERT(answers(r.kind, kind), "[RQ-13] wrong answer kind", id, codec::name(kind));
    KJ_ASSERT(r.expectedError == nullptr, "an answer where Error was due", id, codec::name(kind),
              codec::name(KJ_ASSERT_NONNULL(r.expectedError)), r.itemId, r.fileIndex, r.offset,
              r.length);
    KJ_IF_MAYBE (first, r.answerKind) {
      KJ_ASSERT(*first == kind, "[RQ-5] pages of two kinds", id);
    }
    r.answerKind = kind;
    uint32_t page = r.nextPage++;
    switch (kind) {
      case Which::CHUNK: {
        // [CHK-2]: exactly the bytes hashed, from the listed file.
        auto data = root.getChunk().getData();
        auto& file = KJ_ASSERT_NONNULL(world->file(r.itemId, r.fileIndex));
        KJ_ASSERT(!file.swapped, "served a file swapped for a symlink", r.itemId, r.fileIndex);
        KJ_ASSERT(data.size() == r.length);
        KJ_ASSERT(data == file.content.slice(r.offset, r.offset + r.length), "wrong bytes",
                  r.itemId, r.fileIndex, r.offset, r.length);
        r.done = true;
        break;
      }
      case Which::MANIFEST: {
        auto m = root.getManifest();
        KJ_ASSERT(m.getPage() == page, "[RQ-5] page out of order", id);
        auto& assembler = *KJ_ASSERT_NONNULL(r.manifest);
        KJ_IF_MAYBE (failure, assembler.feed(m)) {
          KJ_FAIL_ASSERT("[RQ-6] an invalid manifest page", failure->error, failure->message);
        }
        KJ_ASSERT(m.getLast() == assembler.isComplete(), "last flag and completeness differ");
        if (m.getLast()) {
          auto item = KJ_ASSERT_NONNULL(world->library().find(r.itemId));
          KJ_ASSERT(assembler.take().digest == item->manifest.digest, "another manifest");
          r.done = true;
        }
        break;
      }
      case Which::LIBRARY_SNAPSHOT: {
        auto s = root.getLibrarySnapshot();
        auto& due = KJ_ASSERT_NONNULL(r.library);
        KJ_ASSERT(due.kind == peer::library::LibraryAnswer::Kind::snapshot, "snapshot, not delta");
        KJ_ASSERT(s.getPage() == page && codec::Summary::fromWire(s.getSummary()) == due.summary);
        for (auto e : s.getItems())
          r.items.add(kj::str(e.getItemId()));
        KJ_ASSERT(s.getLast() || s.getItems().size() > 0, "[RQ-5] an empty page before the last");
        if (s.getLast()) {
          KJ_ASSERT(r.items.size() == due.items.size());
          for (auto i : kj::indices(due.items))
            KJ_ASSERT(r.items[i] == due.items[i]->itemId());
          r.done = true;
        }
        break;
      }
      case Which::LIBRARY_DELTA: {
        auto d = root.getLibraryDelta();
        auto& due = KJ_ASSERT_NONNULL(r.library);
        KJ_ASSERT(due.kind == peer::library::LibraryAnswer::Kind::delta, "delta, not snapshot");
        KJ_ASSERT(d.getPage() == page && codec::Summary::fromWire(d.getSummary()) == due.summary);
        KJ_ASSERT(d.getFromRev() == due.fromRev);
        for (auto e : d.getUpserts())
          r.items.add(kj::str(e.getItemId()));
        for (auto e : d.getRemovals())
          r.removals.add(kj::str(e));
        if (d.getLast()) {
          KJ_ASSERT(r.items.size() == due.items.size() && r.removals.size() == due.removals.size());
          r.done = true;
        }
        break;
      }
      default: KJ_UNREACHABLE;
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
    auto& e = KJ_ASSERT_NONNULL(expected);
    auto reason = KJ_ASSERT_NONNULL(handler.reason);
    if (timingUnknown &&
        (reason == CloseReason::deadTimeout || reason == CloseReason::drainTimeout)) {
      // A deadline passed while frames of ours waited unread: it may have come first.
      KJ_ASSERT(errorZeroSeen == nullptr && rejectSeen == nullptr);
      return;
    }
    KJ_ASSERT(reason == reasonOf(e.ending), "closed for another reason", name(reason),
              handler.detail, e.why);
    if (stalled) return;
    switch (e.ending) {
      case Ending::errorZero:
        // [ERR-2]: Error{0, code} is its last frame — unless, drained after our Goodbye, it had
        // already ended its write side ([BYE-9]).
        KJ_IF_MAYBE (code, errorZeroSeen) {
          KJ_IF_MAYBE (want, e.code) {
            KJ_ASSERT(*code == *want, codec::name(*code), codec::name(*want), e.why);
          }
        } else {
          KJ_ASSERT(goodbyeSent, "closed on a protocol error without Error{0}", e.why);
        }
        break;
      case Ending::reject:
        KJ_ASSERT(rejectSeen == e.code, "[HS-12] Reject with another code", e.why);
        break;
      default:
        // Timeouts, our Error{0} and our end of stream close without a word ([ERR-6]).
        KJ_ASSERT(errorZeroSeen == nullptr && rejectSeen == nullptr, "an Error{0} / Reject", e.why,
                  nameOf(errorZeroSeen));
    }
  }
};

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  // The session logs what it refuses; the target checks behaviour on the wire instead.
  if (getenv("SHOAL_FUZZ_LOG") == nullptr) kj::_::Debug::setLogLevel(kj::LogSeverity::FATAL);
  tracing = getenv("SHOAL_FUZZ_TRACE") != nullptr;
  static fuzz::LibraryFixture fixture;
  world = &fixture;
  largestAnswer = 0;
  for (auto& item : world->library().items()) {
    size_t manifest = 0;
    for (auto& page : codec::manifestPages(1, item->manifest, 16 << 20))
      manifest += codec::encodedSize(*page);
    largestAnswer = kj::max(largestAnswer, manifest);
    for (auto& file : item->manifest.files)
      largestAnswer = kj::max(largestAnswer, chunkFrameBytes(file.size));
  }
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1 || size > kMaxInput) return 0;
  if (world == nullptr) LLVMFuzzerInitialize(nullptr, nullptr);
  Input in(data + 1, size - 1);
  Conversation conversation(data[0]);
  while (!in.done())
    conversation.step(in);
  conversation.finish();
  return 0;
}
