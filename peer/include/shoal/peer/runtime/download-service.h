// DownloadService: the runtime's downloads under way, at most one Download per item. It starts
// them when asked (the control API's `download`), tells them when sources come and go, stops them
// between chunks on `cancel` and at shutdown, and owns every promise it starts in its TaskSet:
// nothing it starts outlives it. It knows nothing of sessions or events: the runtime is its
// DownloadSources and hears what happens through the two callbacks.
#pragma once

#include <kj/async.h>
#include <kj/function.h>
#include <kj/map.h>
#include <shoal/peer/download/download.h>

namespace shoal::peer {

class DownloadService {
 public:
  // How a download ended, reported once it is gone (its registry entry cleared, so its item is no
  // longer marked downloading in the library).
  struct Ending {
    download::Outcome outcome;
    kj::String message;  // what failed, for Outcome::failed
    download::DownloadStatus status;
    kj::Vector<download::SourceBytes> sources;
    kj::Maybe<kj::Own<const library::Item>> finished;  // Outcome::finished: what was verified
  };
  using OnActive = kj::Function<void(kj::StringPtr itemId, bool active)>;
  using OnEvent = kj::Function<void(kj::StringPtr itemId, const download::DownloadEvent& event)>;
  using OnEnded = kj::Function<void(kj::StringPtr itemId, Ending ending)>;

  // `folders` must outlive the service. `onEvent` sees every event of every download but Ended,
  // which becomes `onEnded` after the download is destroyed.
  DownloadService(download::DownloadConfig config, download::Folders folders, kj::Timer& timer,
                  download::DownloadSources& sources, OnActive onActive, OnEvent onEvent,
                  OnEnded onEnded);
  // Destroys every download: requests cancelled, writer threads joined after their current job.
  ~DownloadService() noexcept(false);
  KJ_DISALLOW_COPY(DownloadService);

  // Starts downloading `itemId`; false if it is already downloading or the service is stopping.
  bool start(kj::StringPtr itemId);
  bool isDownloading(kj::StringPtr itemId) const { return running.find(itemId) != nullptr; }
  // Stops the download between chunks (Outcome::cancelled); false if there is none.
  bool cancel(kj::StringPtr itemId);

  // Sessions came or went, or a peer's library changed: every download re-reads its sources, once
  // per event-loop turn however many changes came in it.
  void sourcesChanged();
  // A session ended: its bad-chunk counts ([CHK-8], per session) go with it.
  void forgetSource(download::SourceKey key) { registry.forgetSource(key); }

  // The shutdown: every download stops between chunks and saves its progress; resolves once all
  // have ended. No download starts afterwards.
  kj::Promise<void> shutdown();
  // The hard stop at the shutdown deadline: every download is destroyed now.
  void abort();

  // Every download under way, in item-id order.
  void forEach(kj::FunctionParam<void(kj::StringPtr, download::DownloadStatus)> func) const;
  size_t size() const { return running.size(); }
  // Promises this service owns now (runs, the pending sourcesChanged()): back to 0 when idle.
  size_t taskCount() const { return tasks.count; }

 private:
  struct Running {
    kj::Own<download::Download> download;
    kj::Maybe<Ending> ending;  // filled by its Ended event
  };
  class Tasks final : public kj::TaskSet::ErrorHandler {
   public:
    Tasks() : set(*this) {}
    void add(kj::Promise<void> task);
    void taskFailed(kj::Exception&& exception) override;
    size_t count = 0;
    kj::TaskSet set;  // last: its tasks refer to the downloads above
  };

  download::DownloadConfig config;
  download::Folders folders;
  kj::Timer& timer;
  download::DownloadSources& sources;
  OnEvent onEvent;
  OnEnded onEnded;
  bool stopping = false;
  bool changePending = false;

  // Declared in destruction order reversed: the registry outlives the downloads' guards, the
  // downloads outlive the tasks waiting on them.
  download::DownloadRegistry registry;
  kj::TreeMap<kj::String, kj::Own<Running>> running;
  Tasks tasks;

  void ended(kj::StringPtr itemId);
};

}  // namespace shoal::peer
