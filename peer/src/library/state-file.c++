#include <shoal/peer/library/state-file.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <kj/debug.h>
#include <kj/io.h>
#include <shoal/codec/digest.h>

namespace shoal::peer::library {

namespace {

constexpr size_t kHeaderBytes = 16 + codec::kDigestBytes;

uint32_t u32At(kj::ArrayPtr<const kj::byte> bytes, size_t offset) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i)
    v |= uint32_t(bytes[offset + i]) << (8 * i);
  return v;
}

kj::Maybe<kj::String> writeAll(int fd, kj::ArrayPtr<const kj::byte> bytes) {
  while (bytes.size() > 0) {
    ssize_t n = write(fd, bytes.begin(), bytes.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return kj::str("write: ", strerror(errno));
    bytes = bytes.slice(n, bytes.size());
  }
  return nullptr;
}

}  // namespace

kj::Maybe<kj::String> saveStateFile(int dirFd, kj::StringPtr name, const StateFileFormat& format,
                                    kj::ArrayPtr<const kj::byte> body) {
  KJ_ASSERT(format.magic.size() == 8);
  kj::byte header[kHeaderBytes] = {};
  memcpy(header, format.magic.begin(), 8);
  for (int b = 0; b < 4; ++b)
    header[8 + b] = kj::byte(format.version >> (8 * b));
  memcpy(header + 16, codec::sha256(body).bytes, codec::kDigestBytes);

  auto tmp = kj::str(name, ".tmp");
  int fd = openat(dirFd, tmp.cStr(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) return kj::str(tmp, ": open: ", strerror(errno));
  kj::AutoCloseFd out(fd);
  kj::Maybe<kj::String> failed = writeAll(out, header);
  if (failed == nullptr) failed = writeAll(out, body);
  if (failed == nullptr && fsync(out) != 0) failed = kj::str("fsync: ", strerror(errno));
  // The rename is the commit point; the folder's fsync makes it durable.
  if (failed == nullptr && renameat(dirFd, tmp.cStr(), dirFd, name.cStr()) != 0) {
    failed = kj::str("rename: ", strerror(errno));
  }
  KJ_IF_MAYBE (f, failed) {
    unlinkat(dirFd, tmp.cStr(), 0);
    return kj::str(name, ": ", *f);
  }
  if (fsync(dirFd) != 0) return kj::str(name, ": fsync of the folder: ", strerror(errno));
  return nullptr;
}

StateFileRead loadStateFile(int dirFd, kj::StringPtr name, const StateFileFormat& format) {
  KJ_ASSERT(format.magic.size() == 8);
  int fd = openat(dirFd, name.cStr(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY);
  if (fd < 0) {
    if (errno == ENOENT) return StateFileMissing{};
    return StateFileRefused{kj::str("open: ", strerror(errno))};
  }
  kj::AutoCloseFd owned(fd);
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || uint64_t(st.st_size) > format.maxBytes) {
    return StateFileRefused{kj::str("not a regular file of at most ", format.maxBytes, " bytes")};
  }
  auto bytes = kj::heapArray<kj::byte>(st.st_size);
  size_t got = 0;
  while (got < bytes.size()) {
    ssize_t n = read(fd, bytes.begin() + got, bytes.size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    got += n;
  }
  if (got != bytes.size()) return StateFileRefused{kj::str("short read")};
  if (bytes.size() < kHeaderBytes) return StateFileRefused{kj::str("shorter than its header")};
  if (memcmp(bytes.begin(), format.magic.begin(), 8) != 0) {
    return StateFileRefused{kj::str("not a ", format.magic, " file")};
  }
  if (u32At(bytes, 8) != format.version) {
    return StateFileRefused{kj::str("version ", u32At(bytes, 8), " unknown")};
  }
  auto body = bytes.slice(kHeaderBytes, bytes.size());
  if (codec::sha256(body).asBytes() != bytes.slice(16, kHeaderBytes)) {
    return StateFileRefused{kj::str("checksum mismatch (truncated or corrupt)")};
  }
  return kj::heapArray(body);
}

}  // namespace shoal::peer::library
