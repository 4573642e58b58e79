// The library scan: walks the root by folder fds (O_NOFOLLOW, no joined paths, no symlink
// followed), hashes what the index cache cannot vouch for on every core, and builds one Item per
// listable top-level folder (docs/protocol.md §6.1, §7.3). Synchronous: run it on a thread of its
// own; it starts its hashing threads itself and joins them before it returns.
#pragma once

#include <stdint.h>

#include <atomic>

#include <kj/array.h>
#include <kj/function.h>
#include <kj/string.h>
#include <kj/time.h>
#include <shoal/codec/limits.h>
#include <shoal/codec/manifest.h>
#include <shoal/peer/library/index-cache.h>
#include <shoal/peer/library/item.h>

namespace shoal::peer::library {

// What a user wants to know of a running scan: how far, how fast, how long still.
struct ScanReport {
  bool walked = false;  // every file found: the totals are final
  uint64_t filesHashed = 0;
  uint64_t filesToHash = 0;
  uint64_t bytesHashed = 0;
  uint64_t bytesToHash = 0;
  uint64_t bytesPerSecond = 0;  // since the scan began; 0 until something was hashed
  kj::Maybe<uint64_t> etaMs;    // once the totals are final and the rate is known
};

// How far a running scan is, for progress reports: written by the scan's threads, read from any
// thread. The walk comes first (every file is stat'ed and looked up in the index cache), so the
// totals are final once `walked` is set; then the files are hashed.
struct ScanProgress {
  std::atomic<bool> walked{false};  // set (release) after the totals' last update
  std::atomic<uint64_t> filesToHash{0};
  std::atomic<uint64_t> bytesToHash{0};
  std::atomic<uint64_t> filesHashed{0};
  std::atomic<uint64_t> bytesHashed{0};  // read and hashed, retries of a changing file included

  void reset();  // by the scan, when it starts
  // The counters now, `elapsed` after the scan began (the caller's clock: no clock in here).
  ScanReport report(kj::Duration elapsed) const;
};

struct ScanOptions {
  uint32_t chunkSize = codec::kDefaultChunkSize;  // 4096 .. 4 MiB ([MAN-16])
  codec::Limits limits;                           // path rules, file size, files per manifest
  // A file whose stat changes while it is hashed is hashed again this many times; if it keeps
  // changing, its item is not listed in this scan (never listed with content we did not see).
  uint32_t changeRetries = 3;
  // A file changed less than this long before its hashing began may be written again within the
  // same timestamp tick without its mtime or ctime moving: its digests are used but not cached.
  int64_t racyWindowNs = 2000000000;
  size_t readBytes = 4 << 20;  // bytes per pread(), rounded to whole chunks
  // Threads that hash (0: one per online core). A file is hashed in ranges of `rangeBytes`
  // (rounded to whole chunks), each a job of its own, so one large file uses every thread too.
  uint32_t hashThreads = 0;
  size_t rangeBytes = 32 << 20;
  // Where the scan reports how far it is; null: nowhere.
  ScanProgress* progress = nullptr;
  // Test hook: runs with a file's path (within its item) after a range of its bytes was read and
  // before the check that it did not change meanwhile; on one hashing thread at a time.
  kj::Function<void(kj::StringPtr path)>* afterRead = nullptr;
};

struct ScanStats {
  uint64_t itemsSeen = 0;  // top-level folders not starting with '.'

  uint64_t filesSeen = 0;    // regular files found
  uint64_t filesHashed = 0;  // files read and hashed (a file that changed meanwhile counts once)
  uint64_t bytesHashed = 0;  // their bytes
  uint64_t cacheHits = 0;    // files whose digests came from the index cache
};

struct ScanResult {
  kj::Array<kj::Own<const Item>> items;  // sorted by itemId
  ScanStats stats;
  kj::Array<kj::String> skipped;  // human-readable: what was left out and why
  bool complete = true;           // false when the stop flag ended the scan early: do not publish
};

// Scans `libraryRoot` (the root itself may be a symlink; nothing beneath it is followed). Items are
// the top-level folders whose names are valid item ids and do not start with '.'; an item that a
// v1 manifest cannot describe ([MAN-15]) or that cannot be read completely is left out and
// reported in `skipped`. Symlinks, FIFOs, sockets and devices inside an item are reported and left
// out. `stop` is checked between files and between chunks. Uses `cache` for files whose stat and
// chunk size match, records what it hashes, and after a complete scan forgets files that are gone.
// Throws (kj::Exception) only if the root itself cannot be opened.
ScanResult scanLibrary(kj::StringPtr libraryRoot, IndexCache& cache, const ScanOptions& options,
                       const std::atomic<bool>* stop = nullptr);

}  // namespace shoal::peer::library
