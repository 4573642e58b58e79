// Libraries the harness writes on disk for a launched target to serve ({library}), and the
// description of what a conforming target must then list: which items, which files, what bytes.
// Only regular files and folders with valid names count; the rest is there to be left out.
#pragma once

#include <stdint.h>

#include <kj/array.h>
#include <kj/string.h>
#include <kj/vector.h>

namespace shoal::conformance {

struct FixtureFile {
  kj::String path;  // relative to the item
  kj::Array<kj::byte> content;
};

struct FixtureItem {
  kj::String itemId;
  kj::Vector<FixtureFile> files;  // ascending bytewise by path

  kj::Maybe<const FixtureFile&> file(kj::StringPtr path) const;
};

enum class FixtureKind : uint8_t {
  standard,  // a few items with every kind of entry a target must list or leave out
  paging,    // enough items and files that 64 KiB frames need several pages
  empty,     // no items at all
};

class Fixture {
 public:
  // Writes `kind` under `dir` (which must exist and be empty).
  static Fixture write(kj::StringPtr dir, FixtureKind kind);

  // Items a conforming target lists, ascending bytewise by itemId.
  kj::ArrayPtr<const FixtureItem> items() const { return listed; }
  kj::Maybe<const FixtureItem&> item(kj::StringPtr itemId) const;
  // Top-level names present on disk that must not be listed, with the rule that excludes each.
  kj::ArrayPtr<const kj::String> leftOut() const { return excluded; }
  kj::StringPtr dir() const { return root; }

  // Changes on disk after the target started (for change notification and stale cases).
  void addItem(kj::StringPtr itemId, kj::StringPtr path, kj::ArrayPtr<const kj::byte> content);
  void overwrite(kj::StringPtr itemId, kj::StringPtr path, kj::ArrayPtr<const kj::byte> content);
  void replaceWithSymlink(kj::StringPtr itemId, kj::StringPtr path, kj::StringPtr target);

 private:
  kj::String root;
  kj::Vector<FixtureItem> listed;
  kj::Vector<kj::String> excluded;
  void file(kj::StringPtr item, kj::StringPtr path, kj::ArrayPtr<const kj::byte> content);
  void sort();
};

// Writes `content` to `path`, creating parent folders.
void writeFile(kj::StringPtr path, kj::ArrayPtr<const kj::byte> content);
// The whole file at `path` (not following a symlink), or null when it cannot be read.
kj::Maybe<kj::Array<kj::byte>> readFile(kj::StringPtr path);
// Whether anything (file, folder, symlink) is at `path`.
bool pathExists(kj::StringPtr path);
// The regular files under `dir`, recursively and without following symlinks, as full paths.
kj::Array<kj::String> filesUnder(kj::StringPtr dir);
// A fresh folder under `parent` (mkdtemp).
kj::String makeTempDir(kj::StringPtr parent, kj::StringPtr prefix);
// Deletes a tree; never follows symlinks.
void removeTree(kj::StringPtr path);

}  // namespace shoal::conformance
