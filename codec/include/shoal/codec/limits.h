// Every limit the codec enforces, in one struct. Peers announce a subset of these in Hello
// (PeerLimits); the rest are local policy. docs/protocol.md "Framing and limits" names the
// minimums.
#pragma once

#include <stdint.h>

#include <kj/common.h>
#include <kj/string.h>

namespace shoal::codec {

constexpr uint32_t kDigestBytes = 32;
constexpr uint32_t kMinFrameBytes = 64 * 1024;  // no peer may announce less ([FR-6])
constexpr uint32_t kFrameOverheadBytes = 4096;  // room for a Chunk's fields besides its data
// Cap'n Proto's own reader refuses 512 segments or more: no configuration may go higher.
constexpr uint32_t kMaxSegmentsCeiling = 512;
// Longest Error / Goodbye / Reject message the protocol fixes (Table 1); what we send is cut to it.
constexpr uint32_t kMaxMessageBytes = 1024;
// Largest Manifest.chunkSize anyone sends ([MAN-16]).
constexpr uint32_t kMaxChunkSize = 4 * 1024 * 1024;
// Path limits the protocol fixes ([MAN-6]): local limits may be lower, never higher, or we would
// list files that no peer accepts.
constexpr uint32_t kMaxPathBytes = 4096;
constexpr uint32_t kMaxPathDepth = 64;
constexpr uint32_t kMaxComponentBytes = 255;

struct Limits {
  // Framing: checked on the segment table, before any allocation.
  uint32_t maxFrameBytes = 16 * 1024 * 1024;
  uint32_t maxSegments = 64;
  // Cap'n Proto reader limits, per frame (validation and the consumer share the budget).
  uint64_t traversalLimitWords = 8 * 1024 * 1024;
  uint32_t nestingLimit = 16;

  // Text.
  uint32_t maxPathBytes = kMaxPathBytes;
  uint32_t maxComponentBytes = kMaxComponentBytes;
  uint32_t maxPathDepth = kMaxPathDepth;
  uint32_t maxNameBytes = 256;
  uint32_t maxMessageBytes = kMaxMessageBytes;
  uint32_t maxFeatures = 32;
  uint32_t maxFeatureBytes = 64;

  // Lists and pages.
  uint32_t maxItemsPerPage = 100000;
  uint32_t maxFilesPerPage = 100000;
  uint32_t maxFilesPerManifest = 1000000;

  // Chunks and files.
  uint32_t minChunkSize = 4096;              // smallest Manifest.chunkSize accepted
  uint32_t maxChunkBytes = 4 * 1024 * 1024;  // largest GetChunk.length answered and Chunk.data read
  uint64_t maxFileBytes = uint64_t(1) << 50;

  // A description of the first inconsistency (e.g. chunks that cannot fit in a frame), or null.
  kj::Maybe<kj::String> check() const;
};

}  // namespace shoal::codec
