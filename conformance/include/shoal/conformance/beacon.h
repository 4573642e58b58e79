// The harness's end of discovery (docs/protocol.md §12): a UDP socket joined to the beacon group
// 239.255.77.47:4747 on one interface, which receives every datagram with its TTL, arrival
// interface and source, and a second socket on an ephemeral port that sends datagrams to the
// group and hears any reply. Only ever used inside a network namespace that the test created
// (CTest label `netns`, conformance/test/discovery.sh): no datagram reaches a real network.
#pragma once

#include <kj/async-unix.h>
#include <kj/io.h>
#include <kj/time.h>
#include <kj/vector.h>

namespace shoal::conformance {

struct Datagram {
  kj::Array<kj::byte> bytes;
  int ttl = -1;            // the IP TTL it arrived with (-1: unknown)
  uint32_t interface = 0;  // the index of the interface it arrived on
  kj::String source;       // "a.b.c.d:port"
};

// Every IPv4 address of `interface`, the primary one first (as getifaddrs lists them).
kj::Array<kj::String> ipv4Addresses(kj::StringPtr interface);

class BeaconSocket {
 public:
  // Joined to the group on `interface` when `group`, else bound to an ephemeral port of the
  // interface's address. Throws when the socket cannot be set up (a harness error).
  BeaconSocket(kj::UnixEventPort& events, kj::StringPtr interface, bool group);
  // A sender out of `interface` bound to `address`:`port` (one of the interface's addresses; port
  // 0: ephemeral), for datagrams whose source the case chooses.
  BeaconSocket(kj::UnixEventPort& events, kj::StringPtr interface, kj::StringPtr address,
               uint16_t port);
  KJ_DISALLOW_COPY(BeaconSocket);

  // The next datagram before `deadline`; null when none came.
  kj::Promise<kj::Maybe<Datagram>> next(kj::Timer& timer, kj::TimePoint deadline);
  // Sends `bytes` to the beacon group out of the interface.
  void sendToGroup(kj::ArrayPtr<const kj::byte> bytes);
  uint32_t interfaceIndex() const { return index; }
  kj::StringPtr address() const { return ip; }  // the interface's IPv4 address
  kj::String localAddress() const;              // "a.b.c.d:port" this socket sends from

 private:
  BeaconSocket(kj::UnixEventPort& events, kj::StringPtr interface, bool group, kj::String ip,
               uint16_t port);
  kj::Maybe<Datagram> receive();  // one datagram, or null when none is waiting

  kj::AutoCloseFd fd;
  uint32_t index;
  kj::String ip;
  kj::UnixEventPort::FdObserver observer;
};

}  // namespace shoal::conformance
