#include "targets/session-model.h"

#include <shoal/codec/frames.h>
#include <shoal/codec/validate.h>
#include <stdio.h>
#include <string.h>

#include "targets/session-script.h"

namespace shoal::fuzz {

using peer::CloseReason;
using wire::ErrorCode;

namespace {

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

bool answers(Which request, Which answer) {
  switch (request) {
    case Which::GET_LIBRARY:
      return answer == Which::LIBRARY_SNAPSHOT || answer == Which::LIBRARY_DELTA;
    case Which::GET_MANIFEST: return answer == Which::MANIFEST;
    case Which::GET_CHUNK: return answer == Which::CHUNK;
    default: return false;
  }
}

void trace(kj::StringPtr direction, wire::Frame::Reader root) {
  if (!tracing()) return;
  auto kind = root.which();
  auto line = kj::str(direction, ' ', codec::name(kind), ' ', codec::requestIdOf(root));
  if (kind == Which::ERROR) line = kj::str(line, ' ', codec::name(root.getError().getCode()));
  if (kind == Which::REJECT) line = kj::str(line, ' ', codec::name(root.getReject().getCode()));
  fprintf(stderr, "%s\n", line.cStr());
}

bool contains(kj::ArrayPtr<const kj::byte> haystack, kj::ArrayPtr<const kj::byte> needle) {
  return memmem(haystack.begin(), haystack.size(), needle.begin(), needle.size()) != nullptr;
}

codec::Limits handshakeLimits() {
  codec::Limits limits;
  limits.maxFrameBytes = codec::kMinFrameBytes;
  return limits;
}

}  // namespace

size_t chunkFrameBytes(uint32_t length) {
  auto frame = codec::newFrame(length / sizeof(capnp::word) + 16);
  auto chunk = codec::rootOf(*frame).initChunk();
  chunk.setId(1);
  chunk.initData(length);
  return codec::encodedSize(*frame);
}

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

SessionModel::SessionModel(const LibraryFixture& world, const peer::SessionConfig& config,
                           bool refuse, kj::TimePoint start)
    : world(world), config(config), refuse(refuse), start(start), shadow(handshakeLimits()) {}

void SessionModel::expect(Ending ending, kj::Maybe<ErrorCode> code, kj::StringPtr why) {
  if (expected == nullptr) expected = Expected{ending, code, kj::str(why)};
}

uint64_t SessionModel::nextId(uint8_t step) const {
  if (step < 0xe0) return lastIncomingId + 1 + (step >= 0x80 ? (step & 0x1f) : 0);
  if (step < 0xf0) return lastIncomingId - (step & 1);  // reused or lower: a protocol error
  return lastIncomingId + (uint64_t(1) << 62) + (step & 0x0f);
}

uint64_t SessionModel::oldestOpenRequest() const {
  uint64_t best = 0;
  for (auto& entry : requests) {
    if (!entry.value.done && (best == 0 || entry.key < best)) best = entry.key;
  }
  return best == 0 ? lastIncomingId : best;
}

// --- what the script sends ----------------------------------------------------------------------

void SessionModel::replay(kj::ArrayPtr<const kj::byte> bytes, kj::TimePoint now) {
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
          received(frame, now);
        }
        KJ_CASE_ONEOF(failure, codec::Failure) {
          if (failure.requestId == nullptr) shadowFailed = true;
          received(failure, now);
        }
      }
      if (shadowFailed) break;
    }
  }
}

void SessionModel::receivedHello(wire::Hello::Reader hello, kj::TimePoint now) {
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
}

// A frame the session will process, at `now`.
void SessionModel::received(const codec::InboundFrame& frame, kj::TimePoint now) {
  trace("->", frame.root());
  if (expected != nullptr) return;
  auto root = frame.root();
  auto kind = root.which();
  if (!established) {
    if (kind == Which::HELLO) {
      receivedHello(root.getHello(), now);
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

void SessionModel::received(const codec::Failure& failure, kj::TimePoint now) {
  if (tracing()) fprintf(stderr, "-> broken frame: %s\n", failure.message.cStr());
  if (expected != nullptr) return;
  KJ_IF_MAYBE (id, failure.requestId) {
    if (established) {
      // A GetChunk whose only fault is its range: answered Error{id, range} ([RQ-8]).
      lastReceived = now;
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

void SessionModel::request(wire::Frame::Reader root) {
  uint64_t id = codec::requestIdOf(root);
  if (id <= lastIncomingId) {
    expect(Ending::errorZero, ErrorCode::PROTOCOL, "[RQ-3] request id not increasing");
    return;
  }
  lastIncomingId = id;
  auto& lib = world.library();
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
kj::Maybe<ErrorCode> SessionModel::chunkVerdict(Request& r, const codec::Digest& digest) {
  auto& lib = world.library();
  KJ_IF_MAYBE (item, lib.find(r.itemId)) {
    auto& manifest = (*item)->manifest;
    if (digest != manifest.digest) return ErrorCode::STALE;
    if (r.fileIndex >= manifest.files.size()) return ErrorCode::NOT_FOUND;
    uint64_t size = manifest.files[r.fileIndex].size;
    if (r.offset > size || r.length > size - r.offset) return ErrorCode::RANGE;
    if (r.length > maxChunkBytes) return ErrorCode::RANGE;  // [CHK-4]: above what we announced
    auto& file = KJ_ASSERT_NONNULL(world.file(r.itemId, r.fileIndex));
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

void SessionModel::predictTime(kj::TimePoint now, bool timingUnknown) {
  if (expected != nullptr) return;
  if (!established) {
    if (now >= start + config.handshakeTimeout) {
      expect(Ending::handshakeTimeout, nullptr, "[HS-6]");
    }
    return;
  }
  if (timingUnknown) return;  // adopted from what the session does (the driver's settle())
  if (goodbyeSent && now >= goodbyeAt + config.drainTimeout) {
    expect(Ending::drainTimeout, nullptr, "[BYE-9] drain deadline");
  } else if (now - lastReceived >= config.deadTimeout) {
    expect(Ending::deadTimeout, nullptr, "dead peer");
  } else if (!pingDue && now - lastReceived >= config.idleTimeout) {
    pingDue = true;
    ++pingsPredicted;
  }
}

// --- what the session sends ---------------------------------------------------------------------

void SessionModel::check(const codec::InboundFrame& frame, bool timingUnknown) {
  auto root = frame.root();
  auto kind = root.which();
  auto bytes = frame.bytes();
  trace("<-", root);
  KJ_ASSERT(!finalSeen, "a frame after Reject / Error{0}", codec::name(kind));
  KJ_ASSERT(!contains(bytes, kMarker.asBytes()), "bytes from outside the library");
  checkFirst(root, bytes.size());
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
    case Which::PONG: checkPong(root.getPong().getNonce()); break;
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

void SessionModel::checkFirst(wire::Frame::Reader root, size_t bytes) {
  auto kind = root.which();
  if (++framesIn == 1) {
    // [HS-2]: the first frame answers the Hello (or the frame that was not one).
    KJ_ASSERT(kind == Which::HELLO_ACK || kind == Which::REJECT ||
                  (kind == Which::ERROR && root.getError().getId() == 0),
              codec::name(kind));
    KJ_ASSERT(bytes <= codec::kMinFrameBytes);
  } else {
    KJ_ASSERT(bytes <= maxFrameBytes, "[RQ-9] above our maxFrameBytes", bytes, maxFrameBytes);
  }
}

// Every Pong echoes a Ping of ours.
void SessionModel::checkPong(uint64_t nonce) {
  for (auto& n : pingNonces) {
    if (n == nonce) {
      n = pingNonces.back();
      pingNonces.removeLast();
      return;
    }
  }
  KJ_FAIL_ASSERT("a Pong for no Ping", nonce);
}

void SessionModel::answer(wire::Frame::Reader root) {
  auto kind = root.which();
  uint64_t id = codec::requestIdOf(root);
  auto& r = KJ_ASSERT_NONNULL(requests.find(id), "an answer to a request never made", id);
  KJ_ASSERT(!r.done, "[RQ-4] a frame after the terminal answer", id, codec::name(kind));
  if (kind == Which::ERROR) return checkError(id, r, root.getError().getCode());
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
    case Which::CHUNK: checkChunk(r, root.getChunk()); break;
    case Which::MANIFEST: checkManifest(id, r, page, root.getManifest()); break;
    case Which::LIBRARY_SNAPSHOT: checkSnapshot(r, page, root.getLibrarySnapshot()); break;
    case Which::LIBRARY_DELTA: checkDelta(r, page, root.getLibraryDelta()); break;
    default: KJ_UNREACHABLE;
  }
}

void SessionModel::checkError(uint64_t id, Request& r, ErrorCode code) {
  r.done = true;
  bool ok = (code == ErrorCode::BUSY && r.nextPage == 0) ||
            (code == ErrorCode::CANCELLED && r.cancelled) ||
            (r.nextPage == 0 && r.expectedError == code) ||
            (code == ErrorCode::TOO_LARGE && r.tooLargeOrChunk);
  KJ_ASSERT(ok, "wrong Error", id, codec::name(r.kind), codec::name(code), nameOf(r.expectedError),
            r.itemId, r.fileIndex, r.offset, r.length);
}

// [CHK-2]: exactly the bytes hashed, from the listed file.
void SessionModel::checkChunk(Request& r, wire::Chunk::Reader chunk) {
  auto data = chunk.getData();
  auto& file = KJ_ASSERT_NONNULL(world.file(r.itemId, r.fileIndex));
  KJ_ASSERT(!file.swapped, "served a file swapped for a symlink", r.itemId, r.fileIndex);
  KJ_ASSERT(data.size() == r.length);
  KJ_ASSERT(data == file.content.slice(r.offset, r.offset + r.length), "wrong bytes", r.itemId,
            r.fileIndex, r.offset, r.length);
  r.done = true;
}

void SessionModel::checkManifest(uint64_t id, Request& r, uint32_t page, wire::Manifest::Reader m) {
  KJ_ASSERT(m.getPage() == page, "[RQ-5] page out of order", id);
  auto& assembler = *KJ_ASSERT_NONNULL(r.manifest);
  KJ_IF_MAYBE (failure, assembler.feed(m)) {
    KJ_FAIL_ASSERT("[RQ-6] an invalid manifest page", failure->error, failure->message);
  }
  KJ_ASSERT(m.getLast() == assembler.isComplete(), "last flag and completeness differ");
  if (m.getLast()) {
    auto item = KJ_ASSERT_NONNULL(world.library().find(r.itemId));
    KJ_ASSERT(assembler.take().digest == item->manifest.digest, "another manifest");
    r.done = true;
  }
}

void SessionModel::checkSnapshot(Request& r, uint32_t page, wire::LibrarySnapshot::Reader s) {
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
}

void SessionModel::checkDelta(Request& r, uint32_t page, wire::LibraryDelta::Reader d) {
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
}

// --- the end ------------------------------------------------------------------------------------

void SessionModel::checkAllAnswered() const {
  for (auto& entry : requests) {
    KJ_ASSERT(!entry.value.guaranteed || entry.value.done, "request never answered", entry.key,
              codec::name(entry.value.kind));
  }
}

void SessionModel::checkEnding(CloseReason reason, kj::StringPtr detail, bool stalled,
                               bool timingUnknown) const {
  auto& e = KJ_ASSERT_NONNULL(expected);
  if (timingUnknown &&
      (reason == CloseReason::deadTimeout || reason == CloseReason::drainTimeout)) {
    // A deadline passed while frames of ours waited unread: it may have come first.
    KJ_ASSERT(errorZeroSeen == nullptr && rejectSeen == nullptr);
    return;
  }
  KJ_ASSERT(reason == reasonOf(e.ending), "closed for another reason", name(reason), detail, e.why);
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

}  // namespace shoal::fuzz
