#include <shoal/codec/frame-reader.h>

namespace shoal::codec {

FrameReader::FrameReader(kj::AsyncInputStream& in, const Limits& limits, size_t stagingBytes)
    : in(in), decoder(limits, stagingBytes) {}

kj::Maybe<ReadResult> FrameReader::poll() {
  KJ_IF_MAYBE (result, decoder.next()) {
    KJ_SWITCH_ONEOF(*result) {
      KJ_CASE_ONEOF(frame, InboundFrame) {
        return ReadResult(kj::mv(frame));
      }
      KJ_CASE_ONEOF(failure, Failure) {
        return ReadResult(kj::mv(failure));
      }
    }
  }
  return nullptr;
}

kj::Promise<ReadResult> FrameReader::read() {
  KJ_IF_MAYBE (result, poll()) {
    return kj::mv(*result);
  }
  auto space = decoder.writable();
  return in.tryRead(space.begin(), 1, space.size())
      .then([this](size_t n) -> kj::Promise<ReadResult> {
        if (n == 0) {
          KJ_IF_MAYBE (failure, decoder.finish()) {
            return ReadResult(kj::mv(*failure));
          }
          return ReadResult(EndOfStream());
        }
        totalBytes += n;
        decoder.commit(n);
        return read();
      });
}

}  // namespace shoal::codec
