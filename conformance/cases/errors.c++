// §11 Errors: codes used as Table 5 lists them, Error{0} ends the session, codes not messages.
#include "common.h"

#include <shoal/codec/manifest.h>

namespace shoal::conformance::cases {

namespace {

void requestCodes(Trial& t) {
  KJ_IF_MAYBE (c, t.establish()) {
    // notFound, stale and range answers: the monitor checks each code against Table 5.
    t.request(*c, getManifestFrame(c->nextRequestId(), "missing"));
    KJ_IF_MAYBE (m, fetchManifest(t, *c, "alpha")) {
      t.request(
          *c, getChunkFrame(c->nextRequestId(), "alpha", codec::sha256("x"_kj.asBytes()), 0, 0, 1));
      t.request(*c, getChunkFrame(c->nextRequestId(), "alpha", m->digest, 0, 4, 5));
    }
    t.expectAlive(*c);
  }
}

void nothingAfterError0(Trial& t) {
  KJ_IF_MAYBE (c, t.establish()) {
    c->sendBytes(unionOnlyFrame(200), "an unknown member");
    KJ_IF_MAYBE (f, t.expectFrame(*c, "Error{0, protocol}", [](Reader f) {
                   return f.isError() && f.getError().getId() == 0;
                 })) {
      (void)f;
      t.expectClose(*c);  // strict: any other frame first fails
    }
  }
}

void error0EndsSession(Trial& t, uint16_t code) {
  KJ_IF_MAYBE (c, t.establish()) {
    auto frame = codec::errorFrame(0, Code::PROTOCOL, "the harness ends this session");
    codec::rootOf(*frame).getError().setCode(static_cast<Code>(code));
    c->send(kj::mv(frame));
    t.expectClose(*c);
  }
}
void error0Protocol(Trial& t) {
  error0EndsSession(t, uint16_t(Code::PROTOCOL));
}
void error0Internal(Trial& t) {
  error0EndsSession(t, uint16_t(Code::INTERNAL));
}
void error0Unknown(Trial& t) {
  error0EndsSession(t, 99);
}

void codeNotMessage(Trial& t) {
  KJ_IF_MAYBE (c, t.establish(requester())) {
    KJ_IF_MAYBE (get, targetGetLibrary(t, *c)) {
      c->send(codec::errorFrame(get->root().getGetLibrary().getId(), Code::INTERNAL,
                                "protocol error: this connection is closing now"));
      t.expectAlive(*c, "ERR-4");
    }
  }
}

void unknownCodeIsInternal(Trial& t) {
  KJ_IF_MAYBE (c, t.establish(requester())) {
    KJ_IF_MAYBE (get, targetGetLibrary(t, *c)) {
      auto frame =
          codec::errorFrame(get->root().getGetLibrary().getId(), Code::INTERNAL, "new code");
      codec::rootOf(*frame).getError().setCode(static_cast<Code>(77));
      c->send(kj::mv(frame));
      t.expectAlive(*c, "FR-17");
    }
  }
}

void unknownGoodbyeReason(Trial& t) {
  KJ_IF_MAYBE (c, t.establish()) {
    auto frame = codec::goodbyeFrame(wire::GoodbyeReason::OTHER, "a newer reason", 0);
    codec::rootOf(*frame).getGoodbye().setReason(static_cast<wire::GoodbyeReason>(55));
    c->send(kj::mv(frame));
    // Read as `other`: a normal drain ending in a close, not a protocol error.
    t.expectClose(*c, t.stepTimeout(), "FR-17");
  }
}

void retryAfter(Trial& t) {
  KJ_IF_MAYBE (c, t.establish(requester())) {
    KJ_IF_MAYBE (get, targetGetLibrary(t, *c)) {
      c->send(codec::errorFrame(get->root().getGetLibrary().getId(), Code::BUSY, "later", 800));
      auto sent = t.timer().now();
      KJ_IF_MAYBE (e, c->next(2 * kj::SECONDS).wait(t.io().waitScope)) {
        KJ_IF_MAYBE (f, e->tryGet<FrameEvent>()) {
          if (f->frame.root().isGetLibrary()) {
            auto waited = (t.timer().now() - sent) / kj::MILLISECONDS;
            // 20 ms of slack: both sides' timers tick in event-loop turns.
            t.check(waited + 20 >= 800, "ERR-5", "no retry before retryAfterMs (800 ms)",
                    kj::str("retried after ", waited, " ms"));
          }
        }
      }
    }
  }
}

void cleanCloseAfterProtocolError(Trial& t) {
  KJ_IF_MAYBE (c, t.establish()) {
    c->sendBytes(unionOnlyFrame(300), "an unknown member");
    if (!t.expectConnectionError(*c, Code::PROTOCOL, "FR-13")) return;
    KJ_IF_MAYBE (closed, c->closeEvent()) {
      t.check(closed->clean(c->isTls()), "ERR-6", "a clean close", closed->describe(c->isTls()));
    }
  }
}

}  // namespace

void errorCases(kj::Vector<CaseSpec>& out) {
  both(out, "err/ERR-1/1", "err/ERR-1/2", "ERR-1", "request errors use Table 5's codes",
       requestCodes, need::launch);
  both(out, "err/ERR-2/1", "err/ERR-2/2", "ERR-2", "nothing after Error{0} but the close",
       nothingAfterError0);
  both(out, "err/ERR-3/1", "err/ERR-3/2", "ERR-3", "Error{0, protocol} ends the session",
       error0Protocol);
  both(out, "err/ERR-3/3", "err/ERR-3/4", "ERR-3", "Error{0, internal} ends the session",
       error0Internal);
  both(out, "err/ERR-3/5", "err/ERR-3/6", "ERR-3", "Error{0, unknown code} ends the session",
       error0Unknown);
  both(out, "err/ERR-4/1", "err/ERR-4/2", "ERR-4", "a frightening message does not end a session",
       codeNotMessage);
  both(out, "fr/FR-17/1", "fr/FR-17/2", "FR-17", "an unknown Error.code is read as internal",
       unknownCodeIsInternal);
  both(out, "fr/FR-17/3", "fr/FR-17/4", "FR-17", "an unknown Goodbye.reason is read as other",
       unknownGoodbyeReason);
  both(out, "err/ERR-5/1", "err/ERR-5/2", "ERR-5", "busy with retryAfterMs: no early retry",
       retryAfter);
  both(out, "err/ERR-6/1", "err/ERR-6/2", "ERR-6", "a protocol error ends in a clean close",
       cleanCloseAfterProtocolError);
}

}  // namespace shoal::conformance::cases

namespace shoal::conformance {
void errorCases(kj::Vector<CaseSpec>& out) {
  cases::errorCases(out);
}
}  // namespace shoal::conformance
