// Admission on virtual time: floods of idle and slowloris connections, from one address and from
// sixteen, never keep an honest peer out — also when it shares the flood's address — and the
// first-bytes deadline cuts only connections that sent nothing.
#include <shoal/peer/runtime/admission.h>

#include <gtest/gtest.h>
#include <kj/debug.h>

namespace shoal::peer {
namespace {

constexpr kj::TimePoint kStart = kj::origin<kj::TimePoint>() + 1000 * kj::SECONDS;

struct Flood {
  Admission admission;
  uint64_t nextId = 1;
  kj::TimePoint now = kStart;
  uint64_t evicted = 0;
  kj::Vector<uint64_t> evictedIds;

  explicit Flood(AdmissionLimits limits = {}) : admission(limits) {}

  uint64_t connect(kj::StringPtr source, Progress progress = Progress::connected) {
    auto id = nextId++;
    KJ_IF_MAYBE (e, admission.admit(id, source, now, progress)) {
      ++evicted;
      evictedIds.add(e->id);
    }
    now += 1 * kj::MILLISECONDS;
    return id;
  }
  bool wasEvicted(uint64_t id) const {
    for (auto e : evictedIds)
      if (e == id) return true;
    return false;
  }
};

// An honest peer's handshake while a flood keeps arriving from `floodSource`: its ClientHello is
// waiting at accept and answered a few event-loop turns later (`quick` flood connections
// meanwhile); then a round trip to TLS completion and one more to Hello (`slow` flood connections
// each). Half the flood sends nothing, half a partial ClientHello.
void honestHandshake(Flood& f, uint64_t id, kj::StringPtr floodSource, uint32_t quick,
                     uint32_t slow) {
  auto flood = [&](uint32_t n) {
    for (uint32_t i = 0; i < n; ++i)
      f.connect(floodSource, i % 2 == 0 ? Progress::connected : Progress::receiving);
  };
  flood(quick);
  f.admission.advance(id, Progress::answered);
  flood(slow);
  f.admission.advance(id, Progress::secured);
  flood(slow);
}

TEST(Admission, ANewcomerIsNeverRefusedAndEvictsTheLeastProgressedOldest) {
  Flood f(AdmissionLimits{4, 4, 2 * kj::SECONDS});
  auto a = f.connect("10.0.0.1", Progress::receiving);
  auto b = f.connect("10.0.0.1");  // idle
  auto c = f.connect("10.0.0.1", Progress::answered);
  auto d = f.connect("10.0.0.1");  // idle, newer than b
  EXPECT_EQ(f.evicted, 0u);
  f.connect("10.0.0.1");
  ASSERT_EQ(f.evictedIds.size(), 1u);
  EXPECT_EQ(f.evictedIds[0], b);  // idle and oldest
  f.connect("10.0.0.1");
  EXPECT_EQ(f.evictedIds[1], d);
  EXPECT_EQ(f.admission.pending(), 4u);
  (void)a;
  (void)c;
}

TEST(Admission, ThePerAddressCapEvictsFromTheCrowdedAddressOnly) {
  Flood f(AdmissionLimits{64, 8, 2 * kj::SECONDS});
  auto honest = f.connect("192.168.1.20", Progress::receiving);
  for (int i = 0; i < 1000; ++i)
    f.connect("10.6.6.6", Progress::answered);  // even full ClientHellos: the cap still holds
  EXPECT_EQ(f.admission.pendingFrom("10.6.6.6"), 8u);
  EXPECT_EQ(f.evicted, 992u);
  EXPECT_FALSE(f.wasEvicted(honest));
  EXPECT_EQ(f.admission.pendingFrom("192.168.1.20"), 1u);
}

TEST(Admission, AnHonestPeerBehindTheFloodsOwnAddressGetsIn) {
  // 1,000 idle and 1,000 slowloris connections from one address, then an honest peer from the
  // same address (a NAT) while the flood goes on.
  Flood f;
  for (int i = 0; i < 1000; ++i)
    f.connect("10.0.0.1");
  for (int i = 0; i < 1000; ++i)
    f.connect("10.0.0.1", Progress::receiving);
  auto honest = f.connect("10.0.0.1", Progress::receiving);
  honestHandshake(f, honest, "10.0.0.1", 8, 1000);
  EXPECT_FALSE(f.wasEvicted(honest));
  f.admission.release(honest);  // established
  EXPECT_LE(f.admission.pending(), f.admission.limits().maxPending);
}

TEST(Admission, AnHonestPeerGetsInWhileSixteenAddressesFlood) {
  Flood f;
  kj::Vector<kj::String> sources;
  for (int i = 2; i <= 17; ++i)
    sources.add(kj::str("127.0.0.", i));
  for (int round = 0; round < 125; ++round) {
    for (auto& s : sources)
      f.connect(s, round % 2 == 0 ? Progress::connected : Progress::receiving);
  }
  EXPECT_EQ(f.admission.pending(), 64u);
  auto honest = f.connect("127.0.0.1", Progress::receiving);
  for (auto& s : sources)
    honestHandshake(f, honest, s, 2, 100);
  EXPECT_FALSE(f.wasEvicted(honest));
  // The flood's connections, all stuck before their first flight, are what made room.
  EXPECT_EQ(f.admission.pending(), 64u);
}

TEST(Admission, AStalledHandshakeIsEvictedOnlyAfterEveryLessAdvancedOne) {
  Flood f(AdmissionLimits{3, 3, 2 * kj::SECONDS});
  auto secured = f.connect("a", Progress::secured);
  auto answered = f.connect("b", Progress::answered);
  auto idle = f.connect("c");
  f.connect("d");
  EXPECT_EQ(f.evictedIds.back(), idle);
  f.connect("e", Progress::secured);  // the newest is now the idle "d": it goes first
  f.connect("f", Progress::secured);
  EXPECT_TRUE(f.wasEvicted(answered));
  EXPECT_FALSE(f.wasEvicted(secured));
}

TEST(Admission, TheFirstBytesDeadlineCutsOnlySilentConnections) {
  Flood f(AdmissionLimits{64, 8, 2 * kj::SECONDS});
  auto silent = f.connect("10.0.0.1");
  auto talking = f.connect("10.0.0.2");
  f.admission.advance(talking, Progress::receiving);
  auto deadline = KJ_ASSERT_NONNULL(f.admission.nextDeadline());
  EXPECT_EQ(deadline, kStart + 2 * kj::SECONDS);
  EXPECT_EQ(f.admission.expire(deadline - 1 * kj::NANOSECONDS).size(), 0u);
  auto expired = f.admission.expire(deadline);
  ASSERT_EQ(expired.size(), 1u);
  EXPECT_EQ(expired[0], silent);
  EXPECT_EQ(f.admission.nextDeadline(), nullptr);  // the talking one has no such deadline
  EXPECT_EQ(f.admission.pending(), 1u);
  EXPECT_EQ(f.admission.pendingFrom("10.0.0.1"), 0u);
}

TEST(Admission, ReleaseForgetsAConnectionAndItsAddress) {
  Flood f(AdmissionLimits{2, 1, 2 * kj::SECONDS});
  auto a = f.connect("10.0.0.1");
  f.admission.release(a);
  f.admission.release(a);                     // twice: harmless
  f.admission.advance(a, Progress::secured);  // after release: ignored
  EXPECT_EQ(f.admission.pending(), 0u);
  EXPECT_EQ(f.admission.pendingFrom("10.0.0.1"), 0u);
  f.connect("10.0.0.1");
  EXPECT_EQ(f.evicted, 0u);
}

TEST(Admission, ProgressNeverMovesBackwards) {
  Flood f(AdmissionLimits{2, 2, 2 * kj::SECONDS});
  auto a = f.connect("x", Progress::answered);
  f.admission.advance(a, Progress::receiving);
  auto b = f.connect("x", Progress::receiving);
  f.connect("x");
  EXPECT_EQ(f.evictedIds[0], b);  // `a` kept its `answered`
}

TEST(Admission, LimitsAreChecked) {
  EXPECT_NE((AdmissionLimits{0, 1, 1 * kj::SECONDS}.check()), nullptr);
  EXPECT_NE((AdmissionLimits{1, 0, 1 * kj::SECONDS}.check()), nullptr);
  EXPECT_NE((AdmissionLimits{1, 1, 0 * kj::SECONDS}.check()), nullptr);
  EXPECT_EQ(AdmissionLimits().check(), nullptr);
}

}  // namespace
}  // namespace shoal::peer
