// FrameReader: the one entry point through which the peer reads frames from a stream. A thin KJ
// driver around FrameDecoder; all limits and validation live there.
#pragma once

#include <kj/async-io.h>
#include <shoal/codec/frame.h>

namespace shoal::codec {

struct EndOfStream {};  // clean EOF at a frame boundary

using ReadResult = kj::OneOf<InboundFrame, EndOfStream, Failure>;

class FrameReader {
 public:
  // `stagingBytes`: see FrameDecoder (frames larger than it are read into their own buffer).
  FrameReader(kj::AsyncInputStream& in, const Limits& limits, size_t stagingBytes = 64 * 1024);
  KJ_DISALLOW_COPY(FrameReader);

  // The next frame. I/O errors of the stream reject the promise; everything the peer can get
  // wrong resolves to a Failure. One read() at a time.
  kj::Promise<ReadResult> read();
  // The next frame (or Failure) among the bytes already read, without reading; null when a
  // read() is needed.
  kj::Maybe<ReadResult> poll();

  uint64_t bytesRead() const { return totalBytes; }
  // See FrameDecoder::setMaxFrameBytes().
  void setMaxFrameBytes(uint32_t bytes) { decoder.setMaxFrameBytes(bytes); }

 private:
  kj::AsyncInputStream& in;
  FrameDecoder decoder;
  uint64_t totalBytes = 0;
};

}  // namespace shoal::codec
