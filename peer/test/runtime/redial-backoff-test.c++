// The redial schedule on virtual time: a refused static peer is dialled a handful of times in
// 16 s (not 70), never below half the current wait nor above the cap, and a session resets it.
#include <shoal/peer/runtime/redial-backoff.h>

#include <gtest/gtest.h>

namespace shoal::peer {
namespace {

TEST(RedialBackoff, RepeatedFailuresDialAHandfulOfTimesIn16Seconds) {
  RedialBackoff backoff(250 * kj::MILLISECONDS, 10 * kj::SECONDS, 42);
  kj::Duration now = 0 * kj::SECONDS;
  uint32_t dials = 0;
  while (now < 16 * kj::SECONDS) {
    ++dials;  // a dial at `now`, refused at once
    now += backoff.afterFailure();
  }
  // 250 ms doubling, each wait at least half its nominal value: at most 8 dials in 16 s.
  EXPECT_LE(dials, 8u);
  EXPECT_GE(dials, 5u);
  EXPECT_EQ(backoff.failures(), dials);
}

TEST(RedialBackoff, EachWaitLiesBetweenHalfAndAllOfItsNominalValueUpToTheCap) {
  RedialBackoff backoff(100 * kj::MILLISECONDS, 3 * kj::SECONDS, 7);
  kj::Duration nominal = 100 * kj::MILLISECONDS;
  for (int i = 0; i < 20; ++i) {
    auto wait = backoff.afterFailure();
    EXPECT_GE(wait, nominal / 2) << i;
    EXPECT_LE(wait, nominal) << i;
    nominal = kj::min(nominal * 2, 3 * kj::SECONDS);
  }
}

TEST(RedialBackoff, ASessionResetsTheSchedule) {
  RedialBackoff backoff(200 * kj::MILLISECONDS, 10 * kj::SECONDS, 1);
  for (int i = 0; i < 10; ++i)
    backoff.afterFailure();
  auto again = backoff.afterSession();
  EXPECT_LE(again, 200 * kj::MILLISECONDS);
  EXPECT_EQ(backoff.failures(), 0u);
  EXPECT_LE(backoff.afterFailure(), 200 * kj::MILLISECONDS);
}

TEST(RedialBackoff, JitterSpreadsPeersRefusedTogether) {
  // Two peers refused at the same instant come back at different times.
  RedialBackoff a(1 * kj::SECONDS, 60 * kj::SECONDS, 1);
  RedialBackoff b(1 * kj::SECONDS, 60 * kj::SECONDS, 2);
  uint32_t same = 0;
  for (int i = 0; i < 6; ++i)
    same += a.afterFailure() == b.afterFailure();
  EXPECT_LT(same, 6u);
  // And one seed replays one schedule.
  RedialBackoff c(1 * kj::SECONDS, 60 * kj::SECONDS, 1), d(1 * kj::SECONDS, 60 * kj::SECONDS, 1);
  for (int i = 0; i < 6; ++i)
    EXPECT_EQ(c.afterFailure(), d.afterFailure());
}

}  // namespace
}  // namespace shoal::peer
