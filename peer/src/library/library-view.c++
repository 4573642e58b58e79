#include <shoal/peer/library/library-view.h>

#include <algorithm>

#include <kj/debug.h>
#include <shoal/mutant.h>

namespace shoal::peer::library {

kj::StringPtr name(ViewOutcome outcome) {
  switch (outcome) {
    case ViewOutcome::morePages: return "morePages";
    case ViewOutcome::applied: return "applied";
    case ViewOutcome::resync: return "resync";
    case ViewOutcome::protocolError: return "protocolError";
  }
  return "unknown";
}

namespace {

kj::StringPtr kindName(bool isDelta) {
  return isDelta ? "delta" : "snapshot";
}

ViewResult morePages() {
  return {ViewOutcome::morePages, kj::str()};
}

}  // namespace

LibraryView::LibraryView(size_t maxItems) : maxItems(maxItems) {}

kj::Maybe<const codec::ItemInfo&> LibraryView::find(kj::StringPtr itemId) const {
  auto it = std::lower_bound(
      heldItems.begin(), heldItems.end(), itemId,
      [](const codec::ItemInfo& item, kj::StringPtr id) { return item.itemId < id; });
  if (it == heldItems.end() || it->itemId != itemId) return nullptr;
  return *it;
}

LibraryView::Since LibraryView::request() const {
  KJ_IF_MAYBE (s, held) {
    return {s->epoch, s->rev};
  }
  return {};
}

void LibraryView::reset() {
  held = nullptr;
  heldItems = nullptr;
  pending = nullptr;
}

ViewResult LibraryView::fail(ViewOutcome outcome, kj::String message) {
  pending = nullptr;
  if (outcome == ViewOutcome::resync) {
    held = nullptr;
    heldItems = nullptr;
  }
  return {outcome, kj::mv(message)};
}

// Null when the page is the next one of the answer in progress, or page 0 of a new answer;
// else the protocol error it is ([RQ-5], [RQ-6]).
kj::Maybe<ViewResult> LibraryView::startOrContinue(bool isDelta, uint64_t id,
                                                   const codec::Summary& summary, uint64_t fromRev,
                                                   uint32_t page, size_t entries) {
  auto error = [this](kj::String message) {
    return fail(ViewOutcome::protocolError, kj::mv(message));
  };
  KJ_IF_MAYBE (p, pending) {
    if (p->isDelta != isDelta || p->id != id) {
      return error(kj::str(kindName(isDelta), " page of answer ", id, " in the middle of ",
                           kindName(p->isDelta), " answer ", p->id));
    }
    bool unchecked = isMutant(Mutant::pagesUnchecked);
    if ((p->summary != summary || p->fromRev != fromRev) && !unchecked) {
      return error(kj::str("page ", page, " changes the summary or fromRev of page 0"));
    }
    if (page != p->nextPage) {
      return error(kj::str("page ", page, " where page ", p->nextPage, " was due"));
    }
  } else {
    if (page != 0) return error(kj::str("answer ", id, " starts at page ", page));
    auto& fresh = pending.emplace();
    fresh.isDelta = isDelta;
    fresh.id = id;
    fresh.summary = summary;
    fresh.fromRev = fromRev;
  }
  auto& p = KJ_ASSERT_NONNULL(pending);
  ++p.nextPage;
  p.entries += entries;
  if (p.entries > maxItems) {
    return error(kj::str("answer larger than the local limit of ", maxItems, " entries"));
  }
  return nullptr;
}

ViewResult LibraryView::onSnapshotPage(wire::LibrarySnapshot::Reader page) {
  auto summary = codec::Summary::fromWire(page.getSummary());
  auto items = page.getItems();
  KJ_IF_MAYBE (error,
               startOrContinue(false, page.getId(), summary, 0, page.getPage(), items.size())) {
    return kj::mv(*error);
  }
  if (!page.getLast() && items.size() == 0) {
    return fail(ViewOutcome::protocolError, kj::str("empty snapshot page before the last"));
  }
  auto& p = KJ_ASSERT_NONNULL(pending);
  if (items.size() > 0 && p.items.size() > 0 && !(p.items.back().itemId < items[0].getItemId()) &&
      !isMutant(Mutant::pagesUnchecked)) {
    return fail(ViewOutcome::protocolError,
                kj::str("snapshot page ", page.getPage(),
                        " does not start after the previous page's last item"));
  }
  for (auto entry : items)
    p.items.add(codec::itemInfoOf(entry));
  if (isMutant(Mutant::viewShowsPartial)) heldItems = KJ_MAP(i, p.items) {
      return i.clone();
    };
  if (!page.getLast()) return morePages();
  // Only now does the snapshot replace the view ([LIB-12]).
  auto all = p.items.releaseAsArray();
  pending = nullptr;
  return finish(kj::mv(all), summary);
}

ViewResult LibraryView::onDeltaPage(wire::LibraryDelta::Reader page) {
  auto summary = codec::Summary::fromWire(page.getSummary());
  size_t entries = page.getUpserts().size() + page.getRemovals().size();
  KJ_IF_MAYBE (error, startOrContinue(true, page.getId(), summary, page.getFromRev(),
                                      page.getPage(), entries)) {
    return kj::mv(*error);
  }
  if (!page.getLast() && entries == 0) {
    return fail(ViewOutcome::protocolError, kj::str("empty delta page before the last"));
  }
  auto& p = KJ_ASSERT_NONNULL(pending);
  if (p.nextPage == 1) {
    // Page 0: does the delta start from the state we hold ([LIB-13])?
    KJ_IF_MAYBE (h, held) {
      if (h->epoch != summary.epoch) {
        p.cannotApply = kj::str("delta for epoch ", kj::hex(summary.epoch), ", view holds epoch ",
                                kj::hex(h->epoch));
      } else if (h->rev != p.fromRev) {
        p.cannotApply = kj::str("delta from rev ", p.fromRev, ", view holds rev ", h->rev);
      }
    } else {
      p.cannotApply = kj::str("delta while no view is held");
    }
  }
  if (p.cannotApply == nullptr) applyDeltaPage(p, page);
  if (!page.getLast()) return morePages();
  KJ_IF_MAYBE (why, p.cannotApply) {
    return fail(ViewOutcome::resync, kj::str("delta cannot apply: ", *why));
  }
  // Size first: merging moves the held items out, and a refused delta must leave them intact
  // (found by fuzz_library).
  size_t size = heldItems.size();
  for (auto& change : p.changes) {
    bool had = heldHas(change.key);
    if (change.value == nullptr) {
      size -= had;
    } else {
      size += !had;
    }
  }
  if (size > maxItems) {
    pending = nullptr;
    return fail(ViewOutcome::protocolError,
                kj::str("library larger than the local limit of ", maxItems, " items"));
  }
  auto merged = mergedWith(p.changes);
  pending = nullptr;
  return finish(kj::mv(merged), summary);
}

// Records one page's changes on top of the earlier pages' ([LIB-10]: pages apply in order).
void LibraryView::applyDeltaPage(Pending& p, wire::LibraryDelta::Reader page) {
  auto upserts = page.getUpserts();
  auto removals = page.getRemovals();
  for (auto id : removals) {
    // Both lists are strictly ascending (validate()), so a binary search finds a shared id.
    kj::uint lo = 0, hi = upserts.size();
    while (lo < hi) {
      kj::uint mid = lo + (hi - lo) / 2;
      if (upserts[mid].getItemId() < id) {
        lo = mid + 1;
      } else {
        hi = mid;
      }
    }
    bool lax = isMutant(Mutant::viewAppliesAnyDelta);
    if (lo < upserts.size() && upserts[lo].getItemId() == id && !lax) {
      p.cannotApply = kj::str("page ", page.getPage(), " names ", id, " in both lists");
      return;
    }
    bool present;
    KJ_IF_MAYBE (change, p.changes.find(id)) {
      present = *change != nullptr;
    } else {
      present = heldHas(id);
    }
    if (!present && !lax) {
      p.cannotApply = kj::str("removes ", id, ", which the view does not have");
      return;
    }
    p.changes.upsert(kj::str(id), nullptr,
                     [](kj::Maybe<codec::ItemInfo>& old, kj::Maybe<codec::ItemInfo>&& now) {
                       old = kj::mv(now);
                     });
  }
  for (auto entry : upserts) {
    p.changes.upsert(kj::str(entry.getItemId()), codec::itemInfoOf(entry),
                     [](kj::Maybe<codec::ItemInfo>& old, kj::Maybe<codec::ItemInfo>&& now) {
                       old = kj::mv(now);
                     });
  }
}

// The held items with `changes` applied, ascending. Takes from heldItems: whatever comes next
// replaces or discards them.
kj::Array<codec::ItemInfo> LibraryView::mergedWith(
    kj::TreeMap<kj::String, kj::Maybe<codec::ItemInfo>>& changes) {
  kj::Vector<codec::ItemInfo> out(heldItems.size() + changes.size());
  size_t h = 0;
  auto it = changes.begin();
  while (h < heldItems.size() || it != changes.end()) {
    if (it == changes.end() || (h < heldItems.size() && heldItems[h].itemId < it->key)) {
      out.add(kj::mv(heldItems[h++]));
      continue;
    }
    if (h < heldItems.size() && heldItems[h].itemId == it->key) ++h;  // replaced or removed
    KJ_IF_MAYBE (info, it->value) {
      out.add(kj::mv(*info));
    }
    ++it;
  }
  return out.releaseAsArray();
}

ViewResult LibraryView::finish(kj::Array<codec::ItemInfo> items, const codec::Summary& summary) {
  if (codec::libraryDigest(items) != summary.digest && !isMutant(Mutant::viewTrustsDigest)) {
    return fail(ViewOutcome::resync,
                kj::str("library digest mismatch at ", summary, ": view discarded"));
  }
  held = summary;
  heldItems = kj::mv(items);
  return {ViewOutcome::applied, kj::str()};
}

}  // namespace shoal::peer::library
