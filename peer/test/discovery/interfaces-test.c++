// Which interfaces discovery uses ([DSC-3]): the pure choice, on made-up interface lists.
#include <shoal/peer/discovery/interfaces.h>

#include <gtest/gtest.h>
#include <kj/debug.h>

namespace shoal::peer::discovery {
namespace {

NetworkInterface iface(kj::StringPtr name, uint32_t index, bool up, bool multicast,
                       bool loopback = false) {
  NetworkInterface i;
  i.name = kj::str(name);
  i.index = index;
  i.up = up;
  i.multicast = multicast;
  i.loopback = loopback;
  return i;
}

kj::Array<NetworkInterface> machine() {
  return kj::arr(iface("lo", 1, true, false, true), iface("eth0", 2, true, true),
                 iface("wlan0", 3, false, true), iface("tun0", 4, true, false),
                 iface("lomc", 5, true, true, true));
}

kj::String names(const ChosenInterfaces& c) {
  kj::Vector<kj::StringPtr> out;
  for (auto& i : c.chosen)
    out.add(i.name);
  return kj::strArray(out, ",");
}

TEST(Interfaces, AllMeansUpMulticastAndNotLoopback) {
  InterfaceChoice all;
  all.all = true;
  auto chosen = choose(machine(), all);
  EXPECT_EQ(names(chosen), "eth0");
  EXPECT_EQ(chosen.problems.size(), 0u);
}

TEST(Interfaces, NamedOnesOnlyAndWhyOthersCannotBeUsed) {
  InterfaceChoice some;
  some.names.add(kj::str("wlan0"));
  some.names.add(kj::str("tun0"));
  some.names.add(kj::str("eth7"));
  some.names.add(kj::str("lomc"));  // named explicitly: a multicast loopback is allowed
  auto chosen = choose(machine(), some);
  EXPECT_EQ(names(chosen), "lomc");
  ASSERT_EQ(chosen.problems.size(), 3u);
  EXPECT_EQ(chosen.problems[0], "wlan0 is down");
  EXPECT_EQ(chosen.problems[1], "tun0 cannot multicast");
  EXPECT_EQ(chosen.problems[2], "no interface eth7");
}

TEST(Interfaces, NothingChosenMeansNothing) {
  auto chosen = choose(machine(), InterfaceChoice());
  EXPECT_EQ(chosen.chosen.size(), 0u);
  EXPECT_FALSE(InterfaceChoice().any());
}

TEST(Interfaces, TheMachinesListHasNamesAndIndexes) {
  // Reads this process's namespace; asserts only what every Linux namespace has: a loopback.
  bool sawLoopback = false;
  for (auto& i : listInterfaces()) {
    EXPECT_GT(i.index, 0u);
    EXPECT_GT(i.name.size(), 0u);
    sawLoopback = sawLoopback || i.loopback;
  }
  EXPECT_TRUE(sawLoopback);
}

}  // namespace
}  // namespace shoal::peer::discovery
