// Download: the KJ driver of one item's download. It runs DownloadCore's actions — requests to
// sources through DownloadSources, disk work through a ChunkWriter over a PartialItem — and feeds
// the answers back with the time. It owns everything it starts (its TaskSet, its requests, its
// writer threads): nothing outlives it, and run() resolves once the download has ended.
//
// DownloadSources is what the runtime provides (its sessions); DownloadRegistry is the runtime's
// record of downloads under way, kept exact by a DownloadStateGuard on every exit path.
#pragma once

#include <kj/async.h>
#include <kj/function.h>
#include <kj/map.h>
#include <kj/timer.h>
#include <shoal/peer/download/chunk-writer.h>
#include <shoal/peer/download/download-core.h>
#include <shoal/peer/download/partial-item.h>
#include <shoal/peer/session/session.h>

namespace shoal::peer::download {

class Download;

// One source of an item, as the runtime sees it now.
struct Source {
  SourceKey key;
  SourceInfo info;
};

// The runtime's side of a download. Every call happens on the event loop.
class DownloadSources {
 public:
  virtual ~DownloadSources() noexcept(false) = default;
  // The sources of `itemId` now: one per established session with a peer that lists the item
  // (SourceInfo::listed), or that may serve it.
  virtual kj::Array<Source> sources(kj::StringPtr itemId) = 0;
  // Sends `frame` (a GetManifest or a GetChunk, id left to the session) to `source`. The promise
  // resolves with the terminal answer; `onPage` sees the pages before it. Dropping the promise
  // cancels the request (Cancel{id} on the wire). A source that is gone answers at once with
  // RequestError{local = true}.
  virtual kj::Promise<Reply> request(
      SourceKey source, codec::FrameBuilder frame,
      kj::Maybe<kj::Function<void(const codec::InboundFrame&)>> onPage) = 0;
  // `source` broke a protocol rule that ends its session ([RQ-6]).
  virtual void misbehaved(SourceKey source, kj::StringPtr message) = 0;
};

// The runtime's record of the downloads under way: which items are downloading (so their
// library entry is unavailable, [MAN-3]), for `shoal status`. One entry per DownloadStateGuard.
class DownloadRegistry {
 public:
  // `onChange(itemId, active)` runs as an entry appears and disappears (the runtime marks the item
  // downloading in its library).
  explicit DownloadRegistry(kj::Maybe<kj::Function<void(kj::StringPtr, bool)>> onChange = nullptr);
  ~DownloadRegistry() noexcept(false);
  KJ_DISALLOW_COPY(DownloadRegistry);

  bool isActive(kj::StringPtr itemId) const { return active.find(itemId) != nullptr; }
  kj::Maybe<const Download&> find(kj::StringPtr itemId) const;
  size_t size() const { return active.size(); }

  // [CHK-8] counts a source's bad chunks of an item over its whole session, so the count outlives
  // the download that saw them: a download cancelled and started again still knows the liar.
  uint32_t badChunks(SourceKey source, kj::StringPtr itemId) const;
  void recordBadChunks(SourceKey source, kj::StringPtr itemId, uint32_t count);
  // The source's session ended: its counts go with it.
  void forgetSource(SourceKey source);

 private:
  friend class DownloadStateGuard;
  kj::Maybe<kj::Function<void(kj::StringPtr, bool)>> onChange;
  kj::HashMap<kj::String, const Download*> active;
  kj::HashMap<kj::String, uint32_t> strikes;  // "<source>/<itemId>" → bad chunks
};

// One download's entry in the registry, removed when the guard is destroyed: whichever way the
// download ends (finished, failed, cancelled, all peers gone, shutdown, or its task dropped), its
// bookkeeping goes with it. Movable, not copyable.
class DownloadStateGuard {
 public:
  // Null when `itemId` is already downloading.
  static kj::Maybe<DownloadStateGuard> begin(DownloadRegistry& registry, kj::StringPtr itemId,
                                             const Download& download);
  DownloadStateGuard(DownloadStateGuard&& other) noexcept;
  DownloadStateGuard& operator=(DownloadStateGuard&&) = delete;
  ~DownloadStateGuard() noexcept(false);
  KJ_DISALLOW_COPY(DownloadStateGuard);

 private:
  DownloadStateGuard(DownloadRegistry& registry, kj::String itemId);
  kj::Maybe<DownloadRegistry&> registry;
  kj::String itemId;
};

// A test seam in the writer: called on the writer thread as each chunk's write begins — its job
// started, not a byte of it verified or written yet — so a test can hold a write under way there
// for as long as it needs (download-driver-test). The runtime sets none.
class WriteGate {
 public:
  virtual void beforeWrite(uint64_t chunk) = 0;

 protected:
  ~WriteGate() noexcept(false) = default;
};

struct DownloadConfig {
  DownloadLimits limits;
  codec::Limits ours;  // our announced limits: a chunk must fit in a Chunk frame we accept
  uint32_t writerThreads = 2;
  // Chunk bytes one writer job verifies and writes at most: the chunks that arrive in one
  // event-loop turn share jobs up to this (a larger chunk is a job of its own).
  uint64_t writeBatchBytes = 1 << 20;
  kj::Maybe<WriteGate&> writeGate;  // tests only
  kj::Duration tickInterval = 50 * kj::MILLISECONDS;
};

// What `shoal status` shows of a download.
struct DownloadStatus {
  DownloadCore::State state;
  uint64_t bytesDone;
  uint64_t bytesTotal;  // 0 until the manifest is known
  uint32_t sourcesInUse;
};

class Download {
 public:
  // `folders` must stay open while the download lives; events go to `onEvent` as they happen.
  Download(kj::StringPtr itemId, Folders folders, DownloadConfig config, kj::Timer& timer,
           DownloadSources& sources, DownloadRegistry& registry,
           kj::Function<void(const DownloadEvent&)> onEvent);
  // Cancels what is in flight and joins the writer (which finishes the job it is on); a run()
  // still waiting resolves with Outcome::stopped.
  ~Download() noexcept(false);
  KJ_DISALLOW_COPY(Download);

  // Runs the download until it has ended and resolves with how it ended; never rejects. Holds the
  // item's DownloadStateGuard until then (Outcome::failed at once if the item is already being
  // downloaded). Call once.
  kj::Promise<Outcome> run();

  // The runtime's news: sessions came or went, a peer's library changed. Re-reads sources().
  void sourcesChanged();
  // Stop between chunks and save the progress: Outcome::cancelled (the user) or stopped (the
  // runtime shuts down). Idempotent; the partial state is kept for the next run.
  void cancel();
  void shutdown();
  // The hard stop, for the runtime's shutdown deadline: requests and timers cut now, run()
  // resolves with Outcome::stopped at once, disk jobs not started are dropped (the one under way
  // on each writer thread still finishes). The progress is not saved beyond its last save.
  // Not to be called from the download's own callbacks.
  void abort();

  kj::StringPtr itemId() const { return item; }
  DownloadStatus status() const;
  kj::Vector<SourceBytes> bytesBySource() const { return core.bytesBySource(); }
  // Writer jobs of chunks handed over so far (flushWrites): tests.
  uint64_t writeJobs() const { return writeJobsHandedOver; }
  // Once finished: the item as it is in the library, every chunk verified (complete()).
  kj::Maybe<kj::Own<const library::Item>> takeFinished() { return kj::mv(finishedItem); }

 private:
  class TaskErrors final : public kj::TaskSet::ErrorHandler {
   public:
    void taskFailed(kj::Exception&& exception) override;
  };

  kj::String item;
  Folders folders;
  DownloadConfig config;
  kj::Timer& timer;
  DownloadSources& sources;
  DownloadRegistry& registry;
  kj::Function<void(const DownloadEvent&)> onEvent;

  // Declared in the order that destruction needs reversed: the core and the partial item outlive
  // the writer threads that use them, and those outlive the promises waiting for them.
  DownloadCore core;
  kj::Maybe<kj::Own<PartialItem>> partial;
  kj::HashMap<SourceKey, bool> known;  // the sources the core was told about
  ChunkWriter writer;
  kj::Maybe<kj::Own<kj::PromiseFulfiller<Outcome>>> ended;  // run()'s, until Ended
  kj::Maybe<Outcome> endedWith;
  kj::Maybe<kj::Own<const library::Item>> finishedItem;
  bool started = false;
  TaskErrors taskErrors;
  kj::Canceler canceler;                            // the tasks below, for abort()
  kj::TaskSet tasks;                                // disk results, the tick loop
  kj::HashMap<Ticket, kj::Promise<void>> inFlight;  // requests: dropping one cancels it
  kj::Vector<Ticket> answered;                      // requests done, to remove from inFlight
  bool reaping = false;
  struct PendingWrite {
    ChunkWrite where;
    codec::InboundFrame frame;
  };
  kj::Vector<PendingWrite> pendingWrites;  // arrived in this turn: written at its end
  uint64_t writeJobsHandedOver = 0;

  void pump();
  void perform(Action& action);
  void send(Ticket ticket, SourceKey source, codec::FrameBuilder frame, bool manifest);
  void onReply(Ticket ticket, bool manifest, Reply reply);
  void reap();
  void submitWrite(ChunkWrite where, codec::InboundFrame frame);
  void flushWrites();
  void writeBatch(kj::Vector<PendingWrite> batch);
  void prepare();
  void check(action::CheckChunk check);
  void save(ChunkSet chunks);
  void finish();
  void publish(DownloadEvent& event);
  kj::Promise<void> tickLoop();
  void addTask(kj::Promise<void> task);
};

}  // namespace shoal::peer::download
