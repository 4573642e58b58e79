#include <shoal/peer/control/control-replies.h>

#include <shoal/mutant.h>
#include <shoal/peer/runtime/event-fields.h>

namespace shoal::peer {

void fillStatus(const Runtime& runtime, control::Status::Builder status) {
  auto& config = runtime.configuration();
  auto& library = runtime.localLibrary();
  auto facts = runtime.facts();
  auto id = runtime.id();
  status.setPeerId(isMutant(Mutant::controlIdHex) ? codec::toHex(id) : formatPeerId(id));
  status.setName(config.name);
  KJ_IF_MAYBE (address, facts.listen) {
    status.setListen(*address);
  }
  fillSummary(status.initLibrary(), library.summary());
  status.setItems(library.items().size());
  uint64_t bytes = 0;
  for (auto& item : library.items())
    bytes += item->info.size;
  status.setBytes(bytes);
  status.setPeers(facts.peers);
  status.setUptimeMs(facts.uptime / kj::MILLISECONDS);
  status.setTrust(config.trust == TrustMode::open ? "open" : "pinned");
  status.setPlaintext(config.plaintext);
  status.setLibraryDir(config.libraryDir);
  status.setHandshakeFailures(facts.handshakeFailures);
  status.setAdmissionDrops(facts.admissionDrops);
  status.setLeftOutPaths(facts.leftOutPaths);
  status.setHandshakesPending(facts.handshakesPending);
  status.setDownloadTasks(facts.downloadTasks);
  KJ_IF_MAYBE (scan, facts.scan) {
    status.setScanning(true);
    fillScanProgress(status.initScan(), *scan, false);
  }
  kj::Vector<kj::Tuple<kj::String, download::DownloadStatus>> downloads;
  runtime.forEachDownload([&](kj::StringPtr item, download::DownloadStatus s) {
    downloads.add(kj::tuple(kj::str(item), s));
  });
  auto list = status.initDownloads(downloads.size());
  for (auto i : kj::indices(downloads))
    fillDownloadInfo(list[i], kj::get<0>(downloads[i]), kj::get<1>(downloads[i]));
}

void fillDownloadInfo(control::DownloadInfo::Builder info, kj::StringPtr itemId,
                      const download::DownloadStatus& status) {
  info.setItemId(itemId);
  info.setState(download::DownloadCore::name(status.state));
  info.setBytesDone(status.bytesDone);
  info.setBytesTotal(status.bytesTotal);
  info.setSourcesInUse(status.sourcesInUse);
}

void fillPeers(const Runtime& runtime,
               kj::FunctionParam<capnp::List<control::PeerInfo>::Builder(kj::uint)> init) {
  kj::Vector<PeerFacts> all;  // valid until the loop turns: filled right away
  runtime.forEachPeer([&](const PeerFacts& peer) { all.add(peer); });
  auto list = init(all.size());
  for (auto i : kj::indices(all))
    fillPeerInfo(list[i], all[i]);
}

void fillItems(const Runtime& runtime,
               kj::FunctionParam<capnp::List<control::RemoteItem>::Builder(kj::uint)> init) {
  struct Row {
    codec::ItemInfo info;
    kj::Vector<kj::String> peers;
  };
  kj::TreeMap<kj::String, Row> rows;
  runtime.forEachPeer([&](const PeerFacts& peer) {
    for (auto& item : peer.library.items()) {
      auto key = kj::str(item.itemId, "/", codec::toHex(item.manifestDigest));
      auto& row = rows.findOrCreate(key, [&]() {
        return decltype(rows)::Entry{kj::mv(key), Row{item.clone(), {}}};
      });
      row.peers.add(formatPeerId(peer.remote.id));
    }
  });
  kj::TreeMap<kj::String, uint64_t> downloading;  // item → verified bytes
  runtime.forEachDownload([&](kj::StringPtr item, download::DownloadStatus s) {
    downloading.insert(kj::str(item), s.bytesDone);
  });
  auto list = init(rows.size());
  kj::uint i = 0;
  for (auto& entry : rows) {
    auto out = list[i++];
    auto& info = entry.value.info;
    out.setItemId(info.itemId);
    out.setName(info.name);
    out.setSize(info.size);
    out.setFileCount(info.fileCount);
    out.setManifestDigest(codec::toHex(info.manifestDigest));
    KJ_IF_MAYBE (done, downloading.find(info.itemId)) {
      out.setLocal(control::LocalState::DOWNLOADING);
      out.setBytesDone(*done);
    } else if (runtime.localLibrary().find(info.itemId) != nullptr) {
      out.setLocal(control::LocalState::IN_LIBRARY);
    }
    auto ids = out.initPeers(entry.value.peers.size());
    for (auto j : kj::indices(entry.value.peers))
      ids.set(j, entry.value.peers[j]);
  }
}

}  // namespace shoal::peer
