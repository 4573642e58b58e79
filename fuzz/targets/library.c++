// Target `library`: random sequences of LibrarySnapshot and LibraryDelta answers into one
// library::LibraryView (small maxItems), each frame encoded and passed through decodeFrame first
// (a frame that fails validation is skipped and ends the session: the view starts over). Answers
// are either honest — a real library::Library evolving under input-chosen updates, paged with
// libraryPages at an input-chosen maxFrameBytes, sometimes asked from a skewed (epoch, rev) or fed
// with a page dropped, repeated, swapped, cut short or interleaved — or forged from input bytes:
// ids from a 16-entry alphabet (so they collide), names, sizes, digests, removals, page numbers,
// last flags, shared fields, correct or corrupted summary digests, invalid fields.
//
// Input (at most 4096 bytes; reads past the end give 0): byte 0 picks maxItems {3, 8, 16, 2000}
// (bits 0-1) and how many revisions the library keeps for deltas (1 + bits 2-4); then ops until
// the input ends, each one byte (op = byte & 7, param = byte >> 3) plus its own bytes:
//   0 update: 1 + param % 4 bytes, each one id (bits 0-3), version (bits 4-5), removed (bit 6)
//   1 downloading: one byte, id (bits 0-3), on (bit 4)
//   2 honest GetLibrary from view.request(): one byte, maxFrameBytes (1400 + 20 * b, or 64 KiB,
//     or 16 MiB)
//   3 honest GetLibrary, skewed or mangled: maxFrameBytes, mode (bits 0-2: the request asked;
//     bits 3-5: drop, repeat, swap, cut short or interleave a page), param (which page)
//   4 forged snapshot, 5 forged delta: see forged()
//   6 restart the library (new epoch)   7 reset the view (a new session)
//
// Oracle: a reference model (library-model.h) written from docs/protocol.md §5 and §6.5 (std
// containers, the library digest recomputed from the spec's byte layout) predicts every page's
// outcome and the state held.
// Invariants (KJ_ASSERT): the view's outcome is the model's; whenever a summary is held (always
// after `applied`), the items are strictly ascending, libraryDigest(items) equals the summary's
// digest and the items are the model's; honest answers to view.request() always end in `applied`
// and reproduce the Library's items and summary exactly (unless the view's local maxItems is
// exceeded, which is a protocol error); a delta that cannot apply ends in `resync` (never
// `applied`) and request() then asks for {0, 0}; every answer ends in exactly one terminal outcome
// at its last page and none before; protocolError leaves the held state as it was; the view never
// holds more than maxItems items.
#include <kj/debug.h>
#include <shoal/codec/frame.h>
#include <shoal/peer/library/library-view.h>
#include <shoal/peer/library/library.h>

#include "targets/fuzz-input.h"
#include "targets/library-model.h"

#include <algorithm>
#include <string>
#include <vector>

using namespace shoal;
using namespace shoal::peer::library;
using codec::Digest;
using codec::ItemInfo;
using codec::Summary;
using fuzz::Input;
using fuzz::Items;
using fuzz::stdString;

namespace {

// --- the alphabet ------------------------------------------------------------------------------

constexpr size_t kIds = 16;
constexpr size_t kVersions = 4;

struct Alphabet {
  std::string ids[kIds];  // ascending bytewise
  kj::Own<const Item> items[kIds][kVersions];

  Alphabet() {
    std::vector<std::string> v = {"a",
                                  "b",
                                  "c",
                                  "A",
                                  "B",
                                  "a b",
                                  "a-b",
                                  "ab",
                                  "\xc3\xa9",
                                  "\xe6\x97\xa5\xe6\x9c\xac",
                                  ".hidden",
                                  "x.y",
                                  "zz",
                                  "a.",
                                  "L" + std::string(200, 'x'),
                                  std::string(255, 'M')};
    std::sort(v.begin(), v.end());
    for (size_t i = 0; i < kIds; ++i) {
      ids[i] = v[i];
      for (size_t ver = 0; ver < kVersions; ++ver)
        items[i][ver] = makeItem(ids[i], ver);
    }
  }

  // Version 0: no files; else one file of 1000 * version bytes (one chunk).
  static kj::Own<const Item> makeItem(const std::string& id, uint64_t version) {
    kj::Vector<codec::FileInfo> files;
    kj::Vector<Digest> chunks;
    if (version > 0) {
      files.add(codec::FileInfo{kj::str("data.bin"), 1000 * version, 0644});
      chunks.add(codec::sha256(kj::str(id.c_str(), '/', version).asBytes()));
    }
    size_t n = files.size();
    return newItem(codec::makeManifest(kj::str(id.c_str()), 4096, files.releaseAsArray(),
                                       chunks.releaseAsArray()),
                   kj::heapArray<FileStat>(n));
  }
};

const Alphabet& alphabet() {
  static const Alphabet a;
  return a;
}

// --- the harness -------------------------------------------------------------------------------

struct Harness {
  explicit Harness(size_t maxItems, uint32_t historyRevs)
      : maxItems(maxItems), historyRevs(historyRevs), view(maxItems), model(maxItems) {
    restartLibrary();
  }

  size_t maxItems;
  uint32_t historyRevs;
  LibraryView view;
  fuzz::LibraryViewModel model;
  kj::Own<Library> library;
  uint64_t nextEpoch = 0x5EED000000000001ull;
  uint64_t nextRequestId = 1;
  uint8_t versions[kIds] = {};  // the library's item set: 0 = absent, else version + 1

  void restartLibrary() {
    library = kj::heap<Library>(nextEpoch++, historyRevs);
    if (model.held) model.held->honest = false;  // honest for a Library that is gone
    publishItems();
  }

  void publishItems() {
    kj::Vector<kj::Own<const Item>> items;
    for (size_t i = 0; i < kIds; ++i) {
      if (versions[i] != 0) items.add(alphabet().items[i][versions[i] - 1]->addRef());
    }
    library->update(items.releaseAsArray());
  }

  void sessionClosed() {
    view.reset();
    model.held.reset();
    model.pending.reset();
  }

  void checkHeld() {
    KJ_ASSERT(view.midAnswer() == model.pending.has_value());
    KJ_ASSERT(view.items().size() <= maxItems, view.items().size(), maxItems);
    auto since = view.request();
    KJ_IF_MAYBE (summary, view.summary()) {
      KJ_ASSERT(model.held.has_value(), "the view holds a state the model does not");
      KJ_ASSERT(*summary == model.held->summary, *summary, model.held->summary);
      KJ_ASSERT(since.epoch == summary->epoch && since.rev == summary->rev);
      auto items = view.items();
      for (size_t i = 1; i < items.size(); ++i)
        KJ_ASSERT(items[i - 1].itemId < items[i].itemId, "held items not strictly ascending", i);
      KJ_ASSERT(codec::libraryDigest(items) == summary->digest,
                "held items do not hash to the held summary", *summary);
      KJ_ASSERT(items.size() == model.held->items.size(), items.size(), model.held->items.size());
      size_t i = 0;
      for (auto& [id, item] : model.held->items) {
        KJ_ASSERT(items[i] == item, "held item differs from the model's", id);
        ++i;
      }
    } else {
      KJ_ASSERT(!model.held.has_value(), "the view dropped a state the model holds");
      KJ_ASSERT(view.items().size() == 0);
      KJ_ASSERT(since.epoch == 0 && since.rev == 0);
    }
    for (auto& id : alphabet().ids) {
      bool expected = model.held && model.held->items.count(id) > 0;
      KJ_ASSERT((view.find(kj::StringPtr(id.c_str(), id.size())) != nullptr) == expected);
    }
  }

  // One frame, as a session would handle it. Null when validation refused it.
  kj::Maybe<ViewOutcome> feed(kj::ArrayPtr<const kj::byte> bytes, bool honest) {
    auto decoded = codec::decodeFrame(bytes);
    KJ_IF_MAYBE (failure, decoded.tryGet<codec::Failure>()) {
      KJ_ASSERT(!honest, "an honest page failed validation", failure->message);
      sessionClosed();  // Error{0, protocol} + close; the next session starts from nothing
      return nullptr;
    }
    auto& frame = decoded.get<codec::InboundFrame>();
    auto root = frame.root();
    KJ_ASSERT(root.isLibrarySnapshot() || root.isLibraryDelta());
    auto d = fuzz::pageOf(frame);
    auto expected = model.step(d, honest);
    auto result = root.isLibrarySnapshot() ? view.onSnapshotPage(root.getLibrarySnapshot())
                                           : view.onDeltaPage(root.getLibraryDelta());
    auto got = result.outcome;
    KJ_ASSERT(got == expected, name(got), name(expected), result.message, d.isDelta, d.page,
              d.last);
    // Exactly one terminal outcome per answer, at its last page.
    if (d.last) {
      KJ_ASSERT(got != ViewOutcome::morePages);
    } else {
      KJ_ASSERT(got == ViewOutcome::morePages || got == ViewOutcome::protocolError, name(got));
    }
    if (got == ViewOutcome::resync) {
      KJ_ASSERT(view.summary() == nullptr);
      auto since = view.request();
      KJ_ASSERT(since.epoch == 0 && since.rev == 0, "after resync the view must ask {0, 0}");
    }
    if (got == ViewOutcome::applied) {
      KJ_ASSERT(KJ_ASSERT_NONNULL(view.summary()) == d.summary);
    }
    if (got == ViewOutcome::protocolError && model.held) {
      // The answer in progress is dropped, the state held stays what it was.
      auto items = view.items();
      KJ_ASSERT(items.size() == model.held->items.size(), items.size());
      size_t i = 0;
      for (auto& [id, item] : model.held->items) {
        KJ_ASSERT(items[i] == item, "protocolError changed the held items", i, id, items[i].itemId,
                  result.message);
        ++i;
      }
    }
    checkHeld();
    if (got == ViewOutcome::protocolError) sessionClosed();
    return got;
  }

  // --- ops -------------------------------------------------------------------------------------

  void update(Input& in, uint8_t param) {
    for (int n = 1 + param % 4; n > 0; --n) {
      uint8_t c = in.byte();
      size_t id = c % kIds;
      versions[id] = (c & 0x40) ? 0 : uint8_t(1 + (c >> 4) % kVersions);
    }
    publishItems();
  }

  void downloading(uint8_t param) {
    auto& id = alphabet().ids[param % kIds];
    library->setDownloading(kj::StringPtr(id.c_str(), id.size()), param & 0x10);
  }

  static uint32_t frameBytes(uint8_t b) {
    if (b < 224) return 1400 + uint32_t(b) * 20;
    return b & 1 ? 65536 : 16 << 20;
  }

  kj::Array<kj::Array<kj::byte>> honestPages(uint64_t id, const LibraryAnswer& answer,
                                             uint32_t maxFrameBytes) {
    auto pages = libraryPages(id, answer, maxFrameBytes);
    return KJ_MAP(page, pages) {
      auto bytes = codec::encodeFrame(*page);
      KJ_ASSERT(bytes.size() <= maxFrameBytes, bytes.size(), maxFrameBytes);
      return bytes;
    };
  }

  // GetLibrary answered by the real Library. mode 0: asked from view.request() and fed as paged;
  // otherwise bits 0-2 skew the request and bits 3-5 mangle the paging.
  void honestSync(uint8_t mfb, uint8_t mode, uint8_t param) {
    auto& libSummary = library->summary();
    auto since = skewedSince(mode & 7, param);
    uint32_t maxFrameBytes = frameBytes(mfb);
    auto answer = library->answer(since.epoch, since.rev);
    auto pages = honestPages(nextRequestId++, answer, maxFrameBytes);
    size_t n = pages.size();
    uint32_t mangle = (mode >> 3) & 7;
    kj::Array<kj::Array<kj::byte>> other;
    auto order = mangled(pages, mangle, param % n, [&]() {
      // A page of another answer in the middle of this one.
      other = honestPages(nextRequestId++, answer, maxFrameBytes);
      return other[0].asPtr();
    });

    auto before = view.request();
    bool exact = mangle <= 2 && (mode & 7) == 0 && !view.midAnswer();
    bool trusted =
        !model.held || model.held->summary.epoch != libSummary.epoch || model.held->honest;
    size_t entries = answer.items.size() + answer.removals.size();
    bool fits = library->items().size() <= maxItems && entries <= maxItems;
    kj::Vector<ViewOutcome> outcomes;
    for (auto page : order) {
      KJ_IF_MAYBE (o, feed(page, true)) {
        outcomes.add(*o);
        if (*o == ViewOutcome::protocolError) break;  // the session is gone
      }
    }
    if (!exact || !trusted) return;
    // An honest answer to what the view asked for: it applies, exactly — unless it exceeds the
    // view's local bound, which is a protocol error (at the page that exceeds it).
    KJ_ASSERT(outcomes.size() > 0);
    for (size_t i = 0; i + 1 < outcomes.size(); ++i)
      KJ_ASSERT(outcomes[i] == ViewOutcome::morePages, i, name(outcomes[i]));
    if (!fits) {
      KJ_ASSERT(outcomes.back() == ViewOutcome::protocolError, name(outcomes.back()));
      return;
    }
    KJ_ASSERT(outcomes.size() == n, outcomes.size(), n);
    KJ_ASSERT(outcomes[n - 1] == ViewOutcome::applied, name(outcomes[n - 1]), before.epoch,
              before.rev, libSummary.rev, answer.kind == LibraryAnswer::Kind::delta);
    checkHoldsLibrary();
  }

  // What a GetLibrary asks: the view's request, or (skew 1-7) something else a peer could ask.
  LibraryView::Since skewedSince(uint8_t skew, uint8_t param) {
    auto& libSummary = library->summary();
    auto since = view.request();
    auto heldRev = since.rev;
    switch (skew) {
      case 0: break;
      case 1: since = {}; break;
      case 2: since = {libSummary.epoch, libSummary.rev - 1}; break;
      case 3: since = {libSummary.epoch, libSummary.rev - 1 - param % 8}; break;
      case 4: since = {libSummary.epoch, libSummary.rev + 1}; break;
      case 5: since = {1, heldRev == 0 ? 1 : heldRev}; break;
      case 6: since.rev += 1; break;
      case 7: since = {libSummary.epoch, heldRev}; break;
    }
    // Both 0 or both set ([LIB-8], Table 1); an underflowed rev falls back to {0, 0} too.
    if (since.epoch == 0 || since.rev == 0 || since.rev > (uint64_t(1) << 62)) since = {};
    return since;
  }

  // The pages in the order they are fed: page k dropped (3), repeated (4), swapped with the next
  // (5), the answer cut short at it (6) or followed by `foreign()` (7); else as paged.
  template <typename Foreign>
  static kj::Vector<kj::ArrayPtr<const kj::byte>> mangled(
      const kj::Array<kj::Array<kj::byte>>& pages, uint32_t mangle, size_t k, Foreign&& foreign) {
    kj::Vector<kj::ArrayPtr<const kj::byte>> order;
    size_t n = pages.size();
    for (size_t i = 0; i < n; ++i) {
      if (mangle == 3 && i == k) continue;  // dropped
      if (mangle == 6 && i == k) break;     // cut short: the answer stays open
      if (mangle == 5 && i == k && i + 1 < n) {
        order.add(pages[i + 1]);  // swapped with the next one
        order.add(pages[i]);
        ++i;
        continue;
      }
      order.add(pages[i]);
      if (mangle == 4 && i == k) order.add(pages[i]);  // repeated
      if (mangle == 7 && i == k) order.add(foreign());
    }
    return order;
  }

  // The view holds exactly the Library's items and summary.
  void checkHoldsLibrary() {
    KJ_ASSERT(KJ_ASSERT_NONNULL(view.summary()) == library->summary());
    auto listed = library->items();
    auto items = view.items();
    KJ_ASSERT(items.size() == listed.size(), items.size(), listed.size());
    for (size_t i = 0; i < items.size(); ++i)
      KJ_ASSERT(items[i] == listed[i]->info, i);
  }

  // --- forged answers --------------------------------------------------------------------------

  ItemInfo forgedItem(size_t id, uint8_t b) {
    auto info = alphabet().items[id][b % kVersions]->info.clone();
    switch ((b >> 2) & 7) {
      case 4: info.name = kj::str(); break;
      case 5:
        info.name = kj::str(
            "\xc3\x9c"
            "n"
            "\xc3\xaf"
            "code name ",
            kj::uint(b));
        break;
      case 6: info.size = uint64_t(b) * 123457; break;
      case 7:
        info.fileCount += b;
        info.manifestDigest.bytes[b % 32] ^= 0x80;
        break;
      default: break;  // the honest item at that version
    }
    return info;
  }

  std::vector<size_t> maskIds(uint16_t mask) {
    std::vector<size_t> out;
    for (size_t i = 0; i < kIds; ++i) {
      if (mask & (1u << i)) out.push_back(i);
    }
    return out;
  }

  struct Forged {
    uint64_t id;
    uint32_t page;
    bool last;
    Summary summary;
    uint64_t fromRev;
    std::vector<ItemInfo> items;
    std::vector<std::string> removals;
    int invalid = -1;
  };

  // The first two entries of `list` swapped (out of order, or a duplicate).
  template <typename List>
  static void swapFirstTwo(List list) {
    if (list.size() < 2) return;
    auto a = kj::str(list[0].asReader().getItemId());
    auto b = kj::str(list[1].asReader().getItemId());
    list[0].setItemId(b);
    list[1].setItemId(a);
  }

  static void fillSummary(wire::LibrarySummary::Builder s, const Forged& f) {
    f.summary.toWire(s);
    if (f.invalid == 1) s.setEpoch(0);
    if (f.invalid == 2) s.setRev(0);
    if (f.invalid == 3) s.setDigest(f.summary.digest.asBytes().slice(0, 31));
  }

  static void fillItems(capnp::List<wire::ItemEntry>::Builder list, const Forged& f) {
    for (size_t i = 0; i < f.items.size(); ++i)
      codec::fillItemEntry(list[kj::uint(i)], f.items[i]);
  }

  static void fillSnapshot(wire::LibrarySnapshot::Builder s, const Forged& f) {
    auto items = f.items.size();
    s.setId(f.invalid == 0 ? 0 : f.id);
    fillSummary(s.initSummary(), f);
    s.setPage(f.page);
    s.setLast(f.last);
    fillItems(s.initItems(kj::uint(items)), f);
    if (items > 0 && f.invalid == 5) s.getItems()[0].setItemId("..");
    if (items > 0 && f.invalid == 6) s.getItems()[0].setName("bad\x01name");
    if (items > 0 && f.invalid == 7) s.getItems()[0].setFileCount(1000001);
    if (f.invalid == 4) swapFirstTwo(s.getItems());
  }

  static void fillDelta(wire::LibraryDelta::Builder d, const Forged& f) {
    auto items = f.items.size();
    d.setId(f.invalid == 0 ? 0 : f.id);
    d.setFromRev(f.invalid == 7 ? f.summary.rev + 1 : f.fromRev);
    fillSummary(d.initSummary(), f);
    d.setPage(f.page);
    d.setLast(f.last);
    fillItems(d.initUpserts(kj::uint(items)), f);
    auto rm = d.initRemovals(kj::uint(f.removals.size()));
    for (size_t i = 0; i < f.removals.size(); ++i)
      rm.set(kj::uint(i), kj::StringPtr(f.removals[i].c_str(), f.removals[i].size()));
    if (f.removals.size() > 0 && f.invalid == 5) rm.set(0, "a/b");
    if (items > 0 && f.invalid == 6) d.getUpserts()[0].setName("bad\x7fname");
    if (f.invalid == 4) swapFirstTwo(d.getUpserts());
  }

  kj::Array<kj::byte> encode(bool isDelta, const Forged& f) {
    capnp::MallocMessageBuilder m;
    auto root = m.initRoot<wire::Frame>();
    if (isDelta) {
      fillDelta(root.initLibraryDelta(), f);
    } else {
      fillSnapshot(root.initLibrarySnapshot(), f);
    }
    return codec::encodeFrame(m);
  }

  // A hand-built answer. Bytes: param (bits 0-1 the request id: new, the last answer's, or any
  // byte; bits 2-3 pages - 1; bits 4-5 the layout: 0 one ascending id set split across the pages,
  // 1 independent sets per page, 2 like 0 with a perturbation byte per page (page number, last
  // flag, summary, fromRev, id), 3 like 0 with one invalid field on one page); the shared fields
  // (bits 0-1 epoch: the library's, the held one, 1 or 2; bits 2-3 rev: held, held + 1, the
  // library's or a byte; bits 4-5 fromRev: held, held - 1, rev or a byte; bits 6-7 the digest:
  // correct for what the pages describe, one bit flipped, the library's or the held one); then
  // the id sets: a u16 mask over the alphabet (items; then removals for a delta), followed per
  // page by how many the page takes (a byte, except on the last page) and, for items, one byte
  // per item (its version, and name/size/fileCount/digest changes).
  void forged(Input& in, bool isDelta, uint8_t param) {
    uint64_t id;
    switch (param & 3) {
      case 2: id = nextRequestId - 1 == 0 ? 1 : nextRequestId - 1; break;  // the last answer's
      case 3: id = in.byte(); break;
      default: id = nextRequestId++; break;
    }
    size_t npages = 1 + ((param >> 2) & 3);
    uint8_t layout = (param >> 4) & 3;
    uint8_t e = in.byte();
    uint64_t fromRev = 0;
    Summary summary = forgedSummary(in, e, isDelta, fromRev);
    std::vector<Forged> pages = forgedContents(in, npages, layout, isDelta);
    summary.digest = forgedDigest(pages, isDelta, e);

    int invalidPage = layout == 3 ? int(in.byte() % npages) : -1;
    int invalidKind = layout == 3 ? int(in.byte() % 8) : -1;
    for (size_t p = 0; p < npages; ++p) {
      auto& f = pages[p];
      f.id = id;
      f.page = uint32_t(p);
      f.last = p + 1 == npages;
      f.summary = summary;
      f.fromRev = fromRev;
      if (layout == 2) perturb(in, f);
      if (int(p) == invalidPage) f.invalid = invalidKind;
      KJ_IF_MAYBE (o, feed(encode(isDelta, f), false)) {
        if (*o == ViewOutcome::protocolError) return;  // the session closed
      } else {
        return;  // refused by validation: the session closed
      }
    }
  }

  // The shared fields from `e` (see forged()), reading the bytes those choices need.
  Summary forgedSummary(Input& in, uint8_t e, bool isDelta, uint64_t& fromRev) {
    auto& libSummary = library->summary();
    uint64_t heldEpoch = model.held ? model.held->summary.epoch : libSummary.epoch;
    uint64_t heldRev = model.held ? model.held->summary.rev : 1;
    static const uint64_t kOtherEpochs[] = {1, 2};
    Summary summary;
    switch (e & 3) {
      case 0: summary.epoch = libSummary.epoch; break;
      case 1: summary.epoch = heldEpoch; break;
      default: summary.epoch = kOtherEpochs[(e & 3) - 2]; break;
    }
    switch ((e >> 2) & 3) {
      case 0: summary.rev = heldRev; break;
      case 1: summary.rev = heldRev + 1; break;
      case 2: summary.rev = libSummary.rev; break;
      case 3: summary.rev = in.byte(); break;
    }
    if (isDelta) {
      switch ((e >> 4) & 3) {
        case 0: fromRev = heldRev; break;
        case 1: fromRev = heldRev - 1; break;
        case 2: fromRev = summary.rev; break;
        case 3: fromRev = in.byte(); break;
      }
    }
    return summary;
  }

  // The items and removals of each page.
  std::vector<Forged> forgedContents(Input& in, size_t npages, uint8_t layout, bool isDelta) {
    std::vector<Forged> pages(npages);
    auto split = [&](std::vector<size_t> ids, auto&& put) {
      size_t next = 0;
      for (size_t p = 0; p < npages; ++p) {
        size_t left = ids.size() - next;
        size_t take = p + 1 == npages ? left : in.byte() % (left + 1);
        for (size_t i = next; i < next + take; ++i)
          put(pages[p], ids[i]);
        next += take;
      }
    };
    auto putItem = [&](Forged& f, size_t i) {
      f.items.push_back(forgedItem(i, in.byte()));
    };
    auto putRemoval = [&](Forged& f, size_t i) {
      f.removals.push_back(alphabet().ids[i]);
    };
    if (layout == 1) {
      for (auto& f : pages) {
        for (auto i : maskIds(in.u16()))
          putItem(f, i);
        if (isDelta) {
          for (auto i : maskIds(in.u16()))
            putRemoval(f, i);
        }
      }
    } else {
      split(maskIds(in.u16()), putItem);
      if (isDelta) split(maskIds(in.u16()), putRemoval);
    }
    return pages;
  }

  // The digest of the state the pages describe (digest mode 0), or not (see forged()).
  Digest forgedDigest(const std::vector<Forged>& pages, bool isDelta, uint8_t e) {
    Items intended;
    if (isDelta && model.held) intended = fuzz::cloneItems(model.held->items);
    for (auto& f : pages) {
      for (auto& r : f.removals)
        intended.erase(r);
      for (auto& item : f.items)
        intended.insert_or_assign(stdString(item.itemId), item.clone());
    }
    Digest digest = fuzz::specDigest(intended);
    switch (e >> 6) {
      case 0: break;
      case 1: digest.bytes[e % 32] ^= 1; break;
      case 2: digest = library->summary().digest; break;
      case 3:
        if (model.held) digest = model.held->summary.digest;
        break;
    }
    return digest;
  }

  // Layout 2: one byte per page changes its shared fields.
  static void perturb(Input& in, Forged& f) {
    uint8_t b = in.byte();
    if ((b & 3) == 0) f.page = in.byte();
    if (b & 4) f.last = !f.last;
    if (b & 8) f.summary.rev += 1;
    if (b & 16) f.fromRev += 1;
    if (b & 32) f.id += 1;
  }

  void run(Input& in) {
    while (!in.done()) {
      uint8_t b = in.byte();
      uint8_t param = b >> 3;
      switch (b & 7) {
        case 0: update(in, param); break;
        case 1: downloading(in.byte()); break;
        case 2: honestSync(in.byte(), 0, 0); break;
        case 3: {
          uint8_t mfb = in.byte(), mode = in.byte();
          honestSync(mfb, mode, in.byte());
          break;
        }
        case 4:
        case 5: forged(in, b & 1, in.byte()); break;
        case 6: restartLibrary(); break;
        case 7: sessionClosed(); break;
      }
    }
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0 || size > 4096) return 0;
  static const bool oracleChecked = []() {
    // The model's digest is the spec's: its example of the empty library.
    KJ_ASSERT(codec::toHex(fuzz::specDigest({})) ==
              "cad282924b012f391b980eee987cf6ad410e77f91354fcd1aa65993a82abe61c");
    return true;
  }();
  (void)oracleChecked;
  Input in(data, size);
  static const size_t kMaxItems[] = {3, 8, 16, 2000};
  uint8_t head = in.byte();
  Harness harness(kMaxItems[head & 3], 1 + (head >> 2) % 8);
  harness.run(in);
  return 0;
}
