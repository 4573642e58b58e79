// BeaconSocket: the beacon's UDP multicast for one address family (docs/protocol.md [DSC-2],
// [DSC-3]). One receive socket bound to the group port — SO_REUSEADDR so several peers on one
// host can bind it, IP_MULTICAST_ALL off so it hears only the groups it joined — joined to the
// group on each chosen interface, reporting each datagram's arrival interface and destination
// (IP_PKTINFO) so anything else is dropped. One send socket per chosen interface
// (IP_MULTICAST_IF), TTL / hop limit 1, loopback on so peers on one host hear each other.
// Nothing here decides anything: Discovery feeds what arrives to the Beacon core.
#pragma once

#include <kj/async-io.h>
#include <kj/io.h>
#include <kj/map.h>
#include <shoal/peer/discovery/interfaces.h>
#include <sys/socket.h>

namespace shoal::peer::discovery {

class BeaconSocket {
 public:
  enum class Family : uint8_t { ipv4, ipv6 };

  struct Datagram {
    kj::ArrayPtr<const kj::byte> content;  // valid until the next receive()
    bool truncated = false;                // longer than kMaxDatagramBytes
    kj::String source;                     // its source address, without the port
    uint16_t sourcePort = 0;               // its UDP source port (never dialled: [DSC-8])
    kj::String dialHost;                   // the host part of an address to dial it back
    kj::Maybe<kj::String> foreign;         // why it is not ours: another interface or group
  };

  // Opens the receive socket and binds the group port; throws when the family is unavailable.
  BeaconSocket(kj::AsyncIoContext& io, Family family, uint16_t port);
  ~BeaconSocket() noexcept(false);
  KJ_DISALLOW_COPY(BeaconSocket);

  // Joins the group and opens a send socket on each interface of `interfaces` that has an
  // address of this family; leaves the ones no longer listed. Returns how many are in use.
  size_t setInterfaces(kj::ArrayPtr<const NetworkInterface> interfaces);

  // `datagram` to the group on every interface in use; a failing interface is logged when it
  // starts and stops failing, never thrown. Returns on how many interfaces it went out.
  size_t send(kj::ArrayPtr<const kj::byte> datagram);

  kj::Promise<Datagram> receive();

  Family family() const { return which; }
  kj::StringPtr groupText() const;

 private:
  struct Sender {
    kj::String name;
    kj::AutoCloseFd fd;
    bool failing = false;
  };

  void membership(uint32_t index, bool join);
  kj::AutoCloseFd openSender(const NetworkInterface& interface);
  Datagram describe();

  Family which;
  struct sockaddr_storage group;
  uint32_t groupLength;
  kj::Own<kj::DatagramPort> receiving;
  kj::Own<kj::DatagramReceiver> receiver;
  kj::HashMap<uint32_t, kj::Own<Sender>> senders;  // by interface index
};

}  // namespace shoal::peer::discovery
