#include <shoal/conformance/beacon.h>

#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>

#include <kj/debug.h>

namespace shoal::conformance {

namespace {

constexpr uint16_t kBeaconPort = 4747;
constexpr size_t kMaxRead = 65536;  // larger than any datagram a target may send (1200)

in_addr groupAddress() {
  in_addr a;
  KJ_ASSERT(inet_pton(AF_INET, "239.255.77.47", &a) == 1);
  return a;
}

kj::String ipv4Of(kj::StringPtr interface) {
  auto all = ipv4Addresses(interface);
  KJ_REQUIRE(all.size() > 0, "the interface has no IPv4 address", interface);
  return kj::mv(all[0]);
}

int udpSocket() {
  int fd;
  KJ_SYSCALL(fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  return fd;
}

void setInt(int fd, int level, int option, int value) {
  KJ_SYSCALL(setsockopt(fd, level, option, &value, sizeof(value)), level, option);
}

}  // namespace

kj::Array<kj::String> ipv4Addresses(kj::StringPtr interface) {
  struct ifaddrs* all = nullptr;
  KJ_SYSCALL(getifaddrs(&all));
  KJ_DEFER(freeifaddrs(all));
  kj::Vector<kj::String> found;
  for (auto* a = all; a != nullptr; a = a->ifa_next) {
    if (a->ifa_addr == nullptr || a->ifa_addr->sa_family != AF_INET) continue;
    if (interface != a->ifa_name) continue;
    char text[INET_ADDRSTRLEN];
    auto& in = reinterpret_cast<struct sockaddr_in*>(a->ifa_addr)->sin_addr;
    KJ_ASSERT(inet_ntop(AF_INET, &in, text, sizeof(text)) != nullptr);
    found.add(kj::str(text));
  }
  return found.releaseAsArray();
}

BeaconSocket::BeaconSocket(kj::UnixEventPort& events, kj::StringPtr interface, bool group)
    : BeaconSocket(events, interface, group, ipv4Of(interface), 0) {}

BeaconSocket::BeaconSocket(kj::UnixEventPort& events, kj::StringPtr interface,
                           kj::StringPtr address, uint16_t port)
    : BeaconSocket(events, interface, false, kj::str(address), port) {}

BeaconSocket::BeaconSocket(kj::UnixEventPort& events, kj::StringPtr interface, bool group,
                           kj::String ipParam, uint16_t port)
    : fd(udpSocket()),
      index(if_nametoindex(interface.cStr())),
      ip(kj::mv(ipParam)),
      observer(events, fd, kj::UnixEventPort::FdObserver::OBSERVE_READ) {
  KJ_REQUIRE(index != 0, "no such interface", interface);
  setInt(fd, SOL_SOCKET, SO_REUSEADDR, 1);
  setInt(fd, IPPROTO_IP, IP_RECVTTL, 1);
  setInt(fd, IPPROTO_IP, IP_PKTINFO, 1);
  // Only this socket's own memberships count: a datagram on another interface is not ours.
  setInt(fd, IPPROTO_IP, IP_MULTICAST_ALL, 0);
  struct sockaddr_in at = {};
  at.sin_family = AF_INET;
  if (group) {
    at.sin_addr = groupAddress();
    at.sin_port = htons(kBeaconPort);
  } else {
    KJ_REQUIRE(inet_pton(AF_INET, ip.cStr(), &at.sin_addr) == 1, "not an IPv4 address", ip);
    at.sin_port = htons(port);
  }
  KJ_SYSCALL(bind(fd, reinterpret_cast<struct sockaddr*>(&at), sizeof(at)), interface);
  struct ip_mreqn membership = {};
  membership.imr_multiaddr = groupAddress();
  membership.imr_ifindex = int(index);
  if (group) {
    KJ_SYSCALL(setsockopt(fd, IPPROTO_IP, IP_ADD_MEMBERSHIP, &membership, sizeof(membership)),
               interface);
  }
  struct ip_mreqn out = {};
  out.imr_ifindex = int(index);
  KJ_SYSCALL(setsockopt(fd, IPPROTO_IP, IP_MULTICAST_IF, &out, sizeof(out)), interface);
  setInt(fd, IPPROTO_IP, IP_MULTICAST_TTL, 1);
  setInt(fd, IPPROTO_IP, IP_MULTICAST_LOOP, 1);
}

kj::Maybe<Datagram> BeaconSocket::receive() {
  auto buffer = kj::heapArray<kj::byte>(kMaxRead);
  struct sockaddr_in from = {};
  struct iovec io = {buffer.begin(), buffer.size()};
  alignas(struct cmsghdr) char control[256];
  struct msghdr message = {};
  message.msg_name = &from;
  message.msg_namelen = sizeof(from);
  message.msg_iov = &io;
  message.msg_iovlen = 1;
  message.msg_control = control;
  message.msg_controllen = sizeof(control);
  ssize_t n = recvmsg(fd, &message, 0);
  if (n < 0) {
    KJ_REQUIRE(errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR, "recvmsg failed",
               strerror(errno));
    return nullptr;
  }
  Datagram d;
  d.bytes = kj::heapArray(buffer.slice(0, size_t(n)));
  for (auto* c = CMSG_FIRSTHDR(&message); c != nullptr; c = CMSG_NXTHDR(&message, c)) {
    if (c->cmsg_level != IPPROTO_IP) continue;
    if (c->cmsg_type == IP_TTL) memcpy(&d.ttl, CMSG_DATA(c), sizeof(d.ttl));
    if (c->cmsg_type == IP_PKTINFO) {
      struct in_pktinfo info;
      memcpy(&info, CMSG_DATA(c), sizeof(info));
      d.interface = uint32_t(info.ipi_ifindex);
    }
  }
  char text[INET_ADDRSTRLEN] = "?";
  inet_ntop(AF_INET, &from.sin_addr, text, sizeof(text));
  d.source = kj::str(text, ':', ntohs(from.sin_port));
  return kj::mv(d);
}

kj::Promise<kj::Maybe<Datagram>> BeaconSocket::next(kj::Timer& timer, kj::TimePoint deadline) {
  KJ_IF_MAYBE (d, receive()) {
    return kj::Maybe<Datagram>(kj::mv(*d));
  }
  if (timer.now() >= deadline) return kj::Maybe<Datagram>(nullptr);
  // The wait for readability is the only thing a timeout cancels; nothing is half read.
  return timer.timeoutAfter(deadline - timer.now(), observer.whenBecomesReadable())
      .then([this, &timer, deadline]() { return next(timer, deadline); },
            [](kj::Exception&&) -> kj::Promise<kj::Maybe<Datagram>> {
              return kj::Maybe<Datagram>(nullptr);  // the deadline passed
            });
}

kj::String BeaconSocket::localAddress() const {
  struct sockaddr_in at = {};
  socklen_t length = sizeof(at);
  KJ_SYSCALL(getsockname(fd, reinterpret_cast<struct sockaddr*>(&at), &length));
  char text[INET_ADDRSTRLEN] = "?";
  inet_ntop(AF_INET, &at.sin_addr, text, sizeof(text));
  return kj::str(text, ':', ntohs(at.sin_port));
}

void BeaconSocket::sendToGroup(kj::ArrayPtr<const kj::byte> bytes) {
  struct sockaddr_in to = {};
  to.sin_family = AF_INET;
  to.sin_addr = groupAddress();
  to.sin_port = htons(kBeaconPort);
  KJ_SYSCALL(sendto(fd, bytes.begin(), bytes.size(), 0, reinterpret_cast<struct sockaddr*>(&to),
                    sizeof(to)));
}

}  // namespace shoal::conformance
