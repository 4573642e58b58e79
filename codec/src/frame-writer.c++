#include <shoal/codec/frame-writer.h>

#include <capnp/serialize.h>
#include <kj/debug.h>
#include <shoal/codec/frame.h>

namespace shoal::codec {

namespace {

constexpr size_t kBatchFrames = 128;             // frames per gather write
constexpr size_t kBatchBytes = 4 * 1024 * 1024;  // bytes per gather write, unless one frame is more

// Everything one gather write needs kept alive until it completes.
struct Batch {
  kj::Vector<kj::Own<capnp::MessageBuilder>> messages;
  kj::Vector<kj::Array<capnp::word>> tables;
  kj::Vector<kj::ArrayPtr<const kj::byte>> pieces;
  size_t bytes = 0;

  void add(kj::Own<capnp::MessageBuilder> message) {
    auto segments = message->getSegmentsForOutput();
    auto table = segmentTable(segments);
    pieces.add(table.asBytes());
    bytes += table.asBytes().size();
    for (auto segment : segments) {
      pieces.add(segment.asBytes());
      bytes += segment.asBytes().size();
    }
    tables.add(kj::mv(table));
    messages.add(kj::mv(message));
  }
};

}  // namespace

FrameWriter::FrameWriter(kj::AsyncOutputStream& out, uint32_t maxFrameBytes)
    : out(out), maxFrameBytes(maxFrameBytes) {}

kj::Maybe<Failure> FrameWriter::queue(kj::Own<capnp::MessageBuilder> frame) {
  KJ_ASSERT(!closed, "frame queued after the writer was closed");
  size_t bytes = encodedSize(*frame);
  if (bytes > maxFrameBytes) {
    return fail(CodecError::frameTooLarge,
                kj::str("outgoing frame of ", bytes, " bytes, the peer accepts ", maxFrameBytes));
  }
  pending.add(Pending{kj::mv(frame), bytes});
  pendingBytes += bytes;
  KJ_IF_MAYBE (f, wakeUp) {
    (*f)->fulfill();
    wakeUp = nullptr;
  }
  return nullptr;
}

void FrameWriter::close() {
  closed = true;
  KJ_IF_MAYBE (f, wakeUp) {
    (*f)->fulfill();
    wakeUp = nullptr;
  }
}

kj::Promise<void> FrameWriter::run() {
  if (pending.empty()) {
    if (closed) {
      ended = true;
      releaseWaiters(true);
      return kj::READY_NOW;
    }
    auto paf = kj::newPromiseAndFulfiller<void>();
    wakeUp = kj::mv(paf.fulfiller);
    return paf.promise.then([this]() { return run(); });
  }
  return writeBatch().then(
      [this]() {
        writingBytes = 0;
        releaseWaiters(false);
        return run();
      },
      [this](kj::Exception&& exception) -> kj::Promise<void> {
        // Nothing more will be written: nobody may wait for the queue to shrink.
        ended = true;
        releaseWaiters(true);
        return kj::mv(exception);
      });
}

kj::Promise<void> FrameWriter::whenQueuedBelow(size_t bytes) {
  if (ended || queuedBytes() < bytes) return kj::READY_NOW;
  auto paf = kj::newPromiseAndFulfiller<void>();
  waiters.add(Waiter{bytes, kj::mv(paf.fulfiller)});
  return kj::mv(paf.promise);
}

void FrameWriter::releaseWaiters(bool all) {
  if (waiters.empty()) return;
  kj::Vector<Waiter> still;
  for (auto& w : waiters) {
    if (all || queuedBytes() < w.bytes) {
      w.fulfiller->fulfill();
    } else {
      still.add(kj::mv(w));
    }
  }
  waiters = kj::mv(still);
}

kj::Promise<void> FrameWriter::writeBatch() {
  auto batch = kj::heap<Batch>();
  size_t taken = 0;
  while (taken < pending.size() && taken < kBatchFrames &&
         (taken == 0 || batch->bytes + pending[taken].bytes <= kBatchBytes)) {
    batch->add(kj::mv(pending[taken].message));
    pendingBytes -= pending[taken].bytes;
    ++taken;
  }
  // Keep the frames not taken, in order.
  kj::Vector<Pending> rest(pending.size() - taken);
  for (size_t i = taken; i < pending.size(); ++i)
    rest.add(kj::mv(pending[i]));
  pending = kj::mv(rest);

  totalBytes += batch->bytes;
  writingBytes = batch->bytes;
  auto pieces = batch->pieces.asPtr();
  return out.write(pieces).attach(kj::mv(batch));
}

}  // namespace shoal::codec
