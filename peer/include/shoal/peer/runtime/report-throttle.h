// ReportThrottle: events anyone on the network can cause (a refused handshake, a dropped
// connection) are reported at most once per interval: the first of a burst at once, the rest
// folded into one summary carrying the last one's details and how many were not shown. A flood
// of 1,000 connections is then a couple of lines, and the counts stay exact. Sans-I/O: `now` in,
// reports out; the owner flushes at nextFlush().
#pragma once

#include <kj/debug.h>
#include <kj/time.h>

namespace shoal::peer {

template <typename T>
class ReportThrottle {
 public:
  struct Report {
    T event;
    uint32_t suppressed;  // events of this kind not reported since the previous report
  };

  explicit ReportThrottle(kj::Duration interval) : interval(interval) {}

  // A new event: reported now, or held until the interval since the last report has passed.
  kj::Maybe<Report> offer(T event, kj::TimePoint now) {
    if (lastReport == nullptr || now >= KJ_ASSERT_NONNULL(lastReport) + interval) {
      uint32_t suppressed = held;
      held = 0;
      latest = nullptr;
      lastReport = now;
      return Report{kj::mv(event), suppressed};
    }
    ++held;
    latest = kj::mv(event);
    return nullptr;
  }

  // When the events held since the last report are due as a summary.
  kj::Maybe<kj::TimePoint> nextFlush() const {
    if (held == 0) return nullptr;
    return KJ_ASSERT_NONNULL(lastReport) + interval;
  }

  // The summary of the held events once due: the latest of them, counting the others.
  kj::Maybe<Report> flush(kj::TimePoint now) {
    KJ_IF_MAYBE (due, nextFlush()) {
      if (now < *due) return nullptr;
      auto report = Report{kj::mv(KJ_ASSERT_NONNULL(latest)), held - 1};
      held = 0;
      latest = nullptr;
      lastReport = now;
      return kj::mv(report);
    }
    return nullptr;
  }

 private:
  kj::Duration interval;
  kj::Maybe<kj::TimePoint> lastReport;
  kj::Maybe<T> latest;
  uint32_t held = 0;
};

}  // namespace shoal::peer
