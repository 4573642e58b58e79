// The text form of the runtime's events: one line each, for `shoal serve` and `shoal stop`.
#include "cli.h"

namespace shoal::peer::cli {

namespace {

kj::String retryText(uint32_t retryMs) {
  if (retryMs == 0) return kj::str("not retried");
  if (retryMs < 1000) return kj::str("retry in ", retryMs, " ms");
  return kj::str("retry in ", retryMs / 1000, ".", retryMs % 1000 / 100, " s");
}

kj::String durationText(uint64_t ms) {
  uint64_t s = (ms + 500) / 1000;
  if (s == 0) return kj::str("under 1 s");
  if (s < 120) return kj::str(s, " s");
  if (s < 7200) return kj::str(s / 60, " min ", s % 60, " s");
  return kj::str(s / 3600, " h ", s / 60 % 60, " min");
}

// One function per event kind: the text of each is pinned by the CLI tests.
using Event = control::Event;

kj::String describe(control::PeerInfo::Reader p) {
  return kj::str("peer found: ", p.getName(), " (", shortId(p.getPeerId()), ") at ", p.getAddress(),
                 p.getDirection() == control::Direction::OUTBOUND ? ", dialled" : ", dialled us",
                 p.getAuthenticated() ? ", TLS" : ", PLAINTEXT");
}

kj::String describe(Event::PeerLost::Reader p) {
  return kj::str("peer lost: ", shortId(p.getPeerId()), " (", p.getReason(), ")");
}

kj::String describe(Event::LibraryChanged::Reader l) {
  auto who = l.getPeerId().size() == 0 ? kj::str("our library")
                                       : kj::str("library of ", shortId(l.getPeerId()));
  return kj::str(who, ": rev ", l.getSummary().getRev(), ", ", l.getItems(), " items");
}

kj::String describe(Event::RuntimeFailed::Reader f) {
  return kj::str("FAILED: ", f.getComponent(), ": ", f.getError());
}

kj::String describe(Event::ServiceRestarted::Reader r) {
  return kj::str("restarting ", r.getComponent(), " in ", r.getBackoffMs(), " ms: ", r.getError());
}

kj::String describe(Event::Stopped::Reader s) {
  return kj::str("stopped ", s.getClean() ? "cleanly" : "UNCLEANLY", " in ", s.getElapsedMs(),
                 " ms (Goodbye sent to ", s.getGoodbyes(), " peers)");
}

kj::String describe(Event::Started::Reader s) {
  return kj::str("started: peer ", s.getPeerId(), " listening on ", s.getListen(), ", ",
                 s.getItems(), " items");
}

kj::String describe(Event::GoodbyeReceived::Reader g) {
  return kj::str("goodbye from ", shortId(g.getPeerId()), " (", g.getReason(), ": ", g.getMessage(),
                 ")");
}

kj::String describe(Event::DialFailed::Reader d) {
  return kj::str("dial ", d.getAddress(), " failed (", d.getCode(), "): ", d.getMessage(), "; ",
                 retryText(d.getRetryMs()));
}

kj::String describe(Event::PeerRefused::Reader r) {
  return kj::str("peer at ", r.getAddress(), " refused us (", r.getCode(), "): ", r.getMessage(),
                 "; ", retryText(r.getRetryMs()));
}

kj::String describe(Event::HandshakeFailed::Reader h) {
  auto more = h.getSuppressed() == 0
                  ? kj::str()
                  : kj::str(" (and ", h.getSuppressed(), " more since the last report)");
  return kj::str("handshake from ", h.getAddress(), " failed at ", h.getStage(), ": ",
                 h.getReason(), more);
}

kj::String describe(Event::DownloadStarted::Reader d) {
  return kj::str("download of '", d.getItemId(), "' started");
}

kj::String describe(Event::DownloadManifest::Reader m) {
  return kj::str("download of '", m.getItemId(), "': ", formatBytes(m.getTotalBytes()), " in ",
                 m.getFiles(), " files, ", m.getChunks(), " chunks");
}

kj::String describe(Event::DownloadProgress::Reader p) {
  return kj::str("download of '", p.getItemId(), "': ", formatBytes(p.getBytesDone()), " of ",
                 formatBytes(p.getBytesTotal()), " from ", p.getSourcesInUse(), " peers");
}

kj::String describe(Event::DownloadBadChunk::Reader b) {
  return kj::str("download of '", b.getItemId(), "': peer ", shortId(b.getPeerId()),
                 " sent a chunk that failed verification (", b.getCount(),
                 " so far); nothing of it was written");
}

kj::String describe(Event::DownloadSourceDropped::Reader d) {
  return kj::str("download of '", d.getItemId(), "': peer ", shortId(d.getPeerId()),
                 " no longer used (", d.getReason(), "): ", d.getDetail());
}

kj::String describe(Event::DownloadAllPeersGone::Reader g) {
  return kj::str("download of '", g.getItemId(), "': no peer with the item is left; progress kept");
}

kj::String describe(Event::DownloadEnded::Reader d) {
  auto why = d.getMessage().size() > 0 ? kj::str(": ", d.getMessage()) : kj::str();
  return kj::str("download of '", d.getItemId(), "' ended: ", d.getOutcome(), why);
}

}  // namespace

kj::String describeScan(control::ScanProgress::Reader scan) {
  auto ofBytes = scan.getWalked() ? kj::str(" of ", formatBytes(scan.getBytesToHash())) : kj::str();
  auto percent =
      scan.getWalked() && scan.getBytesToHash() > 0
          ? kj::str(" (",
                    kj::min(uint64_t(100), scan.getBytesHashed() * 100 / scan.getBytesToHash()),
                    " %)")
          : kj::str();
  auto files = kj::str(scan.getFilesHashed(),
                       scan.getWalked() ? kj::str(" of ", scan.getFilesToHash())
                                        : kj::str(" of ", scan.getFilesToHash(), "+"),
                       " files");
  auto rate = kj::str(formatBytes(scan.getBytesPerSecond()), "/s");
  auto left = scan.getDone() ? kj::str(", done")
              : scan.getWalked() && scan.getEtaMs() > 0
                  ? kj::str(", about ", durationText(scan.getEtaMs()), " left")
                  : kj::str();
  return kj::str("hashed ", formatBytes(scan.getBytesHashed()), ofBytes, percent, ", ", files, ", ",
                 rate, left);
}

kj::String describeEvent(control::Event::Reader event) {
  switch (event.which()) {
    case Event::STARTED: return describe(event.getStarted());
    case Event::PEER_FOUND: return describe(event.getPeerFound());
    case Event::PEER_LOST: return describe(event.getPeerLost());
    case Event::LIBRARY_CHANGED: return describe(event.getLibraryChanged());
    case Event::RUNTIME_FAILED: return describe(event.getRuntimeFailed());
    case Event::SERVICE_RESTARTED: return describe(event.getServiceRestarted());
    case Event::GOODBYE_RECEIVED: return describe(event.getGoodbyeReceived());
    case Event::STOPPED: return describe(event.getStopped());
    case Event::DIAL_FAILED: return describe(event.getDialFailed());
    case Event::PEER_REFUSED: return describe(event.getPeerRefused());
    case Event::SCAN_PROGRESS: return kj::str("scan: ", describeScan(event.getScanProgress()));
    case Event::HANDSHAKE_FAILED: return describe(event.getHandshakeFailed());
    case Event::DOWNLOAD_STARTED: return describe(event.getDownloadStarted());
    case Event::DOWNLOAD_MANIFEST: return describe(event.getDownloadManifest());
    case Event::DOWNLOAD_PROGRESS: return describe(event.getDownloadProgress());
    case Event::DOWNLOAD_BAD_CHUNK: return describe(event.getDownloadBadChunk());
    case Event::DOWNLOAD_SOURCE_DROPPED: return describe(event.getDownloadSourceDropped());
    case Event::DOWNLOAD_ALL_PEERS_GONE: return describe(event.getDownloadAllPeersGone());
    case Event::DOWNLOAD_ENDED: return describe(event.getDownloadEnded());
  }
  return kj::str("event ", uint32_t(event.which()));
}

}  // namespace shoal::peer::cli
