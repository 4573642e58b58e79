// Session (the KJ driver) over in-memory pipes and a virtual timer: both run() promises must end,
// every request gets one answer, dropping a request's promise cancels it on the wire, and the
// handshake deadline holds against a peer that sends nothing (slowloris).
#include <shoal/peer/session/session.h>

#include <gtest/gtest.h>
#include <kj/debug.h>
#include <kj/map.h>
#include <shoal/codec/frames.h>
#include <shoal/codec/validate.h>

#include "test-peers.h"

namespace shoal::peer {
namespace {

using test::idOf;

LocalPeer local(uint8_t seed) {
  return LocalPeer{idOf(seed), kj::str("peer-", seed), nullptr, codec::Summary{5, 1, idOf(0)},
                   uint64_t(seed) + 100};
}

// The Hello of a peer driven by hand: 16 MiB frames, 64 requests in flight, 1 MiB chunks.
codec::FrameBuilder helloOf(uint8_t seed, kj::StringPtr name) {
  auto hello = codec::newFrame();
  auto h = codec::rootOf(*hello).initHello();
  h.setVersionMin(1);
  h.setVersionMax(1);
  h.setPeerId(idOf(seed).asBytes());
  h.setName(name);
  codec::Summary{1, 1, idOf(0)}.toWire(h.initLibrary());
  auto limits = h.initLimits();
  limits.setMaxFrameBytes(16 << 20);
  limits.setMaxInFlight(64);
  limits.setMaxChunkBytes(1 << 20);
  h.setInstanceId(seed);
  return hello;
}

// Serves GetChunk with `length` bytes of 'x'; can be told to hold answers back.
struct Handler final : public SessionHandler {
  kj::Vector<kj::String> log;
  uint32_t served = 0;
  bool hold = false;
  kj::Vector<kj::Own<kj::PromiseFulfiller<void>>> held;
  kj::Maybe<Rejection> verdict;

  kj::Maybe<Rejection> onHello(Session&, const RemotePeer& peer) override {
    log.add(kj::str("hello ", peer.name));
    KJ_IF_MAYBE (v, verdict) {
      return Rejection{v->code, kj::str(v->message)};
    }
    return nullptr;
  }
  void onEstablished(Session&) override { log.add(kj::str("established")); }
  kj::Promise<kj::Array<codec::FrameBuilder>> serve(Session&, uint64_t id,
                                                    codec::InboundFrame request) override {
    ++served;
    uint32_t length = request.root().getGetChunk().getLength();
    auto answer = [id, length]() {
      auto frame = codec::newFrame(length / 8 + 16);
      auto chunk = codec::rootOf(*frame).initChunk();
      chunk.setId(id);
      auto data = chunk.initData(length);
      memset(data.begin(), 'x', data.size());
      auto pages = kj::heapArrayBuilder<codec::FrameBuilder>(1);
      pages.add(kj::mv(frame));
      return pages.finish();
    };
    if (!hold) return answer();
    auto paf = kj::newPromiseAndFulfiller<void>();
    held.add(kj::mv(paf.fulfiller));
    return paf.promise.then(kj::mv(answer));
  }
  void onRequestCancelled(Session&, uint64_t id) override { log.add(kj::str("cancelled ", id)); }
  void onLibraryChanged(Session&, const codec::Summary&) override { log.add(kj::str("changed")); }
  void onGoodbye(Session&, const event::GoodbyeReceived&) override { log.add(kj::str("goodbye")); }
  void onWriterDone(Session&) override { log.add(kj::str("writer done")); }
  void onClosed(Session&, const event::Closed& closed) override {
    log.add(kj::str("closed ", name(closed.reason)));
  }
  bool saw(kj::StringPtr line) const {
    for (auto& l : log) {
      if (l == line) return true;
    }
    return false;
  }
};

struct Fixture {
  kj::EventLoop loop;
  kj::WaitScope ws{loop};
  kj::TimerImpl timer{kj::origin<kj::TimePoint>()};
  SessionConfig config;
  Handler handlerA, handlerB;
  kj::Maybe<kj::Own<Session>> a, b;
  kj::Maybe<kj::Promise<void>> runA, runB;

  void start() {
    auto pipe = kj::newTwoWayPipe();
    a = kj::heap<Session>(plaintextTransport(kj::mv(pipe.ends[0])), Role::initiator, config,
                          local(1), timer, handlerA, timer.now(), 1);
    b = kj::heap<Session>(plaintextTransport(kj::mv(pipe.ends[1])), Role::responder, config,
                          local(2), timer, handlerB, timer.now(), 1);
    runA = A().run().eagerlyEvaluate(nullptr);
    runB = B().run().eagerlyEvaluate(nullptr);
    ws.poll();
  }
  Session& A() { return *KJ_ASSERT_NONNULL(a); }
  Session& B() { return *KJ_ASSERT_NONNULL(b); }
  bool ended(kj::Maybe<kj::Promise<void>>& run) { return KJ_ASSERT_NONNULL(run).poll(ws); }

  codec::FrameBuilder getChunk(uint32_t length) { return test::getChunkRequest(length); }
};

TEST(Session, HandshakeRequestAndGoodbyeDrainEndBothRuns) {
  Fixture f;
  f.start();
  EXPECT_TRUE(f.A().isEstablished());
  EXPECT_TRUE(f.B().isEstablished());
  EXPECT_TRUE(f.handlerB.saw("hello peer-1"));

  auto reply = f.A().request(f.getChunk(300000)).wait(f.ws);
  auto& frame = reply.get<codec::InboundFrame>();
  EXPECT_EQ(frame.root().getChunk().getData().size(), 300000u);
  EXPECT_EQ(f.handlerB.served, 1u);

  // B leaves while A has a request in flight: B answers it, then both sides close.
  f.handlerB.hold = true;
  auto pending = f.A().request(f.getChunk(10));
  f.ws.poll();
  f.B().goodbye(wire::GoodbyeReason::SHUTDOWN, "bye");
  f.ws.poll();
  EXPECT_TRUE(f.handlerA.saw("goodbye"));
  EXPECT_FALSE(f.ended(f.runB));  // still owes an answer
  for (auto& h : f.handlerB.held)
    h->fulfill();
  auto late = pending.wait(f.ws);
  EXPECT_TRUE(late.is<codec::InboundFrame>());
  f.ws.poll();
  EXPECT_TRUE(f.ended(f.runA));
  EXPECT_TRUE(f.ended(f.runB));
  EXPECT_TRUE(f.handlerA.saw("closed goodbye"));
  EXPECT_TRUE(f.handlerB.saw("closed goodbye"));
  EXPECT_TRUE(f.handlerA.saw("writer done"));
  EXPECT_TRUE(f.handlerB.saw("writer done"));
}

TEST(Session, DroppingARequestCancelsItOnTheWire) {
  Fixture f;
  f.start();
  f.handlerB.hold = true;
  {
    auto dropped = f.A().request(f.getChunk(10));
    f.ws.poll();
    EXPECT_EQ(f.handlerB.served, 1u);
  }  // dropped here
  f.ws.poll();
  EXPECT_TRUE(f.handlerB.saw("cancelled 1"));
  // B got the Cancel and answered it; its late answer is dropped, and A's slot is free again.
  for (auto& h : f.handlerB.held)
    h->fulfill();
  f.ws.poll();
  f.handlerB.hold = false;
  auto reply = f.A().request(f.getChunk(7)).wait(f.ws);
  EXPECT_EQ(reply.get<codec::InboundFrame>().root().getChunk().getData().size(), 7u);
}

TEST(Session, RejectionEndsBothRuns) {
  Fixture f;
  f.handlerB.verdict = Rejection{wire::ErrorCode::UNTRUSTED, kj::str("not on the allow list")};
  f.start();
  f.ws.poll();
  EXPECT_TRUE(f.ended(f.runA));
  EXPECT_TRUE(f.ended(f.runB));
  auto& rejection = KJ_ASSERT_NONNULL(f.A().rejection());
  EXPECT_EQ(rejection.code, wire::ErrorCode::UNTRUSTED);
  EXPECT_TRUE(f.handlerA.saw("closed rejected"));
}

TEST(Session, RequestOnAClosedSessionFailsLocally) {
  Fixture f;
  f.start();
  f.B().abort(wire::ErrorCode::INTERNAL, "going away");
  f.ws.poll();
  auto reply = f.A().request(f.getChunk(5)).wait(f.ws);
  auto& error = reply.get<RequestError>();
  EXPECT_TRUE(error.local);
}

TEST(Session, APeerThatDoesNotReadStallsItselfNotOurMemory) {
  // Found by fuzz_session: requests answered into a writer the peer never drains used to pile up
  // without bound. Now the session stops reading once its backlog passes maxWriteBacklogBytes.
  Fixture f;
  f.config.maxWriteBacklogBytes = 1 << 20;
  auto pipe = kj::newTwoWayPipe();
  auto flooder = kj::mv(pipe.ends[0]);
  f.b = kj::heap<Session>(plaintextTransport(kj::mv(pipe.ends[1])), Role::responder, f.config,
                          local(2), f.timer, f.handlerB, f.timer.now(), 1);
  f.runB = f.B().run().eagerlyEvaluate(nullptr);
  // A Hello, then 1,000 requests for 64 KiB each (62.5 MiB of answers, more than one read's
  // worth of requests), and never a read.
  constexpr uint64_t kRequests = 1000;
  kj::Vector<kj::byte> bytes;
  bytes.addAll(codec::encodeFrame(*helloOf(9, "flooder")));
  for (uint64_t id = 1; id <= kRequests; ++id) {
    auto request = f.getChunk(64 * 1024);
    codec::setRequestId(codec::rootOf(*request), id);
    bytes.addAll(codec::encodeFrame(*request));
  }
  auto all = bytes.releaseAsArray();
  auto writing = flooder->write(all.begin(), all.size()).eagerlyEvaluate(nullptr);
  f.ws.poll();
  EXPECT_TRUE(f.B().isEstablished());
  // It stopped reading: the requests read together were in progress together (beyond the 64 of
  // maxInFlight answered busy), and what waits for us is the mark plus at most their answers.
  EXPECT_LT(f.B().bytesRead(), all.size());
  uint32_t servedWhileStalled = f.handlerB.served;
  EXPECT_LE(servedWhileStalled, 64u);
  EXPECT_LT(f.B().queuedBytes(), (1u << 20) + 64 * 66000 + 1000 * 64);
  // Once the flooder reads, the session goes on and answers every request exactly once.
  codec::FrameReader reader(*flooder, codec::Limits());
  kj::HashSet<uint64_t> answered;
  uint32_t chunks = 0;
  while (answered.size() < kRequests) {
    auto r = reader.read().wait(f.ws);
    auto& frame = KJ_ASSERT_NONNULL(r.tryGet<codec::InboundFrame>());
    if (frame.kind() != wire::Frame::CHUNK && frame.kind() != wire::Frame::ERROR) continue;
    auto id = codec::requestIdOf(frame.root());
    if (frame.kind() == wire::Frame::CHUNK) {
      ++chunks;
    } else {
      EXPECT_EQ(frame.root().getError().getCode(), wire::ErrorCode::BUSY);
    }
    EXPECT_FALSE(answered.contains(id));
    answered.insert(id);
  }
  EXPECT_EQ(f.B().bytesRead(), all.size());
  EXPECT_EQ(f.handlerB.served, chunks);
  EXPECT_GT(f.handlerB.served, servedWhileStalled);
}

TEST(Session, APeerGoneMidUploadEndsAtTheDeadTimeout) {
  // A cable pulled while we send: the peer neither reads nor writes again, so our write never
  // completes. The dead timeout must still end run() and report the writer's end (the runtime
  // reports PeerLost from there).
  Fixture f;
  auto pipe = kj::newTwoWayPipe();
  auto gone = kj::mv(pipe.ends[0]);
  f.b = kj::heap<Session>(plaintextTransport(kj::mv(pipe.ends[1])), Role::responder, f.config,
                          local(2), f.timer, f.handlerB, f.timer.now(), 1);
  f.runB = f.B().run().eagerlyEvaluate(nullptr);
  kj::Vector<kj::byte> bytes;
  bytes.addAll(codec::encodeFrame(*helloOf(9, "gone")));
  for (uint64_t id = 1; id <= 8; ++id) {
    auto request = f.getChunk(64 * 1024);
    codec::setRequestId(codec::rootOf(*request), id);
    bytes.addAll(codec::encodeFrame(*request));
  }
  auto all = bytes.releaseAsArray();
  auto writing = gone->write(all.begin(), all.size()).eagerlyEvaluate(nullptr);
  f.ws.poll();
  ASSERT_TRUE(f.B().isEstablished());
  EXPECT_GT(f.B().queuedBytes(), 0u);  // answers that will never be read
  auto deadline = f.timer.now() + f.config.deadTimeout + f.config.drainTimeout + 5 * kj::SECONDS;
  while (f.timer.now() < deadline && !f.ended(f.runB)) {
    f.timer.advanceTo(f.timer.now() + 100 * kj::MILLISECONDS);
    f.ws.poll();
    f.B().tick();
    f.ws.poll();
  }
  EXPECT_TRUE(f.ended(f.runB));
  EXPECT_TRUE(f.handlerB.saw("closed deadTimeout"));
  EXPECT_TRUE(f.handlerB.saw("writer done"));
}

TEST(Session, SilentPeerHitsTheHandshakeDeadline) {
  // A responder facing a connection that never sends Hello: slowloris (docs/bad-inputs.md #7).
  Fixture f;
  auto pipe = kj::newTwoWayPipe();
  auto silent = kj::mv(pipe.ends[0]);
  f.b = kj::heap<Session>(plaintextTransport(kj::mv(pipe.ends[1])), Role::responder, f.config,
                          local(2), f.timer, f.handlerB, f.timer.now(), 1);
  f.runB = f.B().run().eagerlyEvaluate(nullptr);
  // A byte now and then does not extend the deadline.
  auto drip = silent->write("\0", 1);
  f.timer.advanceTo(f.timer.now() + 9 * kj::SECONDS);
  f.ws.poll();
  EXPECT_FALSE(f.ended(f.runB));
  f.timer.advanceTo(f.timer.now() + 1 * kj::SECONDS);
  f.ws.poll();
  EXPECT_TRUE(f.ended(f.runB));
  EXPECT_TRUE(f.handlerB.saw("closed handshakeTimeout"));
}

}  // namespace
}  // namespace shoal::peer
