// Admission: which inbound connections hold a handshake slot. A connection is pending from accept
// until its session is established (or it ends); pending connections are the only ones a stranger
// can open for free, so they are the flood target. Three rules keep a cheap flood (idle TCP
// connections, a slowloris trickling a ClientHello, from one address or from many) from keeping
// honest peers out:
//
//  - a newcomer is never refused: when a limit is reached, the pending connection that has shown
//    the least progress is evicted — the oldest among those, and from the newcomer's own source
//    address when that address is at its cap. Progress is what a flood cannot fake cheaply: an
//    honest peer sends its whole ClientHello at once (we answer it at once), an idle connection
//    sends nothing, a slowloris never completes its first flight;
//  - a per-source-address cap keeps one address from holding every slot (but it alone is not
//    enough: an honest peer behind the flood's own NAT address still gets in by the rule above);
//  - a connection that has sent nothing within `firstBytesTimeout` is cut, well before the
//    handshake deadline.
//
// Sans-I/O: connection ids, source addresses, progress and `now` in; evictions and expiries out.
// The runtime owns the sockets and the timer (services.c++).
#pragma once

#include <kj/map.h>
#include <kj/string.h>
#include <kj/time.h>
#include <kj/vector.h>

namespace shoal::peer {

struct AdmissionLimits {
  uint32_t maxPending = 64;           // connections between accept and established session
  uint32_t maxPendingPerSource = 16;  // of those, from one source address
  kj::Duration firstBytesTimeout = 2 * kj::SECONDS;  // accept → the peer's first byte

  // A description of the first unusable value, or null.
  kj::Maybe<kj::String> check() const;
};

// How far a pending connection got; it only moves forward.
enum class Progress : uint8_t {
  connected,  // accepted, nothing received yet
  receiving,  // bytes received, nothing sent back (a partial first flight)
  answered,   // we answered its first flight (the TLS ServerHello went out)
  secured,    // TLS complete, waiting for its Hello
};
kj::StringPtr name(Progress progress);

class Admission {
 public:
  enum class Cause : uint8_t { sourceFull, allFull };
  struct Eviction {
    uint64_t id;
    Cause cause;
    Progress progress;  // how far the evicted connection had got
  };

  explicit Admission(AdmissionLimits limits);
  KJ_DISALLOW_COPY(Admission);

  // A new connection `id` (unique, increasing) from `source` (its address without the port),
  // `receiving` when its first bytes were already waiting at accept (an honest peer's ClientHello
  // usually is). It is always admitted; the connection to drop to make room, if any, is returned.
  kj::Maybe<Eviction> admit(uint64_t id, kj::StringPtr source, kj::TimePoint now,
                            Progress progress = Progress::connected);
  // Connection `id` got further. Unknown ids and backward moves are ignored.
  void advance(uint64_t id, Progress progress);
  // Connection `id` is no longer pending: its session is established, or it ended.
  void release(uint64_t id);

  // When expire() has something to do.
  kj::Maybe<kj::TimePoint> nextDeadline() const;
  // Connections that sent nothing within firstBytesTimeout; they are released here.
  kj::Vector<uint64_t> expire(kj::TimePoint now);

  size_t pending() const { return entries.size(); }
  size_t pendingFrom(kj::StringPtr source) const;
  const AdmissionLimits& limits() const { return config; }

 private:
  struct Entry {
    kj::String source;
    uint64_t sourceIndex;  // Source::index of `source`
    Progress progress;
    kj::TimePoint acceptedAt;
  };
  struct Source {
    uint64_t index;
    uint32_t pending = 0;
  };
  // Eviction order: least progress first, then oldest (ids increase with time).
  struct Rank {
    Progress progress;
    uint64_t id;
    bool operator==(const Rank& o) const { return progress == o.progress && id == o.id; }
    bool operator<(const Rank& o) const {
      return progress != o.progress ? progress < o.progress : id < o.id;
    }
  };
  struct SourceRank {
    uint64_t source;
    Rank rank;
    bool operator==(const SourceRank& o) const { return source == o.source && rank == o.rank; }
    bool operator<(const SourceRank& o) const {
      return source != o.source ? source < o.source : rank < o.rank;
    }
  };

  kj::Maybe<uint64_t> leastProgressedOf(uint64_t sourceIndex) const;

  AdmissionLimits config;
  kj::HashMap<uint64_t, Entry> entries;
  kj::TreeMap<Rank, bool> byRank;
  kj::TreeMap<SourceRank, bool> bySource;
  kj::HashMap<kj::String, Source> sources;  // addresses with pending connections
  uint64_t nextSource = 0;
};

}  // namespace shoal::peer
