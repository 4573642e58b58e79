// ChunkWriter: jobs run off the event loop and their results come back as promises; stop() drops
// only jobs not yet started, a job under way finishes; jobs that must not be dropped still run.
// Jobs wait on gates the test opens, so every interleaving is forced, never slept for.
#include <shoal/peer/download/chunk-writer.h>

#include <gtest/gtest.h>
#include <kj/async-io.h>

#include <thread>

namespace shoal::peer::download {
namespace {

// A door a job waits at until the test opens it.
class Gate {
 public:
  void open() { *state.lockExclusive() = true; }
  void pass() const {
    state.when([](const bool& open) { return open; }, [](bool&) {});
  }

 private:
  kj::MutexGuarded<bool> state{false};
};

TEST(ChunkWriter, ResultsComeBackFromAnotherThread) {
  auto io = kj::setupAsyncIo();
  ChunkWriter writer(2, 16);
  auto loopThread = std::this_thread::get_id();
  auto result =
      writer.run<bool>([loopThread]() { return std::this_thread::get_id() != loopThread; })
          .wait(io.waitScope);
  EXPECT_TRUE(KJ_ASSERT_NONNULL(result));
}

TEST(ChunkWriter, StopDropsOnlyWhatHasNotStarted) {
  auto io = kj::setupAsyncIo();
  ChunkWriter writer(1, 16);
  Gate started, release;
  auto busy = writer.run<int>([&]() {
    started.open();
    release.pass();
    return 1;
  });
  started.pass();  // the only thread is inside the first job
  auto dropped = writer.run<int>([]() { return 2; });
  auto kept = writer.run<int>([]() { return 3; }, false);
  writer.stop();
  auto late = writer.run<int>([]() { return 4; });
  EXPECT_TRUE(dropped.wait(io.waitScope) == nullptr);
  EXPECT_TRUE(late.wait(io.waitScope) == nullptr);
  release.open();
  EXPECT_EQ(KJ_ASSERT_NONNULL(busy.wait(io.waitScope)), 1);  // not cut halfway
  EXPECT_EQ(KJ_ASSERT_NONNULL(kept.wait(io.waitScope)), 3);  // not droppable
}

TEST(ChunkWriter, AJobsBugRejectsItsPromise) {
  auto io = kj::setupAsyncIo();
  ChunkWriter writer(1, 4);
  auto failing = writer.run<int>([]() -> int { KJ_FAIL_ASSERT("a bug"); });
  EXPECT_ANY_THROW(failing.wait(io.waitScope));
  EXPECT_EQ(KJ_ASSERT_NONNULL(writer.run<int>([]() { return 5; }).wait(io.waitScope)), 5);
}

TEST(ChunkWriter, DestructionJoinsAfterTheJobUnderWay) {
  auto io = kj::setupAsyncIo();
  Gate started, release;
  std::atomic<bool> finished{false};
  kj::Maybe<kj::Promise<kj::Maybe<int>>> pending;
  {
    auto writer = kj::heap<ChunkWriter>(1, 4);
    pending = writer->run<int>([&]() {
      started.open();
      release.pass();
      finished = true;
      return 1;
    });
    started.pass();
    release.open();
    writer = nullptr;  // joins
    EXPECT_TRUE(finished);
  }
  EXPECT_EQ(KJ_ASSERT_NONNULL(KJ_ASSERT_NONNULL(pending).wait(io.waitScope)), 1);
}

}  // namespace
}  // namespace shoal::peer::download
