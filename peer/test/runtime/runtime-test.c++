// Two runtimes on loopback over real TLS: dialling, library sync, Goodbye on shutdown, PeerLost,
// the Stopped event, and Required failures.
#include <shoal/peer/runtime/runtime-handle.h>

#include <shoal/peer/control/control-replies.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <utility>

#include "runtime-fixture.h"

namespace shoal::peer {
namespace {

using test::Peer;

kj::Array<kj::String> remoteItems(RuntimeHandle& handle) {
  return handle.call([](Runtime& runtime) {
    capnp::MallocMessageBuilder message;
    auto holder = message.initRoot<control::Control::ItemsResults>();
    fillItems(runtime, [&](kj::uint n) { return holder.initItems(n); });
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
    fillPeers(r, [&](kj::uint n) { return holder.initPeers(n); });
    KJ_ASSERT(holder.getPeers().size() == 1);
    return holder.getPeers()[0].getAuthenticated();
  });
  EXPECT_TRUE(authenticated);

  // A leaves: B hears Goodbye at once and loses A; A's stop is clean.
  a.handle.shutdown();
  ASSERT_TRUE(a.handle.waitStopped(5 * kj::SECONDS));
  auto stopped = a.events.waitFor(test::isStopped, "A stopped");
  EXPECT_TRUE(stopped->get().getStopped().getClean());  // drained within the deadline
  EXPECT_EQ(stopped->get().getStopped().getGoodbyes(), 1u);
  b.events.waitFor([&](auto e) { return e.isGoodbyeReceived(); }, "B got Goodbye");
  b.events.waitFor([&](auto e) { return e.isPeerLost() && e.getPeerLost().getPeerId() == aId; },
                   "B lost A");
}

// What A answered to GetLibrary so far: {snapshots, deltas}.
std::pair<uint64_t, uint64_t> libraryAnswers(RuntimeHandle& handle) {
  return handle.call([](Runtime& r) {
    return std::make_pair(r.requestServer().snapshotsServed(), r.requestServer().deltasServed());
  });
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
  EXPECT_EQ(libraryAnswers(a.handle), std::make_pair(uint64_t(1), uint64_t(0)));  // B's first ask
  a.tree.write("item-new/file.txt", "fresh");
  EXPECT_TRUE(a.handle.call([](Runtime& r) { return r.rescan(); }));
  b.events.waitFor(
      [&](auto e) {
        return e.isLibraryChanged() && e.getLibraryChanged().getPeerId() == aId &&
               e.getLibraryChanged().getItems() == 3;
      },
      "B saw the new item");
  // B asked since the revision it held, and A answered with the change alone.
  EXPECT_EQ(libraryAnswers(a.handle), std::make_pair(uint64_t(1), uint64_t(1)));
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
  KJ_IF_MAYBE (e, kj::runCatchingExceptions([&]() { second.start(kj::mv(config)); })) {
    EXPECT_TRUE(strstr(e->getDescription().cStr(),
                       "another shoal is running with this state folder") != nullptr)
        << e->getDescription().cStr();
  } else {
    ADD_FAILURE() << "the second runtime started";
  }
}

TEST(Runtime, AHandshakeCompletingAsTheShutdownBeginsStartsNoSession) {
  // B's TLS phase completes; the hook starts B's shutdown there and lets it run (Goodbyes out,
  // handshakes cut) before B acts on the completed TLS. No session may start after that: B stops
  // cleanly at once instead of waiting for a session nobody will end.
  Peer a("alpha", 1);
  Peer b("beta", 0, [&](RuntimeConfig& c) {
    c.peers.add(kj::str(a.address));
    c.afterTlsHook = [](Runtime& r) -> kj::Promise<void> {
      r.shutdown("test: the shutdown begins as TLS completes");
      return kj::evalLast([]() {});  // after the stop's first steps
    };
  });
  ASSERT_TRUE(b.handle.waitStopped(20 * kj::SECONDS));
  auto stopped = b.events.waitFor(test::isStopped, "B stopped");
  EXPECT_TRUE(stopped->get().getStopped().getClean());
  EXPECT_EQ(stopped->get().getStopped().getGoodbyes(), 0u);
  EXPECT_EQ(b.events.count([](auto e) { return e.isPeerFound(); }), 0u);
  a.handle.shutdown();
  ASSERT_TRUE(a.handle.waitStopped(20 * kj::SECONDS));
  EXPECT_EQ(a.events.count([](auto e) { return e.isPeerFound(); }), 0u);
}

TEST(Runtime, ADialThatLeadsBackToThisPeerIsDroppedWithOneEvent) {
  // B holds A's key: to B, A is itself (as its own address would be).
  Peer a("alpha", 1);
  Peer b("beta", 0, [&](RuntimeConfig& c) {
    c.peers.add(kj::str(a.address));
    c.reconnectMin = 1 * kj::MILLISECONDS;
    c.reconnectMax = 1 * kj::MILLISECONDS;
    KJ_SYSCALL(mkdir(c.stateDir.cStr(), 0700));
    auto key = kj::str(Identity::kKeyFileName);
    auto from = kj::str(a.tree.path(), "/.shoal/", key);
    auto to = kj::str(c.stateDir, "/", key);
    KJ_SYSCALL(link(from.cStr(), to.cStr()));
  });
  EXPECT_EQ(b.handle.id(), a.handle.id());
  auto self = b.events.waitFor([](auto e) { return e.isDialFailed(); }, "dialFailed");
  auto d = self->get().getDialFailed();
  EXPECT_EQ(d.getAddress(), a.address);
  EXPECT_EQ(d.getCode(), "self");
  EXPECT_EQ(d.getRetryMs(), 0u);
  EXPECT_TRUE(kj::StringPtr(d.getMessage()).endsWith("not dialled again")) << d.getMessage().cStr();
  b.handle.shutdown();
  ASSERT_TRUE(b.handle.waitStopped(20 * kj::SECONDS));
  EXPECT_EQ(b.events.count([](auto e) { return e.isDialFailed(); }), 1u);
  // A saw its own key dial in and closed it without calling it a failure.
  EXPECT_EQ(a.events.count([](auto e) { return e.isHandshakeFailed(); }), 0u);
}

TEST(Runtime, ARefusingPeerIsRedialledWithGrowingWaits) {
  auto someoneElse = Identity::generate();
  PeerId other = someoneElse->id();
  Peer a("alpha", 1, [&](RuntimeConfig& c) {
    c.trust = TrustMode::pinned;
    c.allow.add(other);
  });
  Peer b("beta", 0, [&](RuntimeConfig& c) {
    c.peers.add(kj::str(a.address));
    c.reconnectMin = 20 * kj::MILLISECONDS;
    c.reconnectMax = 10 * kj::SECONDS;
  });
  uint32_t refusals = 0;
  b.events.waitFor([&](auto e) { return e.isPeerRefused() && ++refusals == 3; },
                   "three peerRefused");
  kj::Vector<uint32_t> waits;
  for (auto& r : b.events.seen) {
    auto view = r->view();
    auto e = view->get();
    if (!e.isPeerRefused()) continue;
    EXPECT_EQ(e.getPeerRefused().getAddress(), a.address);
    EXPECT_EQ(e.getPeerRefused().getCode(), "untrusted");
    EXPECT_EQ(e.getPeerRefused().getMessage(), "this peer is not on the allow list");
    waits.add(e.getPeerRefused().getRetryMs());
  }
  ASSERT_GE(waits.size(), 3u);
  EXPECT_GE(waits[0], 10u);  // [20 ms / 2, 20 ms]
  EXPECT_LE(waits[0], 20u);
  for (size_t i = 1; i < waits.size(); ++i)
    EXPECT_GE(waits[i], waits[i - 1]);  // equal jitter: never below the previous wait
}

TEST(Runtime, AnUnreachableStaticPeerIsReportedAndRetried) {
  // A port bound but not listening: connections to it are refused, and nobody else can take it.
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  kj::AutoCloseFd holder(fd);
  struct sockaddr_in addr = {};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  socklen_t length = sizeof(addr);
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &length);
  auto address = kj::str("127.0.0.1:", ntohs(addr.sin_port));
  Peer b("beta", 0, [&](RuntimeConfig& c) {
    c.peers.add(kj::str(address));
    c.reconnectMin = 10 * kj::MILLISECONDS;
  });
  auto failed = b.events.waitFor([](auto e) { return e.isDialFailed(); }, "dialFailed");
  auto d = failed->get().getDialFailed();
  EXPECT_EQ(d.getAddress(), address);
  EXPECT_EQ(d.getCode(), "unreachable");
  EXPECT_GT(d.getRetryMs(), 0u);
  b.events.waitFor(
      [&](auto e) { return e.isDialFailed() && e.getTimeMs() > failed->get().getTimeMs(); },
      "a second dialFailed");
}

TEST(Runtime, ALeftOutPathIsSaidOnceUntilItChangesAndCounted) {
  test::LogCapture logs;
  Peer a("alpha", 1, [](RuntimeConfig&) {});
  a.tree.fifo("item-0/pipe");
  auto leftOut = [&]() {
    return a.handle.call([](Runtime& r) {
      capnp::MallocMessageBuilder message;
      auto status = message.initRoot<control::Status>();
      fillStatus(r, status);
      return status.getLeftOutPaths();
    });
  };
  for (int i = 0; i < 3; ++i)
    a.handle.call([](Runtime& r) { return r.rescan(); });
  EXPECT_EQ(leftOut(), 1u);
  EXPECT_EQ(logs.count("item-0/pipe"), 1u);
  // It changes (now a symlink): said again, once.
  ASSERT_EQ(unlink(a.tree.at("item-0/pipe").cStr()), 0);
  a.tree.symlink("/", "item-0/pipe");
  for (int i = 0; i < 2; ++i)
    a.handle.call([](Runtime& r) { return r.rescan(); });
  EXPECT_EQ(leftOut(), 1u);
  EXPECT_EQ(logs.count("item-0/pipe"), 2u);
}

// The first scan hashes everything: it ends with a done report of every byte, before Started;
// once it is over, status says no scan is running.
TEST(Runtime, AScanThatHashesEndsWithAReportOfEveryByte) {
  Peer a("alpha", 2, [](RuntimeConfig& c) { c.scanProgressInterval = 3600 * kj::SECONDS; });
  auto done = a.events.waitFor(
      [](control::Event::Reader e) { return e.isScanProgress() && e.getScanProgress().getDone(); },
      "scanProgress, done");
  auto p = done->get().getScanProgress();
  uint64_t bytes = 2 * (kj::str("item 0\n").size() + kj::str("alpha 0").size() + 300000);
  EXPECT_TRUE(p.getWalked());
  EXPECT_EQ(p.getFilesToHash(), 6u);
  EXPECT_EQ(p.getFilesHashed(), 6u);
  EXPECT_EQ(p.getBytesToHash(), bytes);
  EXPECT_EQ(p.getBytesHashed(), bytes);
  EXPECT_EQ(p.getEtaMs(), 0u);
  size_t order = 0, scanAt = 0, startedAt = 0;
  for (auto& r : a.events.seen) {
    auto e = r->view()->get();
    ++order;
    if (e.isScanProgress() && e.getScanProgress().getDone()) scanAt = order;
    if (e.isStarted()) startedAt = order;
  }
  EXPECT_LT(scanAt, startedAt);

  auto scanning = a.handle.call([](Runtime& r) {
    capnp::MallocMessageBuilder message;
    auto status = message.initRoot<control::Status>();
    fillStatus(r, status);
    return status.getScanning();
  });
  EXPECT_FALSE(scanning);
}

// The index cache is read back at start-up: a restart on an unchanged library hashes nothing (so
// it reports no scan progress at all).
TEST(Runtime, ARestartOnAnUnchangedLibraryHashesNothing) {
  auto tweak = [](RuntimeConfig& c) {
    c.racyWindow = 0 * kj::SECONDS;  // the files were just written: cache them anyway
    c.scanProgressInterval = 3600 * kj::SECONDS;
  };
  Peer a("alpha", 2, tweak);
  EXPECT_EQ(a.events.count([](control::Event::Reader e) { return e.isScanProgress(); }), 1u);
  a.handle.shutdown();
  ASSERT_TRUE(a.handle.waitStopped(10 * kj::SECONDS));

  RuntimeHandle again;
  test::Events events(again);
  auto config = test::loopbackConfig(a.tree, "alpha");
  tweak(config);
  again.start(kj::mv(config));
  auto started = events.waitFor(test::isStarted, "Started");
  EXPECT_EQ(started->get().getStarted().getItems(), 2u);
  EXPECT_EQ(events.count([](control::Event::Reader e) { return e.isScanProgress(); }), 0u);
}

// A finished download is not hashed a second time: the digests it verified go into the index
// cache, so the rescan that lists the item hashes nothing (and reports no scan progress, which is
// said only of scans that hash); a restart then finds the item unchanged as well.
TEST(Runtime, AFinishedDownloadIsListedWithoutHashingItAgain) {
  Peer a("alpha", 1);
  Peer b("beta", 0, [&](RuntimeConfig& c) { c.peers.add(kj::str(a.address)); });
  auto aId = formatPeerId(a.handle.id());
  b.events.waitFor(
      [&](auto e) {
        return e.isLibraryChanged() && e.getLibraryChanged().getPeerId() == aId &&
               e.getLibraryChanged().getItems() == 1;
      },
      "B synced A");
  auto start = b.handle.call([](Runtime& r) {
    kj::String message;
    return r.startDownload("item-0", message);
  });
  ASSERT_EQ(start, DownloadStart::started);
  auto ended = b.events.waitFor([](auto e) { return e.isDownloadEnded(); }, "download ended");
  ASSERT_EQ(kj::StringPtr(ended->get().getDownloadEnded().getOutcome()), "finished");
  EXPECT_EQ(b.handle.call([](Runtime& r) { return r.localLibrary().items().size(); }), 1u);
  EXPECT_EQ(b.events.count([](control::Event::Reader e) { return e.isScanProgress(); }), 0u);

  b.handle.shutdown();
  ASSERT_TRUE(b.handle.waitStopped(10 * kj::SECONDS));
  RuntimeHandle again;
  test::Events events(again);
  again.start(test::loopbackConfig(b.tree, "beta"));
  auto started = events.waitFor(test::isStarted, "Started");
  EXPECT_EQ(started->get().getStarted().getItems(), 1u);
  EXPECT_EQ(events.count([](control::Event::Reader e) { return e.isScanProgress(); }), 0u);
}

TEST(Runtime, AnInboundHandshakeFailureIsAnEventAndCounted) {
  Peer a("alpha", 1);
  // Not TLS at all.
  auto io = kj::setupAsyncIo();
  auto stream = io.provider->getNetwork()
                    .parseAddress(a.address)
                    .wait(io.waitScope)
                    ->connect()
                    .wait(io.waitScope);
  kj::StringPtr garbage = "GET / HTTP/1.0\r\n\r\n";
  stream->write(garbage.begin(), garbage.size()).wait(io.waitScope);
  auto failed = a.events.waitFor([](auto e) { return e.isHandshakeFailed(); }, "handshakeFailed");
  auto f = failed->get().getHandshakeFailed();
  EXPECT_EQ(f.getStage(), "tls");
  EXPECT_TRUE(kj::StringPtr(f.getReason()).startsWith("TLS handshake failed"))
      << f.getReason().cStr();
  EXPECT_EQ(f.getSuppressed(), 0u);
  auto counted = a.handle.call([](Runtime& r) {
    capnp::MallocMessageBuilder message;
    auto status = message.initRoot<control::Status>();
    fillStatus(r, status);
    return status.getHandshakeFailures();
  });
  EXPECT_EQ(counted, 1u);
}

}  // namespace
}  // namespace shoal::peer
