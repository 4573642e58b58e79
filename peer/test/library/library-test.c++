// Library: revisions, history, snapshots and deltas ([LIB-5]..[LIB-11]), the downloading mark, and
// paging through real frames into a LibraryView that must end up with the exact same state.
#include <shoal/peer/library/library.h>

#include <gtest/gtest.h>
#include <shoal/peer/library/library-view.h>

#include "test-items.h"

namespace shoal::peer::library {
namespace {

using test::makeItem;
using test::makeItems;

constexpr uint64_t kEpoch = 0x1234567890abcdefull;

kj::Array<kj::String> idsOf(kj::ArrayPtr<const kj::Own<const Item>> items) {
  return KJ_MAP(i, items) {
    return kj::str(i->itemId());
  };
}
kj::String joined(kj::ArrayPtr<const kj::Own<const Item>> items) {
  return kj::strArray(idsOf(items), ",");
}
kj::String joined(kj::ArrayPtr<const kj::String> ids) {
  return kj::strArray(ids, ",");
}

codec::Digest digestOf(kj::ArrayPtr<const kj::Own<const Item>> items) {
  auto infos = KJ_MAP(i, items) {
    return i->info.clone();
  };
  return codec::libraryDigest(infos);
}

TEST(Library, FirstUpdatePublishesRevOneEvenIfEmpty) {
  Library library(kEpoch);
  EXPECT_FALSE(library.isPublished());
  EXPECT_EQ(library.summary().rev, 0u);
  EXPECT_TRUE(library.update(nullptr));
  EXPECT_EQ(library.summary().epoch, kEpoch);
  EXPECT_EQ(library.summary().rev, 1u);
  // docs/protocol.md §6.3: the empty library.
  EXPECT_EQ(codec::toHex(library.summary().digest),
            "cad282924b012f391b980eee987cf6ad410e77f91354fcd1aa65993a82abe61c");
  EXPECT_FALSE(library.update(nullptr));
  EXPECT_EQ(library.summary().rev, 1u);
}

TEST(Library, RevisionsMoveOnlyOnChange) {
  Library library(kEpoch);
  EXPECT_TRUE(library.update(makeItems({{"a", 1}, {"b", 1}})));
  EXPECT_EQ(library.summary().rev, 1u);

  // Same infos: no new revision, but the fresh items (newer file stats) are the ones served.
  auto again = makeItems({{"a", 1}, {"b", 1}});
  const Item* fresh = again[0].get();
  EXPECT_FALSE(library.update(kj::mv(again)));
  EXPECT_EQ(library.summary().rev, 1u);
  EXPECT_EQ(KJ_ASSERT_NONNULL(library.find("a")).get(), fresh);

  EXPECT_TRUE(library.update(makeItems({{"a", 1}, {"b", 2}})));
  EXPECT_EQ(library.summary().rev, 2u);
  EXPECT_TRUE(library.update(makeItems({{"a", 1}, {"b", 2}, {"c", 1}})));
  EXPECT_EQ(library.summary().rev, 3u);
  EXPECT_TRUE(library.update(makeItems({{"b", 2}, {"c", 1}})));
  EXPECT_EQ(library.summary().rev, 4u);
  EXPECT_EQ(library.summary().digest, digestOf(library.items()));
  EXPECT_EQ(library.find("a"), nullptr);
  EXPECT_EQ(joined(library.items()), "b,c");
}

TEST(Library, DeltaListsAddedChangedAndRemovedItems) {
  Library library(kEpoch);
  library.update(makeItems({{"a", 1}, {"b", 1}, {"c", 1}}));
  library.update(makeItems({{"a", 1}, {"b", 2}, {"d", 1}}));
  auto answer = library.answer(kEpoch, 1);
  ASSERT_EQ(answer.kind, LibraryAnswer::Kind::delta);
  EXPECT_EQ(answer.fromRev, 1u);
  EXPECT_EQ(answer.summary, library.summary());
  EXPECT_EQ(joined(answer.items), "b,d");
  EXPECT_EQ(joined(answer.removals), "c");
  EXPECT_EQ(answer.items[0]->info, makeItem("b", 2)->info);
}

TEST(Library, AnItemAddedAndRemovedWithinTheWindowIsNotRemoved) {
  Library library(kEpoch);
  library.update(makeItems({{"a", 1}}));            // rev 1
  library.update(makeItems({{"a", 1}, {"x", 1}}));  // rev 2: x added
  library.update(makeItems({{"a", 1}}));            // rev 3: x removed
  auto fromOne = library.answer(kEpoch, 1);
  ASSERT_EQ(fromOne.kind, LibraryAnswer::Kind::delta);
  EXPECT_EQ(fromOne.items.size(), 0u);
  EXPECT_EQ(fromOne.removals.size(), 0u);  // a requester at rev 1 never had x
  auto fromTwo = library.answer(kEpoch, 2);
  EXPECT_EQ(joined(fromTwo.removals), "x");

  // Removed, then back with other content: an upsert, not a removal.
  library.update(makeItems({{"a", 2}}));  // rev 4: a changed
  library.update(nullptr);                // rev 5: a removed
  library.update(makeItems({{"a", 3}}));  // rev 6: a back
  auto back = library.answer(kEpoch, 3);
  EXPECT_EQ(joined(back.items), "a");
  EXPECT_EQ(back.removals.size(), 0u);
}

TEST(Library, SnapshotWhenDeltaImpossible) {
  Library library(kEpoch, 4);
  library.update(makeItems({{"a", 1}}));
  for (uint64_t v = 2; v <= 6; ++v)
    library.update(makeItems({{"a", v}}));
  ASSERT_EQ(library.summary().rev, 6u);
  // Four revisions of history: a requester at rev 2 gets a delta, one at rev 1 a snapshot.
  EXPECT_EQ(library.answer(kEpoch, 2).kind, LibraryAnswer::Kind::delta);
  EXPECT_EQ(library.answer(kEpoch, 1).kind, LibraryAnswer::Kind::snapshot);
  EXPECT_EQ(library.answer(kEpoch + 1, 5).kind, LibraryAnswer::Kind::snapshot);  // other epoch
  EXPECT_EQ(library.answer(kEpoch, 7).kind, LibraryAnswer::Kind::snapshot);      // future rev
  auto nothing = library.answer(0, 0);
  EXPECT_EQ(nothing.kind, LibraryAnswer::Kind::snapshot);
  EXPECT_EQ(joined(nothing.items), "a");
  EXPECT_EQ(nothing.summary, library.summary());
}

TEST(Library, UpToDateRequesterGetsOneEmptyDeltaPage) {
  Library library(kEpoch);
  library.update(makeItems({{"a", 1}, {"b", 1}}));
  auto answer = library.answer(kEpoch, 1);
  ASSERT_EQ(answer.kind, LibraryAnswer::Kind::delta);
  auto pages = libraryPages(5, answer, codec::kMinFrameBytes);
  ASSERT_EQ(pages.size(), 1u);
  auto frame = KJ_ASSERT_NONNULL(test::throughTheWire(*pages[0]));
  auto d = frame.root().getLibraryDelta();
  EXPECT_EQ(d.getId(), 5u);
  EXPECT_EQ(d.getFromRev(), 1u);
  EXPECT_EQ(d.getSummary().getRev(), 1u);
  EXPECT_EQ(d.getPage(), 0u);
  EXPECT_TRUE(d.getLast());
  EXPECT_EQ(d.getUpserts().size() + d.getRemovals().size(), 0u);
}

TEST(Library, DownloadingItemsAreNeitherListedNorFound) {
  Library library(kEpoch);
  EXPECT_FALSE(library.setDownloading("b", true));  // nothing published yet
  library.update(makeItems({{"a", 1}, {"b", 1}}));
  EXPECT_EQ(joined(library.items()), "a");
  EXPECT_EQ(library.find("b"), nullptr);
  EXPECT_TRUE(library.isDownloading("b"));

  EXPECT_TRUE(library.setDownloading("b", false));
  EXPECT_EQ(library.summary().rev, 2u);
  EXPECT_NE(library.find("b"), nullptr);
  EXPECT_EQ(joined(library.answer(kEpoch, 1).items), "b");

  EXPECT_TRUE(library.setDownloading("a", true));
  EXPECT_EQ(library.summary().rev, 3u);
  EXPECT_EQ(joined(library.answer(kEpoch, 2).removals), "a");
  EXPECT_EQ(joined(library.answer(0, 0).items), "b");
  EXPECT_FALSE(library.setDownloading("a", true));    // already
  EXPECT_FALSE(library.setDownloading("zzz", true));  // not listed: nothing to publish
  EXPECT_EQ(library.summary().rev, 3u);
}

// Feeds every page into `view`; returns the last outcome, checking every page fits and decodes.
ViewResult feed(LibraryView& view, uint64_t id, const LibraryAnswer& answer, uint32_t maxFrame,
                size_t* pageCount = nullptr) {
  auto pages = libraryPages(id, answer, maxFrame);
  if (pageCount != nullptr) *pageCount = pages.size();
  ViewResult last{ViewOutcome::protocolError, kj::str("no pages")};
  for (size_t i = 0; i < pages.size(); ++i) {
    EXPECT_EQ(pages[i]->getSegmentsForOutput().size(), 1u) << "page " << i;
    auto frame = KJ_ASSERT_NONNULL(test::throughTheWire(*pages[i], maxFrame));
    auto root = frame.root();
    last = root.isLibrarySnapshot() ? view.onSnapshotPage(root.getLibrarySnapshot())
                                    : view.onDeltaPage(root.getLibraryDelta());
    auto expected = i + 1 == pages.size() ? ViewOutcome::applied : ViewOutcome::morePages;
    EXPECT_EQ(name(last.outcome), name(expected)) << "page " << i << ": " << last.message.cStr();
  }
  return last;
}

void expectSameState(const LibraryView& view, const Library& library) {
  EXPECT_EQ(KJ_ASSERT_NONNULL(view.summary()), library.summary());
  ASSERT_EQ(view.items().size(), library.items().size());
  for (size_t i = 0; i < view.items().size(); ++i)
    EXPECT_EQ(view.items()[i], library.items()[i]->info);
}

kj::Array<kj::Own<const Item>> manyItems(uint32_t count, uint64_t version, uint32_t skipEvery = 0) {
  kj::Vector<kj::Own<const Item>> out;
  for (uint32_t i = 0; i < count; ++i) {
    if (skipEvery != 0 && i % skipEvery == 0) continue;
    auto id = kj::str("item-", 100000 + i, "-with-a-fairly-long-folder-name");
    out.add(makeItem(id, version + (i % 7 == 0 ? 1 : 0), 1));
  }
  return out.releaseAsArray();
}

TEST(LibraryPages, ManySmallPagesRebuildTheExactState) {
  Library library(kEpoch);
  library.update(manyItems(3000, 1));
  LibraryView view;
  size_t pages = 0;
  feed(view, 9, library.answer(0, 0), 4096, &pages);
  EXPECT_GT(pages, 30u);
  expectSameState(view, library);

  // A large delta (changes, removals, additions), paged small too.
  library.update(manyItems(3500, 2, 5));
  auto since = view.request();
  EXPECT_EQ(since.rev, 1u);
  auto answer = library.answer(since.epoch, since.rev);
  ASSERT_EQ(answer.kind, LibraryAnswer::Kind::delta);
  EXPECT_GT(answer.removals.size(), 500u);
  feed(view, 10, answer, 4096, &pages);
  EXPECT_GT(pages, 30u);
  expectSameState(view, library);
}

TEST(LibraryPages, RandomEvolutionKeepsAViewInSync) {
  // Deterministic: a fixed linear congruential generator.
  uint64_t state = 42;
  auto next = [&](uint64_t bound) {
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    return (state >> 33) % bound;
  };
  Library library(kEpoch, 8);
  kj::Vector<uint64_t> versions;  // per item slot, 0 = absent
  for (int i = 0; i < 40; ++i)
    versions.add(next(3));
  auto current = [&]() {
    kj::Vector<kj::Own<const Item>> out;
    for (size_t i = 0; i < versions.size(); ++i) {
      if (versions[i] != 0) out.add(makeItem(kj::str("slot-", 100 + i), versions[i]));
    }
    return out.releaseAsArray();
  };
  library.update(current());
  LibraryView view;
  int snapshots = 0, deltas = 0;
  for (int step = 0; step < 150; ++step) {
    for (uint64_t changes = next(4); changes > 0; --changes)
      versions[next(versions.size())] = next(4);
    library.update(current());
    if (next(3) != 0) continue;  // the view catches up only now and then
    auto since = view.request();
    auto answer = library.answer(since.epoch, since.rev);
    (answer.kind == LibraryAnswer::Kind::snapshot ? snapshots : deltas)++;
    auto result = feed(view, uint64_t(step) + 1, answer, uint32_t(2048 + next(4096)));
    ASSERT_EQ(name(result.outcome), name(ViewOutcome::applied)) << result.message.cStr();
    expectSameState(view, library);
  }
  EXPECT_GT(snapshots, 1);
  EXPECT_GT(deltas, 10);
}

}  // namespace
}  // namespace shoal::peer::library
