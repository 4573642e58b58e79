// The scan and the index cache on real folders: what becomes an item, what is left out and why,
// that no symlink is ever followed, that a restart re-hashes nothing, that a touched file is
// re-hashed alone, that a corrupt cache is survived, and that files changing under the scan or
// after it are never described or served as their old content (docs/bad-inputs.md #26, 27).
#include <shoal/peer/library/scanner.h>

#include <fcntl.h>
#include <gtest/gtest.h>
#include <kj/function.h>
#include <shoal/peer/library/library.h>

#include "temp-tree.h"

namespace shoal::peer::library {
namespace {

using test::TempTree;

kj::Array<kj::byte> pattern(size_t size, uint8_t seed) {
  auto bytes = kj::heapArray<kj::byte>(size);
  for (size_t i = 0; i < size; ++i)
    bytes[i] = kj::byte(seed + i * 7 + i / 4096);
  return bytes;
}

ScanOptions testOptions() {
  ScanOptions options;
  options.chunkSize = 4096;
  options.racyWindowNs = 0;  // files written by the test just now may be cached
  return options;
}

// Whether some reason in `skipped` contains every fragment.
bool hasReason(const ScanResult& r, std::initializer_list<kj::StringPtr> fragments) {
  for (auto& reason : r.skipped) {
    bool all = true;
    for (auto f : fragments)
      all = all && strstr(reason.cStr(), f.cStr()) != nullptr;
    if (all) return true;
  }
  return false;
}

kj::String reasons(const ScanResult& r) {
  return kj::strArray(r.skipped, "\n");
}

const Item& itemOf(const ScanResult& r, kj::StringPtr id) {
  for (auto& item : r.items) {
    if (item->itemId() == id) return *item;
  }
  KJ_FAIL_ASSERT("no such item", id);
}

class Scanner : public testing::Test {
 protected:
  void SetUp() override {
    run = pattern(2 * 4096 + 100, 1);  // three chunks
    tree.write("game/bin/run", run, 0755);
    tree.write("game/data/empty", "");
    tree.write("game/data/nested/deep/file.dat", "deep");
    tree.write("game/.hidden-inside", "hidden files inside items are content");
    tree.symlink("/etc/passwd", "game/passwd-link");
    tree.symlink("bin/run", "game/inner-link");
    tree.symlink(outside.path(), "game/outside-dir");
    tree.symlink("data", "game/inside-dir");
    tree.fifo("game/fifo");
    tree.mkdir("beta");
    tree.write(".shoal/state", "not an item");
    tree.write(".hidden-top/file", "not an item");
    tree.write("top-file.txt", "not an item");
    tree.symlink("game", "link-item");
    tree.write("bad\x01name/file", "item id breaks the rules");
    tree.write("with-bad-file/ok.txt", "fine");
    tree.write("with-bad-file/back\\slash", "a path no manifest may hold");
    outside.write("secret", "outside the library");
    outside.write("file.dat", "outside the library");
  }

  ScanResult scan(IndexCache& cache, const ScanOptions& options = testOptions()) {
    return scanLibrary(tree.path(), cache, options);
  }

  TempTree tree;
  TempTree outside;
  kj::Array<kj::byte> run;
};

TEST_F(Scanner, ListsItemsWithTheirFiles) {
  IndexCache cache;
  auto r = scan(cache);
  EXPECT_TRUE(r.complete);
  ASSERT_EQ(r.items.size(), 2u) << reasons(r).cStr();
  EXPECT_EQ(r.items[0]->itemId(), "beta");
  EXPECT_EQ(r.items[1]->itemId(), "game");
  EXPECT_EQ(r.items[0]->manifest.files.size(), 0u);

  auto& game = itemOf(r, "game");
  auto& m = game.manifest;
  EXPECT_EQ(m.chunkSize, 4096u);
  ASSERT_EQ(m.files.size(), 4u);
  EXPECT_EQ(m.files[0].path, ".hidden-inside");
  EXPECT_EQ(m.files[1].path, "bin/run");
  EXPECT_EQ(m.files[2].path, "data/empty");
  EXPECT_EQ(m.files[3].path, "data/nested/deep/file.dat");
  EXPECT_EQ(m.files[1].mode, 0755u);
  EXPECT_EQ(m.files[2].mode, 0644u);
  EXPECT_EQ(m.files[1].size, run.size());
  EXPECT_EQ(m.files[2].size, 0u);

  auto runChunks = m.chunksOf(1);
  ASSERT_EQ(runChunks.size(), 3u);
  EXPECT_EQ(runChunks[0], codec::sha256(run.slice(0, 4096)));
  EXPECT_EQ(runChunks[1], codec::sha256(run.slice(4096, 8192)));
  EXPECT_EQ(runChunks[2], codec::sha256(run.slice(8192, run.size())));
  EXPECT_EQ(m.chunksOf(2).size(), 0u);
  EXPECT_EQ(m.chunksOf(3)[0], codec::sha256(kj::StringPtr("deep").asBytes()));
  EXPECT_EQ(m.chunks.size(), 5u);
  EXPECT_EQ(m.digest, codec::manifestDigest(m.chunkSize, m.files, m.chunks));

  EXPECT_EQ(game.info.itemId, "game");
  EXPECT_EQ(game.info.name, "game");
  EXPECT_EQ(game.info.fileCount, 4u);
  EXPECT_EQ(game.info.size, m.totalBytes);
  EXPECT_EQ(game.info.manifestDigest, m.digest);
  EXPECT_EQ(game.stats.size(), 4u);

  EXPECT_EQ(r.stats.itemsSeen, 4u);  // beta, game, with-bad-file and the badly named one
  // with-bad-file stops at its first entry (back\slash sorts before ok.txt).
  EXPECT_EQ(r.stats.filesSeen, 4u);
  EXPECT_EQ(r.stats.filesHashed, 4u);
  EXPECT_EQ(r.stats.cacheHits, 0u);
}

TEST_F(Scanner, ReportsWhatItLeavesOutAndFollowsNoSymlink) {
  IndexCache cache;
  auto r = scan(cache);
  auto all = reasons(r);
  EXPECT_TRUE(hasReason(r, {"game/passwd-link", "symlink"})) << all.cStr();
  EXPECT_TRUE(hasReason(r, {"game/inner-link", "symlink"})) << all.cStr();
  EXPECT_TRUE(hasReason(r, {"game/outside-dir", "symlink"})) << all.cStr();
  EXPECT_TRUE(hasReason(r, {"game/inside-dir", "symlink"})) << all.cStr();
  EXPECT_TRUE(hasReason(r, {"game/fifo", "FIFO"})) << all.cStr();
  EXPECT_TRUE(hasReason(r, {"bad\\x01name", "not a valid item id"})) << all.cStr();
  EXPECT_TRUE(hasReason(r, {"with-bad-file: not listed", "back\\slash", "backslash"}))
      << all.cStr();
  EXPECT_TRUE(hasReason(r, {"top-file.txt", "not an item"})) << all.cStr();
  EXPECT_TRUE(hasReason(r, {"link-item", "symlink"})) << all.cStr();
  EXPECT_FALSE(hasReason(r, {".shoal"})) << all.cStr();  // dot-folders are silently not items

  // Nothing reached through a link is in any manifest: no path under a link, no content from
  // outside (the passwd file, the outside folder's files).
  for (auto& item : r.items) {
    for (auto& f : item->manifest.files) {
      EXPECT_FALSE(f.path.startsWith("outside-dir") || f.path.startsWith("inside-dir") ||
                   f.path.endsWith("-link"))
          << f.path.cStr();
    }
    for (auto& chunk : item->manifest.chunks) {
      EXPECT_NE(chunk, codec::sha256(kj::StringPtr("outside the library").asBytes()));
    }
  }
}

TEST(ScannerSpec, KnownDigestsFromTheSpec) {
  // docs/protocol.md §6.3 and §7.5: alpha = {a.txt "hello" 0644}, beta = {}, chunk size 1 MiB.
  TempTree tree;
  tree.write("alpha/a.txt", "hello", 0644);
  tree.mkdir("beta");
  IndexCache cache;
  ScanOptions options;  // the defaults: 1 MiB chunks
  auto r = scanLibrary(tree.path(), cache, options);
  ASSERT_EQ(r.items.size(), 2u);
  EXPECT_EQ(codec::toHex(r.items[0]->info.manifestDigest),
            "23189a4d1a7024bedfd866f583471068334ffb2a68c2e9197821018e47103347");
  EXPECT_EQ(codec::toHex(r.items[1]->info.manifestDigest),
            "13b8ef1b89558eeb0c9c5b5a86a600095cf451fee1da4c72e6ad8faf7c47a7b7");
  Library library(codec::randomNonZero());
  library.update(kj::mv(r.items));
  EXPECT_EQ(codec::toHex(library.summary().digest),
            "698974059677854eeb52b65e0f3379377f9f645e0af48d83556c58f916487f22");
}

TEST(ScannerLimits, PathsAtTheLimitsAreListedAndServedBeyondThemNot) {
  // [MAN-6], [MAN-15]: 64 components is fine, 65 keeps the item out.
  TempTree tree;
  kj::Vector<char> deep;
  for (int i = 0; i < 63; ++i)
    deep.addAll(kj::StringPtr("d/"));
  auto at64 = kj::str(kj::heapString(deep.begin(), deep.size()), "file");
  auto at65 = kj::str(kj::heapString(deep.begin(), deep.size()), "d/file");
  tree.write(kj::str("fits/", at64), "deep");
  tree.write(kj::str("too-deep/", at65), "deeper");
  IndexCache cache;
  auto r = scanLibrary(tree.path(), cache, testOptions());
  ASSERT_EQ(r.items.size(), 1u) << reasons(r).cStr();
  auto& item = *r.items[0];
  EXPECT_EQ(item.itemId(), "fits");
  EXPECT_EQ(item.manifest.files[0].path, at64);
  EXPECT_TRUE(hasReason(r, {"too-deep: not listed", "tooDeep"})) << reasons(r).cStr();
  auto opened = item.openFile(tree.fd(), 0);
  EXPECT_TRUE(opened.is<kj::AutoCloseFd>());
  auto walked = item.openFile(tree.fd(), 0, Resolver::walk);
  EXPECT_TRUE(walked.is<kj::AutoCloseFd>());
}

TEST_F(Scanner, RestartWithUnchangedLibraryHashesNothing) {
  auto stateDir = tree.at(".shoal");
  IndexCache first;
  auto a = scan(first);
  EXPECT_GT(a.stats.bytesHashed, 0u);
  EXPECT_EQ(first.save(stateDir), nullptr);

  auto reloaded = IndexCache::load(stateDir);
  EXPECT_EQ(reloaded.problem(), nullptr);
  EXPECT_EQ(reloaded.size(), 4u);  // game's four files
  auto b = scan(reloaded);
  EXPECT_EQ(b.stats.bytesHashed, 0u);
  EXPECT_EQ(b.stats.filesHashed, 0u);
  EXPECT_EQ(b.stats.cacheHits, 4u);
  ASSERT_EQ(b.items.size(), a.items.size());
  for (size_t i = 0; i < a.items.size(); ++i)
    EXPECT_EQ(b.items[i]->info, a.items[i]->info);

  // Touch one file: exactly that file is hashed again.
  tree.setMtime("game/data/nested/deep/file.dat", 1000000000);
  auto c = scan(reloaded);
  EXPECT_EQ(c.stats.filesHashed, 1u);
  EXPECT_EQ(c.stats.bytesHashed, 4u);
  EXPECT_EQ(c.stats.cacheHits, 3u);
  EXPECT_EQ(itemOf(c, "game").info.manifestDigest, itemOf(a, "game").info.manifestDigest);
}

TEST_F(Scanner, ChangedContentWithTheSameSizeIsHashedAgain) {
  IndexCache cache;
  auto a = scan(cache);
  auto other = pattern(run.size(), 2);
  tree.write("game/bin/run", other, 0755);
  auto b = scan(cache);
  EXPECT_EQ(b.stats.filesHashed, 1u);
  EXPECT_EQ(b.stats.bytesHashed, run.size());
  EXPECT_NE(itemOf(b, "game").info.manifestDigest, itemOf(a, "game").info.manifestDigest);
  EXPECT_EQ(itemOf(b, "game").manifest.chunksOf(1)[0], codec::sha256(other.slice(0, 4096)));
}

TEST_F(Scanner, CorruptOrTruncatedCacheIsIgnored) {
  auto stateDir = tree.at(".shoal");
  IndexCache first;
  auto a = scan(first);
  ASSERT_EQ(first.save(stateDir), nullptr);
  auto file = kj::str(stateDir, "/index-cache");

  auto readFile = [&]() {
    int fd;
    KJ_SYSCALL(fd = open(file.cStr(), O_RDONLY | O_CLOEXEC));
    kj::FdInputStream in{kj::AutoCloseFd(fd)};
    return in.readAllBytes();
  };
  auto good = readFile();
  auto corruptions = kj::heapArray<kj::Function<kj::Array<kj::byte>()>>(4);
  corruptions[0] = [&]() {
    return kj::heapArray(good.slice(0, good.size() / 2));
  };
  corruptions[1] = [&]() {
    auto b = kj::heapArray(good.asPtr());
    b[b.size() - 9] ^= 0x40;
    return b;
  };
  corruptions[2] = [&]() {
    return kj::heapArray(kj::StringPtr("garbage").asBytes());
  };
  corruptions[3] = [&]() {
    return kj::heapArray<kj::byte>(0);
  };
  for (auto& corrupt : corruptions) {
    auto bytes = corrupt();
    tree.write(".shoal/index-cache", bytes, 0600);
    auto cache = IndexCache::load(stateDir);
    EXPECT_NE(cache.problem(), nullptr);
    EXPECT_EQ(cache.size(), 0u);
    auto b = scan(cache);
    EXPECT_EQ(b.stats.filesHashed, 4u);
    EXPECT_EQ(b.stats.cacheHits, 0u);
    ASSERT_EQ(b.items.size(), a.items.size());
    for (size_t i = 0; i < a.items.size(); ++i)
      EXPECT_EQ(b.items[i]->info, a.items[i]->info);
  }
  // A missing file is no problem at all.
  auto empty = IndexCache::load(tree.at("nowhere"));
  EXPECT_EQ(empty.problem(), nullptr);
  EXPECT_EQ(empty.size(), 0u);
}

TEST_F(Scanner, CacheForgetsFilesThatAreGone) {
  IndexCache cache;
  scan(cache);
  EXPECT_EQ(cache.size(), 4u);
  KJ_SYSCALL(unlink(tree.at("game/data/empty").cStr()));
  scan(cache);
  EXPECT_EQ(cache.size(), 3u);
}

TEST_F(Scanner, RecentlyChangedFilesAreNotCached) {
  IndexCache cache;
  auto options = testOptions();
  options.racyWindowNs = 3600ll * 1000000000;  // everything here was written within the hour
  auto r = scan(cache, options);
  EXPECT_EQ(r.items.size(), 2u);
  EXPECT_EQ(cache.size(), 0u);
}

TEST_F(Scanner, AFileChangedWhileHashedIsHashedAgain) {
  IndexCache cache;
  auto options = testOptions();
  auto changed = pattern(run.size() + 1, 3);
  int calls = 0;
  kj::Function<void(kj::StringPtr)> hook = [&](kj::StringPtr path) {
    if (path == "bin/run" && calls++ == 0) tree.write("game/bin/run", changed, 0755);
  };
  options.afterRead = &hook;
  auto r = scan(cache, options);
  auto& m = itemOf(r, "game").manifest;
  EXPECT_EQ(m.files[1].size, changed.size());
  EXPECT_EQ(m.chunksOf(1)[0], codec::sha256(changed.slice(0, 4096)));
  EXPECT_EQ(r.stats.filesHashed, 4u);  // counted once: the first attempt did not count
  EXPECT_GE(calls, 2);
}

TEST_F(Scanner, AFileThatKeepsChangingKeepsItsItemOut) {
  IndexCache cache;
  auto options = testOptions();
  uint8_t seed = 10;
  kj::Function<void(kj::StringPtr)> hook = [&](kj::StringPtr path) {
    if (path != "bin/run") return;
    ++seed;
    tree.write("game/bin/run", pattern(100 + seed, seed), 0755);
  };
  options.afterRead = &hook;
  auto r = scan(cache, options);
  EXPECT_EQ(r.items.size(), 1u);  // beta only
  EXPECT_TRUE(hasReason(r, {"game: not listed", "bin/run", "kept changing"})) << reasons(r).cStr();
}

TEST_F(Scanner, StopFlagEndsTheScanIncomplete) {
  IndexCache cache;
  std::atomic<bool> stop{true};
  auto r = scanLibrary(tree.path(), cache, testOptions(), &stop);
  EXPECT_FALSE(r.complete);
  EXPECT_EQ(r.items.size(), 0u);

  // Raised after game's first file was read: game is not listed (beta, before it, may be: the
  // scan is incomplete and is not published), and only that complete file is cached, so the
  // next scan resumes from it.
  stop = false;
  auto options = testOptions();
  options.hashThreads = 1;  // one file at a time, so that exactly one is finished when it stops
  kj::Function<void(kj::StringPtr)> hook = [&](kj::StringPtr) {
    stop = true;
  };
  options.afterRead = &hook;
  IndexCache other;
  auto s = scanLibrary(tree.path(), other, options, &stop);
  EXPECT_FALSE(s.complete);
  for (auto& item : s.items)
    EXPECT_NE(item->itemId(), "game");
  EXPECT_EQ(other.size(), 1u);
}

// Many files and files of several ranges, hashed on 1 and on 4 threads: the same items, and the
// progress counters add up to what was hashed.
TEST(ScannerThreads, EveryThreadCountListsTheSameItems) {
  TempTree tree;
  for (uint32_t i = 0; i < 40; ++i)
    tree.write(kj::str("many/f", i), pattern(1000 + 300 * i, uint8_t(i)));
  tree.write("big/one", pattern(10 * 4096 + 17, 9));  // 11 chunks: ranges of 4, 4 and 3
  tree.write("big/two", pattern(8 * 4096, 8));        // exactly two ranges
  tree.write("big/empty", "");
  auto scanWith = [&](uint32_t threads, ScanProgress& progress) {
    IndexCache cache;
    auto options = testOptions();
    options.hashThreads = threads;
    options.rangeBytes = 4 * 4096;
    options.progress = &progress;
    return scanLibrary(tree.path(), cache, options);
  };
  ScanProgress one, four;
  auto a = scanWith(1, one);
  auto b = scanWith(4, four);
  ASSERT_EQ(a.items.size(), 2u) << reasons(a).cStr();
  ASSERT_EQ(b.items.size(), 2u) << reasons(b).cStr();
  for (size_t i = 0; i < 2; ++i) {
    EXPECT_EQ(a.items[i]->info.manifestDigest, b.items[i]->info.manifestDigest);
  }
  auto& big = itemOf(b, "big").manifest;
  ASSERT_EQ(big.files.size(), 3u);
  EXPECT_EQ(big.files[1].path, "one");
  auto content = pattern(10 * 4096 + 17, 9);
  ASSERT_EQ(big.chunksOf(1).size(), 11u);
  for (size_t c = 0; c < 11; ++c) {
    auto end = kj::min((c + 1) * 4096, content.size());
    EXPECT_EQ(big.chunksOf(1)[c], codec::sha256(content.slice(c * 4096, end))) << c;
  }
  EXPECT_EQ(b.stats.filesHashed, 43u);
  EXPECT_TRUE(four.walked.load());
  EXPECT_EQ(four.filesToHash.load(), 43u);
  EXPECT_EQ(four.filesHashed.load(), 43u);
  EXPECT_EQ(four.bytesHashed.load(), four.bytesToHash.load());
  EXPECT_EQ(four.bytesHashed.load(), b.stats.bytesHashed);
  EXPECT_EQ(one.bytesHashed.load(), four.bytesHashed.load());
}

// A large file rewritten while its ranges are hashed on several threads is hashed again as a
// whole: no item mixes ranges of two versions.
TEST(ScannerThreads, ARangedFileChangedWhileHashedIsHashedAgainWhole) {
  TempTree tree;
  tree.write("big/file", pattern(12 * 4096, 1));
  auto changed = pattern(13 * 4096, 2);  // another size: coarse timestamps may not move
  std::atomic<int> calls{0};
  kj::Function<void(kj::StringPtr)> hook = [&](kj::StringPtr) {
    if (calls++ == 1) tree.write("big/file", changed);  // after the second range was read
  };
  IndexCache cache;
  auto options = testOptions();
  options.hashThreads = 3;
  options.rangeBytes = 4 * 4096;
  options.afterRead = &hook;
  auto r = scanLibrary(tree.path(), cache, options);
  auto& m = itemOf(r, "big").manifest;
  ASSERT_EQ(m.chunks.size(), 13u);
  for (size_t c = 0; c < 13; ++c)
    EXPECT_EQ(m.chunks[c], codec::sha256(changed.slice(c * 4096, (c + 1) * 4096))) << c;
  // The hooks run one at a time and the change is made in the second, so every read after it
  // (calls 3 on) is of the new file: it was read again. How many reads that takes depends on the
  // interleaving: a range opened while the file is being rewritten in place sees a short size,
  // and the next round plans from it (one whole-file job instead of four ranges).
  EXPECT_GE(calls.load(), 3);
}

// The rate and the time left come from the counters and the elapsed time the caller passes in.
TEST(ScanProgressReport, RateAndTimeLeftFromTheCounters) {
  ScanProgress progress;
  auto early = progress.report(0 * kj::SECONDS);
  EXPECT_EQ(early.bytesPerSecond, 0u);
  EXPECT_TRUE(early.etaMs == nullptr);  // nothing hashed, nothing known

  progress.filesToHash = 10;
  progress.bytesToHash = 4000000000;
  progress.bytesHashed = 1000000000;
  progress.filesHashed = 2;
  auto walking = progress.report(2 * kj::SECONDS);
  EXPECT_EQ(walking.bytesPerSecond, 500000000u);
  EXPECT_TRUE(walking.etaMs == nullptr);  // the totals may still grow

  progress.walked = true;
  auto r = progress.report(2 * kj::SECONDS);
  EXPECT_EQ(r.filesHashed, 2u);
  EXPECT_EQ(r.filesToHash, 10u);
  EXPECT_EQ(r.bytesHashed, 1000000000u);
  EXPECT_EQ(r.bytesToHash, 4000000000u);
  EXPECT_EQ(KJ_ASSERT_NONNULL(r.etaMs), 6000u);  // 3 GB left at 0.5 GB/s

  progress.bytesHashed = 4100000000;  // a file hashed twice
  EXPECT_EQ(KJ_ASSERT_NONNULL(progress.report(4 * kj::SECONDS).etaMs), 0u);
}

TEST_F(Scanner, ServingRefusesAFileChangedSinceItWasHashed) {
  // docs/bad-inputs.md #27 at serve time.
  IndexCache cache;
  auto r = scan(cache);
  auto& game = itemOf(r, "game");
  auto opened = game.openFile(tree.fd(), 1);
  ASSERT_TRUE(opened.is<kj::AutoCloseFd>());

  tree.setMtime("game/bin/run", 1000000000);  // same bytes, but it was touched: not the same file
  auto touched = game.openFile(tree.fd(), 1);
  ASSERT_TRUE(touched.is<FileRefusal>());
  EXPECT_EQ(touched.get<FileRefusal>().code, wire::ErrorCode::STALE);

  KJ_SYSCALL(unlink(tree.at("game/data/nested/deep/file.dat").cStr()));
  tree.symlink(outside.at("file.dat"), "game/data/nested/deep/file.dat");
  auto swapped = game.openFile(tree.fd(), 3);
  ASSERT_TRUE(swapped.is<FileRefusal>());
  EXPECT_EQ(swapped.get<FileRefusal>().code, wire::ErrorCode::STALE);

  KJ_SYSCALL(unlink(tree.at("game/data/empty").cStr()));
  auto gone = game.openFile(tree.fd(), 2);
  ASSERT_TRUE(gone.is<FileRefusal>());
  EXPECT_EQ(gone.get<FileRefusal>().code, wire::ErrorCode::STALE);
}

}  // namespace
}  // namespace shoal::peer::library
