#include <shoal/codec/chunk-frame.h>

#include <string.h>

#include <kj/debug.h>
#include <shoal/codec/frame.h>

namespace shoal::codec {

namespace {

// Words before a Chunk's data: the root pointer, the Frame and Chunk structs. Far fewer in
// practice (asserted at every build); what a reused buffer has zeroed.
constexpr size_t kHeaderWords = 32;
constexpr size_t kMinBufferWords = 4096;  // 32 KiB: small chunks share one size class

size_t dataWords(uint32_t length) {
  return (size_t(length) + sizeof(capnp::word) - 1) / sizeof(capnp::word);
}

// The data part of a buffer is a power of two, so a freed buffer fits the next chunk of a similar
// size and a chunk size that is a power of two (they all are, by default) wastes nothing.
size_t bufferWords(uint32_t length) {
  size_t data = dataWords(length), words = kMinBufferWords;
  while (words < data)
    words *= 2;
  return kHeaderWords + words;
}

}  // namespace

size_t chunkFrameBytes(uint32_t length) {
  static const size_t empty = []() {
    auto frame = newFrame(kHeaderWords);
    frame->getRoot<wire::Frame>().initChunk().initData(0);
    return encodedSize(*frame);
  }();
  return empty + dataWords(length) * sizeof(capnp::word);
}

// A frame over one lent buffer. The buffer's holder is a base declared before MessageBuilder, so
// the builder (and its arena) is gone before the buffer goes back to the pool.
struct ChunkFramePool::Lent {
  kj::Own<ChunkFramePool> pool;
  kj::Array<capnp::word> buffer;
  ~Lent() noexcept(false) {
    if (buffer != nullptr) pool->give(kj::mv(buffer));
  }
};

class ChunkFramePool::Frame final : private Lent, public capnp::MessageBuilder {
 public:
  Frame(kj::Own<ChunkFramePool> pool, kj::Array<capnp::word> buffer)
      : Lent{kj::mv(pool), kj::mv(buffer)} {}

  kj::ArrayPtr<capnp::word> allocateSegment(capnp::uint minimumSize) override {
    // Everything fits the one buffer, sized for the whole frame: a second segment is our bug.
    KJ_ASSERT(!allocated && minimumSize <= buffer.size(), "a chunk frame takes one segment");
    allocated = true;
    return buffer;
  }

  kj::ArrayPtr<capnp::word> words() { return buffer; }

 private:
  bool allocated = false;
};

ChunkFramePool::ChunkFramePool(size_t maxPooledBytes) : maxPooledBytes(maxPooledBytes) {}

kj::Array<capnp::word> ChunkFramePool::take(size_t words) {
  {
    auto lock = free.lockExclusive();
    auto& buffers = lock->buffers;
    for (auto& buffer : buffers) {
      if (buffer.size() == words) {
        auto taken = kj::mv(buffer);
        buffer = kj::mv(buffers.back());
        buffers.removeLast();
        lock->bytes -= taken.asBytes().size();
        return taken;
      }
    }
  }
  return kj::heapArray<capnp::word>(words);  // not zeroed: see build()
}

void ChunkFramePool::give(kj::Array<capnp::word> buffer) {
  size_t bytes = buffer.asBytes().size();
  auto lock = free.lockExclusive();
  // Over the cap: the buffer is freed on return, after the lock (a parameter outlives locals).
  if (lock->bytes + bytes > maxPooledBytes) return;
  lock->bytes += bytes;
  lock->buffers.add(kj::mv(buffer));
}

size_t ChunkFramePool::pooled() const {
  return free.lockShared()->buffers.size();
}

size_t ChunkFramePool::pooledBytes() const {
  return free.lockShared()->bytes;
}

kj::Maybe<FrameBuilder> ChunkFramePool::build(
    uint64_t id, uint32_t length, kj::FunctionParam<bool(kj::ArrayPtr<kj::byte>)> fill) {
  auto buffer = take(bufferWords(length));
  // What the builder writes into must be zero: the header words, and the data's last word,
  // whose bytes after `length` are padding on the wire.
  memset(buffer.begin(), 0, kHeaderWords * sizeof(capnp::word));
  auto frame = kj::heap<Frame>(kj::atomicAddRef(*this), kj::mv(buffer));
  auto chunk = frame->initRoot<wire::Frame>().initChunk();
  chunk.setId(id);
  auto data = chunk.initData(length);
  auto* start = reinterpret_cast<kj::byte*>(frame->words().begin());
  KJ_ASSERT(
      data.begin() >= start && size_t(data.begin() - start) <= kHeaderWords * sizeof(capnp::word),
      "the Chunk's data does not follow its header");
  size_t padded = dataWords(length) * sizeof(capnp::word);
  if (padded > length) memset(data.begin() + length, 0, padded - length);
  if (!fill(data)) return nullptr;
  return FrameBuilder(kj::mv(frame));
}

}  // namespace shoal::codec
