#include <shoal/peer/download/partial-item.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <kj/debug.h>
#include <kj/hash.h>
#include <kj/map.h>
#include <shoal/codec/frame.h>
#include <shoal/mutant.h>
#include <shoal/peer/library/beneath.h>
#include <shoal/peer/library/state-file.h>

namespace shoal::peer::download {

namespace {

using library::StateFileFormat;

// The manifest file's body: the manifest digest, then the Manifest frames that carry it.
constexpr StateFileFormat kManifestFile{"SHOALMAN"_kj, 1, uint64_t(2) << 30};
// The progress file's body: the manifest digest, u64le chunk count, the ChunkSet's bytes.
constexpr StateFileFormat kProgressFile{"SHOALPRG"_kj, 1, (uint64_t(1) << 30) + 64};
constexpr kj::StringPtr kPartial = "partial"_kj;
constexpr kj::StringPtr kItem = "item"_kj;
// Files held open for writing at once; chunks come mostly in file order, so few are needed.
constexpr size_t kMaxOpenFiles = 32;
// Above this many files one syncfs() makes them durable instead of one fsync() each.
constexpr size_t kSyncEachFileUpTo = 64;

kj::String keyOf(kj::StringPtr itemId) {
  return codec::toHex(codec::sha256(itemId.asBytes()));
}

void putU64(kj::Vector<kj::byte>& out, uint64_t v) {
  for (int i = 0; i < 8; ++i)
    out.add(kj::byte(v >> (8 * i)));
}

uint64_t u64At(kj::ArrayPtr<const kj::byte> bytes, size_t offset) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i)
    v |= uint64_t(bytes[offset + i]) << (8 * i);
  return v;
}

kj::Maybe<kj::AutoCloseFd> openDir(int parentFd, kj::StringPtr name) {
  int fd = openat(parentFd, name.cStr(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return nullptr;
  return kj::AutoCloseFd(fd);
}

// The manifest frames of a manifest file's body, assembled and verified as if a peer sent them.
kj::OneOf<codec::Manifest, kj::String> parseManifest(kj::StringPtr itemId,
                                                     kj::ArrayPtr<const kj::byte> body) {
  if (body.size() < codec::kDigestBytes) return kj::str("too short");
  auto stored = KJ_ASSERT_NONNULL(codec::Digest::from(body.slice(0, codec::kDigestBytes)));
  codec::FrameDecoder decoder{codec::Limits()};
  codec::ManifestAssembler assembler(itemId);
  auto rest = body.slice(codec::kDigestBytes, body.size());
  while (rest.size() > 0 || !assembler.isComplete()) {
    auto space = decoder.writable();
    size_t n = kj::min(space.size(), rest.size());
    memcpy(space.begin(), rest.begin(), n);
    decoder.commit(n);
    rest = rest.slice(n, rest.size());
    for (;;) {
      KJ_IF_MAYBE (result, decoder.next()) {
        KJ_IF_MAYBE (f, result->tryGet<codec::Failure>()) {
          return kj::str("frame: ", f->message);
        }
        auto& frame = result->get<codec::InboundFrame>();
        if (!frame.root().isManifest()) return kj::str("not a manifest page");
        KJ_IF_MAYBE (f, assembler.feed(frame.root().getManifest())) {
          return kj::mv(f->message);
        }
      } else {
        break;
      }
    }
    if (n == 0 && rest.size() == 0 && !assembler.isComplete()) return kj::str("incomplete");
  }
  if (decoder.finish() != nullptr) return kj::str("trailing bytes");
  auto manifest = assembler.take();
  if (manifest.digest != stored) return kj::str("digest differs from the one recorded");
  return kj::mv(manifest);
}

kj::Array<kj::byte> manifestBody(const codec::Manifest& manifest) {
  kj::Vector<kj::byte> out;
  out.addAll(manifest.digest.asBytes());
  for (auto& page : codec::manifestPages(1, manifest, codec::Limits().maxFrameBytes)) {
    out.addAll(codec::encodeFrame(*page));
  }
  return out.releaseAsArray();
}

}  // namespace

// --- open files ----------------------------------------------------------------------------------

// The files being written, opened on demand beneath item/ and kept open up to kMaxOpenFiles (the
// least recently used closed first). A writer holds its file by reference while writing, so a
// file closed from the cache by another thread stays open until that write ends.
class PartialItem::OpenFiles {
 public:
  struct File : public kj::AtomicRefcounted {
    explicit File(kj::AutoCloseFd fd) : fd(kj::mv(fd)) {}
    kj::AutoCloseFd fd;
  };

  explicit OpenFiles(const PartialItem& item) : item(item) {}

  kj::OneOf<kj::Own<const File>, DiskFailure> get(uint32_t index) {
    auto lock = state.lockExclusive();
    ++lock->clock;
    KJ_IF_MAYBE (entry, lock->open.find(index)) {
      entry->lastUse = lock->clock;
      return kj::atomicAddRef(*entry->file);
    }
    auto& path = item.manifest.files[index].path;
    auto opened = library::openBeneath(item.itemFd, path, O_RDWR);
    KJ_IF_MAYBE (failure, opened.tryGet<library::OpenFailure>()) {
      return DiskFailure{kj::str(item.itemPath, '/', path, ": open: ", *failure)};
    }
    if (lock->open.size() >= kMaxOpenFiles) {
      uint32_t oldest = 0;
      uint64_t oldestUse = UINT64_MAX;
      for (auto& e : lock->open) {
        if (e.value.lastUse < oldestUse) {
          oldest = e.key;
          oldestUse = e.value.lastUse;
        }
      }
      lock->open.erase(oldest);
    }
    kj::Own<const File> file = kj::atomicRefcounted<File>(kj::mv(opened.get<kj::AutoCloseFd>()));
    auto ref = kj::atomicAddRef(*file);
    lock->open.insert(index, Entry{kj::mv(file), lock->clock});
    return kj::mv(ref);
  }

  void closeAll() { state.lockExclusive()->open = {}; }

 private:
  struct Entry {
    kj::Own<const File> file;
    uint64_t lastUse;
  };
  struct State {
    kj::HashMap<uint32_t, Entry> open;
    uint64_t clock = 0;
  };
  const PartialItem& item;
  kj::MutexGuarded<State> state;
};

// --- load
// ------------------------------------------------------------------------------------------

namespace {

// The chunks the progress file in `dir` records for `manifest`, or why it does not count.
kj::OneOf<ChunkSet, kj::String> loadProgress(int dir, const codec::Manifest& manifest) {
  uint64_t count = manifest.chunks.size();
  KJ_SWITCH_ONEOF(library::loadStateFile(dir, "progress", kProgressFile)) {
    KJ_CASE_ONEOF(body, kj::Array<kj::byte>) {
      if (body.size() >= codec::kDigestBytes + 8 &&
          body.slice(0, codec::kDigestBytes) == manifest.digest.asBytes() &&
          u64At(body, codec::kDigestBytes) == count) {
        KJ_IF_MAYBE (set,
                     ChunkSet::fromBytes(count, body.slice(codec::kDigestBytes + 8, body.size()))) {
          return kj::mv(*set);
        }
      }
      return kj::str("not the progress of its manifest");
    }
    KJ_CASE_ONEOF(missing, library::StateFileMissing) {
      (void)missing;
      return ChunkSet(count);
    }
    KJ_CASE_ONEOF(refused, library::StateFileRefused) {
      return kj::mv(refused.why);
    }
  }
  KJ_UNREACHABLE;
}

}  // namespace

PartialState PartialItem::load(const Folders& folders, kj::StringPtr itemId) {
  PartialState state;
  auto key = keyOf(itemId);
  kj::Maybe<kj::AutoCloseFd> partial;
  KJ_IF_MAYBE (root, openDir(folders.stateFd, kPartial)) {
    partial = openDir(*root, key);
  }
  if (partial == nullptr) return state;  // nothing left by an earlier run
  int dir = KJ_ASSERT_NONNULL(partial).get();
  auto where = kj::str(folders.stateDir, '/', kPartial, '/', key);
  KJ_SWITCH_ONEOF(library::loadStateFile(dir, "manifest", kManifestFile)) {
    KJ_CASE_ONEOF(body, kj::Array<kj::byte>) {
      KJ_SWITCH_ONEOF(parseManifest(itemId, body)) {
        KJ_CASE_ONEOF(manifest, codec::Manifest) {
          state.manifest = kj::mv(manifest);
        }
        KJ_CASE_ONEOF(why, kj::String) {
          state.problem = kj::str(where, "/manifest ignored: ", why);
          return state;
        }
      }
    }
    KJ_CASE_ONEOF(missing, library::StateFileMissing) {
      (void)missing;
      return state;
    }
    KJ_CASE_ONEOF(refused, library::StateFileRefused) {
      state.problem = kj::str(where, "/manifest ignored: ", refused.why);
      return state;
    }
  }
  auto& manifest = KJ_ASSERT_NONNULL(state.manifest);
  KJ_SWITCH_ONEOF(loadProgress(dir, manifest)) {
    KJ_CASE_ONEOF(chunks, ChunkSet) {
      state.claimed = kj::mv(chunks);
    }
    KJ_CASE_ONEOF(why, kj::String) {
      state.claimed = ChunkSet(manifest.chunks.size());
      state.problem = kj::str(where, "/progress ignored: ", why);
    }
  }
  return state;
}

// --- prepare -------------------------------------------------------------------------------------

namespace {

// Where the finished item will go must be free, must not be our own state folder, and must be on
// the state folder's filesystem (the final move is a rename).
kj::Maybe<kj::String> checkTarget(const Folders& folders, kj::StringPtr itemId) {
  if (itemId.startsWith(".")) {
    return kj::str("item '", itemId,
                   "': names starting with '.' are not items here (the state folder is one)");
  }
  struct stat state, library, existing;
  if (fstat(folders.stateFd, &state) != 0 || fstat(folders.libraryFd, &library) != 0) {
    return kj::str(folders.stateDir, ": stat: ", strerror(errno));
  }
  if (state.st_dev != library.st_dev) {
    return kj::str("the state folder ", folders.stateDir, " and the library ", folders.libraryDir,
                   " are on different filesystems: a finished item is moved into the library "
                   "by a rename, which needs one filesystem");
  }
  if (fstatat(folders.libraryFd, itemId.cStr(), &existing, AT_SYMLINK_NOFOLLOW) == 0) {
    if (existing.st_dev == state.st_dev && existing.st_ino == state.st_ino) {
      return kj::str("item '", itemId, "' names the state folder ", folders.stateDir,
                     " on this filesystem");
    }
    return kj::str(folders.libraryDir, '/', itemId, " already exists in the library");
  }
  if (errno != ENOENT) return kj::str(folders.libraryDir, '/', itemId, ": stat: ", strerror(errno));
  return nullptr;
}

// Creates the folders and files of a manifest beneath item/, or reopens them, and makes sure that
// distinct manifest paths are distinct files here: a filesystem that folds case or normalises
// Unicode would otherwise write two files into one. Each folder and file is opened without
// following links, and its (device, inode) must not have been seen under another path.
class TreeBuilder {
 public:
  TreeBuilder(const codec::Manifest& manifest, int itemFd, kj::StringPtr itemPath)
      : manifest(manifest), itemFd(itemFd), itemPath(itemPath) {}

  kj::Maybe<DiskFailure> build() {
    for (uint32_t i = 0; i < manifest.files.size(); ++i) {
      KJ_IF_MAYBE (failure, addFile(i)) {
        return kj::mv(*failure);
      }
    }
    return nullptr;
  }

 private:
  struct Inode {
    uint64_t device;
    uint64_t number;
    bool operator==(const Inode& other) const {
      return device == other.device && number == other.number;
    }
    kj::uint hashCode() const { return kj::hashCode(device, number); }
  };
  struct Seen {
    uint32_t file;    // the first path that reached this inode: file `file`'s path...
    uint32_t length;  // ...cut to this length (a folder on the way, or the whole path)
  };
  struct OpenFolder {
    size_t end;  // the folder is path[0, end) of the current file
    kj::AutoCloseFd fd;
  };
  const codec::Manifest& manifest;
  int itemFd;
  kj::StringPtr itemPath;
  kj::HashMap<Inode, Seen> seen;
  kj::Vector<OpenFolder> folders;  // the folders of the previous path, outermost first
  uint32_t previous = 0;

  DiskFailure failed(kj::StringPtr path, kj::StringPtr what, int errnum) {
    return {kj::str(itemPath, '/', path, ": ", what, ": ", strerror(errnum))};
  }

  kj::Maybe<DiskFailure> collision(kj::StringPtr path, const Seen& first) {
    auto other = manifest.files[first.file].path.slice(0, first.length);
    return DiskFailure{kj::str("item '", manifest.itemId, "': '", path, "' and '", other,
                               "' name the same file on this filesystem (it folds case or "
                               "normalises Unicode), so the item cannot be stored here")};
  }

  // Records that `path` (file `file`'s path cut to `length`) reached `fd`'s inode.
  kj::Maybe<DiskFailure> claim(int fd, uint32_t file, uint32_t length, bool isFolder) {
    struct stat st;
    auto path = manifest.files[file].path.slice(0, length);
    if (fstat(fd, &st) != 0) return failed(kj::str(path), "stat", errno);
    if (isFolder ? !S_ISDIR(st.st_mode) : !S_ISREG(st.st_mode)) {
      return DiskFailure{kj::str(itemPath, '/', path, ": not a ", isFolder ? "folder" : "file")};
    }
    KJ_IF_MAYBE (first, seen.find(Inode{uint64_t(st.st_dev), uint64_t(st.st_ino)})) {
      // A folder is reached again by every file inside it, under the same name.
      if (isFolder && manifest.files[first->file].path.slice(0, first->length) == path) {
        return nullptr;
      }
      return collision(kj::str(path), *first);
    }
    seen.insert(Inode{uint64_t(st.st_dev), uint64_t(st.st_ino)}, Seen{file, length});
    return nullptr;
  }

  kj::Maybe<DiskFailure> addFile(uint32_t index) {
    auto& info = manifest.files[index];
    kj::StringPtr path = info.path;
    // Keep the open folders the previous path shares with this one.
    auto& prev = manifest.files[previous].path;
    while (folders.size() > 0) {
      size_t end = folders.back().end;
      if (end < path.size() && path[end] == '/' && prev.slice(0, end) == path.slice(0, end)) break;
      folders.removeLast();
    }
    previous = index;
    size_t start = folders.size() == 0 ? 0 : folders.back().end + 1;
    for (;;) {
      KJ_IF_MAYBE (slash, path.slice(start).findFirst('/')) {
        size_t end = start + *slash;
        int parent = folders.size() == 0 ? itemFd : folders.back().fd.get();
        auto name = kj::str(path.slice(start, end));
        if (mkdirat(parent, name.cStr(), 0755) != 0 && errno != EEXIST) {
          return failed(kj::str(path.slice(0, end)), "mkdir", errno);
        }
        int fd = openat(parent, name.cStr(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0) return failed(kj::str(path.slice(0, end)), "open folder", errno);
        folders.add(OpenFolder{end, kj::AutoCloseFd(fd)});
        KJ_IF_MAYBE (failure, claim(fd, index, uint32_t(end), true)) {
          return kj::mv(*failure);
        }
        start = end + 1;
      } else {
        break;
      }
    }
    int parent = folders.size() == 0 ? itemFd : folders.back().fd.get();
    auto name = kj::str(path.slice(start));
    int fd =
        openat(parent, name.cStr(), O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK, 0600);
    if (fd < 0) return failed(path, "create", errno);
    kj::AutoCloseFd file(fd);
    KJ_IF_MAYBE (failure, claim(file, index, uint32_t(path.size()), false)) {
      return kj::mv(*failure);
    }
    return preallocate(file, path, info.size);
  }

  // Space for the whole file now, so that a full disk fails the download at its start, not at
  // 99 %. A file left longer by an earlier run is cut to size.
  kj::Maybe<DiskFailure> preallocate(int fd, kj::StringPtr path, uint64_t size) {
    struct stat st;
    if (fstat(fd, &st) != 0) return failed(path, "stat", errno);
    if (uint64_t(st.st_size) > size && ftruncate(fd, off_t(size)) != 0) {
      return failed(path, "truncate", errno);
    }
    if (size == 0) return nullptr;
    if (fallocate(fd, 0, 0, off_t(size)) != 0) {
      if (errno != EOPNOTSUPP && errno != ENOSYS) {
        return failed(path, kj::str("preallocating ", size, " bytes"), errno);
      }
      if (ftruncate(fd, off_t(size)) != 0) return failed(path, "truncate", errno);
    }
    return nullptr;
  }
};

}  // namespace

kj::OneOf<kj::Own<PartialItem>, DiskFailure> PartialItem::prepare(const Folders& folders,
                                                                  const codec::Manifest& manifest) {
  KJ_IF_MAYBE (why, checkTarget(folders, manifest.itemId)) {
    return DiskFailure{kj::mv(*why)};
  }
  auto key = keyOf(manifest.itemId);
  auto where = kj::str(folders.stateDir, '/', kPartial, '/', key);
  auto fail = [&](kj::StringPtr what, int errnum) {
    return DiskFailure{kj::str(where, ": ", what, ": ", strerror(errnum))};
  };
  if (mkdirat(folders.stateFd, kPartial.cStr(), 0700) != 0 && errno != EEXIST) {
    return fail("mkdir", errno);
  }
  auto root = openDir(folders.stateFd, kPartial);
  if (root == nullptr) return fail("open", errno);
  auto& rootFd = KJ_ASSERT_NONNULL(root);

  // An earlier run's state is kept only when it is for this very manifest.
  bool reuse = false;
  KJ_IF_MAYBE (existing, openDir(rootFd, key)) {
    auto recorded = library::loadStateFile(*existing, "manifest", kManifestFile);
    KJ_IF_MAYBE (body, recorded.tryGet<kj::Array<kj::byte>>()) {
      reuse = body->size() >= codec::kDigestBytes &&
              body->slice(0, codec::kDigestBytes) == manifest.digest.asBytes();
    }
  }
  if (!reuse) {
    KJ_IF_MAYBE (failure, library::removeBeneath(rootFd, key)) {
      return DiskFailure{kj::str(folders.stateDir, '/', kPartial, '/', *failure)};
    }
    if (mkdirat(rootFd, key.cStr(), 0700) != 0) return fail("mkdir", errno);
  }
  auto partial = openDir(rootFd, key);
  if (partial == nullptr) return fail("open", errno);
  auto& partialFd = KJ_ASSERT_NONNULL(partial);
  if (!reuse) {
    // The manifest first: a folder without one is never resumed, whatever else it holds.
    KJ_IF_MAYBE (failure, library::saveStateFile(partialFd, "manifest", kManifestFile,
                                                 manifestBody(manifest))) {
      return DiskFailure{kj::str(where, '/', *failure)};
    }
  }
  if (mkdirat(partialFd, kItem.cStr(), 0755) != 0 && errno != EEXIST) {
    return fail("mkdir item", errno);
  }
  auto item = openDir(partialFd, kItem);
  if (item == nullptr) return fail("open item", errno);
  auto itemPath = kj::str(where, '/', kItem);
  TreeBuilder tree(manifest, KJ_ASSERT_NONNULL(item), itemPath);
  KJ_IF_MAYBE (failure, tree.build()) {
    return kj::mv(*failure);
  }
  return kj::heap<PartialItem>(Token{}, folders, manifest, kj::mv(key), kj::mv(rootFd),
                               kj::mv(partialFd), kj::mv(KJ_ASSERT_NONNULL(item)));
}

PartialItem::PartialItem(Token, const Folders& folders, const codec::Manifest& manifest,
                         kj::String key, kj::AutoCloseFd partialRoot, kj::AutoCloseFd partial,
                         kj::AutoCloseFd item)
    : manifest(manifest),
      key(kj::mv(key)),
      itemPath(kj::str(folders.stateDir, '/', kPartial, '/', this->key, '/', kItem)),
      libraryFd(dup(folders.libraryFd)),
      partialRoot(kj::mv(partialRoot)),
      partialFd(kj::mv(partial)),
      itemFd(kj::mv(item)),
      files(kj::heap<OpenFiles>(*this)) {
  KJ_ASSERT(libraryFd.get() >= 0, "dup", strerror(errno));
}

PartialItem::~PartialItem() noexcept(false) {}

DiskFailure PartialItem::failure(kj::StringPtr path, kj::StringPtr what, int errnum) const {
  return {kj::str(itemPath, '/', path, ": ", what, ": ", strerror(errnum))};
}

// --- chunks --------------------------------------------------------------------------------------

kj::OneOf<PartialItem::Verdict, DiskFailure> PartialItem::writeChunk(
    const ChunkWrite& where, kj::ArrayPtr<const kj::byte> data) {
  KJ_ASSERT(where.chunk < manifest.chunks.size() && where.file < manifest.files.size());
  // [CHK-7]: not a byte reaches the file before the whole chunk matches the manifest.
  if (codec::sha256(data) != manifest.chunks[where.chunk] && !isMutant(Mutant::skipsChunkCheck)) {
    return Verdict::corrupt;
  }
  KJ_ASSERT(where.offset + data.size() <= manifest.files[where.file].size);
  auto opened = files->get(where.file);
  KJ_IF_MAYBE (f, opened.tryGet<DiskFailure>()) {
    return kj::mv(*f);
  }
  auto& file = *opened.get<kj::Own<const OpenFiles::File>>();
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n =
        pwrite(file.fd, data.begin() + done, data.size() - done, off_t(where.offset + done));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      int e = n < 0 ? errno : EIO;
      return failure(manifest.files[where.file].path, kj::str("write at ", where.offset + done), e);
    }
    done += size_t(n);
  }
  return Verdict::written;
}

kj::OneOf<bool, DiskFailure> PartialItem::checkChunk(const action::CheckChunk& check) {
  KJ_ASSERT(check.chunk < manifest.chunks.size() && check.file < manifest.files.size());
  auto opened = files->get(check.file);
  KJ_IF_MAYBE (f, opened.tryGet<DiskFailure>()) {
    return kj::mv(*f);
  }
  auto& file = *opened.get<kj::Own<const OpenFiles::File>>();
  auto buffer = kj::heapArray<kj::byte>(check.length);
  size_t done = 0;
  while (done < buffer.size()) {
    ssize_t n =
        pread(file.fd, buffer.begin() + done, buffer.size() - done, off_t(check.offset + done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return failure(manifest.files[check.file].path, "read", errno);
    if (n == 0) return false;  // shorter than the manifest says: not this chunk
    done += size_t(n);
  }
  return codec::sha256(buffer) == manifest.chunks[check.chunk];
}

kj::Maybe<DiskFailure> PartialItem::saveProgress(const ChunkSet& chunks) {
  KJ_ASSERT(chunks.size() == manifest.chunks.size());
  kj::Vector<kj::byte> body;
  body.addAll(manifest.digest.asBytes());
  putU64(body, chunks.size());
  body.addAll(chunks.bytes());
  KJ_IF_MAYBE (failure, library::saveStateFile(partialFd, "progress", kProgressFile, body)) {
    return DiskFailure{kj::str(itemPath.slice(0, itemPath.size() - kItem.size()), *failure)};
  }
  return nullptr;
}

// --- completion ----------------------------------------------------------------------------------

kj::OneOf<kj::Own<const library::Item>, DiskFailure> PartialItem::complete() {
  files->closeAll();
  bool each = manifest.files.size() <= kSyncEachFileUpTo;
  auto stats = kj::heapArrayBuilder<library::FileStat>(manifest.files.size());
  for (auto& info : manifest.files) {
    auto opened = library::openBeneath(itemFd, info.path, O_RDONLY);
    KJ_IF_MAYBE (f, opened.tryGet<library::OpenFailure>()) {
      return DiskFailure{kj::str(itemPath, '/', info.path, ": open: ", *f)};
    }
    auto& fd = opened.get<kj::AutoCloseFd>();
    if (fchmod(fd, mode_t(info.mode)) != 0) return failure(info.path, "chmod", errno);
    if (each && fsync(fd) != 0) return failure(info.path, "fsync", errno);
    // After the last change (the chmod): the rename below moves the folder, not the files, so
    // this is the stat the library's scan will see.
    struct stat st;
    if (fstat(fd, &st) != 0) return failure(info.path, "fstat", errno);
    stats.add(library::FileStat::of(st));
  }
  if (each) {
    // The folders' entries too: a file whose name is not durable is not there after a crash.
    kj::Vector<kj::String> folders;
    for (auto& info : manifest.files) {
      for (size_t i = 0; i < info.path.size(); ++i) {
        if (info.path[i] != '/') continue;
        auto folder = kj::str(info.path.slice(0, i));
        if (folders.size() == 0 || folders.back() != folder) folders.add(kj::mv(folder));
      }
    }
    for (auto& folder : folders) {
      auto opened = library::openBeneath(itemFd, folder, O_RDONLY | O_DIRECTORY);
      KJ_IF_MAYBE (f, opened.tryGet<library::OpenFailure>()) {
        return DiskFailure{kj::str(itemPath, '/', folder, ": open: ", *f)};
      }
      if (fsync(opened.get<kj::AutoCloseFd>()) != 0) return failure(folder, "fsync", errno);
    }
    if (fsync(itemFd) != 0) return failure(".", "fsync", errno);
  } else if (syncfs(itemFd) != 0) {
    return failure(".", "syncfs", errno);
  }
  // The commit point: the item appears in the library whole, or not at all ([CHK-11]).
  if (renameat2(partialFd, kItem.cStr(), libraryFd, manifest.itemId.cStr(), RENAME_NOREPLACE) !=
      0) {
    int e = errno;
    auto target = kj::str("moving ", itemPath, " into the library as '", manifest.itemId, "'");
    if (e == EEXIST) return DiskFailure{kj::str(target, ": an entry of that name appeared")};
    return DiskFailure{kj::str(target, ": ", strerror(e))};
  }
  if (fsync(libraryFd) != 0) {
    return DiskFailure{kj::str("the library folder: fsync: ", strerror(errno))};
  }
  // What is left (manifest, progress) is no longer needed; failing to remove it costs only space.
  KJ_IF_MAYBE (failure, library::removeBeneath(partialRoot, key)) {
    KJ_LOG(WARNING, "the finished download's partial folder was not removed", *failure);
  }
  fsync(partialRoot);
  return library::newItem(manifest.clone(), stats.finish());
}

}  // namespace shoal::peer::download
