// A scratch folder under /tmp for the library tests, removed afterwards without ever following a
// symlink (the trees hold links to /etc and to other folders on purpose).
#pragma once

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <kj/debug.h>
#include <kj/io.h>
#include <kj/string.h>
#include <kj/vector.h>
#include <shoal/peer/library/beneath.h>

namespace shoal::peer::library::test {

// rm -rf that unlinks symlinks and never descends through one (test trees hold links to /etc and
// to other folders on purpose); failures are ignored, as befits clean-up.
inline void removeBeneath(int parentFd, kj::StringPtr name) {
  (void)library::removeBeneath(parentFd, name);
}

class TempTree {
 public:
  TempTree() {
    char name[] = "/tmp/shoal-library-XXXXXX";
    KJ_ASSERT(mkdtemp(name) != nullptr, strerror(errno));
    root = kj::str(name);
    int fd;
    KJ_SYSCALL(fd = open(name, O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    dirFd = kj::AutoCloseFd(fd);
  }
  ~TempTree() noexcept { removeBeneath(AT_FDCWD, root); }
  KJ_DISALLOW_COPY(TempTree);

  kj::StringPtr path() const { return root; }
  int fd() const { return dirFd; }
  kj::String at(kj::StringPtr relative) const { return kj::str(root, '/', relative); }

  // Writes `content` to `relative`, creating parent folders; `mode` is applied exactly.
  void write(kj::StringPtr relative, kj::ArrayPtr<const kj::byte> content, mode_t mode = 0644) {
    makeParents(relative);
    auto full = at(relative);
    int fd;
    KJ_SYSCALL(fd = open(full.cStr(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode),
               full);
    kj::FdOutputStream out{kj::AutoCloseFd(fd)};
    out.write(content.begin(), content.size());
    KJ_SYSCALL(fchmod(out.getFd(), mode));
  }
  void write(kj::StringPtr relative, kj::StringPtr content, mode_t mode = 0644) {
    write(relative, content.asBytes(), mode);
  }
  void mkdir(kj::StringPtr relative) {
    makeParents(relative);
    KJ_SYSCALL(::mkdir(at(relative).cStr(), 0755), relative);
  }
  void symlink(kj::StringPtr target, kj::StringPtr relative) {
    makeParents(relative);
    KJ_SYSCALL(::symlink(target.cStr(), at(relative).cStr()), relative);
  }
  void fifo(kj::StringPtr relative) {
    makeParents(relative);
    KJ_SYSCALL(mkfifo(at(relative).cStr(), 0644), relative);
  }
  // Sets mtime to `seconds` since the epoch (ctime moves to now, as the kernel wants).
  void setMtime(kj::StringPtr relative, int64_t seconds) {
    struct timespec times[2] = {{seconds, 0}, {seconds, 0}};
    KJ_SYSCALL(utimensat(AT_FDCWD, at(relative).cStr(), times, AT_SYMLINK_NOFOLLOW), relative);
  }

 private:
  void makeParents(kj::StringPtr relative) {
    for (size_t i = 0; i < relative.size(); ++i) {
      if (relative[i] != '/') continue;
      auto dir = kj::str(root, '/', relative.slice(0, i));
      if (::mkdir(dir.cStr(), 0755) != 0 && errno != EEXIST) KJ_FAIL_SYSCALL("mkdir", errno, dir);
    }
  }

  kj::String root;
  kj::AutoCloseFd dirFd;
};

}  // namespace shoal::peer::library::test
