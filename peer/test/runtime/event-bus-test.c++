// EventBus across threads: every subscriber sees every event in order, JSON included; close()
// lets subscribers drain; a slow subscriber's timeout is bounded.
#include <shoal/peer/runtime/event-bus.h>

#include <gtest/gtest.h>
#include <kj/thread.h>

namespace shoal::peer {
namespace {

void publishLost(EventBus& bus, uint32_t n) {
  capnp::MallocMessageBuilder message;
  auto event = message.initRoot<control::Event>();
  event.setTimeMs(n);
  auto lost = event.initPeerLost();
  lost.setPeerId(kj::str("peer-", n));
  lost.setReason("goodbye");
  bus.publish(*kj::atomicRefcounted<EventRecord>(message));
}

TEST(EventBus, SubscribersOnOtherThreadsSeeEveryEventInOrder) {
  EventBus bus;
  auto first = bus.subscribe();
  auto second = bus.subscribe();
  kj::Vector<uint64_t> seenByThread;
  {
    kj::Thread reader([&]() {
      for (;;) {
        KJ_IF_MAYBE (record, first->wait()) {
          seenByThread.add((*record)->view()->get().getTimeMs());
        } else {
          return;  // closed and drained
        }
      }
    });
    for (uint32_t i = 0; i < 200; ++i)
      publishLost(bus, i);
    bus.close();
  }  // joins the reader
  ASSERT_EQ(seenByThread.size(), 200u);
  for (uint32_t i = 0; i < 200; ++i)
    EXPECT_EQ(seenByThread[i], i);
  uint32_t count = 0;
  while (second->next() != nullptr)
    ++count;
  EXPECT_EQ(count, 200u);
  EXPECT_TRUE(second->isClosed());
}

TEST(EventBus, EventsRenderAsOneJsonLine) {
  EventBus bus;
  auto sub = bus.subscribe();
  publishLost(bus, 42);
  auto record = KJ_ASSERT_NONNULL(sub->next());
  auto json = record->json();
  EXPECT_TRUE(json.startsWith("{")) << json.cStr();
  EXPECT_EQ(json.findFirst('\n'), nullptr);  // one line
  EXPECT_NE(strstr(json.cStr(), "\"peerLost\""), nullptr) << json.cStr();
  EXPECT_NE(strstr(json.cStr(), "\"peer-42\""), nullptr) << json.cStr();
}

TEST(EventBus, TimeoutReturnsNullWithoutEvents) {
  EventBus bus;
  auto sub = bus.subscribe();
  EXPECT_EQ(sub->next(1 * kj::MILLISECONDS), nullptr);
  EXPECT_FALSE(sub->isClosed());
}

TEST(EventBus, ASubscriberThatStopsReadingIsBounded) {
  EventBus bus;
  auto idle = bus.subscribe();
  for (uint32_t i = 0; i < EventSubscription::kMaxQueued + 10; ++i)
    publishLost(bus, i);
  EXPECT_EQ(idle->dropped(), 10u);
  uint64_t first = KJ_ASSERT_NONNULL(idle->next())->view()->get().getTimeMs();
  EXPECT_EQ(first, 0u);  // the oldest kept; the newest dropped
}

TEST(EventBus, DroppedSubscriberIsForgotten) {
  EventBus bus;
  { auto gone = bus.subscribe(); }
  auto kept = bus.subscribe();
  publishLost(bus, 1);
  EXPECT_NE(kept->next(), nullptr);
}

}  // namespace
}  // namespace shoal::peer
