// PeerCandidates on virtual time: who is dialled, when, and when a candidate is forgotten
// ([DSC-11]..[DSC-13]). Ids: we are 0x50; 0x20 is lower than us, 0x80 higher.
#include <shoal/peer/discovery/candidates.h>

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

const PeerId self = idOf(0x50), lower = idOf(0x20), higher = idOf(0x80);

Sighting beacon(const PeerId& id, uint64_t instance = 1, kj::StringPtr address = "10.0.0.9:4747") {
  return Sighting{FoundBy::beacon, id, instance, kj::str(address)};
}

class CandidatesTest : public testing::Test {
 protected:
  ~CandidatesTest() noexcept override {}  // kj::Own's destructor is noexcept(false)

  CandidatesConfig config;
  kj::Own<PeerCandidates> candidates = kj::heap<PeerCandidates>(self, config);

  uint64_t ticket = 0;  // of the last dial taken

  // Dials since the last call, as "address" strings.
  kj::Vector<kj::String> dials() {
    kj::Vector<kj::String> out;
    for (auto& action : candidates->takeActions()) {
      auto& dial = action.get<action::Dial>();
      out.add(kj::str(dial.address));
      ticket = dial.ticket;
    }
    return out;
  }
  size_t dialCount() { return dials().size(); }
};

TEST_F(CandidatesTest, TheLowerIdDialsAtOnceTheHigherWaits) {
  // We are higher than `lower`: it should dial us, so we wait yieldDelay.
  candidates->heard(beacon(lower, 1, "10.0.0.2:4747"), t0);
  EXPECT_EQ(dialCount(), 0u);
  EXPECT_EQ(KJ_ASSERT_NONNULL(candidates->nextDeadline()), t0 + config.yieldDelay);
  candidates->tick(t0 + config.yieldDelay - 1 * kj::MILLISECONDS);
  EXPECT_EQ(dialCount(), 0u);
  candidates->tick(t0 + config.yieldDelay);
  auto d = dials();
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(d[0], "10.0.0.2:4747");
  // We are lower than `higher`: we dial at once.
  candidates->heard(beacon(higher, 1, "10.0.0.3:4747"), t0);
  EXPECT_EQ(dialCount(), 1u);
  auto events = candidates->takeEvents();
  ASSERT_EQ(events.size(), 2u);
  EXPECT_TRUE(events[0].is<event::Found>());
}

TEST_F(CandidatesTest, TheOtherSidesDialMakesOursUnneeded) {
  candidates->heard(beacon(lower), t0);
  candidates->peerUp(lower, 1, t0 + 10 * kj::MILLISECONDS);  // it dialled us
  candidates->tick(t0 + config.yieldDelay);
  EXPECT_EQ(dialCount(), 0u);
  // Announces keep coming: still nothing to do.
  for (int i = 1; i < 10; ++i)
    candidates->heard(beacon(lower), t0 + i * 5 * kj::SECONDS);
  EXPECT_EQ(dialCount(), 0u);
}

TEST_F(CandidatesTest, OneDialAtATime) {
  candidates->heard(beacon(higher), t0);
  EXPECT_EQ(dialCount(), 1u);
  EXPECT_TRUE(candidates->isDialling(higher));
  candidates->heard(beacon(higher), t0 + 5 * kj::SECONDS);
  candidates->tick(t0 + 6 * kj::SECONDS);
  EXPECT_EQ(dialCount(), 0u);
  candidates->peerUp(higher, 1, t0 + 7 * kj::SECONDS);
  candidates->dialEnded(higher, ticket, DialOutcome::established, t0 + 7 * kj::SECONDS);
  candidates->heard(beacon(higher), t0 + 10 * kj::SECONDS);
  EXPECT_EQ(dialCount(), 0u);
}

TEST_F(CandidatesTest, FailedDialsBackOffDoublingToTheCap) {
  config.redialMin = 1 * kj::SECONDS;
  config.redialMax = 8 * kj::SECONDS;
  candidates = kj::heap<PeerCandidates>(self, config);
  auto now = t0;
  candidates->heard(beacon(higher), now);
  ASSERT_EQ(dialCount(), 1u);
  kj::Vector<int64_t> waits;
  for (int i = 0; i < 6; ++i) {
    candidates->dialEnded(higher, ticket, DialOutcome::failed, now);
    auto next = KJ_ASSERT_NONNULL(candidates->nextDeadline());
    waits.add((next - now) / kj::SECONDS);
    // Announces in between do not hurry the next dial.
    candidates->heard(beacon(higher), next - 1 * kj::MILLISECONDS);
    EXPECT_EQ(dialCount(), 0u);
    candidates->tick(next);
    ASSERT_EQ(dialCount(), 1u);
    now = next;
  }
  EXPECT_EQ(waits, kj::arr<int64_t>(1, 2, 4, 8, 8, 8));
}

TEST_F(CandidatesTest, AnotherPeerAnsweringIsAFailedDialOfTheClaimedOne) {
  // [DSC-8]: a session with whoever answered proves nothing about the announced id.
  candidates->heard(beacon(higher, 1, "10.0.0.3:4747"), t0);
  ASSERT_EQ(dialCount(), 1u);
  candidates->peerUp(lower, 7, t0);  // TLS proved someone else
  candidates->dialEnded(higher, ticket, DialOutcome::otherPeer, t0);
  EXPECT_FALSE(candidates->isDialling(higher));
  // Heard at another address: dialled there once the backoff has passed.
  candidates->heard(beacon(higher, 1, "10.0.0.4:4747"), t0 + 1 * kj::MILLISECONDS);
  candidates->tick(t0 + config.redialMin);
  auto after = dials();
  ASSERT_EQ(after.size(), 1u);
  EXPECT_EQ(after[0], "10.0.0.4:4747");
}

TEST_F(CandidatesTest, ANewInstanceReplacesAStaleSessionAtOnce) {
  candidates->heard(beacon(higher, 1), t0);
  ASSERT_EQ(dialCount(), 1u);
  candidates->peerUp(higher, 1, t0);
  candidates->dialEnded(higher, ticket, DialOutcome::established, t0);
  candidates->takeEvents();
  // It was killed and restarted; our session to the old instance is not dead yet.
  candidates->heard(beacon(higher, 2), t0 + 3 * kj::SECONDS);
  EXPECT_EQ(dialCount(), 1u);
  auto events = candidates->takeEvents();
  ASSERT_EQ(events.size(), 1u);
  ASSERT_TRUE(events[0].is<event::Restarted>());
  EXPECT_EQ(events[0].get<event::Restarted>().oldInstance, 1u);
  EXPECT_EQ(events[0].get<event::Restarted>().newInstance, 2u);
  // The new session replaces the old one ([HS-18]): nothing more to do.
  candidates->peerUp(higher, 2, t0 + 4 * kj::SECONDS);
  candidates->dialEnded(higher, ticket, DialOutcome::established, t0 + 4 * kj::SECONDS);
  candidates->heard(beacon(higher, 2), t0 + 8 * kj::SECONDS);
  EXPECT_EQ(dialCount(), 0u);
}

TEST_F(CandidatesTest, AnOlderDialEndingLeavesTheCurrentOneAlone) {
  candidates->heard(beacon(higher, 1), t0);
  ASSERT_EQ(dialCount(), 1u);
  auto first = ticket;
  candidates->peerUp(higher, 1, t0);
  candidates->heard(beacon(higher, 2), t0 + 1 * kj::SECONDS);  // restarted: dial again
  ASSERT_EQ(dialCount(), 1u);
  // The first connection (to the dead instance) ends now; the second dial is still going.
  candidates->dialEnded(higher, first, DialOutcome::failed, t0 + 2 * kj::SECONDS);
  EXPECT_TRUE(candidates->isDialling(higher));
  candidates->dialEnded(higher, first, DialOutcome::established, t0 + 2 * kj::SECONDS);
  EXPECT_TRUE(candidates->isDialling(higher));
  candidates->dialEnded(higher, ticket, DialOutcome::failed, t0 + 3 * kj::SECONDS);
  EXPECT_FALSE(candidates->isDialling(higher));
}

TEST_F(CandidatesTest, ARestartAlsoResetsTheBackoff) {
  auto now = t0;
  candidates->heard(beacon(higher, 1), now);
  for (int i = 0; i < 4; ++i) {
    ASSERT_EQ(dialCount(), 1u);
    candidates->dialEnded(higher, ticket, DialOutcome::failed, now);
    now = KJ_ASSERT_NONNULL(candidates->nextDeadline());
    candidates->tick(now);
  }
  ASSERT_EQ(dialCount(), 1u);
  candidates->heard(beacon(higher, 1), now);  // still announcing, still unreachable
  candidates->dialEnded(higher, ticket, DialOutcome::failed, now);  // the next dial is 16 s away
  EXPECT_EQ(KJ_ASSERT_NONNULL(candidates->nextDeadline()) - now, 16 * kj::SECONDS);
  candidates->heard(beacon(higher, 2), now + 1 * kj::SECONDS);  // a new instance: at once
  EXPECT_EQ(dialCount(), 1u);
}

TEST_F(CandidatesTest, SilentCandidatesExpireSessionsDoNot) {
  candidates->heard(beacon(higher), t0);
  ASSERT_EQ(dialCount(), 1u);
  candidates->peerUp(higher, 1, t0);
  candidates->dialEnded(higher, ticket, DialOutcome::established, t0);
  candidates->takeEvents();
  candidates->heard(beacon(higher), t0 + 5 * kj::SECONDS);  // refreshes the expiry
  EXPECT_EQ(KJ_ASSERT_NONNULL(candidates->nextDeadline()),
            t0 + 5 * kj::SECONDS + config.expireAfter);
  candidates->tick(t0 + 5 * kj::SECONDS + config.expireAfter - 1 * kj::MILLISECONDS);
  EXPECT_EQ(candidates->size(), 1u);
  candidates->tick(t0 + 5 * kj::SECONDS + config.expireAfter);
  EXPECT_EQ(candidates->size(), 0u);
  auto events = candidates->takeEvents();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_TRUE(events[0].is<event::Expired>());
  EXPECT_EQ(dialCount(), 0u);  // the session is liveness's business, not ours
  EXPECT_EQ(candidates->nextDeadline(), nullptr);
}

TEST_F(CandidatesTest, AfterASessionEndsOnlyAFreshSightingLeadsToADial) {
  candidates->heard(beacon(higher), t0);
  ASSERT_EQ(dialCount(), 1u);
  candidates->peerUp(higher, 1, t0);
  candidates->dialEnded(higher, ticket, DialOutcome::established, t0);
  candidates->peerDown(higher, t0 + 1 * kj::SECONDS);  // it said Goodbye
  candidates->tick(t0 + 2 * kj::SECONDS);
  EXPECT_EQ(dialCount(), 0u);
  candidates->heard(beacon(higher), t0 + 4 * kj::SECONDS);  // it is back
  EXPECT_EQ(dialCount(), 1u);
}

TEST_F(CandidatesTest, MdnsSightingsLastUntilWithdrawn) {
  Sighting s{FoundBy::mdns, higher, 0, kj::str("10.0.0.7:4747")};
  candidates->heard(kj::mv(s), t0);
  EXPECT_EQ(dialCount(), 1u);
  candidates->tick(t0 + 1000 * kj::SECONDS);
  EXPECT_EQ(candidates->size(), 1u);
  // The beacon sees it too; the beacon's expiry does not end the mDNS listing.
  candidates->heard(beacon(higher), t0 + 1000 * kj::SECONDS);
  candidates->tick(t0 + 2000 * kj::SECONDS);
  EXPECT_EQ(candidates->size(), 1u);
  auto origin = KJ_ASSERT_NONNULL(candidates->origin(higher));
  EXPECT_EQ(origin.by, FoundBy::mdns);
  EXPECT_EQ(origin.since, t0);
  candidates->withdrawn(FoundBy::mdns, higher, t0 + 2000 * kj::SECONDS);
  EXPECT_EQ(candidates->size(), 0u);
}

TEST_F(CandidatesTest, OurOwnIdIsNeverACandidate) {
  candidates->heard(beacon(self), t0);
  EXPECT_EQ(candidates->size(), 0u);
  EXPECT_EQ(dialCount(), 0u);
}

TEST_F(CandidatesTest, TheTableIsBoundedAndEvictsTheLongestSilent) {
  config.maxCandidates = 3;
  candidates = kj::heap<PeerCandidates>(self, config);
  candidates->heard(beacon(idOf(0x10)), t0);  // lower ids: not dialled yet
  candidates->heard(beacon(idOf(0x11)), t0 + 1 * kj::MILLISECONDS);
  candidates->heard(beacon(idOf(0x12)), t0 + 2 * kj::MILLISECONDS);
  candidates->heard(beacon(idOf(0x10)), t0 + 3 * kj::MILLISECONDS);  // refreshed
  candidates->heard(beacon(idOf(0x13)), t0 + 4 * kj::MILLISECONDS);
  EXPECT_EQ(candidates->size(), 3u);
  EXPECT_EQ(candidates->origin(idOf(0x11)), nullptr);
  EXPECT_NE(candidates->origin(idOf(0x10)), nullptr);
  // Candidates being dialled are never evicted: with all of them dialling, a new one is dropped.
  config.maxCandidates = 2;
  candidates = kj::heap<PeerCandidates>(self, config);
  candidates->heard(beacon(idOf(0x90)), t0);
  candidates->heard(beacon(idOf(0x91)), t0);
  ASSERT_EQ(dialCount(), 2u);
  candidates->heard(beacon(idOf(0x92)), t0);
  EXPECT_EQ(candidates->size(), 2u);
  EXPECT_EQ(candidates->origin(idOf(0x92)), nullptr);
  EXPECT_EQ(dialCount(), 0u);
}

TEST_F(CandidatesTest, TheLatestAddressIsDialled) {
  candidates->heard(beacon(lower, 1, "10.0.0.2:4747"), t0);
  candidates->heard(beacon(lower, 1, "[fe80::2%eth0]:4747"), t0 + 500 * kj::MILLISECONDS);
  candidates->tick(t0 + config.yieldDelay);
  auto d = dials();
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(d[0], "[fe80::2%eth0]:4747");
}

}  // namespace
}  // namespace shoal::peer::discovery
