// FrameWriter: the single chained writer of a connection. Frames are queued synchronously and
// written in order by run(), several per gather write; only one write is ever in flight.
#pragma once

#include <capnp/message.h>
#include <kj/async-io.h>
#include <kj/vector.h>
#include <shoal/codec/error.h>

namespace shoal::codec {

class FrameWriter {
 public:
  // `maxFrameBytes` is the peer's limit; it may change once the handshake announced it.
  FrameWriter(kj::AsyncOutputStream& out, uint32_t maxFrameBytes);
  KJ_DISALLOW_COPY(FrameWriter);

  // Queues a frame after every earlier one. A frame above the peer's limit is not queued:
  // Failure{frameTooLarge}. Queuing after close() is a bug of the caller.
  kj::Maybe<Failure> queue(kj::Own<capnp::MessageBuilder> frame);

  // Writes queued frames until close() has been called and the queue is empty; rejects with the
  // stream's error. Call once; the promise is the writer's lifetime.
  kj::Promise<void> run();

  // No frames after this; run() resolves once the queue is written.
  void close();

  // Resolves once fewer than `bytes` are queued or being written — or when the writer has ended
  // or failed. A reader waits on it before taking the next frame, so a peer that sends requests
  // but does not read the answers stalls itself instead of growing our memory.
  kj::Promise<void> whenQueuedBelow(size_t bytes);

  void setMaxFrameBytes(uint32_t bytes) { maxFrameBytes = bytes; }
  bool isClosed() const { return closed; }
  size_t queuedBytes() const { return pendingBytes + writingBytes; }
  uint64_t bytesWritten() const { return totalBytes; }

 private:
  struct Pending {
    kj::Own<capnp::MessageBuilder> message;
    size_t bytes;
  };
  kj::Promise<void> writeBatch();

  kj::AsyncOutputStream& out;
  uint32_t maxFrameBytes;
  struct Waiter {
    size_t bytes;
    kj::Own<kj::PromiseFulfiller<void>> fulfiller;
  };
  void releaseWaiters(bool all);

  kj::Vector<Pending> pending;
  size_t pendingBytes = 0;
  size_t writingBytes = 0;  // the batch in flight
  kj::Vector<Waiter> waiters;
  bool ended = false;
  uint64_t totalBytes = 0;
  bool closed = false;
  kj::Maybe<kj::Own<kj::PromiseFulfiller<void>>> wakeUp;
};

}  // namespace shoal::codec
