// SourceLimiter: how many discovery datagrams we read, per source address and in total
// ([DSC-10]). Each limit is a GCRA token bucket on the caller's clock: `burst` datagrams at once,
// then one per `per`. The per-source table is bounded: an entry whose bucket has refilled says
// nothing a fresh one would not, so those are swept when the table is full; if none has, the new
// source is refused until one has (the total limit still lets the known sources through).
#pragma once

#include <kj/map.h>
#include <kj/string.h>
#include <kj/time.h>

namespace shoal::peer::discovery {

struct RateLimit {
  uint32_t burst;
  kj::Duration per;
};

class SourceLimiter {
 public:
  SourceLimiter(RateLimit perSource, RateLimit total, uint32_t maxSources);
  KJ_DISALLOW_COPY(SourceLimiter);

  // Whether a datagram from `source` (its address, without the port) may be read now; a refused
  // one uses no allowance of either bucket.
  bool admit(kj::StringPtr source, kj::TimePoint now);

  size_t tracked() const { return sources.size(); }

 private:
  // GCRA: a bucket is the time at which it will be full again ("theoretical arrival time").
  static bool conforms(kj::TimePoint full, const RateLimit& limit, kj::TimePoint now);
  static kj::TimePoint charge(kj::TimePoint full, const RateLimit& limit, kj::TimePoint now);
  void sweep(kj::TimePoint now);

  RateLimit perSource;
  RateLimit total;
  uint32_t maxSources;
  kj::TimePoint totalFull = kj::origin<kj::TimePoint>();
  kj::HashMap<kj::String, kj::TimePoint> sources;
};

}  // namespace shoal::peer::discovery
