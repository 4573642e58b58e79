#include <shoal/codec/manifest.h>

#include <algorithm>

#include <kj/debug.h>
#include <shoal/codec/frame.h>
#include <shoal/mutant.h>

namespace shoal::codec {

namespace {

// The digest domain tags include their terminating NUL: the spec's "then one 0x00".
constexpr char kManifestTag[] = "shoal-manifest-v1";
constexpr char kLibraryTag[] = "shoal-library-v1";

kj::StringPtr textOf(capnp::Text::Reader text) {
  return kj::StringPtr(text.begin(), text.size());
}

void hashText(Sha256& hash, kj::StringPtr text) {
  hash.updateU32(uint32_t(text.size()));
  hash.update(text.asArray());
}

}  // namespace

uint64_t chunkCountFor(uint64_t size, uint32_t chunkSize) {
  KJ_ASSERT(chunkSize > 0);
  return size / chunkSize + (size % chunkSize != 0 ? 1 : 0);
}

ChunkRange Manifest::chunkRange(uint32_t file) const {
  KJ_ASSERT(file < files.size());
  return {firstChunk[file], chunkCountFor(files[file].size, chunkSize)};
}

kj::ArrayPtr<const Digest> Manifest::chunksOf(uint32_t file) const {
  auto range = chunkRange(file);
  return chunks.slice(range.first, range.first + range.count);
}

uint32_t Manifest::chunkLength(uint32_t file, uint64_t k) const {
  uint64_t size = files[file].size;
  KJ_ASSERT(k * chunkSize < size, "chunk index past the end of the file");
  return uint32_t(kj::min(uint64_t(chunkSize), size - k * chunkSize));
}

kj::Maybe<uint32_t> Manifest::fileIndex(kj::StringPtr path) const {
  auto it = std::lower_bound(files.begin(), files.end(), path,
                             [](const FileInfo& f, kj::StringPtr p) { return f.path < p; });
  if (it == files.end() || it->path != path) return nullptr;
  return uint32_t(it - files.begin());
}

Manifest Manifest::clone() const {
  return {kj::str(itemId), chunkSize, KJ_MAP(f, files){return f.clone();
}
, kj::heapArray(chunks.asPtr()), kj::heapArray(firstChunk.asPtr()), totalBytes, digest
};  // namespace shoal::codec
}

Manifest makeManifest(kj::String itemId, uint32_t chunkSize, kj::Array<FileInfo> files,
                      kj::Array<Digest> chunks) {
  auto first = kj::heapArrayBuilder<uint64_t>(files.size());
  uint64_t next = 0, total = 0;
  for (size_t i = 0; i < files.size(); ++i) {
    KJ_ASSERT(i == 0 || files[i - 1].path < files[i].path, "files not sorted", files[i].path);
    first.add(next);
    next += chunkCountFor(files[i].size, chunkSize);
    total += files[i].size;
  }
  KJ_ASSERT(next == chunks.size(), "chunk count does not match the file sizes", next,
            chunks.size());
  Digest digest = manifestDigest(chunkSize, files, chunks);
  return {kj::mv(itemId), chunkSize, kj::mv(files), kj::mv(chunks), first.finish(), total, digest};
}

Digest manifestDigest(uint32_t chunkSize, kj::ArrayPtr<const FileInfo> files,
                      kj::ArrayPtr<const Digest> chunks) {
  KJ_ASSERT(files.size() <= UINT32_MAX);
  Sha256 hash;
  hash.update(kj::arrayPtr(kManifestTag, sizeof(kManifestTag)));
  hash.updateU32(chunkSize);
  hash.updateU32(uint32_t(files.size()));
  uint64_t next = 0;
  for (auto& file : files) {
    hashText(hash, file.path);
    hash.updateU64(file.size);
    hash.updateU32(file.mode);
    uint64_t count = chunkCountFor(file.size, chunkSize);
    KJ_ASSERT(next + count <= chunks.size(), "fewer chunk digests than the file sizes need");
    for (auto& chunk : chunks.slice(next, next + count))
      hash.update(chunk.asBytes());
    next += count;
  }
  KJ_ASSERT(next == chunks.size(), "more chunk digests than the file sizes need");
  return hash.finish();
}

kj::Maybe<kj::StringPtr> findPrefixConflict(kj::ArrayPtr<const FileInfo> files) {
  // Every path that starts with P sorts right after P, but "P-x" or "P.x" may come before "P/x":
  // search for the first path >= "P/" after P instead of looking at the neighbour only.
  kj::Vector<char> key;
  for (size_t i = 0; i < files.size(); ++i) {
    auto path = files[i].path.asPtr();
    key.clear();
    key.addAll(path);
    key.add('/');
    key.add('\0');  // StringPtr(begin, size) wants a terminator after the content
    kj::StringPtr keyPtr(key.begin(), key.size() - 1);
    auto rest = files.slice(i + 1, files.size());
    auto it = std::lower_bound(rest.begin(), rest.end(), keyPtr,
                               [](const FileInfo& f, kj::StringPtr k) { return f.path < k; });
    if (it != rest.end() && it->path.startsWith(keyPtr)) return path;
  }
  return nullptr;
}

bool ItemInfo::operator==(const ItemInfo& other) const {
  return itemId == other.itemId && name == other.name && size == other.size &&
         fileCount == other.fileCount && manifestDigest == other.manifestDigest;
}

ItemInfo ItemInfo::clone() const {
  return {kj::str(itemId), kj::str(name), size, fileCount, manifestDigest};
}

ItemInfo itemInfoOf(const Manifest& manifest) {
  return {kj::str(manifest.itemId), kj::str(manifest.itemId), manifest.totalBytes,
          uint32_t(manifest.files.size()), manifest.digest};
}

LibraryHasher::LibraryHasher(uint32_t itemCount) : expected(itemCount) {
  hash.update(kj::arrayPtr(kLibraryTag, sizeof(kLibraryTag)));
  hash.updateU32(itemCount);
}

void LibraryHasher::add(const ItemInfo& item) {
  KJ_ASSERT(added < expected, "more items than announced");
  KJ_ASSERT(added == 0 || previous < item.itemId, "items not strictly ascending", item.itemId);
  hashText(hash, item.itemId);
  hashText(hash, item.name);
  hash.updateU64(item.size);
  hash.updateU32(item.fileCount);
  hash.update(item.manifestDigest.asBytes());
  previous = kj::str(item.itemId);
  ++added;
}

Digest LibraryHasher::finish() {
  KJ_ASSERT(added == expected, "fewer items than announced", added, expected);
  return hash.finish();
}

Digest libraryDigest(kj::ArrayPtr<const ItemInfo> sorted) {
  KJ_ASSERT(sorted.size() <= UINT32_MAX);
  LibraryHasher hasher(uint32_t(sorted.size()));
  for (auto& item : sorted)
    hasher.add(item);
  return hasher.finish();
}

void fillItemEntry(wire::ItemEntry::Builder entry, const ItemInfo& item) {
  entry.setItemId(item.itemId);
  entry.setName(item.name);
  entry.setSize(item.size);
  entry.setFileCount(item.fileCount);
  entry.setManifestDigest(item.manifestDigest.asBytes());
}

ItemInfo itemInfoOf(wire::ItemEntry::Reader entry) {
  return {kj::str(textOf(entry.getItemId())), kj::str(textOf(entry.getName())), entry.getSize(),
          entry.getFileCount(), KJ_ASSERT_NONNULL(Digest::from(entry.getManifestDigest()))};
}

// ---------------------------------------------------------------------------------------------
// Paging

namespace {

// Wire bytes of a struct's own section, of a Text's content (NUL included) and of Data, as Cap'n
// Proto lays them out: whole words.
template <typename T>
constexpr size_t structBytes() {
  return (size_t(T::_capnpPrivate::dataWordSize) + T::_capnpPrivate::pointerCount) * 8;
}
size_t textBytes(size_t bytes) {
  return (bytes + 1 + 7) / 8 * 8;
}
size_t fileEntryBytes(const FileInfo& file) {
  return structBytes<wire::FileEntry>() + textBytes(file.path.size());
}

wire::Manifest::Builder manifestHeader(capnp::MessageBuilder& message, uint64_t requestId,
                                       const Manifest& manifest, uint32_t page) {
  auto m = message.initRoot<wire::Frame>().initManifest();
  m.setId(requestId);
  m.setItemId(manifest.itemId);
  m.setDigest(manifest.digest.asBytes());
  m.setChunkSize(manifest.chunkSize);
  m.setFileCount(uint32_t(manifest.files.size()));
  m.setChunkCount(manifest.chunks.size());
  m.setTotalBytes(manifest.totalBytes);
  m.setPage(page);
  return m;
}

// Files [fileBegin, fileEnd) and the hashes of chunks [chunkBegin, chunkEnd).
void fillEntries(wire::Manifest::Builder m, const Manifest& manifest, size_t fileBegin,
                 size_t fileEnd, uint64_t chunkBegin, uint64_t chunkEnd) {
  m.setFirstFile(uint32_t(fileBegin));
  if (fileEnd > fileBegin) {
    auto list = m.initFiles(kj::uint(fileEnd - fileBegin));
    for (size_t i = fileBegin; i < fileEnd; ++i) {
      auto entry = list[kj::uint(i - fileBegin)];
      entry.setPath(manifest.files[i].path);
      entry.setSize(manifest.files[i].size);
      entry.setMode(manifest.files[i].mode);
    }
  }
  m.setFirstChunk(chunkBegin);
  if (chunkEnd > chunkBegin) {
    auto hashes = m.initHashes(kj::uint((chunkEnd - chunkBegin) * kDigestBytes));
    for (uint64_t c = chunkBegin; c < chunkEnd; ++c) {
      memcpy(hashes.begin() + (c - chunkBegin) * kDigestBytes, manifest.chunks[c].bytes,
             kDigestBytes);
    }
  }
}

}  // namespace

size_t itemEntryBytes(const ItemInfo& item) {
  return structBytes<wire::ItemEntry>() + textBytes(item.itemId.size()) +
         textBytes(item.name.size()) + kDigestBytes;
}

size_t listTextBytes(size_t bytes) {
  return 8 + textBytes(bytes);  // the list's pointer slot plus the text
}

kj::Own<capnp::MallocMessageBuilder> newPage(size_t expectedBytes) {
  return kj::heap<capnp::MallocMessageBuilder>(kj::uint(expectedBytes / 8 + 16));
}

kj::Array<FrameBuilder> manifestPages(uint64_t requestId, const Manifest& manifest,
                                      uint32_t maxFrameBytes) {
  KJ_ASSERT(manifest.files.size() <= UINT32_MAX);
  size_t headerBytes;
  {
    capnp::MallocMessageBuilder probe;
    manifestHeader(probe, requestId, manifest, UINT32_MAX);
    headerBytes = encodedSize(probe);
  }
  KJ_REQUIRE(maxFrameBytes > headerBytes + kPageMarginBytes + kListTagBytes + kDigestBytes,
             "maxFrameBytes too small for a manifest page", maxFrameBytes);
  size_t budget = maxFrameBytes - headerBytes - kPageMarginBytes;

  auto& files = manifest.files;
  auto& chunks = manifest.chunks;
  kj::Vector<FrameBuilder> pages;
  size_t nextFile = 0;
  uint64_t nextChunk = 0;
  do {
    size_t room = budget;
    size_t fileEnd = nextFile;
    if (nextFile < files.size()) {
      room -= kListTagBytes;
      while (fileEnd < files.size() && fileEntryBytes(files[fileEnd]) <= room)
        room -= fileEntryBytes(files[fileEnd++]);
      KJ_REQUIRE(fileEnd > nextFile, "maxFrameBytes too small for one file entry", maxFrameBytes,
                 files[nextFile].path);
    }
    uint64_t chunkEnd =
        nextChunk + kj::min(uint64_t(room / kDigestBytes), chunks.size() - nextChunk);
    room -= (chunkEnd - nextChunk) * kDigestBytes;

    auto message = newPage(maxFrameBytes - room);
    auto m = manifestHeader(*message, requestId, manifest, uint32_t(pages.size()));
    m.setLast(fileEnd == files.size() && chunkEnd == chunks.size());
    fillEntries(m, manifest, nextFile, fileEnd, nextChunk, chunkEnd);
    KJ_ASSERT(encodedSize(*message) <= maxFrameBytes, "page estimate wrong", encodedSize(*message),
              maxFrameBytes);
    pages.add(kj::mv(message));
    nextFile = fileEnd;
    nextChunk = chunkEnd;
  } while (nextFile < files.size() || nextChunk < chunks.size());
  return pages.releaseAsArray();
}

// ---------------------------------------------------------------------------------------------
// Assembly

ManifestAssembler::ManifestAssembler(kj::StringPtr itemId, const Limits& limits, uint64_t maxChunks)
    : itemId(kj::str(itemId)), limits(limits), maxChunks(maxChunks) {}

kj::Maybe<Failure> ManifestAssembler::failWith(CodecError error, kj::String message) {
  failed = true;
  return fail(error, kj::str("manifest of ", itemId, ": ", message));
}

kj::Maybe<Failure> ManifestAssembler::feed(wire::Manifest::Reader page) {
  if (failed) return fail(CodecError::badField, kj::str("manifest assembly already failed"));
  if (complete) return failWith(CodecError::badCount, kj::str("page after the last page"));
  if (page.getPage() != nextPage) {
    return failWith(CodecError::badField,
                    kj::str("page ", page.getPage(), " where page ", nextPage, " was due"));
  }
  if (!page.getLast() && page.getFiles().size() == 0 && page.getHashes().size() == 0) {
    // [RQ-5]: every page but the last carries an entry; endless empty pages are refused.
    return failWith(CodecError::badCount,
                    kj::str("empty page ", page.getPage(), " before the last"));
  }
  KJ_IF_MAYBE (f, header(page)) {
    return kj::mv(*f);
  }
  KJ_IF_MAYBE (f, addFiles(page)) {
    return kj::mv(*f);
  }
  KJ_IF_MAYBE (f, addHashes(page)) {
    return kj::mv(*f);
  }
  ++nextPage;
  if (page.getLast()) return finish();
  return nullptr;
}

kj::Maybe<Failure> ManifestAssembler::header(wire::Manifest::Reader page) {
  if (textOf(page.getItemId()) != itemId) {
    return failWith(CodecError::badField, kj::str("page for item ", textOf(page.getItemId())));
  }
  Header h{page.getId(),         KJ_ASSERT_NONNULL(Digest::from(page.getDigest())),
           page.getChunkSize(),  page.getFileCount(),
           page.getChunkCount(), page.getTotalBytes()};
  KJ_IF_MAYBE (a, announced) {
    // Every page repeats the header; a change mid-answer means the pages do not belong together.
    if (h.id != a->id || h.digest != a->digest || h.chunkSize != a->chunkSize ||
        h.fileCount != a->fileCount || h.chunkCount != a->chunkCount ||
        h.totalBytes != a->totalBytes) {
      return failWith(CodecError::badField, kj::str("page ", page.getPage(),
                                                    " changes id, digest, chunkSize, "
                                                    "fileCount, chunkCount or totalBytes"));
    }
    return nullptr;
  }
  if (h.chunkSize < limits.minChunkSize || h.chunkSize > limits.maxChunkBytes) {
    return failWith(CodecError::badField, kj::str("chunkSize ", h.chunkSize, " out of range"));
  }
  if (h.chunkCount > maxChunks) {
    return failWith(CodecError::badCount,
                    kj::str("chunkCount ", h.chunkCount, " above the limit ", maxChunks));
  }
  if (h.fileCount > limits.maxFilesPerManifest) {
    return failWith(CodecError::badCount, kj::str("fileCount ", h.fileCount, " above the limit"));
  }
  announced = h;
  return nullptr;
}

kj::Maybe<Failure> ManifestAssembler::addFiles(wire::Manifest::Reader page) {
  auto& a = KJ_ASSERT_NONNULL(announced);
  auto list = page.getFiles();
  if (list.size() == 0) return nullptr;  // firstFile carries nothing then
  if (page.getFirstFile() != files.size()) {
    return failWith(CodecError::badCount,
                    kj::str(page.getFirstFile() < files.size() ? "overlap" : "gap", ": firstFile ",
                            page.getFirstFile(), " after ", files.size(), " files"));
  }
  if (files.size() + list.size() > a.fileCount) {
    return failWith(CodecError::badCount, kj::str("more files than fileCount ", a.fileCount));
  }
  for (auto entry : list) {
    auto path = textOf(entry.getPath());
    // Strictly ascending across pages too: this also refuses a path repeated on a later page.
    if (files.size() > 0 && !(files.back().path < path)) {
      return failWith(CodecError::badField, kj::str("file ", files.size(), " (", path,
                                                    ") not after ", files.back().path));
    }
    uint64_t size = entry.getSize();
    if (size > limits.maxFileBytes || sizeSum + size < sizeSum || sizeSum + size > a.totalBytes) {
      return failWith(CodecError::badCount,
                      kj::str("file sizes exceed totalBytes ", a.totalBytes, " at ", path));
    }
    sizeSum += size;
    chunksForFiles += chunkCountFor(size, a.chunkSize);
    if (chunksForFiles > a.chunkCount) {
      return failWith(CodecError::badCount,
                      kj::str("file sizes need more than chunkCount ", a.chunkCount, " chunks"));
    }
    files.add(FileInfo{kj::str(path), size, entry.getMode()});
  }
  return nullptr;
}

kj::Maybe<Failure> ManifestAssembler::addHashes(wire::Manifest::Reader page) {
  auto& a = KJ_ASSERT_NONNULL(announced);
  auto hashes = page.getHashes();
  if (hashes.size() == 0) return nullptr;
  if (hashes.size() % kDigestBytes != 0) {
    return failWith(CodecError::badDigest, kj::str("hashes of ", hashes.size(), " bytes"));
  }
  if (page.getFirstChunk() != chunks.size()) {
    return failWith(
        CodecError::badCount,
        kj::str(page.getFirstChunk() < chunks.size() ? "overlap" : "gap", ": firstChunk ",
                page.getFirstChunk(), " after ", chunks.size(), " chunks"));
  }
  uint64_t count = hashes.size() / kDigestBytes;
  if (count > a.chunkCount - chunks.size()) {
    return failWith(CodecError::badCount, kj::str("more hashes than chunkCount ", a.chunkCount));
  }
  for (uint64_t i = 0; i < count; ++i) {
    chunks.add(
        KJ_ASSERT_NONNULL(Digest::from(hashes.slice(i * kDigestBytes, (i + 1) * kDigestBytes))));
  }
  return nullptr;
}

kj::Maybe<Failure> ManifestAssembler::finish() {
  auto& a = KJ_ASSERT_NONNULL(announced);
  if (files.size() != a.fileCount) {
    return failWith(CodecError::badCount,
                    kj::str("last page after ", files.size(), " of ", a.fileCount, " files"));
  }
  if (chunks.size() != a.chunkCount) {
    return failWith(CodecError::badCount,
                    kj::str("last page after ", chunks.size(), " of ", a.chunkCount, " hashes"));
  }
  if (chunksForFiles != a.chunkCount) {
    return failWith(CodecError::badCount, kj::str("file sizes need ", chunksForFiles,
                                                  " chunks, chunkCount is ", a.chunkCount));
  }
  if (sizeSum != a.totalBytes) {
    return failWith(CodecError::badCount,
                    kj::str("file sizes add up to ", sizeSum, ", totalBytes is ", a.totalBytes));
  }
  KJ_IF_MAYBE (conflict, findPrefixConflict(files)) {
    return failWith(CodecError::badPath,
                    kj::str("\"", *conflict, "\" is both a file and a directory"));
  }
  // Mutant trustsManifestDigest: the announced digest is believed, never recomputed ([MAN-21]).
  if (!isMutant(Mutant::trustsManifestDigest) &&
      manifestDigest(a.chunkSize, files, chunks) != a.digest) {
    return failWith(CodecError::badDigest, kj::str("digest does not match the content"));
  }
  complete = true;
  return nullptr;
}

Manifest ManifestAssembler::take() {
  KJ_ASSERT(complete && !taken, "manifest not complete, or already taken");
  taken = true;
  auto& a = KJ_ASSERT_NONNULL(announced);
  auto manifest =
      makeManifest(kj::mv(itemId), a.chunkSize, files.releaseAsArray(), chunks.releaseAsArray());
  if (isMutant(Mutant::trustsManifestDigest)) manifest.digest = a.digest;
  KJ_ASSERT(manifest.digest == a.digest);
  return manifest;
}

}  // namespace shoal::codec
