// Download, the KJ driver, against a GMock DownloadSources: whole downloads from several sources
// into a real library, resume without re-fetching, liars dropped, stalls re-requested elsewhere
// on a virtual clock, and the DownloadStateGuard cleared on every way out (finished, failed,
// cancelled, all peers gone, shutdown, aborted, the run() promise dropped, the Download destroyed).
#include <shoal/peer/download/download.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <kj/async-io.h>

#include "mock-sources.h"

namespace shoal::peer::download::test {
namespace {

using testing::_;
using testing::AtLeast;
using testing::Invoke;

// Peers that have the item: they answer every request a turn later, honestly or not.
class Swarm {
 public:
  enum class Mode { honest, corrupt, silent };

  explicit Swarm(const TestItem& item) : item(item) {}

  const TestItem& item;
  std::map<SourceKey, Mode> modes;
  std::map<SourceKey, uint32_t> budget;  // chunks a source serves before it falls silent
  std::map<SourceKey, uint32_t> chunkRequests;
  std::map<SourceKey, uint64_t> bytesServed;
  kj::Vector<uint64_t> chunksAsked;  // by offset-in-item order of GetChunk, all sources
  kj::Vector<kj::Own<kj::PromiseFulfiller<Reply>>> held;  // silent sources' requests
  uint32_t completed = 0;
  uint32_t destroyed = 0;
  uint32_t cancelled() const { return destroyed - completed; }

  kj::Array<Source> sources() {
    auto out = kj::heapArrayBuilder<Source>(modes.size());
    for (auto& [key, mode] : modes) {
      out.add(Source{key, SourceInfo{peerId(uint8_t(key)), 64, codec::kMaxChunkSize,
                                     item.manifest.digest, nullptr}});
    }
    return out.finish();
  }

  kj::Promise<Reply> answer(SourceKey key, codec::FrameBuilder frame, OnPage onPage) {
    auto root = frame->getRoot<wire::Frame>().asReader();
    auto done = kj::defer([this]() { ++destroyed; });
    if (modes.count(key) == 0) {
      ++completed;
      return kj::Promise<Reply>(
                 Reply(RequestError{wire::ErrorCode::UNAVAILABLE, kj::str("gone"), 0, true}))
          .attach(kj::mv(done));
    }
    if (root.isGetChunk()) {
      auto get = root.getGetChunk();
      ++chunkRequests[key];
      uint32_t file = get.getFileIndex();
      chunksAsked.add(item.manifest.firstChunk[file] + get.getOffset() / item.manifest.chunkSize);
    }
    bool spent = budget.count(key) > 0 && root.isGetChunk() && chunkRequests[key] > budget[key];
    if (modes[key] == Mode::silent || spent) {
      auto paf = kj::newPromiseAndFulfiller<Reply>();
      held.add(kj::mv(paf.fulfiller));
      return paf.promise.attach(kj::mv(done));
    }
    return kj::evalLater([this, key, frame = kj::mv(frame), onPage = kj::mv(onPage)]() mutable {
             ++completed;
             return serve(key, frame->getRoot<wire::Frame>().asReader(), onPage);
           })
        .attach(kj::mv(done));
  }

 private:
  Reply serve(SourceKey key, wire::Frame::Reader root, OnPage& onPage) {
    if (root.isGetManifest()) {
      auto pages = codec::manifestPages(1, item.manifest, 65536);
      for (size_t i = 0; i + 1 < pages.size(); ++i) {
        KJ_ASSERT_NONNULL(onPage)(decoded(*pages[i]));
      }
      return decoded(*pages.back());
    }
    auto get = root.getGetChunk();
    bytesServed[key] += get.getLength();
    return decoded(*chunkMessage(item, get.getFileIndex(), get.getOffset(), get.getLength(),
                                 modes[key] == Mode::corrupt));
  }
};

struct Fixture : DownloadFolders {
  kj::AsyncIoContext io = kj::setupAsyncIo();
  kj::TimerImpl timer{kj::origin<kj::TimePoint>() + 1000 * kj::SECONDS};
  TestItem item;
  Swarm swarm{item};
  MockSources mock;
  kj::Vector<kj::String> registryLog;
  DownloadRegistry registry{kj::Function<void(kj::StringPtr, bool)>(
      [this](kj::StringPtr id, bool active) { registryLog.add(kj::str(active ? "+" : "-", id)); })};
  kj::Vector<DownloadEvent> events;
  DownloadConfig config;

  explicit Fixture(kj::ArrayPtr<const uint64_t> sizes) : item(sizes) {
    config.limits.peersGoneGrace = 0 * kj::SECONDS;
    ON_CALL(mock, sources(_)).WillByDefault(Invoke([this](kj::StringPtr) {
      return swarm.sources();
    }));
    ON_CALL(mock, request(_, _, _))
        .WillByDefault(Invoke([this](SourceKey key, codec::FrameBuilder frame, OnPage onPage) {
          return swarm.answer(key, kj::mv(frame), kj::mv(onPage));
        }));
  }

  kj::Own<Download> download() {
    return kj::heap<Download>(
        "item", Folders{state, stateDir, library, libraryDir}, config, timer, mock, registry,
        [this](const DownloadEvent& e) {
          KJ_SWITCH_ONEOF(e) {
            KJ_CASE_ONEOF(x, event::ManifestReady) {
              events.add(x);
            }
            KJ_CASE_ONEOF(x, event::Progress) {
              events.add(x);
            }
            KJ_CASE_ONEOF(x, event::BadChunk) {
              events.add(x);
            }
            KJ_CASE_ONEOF(x, event::SourceDropped) {
              events.add(event::SourceDropped{x.source, x.peer, x.reason, kj::str(x.detail)});
            }
            KJ_CASE_ONEOF(x, event::AllPeersGone) {
              events.add(x);
            }
            KJ_CASE_ONEOF(x, event::Ended) {
              events.add(event::Ended{x.outcome, kj::str(x.message)});
            }
          }
        });
  }

  template <typename T>
  size_t count() const {
    size_t n = 0;
    for (auto& e : events)
      n += e.is<T>() ? 1 : 0;
    return n;
  }

  // Lets the loop run (requests, worker threads) until `done` holds; a real-time bound, not a
  // sleep: the wait ends as soon as the condition does.
  bool runUntil(kj::FunctionParam<bool()> done) {
    auto deadline = io.provider->getTimer().now() + 20 * kj::SECONDS;
    while (!done()) {
      if (io.provider->getTimer().now() > deadline) return false;
      io.provider->getTimer().afterDelay(1 * kj::MILLISECONDS).wait(io.waitScope);
    }
    return true;
  }

  bool libraryHasTheItem() const { return libraryHas(item); }
};

constexpr uint64_t kSizes[] = {40 * 4096 + 11, 0, 30 * 4096};

TEST(Download, FetchesAnItemFromTwoSourcesIntoTheLibrary) {
  Fixture f(kSizes);
  f.swarm.modes = {{1, Swarm::Mode::honest}, {2, Swarm::Mode::honest}};
  EXPECT_CALL(f.mock, request(1, _, _)).Times(AtLeast(1));
  EXPECT_CALL(f.mock, request(2, _, _)).Times(AtLeast(1));
  EXPECT_CALL(f.mock, misbehaved(_, _)).Times(0);
  auto download = f.download();
  auto outcome = download->run().wait(f.io.waitScope);
  EXPECT_EQ(outcome, Outcome::finished);
  EXPECT_TRUE(f.libraryHasTheItem());
  EXPECT_GT(f.swarm.bytesServed[1], 0u);
  EXPECT_GT(f.swarm.bytesServed[2], 0u);
  EXPECT_EQ(f.registry.size(), 0u);
  ASSERT_EQ(f.registryLog.size(), 2u);
  EXPECT_EQ(f.registryLog[0], "+item");
  EXPECT_EQ(f.registryLog[1], "-item");
  EXPECT_EQ(f.count<event::Ended>(), 1u);
  EXPECT_EQ(f.count<event::ManifestReady>(), 1u);
  // Every chunk asked for, and at most a few twice (the endgame's duplicates).
  EXPECT_GE(f.swarm.chunksAsked.size(), f.item.chunkCount());
  EXPECT_LE(f.swarm.chunksAsked.size(), f.item.chunkCount() + 8);
}

TEST(Download, AStoppedDownloadResumesWithoutFetchingWhatItHas) {
  Fixture f(kSizes);
  f.swarm.modes = {{1, Swarm::Mode::honest}};
  f.swarm.budget = {{1, 20}};
  {
    auto download = f.download();
    auto running = download->run();
    ASSERT_TRUE(f.runUntil([&]() { return download->status().bytesDone >= 20 * 4096; }));
    download->shutdown();
    EXPECT_EQ(running.wait(f.io.waitScope), Outcome::stopped);
  }
  EXPECT_EQ(f.registry.size(), 0u);
  EXPECT_FALSE(f.libraryHasTheItem());
  auto state = PartialItem::load(Folders{f.state, f.stateDir, f.library, f.libraryDir}, "item");
  uint64_t kept = state.claimed.count();
  EXPECT_GE(kept, 20u);
  f.swarm.chunksAsked.clear();
  f.swarm.budget.clear();
  auto download = f.download();
  EXPECT_EQ(download->run().wait(f.io.waitScope), Outcome::finished);
  EXPECT_TRUE(f.libraryHasTheItem());
  // Only what was not kept is fetched again.
  EXPECT_EQ(f.swarm.chunksAsked.size(), f.item.chunkCount() - kept);
  for (auto c : f.swarm.chunksAsked)
    EXPECT_FALSE(state.claimed.has(c)) << c;
}

TEST(Download, ALiarIsDroppedAndTheHonestSourceFinishes) {
  Fixture f(kSizes);
  f.swarm.modes = {{1, Swarm::Mode::corrupt}, {2, Swarm::Mode::honest}};
  auto download = f.download();
  EXPECT_EQ(download->run().wait(f.io.waitScope), Outcome::finished);
  EXPECT_TRUE(f.libraryHasTheItem());
  ASSERT_EQ(f.count<event::SourceDropped>(), 1u);
  for (auto& e : f.events) {
    KJ_IF_MAYBE (d, e.tryGet<event::SourceDropped>()) {
      EXPECT_EQ(d->source, 1u);
      EXPECT_EQ(d->reason, DropReason::badChunks);
    }
  }
}

// [CHK-8] counts per session: a download started again does not ask the liar either.
TEST(Download, ALiarStaysDroppedInTheNextDownloadOfTheSession) {
  Fixture f(kSizes);
  f.swarm.modes = {{1, Swarm::Mode::corrupt}, {2, Swarm::Mode::silent}};
  {
    auto download = f.download();
    auto running = download->run();
    ASSERT_TRUE(f.runUntil([&]() { return f.count<event::SourceDropped>() > 0; }));
    download->cancel();
    EXPECT_EQ(running.wait(f.io.waitScope), Outcome::cancelled);
  }
  // At least 5: chunks already on their way when it was dropped still fail their check.
  EXPECT_GE(f.registry.badChunks(1, "item"), 5u);
  f.swarm.modes = {{1, Swarm::Mode::corrupt}, {2, Swarm::Mode::honest}};
  f.swarm.chunkRequests.clear();
  auto download = f.download();
  EXPECT_EQ(download->run().wait(f.io.waitScope), Outcome::finished);
  EXPECT_EQ(f.swarm.chunkRequests[1], 0u);
  EXPECT_TRUE(f.libraryHasTheItem());
  f.registry.forgetSource(1);  // its session ended
  EXPECT_EQ(f.registry.badChunks(1, "item"), 0u);
}

TEST(Download, AStalledSourcesChunksAreFetchedElsewhere) {
  Fixture f(kSizes);
  f.swarm.modes = {{1, Swarm::Mode::silent}, {2, Swarm::Mode::honest}};
  auto download = f.download();
  auto finished = download->run();
  // Source 2 brings what it is asked for; what source 1 sits on must come from source 2 too,
  // after the stall timeout (or as endgame copies).
  for (int i = 0; i < 400 && !finished.poll(f.io.waitScope); ++i) {
    f.timer.advanceTo(f.timer.now() + 100 * kj::MILLISECONDS);
    f.io.provider->getTimer().afterDelay(1 * kj::MILLISECONDS).wait(f.io.waitScope);
  }
  EXPECT_EQ(finished.wait(f.io.waitScope), Outcome::finished);
  EXPECT_TRUE(f.libraryHasTheItem());
  EXPECT_GT(f.swarm.cancelled(), 0u);  // the stalled requests were withdrawn
}

TEST(Download, CancelStopsBetweenChunksAndClearsEverything) {
  Fixture f(kSizes);
  f.swarm.modes = {{1, Swarm::Mode::honest}, {2, Swarm::Mode::silent}};
  f.swarm.budget = {{1, 10}};
  auto download = f.download();
  auto running = download->run();
  ASSERT_TRUE(f.runUntil([&]() { return download->status().bytesDone >= 10 * 4096; }));
  download->cancel();
  EXPECT_EQ(running.wait(f.io.waitScope), Outcome::cancelled);
  EXPECT_EQ(f.registry.size(), 0u);
  f.io.waitScope.poll();
  EXPECT_EQ(f.swarm.destroyed, f.swarm.completed + f.swarm.held.size());
  EXPECT_EQ(f.count<event::Ended>(), 1u);
  EXPECT_FALSE(f.libraryHasTheItem());
}

TEST(Download, AllPeersGoneIsReportedOnceAndKeepsThePartialState) {
  Fixture f(kSizes);
  f.swarm.modes = {{1, Swarm::Mode::honest}};
  f.swarm.budget = {{1, 5}};
  auto download = f.download();
  auto running = download->run();
  ASSERT_TRUE(f.runUntil([&]() { return download->status().bytesDone >= 5 * 4096; }));
  f.swarm.modes.clear();
  download->sourcesChanged();
  EXPECT_EQ(running.wait(f.io.waitScope), Outcome::allPeersGone);
  EXPECT_EQ(f.count<event::AllPeersGone>(), 1u);
  EXPECT_EQ(f.count<event::Ended>(), 1u);
  EXPECT_EQ(f.registry.size(), 0u);
  auto state = PartialItem::load(Folders{f.state, f.stateDir, f.library, f.libraryDir}, "item");
  EXPECT_TRUE(state.manifest != nullptr);
  EXPECT_EQ(state.claimed.count(), 5u);  // saved before the end
}

TEST(Download, AFailureEndsItOnceWithTheReason) {
  Fixture f(kSizes);
  f.tree.mkdir("library/item");  // in the way
  f.swarm.modes = {{1, Swarm::Mode::honest}};
  auto download = f.download();
  EXPECT_EQ(download->run().wait(f.io.waitScope), Outcome::failed);
  ASSERT_EQ(f.count<event::Ended>(), 1u);
  for (auto& e : f.events) {
    KJ_IF_MAYBE (ended, e.tryGet<event::Ended>()) {
      EXPECT_TRUE(contains(ended->message, "already exists in the library"));
    }
  }
  EXPECT_EQ(f.count<event::AllPeersGone>(), 0u);
  EXPECT_EQ(f.registry.size(), 0u);
}

TEST(Download, OneDownloadPerItem) {
  Fixture f(kSizes);
  f.swarm.modes = {{1, Swarm::Mode::silent}};
  auto first = f.download();
  auto running = first->run();
  auto second = f.download();
  EXPECT_EQ(second->run().wait(f.io.waitScope), Outcome::failed);
  EXPECT_EQ(f.registry.size(), 1u);
  EXPECT_TRUE(f.registry.isActive("item"));
  first->abort();
  EXPECT_EQ(running.wait(f.io.waitScope), Outcome::stopped);
  EXPECT_EQ(f.registry.size(), 0u);
}

TEST(Download, DroppingTheRunPromiseOrTheDownloadClearsTheGuard) {
  Fixture f(kSizes);
  f.swarm.modes = {{1, Swarm::Mode::silent}};
  {
    auto download = f.download();
    {
      auto running = download->run();
      ASSERT_TRUE(f.runUntil([&]() { return f.swarm.held.size() > 0; }));
      EXPECT_EQ(f.registry.size(), 1u);
    }
    EXPECT_EQ(f.registry.size(), 0u);
  }
  auto download = f.download();
  auto running = download->run();
  ASSERT_TRUE(f.runUntil([&]() { return f.swarm.held.size() > 1; }));
  download = nullptr;  // the runtime tearing down: requests cancelled, the writer joined
  EXPECT_EQ(f.swarm.destroyed, f.swarm.completed + f.swarm.held.size());
}

TEST(Download, CancelledBeforeItRanItEndsAtOnce) {
  Fixture f(kSizes);
  f.swarm.modes = {{1, Swarm::Mode::honest}};
  auto download = f.download();
  download->cancel();
  EXPECT_EQ(download->run().wait(f.io.waitScope), Outcome::cancelled);
  EXPECT_EQ(f.count<event::Ended>(), 1u);
  EXPECT_EQ(f.registry.size(), 0u);
}

TEST(Download, DestroyedWhileRunningItResolvesStopped) {
  Fixture f(kSizes);
  f.swarm.modes = {{1, Swarm::Mode::silent}};
  auto download = f.download();
  auto running = download->run();
  ASSERT_TRUE(f.runUntil([&]() { return f.swarm.held.size() > 0; }));
  download = nullptr;
  EXPECT_EQ(running.wait(f.io.waitScope), Outcome::stopped);
  EXPECT_EQ(f.registry.size(), 0u);
}

TEST(Download, AManifestOutOfOrderIsReportedAsMisbehaviour) {
  const uint64_t sizes[] = {3000 * 4096};  // a manifest of two 64 KiB pages
  Fixture f(sizes);
  f.swarm.modes = {{1, Swarm::Mode::honest}, {2, Swarm::Mode::honest}};
  auto pages = codec::manifestPages(1, f.item.manifest, 65536);
  ASSERT_GT(pages.size(), 1u);
  bool lied = false;
  EXPECT_CALL(f.mock, request(_, _, _))
      .WillRepeatedly(Invoke([&](SourceKey key, codec::FrameBuilder frame, OnPage onPage) {
        if (!lied && frame->getRoot<wire::Frame>().isGetManifest()) {
          lied = true;
          // Page 1 first: out of order.
          return kj::evalLater([&, onPage = kj::mv(onPage)]() mutable -> Reply {
            KJ_ASSERT_NONNULL(onPage)(decoded(*pages[1]));
            return RequestError{wire::ErrorCode::CANCELLED, kj::str("late"), 0, false};
          });
        }
        return f.swarm.answer(key, kj::mv(frame), kj::mv(onPage));
      }));
  EXPECT_CALL(f.mock, misbehaved(_, _)).Times(1);
  auto download = f.download();
  EXPECT_EQ(download->run().wait(f.io.waitScope), Outcome::finished);
  EXPECT_EQ(f.count<event::SourceDropped>(), 1u);
}

}  // namespace
}  // namespace shoal::peer::download::test
