// Synthetic items and frame helpers for the Library and LibraryView tests: no disk involved.
#pragma once

#include <gtest/gtest.h>
#include <kj/vector.h>
#include <shoal/codec/frame.h>
#include <shoal/peer/library/item.h>

namespace shoal::peer::library::test {

// An item whose manifest depends only on (id, version): same inputs, same digest.
inline kj::Own<const Item> makeItem(kj::StringPtr id, uint64_t version, uint32_t files = 2) {
  auto list = kj::heapArrayBuilder<codec::FileInfo>(files);
  kj::Vector<codec::Digest> chunks;
  for (uint32_t i = 0; i < files; ++i) {
    uint64_t size = 5000 * (i + 1) + version;
    list.add(codec::FileInfo{kj::str("file-", i), size, 0644});
    for (uint64_t c = 0; c < codec::chunkCountFor(size, 4096); ++c) {
      auto seed = kj::str(id, '/', version, '/', i, '/', c);
      chunks.add(codec::sha256(seed.asBytes()));
    }
  }
  return newItem(codec::makeManifest(kj::str(id), 4096, list.finish(), chunks.releaseAsArray()),
                 kj::heapArray<FileStat>(files));
}

struct Spec {
  kj::StringPtr id;
  uint64_t version;
};

// Items sorted by id, as a scan yields them.
inline kj::Array<kj::Own<const Item>> makeItems(std::initializer_list<Spec> specs) {
  kj::Vector<kj::Own<const Item>> out;
  for (auto& s : specs)
    out.add(makeItem(s.id, s.version));
  return out.releaseAsArray();
}

// Encodes and decodes a frame, as the receiving side sees it: validated, or a test failure.
inline kj::Maybe<codec::InboundFrame> throughTheWire(capnp::MessageBuilder& message,
                                                     uint32_t maxFrameBytes = 16 << 20) {
  auto bytes = codec::encodeFrame(message);
  EXPECT_LE(bytes.size(), maxFrameBytes);
  auto result = codec::decodeFrame(bytes);
  KJ_IF_MAYBE (f, result.tryGet<codec::Failure>()) {
    ADD_FAILURE() << "frame refused: " << f->message.cStr();
    return nullptr;
  }
  return kj::mv(result.get<codec::InboundFrame>());
}

}  // namespace shoal::peer::library::test
