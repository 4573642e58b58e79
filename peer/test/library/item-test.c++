// Item's change detection on its own: FileStat compares every field it keeps and is built from
// struct stat to the nanosecond; checkUnchanged() tells an unchanged file from a changed one, from
// one no longer regular and from a bad descriptor; indexes past the manifest throw.
#include <shoal/peer/library/item.h>

#include <fcntl.h>
#include <gtest/gtest.h>
#include <kj/function.h>
#include <shoal/peer/library/scanner.h>

#include "temp-tree.h"

namespace shoal::peer::library {
namespace {

using test::TempTree;

FileStat sample() {
  return {5000, 1700000000123456789, 1700000001987654321, 4242, 2049};
}

TEST(FileStat, EveryFieldCounts) {
  EXPECT_TRUE(sample() == sample());
  EXPECT_FALSE(sample() != sample());
  auto variant = [](kj::Function<void(FileStat&)> change) {
    auto s = sample();
    change(s);
    return s;
  };
  // One field at a time, each the only difference.
  EXPECT_NE(sample(), variant([](FileStat& s) { s.size = 5001; }));
  EXPECT_NE(sample(), variant([](FileStat& s) { s.mtimeNs += 1; }));  // one nanosecond
  EXPECT_NE(sample(), variant([](FileStat& s) { s.ctimeNs -= 1; }));
  EXPECT_NE(sample(), variant([](FileStat& s) { s.inode = 4243; }));   // replaced by a copy
  EXPECT_NE(sample(), variant([](FileStat& s) { s.device = 2050; }));  // another filesystem
}

TEST(FileStat, OfTakesNanosecondsAndIdentity) {
  struct stat st;
  memset(&st, 0, sizeof(st));
  st.st_size = 123;
  st.st_mtim = {1700000000, 5};
  st.st_ctim = {1700000002, 999999999};
  st.st_ino = 77;
  st.st_dev = 9;
  auto s = FileStat::of(st);
  EXPECT_EQ(s.size, 123u);
  EXPECT_EQ(s.mtimeNs, 1700000000000000005);
  EXPECT_EQ(s.ctimeNs, 1700000002999999999);
  EXPECT_EQ(s.inode, 77u);
  EXPECT_EQ(s.device, 9u);
  // Times before 1970 stay negative rather than wrapping.
  st.st_mtim = {-1, 500000000};
  EXPECT_EQ(FileStat::of(st).mtimeNs, -500000000);
}

class CheckUnchanged : public testing::Test {
 protected:
  void SetUp() override {
    tree.write("item/a.txt", "some content");
    tree.write("item/b.txt", "other content");
    IndexCache cache;
    ScanOptions options;
    options.chunkSize = 4096;
    items = scanLibrary(tree.path(), cache, options).items;
    ASSERT_EQ(items.size(), 1u);
    ASSERT_EQ(items[0]->manifest.files.size(), 2u);
  }

  kj::AutoCloseFd open(kj::StringPtr relative, int flags = O_RDONLY) {
    int fd;
    KJ_SYSCALL(fd = ::open(tree.at(relative).cStr(), flags | O_CLOEXEC), relative);
    return kj::AutoCloseFd(fd);
  }

  kj::String why(uint32_t index, int fd) {
    KJ_IF_MAYBE (reason, items[0]->checkUnchanged(index, fd)) {
      return kj::mv(*reason);
    }
    return kj::str();
  }

  TempTree tree;
  kj::Array<kj::Own<const Item>> items;  // the one item, "item"
};

TEST_F(CheckUnchanged, TheHashedFileIsUnchanged) {
  EXPECT_EQ(why(0, open("item/a.txt")), "");
  EXPECT_EQ(why(1, open("item/b.txt")), "");
}

TEST_F(CheckUnchanged, AnotherFileIsNotTheOneHashed) {
  // Same folder, other inode: the stat of file 1 does not describe file 0.
  EXPECT_EQ(why(0, open("item/b.txt")), "changed since it was hashed");
}

TEST_F(CheckUnchanged, AGrownFileHasChanged) {
  auto fd = open("item/a.txt");
  auto writer = open("item/a.txt", O_WRONLY | O_APPEND);
  KJ_SYSCALL(write(writer, "!", 1));
  EXPECT_EQ(why(0, fd), "changed since it was hashed");
}

TEST_F(CheckUnchanged, ADirectoryIsNoLongerARegularFile) {
  // An fd opened before the check (the caller's own) that names a folder.
  EXPECT_EQ(why(0, open("item", O_RDONLY | O_DIRECTORY)), "no longer a regular file");
}

TEST_F(CheckUnchanged, IndexesPastTheManifestAreTheCallersBug) {
  EXPECT_ANY_THROW(items[0]->checkUnchanged(2, open("item/a.txt")));
  EXPECT_ANY_THROW(items[0]->openFile(tree.fd(), 2));
  // An item needs exactly one stat per file.
  EXPECT_ANY_THROW(newItem(items[0]->manifest.clone(), kj::heapArray<FileStat>(1)));
  EXPECT_NO_THROW(newItem(items[0]->manifest.clone(), kj::heapArray(items[0]->stats.asPtr())));
}

TEST_F(CheckUnchanged, ADescriptorThatCannotBeStatted) {
  auto reason = why(0, -1);
  EXPECT_TRUE(reason.startsWith("fstat: ")) << reason.cStr();
  EXPECT_NE(reason, "fstat: ");  // with the errno's text
}

}  // namespace
}  // namespace shoal::peer::library
