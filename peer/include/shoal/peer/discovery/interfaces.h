// Which network interfaces discovery uses ([DSC-3]): every multicast-capable one (`--discover`) or
// the ones the user named (`--discover-iface`). listInterfaces() asks the kernel; choose() is the
// pure decision, so the rules are tested without touching the machine's interfaces.
#pragma once

#include <netinet/in.h>

#include <kj/array.h>
#include <kj/string.h>
#include <kj/vector.h>

namespace shoal::peer::discovery {

struct NetworkInterface {
  kj::String name;
  uint32_t index = 0;
  bool up = false;
  bool multicast = false;
  bool loopback = false;
  kj::Maybe<struct in_addr> ipv4;  // its first IPv4 address: announces go out over IPv4 only then
  bool ipv6 = false;               // has an IPv6 link-local address: announces to ff12::4747 too

  NetworkInterface clone() const;
};

struct InterfaceChoice {
  bool all = false;              // every interface that is up, multicast-capable and not loopback
  kj::Vector<kj::String> names;  // or exactly these
  bool any() const { return all || names.size() > 0; }
};

struct ChosenInterfaces {
  kj::Vector<NetworkInterface> chosen;
  kj::Vector<kj::String> problems;  // a named interface that is absent, down or not multicast
};

kj::Array<NetworkInterface> listInterfaces();
ChosenInterfaces choose(kj::ArrayPtr<const NetworkInterface> present,
                        const InterfaceChoice& choice);

}  // namespace shoal::peer::discovery
