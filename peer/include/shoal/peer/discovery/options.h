// What discovery is configured with. The runtime holds a Maybe of it: null means discovery is
// off ([DSC-1]); `shoal serve --discover` / `--discover-iface` turn it on.
#pragma once

#include <shoal/peer/discovery/beacon.h>
#include <shoal/peer/discovery/candidates.h>
#include <shoal/peer/discovery/interfaces.h>

namespace shoal::peer::discovery {

struct DiscoveryOptions {
  InterfaceChoice interfaces;
  BeaconConfig beacon;
  CandidatesConfig candidates;
  bool useBeacon = true;  // the multicast beacon of §12
  bool ipv6 = true;       // also ff12::4747 on interfaces with an IPv6 link-local address
  bool useMdns = true;    // publish and browse _shoal._tcp through Avahi when a daemon answers
  uint16_t groupPort = kGroupPort;

  // Every timer scaled from one announce interval (default 5 s): the jitter is a fifth of it,
  // candidates expire after three of the longest waits, the higher id yields for a fifth, a
  // source may send one datagram per fifth after its burst.
  // Tests run discovery at 500 ms this way; the ratios of the defaults are kept.
  void setInterval(kj::Duration interval);

  DiscoveryOptions clone() const;
};

}  // namespace shoal::peer::discovery
