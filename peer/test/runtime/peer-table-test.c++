// PeerTable: the reconnect race and the duplicate rule, deterministically. The race: connection 1
// to P fails on its reading side, P reconnects (connection 2) and is admitted, and only then
// does connection 1's writer end. Connection 1 must not remove connection 2's entry.
#include <shoal/peer/runtime/peer-table.h>

#include <gtest/gtest.h>

namespace shoal::peer {
namespace {

PeerId idOf(uint8_t b) {
  PeerId id;
  for (auto& x : id.bytes)
    x = b;
  return id;
}

TEST(PeerTable, StaleConnectionNeverRemovesItsReconnectedSuccessor) {
  PeerTable table(idOf(1));
  PeerId p = idOf(9);
  // Connection 1: P dialled us.
  EXPECT_EQ(table.admit(p, 1, {Role::responder, 77}).admitted, PeerTable::Admitted::added);
  // Its reader fails; P restarts and reconnects before connection 1's writer has ended.
  auto second = table.admit(p, 2, {Role::responder, 78});
  EXPECT_EQ(second.admitted, PeerTable::Admitted::replaced);
  EXPECT_EQ(second.loser, 1u);
  // Now connection 1's writer ends: the entry belongs to connection 2 and stays.
  EXPECT_FALSE(table.writerEnded(p, 1));
  EXPECT_TRUE(table.holds(p, 2));
  EXPECT_TRUE(table.isAvailable(p));
  // A Goodbye arriving late on connection 1 does not mark P as leaving either.
  EXPECT_FALSE(table.markLeaving(p, 1));
  EXPECT_TRUE(table.isAvailable(p));
  // Connection 2's own writer end does remove it.
  EXPECT_TRUE(table.writerEnded(p, 2));
  EXPECT_EQ(table.find(p), nullptr);
}

TEST(PeerTable, SameInstanceDuplicateFollowsTheInitiatorRule) {
  PeerId low = idOf(1), high = idOf(2);
  PeerTable table(low);  // we are the lower id
  // Existing: high dialled us. Incoming: we dialled high. Our dial wins ([HS-17]).
  table.admit(high, 1, {Role::responder, 5});
  auto result = table.admit(high, 2, {Role::initiator, 5});
  EXPECT_EQ(result.admitted, PeerTable::Admitted::replaced);
  EXPECT_EQ(result.loser, 1u);
  // And the other way round the existing one stays.
  PeerTable other(low);
  other.admit(high, 1, {Role::initiator, 5});
  auto refused = other.admit(high, 2, {Role::responder, 5});
  EXPECT_EQ(refused.admitted, PeerTable::Admitted::refused);
  EXPECT_EQ(refused.loser, 2u);
  EXPECT_TRUE(other.holds(high, 1));
}

TEST(PeerTable, LeavingIsMarkedAtOnce) {
  PeerTable table(idOf(1));
  table.admit(idOf(3), 4, {Role::initiator, 1});
  EXPECT_TRUE(table.markLeaving(idOf(3), 4));
  EXPECT_FALSE(table.isAvailable(idOf(3)));
  EXPECT_NE(table.find(idOf(3)), nullptr);  // still listed until its writer ends
}

TEST(PeerTable, WhenGoneResolvesOnRemoval) {
  kj::EventLoop loop;
  kj::WaitScope ws(loop);
  PeerTable table(idOf(1));
  EXPECT_TRUE(table.whenGone(idOf(3)).poll(ws));  // not there: resolves at once
  table.admit(idOf(3), 4, {Role::initiator, 1});
  auto gone = table.whenGone(idOf(3));
  EXPECT_FALSE(gone.poll(ws));
  table.writerEnded(idOf(3), 99);  // a stale generation: still there
  EXPECT_FALSE(gone.poll(ws));
  table.writerEnded(idOf(3), 4);
  EXPECT_TRUE(gone.poll(ws));
}

}  // namespace
}  // namespace shoal::peer
