#include <shoal/peer/download/download.h>

#include <kj/debug.h>
#include <shoal/codec/frames.h>

namespace shoal::peer::download {

// --- registry and guard --------------------------------------------------------------------------

DownloadRegistry::DownloadRegistry(kj::Maybe<kj::Function<void(kj::StringPtr, bool)>> onChange)
    : onChange(kj::mv(onChange)) {}

// Every guard must be gone by now (the runtime destroys its downloads first).
DownloadRegistry::~DownloadRegistry() noexcept(false) {}

kj::Maybe<const Download&> DownloadRegistry::find(kj::StringPtr itemId) const {
  KJ_IF_MAYBE (d, active.find(itemId)) {
    return **d;
  }
  return nullptr;
}

uint32_t DownloadRegistry::badChunks(SourceKey source, kj::StringPtr itemId) const {
  KJ_IF_MAYBE (count, strikes.find(kj::str(source, '/', itemId))) {
    return *count;
  }
  return 0;
}

void DownloadRegistry::recordBadChunks(SourceKey source, kj::StringPtr itemId, uint32_t count) {
  strikes.upsert(kj::str(source, '/', itemId), count,
                 [](uint32_t& old, uint32_t n) { old = kj::max(old, n); });
}

void DownloadRegistry::forgetSource(SourceKey source) {
  auto prefix = kj::str(source, '/');
  strikes.eraseAll([&](kj::StringPtr key, uint32_t) { return key.startsWith(prefix); });
}

kj::Maybe<DownloadStateGuard> DownloadStateGuard::begin(DownloadRegistry& registry,
                                                        kj::StringPtr itemId,
                                                        const Download& download) {
  if (registry.isActive(itemId)) return nullptr;
  registry.active.insert(kj::str(itemId), &download);
  KJ_IF_MAYBE (notify, registry.onChange) {
    (*notify)(itemId, true);
  }
  return DownloadStateGuard(registry, kj::str(itemId));
}

DownloadStateGuard::DownloadStateGuard(DownloadRegistry& registry, kj::String itemId)
    : registry(registry), itemId(kj::mv(itemId)) {}

DownloadStateGuard::DownloadStateGuard(DownloadStateGuard&& other) noexcept
    : registry(kj::mv(other.registry)), itemId(kj::mv(other.itemId)) {
  other.registry = nullptr;
}

DownloadStateGuard::~DownloadStateGuard() noexcept(false) {
  KJ_IF_MAYBE (r, registry) {
    r->active.erase(itemId);
    KJ_IF_MAYBE (notify, r->onChange) {
      (*notify)(itemId, false);
    }
  }
}

// --- the driver ----------------------------------------------------------------------------------

namespace {

// Jobs the writer may hold at once: what the core can have buffered, its checks, and a save, a
// prepare or a finish, plus one of each for margin.
size_t writerCapacity(const DownloadLimits& limits) {
  return size_t(limits.maxBufferedChunks) + limits.maxChecksInFlight + 4;
}

}  // namespace

Download::Download(kj::StringPtr itemId, Folders folders, DownloadConfig config, kj::Timer& timer,
                   DownloadSources& sources, DownloadRegistry& registry,
                   kj::Function<void(const DownloadEvent&)> onEvent)
    : item(kj::str(itemId)),
      folders(folders),
      config(kj::mv(config)),
      timer(timer),
      sources(sources),
      registry(registry),
      onEvent(kj::mv(onEvent)),
      core(item, this->config.limits, this->config.ours, timer.now()),
      writer(this->config.writerThreads, writerCapacity(this->config.limits)),
      tasks(taskErrors) {}

Download::~Download() noexcept(false) {
  writer.stop();  // what has not started is dropped now; the join waits for one job per thread
  KJ_IF_MAYBE (f, ended) {
    (*f)->fulfill(Outcome::stopped);
  }
}

void Download::TaskErrors::taskFailed(kj::Exception&& exception) {
  // Every continuation handles its own failures; reaching here is a bug of ours, or abort().
  if (exception.getType() != kj::Exception::Type::DISCONNECTED) {
    KJ_LOG(ERROR, "download task failed", exception);
  }
}

void Download::addTask(kj::Promise<void> task) {
  tasks.add(canceler.wrap(kj::mv(task)));
}

kj::Promise<Outcome> Download::run() {
  KJ_ASSERT(!started, "Download::run() is called once");
  started = true;
  auto guard = DownloadStateGuard::begin(registry, item, *this);
  if (guard == nullptr) {
    DownloadEvent failed =
        event::Ended{Outcome::failed, kj::str("item '", item, "' is already being downloaded")};
    onEvent(failed);
    return Outcome::failed;
  }
  KJ_IF_MAYBE (outcome, endedWith) {
    return *outcome;  // cancelled or shut down before it ran
  }
  auto paf = kj::newPromiseAndFulfiller<Outcome>();
  ended = kj::mv(paf.fulfiller);
  sourcesChanged();
  addTask(writer.run<PartialState>([this]() { return PartialItem::load(folders, item); }, false)
              .then([this](kj::Maybe<PartialState> loaded) {
                auto& state = KJ_ASSERT_NONNULL(loaded);  // not droppable
                KJ_IF_MAYBE (problem, state.problem) {
                  KJ_LOG(WARNING, "earlier download state ignored", *problem);
                }
                core.onLoaded(kj::mv(state.manifest), kj::mv(state.claimed), timer.now());
                pump();
              }));
  addTask(tickLoop());
  return paf.promise.attach(kj::mv(KJ_ASSERT_NONNULL(guard)));
}

kj::Promise<void> Download::tickLoop() {
  return timer.afterDelay(config.tickInterval).then([this]() -> kj::Promise<void> {
    if (core.isEnded()) return kj::READY_NOW;
    core.onTick(timer.now());
    pump();
    return tickLoop();
  });
}

void Download::sourcesChanged() {
  auto now = timer.now();
  kj::HashMap<SourceKey, bool> current;
  for (auto& s : sources.sources(item)) {
    current.insert(s.key, true);
    s.info.badChunks = kj::max(s.info.badChunks, registry.badChunks(s.key, item));
    core.addSource(s.key, kj::mv(s.info), now);
  }
  for (auto& k : known) {
    if (current.find(k.key) == nullptr) core.removeSource(k.key, now);
  }
  known = kj::mv(current);
  pump();
}

void Download::cancel() {
  core.cancel(timer.now());
  pump();
}

void Download::shutdown() {
  core.shutdown(timer.now());
  pump();
}

void Download::abort() {
  if (ended == nullptr) return;
  inFlight = {};
  answered.clear();
  pendingWrites.clear();
  canceler.cancel("the download was aborted");
  writer.stop();
  DownloadEvent last = event::Ended{Outcome::stopped, kj::str("aborted")};
  onEvent(last);
  endedWith = Outcome::stopped;
  KJ_ASSERT_NONNULL(ended)->fulfill(Outcome::stopped);
  ended = nullptr;
}

DownloadStatus Download::status() const {
  return {core.state(), core.bytesDone(), core.hasManifest() ? core.manifest().totalBytes : 0,
          core.sourcesInUse()};
}

// Runs what the core decided until it has nothing more to say.
void Download::pump() {
  if (ended == nullptr && started) return;  // ended or aborted: nothing more goes out
  for (;;) {
    auto actions = core.takeActions();
    auto events = core.takeEvents();
    if (actions.empty() && events.empty()) return;
    for (auto& a : actions)
      perform(a);
    for (auto& e : events)
      publish(e);
  }
}

void Download::publish(DownloadEvent& event) {
  KJ_IF_MAYBE (bad, event.tryGet<event::BadChunk>()) {
    registry.recordBadChunks(bad->source, item, bad->count);
  }
  onEvent(event);
  KJ_IF_MAYBE (last, event.tryGet<event::Ended>()) {
    endedWith = last->outcome;
    KJ_IF_MAYBE (f, ended) {
      (*f)->fulfill(kj::cp(last->outcome));
      ended = nullptr;
    }
  }
}

void Download::perform(Action& action) {
  KJ_SWITCH_ONEOF(action) {
    KJ_CASE_ONEOF(get, action::GetManifest) {
      auto frame = codec::newFrame(32);
      codec::rootOf(*frame).initGetManifest().setItemId(item);
      send(get.ticket, get.source, kj::mv(frame), true);
    }
    KJ_CASE_ONEOF(get, action::GetChunk) {
      auto frame = codec::newFrame(32);
      auto request = codec::rootOf(*frame).initGetChunk();
      request.setItemId(item);
      request.setManifestDigest(core.manifest().digest.asBytes());
      request.setFileIndex(get.file);
      request.setOffset(get.offset);
      request.setLength(get.length);
      send(get.ticket, get.source, kj::mv(frame), false);
    }
    KJ_CASE_ONEOF(cancel, action::Cancel) {
      // Dropped in a later turn: this may run inside the session's own dispatch of a page.
      answered.add(cancel.ticket);
      reap();
    }
    KJ_CASE_ONEOF(bad, action::Misbehaved) {
      sources.misbehaved(bad.source, bad.message);
    }
    KJ_CASE_ONEOF(p, action::Prepare) {
      (void)p;
      prepare();
    }
    KJ_CASE_ONEOF(c, action::CheckChunk) {
      check(c);
    }
    KJ_CASE_ONEOF(s, action::SaveProgress) {
      save(kj::mv(s.chunks));
    }
    KJ_CASE_ONEOF(s, action::StopWrites) {
      (void)s;
      writer.stop();
    }
    KJ_CASE_ONEOF(f, action::Finish) {
      (void)f;
      finish();
    }
  }
}

// --- requests ------------------------------------------------------------------------------------

void Download::send(Ticket ticket, SourceKey source, codec::FrameBuilder frame, bool manifest) {
  kj::Maybe<kj::Function<void(const codec::InboundFrame&)>> onPage;
  if (manifest) {
    onPage = [this, ticket](const codec::InboundFrame& page) {
      if (!page.root().isManifest()) return;  // the session refuses other kinds [RQ-13]
      core.onManifestPage(ticket, page.root().getManifest(), false, timer.now());
      pump();
    };
  }
  auto promise =
      sources.request(source, kj::mv(frame), kj::mv(onPage))
          .then([this, ticket, manifest](Reply reply) { onReply(ticket, manifest, kj::mv(reply)); },
                [this, ticket](kj::Exception&& exception) {
                  // The runtime's request failed outright (a bug there): a lost request.
                  KJ_LOG(WARNING, "a download request failed", exception);
                  onReply(
                      ticket, false,
                      RequestError{wire::ErrorCode::INTERNAL, kj::str("request failed"), 0, true});
                })
          .eagerlyEvaluate(nullptr);
  inFlight.insert(ticket, kj::mv(promise));
}

void Download::onReply(Ticket ticket, bool manifest, Reply reply) {
  answered.add(ticket);
  reap();
  auto now = timer.now();
  KJ_SWITCH_ONEOF(reply) {
    KJ_CASE_ONEOF(frame, codec::InboundFrame) {
      auto root = frame.root();
      if (manifest && root.isManifest()) {
        core.onManifestPage(ticket, root.getManifest(), true, now);
      } else if (!manifest && root.isChunk()) {
        KJ_IF_MAYBE (where, core.onChunk(ticket, root.getChunk().getData().size(), now)) {
          submitWrite(*where, kj::mv(frame));
        }
      } else {
        // The session checks the answer's kind ([RQ-13]); count it as a failed answer anyway.
        core.onRequestFailed(ticket, wire::ErrorCode::INTERNAL, 0, false, now);
      }
    }
    KJ_CASE_ONEOF(error, RequestError) {
      core.onRequestFailed(ticket, error.code, error.retryAfterMs, error.local, now);
    }
  }
  pump();
}

// Requests that ended or were cancelled leave inFlight in a turn of their own: a promise must not
// be destroyed from inside its own continuation, nor a session's request from inside its dispatch.
void Download::reap() {
  if (reaping) return;
  reaping = true;
  addTask(kj::evalLater([this]() {
    reaping = false;
    for (auto t : answered)
      inFlight.erase(t);
    answered.clear();
  }));
}

// --- disk work -----------------------------------------------------------------------------------

using WriteResult = kj::OneOf<PartialItem::Verdict, DiskFailure>;

void Download::submitWrite(ChunkWrite where, codec::InboundFrame frame) {
  // Chunks that arrive in one event-loop turn go to the writer together (flushWrites, last in the
  // turn): one hand-over and one wake-up per job instead of per chunk, which is most of what a
  // small chunk costs.
  pendingWrites.add(PendingWrite{where, kj::mv(frame)});
  if (pendingWrites.size() == 1) addTask(kj::evalLast([this]() { flushWrites(); }));
}

void Download::flushWrites() {
  auto all = kj::mv(pendingWrites);
  pendingWrites = kj::Vector<PendingWrite>();
  kj::Vector<PendingWrite> batch;
  uint64_t bytes = 0;
  for (auto& w : all) {
    uint64_t length = w.frame.root().getChunk().getData().size();
    if (!batch.empty() && bytes + length > config.writeBatchBytes) {
      writeBatch(kj::mv(batch));
      batch = kj::Vector<PendingWrite>();
      bytes = 0;
    }
    bytes += length;
    batch.add(kj::mv(w));
  }
  if (!batch.empty()) writeBatch(kj::mv(batch));
}

void Download::writeBatch(kj::Vector<PendingWrite> batch) {
  auto& target = *KJ_ASSERT_NONNULL(partial);
  ++writeJobsHandedOver;
  auto chunks = kj::heapArrayBuilder<uint64_t>(batch.size());
  for (auto& w : batch)
    chunks.add(w.where.chunk);
  // The bytes stay in the frames they arrived in: the writer hashes each chunk and writes it from
  // there, and frees the frames when done. No other copy is made.
  auto job = [&target, gate = config.writeGate, batch = kj::mv(batch)]() mutable {
    auto results = kj::heapArrayBuilder<WriteResult>(batch.size());
    for (auto& w : batch) {
      KJ_IF_MAYBE (g, gate) {
        g->beforeWrite(w.where.chunk);
      }
      results.add(target.writeChunk(w.where, w.frame.root().getChunk().getData()));
    }
    return results.finish();
  };
  addTask(writer.run<kj::Array<WriteResult>>(kj::mv(job))
              .then([this, chunks = chunks.finish()](kj::Maybe<kj::Array<WriteResult>> results) {
                auto now = timer.now();
                KJ_IF_MAYBE (rs, results) {
                  for (auto i : kj::indices(*rs)) {
                    KJ_SWITCH_ONEOF((*rs)[i]) {
                      KJ_CASE_ONEOF(verdict, PartialItem::Verdict) {
                        if (verdict == PartialItem::Verdict::written) {
                          core.onChunkWritten(chunks[i], now);
                        } else {
                          core.onChunkCorrupt(chunks[i], now);
                        }
                      }
                      KJ_CASE_ONEOF(failure, DiskFailure) {
                        core.onChunkFailed(chunks[i], failure.message, now);
                      }
                    }
                  }
                } else {
                  // Dropped by a stop: chunks of the batch already written count as not written,
                  // so the resume state never claims a chunk we did not see verified.
                  for (auto chunk : chunks)
                    core.onJobDropped(chunk, now);
                }
                pump();
              }));
}

void Download::prepare() {
  auto& manifest = core.manifest();
  using Prepared = kj::OneOf<kj::Own<PartialItem>, DiskFailure>;
  addTask(writer
              .run<Prepared>(
                  [this, &manifest]() { return PartialItem::prepare(folders, manifest); }, false)
              .then([this](kj::Maybe<Prepared> result) {
                auto now = timer.now();
                KJ_SWITCH_ONEOF(KJ_ASSERT_NONNULL(result)) {
                  KJ_CASE_ONEOF(item, kj::Own<PartialItem>) {
                    partial = kj::mv(item);
                    core.onPrepared(now);
                  }
                  KJ_CASE_ONEOF(failure, DiskFailure) {
                    core.onDiskFailed(failure.message, now);
                  }
                }
                pump();
              }));
}

void Download::check(action::CheckChunk c) {
  auto& target = *KJ_ASSERT_NONNULL(partial);
  using Checked = kj::OneOf<bool, DiskFailure>;
  addTask(writer.run<Checked>([&target, c]() { return target.checkChunk(c); })
              .then([this, chunk = c.chunk](kj::Maybe<Checked> result) {
                auto now = timer.now();
                KJ_IF_MAYBE (r, result) {
                  KJ_SWITCH_ONEOF(*r) {
                    KJ_CASE_ONEOF(intact, bool) {
                      core.onChunkChecked(chunk, intact, now);
                    }
                    KJ_CASE_ONEOF(failure, DiskFailure) {
                      core.onChunkFailed(chunk, failure.message, now);
                    }
                  }
                } else {
                  core.onJobDropped(chunk, now);
                }
                pump();
              }));
}

void Download::save(ChunkSet chunks) {
  auto& target = *KJ_ASSERT_NONNULL(partial);
  using Saved = kj::Maybe<DiskFailure>;
  addTask(
      writer
          .run<Saved>([&target, chunks = kj::mv(chunks)]() { return target.saveProgress(chunks); },
                      false)
          .then([this](kj::Maybe<Saved> result) {
            auto now = timer.now();
            KJ_IF_MAYBE (failure, KJ_ASSERT_NONNULL(result)) {
              core.onDiskFailed(failure->message, now);
            } else {
              core.onSaved(now);
            }
            pump();
          }));
}

void Download::finish() {
  auto& target = *KJ_ASSERT_NONNULL(partial);
  using Finished = kj::OneOf<kj::Own<const library::Item>, DiskFailure>;
  addTask(writer.run<Finished>([&target]() { return target.complete(); }, false)
              .then([this](kj::Maybe<Finished> result) {
                auto now = timer.now();
                KJ_SWITCH_ONEOF(KJ_ASSERT_NONNULL(result)) {
                  KJ_CASE_ONEOF(failure, DiskFailure) {
                    core.onDiskFailed(failure.message, now);
                  }
                  KJ_CASE_ONEOF(item, kj::Own<const library::Item>) {
                    finishedItem = kj::mv(item);
                    core.onFinished(now);
                  }
                }
                pump();
              }));
}

}  // namespace shoal::peer::download
