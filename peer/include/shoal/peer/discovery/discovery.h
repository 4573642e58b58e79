// Discovery: the KJ driver of LAN discovery, which the runtime runs as a supervised service
// (policy Restart). It owns the beacon's sockets — IPv4, and IPv6 where the host has it — feeds
// what arrives to the Beacon core and the sightings to PeerCandidates, and carries out their
// decisions: send our Announce now, dial this address. Through Avahi it also publishes and
// browses `_shoal._tcp` when a daemon is reachable (mdns.h). The runtime supplies our Announce
// and its dial path (Host); the TLS handshake on that path proves who answered ([DSC-8]).
//
// Candidates and the sessions the runtime reported outlive a restart of run(): only the sockets
// are opened afresh.
#pragma once

#include <kj/async-io.h>
#include <shoal/peer/discovery/beacon-socket.h>
#include <shoal/peer/discovery/beacon.h>
#include <shoal/peer/discovery/candidates.h>
#include <shoal/peer/discovery/mdns.h>
#include <shoal/peer/discovery/options.h>

namespace shoal::peer::discovery {

class Discovery final : private MdnsAgent::Listener {
 public:
  class Host {
   public:
    virtual ~Host() noexcept(false) = default;
    // Our Announce as of now: id, instance, bound port, name, versions, library summary.
    virtual Announce localAnnounce() = 0;
    // Whether we accept connections over this family: an Announce says "dial my source address
    // at this port", so it goes out only over families the listener serves.
    virtual bool accepts(BeaconSocket::Family family) = 0;
    // Dial `address` through the runtime's connection path; resolves when that connection is
    // over: `established` if TLS proved `claimedId` and the session was established, `failed`
    // otherwise (unreachable, refused, another id, ourselves).
    virtual kj::Promise<DialOutcome> dial(const PeerId& claimedId, kj::StringPtr address,
                                          FoundBy by) = 0;
  };

  Discovery(DiscoveryOptions options, Host& host, kj::AsyncIoContext& io, const PeerId& self,
            uint16_t versionMin, uint16_t versionMax, uint64_t seed);
  ~Discovery() noexcept(false);
  KJ_DISALLOW_COPY(Discovery);

  // Opens the sockets and runs until cancelled. Rejects when a socket cannot be opened or fails,
  // so the supervisor restarts it; no interface to use is not a failure (it is checked again
  // with every announce).
  kj::Promise<void> run();

  // Our library changed: announce soon ([DSC-5]).
  void localChanged();
  // Sessions, with ids TLS proved, whichever way they came about.
  void peerUp(const PeerId& id, uint64_t instanceId);
  void peerDown(const PeerId& id);

  kj::Maybe<PeerCandidates::Origin> origin(const PeerId& id) const;
  const Beacon::Stats& stats() const { return beacon.stats(); }

 private:
  class DialErrors final : public kj::TaskSet::ErrorHandler {
   public:
    void taskFailed(kj::Exception&& exception) override;
  };

  kj::Promise<void> receiveLoop(BeaconSocket& socket);
  void onDatagram(BeaconSocket::Datagram datagram);
  kj::Promise<void> clock();
  void announce();
  void refreshInterfaces();
  void heard(Sighting sighting);
  void drain();
  void wake();
  void logDrop(const Dropped& drop);

  // MdnsAgent::Listener.
  void sighted(Sighting sighting) override;
  void withdrawn(const PeerId& claimedId) override;

  DiscoveryOptions options;
  Host& host;
  kj::AsyncIoContext& io;
  kj::Timer& timer;
  Beacon beacon;
  PeerCandidates candidates;

  kj::Vector<kj::Own<BeaconSocket>> sockets;  // this run's
  kj::Vector<NetworkInterface> interfaces;    // chosen at the last check
  kj::Vector<kj::String> reportedProblems;    // interface problems already logged
  bool ipv6Reported = false;
  bool noInterfaceReported = false;
  kj::Maybe<kj::Own<kj::PromiseFulfiller<void>>> wakeUp;
  kj::Maybe<kj::Own<MdnsAgent>> mdns;

  DialErrors dialErrors;
  kj::TaskSet dials;  // declared last: its continuations use everything above
};

}  // namespace shoal::peer::discovery
