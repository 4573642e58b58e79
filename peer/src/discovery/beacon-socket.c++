#include <shoal/peer/discovery/beacon-socket.h>

#include <arpa/inet.h>
#include <errno.h>
#include <kj/debug.h>
#include <kj/io.h>
#include <net/if.h>
#include <netinet/in.h>
#include <shoal/mutant.h>
#include <shoal/peer/discovery/announce.h>
#include <string.h>
#include <sys/socket.h>

namespace shoal::peer::discovery {

namespace {

constexpr const char* kGroup4 = "239.255.77.47";
constexpr const char* kGroup6 = "ff12::4747";

int domainOf(BeaconSocket::Family family) {
  return family == BeaconSocket::Family::ipv4 ? AF_INET : AF_INET6;
}

kj::AutoCloseFd openSocket(BeaconSocket::Family family) {
  int fd;
  KJ_SYSCALL(fd = socket(domainOf(family), SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  return kj::AutoCloseFd(fd);
}

void setInt(int fd, int level, int option, int value) {
  KJ_SYSCALL(setsockopt(fd, level, option, &value, sizeof(value)), level, option);
}

struct in6_addr group6() {
  struct in6_addr address;
  KJ_ASSERT(inet_pton(AF_INET6, kGroup6, &address) == 1);
  return address;
}

struct in_addr group4() {
  struct in_addr address;
  KJ_ASSERT(inet_pton(AF_INET, kGroup4, &address) == 1);
  return address;
}

// "1.2.3.4:5" or "[fe80::1]:5" (kj::NetworkAddress::toString()) without the port and brackets.
kj::String hostOf(kj::StringPtr address) {
  auto host = address.slice(0, KJ_ASSERT_NONNULL(address.findLast(':')));
  if (host.size() >= 2 && host[0] == '[') return kj::heapString(host.slice(1, host.size() - 1));
  return kj::heapString(host);
}

}  // namespace

BeaconSocket::BeaconSocket(kj::AsyncIoContext& io, Family family, uint16_t port)
    : which(family), group{} {
  auto fd = openSocket(family);
  setInt(fd, SOL_SOCKET, SO_REUSEADDR, 1);
  if (family == Family::ipv4) {
    setInt(fd, IPPROTO_IP, IP_MULTICAST_ALL, 0);
    setInt(fd, IPPROTO_IP, IP_PKTINFO, 1);
    struct sockaddr_in any = {};
    any.sin_family = AF_INET;
    any.sin_port = htons(port);
    KJ_SYSCALL(bind(fd, reinterpret_cast<struct sockaddr*>(&any), sizeof(any)), port);
    auto& to = reinterpret_cast<struct sockaddr_in&>(group);
    to.sin_family = AF_INET;
    to.sin_port = htons(port);
    to.sin_addr = group4();
    groupLength = sizeof(to);
  } else {
    setInt(fd, IPPROTO_IPV6, IPV6_V6ONLY, 1);
    setInt(fd, IPPROTO_IPV6, IPV6_MULTICAST_ALL, 0);
    setInt(fd, IPPROTO_IPV6, IPV6_RECVPKTINFO, 1);
    struct sockaddr_in6 any = {};
    any.sin6_family = AF_INET6;
    any.sin6_port = htons(port);
    KJ_SYSCALL(bind(fd, reinterpret_cast<struct sockaddr*>(&any), sizeof(any)), port);
    auto& to = reinterpret_cast<struct sockaddr_in6&>(group);
    to.sin6_family = AF_INET6;
    to.sin6_port = htons(port);
    to.sin6_addr = group6();
    groupLength = sizeof(to);
  }
  receiving = io.lowLevelProvider->wrapDatagramSocketFd(
      kj::mv(fd),
      kj::LowLevelAsyncIoProvider::ALREADY_CLOEXEC | kj::LowLevelAsyncIoProvider::ALREADY_NONBLOCK);
  receiver = receiving->makeReceiver(kj::DatagramReceiver::Capacity{
      kMaxDatagramBytes, CMSG_SPACE(sizeof(struct in6_pktinfo)) + CMSG_SPACE(sizeof(int))});
}

BeaconSocket::~BeaconSocket() noexcept(false) {
  // Memberships end with the socket; nothing to undo.
}

kj::StringPtr BeaconSocket::groupText() const {
  return which == Family::ipv4 ? "239.255.77.47:4747" : "[ff12::4747]:4747";
}

void BeaconSocket::membership(uint32_t index, bool join) {
  if (which == Family::ipv4) {
    struct ip_mreqn request = {};
    request.imr_multiaddr = group4();
    request.imr_ifindex = int(index);
    receiving->setsockopt(IPPROTO_IP, join ? IP_ADD_MEMBERSHIP : IP_DROP_MEMBERSHIP, &request,
                          sizeof(request));
  } else {
    struct ipv6_mreq request = {};
    request.ipv6mr_multiaddr = group6();
    request.ipv6mr_interface = index;
    receiving->setsockopt(IPPROTO_IPV6, join ? IPV6_JOIN_GROUP : IPV6_LEAVE_GROUP, &request,
                          sizeof(request));
  }
}

kj::AutoCloseFd BeaconSocket::openSender(const NetworkInterface& interface) {
  auto fd = openSocket(which);
  if (which == Family::ipv4) {
    struct ip_mreqn out = {};
    out.imr_ifindex = int(interface.index);
    KJ_SYSCALL(setsockopt(fd, IPPROTO_IP, IP_MULTICAST_IF, &out, sizeof(out)), interface.name);
    setInt(fd, IPPROTO_IP, IP_MULTICAST_TTL, isMutant(Mutant::beaconTtlTwo) ? 2 : 1);
    setInt(fd, IPPROTO_IP, IP_MULTICAST_LOOP, 1);
  } else {
    setInt(fd, IPPROTO_IPV6, IPV6_MULTICAST_IF, int(interface.index));
    setInt(fd, IPPROTO_IPV6, IPV6_MULTICAST_HOPS, 1);
    setInt(fd, IPPROTO_IPV6, IPV6_MULTICAST_LOOP, 1);
  }
  return fd;
}

size_t BeaconSocket::setInterfaces(kj::ArrayPtr<const NetworkInterface> interfaces) {
  kj::HashMap<uint32_t, const NetworkInterface*> wanted;
  for (auto& i : interfaces) {
    bool hasAddress = which == Family::ipv4 ? i.ipv4 != nullptr : i.ipv6;
    if (hasAddress) wanted.insert(i.index, &i);
  }
  kj::Vector<uint32_t> gone;
  for (auto& entry : senders) {
    if (wanted.find(entry.key) == nullptr) gone.add(entry.key);
  }
  for (auto index : gone) {
    // The interface may have vanished with its membership: leaving can fail, harmlessly.
    KJ_IF_MAYBE (exception, kj::runCatchingExceptions([&]() { membership(index, false); })) {
      KJ_LOG(INFO, "discovery: leaving the group failed", index, exception->getDescription());
    }
    senders.erase(index);
  }
  for (auto& entry : wanted) {
    if (senders.find(entry.key) != nullptr) continue;
    auto& i = *entry.value;
    // A failure here (the interface went away since it was listed) skips it until the next check.
    KJ_IF_MAYBE (exception, kj::runCatchingExceptions([&]() {
                   auto fd = openSender(i);
                   membership(i.index, true);
                   senders.insert(i.index, kj::heap<Sender>(Sender{kj::str(i.name), kj::mv(fd)}));
                 })) {
      KJ_LOG(WARNING, "discovery: cannot use interface", i.name, groupText(),
             exception->getDescription());
    }
  }
  return senders.size();
}

size_t BeaconSocket::send(kj::ArrayPtr<const kj::byte> datagram) {
  size_t sent = 0;
  for (auto& entry : senders) {
    auto& sender = *entry.value;
    ssize_t n = sendto(sender.fd, datagram.begin(), datagram.size(), 0,
                       reinterpret_cast<const struct sockaddr*>(&group), groupLength);
    if (n == ssize_t(datagram.size())) {
      ++sent;
      if (sender.failing) {
        sender.failing = false;
        KJ_LOG(INFO, "discovery: sending works again", sender.name, groupText());
      }
    } else if (!sender.failing) {
      // No carrier, no route, a full buffer, an interface going away: retried next time.
      sender.failing = true;
      KJ_LOG(WARNING, "discovery: cannot send", sender.name, groupText(), strerror(errno));
    }
  }
  return sent;
}

kj::Promise<BeaconSocket::Datagram> BeaconSocket::receive() {
  return receiver->receive().then([this]() { return describe(); });
}

BeaconSocket::Datagram BeaconSocket::describe() {
  auto content = receiver->getContent();
  Datagram d;
  d.content = content.value;
  d.truncated = content.isTruncated;
  auto from = receiver->getSource().toString();
  d.source = hostOf(from);
  d.sourcePort = from.slice(KJ_ASSERT_NONNULL(from.findLast(':')) + 1).parseAs<uint16_t>();
  kj::Maybe<uint32_t> arrivedOn;
  bool toGroup = false;
  for (auto& message : receiver->getAncillary().value) {
    if (which == Family::ipv4 && message.getLevel() == IPPROTO_IP &&
        message.getType() == IP_PKTINFO) {
      KJ_IF_MAYBE (info, message.as<struct in_pktinfo>()) {
        arrivedOn = uint32_t(info->ipi_ifindex);
        toGroup = info->ipi_addr.s_addr == group4().s_addr;
      }
    } else if (which == Family::ipv6 && message.getLevel() == IPPROTO_IPV6 &&
               message.getType() == IPV6_PKTINFO) {
      KJ_IF_MAYBE (info, message.as<struct in6_pktinfo>()) {
        arrivedOn = info->ipi6_ifindex;
        auto group = group6();
        toGroup = memcmp(&info->ipi6_addr, &group, sizeof(group)) == 0;
      }
    }
  }
  kj::Maybe<Sender&> sender;
  KJ_IF_MAYBE (index, arrivedOn) {
    KJ_IF_MAYBE (s, senders.find(*index)) {
      sender = **s;
    }
  }
  KJ_IF_MAYBE (s, sender) {
    if (!toGroup) d.foreign = kj::str("sent to another address on ", s->name);
    // A link-local source is only reachable through the interface it came in on.
    bool linkLocal = which == Family::ipv6 && d.source.startsWith("fe80:");
    d.dialHost = which == Family::ipv4 ? kj::str(d.source)
                 : linkLocal           ? kj::str("[", d.source, "%", s->name, "]")
                                       : kj::str("[", d.source, "]");
  } else {
    d.foreign = kj::str("arrived on an interface discovery does not use");
    d.dialHost = kj::str(d.source);
  }
  return d;
}

}  // namespace shoal::peer::discovery
