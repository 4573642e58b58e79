// State files: written atomically, read back only when magic, version and checksum agree.
#include <shoal/peer/library/state-file.h>

#include <gtest/gtest.h>

#include "temp-tree.h"

namespace shoal::peer::library {
namespace {

using test::TempTree;

constexpr StateFileFormat kFormat{"TESTFILE"_kj, 3, 1 << 20};

kj::Array<kj::byte> bodyOf(const StateFileRead& read) {
  KJ_IF_MAYBE (body, read.tryGet<kj::Array<kj::byte>>()) {
    return kj::heapArray(body->asPtr());
  }
  KJ_FAIL_ASSERT("no body");
}

TEST(StateFile, RoundTripsAndReplacesAtomically) {
  TempTree tree;
  EXPECT_TRUE(loadStateFile(tree.fd(), "x", kFormat).is<StateFileMissing>());
  EXPECT_TRUE(saveStateFile(tree.fd(), "x", kFormat, "first"_kj.asBytes()) == nullptr);
  EXPECT_EQ(bodyOf(loadStateFile(tree.fd(), "x", kFormat)).asPtr(), "first"_kj.asBytes());
  EXPECT_TRUE(saveStateFile(tree.fd(), "x", kFormat, "second"_kj.asBytes()) == nullptr);
  EXPECT_EQ(bodyOf(loadStateFile(tree.fd(), "x", kFormat)).asPtr(), "second"_kj.asBytes());
  struct stat st;
  EXPECT_NE(fstatat(tree.fd(), "x.tmp", &st, 0), 0);  // no temporary left behind
}

TEST(StateFile, AnythingNotWrittenByUsIsRefused) {
  TempTree tree;
  ASSERT_TRUE(saveStateFile(tree.fd(), "x", kFormat, "payload"_kj.asBytes()) == nullptr);
  StateFileFormat otherMagic{"OTHERFMT"_kj, 3, 1 << 20};
  StateFileFormat otherVersion{"TESTFILE"_kj, 4, 1 << 20};
  StateFileFormat tiny{"TESTFILE"_kj, 3, 10};
  EXPECT_TRUE(loadStateFile(tree.fd(), "x", otherMagic).is<StateFileRefused>());
  EXPECT_TRUE(loadStateFile(tree.fd(), "x", otherVersion).is<StateFileRefused>());
  EXPECT_TRUE(loadStateFile(tree.fd(), "x", tiny).is<StateFileRefused>());
  // One flipped byte of the body, then a truncation.
  auto path = tree.at("x");
  int fd = open(path.cStr(), O_RDWR);
  ASSERT_GE(fd, 0);
  kj::byte b = 'P' ^ 1;
  ASSERT_EQ(pwrite(fd, &b, 1, 48), 1);
  EXPECT_TRUE(loadStateFile(tree.fd(), "x", kFormat).is<StateFileRefused>());
  ASSERT_EQ(ftruncate(fd, 20), 0);
  close(fd);
  EXPECT_TRUE(loadStateFile(tree.fd(), "x", kFormat).is<StateFileRefused>());
  tree.symlink("x", "link");
  EXPECT_TRUE(loadStateFile(tree.fd(), "link", kFormat).is<StateFileRefused>());
}

}  // namespace
}  // namespace shoal::peer::library
