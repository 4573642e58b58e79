#include <shoal/peer/runtime/upload-limit.h>

#include <gtest/gtest.h>

namespace shoal::peer {
namespace {

constexpr auto t0 = kj::origin<kj::TimePoint>() + 1000 * kj::SECONDS;

TEST(UploadLimit, ABurstOfOneSecondGoesAtOnceThenTheRateHolds) {
  UploadLimit limit(1000, t0);
  EXPECT_EQ(limit.reserve(1000, t0), 0 * kj::SECONDS);  // the full bucket
  // The next 500 bytes wait half a second, the 500 after them a whole one: the debt accumulates.
  EXPECT_EQ(limit.reserve(500, t0), 500 * kj::MILLISECONDS);
  EXPECT_EQ(limit.reserve(500, t0), 1000 * kj::MILLISECONDS);
}

TEST(UploadLimit, TimeRefillsTheBucketButNeverBeyondOneSecond) {
  UploadLimit limit(1000, t0);
  EXPECT_EQ(limit.reserve(1000, t0), 0 * kj::SECONDS);
  EXPECT_EQ(limit.reserve(250, t0 + 250 * kj::MILLISECONDS), 0 * kj::SECONDS);
  // An hour idle refills one second's worth, not an hour's.
  auto later = t0 + 3600 * kj::SECONDS;
  EXPECT_EQ(limit.reserve(1000, later), 0 * kj::SECONDS);
  EXPECT_EQ(limit.reserve(100, later), 100 * kj::MILLISECONDS);
}

TEST(UploadLimit, AChunkLargerThanTheBucketWaitsForItsDebt) {
  UploadLimit limit(1000, t0);
  EXPECT_EQ(limit.reserve(3000, t0), 2000 * kj::MILLISECONDS);
  // After the wait the debt is paid: the next byte waits for one byte's time only.
  EXPECT_EQ(limit.reserve(1, t0 + 2000 * kj::MILLISECONDS), 1 * kj::MILLISECONDS);
}

}  // namespace
}  // namespace shoal::peer
