// DownloadCore: the sans-I/O scheduler of one item's download (docs/downloads.md). Sources up and
// down, manifest pages, chunk answers and errors, writer results and `now` go in; requests to
// send, cancels, disk work and events come out. It owns no socket, file, clock or thread: the KJ
// driver (download.h) carries its actions out, and tests and fuzz_download drive it directly.
//
// What it decides: which manifest to fetch and from whom; which chunk each source is asked for
// (a per-source window sized from delivery rate × latency, faster sources first, a memory budget
// over everything requested or waiting for the disk); when a source is stalled, busy, lying or
// gone and what is re-requested elsewhere; endgame duplicates and the Cancel of their losers;
// when the progress is saved; when the item is complete. What it never does: hash or write bytes
// (the writer verifies every chunk before a byte reaches the file, [CHK-7]).
#pragma once

#include <stdint.h>

#include <kj/map.h>
#include <kj/one-of.h>
#include <kj/time.h>
#include <kj/vector.h>
#include <shoal/codec/manifest.h>
#include <shoal/peer/download/chunk-set.h>
#include <shoal/peer/download/source-window.h>
#include <shoal/peer/session/session-core.h>

namespace shoal::peer::download {

// One session of one peer that lists the item (the runtime's connection generation): [CHK-8]
// counts bad chunks per session, so a reconnected peer is a new source.
using SourceKey = uint64_t;
// One request of this download, numbered by the core; the driver maps it to a session request.
using Ticket = uint64_t;

// Every limit of the scheduler, named and configurable (docs/downloads.md explains each).
struct DownloadLimits {
  // Chunks requested or waiting for the disk, all sources together: bytes, and chunks (many small
  // files make many small chunks).
  uint64_t maxBufferedBytes = 64 << 20;
  uint32_t maxBufferedChunks = 512;
  // Chunk requests outstanding per source (also at most its maxInFlight), and the window a source
  // starts with before its first rate sample.
  uint32_t maxWindow = 64;
  uint32_t initialWindow = 2;
  // Answer bytes a source's window holds at least, whatever its bandwidth-delay product: per
  // request costs, not the link, limit small answers (source-window.c++).
  uint64_t minWindowBytes = 1 << 20;
  // Chunks of an earlier run being read back and verified at once ([CHK-10]).
  uint32_t maxChecksInFlight = 8;
  // Requests in flight for one chunk in the endgame.
  uint32_t endgameCopies = 2;
  // [CHK-8]: a source is dropped at this many bad chunks (at most 5); and at this many failed
  // answers or stalls in a row.
  uint32_t maxBadChunks = 5;
  uint32_t maxSourceErrors = 5;
  // A source with requests outstanding and no answer for this long is stalled.
  kj::Duration stallTimeout = 5 * kj::SECONDS;
  // The wait after busy/unavailable without retryAfterMs, and after any other failed answer.
  kj::Duration minRetryAfter = 100 * kj::MILLISECONDS;
  kj::Duration errorBackoff = 250 * kj::MILLISECONDS;
  // Progress saved at least this often; progress events this often.
  kj::Duration saveInterval = 2 * kj::SECONDS;
  kj::Duration progressInterval = 250 * kj::MILLISECONDS;
  // No usable source for this long ends the download with AllPeersGone.
  kj::Duration peersGoneGrace = 2 * kj::SECONDS;
};

// What the runtime knows of a source: its announced limits and what its library lists.
struct SourceInfo {
  PeerId peer;
  uint32_t maxInFlight = 64;
  uint32_t maxChunkBytes = codec::kMaxChunkSize;
  // The item's manifest digest in the source's library, or null while it does not list the item
  // (e.g. it is downloading it itself).
  kj::Maybe<codec::Digest> listed;
  // The chunks it can serve; null = all of them (a source with the complete item). A source with
  // a partial item will list only what it verified: the scheduler already asks per chunk.
  kj::Maybe<ChunkSet> has;
  // Bad chunks of this item it already sent in this session, to earlier downloads: [CHK-8]
  // counts per session, not per download (DownloadRegistry keeps the count).
  uint32_t badChunks = 0;

  SourceInfo clone() const;
};

// Why a source stopped being used for this download.
enum class DropReason : uint8_t {
  badChunks,    // maxBadChunks chunks that failed verification or had the wrong length [CHK-8]
  errors,       // maxSourceErrors failed answers or stalls in a row
  badManifest,  // sent a manifest that failed the checks of [MAN-21] or paging rules
  changed,      // its item no longer has the manifest we download (stale, notFound, new digest)
  tooSmall,     // its maxChunkBytes is below the manifest's chunk size (splitting is not done)
};
kj::StringPtr name(DropReason reason);

enum class Outcome : uint8_t {
  finished,      // complete, verified, in the library
  failed,        // a local failure (disk, paths): partial state kept
  cancelled,     // by the user: partial state kept
  stopped,       // runtime shutdown: partial state kept
  allPeersGone,  // no source left: partial state kept
};
kj::StringPtr name(Outcome outcome);

namespace action {
struct GetManifest {
  Ticket ticket;
  SourceKey source;
};
struct GetChunk {
  Ticket ticket;
  SourceKey source;
  uint64_t chunk;
  uint32_t file;
  uint64_t offset;
  uint32_t length;
};
// Withdraw the request (Cancel{id} on the wire); no answer to it reaches the core afterwards.
struct Cancel {
  Ticket ticket;
};
// The source broke a protocol rule that ends the session ([RQ-6]): the runtime closes it.
struct Misbehaved {
  SourceKey source;
  kj::String message;
};
// Create or reopen the partial files for manifest() (paths checked, space preallocated) and
// persist the manifest; what an earlier run left for another manifest is removed first.
// Answer: onPrepared() or onDiskFailed().
struct Prepare {};
// Read chunk `chunk` back from the partial file and verify it (claimed by an earlier run).
// Answer: onChunkChecked().
struct CheckChunk {
  uint64_t chunk;
  uint32_t file;
  uint64_t offset;
  uint32_t length;
};
// Persist `chunks` (verified, plus those claimed by an earlier run and not yet checked)
// atomically. Answer: onSaved() (or onDiskFailed()).
struct SaveProgress {
  ChunkSet chunks;
};
// Stop at the next chunk boundary: writes and checks not started are dropped (onJobDropped()).
struct StopWrites {};
// fsync everything and rename the item into the library. Answer: onFinished() or onDiskFailed().
struct Finish {};
}  // namespace action

using Action = kj::OneOf<action::GetManifest, action::GetChunk, action::Cancel, action::Misbehaved,
                         action::Prepare, action::CheckChunk, action::SaveProgress,
                         action::StopWrites, action::Finish>;

namespace event {
struct ManifestReady {
  uint64_t totalBytes;
  uint64_t chunkCount;
  uint32_t fileCount;
};
struct Progress {
  uint64_t bytesDone;
  uint64_t bytesTotal;
  uint32_t sourcesInUse;
};
// A source sent a bad chunk: its hash or its length was wrong. `count` is its total for this item
// in this session; at DownloadLimits::maxBadChunks it is dropped (SourceDropped follows).
struct BadChunk {
  SourceKey source;
  PeerId peer;
  uint32_t count;
};
struct SourceDropped {
  SourceKey source;
  PeerId peer;
  DropReason reason;
  kj::String detail;
};
// No usable source for peersGoneGrace: the download ends with Outcome::allPeersGone. Exactly
// once, never together with Failed.
struct AllPeersGone {};
// Last, exactly once.
struct Ended {
  Outcome outcome;
  kj::String message;  // what failed, for Outcome::failed
};
}  // namespace event

using DownloadEvent = kj::OneOf<event::ManifestReady, event::Progress, event::BadChunk,
                                event::SourceDropped, event::AllPeersGone, event::Ended>;

// The chunk bytes one source delivered for this download (accepted for verification).
struct SourceBytes {
  PeerId peer;
  uint64_t bytes;
};

// What onChunk() wants done with a chunk that arrived: verify it against the manifest and write
// it at `offset` of file `file`, then report onChunkWritten() / onChunkCorrupt() / onWriteFailed().
struct ChunkWrite {
  uint64_t chunk;
  uint32_t file;
  uint64_t offset;
};

class DownloadCore {
 public:
  enum class State : uint8_t {
    loading,           // waiting for the earlier run's state: onLoaded()
    fetchingManifest,  // GetManifest to one source at a time
    preparing,         // partial files being created: onPrepared()
    downloading,       // chunks requested, checked, written
    finishing,         // every chunk verified; fsync and rename: onFinished()
    stopping,          // ending (cancel, shutdown, failure, no peers): writes drain, progress saved
    ended,             // Ended was emitted
  };

  static kj::StringPtr name(State state);

  DownloadCore(kj::StringPtr itemId, const DownloadLimits& limits, const codec::Limits& ours,
               kj::TimePoint now);
  KJ_DISALLOW_COPY(DownloadCore);

  // --- inputs ---------------------------------------------------------------------------------
  // The earlier run's manifest and the chunks it recorded as verified, or nulls for a fresh start.
  void onLoaded(kj::Maybe<codec::Manifest> manifest, ChunkSet claimed, kj::TimePoint now);

  // A source appeared or what we know of it changed (limits, listed digest, chunks it has).
  void addSource(SourceKey key, SourceInfo info, kj::TimePoint now);
  // Its session ended: every request to it is lost ([ERR-8]) and re-requested elsewhere.
  void removeSource(SourceKey key, kj::TimePoint now);

  // A page (or, `terminal`, the last page) of the manifest answering `ticket`. The page comes from
  // a frame that passed validation.
  void onManifestPage(Ticket ticket, wire::Manifest::Reader page, bool terminal, kj::TimePoint now);
  // The Chunk answering `ticket` arrived with `length` bytes. Non-null: give the bytes to the
  // writer; null: drop them (unknown or cancelled ticket, chunk already written, wrong length).
  kj::Maybe<ChunkWrite> onChunk(Ticket ticket, size_t length, kj::TimePoint now);
  // The request ended without its answer: an Error from the source, or (`local`) its session ended
  // or is draining.
  void onRequestFailed(Ticket ticket, wire::ErrorCode code, uint32_t retryAfterMs, bool local,
                       kj::TimePoint now);

  // The writer's answers.
  void onChunkWritten(uint64_t chunk, kj::TimePoint now);  // verified, then written
  void onChunkCorrupt(uint64_t chunk, kj::TimePoint now);  // SHA-256 mismatch: nothing written
  void onJobDropped(uint64_t chunk,
                    kj::TimePoint now);  // a write or check not started (StopWrites)
  void onChunkChecked(uint64_t chunk, bool intact, kj::TimePoint now);
  void onPrepared(kj::TimePoint now);
  void onSaved(kj::TimePoint now);
  void onFinished(kj::TimePoint now);
  // A disk failure: the download fails, partial state kept. `message` names the path and the
  // errno text. onChunkFailed() for a write or a check of `chunk`, onDiskFailed() for a Prepare,
  // a SaveProgress or a Finish.
  void onChunkFailed(uint64_t chunk, kj::StringPtr message, kj::TimePoint now);
  void onDiskFailed(kj::StringPtr message, kj::TimePoint now);

  // The user cancelled (Outcome::cancelled) or the runtime is stopping (Outcome::stopped). Either
  // way requests are cancelled, writes stop at a chunk boundary and the progress is saved.
  void cancel(kj::TimePoint now);
  void shutdown(kj::TimePoint now);

  // Timers: stalls, retry-after, periodic saves and progress, the no-peers grace.
  void onTick(kj::TimePoint now);

  // --- outputs --------------------------------------------------------------------------------
  kj::Vector<Action> takeActions();
  kj::Vector<DownloadEvent> takeEvents();

  State state() const { return current; }
  bool isEnded() const { return current == State::ended; }
  kj::StringPtr itemId() const { return item; }
  // Only once the manifest is known (from State::preparing on).
  const codec::Manifest& manifest() const;
  bool hasManifest() const { return target != nullptr; }
  // The chunks verified and written.
  const ChunkSet& verified() const { return done; }
  uint64_t bytesDone() const { return doneBytes; }
  uint32_t sourcesInUse() const;
  size_t outstanding() const { return requests.size(); }
  uint64_t bufferedBytes() const { return buffered; }
  // Every source this download has known, with the chunk bytes it delivered: the per-source
  // share of the end-of-download summary.
  kj::Vector<SourceBytes> bytesBySource() const;
  // For tests: a source's window and rate.
  kj::Maybe<const SourceWindow&> windowOf(SourceKey key) const;

 private:
  enum class ChunkStatus : uint8_t { missing, checking, requested, writing, done };
  struct Chunk {
    ChunkStatus status = ChunkStatus::missing;
    uint8_t copies = 0;   // requests in flight for it
    bool queued = false;  // in the retry queue
  };
  struct Source {
    SourceInfo info;
    SourceWindow window;
    bool usable = true;  // false once dropped (for the rest of this session)
    uint32_t outstanding = 0;
    uint32_t badChunks = 0;
    uint32_t errorsInRow = 0;
    kj::TimePoint lastProgress = kj::origin<kj::TimePoint>();
    kj::TimePoint notBefore = kj::origin<kj::TimePoint>();  // retry-after and error backoff
    uint64_t bytesReceived = 0;
  };
  struct Request {
    SourceKey source;
    bool manifest;
    uint64_t chunk;
    uint32_t length;
    SendStamp stamp;  // stamp.sentAt: when it was sent
  };

  kj::String item;
  DownloadLimits limits;
  codec::Limits ours;
  State current = State::loading;
  Outcome ending = Outcome::finished;
  kj::String endMessage;

  kj::Maybe<kj::Own<codec::Manifest>> target;
  kj::Maybe<kj::Own<codec::Manifest>> resumed;  // the earlier run's manifest, until decided on
  kj::Maybe<codec::Digest> wanted;              // the digest being fetched
  kj::Maybe<kj::Own<codec::ManifestAssembler>> assembling;
  kj::Maybe<Ticket> manifestTicket;
  ChunkSet claimed;  // from the earlier run, not yet checked: still saved as held
  uint64_t nextClaim = 0;
  uint32_t checking = 0;  // CheckChunk actions not yet answered
  bool diskBusy = false;  // Prepare or Finish not yet answered

  kj::Array<Chunk> chunks;
  ChunkSet done;
  uint64_t doneBytes = 0;
  uint64_t missingCount = 0;
  uint64_t cursor = 0;              // every chunk below it has left `missing` at least once
  kj::Vector<uint64_t> retryQueue;  // chunks back to missing, re-requested before the cursor's
  size_t retryHead = 0;
  kj::HashMap<uint64_t, SourceKey> badFrom;  // chunk → the source whose copy failed verification
  kj::HashMap<uint64_t, SourceKey> writtenFrom;  // chunk being written → the source that sent it
  uint32_t writing = 0;
  uint64_t buffered = 0;

  kj::HashMap<SourceKey, Source> sources;
  kj::Vector<SourceBytes> departed;  // what removed sources delivered, for bytesBySource()
  kj::HashMap<Ticket, Request> requests;
  Ticket nextTicket = 1;

  kj::TimePoint lastSaved = kj::origin<kj::TimePoint>();
  bool unsaved = false;
  bool saving = false;
  bool saveAgain = false;
  kj::TimePoint lastProgressEvent = kj::origin<kj::TimePoint>();
  kj::Maybe<kj::TimePoint> noSourcesSince;
  bool stopSaveStarted = false;

  kj::Vector<Action> actions;
  kj::Vector<DownloadEvent> events;

  // Lifecycle (download-core.c++).
  void decideManifest(kj::TimePoint now);
  void useManifest(kj::Own<codec::Manifest> manifest, kj::TimePoint now);
  void requestManifest(kj::TimePoint now);
  void dropFaulty(SourceKey key, DropReason reason, kj::String detail);
  void stop(Outcome outcome, kj::String message, kj::TimePoint now);
  void maybeEnd();
  void checkCompletion();
  void checkSources(kj::TimePoint now);
  bool isCandidate(const Source& source) const;
  void save(kj::TimePoint now);
  void progress(kj::TimePoint now);
  void markDone(uint64_t chunk);

  // Scheduling (download-scheduler.c++).
  void schedule(kj::TimePoint now);
  void startChecks();
  bool fill(SourceKey key, Source& source, kj::TimePoint now);
  kj::Maybe<uint64_t> pick(SourceKey key, const Source& source);
  kj::Maybe<uint64_t> pickDuplicate(SourceKey key, const Source& source);
  bool canUse(const Source& source, kj::TimePoint now) const;
  bool sourceHas(const Source& source, uint64_t chunk) const;
  bool avoidFor(SourceKey key, uint64_t chunk) const;
  void sendChunk(SourceKey key, Source& source, uint64_t chunk, kj::TimePoint now);
  void withdraw(Ticket ticket);
  void releaseRequest(Ticket ticket, const Request& request);
  void backToMissing(uint64_t chunk);
  void withdrawAll(SourceKey key);
  void dropSource(SourceKey key, Source& source, DropReason reason, kj::String detail);
  void strike(SourceKey key, kj::StringPtr why);
  void sourceFailed(SourceKey key, Source& source, kj::StringPtr why, kj::TimePoint now);
  void stalled(SourceKey key, Source& source, kj::TimePoint now);
  uint32_t fileOf(uint64_t chunk) const;
  uint32_t lengthOf(uint64_t chunk) const;
};

}  // namespace shoal::peer::download
