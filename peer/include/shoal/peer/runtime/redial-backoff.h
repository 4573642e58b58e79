// RedialBackoff: when to dial a static peer again. Every way a dial can fail — no route, no
// answer, TLS refused, Hello refused, busy, a protocol error — doubles the wait up to a cap, with
// jitter so that peers refused together do not come back together; an established session resets
// it. Sans-I/O: it owns no clock (delays out) and draws its jitter from a seeded generator, so
// tests replay exact schedules on virtual time.
#pragma once

#include <stdint.h>

#include <kj/time.h>

namespace shoal::peer {

class RedialBackoff {
 public:
  // Waits grow from `min` (doubling) to `max`; each is drawn uniformly from [wait/2, wait].
  RedialBackoff(kj::Duration min, kj::Duration max, uint64_t seed);

  // The dial failed (before or during the handshake): the wait before the next one.
  kj::Duration afterFailure();
  // A session was established and has ended: start over from `min`.
  kj::Duration afterSession();

  uint32_t failures() const { return consecutiveFailures; }

 private:
  kj::Duration jittered(kj::Duration wait);
  uint64_t nextRandom();

  kj::Duration min;
  kj::Duration max;
  uint64_t state;
  uint32_t consecutiveFailures = 0;
};

}  // namespace shoal::peer
