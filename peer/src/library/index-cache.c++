#include <shoal/peer/library/index-cache.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <capnp/serialize.h>
#include <kj/debug.h>
#include <shoal/codec/manifest.h>
#include <shoal/codec/path.h>
#include <shoal/peer/library/index-cache.capnp.h>

namespace shoal::peer::library {

namespace {

// File layout: magic, u32le version, u32le zero, SHA-256 of everything after the header, then one
// Cap'n Proto message (standard framing). The checksum catches truncation and torn or flipped
// bytes before a single field is trusted.
constexpr kj::byte kMagic[8] = {'S', 'H', 'O', 'A', 'L', 'I', 'D', 'X'};
constexpr uint32_t kVersion = 1;
constexpr size_t kHeaderBytes = 16 + codec::kDigestBytes;
// A cache for a library at the manifest limits stays far below this; anything larger is not ours.
constexpr uint64_t kMaxFileBytes = uint64_t(1) << 30;

uint32_t u32At(kj::ArrayPtr<const kj::byte> bytes, size_t offset) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i)
    v |= uint32_t(bytes[offset + i]) << (8 * i);
  return v;
}

kj::StringPtr textOf(capnp::Text::Reader text) {
  return kj::StringPtr(text.begin(), text.size());
}

// Why `entry` cannot be ours, or null.
kj::Maybe<kj::String> checkEntry(cache::IndexCache::Entry::Reader entry) {
  codec::Limits limits;
  if (codec::checkComponent(textOf(entry.getItemId()), limits) != nullptr) {
    return kj::str("bad item id");
  }
  if (codec::checkPath(textOf(entry.getPath()), limits) != nullptr) return kj::str("bad path");
  uint32_t chunkSize = entry.getChunkSize();
  if (chunkSize < limits.minChunkSize || chunkSize > limits.maxChunkBytes) {
    return kj::str("bad chunk size ", chunkSize);
  }
  if (entry.getSize() > limits.maxFileBytes) return kj::str("bad size");
  if (entry.getHashes().size() != codec::chunkCountFor(entry.getSize(), chunkSize) * 32) {
    return kj::str("hash count does not match the size");
  }
  return nullptr;
}

FileStat statOf(cache::IndexCache::Entry::Reader entry) {
  // The device is not stored: it may change across reboots and remounts.
  return {entry.getSize(), entry.getMtimeNs(), entry.getCtimeNs(), entry.getInode(), 0};
}

kj::Array<codec::Digest> digestsOf(capnp::Data::Reader hashes) {
  auto digests = kj::heapArrayBuilder<codec::Digest>(hashes.size() / codec::kDigestBytes);
  for (size_t i = 0; i < hashes.size(); i += codec::kDigestBytes)
    digests.add(KJ_ASSERT_NONNULL(codec::Digest::from(hashes.slice(i, i + codec::kDigestBytes))));
  return digests.finish();
}

}  // namespace

kj::String IndexCache::keyOf(kj::StringPtr itemId, kj::StringPtr path) {
  return kj::str(itemId, '/', path);
}

kj::Maybe<kj::String> IndexCache::parse(kj::ArrayPtr<const kj::byte> bytes, IndexCache& into) {
  if (bytes.size() < kHeaderBytes) return kj::str("shorter than its header");
  if (memcmp(bytes.begin(), kMagic, sizeof(kMagic)) != 0) return kj::str("not an index cache");
  if (u32At(bytes, 8) != kVersion) return kj::str("version ", u32At(bytes, 8), " unknown");
  auto body = bytes.slice(kHeaderBytes, bytes.size());
  if (codec::sha256(body).asBytes() != bytes.slice(16, kHeaderBytes)) {
    return kj::str("checksum mismatch (truncated or corrupt)");
  }
  if (body.size() % sizeof(capnp::word) != 0) return kj::str("not whole words");
  auto words = kj::heapArray<capnp::word>(body.size() / sizeof(capnp::word));
  memcpy(words.begin(), body.begin(), body.size());

  kj::Maybe<kj::String> problem;
  auto read = [&]() {
    capnp::ReaderOptions options;
    options.traversalLimitInWords = words.size() * 2 + 64;
    options.nestingLimit = 8;
    capnp::FlatArrayMessageReader reader(words, options);
    for (auto entry : reader.getRoot<cache::IndexCache>().getEntries()) {
      KJ_IF_MAYBE (why, checkEntry(entry)) {
        problem = kj::mv(*why);
        return;
      }
      size_t before = into.size();
      into.put(textOf(entry.getItemId()), textOf(entry.getPath()), statOf(entry),
               entry.getChunkSize(), digestsOf(entry.getHashes()));
      if (into.size() == before) {
        problem = kj::str("duplicate entry");
        return;
      }
    }
  };
  KJ_IF_MAYBE (e, kj::runCatchingExceptions(read)) {
    return kj::str("malformed message: ", e->getDescription());
  }
  return problem;
}

IndexCache IndexCache::load(kj::StringPtr stateDir) {
  IndexCache cache;
  auto path = kj::str(stateDir, '/', kFileName);
  kj::Maybe<kj::String> problem;
  int fd = open(path.cStr(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY);
  if (fd < 0) {
    if (errno == ENOENT) return cache;
    problem = kj::str("open: ", strerror(errno));
  } else {
    kj::AutoCloseFd owned(fd);
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || uint64_t(st.st_size) > kMaxFileBytes) {
      problem = kj::str("not a regular file of at most ", kMaxFileBytes, " bytes");
    } else {
      auto bytes = kj::heapArray<kj::byte>(st.st_size);
      size_t got = 0;
      while (got < bytes.size()) {
        ssize_t n = read(fd, bytes.begin() + got, bytes.size() - got);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        got += n;
      }
      problem = got == bytes.size() ? parse(bytes, cache) : kj::str("short read");
    }
  }
  KJ_IF_MAYBE (p, problem) {
    KJ_LOG(WARNING, "index cache ignored, everything will be re-hashed", path, *p);
    cache.entries = {};  // not clear(): kj 0.9.2 memsets a null bucket array when empty
    cache.loadProblem = kj::mv(*p);
  }
  return cache;
}

kj::Array<kj::byte> IndexCache::serialise() const {
  capnp::MallocMessageBuilder message;
  auto list = message.initRoot<cache::IndexCache>().initEntries(kj::uint(entries.size()));
  kj::uint i = 0;
  for (auto& e : entries) {
    auto& v = e.value;
    auto b = list[i++];
    b.setItemId(v.itemId);
    b.setPath(v.path);
    b.setSize(v.stat.size);
    b.setMtimeNs(v.stat.mtimeNs);
    b.setCtimeNs(v.stat.ctimeNs);
    b.setInode(v.stat.inode);
    b.setChunkSize(v.chunkSize);
    auto hashes = b.initHashes(kj::uint(v.hashes.size() * codec::kDigestBytes));
    for (size_t h = 0; h < v.hashes.size(); ++h)
      memcpy(hashes.begin() + h * codec::kDigestBytes, v.hashes[h].bytes, codec::kDigestBytes);
  }
  auto words = capnp::messageToFlatArray(message);
  auto body = words.asBytes();
  auto out = kj::heapArray<kj::byte>(kHeaderBytes + body.size());
  memset(out.begin(), 0, kHeaderBytes);
  memcpy(out.begin(), kMagic, sizeof(kMagic));
  for (int b = 0; b < 4; ++b)
    out[8 + b] = kj::byte(kVersion >> (8 * b));
  memcpy(out.begin() + 16, codec::sha256(body).bytes, codec::kDigestBytes);
  memcpy(out.begin() + kHeaderBytes, body.begin(), body.size());
  return out;
}

kj::Maybe<kj::String> IndexCache::save(kj::StringPtr stateDir) const {
  auto bytes = serialise();
  auto tmp = kj::str(kFileName, ".tmp");
  kj::AutoCloseFd dir;
  KJ_IF_MAYBE (e, kj::runCatchingExceptions([&]() {
                 if (mkdir(stateDir.cStr(), 0700) != 0 && errno != EEXIST) {
                   KJ_FAIL_SYSCALL("mkdir", errno, stateDir);
                 }
                 int fd;
                 KJ_SYSCALL(fd = open(stateDir.cStr(), O_RDONLY | O_DIRECTORY | O_CLOEXEC),
                            stateDir);
                 dir = kj::AutoCloseFd(fd);
                 KJ_SYSCALL(
                     fd = openat(dir, tmp.cStr(),
                                 O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600),
                     tmp);
                 {
                   kj::FdOutputStream out{kj::AutoCloseFd(fd)};
                   out.write(bytes.begin(), bytes.size());
                   KJ_SYSCALL(fsync(out.getFd()));
                 }
                 // The rename is the commit point; the directory fsync makes it durable.
                 KJ_SYSCALL(renameat(dir, tmp.cStr(), dir, kFileName));
                 KJ_SYSCALL(fsync(dir));
               })) {
    if (dir.get() >= 0) unlinkat(dir, tmp.cStr(), 0);
    return kj::str("saving the index cache in ", stateDir, ": ", e->getDescription());
  }
  return nullptr;
}

kj::Maybe<kj::Array<codec::Digest>> IndexCache::find(kj::StringPtr itemId, kj::StringPtr path,
                                                     const FileStat& stat, uint32_t chunkSize) {
  KJ_IF_MAYBE (e, entries.find(keyOf(itemId, path))) {
    auto& s = e->stat;
    if (s.size != stat.size || s.mtimeNs != stat.mtimeNs || s.ctimeNs != stat.ctimeNs ||
        s.inode != stat.inode || e->chunkSize != chunkSize) {
      return nullptr;
    }
    e->seen = true;
    return kj::heapArray(e->hashes.asPtr());
  }
  return nullptr;
}

void IndexCache::put(kj::StringPtr itemId, kj::StringPtr path, const FileStat& stat,
                     uint32_t chunkSize, kj::ArrayPtr<const codec::Digest> hashes) {
  KJ_ASSERT(hashes.size() == codec::chunkCountFor(stat.size, chunkSize));
  Entry entry{kj::str(itemId), kj::str(path), stat, chunkSize, kj::heapArray(hashes), true};
  entries.upsert(keyOf(itemId, path), kj::mv(entry),
                 [](Entry& existing, Entry&& replacement) { existing = kj::mv(replacement); });
}

void IndexCache::beginScan() {
  for (auto& e : entries)
    e.value.seen = false;
}

void IndexCache::dropUnseen() {
  entries.eraseAll([](kj::StringPtr, const Entry& e) { return !e.seen; });
}

}  // namespace shoal::peer::library
