#include <shoal/peer/library/beneath.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>

#include <kj/debug.h>
#include <shoal/codec/path.h>

namespace shoal::peer::library {

kj::StringPtr name(OpenError error) {
  switch (error) {
    case OpenError::badPath: return "badPath";
    case OpenError::notFound: return "notFound";
    case OpenError::symlink: return "symlink";
    case OpenError::outside: return "outside";
    case OpenError::notDirectory: return "notDirectory";
    case OpenError::wrongType: return "wrongType";
    case OpenError::denied: return "denied";
    case OpenError::other: return "other";
  }
  return "unknown";
}

kj::String KJ_STRINGIFY(const OpenFailure& failure) {
  if (failure.errnum == 0) return kj::str(name(failure.error));
  return kj::str(name(failure.error), " (", strerror(failure.errnum), ")");
}

namespace {

// Set once openat2() answered ENOSYS: the kernel will not grow it while we run.
std::atomic<bool> openat2Missing{false};

// RESOLVE_BENEATH can see a concurrent rename or mount and ask to retry; a few tries are enough
// for anything but a deliberate attack, which then gets an error instead of a loop.
constexpr int kRetries = 8;

OpenFailure failureOf(int errnum) {
  switch (errnum) {
    case ENOENT: return {OpenError::notFound, errnum};
    case ELOOP: return {OpenError::symlink, errnum};
    case EXDEV: return {OpenError::outside, errnum};
    case ENOTDIR: return {OpenError::notDirectory, errnum};
    case EISDIR:  // a directory opened for writing
    case ENXIO:   // a FIFO without reader opened for writing, a device without its driver
      return {OpenError::wrongType, errnum};
    case EACCES:
    case EPERM: return {OpenError::denied, errnum};
    default: return {OpenError::other, errnum};
  }
}

// Every open gets these: never follow a final symlink, never leak the fd into a child, never
// become a controlling terminal, never block on a FIFO.
int safeFlags(int flags) {
  return flags | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK;
}

// -1 with errno set, like open(2).
int openat2Beneath(int dirFd, const char* path, int flags, mode_t mode) {
  struct open_how how;
  memset(&how, 0, sizeof(how));
  how.flags = uint64_t(uint32_t(flags));
  how.mode = (flags & O_CREAT) ? mode : 0;  // openat2 refuses a mode without O_CREAT
  how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
  for (int attempt = 0;; ++attempt) {
    int fd = int(syscall(SYS_openat2, dirFd, path, &how, sizeof(how)));
    if (fd >= 0 || (errno != EAGAIN && errno != EINTR) || attempt == kRetries) return fd;
  }
}

int openatRetrying(int dirFd, const char* path, int flags, mode_t mode) {
  for (;;) {
    int fd = openat(dirFd, path, flags, mode);
    if (fd >= 0 || errno != EINTR) return fd;
  }
}

// A symlink met as an intermediate component (O_PATH | O_NOFOLLOW) or as a final one with
// O_DIRECTORY shows as ENOTDIR; report it as what it is.
OpenFailure refineNotDir(int dirFd, const char* component, int errnum) {
  struct stat st;
  if (errnum == ENOTDIR && fstatat(dirFd, component, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
      S_ISLNK(st.st_mode)) {
    return failureOf(ELOOP);
  }
  return failureOf(errnum);
}

// The fallback: each directory opened with O_NOFOLLOW relative to the fd of its parent, so a
// component swapped for a symlink at any moment is refused, never followed. The path passed
// checkPath(): no "..", no empty component, not absolute.
OpenResult walkBeneath(int dirFd, kj::StringPtr path, int flags, mode_t mode) {
  kj::AutoCloseFd current;
  int at = dirFd;
  size_t start = 0;
  for (;;) {
    KJ_IF_MAYBE (slash, path.slice(start).findFirst('/')) {
      auto component = kj::heapString(path.slice(start, start + *slash));
      int fd =
          openatRetrying(at, component.cStr(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC, 0);
      if (fd < 0) return refineNotDir(at, component.cStr(), errno);
      current = kj::AutoCloseFd(fd);
      at = fd;
      start += *slash + 1;
    } else {
      break;
    }
  }
  int fd = openatRetrying(at, path.slice(start).cStr(), safeFlags(flags), mode);
  if (fd < 0) return refineNotDir(at, path.slice(start).cStr(), errno);
  return kj::AutoCloseFd(fd);
}

OpenResult viaOpenat2(int dirFd, kj::StringPtr path, int flags, mode_t mode) {
  if (path.size() >= PATH_MAX) {
    // One call takes at most PATH_MAX - 1 bytes, and [MAN-6] allows paths of 4096: resolve a
    // leading part to a folder first. Both steps stay beneath, the second one beneath a folder
    // that is itself beneath.
    size_t cut = PATH_MAX - 1;
    while (cut > 0 && path[cut] != '/')
      --cut;
    KJ_ASSERT(cut > 0, "checkPath() let a component above PATH_MAX through");
    auto head = kj::heapString(path.slice(0, cut));
    int fd = openat2Beneath(dirFd, head.cStr(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC, 0);
    if (fd < 0) return failureOf(errno);
    kj::AutoCloseFd folder(fd);
    return viaOpenat2(folder, path.slice(cut + 1), flags, mode);
  }
  int fd = openat2Beneath(dirFd, path.cStr(), safeFlags(flags), mode);
  if (fd < 0) return failureOf(errno);
  return kj::AutoCloseFd(fd);
}

// The type check after the open: only now do we know what the path named.
OpenResult checkType(kj::AutoCloseFd fd, int flags) {
  struct stat st;
  if (fstat(fd, &st) != 0) return failureOf(errno);
  bool wantDirectory = (flags & O_DIRECTORY) != 0;
  if (wantDirectory ? !S_ISDIR(st.st_mode) : !S_ISREG(st.st_mode)) {
    return OpenFailure{OpenError::wrongType, 0};
  }
  if (!(flags & O_NONBLOCK)) {
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) != 0) return failureOf(errno);
  }
  return kj::mv(fd);
}

}  // namespace

bool kernelHasOpenat2() {
  // A probe that needs no file: an empty open_how on an empty path fails with ENOENT where the
  // call exists, ENOSYS where it does not.
  struct open_how how;
  memset(&how, 0, sizeof(how));
  int fd = int(syscall(SYS_openat2, AT_FDCWD, "", &how, sizeof(how)));
  if (fd >= 0) close(fd);
  return fd >= 0 || errno != ENOSYS;
}

OpenResult openBeneath(int dirFd, kj::StringPtr relativePath, int flags, Resolver resolver,
                       mode_t createMode, const codec::Limits& limits) {
  if (codec::checkPath(relativePath, limits) != nullptr) return OpenFailure{OpenError::badPath, 0};

  OpenResult result = OpenFailure{OpenError::other, ENOSYS};
  bool tryOpenat2 =
      resolver == Resolver::openat2 ||
      (resolver == Resolver::automatic && !openat2Missing.load(std::memory_order_relaxed));
  if (tryOpenat2) {
    result = viaOpenat2(dirFd, relativePath, flags, createMode);
    KJ_IF_MAYBE (f, result.tryGet<OpenFailure>()) {
      if (f->errnum == ENOSYS) {
        if (resolver == Resolver::openat2) return result;
        openat2Missing.store(true, std::memory_order_relaxed);
        KJ_LOG(WARNING, "openat2() unavailable; opening files by an O_NOFOLLOW walk instead");
        result = walkBeneath(dirFd, relativePath, flags, createMode);
      } else if (f->errnum == ENOTDIR) {
        // openat2 cannot tell a symlink from a file on the way; the walk (just as safe) can.
        result = walkBeneath(dirFd, relativePath, flags, createMode);
      }
    }
  } else {
    result = walkBeneath(dirFd, relativePath, flags, createMode);
  }

  KJ_IF_MAYBE (fd, result.tryGet<kj::AutoCloseFd>()) {
    return checkType(kj::mv(*fd), flags);
  }
  return result;
}

}  // namespace shoal::peer::library
