// Runtimes in one process for the integration tests: temp libraries, loopback only, real TLS
// (or plaintext where a test says so), and bounded waits on the event stream (no sleeps).
#pragma once

#include <gtest/gtest.h>
#include <kj/debug.h>
#include <kj/mutex.h>
#include <shoal/peer/runtime/runtime-handle.h>
#include <string.h>

#include "../library/temp-tree.h"

namespace shoal::peer::test {

using library::test::TempTree;

// A library of `items` items, each with a few small files and one multi-chunk file.
inline void fillLibrary(TempTree& tree, uint32_t items, size_t bigBytes = 300000) {
  for (uint32_t i = 0; i < items; ++i) {
    auto item = kj::str("item-", i);
    tree.write(kj::str(item, "/readme.txt"), kj::str("item ", i, "\n"));
    tree.write(kj::str(item, "/data/a.bin"), kj::str("alpha ", i));
    auto big = kj::heapArray<kj::byte>(bigBytes);
    for (size_t k = 0; k < big.size(); ++k)
      big[k] = kj::byte(k * 7 + i);
    tree.write(kj::str(item, "/data/big.bin"), big);
  }
}

inline RuntimeConfig loopbackConfig(TempTree& tree, kj::StringPtr name) {
  RuntimeConfig config;
  config.libraryDir = kj::str(tree.path());
  config.stateDir = kj::str(tree.path(), "/.shoal");
  config.listen = kj::str("127.0.0.1:0");
  config.name = kj::str(name);
  config.chunkSize = 64 * 1024;
  config.rescanInterval = 60 * kj::SECONDS;  // tests rescan explicitly
  return config;
}

// Events of one subscription, kept so a test can look back at them.
struct Events {
  kj::Own<EventSubscription> subscription;
  kj::Vector<kj::Own<const EventRecord>> seen;

  explicit Events(RuntimeHandle& handle) : subscription(handle.subscribe()) {}

  // Waits (bounded) for an event matching `predicate`; fails the test on timeout.
  template <typename Predicate>
  kj::Own<EventView> waitFor(Predicate&& predicate, kj::StringPtr what,
                             kj::Duration timeout = 20 * kj::SECONDS) {
    for (auto& r : seen) {
      auto view = r->view();
      if (predicate(view->get())) return view;
    }
    auto deadline = kj::systemPreciseMonotonicClock().now() + timeout;
    for (;;) {
      auto now = kj::systemPreciseMonotonicClock().now();
      if (now >= deadline) break;
      KJ_IF_MAYBE (record, subscription->next(deadline - now)) {
        auto view = (*record)->view();
        seen.add(kj::mv(*record));
        if (predicate(view->get())) return view;
      } else if (subscription->isClosed()) {
        break;
      }
    }
    ADD_FAILURE() << "no event: " << what.cStr();
    KJ_FAIL_ASSERT("event not seen", what);
  }

  size_t count(kj::Function<bool(control::Event::Reader)> predicate) {
    while (subscription->next() != nullptr) {
    }
    size_t n = 0;
    for (auto& r : seen) {
      if (predicate(r->view()->get())) ++n;
    }
    return n;
  }
};

// KJ's log lines of this thread and of every kj::Thread started while it is installed (a
// RuntimeHandle's runtime thread), for tests of what is said and how often. Still printed.
class LogCapture final : public kj::ExceptionCallback {
 public:
  void logMessage(kj::LogSeverity severity, const char* file, int line, int contextDepth,
                  kj::String&& text) override {
    lines.lockExclusive()->add(kj::str(text));
    next.logMessage(severity, file, line, contextDepth, kj::mv(text));
  }
  kj::Function<void(kj::Function<void()>)> getThreadInitializer() override {
    return [this](kj::Function<void()> func) {
      Forward forward(*this);
      func();
    };
  }
  // Lines logged so far that contain `needle`.
  size_t count(kj::StringPtr needle) const {
    size_t n = 0;
    for (auto& l : *lines.lockShared())
      n += strstr(l.cStr(), needle.cStr()) != nullptr;
    return n;
  }

 private:
  class Forward final : public kj::ExceptionCallback {
   public:
    explicit Forward(LogCapture& capture) : capture(capture) {}
    void logMessage(kj::LogSeverity severity, const char* file, int line, int contextDepth,
                    kj::String&& text) override {
      capture.logMessage(severity, file, line, contextDepth, kj::mv(text));
    }
    kj::Function<void(kj::Function<void()>)> getThreadInitializer() override {
      return capture.getThreadInitializer();
    }

   private:
    LogCapture& capture;
  };
  kj::MutexGuarded<kj::Vector<kj::String>> lines;
};

inline bool isStarted(control::Event::Reader e) {
  return e.isStarted();
}
inline bool isStopped(control::Event::Reader e) {
  return e.isStopped();
}

// A running runtime with its events.
struct Peer {
  TempTree tree;
  RuntimeHandle handle;
  Events events{handle};
  kj::String address;

  Peer(
      kj::StringPtr name, uint32_t items,
      kj::Function<void(RuntimeConfig&)> tweak = [](RuntimeConfig&) {}) {
    fillLibrary(tree, items);
    auto config = loopbackConfig(tree, name);
    tweak(config);
    handle.start(kj::mv(config));
    auto started = events.waitFor(isStarted, "Started");
    address = kj::str(started->get().getStarted().getListen());
  }
};

}  // namespace shoal::peer::test
