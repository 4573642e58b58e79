// ChunkReaders: GetChunk's disk work off the event loop. The loop checks a request against the
// library (RequestServer::checkChunk); a few reader threads then open the file (through a small
// cache of open files), pread the chunk straight into the outgoing Chunk frame and check the file
// again (RequestServer's readChunk). One cold disk read no longer delays every session.
//
// Reads asked for in one event-loop turn go to the readers together, in jobs of up to
// `maxBatchBytes`: one hand-over and one wake-up of the loop per job, not per chunk — what many
// small chunks cost otherwise (a thread switch each way per 16 KiB). Reads waiting or being read
// are bounded (`maxQueuedReads`); one more is answered busy at once.
//
// Open files are cached by (item, file index) and shared by the readers (pread is positionless);
// each read still re-checks the file against what was hashed, and a stale answer drops its entry.
// A file replaced by rename keeps being read from the old inode while it is cached — the bytes the
// manifest hashed, so still correct — until the entry is evicted or the next scan drops the item.
#pragma once

#include <kj/async.h>
#include <kj/mutex.h>
#include <kj/thread.h>
#include <kj/vector.h>
#include <shoal/peer/runtime/request-server.h>

namespace shoal::peer {

struct ChunkReaderLimits {
  uint32_t threads = 4;
  uint32_t maxOpenFiles = 64;  // cached open files, all threads together
  // Freed Chunk frames kept for reuse (codec/chunk-frame.h), their bytes all together.
  uint64_t pooledFrameBytes = 16 << 20;
  // Reads waiting for a reader or being read, all sessions together; one more gets Error{busy}.
  uint32_t maxQueuedReads = 1024;
  // Chunk bytes one reader job reads at most (a larger chunk is a job of its own).
  uint64_t maxBatchBytes = 1 << 20;
  // Chunk bytes of one session being read at once: its next request waits until fewer are (the
  // runtime enforces it; at least one read per session goes ahead).
  uint64_t maxReadingBytesPerSession = 4 << 20;
};

// A test seam in the readers: called on a reader thread as each read begins — its job taken, not a
// byte read yet — so a test can hold reads under way for as long as it needs (wire-test). The
// runtime passes RuntimeConfig::readGate, which only tests set.
class ReadGate {
 public:
  virtual void beforeRead(const ChunkRead& read) = 0;

 protected:
  ~ReadGate() noexcept(false) = default;
};

class ChunkReaders {
 public:
  // `rootFd` (the library root) must outlive the readers.
  ChunkReaders(int rootFd, ChunkReaderLimits limits, kj::Maybe<ReadGate&> gate = nullptr);
  // Joins the threads after their current read; reads still queued are dropped (their promises
  // reject). Destroy after every session that could be waiting for an answer.
  ~ChunkReaders() noexcept(false);
  KJ_DISALLOW_COPY(ChunkReaders);

  // Reads `read` on a reader thread; resolves on the calling (event-loop) thread, with Error{busy}
  // at once when `maxQueuedReads` reads are already under way. Dropping the promise discards the
  // answer (the read itself runs to its end). Call from the one event-loop thread only.
  kj::Promise<ChunkAnswer> read(ChunkRead read);

  // Reads under way (waiting or being read) and reader jobs handed over so far: tests.
  size_t underWay() const { return waiting; }
  uint64_t jobs() const { return handedOver; }

  // Opens attempted so far, refused ones included (a cached file is not opened again): tests.
  uint64_t opens() const { return opened.lockShared()->count; }

 private:
  struct SharedFd : public kj::AtomicRefcounted {
    explicit SharedFd(kj::AutoCloseFd fd) : fd(kj::mv(fd)) {}
    kj::AutoCloseFd fd;
  };
  struct CacheEntry {
    kj::Own<const library::Item> item;  // held, so the key's address stays this item's
    uint32_t index;
    kj::Own<const SharedFd> fd;
    uint64_t lastUse;
  };
  struct Cache {
    kj::Vector<CacheEntry> entries;  // few: a linear search is enough
    uint64_t clock = 0;
  };
  struct Job {
    kj::Array<ChunkRead> reads;
    kj::Own<kj::CrossThreadPromiseFulfiller<kj::Array<ChunkAnswer>>> fulfiller;
  };
  struct Pending {  // asked for in this turn: handed over at its end (flush)
    ChunkRead read;
    kj::Own<kj::PromiseFulfiller<ChunkAnswer>> fulfiller;
  };
  class TaskErrors final : public kj::TaskSet::ErrorHandler {
   public:
    void taskFailed(kj::Exception&& exception) override;
  };
  struct Queue {
    kj::Vector<Job> jobs;  // FIFO from `head`
    size_t head = 0;
    bool stopping = false;
  };
  struct Counter {
    uint64_t count = 0;
  };

  int rootFd;
  ChunkReaderLimits limits;
  kj::Maybe<ReadGate&> gate;
  kj::MutexGuarded<Cache> cache;
  kj::MutexGuarded<Queue> queue;
  kj::MutexGuarded<Counter> opened;
  kj::Own<codec::ChunkFramePool> frames;  // shared with the frames it lent, which may outlive us
  // Event-loop side: reads not yet handed over, reads under way, and the jobs that carry them.
  kj::Vector<Pending> pending;
  size_t waiting = 0;
  uint64_t handedOver = 0;
  TaskErrors taskErrors;
  kj::TaskSet tasks{taskErrors};
  kj::Vector<kj::Own<kj::Thread>> threads;  // last: joined before the rest goes

  void flush();
  kj::Promise<void> handOver(kj::Vector<Pending> batch);
  void work();
  ChunkAnswer serve(const ChunkRead& read);
  kj::OneOf<kj::Own<const SharedFd>, library::FileRefusal> open(const ChunkRead& read);
  void forget(const ChunkRead& read);
};

}  // namespace shoal::peer
