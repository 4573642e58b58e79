// Frames: one Cap'n Proto message (standard stream framing, unpacked) whose root is wire::Frame.
// FrameDecoder is the sans-I/O core every reader uses: bytes in, validated frames or a typed
// Failure out. It parses the segment table itself and enforces the limits before allocating, so
// untrusted bytes never reach Cap'n Proto's own (0.9.2, defective) async stream reader.
#pragma once

#include <capnp/message.h>
#include <capnp/serialize.h>
#include <kj/array.h>
#include <kj/one-of.h>
#include <shoal/codec/error.h>
#include <shoal/codec/limits.h>
#include <shoal/schema/shoal.capnp.h>

namespace shoal::codec {

// A decoded frame that passed validate(): it owns its words, and every field the spec defines can
// be read without Cap'n Proto throwing.
class InboundFrame {
 public:
  InboundFrame(kj::Array<capnp::word> words, const Limits& limits);
  KJ_DISALLOW_COPY(InboundFrame);
  InboundFrame(InboundFrame&&) = default;
  InboundFrame& operator=(InboundFrame&&) = default;

  wire::Frame::Reader root() const { return rootReader; }
  wire::Frame::Which kind() const { return rootReader.which(); }
  kj::ArrayPtr<const kj::byte> bytes() const { return words.asBytes(); }

 private:
  kj::Array<capnp::word> words;
  kj::Own<capnp::FlatArrayMessageReader> reader;
  wire::Frame::Reader rootReader;
};

using DecodeResult = kj::OneOf<InboundFrame, Failure>;

// Incremental decoder. Feed it with writable()/commit(), take frames with next(). After a Failure
// the decoder stays failed: framing cannot resynchronise, the connection must end.
class FrameDecoder {
 public:
  explicit FrameDecoder(const Limits& limits, size_t stagingBytes = 64 * 1024);
  KJ_DISALLOW_COPY(FrameDecoder);

  // Where the next received bytes go; never empty. A large frame's body is read straight into
  // its final buffer, so big chunks are not copied twice.
  kj::ArrayPtr<kj::byte> writable();
  // `n` bytes were written at the start of writable().
  void commit(size_t n);

  // The next complete frame (decoded and validated), a Failure, or null when more bytes are needed.
  kj::Maybe<DecodeResult> next();

  // The stream ended: a Failure{truncated} if it ended inside a frame, else null.
  kj::Maybe<Failure> finish();

  // Bytes of an incomplete frame held right now.
  size_t pendingBytes() const;

  // Changes the frame size limit for frames whose segment table is not parsed yet (a peer reads
  // at most kMinFrameBytes until its handshake completes, [FR-9]).
  void setMaxFrameBytes(uint32_t bytes) { limits.maxFrameBytes = bytes; }

 private:
  DecodeResult decode(kj::Array<capnp::word> words);
  DecodeResult failWith(Failure failure);

  Limits limits;
  kj::Array<kj::byte> staging;  // read-ahead for small frames; [begin, end) is unconsumed
  size_t begin = 0;
  size_t end = 0;
  kj::Array<capnp::word> body;  // a frame too large for staging, filled up to bodyFilled bytes
  size_t bodyFilled = 0;
  bool failed = false;
};

// Decodes exactly one frame held in `bytes`; trailing bytes are a failure.
DecodeResult decodeFrame(kj::ArrayPtr<const kj::byte> bytes, const Limits& limits = Limits());

// The standard stream encoding of `message` (segment table + segments).
kj::Array<kj::byte> encodeFrame(capnp::MessageBuilder& message);

// The segment table that precedes `segments` on the wire; a gather write sends it followed by the
// segments themselves, so nothing is copied.
kj::Array<capnp::word> segmentTable(kj::ArrayPtr<const kj::ArrayPtr<const capnp::word>> segments);

// Size `message` will have on the wire, segment table included.
size_t encodedSize(capnp::MessageBuilder& message);

}  // namespace shoal::codec
