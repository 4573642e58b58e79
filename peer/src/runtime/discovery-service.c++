// The runtime's side of LAN discovery: the "discovery" service (policy Restart) running
// discovery::Discovery, the dial it asks for — through the same connection path as every other
// dial, so TLS proves who answered ([DSC-8]) — and what it is told: sessions up and down (ids
// proven by TLS), library changes. Also how `shoal peers` says a peer was found.
#include <kj/debug.h>
#include <shoal/codec/text.h>

#include "runtime-internal.h"

namespace shoal::peer {

namespace {

control::FoundBy toControl(discovery::FoundBy by) {
  switch (by) {
    case discovery::FoundBy::beacon: return control::FoundBy::BEACON;
    case discovery::FoundBy::mdns: return control::FoundBy::MDNS;
  }
  KJ_UNREACHABLE;
}

}  // namespace

kj::Promise<void> Runtime::discover() {
  return KJ_ASSERT_NONNULL(discovery)->run();
}

discovery::Announce Runtime::localAnnounce() {
  discovery::Announce a;
  a.peerId = identity->id();
  a.instanceId = instanceId;
  KJ_IF_MAYBE (address, bound) {
    auto colon = KJ_ASSERT_NONNULL(address->findLast(':'));
    a.port = address->slice(colon + 1).parseAs<uint16_t>();
  }
  a.name = kj::str(config.name);
  a.versionMin = config.session.versionMin;
  a.versionMax = config.session.versionMax;
  a.summary = library.summary();
  return a;
}

bool Runtime::accepts(discovery::BeaconSocket::Family family) {
  KJ_IF_MAYBE (address, bound) {
    auto host = kj::heapString(address->slice(0, KJ_ASSERT_NONNULL(address->findLast(':'))));
    // "*" and "[::]" accept both families (Linux's default dual-stack sockets); a literal address
    // only its own.
    bool any6 = host == "*" || host == "[::]";
    bool v6 = host.startsWith("[");
    return family == discovery::BeaconSocket::Family::ipv6 ? v6 || any6 : !v6 || any6;
  }
  return false;
}

kj::Promise<discovery::DialOutcome> Runtime::dial(const PeerId& claimedId, kj::StringPtr address,
                                                  discovery::FoundBy by) {
  auto foundAt = timer.now();
  KJ_IF_MAYBE (origin, KJ_ASSERT_NONNULL(discovery)->origin(claimedId)) {
    foundAt = origin->since;
  }
  return dialAddress(address, toControl(by), foundAt)
      .then([claimed = claimedId, target = kj::str(address)](ConnectionEnd end) {
        // The announcement named `claimed`; only TLS says who answered. A discovery dial settles
        // when the handshake does (onEstablished), so a session with someone else does not keep
        // the claimed peer "being dialled" for as long as it lasts.
        if (end.kind == ConnectionEnd::Kind::established) {
          auto& id = KJ_ASSERT_NONNULL(end.peer);
          if (id == claimed) return discovery::DialOutcome::established;
          KJ_LOG(INFO, "discovery: the dialled address answered as another peer", target,
                 formatPeerId(claimed), formatPeerId(id));
          return discovery::DialOutcome::otherPeer;
        }
        // The message may quote the other side (a Reject's words): escaped for the terminal.
        KJ_LOG(INFO, "discovery: dial ended without a session", target, end.code,
               codec::displayText(end.message));
        return discovery::DialOutcome::failed;
      });
}

void Runtime::discoveryPeerUp(const PeerId& id, uint64_t remoteInstance) {
  KJ_IF_MAYBE (d, discovery) {
    (*d)->peerUp(id, remoteInstance);
  }
}

void Runtime::discoveryPeerDown(const PeerId& id) {
  KJ_IF_MAYBE (d, discovery) {
    (*d)->peerDown(id);
  }
}

void Runtime::settleDiscoveryDial(Connection& c) {
  // A static peer's dialler waits for the session's end (it redials then); discovery's dial is
  // over once TLS said who answered ([DSC-8]).
  bool discovered = c.foundBy == control::FoundBy::BEACON || c.foundBy == control::FoundBy::MDNS;
  if (c.role != Role::initiator || !discovered) return;
  KJ_IF_MAYBE (fulfiller, c.ended) {
    ConnectionEnd end;
    end.kind = c.end.kind;
    end.stage = c.end.stage;
    end.code = kj::str(c.end.code);
    end.message = kj::str(c.end.message);
    end.peer = c.end.peer;
    (*fulfiller)->fulfill(kj::mv(end));
    c.ended = nullptr;
  }
}

kj::Tuple<control::FoundBy, kj::Duration> Runtime::foundOf(const Connection& c) const {
  if (c.role == Role::initiator) return kj::tuple(c.foundBy, c.foundAt - startedAt);
  // It dialled us: say how we knew of it anyway, if we did.
  KJ_IF_MAYBE (d, discovery) {
    KJ_IF_MAYBE (id, c.end.peer) {
      KJ_IF_MAYBE (origin, (*d)->origin(*id)) {
        return kj::tuple(toControl(origin->by), origin->since - startedAt);
      }
    }
  }
  return kj::tuple(control::FoundBy::INCOMING, c.startedAt - startedAt);
}

}  // namespace shoal::peer
