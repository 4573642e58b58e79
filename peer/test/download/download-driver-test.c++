// Download, the KJ driver, turn by turn against a GMock DownloadSources whose every chunk answer
// the test gives by hand: what goes out stays within each source's window; the chunks of a source
// whose session ends mid-chunk are asked of another; the chunks of one turn share writer jobs of
// writeBatchBytes, and a job a stop drops leaves its chunks missing; cancel waits for the write
// under way (held inside the writer by the writer's test seam, WriteGate) and drops only what has
// not started; all peers gone is one event, and the state it keeps resumes. Every wait is on a
// promise — a request arriving, an event, the download's end — or on the held writer reaching the
// gate, bounded by a real-time limit that only a broken driver reaches.
#include <shoal/peer/download/download.h>

#include <gtest/gtest.h>

#include <kj/async-io.h>
#include <kj/mutex.h>

#include <map>
#include <string>

#include "mock-sources.h"

namespace shoal::peer::download::test {
namespace {

using testing::_;
using testing::Invoke;

// Only a driver that stopped answering reaches it.
constexpr kj::Duration kRealTimeBound = 20 * kj::SECONDS;

// One GetChunk the driver sent, answered when the test says so.
struct ChunkRequest {
  SourceKey source;
  uint64_t chunk;
  uint32_t file;
  uint64_t offset;
  uint32_t length;
  kj::Own<kj::PromiseFulfiller<Reply>> answer;
  bool answered = false;
  bool destroyed = false;  // the driver let go of its promise

  bool open() const { return !answered && !destroyed; }
  // Dropped without an answer: Cancel{id} on the wire.
  bool withdrawn() const { return destroyed && !answered; }
};

struct Driver : DownloadFolders {
  kj::AsyncIoContext io = kj::setupAsyncIo();
  kj::TimerImpl timer{kj::origin<kj::TimePoint>() + 1000 * kj::SECONDS};
  TestItem item;
  std::map<SourceKey, uint32_t> present;  // the sources with a session now → their maxInFlight
  testing::NiceMock<MockSources> mock;    // calls without an expectation are the point here
  DownloadRegistry registry;
  DownloadConfig config;

  kj::Vector<kj::Own<ChunkRequest>> requests;  // every GetChunk, in the order sent
  std::map<SourceKey, size_t> mostOpen;        // the most requests open to a source at once
  size_t toAbsentSources = 0;
  bool answerAtOnce = false;  // every chunk request answered honestly as it is made
  std::map<std::string, size_t> eventCount;
  kj::Maybe<Outcome> outcome;

  explicit Driver(kj::ArrayPtr<const uint64_t> sizes) : item(sizes) {
    config.limits.peersGoneGrace = 0 * kj::SECONDS;
    ON_CALL(mock, sources(_)).WillByDefault(Invoke([this](kj::StringPtr) { return sources(); }));
    ON_CALL(mock, request(_, _, _))
        .WillByDefault(Invoke([this](SourceKey key, codec::FrameBuilder frame, OnPage onPage) {
          return request(key, kj::mv(frame), kj::mv(onPage));
        }));
    EXPECT_CALL(mock, misbehaved(_, _)).Times(0);
  }

  kj::Own<Download> download() {
    return kj::heap<Download>("item", folders(), config, timer, mock, registry,
                              [this](const DownloadEvent& e) { onEvent(e); });
  }

  size_t openTo(SourceKey key) const {
    size_t n = 0;
    for (auto& r : requests)
      n += r->source == key && r->open() ? 1 : 0;
    return n;
  }
  kj::Vector<ChunkRequest*> openRequests(kj::Maybe<SourceKey> to = nullptr) {
    kj::Vector<ChunkRequest*> out;
    for (auto& r : requests) {
      bool wanted = true;
      KJ_IF_MAYBE (key, to) {
        wanted = r->source == *key;
      }
      if (wanted && r->open()) out.add(r.get());
    }
    return out;
  }
  size_t events(kj::StringPtr kind) const {
    auto found = eventCount.find(kind.cStr());
    return found == eventCount.end() ? 0 : found->second;
  }

  void answer(ChunkRequest& r) {
    answer(r, decoded(*chunkMessage(item, r.file, r.offset, r.length)));
  }
  void answer(ChunkRequest& r, codec::InboundFrame frame) {
    r.answered = true;
    r.answer->fulfill(Reply(kj::mv(frame)));
  }
  // What a session that ended answers to each request it had ([ERR-8]).
  void sessionEnded(ChunkRequest& r) {
    r.answered = true;
    r.answer->fulfill(
        Reply(RequestError{wire::ErrorCode::UNAVAILABLE, kj::str("the session ended"), 0, true}));
  }

  // Waits on the event loop until `done` holds, re-checked at every request and event.
  void until(kj::Function<bool()> done, kj::StringPtr what) {
    if (done()) return;
    auto paf = kj::newPromiseAndFulfiller<void>();
    waiter = Waiter{kj::mv(done), kj::mv(paf.fulfiller)};
    auto limit = io.provider->getTimer().afterDelay(kRealTimeBound).then([what]() {
      KJ_FAIL_ASSERT("timed out waiting for", what);
    });
    paf.promise.exclusiveJoin(kj::mv(limit)).wait(io.waitScope);
    waiter = nullptr;
  }
  Outcome finish(kj::Promise<Outcome>& running) {
    auto limit = io.provider->getTimer().afterDelay(kRealTimeBound).then([]() -> Outcome {
      KJ_FAIL_ASSERT("timed out waiting for the download to end");
    });
    return running.exclusiveJoin(kj::mv(limit)).wait(io.waitScope);
  }
  // The sources at work: every open request answered honestly, a virtual `step` per round, until
  // the download ends.
  Outcome serveUntilEnd(kj::Promise<Outcome>& running, kj::Duration step = 10 * kj::MILLISECONDS) {
    for (;;) {
      for (auto* r : openRequests())
        answer(*r);
      timer.advanceTo(timer.now() + step);
      io.waitScope.poll();
      if (outcome != nullptr) return finish(running);
      if (openRequests().empty()) {
        until([this]() { return !openRequests().empty() || outcome != nullptr; },
              "a request or the end");
      }
    }
  }

 private:
  struct Waiter {
    kj::Function<bool()> done;
    kj::Own<kj::PromiseFulfiller<void>> fulfiller;
  };
  kj::Maybe<Waiter> waiter;

  void wake() {
    KJ_IF_MAYBE (w, waiter) {
      if (w->fulfiller->isWaiting() && w->done()) w->fulfiller->fulfill();
    }
  }

  kj::Array<Source> sources() {
    auto out = kj::heapArrayBuilder<Source>(present.size());
    for (auto& [key, maxInFlight] : present) {
      out.add(Source{key, SourceInfo{peerId(uint8_t(key)), maxInFlight, codec::kMaxChunkSize,
                                     item.manifest.digest, nullptr}});
    }
    return out.finish();
  }

  kj::Promise<Reply> request(SourceKey key, codec::FrameBuilder frame, OnPage onPage) {
    auto root = frame->getRoot<wire::Frame>().asReader();
    if (present.count(key) == 0) {
      ++toAbsentSources;  // the contract's answer for a source that is gone, but never asked for
      return Reply(RequestError{wire::ErrorCode::UNAVAILABLE, kj::str("gone"), 0, true});
    }
    if (root.isGetManifest()) {
      return kj::evalLater([this, onPage = kj::mv(onPage)]() mutable -> Reply {
        auto pages = codec::manifestPages(1, item.manifest, 65536);
        for (size_t i = 0; i + 1 < pages.size(); ++i) {
          KJ_ASSERT_NONNULL(onPage)(decoded(*pages[i]));
        }
        return decoded(*pages.back());
      });
    }
    auto get = root.getGetChunk();
    uint32_t file = get.getFileIndex();
    uint64_t chunk = item.manifest.firstChunk[file] + get.getOffset() / item.manifest.chunkSize;
    auto paf = kj::newPromiseAndFulfiller<Reply>();
    auto& r = *requests.add(kj::heap<ChunkRequest>(
        ChunkRequest{key, chunk, file, get.getOffset(), get.getLength(), kj::mv(paf.fulfiller)}));
    mostOpen[key] = kj::max(mostOpen[key], openTo(key));
    if (answerAtOnce) answer(r);
    wake();
    return paf.promise.attach(kj::defer([&r]() { r.destroyed = true; }));
  }

  void onEvent(const DownloadEvent& e) {
    kj::StringPtr kind = "other";
    if (e.is<event::AllPeersGone>()) kind = "allPeersGone";
    if (e.is<event::SourceDropped>()) kind = "sourceDropped";
    KJ_IF_MAYBE (ended, e.tryGet<event::Ended>()) {
      kind = "ended";
      outcome = ended->outcome;
      ++eventCount[kj::str("ended:", name(ended->outcome)).cStr()];
    }
    ++eventCount[kind.cStr()];
    wake();
  }
};

// Three files, 71 chunks of 4 KiB (the last of the first file short; the second file empty).
constexpr uint64_t kSizes[] = {40 * 4096 + 11, 0, 30 * 4096};

// --- a write held under way -------------------------------------------------------------------

// Holds the first chunk write inside the writer (its job started, not a byte written) until
// release(): the writer's test seam, so this runs everywhere.
class HeldWrite final : public WriteGate {
 public:
  ~HeldWrite() noexcept(false) { release(); }

  void beforeWrite(uint64_t chunk) override {
    auto lock = state.lockExclusive();
    if (lock->chunk != nullptr) return;  // only the first
    lock->chunk = chunk;
    lock.wait([](const State& s) { return s.released; });
  }
  // The chunk whose write is held, once the writer is inside it; null after `timeout`.
  kj::Maybe<uint64_t> waitForWriter(kj::Duration timeout) {
    auto lock = state.lockExclusive();
    lock.wait([](const State& s) { return s.chunk != nullptr; }, timeout);
    return lock->chunk;
  }
  void release() { state.lockExclusive()->released = true; }

 private:
  struct State {
    kj::Maybe<uint64_t> chunk;
    bool released = false;
  };
  kj::MutexGuarded<State> state;
};

// --- the tests ----------------------------------------------------------------------------------

TEST(DownloadDriver, RequestsStayWithinEachSourcesWindow) {
  const uint64_t sizes[] = {200 * 4096};
  Driver f(sizes);
  f.config.limits.initialWindow = 3;
  f.config.limits.maxWindow = 6;
  f.present = {{1, 2}, {2, 64}};  // source 1 announces maxInFlight 2: its cap is below ours
  auto download = f.download();
  auto running = download->run();
  f.until([&]() { return f.requests.size() >= 5; }, "the first windows");
  f.io.waitScope.poll();
  // Before any answer: the initial window, capped by what the source announced; nothing more.
  EXPECT_EQ(f.openTo(1), 2u);
  EXPECT_EQ(f.openTo(2), 3u);
  EXPECT_EQ(f.requests.size(), 5u);

  EXPECT_EQ(f.serveUntilEnd(running), Outcome::finished);
  EXPECT_TRUE(f.libraryHas(f.item));
  // The windows grew with the answers, up to the caps and never past them.
  EXPECT_EQ(f.mostOpen[1], 2u);
  EXPECT_EQ(f.mostOpen[2], 6u);
}

TEST(DownloadDriver, ChunksOfASourceLostMidChunkAreAskedOfAnother) {
  Driver f(kSizes);
  f.present = {{1, 64}, {2, 64}};
  auto download = f.download();
  auto running = download->run();
  f.until([&]() { return f.openTo(1) == 2 && f.openTo(2) == 2; }, "a window at each source");
  kj::Vector<uint64_t> lost;
  for (auto* r : f.openRequests(SourceKey(1)))
    lost.add(r->chunk);
  // Source 1's session ends with its chunks on the way: as in the runtime, its requests fail
  // first (the session ends them), then the runtime says the sources changed (~Connection).
  for (auto* r : f.openRequests(SourceKey(1)))
    f.sessionEnded(*r);
  f.present.erase(1);
  download->sourcesChanged();
  size_t before = f.requests.size();

  EXPECT_EQ(f.serveUntilEnd(running), Outcome::finished);
  EXPECT_TRUE(f.libraryHas(f.item));
  EXPECT_EQ(f.toAbsentSources, 0u);
  EXPECT_EQ(f.events("ended"), 1u);
  for (auto chunk : lost) {
    bool askedElsewhere = false;
    for (size_t i = before; i < f.requests.size(); ++i) {
      askedElsewhere |= f.requests[i]->chunk == chunk && f.requests[i]->source == 2;
    }
    EXPECT_TRUE(askedElsewhere) << "chunk " << chunk;
  }
}

TEST(DownloadDriver, CancelWaitsForTheWriteUnderWayAndDropsTheRest) {
  Driver f(kSizes);
  HeldWrite held;
  f.config.writeGate = held;
  f.present = {{1, 64}};
  auto download = f.download();
  KJ_DEFER(held.release());  // a failed assertion must not leave the writer held (the join hangs)
  auto running = download->run();
  f.until([&]() { return f.openTo(1) == 2; }, "the first window");
  auto& writing = *f.requests[0];
  auto& waiting = *f.requests[1];
  f.answer(writing);
  f.io.waitScope.poll();
  auto heldChunk = held.waitForWriter(20 * kj::SECONDS);
  ASSERT_TRUE(heldChunk != nullptr) << "the writer never began the chunk's write";
  EXPECT_EQ(KJ_ASSERT_NONNULL(heldChunk), writing.chunk);

  // The writer is inside the chunk's write. Cancel: requests go at once, the write does not.
  download->cancel();
  f.io.waitScope.poll();
  EXPECT_TRUE(waiting.withdrawn());
  EXPECT_TRUE(f.outcome == nullptr);
  EXPECT_FALSE(running.poll(f.io.waitScope)) << "ended while a chunk was being written";
  held.release();
  EXPECT_EQ(f.finish(running), Outcome::cancelled);
  EXPECT_EQ(f.events("ended"), 1u);
  EXPECT_EQ(f.registry.size(), 0u);

  // The chunk was written whole and recorded: the next run fetches everything else, not it.
  auto state = PartialItem::load(f.folders(), "item");
  EXPECT_EQ(state.claimed.count(), 1u);
  EXPECT_TRUE(state.claimed.has(writing.chunk));
  size_t before = f.requests.size();
  f.answerAtOnce = true;
  auto again = f.download();
  auto resumed = again->run();
  EXPECT_EQ(f.finish(resumed), Outcome::finished);
  EXPECT_TRUE(f.libraryHas(f.item));
  EXPECT_EQ(f.requests.size() - before, f.item.chunkCount() - 1);
  for (size_t i = before; i < f.requests.size(); ++i) {
    EXPECT_NE(f.requests[i]->chunk, writing.chunk);
  }
}

// One file of 40 chunks of 4 KiB; a window of 10 to answer in one turn, writer jobs of 12 KiB.
constexpr uint64_t kFortyChunks[] = {40 * 4096};
void batchTenInATurn(Driver& f) {
  f.config.limits.initialWindow = 10;
  f.config.writeBatchBytes = 3 * 4096;
  f.present = {{1, 64}};
}

TEST(DownloadDriver, ChunksArrivingInOneTurnShareWriterJobsUpToTheBatchBytes) {
  Driver f(kFortyChunks);
  batchTenInATurn(f);
  auto download = f.download();
  auto running = download->run();
  f.until([&]() { return f.openTo(1) == 10; }, "the first window");
  EXPECT_EQ(download->writeJobs(), 0u);
  uint64_t bytes = 0;
  for (auto* r : f.openRequests()) {
    bytes += r->length;
    f.answer(*r);
  }
  f.io.waitScope.poll();
  // Ten chunks in one turn: ceil(40 KiB / 12 KiB) = 4 jobs (3 + 3 + 3 + 1 chunks), not 10.
  EXPECT_EQ(bytes, 10u * 4096);
  EXPECT_EQ(download->writeJobs(),
            (bytes + f.config.writeBatchBytes - 1) / f.config.writeBatchBytes);
  EXPECT_EQ(f.serveUntilEnd(running), Outcome::finished);
  EXPECT_TRUE(f.libraryHas(f.item));
}

TEST(DownloadDriver, AWriteJobDroppedByAStopLeavesItsChunksMissing) {
  Driver f(kFortyChunks);
  batchTenInATurn(f);
  HeldWrite held;
  f.config.writeGate = held;
  f.config.writerThreads = 1;  // the jobs after the held one wait in the queue
  auto download = f.download();
  KJ_DEFER(held.release());  // a failed assertion must not leave the writer held (the join hangs)
  auto running = download->run();
  f.until([&]() { return f.openTo(1) == 10; }, "the first window");
  auto answered = f.openRequests();
  for (auto* r : answered)
    f.answer(*r);
  f.io.waitScope.poll();
  ASSERT_EQ(download->writeJobs(), 4u);
  auto heldChunk = held.waitForWriter(20 * kj::SECONDS);
  ASSERT_TRUE(heldChunk != nullptr) << "the writer never began the first job";
  EXPECT_EQ(KJ_ASSERT_NONNULL(heldChunk), answered[0]->chunk);

  // The first job is under way, three wait: the stop drops those three, and the first finishes.
  download->cancel();
  f.io.waitScope.poll();
  held.release();
  EXPECT_EQ(f.finish(running), Outcome::cancelled);
  EXPECT_EQ(f.registry.size(), 0u);

  // The progress claims the first job's three chunks alone: the seven dropped went back to
  // missing, and the next run asks for them again.
  auto state = PartialItem::load(f.folders(), "item");
  EXPECT_EQ(state.claimed.count(), 3u);
  for (size_t i = 0; i < answered.size(); ++i)
    EXPECT_EQ(state.claimed.has(answered[i]->chunk), i < 3) << answered[i]->chunk;
  size_t before = f.requests.size();
  f.answerAtOnce = true;
  auto again = f.download();
  auto resumed = again->run();
  EXPECT_EQ(f.finish(resumed), Outcome::finished);
  EXPECT_TRUE(f.libraryHas(f.item));
  EXPECT_EQ(f.requests.size() - before, f.item.chunkCount() - 3);
  for (size_t i = 3; i < answered.size(); ++i) {
    bool askedAgain = false;
    for (size_t k = before; k < f.requests.size(); ++k)
      askedAgain |= f.requests[k]->chunk == answered[i]->chunk;
    EXPECT_TRUE(askedAgain) << answered[i]->chunk;
  }
}

TEST(DownloadDriver, AllPeersGoneIsOneEventAndKeepsTheState) {
  Driver f(kSizes);
  f.present = {{1, 64}};
  // Two chunks buffered at most (requested or being written): a third request means the first
  // two are on disk.
  f.config.limits.maxBufferedChunks = 2;
  auto download = f.download();
  auto running = download->run();
  f.until([&]() { return f.openTo(1) == 2; }, "the first window");
  kj::Vector<uint64_t> written;
  for (auto* r : f.openRequests()) {
    written.add(r->chunk);
    f.answer(*r);
  }
  f.until([&]() { return f.requests.size() >= 4; }, "room again in the buffer");

  // The only source's session ends with two chunks on the way; the runtime repeats its news.
  for (auto* r : f.openRequests())
    f.sessionEnded(*r);
  f.present.clear();
  download->sourcesChanged();
  download->sourcesChanged();
  EXPECT_EQ(f.finish(running), Outcome::allPeersGone);
  for (int i = 0; i < 3; ++i) {  // news and time after the end change nothing
    download->sourcesChanged();
    f.timer.advanceTo(f.timer.now() + 1 * kj::SECONDS);
    f.io.waitScope.poll();
  }
  EXPECT_EQ(f.events("allPeersGone"), 1u);
  EXPECT_EQ(f.events("ended"), 1u);
  EXPECT_EQ(f.events("ended:failed"), 0u);
  EXPECT_EQ(f.registry.size(), 0u);

  // Kept: exactly the chunks written. A peer with the item comes back and the rest is fetched.
  auto state = PartialItem::load(f.folders(), "item");
  EXPECT_EQ(state.claimed.count(), written.size());
  for (auto chunk : written)
    EXPECT_TRUE(state.claimed.has(chunk)) << chunk;
  size_t before = f.requests.size();
  f.present = {{2, 64}};
  f.answerAtOnce = true;
  auto again = f.download();
  auto resumed = again->run();
  EXPECT_EQ(f.finish(resumed), Outcome::finished);
  EXPECT_TRUE(f.libraryHas(f.item));
  EXPECT_EQ(f.requests.size() - before, f.item.chunkCount() - written.size());
  for (size_t i = before; i < f.requests.size(); ++i) {
    EXPECT_FALSE(state.claimed.has(f.requests[i]->chunk)) << f.requests[i]->chunk;
  }
}

}  // namespace
}  // namespace shoal::peer::download::test
