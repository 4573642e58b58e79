#include <shoal/peer/runtime/chunk-readers.h>

#include <kj/debug.h>

namespace shoal::peer {

ChunkReaders::ChunkReaders(int rootFd, ChunkReaderLimits limitsParam)
    : rootFd(rootFd),
      limits(limitsParam),
      frames(kj::atomicRefcounted<codec::ChunkFramePool>(limits.pooledFrames)) {
  KJ_REQUIRE(limits.threads > 0 && limits.maxOpenFiles > 0,
             "chunk readers need a thread and a file");
  for (uint32_t i = 0; i < limits.threads; ++i)
    threads.add(kj::heap<kj::Thread>([this]() { work(); }));
}

ChunkReaders::~ChunkReaders() noexcept(false) {
  queue.lockExclusive()->stopping = true;
  threads.clear();  // each joins after its current read
}

kj::Promise<ChunkAnswer> ChunkReaders::read(ChunkRead read) {
  auto paf = kj::newPromiseAndCrossThreadFulfiller<ChunkAnswer>();
  queue.lockExclusive()->jobs.add(Job{kj::mv(read), kj::mv(paf.fulfiller)});
  return kj::mv(paf.promise);
}

void ChunkReaders::work() {
  for (;;) {
    kj::Maybe<Job> next;
    {
      auto locked = queue.lockExclusive();
      locked.wait([](const Queue& q) { return q.stopping || q.head < q.jobs.size(); });
      if (locked->stopping) return;  // queued jobs go with the queue: their promises reject
      next = kj::mv(locked->jobs[locked->head++]);
      if (locked->head == locked->jobs.size()) {
        locked->jobs.clear();
        locked->head = 0;
      }
    }
    auto& job = KJ_ASSERT_NONNULL(next);
    KJ_IF_MAYBE (exception,
                 kj::runCatchingExceptions([&]() { job.fulfiller->fulfill(serve(job.read)); })) {
      // A bug of ours (reads report failures as Error frames): the request's answer says so.
      job.fulfiller->reject(kj::mv(*exception));
    }
  }
}

ChunkAnswer ChunkReaders::serve(const ChunkRead& read) {
  KJ_SWITCH_ONEOF(open(read)) {
    KJ_CASE_ONEOF(refused, library::FileRefusal) {
      return ChunkAnswer{kj::arr(codec::errorFrame(read.id, refused.code, refused.message)),
                         refused.code == wire::ErrorCode::STALE, 0};
    }
    KJ_CASE_ONEOF(shared, kj::Own<const SharedFd>) {
      auto answer = readChunk(read, shared->fd.get(), *frames);
      if (answer.stale) forget(read);
      return answer;
    }
  }
  KJ_UNREACHABLE;
}

kj::OneOf<kj::Own<const ChunkReaders::SharedFd>, library::FileRefusal> ChunkReaders::open(
    const ChunkRead& read) {
  {
    auto locked = cache.lockExclusive();
    for (auto& entry : locked->entries) {
      if (entry.item.get() == read.item.get() && entry.index == read.index) {
        entry.lastUse = ++locked->clock;
        return kj::atomicAddRef(*entry.fd);
      }
    }
  }
  // Opened without the lock (two reads of one new file may both open it; the second is kept).
  ++opened.lockExclusive()->count;
  KJ_SWITCH_ONEOF(read.item->openFile(rootFd, read.index)) {
    KJ_CASE_ONEOF(refused, library::FileRefusal) {
      return kj::mv(refused);
    }
    KJ_CASE_ONEOF(fd, kj::AutoCloseFd) {
      auto shared = kj::atomicRefcounted<SharedFd>(kj::mv(fd));
      auto locked = cache.lockExclusive();
      auto& entries = locked->entries;
      if (entries.size() >= limits.maxOpenFiles) {
        size_t oldest = 0;
        for (auto i : kj::indices(entries)) {
          if (entries[i].lastUse < entries[oldest].lastUse) oldest = i;
        }
        if (oldest + 1 < entries.size()) entries[oldest] = kj::mv(entries.back());
        entries.removeLast();
      }
      entries.add(
          CacheEntry{read.item->addRef(), read.index, kj::atomicAddRef(*shared), ++locked->clock});
      return kj::Own<const SharedFd>(kj::mv(shared));
    }
  }
  KJ_UNREACHABLE;
}

void ChunkReaders::forget(const ChunkRead& read) {
  auto locked = cache.lockExclusive();
  auto& entries = locked->entries;
  for (auto i : kj::indices(entries)) {
    if (entries[i].item.get() == read.item.get() && entries[i].index == read.index) {
      if (i + 1 < entries.size()) entries[i] = kj::mv(entries.back());
      entries.removeLast();
      return;
    }
  }
}

}  // namespace shoal::peer
