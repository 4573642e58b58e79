// §9 Liveness: Ping/Pong, idle pings, the dead timeout, unmatched Pongs.
#include "common.h"

namespace shoal::conformance::cases {

namespace {

Settings fastTimers() {
  Settings s;
  s.idleMs = 200;
  s.deadMs = 700;
  return s;
}

void pongEchoesNonce(Trial& t) {
  KJ_IF_MAYBE (c, t.establish()) {
    c->send(codec::pingFrame(0x1234567890abcdefull));
    t.expectFrame(*c, "Pong with the same nonce", [](Reader f) {
      return f.isPong() && f.getPong().getNonce() == 0x1234567890abcdefull;
    });
  }
}

void pongDuringWork(Trial& t) {
  KJ_IF_MAYBE (c, t.establish()) {
    KJ_IF_MAYBE (m, fetchManifest(t, *c, "gamma")) {
      uint32_t index = KJ_ASSERT_NONNULL(m->fileIndex("data/level 1/map.bin"));
      for (int i = 0; i < 4; ++i)
        c->send(getChunkFrame(c->nextRequestId(), "gamma", m->digest, index, 0, m->chunkSize));
      t.expectAlive(*c, "LIV-2");
    }
  }
}

void idlePing(Trial& t) {
  KJ_IF_MAYBE (c, t.establish()) {
    c->deliver(Which::PING);
    t.expectFrame(*c, "a Ping after idleTimeout", [](Reader f) { return f.isPing(); });
  }
}

void anyFrameIsLife(Trial& t) {
  KJ_IF_MAYBE (c, t.establish()) {
    c->answerPings(false);
    c->deliver(Which::PING);
    for (int i = 0; i < 8; ++i) {
      c->send(codec::cancelFrame(100000 + i));  // unknown ids: ignored, but frames
      KJ_IF_MAYBE (e, c->next(150 * kj::MILLISECONDS).wait(t.io().waitScope)) {
        if (e->is<Closed>()) {
          t.fail("LIV-3", kj::str("the connection stays open while frames arrive"),
                 kj::str("closed after ", i * 150, " ms"));
          return;
        }
      }
    }
  }
}

void deadTimeoutCloses(Trial& t) {
  KJ_IF_MAYBE (c, t.establish()) {
    c->answerPings(false);
    c->deliver(Which::PING);
    for (;;) {
      auto e = c->next(t.stepTimeout()).wait(t.io().waitScope);
      KJ_IF_MAYBE (event, e) {
        if (event->is<Closed>()) return;
        continue;  // its Pings, unanswered
      }
      t.fail("LIV-4", kj::str("the target closes a silent connection after deadTimeout (700 ms)"),
             kj::str("still open"));
      return;
    }
  }
}

void onePingPerSilence(Trial& t) {
  KJ_IF_MAYBE (c, t.establish()) {
    c->answerPings(false);
    c->deliver(Which::PING);
    uint32_t pings = 0;
    for (;;) {
      auto e = c->next(t.stepTimeout()).wait(t.io().waitScope);
      KJ_IF_MAYBE (event, e) {
        if (event->is<Closed>()) break;
        ++pings;
        continue;
      }
      t.fail("LIV-4", kj::str("a close at deadTimeout"), kj::str("still open"));
      return;
    }
    t.check(pings <= 1, "LIV-7", "one Ping while the silence lasts", kj::str(pings, " Pings"));
  }
}

void unmatchedPong(Trial& t) {
  KJ_IF_MAYBE (c, t.establish()) {
    c->send(codec::pongFrame(424242));
    t.expectSilence(*c, t.quiet());
    t.expectAlive(*c);
  }
}

void pingDuringDrain(Trial& t) {
  KJ_IF_MAYBE (c, t.establish(requester())) {
    KJ_IF_MAYBE (get, targetGetLibrary(t, *c)) {
      uint64_t id = get->root().getGetLibrary().getId();
      c->send(codec::goodbyeFrame(wire::GoodbyeReason::IDLE, "draining", id));
      t.expectAlive(*c, "LIV-6");
      c->send(snapshotPage(id, emptySummary(), 0, true, nullptr));
      t.expectClose(*c, t.stepTimeout(), "BYE-9");
    }
  }
}

}  // namespace

void livenessCases(kj::Vector<CaseSpec>& out) {
  out.add(spec("liv/LIV-1/1", "LIV-1", Role::responder, "a Ping after idleTimeout", idlePing,
               need::launch, fastTimers()));
  both(out, "liv/LIV-2/1", "liv/LIV-2/2", "LIV-2", "Pong echoes the nonce", pongEchoesNonce);
  out.add(spec("liv/LIV-2/3", "LIV-2", Role::responder, "Pong while answers are in progress",
               pongDuringWork, need::launch));
  out.add(spec("liv/LIV-3/1", "LIV-3", Role::responder,
               "Cancel frames alone keep a session alive past deadTimeout", anyFrameIsLife,
               need::launch, fastTimers()));
  both(out, "liv/LIV-4/1", "liv/LIV-4/2", "LIV-4", "a silent connection is closed",
       deadTimeoutCloses, need::launch, fastTimers());
  out.add(spec("liv/LIV-7/1", "LIV-7", Role::responder, "one Ping per silence, then the close",
               onePingPerSilence, need::launch, [] {
                 Settings s;
                 s.idleMs = 200;
                 s.deadMs = 1500;
                 return s;
               }()));
  both(out, "liv/LIV-5/1", "liv/LIV-5/2", "LIV-5", "an unmatched Pong is ignored", unmatchedPong);
  both(out, "liv/LIV-6/1", "liv/LIV-6/2", "LIV-6", "Ping is answered during a Goodbye drain",
       pingDuringDrain);
}

}  // namespace shoal::conformance::cases

namespace shoal::conformance {
void livenessCases(kj::Vector<CaseSpec>& out) {
  cases::livenessCases(out);
}
}  // namespace shoal::conformance
