// EventBus: the runtime's events (control.capnp Event) delivered to any number of subscribers on
// any thread. Each event is built once on the event loop, serialised once into an EventRecord
// (its words and its JSON line, NDJSON for `--json`), and shared read-only with every subscriber
// queue and every in-loop listener.
#pragma once

#include <capnp/message.h>
#include <capnp/serialize.h>
#include <kj/mutex.h>
#include <kj/refcount.h>
#include <kj/time.h>
#include <kj/vector.h>
#include <shoal/schema/control.capnp.h>

namespace shoal::peer {

// A typed view of one event for one consumer: readers keep per-reader traversal state, so each
// thread reads through its own.
class EventView {
 public:
  explicit EventView(kj::ArrayPtr<const capnp::word> words)
      : reader(words), root(reader.getRoot<control::Event>()) {}
  control::Event::Reader get() const { return root; }

 private:
  capnp::FlatArrayMessageReader reader;
  control::Event::Reader root;
};

class EventRecord : public kj::AtomicRefcounted {
 public:
  explicit EventRecord(capnp::MessageBuilder& event);
  kj::Own<EventView> view() const { return kj::heap<EventView>(words); }
  kj::StringPtr json() const { return jsonText; }

 private:
  kj::Array<capnp::word> words;
  kj::String jsonText;
};

class EventSubscription {
  struct Queue;

 public:
  // Made by EventBus::subscribe().
  explicit EventSubscription(kj::Own<Queue> queue) : queue(kj::mv(queue)) {}
  ~EventSubscription() noexcept(false);
  KJ_DISALLOW_COPY(EventSubscription);

  // The next event, waiting up to `timeout` (null: no wait); null on timeout, or once the bus is
  // closed and every event before the close was taken.
  kj::Maybe<kj::Own<const EventRecord>> next(kj::Maybe<kj::Duration> timeout = nullptr);
  // The next event, waiting as long as it takes; null once the bus is closed and drained.
  kj::Maybe<kj::Own<const EventRecord>> wait();
  bool isClosed() const;
  // Events this subscriber missed because it fell kMaxQueued behind.
  uint64_t dropped() const;

  static constexpr size_t kMaxQueued = 65536;

 private:
  friend class EventBus;
  struct State {
    kj::Vector<kj::Own<const EventRecord>> queue;
    size_t head = 0;
    uint64_t dropped = 0;
    bool closed = false;
    bool detached = false;
  };
  struct Queue : public kj::AtomicRefcounted {
    kj::MutexGuarded<State> state;
  };
  kj::Own<Queue> queue;
};

class EventBus {
 public:
  EventBus() = default;
  KJ_DISALLOW_COPY(EventBus);

  kj::Own<EventSubscription> subscribe();
  void publish(const EventRecord& record);
  // No more events: subscribers drain what is queued, then see null.
  void close();
  bool isClosed() const;

 private:
  struct State {
    kj::Vector<kj::Own<EventSubscription::Queue>> queues;
    bool closed = false;
  };
  kj::MutexGuarded<State> state;
};

}  // namespace shoal::peer
