// §10 Goodbye: the drain, both as its receiver and its sender, and shutdown.
#include "common.h"

#include <shoal/codec/manifest.h>

#include <algorithm>

namespace shoal::conformance::cases {

namespace {

Settings shortDrain(uint32_t ms) {
  Settings s;
  s.drainMs = ms;
  return s;
}

void leaveBeforeHandshake(Trial& t) {
  KJ_IF_MAYBE (c, t.open()) {
    // control stop() returns once the shutdown has begun: the Hello below reaches a stopping
    // target without a guessed wait.
    if (!t.stopTarget(true)) return;
    c->send(helloFrame(c->ours()));
    KJ_IF_MAYBE (e, c->next(t.stepTimeout()).wait(t.io().waitScope)) {
      KJ_IF_MAYBE (f, e->tryGet<FrameEvent>()) {
        auto r = f->frame.root();
        if (t.check(r.isReject() && r.getReject().getCode() == Code::SHUTTING_DOWN, "BYE-1",
                    "a close, or Reject{shuttingDown}", kj::str(r))) {
          t.expectClose(*c);
        }
      }
    } else {
      t.fail("BYE-1", kj::str("a close, or Reject{shuttingDown}"), kj::str("nothing"));
    }
  }
}

// The Goodbye{shutdown} of a stopping target on `c`.
kj::Maybe<codec::InboundFrame> stopGoodbye(Trial& t, Connection& c) {
  return t.expectFrame(
      c, "Goodbye{shutdown}",
      [](Reader f) {
        return f.isGoodbye() && f.getGoodbye().getReason() == wire::GoodbyeReason::SHUTDOWN;
      },
      "BYE-11");
}

// Stops the target and returns its Goodbye on `c`.
kj::Maybe<codec::InboundFrame> stopAndGoodbye(Trial& t, Connection& c) {
  t.stopTarget();
  return stopGoodbye(t, c);
}

void lastRequestIdBounded(Trial& t) {
  KJ_IF_MAYBE (c, t.establish()) {
    t.request(*c, getManifestFrame(c->nextRequestId(), "alpha"));
    KJ_IF_MAYBE (g, stopAndGoodbye(t, *c)) {
      auto last = g->root().getGoodbye().getLastRequestId();
      t.check(last == 1, "BYE-2", "lastRequestId = 1, the highest id received (already answered)",
              kj::str(last));
    }
  }
}

void noRequestsAfterOwnGoodbye(Trial& t) {
  KJ_IF_MAYBE (c, t.establish()) {
    t.expectAlive(*c);  // its own library sync is answered by now
    if (stopAndGoodbye(t, *c) == nullptr) return;
    c->send(libraryChangedFrame(codec::Summary{3, 5, codec::libraryDigest(nullptr)}));
    // The monitor fails any request after its Goodbye ([BYE-3]); it may only close.
    t.expectClose(*c);
  }
}

// The connection ends within the step timeout; before that, only Chunk or Error answers to `ids`
// (and LibraryChanged, Cancel, as expectClose() allows) may arrive.
void closesAfterAnswers(Trial& t, Connection& c, kj::ArrayPtr<const uint64_t> ids) {
  auto deadline = t.timer().now() + t.stepTimeout();
  for (;;) {
    auto now = t.timer().now();
    auto got = c.next(deadline > now ? deadline - now : 0 * kj::SECONDS).wait(t.io().waitScope);
    KJ_IF_MAYBE (event, got) {
      if (event->is<Closed>()) return;
      KJ_IF_MAYBE (f, event->tryGet<FrameEvent>()) {
        auto root = f->frame.root();
        bool answer = (root.isChunk() || root.isError()) &&
                      std::find(ids.begin(), ids.end(), codec::requestIdOf(root)) != ids.end();
        if (answer || root.isLibraryChanged() || root.isCancel()) continue;
      }
      t.check(false, "BYE-4", "the connection closes (after answers to the requests)",
              kj::str("another event"));
      return;
    }
    t.check(false, "BYE-4", "the connection closes",
            kj::str("still open after ", t.stepTimeout() / kj::MILLISECONDS, " ms"));
    return;
  }
}

void answersUpToLastRequestId(Trial& t) {
  KJ_IF_MAYBE (c, t.establish()) {
    KJ_IF_MAYBE (m, fetchManifest(t, *c, "gamma")) {
      uint32_t index = KJ_ASSERT_NONNULL(m->fileIndex("data/level 1/map.bin"));
      kj::Vector<uint64_t> ids;
      for (int i = 0; i < 5; ++i) {
        ids.add(c->nextRequestId());
        c->send(getChunkFrame(ids.back(), "gamma", m->digest, index, uint64_t(i) * m->chunkSize,
                              m->chunkSize));
      }
      c->flushed().wait(t.io().waitScope);
      KJ_IF_MAYBE (g, stopAndGoodbye(t, *c)) {
        (void)g;
      }
      // Every request the Goodbye promised, and nothing else, is answered; the monitor checks
      // one terminal answer each. Answers before the Goodbye count too, and so do answers after
      // it: the drain is when they are due (a target that reads chunks off its event loop sends
      // them there). Anything else before the close fails.
      c->flushed().wait(t.io().waitScope);
      closesAfterAnswers(t, *c, ids);
    }
  }
}

bool isCancel(const Event& e) {
  KJ_IF_MAYBE (f, e.tryGet<FrameEvent>()) {
    return f->frame.kind() == wire::Frame::CANCEL;
  }
  return false;
}

void shuttingDownAboveLast(Trial& t) {
  KJ_IF_MAYBE (c, t.establish()) {
    KJ_IF_MAYBE (g, stopAndGoodbye(t, *c)) {
      uint64_t id = kj::max(g->root().getGoodbye().getLastRequestId(), uint64_t(10)) + 1;
      c->send(getManifestFrame(id, "alpha"));
      auto e = c->next(t.stepTimeout()).wait(t.io().waitScope);
      // The target may first withdraw its own outstanding requests ([BYE-12]).
      while (e != nullptr && isCancel(KJ_ASSERT_NONNULL(e))) {
        e = c->next(t.stepTimeout()).wait(t.io().waitScope);
      }
      KJ_IF_MAYBE (event, e) {
        KJ_IF_MAYBE (f, event->tryGet<FrameEvent>()) {
          auto r = f->frame.root();
          t.check(r.isError() && r.getError().getId() == id &&
                      r.getError().getCode() == Code::SHUTTING_DOWN,
                  "BYE-5", "Error{id, shuttingDown} (or the connection already closing)",
                  kj::str(r));
        }
      }
    }
  }
}

void senderClosesCleanly(Trial& t) {
  KJ_IF_MAYBE (c, t.establish()) {
    if (stopAndGoodbye(t, *c) == nullptr) return;
    if (!t.expectClose(*c, t.stepTimeout(), "BYE-6")) return;
    KJ_IF_MAYBE (closed, c->closeEvent()) {
      t.check(closed->clean(c->isTls()), "BYE-6", "close_notify / FIN after the answers",
              closed->describe(c->isTls()));
    }
  }
}

void noNewRequestsAfterTheirGoodbye(Trial& t) {
  KJ_IF_MAYBE (c, t.establish(requester())) {
    KJ_IF_MAYBE (get, targetGetLibrary(t, *c)) {
      uint64_t id = get->root().getGetLibrary().getId();
      c->send(codec::goodbyeFrame(wire::GoodbyeReason::IDLE, "leaving", id));
      c->send(libraryChangedFrame(codec::Summary{3, 7, codec::libraryDigest(nullptr)}));
      t.expectSilence(*c, t.quiet(), "BYE-7");
      c->send(snapshotPage(id, emptySummary(), 0, true, nullptr));
      t.expectClose(*c, t.stepTimeout(), "BYE-9");
    }
  }
}

void failsAboveLastAtOnce(Trial& t) {
  KJ_IF_MAYBE (c, t.establish(requester())) {
    if (targetGetLibrary(t, *c) == nullptr) return;
    // Goodbye{0}: its outstanding GetLibrary will never be answered, so it has nothing to wait
    // for and closes at once — long before the 4 s drain deadline.
    c->send(codec::goodbyeFrame(wire::GoodbyeReason::IDLE, "leaving", 0));
    t.expectClose(*c, 2 * kj::SECONDS, "BYE-8");
  }
}

void drainDeadline(Trial& t) {
  KJ_IF_MAYBE (c, t.establish(requester())) {
    KJ_IF_MAYBE (get, targetGetLibrary(t, *c)) {
      c->send(codec::goodbyeFrame(wire::GoodbyeReason::IDLE, "leaving",
                                  get->root().getGetLibrary().getId()));
      t.expectClose(*c, t.stepTimeout(), "BYE-9");  // never answered: the 300 ms deadline
    }
  }
}

void secondGoodbyeIgnored(Trial& t) {
  KJ_IF_MAYBE (c, t.establish(requester())) {
    KJ_IF_MAYBE (get, targetGetLibrary(t, *c)) {
      uint64_t id = get->root().getGetLibrary().getId();
      c->send(codec::goodbyeFrame(wire::GoodbyeReason::IDLE, "one", id));
      c->send(codec::goodbyeFrame(wire::GoodbyeReason::IDLE, "two", id));
      t.expectSilence(*c, t.quiet(), "BYE-10");
      c->send(snapshotPage(id, emptySummary(), 0, true, nullptr));
      t.expectClose(*c);
    }
  }
}

void receiverAnswersBeforeClosing(Trial& t) {
  KJ_IF_MAYBE (c, t.establish()) {
    kj::Vector<uint64_t> ids;
    for (kj::StringPtr item : {"alpha", "beta", "gamma"}) {
      ids.add(c->nextRequestId());
      c->send(getManifestFrame(ids.back(), item));
    }
    c->send(codec::goodbyeFrame(wire::GoodbyeReason::IDLE, "leaving", 0));
    for (auto id : ids) {
      t.expectFrame(
          *c, kj::str("the terminal answer to ", id, " before the close"),
          [id](Reader f) {
            return codec::requestIdOf(f) == id && (f.isError() || f.getManifest().getLast());
          },
          "BYE-12");
    }
    t.expectClose(*c);
  }
}

void goodbyeToEveryone(Trial& t) {
  kj::Vector<Connection*> sessions;
  kj::Vector<kj::Own<Identity>> keys;
  for (int i = 0; i < 3; ++i) {
    keys.add(Identity::generate());
    auto a = t.announce();
    a.peerId = keys.back()->id();
    KJ_IF_MAYBE (c, t.establish(Trial::Open{*keys.back(), {}, a})) {
      sessions.add(c);
    }
  }
  if (t.failed()) return;
  t.stopTarget();
  for (auto c : sessions) {
    t.expectFrame(*c, "Goodbye{shutdown}", [](Reader f) {
      return f.isGoodbye() && f.getGoodbye().getReason() == wire::GoodbyeReason::SHUTDOWN;
    });
    t.expectClose(*c);
  }
}

// Control.stop() is a shutdown like SIGTERM: Goodbye{shutdown}, a close, and the process ends by
// itself with status 0.
void goodbyeOnControlStop(Trial& t) {
  KJ_IF_MAYBE (c, t.establish()) {
    if (!t.stopTarget(true)) return;
    if (stopGoodbye(t, *c) == nullptr) return;
    if (!t.expectClose(*c)) return;
    KJ_IF_MAYBE (p, t.process()) {
      bool ended = p->waitExit(t.stepTimeout());
      t.check(ended && p->exitedCleanly(), "BYE-11", "the target exits with status 0 after stop()",
              p->status());
    }
  }
}

}  // namespace

void goodbyeCases(kj::Vector<CaseSpec>& out) {
  constexpr uint32_t stops = need::launch | need::stopsTarget;
  out.add(spec("bye/BYE-1/1", "BYE-1", Role::responder,
               "stopping before the handshake: close or Reject{shuttingDown}", leaveBeforeHandshake,
               stops | need::control));
  out.add(spec("bye/BYE-2/1", "BYE-2", Role::responder,
               "lastRequestId names no request the harness did not send", lastRequestIdBounded,
               stops));
  out.add(spec("bye/BYE-3/1", "BYE-3", Role::responder, "no request after its own Goodbye",
               noRequestsAfterOwnGoodbye, stops));
  out.add(spec("bye/BYE-4/1", "BYE-4", Role::responder,
               "requests up to lastRequestId are answered while draining", answersUpToLastRequestId,
               stops));
  out.add(spec("bye/BYE-5/1", "BYE-5", Role::responder,
               "a request above lastRequestId gets shuttingDown", shuttingDownAboveLast, stops));
  out.add(spec("bye/BYE-6/1", "BYE-6", Role::responder, "the Goodbye's sender closes cleanly",
               senderClosesCleanly, stops));
  both(out, "bye/BYE-7/1", "bye/BYE-7/2", "BYE-7", "no new request to a peer that said Goodbye",
       noNewRequestsAfterTheirGoodbye);
  both(out, "bye/BYE-8/1", "bye/BYE-8/2", "BYE-8",
       "requests above lastRequestId fail at once: no wait for the drain", failsAboveLastAtOnce,
       need::launch, shortDrain(4000));
  both(out, "bye/BYE-9/1", "bye/BYE-9/2", "BYE-9", "the receiver closes by the drain deadline",
       drainDeadline, need::launch, shortDrain(300));
  both(out, "bye/BYE-10/1", "bye/BYE-10/2", "BYE-10", "a second Goodbye is ignored",
       secondGoodbyeIgnored);
  both(out, "bye/BYE-12/1", "bye/BYE-12/2", "BYE-12",
       "the Goodbye's receiver answers every request before it closes",
       receiverAnswersBeforeClosing);
  out.add(spec("bye/BYE-11/1", "BYE-11", Role::responder, "Goodbye{shutdown} reaches every session",
               goodbyeToEveryone, stops));
  out.add(spec("bye/BYE-11/2", "BYE-11", Role::responder,
               "Control.stop(): Goodbye{shutdown}, a close, and a clean exit", goodbyeOnControlStop,
               stops | need::control));
}

}  // namespace shoal::conformance::cases

namespace shoal::conformance {
void goodbyeCases(kj::Vector<CaseSpec>& out) {
  cases::goodbyeCases(out);
}
}  // namespace shoal::conformance
