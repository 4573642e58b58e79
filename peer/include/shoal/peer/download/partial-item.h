// PartialItem: an item being downloaded, on disk. It lives in the state folder, never in the
// library ([CHK-9]), at <state>/partial/<key>/ where key is the hex SHA-256 of the item id (so no
// id, whatever its case or bytes, can name anything else there):
//   manifest   the manifest being downloaded, as the Manifest frames that carried it
//   progress   the chunks verified so far, replaced atomically
//   item/      the files: preallocated, written only with chunks that passed verification
// complete() moves item/ into the library under the item's id with one rename ([CHK-11]).
// docs/downloads.md describes the layout and why it survives a crash at any moment.
//
// Blocking file I/O: used from ChunkWriter's threads (and tests, fuzzers), never from the event
// loop. writeChunk() and checkChunk() may run at the same time on several threads.
#pragma once

#include <stdint.h>

#include <kj/io.h>
#include <kj/mutex.h>
#include <kj/one-of.h>
#include <kj/refcount.h>
#include <shoal/codec/manifest.h>
#include <shoal/peer/download/chunk-set.h>
#include <shoal/peer/download/download-core.h>
#include <shoal/peer/library/item.h>

namespace shoal::peer::download {

// A disk operation that failed: the path, what was done, the errno text. One line.
struct DiskFailure {
  kj::String message;
};

// Where downloads happen: the state folder (partial items) and the library (finished ones). The
// names are for messages; every access goes through the descriptors.
struct Folders {
  int stateFd;
  kj::StringPtr stateDir;
  int libraryFd;
  kj::StringPtr libraryDir;
};

// What an earlier run left for an item.
struct PartialState {
  kj::Maybe<codec::Manifest> manifest;  // verified like a received one
  ChunkSet claimed;                     // recorded as verified; to be checked again [CHK-10]
  kj::Maybe<kj::String> problem;        // why (part of) it was ignored
};

class PartialItem {
 public:
  // Reads what an earlier run left for `itemId`. Nothing is trusted: the manifest is assembled
  // and checked like one from a peer, the progress must name that manifest and pass its checksum;
  // anything else is ignored (and reported in `problem`).
  static PartialState load(const Folders& folders, kj::StringPtr itemId);

  // Creates the partial folder for `manifest` (or reopens the one an earlier run left for this
  // manifest; one for another manifest is removed first), persists the manifest, creates and
  // preallocates every file. Refused: an id starting with '.', an id that names the state folder
  // or anything else already in the library, a state folder on another filesystem than the
  // library, and manifest paths that collide on this filesystem (by case or Unicode
  // normalisation). `manifest` must outlive the PartialItem.
  static kj::OneOf<kj::Own<PartialItem>, DiskFailure> prepare(const Folders& folders,
                                                              const codec::Manifest& manifest);

  // Only prepare() makes one (the token keeps the constructor to it, while kj::heap can call it).
  struct Token {
   private:
    Token() = default;
    friend class PartialItem;
  };
  PartialItem(Token, const Folders& folders, const codec::Manifest& manifest, kj::String key,
              kj::AutoCloseFd partialRoot, kj::AutoCloseFd partial, kj::AutoCloseFd item);
  ~PartialItem() noexcept(false);
  KJ_DISALLOW_COPY(PartialItem);

  enum class Verdict : uint8_t { written, corrupt };
  // Verifies `data` against the manifest's hash of `where.chunk` and only then writes it at
  // `where.offset` of its file ([CHK-7]). Corrupt: nothing was written.
  kj::OneOf<Verdict, DiskFailure> writeChunk(const ChunkWrite& where,
                                             kj::ArrayPtr<const kj::byte> data);
  // Reads chunk `check.chunk` back and verifies it: true if it is intact.
  kj::OneOf<bool, DiskFailure> checkChunk(const action::CheckChunk& check);
  // Persists `chunks` as the progress (state file: temporary file, fsync, rename).
  kj::Maybe<DiskFailure> saveProgress(const ChunkSet& chunks);
  // Every file gets its mode and is made durable, then item/ is renamed to <library>/<itemId>
  // (never replacing anything) and the library folder made durable; the partial folder is then
  // removed. After a failure the partial state is still there, complete, for another attempt.
  // Answers the item as it now is in the library: the manifest (every chunk of it verified) and
  // each file's stat after its last change, so the library need not hash it again.
  kj::OneOf<kj::Own<const library::Item>, DiskFailure> complete();

  // Where the files are being written (for messages and tests).
  kj::StringPtr itemDir() const { return itemPath; }

 private:
  class OpenFiles;

  const codec::Manifest& manifest;
  kj::String key;
  kj::String itemPath;  // <state>/partial/<key>/item
  kj::AutoCloseFd libraryFd;
  kj::AutoCloseFd partialRoot;  // <state>/partial
  kj::AutoCloseFd partialFd;    // <state>/partial/<key>
  kj::AutoCloseFd itemFd;       // <state>/partial/<key>/item
  kj::Own<OpenFiles> files;

  DiskFailure failure(kj::StringPtr path, kj::StringPtr what, int errnum) const;
};

}  // namespace shoal::peer::download
