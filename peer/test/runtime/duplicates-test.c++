// Both peers must reach the same verdict from their own point of view ([HS-17]).
#include <shoal/peer/runtime/duplicates.h>

#include <gtest/gtest.h>

namespace shoal::peer {
namespace {

PeerId idOf(uint8_t b) {
  PeerId id;
  for (auto& x : id.bytes)
    x = b;
  return id;
}

Role flip(Role r) {
  return r == Role::initiator ? Role::responder : Role::initiator;
}

// The initiator of a session seen from `self`.
const PeerId& initiatorOf(Role roleOfSelf, const PeerId& self, const PeerId& other) {
  return roleOfSelf == Role::initiator ? self : other;
}

TEST(Duplicates, CrossedDialsKeepTheLowerInitiatorOnBothSides) {
  PeerId low = idOf(1), high = idOf(2);
  // Two sessions: s1 dialled by low, s2 dialled by high. Each side sees them in either order.
  for (bool lowSeesS1First : {false, true}) {
    for (bool highSeesS1First : {false, true}) {
      // Low's view: in s1 it is the initiator.
      SessionFacts s1Low{Role::initiator, 7}, s2Low{Role::responder, 7};
      SessionFacts s1High{Role::responder, 9}, s2High{Role::initiator, 9};
      auto lowKeeps = lowSeesS1First ? resolveDuplicate(low, high, s1Low, s2Low)
                                     : resolveDuplicate(low, high, s2Low, s1Low);
      auto highKeeps = highSeesS1First ? resolveDuplicate(high, low, s1High, s2High)
                                       : resolveDuplicate(high, low, s2High, s1High);
      // Translate the verdicts back to "s1" or "s2".
      bool lowKeepsS1 = (lowKeeps == Keep::existing) == lowSeesS1First;
      bool highKeepsS1 = (highKeeps == Keep::existing) == highSeesS1First;
      EXPECT_TRUE(lowKeepsS1);   // s1's initiator is the lower id
      EXPECT_TRUE(highKeepsS1);  // and both agree
      EXPECT_EQ(initiatorOf(Role::initiator, low, high), low);
    }
  }
}

TEST(Duplicates, SameInitiatorKeepsTheNewer) {
  PeerId a = idOf(5), b = idOf(3);
  for (Role r : {Role::initiator, Role::responder}) {
    EXPECT_EQ(resolveDuplicate(a, b, {r, 1}, {r, 1}), Keep::incoming);
    EXPECT_EQ(resolveDuplicate(b, a, {flip(r), 2}, {flip(r), 2}), Keep::incoming);
  }
}

TEST(Duplicates, RestartedPeerReplacesItsOldSession) {
  PeerId local = idOf(1), remote = idOf(9);
  // Even when the old session would win the initiator rule.
  EXPECT_EQ(resolveDuplicate(local, remote, {Role::initiator, 1}, {Role::responder, 2}),
            Keep::incoming);
  EXPECT_EQ(resolveDuplicate(local, remote, {Role::initiator, 1}, {Role::responder, 1}),
            Keep::existing);
}

}  // namespace
}  // namespace shoal::peer
