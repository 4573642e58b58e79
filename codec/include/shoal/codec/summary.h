// LibrarySummary as a plain value: {epoch, rev, digest} names one exact state of a library.
#pragma once

#include <shoal/codec/digest.h>
#include <shoal/schema/shoal.capnp.h>

namespace shoal::codec {

struct Summary {
  uint64_t epoch = 0;  // 0 only before anything was published
  uint64_t rev = 0;
  Digest digest;

  bool operator==(const Summary& other) const {
    return epoch == other.epoch && rev == other.rev && digest == other.digest;
  }
  bool operator!=(const Summary& other) const { return !(*this == other); }

  // The reader must come from a validated frame (digest length checked).
  static Summary fromWire(wire::LibrarySummary::Reader reader);
  void toWire(wire::LibrarySummary::Builder builder) const;
};

kj::String KJ_STRINGIFY(const Summary& s);

}  // namespace shoal::codec
