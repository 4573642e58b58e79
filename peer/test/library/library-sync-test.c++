// LibrarySync on a virtual clock with hand-made answers: one GetLibrary at a time, another after a
// LibraryChanged that the view does not hold, a wait after busy (never shorter than retryMin), a
// bounded number of resyncs, paging errors and the session's end.
#include <shoal/peer/library/library-sync.h>

#include <gtest/gtest.h>

#include "test-items.h"

namespace shoal::peer::library {
namespace {

constexpr uint64_t kEpoch = 91;

struct Page {
  capnp::MallocMessageBuilder message;
  kj::Maybe<codec::InboundFrame> frame;
  wire::Frame::Reader root() { return KJ_ASSERT_NONNULL(frame).root(); }
};

codec::Summary summaryOf(kj::ArrayPtr<const codec::ItemInfo> items, uint64_t rev) {
  return {kEpoch, rev, codec::libraryDigest(items)};
}

kj::Array<codec::ItemInfo> itemsOf(std::initializer_list<test::Spec> specs) {
  kj::Vector<codec::ItemInfo> out;
  for (auto& s : specs)
    out.add(test::makeItem(s.id, s.version)->info.clone());
  return out.releaseAsArray();
}

// A snapshot page; `digestOf` (default: the items) lets a test make the digest lie.
kj::Own<Page> snapshot(uint64_t id, const codec::Summary& summary, uint32_t page, bool last,
                       kj::ArrayPtr<const codec::ItemInfo> items) {
  auto p = kj::heap<Page>();
  auto s = p->message.initRoot<wire::Frame>().initLibrarySnapshot();
  s.setId(id);
  summary.toWire(s.initSummary());
  s.setPage(page);
  s.setLast(last);
  auto list = s.initItems(kj::uint(items.size()));
  for (size_t i = 0; i < items.size(); ++i)
    codec::fillItemEntry(list[kj::uint(i)], items[i]);
  p->frame = test::throughTheWire(p->message);
  return p;
}

kj::TimePoint at(int64_t ms) {
  return kj::origin<kj::TimePoint>() + ms * kj::MILLISECONDS;
}

template <typename T>
size_t countOf(kj::ArrayPtr<const SyncEvent> events) {
  size_t n = 0;
  for (auto& e : events)
    n += e.is<T>();
  return n;
}

TEST(LibrarySync, AsksOnceFromNothingAndAppliesTheSnapshot) {
  LibrarySync sync;
  EXPECT_EQ(sync.takeRequest(), nullptr);  // nothing before the session is established
  sync.start();
  auto since = KJ_ASSERT_NONNULL(sync.takeRequest());
  EXPECT_EQ(since.epoch, 0u);
  EXPECT_EQ(since.rev, 0u);
  EXPECT_EQ(sync.takeRequest(), nullptr);  // one in flight at a time
  EXPECT_TRUE(sync.inFlight());

  auto items = itemsOf({{"a", 1}, {"b", 1}});
  auto summary = summaryOf(items, 4);
  auto p0 = snapshot(1, summary, 0, false, items.slice(0, 1));
  auto p1 = snapshot(1, summary, 1, true, items.slice(1, 2));
  sync.onPage(p0->root(), false);
  EXPECT_EQ(sync.takeEvents().size(), 0u);
  EXPECT_TRUE(sync.inFlight());
  sync.onPage(p1->root(), true);
  auto events = sync.takeEvents();
  EXPECT_EQ(countOf<sync::Applied>(events), 1u);
  EXPECT_FALSE(sync.inFlight());
  EXPECT_EQ(sync.view().items().size(), 2u);
  EXPECT_EQ(sync.takeRequest(), nullptr);  // nothing more is due
}

TEST(LibrarySync, AChangeDuringARequestAsksOnceMoreAfterItFromTheHeldRevision) {
  LibrarySync sync;
  sync.start();
  KJ_ASSERT_NONNULL(sync.takeRequest());
  auto items = itemsOf({{"a", 1}});
  auto summary = summaryOf(items, 2);
  auto newer = summaryOf(itemsOf({{"a", 2}}), 3);
  sync.onLibraryChanged(newer);
  sync.onLibraryChanged(newer);            // coalesced
  EXPECT_EQ(sync.takeRequest(), nullptr);  // not while one is in flight
  auto page = snapshot(1, summary, 0, true, items);
  sync.onPage(page->root(), true);
  auto since = KJ_ASSERT_NONNULL(sync.takeRequest());
  EXPECT_EQ(since.epoch, kEpoch);
  EXPECT_EQ(since.rev, 2u);
  EXPECT_EQ(sync.takeRequest(), nullptr);
}

TEST(LibrarySync, AChangeToWhatTheViewHoldsAsksNothing) {
  LibrarySync sync;
  sync.start();
  KJ_ASSERT_NONNULL(sync.takeRequest());
  auto items = itemsOf({{"a", 1}});
  auto summary = summaryOf(items, 2);
  auto page = snapshot(1, summary, 0, true, items);
  sync.onPage(page->root(), true);
  sync.onLibraryChanged(summary);
  EXPECT_EQ(sync.takeRequest(), nullptr);
}

TEST(LibrarySync, BusyWaitsForTheLongerOfRetryAfterAndRetryMin) {
  LibrarySyncLimits limits;
  limits.retryMin = 100 * kj::MILLISECONDS;
  LibrarySync sync(limits);
  sync.start();
  KJ_ASSERT_NONNULL(sync.takeRequest());
  sync.onError(wire::ErrorCode::BUSY, "busy", 20, false, at(1000));
  auto events = sync.takeEvents();
  ASSERT_EQ(events.size(), 1u);
  auto& refused = events[0].get<sync::Refused>();
  EXPECT_EQ(refused.code, wire::ErrorCode::BUSY);
  EXPECT_EQ(KJ_ASSERT_NONNULL(refused.retryAt), at(1100));  // retryMin, not the 20 ms asked
  EXPECT_EQ(KJ_ASSERT_NONNULL(sync.nextDeadline()), at(1100));
  sync.onLibraryChanged(summaryOf(itemsOf({{"x", 1}}), 9));  // the retry will ask anyway
  sync.onTick(at(1099));
  EXPECT_EQ(sync.takeRequest(), nullptr);
  sync.onTick(at(1100));
  EXPECT_NE(sync.takeRequest(), nullptr);
  EXPECT_EQ(sync.nextDeadline(), nullptr);

  sync.onError(wire::ErrorCode::UNAVAILABLE, "indexing", 2500, false, at(2000));
  EXPECT_EQ(KJ_ASSERT_NONNULL(sync.nextDeadline()), at(4500));  // the peer's own, longer
}

TEST(LibrarySync, OtherRefusalsAreReportedAndNotRetried) {
  LibrarySync sync;
  sync.start();
  KJ_ASSERT_NONNULL(sync.takeRequest());
  sync.onError(wire::ErrorCode::INTERNAL, "disk on fire", 0, false, at(0));
  auto events = sync.takeEvents();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].get<sync::Refused>().retryAt, nullptr);
  sync.onTick(at(60000));
  EXPECT_EQ(sync.takeRequest(), nullptr);
  // The next change of the peer's asks again.
  sync.onLibraryChanged(summaryOf(itemsOf({{"x", 1}}), 2));
  EXPECT_NE(sync.takeRequest(), nullptr);
}

TEST(LibrarySync, ALocalEndStopsEverything) {
  LibrarySync sync;
  sync.start();
  KJ_ASSERT_NONNULL(sync.takeRequest());
  sync.onError(wire::ErrorCode::UNAVAILABLE, "the session ended", 0, true, at(0));
  EXPECT_EQ(sync.takeEvents().size(), 0u);
  sync.onLibraryChanged(summaryOf(itemsOf({{"x", 1}}), 2));
  sync.onTick(at(60000));
  EXPECT_EQ(sync.takeRequest(), nullptr);
}

TEST(LibrarySync, ResyncsAskForASnapshotUntilTheLimitThenFail) {
  LibrarySyncLimits limits;
  limits.maxResyncs = 2;
  LibrarySync sync(limits);
  sync.start();
  auto items = itemsOf({{"a", 1}});
  auto lying = summaryOf(itemsOf({{"b", 1}}), 5);  // a digest its items do not have
  for (uint32_t round = 1; round <= 2; ++round) {
    auto since = KJ_ASSERT_NONNULL(sync.takeRequest());
    EXPECT_EQ(since.rev, 0u);  // a snapshot every time
    auto page = snapshot(round, lying, 0, true, items);
    sync.onPage(page->root(), true);
    auto events = sync.takeEvents();
    ASSERT_EQ(events.size(), 1u);
    EXPECT_TRUE(events[0].is<sync::Resyncing>());
    EXPECT_EQ(sync.resyncs(), round);
  }
  KJ_ASSERT_NONNULL(sync.takeRequest());
  auto page = snapshot(3, lying, 0, true, items);
  sync.onPage(page->root(), true);
  auto events = sync.takeEvents();
  ASSERT_EQ(events.size(), 1u);
  auto& failed = events[0].get<sync::Failed>();
  EXPECT_TRUE(failed.message.startsWith("library digest keeps failing")) << failed.message.cStr();
  EXPECT_EQ(sync.takeRequest(), nullptr);
}

TEST(LibrarySync, AGoodAnswerResetsTheResyncCount) {
  LibrarySyncLimits limits;
  limits.maxResyncs = 1;
  LibrarySync sync(limits);
  sync.start();
  auto items = itemsOf({{"a", 1}});
  auto lying = summaryOf(itemsOf({{"b", 1}}), 5);
  auto good = summaryOf(items, 6);
  KJ_ASSERT_NONNULL(sync.takeRequest());
  auto bad = snapshot(1, lying, 0, true, items);
  sync.onPage(bad->root(), true);
  KJ_ASSERT_NONNULL(sync.takeRequest());
  auto ok = snapshot(2, good, 0, true, items);
  sync.onPage(ok->root(), true);
  EXPECT_EQ(sync.resyncs(), 0u);
  EXPECT_EQ(countOf<sync::Applied>(sync.takeEvents()), 1u);
  sync.onLibraryChanged(summaryOf(itemsOf({{"a", 2}}), 7));
  KJ_ASSERT_NONNULL(sync.takeRequest());
  auto bad2 = snapshot(3, lying, 0, true, items);
  sync.onPage(bad2->root(), true);
  auto events = sync.takeEvents();
  EXPECT_EQ(countOf<sync::Failed>(events), 0u);  // one resync again, within the limit
  EXPECT_EQ(countOf<sync::Resyncing>(events), 1u);
}

TEST(LibrarySync, APageOutOfOrderFailsTheSession) {
  LibrarySync sync;
  sync.start();
  KJ_ASSERT_NONNULL(sync.takeRequest());
  auto items = itemsOf({{"a", 1}});
  auto page = snapshot(1, summaryOf(items, 1), 1, true, items);  // starts at page 1 ([RQ-6])
  sync.onPage(page->root(), true);
  auto events = sync.takeEvents();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_TRUE(events[0].is<sync::Failed>());
  sync.onLibraryChanged(summaryOf(itemsOf({{"x", 1}}), 2));
  EXPECT_EQ(sync.takeRequest(), nullptr);
}

}  // namespace
}  // namespace shoal::peer::library
