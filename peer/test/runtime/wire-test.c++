// A real runtime on loopback, driven over real TLS by a scripted peer: every handshake rule,
// request rule and file-access rule of issue 3, observed on the wire; a session's chunk reads held
// on the reader thread (the readers' test seam, ReadGate) to show maxReadingBytesPerSession; a
// refused GetLibrary retried [ERR-5] after its arrival, read from a virtual clock
// (RuntimeConfig::clock).
#include <fcntl.h>

#include <unistd.h>
#include <algorithm>

#include <shoal/conformance/scripted-peer.h>
#include "runtime-fixture.h"

namespace shoal::peer {
namespace {

using test::Peer;
using test::ScriptedPeer;
using Which = wire::Frame::Which;

struct Wire {
  kj::AsyncIoContext io = kj::setupAsyncIo();
  kj::Own<Identity> me = Identity::generate();

  kj::Own<ScriptedPeer> connect(Peer& peer, kj::Maybe<const Identity&> identity) {
    return ScriptedPeer::connect(io, peer.address, identity);
  }
  kj::Own<ScriptedPeer> connect(Peer& peer) { return connect(peer, *me); }

  // Connects and completes the handshake; returns the peer and the HelloAck's library summary.
  kj::Own<ScriptedPeer> established(Peer& peer, uint64_t instanceId = 4242) {
    auto s = connect(peer);
    s->send(test::helloFrame(me->id(), instanceId));
    auto ack = s->frame();
    KJ_ASSERT(ack.kind() == Which::HELLO_ACK, codec::name(ack.kind()));
    return s;
  }
};

// Frames that must arrive together: one write, so one TLS record and one read on the other side.
void sendTogether(ScriptedPeer& s, kj::ArrayPtr<codec::FrameBuilder> frames) {
  kj::Vector<kj::byte> bytes;
  for (auto& f : frames)
    bytes.addAll(codec::encodeFrame(*f));
  s.sendRaw(bytes);
}

wire::ErrorCode errorCode(const codec::InboundFrame& frame) {
  KJ_ASSERT(frame.kind() == Which::ERROR, codec::name(frame.kind()));
  return frame.root().getError().getCode();
}

// Frames of `s` that answer our request ids, skipping the runtime's own requests to us.
codec::InboundFrame answer(ScriptedPeer& s) {
  for (;;) {
    auto f = s.frame();
    // Skip the runtime's own traffic: its library sync request and notifications.
    if (f.kind() != Which::GET_LIBRARY && f.kind() != Which::LIBRARY_CHANGED &&
        f.kind() != Which::PING) {
      return f;
    }
  }
}

TEST(Wire, HandshakeSucceedsAndHelloAckCarriesTheRuntimesIdentity) {
  Peer a("alpha", 1);
  Wire w;
  auto s = w.connect(a);
  s->send(test::helloFrame(w.me->id()));
  auto ack = s->frame();
  ASSERT_EQ(ack.kind(), Which::HELLO_ACK);
  EXPECT_EQ(KJ_ASSERT_NONNULL(codec::Digest::from(ack.root().getHelloAck().getPeerId())),
            a.handle.id());
  EXPECT_EQ(ack.root().getHelloAck().getVersion(), 1);
}

TEST(Wire, VersionMismatchIsRejected) {
  Peer a("alpha", 1);
  Wire w;
  auto s = w.connect(a);
  s->send(test::helloFrame(w.me->id(), 1, 2, 3));
  auto reject = s->frame();
  ASSERT_EQ(reject.kind(), Which::REJECT);
  EXPECT_EQ(reject.root().getReject().getCode(), wire::ErrorCode::UNSUPPORTED_VERSION);
  EXPECT_TRUE(s->closes());
}

TEST(Wire, WrongFirstMessageIsAProtocolError) {
  Peer a("alpha", 1);
  Wire w;
  auto s = w.connect(a);
  s->send(test::getLibraryFrame(1));
  auto error = s->frame();
  EXPECT_EQ(errorCode(error), wire::ErrorCode::PROTOCOL);
  EXPECT_EQ(error.root().getError().getId(), 0u);
  EXPECT_TRUE(s->closes());
}

TEST(Wire, SecondHelloIsAProtocolError) {
  Peer a("alpha", 1);
  Wire w;
  auto s = w.established(a);
  s->send(test::helloFrame(w.me->id()));
  EXPECT_EQ(errorCode(answer(*s)), wire::ErrorCode::PROTOCOL);
  EXPECT_TRUE(s->closes());
}

TEST(Wire, AFrameOver64KiBBeforeTheHandshakeIsRefusedFromItsSegmentTable) {
  // [FR-9]: a "Hello" of 4 MiB is refused from its 8-byte segment table; the body is never sent,
  // so an answer at all shows nothing waited for it.
  Peer a("alpha", 1);
  Wire w;
  auto s = w.connect(a);
  uint32_t words = (4 << 20) / 8;
  kj::byte table[8] = {0,
                       0,
                       0,
                       0,
                       kj::byte(words),
                       kj::byte(words >> 8),
                       kj::byte(words >> 16),
                       kj::byte(words >> 24)};
  s->sendRaw(table);
  auto error = s->frame();
  EXPECT_EQ(errorCode(error), wire::ErrorCode::TOO_LARGE);
  EXPECT_EQ(error.root().getError().getId(), 0u);
  EXPECT_TRUE(s->closes());
}

TEST(Wire, HandshakeDeadlineClosesSlowConnections) {
  Peer a("alpha", 1, [](RuntimeConfig& c) { c.session.handshakeTimeout = 300 * kj::MILLISECONDS; });
  Wire w;
  // After TLS, one byte of a Hello and then nothing.
  auto slow = w.connect(a);
  kj::byte oneByte = 0;
  slow->sendRaw(kj::arrayPtr(&oneByte, 1));
  EXPECT_TRUE(slow->closes(10 * kj::SECONDS));
  // A raw TCP connection that never even starts TLS.
  auto raw = w.io.provider->getNetwork()
                 .parseAddress(a.address)
                 .wait(w.io.waitScope)
                 ->connect()
                 .wait(w.io.waitScope);
  kj::byte buffer[16];
  auto n =
      w.io.provider->getTimer()
          .timeoutAfter(10 * kj::SECONDS, raw->tryRead(buffer, 1, sizeof(buffer)))
          .then([](size_t n) { return n; },
                [](kj::Exception&& e) {
                  return e.getType() == kj::Exception::Type::OVERLOADED ? size_t(999) : size_t(0);
                })
          .wait(w.io.waitScope);
  EXPECT_EQ(n, 0u);  // closed by the runtime, not our timeout (999)
}

TEST(Wire, HelloClaimingAnotherIdIsRejected) {
  Peer a("alpha", 1);
  Wire w;
  auto other = Identity::generate();
  auto s = w.connect(a);
  s->send(test::helloFrame(other->id()));  // our TLS key is w.me
  auto reject = s->frame();
  ASSERT_EQ(reject.kind(), Which::REJECT);
  EXPECT_EQ(reject.root().getReject().getCode(), wire::ErrorCode::UNTRUSTED);
  EXPECT_TRUE(s->closes());
}

TEST(Wire, PinnedModeRejectsStrangersAndAdmitsTheListed) {
  auto friendly = Identity::generate();
  PeerId friendId = friendly->id();
  Peer a("alpha", 1, [&](RuntimeConfig& c) {
    c.trust = TrustMode::pinned;
    c.allow.add(friendId);
  });
  Wire w;
  auto stranger = w.connect(a);
  stranger->send(test::helloFrame(w.me->id()));
  auto reject = stranger->frame();
  ASSERT_EQ(reject.kind(), Which::REJECT);
  EXPECT_EQ(reject.root().getReject().getCode(), wire::ErrorCode::UNTRUSTED);

  auto listed = w.connect(a, *friendly);
  listed->send(test::helloFrame(friendId));
  EXPECT_EQ(listed->frame().kind(), Which::HELLO_ACK);
}

TEST(Wire, DuplicateConnectionsCollapseToTheNewer) {
  Peer a("alpha", 1);
  Wire w;
  auto first = w.established(a, 777);
  auto second = w.established(a, 777);  // same key, same instance, same initiator
  // The older one is told it lost, and drains.
  for (;;) {
    auto f = first->frame();
    if (f.kind() == Which::GET_LIBRARY) continue;  // the runtime's own sync request
    ASSERT_EQ(f.kind(), Which::GOODBYE);
    EXPECT_EQ(f.root().getGoodbye().getReason(), wire::GoodbyeReason::DUPLICATE);
    break;
  }
  // The newer one works.
  second->send(test::getManifestFrame(1, "item-0"));
  for (;;) {
    auto f = second->frame();
    if (f.kind() == Which::GET_LIBRARY) continue;
    EXPECT_EQ(f.kind(), Which::MANIFEST);
    break;
  }
}

TEST(Wire, EveryPipelinedRequestGetsOneAnswerAndBusyNeverDisconnects) {
  // The runtime must hand its configured maxInFlight to the session: it is announced, and it is
  // what makes 58 of 60 pipelined requests busy (the default of 64 would answer them all).
  Peer a("alpha", 1, [](RuntimeConfig& c) { c.session.maxInFlight = 2; });
  Wire w;
  auto s = w.connect(a);
  s->send(test::helloFrame(w.me->id()));
  auto ack = s->frame();
  ASSERT_EQ(ack.kind(), Which::HELLO_ACK);
  EXPECT_EQ(ack.root().getHelloAck().getLimits().getMaxInFlight(), 2u);
  s->send(test::getManifestFrame(1, "item-0"));
  auto manifest = answer(*s);
  auto digest = KJ_ASSERT_NONNULL(codec::Digest::from(manifest.root().getManifest().getDigest()));
  // Far more than the announced limit, all at once.
  constexpr uint64_t kCount = 60;
  kj::Vector<codec::FrameBuilder> burst;
  for (uint64_t id = 2; id < 2 + kCount; ++id) {
    burst.add(test::getChunkFrame(id, "item-0", digest, 1, 0, 4096));  // data/big.bin
  }
  sendTogether(*s, burst);
  kj::HashMap<uint64_t, uint32_t> answers;
  uint32_t busy = 0;
  for (uint64_t i = 0; i < kCount; ++i) {
    auto f = answer(*s);
    uint64_t id = codec::requestIdOf(f.root());
    answers.upsert(id, 1, [](uint32_t& n, uint32_t) { ++n; });
    if (f.kind() == Which::ERROR) {
      EXPECT_EQ(errorCode(f), wire::ErrorCode::BUSY);
      ++busy;
    } else {
      EXPECT_EQ(f.kind(), Which::CHUNK);
    }
  }
  EXPECT_EQ(answers.size(), kCount);
  for (auto& entry : answers)
    EXPECT_EQ(entry.value, 1u) << entry.key;
  // The 60 arrive together and are handled together: two in flight, the rest busy.
  EXPECT_EQ(busy, kCount - 2);
  // Still open: one more request is served.
  s->send(test::getChunkFrame(100, "item-0", digest, 1, 0, 10));
  auto last = answer(*s);
  EXPECT_EQ(last.kind(), Which::CHUNK)
      << (last.kind() == Which::ERROR ? last.root().getError().getMessage().cStr() : "");
}

// Holds every chunk read on the runtime's reader thread until open(), and notes the order in
// which the reads (by offset) reached it.
class HeldReads final : public ReadGate {
 public:
  void beforeRead(const ChunkRead& read) override {
    auto lock = state.lockExclusive();
    lock->arrived.add(read.offset);
    lock.wait([](const State& s) { return s.open; });
  }
  void open() { state.lockExclusive()->open = true; }
  kj::Array<uint64_t> arrived() const { return kj::heapArray(state.lockShared()->arrived.asPtr()); }

 private:
  struct State {
    kj::Vector<uint64_t> arrived;
    bool open = false;
  };
  kj::MutexGuarded<State> state;
};

// Polls (bounded) the reads under way on `peer`'s readers until `done` holds; the last count.
size_t readsUnderWay(Peer& peer, kj::Function<bool(size_t)> done) {
  auto deadline = kj::systemPreciseMonotonicClock().now() + 20 * kj::SECONDS;
  for (;;) {
    auto n = peer.handle.call([](Runtime& r) { return r.chunkReaders().underWay(); });
    if (done(n) || kj::systemPreciseMonotonicClock().now() >= deadline) return n;
  }
}

TEST(Wire, AConnectionsChunkReadsStayWithinMaxReadingBytesPerSession) {
  // One reader thread and one read per job: reads reach the gate in the order they started.
  HeldReads held;
  Peer a("alpha", 1, [&](RuntimeConfig& c) {
    c.readers.threads = 1;
    c.readers.maxBatchBytes = 4096;
    c.readers.maxReadingBytesPerSession = 3 * 4096;
    c.readGate = held;
  });
  KJ_DEFER(held.open());  // before the runtime goes: it joins the held reader
  Wire w;
  auto s = w.established(a);
  auto otherId = Identity::generate();
  auto other = ScriptedPeer::connect(w.io, a.address, *otherId);
  other->send(test::helloFrame(otherId->id()));
  ASSERT_EQ(other->frame().kind(), Which::HELLO_ACK);
  s->send(test::getManifestFrame(1, "item-0"));
  auto manifest = answer(*s);
  auto digest = KJ_ASSERT_NONNULL(codec::Digest::from(manifest.root().getManifest().getDigest()));

  // Eight chunks of 4 KiB at once: three fill the session's 12 KiB being read, five wait.
  kj::Vector<codec::FrameBuilder> burst;
  for (uint64_t k = 0; k < 8; ++k)
    burst.add(test::getChunkFrame(10 + k, "item-0", digest, 1, k * 4096, 4096));  // data/big.bin
  sendTogether(*s, burst);
  EXPECT_EQ(readsUnderWay(a, [](size_t n) { return n >= 3; }), 3u);
  // Another session's read arrives through its socket, so after all the loop could do without
  // it: by then the first session's fourth read would have started if it could.
  constexpr uint64_t kOther = 50 * 4096;
  auto x = kj::arr(test::getChunkFrame(2, "item-0", digest, 1, kOther, 4096));
  sendTogether(*other, x);  // flushed: on the wire before we look
  EXPECT_EQ(readsUnderWay(a, [](size_t n) { return n >= 4; }), 4u);

  // Released: every request is answered with its chunk.
  held.open();
  for (uint64_t k = 0; k < 8; ++k) {
    auto f = answer(*s);
    EXPECT_EQ(f.kind(), Which::CHUNK) << k;
  }
  EXPECT_EQ(answer(*other).kind(), Which::CHUNK);
  // The fourth read started only once the third (whose turn it waited for) was answered: after
  // the other session's, which was queued while the first three were held.
  auto expected = kj::str(0, " ", 4096, " ", 2 * 4096, " ", kOther, " ", 3 * 4096, " ", 4 * 4096,
                          " ", 5 * 4096, " ", 6 * 4096, " ", 7 * 4096);
  EXPECT_STREQ(kj::strArray(held.arrived(), " ").cStr(), expected.cStr());
}

TEST(Wire, CancelYieldsExactlyOneTerminalAnswer) {
  // The Cancel arrives with its request, while the request is being served: its one terminal
  // answer is Error{cancelled}, and the snapshot produced meanwhile is never sent.
  Peer a("alpha", 20);
  Wire w;
  auto s = w.established(a);
  kj::Vector<codec::FrameBuilder> frames;
  frames.add(test::getLibraryFrame(1));
  frames.add(codec::cancelFrame(1));
  frames.add(test::getManifestFrame(2, "item-0"));  // a marker after the cancel
  sendTogether(*s, frames);
  uint32_t cancelled = 0, pages = 0;
  for (;;) {
    auto f = answer(*s);
    if (codec::requestIdOf(f.root()) == 2) break;
    if (f.kind() == Which::ERROR) {
      EXPECT_EQ(errorCode(f), wire::ErrorCode::CANCELLED);
      ++cancelled;
    } else {
      ++pages;
    }
  }
  EXPECT_EQ(cancelled, 1u);
  EXPECT_EQ(pages, 0u);
}

// A clock that always says the time it was given: when an answer arrives, by the test's word.
class StoppedClock final : public kj::MonotonicClock {
 public:
  explicit StoppedClock(kj::TimePoint at) : at(at) {}
  kj::TimePoint now() const override { return at; }

 private:
  kj::TimePoint at;
};

TEST(Wire, ARefusedGetLibraryIsAskedAgainRetryAfterMsFromItsArrival) {
  // [ERR-5] counts from the answer's arrival, which the runtime reads from its clock: here one far
  // ahead of the loop's timer, as a loop whose last wait lags behind the arrival sees it.
  StoppedClock arrival(kj::origin<kj::TimePoint>() + 1000000000 * kj::SECONDS);
  Peer a("alpha", 1, [&](RuntimeConfig& c) { c.clock = arrival; });
  Wire w;
  auto s = w.established(a);
  auto get = s->frame();
  while (get.kind() != Which::GET_LIBRARY)
    get = s->frame();
  auto busy = kj::arr(
      codec::errorFrame(codec::requestIdOf(get.root()), wire::ErrorCode::BUSY, "busy", 800));
  sendTogether(*s, busy);  // flushed: on the wire before we look
  // Bounded: until the runtime has the answer.
  kj::Maybe<kj::TimePoint> retryAt;
  auto deadline = kj::systemPreciseMonotonicClock().now() + 20 * kj::SECONDS;
  while (retryAt == nullptr && kj::systemPreciseMonotonicClock().now() < deadline) {
    retryAt = a.handle.call([](Runtime& r) {
      kj::Maybe<kj::TimePoint> at;
      r.forEachPeer([&](const PeerFacts& p) { at = p.libraryRetryAt; });
      return at;
    });
  }
  ASSERT_TRUE(retryAt != nullptr) << "the busy answer was never taken in";
  auto ms = [](kj::TimePoint t) {
    return (t - kj::origin<kj::TimePoint>()) / kj::MILLISECONDS;
  };
  EXPECT_EQ(ms(KJ_ASSERT_NONNULL(retryAt)), ms(arrival.now()) + 800);
}

TEST(Wire, UnknownItemsAndBadRangesAreTypedErrors) {
  Peer a("alpha", 1);
  Wire w;
  auto s = w.established(a);
  s->send(test::getManifestFrame(1, "no-such-item"));
  EXPECT_EQ(errorCode(answer(*s)), wire::ErrorCode::NOT_FOUND);
  s->send(test::getManifestFrame(2, "item-0"));
  auto manifest = answer(*s);
  auto m = manifest.root().getManifest();
  auto digest = KJ_ASSERT_NONNULL(codec::Digest::from(m.getDigest()));
  s->send(test::getChunkFrame(3, "no-such-item", digest, 0, 0, 1));
  EXPECT_EQ(errorCode(answer(*s)), wire::ErrorCode::NOT_FOUND);
  s->send(test::getChunkFrame(4, "item-0", digest, 99, 0, 1));
  EXPECT_EQ(errorCode(answer(*s)), wire::ErrorCode::NOT_FOUND);
  s->send(test::getChunkFrame(5, "item-0", codec::sha256(nullptr), 0, 0, 1));
  EXPECT_EQ(errorCode(answer(*s)), wire::ErrorCode::STALE);
  uint64_t size = m.getFiles()[0].getSize();
  s->send(test::getChunkFrame(6, "item-0", digest, 0, size, 1));
  EXPECT_EQ(errorCode(answer(*s)), wire::ErrorCode::RANGE);
  s->send(test::getChunkFrame(7, "item-0", digest, 0, 0, 0));  // a codec-level range fault
  EXPECT_EQ(errorCode(answer(*s)), wire::ErrorCode::RANGE);
  s->send(test::getChunkFrame(8, "item-0", digest, 0, 0, 1));  // and the connection goes on
  EXPECT_EQ(answer(*s).kind(), Which::CHUNK);
}

TEST(Wire, ChunksAboveTheRequestersOwnLimitsAreRange) {
  // Found by fuzz_session: the answer must fit the requester's limits, not only ours. Its 64 KiB
  // frames allow chunks of 61440 bytes ([FR-19]); a longer one is refused (Table 4 #5).
  Peer a("alpha", 1);
  Wire w;
  auto s = w.connect(a);
  s->send(test::helloFrame(w.me->id(), 4242, 1, 1, 65536));
  ASSERT_EQ(s->frame().kind(), Which::HELLO_ACK);
  s->send(test::getManifestFrame(1, "item-0"));
  auto manifest = answer(*s);
  auto digest = KJ_ASSERT_NONNULL(codec::Digest::from(manifest.root().getManifest().getDigest()));
  s->send(test::getChunkFrame(2, "item-0", digest, 1, 0, 200000));  // data/big.bin
  EXPECT_EQ(errorCode(answer(*s)), wire::ErrorCode::RANGE);
  s->send(test::getChunkFrame(3, "item-0", digest, 1, 0, 61441));
  EXPECT_EQ(errorCode(answer(*s)), wire::ErrorCode::RANGE);
  s->send(test::getChunkFrame(4, "item-0", digest, 1, 0, 61440));  // fits: served
  EXPECT_EQ(answer(*s).kind(), Which::CHUNK);
}

TEST(Wire, PathEscapesAreRefusedAndNothingOutsideTheItemIsServed) {
  // A secret beside the library, a symlink to it inside an item, and a file that becomes a
  // symlink to it after indexing (docs/bad-inputs.md #11, 12).
  test::TempTree outside;
  kj::StringPtr marker = "TOP-SECRET-MARKER";
  outside.write("secret.txt", kj::str(marker, marker, marker));
  Peer a("alpha", 1, [&](RuntimeConfig&) {});
  a.tree.symlink(outside.at("secret.txt"), "item-0/leak.txt");
  a.tree.symlink(outside.path(), "item-0/leakdir");
  a.handle.call([](Runtime& r) { return r.rescan(); });
  Wire w;
  auto s = w.established(a);
  s->send(test::getManifestFrame(1, "item-0"));
  auto manifest = answer(*s);
  auto m = manifest.root().getManifest();
  for (auto file : m.getFiles()) {
    EXPECT_FALSE(kj::StringPtr(file.getPath()).startsWith("leak")) << file.getPath().cStr();
  }
  auto digest = KJ_ASSERT_NONNULL(codec::Digest::from(m.getDigest()));
  // Swap a listed file for a symlink to the secret, behind the index's back.
  kj::String swapped;
  uint32_t swappedIndex = 0;
  for (auto i : kj::indices(m.getFiles())) {
    if (m.getFiles()[i].getPath() == "readme.txt") swappedIndex = i;
  }
  swapped = a.tree.at("item-0/readme.txt");
  ASSERT_EQ(unlink(swapped.cStr()), 0);
  ASSERT_EQ(symlink(outside.at("secret.txt").cStr(), swapped.cStr()), 0);
  // Ask for every byte of every listed file.
  uint64_t id = 10;
  for (auto i : kj::indices(m.getFiles())) {
    auto size = m.getFiles()[i].getSize();
    if (size == 0) continue;
    s->send(test::getChunkFrame(++id, "item-0", digest, i, 0, kj::min(size, uint64_t(1) << 20)));
    auto f = answer(*s);
    if (i == swappedIndex) {
      EXPECT_EQ(errorCode(f), wire::ErrorCode::STALE);
    }
    auto bytes = f.bytes();
    auto found = std::search(bytes.begin(), bytes.end(), marker.begin(), marker.end());
    EXPECT_EQ(found, bytes.end()) << "secret bytes served for file " << i;
  }
  // An item id that tries to climb out is a protocol error before any file is touched.
  s->send(test::getManifestFrame(99, ".."));
  auto error = answer(*s);
  EXPECT_EQ(errorCode(error), wire::ErrorCode::PROTOCOL);
  EXPECT_TRUE(s->closes());
}

TEST(Wire, ShutdownWith32SessionsSaysGoodbyeToEveryoneWithinTheDeadline) {
  Peer a("alpha", 2);
  Wire w;
  kj::Vector<kj::Own<Identity>> keys;
  kj::Vector<kj::Own<ScriptedPeer>> sessions;
  for (int i = 0; i < 32; ++i) {
    keys.add(Identity::generate());
    auto s = w.connect(a, *keys.back());
    s->send(test::helloFrame(keys.back()->id(), 1000 + i));
    ASSERT_EQ(s->frame().kind(), Which::HELLO_ACK);
    sessions.add(kj::mv(s));
  }
  a.handle.shutdown();
  for (auto& s : sessions) {
    bool goodbye = false;
    for (;;) {
      auto r = s->next();
      KJ_IF_MAYBE (f, r.tryGet<codec::InboundFrame>()) {
        if (f->kind() == Which::GOODBYE) goodbye = true;
        continue;
      }
      break;  // closed (or timed out: then goodbye stays as seen)
    }
    EXPECT_TRUE(goodbye);
  }
  ASSERT_TRUE(a.handle.waitStopped(5 * kj::SECONDS));
  auto stopped = a.events.waitFor(test::isStopped, "Stopped");
  auto s = stopped->get().getStopped();
  EXPECT_TRUE(s.getClean());  // every session drained within the deadline
  EXPECT_EQ(s.getGoodbyes(), 32u);
}

}  // namespace
}  // namespace shoal::peer
