#include <shoal/peer/download/chunk-writer.h>

namespace shoal::peer::download {

ChunkWriter::ChunkWriter(uint32_t count, size_t maxQueued) : maxQueued(maxQueued) {
  KJ_ASSERT(count >= 1, "a writer needs a thread");
  for (uint32_t i = 0; i < count; ++i)
    threads.add(kj::heap<kj::Thread>([this]() { work(); }));
}

ChunkWriter::~ChunkWriter() noexcept(false) {
  std::deque<Job> dropped;
  {
    auto lock = queue.lockExclusive();
    lock->closing = true;
    dropped = kj::mv(lock->jobs);
    lock->jobs.clear();
  }
  for (auto& job : dropped)
    job.body(false);
  threads.clear();  // joins: each thread ends after the job it is on
}

void ChunkWriter::submit(Job job) {
  auto lock = queue.lockExclusive();
  KJ_ASSERT(!lock->closing);
  if (lock->stopping && job.droppable) {
    lock.release();
    job.body(false);
    return;
  }
  // The caller bounds what it submits (DownloadCore's buffered limits): more is our bug.
  KJ_ASSERT(lock->jobs.size() < maxQueued, "the writer's queue is full", maxQueued);
  lock->jobs.push_back(kj::mv(job));
}

void ChunkWriter::stop() {
  std::deque<Job> dropped;
  {
    auto lock = queue.lockExclusive();
    lock->stopping = true;
    std::deque<Job> kept;
    for (auto& job : lock->jobs)
      (job.droppable ? dropped : kept).push_back(kj::mv(job));
    lock->jobs = kj::mv(kept);
  }
  for (auto& job : dropped)
    job.body(false);
}

void ChunkWriter::work() {
  for (;;) {
    kj::Maybe<Job> next;
    {
      auto lock = queue.lockExclusive();
      lock.wait([](const Queue& q) { return q.closing || !q.jobs.empty(); });
      if (lock->jobs.empty()) return;  // closing
      next = kj::mv(lock->jobs.front());
      lock->jobs.pop_front();
    }
    KJ_ASSERT_NONNULL(next).body(true);
  }
}

}  // namespace shoal::peer::download
