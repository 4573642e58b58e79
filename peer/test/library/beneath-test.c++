// openBeneath(): every way out of the folder is refused, with openat2() and with the forced
// fallback walk alike (BAD-INPUTS 9, 11, 12; docs/protocol.md [MAN-11]).
#include <shoal/peer/library/beneath.h>

#include <fcntl.h>
#include <gtest/gtest.h>
#include <stdio.h>

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
  // BAD-INPUTS 11: the path was fine a moment ago; now a component leads outside.
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

INSTANTIATE_TEST_SUITE_P(Resolvers, Beneath, testing::Values(Resolver::automatic, Resolver::walk),
                         [](const testing::TestParamInfo<Resolver>& info) {
                           return info.param == Resolver::automatic ? "openat2" : "walk";
                         });

}  // namespace
}  // namespace shoal::peer::library
