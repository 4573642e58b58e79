// What the tests of Download (the KJ driver) share: a GMock DownloadSources, chunk and manifest
// answers as the decoded frames a session would deliver, and a library + state folder in a temp
// tree with a check of what reached the library.
#pragma once

#include <fcntl.h>
#include <gmock/gmock.h>
#include <shoal/peer/download/download.h>
#include <unistd.h>

#include "../library/temp-tree.h"
#include "core-harness.h"

namespace shoal::peer::download::test {

using OnPage = kj::Maybe<kj::Function<void(const codec::InboundFrame&)>>;

class MockSources : public DownloadSources {
 public:
  MOCK_METHOD(kj::Array<Source>, sources, (kj::StringPtr itemId), (override));
  MOCK_METHOD(kj::Promise<Reply>, request,
              (SourceKey source, codec::FrameBuilder frame, OnPage onPage), (override));
  MOCK_METHOD(void, misbehaved, (SourceKey source, kj::StringPtr message), (override));
};

inline codec::InboundFrame decoded(capnp::MessageBuilder& message) {
  auto bytes = codec::encodeFrame(message);
  auto result = codec::decodeFrame(bytes);
  return kj::mv(result.get<codec::InboundFrame>());
}

// The Chunk frame answering a GetChunk of `item` (not yet decoded), `corrupt` with a flipped byte.
inline codec::FrameBuilder chunkMessage(const TestItem& item, uint32_t file, uint64_t offset,
                                        uint32_t length, bool corrupt = false) {
  auto message = codec::newFrame();
  auto chunk = codec::rootOf(*message).initChunk();
  chunk.setId(1);
  auto bytes = item.chunkBytes(file, offset, length);
  auto data = chunk.initData(bytes.size());
  memcpy(data.begin(), bytes.begin(), bytes.size());
  if (corrupt) data[0] ^= 0x5a;
  return message;
}

// The library and state folders of a download, in a temp tree.
struct DownloadFolders {
  library::test::TempTree tree;
  kj::String libraryDir = tree.at("library");
  kj::String stateDir = tree.at("library/.shoal");
  kj::AutoCloseFd library, state;

  DownloadFolders() {
    tree.mkdir("library/.shoal");
    library = openDir(libraryDir);
    state = openDir(stateDir);
  }

  Folders folders() const { return Folders{state, stateDir, library, libraryDir}; }

  static kj::AutoCloseFd openDir(kj::StringPtr path) {
    int fd = open(path.cStr(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    KJ_ASSERT(fd >= 0, path);
    return kj::AutoCloseFd(fd);
  }

  // File `file` of the item as it is in the library, or null when it is not there.
  kj::Array<kj::byte> libraryFile(const TestItem& item, uint32_t file) const {
    auto path = kj::str(libraryDir, "/item/", item.manifest.files[file].path);
    int fd = open(path.cStr(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return nullptr;
    kj::AutoCloseFd owned(fd);
    auto bytes = kj::heapArray<kj::byte>(item.manifest.files[file].size);
    if (::read(fd, bytes.begin(), bytes.size()) != ssize_t(bytes.size())) return nullptr;
    return bytes;
  }
  bool libraryHas(const TestItem& item) const {
    for (uint32_t f = 0; f < item.manifest.files.size(); ++f) {
      if (libraryFile(item, f) != item.files[f].asPtr()) return false;
    }
    return true;
  }
};

}  // namespace shoal::peer::download::test
