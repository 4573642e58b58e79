// Helpers the case files share: matchers, role-paired registration, and the common scripts
// ("send this after the handshake, expect Error{0, code} + close").
#pragma once

#include <shoal/codec/validate.h>
#include <shoal/conformance/case.h>

namespace shoal::conformance::cases {

using Code = wire::ErrorCode;
using Reader = wire::Frame::Reader;

inline CaseSpec spec(kj::StringPtr id, kj::StringPtr requirement, Role role, kj::StringPtr title,
                     void (*run)(Trial&), uint32_t needs = 0, Settings settings = {}) {
  CaseSpec s{id, requirement, role, title, run};
  s.needs = needs;
  s.settings = settings;
  return s;
}

// The same script with the target as responder (`responderId`) and as initiator (`initiatorId`).
inline void both(kj::Vector<CaseSpec>& out, kj::StringPtr responderId, kj::StringPtr initiatorId,
                 kj::StringPtr requirement, kj::StringPtr title, void (*run)(Trial&),
                 uint32_t needs = 0, Settings settings = {}) {
  out.add(spec(responderId, requirement, Role::responder, title, run, needs, settings));
  out.add(spec(initiatorId, requirement, Role::initiator, title, run, needs, settings));
}

inline CaseSpec withBadInputs(CaseSpec s, kj::StringPtr lines) {
  s.badInputs = lines;
  return s;
}

// After the handshake, send `bytes` and expect Error{0, code} then close.
void afterHandshakeExpectError(Trial& t, kj::ArrayPtr<const kj::byte> bytes, kj::StringPtr what,
                               Code code = Code::PROTOCOL);
void afterHandshakeExpectError(Trial& t, FrameBuilder frame, Code code = Code::PROTOCOL);

// The connection's TLS key id, or the id the target claimed in its Hello/HelloAck.
kj::Maybe<PeerId> targetIdOn(Trial& t, Connection& c);

// Reject{code} or Error{0, code}, then close ([HS-7]).
bool expectRejectOrError(Trial& t, Connection& c, Code code);

}  // namespace shoal::conformance::cases
