// ChunkWriter: the download's disk work, off the event loop. A few threads take jobs from one
// bounded queue — verify and write a chunk, read back a kept chunk, save the progress, prepare or
// complete the partial item — and each job's result comes back to the event loop as a promise.
// Hashing and disk I/O never block the loop; the loop never waits for the threads either (a full
// queue is a bug of the caller, which bounds what it submits: DownloadLimits).
//
// stop() acts only between jobs: jobs not yet started are dropped (their promises resolve to
// null), a job under way always finishes — a chunk write is never cut halfway.
#pragma once

#include <stdint.h>

#include <deque>

#include <kj/async.h>
#include <kj/debug.h>
#include <kj/function.h>
#include <kj/mutex.h>
#include <kj/thread.h>
#include <kj/vector.h>

namespace shoal::peer::download {

class ChunkWriter {
 public:
  // `count` worker threads; at most `maxQueued` jobs waiting at once.
  ChunkWriter(uint32_t count, size_t maxQueued);
  // Drops what has not started and joins the threads (each finishes the job it is on).
  ~ChunkWriter() noexcept(false);
  KJ_DISALLOW_COPY(ChunkWriter);

  // Runs `job` on a worker. The promise, on the calling thread's event loop, resolves with its
  // result — or with null when stop() dropped it before it started. A job that is not `droppable`
  // (saving the progress, completing) runs even after stop().
  template <typename T>
  kj::Promise<kj::Maybe<T>> run(kj::Function<T()> job, bool droppable = true);

  // From now on, droppable jobs are dropped instead of started.
  void stop();

  size_t queued() const { return queue.lockShared()->jobs.size(); }

 private:
  struct Job {
    kj::Function<void(bool start)> body;  // start = false: dropped, resolve with null
    bool droppable;
  };
  struct Queue {
    std::deque<Job> jobs;
    bool stopping = false;
    bool closing = false;
  };
  size_t maxQueued;
  kj::MutexGuarded<Queue> queue;
  kj::Vector<kj::Own<kj::Thread>> threads;

  void submit(Job job);
  void work();
};

template <typename T>
kj::Promise<kj::Maybe<T>> ChunkWriter::run(kj::Function<T()> job, bool droppable) {
  auto paf = kj::newPromiseAndCrossThreadFulfiller<kj::Maybe<T>>();
  submit(Job{[job = kj::mv(job), fulfiller = kj::mv(paf.fulfiller)](bool start) mutable {
               if (!start) {
                 fulfiller->fulfill(kj::Maybe<T>(nullptr));
                 return;
               }
               // Jobs report failures as values; an exception here is a bug of ours (a failed
               // KJ_ASSERT), and reaches the waiting side as a rejection instead of ending the
               // thread.
               KJ_IF_MAYBE (e, kj::runCatchingExceptions(
                                   [&]() { fulfiller->fulfill(kj::Maybe<T>(job())); })) {
                 fulfiller->reject(kj::mv(*e));
               }
             },
             droppable});
  return kj::mv(paf.promise);
}

}  // namespace shoal::peer::download
