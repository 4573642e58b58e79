#include <shoal/codec/frame.h>

#include <kj/debug.h>
#include <shoal/codec/validate.h>
#include <shoal/mutant.h>
#include <string.h>

namespace shoal::codec {

namespace {

// The segment table must always fit in staging: the count and 4 bytes per segment, padded to a
// word, for up to kMaxSegmentsCeiling segments.
constexpr size_t kMinStagingBytes = 4096;
static_assert(kMinStagingBytes >= (kMaxSegmentsCeiling + 2) / 2 * 8);

uint32_t readU32(const kj::byte* p) {
  return uint32_t(p[0]) | uint32_t(p[1]) << 8 | uint32_t(p[2]) << 16 | uint32_t(p[3]) << 24;
}

// The total size of the frame starting at `bytes`, from its segment table alone; null when
// `bytes` is too short to hold the table. Enforces every framing limit ([FR-3]..[FR-5]).
kj::Maybe<kj::OneOf<size_t, Failure>> parseFrameHeader(kj::ArrayPtr<const kj::byte> bytes,
                                                       const Limits& limits) {
  if (bytes.size() < 8) return nullptr;
  // The first word is the segment count minus one; 0xFFFFFFFF wraps the count to 0, the case
  // Cap'n Proto 0.9.2's async reader mishandles (docs/dependencies.md).
  uint32_t segmentCount = readU32(bytes.begin()) + 1;
  if (segmentCount == 0) {
    return kj::OneOf<size_t, Failure>(
        fail(CodecError::segmentCount, kj::str("first word 0xFFFFFFFF: segment count wraps to 0")));
  }
  if (segmentCount > limits.maxSegments) {
    return kj::OneOf<size_t, Failure>(
        fail(CodecError::segmentCount,
             kj::str(segmentCount, " segments, the limit is ", limits.maxSegments)));
  }
  size_t tableBytes = (size_t(segmentCount) + 2) / 2 * 8;
  if (bytes.size() < tableBytes) {
    // Mutant partialTableRefused: the rest of the table is on its way, yet the frame is refused.
    if (isMutant(Mutant::partialTableRefused)) {
      return kj::OneOf<size_t, Failure>(
          fail(CodecError::truncated,
               kj::str("segment table cut short after ", bytes.size(), " bytes")));
    }
    return nullptr;
  }

  uint64_t words = 0;
  for (uint32_t i = 0; i < segmentCount; ++i) {
    words += readU32(bytes.begin() + 4 + 4 * i);
  }
  if (readU32(bytes.begin() + 4) == 0) {
    return kj::OneOf<size_t, Failure>(
        fail(CodecError::malformed, kj::str("segment 0 is empty: the frame has no root")));
  }
  uint64_t total = tableBytes + words * 8;
  if (total > limits.maxFrameBytes) {
    return kj::OneOf<size_t, Failure>(
        fail(CodecError::frameTooLarge,
             kj::str("frame of ", total, " bytes, the limit is ", limits.maxFrameBytes)));
  }
  return kj::OneOf<size_t, Failure>(size_t(total));
}

DecodeResult decodeWords(kj::Array<capnp::word> words, const Limits& limits) {
  kj::Maybe<InboundFrame> frame;
  kj::Maybe<Failure> problem;
  // Cap'n Proto reports bad pointers and exceeded reader limits by throwing; this is the one
  // boundary where such an exception becomes a typed Failure.
  KJ_IF_MAYBE (exception, kj::runCatchingExceptions([&]() {
                 InboundFrame decoded(kj::mv(words), limits);
                 problem = validate(decoded.root(), limits);
                 if (problem == nullptr) frame = kj::mv(decoded);
               })) {
    return fail(CodecError::malformed, kj::str(exception->getDescription()));
  }
  KJ_IF_MAYBE (p, problem) {
    return kj::mv(*p);
  }
  return kj::mv(KJ_ASSERT_NONNULL(frame));
}

}  // namespace

InboundFrame::InboundFrame(kj::Array<capnp::word> wordsParam, const Limits& limits)
    : words(kj::mv(wordsParam)),
      reader(kj::heap<capnp::FlatArrayMessageReader>(
          words, capnp::ReaderOptions{limits.traversalLimitWords, int(limits.nestingLimit)})),
      rootReader(reader->getRoot<wire::Frame>()) {}

FrameDecoder::FrameDecoder(const Limits& limits, size_t stagingBytes)
    : limits(limits), staging(kj::heapArray<kj::byte>(kj::max(stagingBytes, kMinStagingBytes))) {
  KJ_ASSERT(limits.maxSegments <= kMaxSegmentsCeiling, "maxSegments above Cap'n Proto's own cap");
}

kj::ArrayPtr<kj::byte> FrameDecoder::writable() {
  if (body.size() > 0) return body.asBytes().slice(bodyFilled, body.size() * sizeof(capnp::word));
  if (begin > 0) {
    memmove(staging.begin(), staging.begin() + begin, end - begin);
    end -= begin;
    begin = 0;
  }
  KJ_ASSERT(end < staging.size(), "call next() until it returns null before writable()");
  return staging.slice(end, staging.size());
}

void FrameDecoder::commit(size_t n) {
  if (body.size() > 0) {
    KJ_ASSERT(bodyFilled + n <= body.size() * sizeof(capnp::word));
    bodyFilled += n;
  } else {
    KJ_ASSERT(end + n <= staging.size());
    end += n;
  }
}

DecodeResult FrameDecoder::failWith(Failure failure) {
  failed = true;
  return kj::mv(failure);
}

kj::Maybe<DecodeResult> FrameDecoder::next() {
  if (failed) return DecodeResult(fail(CodecError::malformed, kj::str("framing already failed")));

  if (body.size() > 0) {
    if (bodyFilled < body.size() * sizeof(capnp::word)) return nullptr;
    bodyFilled = 0;
    return decode(kj::mv(body));
  }

  // Mutant readsAreFrames: a reader that takes each read for whole frames loses the bytes of a
  // read after its first frame, and every frame that arrives in more than one read.
  auto awaitMore = [this]() -> kj::Maybe<DecodeResult> {
    if (isMutant(Mutant::readsAreFrames)) begin = end;
    return nullptr;
  };
  auto staged = staging.slice(begin, end);
  KJ_IF_MAYBE (header, parseFrameHeader(staged, limits)) {
    KJ_SWITCH_ONEOF(*header) {
      KJ_CASE_ONEOF(failure, Failure) {
        return failWith(kj::mv(failure));
      }
      KJ_CASE_ONEOF(total, size_t) {
        if (total > staged.size() && total <= staging.size()) return awaitMore();
        auto words = kj::heapArray<capnp::word>(total / sizeof(capnp::word));
        if (total <= staged.size()) {
          memcpy(words.begin(), staged.begin(), total);
          begin += total;
          if (isMutant(Mutant::readsAreFrames)) begin = end;
          return decode(kj::mv(words));
        }
        memcpy(words.begin(), staged.begin(), staged.size());
        bodyFilled = staged.size();
        body = kj::mv(words);
        begin = end = 0;
        return nullptr;
      }
    }
  }
  return awaitMore();
}

DecodeResult FrameDecoder::decode(kj::Array<capnp::word> words) {
  return decodeWords(kj::mv(words), limits);
}

kj::Maybe<Failure> FrameDecoder::finish() {
  if (failed) return nullptr;
  size_t pending = pendingBytes();
  if (pending == 0) return nullptr;
  failed = true;
  return fail(CodecError::truncated, kj::str("stream ended ", pending, " bytes into a frame"));
}

size_t FrameDecoder::pendingBytes() const {
  return body.size() > 0 ? bodyFilled : end - begin;
}

DecodeResult decodeFrame(kj::ArrayPtr<const kj::byte> bytes, const Limits& limits) {
  KJ_IF_MAYBE (header, parseFrameHeader(bytes, limits)) {
    KJ_SWITCH_ONEOF(*header) {
      KJ_CASE_ONEOF(failure, Failure) {
        return kj::mv(failure);
      }
      KJ_CASE_ONEOF(total, size_t) {
        if (total > bytes.size()) {
          return fail(CodecError::truncated,
                      kj::str("frame of ", total, " bytes, only ", bytes.size(), " present"));
        }
        if (total < bytes.size()) {
          return fail(CodecError::malformed,
                      kj::str(bytes.size() - total, " bytes after the end of the frame"));
        }
        auto words = kj::heapArray<capnp::word>(total / sizeof(capnp::word));
        memcpy(words.begin(), bytes.begin(), total);
        return decodeWords(kj::mv(words), limits);
      }
    }
  }
  return fail(CodecError::truncated, kj::str("only ", bytes.size(), " bytes: no segment table"));
}

kj::Array<kj::byte> encodeFrame(capnp::MessageBuilder& message) {
  auto words = capnp::messageToFlatArray(message);
  return kj::heapArray(words.asBytes());
}

kj::Array<capnp::word> segmentTable(kj::ArrayPtr<const kj::ArrayPtr<const capnp::word>> segments) {
  auto table = kj::heapArray<capnp::word>((segments.size() + 2) / 2);
  auto bytes = table.asBytes();
  memset(bytes.begin(), 0, bytes.size());
  auto put = [&](size_t index, uint32_t value) {
    for (int i = 0; i < 4; ++i)
      bytes[4 * index + i] = kj::byte(value >> (8 * i));
  };
  put(0, uint32_t(segments.size() - 1));
  for (size_t i = 0; i < segments.size(); ++i)
    put(i + 1, uint32_t(segments[i].size()));
  return table;
}

size_t encodedSize(capnp::MessageBuilder& message) {
  return capnp::computeSerializedSizeInWords(message) * sizeof(capnp::word);
}

}  // namespace shoal::codec
