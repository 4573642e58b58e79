// LibrarySync: following one remote peer's library over its session, sans-I/O. It decides when a
// GetLibrary goes out and from which (epoch, rev), feeds the answer's pages to its LibraryView,
// asks again when the peer announces a change or the view must resynchronise, waits after busy,
// and gives up on a peer whose digest keeps failing. Inputs and `now` in; the request to send,
// the next deadline and what happened out. The runtime carries it out on the peer's session.
#pragma once

#include <kj/one-of.h>
#include <kj/time.h>
#include <kj/vector.h>
#include <shoal/peer/library/library-view.h>

namespace shoal::peer::library {

struct LibrarySyncLimits {
  // After busy/unavailable the peer is asked again after its retryAfterMs, but not sooner.
  kj::Duration retryMin = 100 * kj::MILLISECONDS;
  // A peer whose library digest keeps failing after this many fresh snapshots is given up on.
  uint32_t maxResyncs = 3;
  // Items held for the peer (LibraryView's bound).
  size_t maxItems = 1000000;
};

namespace sync {
// The view now matches a new summary of the peer's.
struct Applied {};
// The answer could not apply or its digest did not match: the view is gone, a snapshot follows.
struct Resyncing {
  kj::String message;
};
// The peer refused a GetLibrary; `retryAt` when it is asked again (busy, unavailable).
struct Refused {
  wire::ErrorCode code;
  kj::String message;
  kj::Maybe<kj::TimePoint> retryAt;
};
// The peer broke a paging rule ([RQ-5], [RQ-6], [LIB-9]) or its digest kept failing: end the
// session with Error{0, protocol}.
struct Failed {
  kj::String message;
};
}  // namespace sync

using SyncEvent = kj::OneOf<sync::Applied, sync::Resyncing, sync::Refused, sync::Failed>;

class LibrarySync {
 public:
  explicit LibrarySync(LibrarySyncLimits limits = {});
  KJ_DISALLOW_COPY(LibrarySync);

  // --- inputs ---------------------------------------------------------------------------------
  // The session is established: the first GetLibrary.
  void start();
  // The peer announced `summary` (LibraryChanged): ask again unless the view already holds it.
  void onLibraryChanged(const codec::Summary& summary);
  // A page of the GetLibrary in flight; `terminal` for its last one (the session knows which).
  void onPage(wire::Frame::Reader page, bool terminal);
  // The GetLibrary in flight ended without an answer: an Error from the peer, or (`local`) the
  // session is ending — nothing more is asked then.
  void onError(wire::ErrorCode code, kj::StringPtr message, uint32_t retryAfterMs, bool local,
               kj::TimePoint now);
  void onTick(kj::TimePoint now);

  // --- outputs --------------------------------------------------------------------------------
  // The GetLibrary to send now, if one is due: at most one is in flight.
  kj::Maybe<LibraryView::Since> takeRequest();
  kj::Vector<SyncEvent> takeEvents();
  // When onTick() has something to do (a retry after busy).
  kj::Maybe<kj::TimePoint> nextDeadline() const { return retryAt; }

  const LibraryView& view() const { return remote; }
  bool inFlight() const { return outstanding; }
  uint32_t resyncs() const { return resyncCount; }

 private:
  LibrarySyncLimits limits;
  LibraryView remote;
  bool outstanding = false;  // a GetLibrary is in flight
  bool wanted = false;       // another one is due once it is answered
  bool ended = false;        // the session is ending or was given up on
  uint32_t resyncCount = 0;
  kj::Maybe<kj::TimePoint> retryAt;
  kj::Vector<SyncEvent> events;

  void fail(kj::String message);
};

}  // namespace shoal::peer::library
