// Runtime connections: the TLS phase, what each session reports (trust, duplicates, serving,
// peer table), and the library sync of each peer.
#include <kj/debug.h>
#include <shoal/codec/frames.h>
#include <shoal/mutant.h>

#include <shoal/peer/runtime/event-fields.h>

#include "runtime-internal.h"

namespace shoal::peer {

Runtime::Connection::Connection(Runtime& runtime, uint64_t generation, Role role,
                                kj::String address, kj::TimePoint startedAt,
                                library::LibrarySyncLimits syncLimits)
    : runtime(runtime),
      generation(generation),
      role(role),
      address(kj::mv(address)),
      startedAt(startedAt),
      foundAt(startedAt),
      sync(syncLimits),
      tasks(kj::heap<kj::TaskSet>(runtime.taskErrors)) {}

Runtime::Connection::~Connection() noexcept(false) {
  runtime.admission.release(generation);
  runtime.live.erase(generation);
  KJ_IF_MAYBE (d, runtime.downloads) {
    (*d)->forgetSource(generation);
    (*d)->sourcesChanged();
  }
  KJ_IF_MAYBE (f, ended) {
    (*f)->fulfill(kj::mv(end));
  }
}

Runtime::Connection& Runtime::startConnection(Role role, kj::Own<kj::AsyncIoStream> stream,
                                              kj::String address, uint64_t generation) {
  library::LibrarySyncLimits syncLimits;
  syncLimits.retryMin = config.syncRetryMin;
  syncLimits.maxResyncs = config.maxResyncs;
  auto connection =
      kj::heap<Connection>(*this, generation, role, kj::mv(address), timer.now(), syncLimits);
  auto& ref = *connection;
  live.insert(ref.generation, &ref);
  KJ_ASSERT_NONNULL(connections)
      ->add(runConnection(ref, kj::mv(stream)).attach(kj::mv(connection)));
  return ref;
}

kj::Promise<void> Runtime::runConnection(Connection& c, kj::Own<kj::AsyncIoStream> stream) {
  kj::Promise<kj::Own<Transport>> secured = nullptr;
  KJ_IF_MAYBE (context, tls) {
    auto& ctx = **context;
    if (c.role == Role::responder && isMutant(Mutant::plaintextFallback)) {
      secured = sniffedTransport(
          kj::mv(stream), [&ctx](kj::Own<kj::AsyncIoStream> s) { return ctx.accept(kj::mv(s)); });
    } else {
      secured =
          c.role == Role::initiator ? ctx.connect(kj::mv(stream)) : ctx.accept(kj::mv(stream));
    }
  } else {
    secured = plaintextTransport(kj::mv(stream));
  }
  // One deadline for TLS and Hello together ([HS-6]): the session counts from c.startedAt too.
  auto deadline = c.startedAt + config.session.handshakeTimeout;
  auto tlsPhase =
      timer.timeoutAt(deadline + isMutant(Mutant::noTlsDeadline) * 365 * kj::DAYS, kj::mv(secured))
          .catch_([this, &c](kj::Exception&& e) -> kj::Promise<kj::Own<Transport>> {
            c.end.code =
                kj::str(e.getType() == kj::Exception::Type::OVERLOADED ? "timeout" : "tls");
            c.end.message = e.getType() == kj::Exception::Type::OVERLOADED
                                ? kj::str("no TLS handshake within ",
                                          config.session.handshakeTimeout / kj::MILLISECONDS, " ms")
                                : kj::str(e.getDescription());
            return kj::mv(e);
          });
  // Everything up to the established session can be cut (admission, shutdown); the canceler is
  // never used on an established one.
  return c.handshake
      .wrap(tlsPhase.then(
          [this, &c](kj::Own<Transport> transport) { return startSession(c, kj::mv(transport)); }))
      .then([this, &c]() { connectionEnded(c); },
            [this, &c](kj::Exception&&) {
              // TLS refused, the deadline, or cut by the admission or the shutdown: c.end says.
              connectionEnded(c);
            });
}

kj::Promise<void> Runtime::startSession(Connection& c, kj::Own<Transport> transport) {
  c.end.stage = "hello";
  c.end.code = kj::str("closed");
  c.end.message = kj::str("the connection ended before Hello");
  if (c.role == Role::responder) admission.advance(c.generation, Progress::secured);
  auto proceed = [this, &c](kj::Own<Transport> transport) -> kj::Promise<void> {
    // A handshake that completes while the shutdown begins must not start a session: the
    // Goodbyes have gone out, and nothing would end it before the deadline.
    if (stopping) {
      c.end.code = kj::str("stopping");
      c.end.message = kj::str("this peer is shutting down");
      return transport->end().attach(kj::mv(transport));
    }
    KJ_IF_MAYBE (id, transport->peerId()) {
      c.end.peer = *id;
      if (*id == identity->id()) {
        c.end.kind = ConnectionEnd::Kind::self;
        c.end.code = kj::str("self");
        c.end.message = kj::str(c.address, " leads back to this peer");
        return transport->end().attach(kj::mv(transport));
      }
      // [TR-10]: an initiator in pinned mode says nothing to a stranger.
      if (c.role == Role::initiator && !isAllowed(*id)) {
        c.end.code = kj::str("unlisted");
        c.end.message = kj::str("its id ", formatPeerId(*id), " is not on the allow list");
        return transport->end().attach(kj::mv(transport));
      }
    }
    SessionHandler& handler = c;
    auto session = kj::heap<Session>(kj::mv(transport), c.role, config.session, localPeer(), timer,
                                     handler, c.startedAt, c.generation);
    auto& ref = *session;
    c.session = kj::mv(session);
    return ref.run();
  };
  KJ_IF_MAYBE (hook, config.afterTlsHook) {
    return (*hook)(*this).then(
        [proceed = kj::mv(proceed), transport = kj::mv(transport)]() mutable {
          return proceed(kj::mv(transport));
        });
  }
  return proceed(kj::mv(transport));
}

// Reports an inbound connection that ended before its session; a dialled one is reported by its
// dial loop, which knows when it will try again.
void Runtime::connectionEnded(Connection& c) {
  if (stopping || c.role != Role::responder || c.isEstablished()) return;
  if (c.end.kind == ConnectionEnd::Kind::self) return;  // the dialling side says it
  ++handshakeFailures;
  if (c.end.stage == "admission") ++admissionDrops;
  reportHandshakeFailure(HandshakeFailure{kj::str(c.address), c.end.stage, kj::str(c.end.message)});
}

void Runtime::reportHandshakeFailure(HandshakeFailure failure) {
  KJ_IF_MAYBE (report, failureReports.offer(kj::mv(failure), timer.now())) {
    emitHandshakeFailed(kj::mv(*report));
  }
  rearmAdmissionTimer();
}

void Runtime::emitHandshakeFailed(ReportThrottle<HandshakeFailure>::Report report) {
  emit([&](control::Event::Builder e) {
    auto f = e.initHandshakeFailed();
    f.setAddress(report.event.address);
    f.setStage(report.event.stage);
    f.setReason(report.event.reason);
    f.setSuppressed(report.suppressed);
  });
}

bool Runtime::isAllowed(const PeerId& peer) const {
  if (config.trust == TrustMode::open || isMutant(Mutant::trustAnyone)) return true;
  for (auto& allowed : config.allow) {
    if (allowed == peer && !isMutant(Mutant::pinnedRejectsAll)) return true;
  }
  return false;
}

// --- what the sessions report -------------------------------------------------------------

kj::Maybe<Rejection> Runtime::Connection::onHello(Session& s, const RemotePeer& peer) {
  (void)s;
  return runtime.onHello(peer);
}
void Runtime::Connection::onEstablished(Session& s) {
  (void)s;
  runtime.onEstablished(*this);
}
kj::Promise<kj::Array<codec::FrameBuilder>> Runtime::Connection::serve(
    Session& s, uint64_t id, codec::InboundFrame request) {
  (void)s;
  return runtime.serve(*this, id, kj::mv(request));
}
void Runtime::Connection::onRequestCancelled(Session& s, uint64_t id) {
  (void)s;
  cancelled.insert(id);
}
void Runtime::Connection::onLibraryChanged(Session& s, const codec::Summary& summary) {
  (void)s;
  sync.onLibraryChanged(summary);
  runtime.pumpSync(*this);
}
void Runtime::Connection::onGoodbye(Session& s, const event::GoodbyeReceived& goodbye) {
  (void)s;
  runtime.onGoodbye(*this, goodbye);
}
void Runtime::Connection::onWriterDone(Session& s) {
  (void)s;
  runtime.onWriterDone(*this);
}
void Runtime::Connection::onClosed(Session& s, const event::Closed& closed) {
  (void)s;
  runtime.onClosed(*this, closed);
}

kj::Maybe<Rejection> Runtime::onHello(const RemotePeer& peer) {
  if (stopping && !isMutant(Mutant::handshakesWhileStopping)) {
    return Rejection{wire::ErrorCode::SHUTTING_DOWN, kj::str("shutting down")};
  }
  if (!isAllowed(peer.id)) {
    return Rejection{wire::ErrorCode::UNTRUSTED, kj::str("this peer is not on the allow list")};
  }
  bool unlimited = isMutant(Mutant::noMaxConnections);
  if (peers.size() >= config.maxConnections && peers.find(peer.id) == nullptr && !unlimited) {
    return Rejection{wire::ErrorCode::BUSY, kj::str(peers.size(), " peers connected, the limit is ",
                                                    config.maxConnections)};
  }
  return nullptr;
}

void Runtime::onEstablished(Connection& c) {
  auto& session = c.established();
  auto& remote = KJ_ASSERT_NONNULL(session.remote());
  c.end.kind = ConnectionEnd::Kind::established;
  c.end.peer = remote.id;
  admission.release(c.generation);
  auto admission = peers.admit(remote.id, c.generation, SessionFacts{c.role, remote.instanceId});
  switch (admission.admitted) {
    case PeerTable::Admitted::refused:
      session.goodbye(wire::GoodbyeReason::DUPLICATE, "a connection to this peer exists");
      return;
    case PeerTable::Admitted::replaced:
      KJ_IF_MAYBE (old, live.find(admission.loser)) {
        KJ_IF_MAYBE (oldSession, (*old)->session) {
          (*oldSession)->goodbye(wire::GoodbyeReason::DUPLICATE, "replaced by a newer connection");
        }
      }
      break;
    case PeerTable::Admitted::added:
      emit([&](control::Event::Builder e) { fillPeerInfo(e.initPeerFound(), factsOf(c)); });
      break;
  }
  discoveryPeerUp(remote.id, remote.instanceId);
  settleDiscoveryDial(c);
  c.sync.start();
  pumpSync(c);
  KJ_IF_MAYBE (d, downloads) {
    (*d)->sourcesChanged();
  }
}

namespace {

// Lets the next request of a connection take its turn: early (release()), or when this one ends.
class ServeTurn {
 public:
  explicit ServeTurn(kj::Own<kj::PromiseFulfiller<void>> next) : next(kj::mv(next)) {}
  ~ServeTurn() noexcept(false) { release(); }
  KJ_DISALLOW_COPY(ServeTurn);
  void release() {
    if (next->isWaiting()) next->fulfill();
  }

 private:
  kj::Own<kj::PromiseFulfiller<void>> next;
};

}  // namespace

// Requests of a connection start one at a time, each only once the answers queued to that peer
// are below its backlog mark; a request cancelled while it waited is not served at all. A chunk's
// turn ends as soon as its read is handed to the readers while the connection's chunks being read
// stay below maxReadingBytesPerSession, so many small chunks are read together (one reader job,
// one wake-up); a peer that stops reading holds at most that many bytes beyond the mark.
kj::Promise<kj::Array<codec::FrameBuilder>> Runtime::serve(Connection& c, uint64_t id,
                                                           codec::InboundFrame request) {
  auto& session = c.established();
  auto done = kj::newPromiseAndFulfiller<void>();
  auto turn = kj::mv(c.lastServed);
  c.lastServed = kj::mv(done.promise);
  auto next = kj::heap<ServeTurn>(kj::mv(done.fulfiller));
  auto& nextTurn = *next;
  auto root = request.root();
  uint64_t chunkBytes = root.isGetChunk() ? root.getGetChunk().getLength() : 0;
  return turn.then([&session]() { return session.whenWritable(); })
      .then([this, chunkBytes]() -> kj::Promise<void> {
        // The upload limit paces chunks before they are read, so a paced answer holds no buffer.
        KJ_IF_MAYBE (limit, uploadLimit) {
          if (chunkBytes > 0) return timer.afterDelay(limit->reserve(chunkBytes, timer.now()));
        }
        return kj::READY_NOW;
      })
      .then([this, &session, &c, &nextTurn, id,
             request = kj::mv(request)]() mutable -> kj::Promise<kj::Array<codec::FrameBuilder>> {
        if (c.cancelled.contains(id)) {
          c.cancelled.eraseMatch(id);
          // Error{cancelled} went out with the Cancel; this is dropped as the late answer.
          return kj::arr(codec::errorFrame(id, wire::ErrorCode::CANCELLED, "cancelled"));
        }
        auto& requestServer = KJ_ASSERT_NONNULL(server);
        auto& remote = KJ_ASSERT_NONNULL(session.remote());
        auto root = request.root();
        if (!root.isGetChunk()) {
          return requestServer.serve(id, root, remote);  // from memory: on the loop
        }
        // A chunk: checked here, read by a reader thread; the request stays alive until then.
        KJ_SWITCH_ONEOF(requestServer.checkChunk(id, root.getGetChunk(), remote)) {
          KJ_CASE_ONEOF(refusal, kj::Array<codec::FrameBuilder>) {
            return kj::mv(refusal);
          }
          KJ_CASE_ONEOF(read, ChunkRead) {
            uint64_t length = read.length;
            c.readingBytes += length;
            auto answer = KJ_ASSERT_NONNULL(readers)
                              ->read(kj::mv(read))
                              .then([this](ChunkAnswer answer) {
                                KJ_ASSERT_NONNULL(server).count(answer);
                                // A file changed under us: refresh the index so the next
                                // manifest is right.
                                if (answer.stale) {
                                  KJ_ASSERT_NONNULL(tasks)->add(rescan().ignoreResult());
                                }
                                return kj::mv(answer.frames);
                              })
                              .attach(kj::mv(request),
                                      kj::defer([&c, length]() { c.readingBytes -= length; }));
            if (c.readingBytes < config.readers.maxReadingBytesPerSession) nextTurn.release();
            return kj::mv(answer);
          }
        }
        KJ_UNREACHABLE;
      })
      .attach(kj::mv(next));  // the next request's turn, at the latest when this one ends
}

void Runtime::onGoodbye(Connection& c, const event::GoodbyeReceived& goodbye) {
  KJ_IF_MAYBE (id, c.end.peer) {
    if (!peers.markLeaving(*id, c.generation)) return;  // a connection not in the table
    auto& slot = KJ_ASSERT_NONNULL(peers.find(*id));
    slot.lostReported = true;
    auto text = formatPeerId(*id);
    emit([&](control::Event::Builder e) {
      auto g = e.initGoodbyeReceived();
      g.setPeerId(text);
      g.setReason(kj::str(goodbye.reason));
      g.setMessage(goodbye.message);
    });
    emit([&](control::Event::Builder e) {
      auto lost = e.initPeerLost();
      lost.setPeerId(text);
      lost.setReason("goodbye");
    });
    discoveryPeerDown(*id);
  }
}

void Runtime::onWriterDone(Connection& c) {
  KJ_IF_MAYBE (id, c.end.peer) {
    bool reported = false;
    KJ_IF_MAYBE (slot, peers.find(*id)) {
      reported = slot->lostReported;
    }
    if (!peers.writerEnded(*id, c.generation) || reported) return;
    kj::String reason;
    KJ_IF_MAYBE (closed, c.established().closedEvent()) {
      reason = kj::str(name(closed->reason), ": ", closed->detail);
    } else {
      reason = kj::str("connection closed");
    }
    emit([&](control::Event::Builder e) {
      auto lost = e.initPeerLost();
      lost.setPeerId(formatPeerId(*id));
      lost.setReason(reason);
    });
    discoveryPeerDown(*id);
  }
}

void Runtime::onClosed(Connection& c, const event::Closed& closed) {
  if (c.isEstablished()) {
    KJ_LOG(INFO, "session closed", c.address, name(closed.reason), closed.detail);
    return;
  }
  // Before the session: why, for the dialler's backoff and the failure reports.
  auto& end = c.end;
  KJ_IF_MAYBE (rejection, KJ_ASSERT_NONNULL(c.session)->rejection()) {
    end.kind = ConnectionEnd::Kind::refused;
    end.code = kj::str(codec::name(rejection->code));
    end.message = kj::str(rejection->message);
  } else if (closed.reason == CloseReason::peerError) {
    end.kind = ConnectionEnd::Kind::refused;
    end.code = kj::str("error");
    end.message = kj::str(closed.detail);
  } else {
    end.code = kj::str(name(closed.reason));
    end.message = kj::str(closed.detail);
  }
}

// --- library sync --------------------------------------------------------------------------

// Carries out what the connection's LibrarySync decided: its GetLibrary, its retry timer, and
// what it reports.
void Runtime::pumpSync(Connection& c) {
  for (auto& event : c.sync.takeEvents()) {
    KJ_SWITCH_ONEOF(event) {
      KJ_CASE_ONEOF(applied, library::sync::Applied) {
        (void)applied;
        auto& summary = KJ_ASSERT_NONNULL(c.sync.view().summary());
        emit([&](control::Event::Builder e) {
          auto changed = e.initLibraryChanged();
          KJ_IF_MAYBE (id, c.end.peer) {
            changed.setPeerId(formatPeerId(*id));
          }
          fillSummary(changed.initSummary(), summary);
          changed.setItems(c.sync.view().items().size());
        });
        KJ_IF_MAYBE (d, downloads) {
          (*d)->sourcesChanged();  // the peer may list (or no longer list) an item we fetch
        }
      }
      KJ_CASE_ONEOF(resync, library::sync::Resyncing) {
        KJ_LOG(WARNING, "library view resync", c.address, resync.message);
      }
      KJ_CASE_ONEOF(refused, library::sync::Refused) {
        KJ_LOG(WARNING, "GetLibrary failed", c.address, codec::name(refused.code), refused.message);
      }
      KJ_CASE_ONEOF(failed, library::sync::Failed) {
        KJ_ASSERT_NONNULL(c.session)->abort(wire::ErrorCode::PROTOCOL, failed.message);
      }
    }
  }
  KJ_IF_MAYBE (since, c.sync.takeRequest()) {
    sendGetLibrary(c, *since);
  }
  KJ_IF_MAYBE (at, c.sync.nextDeadline()) {
    bool armed = false;
    KJ_IF_MAYBE (t, c.syncTimer) {
      armed = *t == *at;
    }
    if (!armed) {
      c.syncTimer = *at;
      c.tasks->add(timer.atTime(*at).then([this, &c]() {
        c.sync.onTick(timer.now());
        pumpSync(c);
      }));
    }
  }
}

void Runtime::sendGetLibrary(Connection& c, library::LibraryView::Since since) {
  auto frame = codec::newFrame(32);
  auto get = codec::rootOf(*frame).initGetLibrary();
  get.setSinceEpoch(since.epoch);
  get.setSinceRev(since.rev);
  kj::Function<void(const codec::InboundFrame&)> onPage = [this,
                                                           &c](const codec::InboundFrame& page) {
    c.sync.onPage(page.root(), false);
    pumpSync(c);
  };
  auto& session = *KJ_ASSERT_NONNULL(c.session);
  c.tasks->add(session.request(kj::mv(frame), kj::mv(onPage)).then([this, &c](Reply reply) {
    KJ_SWITCH_ONEOF(reply) {
      KJ_CASE_ONEOF(frame, codec::InboundFrame) {
        c.sync.onPage(frame.root(), true);
      }
      KJ_CASE_ONEOF(error, RequestError) {
        // [ERR-5] counts from the answer's arrival. timer.now() is the time of the loop's last
        // wait, which a busy turn leaves tens of milliseconds behind the arrival; a retry counted
        // from it came 30-40 ms early under load. The runtime's timer follows `clock`.
        auto arrived = kj::max(timer.now(), clock.now());
        c.sync.onError(error.code, error.message, error.retryAfterMs, error.local, arrived);
      }
    }
    pumpSync(c);
  }));
}

// --- queries -------------------------------------------------------------------------------

PeerFacts Runtime::factsOf(const Connection& c) const {
  auto& session = *KJ_ASSERT_NONNULL(c.session);
  auto& remote = KJ_ASSERT_NONNULL(session.remote());
  bool leaving = false;
  KJ_IF_MAYBE (slot, peers.find(remote.id)) {
    leaving = slot->leaving;
  }
  auto found = foundOf(c);
  return PeerFacts{remote,
                   c.address,
                   c.role,
                   leaving,
                   c.sync.view(),
                   session.authenticatedPeer() != nullptr,
                   session.bytesRead(),
                   session.bytesWritten(),
                   kj::get<0>(found),
                   kj::get<1>(found),
                   c.sync.nextDeadline()};
}

void Runtime::forEachPeer(kj::FunctionParam<void(const PeerFacts&)> func) const {
  peers.forEach([&](const PeerId&, const PeerTable::Slot& slot) {
    KJ_IF_MAYBE (c, live.find(slot.generation)) {
      func(factsOf(**c));
    }
  });
}

void fillSummary(control::Summary::Builder out, const codec::Summary& summary) {
  out.setEpoch(summary.epoch);
  out.setRev(summary.rev);
  out.setDigest(codec::toHex(summary.digest));
}

void fillPeerInfo(control::PeerInfo::Builder info, const PeerFacts& peer) {
  info.setPeerId(formatPeerId(peer.remote.id));
  info.setName(peer.remote.name);
  info.setAddress(peer.address);
  info.setDirection(peer.role == Role::initiator ? control::Direction::OUTBOUND
                                                 : control::Direction::INBOUND);
  info.setState(peer.leaving ? control::PeerState::LEAVING : control::PeerState::ESTABLISHED);
  info.setInstanceId(peer.remote.instanceId);
  KJ_IF_MAYBE (held, peer.library.summary()) {
    fillSummary(info.initLibrary(), *held);
  } else {
    fillSummary(info.initLibrary(), peer.remote.library);
  }
  info.setItems(peer.library.items().size());
  info.setAuthenticated(peer.authenticated);
  info.setBytesIn(peer.bytesIn);
  info.setBytesOut(peer.bytesOut);
  info.setFoundBy(peer.foundBy);
  info.setFoundMs(peer.foundSince / kj::MILLISECONDS);
}

}  // namespace shoal::peer
