// ChunkSet: a set of chunk indices of one manifest, as a bitset with its population kept. It holds
// the verified chunks of a download, the chunks a resume file claims, and what a source has (a
// partial item serves only some chunks), so every "which chunks" question has one answer type.
#pragma once

#include <stdint.h>

#include <kj/array.h>
#include <kj/common.h>

namespace shoal::peer::download {

class ChunkSet {
 public:
  ChunkSet() = default;
  // `size` chunks, none held (or all, with `full`).
  explicit ChunkSet(uint64_t size, bool full = false);
  ChunkSet(ChunkSet&&) = default;
  ChunkSet& operator=(ChunkSet&&) = default;
  KJ_DISALLOW_COPY(ChunkSet);

  uint64_t size() const { return universe; }
  uint64_t count() const { return population; }
  bool isFull() const { return population == universe; }
  bool isEmpty() const { return population == 0; }

  bool has(uint64_t chunk) const;
  // Each returns whether the set changed.
  bool add(uint64_t chunk);
  bool remove(uint64_t chunk);

  // The first chunk held at or after `from`, or null.
  kj::Maybe<uint64_t> next(uint64_t from) const;

  // The serialised form: chunk i is bit (i % 8) of byte (i / 8); bits past size() are zero.
  kj::ArrayPtr<const kj::byte> bytes() const { return bits; }
  // Null when `bytes` is not the serialised form of a set of `size` chunks.
  static kj::Maybe<ChunkSet> fromBytes(uint64_t size, kj::ArrayPtr<const kj::byte> bytes);

  ChunkSet clone() const;
  bool operator==(const ChunkSet& other) const;
  bool operator!=(const ChunkSet& other) const { return !(*this == other); }

 private:
  uint64_t universe = 0;
  uint64_t population = 0;
  kj::Array<kj::byte> bits;
};

}  // namespace shoal::peer::download
