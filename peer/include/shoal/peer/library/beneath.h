// Opening a file beneath a folder without ever leaving it: no "..", no absolute path, no symlink in
// any component ([MAN-11]; docs/bad-inputs.md #11, 12). openat2(RESOLVE_BENEATH |
// RESOLVE_NO_SYMLINKS), or an openat(O_NOFOLLOW) walk where the kernel lacks it. Failures are
// values, never exceptions.
#pragma once

#include <stdint.h>
#include <sys/types.h>

#include <kj/io.h>
#include <kj/one-of.h>
#include <kj/string.h>
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
// failure, with the path below `dirFd` that failed.
kj::Maybe<kj::String> removeBeneath(int dirFd, kj::StringPtr name);

}  // namespace shoal::peer::library
