#include <shoal/conformance/case.h>

#include <kj/debug.h>
#include <shoal/codec/validate.h>
#include <stdlib.h>
#include <sys/random.h>

namespace shoal::conformance {

kj::StringPtr name(Verdict v) {
  switch (v) {
    case Verdict::ok: return "OK";
    case Verdict::fail: return "FAIL";
    case Verdict::nonStrict: return "NON-STRICT";
    case Verdict::unimplemented: return "UNIMPLEMENTED";
    case Verdict::error: return "ERROR";
    case Verdict::xfail: return "XFAIL";
    case Verdict::xpass: return "XPASS";
  }
  return "?";
}

kj::String areaOf(const CaseSpec& spec) {
  KJ_IF_MAYBE (slash, spec.id.findFirst('/')) {
    return kj::str(spec.id.slice(0, *slash));
  }
  return kj::str(spec.id);
}

namespace {

uint64_t randomNonZero() {
  uint64_t v = 0;
  while (v == 0) {
    KJ_ASSERT(getrandom(&v, sizeof(v), 0) == sizeof(v));
  }
  return v;
}

// Waits for `promise` under the step timer; null on timeout.
template <typename T>
kj::Maybe<T> within(kj::Timer& timer, kj::WaitScope& ws, kj::Duration timeout,
                    kj::Promise<T> promise) {
  return timer.timeoutAfter(timeout, promise.then([](T v) { return kj::Maybe<T>(kj::mv(v)); }))
      .catch_([](kj::Exception&&) { return kj::Maybe<T>(nullptr); })
      .wait(ws);
}

}  // namespace

Trial::Trial(const CaseSpec& spec, Level level, TrialEnv& env)
    : caseSpec(spec),
      level(level),
      env(env),
      log(env.io.provider->getTimer().now()),
      context{env.io.provider->getTimer(), log,
              [this](Violation v) {
                violation(kj::mv(v));
              }},
      emptyLibrary(1),
      emptySource(kj::heap<LibrarySource>(emptyLibrary)) {}

Trial::~Trial() noexcept(false) {
  closeAll();
}

void Trial::closeAll() {
  connections.clear();
  logEvents();
  controlClient = nullptr;
  eventSink = nullptr;
  eventLog = nullptr;
}

kj::Maybe<PeerId> Trial::targetId() const {
  KJ_IF_MAYBE (id, env.targetId) {
    return *id;
  }
  for (auto& c : connections) {
    KJ_IF_MAYBE (facts, c->tls()) {
      KJ_IF_MAYBE (id, facts->peerId) {
        return *id;
      }
    }
  }
  return nullptr;
}

Announce Trial::announce() const {
  Announce a;
  a.peerId = env.harnessIdentity.id();
  a.instanceId = randomNonZero();
  return a;
}

// --- connections ---------------------------------------------------------------------------------

kj::Maybe<kj::Own<kj::AsyncIoStream>> Trial::acceptStream() {
  KJ_IF_MAYBE (listener, env.harnessListener) {
    auto got = within(timer(), env.io.waitScope, stepTimeout(), listener->accept());
    if (got == nullptr) {
      fail("HS-1", kj::str("the target connects to the harness"),
           kj::str("no connection within ", stepTimeout() / kj::MILLISECONDS, " ms"));
    }
    return got;
  }
  unimplemented(kj::str("the target is not launched with the harness as a peer (--launch)"));
  return nullptr;
}

kj::Maybe<kj::Own<kj::AsyncIoStream>> Trial::rawStream() {
  if (failed()) return nullptr;
  if (caseSpec.role == Role::initiator) return acceptStream();
  auto connect = env.io.provider->getNetwork()
                     .parseAddress(env.targetAddress)
                     .then([](kj::Own<kj::NetworkAddress> a) { return a->connect(); });
  auto got = within(timer(), env.io.waitScope, stepTimeout(), kj::mv(connect));
  if (got == nullptr) {
    harnessError(kj::str("cannot connect to the target at ", env.targetAddress));
  }
  return got;
}

kj::Maybe<kj::OneOf<kj::Own<Channel>, TlsRefused>> Trial::tlsHandshake(Open options) {
  KJ_IF_MAYBE (stream, rawStream()) {
    const Identity& id = options.identity.orDefault(env.harnessIdentity);
    auto handshake = caseSpec.role == Role::responder
                         ? tlsConnect(kj::mv(*stream), id, options.profile)
                         : tlsAccept(kj::mv(*stream), id, options.profile);
    auto result = within(timer(), env.io.waitScope, stepTimeout(), kj::mv(handshake));
    KJ_IF_MAYBE (r, result) {
      KJ_IF_MAYBE (refused, r->tryGet<TlsRefused>()) {
        log.add(timer().now(), uint32_t(connections.size() + 1), EntryKind::tls,
                kj::str("TLS handshake refused: ", refused->reason,
                        refused->alert
                            .map([](const kj::String& a) { return kj::str(" (alert ", a, ")"); })
                            .orDefault(kj::str()),
                        refused->ended ? ", connection ended" : ""));
      } else {
        auto& facts = KJ_ASSERT_NONNULL(r->get<kj::Own<Channel>>()->facts());
        log.add(timer().now(), uint32_t(connections.size() + 1), EntryKind::tls,
                kj::str("TLS handshake done: ", facts.description,
                        facts.alpn.map([](const kj::String& a) { return kj::str(", ALPN ", a); })
                            .orDefault(kj::str(", no ALPN"))));
      }
      return kj::mv(*r);
    }
    fail("HS-6", kj::str("the TLS handshake completes or fails"),
         kj::str("nothing within ", stepTimeout() / kj::MILLISECONDS, " ms"));
  }
  return nullptr;
}

Connection& Trial::adopt(kj::Own<Channel> channel, Announce announce) {
  auto c = kj::heap<Connection>(context, uint32_t(connections.size() + 1), caseSpec.role,
                                kj::mv(channel), kj::mv(announce));
  c->setSource(*emptySource);
  auto& ref = *c;
  connections.add(kj::mv(c));
  return ref;
}

kj::Maybe<Connection&> Trial::open(Open options) {
  if (failed()) return nullptr;
  Announce a = options.announce.orDefault(announce());
  bool toCase = options.requestsToCase;
  kj::Maybe<Source&> source = options.source;
  auto prepared = [toCase, source](Connection& c) -> Connection& {
    KJ_IF_MAYBE (s, source) {
      c.setSource(*s);
    }
    if (toCase) {
      c.deliver(Which::GET_LIBRARY);
      c.deliver(Which::GET_MANIFEST);
      c.deliver(Which::GET_CHUNK);
    }
    return c;
  };
  if (!env.tls) {
    KJ_IF_MAYBE (stream, rawStream()) {
      return prepared(adopt(plaintextChannel(kj::mv(*stream)), kj::mv(a)));
    }
    return nullptr;
  }
  KJ_IF_MAYBE (result, tlsHandshake(kj::mv(options))) {
    KJ_IF_MAYBE (refused, result->tryGet<TlsRefused>()) {
      fail("TR-3", kj::str("a TLS 1.3 handshake with raw public keys and ALPN shoal/1"),
           kj::str("refused: ", refused->reason));
      return nullptr;
    }
    return prepared(adopt(kj::mv(result->get<kj::Own<Channel>>()), kj::mv(a)));
  }
  return nullptr;
}

kj::Maybe<Connection&> Trial::establish(Open options) {
  KJ_IF_MAYBE (c, open(kj::mv(options))) {
    if (caseSpec.role == Role::responder) {
      c->send(helloFrame(c->ours()));
      if (expectNext(
              *c, "HelloAck", [](auto f) { return f.isHelloAck(); }, "HS-4") == nullptr) {
        return nullptr;
      }
    } else {
      if (expectNext(
              *c, "Hello", [](auto f) { return f.isHello(); }, "HS-1") == nullptr) {
        return nullptr;
      }
      c->send(helloAckFrame(c->ours()));
    }
    return *c;
  }
  return nullptr;
}

// --- expectations --------------------------------------------------------------------------------

kj::String Trial::describe(const Event& event, bool tls) const {
  KJ_SWITCH_ONEOF(event) {
    KJ_CASE_ONEOF(f, FrameEvent) {
      return frameText(kj::str(f.frame.root()), 300);
    }
    KJ_CASE_ONEOF(b, BadBytes) {
      return kj::str("invalid bytes (", codec::name(b.failure.error), ": ", b.failure.message, ")");
    }
    KJ_CASE_ONEOF(c, Closed) {
      return kj::str("connection closed (", c.describe(tls), ")");
    }
  }
  KJ_UNREACHABLE;
}

kj::Maybe<codec::InboundFrame> Trial::waitFor(Connection& c, kj::StringPtr what, Match& match,
                                              kj::StringPtr requirement, bool strict,
                                              kj::Duration timeout) {
  if (failed()) return nullptr;
  auto deadline = timer().now() + timeout;
  kj::Maybe<kj::String> other;
  auto req = requirement == nullptr ? caseSpec.requirement : requirement;
  for (;;) {
    auto now = timer().now();
    auto left = deadline > now ? deadline - now : 0 * kj::SECONDS;
    auto got = c.next(left).wait(env.io.waitScope);
    KJ_IF_MAYBE (event, got) {
      KJ_IF_MAYBE (f, event->tryGet<FrameEvent>()) {
        if (match(f->frame.root())) return kj::mv(f->frame);
        if (f->frame.kind() == Which::LIBRARY_CHANGED && !strict) continue;
        if (strict) {
          fail(req, kj::str(what), describe(*event, c.isTls()));
          return nullptr;
        }
        if (other == nullptr) other = describe(*event, c.isTls());
        continue;
      }
      fail(req, kj::str(what), describe(*event, c.isTls()));
      return nullptr;
    }
    fail(req, kj::str(what),
         kj::str("nothing matching within ", timeout / kj::MILLISECONDS, " ms",
                 other.map([](const kj::String& o) { return kj::str("; received ", o); })
                     .orDefault(kj::str())));
    return nullptr;
  }
}

kj::Maybe<codec::InboundFrame> Trial::expectFrame(Connection& c, kj::StringPtr what, Match match,
                                                  kj::StringPtr requirement) {
  return waitFor(c, what, match, requirement, false, stepTimeout());
}

kj::Maybe<codec::InboundFrame> Trial::expectNext(Connection& c, kj::StringPtr what, Match match,
                                                 kj::StringPtr requirement) {
  return waitFor(c, what, match, requirement, true, stepTimeout());
}

bool Trial::expectConnectionError(Connection& c, wire::ErrorCode code, kj::StringPtr requirement) {
  auto what = kj::str("Error{0, ", codec::name(code), "} then close");
  KJ_IF_MAYBE (f, expectFrame(
                      c, what, [](auto f) { return f.isError() && f.getError().getId() == 0; },
                      requirement)) {
    auto got = f->root().getError().getCode();
    if (!check(got == code, requirement == nullptr ? caseSpec.requirement : requirement, what,
               kj::str("Error{0, ", codec::name(got), "}"))) {
      return false;
    }
    return expectClose(c, stepTimeout(), requirement);
  }
  return false;
}

bool Trial::expectReject(Connection& c, wire::ErrorCode code, kj::StringPtr requirement) {
  auto what = kj::str("Reject{", codec::name(code), "} then close");
  KJ_IF_MAYBE (f, expectNext(
                      c, what, [](auto f) { return f.isReject(); }, requirement)) {
    auto got = f->root().getReject().getCode();
    if (!check(got == code, requirement == nullptr ? caseSpec.requirement : requirement, what,
               kj::str("Reject{", codec::name(got), "}"))) {
      return false;
    }
    return expectClose(c, stepTimeout(), requirement);
  }
  return false;
}

bool Trial::expectClose(Connection& c, kj::Duration timeout, kj::StringPtr requirement) {
  if (failed()) return false;
  auto req = requirement == nullptr ? caseSpec.requirement : requirement;
  auto deadline = timer().now() + timeout;
  for (;;) {
    auto now = timer().now();
    auto got = c.next(deadline > now ? deadline - now : 0 * kj::SECONDS).wait(env.io.waitScope);
    KJ_IF_MAYBE (event, got) {
      if (event->is<Closed>()) return true;
      KJ_IF_MAYBE (f, event->tryGet<FrameEvent>()) {
        if (f->frame.kind() == Which::LIBRARY_CHANGED) continue;
        // A Goodbye's sender may withdraw its own outstanding requests before it closes ([BYE-12]).
        if (f->frame.kind() == Which::CANCEL) continue;
      }
      fail(req, kj::str("the connection closes"), describe(*event, c.isTls()));
      return false;
    }
    fail(req, kj::str("the connection closes"),
         kj::str("still open after ", timeout / kj::MILLISECONDS, " ms"));
    return false;
  }
}

bool Trial::expectSilence(Connection& c, kj::Duration window, kj::StringPtr requirement) {
  if (failed()) return false;
  log.add(timer().now(), c.number(), EntryKind::timer,
          kj::str("expecting nothing for ", window / kj::MILLISECONDS, " ms"));
  auto got = c.next(window).wait(env.io.waitScope);
  KJ_IF_MAYBE (event, got) {
    fail(requirement == nullptr ? caseSpec.requirement : requirement,
         kj::str("nothing for ", window / kj::MILLISECONDS, " ms"), describe(*event, c.isTls()));
    return false;
  }
  return true;
}

kj::Maybe<kj::Array<codec::InboundFrame>> Trial::request(Connection& c, FrameBuilder frame) {
  if (failed()) return nullptr;
  uint64_t id = codec::requestIdOf(codec::rootOf(*frame).asReader());
  auto kind = codec::rootOf(*frame).which();
  c.send(kj::mv(frame));
  kj::Vector<codec::InboundFrame> pages;
  for (;;) {
    auto what = kj::str("the answer to ", codec::name(kind), " ", id);
    KJ_IF_MAYBE (f, expectFrame(
                        c, what,
                        [id](auto f) {
                          // An answer, not the target's own request that has the same number.
                          return codec::requestIdOf(f) == id && !codec::isRequest(f.which()) &&
                                 !f.isCancel();
                        },
                        "RQ-4")) {
      auto root = f->root();
      bool terminal = true;
      if (root.isLibrarySnapshot()) terminal = root.getLibrarySnapshot().getLast();
      if (root.isLibraryDelta()) terminal = root.getLibraryDelta().getLast();
      if (root.isManifest()) terminal = root.getManifest().getLast();
      pages.add(kj::mv(*f));
      if (terminal) return pages.releaseAsArray();
    } else {
      return nullptr;
    }
  }
}

bool Trial::expectAlive(Connection& c, kj::StringPtr requirement) {
  uint64_t nonce = randomNonZero();
  if (failed()) return false;
  c.send(codec::pingFrame(nonce));
  return expectFrame(
             c, "Pong with our nonce (the session goes on)",
             [nonce](auto f) { return f.isPong() && f.getPong().getNonce() == nonce; },
             requirement) != nullptr;
}

// --- judging
// ---------------------------------------------------------------------------------------

bool Trial::check(bool condition, kj::StringPtr requirement, kj::StringPtr expected,
                  kj::String actual) {
  if (failed()) return false;
  if (!condition) fail(requirement, kj::str(expected), kj::mv(actual));
  return condition;
}

void Trial::fail(kj::StringPtr requirement, kj::String expected, kj::String actual) {
  if (firstFailure != nullptr || stopped) return;
  log.add(timer().now(), 0, EntryKind::violation,
          kj::str(requirement, ": expected ", expected, "; actual: ", actual));
  firstFailure = Failure{requirement, kj::mv(expected), kj::mv(actual)};
}

void Trial::unimplemented(kj::String why) {
  if (stopped || firstFailure != nullptr) return;
  log.add(timer().now(), 0, EntryKind::note, kj::str("UNIMPLEMENTED: ", why));
  skipReason = kj::mv(why);
  skipped = true;
  stopped = true;
}

void Trial::harnessError(kj::String why) {
  if (stopped || firstFailure != nullptr) return;
  log.add(timer().now(), 0, EntryKind::note, kj::str("harness error: ", why));
  skipReason = kj::mv(why);
  errored = true;
  stopped = true;
}

void Trial::violation(Violation v) {
  log.add(timer().now(), 0, EntryKind::violation, kj::str(v.requirement, ": ", v.message));
  seen.add(kj::mv(v));
}

void Trial::note(kj::String text) {
  log.add(timer().now(), 0, EntryKind::note, kj::mv(text));
}

void Trial::step(kj::String text) {
  log.add(timer().now(), 0, EntryKind::step, kj::mv(text));
}

void Trial::wait(kj::Duration d, kj::StringPtr why) {
  if (failed()) return;
  log.add(timer().now(), 0, EntryKind::timer,
          kj::str("waiting ", d / kj::MILLISECONDS, " ms: ", why));
  timer().afterDelay(d).wait(env.io.waitScope);
}

Verdict Trial::verdict() const {
  if (errored) return Verdict::error;
  if (skipped) return Verdict::unimplemented;
  if (seen.size() > 0) return Verdict::fail;  // monitors check MUSTs only
  if (firstFailure != nullptr) return level == Level::must ? Verdict::fail : Verdict::nonStrict;
  return Verdict::ok;
}

kj::String Trial::closeSummary() const {
  for (auto& c : connections) {
    KJ_IF_MAYBE (closed, c->closeEvent()) {
      return kj::str(closed->clean(c->isTls()) ? "clean: " : "unclean: ",
                     closed->describe(c->isTls()));
    }
  }
  return kj::str();
}

// --- the target ----------------------------------------------------------------------------------

kj::Maybe<ControlClient&> Trial::control() {
  if (failed()) return nullptr;
  KJ_IF_MAYBE (c, controlClient) {
    return **c;
  }
  KJ_IF_MAYBE (path, env.controlPath) {
    auto got =
        within(timer(), env.io.waitScope, stepTimeout(), ControlClient::connect(env.io, *path));
    KJ_IF_MAYBE (client, got) {
      log.add(timer().now(), 0, EntryKind::control,
              kj::str("connected to the control API at ", *path));
      auto& ref = **client;
      controlClient = kj::mv(*client);
      return ref;
    }
    harnessError(kj::str("cannot reach the control API at ", *path));
    return nullptr;
  }
  unimplemented(kj::str("the target has no control API (--control)"));
  return nullptr;
}

uint16_t Trial::targetPort() const {
  KJ_IF_MAYBE (colon, env.targetAddress.findLast(':')) {
    return uint16_t(strtoul(env.targetAddress.cStr() + *colon + 1, nullptr, 10));
  }
  return 0;
}

kj::Maybe<EventLog&> Trial::events() {
  if (failed()) return nullptr;
  KJ_IF_MAYBE (existing, eventLog) {
    return *existing;
  }
  KJ_IF_MAYBE (c, control()) {
    auto server = kj::heap<EventLog>();
    auto& ref = *server;
    control::EventSink::Client client = kj::mv(server);
    auto request = c->api().subscribeRequest();
    request.setSink(client);
    log.add(timer().now(), 0, EntryKind::control, kj::str("control: subscribe()"));
    auto done = within(timer(), env.io.waitScope, stepTimeout(),
                       request.send().then([](auto&&) { return true; }));
    if (done == nullptr) {
      harnessError(kj::str("control subscribe() did not return"));
      return nullptr;
    }
    eventSink = kj::mv(client);
    eventLog = ref;
    return ref;
  }
  return nullptr;
}

void Trial::logEvents() {
  KJ_IF_MAYBE (sink, eventLog) {
    for (; eventsLogged < sink->size(); ++eventsLogged) {
      log.add(timer().now(), 0, EntryKind::control,
              kj::str("event: ", frameText(kj::str(sink->at(eventsLogged)), 300)));
    }
  }
}

kj::Maybe<size_t> Trial::expectEvent(kj::StringPtr what, EventMatch match, kj::Duration timeout,
                                     size_t from, kj::StringPtr requirement) {
  KJ_IF_MAYBE (got, events()) {
    auto deadline = timer().now() + timeout;
    for (size_t i = from;;) {
      for (; i < got->size(); ++i) {
        if (match(got->at(i))) {
          logEvents();
          return i;
        }
      }
      logEvents();
      auto now = timer().now();
      if (got->ended() || now >= deadline) break;
      within(timer(), env.io.waitScope, deadline - now, got->beyond(i).then([]() { return true; }));
    }
    fail(requirement == nullptr ? caseSpec.requirement : requirement, kj::str(what),
         kj::str(got->ended() ? "the target's event stream ended" : "no such event", " within ",
                 timeout / kj::MILLISECONDS, " ms"));
  }
  return nullptr;
}

bool Trial::stopTarget(bool viaControl) {
  if (failed()) return false;
  KJ_IF_MAYBE (p, viaControl ? nullptr : env.process) {
    log.add(timer().now(), 0, EntryKind::control, kj::str("SIGTERM to the target"));
    p->terminate();
    return true;
  }
  KJ_IF_MAYBE (c, control()) {
    log.add(timer().now(), 0, EntryKind::control, kj::str("control: stop()"));
    // A target that stops fast may close the control connection before its answer leaves:
    // the stop has begun all the same. Only silence on an open connection is an error.
    auto done = within(timer(), env.io.waitScope, stepTimeout(),
                       c->api()
                           .stopRequest()
                           .send()
                           .then([](auto&&) { return kj::str("returned"); })
                           .catch_([](kj::Exception&& e) -> kj::Promise<kj::String> {
                             if (e.getType() != kj::Exception::Type::DISCONNECTED) return kj::mv(e);
                             return kj::str("ended with the control connection");
                           }));
    KJ_IF_MAYBE (how, done) {
      log.add(timer().now(), 0, EntryKind::control, kj::str("control: stop() ", *how));
      return true;
    }
    harnessError(kj::str("control stop() did not return"));
    return false;
  }
  return false;
}

}  // namespace shoal::conformance
