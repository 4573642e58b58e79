// RuntimeHandle: the only thread-safe surface of a runtime. It runs the Runtime on a thread of its
// own; any thread may subscribe to events, call into the runtime, ask it to shut down and wait
// (bounded) for it to stop. Destroying the handle shuts down and joins.
#pragma once

#include <kj/async.h>
#include <kj/function.h>
#include <kj/mutex.h>
#include <kj/thread.h>
#include <shoal/peer/runtime/runtime.h>

namespace shoal::peer {

class RuntimeHandle {
 public:
  RuntimeHandle();
  ~RuntimeHandle() noexcept(false);
  KJ_DISALLOW_COPY(RuntimeHandle);

  // Events from now on; subscribe before start() to see every event, Started included.
  kj::Own<EventSubscription> subscribe() { return bus.subscribe(); }

  // Starts the runtime thread and returns once the runtime is constructed. `setup` runs on the
  // runtime thread before run(): embedders add their services there (Runtime::addService; the
  // control socket, signal handling). Throws what construction or `setup` threw: a bad key file,
  // a missing folder, a taken state folder, a control socket that cannot be bound.
  using Setup = kj::Function<void(Runtime&, kj::AsyncIoContext&)>;
  void start(RuntimeConfig config, kj::Maybe<Setup> setup = nullptr);

  // Begins the clean shutdown. Any thread; idempotent; harmless after the runtime stopped.
  void shutdown();
  // True once the runtime thread has finished everything, within `timeout`.
  bool waitStopped(kj::Duration timeout);
  bool isStopped() const;

  const PeerId& id() const { return peerId; }
  // The listener's bound address, once the runtime has started listening.
  kj::Maybe<kj::String> boundAddress() const;

  // Runs `func(runtime)` on the runtime thread and returns its result; blocks the caller. Not
  // from the runtime thread itself. Throws if the runtime has stopped.
  template <typename Func>
  auto call(Func&& func) {
    const kj::Executor* executor;
    Runtime* runtime;
    {
      auto s = state.lockShared();
      KJ_REQUIRE(s->runtime != nullptr && !s->stopped, "the runtime is not running");
      executor = s->executor;
      runtime = s->runtime;
    }
    return executor->executeSync([&]() { return func(*runtime); });
  }

 private:
  struct State {
    bool started = false;
    bool stopped = false;
    bool shutdownRequested = false;
    kj::Maybe<kj::Exception> startError;
    const kj::Executor* executor = nullptr;
    Runtime* runtime = nullptr;
    kj::Maybe<kj::Own<kj::CrossThreadPromiseFulfiller<void>>> shutdownFulfiller;
  };

  void runThread(RuntimeConfig config, kj::Maybe<Setup> setup);

  EventBus bus;
  kj::MutexGuarded<State> state;
  PeerId peerId;
  kj::Maybe<kj::Own<kj::Thread>> thread;
};

}  // namespace shoal::peer
