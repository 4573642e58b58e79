// The control.capnp structures the runtime's events carry (a peer, a library summary, a scan's
// progress), filled from the runtime's facts. The control API's replies (control/control-replies.h)
// use the same functions, so an event and a reply never describe one thing two ways.
#pragma once

#include <shoal/codec/summary.h>
#include <shoal/peer/runtime/runtime.h>
#include <shoal/schema/control.capnp.h>

namespace shoal::peer {

void fillSummary(control::Summary::Builder out, const codec::Summary& summary);
void fillPeerInfo(control::PeerInfo::Builder info, const PeerFacts& peer);
// `done`: the scan has ended (its last report; no time left).
void fillScanProgress(control::ScanProgress::Builder out, const library::ScanReport& report,
                      bool done);

}  // namespace shoal::peer
