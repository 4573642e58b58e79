#include <shoal/peer/runtime/chunk-readers.h>

#include <kj/debug.h>

namespace shoal::peer {

ChunkReaders::ChunkReaders(int rootFd, ChunkReaderLimits limitsParam, kj::Maybe<ReadGate&> gate)
    : rootFd(rootFd),
      limits(limitsParam),
      gate(gate),
      frames(kj::atomicRefcounted<codec::ChunkFramePool>(limits.pooledFrameBytes)) {
  KJ_REQUIRE(limits.threads > 0 && limits.maxOpenFiles > 0 && limits.maxQueuedReads > 0,
             "chunk readers need a thread, a file and a read");
  for (uint32_t i = 0; i < limits.threads; ++i)
    threads.add(kj::heap<kj::Thread>([this]() { work(); }));
}

ChunkReaders::~ChunkReaders() noexcept(false) {
  queue.lockExclusive()->stopping = true;
  threads.clear();  // each joins after its current job
}

void ChunkReaders::TaskErrors::taskFailed(kj::Exception&& exception) {
  // handOver() settles every read itself; reaching here is a bug of ours.
  KJ_LOG(ERROR, "chunk readers: a job's answers were lost", exception);
}

kj::Promise<ChunkAnswer> ChunkReaders::read(ChunkRead read) {
  if (waiting >= limits.maxQueuedReads) {
    // Back-pressure: the requester backs off and asks again ([ERR-5]); nothing is queued.
    return ChunkAnswer{kj::arr(codec::errorFrame(read.id, wire::ErrorCode::BUSY,
                                                 "too many chunk reads under way")),
                       false, 0};
  }
  ++waiting;
  auto paf = kj::newPromiseAndFulfiller<ChunkAnswer>();
  pending.add(Pending{kj::mv(read), kj::mv(paf.fulfiller)});
  // Last in the turn: every read the turn's frames asked for goes in the same jobs.
  if (pending.size() == 1) tasks.add(kj::evalLast([this]() { flush(); }));
  return kj::mv(paf.promise);
}

void ChunkReaders::flush() {
  auto all = kj::mv(pending);
  pending = kj::Vector<Pending>();
  kj::Vector<Pending> batch;
  uint64_t bytes = 0;
  for (auto& p : all) {
    if (!batch.empty() && bytes + p.read.length > limits.maxBatchBytes) {
      tasks.add(handOver(kj::mv(batch)));
      batch = kj::Vector<Pending>();
      bytes = 0;
    }
    bytes += p.read.length;
    batch.add(kj::mv(p));
  }
  if (!batch.empty()) tasks.add(handOver(kj::mv(batch)));
}

kj::Promise<void> ChunkReaders::handOver(kj::Vector<Pending> batch) {
  auto reads = kj::heapArrayBuilder<ChunkRead>(batch.size());
  auto fulfillers = kj::heapArrayBuilder<kj::Own<kj::PromiseFulfiller<ChunkAnswer>>>(batch.size());
  for (auto& p : batch) {
    reads.add(kj::mv(p.read));
    fulfillers.add(kj::mv(p.fulfiller));
  }
  auto paf = kj::newPromiseAndCrossThreadFulfiller<kj::Array<ChunkAnswer>>();
  queue.lockExclusive()->jobs.add(Job{reads.finish(), kj::mv(paf.fulfiller)});
  ++handedOver;
  using Answers = kj::OneOf<kj::Array<ChunkAnswer>, kj::Exception>;
  return paf.promise
      .then([](kj::Array<ChunkAnswer> answers) -> Answers { return kj::mv(answers); },
            [](kj::Exception&& exception) -> Answers { return kj::mv(exception); })
      .then([this, fulfillers = fulfillers.finish()](Answers result) mutable {
        waiting -= fulfillers.size();
        KJ_SWITCH_ONEOF(result) {
          KJ_CASE_ONEOF(answers, kj::Array<ChunkAnswer>) {
            KJ_ASSERT(answers.size() == fulfillers.size());
            for (auto i : kj::indices(answers))
              fulfillers[i]->fulfill(kj::mv(answers[i]));
          }
          KJ_CASE_ONEOF(exception, kj::Exception) {
            for (auto& f : fulfillers)
              f->reject(kj::cp(exception));
          }
        }
      });
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
    KJ_IF_MAYBE (exception, kj::runCatchingExceptions([&]() {
                   auto answers = kj::heapArrayBuilder<ChunkAnswer>(job.reads.size());
                   for (auto& read : job.reads) {
                     KJ_IF_MAYBE (g, gate) {
                       g->beforeRead(read);
                     }
                     answers.add(serve(read));
                   }
                   job.fulfiller->fulfill(answers.finish());
                 })) {
      // A bug of ours (reads report failures as Error frames): the requests' answers say so.
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
