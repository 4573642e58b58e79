#include <shoal/peer/download/chunk-set.h>

#include <string.h>

#include <kj/debug.h>

namespace shoal::peer::download {

namespace {

uint64_t bytesFor(uint64_t size) {
  return size / 8 + (size % 8 != 0 ? 1 : 0);
}

}  // namespace

ChunkSet::ChunkSet(uint64_t size, bool full)
    : universe(size), population(full ? size : 0), bits(kj::heapArray<kj::byte>(bytesFor(size))) {
  memset(bits.begin(), full ? 0xff : 0, bits.size());
  if (full && size % 8 != 0) bits[bits.size() - 1] = kj::byte((1u << (size % 8)) - 1);
}

bool ChunkSet::has(uint64_t chunk) const {
  KJ_ASSERT(chunk < universe, chunk, universe);
  return (bits[chunk / 8] >> (chunk % 8)) & 1;
}

bool ChunkSet::add(uint64_t chunk) {
  if (has(chunk)) return false;
  bits[chunk / 8] |= kj::byte(1u << (chunk % 8));
  ++population;
  return true;
}

bool ChunkSet::remove(uint64_t chunk) {
  if (!has(chunk)) return false;
  bits[chunk / 8] &= kj::byte(~(1u << (chunk % 8)));
  --population;
  return true;
}

kj::Maybe<uint64_t> ChunkSet::next(uint64_t from) const {
  if (from >= universe || population == 0) return nullptr;
  uint64_t byte = from / 8;
  // The first byte may hold bits below `from`: mask them away.
  unsigned current = bits[byte] & (0xffu << (from % 8));
  for (;;) {
    if (current != 0) {
      uint64_t chunk = byte * 8 + uint64_t(__builtin_ctz(current));
      return chunk < universe ? kj::Maybe<uint64_t>(chunk) : nullptr;
    }
    if (++byte == bits.size()) return nullptr;
    current = bits[byte];
  }
}

kj::Maybe<ChunkSet> ChunkSet::fromBytes(uint64_t size, kj::ArrayPtr<const kj::byte> bytes) {
  if (bytes.size() != bytesFor(size)) return nullptr;
  if (size % 8 != 0 && (bytes[bytes.size() - 1] >> (size % 8)) != 0) return nullptr;
  ChunkSet set(size);
  memcpy(set.bits.begin(), bytes.begin(), bytes.size());
  for (auto b : bytes)
    set.population += uint64_t(__builtin_popcount(b));
  return kj::mv(set);
}

ChunkSet ChunkSet::clone() const {
  ChunkSet copy;
  copy.universe = universe;
  copy.population = population;
  copy.bits = kj::heapArray(bits.asPtr());
  return copy;
}

bool ChunkSet::operator==(const ChunkSet& other) const {
  return universe == other.universe && bits.asPtr() == other.bits.asPtr();
}

}  // namespace shoal::peer::download
