// Helpers the case files share: matchers, role-paired registration, and the common scripts
// ("send this after the handshake, expect Error{0, code} + close").
#pragma once

#include <shoal/codec/validate.h>
#include <shoal/conformance/case.h>
#include <shoal/peer/transport/identity.h>

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

// Open options for a case that plays the target's library source itself.
inline Trial::Open requester(kj::Maybe<Announce> announce = nullptr) {
  Trial::Open o;
  o.announce = kj::mv(announce);
  o.requestsToCase = true;
  return o;
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

namespace shoal::conformance::cases {

// A source whose answers a case writes itself; counts the requests it saw.
class ScriptSource final : public Source {
 public:
  explicit ScriptSource(
      kj::Function<void(Connection&, const codec::InboundFrame&, uint32_t)> answer)
      : answer(kj::mv(answer)) {}
  void onRequest(Connection& c, const codec::InboundFrame& request) override {
    answer(c, request, seen++);
  }
  uint32_t seen = 0;

 private:
  kj::Function<void(Connection&, const codec::InboundFrame&, uint32_t)> answer;
};

// A snapshot page of `items` (all with empty manifests) for the harness's own library.
FrameBuilder snapshotPage(uint64_t id, const codec::Summary& summary, uint32_t page, bool last,
                          kj::ArrayPtr<const kj::StringPtr> items);
// The summary of a library holding exactly `items` (empty manifests), at `epoch`/`rev`.
codec::Summary summaryOf(kj::ArrayPtr<const kj::StringPtr> items, uint64_t epoch, uint64_t rev);
codec::ItemInfo emptyItem(kj::StringPtr id);

// The target's own GetLibrary on `c`, delivered to the case instead of the background source.
kj::Maybe<codec::InboundFrame> targetGetLibrary(Trial& t, Connection& c);

// Assembles the Manifest answer to GetManifest{itemId}; null after a failure.
kj::Maybe<codec::Manifest> fetchManifest(Trial& t, Connection& c, kj::StringPtr itemId);
// The target's item list (every snapshot page).
kj::Maybe<kj::Array<codec::ItemInfo>> fetchItems(Trial& t, Connection& c);

}  // namespace shoal::conformance::cases
