// ChunkReaders: GetChunk's disk work off the event loop. The loop checks a request against the
// library (RequestServer::checkChunk); a few reader threads then open the file (through a small
// cache of open files), pread the chunk straight into the outgoing Chunk frame and check the file
// again (RequestServer's readChunk). One cold disk read no longer delays every session.
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
  uint32_t pooledFrames = 16;  // freed Chunk frames kept for reuse (codec/chunk-frame.h)
};

class ChunkReaders {
 public:
  // `rootFd` (the library root) must outlive the readers.
  ChunkReaders(int rootFd, ChunkReaderLimits limits);
  // Joins the threads after their current read; reads still queued are dropped (their promises
  // reject). Destroy after every session that could be waiting for an answer.
  ~ChunkReaders() noexcept(false);
  KJ_DISALLOW_COPY(ChunkReaders);

  // Reads `read` on a reader thread; resolves on the calling (event-loop) thread. Dropping the
  // promise discards the answer (the read itself runs to its end).
  kj::Promise<ChunkAnswer> read(ChunkRead read);

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
    ChunkRead read;
    kj::Own<kj::CrossThreadPromiseFulfiller<ChunkAnswer>> fulfiller;
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
  kj::MutexGuarded<Cache> cache;
  kj::MutexGuarded<Queue> queue;
  kj::MutexGuarded<Counter> opened;
  kj::Own<codec::ChunkFramePool> frames;    // shared with the frames it lent, which may outlive us
  kj::Vector<kj::Own<kj::Thread>> threads;  // last: joined before the rest goes

  void work();
  ChunkAnswer serve(const ChunkRead& read);
  kj::OneOf<kj::Own<const SharedFd>, library::FileRefusal> open(const ChunkRead& read);
  void forget(const ChunkRead& read);
};

}  // namespace shoal::peer
