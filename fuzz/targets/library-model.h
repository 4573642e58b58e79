// The oracle of the `library` fuzz target (library.c++): a reference model of how a peer holds
// another's library (docs/protocol.md §5 and §6.5), written apart from library::LibraryView with
// std containers and the library digest recomputed from the spec's byte layout. Fed the same
// pages as the view, it predicts each page's outcome and the state held afterwards.
#pragma once

#include <shoal/codec/frame.h>
#include <shoal/peer/library/library-view.h>

#include <map>
#include <optional>
#include <string>
#include <vector>

namespace shoal::fuzz {

using Items = std::map<std::string, codec::ItemInfo>;  // std::string orders bytewise (unsigned)

std::string stdString(kj::StringPtr s);
// The library digest from docs/protocol.md §6.3, byte for byte.
codec::Digest specDigest(const Items& items);
Items cloneItems(const Items& items);

// One page as the view sees it, read from the validated frame.
struct PageData {
  bool isDelta = false;
  uint64_t id = 0;
  codec::Summary summary;
  uint64_t fromRev = 0;
  uint32_t page = 0;
  bool last = false;
  std::vector<codec::ItemInfo> items;  // snapshot items or delta upserts
  std::vector<std::string> removals;

  size_t entries() const { return items.size() + removals.size(); }
};
PageData pageOf(const codec::InboundFrame& frame);

// The state the model holds.
struct Held {
  codec::Summary summary;
  Items items;
  bool honest = false;  // produced by honest answers of the current Library
};

// The answer whose pages are arriving.
struct Pending {
  bool isDelta = false;
  uint64_t id = 0;
  codec::Summary summary;
  uint64_t fromRev = 0;
  uint32_t nextPage = 0;
  size_t entries = 0;
  bool honest = true;
  std::vector<codec::ItemInfo> snapshot;
  std::map<std::string, std::optional<codec::ItemInfo>> changes;  // nullopt: removed
  bool cannotApply = false;
};

class LibraryViewModel {
 public:
  explicit LibraryViewModel(size_t maxItems) : maxItems(maxItems) {}

  // The outcome of page `d`; `honest`: the Library of this run produced it.
  peer::library::ViewOutcome step(const PageData& d, bool honest);

  size_t maxItems;
  std::optional<Held> held;
  std::optional<Pending> pending;

 private:
  peer::library::ViewOutcome protocolError();
  peer::library::ViewOutcome finish(Items items, const codec::Summary& summary, bool honest);
  peer::library::ViewOutcome stepSnapshot(const PageData& d);
  peer::library::ViewOutcome stepDelta(const PageData& d);
  void collectChanges(const PageData& d);
};

}  // namespace shoal::fuzz
