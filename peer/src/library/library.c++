#include <shoal/peer/library/library.h>

#include <algorithm>

#include <kj/debug.h>
#include <shoal/codec/frame.h>
#include <shoal/codec/manifest.h>
#include <shoal/mutant.h>

namespace shoal::peer::library {

namespace {

using ItemRef = kj::Own<const Item>;

kj::Maybe<const ItemRef&> lookup(kj::ArrayPtr<const ItemRef> sorted, kj::StringPtr itemId) {
  auto it =
      std::lower_bound(sorted.begin(), sorted.end(), itemId,
                       [](const ItemRef& item, kj::StringPtr id) { return item->itemId() < id; });
  if (it == sorted.end() || (*it)->itemId() != itemId) return nullptr;
  return *it;
}

codec::Digest digestOf(kj::ArrayPtr<const ItemRef> sorted) {
  codec::LibraryHasher hasher(uint32_t(sorted.size()));
  for (auto& item : sorted)
    hasher.add(item->info);
  return hasher.finish();
}

}  // namespace

Library::Library(uint64_t epoch, uint32_t historyRevs) : historyRevs(historyRevs) {
  KJ_REQUIRE(epoch != 0, "epoch 0 means nothing held on the wire");
  current.epoch = epoch;
}

bool Library::update(kj::Array<kj::Own<const Item>> items) {
  for (size_t i = 1; i < items.size(); ++i) {
    KJ_ASSERT(items[i - 1]->itemId() < items[i]->itemId(), "items not sorted by itemId",
              items[i]->itemId());
  }
  all = kj::mv(items);
  return publish();
}

bool Library::isDownloading(kj::StringPtr itemId) const {
  for (auto& id : downloading) {
    if (id == itemId) return true;
  }
  return false;
}

bool Library::setDownloading(kj::StringPtr itemId, bool on) {
  if (isDownloading(itemId) == on) return false;
  if (on) {
    downloading.add(kj::str(itemId));
  } else {
    kj::Vector<kj::String> rest;
    for (auto& id : downloading) {
      if (id != itemId) rest.add(kj::mv(id));
    }
    downloading = kj::mv(rest);
  }
  return isPublished() && publish();
}

kj::Maybe<kj::Own<const Item>> Library::find(kj::StringPtr itemId) const {
  KJ_IF_MAYBE (item, lookup(listed, itemId)) {
    return (*item)->addRef();
  }
  return nullptr;
}

// Lists `all` minus the downloading items and records what changed against the previous list.
bool Library::publish() {
  kj::Vector<ItemRef> next;
  for (auto& item : all) {
    if (!isDownloading(item->itemId())) next.add(item->addRef());
  }
  kj::Vector<Change> changes;
  size_t o = 0, n = 0;
  while (o < listed.size() || n < next.size()) {
    if (n == next.size() || (o < listed.size() && listed[o]->itemId() < next[n]->itemId())) {
      changes.add(Change{kj::str(listed[o++]->itemId()), true});  // removed
    } else if (o == listed.size() || next[n]->itemId() < listed[o]->itemId()) {
      changes.add(Change{kj::str(next[n++]->itemId()), false});  // added
    } else {
      if (listed[o]->info != next[n]->info) changes.add(Change{kj::str(next[n]->itemId()), true});
      ++o, ++n;
    }
  }
  bool first = current.rev == 0;
  listed = next.releaseAsArray();
  if (!first && changes.size() == 0) return false;

  current.rev += first || !isMutant(Mutant::revSkips) ? 1 : 2;
  current.digest = digestOf(listed);
  if (!first) {
    // Nobody can hold rev 0, so the first revision needs no history.
    history.add(Revision{current.rev, changes.releaseAsArray()});
    if (history.size() > historyRevs) {
      kj::Vector<Revision> kept;
      for (size_t i = history.size() - historyRevs; i < history.size(); ++i)
        kept.add(kj::mv(history[i]));
      history = kj::mv(kept);
    }
  }
  return true;
}

bool Library::canDelta(uint64_t sinceRev) const {
  if (sinceRev == 0 || sinceRev > current.rev) return false;
  if (sinceRev == current.rev) return true;
  return history.size() > 0 && history[0].rev <= sinceRev + 1;
}

LibraryAnswer Library::answer(uint64_t sinceEpoch, uint64_t sinceRev) const {
  KJ_ASSERT(isPublished(), "GetLibrary answered before the first scan was published");
  bool snapshot = isMutant(Mutant::snapshotWhenCurrent);
  if (sinceEpoch == current.epoch && canDelta(sinceRev) && !snapshot) return delta(sinceRev);
  return {LibraryAnswer::Kind::snapshot, current, 0, KJ_MAP(i, listed){return i->addRef();
}
, nullptr
};  // namespace shoal::peer::library
}

LibraryAnswer Library::delta(uint64_t sinceRev) const {
  // Whether each id changed in the window existed at sinceRev: its first change there says so.
  kj::HashMap<kj::StringPtr, bool> existedAtSince;
  for (auto& revision : history) {
    if (revision.rev <= sinceRev) continue;
    for (auto& change : revision.changes) {
      if (existedAtSince.find(change.itemId) == nullptr) {
        existedAtSince.insert(change.itemId, change.existedBefore);
      }
    }
  }
  kj::Vector<ItemRef> upserts;
  kj::Vector<kj::String> removals;
  for (auto& entry : existedAtSince) {
    KJ_IF_MAYBE (item, lookup(listed, entry.key)) {
      if (!isMutant(Mutant::deltaMissesUpserts)) upserts.add((*item)->addRef());
    } else if (entry.value) {
      removals.add(kj::str(entry.key));
    }
    // Neither: added and removed within the window, the requester never had it.
  }
  std::sort(upserts.begin(), upserts.end(),
            [](const ItemRef& a, const ItemRef& b) { return a->itemId() < b->itemId(); });
  std::sort(removals.begin(), removals.end());
  return {LibraryAnswer::Kind::delta, current, sinceRev, upserts.releaseAsArray(),
          removals.releaseAsArray()};
}

// ---------------------------------------------------------------------------------------------
// Paging

namespace {

using codec::kListTagBytes;
using codec::kPageMarginBytes;
using codec::newPage;
using Page = codec::FrameBuilder;

// Room every page leaves for at least one entry: an ItemEntry with the longest id (255 bytes) and
// name (256 bytes) takes about 600.
constexpr size_t kRoomForOneEntry = 1024;

// How many entries from `start` fit in `room` (reduced by what they take), given each entry's
// size and the list's own overhead.
template <typename SizeOf>
size_t pack(size_t start, size_t count, size_t& room, size_t listBytes, SizeOf&& sizeOf) {
  if (start == count || room < listBytes) return start;
  size_t left = room - listBytes, end = start;
  while (end < count && sizeOf(end) <= left)
    left -= sizeOf(end++);
  if (end > start) room = left;
  return end;
}

size_t budgetFor(capnp::MallocMessageBuilder& probe, uint32_t maxFrameBytes) {
  size_t header = codec::encodedSize(probe);
  KJ_REQUIRE(maxFrameBytes > header + kPageMarginBytes + kRoomForOneEntry,
             "maxFrameBytes too small", maxFrameBytes);
  return maxFrameBytes - header - kPageMarginBytes;
}

void checkSize(capnp::MessageBuilder& page, uint32_t maxFrameBytes) {
  KJ_ASSERT(codec::encodedSize(page) <= maxFrameBytes, "page estimate wrong",
            codec::encodedSize(page), maxFrameBytes);
}

wire::LibrarySnapshot::Builder snapshotHeader(capnp::MessageBuilder& m, uint64_t id,
                                              const LibraryAnswer& a, uint32_t page) {
  auto s = m.initRoot<wire::Frame>().initLibrarySnapshot();
  s.setId(id);
  a.summary.toWire(s.initSummary());
  s.setPage(page);
  return s;
}

wire::LibraryDelta::Builder deltaHeader(capnp::MessageBuilder& m, uint64_t id,
                                        const LibraryAnswer& a, uint32_t page) {
  auto d = m.initRoot<wire::Frame>().initLibraryDelta();
  d.setId(id);
  d.setFromRev(a.fromRev);
  a.summary.toWire(d.initSummary());
  d.setPage(page);
  return d;
}

kj::Array<Page> snapshotPages(uint64_t id, const LibraryAnswer& a, uint32_t maxFrameBytes) {
  capnp::MallocMessageBuilder probe;
  snapshotHeader(probe, id, a, UINT32_MAX);
  size_t budget = budgetFor(probe, maxFrameBytes);
  auto& items = a.items;
  auto sizeOf = [&](size_t i) {
    return codec::itemEntryBytes(items[i]->info);
  };
  kj::Vector<Page> pages;
  size_t next = 0;
  do {
    size_t room = budget;
    size_t end = pack(next, items.size(), room, kListTagBytes, sizeOf);
    KJ_REQUIRE(end > next || items.size() == 0, "maxFrameBytes too small for one item");
    auto page = newPage(maxFrameBytes - room);
    bool skip = isMutant(Mutant::pagingSkipsPage) && pages.size() > 0;
    auto s = snapshotHeader(*page, id, a, uint32_t(pages.size() + skip));
    s.setLast(end == items.size());
    auto list = s.initItems(kj::uint(end - next));
    for (size_t i = next; i < end; ++i)
      codec::fillItemEntry(list[kj::uint(i - next)], items[i]->info);
    checkSize(*page, maxFrameBytes);
    pages.add(kj::mv(page));
    next = end;
  } while (next < items.size());
  return pages.releaseAsArray();
}

kj::Array<Page> deltaPages(uint64_t id, const LibraryAnswer& a, uint32_t maxFrameBytes) {
  capnp::MallocMessageBuilder probe;
  deltaHeader(probe, id, a, UINT32_MAX);
  size_t budget = budgetFor(probe, maxFrameBytes);
  auto& ups = a.items;
  auto& rms = a.removals;
  auto upSize = [&](size_t i) {
    return codec::itemEntryBytes(ups[i]->info);
  };
  auto rmSize = [&](size_t i) {
    return codec::listTextBytes(rms[i].size());
  };
  kj::Vector<Page> pages;
  size_t nextUp = 0, nextRm = 0;
  do {
    size_t room = budget;
    size_t endUp = pack(nextUp, ups.size(), room, kListTagBytes, upSize);
    size_t endRm = endUp == ups.size() ? pack(nextRm, rms.size(), room, 0, rmSize) : nextRm;
    KJ_REQUIRE(endUp > nextUp || endRm > nextRm || (ups.size() == 0 && rms.size() == 0),
               "maxFrameBytes too small for one entry");
    auto page = newPage(maxFrameBytes - room);
    auto d = deltaHeader(*page, id, a, uint32_t(pages.size()));
    d.setLast(endUp == ups.size() && endRm == rms.size());
    auto upList = d.initUpserts(kj::uint(endUp - nextUp));
    for (size_t i = nextUp; i < endUp; ++i)
      codec::fillItemEntry(upList[kj::uint(i - nextUp)], ups[i]->info);
    auto rmList = d.initRemovals(kj::uint(endRm - nextRm));
    for (size_t i = nextRm; i < endRm; ++i)
      rmList.set(kj::uint(i - nextRm), rms[i]);
    checkSize(*page, maxFrameBytes);
    pages.add(kj::mv(page));
    nextUp = endUp;
    nextRm = endRm;
  } while (nextUp < ups.size() || nextRm < rms.size());
  return pages.releaseAsArray();
}

}  // namespace

kj::Array<codec::FrameBuilder> libraryPages(uint64_t requestId, const LibraryAnswer& answer,
                                            uint32_t maxFrameBytes) {
  return answer.kind == LibraryAnswer::Kind::snapshot
             ? snapshotPages(requestId, answer, maxFrameBytes)
             : deltaPages(requestId, answer, maxFrameBytes);
}

}  // namespace shoal::peer::library
