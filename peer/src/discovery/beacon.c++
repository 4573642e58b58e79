#include <shoal/peer/discovery/beacon.h>

#include <kj/debug.h>
#include <shoal/mutant.h>

namespace shoal::peer::discovery {

Beacon::Beacon(const BeaconConfig& config, const PeerId& self, uint16_t versionMin,
               uint16_t versionMax, uint64_t seed)
    : config(config),
      self(self),
      versionMin(versionMin),
      versionMax(versionMax),
      random(seed),
      limiter(config.perSource, config.total, config.maxSources) {
  KJ_REQUIRE(config.jitter < config.interval, "the announce jitter must be below the interval");
}

kj::Duration Beacon::nextWait() {
  // splitmix64: enough to spread peers that started together; not for secrets.
  uint64_t z = (random += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  z ^= z >> 31;
  int64_t spread = config.jitter / kj::NANOSECONDS;
  int64_t offset = int64_t(z % uint64_t(2 * spread + 1)) - spread;
  return config.interval + offset * kj::NANOSECONDS;
}

void Beacon::start(kj::TimePoint now) {
  due = now;
}

void Beacon::localChanged(kj::TimePoint now) {
  KJ_IF_MAYBE (next, due) {
    auto soonest = now;
    KJ_IF_MAYBE (last, lastSent) {
      soonest = kj::max(now, *last + config.minGap);
    }
    *next = kj::min(*next, soonest);
  }
}

bool Beacon::takeSend(kj::TimePoint now) {
  KJ_IF_MAYBE (next, due) {
    if (now < *next) return false;
    lastSent = now;
    due = now + nextWait();
    ++counts.sent;
    return true;
  }
  return false;
}

Dropped Beacon::dropped(DropReason reason, kj::String detail) {
  ++counts.dropped[size_t(reason)];
  return Dropped{reason, kj::mv(detail)};
}

Dropped Beacon::drop(DropReason reason, kj::String detail) {
  ++counts.received;
  return dropped(reason, kj::mv(detail));
}

kj::OneOf<Announce, Dropped> Beacon::receive(kj::StringPtr source,
                                             kj::ArrayPtr<const kj::byte> datagram, bool truncated,
                                             kj::TimePoint now) {
  ++counts.received;
  // Cheapest checks first: a flood costs a size test and a bucket lookup per datagram.
  if (isMutant(Mutant::datagramTruncationIgnored)) truncated = false;  // reads what fits
  if (truncated || datagram.size() > kMaxDatagramBytes) {
    return dropped(DropReason::tooLarge, kj::str(datagram.size(), "+ bytes from ", source));
  }
  if (!limiter.admit(source, now)) {
    return dropped(DropReason::rateLimited, kj::str("from ", source));
  }
  auto decoded = decodeAnnounce(datagram);
  KJ_SWITCH_ONEOF(decoded) {
    KJ_CASE_ONEOF(drop, Dropped) {
      return dropped(drop.reason, kj::str(drop.detail, " from ", source));
    }
    KJ_CASE_ONEOF(announce, Announce) {
      if (announce.peerId == self && !isMutant(Mutant::dialsOwnAnnounce)) {
        return dropped(DropReason::own, kj::str("from ", source));
      }
      if (announce.versionMin > versionMax || announce.versionMax < versionMin) {
        return dropped(DropReason::incompatible, kj::str("versions ", announce.versionMin, "..",
                                                         announce.versionMax, " from ", source));
      }
      ++counts.accepted;
      return kj::mv(announce);
    }
  }
  KJ_UNREACHABLE;
}

}  // namespace shoal::peer::discovery
