#include <shoal/peer/runtime/peer-table.h>

namespace shoal::peer {

PeerTable::Admission PeerTable::admit(const PeerId& peer, uint64_t generation, SessionFacts facts) {
  KJ_IF_MAYBE (existing, slots.find(peer)) {
    if (resolveDuplicate(local, peer, existing->facts, facts) == Keep::existing) {
      return {Admitted::refused, generation};
    }
    uint64_t old = existing->generation;
    *existing = Slot{generation, facts};
    return {Admitted::replaced, old};
  }
  slots.insert(peer, Slot{generation, facts});
  return {Admitted::added};
}

bool PeerTable::writerEnded(const PeerId& peer, uint64_t generation) {
  if (!holds(peer, generation)) return false;
  slots.erase(peer);
  KJ_IF_MAYBE (waiters, goneWaiters.find(peer)) {
    for (auto& w : *waiters)
      w->fulfill();
    goneWaiters.erase(peer);
  }
  return true;
}

bool PeerTable::markLeaving(const PeerId& peer, uint64_t generation) {
  KJ_IF_MAYBE (slot, slots.find(peer)) {
    if (slot->generation != generation) return false;
    slot->leaving = true;
    return true;
  }
  return false;
}

kj::Maybe<const PeerTable::Slot&> PeerTable::find(const PeerId& peer) const {
  return slots.find(peer);
}

kj::Maybe<PeerTable::Slot&> PeerTable::find(const PeerId& peer) {
  return slots.find(peer);
}

bool PeerTable::holds(const PeerId& peer, uint64_t generation) const {
  KJ_IF_MAYBE (slot, slots.find(peer)) {
    return slot->generation == generation;
  }
  return false;
}

bool PeerTable::isAvailable(const PeerId& peer) const {
  KJ_IF_MAYBE (slot, slots.find(peer)) {
    return !slot->leaving;
  }
  return false;
}

kj::Promise<void> PeerTable::whenGone(const PeerId& peer) {
  if (slots.find(peer) == nullptr) return kj::READY_NOW;
  auto paf = kj::newPromiseAndFulfiller<void>();
  goneWaiters
      .findOrCreate(peer,
                    [&]() {
                      return decltype(goneWaiters)::Entry{
                          peer, kj::Vector<kj::Own<kj::PromiseFulfiller<void>>>()};
                    })
      .add(kj::mv(paf.fulfiller));
  return kj::mv(paf.promise);
}

}  // namespace shoal::peer
