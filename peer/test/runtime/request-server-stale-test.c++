// RequestServer::serve() for files changed since they were hashed, in each way FileStat tells
// (never served, counted as stale); failures on our own side answered internal; and local limits
// that never list what the protocol cannot carry.
#include <shoal/peer/runtime/request-server.h>

#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/capability.h>
#include <sys/resource.h>
#include <sys/syscall.h>

#include "request-server-fixture.h"

namespace shoal::peer {
namespace {

// --- GetChunk: the file changed since it was hashed ([CHK-3], docs/bad-inputs.md #27)
// -------------------

TEST_F(RequestServerTest, StaleWhenTheFileGrew) {
  expectStale([&]() {
    int fd;
    KJ_SYSCALL(fd = open(tree.at("game/data/big.bin").cStr(), O_WRONLY | O_APPEND | O_CLOEXEC));
    kj::AutoCloseFd owned(fd);
    KJ_SYSCALL(write(fd, "more", 4));
  });
}

TEST_F(RequestServerTest, StaleWhenRewrittenInPlaceWithTheMtimeSetBack) {
  // Same size, same inode, the old mtime put back (cp -p, touch -d): only ctime tells.
  auto before = statOf("game/data/big.bin");
  auto hashed = item("game")->stats[gameFile("data/big.bin")];
  int fd;
  KJ_SYSCALL(fd = open(tree.at("game/data/big.bin").cStr(), O_WRONLY | O_CLOEXEC));
  kj::AutoCloseFd owned(fd);
  auto other = pattern(big.size(), 99);
  KJ_SYSCALL(pwrite(fd, other.begin(), other.size(), 0));
  struct timespec times[2] = {before.st_atim, before.st_mtim};
  KJ_SYSCALL(futimens(fd, times));
  auto after = library::FileStat::of(statOf("game/data/big.bin"));
  ASSERT_EQ(after.size, hashed.size);
  ASSERT_EQ(after.mtimeNs, hashed.mtimeNs);
  ASSERT_EQ(after.inode, hashed.inode);
  if (after.ctimeNs == hashed.ctimeNs) {
    // Coarse timestamps: the rewrite fell in the tick of the hashing and nothing tells them
    // apart; a requester's chunk digest check is then the only guard.
    GTEST_SKIP() << "ctime did not move within one clock tick on this filesystem";
  }
  expectStale([]() {});
}

TEST_F(RequestServerTest, StaleWhenReplacedByACopyWithTheSameSizeAndMtime) {
  auto before = statOf("game/data/big.bin");
  auto copy = pattern(big.size(), 42);
  tree.write("game/data/big.bin.tmp", copy);
  struct timespec times[2] = {before.st_atim, before.st_mtim};
  KJ_SYSCALL(utimensat(AT_FDCWD, tree.at("game/data/big.bin.tmp").cStr(), times, 0));
  expectStale([&]() {
    KJ_SYSCALL(
        rename(tree.at("game/data/big.bin.tmp").cStr(), tree.at("game/data/big.bin").cStr()));
    auto after = statOf("game/data/big.bin");
    EXPECT_EQ(after.st_size, before.st_size);
    EXPECT_NE(after.st_ino, before.st_ino);
  });
}

TEST_F(RequestServerTest, StaleWhenReplacedByAFifo) {
  // Opened without blocking, refused for its type: the server never waits on a writer.
  expectStale([&]() {
    KJ_SYSCALL(unlink(tree.at("game/data/big.bin").cStr()));
    tree.fifo("game/data/big.bin");
  });
}

TEST_F(RequestServerTest, StaleWhenReplacedByADirectory) {
  expectStale([&]() {
    KJ_SYSCALL(unlink(tree.at("game/data/big.bin").cStr()));
    tree.mkdir("game/data/big.bin");
  });
}

TEST_F(RequestServerTest, StaleWhenReplacedByASymlinkToOutside) {
  expectStale([&]() {
    KJ_SYSCALL(unlink(tree.at("game/data/big.bin").cStr()));
    tree.symlink(outside.at("secret"), "game/data/big.bin");
  });
}

TEST_F(RequestServerTest, StaleWhenAFolderOnTheWayBecomesASymlinkToOutside) {
  // outside/data/big.bin exists: following the link would serve the marker.
  expectStale([&]() {
    KJ_SYSCALL(rename(tree.at("game/data").cStr(), tree.at("game/data-old").cStr()));
    tree.symlink(outside.at("data"), "game/data");
  });
}

TEST_F(RequestServerTest, StaleWhenTheFileIsGone) {
  expectStale([&]() { KJ_SYSCALL(unlink(tree.at("game/data/big.bin").cStr())); });
}

TEST_F(RequestServerTest, StaleWhenTheItemFolderBecomesASymlinkToOutside) {
  auto digest = gameDigest();
  uint32_t index = gameFile("data/big.bin");
  KJ_SYSCALL(rename(tree.at("game").cStr(), tree.at("game-old").cStr()));
  tree.symlink(outside.path(), "game");
  auto r = requester.refusal(60, getChunk(60, "game", digest, index, 0, 36));
  EXPECT_EQ(r.code, wire::ErrorCode::STALE) << r.message.cStr();
  EXPECT_TRUE(r.message.startsWith("game: symlink")) << r.message.cStr();
  EXPECT_EQ(server.staleFiles(), 1u);
}

// --- GetChunk: failures on our side --------------------------------------------------------------

// Lowers the soft open-file limit to the lowest free descriptor while it lives: the next open,
// whoever makes it, fails with EMFILE.
class NoFreeDescriptors {
 public:
  NoFreeDescriptors() {
    KJ_SYSCALL(getrlimit(RLIMIT_NOFILE, &saved));
    int probe;
    KJ_SYSCALL(probe = open("/dev/null", O_RDONLY | O_CLOEXEC));
    close(probe);
    struct rlimit lowered = saved;
    lowered.rlim_cur = rlim_t(probe);
    KJ_SYSCALL(setrlimit(RLIMIT_NOFILE, &lowered));
  }
  ~NoFreeDescriptors() noexcept(false) { KJ_SYSCALL(setrlimit(RLIMIT_NOFILE, &saved)); }
  KJ_DISALLOW_COPY(NoFreeDescriptors);

 private:
  struct rlimit saved;
};

TEST_F(RequestServerTest, OutOfDescriptorsIsInternalNotStale) {
  auto request = gameChunk(70, "data/big.bin", 0, 4096);
  kj::Array<codec::FrameBuilder> answer;
  {
    NoFreeDescriptors guard;
    answer = server.serve(70, request.root(), peerWithFrames(kBigFrames));
  }
  ASSERT_EQ(answer.size(), 1u);
  auto e = answer[0]->getRoot<wire::Frame>().asReader().getError();
  EXPECT_EQ(e.getCode(), wire::ErrorCode::INTERNAL);
  EXPECT_TRUE(e.getMessage().startsWith("game: other")) << e.getMessage().cStr();
  EXPECT_EQ(server.staleFiles(), 0u);  // the file did not change: no rescan is due
  // With descriptors again, the same request is served.
  EXPECT_EQ(requester.chunk(71, gameChunk(71, "data/big.bin", 0, 4096)).asPtr(),
            big.slice(0, 4096));
}

// Takes CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH out of this thread's effective set while it
// lives (they stay permitted and come back), so file modes apply to root as well. Where the
// capability calls are not allowed it changes nothing; the test then checks what it got.
class WithoutAccessOverride {
 public:
  WithoutAccessOverride() {
    if (syscall(SYS_capget, &header, saved) != 0) return;
    __user_cap_data_struct lowered[2] = {saved[0], saved[1]};
    lowered[0].effective &= ~((1u << CAP_DAC_OVERRIDE) | (1u << CAP_DAC_READ_SEARCH));
    changed = syscall(SYS_capset, &header, lowered) == 0;
  }
  ~WithoutAccessOverride() noexcept(false) {
    if (changed) {
      KJ_SYSCALL(syscall(SYS_capset, &header, saved));
    }
  }
  KJ_DISALLOW_COPY(WithoutAccessOverride);

 private:
  __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct saved[2];
  bool changed = false;
};

TEST_F(RequestServerTest, PermissionDeniedIsInternalNotStale) {
  KJ_SYSCALL(chmod(tree.at("game/readme.txt").cStr(), 0));
  auto request = gameChunk(80, "readme.txt", 0, 14);
  kj::Array<codec::FrameBuilder> answer;
  {
    WithoutAccessOverride guard;
    int probe = open(tree.at("game/readme.txt").cStr(), O_RDONLY | O_CLOEXEC);
    if (probe >= 0) {
      close(probe);
      GTEST_SKIP() << "mode 000 does not deny this process";
    }
    answer = server.serve(80, request.root(), peerWithFrames(kBigFrames));
  }
  ASSERT_EQ(answer.size(), 1u);
  auto e = answer[0]->getRoot<wire::Frame>().asReader().getError();
  EXPECT_EQ(e.getCode(), wire::ErrorCode::INTERNAL);
  EXPECT_TRUE(e.getMessage().startsWith("readme.txt: denied")) << e.getMessage().cStr();
  EXPECT_EQ(server.staleFiles(), 0u);
}

TEST(RequestServerOpen, APathBreakingThePathRulesIsNeverOpened) {
  // An item whose manifest names "../secret" (never from a scan: the paths it lists pass
  // checkPath). The stat recorded is the secret's own, so only the path check stands between
  // the request and the file.
  TempTree tree;
  tree.mkdir("odd");
  tree.write("secret", kOutsideMarker);
  struct stat st;
  KJ_SYSCALL(stat(tree.at("secret").cStr(), &st));
  auto manifest = codec::makeManifest(
      kj::str("odd"), 4096,
      kj::arr(codec::FileInfo{kj::str("../secret"), kOutsideMarker.size(), 0644}),
      kj::arr(codec::sha256(kOutsideMarker.asBytes())));
  auto digest = manifest.digest;
  library::Library lib(kEpoch);
  lib.update(kj::arr(library::newItem(kj::mv(manifest), kj::arr(library::FileStat::of(st)))));
  RequestServer server(lib, tree.fd());
  Requester requester(server);
  auto r = requester.refusal(90, getChunk(90, "odd", digest, 0, 0, kOutsideMarker.size()));
  EXPECT_EQ(r.code, wire::ErrorCode::INTERNAL);
  EXPECT_EQ(r.message, "../secret: badPath");
  EXPECT_FALSE(contains(requester.everythingSent(), kOutsideMarker));
  EXPECT_EQ(server.staleFiles(), 0u);
}

// --- GetChunk: the read itself
// ---------------------------------------------------------------------

TEST(RequestServerReads, AFileShorterThanHashedIsStale) {
  // The file is opened, unchanged by its stat, yet the read ends early: as when it is truncated
  // between the open and the read. Staged with an item whose manifest says 8192 bytes for a file
  // of 16 bytes while its recorded stat is the file's real one.
  TempTree tree;
  tree.write("item/short.bin", "sixteen bytes!!\n");
  struct stat st;
  KJ_SYSCALL(stat(tree.at("item/short.bin").cStr(), &st));
  auto manifest = codec::makeManifest(
      kj::str("item"), 4096, kj::arr(codec::FileInfo{kj::str("short.bin"), 8192, 0644}),
      kj::heapArray<codec::Digest>({codec::sha256(nullptr), codec::sha256(nullptr)}));
  auto digest = manifest.digest;
  library::Library lib(kEpoch);
  lib.update(kj::arr(library::newItem(kj::mv(manifest), kj::arr(library::FileStat::of(st)))));
  RequestServer server(lib, tree.fd());
  Requester requester(server);
  // Some bytes, then the end.
  auto first = requester.refusal(1, getChunk(1, "item", digest, 0, 0, 4096));
  EXPECT_EQ(first.code, wire::ErrorCode::STALE);
  EXPECT_EQ(first.message, "the file is shorter than when it was hashed");
  EXPECT_FALSE(contains(requester.everythingSent(), "sixteen"));
  // No bytes at all.
  EXPECT_EQ(requester.refusal(2, getChunk(2, "item", digest, 0, 4096, 4096)).code,
            wire::ErrorCode::STALE);
  EXPECT_EQ(server.staleFiles(), 2u);
  EXPECT_EQ(server.bytesServed(), 0u);
}

TEST(RequestServerReads, AReadErrorIsInternal) {
  // /proc/<pid>/mem is a regular file whose read fails (EIO) where nothing is mapped, such as
  // at address 0: a read error on a file that opened fine and did not change.
  int procFd = open("/proc", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (procFd < 0) GTEST_SKIP() << "no /proc";
  kj::AutoCloseFd proc(procFd);
  auto pid = kj::str(getpid());
  // Held open so that the inode (and so its stat) stays the same for the server's open.
  int memFd = openat(proc, kj::str(pid, "/mem").cStr(), O_RDONLY | O_CLOEXEC);
  if (memFd < 0) GTEST_SKIP() << "cannot open /proc/" << pid.cStr() << "/mem";
  kj::AutoCloseFd mem(memFd);
  struct stat st;
  KJ_SYSCALL(fstat(mem, &st));
  ASSERT_TRUE(S_ISREG(st.st_mode));

  auto manifest =
      codec::makeManifest(kj::str(pid), 4096, kj::arr(codec::FileInfo{kj::str("mem"), 4096, 0600}),
                          kj::arr(codec::sha256(nullptr)));
  auto digest = manifest.digest;
  library::Library lib(kEpoch);
  lib.update(kj::arr(library::newItem(kj::mv(manifest), kj::arr(library::FileStat::of(st)))));
  RequestServer server(lib, proc);
  Requester requester(server);
  auto r = requester.refusal(1, getChunk(1, pid, digest, 0, 0, 4096));
  EXPECT_EQ(r.code, wire::ErrorCode::INTERNAL);
  EXPECT_EQ(r.message, "read failed: Input/output error");
  EXPECT_EQ(server.staleFiles(), 0u);
  EXPECT_EQ(server.bytesServed(), 0u);
}

// --- Local limits never list what the protocol cannot carry
// ---------------------------------------

// Writes <item>/<c0>/<c1>/.../<c(depth-1)> holding `content`, each component `componentBytes`
// long, by descriptors: the whole path may exceed PATH_MAX. Returns the path inside the item.
kj::String writeDeep(TempTree& tree, kj::StringPtr itemId, uint32_t depth, size_t componentBytes,
                     kj::StringPtr content) {
  tree.mkdir(itemId);
  int fd;
  KJ_SYSCALL(fd = openat(tree.fd(), itemId.cStr(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  kj::AutoCloseFd dir(fd);
  kj::Vector<char> path;
  for (uint32_t i = 0; i < depth; ++i) {
    auto component = kj::heapString(componentBytes);
    for (auto& c : component)
      c = char('a' + i % 26);
    if (i > 0) path.add('/');
    path.addAll(component);
    if (i + 1 < depth) {
      KJ_SYSCALL(mkdirat(dir, component.cStr(), 0755));
      KJ_SYSCALL(fd = openat(dir, component.cStr(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
      dir = kj::AutoCloseFd(fd);
    } else {
      KJ_SYSCALL(fd = openat(dir, component.cStr(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644));
      kj::FdOutputStream out{kj::AutoCloseFd(fd)};
      out.write(content.begin(), content.size());
    }
  }
  return kj::heapString(path.begin(), path.size());
}

// `shoal serve --max-path-bytes` and its siblings set local limits, and Limits::check() is the gate
// such a configuration passes before the runtime starts. Whatever passes it, the scan lists only
// what every peer accepts ([MAN-6], [MAN-15]) and what our own server serves. Once,
// --max-path-bytes 65536 passed the gate and listed files no peer could accept.
TEST(RequestServerLimits, EveryFileListedUnderCheckedLimitsIsDescribableAndServed) {
  TempTree tree;
  auto atPathLimit = writeDeep(tree, "at-path-limit", 17, 240, "edge");  // 4096 bytes
  ASSERT_EQ(atPathLimit.size(), codec::kMaxPathBytes);
  writeDeep(tree, "past-path-limit", 20, 250, "deep");  // 5019 bytes
  writeDeep(tree, "at-depth-limit", codec::kMaxPathDepth, 1, "depth");
  writeDeep(tree, "past-depth-limit", codec::kMaxPathDepth + 1, 1, "deeper");
  writeDeep(tree, "at-component-limit", 1, codec::kMaxComponentBytes, "wide");
  // (No longer components: Linux refuses names above 255 bytes itself.)

  struct Case {
    const char* flag;  // what the user typed
    kj::Function<void(codec::Limits&)> set;
    bool passesCheck;
    uint32_t listed;  // items listed when it does
  };
  Case cases[] = {
      {"(defaults)", [](codec::Limits&) {}, true, 3},
      {"--max-path-bytes 8192", [](codec::Limits& l) { l.maxPathBytes = 8192; }, false, 0},
      {"--max-path-bytes 65536", [](codec::Limits& l) { l.maxPathBytes = 65536; }, false, 0},
      {"--max-path-depth 100", [](codec::Limits& l) { l.maxPathDepth = 100; }, false, 0},
      {"--max-component-bytes 300", [](codec::Limits& l) { l.maxComponentBytes = 300; }, false, 0},
      {"--max-path-bytes 2000", [](codec::Limits& l) { l.maxPathBytes = 2000; }, true, 2},
  };
  for (auto& c : cases) {
    SCOPED_TRACE(c.flag);
    auto options = testOptions();
    c.set(options.limits);
    auto problem = options.limits.check();
    ASSERT_EQ(problem == nullptr, c.passesCheck);
    if (!c.passesCheck) continue;  // the runtime refuses to start with it

    library::IndexCache cache;
    auto scanned = library::scanLibrary(tree.path(), cache, options);
    library::Library lib(kEpoch);
    lib.update(kj::mv(scanned.items));
    RequestServer server(lib, tree.fd());
    Requester requester(server);
    EXPECT_EQ(lib.items().size(), c.listed);
    uint64_t id = 0;
    for (auto& item : lib.items()) {
      SCOPED_TRACE(item->itemId().cStr());
      EXPECT_FALSE(item->itemId().startsWith("past-"));
      // Described: every page of its manifest passes a peer's validation with protocol limits.
      for (auto& page : codec::manifestPages(1, item->manifest, kBigFrames)) {
        auto result = codec::decodeFrame(codec::encodeFrame(*page));
        KJ_IF_MAYBE (failure, result.tryGet<codec::Failure>()) {
          ADD_FAILURE() << "a peer refuses its manifest: " << failure->message.cStr();
        }
      }
      // Served: every file, whole.
      auto& m = item->manifest;
      for (uint32_t i = 0; i < m.files.size(); ++i) {
        auto length = uint32_t(m.files[i].size);
        ++id;
        auto data = requester.chunk(id, getChunk(id, item->itemId(), m.digest, i, 0, length));
        EXPECT_EQ(data.size(), length) << m.files[i].path.cStr();
      }
    }
  }
}

}  // namespace
}  // namespace shoal::peer
