// The reference peer's published library: the current item set, its summary (epoch, rev, digest),
// the change history of the last revisions, and the answers to GetLibrary — a snapshot or a delta —
// cut into pages that fit the requester's frame limit (docs/protocol.md §6).
#pragma once

#include <stdint.h>

#include <capnp/message.h>
#include <kj/array.h>
#include <kj/map.h>
#include <kj/vector.h>
#include <shoal/codec/frames.h>
#include <shoal/codec/summary.h>
#include <shoal/peer/library/item.h>

namespace shoal::peer::library {

// The answer to one GetLibrary, before paging.
struct LibraryAnswer {
  enum class Kind : uint8_t { snapshot, delta };
  Kind kind;
  codec::Summary summary;
  uint64_t fromRev = 0;                  // delta: the requester's sinceRev
  kj::Array<kj::Own<const Item>> items;  // snapshot: every item; delta: the upserts. Ascending.
  kj::Array<kj::String> removals;        // delta: ids present at fromRev and gone now. Ascending.
};

// Event-loop state, not thread-safe. Items are shared (kj::Own<const Item>) with whoever serves
// them, so an update never invalidates a file being served from the previous set.
class Library {
 public:
  // `historyRevs`: how many revisions back a delta can reach (a requester at rev - historyRevs
  // still gets one).
  explicit Library(uint64_t epoch, uint32_t historyRevs = 64);
  KJ_DISALLOW_COPY(Library);

  // Replaces the item set (sorted strictly ascending by itemId, as a scan yields it). Publishes a
  // new revision only if the listed items differ by ItemInfo; the first update publishes rev 1
  // even when empty. Items with equal info still replace the old ones (fresher file stats).
  // Returns whether a new revision was published.
  bool update(kj::Array<kj::Own<const Item>> items);

  // An item being downloaded into the library is not listed and not found ([LIB-4], [MAN-3]).
  // Returns whether a new revision was published.
  bool setDownloading(kj::StringPtr itemId, bool on);
  bool isDownloading(kj::StringPtr itemId) const;

  // rev 0 until the first update().
  const codec::Summary& summary() const { return current; }
  bool isPublished() const { return current.rev > 0; }

  // A listed item (not one being downloaded).
  kj::Maybe<kj::Own<const Item>> find(kj::StringPtr itemId) const;
  kj::ArrayPtr<const kj::Own<const Item>> items() const { return listed; }

  // The answer to GetLibrary{sinceEpoch, sinceRev} ([LIB-8]). Only once published.
  LibraryAnswer answer(uint64_t sinceEpoch, uint64_t sinceRev) const;

 private:
  struct Change {
    kj::String itemId;
    bool existedBefore;  // listed at the revision before this one
  };
  struct Revision {
    uint64_t rev;
    kj::Array<Change> changes;
  };

  bool publish();
  bool canDelta(uint64_t sinceRev) const;
  LibraryAnswer delta(uint64_t sinceRev) const;

  uint32_t historyRevs;
  codec::Summary current;
  kj::Array<kj::Own<const Item>> all;     // the last update()
  kj::Array<kj::Own<const Item>> listed;  // all minus downloading
  kj::Vector<kj::String> downloading;
  kj::Vector<Revision> history;  // ascending by rev, contiguous, ending at current.rev
};

// The frames answering GetLibrary{requestId}: pages from 0, the last with last = true, each at
// most `maxFrameBytes` on the wire and carrying at least one entry unless it is the only page.
// Snapshot items ascend across pages; delta upserts come first, then removals, each ascending.
kj::Array<codec::FrameBuilder> libraryPages(uint64_t requestId, const LibraryAnswer& answer,
                                            uint32_t maxFrameBytes);

}  // namespace shoal::peer::library
