#include <shoal/peer/download/source-window.h>

#include <math.h>

#include <kj/debug.h>

namespace shoal::peer::download {

namespace {

// Twice the bandwidth-delay product: one BDP keeps the link busy when the estimate is right,
// the second covers an estimate that lags a rising rate (so the window can double every round
// trip, which is how it grows from its initial size within a few round trips).
constexpr double kGain = 2.0;
// A latency minimum is re-measured this often: the source may have slowed down for good (a cold
// disk), and a minimum that is too low keeps the window too small. Latencies measured under load
// include the queue the window itself builds, so they cannot replace the minimum: instead the
// window drops to 1 until one request is answered with nothing in front of it (BBR's PROBE_RTT,
// also every 10 s).
constexpr kj::Duration kMinLatencyLifetime = 10 * kj::SECONDS;
// Samples shorter than this say more about timer granularity than about the source.
constexpr kj::Duration kMinSampleInterval = 100 * kj::MICROSECONDS;

double seconds(kj::Duration d) {
  return double(d / kj::NANOSECONDS) / 1e9;
}

}  // namespace

SourceWindow::SourceWindow(uint32_t cap, uint32_t initial, uint32_t chunkBytes, uint64_t minBytes)
    : cap(kj::max(cap, 1u)),
      chunkBytes(kj::max(chunkBytes, 1u)),
      minBytes(minBytes),
      window(kj::max(1u, kj::min(initial, this->cap))) {}

SendStamp SourceWindow::onSent(kj::TimePoint now, uint32_t outstanding) {
  // Time the source spent idle is not its slowness: samples start no earlier than its busy period.
  if (outstanding == 0) busySince = now;
  return {now, delivered, kj::max(lastDelivery, busySince), outstanding == 0};
}

void SourceWindow::onDelivered(uint64_t bytes, const SendStamp& stamp, kj::TimePoint now) {
  auto latency = now - stamp.sentAt;
  KJ_IF_MAYBE (l, lowest) {
    if (latency < *l || (probing && stamp.idle)) {
      lowest = latency;
      lowestAt = now;
      probing = false;
    } else if (now - lowestAt > kMinLatencyLifetime) {
      probing = true;
    }
  } else {
    lowest = latency;
    lowestAt = now;
  }
  delivered += bytes;
  ++answers;
  lastDelivery = now;
  auto interval = now - stamp.deliveredAt;
  if (interval < kMinSampleInterval) return;
  double sample = double(delivered - stamp.delivered) / seconds(interval);
  // Rises at once, falls gradually: one slow answer should not collapse the window.
  bytesPerSecond = kj::max(sample, bytesPerSecond - (bytesPerSecond - sample) / 8);
  resize();
}

void SourceWindow::onStall() {
  bytesPerSecond /= 2;
  window = kj::max(1u, window / 2);
}

void SourceWindow::onBusy(uint32_t outstanding) {
  window = kj::max(1u, kj::min(window, outstanding));
}

void SourceWindow::resize() {
  // The window counts requests, so the product is divided by what one answer carries: a small
  // file's chunk is its whole size, not the manifest's chunk size, and an item of 16 KiB files
  // needs ~64 times the window of one of 1 MiB chunks to keep the same bytes in flight.
  double perAnswer = kj::max(1.0, kj::min(double(chunkBytes), double(delivered) / double(answers)));
  double chunks = ceil(kGain * bytesPerSecond * seconds(KJ_ASSERT_NONNULL(lowest)) / perAnswer);
  // The product assumes a link is the bottleneck. For small answers it is the cost of each
  // request at both ends, which the next one hides only when it is already there: measured at
  // 5,000 × 16 KiB on loopback, the product settled at 2–5 requests and a window of 64 took the
  // transfer from 2.0 s to 0.9 s. So a window never holds fewer than `minBytes` of answers.
  double floor = ceil(double(minBytes) / perAnswer);
  window = uint32_t(kj::max(1.0, kj::min(kj::max(chunks + 1, floor), double(cap))));
}

}  // namespace shoal::peer::download
