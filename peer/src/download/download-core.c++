// DownloadCore's lifecycle: loading, choosing and fetching the manifest, preparing, the writer's
// answers, saving, finishing and stopping. Which chunk goes to which source is in
// download-scheduler.c++.
#include <shoal/peer/download/download-core.h>

#include <kj/debug.h>
#include <shoal/mutant.h>

#include <utility>

namespace shoal::peer::download {

kj::StringPtr name(DropReason reason) {
  switch (reason) {
    case DropReason::badChunks: return "badChunks";
    case DropReason::errors: return "errors";
    case DropReason::badManifest: return "badManifest";
    case DropReason::changed: return "changed";
    case DropReason::tooSmall: return "tooSmall";
  }
  return "unknown";
}

kj::StringPtr name(Outcome outcome) {
  switch (outcome) {
    case Outcome::finished: return "finished";
    case Outcome::failed: return "failed";
    case Outcome::cancelled: return "cancelled";
    case Outcome::stopped: return "stopped";
    case Outcome::allPeersGone: return "allPeersGone";
  }
  return "unknown";
}

SourceInfo SourceInfo::clone() const {
  SourceInfo copy{peer, maxInFlight, maxChunkBytes, listed, nullptr, badChunks};
  KJ_IF_MAYBE (h, has) {
    copy.has = h->clone();
  }
  return copy;
}

DownloadCore::DownloadCore(kj::StringPtr itemId, const DownloadLimits& limits,
                           const codec::Limits& ours, kj::TimePoint now)
    : item(kj::str(itemId)), limits(limits), ours(ours), lastSaved(now), lastProgressEvent(now) {
  // The runtime checks its configuration; limits out of range here are our bug.
  KJ_ASSERT(limits.maxBadChunks >= 1 && limits.maxBadChunks <= 5,
            "[CHK-8] drops a source at 5 bad chunks at the latest", limits.maxBadChunks);
  KJ_ASSERT(limits.endgameCopies >= 1 && limits.maxWindow >= 1 && limits.initialWindow >= 1);
}

const codec::Manifest& DownloadCore::manifest() const {
  return *KJ_ASSERT_NONNULL(target, "no manifest yet");
}

kj::Vector<Action> DownloadCore::takeActions() {
  return kj::mv(actions);
}

kj::Vector<DownloadEvent> DownloadCore::takeEvents() {
  return kj::mv(events);
}

kj::Maybe<const SourceWindow&> DownloadCore::windowOf(SourceKey key) const {
  KJ_IF_MAYBE (s, sources.find(key)) {
    return s->window;
  }
  return nullptr;
}

kj::StringPtr DownloadCore::name(State state) {
  switch (state) {
    case State::loading: return "loading";
    case State::fetchingManifest: return "fetchingManifest";
    case State::preparing: return "preparing";
    case State::downloading: return "downloading";
    case State::finishing: return "finishing";
    case State::stopping: return "stopping";
    case State::ended: return "ended";
  }
  return "unknown";
}

kj::Vector<SourceBytes> DownloadCore::bytesBySource() const {
  kj::Vector<SourceBytes> out;
  for (auto& d : departed)
    out.add(d);
  for (auto& s : sources)
    out.add(SourceBytes{s.value.info.peer, s.value.bytesReceived});
  return out;
}

uint32_t DownloadCore::sourcesInUse() const {
  uint32_t n = 0;
  for (auto& s : sources) {
    if (s.value.usable && s.value.outstanding > 0) ++n;
  }
  return n;
}

// --- loading and the manifest ------------------------------------------------------------------

void DownloadCore::onLoaded(kj::Maybe<codec::Manifest> manifest, ChunkSet claimedChunks,
                            kj::TimePoint now) {
  if (current != State::loading) return;  // stopped while loading
  KJ_IF_MAYBE (m, manifest) {
    KJ_ASSERT(claimedChunks.size() == m->chunks.size(), "resume state of another manifest");
    resumed = kj::heap(kj::mv(*m));
    claimed = kj::mv(claimedChunks);
  }
  current = State::fetchingManifest;
  decideManifest(now);
  checkSources(now);
}

bool DownloadCore::isCandidate(const Source& source) const {
  if (!source.usable) return false;
  KJ_IF_MAYBE (listed, source.info.listed) {
    KJ_IF_MAYBE (m, target) {
      return *listed == (*m)->digest;
    }
    return true;
  }
  return false;
}

// Without a manifest: resume the earlier run's when a source still lists it; otherwise fetch the
// one most sources list (dropping the earlier run's partial state, which is of another version).
void DownloadCore::decideManifest(kj::TimePoint now) {
  if (current != State::fetchingManifest || manifestTicket != nullptr) return;
  kj::Vector<std::pair<codec::Digest, uint32_t>> votes;
  for (auto& s : sources) {
    if (!isCandidate(s.value)) continue;
    auto digest = KJ_ASSERT_NONNULL(s.value.info.listed);
    bool counted = false;
    for (auto& v : votes) {
      if (v.first == digest) {
        ++v.second;
        counted = true;
      }
    }
    if (!counted) votes.add(digest, 1u);
  }
  if (votes.empty()) return;  // wait for a source (checkSources() bounds the wait)
  KJ_IF_MAYBE (r, resumed) {
    for (auto& v : votes) {
      if (v.first == (*r)->digest) {
        auto manifest = kj::mv(*r);
        resumed = nullptr;
        useManifest(kj::mv(manifest), now);
        return;
      }
    }
    resumed = nullptr;  // PartialItem removes its files when preparing another manifest
    claimed = ChunkSet();
  }
  auto best = &votes[0];
  for (auto& v : votes) {
    if (v.second > best->second) best = &v;
  }
  wanted = best->first;
  requestManifest(now);
}

void DownloadCore::requestManifest(kj::TimePoint now) {
  if (current != State::fetchingManifest || manifestTicket != nullptr) return;
  auto& digest = KJ_ASSERT_NONNULL(wanted);
  kj::Maybe<SourceKey> chosen;
  double bestRate = -1;
  for (auto& s : sources) {
    auto& source = s.value;
    if (!isCandidate(source) || source.notBefore > now) continue;
    if (KJ_ASSERT_NONNULL(source.info.listed) != digest) continue;
    if (source.window.rate() > bestRate) {
      bestRate = source.window.rate();
      chosen = s.key;
    }
  }
  KJ_IF_MAYBE (key, chosen) {
    auto& source = KJ_ASSERT_NONNULL(sources.find(*key));
    Ticket ticket = nextTicket++;
    requests.insert(ticket, Request{*key, true, 0, 0, SendStamp{now, 0, now, true}});
    if (source.outstanding++ == 0) source.lastProgress = now;
    manifestTicket = ticket;
    assembling = kj::heap<codec::ManifestAssembler>(item);
    actions.add(action::GetManifest{ticket, *key});
  }
}

void DownloadCore::onManifestPage(Ticket ticket, wire::Manifest::Reader page, bool terminal,
                                  kj::TimePoint now) {
  if (manifestTicket != ticket) return;  // late, cancelled or unknown
  SourceKey key = KJ_ASSERT_NONNULL(requests.find(ticket)).source;
  KJ_IF_MAYBE (source, sources.find(key)) {
    source->lastProgress = now;
  }
  auto& assembler = *KJ_ASSERT_NONNULL(assembling);
  kj::Maybe<kj::Own<codec::Manifest>> manifest;
  kj::Maybe<kj::String> problem;
  KJ_IF_MAYBE (failure, assembler.feed(page)) {
    problem = kj::mv(failure->message);
  } else if (!terminal) {
    return;  // more pages to come
  } else if (!assembler.isComplete()) {
    problem = kj::str("the last page left it incomplete");
  } else {
    manifest = kj::heap(assembler.take());
  }
  // The request is over at its last page; before it, the source is still sending: cancel it.
  if (terminal) {
    releaseRequest(ticket, KJ_ASSERT_NONNULL(requests.find(ticket)));
  } else {
    withdraw(ticket);
  }
  KJ_IF_MAYBE (p, problem) {
    // A page out of order or not contiguous breaks [RQ-6] (the session must end); a manifest
    // failing the final checks of [MAN-21] is only discarded.
    if (!terminal) actions.add(action::Misbehaved{key, kj::str(*p)});
    dropFaulty(key, DropReason::badManifest, kj::mv(*p));
  }
  KJ_IF_MAYBE (m, manifest) {
    if ((*m)->digest == KJ_ASSERT_NONNULL(wanted)) {
      KJ_IF_MAYBE (source, sources.find(key)) {
        source->errorsInRow = 0;
      }
      useManifest(kj::mv(*m), now);
      return;
    }
    // The source's library changed since it listed the item: not its fault, but not the
    // manifest we are after either.
    dropFaulty(key, DropReason::changed,
               kj::str("sent manifest ", (*m)->digest, ", listed ", KJ_ASSERT_NONNULL(wanted)));
  }
  decideManifest(now);
  checkSources(now);
}

void DownloadCore::dropFaulty(SourceKey key, DropReason reason, kj::String detail) {
  KJ_IF_MAYBE (source, sources.find(key)) {
    dropSource(key, *source, reason, kj::mv(detail));
  }
}

void DownloadCore::useManifest(kj::Own<codec::Manifest> manifest, kj::TimePoint now) {
  auto& m = *manifest;
  // Our own limits: a chunk must fit in one Chunk frame we accept (splitting is not done).
  if (m.chunkSize > ours.maxChunkBytes ||
      uint64_t(m.chunkSize) + codec::kFrameOverheadBytes > ours.maxFrameBytes) {
    auto message = kj::str("chunks of ", m.chunkSize, " bytes exceed our limits (maxChunkBytes ",
                           ours.maxChunkBytes, ", maxFrameBytes ", ours.maxFrameBytes, ")");
    target = kj::mv(manifest);
    stop(Outcome::failed, kj::mv(message), now);
    return;
  }
  chunks = kj::heapArray<Chunk>(m.chunks.size());
  done = ChunkSet(m.chunks.size());
  missingCount = m.chunks.size();
  if (claimed.size() != m.chunks.size()) claimed = ChunkSet(m.chunks.size());
  for (auto& s : sources) {
    auto& source = s.value;
    source.window = SourceWindow(kj::min(source.info.maxInFlight, limits.maxWindow),
                                 limits.initialWindow, m.chunkSize, limits.minWindowBytes);
  }
  events.add(event::ManifestReady{m.totalBytes, m.chunks.size(), uint32_t(m.files.size())});
  target = kj::mv(manifest);
  for (auto& s : sources) {
    if (s.value.usable && s.value.info.maxChunkBytes < m.chunkSize &&
        !isMutant(Mutant::ignoresSourceChunkLimit)) {
      dropSource(s.key, s.value, DropReason::tooSmall,
                 kj::str("maxChunkBytes ", s.value.info.maxChunkBytes, " below the chunk size ",
                         m.chunkSize));
    }
  }
  current = State::preparing;
  diskBusy = true;
  actions.add(action::Prepare{});
}

void DownloadCore::onPrepared(kj::TimePoint now) {
  if (!diskBusy || current == State::ended) return;
  diskBusy = false;
  if (current == State::stopping) {
    maybeEnd();
    return;
  }
  KJ_ASSERT(current == State::preparing);
  current = State::downloading;
  // Chunks an earlier run recorded count only once read back and verified ([CHK-10]).
  for (auto c = claimed.next(0); c != nullptr; c = claimed.next(KJ_ASSERT_NONNULL(c) + 1)) {
    auto chunk = KJ_ASSERT_NONNULL(c);
    chunks[chunk].status = ChunkStatus::checking;
    --missingCount;
  }
  lastSaved = now;
  checkCompletion();
  schedule(now);
}

// --- the writer's answers ----------------------------------------------------------------------

void DownloadCore::markDone(uint64_t chunk) {
  chunks[chunk].status = ChunkStatus::done;
  done.add(chunk);
  doneBytes += lengthOf(chunk);
  badFrom.erase(chunk);
  unsaved = true;
}

void DownloadCore::onChunkWritten(uint64_t chunk, kj::TimePoint now) {
  if (target == nullptr || chunk >= chunks.size()) return;
  if (chunks[chunk].status != ChunkStatus::writing) return;
  --writing;
  buffered -= lengthOf(chunk);
  writtenFrom.erase(chunk);
  markDone(chunk);
  if (current == State::stopping) {
    maybeEnd();
    return;
  }
  checkCompletion();
  schedule(now);
}

void DownloadCore::onChunkCorrupt(uint64_t chunk, kj::TimePoint now) {
  if (target == nullptr || chunk >= chunks.size()) return;
  if (chunks[chunk].status != ChunkStatus::writing) return;
  --writing;
  buffered -= lengthOf(chunk);
  KJ_IF_MAYBE (from, writtenFrom.find(chunk)) {
    SourceKey key = *from;
    writtenFrom.erase(chunk);
    badFrom.upsert(chunk, key, [](SourceKey& old, SourceKey n) { old = n; });
    strike(key, kj::str("chunk ", chunk, " failed verification"));
  }
  backToMissing(chunk);
  if (current == State::stopping) {
    maybeEnd();
    return;
  }
  checkSources(now);
  schedule(now);
}

void DownloadCore::onJobDropped(uint64_t chunk, kj::TimePoint now) {
  if (target == nullptr || chunk >= chunks.size()) return;
  auto& c = chunks[chunk];
  if (c.status == ChunkStatus::writing) {
    --writing;
    buffered -= lengthOf(chunk);
    writtenFrom.erase(chunk);
    backToMissing(chunk);
  } else if (c.status == ChunkStatus::checking && checking > 0) {
    --checking;  // still claimed: saved as held, checked by the next run
  } else {
    return;
  }
  if (current == State::stopping) {
    maybeEnd();
  } else {
    schedule(now);
  }
}

void DownloadCore::onChunkChecked(uint64_t chunk, bool intact, kj::TimePoint now) {
  if (target == nullptr || chunk >= chunks.size() || checking == 0) return;
  if (chunks[chunk].status != ChunkStatus::checking || !claimed.has(chunk)) return;
  --checking;
  claimed.remove(chunk);
  unsaved = true;
  if (intact || isMutant(Mutant::trustsResume)) {
    markDone(chunk);
  } else {
    backToMissing(chunk);
  }
  if (current == State::stopping) {
    maybeEnd();
    return;
  }
  checkCompletion();
  schedule(now);
}

void DownloadCore::onSaved(kj::TimePoint now) {
  if (!saving) return;
  saving = false;
  if (current == State::stopping) {
    maybeEnd();
    return;
  }
  if (saveAgain) {
    saveAgain = false;
    save(now);
  }
  checkCompletion();
}

void DownloadCore::onFinished(kj::TimePoint now) {
  (void)now;
  if (current != State::finishing || !diskBusy) return;
  diskBusy = false;
  current = State::ended;
  events.add(event::Progress{doneBytes, manifest().totalBytes, 0});
  events.add(event::Ended{Outcome::finished, kj::str()});
}

void DownloadCore::onChunkFailed(uint64_t chunk, kj::StringPtr message, kj::TimePoint now) {
  if (current == State::ended) return;
  if (current == State::stopping) {
    if (endMessage.size() == 0) endMessage = kj::str(message);
  } else {
    stop(Outcome::failed, kj::str(message), now);
  }
  // The job is over and wrote nothing that counts: like a dropped one.
  onJobDropped(chunk, now);
}

void DownloadCore::onDiskFailed(kj::StringPtr message, kj::TimePoint now) {
  if (current == State::ended) return;
  // The job that failed is over: a Prepare, a Finish or a save (never two at once).
  diskBusy = false;
  saving = false;
  if (current == State::stopping) {
    // Already ending (e.g. the final save failed): keep the first reason, add this one.
    if (endMessage.size() == 0) endMessage = kj::str(message);
    stopSaveStarted = true;  // do not try again
    maybeEnd();
    return;
  }
  stop(Outcome::failed, kj::str(message), now);
}

void DownloadCore::save(kj::TimePoint now) {
  if (saving) {
    saveAgain = true;
    return;
  }
  // Chunks claimed by an earlier run and not checked yet are still held: keep them claimed.
  auto chunksHeld = done.clone();
  for (auto c = claimed.next(0); c != nullptr; c = claimed.next(KJ_ASSERT_NONNULL(c) + 1)) {
    chunksHeld.add(KJ_ASSERT_NONNULL(c));
  }
  actions.add(action::SaveProgress{kj::mv(chunksHeld)});
  saving = true;
  unsaved = false;
  lastSaved = now;
}

void DownloadCore::checkCompletion() {
  bool early = isMutant(Mutant::renameEarly) && !done.isEmpty() && writing == 0;
  if (current != State::downloading || !(done.isFull() || early)) return;
  if (saving) return;  // onSaved() calls again: a save and the final rename never overlap
  current = State::finishing;
  kj::Vector<Ticket> tickets;
  for (auto& r : requests)
    tickets.add(r.key);
  for (auto t : tickets)
    withdraw(t);
  diskBusy = true;
  actions.add(action::Finish{});
}

// --- stopping ----------------------------------------------------------------------------------

void DownloadCore::cancel(kj::TimePoint now) {
  stop(Outcome::cancelled, kj::str(), now);
}

void DownloadCore::shutdown(kj::TimePoint now) {
  stop(Outcome::stopped, kj::str(), now);
}

void DownloadCore::stop(Outcome outcome, kj::String message, kj::TimePoint now) {
  (void)now;
  if (current == State::stopping || current == State::ended) return;
  if (current == State::finishing) {
    // The rename is under way and cannot be interrupted halfway; its answer ends the download.
    if (outcome != Outcome::failed) return;
  }
  bool prepared = current == State::downloading || current == State::finishing;
  current = State::stopping;
  ending = outcome;
  endMessage = kj::mv(message);
  kj::Vector<Ticket> tickets;
  for (auto& r : requests)
    tickets.add(r.key);
  for (auto t : tickets)
    withdraw(t);
  manifestTicket = nullptr;
  assembling = nullptr;
  if (writing > 0 || checking > 0) actions.add(action::StopWrites{});
  // Progress is saved only where a prepared partial state exists to go with it.
  stopSaveStarted = !prepared;
  maybeEnd();
}

// Ends once nothing is in flight on the disk: the writes under way finish (a chunk is never cut
// halfway), then the progress is saved, then Ended.
void DownloadCore::maybeEnd() {
  if (current != State::stopping) return;
  if (writing > 0 || checking > 0 || diskBusy) return;
  if (saving) return;
  if (!stopSaveStarted) {
    stopSaveStarted = true;
    saveAgain = false;
    if (unsaved) {
      save(lastSaved);
      return;
    }
  }
  current = State::ended;
  if (target != nullptr) events.add(event::Progress{doneBytes, manifest().totalBytes, 0});
  events.add(event::Ended{ending, kj::mv(endMessage)});
}

// --- sources and timers ------------------------------------------------------------------------

void DownloadCore::checkSources(kj::TimePoint now) {
  if (current != State::fetchingManifest && current != State::preparing &&
      current != State::downloading) {
    return;
  }
  bool any = false;
  for (auto& s : sources) {
    if (isCandidate(s.value)) any = true;
  }
  if (any) {
    noSourcesSince = nullptr;
    return;
  }
  KJ_IF_MAYBE (since, noSourcesSince) {
    if (now - *since < limits.peersGoneGrace) return;
  } else {
    noSourcesSince = now;
    if (limits.peersGoneGrace > 0 * kj::SECONDS) return;
  }
  events.add(event::AllPeersGone{});
  stop(Outcome::allPeersGone, kj::str(), now);
}

void DownloadCore::progress(kj::TimePoint now) {
  lastProgressEvent = now;
  events.add(event::Progress{doneBytes, manifest().totalBytes, sourcesInUse()});
}

void DownloadCore::onTick(kj::TimePoint now) {
  if (current == State::ended || current == State::loading) return;
  kj::Vector<SourceKey> stalledKeys;
  for (auto& s : sources) {
    auto& source = s.value;
    if (source.usable && source.outstanding > 0 &&
        now - source.lastProgress >= limits.stallTimeout) {
      stalledKeys.add(s.key);
    }
  }
  for (auto key : stalledKeys) {
    KJ_IF_MAYBE (source, sources.find(key)) {
      stalled(key, *source, now);
    }
  }
  if (current == State::downloading) {
    if (unsaved && now - lastSaved >= limits.saveInterval) save(now);
    if (now - lastProgressEvent >= limits.progressInterval) progress(now);
  }
  checkSources(now);
  decideManifest(now);
  schedule(now);
}

void DownloadCore::addSource(SourceKey key, SourceInfo info, kj::TimePoint now) {
  KJ_IF_MAYBE (existing, sources.find(key)) {
    // Same session, news about it: limits and listing change, strikes and estimates stay.
    existing->badChunks = kj::max(existing->badChunks, info.badChunks);
    existing->info = kj::mv(info);
    if (existing->badChunks >= limits.maxBadChunks) {
      dropSource(key, *existing, DropReason::badChunks,
                 kj::str(existing->badChunks, " bad chunks in this session"));
    }
  } else {
    uint32_t chunkBytes = codec::kDefaultChunkSize;
    KJ_IF_MAYBE (m, target) {
      chunkBytes = (*m)->chunkSize;
    }
    uint32_t cap = kj::min(info.maxInFlight, limits.maxWindow);
    auto& source =
        sources
            .insert(key, Source{kj::mv(info), SourceWindow(cap, limits.initialWindow, chunkBytes,
                                                           limits.minWindowBytes)})
            .value;
    source.lastProgress = now;
    source.notBefore = now;
    source.badChunks = source.info.badChunks;
    if (source.badChunks >= limits.maxBadChunks) {
      dropSource(key, source, DropReason::badChunks,
                 kj::str(source.badChunks, " bad chunks in earlier downloads"));
    }
    KJ_IF_MAYBE (m, target) {
      if (source.info.maxChunkBytes < (*m)->chunkSize &&
          !isMutant(Mutant::ignoresSourceChunkLimit)) {
        dropSource(key, source, DropReason::tooSmall,
                   kj::str("maxChunkBytes ", source.info.maxChunkBytes, " below the chunk size ",
                           (*m)->chunkSize));
      }
    }
  }
  checkSources(now);
  decideManifest(now);
  schedule(now);
}

void DownloadCore::removeSource(SourceKey key, kj::TimePoint now) {
  if (sources.find(key) == nullptr) return;
  if (!isMutant(Mutant::lostRequestsKept)) withdrawAll(key);
  auto& gone = KJ_ASSERT_NONNULL(sources.find(key));
  if (gone.bytesReceived > 0) departed.add(SourceBytes{gone.info.peer, gone.bytesReceived});
  sources.erase(key);
  checkSources(now);
  decideManifest(now);
  schedule(now);
}

}  // namespace shoal::peer::download
