// PeerTable: the established sessions by peer id. Two rules keep it right under races: duplicates
// collapse by [HS-17]/[HS-18], and an entry is removed only when the writer of the connection it
// holds ends (generation check) — so a stale connection never removes its reconnected successor.
#pragma once

#include <kj/async.h>
#include <kj/map.h>
#include <kj/vector.h>
#include <shoal/peer/runtime/duplicates.h>

namespace shoal::peer {

class PeerTable {
 public:
  struct Slot {
    uint64_t generation;  // which connection holds the entry
    SessionFacts facts;
    bool leaving = false;  // Goodbye received: no new requests, no new downloads
    bool lostReported = false;
  };

  enum class Admitted : uint8_t {
    added,     // no entry before
    replaced,  // the incoming session won; `loser` is the old generation
    refused,   // the existing session won; `loser` is the incoming generation
  };
  struct Admission {
    Admitted admitted;
    uint64_t loser = 0;
  };

  explicit PeerTable(PeerId local) : local(local) {}

  // An established session: apply the duplicate rule.
  Admission admit(const PeerId& peer, uint64_t generation, SessionFacts facts);

  // The writer of connection `generation` ended. Removes the entry only if that connection still
  // holds it; returns whether it did.
  bool writerEnded(const PeerId& peer, uint64_t generation);

  // Goodbye received on connection `generation`: mark the peer gone at once (if that connection
  // holds the entry). Returns whether it did.
  bool markLeaving(const PeerId& peer, uint64_t generation);

  kj::Maybe<const Slot&> find(const PeerId& peer) const;
  kj::Maybe<Slot&> find(const PeerId& peer);
  bool holds(const PeerId& peer, uint64_t generation) const;
  // Established and not leaving.
  bool isAvailable(const PeerId& peer) const;
  size_t size() const { return slots.size(); }

  // Resolves when `peer` has no entry (now, or once it is removed).
  kj::Promise<void> whenGone(const PeerId& peer);

  template <typename Func>
  void forEach(Func&& func) const {
    for (auto& entry : slots)
      func(entry.key, entry.value);
  }

 private:
  PeerId local;
  kj::TreeMap<PeerId, Slot> slots;
  kj::TreeMap<PeerId, kj::Vector<kj::Own<kj::PromiseFulfiller<void>>>> goneWaiters;
};

}  // namespace shoal::peer
