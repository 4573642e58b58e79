#include <shoal/peer/runtime/runtime-handle.h>

#include <kj/debug.h>

namespace shoal::peer {

RuntimeHandle::RuntimeHandle() {}

RuntimeHandle::~RuntimeHandle() noexcept(false) {
  shutdown();
  thread = nullptr;  // joins
}

void RuntimeHandle::start(RuntimeConfig config, kj::Maybe<Setup> setup) {
  KJ_REQUIRE(thread == nullptr, "start() called twice");
  thread = kj::heap<kj::Thread>([this, config = kj::mv(config), setup = kj::mv(setup)]() mutable {
    runThread(kj::mv(config), kj::mv(setup));
  });
  auto s = state.when([](const State& s) { return s.started || s.stopped; },
                      [](State& s) { return kj::mv(s.startError); });
  KJ_IF_MAYBE (error, s) {
    thread = nullptr;
    kj::throwFatalException(kj::mv(*error));
  }
}

void RuntimeHandle::runThread(RuntimeConfig config, kj::Maybe<Setup> setup) {
  // Everything on this thread; any exception before run() is a start-up error for start().
  KJ_IF_MAYBE (exception, kj::runCatchingExceptions([&]() {
                 auto io = kj::setupAsyncIo();
                 Runtime runtime(kj::mv(config), io, bus);
                 KJ_IF_MAYBE (s, setup) {
                   (*s)(runtime, io);
                 }
                 auto request = kj::newPromiseAndCrossThreadFulfiller<void>();
                 bool stopAtOnce;
                 {
                   auto s = state.lockExclusive();
                   s->executor = &kj::getCurrentThreadExecutor();
                   s->runtime = &runtime;
                   s->shutdownFulfiller = kj::mv(request.fulfiller);
                   s->started = true;
                   stopAtOnce = s->shutdownRequested;
                   peerId = runtime.id();
                 }
                 if (stopAtOnce) runtime.shutdown("shutdown requested before start");
                 auto watch =
                     request.promise.then([&runtime]() { runtime.shutdown("shutdown requested"); })
                         .eagerlyEvaluate(nullptr);
                 runtime.run().wait(io.waitScope);
                 {
                   auto s = state.lockExclusive();
                   s->runtime = nullptr;
                   s->shutdownFulfiller = nullptr;
                 }
               })) {
    auto s = state.lockExclusive();
    if (!s->started) {
      s->startError = kj::mv(*exception);
    } else {
      KJ_LOG(ERROR, "runtime thread failed", *exception);
    }
  }
  bus.close();
  auto s = state.lockExclusive();
  s->runtime = nullptr;
  s->stopped = true;
}

void RuntimeHandle::shutdown() {
  auto s = state.lockExclusive();
  s->shutdownRequested = true;
  KJ_IF_MAYBE (f, s->shutdownFulfiller) {
    if ((*f)->isWaiting()) (*f)->fulfill();
  }
}

bool RuntimeHandle::waitStopped(kj::Duration timeout) {
  return state.when([](const State& s) { return s.stopped; }, [](State&) { return true; }, timeout);
}

bool RuntimeHandle::isStopped() const {
  return state.lockShared()->stopped;
}

kj::Maybe<kj::String> RuntimeHandle::boundAddress() const {
  if (isStopped()) return nullptr;
  return const_cast<RuntimeHandle*>(this)->call([](Runtime& r) -> kj::Maybe<kj::String> {
    KJ_IF_MAYBE (address, r.boundAddress()) {
      return kj::str(*address);
    }
    return nullptr;
  });
}

}  // namespace shoal::peer
