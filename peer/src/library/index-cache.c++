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
#include <shoal/peer/library/state-file.h>

namespace shoal::peer::library {

namespace {

// The file is a state file (state-file.h) whose body is one Cap'n Proto message.
constexpr StateFileFormat kFormat{"SHOALIDX"_kj, 1,
                                  // A cache for a library at the manifest limits stays far below.
                                  uint64_t(1) << 30};

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

kj::Maybe<kj::String> IndexCache::parse(kj::ArrayPtr<const kj::byte> body, IndexCache& into) {
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
  kj::Maybe<kj::String> problem;
  int fd = open(stateDir.cStr(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return cache;
    problem = kj::str("open: ", strerror(errno));
  } else {
    kj::AutoCloseFd dir(fd);
    KJ_SWITCH_ONEOF(loadStateFile(dir, kFileName, kFormat)) {
      KJ_CASE_ONEOF(body, kj::Array<kj::byte>) {
        problem = parse(body, cache);
      }
      KJ_CASE_ONEOF(missing, StateFileMissing) {
        (void)missing;
        return cache;
      }
      KJ_CASE_ONEOF(refused, StateFileRefused) {
        problem = kj::mv(refused.why);
      }
    }
  }
  KJ_IF_MAYBE (p, problem) {
    KJ_LOG(WARNING, "index cache ignored, everything will be re-hashed",
           kj::str(stateDir, '/', kFileName), *p);
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
  return kj::heapArray(capnp::messageToFlatArray(message).asBytes());
}

kj::Maybe<kj::String> IndexCache::save(kj::StringPtr stateDir) const {
  if (mkdir(stateDir.cStr(), 0700) != 0 && errno != EEXIST) {
    return kj::str("saving the index cache in ", stateDir, ": mkdir: ", strerror(errno));
  }
  int fd = open(stateDir.cStr(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return kj::str("saving the index cache in ", stateDir, ": open: ", strerror(errno));
  kj::AutoCloseFd dir(fd);
  KJ_IF_MAYBE (failure, saveStateFile(dir, kFileName, kFormat, serialise())) {
    return kj::str("saving the index cache in ", stateDir, ": ", *failure);
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
