// §3 Framing and limits: segment tables, sizes, pointers, Table 1 validity, unknown members,
// frames out of place, schema evolution. Most scripts run in both roles: after the handshake the
// target is a receiver like any other.
#include "common.h"

namespace shoal::conformance::cases {

namespace {

uint64_t structPointer(int32_t offset, uint16_t data, uint16_t pointers) {
  return uint64_t(uint32_t(offset) << 2) | (uint64_t(data) << 32) | (uint64_t(pointers) << 48);
}

void twoPingsInOneWrite(Trial& t) {
  KJ_IF_MAYBE (c, t.establish()) {
    auto a = encode(*codec::pingFrame(11));
    auto b = encode(*codec::pingFrame(12));
    kj::Vector<kj::byte> both;
    both.addAll(a);
    both.addAll(b);
    c->sendBytes(both, "two Ping frames back to back in one write");
    t.expectFrame(*c, "Pong 11",
                  [](Reader f) { return f.isPong() && f.getPong().getNonce() == 11; });
    t.expectFrame(*c, "Pong 12",
                  [](Reader f) { return f.isPong() && f.getPong().getNonce() == 12; });
  }
}

// Two Ping round trips before a case sends a frame in pieces with pauses between: the target's
// opening requests (an initiator's GetLibrary) arrive before the first Pong, and the harness's
// background answers to them go out while the second is under way, not between the pieces.
bool settle(Trial& t, Connection& c) {
  return t.expectAlive(c) && t.expectAlive(c);
}

void pingInOneByteWrites(Trial& t) {
  KJ_IF_MAYBE (c, t.establish()) {
    if (!settle(t, *c)) return;
    // The first half, then a pause: the frame surely spans more than one of the target's reads,
    // and half a frame is no reason to act.
    auto ping = encode(*codec::pingFrame(7));
    c->sendSplit(ping.slice(0, 20), 1, "the first 20 bytes of a Ping in 1-byte writes");
    if (!t.expectSilence(*c, t.quiet())) return;
    c->sendSplit(ping.slice(20, ping.size()), 1, "the rest of the Ping in 1-byte writes");
    t.expectFrame(*c, "Pong 7", [](Reader f) { return f.isPong() && f.getPong().getNonce() == 7; });
  }
}

void hugeFrameHeaderOnly(Trial& t) {
  // 1 GiB announced, no body: the answer must come from the table alone.
  uint32_t sizes[] = {128 * 1024 * 1024};
  afterHandshakeExpectError(t, segmentTable(sizes), "a segment table announcing 1 GiB, no body",
                            Code::TOO_LARGE);
}

void aboveMaxFrame(Trial& t) {
  uint32_t sizes[] = {2 * 1024 * 1024 + 1};  // 16 MiB + 8 bytes: above the default
  KJ_IF_MAYBE (c, t.establish()) {
    KJ_IF_MAYBE (h, c->theirs()) {
      sizes[0] = h->maxFrameBytes / 8 + 1;
    }
    c->sendBytes(segmentTable(sizes), "a segment table one word above the target's maxFrameBytes");
    t.expectConnectionError(*c, Code::TOO_LARGE);
  }
}

void segmentCountWrap(Trial& t) {
  afterHandshakeExpectError(t, fromHex("ffffffff 00000000"), "first word 0xFFFFFFFF");
}

void segmentZeroEmpty(Trial& t) {
  afterHandshakeExpectError(t, fromHex("00000000 00000000"), "one segment of size 0");
}

void manySegments(Trial& t, uint32_t count) {
  kj::Vector<uint32_t> sizes;
  for (uint32_t i = 0; i < count; ++i)
    sizes.add(1);
  afterHandshakeExpectError(t, segmentTable(sizes), kj::str(count, " segments"));
}
void segments65(Trial& t) {
  manySegments(t, 65);
}
void segments512(Trial& t) {
  manySegments(t, 512);
}

void tableCutShort(Trial& t) {
  KJ_IF_MAYBE (c, t.establish()) {
    if (!settle(t, *c)) return;
    c->sendBytes(fromHex("03000000 01000000"), "a table announcing 4 segments, cut short");
    c->flushed().wait(t.io().waitScope);
    // Nothing is wrong yet: the rest of the table may still come, so the target must wait for it.
    if (!t.expectSilence(*c, t.quiet())) return;
    c->fin();
    // Accepted: the close, with or without an Error{0, protocol} for the truncated frame first.
    KJ_IF_MAYBE (e, c->next(t.stepTimeout()).wait(t.io().waitScope)) {
      if (e->is<Closed>()) return;
      KJ_IF_MAYBE (f, e->tryGet<FrameEvent>()) {
        auto r = f->frame.root();
        if (t.check(r.isError() && r.getError().getId() == 0 &&
                        r.getError().getCode() == Code::PROTOCOL,
                    "FR-4", "a close, or Error{0, protocol} then a close", kj::str(r))) {
          t.expectClose(*c);
        }
        return;
      }
    }
    t.fail("FR-4", kj::str("a close"), kj::str("nothing"));
  }
}

void pointerOutOfBounds(Trial& t) {
  uint64_t words[] = {structPointer(0, 1, 1), 5, structPointer(1000, 1, 0)};
  afterHandshakeExpectError(t, rawFrame(words), "a Ping pointer 1000 words past the segment");
}

void farPointerNowhere(Trial& t) {
  // A far pointer (type 2) into segment 7 of a one-segment frame.
  uint64_t far = 2 | (uint64_t(0) << 3) | (uint64_t(7) << 32);
  uint64_t words[] = {structPointer(0, 1, 1), 5, far};
  afterHandshakeExpectError(t, rawFrame(words), "a far pointer into a segment that does not exist");
}

void listAmplification(Trial& t) {
  // Hello.features as a list of 2^29 - 1 zero-size elements held in no bytes at all.
  auto frame = helloFrame(t.announce());
  auto bytes = withExtraFields(*frame, 0, 0);
  // Hello's pointer 2 (features): find it from the encoding rather than hard-coding offsets.
  auto words = kj::heapArray<uint64_t>(bytes.size() / 8 - 1);
  for (size_t i = 0; i < words.size(); ++i) {
    uint64_t w = 0;
    for (int b = 7; b >= 0; --b)
      w = (w << 8) | bytes[8 + 8 * i + b];
    words[i] = w;
  }
  size_t rootAt = 1 + (int32_t(uint32_t(words[0])) >> 2);
  size_t helloPtr = rootAt + uint16_t(words[0] >> 32);
  size_t helloAt = helloPtr + 1 + (int32_t(uint32_t(words[helloPtr])) >> 2);
  size_t features = helloAt + uint16_t(words[helloPtr] >> 32) + 2;
  words[features] = 1 | (uint64_t(0) << 32) | (uint64_t((1u << 29) - 1) << 35);
  KJ_IF_MAYBE (c, t.open()) {
    c->sendBytes(rawFrame(words), "a Hello whose features list claims 2^29 zero-size elements");
    expectRejectOrError(t, *c, Code::PROTOCOL);
  }
}

void invalidGoodbyeIsNotADrain(Trial& t) {
  auto frame = codec::newFrame();
  auto g = codec::rootOf(*frame).initGoodbye();
  g.setReason(wire::GoodbyeReason::IDLE);
  static constexpr char bad[] = "bad \xc0\xaf utf-8";
  g.setMessage(rawText(kj::arrayPtr(bad, sizeof(bad) - 1)));
  afterHandshakeExpectError(t, kj::mv(frame));
}

// --- Table 1 rows, after the handshake ---------------------------------------------------------

FrameBuilder getManifestIdZero() {
  return getManifestFrame(0, "alpha");
}
FrameBuilder getChunkShortDigest() {
  auto frame = getChunkFrame(3, "alpha", codec::Digest(), 0, 0, 1);
  kj::byte short31[31] = {};
  codec::rootOf(*frame).getGetChunk().setManifestDigest(kj::arrayPtr(short31, 31));
  return frame;
}
FrameBuilder getLibraryRevWithoutEpoch() {
  return getLibraryFrame(3, 0, 5);
}
FrameBuilder cancelIdZero() {
  return codec::cancelFrame(0);
}
FrameBuilder goodbyeLongMessage() {
  auto frame = codec::newFrame();
  auto g = codec::rootOf(*frame).initGoodbye();
  auto text = kj::str(kj::repeat('m', 1025));
  g.setMessage(text);
  return frame;
}
FrameBuilder goodbyeNulMessage() {
  auto frame = codec::newFrame();
  codec::rootOf(*frame).initGoodbye().setMessage(rawText(kj::arrayPtr("a\0b", 3)));
  return frame;
}
FrameBuilder changedEpochZero() {
  return libraryChangedFrame(codec::Summary{0, 3, codec::libraryDigest(nullptr)});
}
FrameBuilder changedRevZero() {
  return libraryChangedFrame(codec::Summary{9, 0, codec::libraryDigest(nullptr)});
}
FrameBuilder changedShortDigest() {
  auto frame = libraryChangedFrame(codec::Summary{9, 3, codec::libraryDigest(nullptr)});
  kj::byte d[16] = {};
  codec::rootOf(*frame).getLibraryChanged().getSummary().setDigest(kj::arrayPtr(d, 16));
  return frame;
}
FrameBuilder getManifestBadItem() {
  return getManifestFrame(3, "../alpha");
}
FrameBuilder getChunkSlashItem() {
  return getChunkFrame(3, "a/b", codec::Digest(), 0, 0, 1);
}
FrameBuilder getManifestLongItem() {
  auto id = kj::str(kj::repeat('i', 256));
  return getManifestFrame(3, id);
}

template <FrameBuilder (*make)()>
void tableRow(Trial& t) {
  afterHandshakeExpectError(t, make());
}

void unknownMember17(Trial& t) {
  afterHandshakeExpectError(t, unionOnlyFrame(17), "a Frame with union member 17 (unknown)");
}
void unknownMember1000(Trial& t) {
  afterHandshakeExpectError(t, unionOnlyFrame(1000), "a Frame with union member 1000 (unknown)");
}

void announceOnConnection(Trial& t) {
  auto frame = codec::newFrame();
  auto a = codec::rootOf(*frame).initAnnounce();
  a.setPeerId(t.identity().id().asBytes());
  a.setInstanceId(5);
  a.setPort(4747);
  a.setVersionMin(1);
  a.setVersionMax(1);
  emptySummary().toWire(a.initSummary());
  afterHandshakeExpectError(t, kj::mv(frame));
}

void pingWithExtraFields(Trial& t) {
  KJ_IF_MAYBE (c, t.establish()) {
    auto ping = codec::pingFrame(99);
    c->sendBytes(withExtraFields(*ping, 2, 2, 1),
                 "a Ping with 2 data words and 2 pointers unknown to v1");
    t.expectFrame(
        *c, "Pong 99", [](Reader f) { return f.isPong() && f.getPong().getNonce() == 99; },
        "FR-16");
  }
}

void helloWithExtraFields(Trial& t) {
  KJ_IF_MAYBE (c, t.open()) {
    auto hello = helloFrame(c->ours());
    c->monitor().onSent(codec::rootOf(*hello).asReader());
    c->sendBytes(withExtraFields(*hello, 3, 2, 2), "a Hello with fields unknown to v1");
    t.expectNext(*c, "HelloAck", [](Reader f) { return f.isHelloAck(); });
  }
}

void helloAckWithExtraFields(Trial& t) {
  KJ_IF_MAYBE (c, t.open()) {
    t.expectNext(
        *c, "Hello", [](Reader f) { return f.isHello(); }, "HS-1");
    auto ack = helloAckFrame(c->ours());
    c->monitor().onSent(codec::rootOf(*ack).asReader());
    c->sendBytes(withExtraFields(*ack, 3, 2, 2), "a HelloAck with fields unknown to v1");
    t.expectAlive(*c);
  }
}

void targetAnnouncesEnough(Trial& t) {
  KJ_IF_MAYBE (c, t.establish()) {
    KJ_IF_MAYBE (h, c->theirs()) {
      t.check(h->maxFrameBytes >= 65536, "FR-6", "limits.maxFrameBytes >= 65536",
              kj::str(h->maxFrameBytes));
    }
  }
}

void helloBelowMinimumFrame(Trial& t) {
  auto a = t.announce();
  a.maxFrameBytes = 65535;
  KJ_IF_MAYBE (c, t.open(Trial::Open{nullptr, {}, a})) {
    c->send(helloFrame(c->ours()));
    expectRejectOrError(t, *c, Code::PROTOCOL);
  }
}

// Segment counts of what the target sends during a handshake and a library sync.
void segmentsUsed(Trial& t, uint32_t limit) {
  KJ_IF_MAYBE (c, t.establish(requester())) {
    KJ_IF_MAYBE (pages, t.request(*c, getLibraryFrame(c->nextRequestId()))) {
      for (auto& p : *pages) {
        auto bytes = p.bytes();
        uint32_t segments = (uint32_t(bytes[0]) | uint32_t(bytes[1]) << 8) + 1;
        if (!t.check(segments <= limit, t.spec().requirement,
                     kj::str("frames of at most ", limit, " segment(s)"),
                     kj::str("a ", codec::name(p.kind()), " of ", segments, " segments"))) {
          return;
        }
      }
    }
  }
}
void atMost64Segments(Trial& t) {
  segmentsUsed(t, 64);
}
void oneSegment(Trial& t) {
  segmentsUsed(t, 1);
}

// A valid Hello or HelloAck padded with fields unknown to v1 ([FR-16]) to 65544 bytes: only its
// size is wrong. The harness holds back its last word, so that a target which reads the body before
// it decides waits in vain: the refusal must come from the segment table. (The other half of
// [FR-9], the target's own handshake frames, is checked on every connection of every case by the
// monitor.)
void preHandshakeFrameTooLarge(Trial& t) {
  KJ_IF_MAYBE (c, t.open()) {
    bool responder = t.role() == Role::responder;
    if (!responder && t.expectNext(
                          *c, "Hello", [](Reader f) { return f.isHello(); }, "HS-1") == nullptr) {
      return;
    }
    auto frame = responder ? helloFrame(c->ours()) : helloAckFrame(c->ours());
    size_t bare = withExtraFields(*frame, 0, 0).size();
    size_t target = codec::kMinFrameBytes + 8;
    auto padded = withExtraFields(*frame, uint16_t((target - bare) / 8), 0);
    KJ_ASSERT(padded.size() == target);
    c->sendBytes(padded.slice(0, target - 8),
                 kj::str("a ", target, "-byte ", responder ? "Hello" : "HelloAck",
                         " (unknown fields), all but its last 8 bytes"));
    t.expectConnectionError(*c, Code::TOO_LARGE);
  }
}

void noFrameAboveOurLimit(Trial& t) {
  auto a = t.announce();
  a.maxFrameBytes = 65536;
  KJ_IF_MAYBE (c, t.establish(Trial::Open{nullptr, {}, a})) {
    // A 200000-byte chunk cannot come in a 64 KiB frame: the answer must be an Error (the monitor
    // fails any frame above 65536 bytes).
    c->send(getManifestFrame(c->nextRequestId(), "gamma"));
    KJ_IF_MAYBE (m, t.expectFrame(*c, "Manifest", [](Reader f) { return f.isManifest(); })) {
      auto digest = KJ_ASSERT_NONNULL(codec::Digest::from(m->root().getManifest().getDigest()));
      uint32_t index = 0;
      auto files = m->root().getManifest().getFiles();
      for (auto i : kj::indices(files))
        if (files[i].getPath() == "data/level 1/map.bin") index = uint32_t(i);
      KJ_IF_MAYBE (pages, t.request(*c, getChunkFrame(c->nextRequestId(), "gamma", digest, index, 0,
                                                      200000))) {
        t.check((*pages)[0].root().isError(), "FR-8", "an Error, not a frame above 64 KiB",
                kj::str((*pages)[0].root()));
      }
    }
  }
}

void chunkLimitFitsFrames(Trial& t) {
  KJ_IF_MAYBE (c, t.establish()) {
    KJ_IF_MAYBE (h, c->theirs()) {
      t.check(h->maxChunkBytes <= h->maxFrameBytes - 4096, "FR-19",
              "maxChunkBytes <= maxFrameBytes - 4096",
              kj::str(h->maxChunkBytes, " with frames of ", h->maxFrameBytes));
    }
  }
}

void helloChunkAboveFrame(Trial& t) {
  KJ_IF_MAYBE (c, t.open()) {
    auto frame = helloFrame(c->ours());
    auto limits = codec::rootOf(*frame).getHello().getLimits();
    limits.setMaxFrameBytes(65536);
    limits.setMaxChunkBytes(65536);
    c->sendBytes(encode(*frame), "a Hello announcing 64 KiB frames and 64 KiB chunks");
    expectRejectOrError(t, *c, Code::PROTOCOL);
  }
}

void unknownFeaturesIntersected(Trial& t) {
  auto a = t.announce();
  kj::StringPtr features[] = {"zz-not-a-feature", "x.y-2"};
  a.features = features;
  KJ_IF_MAYBE (c, t.open(Trial::Open{nullptr, {}, a})) {
    c->send(helloFrame(c->ours()));
    KJ_IF_MAYBE (ack, t.expectNext(*c, "HelloAck", [](Reader f) { return f.isHelloAck(); })) {
      for (auto f : ack->root().getHelloAck().getFeatures()) {
        bool offered = f == "zz-not-a-feature" || f == "x.y-2";
        if (!t.check(offered, "FR-18", "HelloAck.features a subset of Hello.features",
                     kj::str("the feature ", f, " that the harness never offered"))) {
          return;
        }
      }
    }
  }
}

void v1MembersOnly(Trial& t) {
  // Everything the target sends in a handshake, a library sync and a manifest passes v1
  // validation (the connection's decoder fails on any unknown member, ordinal or field).
  KJ_IF_MAYBE (c, t.establish()) {
    t.request(*c, getLibraryFrame(c->nextRequestId()));
    t.request(*c, getManifestFrame(c->nextRequestId(), "alpha"));
    t.expectAlive(*c);
  }
}

}  // namespace

void framingCases(kj::Vector<CaseSpec>& out) {
  both(out, "fr/FR-1/1", "fr/FR-1/2", "FR-1", "two frames in one write are two frames",
       twoPingsInOneWrite);
  auto split = [&](kj::StringPtr r, kj::StringPtr i) {
    both(out, r, i, "FR-1", "a frame split into 1-byte writes is one frame", pingInOneByteWrites);
    out[out.size() - 1].badInputs = "7";
    out[out.size() - 2].badInputs = "7";
  };
  split("fr/FR-1/3", "fr/FR-1/4");
  both(out, "fr/FR-2/1", "fr/FR-2/2", "FR-2",
       "a table announcing 1 GiB with no body is refused from the table alone",
       hugeFrameHeaderOnly);
  both(out, "fr/FR-3/1", "fr/FR-3/2", "FR-3", "first word 0xFFFFFFFF (segment count wraps)",
       segmentCountWrap);
  both(out, "fr/FR-3/3", "fr/FR-3/4", "FR-3", "segment 0 of size 0", segmentZeroEmpty);
  both(out, "fr/FR-4/1", "fr/FR-4/2", "FR-4", "65 segments", segments65);
  both(out, "fr/FR-4/3", "fr/FR-4/4", "FR-4", "512 segments", segments512);
  both(out, "fr/FR-4/5", "fr/FR-4/6", "FR-4",
       "a segment table cut short: nothing until the rest or FIN, then a close", tableCutShort);
  both(out, "fr/FR-5/1", "fr/FR-5/2", "FR-5", "a frame one word above maxFrameBytes",
       aboveMaxFrame);
  both(out, "fr/FR-6/1", "fr/FR-6/2", "FR-6", "the target announces maxFrameBytes >= 65536",
       targetAnnouncesEnough);
  out.add(spec("fr/FR-6/3", "FR-6", Role::responder, "a Hello announcing maxFrameBytes 65535",
               helloBelowMinimumFrame));
  both(out, "fr/FR-7/1", "fr/FR-7/2", "FR-7", "the target's frames have at most 64 segments",
       atMost64Segments);
  both(out, "fr/FR-7/3", "fr/FR-7/4", "FR-7", "the target's frames have one segment (SHOULD)",
       oneSegment);
  out[out.size() - 1].level = Level::should;
  out[out.size() - 2].level = Level::should;
  both(out, "fr/FR-8/1", "fr/FR-8/2", "FR-8",
       "no frame above the maxFrameBytes the harness announced", noFrameAboveOurLimit,
       need::launch);
  both(out, "fr/FR-9/1", "fr/FR-9/2", "FR-9",
       "a 65544-byte Hello or HelloAck is refused from its segment table: Error{0, tooLarge}",
       preHandshakeFrameTooLarge);
  both(out, "fr/FR-10/1", "fr/FR-10/2", "FR-10", "a pointer 1000 words out of bounds",
       pointerOutOfBounds);
  both(out, "fr/FR-10/3", "fr/FR-10/4", "FR-10", "a far pointer into a missing segment",
       farPointerNowhere);
  out.add(spec("fr/FR-10/5", "FR-10", Role::responder,
               "a Hello whose list claims 2^29 zero-size elements", listAmplification));
  both(out, "fr/FR-11/1", "fr/FR-11/2", "FR-11",
       "a Goodbye with invalid UTF-8 is a protocol error, not a drain", invalidGoodbyeIsNotADrain);
  both(out, "fr/FR-12/1", "fr/FR-12/2", "FR-12", "GetManifest with id 0",
       tableRow<getManifestIdZero>);
  both(out, "fr/FR-12/3", "fr/FR-12/4", "FR-12", "GetChunk with a 31-byte manifest digest",
       tableRow<getChunkShortDigest>);
  both(out, "fr/FR-12/5", "fr/FR-12/6", "FR-12", "GetLibrary with sinceRev but no sinceEpoch",
       tableRow<getLibraryRevWithoutEpoch>);
  both(out, "fr/FR-12/7", "fr/FR-12/8", "FR-12", "Cancel with id 0", tableRow<cancelIdZero>);
  both(out, "fr/FR-12/9", "fr/FR-12/10", "FR-12", "Goodbye with a 1025-byte message",
       tableRow<goodbyeLongMessage>);
  both(out, "fr/FR-12/11", "fr/FR-12/12", "FR-12", "Goodbye with a NUL in its message",
       tableRow<goodbyeNulMessage>);
  both(out, "fr/FR-12/13", "fr/FR-12/14", "FR-12", "LibraryChanged with epoch 0",
       tableRow<changedEpochZero>);
  both(out, "fr/FR-12/15", "fr/FR-12/16", "FR-12", "LibraryChanged with rev 0",
       tableRow<changedRevZero>);
  both(out, "fr/FR-12/17", "fr/FR-12/18", "FR-12", "LibraryChanged with a 16-byte digest",
       tableRow<changedShortDigest>);
  both(out, "fr/FR-12/19", "fr/FR-12/20", "FR-12", "GetManifest for item '../alpha'",
       tableRow<getManifestBadItem>);
  both(out, "fr/FR-12/21", "fr/FR-12/22", "FR-12", "GetChunk for item 'a/b'",
       tableRow<getChunkSlashItem>);
  both(out, "fr/FR-12/23", "fr/FR-12/24", "FR-12", "GetManifest for a 256-byte item id",
       tableRow<getManifestLongItem>);
  both(out, "fr/FR-13/1", "fr/FR-13/2", "FR-13", "union member 17", unknownMember17);
  both(out, "fr/FR-13/3", "fr/FR-13/4", "FR-13", "union member 1000", unknownMember1000);
  both(out, "fr/FR-14/1", "fr/FR-14/2", "FR-14", "an announce frame on a connection",
       announceOnConnection);
  both(out, "fr/FR-15/1", "fr/FR-15/2", "FR-15",
       "everything the target sends decodes with the v1 schema", v1MembersOnly);
  both(out, "fr/FR-16/1", "fr/FR-16/2", "FR-16", "a Ping with unknown fields is answered",
       pingWithExtraFields);
  out.add(spec("fr/FR-16/3", "FR-16", Role::responder, "a Hello with unknown fields is accepted",
               helloWithExtraFields));
  out.add(spec("fr/FR-16/4", "FR-16", Role::initiator, "a HelloAck with unknown fields is accepted",
               helloAckWithExtraFields));
  both(out, "fr/FR-19/1", "fr/FR-19/2", "FR-19", "the target's chunks fit its own frames",
       chunkLimitFitsFrames);
  out.add(spec("fr/FR-19/3", "FR-19", Role::responder,
               "a Hello whose maxChunkBytes does not fit its frames", helloChunkAboveFrame));
  out.add(spec("fr/FR-18/1", "FR-18", Role::responder,
               "HelloAck.features holds only features the Hello offered",
               unknownFeaturesIntersected));
  for (auto& c : out) {
    if (c.badInputs != nullptr) continue;
    if (c.requirement == "FR-2" || c.requirement == "FR-5") c.badInputs = "1";
    if (c.requirement == "FR-3") c.badInputs = "2";
    if (c.requirement == "FR-4") c.badInputs = "3";
    if (c.id.startsWith("fr/FR-10/1") || c.id.startsWith("fr/FR-10/2") ||
        c.id.startsWith("fr/FR-10/3") || c.id.startsWith("fr/FR-10/4")) {
      c.badInputs = "4";
    }
    if (c.id == "fr/FR-10/5") c.badInputs = "5";
    if (c.requirement == "FR-13" || c.requirement == "FR-14") c.badInputs = "8";
  }
}

}  // namespace shoal::conformance::cases

namespace shoal::conformance {
void framingCases(kj::Vector<CaseSpec>& out) {
  cases::framingCases(out);
}
}  // namespace shoal::conformance
