#include <shoal/codec/limits.h>

namespace shoal::codec {

kj::Maybe<kj::String> Limits::check() const {
  if (maxFrameBytes < kMinFrameBytes) {
    return kj::str("maxFrameBytes ", maxFrameBytes, " is below the protocol minimum ",
                   kMinFrameBytes);
  }
  if (maxSegments == 0 || maxSegments > kMaxSegmentsCeiling) {
    return kj::str("maxSegments must be in 1..", kMaxSegmentsCeiling);
  }
  if (uint64_t(maxChunkBytes) + kFrameOverheadBytes > maxFrameBytes) {
    return kj::str("maxChunkBytes ", maxChunkBytes, " does not fit a frame of ", maxFrameBytes);
  }
  if (minChunkSize == 0 || minChunkSize > maxChunkBytes) {
    return kj::str("minChunkSize must be in 1..maxChunkBytes");
  }
  if (traversalLimitWords < maxFrameBytes / 8) {
    return kj::str("traversalLimitWords must cover at least one whole frame");
  }
  if (nestingLimit < 8) return kj::str("nestingLimit below 8 cannot hold the schema");
  if (maxPathBytes > kMaxPathBytes || maxPathDepth > kMaxPathDepth ||
      maxComponentBytes > kMaxComponentBytes) {
    return kj::str("path limits above the protocol's (", kMaxPathBytes, " bytes, ", kMaxPathDepth,
                   " components, ", kMaxComponentBytes,
                   " bytes each): peers could not accept them");
  }
  if (maxComponentBytes == 0 || maxComponentBytes > maxPathBytes) {
    return kj::str("maxComponentBytes must be in 1..maxPathBytes");
  }
  return nullptr;
}

}  // namespace shoal::codec
