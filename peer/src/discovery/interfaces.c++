#include <shoal/peer/discovery/interfaces.h>

#include <ifaddrs.h>
#include <kj/debug.h>
#include <kj/map.h>
#include <net/if.h>
#include <shoal/mutant.h>

namespace shoal::peer::discovery {

NetworkInterface NetworkInterface::clone() const {
  return NetworkInterface{kj::str(name), index, up, multicast, loopback, ipv4, ipv6};
}

kj::Array<NetworkInterface> listInterfaces() {
  struct ifaddrs* list = nullptr;
  KJ_SYSCALL(getifaddrs(&list));
  KJ_DEFER(freeifaddrs(list));
  kj::TreeMap<kj::String, NetworkInterface> byName;
  for (auto* a = list; a != nullptr; a = a->ifa_next) {
    auto& entry = byName.findOrCreate(kj::StringPtr(a->ifa_name), [&]() {
      NetworkInterface fresh;
      fresh.name = kj::str(a->ifa_name);
      fresh.index = if_nametoindex(a->ifa_name);
      fresh.up = (a->ifa_flags & IFF_UP) != 0;
      fresh.multicast = (a->ifa_flags & IFF_MULTICAST) != 0;
      fresh.loopback = (a->ifa_flags & IFF_LOOPBACK) != 0;
      return decltype(byName)::Entry{kj::str(a->ifa_name), kj::mv(fresh)};
    });
    if (a->ifa_addr == nullptr) continue;
    if (a->ifa_addr->sa_family == AF_INET && entry.ipv4 == nullptr) {
      entry.ipv4 = reinterpret_cast<struct sockaddr_in*>(a->ifa_addr)->sin_addr;
    } else if (a->ifa_addr->sa_family == AF_INET6) {
      auto& address = reinterpret_cast<struct sockaddr_in6*>(a->ifa_addr)->sin6_addr;
      if (IN6_IS_ADDR_LINKLOCAL(&address)) entry.ipv6 = true;
    }
  }
  kj::Vector<NetworkInterface> out;
  for (auto& entry : byName) {
    if (entry.value.index != 0) out.add(kj::mv(entry.value));
  }
  return out.releaseAsArray();
}

ChosenInterfaces choose(kj::ArrayPtr<const NetworkInterface> present,
                        const InterfaceChoice& choice) {
  ChosenInterfaces result;
  auto usable = [](const NetworkInterface& i) {
    return i.up && i.multicast;
  };
  if (choice.all || isMutant(Mutant::discoveryAnyInterface)) {
    for (auto& i : present) {
      if (usable(i) && !i.loopback) result.chosen.add(i.clone());
    }
    return result;
  }
  for (auto& wanted : choice.names) {
    kj::Maybe<const NetworkInterface&> match;
    for (auto& i : present) {
      if (i.name == wanted) match = i;
    }
    KJ_IF_MAYBE (i, match) {
      if (!i->up) {
        result.problems.add(kj::str(wanted, " is down"));
      } else if (!i->multicast) {
        result.problems.add(kj::str(wanted, " cannot multicast"));
      } else {
        result.chosen.add(i->clone());
      }
    } else {
      result.problems.add(kj::str("no interface ", wanted));
    }
  }
  return result;
}

}  // namespace shoal::peer::discovery
