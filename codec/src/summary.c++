#include <shoal/codec/summary.h>

#include <kj/debug.h>

namespace shoal::codec {

Summary Summary::fromWire(wire::LibrarySummary::Reader reader) {
  return Summary{reader.getEpoch(), reader.getRev(),
                 KJ_ASSERT_NONNULL(Digest::from(reader.getDigest()), "summary not validated")};
}

void Summary::toWire(wire::LibrarySummary::Builder builder) const {
  builder.setEpoch(epoch);
  builder.setRev(rev);
  builder.setDigest(digest.asBytes());
}

kj::String KJ_STRINGIFY(const Summary& s) {
  return kj::str("{epoch ", kj::hex(s.epoch), ", rev ", s.rev, ", digest ",
                 toHex(s.digest).slice(0, 12), "…}");
}

}  // namespace shoal::codec
