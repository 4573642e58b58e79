#include <shoal/peer/library/library-sync.h>

#include <shoal/mutant.h>

namespace shoal::peer::library {

LibrarySync::LibrarySync(LibrarySyncLimits limits) : limits(limits), remote(limits.maxItems) {}

void LibrarySync::start() {
  if (ended) return;
  wanted = true;
}

void LibrarySync::onLibraryChanged(const codec::Summary& summary) {
  if (ended) return;
  KJ_IF_MAYBE (held, remote.summary()) {
    if (*held == summary) return;
  }
  // While a retry waits, it will ask anyway; while a request is in flight, once more after it.
  if (retryAt == nullptr) wanted = true;
}

void LibrarySync::onPage(wire::Frame::Reader page, bool terminal) {
  if (ended) return;
  auto result = page.which() == wire::Frame::LIBRARY_SNAPSHOT
                    ? remote.onSnapshotPage(page.getLibrarySnapshot())
                    : remote.onDeltaPage(page.getLibraryDelta());
  if (terminal) outstanding = false;
  switch (result.outcome) {
    case ViewOutcome::morePages: return;
    case ViewOutcome::applied:
      resyncCount = 0;
      events.add(sync::Applied{});
      return;
    case ViewOutcome::resync:
      // [LIB-13]/[LIB-14]: the view is gone; ask for a snapshot, but not forever.
      if (++resyncCount > limits.maxResyncs) {
        fail(kj::str("library digest keeps failing (", result.message, ")"));
      } else {
        events.add(sync::Resyncing{kj::mv(result.message)});
        wanted = true;
      }
      return;
    case ViewOutcome::protocolError: fail(kj::mv(result.message)); return;
  }
}

void LibrarySync::onError(wire::ErrorCode code, kj::StringPtr message, uint32_t retryAfterMs,
                          bool local, kj::TimePoint now) {
  outstanding = false;
  if (ended) return;
  if (local) {
    ended = true;  // the session is ending: nothing more can be asked on it
    return;
  }
  if (isMutant(Mutant::ignoresRetryAfter)) retryAfterMs = 0;
  kj::Maybe<kj::TimePoint> retry;
  if (code == wire::ErrorCode::BUSY || code == wire::ErrorCode::UNAVAILABLE) {
    retry = now + kj::max(retryAfterMs * kj::MILLISECONDS, limits.retryMin);
    wanted = false;  // the retry asks
  }
  retryAt = retry;
  events.add(sync::Refused{code, kj::str(message), retry});
}

void LibrarySync::onTick(kj::TimePoint now) {
  KJ_IF_MAYBE (at, retryAt) {
    if (now >= *at) {
      retryAt = nullptr;
      if (!ended) wanted = true;
    }
  }
}

kj::Maybe<LibraryView::Since> LibrarySync::takeRequest() {
  if (ended || outstanding || !wanted) return nullptr;
  wanted = false;
  outstanding = true;
  if (isMutant(Mutant::neverAsksDelta)) return LibraryView::Since{};
  return remote.request();
}

kj::Vector<SyncEvent> LibrarySync::takeEvents() {
  return kj::mv(events);
}

void LibrarySync::fail(kj::String message) {
  ended = true;
  wanted = false;
  retryAt = nullptr;
  events.add(sync::Failed{kj::mv(message)});
}

}  // namespace shoal::peer::library
