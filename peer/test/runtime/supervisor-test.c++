// Supervisor policies on a virtual timer: Required reports once, Restart restarts after its backoff
// until stop(), BestEffort gives up, and stop() cancels services wherever they wait.
#include <shoal/peer/runtime/supervisor.h>

#include <gtest/gtest.h>
#include <kj/debug.h>

namespace shoal::peer {
namespace {

struct Recorder final : public Supervisor::Observer {
  kj::Vector<kj::String> log;
  void onRequiredFailed(kj::StringPtr s, kj::StringPtr e) override {
    log.add(kj::str("required ", s, ": ", e));
  }
  void onRestarting(kj::StringPtr s, kj::StringPtr e, kj::Duration b) override {
    log.add(kj::str("restart ", s, " after ", b / kj::MILLISECONDS, " ms: ", e));
  }
  void onGaveUp(kj::StringPtr s, kj::StringPtr e) override {
    log.add(kj::str("gave up ", s, ": ", e));
  }
};

struct Fixture {
  kj::EventLoop loop;
  kj::WaitScope ws{loop};
  kj::TimerImpl timer{kj::origin<kj::TimePoint>()};
  Recorder recorder;
  Supervisor supervisor{timer, recorder};

  void advance(kj::Duration d) {
    timer.advanceTo(timer.now() + d);
    ws.poll();
  }
};

TEST(Supervisor, RequiredFailureIsReportedOnce) {
  Fixture f;
  f.supervisor.start("listener", policy::Required{},
                     []() -> kj::Promise<void> { return KJ_EXCEPTION(FAILED, "port in use"); });
  f.ws.poll();
  ASSERT_EQ(f.recorder.log.size(), 1u);
  EXPECT_TRUE(f.recorder.log[0].startsWith("required listener:"));
  EXPECT_EQ(f.supervisor.running(), 0u);
}

TEST(Supervisor, SynchronousThrowIsAFailureToo) {
  Fixture f;
  f.supervisor.start("control", policy::Required{},
                     []() -> kj::Promise<void> { KJ_FAIL_REQUIRE("cannot bind"); });
  f.ws.poll();
  ASSERT_EQ(f.recorder.log.size(), 1u);
  EXPECT_TRUE(f.recorder.log[0].startsWith("required control:"));
}

TEST(Supervisor, RestartRestartsAfterBackoffUntilStop) {
  Fixture f;
  uint32_t starts = 0;
  f.supervisor.start("liveness", policy::Restart{5 * kj::SECONDS}, [&]() -> kj::Promise<void> {
    ++starts;
    return KJ_EXCEPTION(FAILED, "tick failed");
  });
  f.ws.poll();
  EXPECT_EQ(starts, 1u);
  f.advance(4999 * kj::MILLISECONDS);
  EXPECT_EQ(starts, 1u);  // not before the backoff
  f.advance(1 * kj::MILLISECONDS);
  EXPECT_EQ(starts, 2u);
  f.advance(5 * kj::SECONDS);
  EXPECT_EQ(starts, 3u);
  EXPECT_EQ(f.supervisor.restarts("liveness"), 3u);
  f.supervisor.stop();
  f.ws.poll();
  f.advance(60 * kj::SECONDS);
  EXPECT_EQ(starts, 3u);  // nothing restarts after stop()
  EXPECT_EQ(f.supervisor.running(), 0u);
  EXPECT_TRUE(f.supervisor.whenIdle().poll(f.ws));
}

TEST(Supervisor, ServiceEndingOnItsOwnIsHandledByPolicy) {
  Fixture f;
  uint32_t starts = 0;
  f.supervisor.start("dialer", policy::Restart{1 * kj::SECONDS}, [&]() -> kj::Promise<void> {
    ++starts;
    return kj::READY_NOW;
  });
  f.supervisor.start("watcher", policy::BestEffort{}, []() -> kj::Promise<void> {
    return kj::READY_NOW;  // a best-effort service may simply finish
  });
  f.ws.poll();
  f.advance(1 * kj::SECONDS);
  EXPECT_EQ(starts, 2u);
  for (auto& line : f.recorder.log)
    EXPECT_FALSE(line.startsWith("gave up watcher"));
  f.supervisor.stop();
}

TEST(Supervisor, BestEffortLogsAndStaysDown) {
  Fixture f;
  uint32_t starts = 0;
  f.supervisor.start("watcher", policy::BestEffort{}, [&]() -> kj::Promise<void> {
    ++starts;
    return KJ_EXCEPTION(FAILED, "inotify unavailable");
  });
  f.ws.poll();
  f.advance(60 * kj::SECONDS);
  EXPECT_EQ(starts, 1u);
  ASSERT_EQ(f.recorder.log.size(), 1u);
  EXPECT_TRUE(f.recorder.log[0].startsWith("gave up watcher: "));
}

TEST(Supervisor, StopCancelsServicesWhereverTheyWait) {
  Fixture f;
  bool destroyed = false;
  struct Flag {
    bool& b;
    ~Flag() { b = true; }
  };
  f.supervisor.start("listener", policy::Required{}, [&]() -> kj::Promise<void> {
    return kj::Promise<void>(kj::NEVER_DONE).attach(kj::heap<Flag>(Flag{destroyed}));
  });
  f.ws.poll();
  EXPECT_EQ(f.supervisor.running(), 1u);
  auto idle = f.supervisor.whenIdle();
  EXPECT_FALSE(idle.poll(f.ws));
  f.supervisor.stop();
  EXPECT_TRUE(destroyed);  // cancelled at once, not on the next turn
  EXPECT_TRUE(idle.poll(f.ws));
  idle.wait(f.ws);
  EXPECT_EQ(f.recorder.log.size(), 0u);  // a cancelled service is not a failed one
}

}  // namespace
}  // namespace shoal::peer
