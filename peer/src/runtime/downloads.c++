// Runtime downloads: the runtime as the downloads' DownloadSources (its established sessions
// whose peer lists the item), starting and cancelling them for the control API, and their events.
#include <kj/debug.h>
#include <shoal/codec/frames.h>
#include <shoal/codec/path.h>
#include <shoal/peer/runtime/event-fields.h>

#include "runtime-internal.h"

namespace shoal::peer {

using download::DownloadEvent;

download::Folders Runtime::folders() const {
  return download::Folders{stateFd.get(), config.stateDir, rootFd.get(), config.libraryDir};
}

DownloadStart Runtime::startDownload(kj::StringPtr itemId, kj::String& message) {
  if (stopping) {
    message = kj::str("this peer is shutting down");
    return DownloadStart::stopping;
  }
  KJ_IF_MAYBE (problem, codec::checkComponent(itemId.asArray(), config.session.limits)) {
    message = kj::str("not an item id: ", *problem);
    return DownloadStart::badId;
  }
  if (library.find(itemId) != nullptr) {
    message = kj::str("'", itemId, "' is already in the library");
    return DownloadStart::inLibrary;
  }
  auto& service = *KJ_ASSERT_NONNULL(downloads);
  if (service.isDownloading(itemId)) {
    message = kj::str("'", itemId, "' is already downloading");
    return DownloadStart::alreadyRunning;
  }
  // Started before its first event goes out, so a client that subscribed first sees them all.
  emit([&](control::Event::Builder e) { e.initDownloadStarted().setItemId(itemId); });
  KJ_ASSERT(service.start(itemId));
  message = kj::str();
  return DownloadStart::started;
}

bool Runtime::cancelDownload(kj::StringPtr itemId) {
  KJ_IF_MAYBE (service, downloads) {
    return (*service)->cancel(itemId);
  }
  return false;
}

bool Runtime::isDownloading(kj::StringPtr itemId) const {
  KJ_IF_MAYBE (service, downloads) {
    return (*service)->isDownloading(itemId);
  }
  return false;
}

void Runtime::forEachDownload(
    kj::FunctionParam<void(kj::StringPtr, download::DownloadStatus)> func) const {
  KJ_IF_MAYBE (service, downloads) {
    (*service)->forEach(func);
  }
}

// --- DownloadSources ------------------------------------------------------------------------

kj::Array<download::Source> Runtime::sources(kj::StringPtr itemId) {
  kj::Vector<download::Source> out;
  for (auto& entry : live) {
    auto& c = *entry.value;
    if (!c.isEstablished()) continue;
    KJ_IF_MAYBE (session, c.session) {
      if (!(*session)->isEstablished()) continue;
      KJ_IF_MAYBE (item, c.sync.view().find(itemId)) {
        auto& remote = KJ_ASSERT_NONNULL((*session)->remote());
        download::SourceInfo info;
        info.peer = remote.id;
        info.maxInFlight = remote.maxInFlight;
        info.maxChunkBytes = remote.maxChunkBytes;
        info.listed = item->manifestDigest;
        out.add(download::Source{c.generation, kj::mv(info)});
      }
    }
  }
  return out.releaseAsArray();
}

kj::Promise<Reply> Runtime::request(
    download::SourceKey source, codec::FrameBuilder frame,
    kj::Maybe<kj::Function<void(const codec::InboundFrame&)>> onPage) {
  KJ_IF_MAYBE (c, live.find(source)) {
    KJ_IF_MAYBE (session, (*c)->session) {
      if ((*session)->isEstablished()) return (*session)->request(kj::mv(frame), kj::mv(onPage));
    }
  }
  return Reply(RequestError{wire::ErrorCode::INTERNAL, kj::str("the session has ended"), 0, true});
}

void Runtime::misbehaved(download::SourceKey source, kj::StringPtr message) {
  KJ_IF_MAYBE (c, live.find(source)) {
    KJ_IF_MAYBE (session, (*c)->session) {
      (*session)->abort(wire::ErrorCode::PROTOCOL, message);
    }
  }
}

// --- events ---------------------------------------------------------------------------------

void Runtime::emitDownloadEvent(kj::StringPtr itemId, const DownloadEvent& event) {
  namespace ev = download::event;
  emit([&](control::Event::Builder e) {
    KJ_SWITCH_ONEOF(event) {
      KJ_CASE_ONEOF(ready, ev::ManifestReady) {
        auto m = e.initDownloadManifest();
        m.setItemId(itemId);
        m.setTotalBytes(ready.totalBytes);
        m.setChunks(ready.chunkCount);
        m.setFiles(ready.fileCount);
      }
      KJ_CASE_ONEOF(progress, ev::Progress) {
        auto p = e.initDownloadProgress();
        p.setItemId(itemId);
        p.setBytesDone(progress.bytesDone);
        p.setBytesTotal(progress.bytesTotal);
        p.setSourcesInUse(progress.sourcesInUse);
      }
      KJ_CASE_ONEOF(bad, ev::BadChunk) {
        auto b = e.initDownloadBadChunk();
        b.setItemId(itemId);
        b.setPeerId(formatPeerId(bad.peer));
        b.setCount(bad.count);
      }
      KJ_CASE_ONEOF(dropped, ev::SourceDropped) {
        auto d = e.initDownloadSourceDropped();
        d.setItemId(itemId);
        d.setPeerId(formatPeerId(dropped.peer));
        d.setReason(download::name(dropped.reason));
        d.setDetail(dropped.detail);
      }
      KJ_CASE_ONEOF(gone, ev::AllPeersGone) {
        (void)gone;
        e.initDownloadAllPeersGone().setItemId(itemId);
      }
      KJ_CASE_ONEOF(last, ev::Ended) {
        (void)last;
        KJ_FAIL_ASSERT("Ended is reported by downloadEnded()");
      }
    }
  });
}

// The download is gone (its item no longer marked downloading). A finished one is in the library
// folder: the rescan lists it and tells the peers before the event says it is done, so a client
// that sees `finished` finds the item in the library.
void Runtime::downloadEnded(kj::StringPtr itemIdParam, DownloadService::Ending ending) {
  bool finished = ending.outcome == download::Outcome::finished;
  KJ_IF_MAYBE (item, ending.finished) {
    verifiedItems.add(kj::mv(*item));  // the rescan below takes its digests from the cache
  }
  auto report = [this, itemId = kj::str(itemIdParam),
                 ending = kj::mv(ending)](bool /* library changed */) {
    emit([&](control::Event::Builder e) {
      auto d = e.initDownloadEnded();
      d.setItemId(itemId);
      d.setOutcome(download::name(ending.outcome));
      d.setMessage(ending.message);
      d.setBytesDone(ending.status.bytesDone);
      d.setBytesTotal(ending.status.bytesTotal);
      kj::TreeMap<kj::String, uint64_t> shares;  // one row per peer, whatever its sessions
      for (auto& s : ending.sources) {
        shares.upsert(formatPeerId(s.peer), s.bytes,
                      [](uint64_t& old, uint64_t add) { old += add; });
      }
      auto list = d.initSources(shares.size());
      kj::uint i = 0;
      for (auto& share : shares) {
        list[i].setPeerId(share.key);
        list[i++].setBytes(share.value);
      }
    });
  };
  if (finished && !stopping) {
    KJ_ASSERT_NONNULL(tasks)->add(rescan().then(kj::mv(report)));
  } else {
    report(false);
  }
}

}  // namespace shoal::peer
