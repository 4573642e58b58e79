// Limits: the defaults are consistent, check() names each inconsistent configuration at its exact
// bound (one below fails, the bound passes), and validate() applies the per-page item limit to a
// delta's removals as it does to its upserts.
#include <shoal/codec/limits.h>

#include <gtest/gtest.h>
#include <kj/function.h>
#include <shoal/codec/frame.h>

#include "samples.h"

namespace shoal::codec {
namespace {

// check()'s message for the defaults changed by `change`, or "" when it finds nothing.
kj::String problemWith(kj::Function<void(Limits&)> change) {
  Limits limits;
  change(limits);
  KJ_IF_MAYBE (message, limits.check()) {
    return kj::mv(*message);
  }
  return kj::str();
}

bool mentions(kj::StringPtr message, kj::StringPtr fragment) {
  return strstr(message.cStr(), fragment.cStr()) != nullptr;
}

TEST(Limits, DefaultsAreConsistent) {
  EXPECT_EQ(Limits().check(), nullptr);
  EXPECT_EQ(problemWith([](Limits&) {}), "");
}

TEST(Limits, FrameBytesBelowTheProtocolMinimum) {
  auto p = problemWith([](Limits& l) { l.maxFrameBytes = kMinFrameBytes - 1; });
  EXPECT_TRUE(mentions(p, "maxFrameBytes 65535 is below the protocol minimum 65536")) << p.cStr();
  // The smallest frame any peer may announce works once chunks fit in it.
  EXPECT_EQ(problemWith([](Limits& l) {
              l.maxFrameBytes = kMinFrameBytes;
              l.maxChunkBytes = kMinFrameBytes - kFrameOverheadBytes;
            }),
            "");
}

TEST(Limits, SegmentsOutsideOneTo512) {
  EXPECT_TRUE(mentions(problemWith([](Limits& l) { l.maxSegments = 0; }), "maxSegments"));
  EXPECT_TRUE(mentions(problemWith([](Limits& l) { l.maxSegments = 513; }), "1..512"));
  EXPECT_EQ(problemWith([](Limits& l) { l.maxSegments = 1; }), "");
  EXPECT_EQ(problemWith([](Limits& l) { l.maxSegments = 512; }), "");
}

TEST(Limits, ChunksThatDoNotFitAFrame) {
  uint32_t room = Limits().maxFrameBytes - kFrameOverheadBytes;
  auto p = problemWith([&](Limits& l) { l.maxChunkBytes = room + 1; });
  EXPECT_TRUE(mentions(p, "does not fit a frame of 16777216")) << p.cStr();
  EXPECT_EQ(problemWith([&](Limits& l) { l.maxChunkBytes = room; }), "");
  // The sum is computed in 64 bits: a chunk limit near 4 GiB does not wrap around.
  EXPECT_NE(problemWith([](Limits& l) { l.maxChunkBytes = UINT32_MAX; }), "");
}

TEST(Limits, MinChunkSizeOutsideOneToMaxChunkBytes) {
  EXPECT_TRUE(mentions(problemWith([](Limits& l) { l.minChunkSize = 0; }), "minChunkSize"));
  EXPECT_TRUE(mentions(problemWith([](Limits& l) { l.minChunkSize = l.maxChunkBytes + 1; }),
                       "1..maxChunkBytes"));
  EXPECT_EQ(problemWith([](Limits& l) { l.minChunkSize = 1; }), "");
  EXPECT_EQ(problemWith([](Limits& l) { l.minChunkSize = l.maxChunkBytes; }), "");
}

TEST(Limits, TraversalBelowOneWholeFrame) {
  EXPECT_TRUE(
      mentions(problemWith([](Limits& l) { l.traversalLimitWords = l.maxFrameBytes / 8 - 1; }),
               "traversalLimitWords"));
  EXPECT_EQ(problemWith([](Limits& l) { l.traversalLimitWords = l.maxFrameBytes / 8; }), "");
}

TEST(Limits, NestingTooShallowForTheSchema) {
  EXPECT_TRUE(mentions(problemWith([](Limits& l) { l.nestingLimit = 7; }), "nestingLimit"));
  EXPECT_TRUE(mentions(problemWith([](Limits& l) { l.nestingLimit = 0; }), "nestingLimit"));
  EXPECT_EQ(problemWith([](Limits& l) { l.nestingLimit = 8; }), "");
}

TEST(Limits, ComponentBytesOutsideOneToMaxPathBytes) {
  EXPECT_TRUE(
      mentions(problemWith([](Limits& l) { l.maxComponentBytes = 0; }), "maxComponentBytes"));
  // Below the protocol's 255 bytes, a component may still not exceed the (lowered) path limit.
  EXPECT_TRUE(mentions(problemWith([](Limits& l) {
                         l.maxPathBytes = 200;
                         l.maxComponentBytes = 201;
                       }),
                       "1..maxPathBytes"));
  EXPECT_EQ(problemWith([](Limits& l) { l.maxComponentBytes = 1; }), "");
  EXPECT_EQ(problemWith([](Limits& l) {
              l.maxPathBytes = 200;
              l.maxComponentBytes = 200;
            }),
            "");
}

TEST(Limits, TheFirstInconsistencyIsReported) {
  // Both the frame size and the segment count are wrong: the frame size comes first.
  auto p = problemWith([](Limits& l) {
    l.maxFrameBytes = 1024;
    l.maxSegments = 0;
  });
  EXPECT_TRUE(mentions(p, "maxFrameBytes 1024")) << p.cStr();
}

// A delta whose removals list has `count` ids, validated with `limits`.
DecodeResult deltaWithRemovals(uint32_t count, const Limits& limits) {
  auto message = samples::make(wire::Frame::LIBRARY_DELTA);
  auto removals = message->getRoot<wire::Frame>().getLibraryDelta().initRemovals(count);
  for (uint32_t i = 0; i < count; ++i)
    removals.set(i, kj::str("gone-", 10 + i));
  return decodeFrame(encodeFrame(*message), limits);
}

TEST(Limits, RemovalsCountAgainstItemsPerPage) {
  Limits limits;
  limits.maxItemsPerPage = 3;
  EXPECT_TRUE(deltaWithRemovals(3, limits).is<InboundFrame>());
  auto refused = deltaWithRemovals(4, limits);
  ASSERT_TRUE(refused.is<Failure>());
  EXPECT_EQ(refused.get<Failure>().error, CodecError::badCount);
  EXPECT_TRUE(mentions(refused.get<Failure>().message, "removals has 4, limit 3"))
      << refused.get<Failure>().message.cStr();
  EXPECT_EQ(refused.get<Failure>().requestId, nullptr);  // a broken answer ends the connection
  // With the default limit the same frame is fine.
  EXPECT_TRUE(deltaWithRemovals(4, Limits()).is<InboundFrame>());
}

// [MAN-6] fixes the path limits (docs/protocol.md, "path | 4096 bytes, 64 components | fixed"), so
// a configuration above them must be refused: otherwise the scan lists paths every peer refuses
// and our own server will not open (see RequestServerLimits in peer/test/runtime). Limits::check()
// (codec/src/limits.c++:21) only bounds maxComponentBytes by maxPathBytes, and `shoal serve
// --max-path-bytes` accepts up to 65536 (peer/src/cli/serve.c++:199).
TEST(Limits, PathLimitsAboveTheProtocolAreRefused) {
  EXPECT_NE(problemWith([](Limits& l) { l.maxPathBytes = 4097; }), "");
  EXPECT_NE(problemWith([](Limits& l) { l.maxPathDepth = 65; }), "");
  EXPECT_NE(problemWith([](Limits& l) { l.maxComponentBytes = 256; }), "");
  // Stricter than the protocol is a local choice and stays allowed.
  EXPECT_EQ(problemWith([](Limits& l) { l.maxPathBytes = 256; }), "");
  EXPECT_EQ(problemWith([](Limits& l) { l.maxPathDepth = 8; }), "");
}

}  // namespace
}  // namespace shoal::codec
