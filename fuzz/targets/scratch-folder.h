// A scratch folder for one fuzzing process: <parent>/<prefix>XXXXXX, holding an `owner` file with
// the process id. A crashed run (an abort skips destructors) leaves its folder behind: the next
// process removes every such folder whose owner is gone. Removal never follows a symlink.
#pragma once

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include <kj/debug.h>
#include <kj/string.h>
#include <kj/vector.h>
#include <shoal/peer/library/beneath.h>

namespace shoal::fuzz {

class ScratchFolder {
 public:
  ScratchFolder(kj::StringPtr parent, kj::StringPtr prefix) {
    sweepOrphans(parent, prefix);
    auto name = kj::str(parent, '/', prefix, "XXXXXX");
    KJ_ASSERT(mkdtemp(name.begin()) != nullptr, strerror(errno));
    base = kj::mv(name);
    auto owner = kj::str(base, "/owner");
    int fd = open(owner.cStr(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    KJ_ASSERT(fd >= 0, owner, strerror(errno));
    auto pid = kj::str(getpid());
    KJ_ASSERT(write(fd, pid.begin(), pid.size()) == ssize_t(pid.size()));
    close(fd);
  }
  ~ScratchFolder() noexcept { (void)peer::library::removeBeneath(AT_FDCWD, base); }
  KJ_DISALLOW_COPY(ScratchFolder);

  kj::StringPtr path() const { return base; }

  static void sweepOrphans(kj::StringPtr parent, kj::StringPtr prefix) {
    DIR* dir = opendir(parent.cStr());
    if (dir == nullptr) return;
    kj::Vector<kj::String> orphans;
    while (struct dirent* e = readdir(dir)) {
      kj::StringPtr name = e->d_name;
      if (!name.startsWith(prefix)) continue;
      char owner[32] = {};
      int fd = open(kj::str(parent, '/', name, "/owner").cStr(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
      if (fd < 0) continue;
      ssize_t n = read(fd, owner, sizeof(owner) - 1);
      close(fd);
      pid_t pid = n > 0 ? pid_t(atoi(owner)) : 0;
      if (pid > 0 && kill(pid, 0) != 0 && errno == ESRCH) orphans.add(kj::str(name));
    }
    closedir(dir);
    for (auto& name : orphans)
      (void)peer::library::removeBeneath(AT_FDCWD, kj::str(parent, '/', name));
  }

 private:
  kj::String base;
};

}  // namespace shoal::fuzz
