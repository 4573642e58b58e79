#include <shoal/peer/runtime/event-bus.h>

#include <capnp/compat/json.h>

namespace shoal::peer {

EventRecord::EventRecord(capnp::MessageBuilder& event) : words(capnp::messageToFlatArray(event)) {
  capnp::JsonCodec json;
  jsonText = json.encode(event.getRoot<control::Event>().asReader());
}

EventSubscription::~EventSubscription() noexcept(false) {
  queue->state.lockExclusive()->detached = true;
}

namespace {

kj::Maybe<kj::Own<const EventRecord>> take(kj::Vector<kj::Own<const EventRecord>>& queue,
                                           size_t& head) {
  if (head == queue.size()) return nullptr;
  auto record = kj::mv(queue[head++]);
  if (head == queue.size()) {
    queue.clear();
    head = 0;
  }
  return kj::mv(record);
}

}  // namespace

kj::Maybe<kj::Own<const EventRecord>> EventSubscription::next(kj::Maybe<kj::Duration> timeout) {
  KJ_IF_MAYBE (t, timeout) {
    return queue->state.when([](const State& s) { return s.head < s.queue.size() || s.closed; },
                             [&](State& s) { return take(s.queue, s.head); }, *t);
  }
  auto s = queue->state.lockExclusive();
  return take(s->queue, s->head);
}

kj::Maybe<kj::Own<const EventRecord>> EventSubscription::wait() {
  return queue->state.when([](const State& s) { return s.head < s.queue.size() || s.closed; },
                           [&](State& s) { return take(s.queue, s.head); });
}

bool EventSubscription::isClosed() const {
  auto s = queue->state.lockShared();
  return s->closed && s->head == s->queue.size();
}

uint64_t EventSubscription::dropped() const {
  return queue->state.lockShared()->dropped;
}

kj::Own<EventSubscription> EventBus::subscribe() {
  auto queue = kj::atomicRefcounted<EventSubscription::Queue>();
  auto locked = state.lockExclusive();
  queue->state.lockExclusive()->closed = locked->closed;
  locked->queues.add(kj::atomicAddRef(*queue));
  return kj::heap<EventSubscription>(kj::mv(queue));
}

void EventBus::publish(const EventRecord& record) {
  auto locked = state.lockExclusive();
  if (locked->closed) return;
  kj::Vector<kj::Own<EventSubscription::Queue>> live;
  for (auto& queue : locked->queues) {
    auto s = queue->state.lockExclusive();
    if (s->detached) continue;  // its subscriber is gone: drop the queue
    if (s->queue.size() - s->head >= EventSubscription::kMaxQueued) {
      ++s->dropped;  // a subscriber that stopped reading must not grow our memory
    } else {
      s->queue.add(kj::atomicAddRef(record));
    }
    live.add(kj::atomicAddRef(*queue));
  }
  locked->queues = kj::mv(live);
}

void EventBus::close() {
  auto locked = state.lockExclusive();
  locked->closed = true;
  for (auto& queue : locked->queues)
    queue->state.lockExclusive()->closed = true;
}

bool EventBus::isClosed() const {
  return state.lockShared()->closed;
}

}  // namespace shoal::peer
