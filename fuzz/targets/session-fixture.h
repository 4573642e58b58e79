// The world of the `session` fuzz target, shared with the seed recorder (make-session-seeds.c++)
// so that recorded requests name real manifest digests: a small library in a scratch folder
// (/tmp/shoal-fuzz-session-XXXXXX, scratch-folder.h) served by RequestServer, and, outside it,
// files holding a marker that must never be served, reachable from inside only through symlinks.
#pragma once

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <kj/debug.h>
#include <kj/io.h>
#include <kj/map.h>
#include <kj/string.h>
#include <kj/vector.h>
#include <shoal/peer/library/library.h>
#include <shoal/peer/library/scanner.h>
#include <shoal/peer/runtime/request-server.h>

#include "../../peer/test/library/temp-tree.h"
#include "targets/scratch-folder.h"

namespace shoal::fuzz {

// Bytes of the files outside the library. No file inside contains them.
constexpr kj::StringPtr kMarker = "<<SHOAL-FUZZ-OUTSIDE-MARKER>>"_kj;
constexpr uint64_t kEpoch = 0x5EED00005EED0001ull;
constexpr uint32_t kChunkSize = 4096;
constexpr uint32_t kManyFiles = 700;  // enough entries for a manifest of two 64 KiB pages
// Ids a request can name: the four listed items, one being downloaded, one unknown.
constexpr kj::StringPtr kItemIds[] = {"alpha"_kj, "beta"_kj,     "gamma"_kj,
                                      "many"_kj,  "incoming"_kj, "nothing"_kj};
constexpr kj::StringPtr kDownloading = "incoming"_kj;

struct FixtureFile {
  kj::Array<kj::byte> content;  // as hashed
  bool swapped = false;         // replaced by a symlink after the scan: must never be served
};

class LibraryFixture {
 public:
  LibraryFixture() : lib(kEpoch) {
    makeDir("library");
    makeDir("outside");
    // The outside: what an escape would serve.
    kj::Vector<kj::byte> marked;
    while (marked.size() < 3 * kChunkSize)
      marked.addAll(kMarker.asBytes());
    for (auto file : {"outside/secret.txt", "outside/inner.txt", "outside/data.txt"})
      writeFile(file, marked);

    // alpha: small, empty, nested, and one file above 64 KiB (a chunk of it cannot fit the
    // smallest frame a peer may announce).
    addFile("alpha", "readme.txt", text("alpha: the first item\n", 1));
    addFile("alpha", "empty.dat", nullptr);
    addFile("alpha", "docs/guide.md", noise(5000, 11));
    addFile("alpha", "big.bin", noise(70000, 12));
    // beta: links to the outside, which the scan leaves out.
    addFile("beta", "notes.txt", noise(300, 21));
    makeLink(kj::str(base, "/outside/secret.txt"), "library/beta/escape-file");
    makeLink(kj::str(base, "/outside"), "library/beta/escape-dir");
    makeLink("../../outside/secret.txt", "library/beta/rel-escape");
    // gamma: files swapped for links to the outside after the scan (below).
    addFile("gamma", "data.txt", noise(2000, 31));
    addFile("gamma", "sub/inner.txt", noise(1000, 32));
    // many: a manifest that needs two pages under a 64 KiB frame limit.
    for (uint32_t i = 0; i < kManyFiles; ++i) {
      addFile("many", kj::str("a-folder-with-a-long-name/file-", kj::hex(0x1000 + i), ".dat"),
              noise(8 + i % 40, 100 + i));
    }

    peer::library::IndexCache cache;
    peer::library::ScanOptions options;
    options.chunkSize = kChunkSize;
    auto scan = peer::library::scanLibrary(kj::str(base, "/library"), cache, options);
    KJ_ASSERT(scan.complete && scan.items.size() == 4, scan.items.size());
    // Three revisions, so a GetLibrary can be answered with a delta as well as a snapshot.
    for (size_t n : {1, 2, 4}) {
      auto items = kj::heapArrayBuilder<kj::Own<const peer::library::Item>>(n);
      for (size_t i = 0; i < n; ++i)
        items.add(scan.items[i]->addRef());
      lib.update(items.finish());
    }
    lib.setDownloading(kDownloading, true);

    // The swaps: a listed file and a listed folder become links to the outside.
    swap("library/gamma/data.txt", kj::str(base, "/outside/data.txt"));
    swap("library/gamma/sub", kj::str(base, "/outside"));
    for (auto& entry : files) {
      if (entry.key.startsWith("gamma/")) entry.value.swapped = true;
    }

    int fd;
    KJ_SYSCALL(fd = open(kj::str(base, "/library").cStr(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    rootFd = kj::AutoCloseFd(fd);
    requestServer = kj::heap<peer::RequestServer>(lib, rootFd);
  }

  KJ_DISALLOW_COPY(LibraryFixture);

  const peer::library::Library& library() const { return lib; }
  peer::RequestServer& server() { return *requestServer; }

  // File `index` of the manifest of listed item `itemId`, with the bytes that were hashed.
  kj::Maybe<const FixtureFile&> file(kj::StringPtr itemId, uint32_t index) const {
    KJ_IF_MAYBE (item, lib.find(itemId)) {
      auto& manifest = (*item)->manifest;
      if (index >= manifest.files.size()) return nullptr;
      return files.find(kj::str(itemId, '/', manifest.files[index].path));
    }
    return nullptr;
  }

 private:
  ScratchFolder scratch{"/tmp"_kj, "shoal-fuzz-session-"_kj};  // removed last
  kj::String base = kj::str(scratch.path());
  peer::library::Library lib;
  kj::HashMap<kj::String, FixtureFile> files;  // key: itemId/path
  kj::AutoCloseFd rootFd;
  kj::Own<peer::RequestServer> requestServer;

  static kj::Array<kj::byte> text(kj::StringPtr s, size_t times) {
    kj::Vector<kj::byte> out;
    for (size_t i = 0; i < times; ++i)
      out.addAll(s.asBytes());
    return out.releaseAsArray();
  }
  // Deterministic bytes (xorshift): the same in every process, so digests match the seeds.
  static kj::Array<kj::byte> noise(size_t size, uint64_t seed) {
    auto out = kj::heapArray<kj::byte>(size);
    uint64_t s = 0x9E3779B97F4A7C15ull * (seed + 1);
    for (auto& b : out) {
      s ^= s << 13;
      s ^= s >> 7;
      s ^= s << 17;
      b = kj::byte(s >> 24);
    }
    return out;
  }

  void addFile(kj::StringPtr item, kj::StringPtr path, kj::Array<kj::byte> content) {
    auto relative = kj::str("library/", item, '/', path);
    writeFile(relative, content);
    files.insert(kj::str(item, '/', path), FixtureFile{kj::mv(content), false});
  }
  void makeDir(kj::StringPtr relative) {
    KJ_SYSCALL(mkdir(kj::str(base, '/', relative).cStr(), 0755), relative);
  }
  void makeParents(kj::StringPtr relative) {
    for (size_t i = 0; i < relative.size(); ++i) {
      if (relative[i] != '/') continue;
      auto dir = kj::str(base, '/', relative.slice(0, i));
      if (mkdir(dir.cStr(), 0755) != 0 && errno != EEXIST) KJ_FAIL_SYSCALL("mkdir", errno, dir);
    }
  }
  void writeFile(kj::StringPtr relative, kj::ArrayPtr<const kj::byte> content) {
    makeParents(relative);
    auto full = kj::str(base, '/', relative);
    int fd;
    KJ_SYSCALL(fd = open(full.cStr(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0644),
               full);
    kj::FdOutputStream out{kj::AutoCloseFd(fd)};
    out.write(content.begin(), content.size());
  }
  void makeLink(kj::StringPtr target, kj::StringPtr relative) {
    makeParents(relative);
    KJ_SYSCALL(symlink(target.cStr(), kj::str(base, '/', relative).cStr()), relative);
  }
  // Replaces `relative` (a file or a folder) by a symlink to `target`.
  void swap(kj::StringPtr relative, kj::StringPtr target) {
    shoal::peer::library::test::removeBeneath(AT_FDCWD, kj::str(base, '/', relative));
    makeLink(target, relative);
  }
};

}  // namespace shoal::fuzz
