// LibraryView: the sans-I/O view of one remote peer's library. Takes the pages of GetLibrary
// answers (validated frames), applies them per docs/protocol.md §6.5 and says what the session does
// next: wait for more pages, nothing (applied), resynchronise, or close for a protocol error.
#pragma once

#include <stdint.h>

#include <kj/array.h>
#include <kj/map.h>
#include <kj/string.h>
#include <kj/vector.h>
#include <shoal/codec/manifest.h>
#include <shoal/codec/summary.h>
#include <shoal/schema/shoal.capnp.h>

namespace shoal::peer::library {

enum class ViewOutcome : uint8_t {
  morePages,      // the answer continues; nothing to do yet
  applied,        // the last page arrived and the view now matches its summary
  resync,         // the answer could not apply, or its digest did not match: the view is gone,
                  // ask GetLibrary{0, 0} ([LIB-13], [LIB-14])
  protocolError,  // the pages broke [RQ-5]/[RQ-6]/[LIB-9]: Error{0, protocol} and close
};

kj::StringPtr name(ViewOutcome outcome);

struct ViewResult {
  ViewOutcome outcome;
  kj::String message;  // why, for resync and protocolError
};

// One GetLibrary answer is fed at a time (the session keeps at most one GetLibrary outstanding per
// peer); a page of another answer in the middle of one is a protocol error. Resync and applied
// are only ever reported at an answer's last page, so every answer ends in exactly one terminal
// outcome. Memory is bounded by `maxItems` (items held plus entries of the answer in progress).
class LibraryView {
 public:
  explicit LibraryView(size_t maxItems = 1000000);
  KJ_DISALLOW_COPY(LibraryView);

  ViewResult onSnapshotPage(wire::LibrarySnapshot::Reader page);
  ViewResult onDeltaPage(wire::LibraryDelta::Reader page);

  // The state held, once a snapshot has been applied (and while no resync discarded it).
  kj::Maybe<const codec::Summary&> summary() const { return held; }
  kj::ArrayPtr<const codec::ItemInfo> items() const { return heldItems; }  // ascending by itemId
  kj::Maybe<const codec::ItemInfo&> find(kj::StringPtr itemId) const;

  // What the next GetLibrary asks for: the held (epoch, rev), or {0, 0} when nothing is held.
  struct Since {
    uint64_t epoch = 0;
    uint64_t rev = 0;
  };
  Since request() const;

  // Forgets the view and any answer in progress (e.g. the peer restarted).
  void reset();
  bool midAnswer() const { return pending != nullptr; }

 private:
  struct Pending {
    bool isDelta = false;
    uint64_t id = 0;
    codec::Summary summary;
    uint64_t fromRev = 0;
    uint32_t nextPage = 0;
    size_t entries = 0;                 // received so far, against maxItems
    kj::Vector<codec::ItemInfo> items;  // snapshot: items so far
    // delta: the change of each id so far, null = removed; applied in page order ([LIB-10]).
    kj::TreeMap<kj::String, kj::Maybe<codec::ItemInfo>> changes;
    kj::Maybe<kj::String> cannotApply;  // a delta that will end in resync
  };

  kj::Maybe<ViewResult> startOrContinue(bool isDelta, uint64_t id, const codec::Summary& summary,
                                        uint64_t fromRev, uint32_t page, size_t entries);
  void applyDeltaPage(Pending& p, wire::LibraryDelta::Reader page);
  ViewResult finish(kj::Array<codec::ItemInfo> items, const codec::Summary& summary);
  ViewResult fail(ViewOutcome outcome, kj::String message);
  bool heldHas(kj::StringPtr itemId) const { return find(itemId) != nullptr; }
  kj::Array<codec::ItemInfo> mergedWith(
      kj::TreeMap<kj::String, kj::Maybe<codec::ItemInfo>>& changes);

  size_t maxItems;
  kj::Maybe<codec::Summary> held;
  kj::Array<codec::ItemInfo> heldItems;
  kj::Maybe<Pending> pending;
};

}  // namespace shoal::peer::library
