// Target `frame`: raw bytes into FrameReader — the async entry point the peer ships — over an
// in-memory stream, in pieces whose sizes the input picks (1-byte dribbles included), with
// default limits. Invariant: what it yields (frames, then end or failure) is exactly what
// FrameDecoder yields for the same bytes delivered at once.
#include <kj/async-io.h>
#include <kj/debug.h>
#include <shoal/codec/frame-reader.h>
#include <string.h>

using namespace shoal::codec;

namespace {

struct Outcome {
  kj::Vector<kj::Array<kj::byte>> frames;
  kj::Maybe<CodecError> failure;  // null: clean end
  bool truncatedOrEnd = false;
};

// Every frame and the final failure, the way a session consumes them: a request-level failure
// (requestId set) does not end the stream.
Outcome reference(kj::ArrayPtr<const kj::byte> bytes) {
  Outcome out;
  FrameDecoder decoder{Limits()};
  size_t at = 0;
  for (;;) {
    KJ_IF_MAYBE (r, decoder.next()) {
      KJ_IF_MAYBE (frame, r->tryGet<InboundFrame>()) {
        out.frames.add(kj::heapArray(frame->bytes()));
        continue;
      }
      auto& failure = r->get<Failure>();
      if (failure.requestId != nullptr) continue;
      out.failure = failure.error;
      return out;
    }
    if (at == bytes.size()) break;
    auto space = decoder.writable();
    size_t n = kj::min(space.size(), bytes.size() - at);
    memcpy(space.begin(), bytes.begin() + at, n);
    decoder.commit(n);
    at += n;
  }
  KJ_IF_MAYBE (f, decoder.finish()) {
    out.failure = f->error;
  }
  return out;
}

kj::Promise<void> writePieces(kj::AsyncOutputStream& out, kj::ArrayPtr<const kj::byte> bytes,
                              uint64_t state) {
  if (bytes.size() == 0) return kj::READY_NOW;
  state ^= state << 13;
  state ^= state >> 7;
  state ^= state << 17;
  // Mostly small pieces, sometimes large: both the dribble and the bulk paths run.
  size_t n = (state & 3) == 0 ? 1 + state % 70000 : 1 + state % 13;
  n = kj::min(n, bytes.size());
  return out.write(bytes.begin(), n).then([&out, rest = bytes.slice(n, bytes.size()), state]() {
    return writePieces(out, rest, state);
  });
}

Outcome readAll(FrameReader& reader, kj::WaitScope& ws) {
  Outcome out;
  for (;;) {
    auto r = reader.read().wait(ws);
    KJ_SWITCH_ONEOF(r) {
      KJ_CASE_ONEOF(frame, InboundFrame) {
        out.frames.add(kj::heapArray(frame.bytes()));
      }
      KJ_CASE_ONEOF(end, EndOfStream) {
        return out;
      }
      KJ_CASE_ONEOF(failure, Failure) {
        if (failure.requestId != nullptr) break;
        out.failure = failure.error;
        return out;
      }
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2 || size > (1 << 20)) return 0;
  uint64_t seed = 0x9E3779B97F4A7C15ull ^ (uint64_t(data[0]) << 8 | data[1]);
  auto bytes = kj::arrayPtr(reinterpret_cast<const kj::byte*>(data) + 2, size - 2);
  auto expected = reference(bytes);

  kj::EventLoop loop;
  kj::WaitScope ws(loop);
  auto pipe = kj::newOneWayPipe();
  auto out = kj::mv(pipe.out);
  auto writing = writePieces(*out, bytes, seed)
                     .then([&out]() { out = nullptr; })  // EOF after the last piece
                     .eagerlyEvaluate(nullptr);
  FrameReader reader(*pipe.in, Limits());
  auto got = readAll(reader, ws);

  KJ_ASSERT(got.frames.size() == expected.frames.size(), got.frames.size(), expected.frames.size());
  for (auto i : kj::indices(got.frames))
    KJ_ASSERT(got.frames[i] == expected.frames[i], i);
  KJ_ASSERT(got.failure == expected.failure);
  return 0;
}
