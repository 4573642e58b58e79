// Two runtimes on loopback over real TLS: dialling, library sync, Goodbye on shutdown, PeerLost,
// the Stopped event, and Required failures.
#include <shoal/peer/runtime/runtime-handle.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "runtime-fixture.h"

namespace shoal::peer {
namespace {

using test::Peer;

kj::Array<kj::String> remoteItems(RuntimeHandle& handle) {
  return handle.call([](Runtime& runtime) {
    capnp::MallocMessageBuilder message;
    auto holder = message.initRoot<control::Control::ItemsResults>();
    runtime.fillItems([&](kj::uint n) { return holder.initItems(n); });
    return KJ_MAP(item, holder.getItems()) {
      return kj::str(item.getItemId());
    };
  });
}

TEST(Runtime, TwoPeersOverTlsListEachOthersLibrariesAndStopCleanly) {
  Peer a("alpha", 3);
  Peer b("beta", 2, [&](RuntimeConfig& c) { c.peers.add(kj::str(a.address)); });

  auto aId = formatPeerId(a.handle.id());
  auto bId = formatPeerId(b.handle.id());
  b.events.waitFor([&](auto e) { return e.isPeerFound() && e.getPeerFound().getPeerId() == aId; },
                   "B found A");
  a.events.waitFor([&](auto e) { return e.isPeerFound() && e.getPeerFound().getPeerId() == bId; },
                   "A found B");
  b.events.waitFor(
      [&](auto e) {
        return e.isLibraryChanged() && e.getLibraryChanged().getPeerId() == aId &&
               e.getLibraryChanged().getItems() == 3;
      },
      "B synced A's library");
  a.events.waitFor(
      [&](auto e) {
        return e.isLibraryChanged() && e.getLibraryChanged().getPeerId() == bId &&
               e.getLibraryChanged().getItems() == 2;
      },
      "A synced B's library");
  auto items = remoteItems(b.handle);
  ASSERT_EQ(items.size(), 3u);
  EXPECT_EQ(items[0], "item-0");
  EXPECT_EQ(items[2], "item-2");

  // The peer table records a TLS-authenticated peer.
  auto authenticated = b.handle.call([](Runtime& r) {
    capnp::MallocMessageBuilder message;
    auto holder = message.initRoot<control::Control::PeersResults>();
    r.fillPeers([&](kj::uint n) { return holder.initPeers(n); });
    KJ_ASSERT(holder.getPeers().size() == 1);
    return holder.getPeers()[0].getAuthenticated();
  });
  EXPECT_TRUE(authenticated);

  // A leaves: B hears Goodbye at once and loses A; A's stop is clean.
  a.handle.shutdown();
  ASSERT_TRUE(a.handle.waitStopped(5 * kj::SECONDS));
  auto stopped = a.events.waitFor(test::isStopped, "A stopped");
  EXPECT_TRUE(stopped->get().getStopped().getClean());
  EXPECT_EQ(stopped->get().getStopped().getGoodbyes(), 1u);
  EXPECT_LT(stopped->get().getStopped().getElapsedMs(), 2000u);
  b.events.waitFor([&](auto e) { return e.isGoodbyeReceived(); }, "B got Goodbye");
  b.events.waitFor([&](auto e) { return e.isPeerLost() && e.getPeerLost().getPeerId() == aId; },
                   "B lost A");
}

TEST(Runtime, LibraryChangeReachesThePeerAsADelta) {
  Peer a("alpha", 2);
  Peer b("beta", 0, [&](RuntimeConfig& c) { c.peers.add(kj::str(a.address)); });
  auto aId = formatPeerId(a.handle.id());
  b.events.waitFor(
      [&](auto e) {
        return e.isLibraryChanged() && e.getLibraryChanged().getPeerId() == aId &&
               e.getLibraryChanged().getItems() == 2;
      },
      "B synced A");
  a.tree.write("item-new/file.txt", "fresh");
  auto changed = a.handle.call([](Runtime& r) { return r.rescan(); });
  (void)changed;
  b.events.waitFor(
      [&](auto e) {
        return e.isLibraryChanged() && e.getLibraryChanged().getPeerId() == aId &&
               e.getLibraryChanged().getItems() == 3;
      },
      "B saw the new item");
}

TEST(Runtime, RequiredFailureReportsRuntimeFailedAndStopsCleanly) {
  test::TempTree tree;
  test::fillLibrary(tree, 1);
  RuntimeHandle handle;
  test::Events events(handle);
  RuntimeHandle::Setup setup = [](Runtime& runtime, kj::AsyncIoContext&) {
    runtime.addService("doomed", policy::Required{},
                       []() -> kj::Promise<void> { return KJ_EXCEPTION(FAILED, "disk on fire"); });
  };
  handle.start(test::loopbackConfig(tree, "alpha"), kj::mv(setup));
  auto failed = events.waitFor([](auto e) { return e.isRuntimeFailed(); }, "RuntimeFailed");
  EXPECT_EQ(failed->get().getRuntimeFailed().getComponent(), "doomed");
  EXPECT_TRUE(kj::StringPtr(failed->get().getRuntimeFailed().getError()).endsWith("disk on fire"));
  ASSERT_TRUE(handle.waitStopped(5 * kj::SECONDS));
  auto stopped = events.waitFor(test::isStopped, "Stopped");
  EXPECT_FALSE(stopped->get().getStopped().getClean());  // a failure is never a clean stop
}

TEST(Runtime, ListenerBindFailureIsARequiredFailure) {
  // Hold a port, then ask a runtime to listen on it.
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  kj::AutoCloseFd holder(fd);
  struct sockaddr_in addr = {};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ASSERT_EQ(listen(fd, 1), 0);
  socklen_t length = sizeof(addr);
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &length);

  test::TempTree tree;
  RuntimeHandle handle;
  test::Events events(handle);
  auto config = test::loopbackConfig(tree, "alpha");
  config.listen = kj::str("127.0.0.1:", ntohs(addr.sin_port));
  handle.start(kj::mv(config));
  auto failed = events.waitFor([](auto e) { return e.isRuntimeFailed(); }, "RuntimeFailed");
  EXPECT_EQ(failed->get().getRuntimeFailed().getComponent(), "listener");
  EXPECT_TRUE(handle.waitStopped(5 * kj::SECONDS));
}

TEST(Runtime, SecondRuntimeOnTheSameStateFolderIsRefused) {
  Peer a("alpha", 1);
  RuntimeHandle second;
  auto config = test::loopbackConfig(a.tree, "again");
  EXPECT_ANY_THROW(second.start(kj::mv(config)));
}

}  // namespace
}  // namespace shoal::peer
