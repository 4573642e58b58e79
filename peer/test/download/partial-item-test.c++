// PartialItem on real folders: files prepared in the state folder, only verified bytes written,
// nothing in the library before complete(), modes and content right after it, progress and
// manifest reloaded without trust, refusals (dot ids, the state folder, existing items, another
// filesystem, colliding paths, links planted in the partial folder), and a full disk.
#include <shoal/peer/download/partial-item.h>

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>

#include "../library/temp-tree.h"
#include "core-harness.h"

namespace shoal::peer::download::test {
namespace {

using library::test::TempTree;

// <tmp>/library with its state folder at <tmp>/library/.shoal, as `shoal serve` lays them out.
struct Disk {
  TempTree tree;
  kj::AutoCloseFd library;
  kj::AutoCloseFd state;
  kj::String libraryDir = tree.at("library");
  kj::String stateDir = tree.at("library/.shoal");

  Disk() {
    tree.mkdir("library/.shoal");
    library = openPath(libraryDir);
    state = openPath(stateDir);
  }
  static kj::AutoCloseFd openPath(kj::StringPtr path) {
    int fd = open(path.cStr(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    KJ_ASSERT(fd >= 0, path, strerror(errno));
    return kj::AutoCloseFd(fd);
  }
  Folders folders() const { return Folders{state, stateDir, library, libraryDir}; }

  kj::Own<PartialItem> prepare(const codec::Manifest& manifest) {
    auto result = PartialItem::prepare(folders(), manifest);
    KJ_IF_MAYBE (failure, result.tryGet<DiskFailure>()) {
      KJ_FAIL_ASSERT("prepare failed", failure->message);
    }
    return kj::mv(result.get<kj::Own<PartialItem>>());
  }
  kj::String prepareFailure(const codec::Manifest& manifest) {
    auto result = PartialItem::prepare(folders(), manifest);
    KJ_IF_MAYBE (f, result.tryGet<DiskFailure>()) {
      return kj::mv(f->message);
    }
    return kj::str("(prepared)");
  }
  bool exists(kj::StringPtr relative) const {
    struct stat st;
    return lstat(tree.at(relative).cStr(), &st) == 0;
  }
  kj::Array<kj::byte> read(kj::StringPtr path) const {
    int fd = open(path.cStr(), O_RDONLY | O_CLOEXEC);
    KJ_ASSERT(fd >= 0, path, strerror(errno));
    kj::AutoCloseFd owned(fd);
    struct stat st;
    KJ_SYSCALL(fstat(fd, &st));
    auto bytes = kj::heapArray<kj::byte>(st.st_size);
    KJ_ASSERT(::read(fd, bytes.begin(), bytes.size()) == ssize_t(bytes.size()));
    return bytes;
  }
};

// Every chunk of the item written through `partial`, verified.
void writeAll(PartialItem& partial, const TestItem& item) {
  auto& m = item.manifest;
  for (uint32_t f = 0; f < m.files.size(); ++f) {
    auto range = m.chunkRange(f);
    for (uint64_t k = 0; k < range.count; ++k) {
      uint32_t length = m.chunkLength(f, k);
      auto result = partial.writeChunk({range.first + k, f, m.chunkOffset(k)},
                                       item.chunkBytes(f, m.chunkOffset(k), length));
      KJ_ASSERT(result.is<PartialItem::Verdict>(), result.get<DiskFailure>().message);
      KJ_ASSERT(result.get<PartialItem::Verdict>() == PartialItem::Verdict::written);
    }
  }
}

constexpr uint64_t kSizes[] = {3 * 4096 + 17, 0, 4096};

TEST(PartialItem, PreparesEveryFileInTheStateFolderNotInTheLibrary) {
  Disk disk;
  TestItem item(kSizes);
  auto partial = disk.prepare(item.manifest);
  EXPECT_TRUE(partial->itemDir().startsWith(disk.stateDir));
  EXPECT_FALSE(disk.exists("library/item"));
  for (auto& f : item.manifest.files) {
    struct stat st;
    auto path = kj::str(partial->itemDir(), '/', f.path);
    ASSERT_EQ(stat(path.cStr(), &st), 0) << path.cStr();
    EXPECT_EQ(uint64_t(st.st_size), f.size);
    EXPECT_EQ(st.st_mode & 0777, 0600u);  // private until complete
  }
}

TEST(PartialItem, WritesOnlyChunksThatMatchTheManifest) {
  Disk disk;
  TestItem item(kSizes);
  auto partial = disk.prepare(item.manifest);
  auto& m = item.manifest;
  // Chunk 1 of file 0 with one flipped byte: refused, and the file still holds zeros there.
  auto bad = kj::heapArray(item.chunkBytes(0, 4096, 4096));
  bad[100] ^= 1;
  auto result = partial->writeChunk({1, 0, 4096}, bad);
  EXPECT_EQ(result.get<PartialItem::Verdict>(), PartialItem::Verdict::corrupt);
  // The right bytes for another chunk's place are corrupt too: the hash is per position.
  result = partial->writeChunk({1, 0, 4096}, item.chunkBytes(0, 0, 4096));
  EXPECT_EQ(result.get<PartialItem::Verdict>(), PartialItem::Verdict::corrupt);
  auto bytes = disk.read(kj::str(partial->itemDir(), '/', m.files[0].path));
  for (size_t i = 4096; i < 8192; ++i)
    ASSERT_EQ(bytes[i], 0) << i;
  // The right bytes are written.
  result = partial->writeChunk({1, 0, 4096}, item.chunkBytes(0, 4096, 4096));
  EXPECT_EQ(result.get<PartialItem::Verdict>(), PartialItem::Verdict::written);
  bytes = disk.read(kj::str(partial->itemDir(), '/', m.files[0].path));
  EXPECT_EQ(bytes.slice(4096, 8192), item.chunkBytes(0, 4096, 4096));
  EXPECT_TRUE(partial->checkChunk({1, 0, 4096, 4096}).get<bool>());
  EXPECT_FALSE(partial->checkChunk({0, 0, 0, 4096}).get<bool>());  // still zeros
}

TEST(PartialItem, CompleteMovesTheWholeItemIntoTheLibrary) {
  Disk disk;
  const uint64_t sizes[] = {5000, 0, 9000};
  TestItem item(sizes);
  auto manifest = item.manifest.clone();
  manifest.files[0].mode = 0755;
  manifest.files[2].mode = 0640;
  auto partial = disk.prepare(manifest);
  writeAll(*partial, item);
  EXPECT_FALSE(disk.exists("library/item"));
  auto done = partial->complete();
  ASSERT_TRUE(done.is<kj::Own<const library::Item>>());
  // What it answers is the item as the library's scan will find it: same manifest, same stats.
  auto& finished = *done.get<kj::Own<const library::Item>>();
  EXPECT_TRUE(finished.manifest.digest == manifest.digest);
  for (uint32_t f = 0; f < manifest.files.size(); ++f) {
    auto path = kj::str(disk.libraryDir, "/item/", manifest.files[f].path);
    EXPECT_EQ(disk.read(path).asPtr(), item.files[f].asPtr()) << path.cStr();
    struct stat st;
    ASSERT_EQ(stat(path.cStr(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, manifest.files[f].mode);
    EXPECT_TRUE(finished.stats[f] == library::FileStat::of(st)) << path.cStr();
  }
  // The partial folder is gone, nothing else is left in the state folder's partial area.
  auto left = PartialItem::load(disk.folders(), "item");
  EXPECT_TRUE(left.manifest == nullptr);
}

TEST(PartialItem, NestedFoldersAreCreatedAndMadeDurable) {
  Disk disk;
  kj::Vector<codec::FileInfo> files;
  kj::Vector<codec::Digest> chunks;
  for (auto path : {"a-b", "a/b/c", "a/b/d", "a/e", "zz"}) {
    files.add(codec::FileInfo{kj::str(path), 3, 0644});
    chunks.add(codec::sha256(kj::str(path, "!").asBytes().slice(0, 3)));
  }
  auto manifest =
      codec::makeManifest(kj::str("nested"), 4096, files.releaseAsArray(), chunks.releaseAsArray());
  auto partial = disk.prepare(manifest);
  for (uint32_t f = 0; f < manifest.files.size(); ++f) {
    auto text = kj::str(manifest.files[f].path, "!");
    auto r = partial->writeChunk({f, f, 0}, text.asBytes().slice(0, 3));
    ASSERT_EQ(r.get<PartialItem::Verdict>(), PartialItem::Verdict::written);
  }
  EXPECT_TRUE(partial->complete().is<kj::Own<const library::Item>>());
  EXPECT_EQ(disk.read(kj::str(disk.libraryDir, "/nested/a/b/d")).asPtr(), "a/b"_kj.asBytes());
}

TEST(PartialItem, ProgressAndManifestAreReloadedOnlyWhenTheyCheckOut) {
  Disk disk;
  TestItem item(kSizes);
  {
    auto partial = disk.prepare(item.manifest);
    ChunkSet chunks(item.chunkCount());
    chunks.add(0);
    chunks.add(4);
    EXPECT_TRUE(partial->saveProgress(chunks) == nullptr);
    auto loaded = PartialItem::load(disk.folders(), "item");
    EXPECT_TRUE(loaded.problem == nullptr);
    EXPECT_EQ(KJ_ASSERT_NONNULL(loaded.manifest).digest, item.manifest.digest);
    EXPECT_TRUE(loaded.claimed == chunks);
  }
  // A progress file that does not check out is ignored, the manifest still counts.
  auto progress = kj::str(disk.stateDir, "/partial/",
                          codec::toHex(codec::sha256("item"_kj.asBytes())), "/progress");
  int fd = open(progress.cStr(), O_RDWR);
  ASSERT_GE(fd, 0);
  kj::byte b = 0xff;
  ASSERT_EQ(pwrite(fd, &b, 1, 90), 1);
  close(fd);
  auto loaded = PartialItem::load(disk.folders(), "item");
  EXPECT_TRUE(loaded.problem != nullptr);
  EXPECT_TRUE(loaded.manifest != nullptr);
  EXPECT_EQ(loaded.claimed.count(), 0u);
  // Another item's id finds nothing.
  EXPECT_TRUE(PartialItem::load(disk.folders(), "other").manifest == nullptr);
}

TEST(PartialItem, PreparingAgainKeepsTheSameManifestsDataAndDropsAnothers) {
  Disk disk;
  TestItem item(kSizes);
  {
    auto partial = disk.prepare(item.manifest);
    writeAll(*partial, item);
  }
  {
    auto again = disk.prepare(item.manifest);
    EXPECT_TRUE(again->checkChunk({0, 0, 0, 4096}).get<bool>());
  }
  const uint64_t otherSizes[] = {2 * 4096};
  TestItem other(otherSizes);
  auto replaced = disk.prepare(other.manifest);
  EXPECT_FALSE(replaced->checkChunk({0, 0, 0, 4096}).get<bool>());
  EXPECT_FALSE(disk.exists(kj::str("library/.shoal/partial/",
                                   codec::toHex(codec::sha256("item"_kj.asBytes())), "/item/",
                                   item.manifest.files[2].path)));
}

TEST(PartialItem, RefusesWhatCannotBecomeThisItemInThisLibrary) {
  Disk disk;
  TestItem dotted(kSizes, 4096, ".shoal");
  EXPECT_TRUE(disk.prepareFailure(dotted.manifest).startsWith("item '.shoal'"));
  disk.tree.mkdir("library/taken");
  TestItem taken(kSizes, 4096, "taken");
  EXPECT_TRUE(contains(disk.prepareFailure(taken.manifest), "already exists in the library"));
  // A state folder inside the library under an ordinary name.
  disk.tree.mkdir("library/state");
  Disk::openPath(disk.tree.at("library/state"));
  auto stateFd = Disk::openPath(disk.tree.at("library/state"));
  auto stateDir = disk.tree.at("library/state");
  TestItem named(kSizes, 4096, "state");
  auto result = PartialItem::prepare(Folders{stateFd, stateDir, disk.library, disk.libraryDir},
                                     named.manifest);
  EXPECT_TRUE(contains(result.get<DiskFailure>().message, "names the state folder"));
}

TEST(PartialItem, RefusesAStateFolderOnAnotherFilesystem) {
  Disk disk;
  struct stat shm, tmp;
  if (stat("/dev/shm", &shm) != 0 || stat(disk.libraryDir.cStr(), &tmp) != 0 ||
      shm.st_dev == tmp.st_dev) {
    GTEST_SKIP() << "no second filesystem at /dev/shm";
  }
  char name[] = "/dev/shm/shoal-state-XXXXXX";
  ASSERT_NE(mkdtemp(name), nullptr);
  KJ_DEFER(library::test::removeBeneath(AT_FDCWD, name));
  auto stateFd = Disk::openPath(name);
  TestItem item(kSizes);
  auto result =
      PartialItem::prepare(Folders{stateFd, name, disk.library, disk.libraryDir}, item.manifest);
  EXPECT_TRUE(contains(result.get<DiskFailure>().message, "different filesystems"));
}

// A filesystem that folds case makes two manifest paths one file. Hard links give the same
// picture on any filesystem: two names, one inode — as an earlier run on such a filesystem
// would have left them.
TEST(PartialItem, PathsThatNameOneFileHereAreRefused) {
  Disk disk;
  kj::Vector<codec::FileInfo> files;
  kj::Vector<codec::Digest> chunks;
  for (auto path : {"Readme", "readme"}) {
    files.add(codec::FileInfo{kj::str(path), 4, 0644});
    chunks.add(codec::sha256(kj::str(path).asBytes().slice(0, 4)));
  }
  auto manifest =
      codec::makeManifest(kj::str("cased"), 4096, files.releaseAsArray(), chunks.releaseAsArray());
  kj::String itemDir;
  {
    auto partial = disk.prepare(manifest);  // this filesystem tells them apart
    itemDir = kj::str(partial->itemDir());
  }
  auto second = kj::str(itemDir, "/readme");
  ASSERT_EQ(unlink(second.cStr()), 0);
  ASSERT_EQ(link(kj::str(itemDir, "/Readme").cStr(), second.cStr()), 0);
  auto message = disk.prepareFailure(manifest);
  EXPECT_TRUE(contains(message, "'readme' and 'Readme' name the same file")) << message.cStr();
}

TEST(PartialItem, LinksPlantedInThePartialFolderAreNeverFollowed) {
  Disk disk;
  disk.tree.write("outside/target", "keep me");
  TestItem item(kSizes);
  kj::String itemDir;
  {
    auto partial = disk.prepare(item.manifest);
    itemDir = kj::str(partial->itemDir());
  }
  auto planted = kj::str(itemDir, '/', item.manifest.files[0].path);
  ASSERT_EQ(unlink(planted.cStr()), 0);
  ASSERT_EQ(symlink(disk.tree.at("outside/target").cStr(), planted.cStr()), 0);
  auto message = disk.prepareFailure(item.manifest);
  EXPECT_TRUE(contains(message, item.manifest.files[0].path)) << message.cStr();
  EXPECT_EQ(disk.read(disk.tree.at("outside/target")).asPtr(), "keep me"_kj.asBytes());
}

// A full disk, made with RLIMIT_FSIZE in a child process (SIGXFSZ ignored, so writes fail with
// EFBIG instead of killing it): one clear failure naming the file and the errno text.
TEST(PartialItem, AFullDiskIsOneClearFailure) {
  Disk disk;
  const uint64_t sizes[] = {1 << 20};
  TestItem item(sizes);
  int pipes[2];
  ASSERT_EQ(pipe(pipes), 0);
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    close(pipes[0]);
    signal(SIGXFSZ, SIG_IGN);
    struct rlimit limit = {64 * 1024, 64 * 1024};
    setrlimit(RLIMIT_FSIZE, &limit);
    auto result = PartialItem::prepare(disk.folders(), item.manifest);
    kj::StringPtr message = "(prepared)";
    KJ_IF_MAYBE (f, result.tryGet<DiskFailure>()) {
      message = f->message;
    }
    ssize_t written = write(pipes[1], message.begin(), message.size());
    _exit(written == ssize_t(message.size()) ? 0 : 1);
  }
  close(pipes[1]);
  char buffer[1024];
  ssize_t n = read(pipes[0], buffer, sizeof(buffer));
  close(pipes[0]);
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  ASSERT_GT(n, 0);
  kj::String message = kj::heapString(buffer, size_t(n));
  EXPECT_TRUE(contains(message, item.manifest.files[0].path)) << message.cStr();
  EXPECT_TRUE(contains(message, strerror(EFBIG))) << message.cStr();
  EXPECT_TRUE(contains(message, "preallocating")) << message.cStr();
}

}  // namespace
}  // namespace shoal::peer::download::test
