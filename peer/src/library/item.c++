#include <shoal/peer/library/item.h>

#include <errno.h>
#include <fcntl.h>
#include <string.h>

#include <kj/debug.h>

namespace shoal::peer::library {

bool FileStat::operator==(const FileStat& other) const {
  return size == other.size && mtimeNs == other.mtimeNs && ctimeNs == other.ctimeNs &&
         inode == other.inode && device == other.device;
}

FileStat FileStat::of(const struct stat& st) {
  auto ns = [](const struct timespec& t) {
    return int64_t(t.tv_sec) * 1000000000 + t.tv_nsec;
  };
  return {uint64_t(st.st_size), ns(st.st_mtim), ns(st.st_ctim), uint64_t(st.st_ino),
          uint64_t(st.st_dev)};
}

Item::Item(codec::Manifest manifest, kj::Array<FileStat> stats)
    : info(codec::itemInfoOf(manifest)), manifest(kj::mv(manifest)), stats(kj::mv(stats)) {
  KJ_ASSERT(this->stats.size() == this->manifest.files.size(), "one stat per file");
}

kj::Own<const Item> newItem(codec::Manifest manifest, kj::Array<FileStat> stats) {
  return kj::atomicRefcounted<Item>(kj::mv(manifest), kj::mv(stats));
}

kj::Maybe<kj::String> Item::checkUnchanged(uint32_t index, int fd) const {
  KJ_ASSERT(index < stats.size());
  struct stat st;
  if (fstat(fd, &st) != 0) return kj::str("fstat: ", strerror(errno));
  if (!S_ISREG(st.st_mode)) return kj::str("no longer a regular file");
  if (FileStat::of(st) != stats[index]) return kj::str("changed since it was hashed");
  return nullptr;
}

namespace {

FileRefusal refusal(kj::StringPtr what, const OpenFailure& failure) {
  // Gone, replaced by a symlink or by something else: the manifest no longer describes the
  // folder. Anything else is our side failing.
  bool ours = failure.error == OpenError::other || failure.error == OpenError::denied ||
              failure.error == OpenError::badPath;
  return {ours ? wire::ErrorCode::INTERNAL : wire::ErrorCode::STALE, kj::str(what, ": ", failure)};
}

}  // namespace

kj::OneOf<kj::AutoCloseFd, FileRefusal> Item::openFile(int rootFd, uint32_t index,
                                                       Resolver resolver) const {
  KJ_ASSERT(index < manifest.files.size());
  auto& path = manifest.files[index].path;
  // Two steps, so that a path at the limits (64 components, 4096 bytes) stays within them.
  auto folder = openBeneath(rootFd, info.itemId, O_RDONLY | O_DIRECTORY, resolver);
  KJ_IF_MAYBE (failure, folder.tryGet<OpenFailure>()) {
    return refusal(info.itemId, *failure);
  }
  auto opened = openBeneath(folder.get<kj::AutoCloseFd>(), path, O_RDONLY, resolver);
  KJ_IF_MAYBE (failure, opened.tryGet<OpenFailure>()) {
    return refusal(path, *failure);
  }
  auto fd = kj::mv(opened.get<kj::AutoCloseFd>());
  KJ_IF_MAYBE (why, checkUnchanged(index, fd)) {
    return FileRefusal{wire::ErrorCode::STALE, kj::str(path, ": ", *why)};
  }
  return kj::mv(fd);
}

}  // namespace shoal::peer::library
