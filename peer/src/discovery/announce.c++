#include <shoal/peer/discovery/announce.h>

#include <string.h>

#include <kj/debug.h>
#include <shoal/codec/frame.h>
#include <shoal/codec/frames.h>
#include <shoal/codec/validate.h>
#include <shoal/mutant.h>

namespace shoal::peer::discovery {

namespace {

// A datagram is read with every limit of a frame, and the datagram's own size limit.
codec::Limits datagramLimits() {
  codec::Limits limits;
  limits.maxFrameBytes = kMaxDatagramBytes;
  // Validation and the reader after it share this budget; a few passes over 150 words is all an
  // honest datagram needs, and it still bounds amplification by a crafted one.
  limits.traversalLimitWords = 16 * kMaxDatagramBytes / sizeof(capnp::word);
  return limits;
}

// The first frame of `datagram`, whatever follows it: what the mutant datagram-first-frame reads
// instead of checking that the datagram is exactly one frame ([DSC-4], [DSC-7]).
codec::DecodeResult firstFrame(kj::ArrayPtr<const kj::byte> datagram) {
  codec::FrameDecoder reader(datagramLimits());
  auto room = reader.writable();
  auto n = kj::min(room.size(), datagram.size());
  memcpy(room.begin(), datagram.begin(), n);
  reader.commit(n);
  KJ_IF_MAYBE (result, reader.next()) {
    return kj::mv(*result);
  }
  return codec::Failure{codec::CodecError::truncated, kj::str("no whole frame")};
}

}  // namespace

kj::StringPtr name(DropReason reason) {
  switch (reason) {
    case DropReason::tooLarge: return "tooLarge";
    case DropReason::invalid: return "invalid";
    case DropReason::notAnnounce: return "notAnnounce";
    case DropReason::own: return "own";
    case DropReason::incompatible: return "incompatible";
    case DropReason::rateLimited: return "rateLimited";
    case DropReason::foreign: return "foreign";
  }
  KJ_UNREACHABLE;
}

kj::Array<kj::byte> encodeAnnounce(const Announce& announce) {
  auto frame = codec::newFrame(kMaxDatagramBytes / sizeof(capnp::word));
  auto a = codec::rootOf(*frame).initAnnounce();
  a.setPeerId(announce.peerId.asBytes());
  a.setInstanceId(announce.instanceId);
  a.setPort(uint16_t(announce.port + (isMutant(Mutant::announceWrongPort) ? 1 : 0)));
  a.setName(codec::sanitizeText(announce.name, codec::Limits().maxNameBytes));
  a.setVersionMin(announce.versionMin);
  a.setVersionMax(announce.versionMax);
  announce.summary.toWire(a.initSummary());
  auto bytes = codec::encodeFrame(*frame);
  // Fixed fields take under 200 bytes and the name at most 256: a longer datagram is our bug.
  KJ_ASSERT(bytes.size() <= kMaxDatagramBytes, bytes.size());
  if (isMutant(Mutant::announceTrailingByte)) {
    auto longer = kj::heapArray<kj::byte>(bytes.size() + 1);
    memcpy(longer.begin(), bytes.begin(), bytes.size());
    longer[bytes.size()] = 0;
    return longer;
  }
  return bytes;
}

kj::OneOf<Announce, Dropped> decodeAnnounce(kj::ArrayPtr<const kj::byte> datagram) {
  if (datagram.size() > kMaxDatagramBytes) {
    return Dropped{DropReason::tooLarge, kj::str(datagram.size(), " bytes")};
  }
  auto decoded = isMutant(Mutant::datagramFirstFrame)
                     ? firstFrame(datagram)
                     : codec::decodeFrame(datagram, datagramLimits());
  KJ_SWITCH_ONEOF(decoded) {
    KJ_CASE_ONEOF(failure, codec::Failure) {
      return Dropped{DropReason::invalid, kj::str(failure.error, ": ", failure.message)};
    }
    KJ_CASE_ONEOF(frame, codec::InboundFrame) {
      if (frame.kind() != wire::Frame::ANNOUNCE) {
        return Dropped{DropReason::notAnnounce, kj::str(codec::name(frame.kind()))};
      }
      auto a = frame.root().getAnnounce();
      return Announce{KJ_ASSERT_NONNULL(PeerId::from(a.getPeerId())),
                      a.getInstanceId(),
                      a.getPort(),
                      kj::str(a.getName()),
                      a.getVersionMin(),
                      a.getVersionMax(),
                      codec::Summary::fromWire(a.getSummary())};
    }
  }
  KJ_UNREACHABLE;
}

}  // namespace shoal::peer::discovery
