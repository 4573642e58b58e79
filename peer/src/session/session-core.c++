#include <shoal/peer/session/session-core.h>

#include <kj/debug.h>
#include <shoal/codec/frames.h>
#include <shoal/codec/validate.h>
#include <shoal/mutant.h>

namespace shoal::peer {

using Which = wire::Frame::Which;
using codec::rootOf;

kj::StringPtr name(CloseReason reason) {
  switch (reason) {
    case CloseReason::goodbye: return "goodbye";
    case CloseReason::peerClosed: return "peerClosed";
    case CloseReason::peerError: return "peerError";
    case CloseReason::protocolError: return "protocolError";
    case CloseReason::rejected: return "rejected";
    case CloseReason::handshakeTimeout: return "handshakeTimeout";
    case CloseReason::deadTimeout: return "deadTimeout";
    case CloseReason::drainTimeout: return "drainTimeout";
    case CloseReason::transportError: return "transportError";
    case CloseReason::local: return "local";
  }
  return "unknown";
}

namespace {

// kj::HashMap::clear() in 0.9.2 memsets a null bucket array when the map never held anything,
// which UBSan rightly reports; an empty map needs no clearing anyway.
template <typename Map>
void clearMap(Map& map) {
  if (map.size() > 0) map.clear();
}

// The mutant asks-before-helloack: a GetLibrary{0, 0} right behind the initiator's Hello.
codec::FrameBuilder earlyGetLibrary(uint64_t id) {
  auto frame = codec::newFrame(32);
  rootOf(*frame).initGetLibrary().setId(id);
  return frame;
}

kj::Array<kj::String> copyStrings(kj::ArrayPtr<const kj::String> strings) {
  return KJ_MAP(s, strings) {
    return kj::heapString(s);
  };
}

RemotePeer copyOf(const RemotePeer& p) {
  return RemotePeer{p.id,
                    kj::heapString(p.name),
                    copyStrings(p.features),
                    p.library,
                    p.maxFrameBytes,
                    p.maxInFlight,
                    p.maxChunkBytes,
                    p.instanceId,
                    p.version};
}

// Our features that the peer also announced, in our order.
kj::Array<kj::String> intersect(kj::ArrayPtr<const kj::String> ours,
                                capnp::List<capnp::Text>::Reader theirs) {
  kj::Vector<kj::String> common;
  for (auto& f : ours) {
    for (auto t : theirs) {
      if (t == f) {
        common.add(kj::heapString(f));
        break;
      }
    }
  }
  return common.releaseAsArray();
}

// The answer kinds a request kind allows.
bool answers(Which request, Which answer) {
  switch (request) {
    case Which::GET_LIBRARY:
      return answer == Which::LIBRARY_SNAPSHOT || answer == Which::LIBRARY_DELTA;
    case Which::GET_MANIFEST: return answer == Which::MANIFEST;
    case Which::GET_CHUNK: return answer == Which::CHUNK;
    default: return false;
  }
}

// Page number and last flag of a paged answer; a Chunk is a single terminal page.
struct Page {
  uint32_t number;
  bool last;
};
Page pageOf(wire::Frame::Reader frame) {
  switch (frame.which()) {
    case Which::LIBRARY_SNAPSHOT:
      return {frame.getLibrarySnapshot().getPage(), frame.getLibrarySnapshot().getLast()};
    case Which::LIBRARY_DELTA:
      return {frame.getLibraryDelta().getPage(), frame.getLibraryDelta().getLast()};
    case Which::MANIFEST: return {frame.getManifest().getPage(), frame.getManifest().getLast()};
    default: return {0, true};
  }
}

}  // namespace

SessionCore::SessionCore(Role role, const SessionConfig& config, LocalPeer local,
                         kj::Maybe<PeerId> authenticated, kj::TimePoint now)
    : role(role),
      config(config),
      local(kj::mv(local)),
      authenticated(authenticated),
      currentState(role == Role::initiator ? State::awaitingHelloAck : State::awaitingHello),
      handshakeDeadline(now + config.handshakeTimeout),
      lastReceived(now) {
  if (isMutant(Mutant::talksFirst)) send(codec::pingFrame(1));
  if (role == Role::initiator) sendHello();
  if (role == Role::initiator && isMutant(Mutant::asksBeforeHelloAck)) {
    send(earlyGetLibrary(++lastOutgoingId));
  }
}

// --- outputs ------------------------------------------------------------------------------------

kj::Vector<kj::Own<capnp::MessageBuilder>> SessionCore::takeOutgoing() {
  return kj::mv(outgoingFrames);
}

kj::Vector<SessionEvent> SessionCore::takeEvents() {
  return kj::mv(events);
}

kj::Maybe<kj::TimePoint> SessionCore::nextDeadline() const {
  if (currentState == State::closed) return nullptr;
  kj::Maybe<kj::TimePoint> next;
  auto consider = [&](kj::TimePoint t) {
    KJ_IF_MAYBE (n, next) {
      if (t < *n) next = t;
    } else {
      next = t;
    }
  };
  if (!isEstablished()) {
    consider(handshakeDeadline);
  } else {
    consider(lastReceived + config.deadTimeout);
    if (!pingSent) consider(lastReceived + config.idleTimeout);
  }
  KJ_IF_MAYBE (d, drainDeadline) {
    consider(*d);
  }
  return next;
}

kj::Maybe<kj::TimePoint> SessionCore::nextHardDeadline() const {
  if (currentState == State::closed) return nullptr;
  if (!isEstablished()) return handshakeDeadline;
  return drainDeadline;
}

kj::Maybe<const RemotePeer&> SessionCore::remote() const {
  if (!isEstablished() && currentState != State::closed) return nullptr;
  return peer;
}

// --- sending and closing ------------------------------------------------------------------------

void SessionCore::send(kj::Own<capnp::MessageBuilder> frame) {
  if (currentState == State::closed) return;
  outgoingFrames.add(kj::mv(frame));
}

void SessionCore::sendError(uint64_t id, wire::ErrorCode code, kj::StringPtr message,
                            uint32_t retryAfterMs) {
  send(codec::errorFrame(id, code, message, retryAfterMs));
}

void SessionCore::protocolError(kj::StringPtr message, wire::ErrorCode code) {
  if (currentState == State::closed) return;
  sendError(0, code, message, 0);
  if (isMutant(Mutant::talksAfterError)) send(codec::pingFrame(1));
  close(CloseReason::protocolError, message);
}

void SessionCore::close(CloseReason reason, kj::StringPtr detail) {
  if (currentState == State::closed) return;
  failAllOutgoing(wire::ErrorCode::UNAVAILABLE, kj::str("connection closed: ", detail));
  clearMap(incoming);
  currentState = State::closed;
  writeCloseWanted = true;
  drainDeadline = nullptr;
  events.add(event::Closed{reason, kj::heapString(detail)});
}

void SessionCore::failLocally(uint64_t id, wire::ErrorCode code, kj::StringPtr message) {
  events.add(event::RequestFailed{id, code, kj::heapString(message), 0, true});
}

void SessionCore::failQueued(wire::ErrorCode code, kj::StringPtr message) {
  for (size_t i = queuedHead; i < queued.size(); ++i) {
    if (queued[i].frame.get() != nullptr) failLocally(queued[i].id, code, message);
  }
  queued.clear();
  queuedHead = 0;
}

void SessionCore::failAllOutgoing(wire::ErrorCode code, kj::StringPtr message) {
  for (auto& entry : outgoing) {
    if (!entry.value.cancelled) failLocally(entry.key, code, message);
  }
  clearMap(outgoing);
  failQueued(code, message);
}

void SessionCore::abort(wire::ErrorCode code, kj::StringPtr message) {
  if (currentState == State::closed) return;
  sendError(0, code, message, 0);
  close(CloseReason::local, message);
}

// --- handshake ----------------------------------------------------------------------------------

// Hello and HelloAck introduce their sender with the same fields: who it is, what it holds and
// what it accepts.
template <typename Builder>
void SessionCore::introduce(Builder out, kj::ArrayPtr<const kj::String> features) const {
  out.setPeerId(local.id.asBytes());
  if (isMutant(Mutant::wrongOwnId)) out.getPeerId()[0] ^= 1;
  out.setName(local.name);
  auto list = out.initFeatures(features.size());
  for (auto i : kj::indices(features))
    list.set(i, features[i]);
  local.library.toWire(out.initLibrary());
  auto limits = out.initLimits();
  limits.setMaxFrameBytes(config.limits.maxFrameBytes);
  limits.setMaxInFlight(config.maxInFlight);
  limits.setMaxChunkBytes(config.limits.maxChunkBytes);
  if (isMutant(Mutant::announcesSmallFrames)) limits.setMaxFrameBytes(codec::kMinFrameBytes - 1);
  if (isMutant(Mutant::chunkLimitAboveFrames)) {
    limits.setMaxChunkBytes(config.limits.maxFrameBytes + 1);
  }
  if (isMutant(Mutant::epochZero)) out.getLibrary().setEpoch(0);
  out.setInstanceId(local.instanceId);
  if (isMutant(Mutant::instancePerSession)) out.setInstanceId(reinterpret_cast<uintptr_t>(this));
}

// The other side as its Hello or HelloAck introduced it; features already intersected with ours.
template <typename Reader>
RemotePeer SessionCore::introduced(Reader in, uint16_t version) const {
  auto limits = in.getLimits();
  return RemotePeer{KJ_ASSERT_NONNULL(codec::Digest::from(in.getPeerId())),
                    kj::heapString(in.getName()),
                    intersect(local.features, in.getFeatures()),
                    codec::Summary::fromWire(in.getLibrary()),
                    limits.getMaxFrameBytes(),
                    limits.getMaxInFlight(),
                    limits.getMaxChunkBytes(),
                    in.getInstanceId(),
                    version};
}

void SessionCore::sendHello() {
  auto frame = codec::newFrame();
  auto hello = rootOf(*frame).initHello();
  hello.setVersionMin(config.versionMin);
  hello.setVersionMax(config.versionMax + isMutant(Mutant::wrongVersionRange));
  introduce(hello, local.features);
  send(kj::mv(frame));
}

bool SessionCore::identityMatches(const PeerId& claimed, kj::StringPtr field) {
  KJ_IF_MAYBE (proven, authenticated) {
    if (*proven != claimed && !isMutant(Mutant::skipHelloIdCheck)) {
      auto message = kj::str(field, " claims peer id ", codec::toHex(claimed).slice(0, 16),
                             "… but the TLS key is ", codec::toHex(*proven).slice(0, 16), "…");
      if (role == Role::responder) {
        rejectHello(wire::ErrorCode::UNTRUSTED, message);
      } else {
        close(CloseReason::protocolError, message);  // [HS-10]: no further frame
      }
      return false;
    }
  }
  if (claimed == local.id && !isMutant(Mutant::ownIdUnchecked)) {
    if (role == Role::responder) {
      rejectHello(wire::ErrorCode::UNTRUSTED, "connection to self");
    } else {
      close(CloseReason::protocolError, "connection to self");
    }
    return false;
  }
  return true;
}

void SessionCore::onHello(wire::Hello::Reader hello) {
  uint16_t chosen = kj::min(hello.getVersionMax(), config.versionMax);
  if (isMutant(Mutant::ackHighestVersion)) chosen = hello.getVersionMax();
  if (chosen < kj::max(hello.getVersionMin(), config.versionMin)) {
    rejectHello(wire::ErrorCode::UNSUPPORTED_VERSION,
                kj::str("no common version: we speak ", config.versionMin, "..", config.versionMax,
                        ", the peer ", hello.getVersionMin(), "..", hello.getVersionMax()));
    return;
  }
  auto& introduction = peer.emplace(introduced(hello, chosen));
  if (!identityMatches(introduction.id, "Hello")) return;
  currentState = State::awaitingVerdict;
  events.add(event::HelloReceived{copyOf(KJ_ASSERT_NONNULL(peer))});
}

void SessionCore::acceptHello(kj::TimePoint now) {
  KJ_ASSERT(currentState == State::awaitingVerdict, "acceptHello() without a pending Hello");
  auto& remote = KJ_ASSERT_NONNULL(peer);
  auto frame = codec::newFrame();
  auto ack = rootOf(*frame).initHelloAck();
  ack.setVersion(remote.version);
  introduce(ack, remote.features);  // [FR-18]: exactly the common features
  if (isMutant(Mutant::ackUnofferedFeature)) ack.initFeatures(1).set(0, "unoffered");
  send(kj::mv(frame));
  lastReceived = now;
  established();
}

void SessionCore::rejectHello(wire::ErrorCode code, kj::StringPtr message) {
  if (currentState == State::closed) return;
  auto frame = codec::newFrame();
  auto reject = rootOf(*frame).initReject();
  reject.setCode(code);
  reject.setMessage(codec::sanitizeText(message, codec::kMaxMessageBytes));
  reject.setVersionMin(config.versionMin);
  reject.setVersionMax(config.versionMax + isMutant(Mutant::wrongVersionRange));
  send(kj::mv(frame));
  close(CloseReason::rejected, message);
}

void SessionCore::onHelloAck(wire::HelloAck::Reader ack) {
  uint16_t version = ack.getVersion();
  bool anyVersion = isMutant(Mutant::helloAckVersionUnchecked);
  if ((version < config.versionMin || version > config.versionMax) && !anyVersion) {
    close(CloseReason::protocolError,  // [HS-10]: no further frame
          kj::str("HelloAck chose version ", version, ", we speak ", config.versionMin, "..",
                  config.versionMax));
    return;
  }
  auto& introduction = peer.emplace(introduced(ack, version));
  if (!identityMatches(introduction.id, "HelloAck")) return;
  established();
}

void SessionCore::established() {
  currentState = State::established;
  events.add(event::Established{copyOf(KJ_ASSERT_NONNULL(peer))});
  pump();
}

// --- inputs -------------------------------------------------------------------------------------

void SessionCore::onFrame(codec::InboundFrame frame, kj::TimePoint now) {
  if (currentState == State::closed) return;
  auto root = frame.root();
  auto kind = root.which();
  if (!(isMutant(Mutant::cancelNotAlive) && kind == Which::CANCEL)) {
    lastReceived = now;
    pingSent = false;
  }

  // [HS-3]/[HS-4]: before the handshake only a connection-level Error (id 0) ends it quietly;
  // an Error with an id falls through to "expected Hello/HelloAck" below.
  if (!isEstablished() && kind == Which::ERROR && root.getError().getId() == 0 &&
      !isMutant(Mutant::errorNotFatal)) {
    onPeerError(root.getError());
    return;
  }
  if (!isEstablished()) {
    onHandshakeFrame(root);
    return;
  }

  switch (kind) {
    case Which::HELLO:
    case Which::HELLO_ACK:
    case Which::REJECT:
      if (isMutant(Mutant::secondHelloIgnored)) break;
      protocolError(kj::str(codec::name(kind), " after the handshake"));
      break;
    case Which::ANNOUNCE:
      protocolError("Announce is a discovery datagram, not a stream frame");
      break;
    case Which::GET_LIBRARY:
    case Which::GET_MANIFEST:
    case Which::GET_CHUNK: onRequest(kj::mv(frame)); break;
    case Which::CANCEL: onCancel(root.getCancel().getId()); break;
    case Which::PING:
      if (isMutant(Mutant::noPong)) break;
      if (isMutant(Mutant::noPongDraining) && currentState == State::draining) break;
      send(codec::pongFrame(root.getPing().getNonce()));
      break;
    case Which::PONG:  // any frame proves liveness; the nonce adds nothing
      if (isMutant(Mutant::unmatchedPongFatal)) protocolError("unexpected Pong");
      break;
    case Which::LIBRARY_CHANGED:
      events.add(
          event::LibraryChanged{codec::Summary::fromWire(root.getLibraryChanged().getSummary())});
      break;
    case Which::GOODBYE: onGoodbye(root.getGoodbye(), now); break;
    case Which::ERROR:
      if (root.getError().getId() == 0) {
        if (!isMutant(Mutant::errorNotFatal)) onPeerError(root.getError());
        break;
      }
      onAnswer(kj::mv(frame));
      break;
    case Which::LIBRARY_SNAPSHOT:
    case Which::LIBRARY_DELTA:
    case Which::MANIFEST:
    case Which::CHUNK: onAnswer(kj::mv(frame)); break;
  }
  checkDrained();
}

// A frame before the handshake completed (other than Error{0}).
void SessionCore::onHandshakeFrame(wire::Frame::Reader root) {
  auto kind = root.which();
  switch (currentState) {
    case State::awaitingHello:
      if (kind != Which::HELLO) {
        protocolError(kj::str("expected Hello first, got ", codec::name(kind)));
      } else {
        onHello(root.getHello());
      }
      return;
    case State::awaitingVerdict:
      protocolError(kj::str(codec::name(kind), " before HelloAck: the initiator must wait"));
      return;
    case State::awaitingHelloAck:
      if (kind == Which::HELLO_ACK) {
        onHelloAck(root.getHelloAck());
      } else if (kind == Which::REJECT) {
        if (isMutant(Mutant::ignoresReject)) return;
        auto reject = root.getReject();
        events.add(event::Rejected{reject.getCode(), kj::heapString(reject.getMessage())});
        close(CloseReason::rejected, kj::str("rejected: ", reject.getMessage()));
      } else {
        protocolError(kj::str("expected HelloAck or Reject, got ", codec::name(kind)));
      }
      return;
    case State::established:
    case State::draining:
    case State::closed: KJ_UNREACHABLE;
  }
}

// Error{0}: the peer ends the connection.
void SessionCore::onPeerError(wire::Error::Reader error) {
  close(CloseReason::peerError,
        kj::str("peer error ", codec::name(error.getCode()), ": ", error.getMessage()));
}

void SessionCore::onDecodeFailure(codec::Failure failure, kj::TimePoint now) {
  if (currentState == State::closed) return;
  KJ_IF_MAYBE (id, failure.requestId) {
    // A request that is well formed except for its range: answer it, keep the connection.
    if (isEstablished()) {
      lastReceived = now;
      pingSent = false;
      if (*id <= lastIncomingId) {
        protocolError(kj::str("request id ", *id, " not above ", lastIncomingId));
        return;
      }
      lastIncomingId = *id;
      auto code = goodbyeLastId == nullptr ? codec::toWireCode(failure.error)
                                           : wire::ErrorCode::SHUTTING_DOWN;
      sendError(*id, code, failure.message, 0);
      return;
    }
  }
  if (isMutant(Mutant::ignoreBadFrames)) return;
  protocolError(failure.message, codec::toWireCode(failure.error));
}

void SessionCore::onEndOfStream(kj::TimePoint now) {
  (void)now;
  if (currentState == State::closed) return;
  if (currentState == State::draining) {
    close(CloseReason::goodbye, "drained");
  } else {
    close(CloseReason::peerClosed, "connection closed by the peer");
  }
}

void SessionCore::onTransportError(kj::StringPtr description) {
  close(CloseReason::transportError, description);
}

void SessionCore::onTick(kj::TimePoint now) {
  if (currentState == State::closed) return;
  if (!isEstablished()) {
    if (now >= handshakeDeadline && !isMutant(Mutant::noHandshakeTimeout)) {
      close(CloseReason::handshakeTimeout,
            kj::str("no handshake within ", config.handshakeTimeout / kj::MILLISECONDS, " ms"));
    }
    return;
  }
  KJ_IF_MAYBE (deadline, drainDeadline) {
    if (now >= *deadline && !isMutant(Mutant::noDrainDeadline)) {
      close(CloseReason::drainTimeout, "the Goodbye drain did not finish in time");
      return;
    }
  }
  if (now - lastReceived >= config.deadTimeout && !isMutant(Mutant::noDeadTimeout)) {
    close(CloseReason::deadTimeout,
          kj::str("nothing received for ", (now - lastReceived) / kj::MILLISECONDS, " ms"));
  } else if (!pingSent && now - lastReceived >= config.idleTimeout &&
             !isMutant(Mutant::noIdlePing)) {
    pingSent = true;
    send(codec::pingFrame(++pingNonce));
    if (isMutant(Mutant::doublePing)) send(codec::pingFrame(++pingNonce));
  }
}

// --- the peer's requests ------------------------------------------------------------------------

void SessionCore::onRequest(codec::InboundFrame frame) {
  uint64_t id = codec::requestIdOf(frame.root());
  bool reuseOk = isMutant(Mutant::acceptReusedId) && incoming.find(id) == nullptr;
  if (id <= lastIncomingId && !reuseOk) {
    protocolError(kj::str("request id ", id, " not above ", lastIncomingId));
    return;
  }
  lastIncomingId = id;
  if (goodbyeLastId != nullptr) {
    // Above the lastRequestId of our Goodbye: not processed, safe to retry elsewhere.
    sendError(id, wire::ErrorCode::SHUTTING_DOWN, "the peer is shutting down", 0);
    return;
  }
  if (incoming.size() >= config.maxInFlight) {
    sendError(id, wire::ErrorCode::BUSY,
              kj::str(incoming.size(), " requests in flight, the limit is ", config.maxInFlight),
              config.busyRetryAfterMs);
    if (isMutant(Mutant::busyThenClose)) close(CloseReason::local, "busy");
    return;
  }
  incoming.insert(id, Incoming{frame.kind()});
  events.add(event::IncomingRequest{id, kj::mv(frame)});
}

void SessionCore::onCancel(uint64_t id) {
  if (incoming.find(id) == nullptr) {  // unknown or already answered: ignored
    if (isMutant(Mutant::cancelUnknownFatal)) protocolError(kj::str("Cancel of unknown id ", id));
    return;
  }
  incoming.erase(id);
  auto code =
      isMutant(Mutant::cancelWrongCode) ? wire::ErrorCode::INTERNAL : wire::ErrorCode::CANCELLED;
  sendError(id, code, "cancelled by the requester", 0);
  events.add(event::RequestCancelled{id});
}

bool SessionCore::answer(uint64_t id, kj::Own<capnp::MessageBuilder> frame, bool terminal) {
  if (currentState == State::closed || incoming.find(id) == nullptr) return false;
  KJ_DASSERT(codec::requestIdOf(rootOf(*frame)) == id, "answer frame carries another id");
  if (isMutant(Mutant::wrongAnswerId)) codec::setRequestId(rootOf(*frame), id + 1);
  if (isMutant(Mutant::errorCodeOutsideTable) && rootOf(*frame).isError()) {
    rootOf(*frame).getError().setCode(static_cast<wire::ErrorCode>(200));
  }
  send(kj::mv(frame));
  if (terminal && isMutant(Mutant::answerTwice)) {
    send(codec::errorFrame(id, wire::ErrorCode::INTERNAL, "again"));
  }
  if (terminal) {
    incoming.erase(id);
    checkDrained();
  }
  return true;
}

bool SessionCore::answerError(uint64_t id, wire::ErrorCode code, kj::StringPtr message,
                              uint32_t retryAfterMs) {
  return answer(id, codec::errorFrame(id, code, message, retryAfterMs), true);
}

// --- our requests -------------------------------------------------------------------------------

uint64_t SessionCore::request(kj::Own<capnp::MessageBuilder> frame) {
  uint64_t id = isMutant(Mutant::ownIdsRepeat) ? (lastOutgoingId = 1) : ++lastOutgoingId;
  auto root = rootOf(*frame);
  KJ_ASSERT(codec::isRequest(root.which()), "request() takes GetLibrary, GetManifest or GetChunk");
  codec::setRequestId(root, id);
  if (currentState == State::closed || currentState == State::draining) {
    failLocally(id, wire::ErrorCode::SHUTTING_DOWN, "the connection is closing");
    return id;
  }
  queued.add(Queued{id, kj::mv(frame)});
  pump();
  return id;
}

void SessionCore::pump() {
  if (currentState != State::established) return;
  auto& remote = KJ_ASSERT_NONNULL(peer);
  while (queuedHead < queued.size() && outgoing.size() < remote.maxInFlight) {
    auto& next = queued[queuedHead++];
    if (next.frame.get() == nullptr) continue;  // cancelled while queued
    outgoing.insert(next.id, Outgoing{rootOf(*next.frame).which(), false, 0, nullptr});
    lastSentId = next.id;
    send(kj::mv(next.frame));
  }
  if (queuedHead == queued.size()) {
    queued.clear();
    queuedHead = 0;
  }
}

void SessionCore::cancel(uint64_t id) {
  for (size_t i = queuedHead; i < queued.size(); ++i) {
    if (queued[i].id == id) {
      queued[i].frame = nullptr;
      return;
    }
  }
  KJ_IF_MAYBE (out, outgoing.find(id)) {
    if (!out->cancelled) {
      out->cancelled = true;
      send(codec::cancelFrame(id));
    }
  }
}

void SessionCore::onAnswer(codec::InboundFrame frame) {
  auto root = frame.root();
  uint64_t id = codec::requestIdOf(root);
  auto kind = root.which();
  KJ_IF_MAYBE (out, outgoing.find(id)) {
    if (isMutant(Mutant::answersInOrder)) {
      for (auto& older : outgoing) {
        if (older.key < id) return protocolError(kj::str("answer ", id, " before ", older.key));
      }
    }
    if (kind == Which::ERROR) {
      bool cancelled = out->cancelled;
      outgoing.erase(id);
      if (isMutant(Mutant::requestErrorFatal)) return protocolError("a request failed");
      if (cancelled && isMutant(Mutant::cancelledAnswerFatal) &&
          root.getError().getCode() != wire::ErrorCode::CANCELLED) {
        return protocolError(kj::str("answer ", id, " after its Cancel"));
      }
      if (isMutant(Mutant::unknownCodeFatal) &&
          root.getError().getCode() > wire::ErrorCode::INTERNAL) {
        return protocolError("unknown error code");
      }
      if (!cancelled) {
        auto error = root.getError();
        events.add(event::RequestFailed{id, error.getCode(), kj::heapString(error.getMessage()),
                                        error.getRetryAfterMs(), false});
      }
      pump();
      return;
    }
    if (out->cancelled && isMutant(Mutant::cancelledAnswerFatal)) {
      return protocolError(kj::str("answer ", id, " after its Cancel"));
    }
    if (!answers(out->kind, kind) && !isMutant(Mutant::pagesUnchecked)) {
      protocolError(kj::str(codec::name(out->kind), " ", id, " answered with ", codec::name(kind)));
      return;
    }
    auto page = pageOf(root);
    if (page.number != out->nextPage && !isMutant(Mutant::pagesUnchecked)) {
      protocolError(kj::str("answer ", id, ": page ", page.number, ", expected ", out->nextPage));
      return;
    }
    KJ_IF_MAYBE (first, out->answerKind) {
      if (*first != kind && !isMutant(Mutant::pagesUnchecked)) {
        protocolError(kj::str("answer ", id, " mixes snapshot and delta pages"));
        return;
      }
    }
    out->answerKind = kind;
    ++out->nextPage;
    bool cancelled = out->cancelled;
    if (page.last) {
      outgoing.erase(id);
      pump();
    }
    if (!cancelled) events.add(event::Response{id, kj::mv(frame), page.last});
  } else if (id > lastSentId && !isMutant(Mutant::unknownAnswerIgnored)) {
    protocolError(kj::str("answer for request ", id, ", which was never sent"));
  } else if (isMutant(Mutant::lateAnswerFatal)) {
    protocolError(kj::str("late answer ", id));
  }
  // Otherwise: a late answer to a request already finished; ignored.
}

// --- library, goodbye
// -----------------------------------------------------------------------------

void SessionCore::notifyLibraryChanged(const codec::Summary& summary) {
  local.library = summary;
  if (currentState != State::established || isMutant(Mutant::noLibraryChanged)) return;
  auto frame = codec::newFrame(32);
  summary.toWire(rootOf(*frame).initLibraryChanged().initSummary());
  send(kj::mv(frame));
}

void SessionCore::onGoodbye(wire::Goodbye::Reader goodbye, kj::TimePoint now) {
  if (peerSaidGoodbye) {  // a second Goodbye changes nothing
    if (isMutant(Mutant::secondGoodbyeFatal)) protocolError("a second Goodbye");
    return;
  }
  peerSaidGoodbye = true;
  if (isMutant(Mutant::unknownCodeFatal) && goodbye.getReason() > wire::GoodbyeReason::OTHER) {
    return protocolError("unknown Goodbye reason");
  }
  uint64_t last = goodbye.getLastRequestId();
  events.add(
      event::GoodbyeReceived{goodbye.getReason(), kj::heapString(goodbye.getMessage()), last});
  // Requests above `last` will not be processed: fail them now so they can go elsewhere.
  kj::Vector<uint64_t> dropped;
  for (auto& entry : outgoing) {
    if (entry.key > last && !isMutant(Mutant::keepsRequestsAboveLast)) dropped.add(entry.key);
  }
  for (auto id : dropped) {
    if (!KJ_ASSERT_NONNULL(outgoing.find(id)).cancelled) {
      failLocally(id, wire::ErrorCode::SHUTTING_DOWN, "not processed: the peer said Goodbye");
    }
    outgoing.erase(id);
  }
  failQueued(wire::ErrorCode::SHUTTING_DOWN, "the peer said Goodbye");
  if (currentState == State::established) currentState = State::draining;
  if (drainDeadline == nullptr) drainDeadline = now + config.drainTimeout;
  if (isMutant(Mutant::goodbyeClosesAtOnce)) close(CloseReason::goodbye, "Goodbye received");
}

void SessionCore::goodbye(wire::GoodbyeReason reason, kj::StringPtr message, kj::TimePoint now) {
  switch (currentState) {
    case State::awaitingHello:
    case State::awaitingHelloAck: close(CloseReason::local, message); return;
    case State::awaitingVerdict: rejectHello(wire::ErrorCode::SHUTTING_DOWN, message); return;
    case State::closed: return;
    case State::established:
    case State::draining: break;
  }
  if (goodbyeLastId != nullptr) return;
  if (isMutant(Mutant::forgetGoodbye)) return close(CloseReason::local, message);
  goodbyeLastId = lastIncomingId;
  auto last = lastIncomingId + 7 * isMutant(Mutant::goodbyeLastIdHigh);
  send(codec::goodbyeFrame(reason, message, last));
  // We leave: our own requests are withdrawn so the peer stops working on them.
  for (auto& entry : outgoing) {
    if (!entry.value.cancelled) {
      entry.value.cancelled = true;
      send(codec::cancelFrame(entry.key));
      failLocally(entry.key, wire::ErrorCode::SHUTTING_DOWN, "withdrawn: we said Goodbye");
    }
  }
  failQueued(wire::ErrorCode::SHUTTING_DOWN, "withdrawn: we said Goodbye");
  currentState = State::draining;
  auto deadline = now + config.drainTimeout;
  KJ_IF_MAYBE (d, drainDeadline) {
    if (deadline < *d) drainDeadline = deadline;
  } else {
    drainDeadline = deadline;
  }
  checkDrained();
}

void SessionCore::checkDrained() {
  if (currentState != State::draining || writeCloseWanted) return;
  if (incoming.size() > 0) return;
  if (goodbyeLastId == nullptr) {
    // Only the peer said Goodbye: wait for the answers it promised.
    for (auto& entry : outgoing) {
      if (!entry.value.cancelled) return;
    }
  }
  writeCloseWanted = true;
}

}  // namespace shoal::peer
