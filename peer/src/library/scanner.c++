#include <shoal/peer/library/scanner.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>

#include <kj/debug.h>
#include <kj/mutex.h>
#include <kj/thread.h>
#include <kj/vector.h>
#include <shoal/codec/path.h>
#include <shoal/codec/text.h>
#include <shoal/mutant.h>
#include <shoal/peer/library/beneath.h>

namespace shoal::peer::library {

namespace {

kj::StringPtr typeName(mode_t mode) {
  if (S_ISLNK(mode)) return "symlink (not followed)";
  if (S_ISFIFO(mode)) return "FIFO";
  if (S_ISSOCK(mode)) return "socket";
  if (S_ISCHR(mode)) return "character device";
  if (S_ISBLK(mode)) return "block device";
  return "not a regular file";
}

int64_t nowNs() {
  struct timespec t;
  clock_gettime(CLOCK_REALTIME, &t);
  return int64_t(t.tv_sec) * 1000000000 + t.tv_nsec;
}

// The names in a folder, sorted bytewise; null (errno set) if it cannot be read.
kj::Maybe<kj::Array<kj::String>> listFolder(int dirFd) {
  int fd = dup(dirFd);
  if (fd < 0) return nullptr;
  DIR* dir = fdopendir(fd);
  if (dir == nullptr) {
    close(fd);
    return nullptr;
  }
  KJ_DEFER(closedir(dir));
  rewinddir(dir);
  kj::Vector<kj::String> names;
  for (;;) {
    errno = 0;
    struct dirent* e = readdir(dir);
    if (e == nullptr) break;
    kj::StringPtr name = e->d_name;
    if (name != "." && name != "..") names.add(kj::str(name));
  }
  if (errno != 0) return nullptr;
  std::sort(names.begin(), names.end());
  return names.releaseAsArray();
}

// Reads up to `buffer.size()` bytes at `offset`; fewer only at end of file. -1 on error.
ssize_t preadFull(int fd, kj::ArrayPtr<kj::byte> buffer, uint64_t offset) {
  size_t got = 0;
  while (got < buffer.size()) {
    ssize_t n = pread(fd, buffer.begin() + got, buffer.size() - got, off_t(offset + got));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return -1;
    if (n == 0) break;
    got += size_t(n);
  }
  return ssize_t(got);
}

uint32_t hashThreadCount(uint32_t asked) {
  if (asked > 0) return asked;
  long cores = sysconf(_SC_NPROCESSORS_ONLN);
  return cores > 0 ? uint32_t(cores) : 1;
}

// A file the index cache could not vouch for. Files larger than one range are hashed as several
// range jobs, possibly on several threads; the scan thread puts the ranges together.
struct PendingFile {
  uint32_t item;    // index into Scanner::items
  kj::String path;  // within the item
  uint64_t size;    // as last seen: the ranges are planned from it
  uint32_t attempts = 0;
  bool again = false;  // changed while hashed: into the next round
};

// What one range job of one attempt saw.
struct RangeOutcome {
  enum Kind : uint8_t { notRun, ok, changed, gone, failed };
  Kind kind = notRun;
  FileStat stat;          // the fd's stat before reading (ok, changed)
  uint64_t seenSize = 0;  // the last size seen (changed): the next attempt plans from it
  uint32_t mode = 0;
  int64_t startNs = 0;
  kj::Vector<codec::Digest> digests;
  kj::String problem;  // failed
};

struct RangeJob {
  PendingFile* file;
  uint64_t firstChunk;
  uint64_t chunks;  // ignored by a file's only range: it hashes the size it finds
  bool only;        // the file's only range
  bool last;        // the file's last range: checks that nothing follows
  RangeOutcome outcome;
};

class Scanner {
 public:
  Scanner(IndexCache& cache, const ScanOptions& options, const std::atomic<bool>* stop)
      : cache(cache), options(options), stop(stop) {
    KJ_REQUIRE(options.chunkSize >= options.limits.minChunkSize &&
                   options.chunkSize <= options.limits.maxChunkBytes,
               "chunk size outside [4096, 4 MiB]", options.chunkSize);
    readChunks = kj::max(size_t(1), options.readBytes / options.chunkSize);
    rangeChunks = kj::max(uint64_t(1), uint64_t(options.rangeBytes) / options.chunkSize);
    progress = options.progress != nullptr ? options.progress : &ownProgress;
  }

  ScanResult run(kj::StringPtr root);

 private:
  struct Found {
    kj::String path;
    FileStat stat;
    uint32_t mode;
    kj::Array<codec::Digest> chunks;
  };
  struct ItemScan {
    kj::String id;
    kj::Vector<Found> found;
    uint64_t files = 0;                // regular files seen so far
    kj::Maybe<kj::String> problem;     // the first reason it cannot be listed
    std::atomic<bool> refused{false};  // set with `problem`, or by a job that failed
  };

  void scanItem(int rootFd, kj::StringPtr itemId);
  void walk(int dirFd, kj::StringPtr prefix);
  void addFile(kj::String path, const struct stat& st);
  void hashPending(int rootFd);
  kj::Vector<RangeJob> planRound();
  void runJobs(int rootFd, kj::ArrayPtr<RangeJob> jobs);
  void hashRange(int rootFd, RangeJob& job, kj::ArrayPtr<kj::byte> buffer);
  RangeOutcome::Kind readRange(int fd, RangeJob& job, const struct stat& before,
                               kj::ArrayPtr<kj::byte> buffer);
  void finishFile(PendingFile& file, kj::ArrayPtr<RangeJob> ranges);
  kj::Own<const Item> buildItem(ItemScan& item);

  bool stopping() {
    if (!stopped && stop != nullptr && stop->load(std::memory_order_relaxed)) stopped = true;
    return stopped;
  }
  bool stopRaised() const { return stop != nullptr && stop->load(std::memory_order_relaxed); }
  ItemScan& current() { return *items.back(); }
  bool halted() { return stopping() || current().problem != nullptr; }
  void skip(kj::String reason) { skipped.add(kj::mv(reason)); }
  // The item cannot be listed; the first reason wins.
  void refuseItem(ItemScan& item, kj::String reason) {
    if (item.problem == nullptr) item.problem = kj::mv(reason);
    item.refused = true;
  }
  void refuseItem(kj::String reason) { refuseItem(current(), kj::mv(reason)); }

  IndexCache& cache;
  const ScanOptions& options;
  const std::atomic<bool>* stop;
  size_t readChunks;     // chunks per pread()
  uint64_t rangeChunks;  // chunks per range job
  ScanProgress ownProgress;
  ScanProgress* progress;
  ScanStats stats;
  kj::Vector<kj::String> skipped;
  bool stopped = false;
  kj::Vector<kj::Own<ItemScan>> items;  // listable folders, in name order
  kj::Vector<kj::Own<PendingFile>> pending;
  kj::MutexGuarded<bool> hookLock;  // afterRead runs on one thread at a time
};

ScanResult Scanner::run(kj::StringPtr root) {
  int fd;
  KJ_SYSCALL(fd = open(root.cStr(), O_RDONLY | O_DIRECTORY | O_CLOEXEC), root);
  kj::AutoCloseFd rootFd(fd);
  kj::Array<kj::String> names;
  KJ_IF_MAYBE (listed, listFolder(rootFd)) {
    names = kj::mv(*listed);
  } else {
    KJ_FAIL_SYSCALL("readdir", errno, root);
  }
  progress->reset();
  cache.beginScan();
  for (auto& name : names) {
    if (stopping()) break;
    // Dot-folders (our .shoal among them) are not items.
    if (name.startsWith(".") && !isMutant(Mutant::listsDotFolders)) continue;
    struct stat st;
    if (fstatat(rootFd, name.cStr(), &st, AT_SYMLINK_NOFOLLOW) != 0) continue;  // gone meanwhile
    if (!S_ISDIR(st.st_mode)) {
      skip(kj::str(codec::displayText(name), ": ",
                   S_ISREG(st.st_mode) ? "a file" : typeName(st.st_mode),
                   " at the top level, not an item"));
      continue;
    }
    ++stats.itemsSeen;
    KJ_IF_MAYBE (e, codec::checkComponent(name, options.limits)) {
      skip(kj::str(codec::displayText(name), ": folder name is not a valid item id (", *e, ")"));
      continue;
    }
    scanItem(rootFd, name);
  }
  if (!stopping()) hashPending(rootFd);
  if (stopping()) return {nullptr, stats, skipped.releaseAsArray(), false};
  kj::Vector<kj::Own<const Item>> built;
  for (auto& item : items) {
    KJ_IF_MAYBE (problem, item->problem) {
      skip(kj::str(item->id, ": not listed: ", *problem));
    } else {
      built.add(buildItem(*item));
    }
  }
  cache.dropUnseen();
  return {built.releaseAsArray(), stats, skipped.releaseAsArray(), true};
}

void Scanner::scanItem(int rootFd, kj::StringPtr id) {
  auto& item = *items.add(kj::heap<ItemScan>());
  item.id = kj::str(id);
  int fd = openat(rootFd, id.cStr(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) {
    refuseItem(kj::str("cannot open the folder (", strerror(errno), ")"));
    return;
  }
  kj::AutoCloseFd itemFd(fd);
  walk(itemFd, nullptr);
}

void Scanner::walk(int dirFd, kj::StringPtr prefix) {
  kj::Array<kj::String> names;
  KJ_IF_MAYBE (listed, listFolder(dirFd)) {
    names = kj::mv(*listed);
  } else {
    refuseItem(
        kj::str(codec::displayText(prefix), ": cannot read the folder (", strerror(errno), ")"));
    return;
  }
  for (auto& name : names) {
    if (halted()) return;
    auto path = prefix.size() == 0 ? kj::str(name) : kj::str(prefix, '/', name);
    struct stat st;
    if (fstatat(dirFd, name.cStr(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
      if (errno == ENOENT) continue;  // removed since listed: the next scan sees the new state
      refuseItem(kj::str(codec::displayText(path), ": stat failed (", strerror(errno), ")"));
      return;
    }
    if (!S_ISDIR(st.st_mode) && !S_ISREG(st.st_mode)) {
      skip(kj::str(current().id, '/', codec::displayText(path), ": ", typeName(st.st_mode),
                   ", left out"));
      continue;
    }
    // A folder whose path breaks the rules could only hold files whose paths break them too.
    KJ_IF_MAYBE (e, codec::checkPath(path, options.limits)) {
      refuseItem(kj::str(codec::displayText(path), ": path breaks the path rules (", *e, ")"));
      return;
    }
    if (S_ISREG(st.st_mode)) {
      addFile(kj::mv(path), st);
      continue;
    }
    int fd = openat(dirFd, name.cStr(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
      if (errno == ENOENT) continue;
      // ELOOP or ENOTDIR: swapped for a symlink or a file since the stat; never followed.
      refuseItem(
          kj::str(codec::displayText(path), ": cannot open the folder (", strerror(errno), ")"));
      return;
    }
    kj::AutoCloseFd sub(fd);
    walk(sub, path);
  }
}

void Scanner::addFile(kj::String path, const struct stat& st) {
  ++stats.filesSeen;
  auto& item = current();
  if (++item.files > options.limits.maxFilesPerManifest) {
    refuseItem(kj::str("more than ", options.limits.maxFilesPerManifest, " files"));
    return;
  }
  if (uint64_t(st.st_size) > options.limits.maxFileBytes) {
    refuseItem(
        kj::str(codec::displayText(path), ": larger than ", options.limits.maxFileBytes, " bytes"));
    return;
  }
  auto stat = FileStat::of(st);
  KJ_IF_MAYBE (hashes, cache.find(item.id, path, stat, options.chunkSize)) {
    ++stats.cacheHits;
    item.found.add(Found{kj::mv(path), stat, uint32_t(st.st_mode & 0777), kj::mv(*hashes)});
    return;
  }
  pending.add(kj::heap<PendingFile>(
      PendingFile{uint32_t(items.size() - 1), kj::mv(path), uint64_t(st.st_size)}));
  progress->filesToHash.fetch_add(1, std::memory_order_relaxed);
  progress->bytesToHash.fetch_add(uint64_t(st.st_size), std::memory_order_relaxed);
}

// Rounds of range jobs: a file that changed while hashed goes into the next round, up to
// `changeRetries` more times.
void Scanner::hashPending(int rootFd) {
  progress->walked.store(true, std::memory_order_release);
  while (pending.size() > 0 && !stopping()) {
    auto jobs = planRound();
    runJobs(rootFd, jobs);
    if (stopRaised()) stopped = true;
    for (size_t at = 0; at < jobs.size();) {
      size_t end = at + 1;
      while (end < jobs.size() && jobs[end].file == jobs[at].file)
        ++end;
      finishFile(*jobs[at].file, jobs.slice(at, end));
      at = end;
    }
    // A file of a refused item is not hashed again (its item will not be listed).
    kj::Vector<kj::Own<PendingFile>> next;
    for (auto& file : pending) {
      if (file->again && !items[file->item]->refused) next.add(kj::mv(file));
    }
    pending = kj::mv(next);
  }
}

kj::Vector<RangeJob> Scanner::planRound() {
  kj::Vector<RangeJob> jobs;
  for (auto& file : pending) {
    auto& item = *items[file->item];
    if (item.refused) continue;
    if (++file->attempts > options.changeRetries + 1) {
      refuseItem(item, kj::str(codec::displayText(file->path), ": kept changing while hashed (",
                               options.changeRetries + 1, " attempts)"));
      continue;
    }
    uint64_t chunks = codec::chunkCountFor(file->size, options.chunkSize);
    if (chunks <= rangeChunks) {
      jobs.add(RangeJob{file.get(), 0, chunks, true, true, {}});
      continue;
    }
    for (uint64_t first = 0; first < chunks; first += rangeChunks) {
      uint64_t n = kj::min(rangeChunks, chunks - first);
      jobs.add(RangeJob{file.get(), first, n, false, first + n == chunks, {}});
    }
  }
  return jobs;
}

// The jobs on `hashThreads` threads (the calling thread waits); each takes the next job not taken.
void Scanner::runJobs(int rootFd, kj::ArrayPtr<RangeJob> jobs) {
  std::atomic<size_t> next{0};
  auto work = [&]() {
    auto buffer = kj::heapArray<kj::byte>(readChunks * options.chunkSize);
    for (;;) {
      size_t at = next.fetch_add(1, std::memory_order_relaxed);
      if (at >= jobs.size()) return;
      hashRange(rootFd, jobs[at], buffer);
    }
  };
  uint32_t threads = uint32_t(kj::min(size_t(hashThreadCount(options.hashThreads)), jobs.size()));
  if (threads <= 1) {
    work();
    return;
  }
  kj::Vector<kj::Own<kj::Thread>> workers;
  for (uint32_t i = 0; i < threads; ++i)
    workers.add(kj::heap<kj::Thread>(work));
  // The destructors join: every job has run when the vector goes.
}

// Runs on a hashing thread. Opens the file again beneath the root (never following a symlink),
// hashes its range and checks that the file did not change meanwhile (docs/bad-inputs.md #27):
// the same stat before and after, exactly the bytes the stat promised, and the name still naming
// that file.
void Scanner::hashRange(int rootFd, RangeJob& job, kj::ArrayPtr<kj::byte> buffer) {
  auto& file = *job.file;
  auto& item = *items[file.item];
  auto& out = job.outcome;
  if (stopRaised() || item.refused) return;  // notRun
  auto fail = [&](kj::String problem) {
    out.kind = RangeOutcome::failed;
    out.problem = kj::mv(problem);
    item.refused = true;
  };
  auto openFailed = [&](const OpenFailure& f) {
    if (f.error == OpenError::notFound) {
      out.kind = RangeOutcome::gone;  // removed meanwhile: not part of the item any more
    } else if (f.error == OpenError::symlink || f.error == OpenError::wrongType ||
               f.error == OpenError::notDirectory) {
      fail(kj::str(codec::displayText(file.path), ": replaced by something else while scanned"));
    } else {
      fail(kj::str(codec::displayText(file.path), ": cannot open (", f, ")"));
    }
  };
  auto folder = openBeneath(rootFd, item.id, O_RDONLY | O_DIRECTORY, Resolver::automatic, 0600,
                            options.limits);
  KJ_IF_MAYBE (f, folder.tryGet<OpenFailure>()) {
    return openFailed(*f);
  }
  int itemFd = folder.get<kj::AutoCloseFd>();
  auto opened = openBeneath(itemFd, file.path, O_RDONLY, Resolver::automatic, 0600, options.limits);
  KJ_IF_MAYBE (f, opened.tryGet<OpenFailure>()) {
    return openFailed(*f);
  }
  int fd = opened.get<kj::AutoCloseFd>();
  struct stat before;
  if (fstat(fd, &before) != 0) {
    return fail(kj::str(codec::displayText(file.path), ": fstat failed (", strerror(errno), ")"));
  }
  out.stat = FileStat::of(before);
  out.seenSize = uint64_t(before.st_size);
  out.mode = uint32_t(before.st_mode & 0777);
  out.startNs = nowNs();
  out.kind = readRange(fd, job, before, buffer);
  if (out.kind != RangeOutcome::ok) return;
  if (options.afterRead != nullptr) {
    auto lock = hookLock.lockExclusive();
    (*options.afterRead)(file.path);
  }
  struct stat after, named;
  out.kind = RangeOutcome::changed;
  if (fstat(fd, &after) != 0) return;
  out.seenSize = uint64_t(after.st_size);
  if (FileStat::of(after) != out.stat) return;
  auto again = openBeneath(itemFd, file.path, O_RDONLY, Resolver::automatic, 0600, options.limits);
  if (!again.is<kj::AutoCloseFd>() || fstat(again.get<kj::AutoCloseFd>(), &named) != 0 ||
      FileStat::of(named) != out.stat) {
    return;  // renamed over or replaced: hash what the name now holds
  }
  out.kind = RangeOutcome::ok;
}

// Hashes the job's chunks of the open file into its outcome.
RangeOutcome::Kind Scanner::readRange(int fd, RangeJob& job, const struct stat& before,
                                      kj::ArrayPtr<kj::byte> buffer) {
  uint64_t size = uint64_t(before.st_size);
  uint64_t chunkSize = options.chunkSize;
  uint64_t begin = job.firstChunk * chunkSize;
  uint64_t end = job.only ? size : kj::min(size, (job.firstChunk + job.chunks) * chunkSize);
  // A range planned from another size than the file has now belongs to another plan.
  if (!job.only && size != job.file->size) return RangeOutcome::changed;
  posix_fadvise(fd, off_t(begin), off_t(end - begin), POSIX_FADV_SEQUENTIAL);
  auto& digests = job.outcome.digests;
  for (uint64_t at = begin; at < end;) {
    size_t want = size_t(kj::min(uint64_t(buffer.size()), end - at));
    ssize_t got = preadFull(fd, buffer.slice(0, want), at);
    if (got < 0) {
      job.outcome.problem =
          kj::str(codec::displayText(job.file->path), ": read failed (", strerror(errno), ")");
      items[job.file->item]->refused = true;
      return RangeOutcome::failed;
    }
    for (size_t c = 0; c < size_t(got); c += chunkSize) {
      if (stopRaised()) return RangeOutcome::notRun;
      size_t end = kj::min(c + chunkSize, size_t(got)) - isMutant(Mutant::wrongChunkHash);
      digests.add(codec::sha256(buffer.slice(c, end)));
    }
    progress->bytesHashed.fetch_add(uint64_t(got), std::memory_order_relaxed);
    if (size_t(got) < want) return RangeOutcome::changed;  // shrank while read
    at += uint64_t(got);
  }
  if (job.last) {
    kj::byte extra;
    if (pread(fd, &extra, 1, off_t(size)) != 0) return RangeOutcome::changed;  // grew
  }
  return RangeOutcome::ok;
}

// Puts a file's ranges together (scan thread): listed and cached, dropped, refused, or hashed
// again in the next round.
void Scanner::finishFile(PendingFile& file, kj::ArrayPtr<RangeJob> ranges) {
  auto& item = *items[file.item];
  file.again = false;
  // A failure wins over a range that did not run because of it (on another thread, earlier).
  for (auto& r : ranges) {
    if (r.outcome.kind == RangeOutcome::failed) return refuseItem(item, kj::mv(r.outcome.problem));
  }
  bool changed = false;
  int64_t latest = INT64_MIN;
  for (auto& r : ranges) {
    switch (r.outcome.kind) {
      case RangeOutcome::notRun: return;  // stopped, or the item is refused already
      case RangeOutcome::gone: return;
      case RangeOutcome::failed: KJ_UNREACHABLE;
      case RangeOutcome::changed: changed = true; break;
      case RangeOutcome::ok:
        // Ranges read at different times must have seen one and the same file.
        if (r.outcome.stat != ranges[0].outcome.stat) changed = true;
        break;
    }
    if (r.outcome.startNs >= latest) {
      latest = r.outcome.startNs;
      file.size = r.outcome.seenSize;  // the next attempt plans from the latest size seen
    }
  }
  if (changed) {
    file.again = true;
    return;
  }
  ++stats.filesHashed;
  stats.bytesHashed += file.size;
  progress->filesHashed.fetch_add(1, std::memory_order_relaxed);
  auto& first = ranges[0].outcome;
  size_t count = 0;
  int64_t startNs = first.startNs;
  for (auto& r : ranges) {
    count += r.outcome.digests.size();
    startNs = kj::min(startNs, r.outcome.startNs);
  }
  auto chunks = kj::heapArrayBuilder<codec::Digest>(count);
  for (auto& r : ranges)
    chunks.addAll(r.outcome.digests);
  auto digests = chunks.finish();
  // A file changed within the timestamp granularity of its hashing could change again without
  // its stat moving: keep the digests for this scan, but let the next scan look again.
  int64_t changedNs = kj::max(first.stat.mtimeNs, first.stat.ctimeNs);
  if (changedNs + options.racyWindowNs < startNs) {
    cache.put(item.id, file.path, first.stat, options.chunkSize, digests);
  }
  item.found.add(Found{kj::mv(file.path), first.stat, first.mode, kj::mv(digests)});
}

kj::Own<const Item> Scanner::buildItem(ItemScan& item) {
  auto& found = item.found;
  std::sort(found.begin(), found.end(),
            [](const Found& a, const Found& b) { return a.path < b.path; });
  size_t chunkCount = 0;
  for (auto& f : found)
    chunkCount += f.chunks.size();
  auto files = kj::heapArrayBuilder<codec::FileInfo>(found.size());
  auto fileStats = kj::heapArrayBuilder<FileStat>(found.size());
  auto chunks = kj::heapArrayBuilder<codec::Digest>(chunkCount);
  for (auto& f : found) {
    files.add(codec::FileInfo{kj::mv(f.path), f.stat.size, f.mode});
    fileStats.add(f.stat);
    chunks.addAll(f.chunks);
  }
  found.clear();
  return newItem(
      codec::makeManifest(kj::mv(item.id), options.chunkSize, files.finish(), chunks.finish()),
      fileStats.finish());
}

}  // namespace

void ScanProgress::reset() {
  walked = false;
  filesToHash = 0;
  bytesToHash = 0;
  filesHashed = 0;
  bytesHashed = 0;
}

ScanReport ScanProgress::report(kj::Duration elapsed) const {
  ScanReport r;
  r.walked = walked.load(std::memory_order_acquire);
  r.filesToHash = filesToHash.load(std::memory_order_relaxed);
  r.bytesToHash = bytesToHash.load(std::memory_order_relaxed);
  r.filesHashed = filesHashed.load(std::memory_order_relaxed);
  r.bytesHashed = bytesHashed.load(std::memory_order_relaxed);
  uint64_t ms = uint64_t(kj::max(elapsed, 0 * kj::SECONDS) / kj::MILLISECONDS);
  if (ms > 0) r.bytesPerSecond = uint64_t(double(r.bytesHashed) * 1000 / double(ms));
  if (r.walked && r.bytesPerSecond > 0) {
    // Retries of a changing file may take bytesHashed past the total: nothing left then.
    uint64_t left = r.bytesToHash > r.bytesHashed ? r.bytesToHash - r.bytesHashed : 0;
    r.etaMs = uint64_t(double(left) * 1000 / double(r.bytesPerSecond));
  }
  return r;
}

ScanResult scanLibrary(kj::StringPtr libraryRoot, IndexCache& cache, const ScanOptions& options,
                       const std::atomic<bool>* stop) {
  return Scanner(cache, options, stop).run(libraryRoot);
}

}  // namespace shoal::peer::library
