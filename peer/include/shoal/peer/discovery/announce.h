// Announce datagrams (docs/protocol.md §12): ours built from the runtime's state, theirs read with
// exactly the checks every frame gets ([DSC-7]: §3 and Table 1, 1200 bytes as the size limit).
// Pure functions over bytes: the beacon core and the fuzz and unit tests share them.
#pragma once

#include <kj/array.h>
#include <kj/one-of.h>
#include <shoal/codec/error.h>
#include <shoal/codec/summary.h>
#include <shoal/peer/transport/identity.h>

namespace shoal::peer::discovery {

// [DSC-4]: one frame per datagram, at most this long (the IPv6 minimum MTU less its headers).
constexpr size_t kMaxDatagramBytes = 1200;
// [DSC-2]: the group port, IPv4 group 239.255.77.47 and IPv6 group ff12::4747.
constexpr uint16_t kGroupPort = 4747;

// What an Announce carries ([DSC-6]); on receipt, nothing in it is trusted ([DSC-8]).
struct Announce {
  PeerId peerId;
  uint64_t instanceId = 0;
  uint16_t port = 0;  // the TCP port the peer accepts connections on
  kj::String name;
  uint16_t versionMin = 1;
  uint16_t versionMax = 1;
  codec::Summary summary;
};

// One datagram holding `announce` as a Frame. The name is cut (sanitizeText) so the datagram
// always fits kMaxDatagramBytes and passes validation on the other side.
kj::Array<kj::byte> encodeAnnounce(const Announce& announce);

// Why a datagram was dropped: every reason is silent on the wire ([DSC-7], [DSC-9]) and counted.
enum class DropReason : uint8_t {
  tooLarge,      // over kMaxDatagramBytes, or truncated by the receive buffer
  invalid,       // not a valid frame (§3, Table 1): the codec's Failure says why
  notAnnounce,   // a valid frame of another kind
  own,           // carries our own peerId (our datagrams loop back)
  incompatible,  // its version range and ours do not overlap: a dial could only be refused
  rateLimited,   // its source, or all sources together, sent more than we read ([DSC-10])
  foreign,       // arrived on an interface or group we did not choose (driver check, [DSC-3])
};
constexpr size_t kDropReasons = 7;
kj::StringPtr name(DropReason reason);

struct Dropped {
  DropReason reason;
  kj::String detail;
};

// The datagram as an Announce, or why it is not one. Own-id and version checks are the beacon's.
kj::OneOf<Announce, Dropped> decodeAnnounce(kj::ArrayPtr<const kj::byte> datagram);

}  // namespace shoal::peer::discovery
