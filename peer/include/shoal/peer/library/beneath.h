// Opening a file beneath a folder without ever leaving it: no "..", no absolute path, no symlink in
// any component ([MAN-11]; docs/bad-inputs.md #11, 12). openat2(RESOLVE_BENEATH |
// RESOLVE_NO_SYMLINKS), or an openat(O_NOFOLLOW) walk where the kernel lacks it. Failures are
// values, never exceptions.
#pragma once

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <kj/io.h>
#include <kj/one-of.h>
#include <kj/string.h>
#include <kj/vector.h>
#include <shoal/codec/limits.h>

namespace shoal::peer::library {

enum class OpenError : uint8_t {
  badPath,       // the path breaks codec::checkPath(); it never reached the kernel
  notFound,      // ENOENT
  symlink,       // a symlink on the way or at the end (ELOOP)
  outside,       // resolution would leave the directory (EXDEV)
  notDirectory,  // a component on the way is not a directory (ENOTDIR)
  wrongType,     // not a regular file (or not a directory when O_DIRECTORY asked for one)
  denied,        // EACCES, EPERM
  other,         // any other errno (EIO, EMFILE, ...)
};

struct OpenFailure {
  OpenError error;
  int errnum;  // the errno behind it; 0 for badPath and wrongType
};

kj::StringPtr name(OpenError error);
kj::String KJ_STRINGIFY(const OpenFailure& failure);

using OpenResult = kj::OneOf<kj::AutoCloseFd, OpenFailure>;

enum class Resolver : uint8_t {
  automatic,  // openat2(); the walk only where the kernel lacks it (ENOSYS)
  openat2,  // openat2() or nothing: OpenError::other with ENOSYS where the kernel lacks it (tests)
  walk,     // always the component-by-component walk (tests, old kernels)
};

// Whether this kernel has openat2(2) (Linux 5.6 and later, unless a seccomp filter hides it).
bool kernelHasOpenat2();

// Opens `relativePath` (checked with codec::checkPath first) beneath `dirFd`. `flags` are open(2)
// flags: an access mode, optionally O_DIRECTORY (then the target must be a directory, otherwise it
// must be a regular file) and O_CREAT/O_EXCL/O_TRUNC (with `createMode`). O_NOFOLLOW and O_CLOEXEC
// are always added. The open itself never blocks on a FIFO: the type is checked before the fd is
// returned, and O_NONBLOCK is cleared again unless the caller asked for it.
OpenResult openBeneath(int dirFd, kj::StringPtr relativePath, int flags,
                       Resolver resolver = Resolver::automatic, mode_t createMode = 0600,
                       const codec::Limits& limits = codec::Limits());

// Removes `name` beneath `dirFd` and everything below it without ever following a symlink: a link
// is removed, never what it points to. Null when it is gone (or was never there), else the first
// failure, with the path below `dirFd` that failed. Inline, so that the test trees and fixtures
// of other layers (conformance) use it without linking the library.
inline kj::Maybe<kj::String> removeBeneath(int dirFd, kj::StringPtr name) {
  struct stat st;
  if (fstatat(dirFd, name.cStr(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
    if (errno == ENOENT) return nullptr;
    return kj::str(name, ": stat: ", strerror(errno));
  }
  if (!S_ISDIR(st.st_mode)) {
    if (unlinkat(dirFd, name.cStr(), 0) != 0 && errno != ENOENT) {
      return kj::str(name, ": unlink: ", strerror(errno));
    }
    return nullptr;
  }
  int fd = openat(dirFd, name.cStr(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return kj::str(name, ": open: ", strerror(errno));
  DIR* dir = fdopendir(fd);
  if (dir == nullptr) {
    int e = errno;
    close(fd);
    return kj::str(name, ": opendir: ", strerror(e));
  }
  KJ_DEFER(closedir(dir));
  // Names first: removing entries while reading a folder may skip some.
  kj::Vector<kj::String> names;
  while (struct dirent* e = readdir(dir)) {
    kj::StringPtr child = e->d_name;
    if (child != "." && child != "..") names.add(kj::str(child));
  }
  for (auto& child : names) {
    KJ_IF_MAYBE (failure, removeBeneath(dirfd(dir), child)) {
      return kj::str(name, '/', *failure);
    }
  }
  if (unlinkat(dirFd, name.cStr(), AT_REMOVEDIR) != 0 && errno != ENOENT) {
    return kj::str(name, ": rmdir: ", strerror(errno));
  }
  return nullptr;
}

}  // namespace shoal::peer::library
