#include "targets/library-model.h"

namespace shoal::fuzz {

using codec::Digest;
using codec::ItemInfo;
using codec::Summary;
using peer::library::ViewOutcome;

namespace {

void putU32(std::vector<uint8_t>& b, uint32_t v) {
  for (int i = 0; i < 4; ++i)
    b.push_back(uint8_t(v >> (8 * i)));
}
void putU64(std::vector<uint8_t>& b, uint64_t v) {
  for (int i = 0; i < 8; ++i)
    b.push_back(uint8_t(v >> (8 * i)));
}
void putText(std::vector<uint8_t>& b, kj::StringPtr s) {
  putU32(b, uint32_t(s.size()));
  b.insert(b.end(), s.begin(), s.end());
}

}  // namespace

std::string stdString(kj::StringPtr s) {
  return std::string(s.begin(), s.size());
}

Digest specDigest(const Items& items) {
  static const char tag[] = "shoal-library-v1";
  std::vector<uint8_t> b(tag, tag + sizeof(tag));  // the NUL included
  putU32(b, uint32_t(items.size()));
  for (auto& [id, item] : items) {
    putText(b, item.itemId);
    putText(b, item.name);
    putU64(b, item.size);
    putU32(b, item.fileCount);
    b.insert(b.end(), item.manifestDigest.bytes, item.manifestDigest.bytes + codec::kDigestBytes);
  }
  return codec::sha256(kj::arrayPtr(b.data(), b.size()));
}

Items cloneItems(const Items& items) {
  Items out;
  for (auto& [id, item] : items)
    out.emplace(id, item.clone());
  return out;
}

PageData pageOf(const codec::InboundFrame& frame) {
  PageData d;
  auto root = frame.root();
  if (root.isLibrarySnapshot()) {
    auto s = root.getLibrarySnapshot();
    d.id = s.getId();
    d.summary = Summary::fromWire(s.getSummary());
    d.page = s.getPage();
    d.last = s.getLast();
    for (auto e : s.getItems())
      d.items.push_back(codec::itemInfoOf(e));
  } else {
    auto s = root.getLibraryDelta();
    d.isDelta = true;
    d.id = s.getId();
    d.summary = Summary::fromWire(s.getSummary());
    d.fromRev = s.getFromRev();
    d.page = s.getPage();
    d.last = s.getLast();
    for (auto e : s.getUpserts())
      d.items.push_back(codec::itemInfoOf(e));
    for (auto r : s.getRemovals())
      d.removals.push_back(std::string(r.begin(), r.size()));
  }
  return d;
}

ViewOutcome LibraryViewModel::protocolError() {
  pending.reset();  // the held state stays as it was
  return ViewOutcome::protocolError;
}

ViewOutcome LibraryViewModel::finish(Items items, const Summary& summary, bool honest) {
  if (specDigest(items) != summary.digest) {  // [LIB-14]
    held.reset();
    return ViewOutcome::resync;
  }
  held = Held{summary, std::move(items), honest};
  return ViewOutcome::applied;
}

ViewOutcome LibraryViewModel::step(const PageData& d, bool honest) {
  if (pending) {  // [RQ-5], [RQ-6]: the next page of the same answer, shared fields unchanged
    if (pending->isDelta != d.isDelta || pending->id != d.id) return protocolError();
    if (pending->summary != d.summary || pending->fromRev != d.fromRev) return protocolError();
    if (d.page != pending->nextPage) return protocolError();
  } else {
    if (d.page != 0) return protocolError();
    pending.emplace();
    pending->isDelta = d.isDelta;
    pending->id = d.id;
    pending->summary = d.summary;
    pending->fromRev = d.fromRev;
  }
  auto& p = *pending;
  p.honest = p.honest && honest;
  ++p.nextPage;
  p.entries += d.entries();
  if (p.entries > maxItems) return protocolError();         // the local bound
  if (!d.last && d.entries() == 0) return protocolError();  // [RQ-5]
  return d.isDelta ? stepDelta(d) : stepSnapshot(d);
}

ViewOutcome LibraryViewModel::stepSnapshot(const PageData& d) {
  auto& p = *pending;
  // [LIB-9]: ascending across pages (within a page, validation saw to it).
  if (!d.items.empty() && !p.snapshot.empty() &&
      !(stdString(p.snapshot.back().itemId) < stdString(d.items.front().itemId))) {
    return protocolError();
  }
  for (auto& item : d.items)
    p.snapshot.push_back(item.clone());
  if (!d.last) return ViewOutcome::morePages;
  Items all;
  for (auto& item : p.snapshot)
    all.emplace(stdString(item.itemId), item.clone());
  bool h = p.honest;
  Summary s = p.summary;
  pending.reset();
  return finish(std::move(all), s, h);  // [LIB-12]: only now
}

ViewOutcome LibraryViewModel::stepDelta(const PageData& d) {
  auto& p = *pending;
  if (p.nextPage == 1) {  // [LIB-13]: does it start from the state held?
    p.cannotApply =
        !held || held->summary.epoch != d.summary.epoch || held->summary.rev != d.fromRev;
  }
  if (!p.cannotApply) collectChanges(d);
  if (!d.last) return ViewOutcome::morePages;
  if (p.cannotApply) {
    pending.reset();
    held.reset();
    return ViewOutcome::resync;
  }
  Items merged = cloneItems(held->items);
  for (auto& [id, change] : p.changes) {
    if (change) {
      merged.insert_or_assign(id, change->clone());
    } else {
      merged.erase(id);
    }
  }
  bool h = p.honest && held->honest;
  Summary s = p.summary;
  pending.reset();
  if (merged.size() > maxItems) return protocolError();
  return finish(std::move(merged), s, h);
}

// The page's removals and upserts over what the answer changed so far; a removal of what the
// view does not have at that point, or of an id the page also upserts, makes it unappliable.
void LibraryViewModel::collectChanges(const PageData& d) {
  auto& p = *pending;
  for (auto& r : d.removals) {
    bool inUpserts = false;
    for (auto& u : d.items)
      inUpserts = inUpserts || stdString(u.itemId) == r;
    if (inUpserts) {
      p.cannotApply = true;  // one page names it in both lists
      return;
    }
    auto c = p.changes.find(r);
    bool present = c != p.changes.end() ? c->second.has_value() : held->items.count(r) > 0;
    if (!present) {
      p.cannotApply = true;  // removes what the view does not have at that point
      return;
    }
    p.changes[r] = std::nullopt;
  }
  for (auto& u : d.items)
    p.changes[stdString(u.itemId)] = u.clone();
}

}  // namespace shoal::fuzz
