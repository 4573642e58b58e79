// The control API's replies (schema/control.capnp), built from what the runtime shows of itself:
// `shoal status`, `shoal peers`, `shoal ls` and the conformance runner read these. The runtime
// keeps no knowledge of the reply types; its events share their fields (runtime/event-fields.h).
#pragma once

#include <shoal/peer/runtime/runtime.h>
#include <shoal/schema/control.capnp.h>

namespace shoal::peer {

// Our status, downloads under way included.
void fillStatus(const Runtime& runtime, control::Status::Builder status);
void fillDownloadInfo(control::DownloadInfo::Builder info, kj::StringPtr itemId,
                      const download::DownloadStatus& status);
// Every established peer.
void fillPeers(const Runtime& runtime,
               kj::FunctionParam<capnp::List<control::PeerInfo>::Builder(kj::uint)> init);
// The items of every peer, merged by (itemId, manifest digest), each with what we have of it.
void fillItems(const Runtime& runtime,
               kj::FunctionParam<capnp::List<control::RemoteItem>::Builder(kj::uint)> init);

}  // namespace shoal::peer
