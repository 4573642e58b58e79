// One indexed item: its ItemEntry facts, its manifest, and the stat of every file as it was hashed,
// so that a file changed since can be refused before a byte of it is served (docs/bad-inputs.md
// #27, docs/protocol.md [CHK-3]). Immutable once built; shared by the event loop and scan workers.
#pragma once

#include <stdint.h>
#include <sys/stat.h>

#include <kj/one-of.h>
#include <kj/refcount.h>
#include <shoal/codec/manifest.h>
#include <shoal/peer/library/beneath.h>
#include <shoal/schema/shoal.capnp.h>

namespace shoal::peer::library {

// What identifies a file's content without reading it. ctime is kept besides mtime because mtime
// can be set back (cp -p, touch -d) while ctime cannot.
struct FileStat {
  uint64_t size = 0;
  int64_t mtimeNs = 0;
  int64_t ctimeNs = 0;
  uint64_t inode = 0;
  uint64_t device = 0;

  bool operator==(const FileStat& other) const;
  bool operator!=(const FileStat& other) const { return !(*this == other); }
  static FileStat of(const struct stat& st);
};

// Why a file cannot be served, as the wire code its requester gets.
struct FileRefusal {
  wire::ErrorCode code;  // stale (changed or gone since hashed) or internal (I/O on our side)
  kj::String message;
};

class Item : public kj::AtomicRefcounted {
 public:
  // `stats[i]` is the stat of `manifest.files[i]` when it was hashed.
  Item(codec::Manifest manifest, kj::Array<FileStat> stats);

  kj::StringPtr itemId() const { return info.itemId; }
  kj::Own<const Item> addRef() const { return kj::atomicAddRef(*this); }

  // Opens file `index` for reading, beneath `rootFd` (the library root) at <itemId>/<path>, and
  // checks that it is still the file that was hashed.
  kj::OneOf<kj::AutoCloseFd, FileRefusal> openFile(int rootFd, uint32_t index,
                                                   Resolver resolver = Resolver::automatic) const;

  // Null when `fd` still looks like file `index` as hashed, else why not.
  kj::Maybe<kj::String> checkUnchanged(uint32_t index, int fd) const;

  const codec::ItemInfo info;
  const codec::Manifest manifest;
  const kj::Array<FileStat> stats;
};

kj::Own<const Item> newItem(codec::Manifest manifest, kj::Array<FileStat> stats);

}  // namespace shoal::peer::library
