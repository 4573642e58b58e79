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

#include "targets/fuzz-input.h"

using namespace shoal::peer;
using namespace shoal::peer::discovery;
using shoal::fuzz::Input;

namespace {

PeerId self() {
  PeerId id;
  for (auto& b : id.bytes)
    b = 0x55;
  return id;
}

CandidatesConfig smallTable() {
  CandidatesConfig config;
  config.maxCandidates = 4;  // small, so eviction is reached
  return config;
}

// The receive path and the candidate table, driven by the input.
class Harness {
 public:
  Harness() {
    beacon.start(now);
    KJ_ASSERT(beacon.takeSend(now));
  }

  // Each op: bits 0-2 what happens (mod 5), bits 3-5 a source address, bit 7 a flag.
  void step(Input& in) {
    auto op = in.byte();
    bool flag = (op & 0x80) != 0;
    switch ((op & 7) % 5) {
      case 0: datagram(in, kj::str("10.0.0.", (op >> 3) & 7), flag); break;
      case 1: passTime(in.byte()); break;
      case 2: sessionChange(in, flag); break;
      case 3: dialEnds(in, flag); break;
      case 4: beacon.localChanged(now); break;
    }
    drain();
    auto& stats = beacon.stats();
    uint64_t drops = 0;
    for (auto d : stats.dropped)
      drops += d;
    KJ_ASSERT(stats.received == stats.accepted + drops);
  }

 private:
  BeaconConfig beaconConfig;
  CandidatesConfig candidatesConfig = smallTable();
  Beacon beacon{beaconConfig, self(), 1, 1, 7};
  PeerCandidates candidates{self(), candidatesConfig};
  kj::TimePoint now = kj::origin<kj::TimePoint>() + 1000 * kj::SECONDS;
  kj::TreeMap<PeerId, uint64_t> dialling;  // claimed id -> ticket of the dial in flight
  kj::Vector<PeerId> seen;

  // `truncated`: the receive buffer cut it.
  void datagram(Input& in, kj::String source, bool truncated) {
    size_t length = in.u16();
    auto bytes = in.take(length % 1400);
    auto nextSend = KJ_ASSERT_NONNULL(beacon.nextSend());
    auto result = beacon.receive(source, bytes, truncated, now);
    KJ_ASSERT(KJ_ASSERT_NONNULL(beacon.nextSend()) == nextSend);  // [DSC-9]
    KJ_IF_MAYBE (announce, result.tryGet<Announce>()) {
      KJ_ASSERT(announce->peerId != self());
      KJ_ASSERT(bytes.size() <= kMaxDatagramBytes);
      KJ_ASSERT(decodeAnnounce(bytes).is<Announce>());
      seen.add(announce->peerId);
      candidates.heard(Sighting{FoundBy::beacon, announce->peerId, announce->instanceId,
                                kj::str(source, ":", announce->port)},
                       now);
    }
  }

  void passTime(uint8_t amount) {
    now = now + (amount * 50 + 1) * kj::MILLISECONDS;
    if (beacon.takeSend(now)) {
      KJ_ASSERT(KJ_ASSERT_NONNULL(beacon.nextSend()) > now);
    }
    candidates.tick(now);
  }

  // A session with one of the ids seen comes up (`up`), or goes.
  void sessionChange(Input& in, bool up) {
    if (seen.size() == 0) return;
    auto& id = seen[in.byte() % seen.size()];
    if (up) {
      candidates.peerUp(id, in.byte(), now);
    } else {
      candidates.peerDown(id, now);
    }
  }

  // A dial in flight ends, the session `established` or not.
  void dialEnds(Input& in, bool established) {
    if (dialling.size() == 0) return;
    auto pick = in.byte() % dialling.size();
    auto it = dialling.begin();
    for (size_t i = 0; i < pick; ++i)
      ++it;
    auto id = it->key;
    auto ticket = it->value;
    dialling.erase(id);
    candidates.dialEnded(id, ticket, established ? DialOutcome::established : DialOutcome::failed,
                         now);
  }

  void drain() {
    for (auto& action : candidates.takeActions()) {
      auto& dial = action.get<action::Dial>();
      KJ_ASSERT(dial.claimedId != self());
      KJ_ASSERT(candidates.isDialling(dial.claimedId));
      dialling.upsert(dial.claimedId, dial.ticket, [](uint64_t& t, uint64_t&& n) { t = n; });
    }
    KJ_ASSERT(candidates.size() <= candidatesConfig.maxCandidates);
    candidates.takeEvents();
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Input in(kj::arrayPtr(data, size));
  Harness harness;
  while (!in.done())
    harness.step(in);
  return 0;
}
