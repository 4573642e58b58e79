// SourceWindow: how many chunk requests one source may have outstanding. A window that is too
// small leaves the link idle between answers; one that is too large only queues chunks at the
// source (memory here, latency for everything else). The right size is the bandwidth-delay
// product: the source's delivery rate times its unloaded latency, in chunks, with headroom —
// the shape of BBR's congestion window, measured per source. Sans-I/O: times come in as values.
#pragma once

#include <stdint.h>

#include <kj/common.h>
#include <kj/time.h>

namespace shoal::peer::download {

// Taken when a request is sent, handed back when its answer arrives: the delivery rate sample is
// what was delivered in between over the time it took (BBR's delivery-rate estimation).
struct SendStamp {
  kj::TimePoint sentAt;
  uint64_t delivered;         // bytes delivered by the source before this request was sent
  kj::TimePoint deliveredAt;  // when the last of those arrived (not before the source got busy)
  bool idle;                  // nothing else was outstanding: its latency has no queue in it
};

class SourceWindow {
 public:
  // `cap` bounds the window (the source's maxInFlight and our own limit), `initial` is used until
  // the first rate sample, `chunkBytes` (the manifest's chunk size) bounds what one answer carries.
  // After the first sample the window holds at least `minBytes` of answers (within `cap`).
  SourceWindow(uint32_t cap, uint32_t initial, uint32_t chunkBytes, uint64_t minBytes = 0);

  // A request is sent while `outstanding` others are in flight.
  SendStamp onSent(kj::TimePoint now, uint32_t outstanding);
  // The answer to the request stamped `stamp` arrived with `bytes`.
  void onDelivered(uint64_t bytes, const SendStamp& stamp, kj::TimePoint now);
  // The source stopped answering for the stall timeout: halve the window and the rate estimate.
  void onStall();
  // The source said busy with `outstanding` requests in flight: that is all it takes for now.
  void onBusy(uint32_t outstanding);

  // While probing for the latency minimum this is 1: the source drains, and the next request
  // measures the path without a queue in front of it.
  uint32_t size() const { return probing ? 1 : window; }
  // Delivery rate estimate in bytes per second (0 before the first sample).
  double rate() const { return bytesPerSecond; }
  kj::Maybe<kj::Duration> minLatency() const { return lowest; }

 private:
  uint32_t cap;
  uint32_t chunkBytes;
  uint64_t minBytes;
  uint32_t window;
  double bytesPerSecond = 0;
  kj::Maybe<kj::Duration> lowest;
  kj::TimePoint lowestAt = kj::origin<kj::TimePoint>();
  bool probing = false;
  uint64_t delivered = 0;
  uint64_t answers = 0;  // delivered / answers: the mean answer, which sizes a request
  kj::TimePoint lastDelivery = kj::origin<kj::TimePoint>();
  kj::TimePoint busySince = kj::origin<kj::TimePoint>();

  void resize();
};

}  // namespace shoal::peer::download
