// Beacon on virtual time: when announces go out ([DSC-5]), which datagrams are read and which are
// dropped ([DSC-7], [DSC-10], [DSC-14]), and that nothing received ever causes a send ([DSC-9]).
#include <shoal/peer/discovery/beacon.h>

#include <gtest/gtest.h>
#include <kj/debug.h>

namespace shoal::peer::discovery {
namespace {

const kj::TimePoint t0 = kj::origin<kj::TimePoint>() + 1000 * kj::SECONDS;

PeerId idOf(uint8_t b) {
  PeerId id;
  for (auto& x : id.bytes)
    x = b;
  return id;
}

kj::Array<kj::byte> announceFrom(uint8_t id, uint16_t versionMin = 1, uint16_t versionMax = 1) {
  Announce a;
  a.peerId = idOf(id);
  a.instanceId = 77;
  a.port = 4747;
  a.name = kj::str("peer");
  a.versionMin = versionMin;
  a.versionMax = versionMax;
  a.summary.epoch = 5;
  a.summary.rev = 1;
  a.summary.digest = idOf(3);
  return encodeAnnounce(a);
}

kj::Maybe<DropReason> dropOf(kj::OneOf<Announce, Dropped> result) {
  KJ_IF_MAYBE (d, result.tryGet<Dropped>()) {
    return d->reason;
  }
  return nullptr;
}

TEST(Beacon, AnnouncesAtStartThenEveryIntervalWithJitter) {
  BeaconConfig config;
  Beacon beacon(config, idOf(1), 1, 1, 42);
  EXPECT_EQ(beacon.nextSend(), nullptr);
  EXPECT_FALSE(beacon.takeSend(t0));  // not started: silent
  beacon.start(t0);
  EXPECT_TRUE(beacon.takeSend(t0));
  EXPECT_FALSE(beacon.takeSend(t0));
  auto now = t0;
  auto shortest = 1000 * kj::SECONDS, longest = 0 * kj::SECONDS;
  for (int i = 0; i < 2000; ++i) {
    auto next = KJ_ASSERT_NONNULL(beacon.nextSend());
    auto wait = next - now;
    ASSERT_GE(wait, config.interval - config.jitter);
    ASSERT_LE(wait, config.interval + config.jitter);
    shortest = kj::min(shortest, wait);
    longest = kj::max(longest, wait);
    EXPECT_FALSE(beacon.takeSend(next - 1 * kj::NANOSECONDS));
    EXPECT_TRUE(beacon.takeSend(next));
    now = next;
  }
  // Uniform over ±1 s: 2000 draws reach well into both ends.
  EXPECT_LT(shortest, config.interval - config.jitter * 9 / 10);
  EXPECT_GT(longest, config.interval + config.jitter * 9 / 10);
  EXPECT_EQ(beacon.stats().sent, 2001u);
}

TEST(Beacon, PeersStartedTogetherDrift) {
  Beacon a(BeaconConfig(), idOf(1), 1, 1, 1), b(BeaconConfig(), idOf(2), 1, 1, 2);
  a.start(t0);
  b.start(t0);
  ASSERT_TRUE(a.takeSend(t0));
  ASSERT_TRUE(b.takeSend(t0));
  EXPECT_NE(KJ_ASSERT_NONNULL(a.nextSend()), KJ_ASSERT_NONNULL(b.nextSend()));
}

TEST(Beacon, LibraryChangeAnnouncesSoonButNotInABurst) {
  BeaconConfig config;
  Beacon beacon(config, idOf(1), 1, 1, 7);
  beacon.localChanged(t0);  // before start: nothing to hurry
  EXPECT_EQ(beacon.nextSend(), nullptr);
  beacon.start(t0);
  ASSERT_TRUE(beacon.takeSend(t0));
  // 100 ms later: the change waits for the minimum gap, not for the whole interval.
  beacon.localChanged(t0 + 100 * kj::MILLISECONDS);
  EXPECT_EQ(KJ_ASSERT_NONNULL(beacon.nextSend()), t0 + config.minGap);
  ASSERT_TRUE(beacon.takeSend(t0 + config.minGap));
  // Long after the last announce: at once.
  auto later = t0 + config.minGap + 3 * kj::SECONDS;
  beacon.localChanged(later);
  EXPECT_EQ(KJ_ASSERT_NONNULL(beacon.nextSend()), later);
  // Many changes in a row still mean one announce per gap.
  ASSERT_TRUE(beacon.takeSend(later));
  for (int i = 1; i <= 50; ++i)
    beacon.localChanged(later + i * kj::MILLISECONDS);
  EXPECT_EQ(KJ_ASSERT_NONNULL(beacon.nextSend()), later + config.minGap);
}

TEST(Beacon, ReceivingNeverCausesASend) {
  Beacon beacon(BeaconConfig(), idOf(1), 1, 1, 7);
  beacon.start(t0);
  ASSERT_TRUE(beacon.takeSend(t0));
  auto next = KJ_ASSERT_NONNULL(beacon.nextSend());
  auto datagram = announceFrom(2);
  for (int i = 0; i < 1000; ++i) {
    auto source = kj::str("10.0.", i / 250, ".", i % 250);
    beacon.receive(source, datagram, false, t0 + i * kj::MILLISECONDS);
  }
  EXPECT_EQ(KJ_ASSERT_NONNULL(beacon.nextSend()), next);
  EXPECT_FALSE(beacon.takeSend(t0 + 1 * kj::SECONDS));
  EXPECT_EQ(beacon.stats().sent, 1u);
}

TEST(Beacon, DropsOwnIncompatibleOversizeAndInvalid) {
  Beacon beacon(BeaconConfig(), idOf(1), 1, 1, 7);
  EXPECT_EQ(dropOf(beacon.receive("10.0.0.2", announceFrom(1), false, t0)), DropReason::own);
  EXPECT_EQ(dropOf(beacon.receive("10.0.0.3", announceFrom(2, 2, 3), false, t0)),
            DropReason::incompatible);
  EXPECT_EQ(dropOf(beacon.receive("10.0.0.4", announceFrom(2), true, t0)), DropReason::tooLarge);
  kj::byte noise[64] = {};
  EXPECT_EQ(dropOf(beacon.receive("10.0.0.5", noise, false, t0)), DropReason::invalid);
  auto ok = beacon.receive("10.0.0.6", announceFrom(2, 1, 4), false, t0);
  ASSERT_TRUE(ok.is<Announce>());
  EXPECT_EQ(ok.get<Announce>().peerId, idOf(2));
  auto& stats = beacon.stats();
  EXPECT_EQ(stats.received, 5u);
  EXPECT_EQ(stats.accepted, 1u);
  EXPECT_EQ(stats.dropped[size_t(DropReason::own)], 1u);
  EXPECT_EQ(stats.dropped[size_t(DropReason::incompatible)], 1u);
  EXPECT_EQ(stats.dropped[size_t(DropReason::tooLarge)], 1u);
  EXPECT_EQ(stats.dropped[size_t(DropReason::invalid)], 1u);
}

TEST(Beacon, RateLimitsEachSourceAndAllTogether) {
  BeaconConfig config;
  config.perSource = {4, 1 * kj::SECONDS};
  config.total = {10, 100 * kj::MILLISECONDS};
  Beacon beacon(config, idOf(1), 1, 1, 7);
  auto datagram = announceFrom(2);
  for (int i = 0; i < 4; ++i)
    EXPECT_TRUE(beacon.receive("10.0.0.2", datagram, false, t0).is<Announce>()) << i;
  EXPECT_EQ(dropOf(beacon.receive("10.0.0.2", datagram, false, t0)), DropReason::rateLimited);
  // Another source is not held back by the first one's flood.
  EXPECT_TRUE(beacon.receive("10.0.0.3", datagram, false, t0).is<Announce>());
  // One more from the first source a second later.
  EXPECT_TRUE(beacon.receive("10.0.0.2", datagram, false, t0 + 1 * kj::SECONDS).is<Announce>());
  EXPECT_EQ(dropOf(beacon.receive("10.0.0.2", datagram, false, t0 + 1 * kj::SECONDS)),
            DropReason::rateLimited);
  // Total: 10 at once, whatever the sources.
  auto later = t0 + 100 * kj::SECONDS;
  int accepted = 0;
  for (int i = 0; i < 30; ++i) {
    if (beacon.receive(kj::str("10.1.0.", i), datagram, false, later).is<Announce>()) ++accepted;
  }
  EXPECT_EQ(accepted, 10);
  EXPECT_EQ(beacon.stats().dropped[size_t(DropReason::rateLimited)], 22u);
}

}  // namespace
}  // namespace shoal::peer::discovery
