#include <shoal/peer/runtime/download-service.h>

#include <kj/debug.h>

namespace shoal::peer {

using download::Download;
using download::DownloadEvent;

void DownloadService::Tasks::add(kj::Promise<void> task) {
  ++count;
  set.add(task.attach(kj::defer([this]() { --count; })));
}

void DownloadService::Tasks::taskFailed(kj::Exception&& exception) {
  // Download::run() never rejects and the callbacks do not throw: reaching here is our bug.
  KJ_LOG(ERROR, "download task failed", exception);
}

DownloadService::DownloadService(download::DownloadConfig config, download::Folders folders,
                                 kj::Timer& timer, download::DownloadSources& sources,
                                 OnActive onActive, OnEvent onEvent, OnEnded onEnded)
    : config(kj::mv(config)),
      folders(folders),
      timer(timer),
      sources(sources),
      onEvent(kj::mv(onEvent)),
      onEnded(kj::mv(onEnded)),
      registry(kj::mv(onActive)) {}

DownloadService::~DownloadService() noexcept(false) {
  stopping = true;
  running.clear();  // each Download cancels its requests and joins its writer threads
}

bool DownloadService::start(kj::StringPtr itemId) {
  if (stopping || isDownloading(itemId)) return false;
  auto entry = kj::heap<Running>();
  auto& ref = *entry;
  auto id = kj::str(itemId);
  ref.download = kj::heap<Download>(
      id, folders, config, timer, sources, registry, [this, &ref](const DownloadEvent& event) {
        KJ_IF_MAYBE (last, event.tryGet<download::event::Ended>()) {
          // Kept until the download is destroyed: onEnded runs once its guard is gone.
          ref.ending = Ending{last->outcome, kj::str(last->message), ref.download->status(),
                              ref.download->bytesBySource(), ref.download->takeFinished()};
          return;
        }
        onEvent(ref.download->itemId(), event);
      });
  auto run = ref.download->run();
  running.insert(kj::mv(id), kj::mv(entry));
  tasks.add(run.then([this, &ref](download::Outcome) { ended(ref.download->itemId()); }));
  return true;
}

// In a turn of its own, after run() resolved: the download is no longer inside any of its own
// callbacks, so it can be destroyed here.
void DownloadService::ended(kj::StringPtr itemIdParam) {
  auto itemId = kj::str(itemIdParam);
  auto& entry = KJ_ASSERT_NONNULL(running.find(itemId));
  auto ending = kj::mv(entry->ending);
  running.erase(itemId);  // the guard goes: the item is no longer marked downloading
  KJ_IF_MAYBE (e, ending) {
    onEnded(itemId, kj::mv(*e));
  } else {
    onEnded(itemId,
            Ending{download::Outcome::stopped, kj::str("ended without a report"), {}, {}, nullptr});
  }
}

bool DownloadService::cancel(kj::StringPtr itemId) {
  KJ_IF_MAYBE (entry, running.find(itemId)) {
    (*entry)->download->cancel();
    return true;
  }
  return false;
}

void DownloadService::sourcesChanged() {
  if (changePending || running.size() == 0) return;
  changePending = true;
  tasks.add(kj::evalLater([this]() {
    changePending = false;
    for (auto& entry : running)
      entry.value->download->sourcesChanged();
  }));
}

kj::Promise<void> DownloadService::shutdown() {
  stopping = true;
  for (auto& entry : running)
    entry.value->download->shutdown();
  return tasks.set.onEmpty();
}

void DownloadService::abort() {
  stopping = true;
  for (auto& entry : running)
    entry.value->download->abort();
}

void DownloadService::forEach(
    kj::FunctionParam<void(kj::StringPtr, download::DownloadStatus)> func) const {
  for (auto& entry : running)
    func(entry.key, entry.value->download->status());
}

}  // namespace shoal::peer
