// Chunk frames for serving, one read away from the wire. A Chunk frame's body is the file's bytes:
// built the ordinary way, every frame first zeroes (and, in fresh memory, faults in) a whole
// chunk-sized segment that the read then overwrites. A ChunkFramePool lends buffers instead and
// takes them back when the frame is freed after its write: the frame is one segment ([FR-7]) —
// its few header words, then the data at its end — and only the header words and the padding
// after the data are zeroed; the caller's read fills the data in full, straight from the file.
// Thread-safe: frames are built on reader threads and freed on the event loop.
#pragma once

#include <kj/function.h>
#include <kj/mutex.h>
#include <kj/refcount.h>
#include <kj/vector.h>
#include <shoal/codec/frames.h>

namespace shoal::codec {

// The encoded size of Chunk{id, data of `length` bytes}, without building it.
size_t chunkFrameBytes(uint32_t length);

class ChunkFramePool final : public kj::AtomicRefcounted {
 public:
  // Free buffers are kept while they add up to at most `maxPooledBytes`; more are freed. Bytes,
  // not buffers: a buffer is as large as its chunk (up to 4 MiB and more), so a count would let
  // the few big ones hold many times what the small ones do.
  explicit ChunkFramePool(size_t maxPooledBytes = kDefaultPooledBytes);
  static constexpr size_t kDefaultPooledBytes = 16 << 20;
  KJ_DISALLOW_COPY(ChunkFramePool);

  // A Chunk{id, data} frame whose `length` data bytes `fill` writes, all of them, returning true;
  // when it returns false the frame is not made (its buffer goes back) and the result is null.
  // The data region holds whatever an earlier frame left until `fill` overwrites it: a `fill`
  // that returns true without writing every byte would send those bytes.
  kj::Maybe<FrameBuilder> build(uint64_t id, uint32_t length,
                                kj::FunctionParam<bool(kj::ArrayPtr<kj::byte>)> fill);

  size_t pooled() const;       // free buffers kept
  size_t pooledBytes() const;  // their bytes

 private:
  struct Lent;
  class Frame;
  kj::Array<capnp::word> take(size_t words);
  void give(kj::Array<capnp::word> buffer);

  struct Free {
    kj::Vector<kj::Array<capnp::word>> buffers;
    size_t bytes = 0;
  };
  size_t maxPooledBytes;
  kj::MutexGuarded<Free> free;
};

}  // namespace shoal::codec
