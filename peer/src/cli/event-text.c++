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

}  // namespace

kj::String describeScan(control::ScanProgress::Reader p) {
  auto ofBytes = p.getWalked() ? kj::str(" of ", formatBytes(p.getBytesToHash())) : kj::str();
  auto percent =
      p.getWalked() && p.getBytesToHash() > 0
          ? kj::str(" (", kj::min(uint64_t(100), p.getBytesHashed() * 100 / p.getBytesToHash()),
                    " %)")
          : kj::str();
  auto files = kj::str(p.getFilesHashed(),
                       p.getWalked() ? kj::str(" of ", p.getFilesToHash())
                                     : kj::str(" of ", p.getFilesToHash(), "+"),
                       " files");
  auto rate = kj::str(formatBytes(p.getBytesPerSecond()), "/s");
  auto left = p.getDone() ? kj::str(", done")
              : p.getWalked() && p.getEtaMs() > 0
                  ? kj::str(", about ", durationText(p.getEtaMs()), " left")
                  : kj::str();
  return kj::str("hashed ", formatBytes(p.getBytesHashed()), ofBytes, percent, ", ", files, ", ",
                 rate, left);
}

kj::String describeEvent(control::Event::Reader e) {
  switch (e.which()) {
    case control::Event::STARTED: {
      auto s = e.getStarted();
      return kj::str("started: peer ", s.getPeerId(), " listening on ", s.getListen(), ", ",
                     s.getItems(), " items");
    }
    case control::Event::PEER_FOUND: {
      auto p = e.getPeerFound();
      return kj::str(
          "peer found: ", p.getName(), " (", shortId(p.getPeerId()), ") at ", p.getAddress(),
          p.getDirection() == control::Direction::OUTBOUND ? ", dialled" : ", dialled us",
          p.getAuthenticated() ? ", TLS" : ", PLAINTEXT");
    }
    case control::Event::PEER_LOST: {
      auto p = e.getPeerLost();
      return kj::str("peer lost: ", shortId(p.getPeerId()), " (", p.getReason(), ")");
    }
    case control::Event::LIBRARY_CHANGED: {
      auto l = e.getLibraryChanged();
      auto who = l.getPeerId().size() == 0 ? kj::str("our library")
                                           : kj::str("library of ", shortId(l.getPeerId()));
      return kj::str(who, ": rev ", l.getSummary().getRev(), ", ", l.getItems(), " items");
    }
    case control::Event::RUNTIME_FAILED: {
      auto f = e.getRuntimeFailed();
      return kj::str("FAILED: ", f.getComponent(), ": ", f.getError());
    }
    case control::Event::SERVICE_RESTARTED: {
      auto r = e.getServiceRestarted();
      return kj::str("restarting ", r.getComponent(), " in ", r.getBackoffMs(),
                     " ms: ", r.getError());
    }
    case control::Event::GOODBYE_RECEIVED: {
      auto g = e.getGoodbyeReceived();
      return kj::str("goodbye from ", shortId(g.getPeerId()), " (", g.getReason(), ": ",
                     g.getMessage(), ")");
    }
    case control::Event::STOPPED: {
      auto s = e.getStopped();
      return kj::str("stopped ", s.getClean() ? "cleanly" : "UNCLEANLY", " in ", s.getElapsedMs(),
                     " ms (Goodbye sent to ", s.getGoodbyes(), " peers)");
    }
    case control::Event::DIAL_FAILED: {
      auto d = e.getDialFailed();
      return kj::str("dial ", d.getAddress(), " failed (", d.getCode(), "): ", d.getMessage(), "; ",
                     retryText(d.getRetryMs()));
    }
    case control::Event::PEER_REFUSED: {
      auto r = e.getPeerRefused();
      return kj::str("peer at ", r.getAddress(), " refused us (", r.getCode(),
                     "): ", r.getMessage(), "; ", retryText(r.getRetryMs()));
    }
    case control::Event::SCAN_PROGRESS: return kj::str("scan: ", describeScan(e.getScanProgress()));
    case control::Event::HANDSHAKE_FAILED: {
      auto h = e.getHandshakeFailed();
      auto more = h.getSuppressed() == 0
                      ? kj::str()
                      : kj::str(" (and ", h.getSuppressed(), " more since the last report)");
      return kj::str("handshake from ", h.getAddress(), " failed at ", h.getStage(), ": ",
                     h.getReason(), more);
    }
    case control::Event::DOWNLOAD_STARTED:
      return kj::str("download of '", e.getDownloadStarted().getItemId(), "' started");
    case control::Event::DOWNLOAD_MANIFEST: {
      auto m = e.getDownloadManifest();
      return kj::str("download of '", m.getItemId(), "': ", formatBytes(m.getTotalBytes()), " in ",
                     m.getFiles(), " files, ", m.getChunks(), " chunks");
    }
    case control::Event::DOWNLOAD_PROGRESS: {
      auto p = e.getDownloadProgress();
      return kj::str("download of '", p.getItemId(), "': ", formatBytes(p.getBytesDone()), " of ",
                     formatBytes(p.getBytesTotal()), " from ", p.getSourcesInUse(), " peers");
    }
    case control::Event::DOWNLOAD_BAD_CHUNK: {
      auto b = e.getDownloadBadChunk();
      return kj::str("download of '", b.getItemId(), "': peer ", shortId(b.getPeerId()),
                     " sent a chunk that failed verification (", b.getCount(),
                     " so far); nothing of it was written");
    }
    case control::Event::DOWNLOAD_SOURCE_DROPPED: {
      auto d = e.getDownloadSourceDropped();
      return kj::str("download of '", d.getItemId(), "': peer ", shortId(d.getPeerId()),
                     " no longer used (", d.getReason(), "): ", d.getDetail());
    }
    case control::Event::DOWNLOAD_ALL_PEERS_GONE:
      return kj::str("download of '", e.getDownloadAllPeersGone().getItemId(),
                     "': no peer with the item is left; progress kept");
    case control::Event::DOWNLOAD_ENDED: {
      auto d = e.getDownloadEnded();
      auto why = d.getMessage().size() > 0 ? kj::str(": ", d.getMessage()) : kj::str();
      return kj::str("download of '", d.getItemId(), "' ended: ", d.getOutcome(), why);
    }
  }
  return kj::str("event ", uint32_t(e.which()));
}

}  // namespace shoal::peer::cli
