#include <shoal/peer/library/scanner.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>

#include <kj/debug.h>
#include <kj/vector.h>
#include <shoal/codec/path.h>
#include <shoal/codec/text.h>

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

// Reads up to `buffer.size()` bytes; fewer only at end of file. -1 on error.
ssize_t readFull(int fd, kj::ArrayPtr<kj::byte> buffer) {
  size_t got = 0;
  while (got < buffer.size()) {
    ssize_t n = read(fd, buffer.begin() + got, buffer.size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return -1;
    if (n == 0) break;
    got += size_t(n);
  }
  return ssize_t(got);
}

class Scanner {
 public:
  Scanner(IndexCache& cache, const ScanOptions& options, const std::atomic<bool>* stop)
      : cache(cache), options(options), stop(stop) {
    KJ_REQUIRE(options.chunkSize >= options.limits.minChunkSize &&
                   options.chunkSize <= options.limits.maxChunkBytes,
               "chunk size outside [4096, 4 MiB]", options.chunkSize);
    size_t chunks = kj::max(size_t(1), options.readBytes / options.chunkSize);
    buffer = kj::heapArray<kj::byte>(chunks * options.chunkSize);
  }

  ScanResult run(kj::StringPtr root);

 private:
  struct Found {
    kj::String path;
    FileStat stat;
    uint32_t mode;
    kj::Array<codec::Digest> chunks;
  };
  enum class Hashed { ok, changed, gone };

  kj::Maybe<kj::Own<const Item>> scanItem(int rootFd, kj::StringPtr itemId);
  void walk(int dirFd, kj::StringPtr prefix);
  void addFile(int dirFd, kj::StringPtr name, kj::String path, const struct stat& st);
  void hashFile(int dirFd, kj::StringPtr name, kj::String path);
  Hashed hashOnce(int dirFd, kj::StringPtr name, kj::StringPtr path, int fd,
                  const struct stat& before);
  kj::Own<const Item> buildItem(kj::StringPtr itemId);

  bool stopping() {
    if (!stopped && stop != nullptr && stop->load(std::memory_order_relaxed)) stopped = true;
    return stopped;
  }
  bool halted() { return stopping() || itemProblem != nullptr; }
  void skip(kj::String reason) { skipped.add(kj::mv(reason)); }
  // The current item cannot be listed; the first reason wins.
  void refuseItem(kj::String reason) {
    if (itemProblem == nullptr) itemProblem = kj::mv(reason);
  }

  IndexCache& cache;
  const ScanOptions& options;
  const std::atomic<bool>* stop;
  kj::Array<kj::byte> buffer;
  ScanStats stats;
  kj::Vector<kj::String> skipped;
  bool stopped = false;

  // State of the item being scanned.
  kj::StringPtr itemId;
  kj::Vector<Found> found;
  kj::Maybe<kj::String> itemProblem;
  kj::Vector<codec::Digest> digests;  // of the file being hashed
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
  cache.beginScan();
  kj::Vector<kj::Own<const Item>> items;
  for (auto& name : names) {
    if (stopping()) break;
    if (name.startsWith(".")) continue;  // dot-folders (our .shoal among them) are not items
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
    KJ_IF_MAYBE (item, scanItem(rootFd, name)) {
      items.add(kj::mv(*item));
    }
  }
  if (!stopped) cache.dropUnseen();
  return {items.releaseAsArray(), stats, skipped.releaseAsArray(), !stopped};
}

kj::Maybe<kj::Own<const Item>> Scanner::scanItem(int rootFd, kj::StringPtr id) {
  itemId = id;
  found.clear();
  itemProblem = nullptr;
  int fd = openat(rootFd, id.cStr(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) {
    skip(kj::str(id, ": not listed: cannot open the folder (", strerror(errno), ")"));
    return nullptr;
  }
  kj::AutoCloseFd itemFd(fd);
  walk(itemFd, nullptr);
  if (stopped) return nullptr;
  KJ_IF_MAYBE (problem, itemProblem) {
    skip(kj::str(id, ": not listed: ", *problem));
    return nullptr;
  }
  return buildItem(id);
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
      skip(
          kj::str(itemId, '/', codec::displayText(path), ": ", typeName(st.st_mode), ", left out"));
      continue;
    }
    // A folder whose path breaks the rules could only hold files whose paths break them too.
    KJ_IF_MAYBE (e, codec::checkPath(path, options.limits)) {
      refuseItem(kj::str(codec::displayText(path), ": path breaks the path rules (", *e, ")"));
      return;
    }
    if (S_ISREG(st.st_mode)) {
      addFile(dirFd, name, kj::mv(path), st);
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

void Scanner::addFile(int dirFd, kj::StringPtr name, kj::String path, const struct stat& st) {
  ++stats.filesSeen;
  if (found.size() >= options.limits.maxFilesPerManifest) {
    refuseItem(kj::str("more than ", options.limits.maxFilesPerManifest, " files"));
    return;
  }
  if (uint64_t(st.st_size) > options.limits.maxFileBytes) {
    refuseItem(
        kj::str(codec::displayText(path), ": larger than ", options.limits.maxFileBytes, " bytes"));
    return;
  }
  auto stat = FileStat::of(st);
  KJ_IF_MAYBE (hashes, cache.find(itemId, path, stat, options.chunkSize)) {
    ++stats.cacheHits;
    found.add(Found{kj::mv(path), stat, uint32_t(st.st_mode & 0777), kj::mv(*hashes)});
    return;
  }
  hashFile(dirFd, name, kj::mv(path));
}

void Scanner::hashFile(int dirFd, kj::StringPtr name, kj::String path) {
  for (uint32_t attempt = 0; attempt <= options.changeRetries; ++attempt) {
    int fd = openat(dirFd, name.cStr(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
      if (errno == ENOENT) return;  // removed meanwhile: not part of the item any more
      refuseItem(kj::str(codec::displayText(path), ": cannot open (", strerror(errno), ")"));
      return;
    }
    kj::AutoCloseFd file(fd);
    struct stat before;
    if (fstat(fd, &before) != 0 || !S_ISREG(before.st_mode)) {
      refuseItem(kj::str(codec::displayText(path), ": replaced by something else while scanned"));
      return;
    }
    int64_t startNs = nowNs();
    switch (hashOnce(dirFd, name, path, fd, before)) {
      case Hashed::gone: return;
      case Hashed::changed: continue;
      case Hashed::ok: break;
    }
    ++stats.filesHashed;
    auto stat = FileStat::of(before);
    auto chunks = digests.releaseAsArray();
    // A file changed within the timestamp granularity of its hashing could change again without
    // its stat moving: keep the digests for this scan, but let the next scan look again.
    int64_t changedNs = kj::max(stat.mtimeNs, stat.ctimeNs);
    if (changedNs + options.racyWindowNs < startNs) {
      cache.put(itemId, path, stat, options.chunkSize, chunks);
    }
    found.add(Found{kj::mv(path), stat, uint32_t(before.st_mode & 0777), kj::mv(chunks)});
    return;
  }
  refuseItem(kj::str(codec::displayText(path), ": kept changing while hashed (",
                     options.changeRetries + 1, " attempts)"));
}

// Hashes the open file chunk by chunk, then checks that it is still the same file, unchanged:
// same stat before and after, exactly `before.st_size` bytes, and still the file at that name.
Scanner::Hashed Scanner::hashOnce(int dirFd, kj::StringPtr name, kj::StringPtr path, int fd,
                                  const struct stat& before) {
  digests.clear();
  posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
  uint64_t remaining = uint64_t(before.st_size);
  uint32_t chunkSize = options.chunkSize;
  while (remaining > 0) {
    if (halted()) return Hashed::gone;
    size_t want = size_t(kj::min(uint64_t(buffer.size()), remaining));
    ssize_t got = readFull(fd, buffer.slice(0, want));
    if (got < 0) {
      refuseItem(kj::str("read failed (", strerror(errno), ")"));
      return Hashed::gone;
    }
    for (size_t at = 0; at < size_t(got); at += chunkSize) {
      if (halted()) return Hashed::gone;
      digests.add(codec::sha256(buffer.slice(at, kj::min(at + chunkSize, size_t(got)))));
    }
    stats.bytesHashed += uint64_t(got);
    if (size_t(got) < want) return Hashed::changed;  // shrank while read
    remaining -= uint64_t(got);
  }
  if (options.afterRead != nullptr) (*options.afterRead)(path);
  kj::byte extra;
  ssize_t more = read(fd, &extra, 1);
  struct stat after, named;
  if (more != 0 || fstat(fd, &after) != 0 || FileStat::of(after) != FileStat::of(before)) {
    return Hashed::changed;
  }
  if (fstatat(dirFd, name.cStr(), &named, AT_SYMLINK_NOFOLLOW) != 0 ||
      FileStat::of(named) != FileStat::of(after)) {
    return Hashed::changed;  // renamed over or replaced: hash what the name now holds
  }
  return Hashed::ok;
}

kj::Own<const Item> Scanner::buildItem(kj::StringPtr id) {
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
      codec::makeManifest(kj::str(id), options.chunkSize, files.finish(), chunks.finish()),
      fileStats.finish());
}

}  // namespace

ScanResult scanLibrary(kj::StringPtr libraryRoot, IndexCache& cache, const ScanOptions& options,
                       const std::atomic<bool>* stop) {
  return Scanner(cache, options, stop).run(libraryRoot);
}

}  // namespace shoal::peer::library
