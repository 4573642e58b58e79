// openBeneath(): every way out of the folder is refused by each resolver — openat2() alone, the
// fallback walk alone, and the automatic choice — and the automatic one falls back to the walk
// where the kernel has no openat2 (docs/bad-inputs.md #9, 11, 12; docs/protocol.md [MAN-11]).
#include <shoal/peer/library/beneath.h>

#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "temp-tree.h"

namespace shoal::peer::library {
namespace {

using test::TempTree;

kj::String describe(const OpenResult& r) {
  KJ_IF_MAYBE (f, r.tryGet<OpenFailure>()) {
    return kj::str(*f);
  }
  return kj::str("opened");
}

kj::String readAll(int fd) {
  char buffer[256];
  ssize_t n = read(fd, buffer, sizeof(buffer));
  return n < 0 ? kj::str("read failed") : kj::heapString(buffer, size_t(n));
}

class Beneath : public testing::TestWithParam<Resolver> {
 protected:
  void SetUp() override {
    if (GetParam() == Resolver::openat2 && !kernelHasOpenat2()) {
      // Not silently the walk under another name: that one has its own case.
      GTEST_SKIP() << "this kernel has no openat2(2); the 'walk' case tests the fallback";
    }
    tree.write("dir/file", "inside");
    tree.write("dir/sub/file2", "inside too");
    tree.symlink("file", "dir/filelink");
    tree.symlink(outside.path(), "link-out");
    tree.symlink("dir", "link-in");
    tree.symlink("/etc/passwd", "passwd");
    tree.fifo("fifo");
    outside.write("secret", "outside");
    outside.write("file2", "outside");
  }

  OpenResult open(kj::StringPtr path, int flags = O_RDONLY) {
    return openBeneath(tree.fd(), path, flags, GetParam());
  }
  OpenError errorOf(kj::StringPtr path, int flags = O_RDONLY) {
    auto r = open(path, flags);
    KJ_IF_MAYBE (f, r.tryGet<OpenFailure>()) {
      return f->error;
    }
    ADD_FAILURE() << path.cStr() << " was opened";
    return OpenError::other;
  }

  TempTree tree;
  TempTree outside;
};

TEST_P(Beneath, OpensARegularFileInside) {
  auto r = open("dir/file");
  ASSERT_TRUE(r.is<kj::AutoCloseFd>()) << describe(r).cStr();
  EXPECT_EQ(readAll(r.get<kj::AutoCloseFd>()), "inside");
  // O_NONBLOCK, used while opening, is cleared again.
  EXPECT_EQ(fcntl(r.get<kj::AutoCloseFd>(), F_GETFL) & O_NONBLOCK, 0);
  auto sub = open("dir/sub/file2");
  ASSERT_TRUE(sub.is<kj::AutoCloseFd>()) << describe(sub).cStr();
  EXPECT_EQ(readAll(sub.get<kj::AutoCloseFd>()), "inside too");
}

TEST_P(Beneath, RefusesPathsThatAreNotCanonical) {
  for (auto path : {"../x", "/etc/passwd", "dir/../dir/file", "", "dir//file", "./dir/file",
                    "dir/file/", "dir\\file", ".."}) {
    EXPECT_EQ(errorOf(path), OpenError::badPath) << path;
  }
}

TEST_P(Beneath, RefusesSymlinksInAnyComponent) {
  EXPECT_EQ(errorOf("link-out/secret"), OpenError::symlink);  // a folder outside
  EXPECT_EQ(errorOf("link-in/file"), OpenError::symlink);     // a folder inside
  EXPECT_EQ(errorOf("dir/filelink"), OpenError::symlink);     // the final component
  EXPECT_EQ(errorOf("passwd"), OpenError::symlink);
  EXPECT_EQ(errorOf("link-in", O_RDONLY | O_DIRECTORY), OpenError::symlink);
}

TEST_P(Beneath, RefusesWhatIsNotARegularFile) {
  EXPECT_EQ(errorOf("fifo"), OpenError::wrongType);  // and does not block on it
  EXPECT_EQ(errorOf("fifo", O_WRONLY), OpenError::wrongType);
  EXPECT_EQ(errorOf("dir/sub"), OpenError::wrongType);
  EXPECT_EQ(errorOf("dir/file", O_RDONLY | O_DIRECTORY), OpenError::notDirectory);
  auto d = open("dir/sub", O_RDONLY | O_DIRECTORY);
  EXPECT_TRUE(d.is<kj::AutoCloseFd>()) << describe(d).cStr();
}

TEST_P(Beneath, ReportsMissingAndNonDirectoryComponents) {
  EXPECT_EQ(errorOf("missing"), OpenError::notFound);
  EXPECT_EQ(errorOf("dir/missing/x"), OpenError::notFound);
  EXPECT_EQ(errorOf("dir/file/x"), OpenError::notDirectory);
}

TEST_P(Beneath, AFolderSwappedForASymlinkIsRefused) {
  // docs/bad-inputs.md #11: the path was fine a moment ago; now a component leads outside.
  auto before = open("dir/sub/file2");
  ASSERT_TRUE(before.is<kj::AutoCloseFd>()) << describe(before).cStr();
  KJ_SYSCALL(rename(tree.at("dir/sub").cStr(), tree.at("dir/sub.old").cStr()));
  tree.symlink(outside.path(), "dir/sub");
  EXPECT_EQ(errorOf("dir/sub/file2"), OpenError::symlink);
  // The fd opened before the swap still reads the file it named then, not the outside one.
  EXPECT_EQ(readAll(before.get<kj::AutoCloseFd>()), "inside too");
}

TEST_P(Beneath, CreatesOnlyBeneath) {
  auto created = open("dir/new", O_WRONLY | O_CREAT | O_EXCL);
  ASSERT_TRUE(created.is<kj::AutoCloseFd>()) << describe(created).cStr();
  EXPECT_EQ(errorOf("link-out/new", O_WRONLY | O_CREAT), OpenError::symlink);
  EXPECT_EQ(errorOf("passwd", O_WRONLY | O_CREAT), OpenError::symlink);
  struct stat st;
  EXPECT_NE(stat(outside.at("new").cStr(), &st), 0);
}

TEST_P(Beneath, OpensAPathOfTheLongestLengthThePathRulesAllow) {
  // [MAN-6] allows 4096 bytes, one more than one openat2() call takes (PATH_MAX counts the NUL).
  // Found by RequestServerLimits: such a file was listed but never served.
  kj::Vector<char> path;
  int fd;
  KJ_SYSCALL(fd = dup(tree.fd()));
  kj::AutoCloseFd dir(fd);
  for (int i = 0; i < 17; ++i) {
    auto component = kj::heapString(240);
    for (auto& c : component)
      c = char('a' + i);
    if (i > 0) path.add('/');
    path.addAll(component);
    if (i < 16) {
      KJ_SYSCALL(mkdirat(dir, component.cStr(), 0755));
      KJ_SYSCALL(fd = openat(dir, component.cStr(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
      dir = kj::AutoCloseFd(fd);
    } else {
      KJ_SYSCALL(fd = openat(dir, component.cStr(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644));
      kj::FdOutputStream(kj::AutoCloseFd(fd)).write("far", 3);
    }
  }
  auto longest = kj::heapString(path.begin(), path.size());
  ASSERT_EQ(longest.size(), codec::kMaxPathBytes);
  auto r = open(longest);
  ASSERT_TRUE(r.is<kj::AutoCloseFd>()) << describe(r).cStr();
  EXPECT_EQ(readAll(r.get<kj::AutoCloseFd>()), "far");
}

TEST_P(Beneath, RemoveBeneathRemovesLinksNotWhatTheyPointTo) {
  tree.symlink(outside.path(), "dir/sub/out");
  EXPECT_TRUE(removeBeneath(tree.fd(), "dir") == nullptr);
  EXPECT_TRUE(removeBeneath(tree.fd(), "link-out") == nullptr);
  EXPECT_TRUE(removeBeneath(tree.fd(), "nothing-here") == nullptr);
  struct stat st;
  EXPECT_NE(fstatat(tree.fd(), "dir", &st, AT_SYMLINK_NOFOLLOW), 0);
  EXPECT_NE(fstatat(tree.fd(), "link-out", &st, AT_SYMLINK_NOFOLLOW), 0);
  auto secret = openBeneath(outside.fd(), "secret", O_RDONLY);
  EXPECT_EQ(readAll(secret.get<kj::AutoCloseFd>()), "outside");
  EXPECT_TRUE(openBeneath(outside.fd(), "file2", O_RDONLY).is<kj::AutoCloseFd>());
}

INSTANTIATE_TEST_SUITE_P(Resolvers, Beneath,
                         testing::Values(Resolver::automatic, Resolver::openat2, Resolver::walk),
                         [](const testing::TestParamInfo<Resolver>& info) {
                           switch (info.param) {
                             case Resolver::automatic: return "automatic";
                             case Resolver::openat2: return "openat2";
                             case Resolver::walk: return "walk";
                           }
                           return "unknown";
                         });

// --- a kernel without openat2 -----------------------------------------------------------------

// Makes openat2(2) fail with ENOSYS in this process from now on, as on a kernel older than 5.6.
// False where seccomp filters cannot be installed.
bool hideOpenat2() {
  struct sock_filter filter[] = {
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_openat2, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOSYS),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  };
  struct sock_fprog program = {sizeof(filter) / sizeof(filter[0]), filter};
  return prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0 &&
         prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &program) == 0;
}

// Runs `checks` in a child process whose openat2 is hidden (the fallback is remembered process-
// wide, so it must not leak into this one). The child reports each failed check on `report` and
// exits 0 when all passed, 77 when it could not hide openat2.
template <typename Checks>
void withoutOpenat2(Checks&& checks) {
  int fds[2];
  KJ_SYSCALL(pipe2(fds, O_CLOEXEC));
  kj::AutoCloseFd readEnd(fds[0]), writeEnd(fds[1]);
  pid_t child;
  KJ_SYSCALL(child = fork());
  if (child == 0) {
    readEnd = nullptr;
    if (!hideOpenat2()) _exit(77);
    bool ok = checks([&](kj::StringPtr failure) {
      auto line = kj::str(failure, '\n');
      (void)!write(writeEnd, line.begin(), line.size());
    });
    _exit(ok ? 0 : 1);
  }
  writeEnd = nullptr;
  kj::Vector<char> reported;
  char buffer[512];
  ssize_t n;
  while ((n = read(readEnd, buffer, sizeof(buffer))) > 0)
    reported.addAll(kj::arrayPtr(buffer, size_t(n)));
  int status = 0;
  KJ_SYSCALL(waitpid(child, &status, 0));
  ASSERT_TRUE(WIFEXITED(status)) << "the child died: status " << status;
  if (WEXITSTATUS(status) == 77) GTEST_SKIP() << "seccomp filters are not allowed here";
  reported.add('\0');
  EXPECT_EQ(WEXITSTATUS(status), 0) << reported.begin();
}

TEST(BeneathWithoutOpenat2, TheAutomaticResolverFallsBackToTheWalkAndStillRefusesEscapes) {
  TempTree tree;
  TempTree outside;
  tree.write("dir/file", "inside");
  outside.write("secret", "outside");
  tree.symlink(outside.path(), "link-out");
  withoutOpenat2([&](auto&& fail) {
    bool ok = true;
    auto expect = [&](bool condition, kj::StringPtr what) {
      if (!condition) fail(what);
      ok = ok && condition;
    };
    expect(!kernelHasOpenat2(), "the probe still sees openat2");
    // openat2 alone has nothing to offer and says so.
    auto strict = openBeneath(tree.fd(), "dir/file", O_RDONLY, Resolver::openat2);
    KJ_IF_MAYBE (f, strict.tryGet<OpenFailure>()) {
      expect(f->error == OpenError::other && f->errnum == ENOSYS, "openat2 failed otherwise");
    } else {
      expect(false, "Resolver::openat2 opened a file without openat2");
    }
    // The automatic resolver walks instead: files open, escapes are still refused.
    auto opened = openBeneath(tree.fd(), "dir/file", O_RDONLY, Resolver::automatic);
    expect(opened.is<kj::AutoCloseFd>(), "the automatic resolver did not fall back");
    if (opened.is<kj::AutoCloseFd>()) {
      expect(readAll(opened.get<kj::AutoCloseFd>()) == "inside", "read the wrong file");
    }
    auto escape = openBeneath(tree.fd(), "link-out/secret", O_RDONLY, Resolver::automatic);
    KJ_IF_MAYBE (f, escape.tryGet<OpenFailure>()) {
      expect(f->error == OpenError::symlink, "the escape failed otherwise");
    } else {
      expect(false, "the fallback followed a symlink out of the folder");
    }
    return ok;
  });
}

}  // namespace
}  // namespace shoal::peer::library
