// SourceLimiter: GCRA buckets on virtual time and a bounded table of sources ([DSC-10]).
#include <shoal/peer/discovery/source-limiter.h>

#include <gtest/gtest.h>
#include <kj/debug.h>

namespace shoal::peer::discovery {
namespace {

const kj::TimePoint t0 = kj::origin<kj::TimePoint>() + 1000 * kj::SECONDS;

TEST(SourceLimiter, BurstThenOnePerPeriod) {
  SourceLimiter limiter({3, 1 * kj::SECONDS}, {1000, 1 * kj::MILLISECONDS}, 16);
  for (int i = 0; i < 3; ++i)
    EXPECT_TRUE(limiter.admit("a", t0));
  EXPECT_FALSE(limiter.admit("a", t0));
  EXPECT_FALSE(limiter.admit("a", t0 + 999 * kj::MILLISECONDS));
  EXPECT_TRUE(limiter.admit("a", t0 + 1 * kj::SECONDS));
  EXPECT_FALSE(limiter.admit("a", t0 + 1 * kj::SECONDS));
  // A long silence refills the whole burst, no more.
  auto later = t0 + 60 * kj::SECONDS;
  for (int i = 0; i < 3; ++i)
    EXPECT_TRUE(limiter.admit("a", later));
  EXPECT_FALSE(limiter.admit("a", later));
}

TEST(SourceLimiter, RefusedDatagramsCostNothing) {
  SourceLimiter limiter({1, 1 * kj::SECONDS}, {2, 1 * kj::SECONDS}, 16);
  EXPECT_TRUE(limiter.admit("a", t0));
  for (int i = 0; i < 100; ++i)
    EXPECT_FALSE(limiter.admit("a", t0));  // refused by its own bucket: the total is untouched
  EXPECT_TRUE(limiter.admit("b", t0));
  EXPECT_FALSE(limiter.admit("c", t0));  // the total's burst of 2 is spent
  EXPECT_TRUE(limiter.admit("a", t0 + 1 * kj::SECONDS));
}

TEST(SourceLimiter, TableStaysBoundedAndForgetsRefilledSources) {
  SourceLimiter limiter({2, 1 * kj::SECONDS}, {1000, 1 * kj::MILLISECONDS}, 2);
  EXPECT_TRUE(limiter.admit("a", t0));
  EXPECT_TRUE(limiter.admit("b", t0));
  EXPECT_FALSE(limiter.admit("c", t0));  // both tracked buckets still hold information
  EXPECT_EQ(limiter.tracked(), 2u);
  EXPECT_TRUE(limiter.admit("c", t0 + 1 * kj::SECONDS));  // a and b have refilled: swept
  EXPECT_EQ(limiter.tracked(), 1u);
}

}  // namespace
}  // namespace shoal::peer::discovery
