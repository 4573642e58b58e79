// Beacon: the sans-I/O core of the LAN beacon (docs/protocol.md §12). It decides when our
// Announce goes out — at start, when the library changes, and every interval ± jitter ([DSC-5]) —
// and turns each received datagram into an Announce or a counted, silent drop: size, rate limits,
// frame validation, kind, own id, version range ([DSC-4], [DSC-7], [DSC-10], [DSC-14]). Nothing it
// receives ever causes a send ([DSC-9]). `now` in, decisions out; the jitter comes from a seeded
// generator so tests replay exact schedules on virtual time. BeaconSocket is its KJ driver.
#pragma once

#include <kj/one-of.h>
#include <kj/time.h>
#include <shoal/peer/discovery/announce.h>
#include <shoal/peer/discovery/source-limiter.h>

namespace shoal::peer::discovery {

struct BeaconConfig {
  kj::Duration interval = 5 * kj::SECONDS;  // [DSC-5]
  kj::Duration jitter = 1 * kj::SECONDS;    // each wait is interval + uniform [-jitter, +jitter]
  // Library changes announce at once, but no sooner than this after the previous announce: a
  // library being copied in changes many times a second.
  kj::Duration minGap = 500 * kj::MILLISECONDS;
  // [DSC-10]: honest peers send one datagram per interval and family; a burst allows for restarts
  // and library changes.
  RateLimit perSource = {4, 1 * kj::SECONDS};
  RateLimit total = {64, 10 * kj::MILLISECONDS};
  uint32_t maxSources = 1024;
};

class Beacon {
 public:
  struct Stats {
    uint64_t sent = 0;
    uint64_t received = 0;
    uint64_t accepted = 0;
    uint64_t dropped[kDropReasons] = {};
  };

  Beacon(const BeaconConfig& config, const PeerId& self, uint16_t versionMin, uint16_t versionMax,
         uint64_t seed);
  KJ_DISALLOW_COPY(Beacon);

  // Sending. The first announce is due at start(); each takeSend() that returns true means "send
  // our Announce now" and schedules the next one.
  void start(kj::TimePoint now);
  void localChanged(kj::TimePoint now);
  kj::Maybe<kj::TimePoint> nextSend() const { return due; }
  bool takeSend(kj::TimePoint now);

  // Receiving: one datagram from `source` (its address without the port); `truncated` when it
  // did not fit the receive buffer.
  kj::OneOf<Announce, Dropped> receive(kj::StringPtr source, kj::ArrayPtr<const kj::byte> datagram,
                                       bool truncated, kj::TimePoint now);
  // A drop the driver decided (DropReason::foreign), so the counts stay complete.
  Dropped drop(DropReason reason, kj::String detail);

  const Stats& stats() const { return counts; }

 private:
  kj::Duration nextWait();
  Dropped dropped(DropReason reason, kj::String detail);

  BeaconConfig config;
  PeerId self;
  uint16_t versionMin;
  uint16_t versionMax;
  uint64_t random;
  SourceLimiter limiter;
  kj::Maybe<kj::TimePoint> due;
  kj::Maybe<kj::TimePoint> lastSent;
  Stats counts;
};

}  // namespace shoal::peer::discovery
