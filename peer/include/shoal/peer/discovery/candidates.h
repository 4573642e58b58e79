// PeerCandidates: the peers discovery has heard of, and when to dial them. Sightings come in from
// the beacon and from mDNS; established sessions come in from the runtime (peerUp/peerDown, with
// ids proven by TLS); out go Dial actions and Found / Restarted / Expired events. An announced id
// is a claim, never an identity ([DSC-8]): it only names the candidate, and a dial is over only
// when the runtime reports how it ended. Sans-I/O: `now` in, actions out, virtual-time tests.
//
// The rules (docs/protocol.md [DSC-11]..[DSC-13]):
// - a candidate not heard from for `expireAfter` is forgotten; an established session is not
//   affected (liveness governs it);
// - no dial while a session with that id and instance is up, or while a dial is in progress (a
//   dial counts as in progress until its session is up or the attempt has failed);
// - of two peers that hear each other, the one with the lower id dials at once and the other
//   waits `yieldDelay` first, so the session [HS-17] keeps is usually the only one opened;
// - a new instanceId means the peer restarted: the held session is stale, dial now (HS-18 then
//   replaces it);
// - after a failed dial, wait `redialMin`, doubling to `redialMax`; after a session ended, wait
//   for a fresh sighting (a peer that said Goodbye is not dialled until it announces again).
#pragma once

#include <kj/map.h>
#include <kj/one-of.h>
#include <kj/string.h>
#include <kj/time.h>
#include <kj/vector.h>
#include <shoal/peer/transport/identity.h>

namespace shoal::peer::discovery {

enum class FoundBy : uint8_t { beacon, mdns };
kj::StringPtr name(FoundBy by);

struct CandidatesConfig {
  kj::Duration expireAfter = 18 * kj::SECONDS;  // 3 announce intervals at their longest (5 s + 1 s)
  kj::Duration yieldDelay = 1 * kj::SECONDS;
  kj::Duration redialMin = 1 * kj::SECONDS;
  kj::Duration redialMax = 60 * kj::SECONDS;
  uint32_t maxCandidates = 256;
};

// One sighting of a peer: an Announce, or an mDNS service resolved.
struct Sighting {
  FoundBy by;
  PeerId claimedId;
  uint64_t instanceId;  // 0: not told (mDNS without the key)
  kj::String address;   // "host:port" to dial: the datagram's source and the announced port
};

namespace action {
struct Dial {
  uint64_t ticket;  // names this dial in dialEnded()
  PeerId claimedId;
  kj::String address;
  FoundBy by;
};
}  // namespace action
using CandidateAction = kj::OneOf<action::Dial>;

namespace event {
struct Found {
  PeerId claimedId;
  FoundBy by;
  kj::String address;
};
struct Restarted {
  PeerId claimedId;
  uint64_t oldInstance;
  uint64_t newInstance;
};
struct Expired {
  PeerId claimedId;
};
}  // namespace event
using CandidateEvent = kj::OneOf<event::Found, event::Restarted, event::Expired>;

enum class DialOutcome : uint8_t {
  established,  // a session with the claimed id (TLS-proven) was established (it may have ended)
  otherPeer,    // a session was established, but TLS proved another id: the claim was false
  failed,       // unreachable, refused or timed out
};

class PeerCandidates {
 public:
  // How a peer id was found and since when, for `shoal peers`.
  struct Origin {
    FoundBy by;
    kj::TimePoint since;
  };

  PeerCandidates(const PeerId& self, const CandidatesConfig& config);
  KJ_DISALLOW_COPY(PeerCandidates);

  void heard(Sighting sighting, kj::TimePoint now);
  // mDNS withdrew the service (the beacon has no such message: its candidates expire).
  void withdrawn(FoundBy by, const PeerId& claimedId, kj::TimePoint now);

  void peerUp(const PeerId& id, uint64_t instanceId, kj::TimePoint now);
  void peerDown(const PeerId& id, kj::TimePoint now);
  // The connection of Dial `ticket` is over: it failed, or its session was established (and
  // has ended since, or not).
  void dialEnded(const PeerId& claimedId, uint64_t ticket, DialOutcome outcome, kj::TimePoint now);

  void tick(kj::TimePoint now);
  // When tick() has work: an expiry or a deferred dial. Null: nothing until the next input.
  kj::Maybe<kj::TimePoint> nextDeadline() const;

  kj::Vector<CandidateAction> takeActions() { return kj::mv(actions); }
  kj::Vector<CandidateEvent> takeEvents() { return kj::mv(events); }

  kj::Maybe<Origin> origin(const PeerId& id) const;
  size_t size() const { return candidates.size(); }
  bool isDialling(const PeerId& id) const;

 private:
  struct Candidate {
    Candidate(FoundBy by, kj::TimePoint now, kj::String address, uint64_t instanceId,
              kj::TimePoint firstDial)
        : by(by),
          since(now),
          lastHeard(now),
          address(kj::mv(address)),
          instanceId(instanceId),
          notBefore(firstDial) {}

    FoundBy by;  // how it was first found
    kj::TimePoint since;
    kj::TimePoint lastHeard;
    kj::String address;
    uint64_t instanceId = 0;
    kj::Maybe<kj::TimePoint> beaconUntil;  // when the beacon sighting expires
    bool mdns = false;                     // listed by mDNS until withdrawn
    kj::Maybe<uint64_t> dialling;          // the ticket of the dial in progress
    bool awaitSighting = false;            // a session ended: dial only after the next sighting
    uint32_t failures = 0;
    kj::TimePoint notBefore;
  };

  bool wantsDial(const PeerId& id, const Candidate& c) const;
  void maybeDial(const PeerId& id, Candidate& c, kj::TimePoint now);
  kj::TimePoint firstDial(const PeerId& id, kj::TimePoint now) const;
  bool makeRoom();
  void forget(const PeerId& id);

  PeerId self;
  CandidatesConfig config;
  kj::TreeMap<PeerId, Candidate> candidates;
  kj::TreeMap<PeerId, uint64_t> up;  // established sessions: proven id -> instance
  uint64_t nextTicket = 1;
  kj::Vector<CandidateAction> actions;
  kj::Vector<CandidateEvent> events;
};

}  // namespace shoal::peer::discovery
