// The persistent index cache, <stateDir>/index-cache: (item, path, size, mtime, ctime, inode,
// chunkSize) -> chunk digests, so a restart with an unchanged library re-hashes nothing. Only a
// hint: a corrupt file is ignored, an entry used only while every field matches (docs/bad-inputs.md
// #26).
#pragma once

#include <kj/array.h>
#include <kj/map.h>
#include <kj/string.h>
#include <shoal/codec/digest.h>
#include <shoal/peer/library/item.h>

namespace shoal::peer::library {

// Not thread-safe: one scan uses it at a time (a scan may run on a worker thread).
class IndexCache {
 public:
  static constexpr const char* kFileName = "index-cache";

  IndexCache() = default;
  IndexCache(IndexCache&&) = default;
  IndexCache& operator=(IndexCache&&) = default;
  KJ_DISALLOW_COPY(IndexCache);

  // Loads <stateDir>/index-cache. A missing file gives an empty cache; one that cannot be read or
  // fails any check is logged as a warning, and also gives an empty cache (see problem()).
  static IndexCache load(kj::StringPtr stateDir);

  // Writes <stateDir>/index-cache atomically (temporary file, fsync, rename, fsync of the folder),
  // creating stateDir (mode 0700) if needed. Null on success, else what failed: the cache is an
  // optimisation, so the caller logs it and carries on.
  kj::Maybe<kj::String> save(kj::StringPtr stateDir) const;

  // The digests recorded for this file, if its stat and chunk size still match. Marks the entry
  // as seen by the current scan.
  kj::Maybe<kj::Array<codec::Digest>> find(kj::StringPtr itemId, kj::StringPtr path,
                                           const FileStat& stat, uint32_t chunkSize);
  // Records (or replaces) a file's digests, marked as seen.
  void put(kj::StringPtr itemId, kj::StringPtr path, const FileStat& stat, uint32_t chunkSize,
           kj::ArrayPtr<const codec::Digest> hashes);

  // A scan starts: nothing is seen. After a complete scan, dropUnseen() forgets files that are
  // gone, so the cache never outgrows the library.
  void beginScan();
  void dropUnseen();

  size_t size() const { return entries.size(); }
  // Why the last load() ignored the file, if it did.
  kj::Maybe<kj::StringPtr> problem() const { return loadProblem; }

 private:
  struct Entry {
    kj::String itemId;
    kj::String path;
    FileStat stat;  // device is not compared: it may change across reboots and remounts
    uint32_t chunkSize;
    kj::Array<codec::Digest> hashes;
    bool seen;
  };
  static kj::String keyOf(kj::StringPtr itemId, kj::StringPtr path);
  static kj::Maybe<kj::String> parse(kj::ArrayPtr<const kj::byte> body, IndexCache& into);
  kj::Array<kj::byte> serialise() const;

  kj::HashMap<kj::String, Entry> entries;  // key: itemId + '/' + path (ids hold no '/')
  kj::Maybe<kj::String> loadProblem;
};

}  // namespace shoal::peer::library
