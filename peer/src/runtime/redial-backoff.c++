#include <shoal/peer/runtime/redial-backoff.h>

#include <kj/debug.h>

namespace shoal::peer {

RedialBackoff::RedialBackoff(kj::Duration min, kj::Duration max, uint64_t seed)
    : min(min), max(kj::max(min, max)), state(seed) {
  KJ_REQUIRE(min > 0 * kj::NANOSECONDS, "the redial backoff must start above zero");
}

kj::Duration RedialBackoff::afterFailure() {
  auto wait = min;
  for (uint32_t i = 0; i < consecutiveFailures && wait < max; ++i)
    wait = wait * 2;
  if (consecutiveFailures < UINT32_MAX) ++consecutiveFailures;
  return jittered(kj::min(wait, max));
}

kj::Duration RedialBackoff::afterSession() {
  consecutiveFailures = 0;
  return jittered(min);
}

kj::Duration RedialBackoff::jittered(kj::Duration wait) {
  // Equal jitter: never below half the wait, so the doubling still bounds the dial rate.
  int64_t whole = wait / kj::NANOSECONDS;
  int64_t half = whole / 2;
  return (half + int64_t(nextRandom() % uint64_t(whole - half + 1))) * kj::NANOSECONDS;
}

uint64_t RedialBackoff::nextRandom() {
  // splitmix64: small, fast, and good enough to spread dials; not for secrets.
  uint64_t z = (state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

}  // namespace shoal::peer
