#include <shoal/conformance/fixture.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>

#include <kj/debug.h>
#include <shoal/conformance/source.h>
#include <temp-tree.h>

namespace shoal::conformance {

namespace {

void makeParents(kj::StringPtr path) {
  for (size_t i = 1; i < path.size(); ++i) {
    if (path[i] != '/') continue;
    auto prefix = kj::str(path.slice(0, i));
    if (mkdir(prefix.cStr(), 0755) != 0 && errno != EEXIST) {
      KJ_FAIL_REQUIRE("cannot create a fixture folder", prefix, strerror(errno));
    }
  }
}

kj::ArrayPtr<const kj::byte> text(kj::StringPtr s) {
  return s.asBytes();
}

bool byPath(const FixtureFile& a, const FixtureFile& b) {
  return a.path < b.path;
}

}  // namespace

void writeFile(kj::StringPtr path, kj::ArrayPtr<const kj::byte> content) {
  makeParents(path);
  int fd = open(path.cStr(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
  KJ_REQUIRE(fd >= 0, "cannot write a fixture file", path, strerror(errno));
  KJ_DEFER(close(fd));
  size_t done = 0;
  while (done < content.size()) {
    ssize_t n = write(fd, content.begin() + done, content.size() - done);
    KJ_REQUIRE(n > 0, "cannot write a fixture file", path, strerror(errno));
    done += size_t(n);
  }
}

kj::Maybe<kj::Array<kj::byte>> readFile(kj::StringPtr path) {
  int fd = open(path.cStr(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) return nullptr;
  KJ_DEFER(close(fd));
  kj::Vector<kj::byte> content;
  kj::byte buffer[65536];
  for (;;) {
    ssize_t n = read(fd, buffer, sizeof(buffer));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return nullptr;
    if (n == 0) return content.releaseAsArray();
    content.addAll(kj::arrayPtr(buffer, size_t(n)));
  }
}

bool pathExists(kj::StringPtr path) {
  struct stat st;
  return lstat(path.cStr(), &st) == 0;
}

namespace {
void collectFiles(kj::StringPtr dir, kj::Vector<kj::String>& out) {
  DIR* d = opendir(dir.cStr());
  if (d == nullptr) return;
  KJ_DEFER(closedir(d));
  while (auto* entry = readdir(d)) {
    kj::StringPtr name = entry->d_name;
    if (name == "." || name == "..") continue;
    auto path = kj::str(dir, '/', name);
    struct stat st;
    if (lstat(path.cStr(), &st) != 0) continue;
    if (S_ISDIR(st.st_mode)) {
      collectFiles(path, out);
    } else if (S_ISREG(st.st_mode)) {
      out.add(kj::mv(path));
    }
  }
}
}  // namespace

kj::Array<kj::String> filesUnder(kj::StringPtr dir) {
  kj::Vector<kj::String> out;
  collectFiles(dir, out);
  return out.releaseAsArray();
}

kj::String makeTempDir(kj::StringPtr parent, kj::StringPtr prefix) {
  auto templ = kj::str(parent, "/", prefix, "XXXXXX");
  KJ_REQUIRE(mkdtemp(templ.begin()) != nullptr, "mkdtemp failed", templ, strerror(errno));
  return templ;
}

void removeTree(kj::StringPtr path) {
  peer::library::test::removeBeneath(AT_FDCWD, path);
}

kj::Maybe<const FixtureFile&> FixtureItem::file(kj::StringPtr path) const {
  for (auto& f : files) {
    if (f.path == path) return f;
  }
  return nullptr;
}

kj::Maybe<const FixtureItem&> Fixture::item(kj::StringPtr itemId) const {
  for (auto& i : listed) {
    if (i.itemId == itemId) return i;
  }
  return nullptr;
}

void Fixture::file(kj::StringPtr item, kj::StringPtr path, kj::ArrayPtr<const kj::byte> content) {
  writeFile(kj::str(root, "/", item, "/", path), content);
  // From the back: a batch adds the files of one item after another.
  for (size_t k = listed.size(); k-- > 0;) {
    auto& i = listed[k];
    if (i.itemId == item) {
      i.files.add(FixtureFile{kj::str(path), kj::heapArray(content)});
      return;
    }
  }
  FixtureItem fresh{kj::str(item), {}};
  fresh.files.add(FixtureFile{kj::str(path), kj::heapArray(content)});
  listed.add(kj::mv(fresh));
}

// Sorted once after a batch of file() calls: sorting after each one made the paging fixture
// (1500 items, 1500 files) cost seconds per case.
void Fixture::sort() {
  std::sort(listed.begin(), listed.end(),
            [](const FixtureItem& a, const FixtureItem& b) { return a.itemId < b.itemId; });
  for (auto& i : listed)
    std::sort(i.files.begin(), i.files.end(), byPath);
}

Fixture Fixture::write(kj::StringPtr dir, FixtureKind kind) {
  Fixture f;
  f.root = kj::str(dir);
  switch (kind) {
    case FixtureKind::empty: break;
    case FixtureKind::standard: {
      f.file("alpha", "a.txt", text("hello"));
      KJ_SYSCALL(mkdir(kj::str(dir, "/beta").cStr(), 0755));
      f.listed.add(FixtureItem{kj::str("beta"), {}});
      f.file("gamma", "readme.txt", patternBytes(1000, 1));
      f.file("gamma", "data/level 1/map.bin", patternBytes(300 * 1024 + 17, 2));
      f.file("gamma", "café/été", text("accent"));
      f.file("gamma", ".hidden/x", text("h"));
      f.file("gamma", "a-b", text("dash"));
      f.file("gamma", "a/b", text("slash"));
      f.file("gamma", "empty.bin", nullptr);
      f.file("Zeta", "z.txt", text("upper"));
      f.file("zeta", "z.txt", text("lower"));
      // Entries inside an item that are not regular files ([MAN-12]).
      KJ_SYSCALL(symlink("../../alpha/a.txt", kj::str(dir, "/gamma/link").cStr()));
      KJ_SYSCALL(mkfifo(kj::str(dir, "/gamma/fifo").cStr(), 0644));
      KJ_SYSCALL(mkdir(kj::str(dir, "/gamma/emptydir").cStr(), 0755));
      // Top-level entries that are not items ([LIB-1], [LIB-2], [MAN-15]).
      writeFile(kj::str(dir, "/.dotdir/x"), text("dot"));
      f.excluded.add(kj::str(".dotdir"));
      writeFile(kj::str(dir, "/notes.txt"), text("a file, not a folder"));
      f.excluded.add(kj::str("notes.txt"));
      KJ_SYSCALL(symlink("alpha", kj::str(dir, "/link-item").cStr()));
      f.excluded.add(kj::str("link-item"));
      writeFile(kj::str(dir, "/bad\\name/x"), text("backslash in the item id"));
      f.excluded.add(kj::str("bad\\name"));
      writeFile(kj::str(dir, "/badpath/ok.txt"), text("fine"));
      writeFile(kj::str(dir, "/badpath/back\\slash"), text("a path v1 cannot carry"));
      f.excluded.add(kj::str("badpath"));
      break;
    }
    case FixtureKind::paging: {
      // 1500 items with 200-byte ids: about 6 pages of 64 KiB. One item with 1500 files of long
      // paths and one chunk each: files and hashes both span pages.
      for (int i = 0; i < 1500; ++i) {
        auto id = kj::str("item-", kj::repeat('x', 180), "-", 1000 + i);
        f.file(id, "f", text("x"));
      }
      for (int i = 0; i < 1500; ++i) {
        auto path = kj::str("folder-", kj::repeat('p', 100), "/file-", 1000 + i);
        f.file("many", path, text("y"));
      }
      break;
    }
  }
  f.sort();
  return f;
}

void Fixture::addItem(kj::StringPtr itemId, kj::StringPtr path,
                      kj::ArrayPtr<const kj::byte> content) {
  file(itemId, path, content);
  sort();
}

void Fixture::overwrite(kj::StringPtr itemId, kj::StringPtr path,
                        kj::ArrayPtr<const kj::byte> content) {
  writeFile(kj::str(root, "/", itemId, "/", path), content);
}

void Fixture::replaceWithSymlink(kj::StringPtr itemId, kj::StringPtr path, kj::StringPtr target) {
  auto full = kj::str(root, "/", itemId, "/", path);
  KJ_SYSCALL(unlink(full.cStr()), full);
  KJ_SYSCALL(symlink(target.cStr(), full.cStr()), full);
}

}  // namespace shoal::conformance
