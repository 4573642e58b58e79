// §4 Handshake: order, Hello checks (Table 3), versions, completion, instance ids, duplicates.
#include "common.h"

namespace shoal::conformance::cases {

namespace {

bool isHello(Reader f) {
  return f.isHello();
}
bool isHelloAck(Reader f) {
  return f.isHelloAck();
}

// --- order ---------------------------------------------------------------------------------------

void initiatorSendsHelloFirst(Trial& t) {
  KJ_IF_MAYBE (c, t.open()) {
    t.expectNext(*c, "Hello as the first frame", isHello);
  }
}

void responderWaitsForHello(Trial& t) {
  KJ_IF_MAYBE (c, t.open()) {
    t.expectSilence(*c, t.quiet());
    c->send(helloFrame(c->ours()));
    t.expectNext(*c, "HelloAck", isHelloAck);
  }
}

void initiatorWaitsForHelloAck(Trial& t) {
  KJ_IF_MAYBE (c, t.open()) {
    if (t.expectNext(*c, "Hello", isHello) == nullptr) return;
    c->deliver(Which::GET_LIBRARY);
    t.expectSilence(*c, t.quiet());
    c->send(helloAckFrame(c->ours()));
    t.expectAlive(*c);
  }
}

template <FrameBuilder (*make)()>
void wrongFirstFrame(Trial& t) {
  KJ_IF_MAYBE (c, t.open()) {
    if (t.role() == Role::initiator) {
      if (t.expectNext(*c, "Hello", isHello, "HS-1") == nullptr) return;
    }
    c->send(make());
    t.expectConnectionError(*c, Code::PROTOCOL);
  }
}
FrameBuilder firstGetLibrary() {
  return getLibraryFrame(1);
}
FrameBuilder firstPing() {
  return codec::pingFrame(5);
}
FrameBuilder firstHelloAck() {
  Announce a;
  return helloAckFrame(a);
}
FrameBuilder firstGoodbye() {
  return codec::goodbyeFrame(wire::GoodbyeReason::IDLE, "bye", 0);
}
FrameBuilder firstChunk() {
  kj::byte data[4] = {1, 2, 3, 4};
  return chunkFrame(1, data);
}
FrameBuilder firstHelloFromResponder() {
  Announce a;
  a.peerId = codec::sha256("someone"_kj.asBytes());
  return helloFrame(a);
}

void firstFrameError0(Trial& t) {
  KJ_IF_MAYBE (c, t.open()) {
    if (t.role() == Role::initiator) {
      if (t.expectNext(*c, "Hello", isHello, "HS-1") == nullptr) return;
    }
    c->send(codec::errorFrame(0, Code::PROTOCOL, "goodbye before hello"));
    t.expectClose(*c);
  }
}

void initiatorClosesAfterReject(Trial& t) {
  KJ_IF_MAYBE (c, t.open()) {
    if (t.expectNext(*c, "Hello", isHello) == nullptr) return;
    c->send(rejectFrame(Code::BUSY, "full"));
    t.expectClose(*c);
  }
}

template <FrameBuilder (*make)()>
void handshakeFrameAfterHandshake(Trial& t) {
  afterHandshakeExpectError(t, make());
}
FrameBuilder secondHelloFrame() {
  Announce a;
  a.peerId = codec::sha256("x"_kj.asBytes());
  return helloFrame(a);
}
FrameBuilder rejectAfter() {
  return rejectFrame(Code::BUSY, "too late");
}

void secondHelloSameKey(Trial& t) {
  KJ_IF_MAYBE (c, t.establish()) {
    c->send(helloFrame(c->ours()));
    t.expectConnectionError(*c, Code::PROTOCOL);
  }
}

// --- deadline
// --------------------------------------------------------------------------------------

// How late after its handshakeTimeout a target may close: timers fire in event-loop turns, and
// two busy sanitizer builds share the machine.
constexpr uint32_t kDeadlineSlackMs = 800;

Settings quickHandshake() {
  Settings s;
  s.handshakeMs = 400;
  return s;
}

// A handshake deadline far beyond what a case waits: a close the case sees is the target's answer
// to what the case sent, not its deadline.
Settings slowHandshake() {
  Settings s;
  s.handshakeMs = 60000;
  return s;
}

void silentTcp(Trial& t) {
  KJ_IF_MAYBE (stream, t.rawStream()) {
    auto& c = t.adopt(plaintextChannel(kj::mv(*stream)), t.announce());
    // Within the deadline (plus slack for both event loops), not at some other, later cut: a
    // target may also drop connections that send nothing (the reference does, after 2 s), and
    // that must not hide a TLS phase without a deadline.
    t.expectClose(c, (t.spec().settings.handshakeMs + kDeadlineSlackMs) * kj::MILLISECONDS, "HS-6");
  }
}

void oneByteOfHello(Trial& t) {
  KJ_IF_MAYBE (c, t.open()) {
    kj::byte one = 0;
    c->sendBytes(kj::arrayPtr(&one, 1), "the first byte of a Hello, then nothing");
    t.expectClose(*c);
  }
}

void slowloris(Trial& t) {
  KJ_IF_MAYBE (c, t.open()) {
    auto hello = encode(*helloFrame(c->ours()));
    auto trickle = c->trickle(kj::mv(hello), 100 * kj::MILLISECONDS, "a Hello, a byte per 100 ms");
    auto trickling = trickle.eagerlyEvaluate(nullptr);
    t.expectClose(*c);
  }
}

// --- Hello checks (Table 3)
// -----------------------------------------------------------------------

void invalidHello(Trial& t, kj::Function<void(wire::Hello::Builder)> breakIt) {
  KJ_IF_MAYBE (c, t.open()) {
    auto frame = helloFrame(c->ours());
    breakIt(codec::rootOf(*frame).getHello());
    c->sendBytes(encode(*frame), "an invalid Hello");
    expectRejectOrError(t, *c, Code::PROTOCOL);
  }
}

#define HELLO_CASE(fn, body)                                \
  void fn(Trial& t) {                                       \
    invalidHello(t, [&](wire::Hello::Builder h) { body; }); \
  }

HELLO_CASE(helloShortPeerId, {
  kj::byte id[31] = {};
  h.setPeerId(kj::arrayPtr(id, 31));
})
HELLO_CASE(helloNameEscape, h.setName("evil\x1b[2J"))
HELLO_CASE(helloNameLong, h.setName(kj::str(kj::repeat('n', 257))))
HELLO_CASE(helloNameBadUtf8, {
  static constexpr char bad[] = "na\xffme";
  h.setName(rawText(kj::arrayPtr(bad, sizeof(bad) - 1)));
})
HELLO_CASE(helloVersionZero, h.setVersionMin(0))
HELLO_CASE(helloVersionsReversed, {
  h.setVersionMin(2);
  h.setVersionMax(1);
})
HELLO_CASE(helloFeatureUpper, h.initFeatures(1).set(0, "UPPER"))
HELLO_CASE(helloFeatureLong, h.initFeatures(1).set(0, kj::str(kj::repeat('f', 65))))
HELLO_CASE(helloTooManyFeatures, {
  auto f = h.initFeatures(33);
  for (uint32_t i = 0; i < 33; ++i)
    f.set(i, kj::str("f", i));
})
HELLO_CASE(helloInstanceZero, h.setInstanceId(0))
HELLO_CASE(helloNoLimits, h.disownLimits())
HELLO_CASE(helloInFlightZero, h.getLimits().setMaxInFlight(0))
HELLO_CASE(helloChunkBytesZero, h.getLimits().setMaxChunkBytes(0))
HELLO_CASE(helloEpochZero, h.getLibrary().setEpoch(0))
HELLO_CASE(helloRevZero, h.getLibrary().setRev(0))
HELLO_CASE(helloShortDigest, {
  kj::byte d[8] = {};
  h.getLibrary().setDigest(kj::arrayPtr(d, 8));
})

void initiatorAcceptsRejectProtocol(Trial& t) {
  KJ_IF_MAYBE (c, t.open()) {
    if (t.expectNext(*c, "Hello", isHello) == nullptr) return;
    c->send(rejectFrame(Code::PROTOCOL, "your Hello is invalid"));
    t.expectClose(*c);
  }
}

void initiatorGetsInvalidHelloAck(Trial& t) {
  KJ_IF_MAYBE (c, t.open()) {
    if (t.expectNext(*c, "Hello", isHello) == nullptr) return;
    auto ack = helloAckFrame(c->ours());
    codec::rootOf(*ack).getHelloAck().setVersion(0);
    c->sendBytes(encode(*ack), "a HelloAck with version 0 (invalid)");
    t.expectConnectionError(*c, Code::PROTOCOL, "FR-12");
  }
}

void helloWithAnotherKeysId(Trial& t) {
  auto a = t.announce();
  a.peerId = codec::sha256("not the TLS key"_kj.asBytes());
  KJ_IF_MAYBE (c, t.open(Trial::Open{nullptr, {}, a})) {
    c->send(helloFrame(c->ours()));
    t.expectReject(*c, Code::UNTRUSTED);
  }
}

void helloWithTargetsOwnId(Trial& t) {
  if (t.tls()) {
    // Only the holder of the target's key can claim its id over TLS, and the [HS-8] check
    // answers any other Hello claiming it first.
    t.unimplemented(
        kj::str("over TLS a Hello can claim the target's id only with its key: "
                "plaintext mode only"));
    return;
  }
  PeerId own;
  KJ_IF_MAYBE (first, t.establish()) {
    KJ_IF_MAYBE (id, targetIdOn(t, *first)) {
      own = *id;
    }
  }
  auto a = t.announce();
  a.peerId = own;
  KJ_IF_MAYBE (c, t.open(Trial::Open{nullptr, {}, a})) {
    c->send(helloFrame(c->ours()));
    t.expectReject(*c, Code::UNTRUSTED);
  }
}

void helloAckWithAnotherId(Trial& t) {
  KJ_IF_MAYBE (c, t.open()) {
    if (t.expectNext(*c, "Hello", isHello) == nullptr) return;
    auto a = c->ours();
    a.peerId = codec::sha256("someone else"_kj.asBytes());
    c->send(helloAckFrame(a));
    t.expectClose(*c);
  }
}

void helloAckWithOtherVersion(Trial& t) {
  KJ_IF_MAYBE (c, t.open()) {
    if (t.expectNext(*c, "Hello", isHello) == nullptr) return;
    c->send(helloAckFrame(c->ours(), 2));
    t.expectClose(*c);
  }
}

Settings twoConnections() {
  Settings s;
  s.maxConnections = 2;
  return s;
}

void connectionLimit(Trial& t) {
  kj::Vector<kj::Own<Identity>> keys;
  for (int i = 0; i < 2; ++i) {
    keys.add(Identity::generate());
    auto a = t.announce();
    a.peerId = keys.back()->id();
    if (t.establish(Trial::Open{*keys.back(), {}, a}) == nullptr) return;
  }
  keys.add(Identity::generate());
  auto a = t.announce();
  a.peerId = keys.back()->id();
  KJ_IF_MAYBE (c, t.open(Trial::Open{*keys.back(), {}, a})) {
    c->send(helloFrame(c->ours()));
    t.expectReject(*c, Code::BUSY);
  }
}

void rejectThenClose(Trial& t) {
  auto a = t.announce();
  a.versionMin = a.versionMax = 9;
  KJ_IF_MAYBE (c, t.open(Trial::Open{nullptr, {}, a})) {
    c->send(helloFrame(c->ours()));
    t.expectReject(*c, Code::UNSUPPORTED_VERSION);
  }
}

// --- versions ------------------------------------------------------------------------------------

void helloVersionsAreOne(Trial& t) {
  KJ_IF_MAYBE (c, t.open()) {
    KJ_IF_MAYBE (h, t.expectNext(*c, "Hello", isHello)) {
      auto hello = h->root().getHello();
      t.check(hello.getVersionMin() == 1 && hello.getVersionMax() == 1, "HS-13",
              "versionMin = versionMax = 1",
              kj::str(hello.getVersionMin(), "..", hello.getVersionMax()));
    }
  }
}

void highestCommonVersion(Trial& t, uint16_t max) {
  auto a = t.announce();
  a.versionMax = max;
  KJ_IF_MAYBE (c, t.open(Trial::Open{nullptr, {}, a})) {
    c->send(helloFrame(c->ours()));
    KJ_IF_MAYBE (ack, t.expectNext(*c, "HelloAck", isHelloAck)) {
      auto v = ack->root().getHelloAck().getVersion();
      t.check(v == 1, "HS-14", "HelloAck.version = 1", kj::str(v));
    }
  }
}
void versions1to5(Trial& t) {
  highestCommonVersion(t, 5);
}
void versions1toMax(Trial& t) {
  highestCommonVersion(t, 65535);
}

void noCommonVersion(Trial& t) {
  auto a = t.announce();
  a.versionMin = 2;
  a.versionMax = 3;
  KJ_IF_MAYBE (c, t.open(Trial::Open{nullptr, {}, a})) {
    c->send(helloFrame(c->ours()));
    KJ_IF_MAYBE (r, t.expectNext(*c, "Reject{unsupportedVersion, 1, 1}",
                                 [](Reader f) { return f.isReject(); })) {
      auto reject = r->root().getReject();
      t.check(reject.getCode() == Code::UNSUPPORTED_VERSION && reject.getVersionMin() == 1 &&
                  reject.getVersionMax() == 1,
              "HS-15", "Reject{unsupportedVersion, versionMin 1, versionMax 1}",
              kj::str(r->root()));
      t.expectClose(*c);
    }
  }
}

// --- instance ids and duplicates ---------------------------------------------------------------

void sameInstanceEverywhere(Trial& t) {
  kj::Maybe<uint64_t> first;
  for (int i = 0; i < 2; ++i) {
    auto key = Identity::generate();
    auto a = t.announce();
    a.peerId = key->id();
    KJ_IF_MAYBE (c, t.establish(Trial::Open{*key, {}, a})) {
      KJ_IF_MAYBE (h, c->theirs()) {
        t.check(h->instanceId != 0, "HS-16", "a non-zero instanceId", kj::str(h->instanceId));
        KJ_IF_MAYBE (f, first) {
          t.check(*f == h->instanceId, "HS-16", "the same instanceId on every session",
                  kj::str(*f, " then ", h->instanceId));
        }
        first = h->instanceId;
      }
    }
  }
}

bool isDuplicateGoodbye(Reader f) {
  return f.isGoodbye() && f.getGoodbye().getReason() == wire::GoodbyeReason::DUPLICATE;
}

void duplicateSameInstance(Trial& t) {
  auto a = t.announce();
  KJ_IF_MAYBE (older, t.establish(Trial::Open{nullptr, {}, a})) {
    KJ_IF_MAYBE (newer, t.establish(Trial::Open{nullptr, {}, a})) {
      t.expectFrame(*older, "Goodbye{duplicate} on the older session", isDuplicateGoodbye);
      t.expectAlive(*newer);
    }
  }
}

void duplicateNewInstance(Trial& t) {
  auto a = t.announce();
  KJ_IF_MAYBE (older, t.establish(Trial::Open{nullptr, {}, a})) {
    auto b = t.announce();  // a restart: same key, new instance
    KJ_IF_MAYBE (newer, t.establish(Trial::Open{nullptr, {}, b})) {
      t.expectFrame(*older, "Goodbye{duplicate} on the old instance's session", isDuplicateGoodbye);
      t.expectAlive(*newer);
    }
  }
}

void duplicateDrains(Trial& t) {
  auto a = t.announce();
  KJ_IF_MAYBE (older, t.establish(Trial::Open{nullptr, {}, a})) {
    if (t.establish(Trial::Open{nullptr, {}, a}) == nullptr) return;
    if (t.expectFrame(*older, "Goodbye{duplicate}", isDuplicateGoodbye) == nullptr) return;
    older->closeNotify().wait(t.io().waitScope);
    older->fin();
    t.expectClose(*older);
  }
}

}  // namespace

void handshakeCases(kj::Vector<CaseSpec>& out) {
  out.add(spec("hs/HS-1/1", "HS-1", Role::initiator, "the first frame is Hello",
               initiatorSendsHelloFirst));
  out.add(spec("hs/HS-2/1", "HS-2", Role::responder, "the responder sends nothing before Hello",
               responderWaitsForHello));
  out.add(spec("hs/HS-2/2", "HS-2", Role::initiator,
               "the initiator sends nothing after Hello until HelloAck",
               initiatorWaitsForHelloAck));
  out.add(spec("hs/HS-3/1", "HS-3", Role::responder, "GetLibrary first",
               wrongFirstFrame<firstGetLibrary>));
  out.add(spec("hs/HS-3/2", "HS-3", Role::responder, "Ping first", wrongFirstFrame<firstPing>));
  out.add(
      spec("hs/HS-3/3", "HS-3", Role::responder, "HelloAck first", wrongFirstFrame<firstHelloAck>));
  out.add(
      spec("hs/HS-3/4", "HS-3", Role::responder, "Goodbye first", wrongFirstFrame<firstGoodbye>));
  out.add(spec("hs/HS-3/5", "HS-3", Role::responder, "Chunk first", wrongFirstFrame<firstChunk>));
  out.add(
      spec("hs/HS-3/6", "HS-3", Role::responder, "Error{0} first: just close", firstFrameError0));
  out.add(spec("hs/HS-4/1", "HS-4", Role::initiator, "Ping instead of HelloAck",
               wrongFirstFrame<firstPing>));
  out.add(spec("hs/HS-4/2", "HS-4", Role::initiator, "GetLibrary instead of HelloAck",
               wrongFirstFrame<firstGetLibrary>));
  out.add(spec("hs/HS-4/3", "HS-4", Role::initiator, "Hello instead of HelloAck",
               wrongFirstFrame<firstHelloFromResponder>));
  out.add(spec("hs/HS-4/4", "HS-4", Role::initiator, "Reject: the initiator closes",
               initiatorClosesAfterReject, need::launch, slowHandshake()));
  out.add(spec("hs/HS-4/5", "HS-4", Role::initiator, "Error{0}: the initiator closes",
               firstFrameError0));
  out.add(spec("hs/HS-5/1", "HS-5", Role::responder, "a second Hello", secondHelloSameKey));
  out.add(spec("hs/HS-5/2", "HS-5", Role::responder, "HelloAck after the handshake",
               handshakeFrameAfterHandshake<firstHelloAck>));
  out.add(spec("hs/HS-5/3", "HS-5", Role::initiator, "a second HelloAck",
               handshakeFrameAfterHandshake<firstHelloAck>));
  out.add(spec("hs/HS-5/4", "HS-5", Role::initiator, "Reject after the handshake",
               handshakeFrameAfterHandshake<rejectAfter>));
  out.add(spec("hs/HS-5/5", "HS-5", Role::initiator, "Hello from the responder after the handshake",
               handshakeFrameAfterHandshake<secondHelloFrame>));
  out.add(
      withBadInputs(spec("hs/HS-6/1", "HS-6", Role::responder, "a TCP connection that says nothing",
                         silentTcp, need::launch, quickHandshake()),
                    "7"));
  out.add(
      withBadInputs(spec("hs/HS-6/2", "HS-6", Role::responder, "one byte of Hello, then nothing",
                         oneByteOfHello, need::launch, quickHandshake()),
                    "7"));
  out.add(
      withBadInputs(spec("hs/HS-6/3", "HS-6", Role::responder, "a Hello trickled a byte per 100 ms",
                         slowloris, need::launch, quickHandshake()),
                    "7"));
  struct Row {
    kj::StringPtr id, title;
    void (*run)(Trial&);
  };
  Row rows[] = {
      {"hs/HS-7/1", "Hello with a 31-byte peerId", helloShortPeerId},
      {"hs/HS-7/2", "Hello name with ESC", helloNameEscape},
      {"hs/HS-7/3", "Hello name of 257 bytes", helloNameLong},
      {"hs/HS-7/4", "Hello name not UTF-8", helloNameBadUtf8},
      {"hs/HS-7/5", "Hello versionMin 0", helloVersionZero},
      {"hs/HS-7/6", "Hello versionMin above versionMax", helloVersionsReversed},
      {"hs/HS-7/7", "Hello feature 'UPPER'", helloFeatureUpper},
      {"hs/HS-7/8", "Hello feature of 65 bytes", helloFeatureLong},
      {"hs/HS-7/9", "Hello with 33 features", helloTooManyFeatures},
      {"hs/HS-7/10", "Hello instanceId 0", helloInstanceZero},
      {"hs/HS-7/11", "Hello without limits", helloNoLimits},
      {"hs/HS-7/12", "Hello maxInFlight 0", helloInFlightZero},
      {"hs/HS-7/13", "Hello maxChunkBytes 0", helloChunkBytesZero},
      {"hs/HS-7/14", "Hello library epoch 0", helloEpochZero},
      {"hs/HS-7/15", "Hello library rev 0", helloRevZero},
      {"hs/HS-7/16", "Hello library digest of 8 bytes", helloShortDigest},
  };
  for (auto& r : rows)
    out.add(spec(r.id, "HS-7", Role::responder, r.title, r.run));
  out.add(spec("hs/HS-7/17", "HS-7", Role::initiator, "the initiator accepts Reject{protocol}",
               initiatorAcceptsRejectProtocol, need::launch, slowHandshake()));
  out.add(spec("hs/HS-7/18", "HS-7", Role::initiator, "the initiator accepts Error{0, protocol}",
               firstFrameError0));
  out.add(spec("hs/HS-7/19", "HS-7", Role::initiator, "an invalid HelloAck (version 0)",
               initiatorGetsInvalidHelloAck));
  out.add(withBadInputs(spec("hs/HS-8/1", "HS-8", Role::responder, "Hello claims another key's id",
                             helloWithAnotherKeysId, need::tlsOnly),
                        "20"));
  out.add(spec("hs/HS-9/1", "HS-9", Role::responder, "Hello claims the target's own id",
               helloWithTargetsOwnId));
  out.add(
      withBadInputs(spec("hs/HS-10/1", "HS-10", Role::initiator, "HelloAck claims another key's id",
                         helloAckWithAnotherId, need::tlsOnly),
                    "20"));
  out.add(spec("hs/HS-10/2", "HS-10", Role::initiator, "HelloAck with version 2",
               helloAckWithOtherVersion));
  out.add(spec("hs/HS-11/1", "HS-11", Role::responder, "a third session with maxConnections 2",
               connectionLimit, need::launch, twoConnections()));
  out.add(spec("hs/HS-12/1", "HS-12", Role::responder, "Reject, then close", rejectThenClose));
  out.add(spec("hs/HS-13/1", "HS-13", Role::initiator, "Hello carries versions 1..1",
               helloVersionsAreOne));
  out.add(spec("hs/HS-14/1", "HS-14", Role::responder, "Hello 1..5 gets version 1", versions1to5));
  out.add(spec("hs/HS-14/2", "HS-14", Role::responder, "Hello 1..65535 gets version 1",
               versions1toMax));
  out.add(spec("hs/HS-15/1", "HS-15", Role::responder, "Hello 2..3 gets Reject with the range 1..1",
               noCommonVersion));
  out.add(spec("hs/HS-16/1", "HS-16", Role::responder, "one non-zero instanceId for every session",
               sameInstanceEverywhere));
  out.add(spec("hs/HS-17/1", "HS-17", Role::responder,
               "two sessions, same key and instance: the newer wins", duplicateSameInstance));
  out.add(spec("hs/HS-18/1", "HS-18", Role::responder, "a new instance replaces the old session",
               duplicateNewInstance));
  out.add(spec("hs/HS-19/1", "HS-19", Role::responder,
               "the losing session gets Goodbye{duplicate} and drains", duplicateDrains));
}

}  // namespace shoal::conformance::cases

namespace shoal::conformance {
void handshakeCases(kj::Vector<CaseSpec>& out) {
  cases::handshakeCases(out);
}
}  // namespace shoal::conformance
