#include <shoal/peer/discovery/discovery.h>

#include <kj/debug.h>
#include <shoal/mutant.h>
#include <shoal/peer/discovery/mdns.h>

namespace shoal::peer::discovery {

void DiscoveryOptions::setInterval(kj::Duration interval) {
  beacon.interval = interval;
  beacon.jitter = interval / 5;
  beacon.minGap = interval / 10;
  beacon.perSource.per = interval / 5;
  candidates.expireAfter = 3 * (interval + beacon.jitter);
  candidates.yieldDelay = interval / 5;
  candidates.redialMin = interval / 5;
}

DiscoveryOptions DiscoveryOptions::clone() const {
  DiscoveryOptions copy;
  copy.interfaces.all = interfaces.all;
  for (auto& name : interfaces.names)
    copy.interfaces.names.add(kj::str(name));
  copy.beacon = beacon;
  copy.candidates = candidates;
  copy.useBeacon = useBeacon;
  copy.ipv6 = ipv6;
  copy.useMdns = useMdns;
  copy.groupPort = groupPort;
  return copy;
}

Discovery::Discovery(DiscoveryOptions optionsParam, Host& host, kj::AsyncIoContext& io,
                     const PeerId& self, uint16_t versionMin, uint16_t versionMax, uint64_t seed)
    : options(kj::mv(optionsParam)),
      host(host),
      io(io),
      timer(io.provider->getTimer()),
      beacon(options.beacon, self, versionMin, versionMax, seed),
      candidates(self, options.candidates),
      dials(dialErrors) {
  KJ_REQUIRE(options.interfaces.any(), "discovery needs interfaces to use ([DSC-3])");
}

Discovery::~Discovery() noexcept(false) {}

void Discovery::DialErrors::taskFailed(kj::Exception&& exception) {
  // Host::dial() reports failures as DialOutcome::failed; reaching here is a bug of ours.
  KJ_LOG(ERROR, "discovery: dial task failed", exception);
}

kj::Promise<void> Discovery::run() {
  // Sockets are opened afresh on every (re)start; a failure here fails the service.
  sockets.clear();
  if (options.useBeacon) {
    sockets.add(kj::heap<BeaconSocket>(io, BeaconSocket::Family::ipv4, options.groupPort));
  }
  if (options.useBeacon && options.ipv6) {
    // IPv6 is optional ([DSC-2]): a host without it announces over IPv4 only.
    KJ_IF_MAYBE (exception, kj::runCatchingExceptions([&]() {
                   sockets.add(
                       kj::heap<BeaconSocket>(io, BeaconSocket::Family::ipv6, options.groupPort));
                 })) {
      if (!ipv6Reported) {
        ipv6Reported = true;
        KJ_LOG(INFO, "discovery: no IPv6 beacon", exception->getDescription());
      }
    }
  }
  // A daemon that was missing (or went away) is looked for again when the service restarts.
  bool mdnsEnded = false;
  KJ_IF_MAYBE (agent, mdns) {
    mdnsEnded = (*agent)->hasEnded();
  }
  if (options.useMdns && (mdns == nullptr || mdnsEnded)) {
    MdnsAgent::Listener& listener = *this;
    mdns = nullptr;  // joins the old thread first
    mdns = kj::heap<MdnsAgent>(io, listener);
  }
  refreshInterfaces();
  beacon.start(timer.now());
  // Every loop runs until it fails; the first failure ends them all (and the service restarts).
  kj::Promise<void> loops = clock();
  for (auto& socket : sockets)
    loops = loops.exclusiveJoin(receiveLoop(*socket));
  KJ_IF_MAYBE (agent, mdns) {
    // mDNS ending (no daemon) leaves the beacon running: that branch just never completes.
    loops = loops.exclusiveJoin(
        (*agent)->deliver().then([]() { return kj::Promise<void>(kj::NEVER_DONE); }));
  }
  return kj::mv(loops);
}

kj::Promise<void> Discovery::receiveLoop(BeaconSocket& socket) {
  return socket.receive().then([this, &socket](BeaconSocket::Datagram datagram) {
    onDatagram(kj::mv(datagram));
    return receiveLoop(socket);
  });
}

void Discovery::onDatagram(BeaconSocket::Datagram d) {
  auto now = timer.now();
  KJ_IF_MAYBE (why, d.foreign) {
    logDrop(beacon.drop(DropReason::foreign, kj::str(*why, ", from ", d.source)));
    return;
  }
  auto result = beacon.receive(d.source, d.content, d.truncated, now);
  KJ_SWITCH_ONEOF(result) {
    KJ_CASE_ONEOF(drop, Dropped) {
      logDrop(drop);
    }
    KJ_CASE_ONEOF(announce, Announce) {
      if (isMutant(Mutant::answersAnnounce)) localChanged();
      // The mutant dials the datagram's UDP source port instead of the announced one ([DSC-8]).
      auto port = isMutant(Mutant::dialsDatagramPort) ? d.sourcePort : announce.port;
      heard(Sighting{FoundBy::beacon, announce.peerId, announce.instanceId,
                     kj::str(d.dialHost, ":", port)});
    }
  }
}

void Discovery::heard(Sighting sighting) {
  candidates.heard(kj::mv(sighting), timer.now());
  drain();
  wake();
}

void Discovery::sighted(Sighting sighting) {
  heard(kj::mv(sighting));
}

void Discovery::withdrawn(const PeerId& claimedId) {
  candidates.withdrawn(FoundBy::mdns, claimedId, timer.now());
  drain();
  wake();
}

void Discovery::logDrop(const Dropped& drop) {
  // Anyone on the link can make us drop datagrams: log the 1st, 2nd, 4th, 8th... of each reason.
  auto count = beacon.stats().dropped[size_t(drop.reason)];
  if ((count & (count - 1)) == 0) {
    KJ_LOG(INFO, "discovery: datagram dropped", name(drop.reason), drop.detail, count);
  }
}

kj::Promise<void> Discovery::clock() {
  auto now = timer.now();
  if (beacon.takeSend(now)) announce();
  candidates.tick(now);
  drain();
  auto next = KJ_ASSERT_NONNULL(beacon.nextSend());
  KJ_IF_MAYBE (deadline, candidates.nextDeadline()) {
    next = kj::min(next, *deadline);
  }
  auto paf = kj::newPromiseAndFulfiller<void>();
  wakeUp = kj::mv(paf.fulfiller);
  return timer.atTime(next).exclusiveJoin(kj::mv(paf.promise)).then([this]() { return clock(); });
}

void Discovery::wake() {
  KJ_IF_MAYBE (fulfiller, wakeUp) {
    (*fulfiller)->fulfill();
    wakeUp = nullptr;
  }
}

void Discovery::announce() {
  // Interfaces come and go (a cable, a VPN, Wi-Fi): checked with every announce.
  refreshInterfaces();
  auto local = host.localAnnounce();
  KJ_IF_MAYBE (agent, mdns) {
    if (!(*agent)->hasEnded()) (*agent)->publish(local, interfaces);
  }
  auto datagram = encodeAnnounce(local);
  for (auto& socket : sockets) {
    if (host.accepts(socket->family())) socket->send(datagram);
  }
}

void Discovery::refreshInterfaces() {
  auto chosen = choose(listInterfaces(), options.interfaces);
  // Each problem is said once while it lasts.
  kj::Vector<kj::String> problems;
  for (auto& problem : chosen.problems) {
    bool known = false;
    for (auto& old : reportedProblems)
      known = known || old == problem;
    if (!known) KJ_LOG(WARNING, "discovery: interface not usable", problem);
    problems.add(kj::mv(problem));
  }
  reportedProblems = kj::mv(problems);
  // With the beacon off (mDNS only), Avahi takes the interfaces as they are.
  size_t inUse = sockets.size() == 0 ? chosen.chosen.size() : 0;
  for (auto& socket : sockets)
    inUse += socket->setInterfaces(chosen.chosen);
  if (inUse == 0 && !noInterfaceReported) {
    KJ_LOG(WARNING, "discovery: no usable interface yet; nothing is announced or heard");
  }
  noInterfaceReported = inUse == 0;
  interfaces = kj::mv(chosen.chosen);
}

void Discovery::drain() {
  for (auto& action : candidates.takeActions()) {
    auto& dial = action.get<action::Dial>();
    auto id = dial.claimedId;
    auto ticket = dial.ticket;
    KJ_LOG(INFO, "discovery: dialling", dial.address, name(dial.by), formatPeerId(id));
    // Later, not now: we may be inside the runtime's own callbacks (peerUp from a handshake).
    dials.add(kj::evalLater([this, dial = kj::mv(dial)]() {
                return host.dial(dial.claimedId, dial.address, dial.by);
              }).then([this, id, ticket](DialOutcome outcome) {
      candidates.dialEnded(id, ticket, outcome, timer.now());
      drain();
      wake();
    }));
  }
  for (auto& event : candidates.takeEvents()) {
    KJ_SWITCH_ONEOF(event) {
      KJ_CASE_ONEOF(found, event::Found) {
        KJ_LOG(INFO, "discovery: found", name(found.by), found.address,
               formatPeerId(found.claimedId));
      }
      KJ_CASE_ONEOF(restarted, event::Restarted) {
        KJ_LOG(INFO, "discovery: peer restarted", formatPeerId(restarted.claimedId),
               restarted.oldInstance, restarted.newInstance);
      }
      KJ_CASE_ONEOF(expired, event::Expired) {
        KJ_LOG(INFO, "discovery: forgotten", formatPeerId(expired.claimedId));
      }
    }
  }
}

void Discovery::localChanged() {
  beacon.localChanged(timer.now());
  wake();
}

void Discovery::peerUp(const PeerId& id, uint64_t instanceId) {
  candidates.peerUp(id, instanceId, timer.now());
  drain();
  wake();
}

void Discovery::peerDown(const PeerId& id) {
  candidates.peerDown(id, timer.now());
  drain();
  wake();
}

kj::Maybe<PeerCandidates::Origin> Discovery::origin(const PeerId& id) const {
  return candidates.origin(id);
}

}  // namespace shoal::peer::discovery
