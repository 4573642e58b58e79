// ReportThrottle on virtual time: a burst of 1,000 failures is two reports with exact counts.
#include <shoal/peer/runtime/report-throttle.h>

#include <gtest/gtest.h>

namespace shoal::peer {
namespace {

constexpr kj::TimePoint kStart = kj::origin<kj::TimePoint>() + 1 * kj::SECONDS;

TEST(ReportThrottle, ABurstIsTheFirstReportAndOneSummary) {
  ReportThrottle<int> throttle(1 * kj::SECONDS);
  auto now = kStart;
  uint32_t reports = 0;
  auto first = KJ_ASSERT_NONNULL(throttle.offer(0, now));
  EXPECT_EQ(first.event, 0);
  EXPECT_EQ(first.suppressed, 0u);
  for (int i = 1; i < 1000; ++i) {
    now += 100 * kj::MICROSECONDS;
    reports += throttle.offer(i, now) != nullptr;
  }
  EXPECT_EQ(reports, 0u);
  auto due = KJ_ASSERT_NONNULL(throttle.nextFlush());
  EXPECT_EQ(due, kStart + 1 * kj::SECONDS);
  EXPECT_EQ(throttle.flush(due - 1 * kj::NANOSECONDS), nullptr);
  auto summary = KJ_ASSERT_NONNULL(throttle.flush(due));
  EXPECT_EQ(summary.event, 999);        // the latest one
  EXPECT_EQ(summary.suppressed, 998u);  // 1 + 998 + 1 = 1000 failures in 2 reports
  EXPECT_EQ(throttle.nextFlush(), nullptr);
}

TEST(ReportThrottle, QuietEventsAreReportedEachAtOnce) {
  ReportThrottle<int> throttle(1 * kj::SECONDS);
  for (int i = 0; i < 5; ++i) {
    auto r = KJ_ASSERT_NONNULL(throttle.offer(i, kStart + i * 2 * kj::SECONDS));
    EXPECT_EQ(r.suppressed, 0u);
    EXPECT_EQ(throttle.nextFlush(), nullptr);
  }
}

TEST(ReportThrottle, HeldEventsCountIntoTheNextReportWhenNotFlushed) {
  ReportThrottle<int> throttle(1 * kj::SECONDS);
  throttle.offer(1, kStart);
  EXPECT_EQ(throttle.offer(2, kStart + 10 * kj::MILLISECONDS), nullptr);
  auto r = KJ_ASSERT_NONNULL(throttle.offer(3, kStart + 5 * kj::SECONDS));
  EXPECT_EQ(r.event, 3);
  EXPECT_EQ(r.suppressed, 1u);
}

}  // namespace
}  // namespace shoal::peer
