// Framing: round trips, every framing limit at/below/above its bound, truncation, garbage and the
// Cap'n Proto defects of docs/bad-inputs.md #1-8.
#include <shoal/codec/frame.h>

#include <capnp/pretty-print.h>
#include <kj/async-io.h>
#include <shoal/codec/frame-reader.h>
#include <shoal/codec/frame-writer.h>
#include <shoal/codec/validate.h>

#include "samples.h"
#include "test-util.h"

namespace shoal::codec {
namespace {

using test::failureOf;
using test::putU32;
using Which = wire::Frame::Which;

kj::String pretty(capnp::MessageBuilder& m) {
  return kj::str(capnp::prettyPrint(m.getRoot<wire::Frame>().asReader()));
}

TEST(Frame, EveryKindRoundTrips) {
  for (auto kind : samples::allKinds()) {
    auto message = samples::make(kind);
    auto bytes = encodeFrame(*message);
    EXPECT_EQ(bytes.size(), encodedSize(*message));
    auto result = decodeFrame(bytes);
    KJ_IF_MAYBE (failure, result.tryGet<Failure>()) {
      ADD_FAILURE() << name(kind).cStr() << ": " << failure->message.cStr();
      continue;
    }
    auto& frame = result.get<InboundFrame>();
    EXPECT_EQ(frame.kind(), kind) << name(kind).cStr();
    EXPECT_EQ(kj::str(capnp::prettyPrint(frame.root())), pretty(*message)) << name(kind).cStr();
    EXPECT_EQ(frame.bytes(), bytes.asPtr());
  }
}

kj::Array<kj::byte> allSamples() {
  kj::Vector<kj::byte> all;
  for (auto kind : samples::allKinds())
    all.addAll(encodeFrame(*samples::make(kind)));
  return all.releaseAsArray();
}

TEST(FrameDecoder, YieldsEveryFrameWhateverThePieces) {
  auto all = allSamples();
  size_t oneByte[] = {1}, mixed[] = {3, 7, 1, 64, 13}, big[] = {100000};
  for (auto pieces : {kj::arrayPtr(oneByte, 1), kj::arrayPtr(mixed, 5), kj::arrayPtr(big, 1)}) {
    FrameDecoder decoder{Limits()};
    auto fed = test::feed(decoder, all, pieces);
    EXPECT_EQ(fed.failures.size(), 0u);
    auto kinds = samples::allKinds();
    ASSERT_EQ(fed.frames.size(), kinds.size());
    for (size_t i = 0; i < kinds.size(); ++i)
      EXPECT_EQ(fed.frames[i].kind(), kinds[i]);
  }
}

TEST(FrameDecoder, LargeFrameIsReadIntoItsOwnBuffer) {
  auto message = samples::chunk(5, 1024 * 1024);
  auto bytes = encodeFrame(*message);
  FrameDecoder decoder{Limits(), 4096};
  size_t pieces[] = {65536, 1, 4095};
  auto fed = test::feed(decoder, bytes, pieces);
  ASSERT_EQ(fed.frames.size(), 1u);
  EXPECT_EQ(fed.frames[0].root().getChunk().getData(),
            message->getRoot<wire::Frame>().getChunk().getData().asReader());
}

TEST(FrameHeader, FirstWordAllOnesIsRefused) {
  // docs/bad-inputs.md #2: the segment count wraps to 0 (Cap'n Proto advisory 2026-03-12-0).
  auto bytes = kj::heapArray<kj::byte>(64);
  memset(bytes.begin(), 0, bytes.size());
  putU32(bytes, 0, 0xFFFFFFFF);
  EXPECT_EQ(failureOf(bytes), CodecError::segmentCount);

  // The decoder refuses after the first 8 bytes and stays failed.
  FrameDecoder decoder{Limits()};
  auto space = decoder.writable();
  memcpy(space.begin(), bytes.begin(), 8);
  decoder.commit(8);
  auto r = KJ_ASSERT_NONNULL(decoder.next());
  EXPECT_EQ(r.get<Failure>().error, CodecError::segmentCount);
  EXPECT_TRUE(KJ_ASSERT_NONNULL(decoder.next()).is<Failure>());
}

// A frame of `segments` segments: segment 0 holds `single`'s only segment, the rest are empty.
kj::Array<kj::byte> withSegments(kj::ArrayPtr<const kj::byte> single, uint32_t segments) {
  auto body = single.slice(8, single.size());
  size_t table = (size_t(segments) + 2) / 2 * 8;
  auto out = kj::heapArray<kj::byte>(table + body.size());
  memset(out.begin(), 0, out.size());
  putU32(out, 0, segments - 1);
  putU32(out, 4, uint32_t(body.size() / 8));
  memcpy(out.begin() + table, body.begin(), body.size());
  return out;
}

TEST(FrameHeader, SegmentCountAtBelowAndAboveTheLimit) {
  auto ping = encodeFrame(*samples::make(Which::PING));
  Limits limits;
  limits.maxSegments = 4;
  EXPECT_TRUE(decodeFrame(withSegments(ping, 3), limits).is<InboundFrame>());
  EXPECT_TRUE(decodeFrame(withSegments(ping, 4), limits).is<InboundFrame>());
  EXPECT_EQ(failureOf(withSegments(ping, 5), limits), CodecError::segmentCount);

  Limits defaults;
  EXPECT_TRUE(decodeFrame(withSegments(ping, defaults.maxSegments), defaults).is<InboundFrame>());
  EXPECT_EQ(failureOf(withSegments(ping, defaults.maxSegments + 1)), CodecError::segmentCount);
  EXPECT_EQ(failureOf(withSegments(ping, 512)), CodecError::segmentCount);  // docs/bad-inputs.md #3
  EXPECT_EQ(failureOf(withSegments(ping, 600)), CodecError::segmentCount);
}

TEST(FrameHeader, FrameBytesAtBelowAndAboveTheLimit) {
  auto hello = encodeFrame(*samples::make(Which::HELLO));
  Limits limits;
  limits.maxFrameBytes = hello.size();
  EXPECT_TRUE(decodeFrame(hello, limits).is<InboundFrame>());
  limits.maxFrameBytes = hello.size() + 8;
  EXPECT_TRUE(decodeFrame(hello, limits).is<InboundFrame>());
  limits.maxFrameBytes = hello.size() - 8;
  EXPECT_EQ(failureOf(hello, limits), CodecError::frameTooLarge);
}

TEST(FrameHeader, OversizeIsRefusedFromTheHeaderAlone) {
  // docs/bad-inputs.md #1 and 3: a length above the limit, and sizes summing past it, are refused
  // as soon as the table is in, before any body byte arrives or anything is allocated for it.
  struct Case {
    uint32_t count;
    uint32_t sizes[3];
  };
  Case cases[] = {{1, {(16u << 20) / 8, 0, 0}},  // one word over 16 MiB with the table
                  {1, {0xFFFFFFFF, 0, 0}},       // largest possible segment
                  {3, {0x7FFFFFFF, 0x7FFFFFFF, 0x7FFFFFFF}}};  // sum past any limit
  for (auto& c : cases) {
    auto header = kj::heapArray<kj::byte>((size_t(c.count) + 2) / 2 * 8);
    memset(header.begin(), 0, header.size());
    putU32(header, 0, c.count - 1);
    for (uint32_t i = 0; i < c.count; ++i)
      putU32(header, 4 + 4 * i, c.sizes[i]);
    FrameDecoder decoder{Limits()};
    auto space = decoder.writable();
    memcpy(space.begin(), header.begin(), header.size());
    decoder.commit(header.size());
    auto r = KJ_ASSERT_NONNULL(decoder.next());
    EXPECT_EQ(r.get<Failure>().error, CodecError::frameTooLarge);
  }
}

TEST(FrameHeader, SegmentZeroMustHoldTheRoot) {
  auto bytes = kj::heapArray<kj::byte>(16);
  memset(bytes.begin(), 0, bytes.size());
  putU32(bytes, 0, 1);  // two segments, both empty
  EXPECT_EQ(failureOf(bytes), CodecError::malformed);
}

TEST(FrameHeader, TableCutShortIsTruncated) {
  // Three segments need a 16-byte table; only 8 bytes arrive before EOF.
  auto bytes = kj::heapArray<kj::byte>(8);
  putU32(bytes, 0, 2);
  putU32(bytes, 4, 1);
  EXPECT_EQ(failureOf(bytes), CodecError::truncated);
  FrameDecoder decoder{Limits()};
  size_t pieces[] = {8};
  auto fed = test::feed(decoder, bytes, pieces);
  ASSERT_EQ(fed.failures.size(), 1u);
  EXPECT_EQ(fed.failures[0].error, CodecError::truncated);
}

TEST(Frame, EveryPrefixIsTruncated) {
  auto bytes = encodeFrame(*samples::make(Which::MANIFEST));
  for (size_t n = 1; n < bytes.size(); ++n) {
    auto prefix = bytes.slice(0, n);
    EXPECT_EQ(failureOf(prefix), CodecError::truncated) << n;
    FrameDecoder decoder{Limits()};
    size_t pieces[] = {7};
    auto fed = test::feed(decoder, prefix, pieces);
    EXPECT_EQ(fed.frames.size(), 0u);
    ASSERT_EQ(fed.failures.size(), 1u) << n;
    EXPECT_EQ(fed.failures[0].error, CodecError::truncated);
  }
  FrameDecoder clean{Limits()};
  EXPECT_EQ(clean.finish(), nullptr);  // EOF at a frame boundary is not an error
}

TEST(Frame, TrailingBytesAreRefused) {
  auto ping = encodeFrame(*samples::make(Which::PING));
  auto longer = kj::heapArray<kj::byte>(ping.size() + 8);
  memset(longer.begin(), 0, longer.size());
  memcpy(longer.begin(), ping.begin(), ping.size());
  EXPECT_EQ(failureOf(longer), CodecError::malformed);
}

// A one-segment frame whose segment is `words` (little-endian 64-bit values).
kj::Array<kj::byte> rawFrame(std::initializer_list<uint64_t> words) {
  auto out = kj::heapArray<kj::byte>(8 + 8 * words.size());
  putU32(out, 0, 0);
  putU32(out, 4, uint32_t(words.size()));
  size_t at = 8;
  for (uint64_t w : words) {
    for (int i = 0; i < 8; ++i)
      out[at++] = kj::byte(w >> (8 * i));
  }
  return out;
}

TEST(Frame, PointersOutOfBoundsAreMalformed) {
  // docs/bad-inputs.md #4. Struct pointer: offset 1000 words past a one-word segment.
  EXPECT_EQ(failureOf(rawFrame({uint64_t(1000) << 2 | 0x0001000100000000ull})),
            CodecError::malformed);
  // Negative offset pointing before the segment.
  EXPECT_EQ(failureOf(rawFrame({uint64_t(uint32_t(-1000) << 2) | 0x0001000100000000ull})),
            CodecError::malformed);
  // Far pointer (tag 2) into segment 7, which does not exist.
  EXPECT_EQ(failureOf(rawFrame({uint64_t(7) << 32 | 2})), CodecError::malformed);
  // List pointer claiming 2^29-1 eight-byte elements in a one-word segment.
  auto frame = rawFrame({0x0001000100000000ull, 0, uint64_t(0x1FFFFFFF) << 35 | 5ull << 32 | 1});
  EXPECT_NE(failureOf(frame), CodecError::truncated);
}

TEST(Frame, EveryStructPointerIsCheckedEvenWithoutPointerFields) {
  // Found by fuzz_message: a Ping whose struct pointer points past the segment passed validation
  // and threw later, when the session read the nonce.
  for (auto kind : {Which::PING, Which::PONG, Which::CANCEL, Which::GET_LIBRARY}) {
    auto message = samples::make(kind);
    auto bytes = encodeFrame(*message);
    // The root struct's first pointer is the union member; push its offset out of bounds.
    auto rootPointer = bytes.slice(8, 16);
    uint32_t rootOffset = (uint32_t(rootPointer[0]) | uint32_t(rootPointer[1]) << 8) >> 2;
    size_t memberPointer = 8 + 8 * (1 + rootOffset + 1);  // root data section is one word
    putU32(bytes, memberPointer, (1000u << 2) | 0u);
    EXPECT_EQ(failureOf(bytes), CodecError::malformed) << name(kind).cStr();
  }
}

TEST(Frame, ZeroSizedElementListIsNotAmplified) {
  // docs/bad-inputs.md #5 (CVE-2015-2312): a list of 2^28 Void elements takes no bytes at all.
  auto message = samples::make(Which::HELLO);
  auto hello = capnp::AnyStruct::Builder(message->getRoot<wire::Frame>().getHello());
  hello.getPointerSection()[2].initAs<capnp::List<capnp::Void>>(1u << 28);  // features
  auto bytes = encodeFrame(*message);
  EXPECT_LT(bytes.size(), 1024u);
  EXPECT_EQ(failureOf(bytes), CodecError::malformed);
}

TEST(Frame, NestingAndTraversalLimits) {
  // docs/bad-inputs.md #6: nesting deeper than the limit.
  auto bytes = encodeFrame(*samples::make(Which::MANIFEST));
  EXPECT_TRUE(decodeFrame(bytes).is<InboundFrame>());
  Limits shallow;
  shallow.nestingLimit = 2;
  EXPECT_EQ(failureOf(bytes, shallow), CodecError::malformed);
  Limits tight;
  tight.traversalLimitWords = 4;
  EXPECT_EQ(failureOf(bytes, tight), CodecError::malformed);
}

TEST(Frame, UnknownUnionMemberIsRefused) {
  // docs/bad-inputs.md #8: a kind from a newer version.
  auto message = samples::make(Which::PING);
  auto root = capnp::AnyStruct::Builder(message->getRoot<wire::Frame>());
  auto data = root.getDataSection();
  data[0] = 99;
  data[1] = 0;
  auto bytes = encodeFrame(*message);
  EXPECT_EQ(failureOf(bytes), CodecError::unknownMessage);
}

TEST(Frame, GarbageNeverCrashesAndBothEntryPointsAgree) {
  uint64_t state = 0x9E3779B97F4A7C15ull;
  auto next = [&]() {
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return state;
  };
  size_t failures = 0;
  for (int round = 0; round < 3000; ++round) {
    auto bytes = kj::heapArray<kj::byte>(1 + next() % 300);
    for (auto& b : bytes)
      b = kj::byte(next());
    // Small segment counts make the body reachable in some rounds.
    if (bytes.size() >= 8 && round % 2 == 0) putU32(bytes, 0, uint32_t(next() % 3));
    if (bytes.size() >= 8 && round % 4 == 0) putU32(bytes, 4, uint32_t((bytes.size() - 8) / 8));
    auto direct = decodeFrame(bytes);
    FrameDecoder decoder{Limits()};
    size_t pieces[] = {1, 5, 3};
    auto fed = test::feed(decoder, bytes, pieces);
    KJ_IF_MAYBE (f, direct.tryGet<Failure>()) {
      ++failures;
      // The streaming decoder may have found a complete frame followed by more bytes; otherwise
      // it reports the same kind of failure.
      if (fed.frames.size() == 0) {
        ASSERT_EQ(fed.failures.size(), 1u);
        EXPECT_EQ(fed.failures[0].error, f->error) << f->message.cStr();
      }
    } else {
      EXPECT_EQ(fed.frames.size(), 1u);
    }
  }
  EXPECT_GT(failures, 0u);
}

// --- FrameReader / FrameWriter over in-memory streams ---

struct Loop {
  kj::EventLoop loop;
  kj::WaitScope waitScope{loop};
};

// Writes `bytes` one byte per write, then ends the stream.
kj::Promise<void> dribble(kj::Own<kj::AsyncOutputStream> out, kj::Array<kj::byte> bytes,
                          size_t at = 0) {
  if (at == bytes.size()) return kj::READY_NOW;
  auto& ref = *out;
  return ref.write(bytes.begin() + at, 1)
      .then([out = kj::mv(out), bytes = kj::mv(bytes), at]() mutable {
        return dribble(kj::mv(out), kj::mv(bytes), at + 1);
      });
}

kj::Vector<ReadResult> readAll(FrameReader& reader, kj::WaitScope& ws) {
  kj::Vector<ReadResult> results;
  for (;;) {
    auto r = reader.read().wait(ws);
    bool done = !r.is<InboundFrame>();
    results.add(kj::mv(r));
    if (done) return results;
  }
}

TEST(FrameReader, ReadsFramesSentOneByteAtATime) {
  Loop l;
  auto pipe = kj::newOneWayPipe();
  auto writing = dribble(kj::mv(pipe.out), allSamples()).eagerlyEvaluate(nullptr);
  FrameReader reader(*pipe.in, Limits());
  auto results = readAll(reader, l.waitScope);
  auto kinds = samples::allKinds();
  ASSERT_EQ(results.size(), kinds.size() + 1);
  for (size_t i = 0; i < kinds.size(); ++i) {
    EXPECT_EQ(results[i].get<InboundFrame>().kind(), kinds[i]);
  }
  EXPECT_TRUE(results.back().is<EndOfStream>());
  EXPECT_EQ(reader.bytesRead(), allSamples().size());
  writing.wait(l.waitScope);
}

TEST(FrameReader, RefusesTheAllOnesFirstWordOnTheStream) {
  // The async entry point the peer ships, on the exact input Cap'n Proto 0.9.2 mishandles.
  Loop l;
  auto pipe = kj::newOneWayPipe();
  auto bytes = kj::heapArray<kj::byte>(4096);
  memset(bytes.begin(), 0xFF, bytes.size());
  auto writing = pipe.out->write(bytes.begin(), bytes.size()).eagerlyEvaluate(nullptr);
  FrameReader reader(*pipe.in, Limits());
  auto result = reader.read().wait(l.waitScope);
  EXPECT_EQ(result.get<Failure>().error, CodecError::segmentCount);
}

TEST(FrameReader, EndInsideAFrameIsTruncated) {
  Loop l;
  auto pipe = kj::newOneWayPipe();
  auto bytes = encodeFrame(*samples::make(Which::HELLO));
  auto cut = kj::heapArray(bytes.slice(0, bytes.size() - 3));
  auto writing = dribble(kj::mv(pipe.out), kj::mv(cut)).eagerlyEvaluate(nullptr);
  FrameReader reader(*pipe.in, Limits());
  auto result = reader.read().wait(l.waitScope);
  EXPECT_EQ(result.get<Failure>().error, CodecError::truncated);
}

TEST(FrameWriter, WritesQueuedFramesInOrder) {
  Loop l;
  auto pipe = kj::newOneWayPipe();
  FrameWriter writer(*pipe.out, 16 * 1024 * 1024);
  auto kinds = samples::allKinds();
  for (int round = 0; round < 20; ++round) {
    for (auto kind : kinds)
      EXPECT_EQ(writer.queue(samples::make(kind)), nullptr);
  }
  writer.queue(samples::chunk(77, 3 * 1024 * 1024));
  writer.close();
  auto running = writer.run().then([&]() { pipe.out = nullptr; }).eagerlyEvaluate(nullptr);
  FrameReader reader(*pipe.in, Limits());
  auto results = readAll(reader, l.waitScope);
  ASSERT_EQ(results.size(), 20 * kinds.size() + 2);
  for (size_t i = 0; i < 20 * kinds.size(); ++i) {
    EXPECT_EQ(results[i].get<InboundFrame>().kind(), kinds[i % kinds.size()]);
  }
  EXPECT_EQ(results[20 * kinds.size()].get<InboundFrame>().root().getChunk().getId(), 77u);
  EXPECT_TRUE(results.back().is<EndOfStream>());
  running.wait(l.waitScope);
  EXPECT_EQ(writer.queuedBytes(), 0u);
  EXPECT_EQ(writer.bytesWritten(), reader.bytesRead());
}

TEST(FrameWriter, RefusesFramesAboveThePeersLimit) {
  Loop l;
  auto pipe = kj::newOneWayPipe();
  FrameWriter writer(*pipe.out, kMinFrameBytes);
  auto failure = writer.queue(samples::chunk(1, kMinFrameBytes));
  EXPECT_EQ(KJ_ASSERT_NONNULL(failure).error, CodecError::frameTooLarge);
  EXPECT_EQ(writer.queuedBytes(), 0u);
  EXPECT_EQ(writer.queue(samples::chunk(1, kMinFrameBytes - 1024)), nullptr);
}

TEST(FrameWriter, WhenQueuedBelowWaitsForTheReader) {
  Loop l;
  auto pipe = kj::newOneWayPipe();
  FrameWriter writer(*pipe.out, 16 * 1024 * 1024);
  auto running = writer.run().eagerlyEvaluate(nullptr);
  for (int i = 0; i < 4; ++i)
    writer.queue(samples::chunk(i + 1, 256 * 1024));
  l.waitScope.poll();
  EXPECT_GE(writer.queuedBytes(), 4u * 256 * 1024);  // the pipe has no buffer: all still owed
  auto below = writer.whenQueuedBelow(300 * 1024);
  EXPECT_FALSE(below.poll(l.waitScope));
  EXPECT_TRUE(writer.whenQueuedBelow(8u << 20).poll(l.waitScope));  // already below that
  // The reader takes frames; the waiter is released once the backlog is below its mark.
  FrameReader reader(*pipe.in, Limits());
  for (int i = 0; i < 4 && !below.poll(l.waitScope); ++i) {
    EXPECT_TRUE(reader.read().wait(l.waitScope).is<InboundFrame>());
  }
  EXPECT_TRUE(below.poll(l.waitScope));
  EXPECT_LT(writer.queuedBytes(), 300u * 1024);
}

TEST(FrameWriter, WaitersAreReleasedWhenTheWriterFails) {
  Loop l;
  auto pipe = kj::newOneWayPipe();
  FrameWriter writer(*pipe.out, 16 * 1024 * 1024);
  writer.queue(samples::chunk(1, 256 * 1024));
  auto running = writer.run().then([]() {}, [](kj::Exception&&) {}).eagerlyEvaluate(nullptr);
  auto below = writer.whenQueuedBelow(1024);
  EXPECT_FALSE(below.poll(l.waitScope));
  pipe.in = nullptr;  // the peer goes away: the write fails
  EXPECT_TRUE(below.poll(l.waitScope));
}

TEST(FrameWriter, WriteErrorEndsRun) {
  Loop l;
  auto pipe = kj::newOneWayPipe();
  FrameWriter writer(*pipe.out, 16 * 1024 * 1024);
  writer.queue(samples::make(Which::PING));
  pipe.in = nullptr;  // the reader goes away: the write fails
  auto result = writer.run().then([]() { return false; }, [](kj::Exception&&) { return true; });
  EXPECT_TRUE(result.wait(l.waitScope));
}

}  // namespace
}  // namespace shoal::codec
