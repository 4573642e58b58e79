// shoal-fuzz-seeds: records real conversations into the seed corpora of the `handshake` and
// `session` targets — SessionCore pairs and Session pairs driven as their tests drive them, with
// what one side sent written in the target's input format. Run: shoal-fuzz-seeds fuzz/corpus
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include <kj/async-io.h>
#include <kj/debug.h>
#include <kj/io.h>
#include <kj/timer.h>
#include <shoal/codec/frame.h>
#include <shoal/codec/frames.h>
#include <shoal/peer/session/session-core.h>
#include <shoal/peer/session/session.h>
#include <shoal/peer/transport/transport.h>

#include "session/test-peers.h"
#include "targets/session-fixture.h"
#include "targets/session-script.h"

using namespace shoal;
using namespace shoal::peer;
using Which = wire::Frame::Which;
using test::idOf;
using test::snapshotPage;

namespace {

kj::String corpus;
size_t written = 0;

void writeSeed(kj::StringPtr target, kj::StringPtr name, kj::ArrayPtr<const kj::byte> bytes) {
  auto dir = kj::str(corpus, '/', target, "/seeds");
  auto path = kj::str(dir, '/', name);
  int fd;
  KJ_SYSCALL(fd = open(path.cStr(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644), path);
  kj::FdOutputStream(kj::AutoCloseFd(fd)).write(bytes.begin(), bytes.size());
  ++written;
}

// The frames in a recorded byte stream.
kj::Vector<kj::Array<kj::byte>> split(kj::ArrayPtr<const kj::byte> bytes) {
  kj::Vector<kj::Array<kj::byte>> frames;
  codec::FrameDecoder decoder{codec::Limits()};
  for (size_t at = 0; at < bytes.size();) {
    auto space = decoder.writable();
    size_t n = kj::min(space.size(), bytes.size() - at);
    memcpy(space.begin(), bytes.begin() + at, n);
    decoder.commit(n);
    at += n;
    for (;;) {
      auto next = decoder.next();
      if (next == nullptr) break;
      auto& frame = KJ_ASSERT_NONNULL(next).get<codec::InboundFrame>();
      frames.add(kj::heapArray(frame.bytes()));
    }
  }
  return frames;
}

// ================================================================================================
// handshake: SessionCore pairs, as session-core-test.c++ drives them. A is the initiator.

struct Sent {
  kj::Array<kj::byte> bytes;
  kj::TimePoint at;
};

struct CorePair {
  SessionConfig configA, configB;
  kj::TimePoint now = kj::origin<kj::TimePoint>() + 1000 * kj::SECONDS;
  kj::Maybe<SessionCore> a, b;
  kj::Maybe<wire::ErrorCode> refuse;
  kj::Vector<Sent> aToB, bToA;
  kj::Vector<uint64_t> incomingB;  // B's requests to answer, in order

  void start() {
    a.emplace(Role::initiator, configA, test::testPeer(1, "alpha"), nullptr, now);
    b.emplace(Role::responder, configB, test::testPeer(2, "beta"), nullptr, now);
  }
  SessionCore& A() { return KJ_ASSERT_NONNULL(a); }
  SessionCore& B() { return KJ_ASSERT_NONNULL(b); }

  void exchange() {
    for (;;) {
      bool moved = deliver(A(), B(), aToB);
      moved = deliver(B(), A(), bToA) || moved;
      for (auto& e : A().takeEvents())
        (void)e;
      for (auto& e : B().takeEvents()) {
        if (e.is<event::HelloReceived>()) {
          KJ_IF_MAYBE (code, refuse) {
            B().rejectHello(*code, "refused by the recorder");
          } else {
            B().acceptHello(now);
          }
          moved = true;
        }
        KJ_IF_MAYBE (r, e.tryGet<event::IncomingRequest>()) {
          incomingB.add(r->id);
        }
      }
      if (!moved) return;
    }
  }

  bool deliver(SessionCore& from, SessionCore& to, kj::Vector<Sent>& log) {
    auto frames = from.takeOutgoing();
    for (auto& f : frames) {
      auto bytes = codec::encodeFrame(*f);
      auto decoded = codec::decodeFrame(bytes);
      to.onFrame(kj::mv(decoded.get<codec::InboundFrame>()), now);
      log.add(Sent{kj::mv(bytes), now});
    }
    return frames.size() > 0;
  }

  void tick(kj::Duration d) {
    now += d;
    A().onTick(now);
    B().onTick(now);
    exchange();
  }
};

// One seed of the `handshake` target: header, tape, the other side's bytes. With a clock unit of
// one second, the tape replays the recorded delays before each frame; `actions` adds the owner's
// action bits (bits 6-7) per frame.
void handshakeSeed(kj::StringPtr name, uint8_t options, uint32_t plan,
                   kj::ArrayPtr<const Sent> stream, kj::ArrayPtr<const uint8_t> actions = nullptr,
                   kj::Maybe<size_t> cut = nullptr) {
  kj::Vector<uint8_t> tape;
  bool timed = false;
  auto previous = stream.size() > 0 ? stream[0].at : kj::origin<kj::TimePoint>();
  for (auto i : kj::indices(stream)) {
    uint64_t seconds = (stream[i].at - previous) / kj::SECONDS;
    previous = stream[i].at;
    KJ_ASSERT(seconds < 64);
    if (seconds > 0) timed = true;
    tape.add(uint8_t(seconds) | (i < actions.size() ? actions[i] : 0));
  }
  if (!timed && actions.size() == 0) tape.clear();
  KJ_ASSERT(tape.size() < 16, "too many frames for the tape", name);
  kj::Vector<kj::byte> out;
  out.add(options);
  out.add(uint8_t(2 | plan << 2 | tape.size() << 4));  // unit: 1 s
  out.addAll(tape);
  for (auto& s : stream)
    out.addAll(s.bytes);
  KJ_IF_MAYBE (n, cut) {
    out.truncate(out.size() - *n);
  }
  writeSeed("handshake", name, out);
}

// The option bits of the `handshake` target's first byte (handshake.c++).
constexpr uint8_t kResponder = 0, kInitiator = 1, kAuthenticated = 2, kSpoofed = 6, kRefuse = 8,
                  kSmallInFlight = 0x40;

void recordHello() {
  CorePair p;
  p.start();
  p.exchange();
  handshakeSeed("hello", kResponder, 0, p.aToB);
  handshakeSeed("hello-authenticated", kResponder | kAuthenticated, 0, p.aToB);
  handshakeSeed("hello-spoofed", kResponder | kSpoofed, 0, p.aToB);
  handshakeSeed("hello-truncated", kResponder, 0, p.aToB, nullptr, size_t(9));
  handshakeSeed("hello-ack", kInitiator, 0, p.bToA);
  handshakeSeed("hello-ack-authenticated", kInitiator | kAuthenticated, 0, p.bToA);
  handshakeSeed("hello-ack-spoofed", kInitiator | kSpoofed, 0, p.bToA);
}

// Requests both ways of answering, then a Goodbye drain.
void recordRequests() {
  CorePair p;
  p.start();
  p.exchange();
  for (uint32_t n = 0; n < 3; ++n)
    p.A().request(test::requestFrame(n));
  p.exchange();
  KJ_ASSERT(p.incomingB.size() == 3);
  p.B().answer(1, snapshotPage(1, 0, false), false);
  p.B().answer(1, snapshotPage(1, 1, true), true);
  {
    auto frame = codec::newFrame();
    auto m = codec::rootOf(*frame).initManifest();
    m.setId(2);
    m.setItemId("item");
    m.setDigest(idOf(9).asBytes());
    m.setChunkSize(4096);
    m.setLast(true);
    p.B().answer(2, kj::mv(frame), true);
  }
  {
    auto frame = codec::newFrame(600);
    auto c = codec::rootOf(*frame).initChunk();
    c.setId(3);
    c.initData(4096);
    p.B().answer(3, kj::mv(frame), true);
  }
  p.exchange();
  p.A().goodbye(wire::GoodbyeReason::IDLE, "done", p.now);
  p.exchange();
  handshakeSeed("requests", kResponder, 0, p.aToB);
  uint8_t answer[] = {0, 0x80, 0x80, 0x80, 0};
  handshakeSeed("requests-answered", kResponder, 0, p.aToB, answer);
  handshakeSeed("answers", kInitiator, 3, p.bToA);
}

void recordVersionMismatch() {
  CorePair p;
  p.configA.versionMin = 2;
  p.configA.versionMax = 3;
  p.start();
  p.exchange();
  handshakeSeed("version-mismatch", kResponder, 0, p.aToB);
  handshakeSeed("reject-version", kInitiator, 0, p.bToA);
}

void recordRefused() {
  CorePair p;
  p.refuse = wire::ErrorCode::UNTRUSTED;
  p.start();
  p.exchange();
  handshakeSeed("refused", kResponder | kRefuse, 0, p.aToB);
  handshakeSeed("reject-untrusted", kInitiator, 0, p.bToA);
}

// Idle: both sides ping after 16 s of silence, then the other side falls silent.
void recordPing() {
  CorePair p;
  p.start();
  p.exchange();
  p.tick(16 * kj::SECONDS);
  handshakeSeed("ping", kResponder, 0, p.aToB);
  handshakeSeed("ping-ack", kInitiator, 0, p.bToA);
}

void recordCancel() {
  CorePair p;
  p.start();
  p.exchange();
  uint64_t id = p.A().request(test::requestFrame(0));
  p.exchange();
  p.A().cancel(id);
  p.exchange();
  handshakeSeed("cancel", kResponder, 0, p.aToB);
  uint8_t cancelFirst[] = {0, 0x80};  // our kInitiator cancels before the Error{cancelled}
  handshakeSeed("cancelled", kInitiator, 1, p.bToA, cancelFirst);
}

// More requests than the kResponder allows: Error{busy}.
void recordBusy() {
  CorePair p;
  p.configB.maxInFlight = 2;
  p.start();
  p.exchange();
  kj::Vector<Sent> stream;
  stream.add(Sent{kj::heapArray(p.aToB[0].bytes.asPtr()), p.now});
  for (uint64_t id = 1; id <= 3; ++id) {
    auto frame = test::requestFrame(2);
    codec::setRequestId(codec::rootOf(*frame), id);
    stream.add(Sent{codec::encodeFrame(*frame), p.now});
  }
  handshakeSeed("busy", kResponder | kSmallInFlight, 0, stream);
}

// The kResponder leaves with a request of ours in flight, answers it, drains.
void recordGoodbyeDrain() {
  CorePair p;
  p.start();
  p.exchange();
  p.A().request(test::requestFrame(0));
  p.exchange();
  p.B().goodbye(wire::GoodbyeReason::SHUTDOWN, "stopping", p.now);
  p.B().answer(1, snapshotPage(1, 0, true), true);
  p.exchange();
  handshakeSeed("goodbye-drain", kInitiator, 1, p.bToA);
}

void recordLibraryChanged() {
  CorePair p;
  p.start();
  p.exchange();
  p.B().notifyLibraryChanged(codec::Summary{7, 2, idOf(0xAC)});
  p.exchange();
  handshakeSeed("library-changed", kInitiator, 0, p.bToA);
}

// Out of place first frames, and a request-level range fault.
void recordOutOfPlace() {
  CorePair p;
  p.start();
  p.exchange();
  auto hello = kj::heapArray(p.aToB[0].bytes.asPtr());
  kj::Vector<Sent> ping;
  ping.add(Sent{codec::encodeFrame(*codec::pingFrame(7)), p.now});
  handshakeSeed("ping-first", kResponder, 0, ping);
  handshakeSeed("ping-first-to-initiator", kInitiator, 0, ping);
  kj::Vector<Sent> error;
  error.add(Sent{codec::encodeFrame(*codec::errorFrame(0, wire::ErrorCode::BUSY, "go")), p.now});
  handshakeSeed("error-first", kResponder, 0, error);
  handshakeSeed("error-first-to-initiator", kInitiator, 0, error);
  kj::Vector<Sent> range;
  range.add(Sent{kj::mv(hello), p.now});
  auto frame = test::requestFrame(2);
  codec::rootOf(*frame).getGetChunk().setLength(0);
  codec::setRequestId(codec::rootOf(*frame), 1);
  range.add(Sent{codec::encodeFrame(*frame), p.now});
  handshakeSeed("range", kResponder, 0, range);
}

void recordHandshakes() {
  recordHello();
  recordRequests();
  recordVersionMismatch();
  recordRefused();
  recordPing();
  recordCancel();
  recordBusy();
  recordGoodbyeDrain();
  recordLibraryChanged();
  recordOutOfPlace();
}

// ================================================================================================
// session: a Session pair, as session-test.c++ drives it, with the fixture's library behind the
// responder. What the initiator writes is recorded and written as FRAME elements.

// The target's element tags (session-script.h), as the bytes they are written as.
constexpr uint8_t FRAME = uint8_t(fuzz::Tag::FRAME);
constexpr uint8_t HELLO = uint8_t(fuzz::Tag::HELLO);
constexpr uint8_t GET_LIBRARY = uint8_t(fuzz::Tag::GET_LIBRARY);
constexpr uint8_t GET_MANIFEST = uint8_t(fuzz::Tag::GET_MANIFEST);
constexpr uint8_t GET_CHUNK = uint8_t(fuzz::Tag::GET_CHUNK);
constexpr uint8_t CANCEL = uint8_t(fuzz::Tag::CANCEL);
constexpr uint8_t PING = uint8_t(fuzz::Tag::PING);
constexpr uint8_t GOODBYE = uint8_t(fuzz::Tag::GOODBYE);
constexpr uint8_t ADVANCE = uint8_t(fuzz::Tag::ADVANCE);
constexpr uint8_t RELEASE = uint8_t(fuzz::Tag::RELEASE);
constexpr uint8_t PAUSE = uint8_t(fuzz::Tag::PAUSE);
constexpr uint8_t RESUME = uint8_t(fuzz::Tag::RESUME);
constexpr uint8_t BATCH = uint8_t(fuzz::Tag::BATCH);

// Passes bytes through and keeps what is written, with the time.
class Tee final : public kj::AsyncIoStream {
 public:
  Tee(kj::Own<kj::AsyncIoStream> inner, kj::Timer& timer, kj::Vector<Sent>& log)
      : inner(kj::mv(inner)), timer(timer), log(log) {}
  kj::Promise<size_t> tryRead(void* buffer, size_t minBytes, size_t maxBytes) override {
    return inner->tryRead(buffer, minBytes, maxBytes);
  }
  kj::Promise<void> write(const void* buffer, size_t size) override {
    record(kj::arrayPtr(reinterpret_cast<const kj::byte*>(buffer), size));
    return inner->write(buffer, size);
  }
  kj::Promise<void> write(kj::ArrayPtr<const kj::ArrayPtr<const kj::byte>> pieces) override {
    for (auto p : pieces)
      record(p);
    return inner->write(pieces);
  }
  kj::Promise<void> whenWriteDisconnected() override { return inner->whenWriteDisconnected(); }
  void shutdownWrite() override { inner->shutdownWrite(); }
  void abortRead() override { inner->abortRead(); }

 private:
  kj::Own<kj::AsyncIoStream> inner;
  kj::Timer& timer;
  kj::Vector<Sent>& log;
  void record(kj::ArrayPtr<const kj::byte> bytes) {
    log.add(Sent{kj::heapArray(bytes), timer.now()});
  }
};

class Client final : public SessionHandler {
 public:
  kj::Maybe<Rejection> onHello(Session&, const RemotePeer&) override { return nullptr; }
  void onEstablished(Session&) override {}
  kj::Promise<kj::Array<codec::FrameBuilder>> serve(Session&, uint64_t id,
                                                    codec::InboundFrame) override {
    auto out = kj::heapArrayBuilder<codec::FrameBuilder>(1);
    out.add(codec::errorFrame(id, wire::ErrorCode::NOT_FOUND, "nothing here"));
    return out.finish();
  }
  void onLibraryChanged(Session&, const codec::Summary&) override {}
  void onGoodbye(Session&, const event::GoodbyeReceived&) override {}
  void onWriterDone(Session&) override {}
  void onClosed(Session&, const event::Closed&) override {}
};

class Server final : public SessionHandler {
 public:
  explicit Server(fuzz::LibraryFixture& world) : world(world) {}
  kj::Maybe<Rejection> onHello(Session&, const RemotePeer&) override { return nullptr; }
  void onEstablished(Session&) override {}
  kj::Promise<kj::Array<codec::FrameBuilder>> serve(Session& session, uint64_t id,
                                                    codec::InboundFrame request) override {
    return world.server().serve(id, request.root(), KJ_ASSERT_NONNULL(session.remote()));
  }
  void onLibraryChanged(Session&, const codec::Summary&) override {}
  void onGoodbye(Session&, const event::GoodbyeReceived&) override {}
  void onWriterDone(Session&) override {}
  void onClosed(Session&, const event::Closed&) override {}

 private:
  fuzz::LibraryFixture& world;
};

struct SessionPair {
  kj::EventLoop loop;
  kj::WaitScope ws{loop};
  kj::TimerImpl timer{kj::origin<kj::TimePoint>()};
  SessionConfig configA, configB;
  Client client;
  Server server;
  kj::Vector<Sent> log;
  kj::Own<Session> a, b;
  kj::Promise<void> runA = nullptr, runB = nullptr;

  SessionPair(fuzz::LibraryFixture& world, uint32_t maxFrameBytes) : server(world) {
    configA.limits.maxFrameBytes = maxFrameBytes;
    configA.limits.maxChunkBytes =  // [FR-19]: chunks fit the frames
        kj::min(configA.limits.maxChunkBytes, maxFrameBytes - codec::kFrameOverheadBytes);
    auto pipe = kj::newTwoWayPipe();
    auto tee = kj::heap<Tee>(kj::mv(pipe.ends[0]), timer, log);
    auto features = kj::heapArray<kj::String>(1);
    features[0] = kj::str("delta");
    a = kj::heap<Session>(plaintextTransport(kj::mv(tee)), Role::initiator, configA,
                          LocalPeer{idOf(1), kj::str("fuzz-initiator"), kj::mv(features),
                                    codec::Summary{1, 1, idOf(0xcd)}, 99},
                          timer, client, timer.now(), 1);
    b = kj::heap<Session>(
        plaintextTransport(kj::mv(pipe.ends[1])), Role::responder, configB,
        LocalPeer{idOf(2), kj::str("fuzz-responder"), nullptr, world.library().summary(), 2002},
        timer, server, timer.now(), 1);
    runA = a->run().eagerlyEvaluate(nullptr);
    runB = b->run().eagerlyEvaluate(nullptr);
    ws.poll();
    KJ_ASSERT(a->isEstablished());
  }
  ~SessionPair() noexcept(false) {
    runA = nullptr;
    runB = nullptr;
    a = nullptr;
    b = nullptr;
  }

  Reply ask(codec::FrameBuilder frame) { return a->request(kj::mv(frame)).wait(ws); }
  void advance(kj::Duration d) {
    timer.advanceTo(timer.now() + d);
    ws.poll();
    a->tick();
    b->tick();
    ws.poll();
  }
  void end() {
    a->goodbye(wire::GoodbyeReason::IDLE, "recorded");
    ws.poll();
    for (int i = 0; i < 8 && !(runA.poll(ws) && runB.poll(ws)); ++i) {
      KJ_IF_MAYBE (next, timer.nextEvent()) {
        timer.advanceTo(*next);
      }
    }
  }
};

codec::FrameBuilder getManifest(kj::StringPtr item) {
  auto frame = codec::newFrame();
  codec::rootOf(*frame).initGetManifest().setItemId(item);
  return frame;
}

codec::FrameBuilder getLibrary(uint64_t epoch, uint64_t rev) {
  auto frame = codec::newFrame();
  auto g = codec::rootOf(*frame).initGetLibrary();
  g.setSinceEpoch(epoch);
  g.setSinceRev(rev);
  return frame;
}

codec::FrameBuilder getChunk(const codec::Manifest& manifest, uint32_t file, uint64_t k) {
  auto frame = codec::newFrame();
  auto g = codec::rootOf(*frame).initGetChunk();
  g.setItemId(manifest.itemId);
  g.setManifestDigest(manifest.digest.asBytes());
  g.setFileIndex(file);
  g.setOffset(manifest.chunkOffset(k));
  g.setLength(manifest.chunkLength(file, k));
  return frame;
}

// Writes the recorded stream as `session` seeds: as recorded, with answers held back, with our
// reader paused, in batches, with a one-request window.
void sessionSeeds(kj::StringPtr name, kj::ArrayPtr<const Sent> log) {
  kj::Vector<kj::byte> all;
  for (auto& s : log)
    all.addAll(s.bytes);
  auto frames = split(all);
  // Each frame's time is that of the write that completed it.
  kj::Vector<kj::TimePoint> times;
  size_t frameEnd = 0, logged = 0, next = 0;
  for (auto& s : log) {
    logged += s.bytes.size();
    while (next < frames.size() && frameEnd + frames[next].size() <= logged) {
      frameEnd += frames[next++].size();
      times.add(s.at);
    }
  }
  KJ_ASSERT(times.size() == frames.size());

  enum Variant { plain, held, paused, batched, narrow };
  static constexpr kj::StringPtr kSuffix[] = {""_kj, "-held"_kj, "-paused"_kj, "-batched"_kj,
                                              "-narrow"_kj};
  static constexpr uint8_t kOptions[] = {0, 2, 0, 0, 0x08};
  for (int v = plain; v <= narrow; ++v) {
    kj::Vector<kj::byte> out;
    out.add(kOptions[v]);
    auto previous = times.size() > 0 ? times[0] : kj::origin<kj::TimePoint>();
    for (auto i : kj::indices(frames)) {
      for (auto gap = times[i] - previous; gap > 0 * kj::SECONDS;) {
        uint64_t seconds = kj::min(uint64_t(gap / kj::SECONDS), uint64_t(63));
        if (seconds == 0) break;
        out.add(ADVANCE);
        out.add(0x80 | uint8_t(seconds));  // unit: 1 s
        gap -= seconds * kj::SECONDS;
      }
      previous = times[i];
      if (v == batched && i % 8 == 1) {
        out.add(BATCH);
        out.add(7);
      }
      out.add(FRAME);
      out.add(frames[i].size() & 0xff);
      out.add(frames[i].size() >> 8);
      out.addAll(frames[i]);
      if (v == paused && i == 0) out.add(PAUSE);
      if (v == held && i % 5 == 4) {
        out.add(RELEASE);
        out.add(3);
      }
    }
    if (v == paused) out.add(RESUME);
    writeSeed("session", kj::str(name, kSuffix[v]), out);
  }
}

void recordSessions() {
  fuzz::LibraryFixture world;
  auto& lib = world.library();
  auto manifestOf = [&](kj::StringPtr item) -> const codec::Manifest& {
    return KJ_ASSERT_NONNULL(lib.find(item))->manifest;
  };
  {
    // Browse everything: both kinds of library answer, every manifest, chunks of every kind of
    // file (the swapped ones are answered stale), then Goodbye.
    SessionPair p(world, 16 << 20);
    p.ask(getLibrary(0, 0));
    p.ask(getLibrary(fuzz::kEpoch, 1));
    for (auto item : fuzz::kItemIds)
      p.ask(getManifest(item));
    for (auto item : {"alpha", "beta", "gamma"}) {
      auto& manifest = manifestOf(item);
      for (uint32_t f = 0; f < manifest.files.size(); ++f) {
        auto range = manifest.chunkRange(f);
        for (uint64_t k = 0; k < kj::min(range.count, uint64_t(3)); ++k)
          p.ask(getChunk(manifest, f, k));
      }
    }
    p.ask(getChunk(manifestOf("many"), 7, 0));
    p.end();
    sessionSeeds("browse", p.log);
  }
  {
    // The smallest frame limit: the "many" manifest comes in pages; chunks of the big file.
    SessionPair p(world, codec::kMinFrameBytes);
    p.ask(getManifest("many"));
    auto& alpha = manifestOf("alpha");
    for (uint64_t k = 0; k < 4; ++k)
      p.ask(getChunk(alpha, 0, k));
    p.end();
    sessionSeeds("paged", p.log);
  }
  {
    // Requests dropped in flight (Cancel on the wire), idle pings, then Goodbye.
    SessionPair p(world, 16 << 20);
    auto& alpha = manifestOf("alpha");
    {
      auto dropped1 = p.a->request(getChunk(alpha, 0, 0));
      auto dropped2 = p.a->request(getLibrary(0, 0));
      auto kept = p.a->request(getChunk(alpha, 0, 1));
    }
    p.ws.poll();
    p.advance(16 * kj::SECONDS);
    p.ask(getChunk(alpha, 0, 2));
    p.end();
    sessionSeeds("cancel-ping", p.log);
  }
}

// Session seeds built from the target's own elements rather than recorded.
void writeGeneratedSessions() {
  // clang-format off
  uint8_t generated[] = {0,
      HELLO, 0x08,                                                  // 64 KiB frames
      GET_LIBRARY, 0, 0, GET_LIBRARY, 0, 1, GET_MANIFEST, 0, 3,     // snapshot, delta, "many"
      GET_CHUNK, 0, 0, 0, 0, 0x00, 0x10,                            // alpha/big.bin, 4096 bytes
      GET_CHUNK, 0x81, 0, 0, 1, 0x00, 0x10,                         // a gap in the ids
      GET_CHUNK, 0, 2, 0, 0, 0x00, 0x01,                            // gamma: swapped
      GET_CHUNK, 0, 1, 3, 0, 0x01, 0x00,                            // beta: links are not listed
      GET_CHUNK, 0, 0, 0, 0, 0xff, 0xff,                            // above maxChunkBytes
      CANCEL, 0x40, PING, 9, ADVANCE, 0x90,                         // 16 s: the session pings
      GOODBYE, 2, 0};
  // clang-format on
  writeSeed("session", "generated", generated);

  // A peer that stops reading and keeps asking for 64 KiB chunks, one request in flight.
  kj::Vector<uint8_t> slow;
  slow.addAll(std::initializer_list<uint8_t>{0x08, HELLO, 0, PAUSE});
  for (int i = 0; i < 12; ++i)
    slow.addAll(std::initializer_list<uint8_t>{GET_CHUNK, 0, 0, 0, 0, 0x80, 0xff});
  slow.add(RESUME);
  writeSeed("session", "slow-reader", slow);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: %s <fuzz/corpus>\n", argv[0]);
    return 2;
  }
  corpus = kj::str(argv[1]);
  for (auto target : {"handshake", "session"}) {
    for (auto sub : {"", "/seeds"}) {
      auto dir = kj::str(corpus, '/', target, sub);
      if (mkdir(dir.cStr(), 0755) != 0 && errno != EEXIST) KJ_FAIL_SYSCALL("mkdir", errno, dir);
    }
  }
  kj::_::Debug::setLogLevel(kj::LogSeverity::ERROR);
  recordHandshakes();
  recordSessions();
  writeGeneratedSessions();
  printf("%zu seeds written\n", written);
  return 0;
}
