#include <shoal/peer/discovery/candidates.h>

#include <kj/debug.h>
#include <shoal/mutant.h>

namespace shoal::peer::discovery {

kj::StringPtr name(FoundBy by) {
  switch (by) {
    case FoundBy::beacon: return "beacon";
    case FoundBy::mdns: return "mdns";
  }
  KJ_UNREACHABLE;
}

PeerCandidates::PeerCandidates(const PeerId& self, const CandidatesConfig& config)
    : self(self), config(config) {
  KJ_REQUIRE(config.maxCandidates > 0 && config.redialMin > 0 * kj::SECONDS,
             "discovery candidate limits must allow something");
}

kj::TimePoint PeerCandidates::firstDial(const PeerId& id, kj::TimePoint now) const {
  // [HS-17] keeps the session whose initiator has the lower id: let that side open it.
  return self < id ? now : now + config.yieldDelay;
}

bool PeerCandidates::wantsDial(const PeerId& id, const Candidate& c) const {
  if (c.dialling != nullptr || c.awaitSighting) return false;
  KJ_IF_MAYBE (instance, up.find(id)) {
    return c.instanceId != 0 && *instance != c.instanceId;  // stale: the peer restarted
  }
  return true;
}

void PeerCandidates::maybeDial(const PeerId& id, Candidate& c, kj::TimePoint now) {
  if (!wantsDial(id, c) || now < c.notBefore) return;
  auto ticket = nextTicket++;
  c.dialling = ticket;
  actions.add(action::Dial{ticket, id, kj::str(c.address), c.by});
}

bool PeerCandidates::makeRoom() {
  kj::Maybe<const PeerId&> oldest;
  kj::TimePoint oldestHeard = kj::maxValue;
  for (auto& entry : candidates) {
    if (entry.value.dialling == nullptr && entry.value.lastHeard < oldestHeard) {
      oldest = entry.key;
      oldestHeard = entry.value.lastHeard;
    }
  }
  KJ_IF_MAYBE (id, oldest) {
    forget(PeerId(*id));
    return true;
  }
  return false;
}

void PeerCandidates::forget(const PeerId& id) {
  events.add(event::Expired{id});
  candidates.erase(id);
}

void PeerCandidates::heard(Sighting s, kj::TimePoint now) {
  auto id = s.claimedId;
  // mDNS lists our own service too.
  if (id == self && !isMutant(Mutant::dialsOwnAnnounce)) return;
  KJ_IF_MAYBE (known, candidates.find(id)) {
    if (s.instanceId != 0 && known->instanceId != 0 && s.instanceId != known->instanceId) {
      events.add(event::Restarted{id, known->instanceId, s.instanceId});
      known->failures = 0;
      known->notBefore = firstDial(id, now);
    }
  } else {
    if (candidates.size() >= config.maxCandidates && !makeRoom()) return;
    candidates.insert(id,
                      Candidate(s.by, now, kj::str(s.address), s.instanceId, firstDial(id, now)));
    events.add(event::Found{id, s.by, kj::str(s.address)});
  }
  auto& c = KJ_ASSERT_NONNULL(candidates.find(id));
  c.lastHeard = now;
  c.address = kj::mv(s.address);
  if (s.instanceId != 0) c.instanceId = s.instanceId;
  c.awaitSighting = false;
  if (s.by == FoundBy::beacon) {
    c.beaconUntil = now + config.expireAfter;
  } else {
    c.mdns = true;
  }
  maybeDial(id, c, now);
}

void PeerCandidates::withdrawn(FoundBy by, const PeerId& claimedId, kj::TimePoint now) {
  (void)now;
  KJ_IF_MAYBE (c, candidates.find(claimedId)) {
    if (by == FoundBy::mdns) c->mdns = false;
    if (!c->mdns && c->beaconUntil == nullptr) forget(claimedId);
  }
}

void PeerCandidates::peerUp(const PeerId& id, uint64_t instanceId, kj::TimePoint now) {
  (void)now;
  up.upsert(id, instanceId, [](uint64_t& held, uint64_t&& fresh) { held = fresh; });
  KJ_IF_MAYBE (c, candidates.find(id)) {
    // Whichever way it came about, the session is what a dial was for: the dial is over.
    c->failures = 0;
    c->dialling = nullptr;
  }
}

void PeerCandidates::peerDown(const PeerId& id, kj::TimePoint now) {
  (void)now;
  up.erase(id);
  KJ_IF_MAYBE (c, candidates.find(id)) {
    c->awaitSighting = true;
  }
}

void PeerCandidates::dialEnded(const PeerId& claimedId, uint64_t ticket, DialOutcome outcome,
                               kj::TimePoint now) {
  KJ_IF_MAYBE (c, candidates.find(claimedId)) {  // null: forgotten while dialling
    // The mutant believes the Announce: the session the dial opened is taken as the claimed peer's.
    if (outcome == DialOutcome::otherPeer && isMutant(Mutant::trustsAnnouncedId)) {
      up.upsert(claimedId, c->instanceId, [](uint64_t& held, uint64_t&& fresh) { held = fresh; });
      outcome = DialOutcome::established;
    }
    if (outcome == DialOutcome::established) {
      c->failures = 0;
      if (c->dialling == ticket) c->dialling = nullptr;
      return;
    }
    // A failure of an older dial says nothing about the one in progress.
    if (c->dialling != ticket) return;
    c->dialling = nullptr;
    auto wait = config.redialMin;
    for (uint32_t i = 0; i < c->failures && wait < config.redialMax; ++i)
      wait = wait * 2;
    ++c->failures;
    c->notBefore = now + kj::min(wait, config.redialMax);
  }
}

void PeerCandidates::tick(kj::TimePoint now) {
  kj::Vector<PeerId> gone;
  for (auto& entry : candidates) {
    auto& c = entry.value;
    KJ_IF_MAYBE (until, c.beaconUntil) {
      if (*until <= now) c.beaconUntil = nullptr;
    }
    if (c.beaconUntil == nullptr && !c.mdns) {
      gone.add(entry.key);
    } else {
      maybeDial(entry.key, c, now);
    }
  }
  for (auto& id : gone)
    forget(id);
}

kj::Maybe<kj::TimePoint> PeerCandidates::nextDeadline() const {
  kj::Maybe<kj::TimePoint> next;
  auto consider = [&](kj::TimePoint at) {
    KJ_IF_MAYBE (n, next) {
      if (at < *n) next = at;
    } else {
      next = at;
    }
  };
  for (auto& entry : candidates) {
    KJ_IF_MAYBE (until, entry.value.beaconUntil) {
      consider(*until);
    }
    if (wantsDial(entry.key, entry.value)) consider(entry.value.notBefore);
  }
  return next;
}

kj::Maybe<PeerCandidates::Origin> PeerCandidates::origin(const PeerId& id) const {
  KJ_IF_MAYBE (c, candidates.find(id)) {
    return Origin{c->by, c->since};
  }
  return nullptr;
}

bool PeerCandidates::isDialling(const PeerId& id) const {
  KJ_IF_MAYBE (c, candidates.find(id)) {
    return c->dialling != nullptr;
  }
  return false;
}

}  // namespace shoal::peer::discovery
