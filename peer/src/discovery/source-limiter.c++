#include <shoal/peer/discovery/source-limiter.h>

#include <kj/debug.h>

namespace shoal::peer::discovery {

SourceLimiter::SourceLimiter(RateLimit perSource, RateLimit total, uint32_t maxSources)
    : perSource(perSource), total(total), maxSources(maxSources) {
  KJ_REQUIRE(perSource.burst > 0 && total.burst > 0 && maxSources > 0,
             "discovery rate limits must allow something");
}

bool SourceLimiter::conforms(kj::TimePoint full, const RateLimit& limit, kj::TimePoint now) {
  // Room for one more while the bucket will be full again within `burst - 1` periods.
  return full <= now + limit.per * (limit.burst - 1);
}

kj::TimePoint SourceLimiter::charge(kj::TimePoint full, const RateLimit& limit, kj::TimePoint now) {
  return kj::max(full, now) + limit.per;
}

void SourceLimiter::sweep(kj::TimePoint now) {
  sources.eraseAll([now](const kj::String&, kj::TimePoint full) { return full <= now; });
}

bool SourceLimiter::admit(kj::StringPtr source, kj::TimePoint now) {
  if (!conforms(totalFull, total, now)) return false;
  KJ_IF_MAYBE (full, sources.find(source)) {
    if (!conforms(*full, perSource, now)) return false;
    *full = charge(*full, perSource, now);
  } else {
    if (sources.size() >= maxSources) sweep(now);
    if (sources.size() >= maxSources) return false;
    sources.insert(kj::str(source), charge(now, perSource, now));
  }
  totalFull = charge(totalFull, total, now);
  return true;
}

}  // namespace shoal::peer::discovery
