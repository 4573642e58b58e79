// Manifests and library digests at the protocol level (docs/protocol.md "Manifest", "Library
// digest"): the in-memory Manifest and item list, the two normative digests, paging a manifest into
// Manifest frames, and assembling and verifying the pages of one answer on the receiving side.
#pragma once

#include <stdint.h>

#include <capnp/message.h>
#include <kj/array.h>
#include <kj/string.h>
#include <kj/vector.h>
#include <shoal/codec/digest.h>
#include <shoal/codec/error.h>
#include <shoal/codec/frames.h>
#include <shoal/codec/limits.h>
#include <shoal/schema/shoal.capnp.h>

namespace shoal::codec {

constexpr uint32_t kDefaultChunkSize = 1 << 20;

// The assembler refuses manifests announcing more chunks than this unless told otherwise: the
// per-frame limits bound files, not chunks (4 Mi chunks = 128 MiB of hashes, 4 TiB at 1 MiB).
constexpr uint64_t kDefaultMaxManifestChunks = uint64_t(4) << 20;

struct FileInfo {
  kj::String path;  // relative to the item folder, passes checkPath()
  uint64_t size;
  uint32_t mode;  // permission bits only (st_mode & 0777)

  FileInfo clone() const { return {kj::str(path), size, mode}; }
};

// ceil(size / chunkSize); 0 for an empty file.
uint64_t chunkCountFor(uint64_t size, uint32_t chunkSize);

// Chunks [first, first + count) of the manifest's chunk list.
struct ChunkRange {
  uint64_t first;
  uint64_t count;
};

struct Manifest {
  kj::String itemId;
  uint32_t chunkSize = kDefaultChunkSize;
  kj::Array<FileInfo> files;       // strictly ascending by path (bytewise)
  kj::Array<Digest> chunks;        // file 0's chunks, then file 1's, ...
  kj::Array<uint64_t> firstChunk;  // per file: index of its first chunk in `chunks`
  uint64_t totalBytes = 0;
  Digest digest;

  ChunkRange chunkRange(uint32_t file) const;
  kj::ArrayPtr<const Digest> chunksOf(uint32_t file) const;
  // Offset and length of chunk `k` of `file` within that file.
  uint64_t chunkOffset(uint64_t k) const { return k * chunkSize; }
  uint32_t chunkLength(uint32_t file, uint64_t k) const;
  // Index of the file at `path`, by binary search.
  kj::Maybe<uint32_t> fileIndex(kj::StringPtr path) const;

  Manifest clone() const;
};

// Completes a manifest from its parts: computes firstChunk, totalBytes and the digest. The parts
// are our own (a scan, a verified assembly): an inconsistency is our bug and asserts.
Manifest makeManifest(kj::String itemId, uint32_t chunkSize, kj::Array<FileInfo> files,
                      kj::Array<Digest> chunks);

// The normative manifest digest ("shoal-manifest-v1").
Digest manifestDigest(uint32_t chunkSize, kj::ArrayPtr<const FileInfo> files,
                      kj::ArrayPtr<const Digest> chunks);

// A file that is also a directory of another file ("a" and "a/b"), or null. `files` must be
// sorted strictly ascending by path.
kj::Maybe<kj::StringPtr> findPrefixConflict(kj::ArrayPtr<const FileInfo> files);

// One item of a library, as ItemEntry carries it.
struct ItemInfo {
  kj::String itemId;
  kj::String name;
  uint64_t size = 0;
  uint32_t fileCount = 0;
  Digest manifestDigest;

  bool operator==(const ItemInfo& other) const;
  bool operator!=(const ItemInfo& other) const { return !(*this == other); }
  ItemInfo clone() const;
};

// The ItemInfo of `manifest` (name = itemId, the folder name).
ItemInfo itemInfoOf(const Manifest& manifest);

// The normative library digest ("shoal-library-v1"), fed one item at a time so callers need not
// copy their items into one array. Items must come strictly ascending by itemId.
class LibraryHasher {
 public:
  explicit LibraryHasher(uint32_t itemCount);
  void add(const ItemInfo& item);
  Digest finish();

 private:
  Sha256 hash;
  uint32_t expected;
  uint32_t added = 0;
  kj::String previous;
};

Digest libraryDigest(kj::ArrayPtr<const ItemInfo> sorted);

// Conversions to and from the wire (the summary is codec::Summary, summary.h). Readers must come
// from frames that passed validate().
void fillItemEntry(wire::ItemEntry::Builder entry, const ItemInfo& item);
ItemInfo itemInfoOf(wire::ItemEntry::Reader entry);

// Paging, here and in the library's snapshot and delta pages: entries are counted with the
// estimates below, a list of structs starts with a tag word, and each page keeps a margin for what
// the estimates leave out (codec::encodedSize() has the last word).
constexpr size_t kListTagBytes = 8;
constexpr size_t kPageMarginBytes = 128;
// Bytes an ItemEntry adds to a frame when appended to a list (for paging with a margin).
size_t itemEntryBytes(const ItemInfo& item);
// Bytes a Text of `bytes` bytes adds to a frame when appended to a List(Text).
size_t listTextBytes(size_t bytes);
// An empty message for a page of about `expectedBytes`: its first segment holds the whole page,
// so the frame stays single-segment.
kj::Own<capnp::MallocMessageBuilder> newPage(size_t expectedBytes);

// The Manifest answer to GetManifest{requestId}: pages numbered from 0, each at most
// `maxFrameBytes` on the wire, files and hashes paged independently and contiguously.
// `maxFrameBytes` must leave room for a page header plus one file entry (any peer's announced
// limit does: kMinFrameBytes).
kj::Array<FrameBuilder> manifestPages(uint64_t requestId, const Manifest& manifest,
                                      uint32_t maxFrameBytes);

// Receives the pages of one Manifest answer and verifies the whole before handing it out: page
// order, contiguity of files and hashes, repeated fields unchanged, paths strictly ascending across
// pages, no file that is also a directory, counts and sizes adding up, and the recomputed digest
// equal to the announced one. Pages must come from frames that passed validate(). Memory grows
// only with what the pages carry, bounded by the announced counts (fileCount by
// Limits::maxFilesPerManifest, chunkCount by `maxChunks`).
class ManifestAssembler {
 public:
  explicit ManifestAssembler(kj::StringPtr itemId, const Limits& limits = Limits(),
                             uint64_t maxChunks = kDefaultMaxManifestChunks);
  KJ_DISALLOW_COPY(ManifestAssembler);

  // Null when the page was accepted. After a failure every later page fails too.
  kj::Maybe<Failure> feed(wire::Manifest::Reader page);

  bool isComplete() const { return complete; }
  // The verified manifest; only once isComplete().
  Manifest take();

 private:
  struct Header {
    uint64_t id;
    Digest digest;
    uint32_t chunkSize;
    uint32_t fileCount;
    uint64_t chunkCount;
    uint64_t totalBytes;
  };
  kj::Maybe<Failure> header(wire::Manifest::Reader page);
  kj::Maybe<Failure> addFiles(wire::Manifest::Reader page);
  kj::Maybe<Failure> addHashes(wire::Manifest::Reader page);
  kj::Maybe<Failure> finish();
  kj::Maybe<Failure> failWith(CodecError error, kj::String message);

  kj::String itemId;
  Limits limits;
  uint64_t maxChunks;
  kj::Maybe<Header> announced;
  uint32_t nextPage = 0;
  kj::Vector<FileInfo> files;
  kj::Vector<Digest> chunks;
  uint64_t sizeSum = 0;
  uint64_t chunksForFiles = 0;  // sum of chunkCountFor() over the files received
  bool complete = false;
  bool failed = false;
  bool taken = false;
};

}  // namespace shoal::codec
