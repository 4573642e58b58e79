#include <shoal/conformance/source.h>

#include <string.h>

#include <kj/debug.h>
#include <shoal/codec/limits.h>
#include <shoal/codec/validate.h>

namespace shoal::conformance {

kj::Array<kj::byte> patternBytes(size_t size, uint64_t seed) {
  auto out = kj::heapArray<kj::byte>(size);
  uint64_t x = seed * 0x9e3779b97f4a7c15ull + 1;
  for (auto& b : out) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    b = kj::byte(x);
  }
  return out;
}

// --- ScriptedLibrary ---------------------------------------------------------------------------

ScriptedLibrary::ScriptedLibrary(uint64_t epoch, uint32_t chunkSize) : chunk(chunkSize) {
  current.epoch = epoch;
  current.rev = 0;
  publish();
}

void ScriptedLibrary::put(kj::StringPtr itemId, kj::Array<FileSpec> files) {
  kj::Vector<codec::FileInfo> infos;
  kj::Vector<codec::Digest> chunks;
  kj::Vector<kj::Array<kj::byte>> contents;
  for (auto& f : files) {
    infos.add(codec::FileInfo{kj::str(f.path), f.content.size(), f.mode});
    for (size_t at = 0; at < f.content.size(); at += chunk) {
      chunks.add(codec::sha256(f.content.slice(at, kj::min(f.content.size(), at + size_t(chunk)))));
    }
    contents.add(kj::mv(f.content));
  }
  auto manifest =
      codec::makeManifest(kj::str(itemId), chunk, infos.releaseAsArray(), chunks.releaseAsArray());
  live.upsert(kj::str(itemId), Item{kj::mv(manifest), contents.releaseAsArray()},
              [](Item& old, Item&& replacement) { old = kj::mv(replacement); });
}

void ScriptedLibrary::remove(kj::StringPtr itemId) {
  live.erase(itemId);
}

kj::Array<codec::ItemInfo> ScriptedLibrary::items() const {
  kj::Vector<codec::ItemInfo> out;
  for (auto& entry : live)
    out.add(codec::itemInfoOf(entry.value.manifest));
  return out.releaseAsArray();
}

void ScriptedLibrary::publish() {
  auto now = items();
  current.rev += 1;
  current.digest = codec::libraryDigest(now);
  history.add(kj::mv(now));
}

kj::Maybe<const codec::Manifest&> ScriptedLibrary::manifest(kj::StringPtr itemId) const {
  KJ_IF_MAYBE (item, live.find(itemId)) {
    return item->manifest;
  }
  return nullptr;
}

kj::Maybe<kj::ArrayPtr<const kj::byte>> ScriptedLibrary::content(kj::StringPtr itemId,
                                                                 uint32_t fileIndex) const {
  KJ_IF_MAYBE (item, live.find(itemId)) {
    if (fileIndex < item->contents.size()) return item->contents[fileIndex].asPtr();
  }
  return nullptr;
}

kj::Maybe<kj::ArrayPtr<const codec::ItemInfo>> ScriptedLibrary::itemsAt(uint64_t rev) const {
  if (rev == 0 || rev > history.size()) return nullptr;
  return history[rev - 1].asPtr();
}

// --- LibrarySource -----------------------------------------------------------------------------

LibrarySource::LibrarySource(const ScriptedLibrary& library, Behaviour behaviour)
    : lib(library), how(behaviour) {}

namespace {
codec::Digest forgedDigest() {
  return codec::sha256("a manifest nobody has"_kj.asBytes());
}
}  // namespace

kj::Array<codec::ItemInfo> LibrarySource::listed() const {
  auto items = lib.items();
  if (how.forgedManifestDigest) {
    for (auto& item : items)
      item.manifestDigest = forgedDigest();
  }
  return items;
}

codec::Summary LibrarySource::announced() const {
  auto s = lib.summary();
  if (how.forgedManifestDigest) s.digest = codec::libraryDigest(listed());
  if (how.wrongLibraryDigest) s.digest = codec::sha256("not this library"_kj.asBytes());
  return s;
}

void LibrarySource::onRequest(Connection& connection, const codec::InboundFrame& request) {
  ++received;
  uint32_t maxFrame = codec::kMinFrameBytes;
  KJ_IF_MAYBE (theirs, connection.theirs()) {
    maxFrame = kj::max(theirs->maxFrameBytes, codec::kMinFrameBytes);
  }
  auto root = request.root();
  auto frames = answerTo(root, maxFrame);
  if (root.isGetChunk()) {
    auto get = root.getGetChunk();
    bool repeat = false;
    for (auto& ask : asks) {
      repeat = repeat || (ask.itemId == get.getItemId() && ask.fileIndex == get.getFileIndex() &&
                          ask.offset == get.getOffset());
    }
    asks.add(ChunkAsk{get.getId(), kj::str(get.getItemId()), get.getFileIndex(), get.getOffset(),
                      get.getLength()});
    bool hold = how.holdRepeats && repeat;
    KJ_IF_MAYBE (after, how.holdChunksAfter) {
      hold = hold || chunkAnswers >= *after;
    }
    if (hold) {
      connection.note(EntryKind::step, kj::str("the source holds its answer to ", get.getId()));
      held.add(Held{get.getId(), kj::mv(frames)});
      return;
    }
    ++chunkAnswers;
    if (how.reversePairs) return answerInPairs(connection, get.getId(), kj::mv(frames));
  }
  sendLater(connection, kj::mv(frames));
}

kj::Array<uint64_t> LibrarySource::heldIds() const {
  return KJ_MAP(h, held) {
    return h.id;
  };
}

void LibrarySource::releaseHeld(Connection& connection) {
  auto out = kj::mv(held);
  for (auto& h : out) {
    for (auto& f : h.answer)
      connection.send(kj::mv(f));
  }
}

kj::Array<uint64_t> LibrarySource::takeHeld() {
  auto ids = heldIds();
  held.clear();
  return ids;
}

void LibrarySource::answerInPairs(Connection& connection, uint64_t id,
                                  kj::Array<FrameBuilder> frames) {
  KJ_IF_MAYBE (first, pairFirst) {
    connection.note(EntryKind::step, kj::str("the source answers ", id, " before ", first->id));
    ++reorders;
    auto earlier = kj::mv(first->answer);
    pairFirst = nullptr;
    sendLater(connection, kj::mv(frames));
    sendLater(connection, kj::mv(earlier));
    return;
  }
  pairFirst = Held{id, kj::mv(frames)};
  auto& c = connection;
  c.tasks().add(c.timer().afterDelay(how.pairWait).then([this, &c, id]() {
    KJ_IF_MAYBE (waiting, pairFirst) {
      if (waiting->id != id || c.closed()) return;
      auto alone = kj::mv(waiting->answer);
      pairFirst = nullptr;
      sendLater(c, kj::mv(alone));
    }
  }));
}

void LibrarySource::sendLater(Connection& connection, kj::Array<FrameBuilder> frames) {
  bool vanish = false;
  KJ_IF_MAYBE (limit, how.vanishAfter) {
    vanish = answers >= *limit;
  }
  ++answers;
  auto& c = connection;
  kj::Promise<void> wait = how.delay > 0 * kj::SECONDS ? c.timer().afterDelay(how.delay)
                                                       : kj::Promise<void>(kj::READY_NOW);
  c.tasks().add(wait.then([&c, frames = kj::mv(frames), vanish]() mutable {
    if (c.closed()) return;
    if (vanish) {
      c.note(EntryKind::step, kj::str("the source vanishes"));
      c.reset();
      return;
    }
    for (auto& f : frames)
      c.send(kj::mv(f), true);
  }));
}

kj::Array<FrameBuilder> LibrarySource::answerTo(wire::Frame::Reader request,
                                                uint32_t requesterMaxFrameBytes) {
  switch (request.which()) {
    case Which::GET_LIBRARY:
      return library(request.getGetLibrary().getId(), request.getGetLibrary(),
                     requesterMaxFrameBytes);
    case Which::GET_MANIFEST:
      return manifest(request.getGetManifest().getId(), request.getGetManifest().getItemId(),
                      requesterMaxFrameBytes);
    case Which::GET_CHUNK: return chunk(request.getGetChunk(), requesterMaxFrameBytes);
    default: return nullptr;
  }
}

namespace {

// Cuts `entries` into pages of at most `perPage` entries and at most `budget` bytes each.
template <typename Size>
kj::Vector<size_t> pageBreaks(size_t count, uint32_t perPage, size_t budget, Size sizeOf) {
  kj::Vector<size_t> breaks;  // start index of every page after the first
  size_t bytes = 0, inPage = 0;
  for (size_t i = 0; i < count; ++i) {
    size_t s = sizeOf(i);
    if (inPage > 0 && (inPage == perPage || bytes + s > budget)) {
      breaks.add(i);
      bytes = 0;
      inPage = 0;
    }
    bytes += s;
    ++inPage;
  }
  return breaks;
}

constexpr size_t kPageOverhead = 512;  // a page's fields besides its entries

}  // namespace

kj::Array<FrameBuilder> LibrarySource::library(uint64_t id, wire::GetLibrary::Reader get,
                                               uint32_t maxFrame) {
  auto now = listed();
  auto summary = announced();
  size_t budget = maxFrame - kPageOverhead;
  kj::Vector<FrameBuilder> pages;
  KJ_IF_MAYBE (old, get.getSinceEpoch() == summary.epoch && get.getSinceRev() <= summary.rev
                        ? lib.itemsAt(get.getSinceRev())
                        : nullptr) {
    // A delta: upserts for new or changed items, removals for items gone.
    kj::Vector<codec::ItemInfo> upserts;
    kj::Vector<kj::StringPtr> removals;
    size_t i = 0, j = 0;
    while (i < old->size() || j < now.size()) {
      int order = i == old->size()                   ? 1
                  : j == now.size()                  ? -1
                  : (*old)[i].itemId < now[j].itemId ? -1
                  : now[j].itemId < (*old)[i].itemId ? 1
                                                     : 0;
      if (order < 0) {
        removals.add((*old)[i++].itemId);
      } else if (order > 0) {
        upserts.add(now[j++].clone());
      } else {
        if ((*old)[i] != now[j]) upserts.add(now[j].clone());
        ++i;
        ++j;
      }
    }
    // Upserts first, then removals, each on their own pages.
    auto upBreaks = pageBreaks(upserts.size(), how.pageItems, budget,
                               [&](size_t k) { return codec::itemEntryBytes(upserts[k]); });
    auto rmBreaks = pageBreaks(removals.size(), how.pageItems, budget,
                               [&](size_t k) { return codec::listTextBytes(removals[k].size()); });
    upBreaks.add(upserts.size());
    rmBreaks.add(removals.size());
    uint32_t page = 0;
    auto addPage = [&](kj::ArrayPtr<const codec::ItemInfo> ups,
                       kj::ArrayPtr<const kj::StringPtr> rms) {
      auto frame = codec::newFrame();
      auto d = codec::rootOf(*frame).initLibraryDelta();
      d.setId(id);
      d.setFromRev(get.getSinceRev());
      summary.toWire(d.initSummary());
      d.setPage(page++);
      auto u = d.initUpserts(ups.size());
      for (auto k : kj::indices(ups))
        codec::fillItemEntry(u[k], ups[k]);
      auto r = d.initRemovals(rms.size());
      for (auto k : kj::indices(rms))
        r.set(k, rms[k]);
      pages.add(kj::mv(frame));
    };
    size_t at = 0;
    for (auto end : upBreaks) {
      if (end > at) addPage(upserts.asPtr().slice(at, end), nullptr);
      at = end;
    }
    at = 0;
    for (auto end : rmBreaks) {
      if (end > at) addPage(nullptr, removals.asPtr().slice(at, end));
      at = end;
    }
    if (pages.empty()) addPage(nullptr, nullptr);
    codec::rootOf(*pages.back()).getLibraryDelta().setLast(true);
    return pages.releaseAsArray();
  }
  auto breaks = pageBreaks(now.size(), how.pageItems, budget,
                           [&](size_t k) { return codec::itemEntryBytes(now[k]); });
  breaks.add(now.size());
  size_t at = 0;
  for (auto end : breaks) {
    auto frame = codec::newFrame();
    auto s = codec::rootOf(*frame).initLibrarySnapshot();
    s.setId(id);
    summary.toWire(s.initSummary());
    s.setPage(uint32_t(pages.size()));
    s.setLast(end == now.size());
    auto list = s.initItems(end - at);
    for (size_t k = at; k < end; ++k)
      codec::fillItemEntry(list[k - at], now[k]);
    pages.add(kj::mv(frame));
    at = end;
  }
  return pages.releaseAsArray();
}

kj::Array<FrameBuilder> LibrarySource::manifest(uint64_t id, kj::StringPtr itemId,
                                                uint32_t maxFrame) {
  KJ_IF_MAYBE (m, lib.manifest(itemId)) {
    auto pages = codec::manifestPages(id, *m, maxFrame);
    if (how.wrongManifestDigest || how.forgedManifestDigest) {
      auto other = how.forgedManifestDigest ? forgedDigest()
                                            : codec::sha256("another manifest"_kj.asBytes());
      for (auto& p : pages)
        codec::rootOf(*p).getManifest().setDigest(other.asBytes());
    }
    return pages;
  }
  return kj::arr(codec::errorFrame(id, wire::ErrorCode::NOT_FOUND, "no such item"));
}

kj::Array<FrameBuilder> LibrarySource::chunk(wire::GetChunk::Reader get, uint32_t maxFrame) {
  uint64_t id = get.getId();
  KJ_IF_MAYBE (m, lib.manifest(get.getItemId())) {
    if (get.getManifestDigest() != m->digest.asBytes()) {
      return kj::arr(codec::errorFrame(id, wire::ErrorCode::STALE, "not the current manifest"));
    }
    KJ_IF_MAYBE (content, lib.content(get.getItemId(), get.getFileIndex())) {
      uint64_t offset = get.getOffset(), length = get.getLength();
      if (offset > content->size() || length > content->size() - offset) {
        return kj::arr(codec::errorFrame(id, wire::ErrorCode::RANGE, "past the end of the file"));
      }
      if (length + codec::kFrameOverheadBytes > maxFrame) {
        return kj::arr(codec::errorFrame(id, wire::ErrorCode::TOO_LARGE, "above your frame limit"));
      }
      auto data = kj::heapArray<kj::byte>(length + (how.extraByte ? 1 : 0));
      memcpy(data.begin(), content->begin() + offset, length);
      if (how.extraByte)
        data[length] = offset + length < content->size() ? (*content)[offset + length] : 0;
      if (how.corruptChunks && data.size() > 0) data[0] ^= 0x01;
      return kj::arr(chunkFrame(id, data));
    }
  }
  return kj::arr(codec::errorFrame(id, wire::ErrorCode::NOT_FOUND, "no such item or file"));
}

}  // namespace shoal::conformance
