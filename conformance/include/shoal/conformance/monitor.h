// Always-on checks of what the target sends on one connection, whatever the case is about: frame
// sizes, the handshake order, error codes, request ids, one terminal answer per request, paging,
// nothing after Error{0} or Reject. A case that provokes one rule thereby checks all of these too;
// each violation names the requirement it breaks.
#pragma once

#include <kj/map.h>
#include <kj/string.h>
#include <kj/vector.h>
#include <shoal/codec/digest.h>
#include <shoal/codec/frame.h>

namespace shoal::conformance {

enum class Role : uint8_t { responder, initiator };  // the target's role on a connection
kj::StringPtr name(Role role);

struct Violation {
  kj::StringPtr requirement;  // "RQ-4"
  kj::String message;
};

class Monitor {
 public:
  Monitor(Role targetRole, uint32_t ourMaxFrameBytes);

  // A frame the harness sent with Connection::send() (not raw bytes).
  void onSent(wire::Frame::Reader frame);
  // A frame from the target; `tlsId` is the key it proved in TLS, if any.
  kj::Maybe<Violation> onReceived(const codec::InboundFrame& frame, kj::Maybe<codec::Digest> tlsId);

  bool established() const { return handshakeDone; }
  bool targetSentGoodbye() const { return goodbyeFromTarget; }
  // Our requests still waiting for a terminal answer.
  size_t outstanding() const { return ours.size(); }
  uint64_t highestTargetRequest() const { return targetMaxRequest; }

 private:
  using Which = wire::Frame::Which;
  struct Ours {
    Which kind;
    uint32_t nextPage = 0;
    kj::Maybe<Which> answerKind;
  };
  kj::Maybe<Violation> handshakeOrder(const codec::InboundFrame& frame,
                                      kj::Maybe<codec::Digest> tlsId);
  kj::Maybe<Violation> answer(wire::Frame::Reader frame);
  kj::Maybe<Violation> errorCode(wire::Frame::Reader frame);

  Role role;
  uint32_t ourMaxFrameBytes;
  bool handshakeDone = false;
  bool helloSeen = false;      // target initiator: its Hello arrived
  bool endedByTarget = false;  // it sent Error{0} or Reject
  kj::StringPtr endedBy;
  bool goodbyeFromTarget = false;
  uint64_t ourMaxRequest = 0;
  uint64_t targetMaxRequest = 0;
  kj::HashMap<uint64_t, Ours> ours;
  kj::HashMap<uint64_t, Which> finished;  // answered requests, to tell "late" from "never sent"
};

}  // namespace shoal::conformance
