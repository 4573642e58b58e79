// SourceWindow: the window settles near twice the bandwidth-delay product, so it grows with the
// round-trip time at equal bandwidth; stalls and busy answers shrink it; it never leaves [1, cap].
#include <shoal/peer/download/source-window.h>

#include <gtest/gtest.h>
#include <kj/debug.h>
#include <kj/vector.h>

#include <deque>
#include <utility>

namespace shoal::peer::download {
namespace {

constexpr uint32_t kChunk = 1 << 20;

// A source serving `bytesPerSecond` behind `rtt`, kept as busy as the window allows: every
// answer lets the next requests go. Returns the window after `answers` answers.
// Every answer carries `answerBytes` (a manifest of kChunk chunks whose files may be smaller).
uint32_t settle(double bytesPerSecond, kj::Duration rtt, uint32_t cap = 1000,
                uint32_t answers = 2000, uint32_t answerBytes = kChunk, uint64_t minBytes = 0) {
  SourceWindow window(cap, 2, kChunk, minBytes);
  auto now = kj::origin<kj::TimePoint>();
  auto serve = int64_t(answerBytes / bytesPerSecond * 1e9) * kj::NANOSECONDS;
  kj::TimePoint linkFree = now;
  std::deque<std::pair<kj::TimePoint, SendStamp>> inFlight;  // in arrival order
  for (uint32_t n = 0; n < answers; ++n) {
    while (inFlight.size() < window.size()) {
      auto stamp = window.onSent(now, uint32_t(inFlight.size()));
      linkFree = kj::max(linkFree, now) + serve;
      inFlight.emplace_back(linkFree + rtt, stamp);
    }
    auto [at, stamp] = inFlight.front();
    inFlight.pop_front();
    now = at;
    window.onDelivered(answerBytes, stamp, now);
  }
  return window.size();
}

TEST(SourceWindow, GrowsWithTheRoundTripTime) {
  // 100 MB/s: a 1 MiB chunk takes ~10 ms. At 5 ms RTT the product is under one chunk; at 100 ms
  // it is ~10 chunks.
  uint32_t nearby = settle(100e6, 5 * kj::MILLISECONDS);
  uint32_t far = settle(100e6, 100 * kj::MILLISECONDS);
  EXPECT_GE(nearby, 2u);
  EXPECT_LE(nearby, 8u);
  EXPECT_GE(far, 15u);
  EXPECT_LE(far, 50u);
  EXPECT_GT(far, 3 * nearby);
}

TEST(SourceWindow, SmallAnswersGetAWindowForTheirSize) {
  // Same link, same bytes in flight: an item of 16 KiB files in a 1 MiB-chunk manifest needs
  // ~64 times as many requests outstanding as one of full chunks (the window used to stay at 2).
  uint32_t whole = settle(100e6, 20 * kj::MILLISECONDS);
  uint32_t small = settle(100e6, 20 * kj::MILLISECONDS, 1000, 4000, 16 << 10);
  EXPECT_GE(whole, 3u);
  EXPECT_GT(small, 20 * whole);
  EXPECT_EQ(settle(100e6, 20 * kj::MILLISECONDS, 64, 4000, 16 << 10), 64u);
}

TEST(SourceWindow, AWindowHoldsAtLeastItsMinimumBytes) {
  // A fast source nearby: the product is a few 16 KiB answers (per-request costs, not the link,
  // limit them); the floor keeps 1 MiB of them outstanding, within the cap.
  uint32_t product = settle(100e6, 500 * kj::MICROSECONDS, 1000, 4000, 16 << 10);
  EXPECT_LT(product, 16u);
  EXPECT_EQ(settle(100e6, 500 * kj::MICROSECONDS, 1000, 4000, 16 << 10, 1 << 20), 64u);
  EXPECT_EQ(settle(100e6, 500 * kj::MICROSECONDS, 40, 4000, 16 << 10, 1 << 20), 40u);
  // Whole chunks: the floor is one chunk, below what the product gives anyway.
  EXPECT_EQ(settle(100e6, 5 * kj::MILLISECONDS, 1000, 2000, kChunk, 1 << 20),
            settle(100e6, 5 * kj::MILLISECONDS));
}

TEST(SourceWindow, GrowsWithTheBandwidth) {
  uint32_t slow = settle(10e6, 50 * kj::MILLISECONDS);
  uint32_t fast = settle(200e6, 50 * kj::MILLISECONDS);
  EXPECT_GT(fast, 4 * slow);
}

TEST(SourceWindow, StaysWithinItsCap) {
  EXPECT_EQ(settle(1e9, 500 * kj::MILLISECONDS, 64), 64u);
  SourceWindow window(1, 8, kChunk);
  EXPECT_EQ(window.size(), 1u);
}

TEST(SourceWindow, StallsHalveAndBusyCuts) {
  SourceWindow window(64, 16, kChunk);
  EXPECT_EQ(window.size(), 16u);
  window.onStall();
  EXPECT_EQ(window.size(), 8u);
  window.onBusy(3);
  EXPECT_EQ(window.size(), 3u);
  window.onBusy(0);
  EXPECT_EQ(window.size(), 1u);
  window.onStall();
  EXPECT_EQ(window.size(), 1u);
}

TEST(SourceWindow, RateAndLatencyAreMeasured) {
  SourceWindow window(64, 2, kChunk);
  EXPECT_EQ(window.rate(), 0);
  EXPECT_TRUE(window.minLatency() == nullptr);
  auto t0 = kj::origin<kj::TimePoint>();
  auto stamp = window.onSent(t0, 0);
  window.onDelivered(kChunk, stamp, t0 + 10 * kj::MILLISECONDS);
  EXPECT_EQ(KJ_ASSERT_NONNULL(window.minLatency()), 10 * kj::MILLISECONDS);
  EXPECT_NEAR(window.rate(), kChunk / 0.010, 1);
}

}  // namespace
}  // namespace shoal::peer::download
