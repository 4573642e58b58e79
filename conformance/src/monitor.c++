#include <shoal/conformance/monitor.h>

#include <shoal/codec/frames.h>
#include <shoal/codec/limits.h>
#include <shoal/codec/validate.h>

namespace shoal::conformance {

kj::StringPtr name(Role role) {
  return role == Role::responder ? "responder" : "initiator";
}

namespace {

using Which = wire::Frame::Which;
using Code = wire::ErrorCode;

Violation violation(kj::StringPtr requirement, kj::String message) {
  return Violation{requirement, kj::mv(message)};
}

// Table 5 / §5: the codes a responder may answer a request kind with.
bool allowedFor(Which request, Code code) {
  switch (code) {
    case Code::BUSY:
    case Code::CANCELLED:
    case Code::SHUTTING_DOWN:
    case Code::INTERNAL: return true;
    case Code::NOT_FOUND:
    case Code::UNAVAILABLE: return request == Which::GET_MANIFEST || request == Which::GET_CHUNK;
    case Code::STALE:
    case Code::RANGE:
    case Code::TOO_LARGE: return request == Which::GET_CHUNK;
    default: return false;
  }
}

Which answerKindOf(Which request) {
  switch (request) {
    case Which::GET_MANIFEST: return Which::MANIFEST;
    case Which::GET_CHUNK: return Which::CHUNK;
    default: return Which::LIBRARY_SNAPSHOT;
  }
}

struct Page {
  uint32_t page;
  bool last;
  size_t entries;
};

kj::Maybe<Page> pageOf(wire::Frame::Reader f) {
  switch (f.which()) {
    case Which::LIBRARY_SNAPSHOT: {
      auto s = f.getLibrarySnapshot();
      return Page{s.getPage(), s.getLast(), s.getItems().size()};
    }
    case Which::LIBRARY_DELTA: {
      auto d = f.getLibraryDelta();
      return Page{d.getPage(), d.getLast(), d.getUpserts().size() + d.getRemovals().size()};
    }
    case Which::MANIFEST: {
      auto m = f.getManifest();
      return Page{m.getPage(), m.getLast(), m.getFiles().size() + m.getHashes().size() / 32};
    }
    default: return nullptr;
  }
}

}  // namespace

Monitor::Monitor(Role targetRole, uint32_t ourMaxFrameBytes)
    : role(targetRole), ourMaxFrameBytes(ourMaxFrameBytes) {}

void Monitor::onSent(wire::Frame::Reader frame) {
  auto kind = frame.which();
  if (kind == Which::HELLO_ACK) handshakeDone = true;
  if (kind == Which::HELLO) {
    auto limits = frame.getHello().getLimits();
    if (limits.getMaxFrameBytes() >= codec::kMinFrameBytes)
      ourMaxFrameBytes = limits.getMaxFrameBytes();
  }
  if (kind == Which::HELLO_ACK) {
    auto limits = frame.getHelloAck().getLimits();
    if (limits.getMaxFrameBytes() >= codec::kMinFrameBytes)
      ourMaxFrameBytes = limits.getMaxFrameBytes();
  }
  if (!codec::isRequest(kind)) return;
  uint64_t id = codec::requestIdOf(frame);
  // Only well-numbered requests are tracked: a case that reuses an id does so on purpose, and the
  // target then owes no answer to it.
  if (id == 0 || id <= ourMaxRequest || !handshakeDone) return;
  ourMaxRequest = id;
  ours.insert(id, Ours{kind, 0, nullptr});
}

kj::Maybe<Violation> Monitor::onReceived(const codec::InboundFrame& frame,
                                         kj::Maybe<codec::Digest> tlsId) {
  auto root = frame.root();
  auto kind = frame.kind();
  size_t bytes = frame.bytes().size();
  if (endedByTarget) {
    return violation(endedBy == "Reject" ? "HS-12" : "ERR-2",
                     kj::str("a ", codec::name(kind), " frame after the target's ", endedBy));
  }
  if (!handshakeDone && bytes > codec::kMinFrameBytes) {
    return violation("FR-9", kj::str("a ", bytes, "-byte frame before the handshake completed"));
  }
  if (bytes > ourMaxFrameBytes) {
    return violation(
        "FR-8", kj::str("a ", bytes, "-byte frame; we announced maxFrameBytes ", ourMaxFrameBytes));
  }
  if (kind == Which::ANNOUNCE) {
    return violation("FR-14", kj::str("an announce frame on a connection"));
  }
  if (kind == Which::ERROR || kind == Which::REJECT) {
    KJ_IF_MAYBE (v, errorCode(root)) {
      return kj::mv(*v);
    }
  }
  if (kind == Which::ERROR && root.getError().getId() == 0) {
    endedByTarget = true;
    endedBy = "Error{0}";
    return nullptr;
  }
  if (kind == Which::REJECT) {
    endedByTarget = true;
    endedBy = "Reject";
    if (role != Role::responder || handshakeDone) {
      return violation("FR-14", kj::str("Reject from the ", name(role), " after the handshake"));
    }
    return nullptr;
  }
  if (!handshakeDone || kind == Which::HELLO || kind == Which::HELLO_ACK) {
    return handshakeOrder(frame, tlsId);
  }
  if (kind == Which::GOODBYE) goodbyeFromTarget = true;
  if (codec::isRequest(kind)) {
    uint64_t id = codec::requestIdOf(root);
    if (id <= targetMaxRequest) {
      return violation("RQ-2", kj::str("request id ", id, " after id ", targetMaxRequest));
    }
    targetMaxRequest = id;
    if (goodbyeFromTarget) {
      return violation("BYE-3", kj::str("a new ", codec::name(kind), " after its own Goodbye"));
    }
    return nullptr;
  }
  uint64_t id = codec::requestIdOf(root);
  if (id != 0 && kind != Which::CANCEL) return answer(root);
  return nullptr;
}

kj::Maybe<Violation> Monitor::handshakeOrder(const codec::InboundFrame& frame,
                                             kj::Maybe<codec::Digest> tlsId) {
  auto root = frame.root();
  auto kind = frame.kind();
  bool expected = role == Role::initiator ? kind == Which::HELLO && !helloSeen
                                          : kind == Which::HELLO_ACK && !handshakeDone;
  if (!expected) {
    if (handshakeDone) {
      return violation("FR-14", kj::str("a ", codec::name(kind), " after the handshake"));
    }
    return violation(role == Role::initiator && !helloSeen ? "HS-1" : "HS-2",
                     kj::str("a ", codec::name(kind), " frame while the handshake is incomplete"));
  }
  capnp::Data::Reader claimed =
      kind == Which::HELLO ? root.getHello().getPeerId() : root.getHelloAck().getPeerId();
  if (kind == Which::HELLO) {
    helloSeen = true;
  } else {
    handshakeDone = true;
  }
  KJ_IF_MAYBE (id, tlsId) {
    if (claimed != id->asBytes()) {
      return violation(
          "TR-6", kj::str("its ", codec::name(kind), " claims a peer id other than its TLS key's"));
    }
  }
  return nullptr;
}

kj::Maybe<Violation> Monitor::errorCode(wire::Frame::Reader frame) {
  if (frame.which() == Which::REJECT) {
    auto code = frame.getReject().getCode();
    if (code != Code::PROTOCOL && code != Code::UNTRUSTED && code != Code::UNSUPPORTED_VERSION &&
        code != Code::SHUTTING_DOWN && code != Code::BUSY) {
      return violation("HS-12", kj::str("Reject with code ", codec::name(code)));
    }
    return nullptr;
  }
  auto e = frame.getError();
  if (e.getId() == 0) {
    if (e.getCode() != Code::PROTOCOL && e.getCode() != Code::TOO_LARGE) {
      return violation("ERR-1", kj::str("Error{0, ", codec::name(e.getCode()),
                                        "}: only protocol and tooLarge end a connection"));
    }
    return nullptr;
  }
  KJ_IF_MAYBE (ours, this->ours.find(e.getId())) {
    if (!allowedFor(ours->kind, e.getCode())) {
      return violation("ERR-1", kj::str("Error{", e.getId(), ", ", codec::name(e.getCode()),
                                        "} answering a ", codec::name(ours->kind)));
    }
  }
  return nullptr;
}

kj::Maybe<Violation> Monitor::answer(wire::Frame::Reader frame) {
  uint64_t id = codec::requestIdOf(frame);
  auto kind = frame.which();
  auto entry = ours.find(id);
  if (entry == nullptr) {
    if (finished.find(id) != nullptr) {
      return violation("RQ-4", kj::str("a ", codec::name(kind), " for request ", id,
                                       " after its terminal answer"));
    }
    return violation("RQ-4", kj::str("a ", codec::name(kind), " for request ", id,
                                     ", which the harness never sent"));
  }
  auto& request = KJ_ASSERT_NONNULL(entry);
  if (kind == Which::ERROR) {
    finished.insert(id, request.kind);
    ours.erase(id);
    return nullptr;
  }
  Which expected = answerKindOf(request.kind);
  bool kindOk =
      kind == expected || (request.kind == Which::GET_LIBRARY && kind == Which::LIBRARY_DELTA);
  KJ_IF_MAYBE (first, request.answerKind) {
    kindOk = kindOk && kind == *first;
  }
  if (!kindOk) {
    return violation("RQ-5", kj::str("a ", codec::name(kind), " answering ",
                                     codec::name(request.kind), " ", id));
  }
  request.answerKind = kind;
  bool terminal = true;
  KJ_IF_MAYBE (page, pageOf(frame)) {
    if (page->page != request.nextPage) {
      return violation("RQ-5", kj::str("page ", page->page, " of answer ", id, " where page ",
                                       request.nextPage, " was due"));
    }
    ++request.nextPage;
    if (!page->last && page->entries == 0) {
      return violation("RQ-5", kj::str("page ", page->page, " of answer ", id,
                                       " is not the last yet carries no entry"));
    }
    terminal = page->last;
  }
  if (terminal) {
    finished.insert(id, request.kind);
    ours.erase(id);
  }
  return nullptr;
}

}  // namespace shoal::conformance
