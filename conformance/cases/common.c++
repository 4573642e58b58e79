#include "common.h"

namespace shoal::conformance::cases {

void afterHandshakeExpectError(Trial& t, kj::ArrayPtr<const kj::byte> bytes, kj::StringPtr what,
                               Code code) {
  KJ_IF_MAYBE (c, t.establish()) {
    c->sendBytes(bytes, what);
    t.expectConnectionError(*c, code);
  }
}

void afterHandshakeExpectError(Trial& t, FrameBuilder frame, Code code) {
  KJ_IF_MAYBE (c, t.establish()) {
    c->send(kj::mv(frame));
    t.expectConnectionError(*c, code);
  }
}

kj::Maybe<PeerId> targetIdOn(Trial& t, Connection& c) {
  KJ_IF_MAYBE (facts, c.tls()) {
    return facts->peerId;
  }
  KJ_IF_MAYBE (h, c.theirs()) {
    return h->peerId;
  }
  return t.targetId();
}

bool expectRejectOrError(Trial& t, Connection& c, Code code) {
  auto what =
      kj::str("Reject{", codec::name(code), "} or Error{0, ", codec::name(code), "}, then close");
  KJ_IF_MAYBE (f, t.expectNext(c, what, [](Reader f) {
                 return f.isReject() || (f.isError() && f.getError().getId() == 0);
               })) {
    auto root = f->root();
    auto got = root.isReject() ? root.getReject().getCode() : root.getError().getCode();
    if (!t.check(got == code, t.spec().requirement, what,
                 kj::str(root.isReject() ? "Reject{" : "Error{0, ", codec::name(got), "}"))) {
      return false;
    }
    return t.expectClose(c);
  }
  return false;
}

}  // namespace shoal::conformance::cases
