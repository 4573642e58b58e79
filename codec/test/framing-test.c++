// Framing details the stream tests leave out: how FrameWriter groups queued frames into gather
// writes (at most 128 frames and 4 MiB each, a bigger frame alone), and the decoder's finish()
// after a failure and inside a large frame.
#include <shoal/codec/frame-writer.h>

#include <gtest/gtest.h>
#include <kj/async.h>
#include <shoal/codec/frame.h>

#include "samples.h"
#include "test-util.h"

namespace shoal::codec {
namespace {

using Which = wire::Frame::Which;

// An output stream that completes every write at once and records each gather write's size.
class RecordingStream final : public kj::AsyncOutputStream {
 public:
  kj::Promise<void> write(const void* buffer, size_t size) override {
    auto bytes = kj::arrayPtr(reinterpret_cast<const kj::byte*>(buffer), size);
    return write(kj::arrayPtr(&bytes, 1));
  }
  kj::Promise<void> write(kj::ArrayPtr<const kj::ArrayPtr<const kj::byte>> pieces) override {
    size_t size = 0;
    for (auto piece : pieces) {
      all.addAll(piece);
      size += piece.size();
    }
    writes.add(size);
    return kj::READY_NOW;
  }
  kj::Promise<void> whenWriteDisconnected() override { return kj::NEVER_DONE; }

  kj::Vector<size_t> writes;
  kj::Vector<kj::byte> all;
};

struct Written {
  kj::Vector<size_t> writes;
  kj::Vector<InboundFrame> frames;
};

// Queues `frames`, closes, runs the writer to its end and decodes what it wrote.
Written writeAll(kj::Array<kj::Own<capnp::MallocMessageBuilder>> frames) {
  kj::EventLoop loop;
  kj::WaitScope waitScope(loop);
  RecordingStream stream;
  FrameWriter writer(stream, 16 * 1024 * 1024);
  for (auto& frame : frames)
    EXPECT_EQ(writer.queue(kj::mv(frame)), nullptr);
  writer.close();
  writer.run().wait(waitScope);
  EXPECT_EQ(writer.queuedBytes(), 0u);
  EXPECT_EQ(writer.bytesWritten(), stream.all.size());

  Limits limits;
  limits.maxChunkBytes = 8 << 20;  // the 5 MiB chunk below
  FrameDecoder decoder{limits};
  size_t pieces[] = {1 << 20};
  auto fed = test::feed(decoder, stream.all, pieces);
  EXPECT_EQ(fed.failures.size(), 0u);
  return {kj::mv(stream.writes), kj::mv(fed.frames)};
}

TEST(FrameWriterBatches, AtMost128FramesPerGatherWrite) {
  kj::Vector<kj::Own<capnp::MallocMessageBuilder>> frames;
  for (int i = 0; i < 300; ++i)
    frames.add(samples::make(Which::PING));
  size_t ping = encodedSize(*frames[0]);
  auto written = writeAll(frames.releaseAsArray());
  ASSERT_EQ(written.writes.size(), 3u);
  EXPECT_EQ(written.writes[0], 128 * ping);
  EXPECT_EQ(written.writes[1], 128 * ping);
  EXPECT_EQ(written.writes[2], 44 * ping);
  EXPECT_EQ(written.frames.size(), 300u);
}

TEST(FrameWriterBatches, AtMost4MiBPerGatherWriteUnlessOneFrameIsMore) {
  // ping, 3 MiB, 3 MiB, ping, 5 MiB, ping: the second chunk would take the first write past
  // 4 MiB, and the 5 MiB chunk goes alone.
  kj::Vector<kj::Own<capnp::MallocMessageBuilder>> frames;
  frames.add(samples::make(Which::PING));
  frames.add(samples::chunk(1, 3 << 20));
  frames.add(samples::chunk(2, 3 << 20));
  frames.add(samples::make(Which::PING));
  frames.add(samples::chunk(3, 5 << 20));
  frames.add(samples::make(Which::PING));
  auto sizes = KJ_MAP(f, frames) {
    return encodedSize(*f);
  };
  auto written = writeAll(frames.releaseAsArray());
  ASSERT_EQ(written.writes.size(), 4u);
  EXPECT_EQ(written.writes[0], sizes[0] + sizes[1]);
  EXPECT_EQ(written.writes[1], sizes[2] + sizes[3]);
  EXPECT_EQ(written.writes[2], sizes[4]);
  EXPECT_EQ(written.writes[3], sizes[5]);
  for (auto w : kj::arrayPtr(written.writes.begin(), 2))
    EXPECT_LE(w, 4u << 20);
  // In order, whole.
  ASSERT_EQ(written.frames.size(), 6u);
  EXPECT_EQ(written.frames[1].root().getChunk().getId(), 1u);
  EXPECT_EQ(written.frames[2].root().getChunk().getId(), 2u);
  EXPECT_EQ(written.frames[4].root().getChunk().getData().size(), 5u << 20);
  EXPECT_EQ(written.frames[5].kind(), Which::PING);
}

TEST(FrameDecoderEnd, FinishAfterAFailureAddsNothing) {
  // The failure was reported by next(); the end of the stream is no second failure.
  FrameDecoder decoder{Limits()};
  auto space = decoder.writable();
  memset(space.begin(), 0xFF, 16);
  decoder.commit(16);
  auto result = decoder.next();
  auto& first = KJ_ASSERT_NONNULL(result);
  ASSERT_TRUE(first.is<Failure>());
  EXPECT_EQ(first.get<Failure>().error, CodecError::segmentCount);
  EXPECT_EQ(decoder.finish(), nullptr);
  // Still failed: framing cannot resynchronise.
  auto later = decoder.next();
  EXPECT_TRUE(KJ_ASSERT_NONNULL(later).is<Failure>());
}

TEST(FrameDecoderEnd, EndInsideALargeFrameCountsTheBytesReceived) {
  // A frame bigger than the staging buffer is read into its own buffer; ending inside it is
  // truncation, with the bytes held so far.
  auto bytes = encodeFrame(*samples::chunk(1, 200000));
  FrameDecoder decoder{Limits(), 4096};
  size_t pieces[] = {4096};
  auto fed = test::feed(decoder, bytes.slice(0, 100000), pieces);
  EXPECT_EQ(fed.frames.size(), 0u);
  ASSERT_EQ(fed.failures.size(), 1u);
  EXPECT_EQ(fed.failures[0].error, CodecError::truncated);
  EXPECT_EQ(fed.failures[0].message, "stream ended 100000 bytes into a frame");
}

}  // namespace
}  // namespace shoal::codec
