// Target `beacon`: the discovery receive path — datagrams from up to 8 sources into Beacon, its
// announcements into PeerCandidates — with sessions coming and going, dials ending and time
// passing on a virtual clock, all chosen by the input. Invariants: nothing throws; every datagram
// is accepted or dropped exactly once (received = accepted + drops); what is accepted decodes,
// is not ours and fits 1200 bytes; receiving never moves our own announce schedule ([DSC-9]);
// the candidate table stays within its bound, never holds our id, and never has two dials of
// one candidate in flight ([DSC-12]).
#include <kj/debug.h>
#include <kj/map.h>
#include <shoal/peer/discovery/beacon.h>
#include <shoal/peer/discovery/candidates.h>

using namespace shoal::peer;
using namespace shoal::peer::discovery;

namespace {

class Input {
 public:
  explicit Input(kj::ArrayPtr<const kj::byte> bytes) : bytes(bytes) {}
  bool done() const { return at >= bytes.size(); }
  uint8_t byte() { return done() ? 0 : bytes[at++]; }
  kj::ArrayPtr<const kj::byte> take(size_t n) {
    n = kj::min(n, bytes.size() - at);
    auto out = bytes.slice(at, at + n);
    at += n;
    return out;
  }

 private:
  kj::ArrayPtr<const kj::byte> bytes;
  size_t at = 0;
};

PeerId self() {
  PeerId id;
  for (auto& b : id.bytes)
    b = 0x55;
  return id;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Input in(kj::arrayPtr(data, size));
  BeaconConfig beaconConfig;
  CandidatesConfig candidatesConfig;
  candidatesConfig.maxCandidates = 4;  // small, so eviction is reached
  Beacon beacon(beaconConfig, self(), 1, 1, 7);
  PeerCandidates candidates(self(), candidatesConfig);
  auto now = kj::origin<kj::TimePoint>() + 1000 * kj::SECONDS;
  beacon.start(now);
  KJ_ASSERT(beacon.takeSend(now));
  kj::TreeMap<PeerId, uint64_t> dialling;  // claimed id -> ticket of the dial in flight
  kj::Vector<PeerId> seen;

  auto drain = [&]() {
    for (auto& action : candidates.takeActions()) {
      auto& dial = action.get<action::Dial>();
      KJ_ASSERT(dial.claimedId != self());
      KJ_ASSERT(candidates.isDialling(dial.claimedId));
      dialling.upsert(dial.claimedId, dial.ticket, [](uint64_t& t, uint64_t&& n) { t = n; });
    }
    KJ_ASSERT(candidates.size() <= candidatesConfig.maxCandidates);
    candidates.takeEvents();
  };

  // Each op: bits 0-2 what happens (mod 5), bits 3-5 a source address, bit 7 a flag.
  while (!in.done()) {
    auto op = in.byte();
    bool flag = (op & 0x80) != 0;
    switch ((op & 7) % 5) {
      case 0: {  // a datagram; the flag: it was truncated by the receive buffer
        auto source = kj::str("10.0.0.", (op >> 3) & 7);
        size_t length = in.byte() | size_t(in.byte()) << 8;
        auto datagram = in.take(length % 1400);
        auto nextSend = KJ_ASSERT_NONNULL(beacon.nextSend());
        auto result = beacon.receive(source, datagram, flag, now);
        KJ_ASSERT(KJ_ASSERT_NONNULL(beacon.nextSend()) == nextSend);  // [DSC-9]
        KJ_IF_MAYBE (announce, result.tryGet<Announce>()) {
          KJ_ASSERT(announce->peerId != self());
          KJ_ASSERT(datagram.size() <= kMaxDatagramBytes);
          KJ_ASSERT(decodeAnnounce(datagram).is<Announce>());
          seen.add(announce->peerId);
          candidates.heard(Sighting{FoundBy::beacon, announce->peerId, announce->instanceId,
                                    kj::str(source, ":", announce->port)},
                           now);
        }
        break;
      }
      case 1:  // time passes
        now = now + (in.byte() * 50 + 1) * kj::MILLISECONDS;
        if (beacon.takeSend(now)) {
          KJ_ASSERT(KJ_ASSERT_NONNULL(beacon.nextSend()) > now);
        }
        candidates.tick(now);
        break;
      case 2:  // a session with one of the ids seen comes up, or goes
        if (seen.size() > 0) {
          auto& id = seen[in.byte() % seen.size()];
          if (flag) {
            candidates.peerUp(id, in.byte(), now);
          } else {
            candidates.peerDown(id, now);
          }
        }
        break;
      case 3:  // a dial in flight ends
        if (dialling.size() > 0) {
          auto pick = in.byte() % dialling.size();
          auto it = dialling.begin();
          for (size_t i = 0; i < pick; ++i)
            ++it;
          auto id = it->key;
          auto ticket = it->value;
          dialling.erase(id);
          candidates.dialEnded(id, ticket, flag ? DialOutcome::established : DialOutcome::failed,
                               now);
        }
        break;
      case 4: beacon.localChanged(now); break;
    }
    drain();
    auto& stats = beacon.stats();
    uint64_t drops = 0;
    for (auto d : stats.dropped)
      drops += d;
    KJ_ASSERT(stats.received == stats.accepted + drops);
  }
  return 0;
}
