// DownloadCore's scheduling: which chunk each source is asked for, answers and failures of chunk
// requests, stalls, strikes and dropping sources. docs/downloads.md describes the policy.
#include <shoal/peer/download/download-core.h>

#include <algorithm>
#include <utility>

#include <kj/debug.h>
#include <shoal/codec/frames.h>
#include <shoal/mutant.h>

namespace shoal::peer::download {

uint32_t DownloadCore::fileOf(uint64_t chunk) const {
  auto& first = manifest().firstChunk;
  // The last file starting at or before `chunk`: empty files before it share its first chunk.
  auto it = std::upper_bound(first.begin(), first.end(), chunk);
  KJ_ASSERT(it != first.begin());
  return uint32_t(it - first.begin() - 1);
}

uint32_t DownloadCore::lengthOf(uint64_t chunk) const {
  uint32_t file = fileOf(chunk);
  return manifest().chunkLength(file, chunk - manifest().firstChunk[file]);
}

bool DownloadCore::sourceHas(const Source& source, uint64_t chunk) const {
  KJ_IF_MAYBE (has, source.info.has) {
    return has->size() == chunks.size() && has->has(chunk);
  }
  return true;
}

bool DownloadCore::canUse(const Source& source, kj::TimePoint now) const {
  return isCandidate(source) && source.notBefore <= now;
}

// A chunk whose copy from `key` failed verification goes to another source when one can serve it
// ([CHK-7] "preferably from another peer").
bool DownloadCore::avoidFor(SourceKey key, uint64_t chunk) const {
  KJ_IF_MAYBE (bad, badFrom.find(chunk)) {
    if (*bad != key) return false;
    for (auto& s : sources) {
      if (s.key != key && isCandidate(s.value) && sourceHas(s.value, chunk)) return true;
    }
  }
  return false;
}

// --- choosing and sending ----------------------------------------------------------------------

void DownloadCore::schedule(kj::TimePoint now) {
  if (current != State::downloading) return;
  startChecks();
  // Faster sources choose first: with a budget or an endgame to share, they get the chunks.
  kj::Vector<std::pair<double, SourceKey>> order;
  for (auto& s : sources) {
    if (canUse(s.value, now)) order.add(s.value.window.rate(), s.key);
  }
  std::sort(order.begin(), order.end(), [](auto& a, auto& b) {
    return a.first != b.first ? a.first > b.first : a.second < b.second;
  });
  for (auto& o : order) {
    if (!fill(o.second, KJ_ASSERT_NONNULL(sources.find(o.second)), now)) break;
  }
}

void DownloadCore::startChecks() {
  while (checking < limits.maxChecksInFlight) {
    auto next = claimed.next(nextClaim);
    KJ_IF_MAYBE (chunk, next) {
      nextClaim = *chunk + 1;
      ++checking;
      auto& m = manifest();
      uint32_t file = fileOf(*chunk);
      uint64_t k = *chunk - m.firstChunk[file];
      actions.add(action::CheckChunk{*chunk, file, m.chunkOffset(k), m.chunkLength(file, k)});
    } else {
      return;
    }
  }
}

// Sends requests to `source` up to its window. Returns false when the memory budget is spent
// (no other source can be given anything either).
bool DownloadCore::fill(SourceKey key, Source& source, kj::TimePoint now) {
  uint32_t chunkSize = manifest().chunkSize;
  while (source.outstanding < source.window.size()) {
    // Room for a whole chunk, whichever comes; always one in flight, so that a budget below the
    // chunk size still makes progress.
    if (buffered > 0 && buffered + chunkSize > limits.maxBufferedBytes) return false;
    if (requests.size() + writing >= limits.maxBufferedChunks) return false;
    kj::Maybe<uint64_t> chunk = pick(key, source);
    if (chunk == nullptr && missingCount == 0) chunk = pickDuplicate(key, source);
    KJ_IF_MAYBE (c, chunk) {
      sendChunk(key, source, *c, now);
    } else {
      return true;
    }
  }
  return true;
}

// The next missing chunk for this source: those that came back (failed, lost, corrupt) first,
// then onwards from the cursor, so files are written mostly in order.
kj::Maybe<uint64_t> DownloadCore::pick(SourceKey key, const Source& source) {
  if (missingCount == 0) return nullptr;
  while (retryHead < retryQueue.size() && !chunks[retryQueue[retryHead]].queued) {
    ++retryHead;
  }
  for (size_t i = retryHead; i < retryQueue.size(); ++i) {
    uint64_t c = retryQueue[i];
    auto& chunk = chunks[c];
    if (!chunk.queued || chunk.status != ChunkStatus::missing) continue;
    if (!sourceHas(source, c) || avoidFor(key, c)) continue;
    chunk.queued = false;
    return c;
  }
  if (retryHead == retryQueue.size()) {
    retryQueue.clear();
    retryHead = 0;
  }
  while (cursor < chunks.size() && chunks[cursor].status != ChunkStatus::missing)
    ++cursor;
  for (uint64_t c = cursor; c < chunks.size(); ++c) {
    auto& chunk = chunks[c];
    if (chunk.status != ChunkStatus::missing || !sourceHas(source, c) || avoidFor(key, c)) continue;
    chunk.queued = false;
    if (c == cursor) ++cursor;
    return c;
  }
  return nullptr;
}

// Endgame: nothing is missing, but chunks are still on their way. Ask this source too for the one
// requested longest ago elsewhere; whichever copy comes first wins and the other is cancelled.
kj::Maybe<uint64_t> DownloadCore::pickDuplicate(SourceKey key, const Source& source) {
  kj::Maybe<uint64_t> best;
  kj::TimePoint bestSent = kj::maxValue;
  for (auto& r : requests) {
    auto& request = r.value;
    if (request.manifest || request.stamp.sentAt >= bestSent) continue;
    auto& chunk = chunks[request.chunk];
    if (chunk.status != ChunkStatus::requested || chunk.copies >= limits.endgameCopies) continue;
    if (!sourceHas(source, request.chunk) || avoidFor(key, request.chunk)) continue;
    bool fromThisSource = false;
    for (auto& other : requests) {
      if (!other.value.manifest && other.value.chunk == request.chunk && other.value.source == key)
        fromThisSource = true;
    }
    if (fromThisSource) continue;
    best = request.chunk;
    bestSent = request.stamp.sentAt;
  }
  return best;
}

void DownloadCore::sendChunk(SourceKey key, Source& source, uint64_t chunk, kj::TimePoint now) {
  auto& m = manifest();
  uint32_t file = fileOf(chunk);
  uint64_t k = chunk - m.firstChunk[file];
  uint32_t length = m.chunkLength(file, k);
  Ticket ticket = nextTicket++;
  requests.insert(
      ticket, Request{key, false, chunk, length, source.window.onSent(now, source.outstanding)});
  if (source.outstanding++ == 0) source.lastProgress = now;
  auto& c = chunks[chunk];
  if (c.status == ChunkStatus::missing) --missingCount;
  c.status = ChunkStatus::requested;
  ++c.copies;
  buffered += length;
  actions.add(action::GetChunk{ticket, key, chunk, file, m.chunkOffset(k), length});
}

// --- ending requests ---------------------------------------------------------------------------

void DownloadCore::releaseRequest(Ticket ticket, const Request& request) {
  KJ_IF_MAYBE (source, sources.find(request.source)) {
    --source->outstanding;
  }
  if (request.manifest) {
    manifestTicket = nullptr;
    assembling = nullptr;
  } else {
    buffered -= request.length;
    --chunks[request.chunk].copies;
  }
  requests.erase(ticket);
}

void DownloadCore::withdraw(Ticket ticket) {
  KJ_IF_MAYBE (r, requests.find(ticket)) {
    Request request = *r;
    releaseRequest(ticket, request);
    actions.add(action::Cancel{ticket});
    if (!request.manifest) {
      auto& chunk = chunks[request.chunk];
      if (chunk.status == ChunkStatus::requested && chunk.copies == 0) backToMissing(request.chunk);
    }
  }
}

void DownloadCore::withdrawAll(SourceKey key) {
  kj::Vector<Ticket> tickets;
  for (auto& r : requests) {
    if (r.value.source == key) tickets.add(r.key);
  }
  for (auto t : tickets)
    withdraw(t);
}

void DownloadCore::backToMissing(uint64_t chunk) {
  auto& c = chunks[chunk];
  if (c.status != ChunkStatus::missing) ++missingCount;
  c.status = ChunkStatus::missing;
  if (!c.queued) {
    c.queued = true;
    retryQueue.add(chunk);
  }
}

kj::Maybe<ChunkWrite> DownloadCore::onChunk(Ticket ticket, size_t length, kj::TimePoint now) {
  auto found = requests.find(ticket);
  if (found == nullptr) return nullptr;  // cancelled, answered already, or never ours [RQ-18]
  Request request = KJ_ASSERT_NONNULL(found);
  if (request.manifest) return nullptr;  // the session refuses a Chunk for a GetManifest [RQ-13]
  releaseRequest(ticket, request);
  auto& chunk = chunks[request.chunk];
  KJ_IF_MAYBE (source, sources.find(request.source)) {
    source->lastProgress = now;
    if (length != request.length) {
      // [CHK-6]: a bad chunk of that source.
      if (chunk.status == ChunkStatus::requested && chunk.copies == 0) backToMissing(request.chunk);
      if (isMutant(Mutant::wrongLengthForgiven)) {
        sourceFailed(request.source, *source, "a chunk of the wrong length", now);
      } else {
        strike(request.source, kj::str("chunk ", request.chunk, " came with ", length,
                                       " bytes instead of ", request.length));
      }
      checkSources(now);
      schedule(now);
      return nullptr;
    }
    source->errorsInRow = 0;
    source->bytesReceived += length;
    source->window.onDelivered(length, request.stamp, now);
  }
  if (chunk.status != ChunkStatus::requested) {
    schedule(now);
    return nullptr;  // a duplicate: the chunk is being written or done already
  }
  // The first copy wins; the others are cancelled (endgame).
  chunk.status = ChunkStatus::writing;
  kj::Vector<Ticket> losers;
  for (auto& r : requests) {
    if (!r.value.manifest && r.value.chunk == request.chunk) losers.add(r.key);
  }
  for (auto t : losers)
    withdraw(t);
  ++writing;
  buffered += request.length;
  writtenFrom.upsert(request.chunk, request.source, [](SourceKey& old, SourceKey n) { old = n; });
  auto& m = manifest();
  uint32_t file = fileOf(request.chunk);
  ChunkWrite write{request.chunk, file, m.chunkOffset(request.chunk - m.firstChunk[file])};
  schedule(now);
  return write;
}

void DownloadCore::onRequestFailed(Ticket ticket, wire::ErrorCode code, uint32_t retryAfterMs,
                                   bool local, kj::TimePoint now) {
  auto found = requests.find(ticket);
  if (found == nullptr) return;
  if (local && isMutant(Mutant::lostRequestsKept)) return;  // [ERR-8] broken: still outstanding
  Request request = KJ_ASSERT_NONNULL(found);
  if (local && !request.manifest && isMutant(Mutant::lostSourceFailsItem)) {
    // [ERR-9] broken: gives up instead of asking the sources left.
    stop(Outcome::failed, kj::str("a source was lost with chunk requests outstanding"), now);
    return;
  }
  releaseRequest(ticket, request);
  if (!request.manifest) {
    auto& chunk = chunks[request.chunk];
    if (chunk.status == ChunkStatus::requested && chunk.copies == 0) backToMissing(request.chunk);
  }
  KJ_IF_MAYBE (source, sources.find(request.source)) {
    source->lastProgress = now;
    using Code = wire::ErrorCode;
    if (local || code == Code::SHUTTING_DOWN) {
      // The session is ending; removeSource() follows. Nothing is the source's fault.
      source->notBefore = kj::max(source->notBefore, now + limits.errorBackoff);
    } else if (code == Code::BUSY || code == Code::UNAVAILABLE) {
      // [ERR-5]: not before retryAfterMs at this source.
      auto delay = kj::max(retryAfterMs * kj::MILLISECONDS, limits.minRetryAfter);
      source->notBefore = kj::max(source->notBefore, now + delay);
      if (code == Code::BUSY) source->window.onBusy(source->outstanding);
    } else if (code == Code::STALE || code == Code::NOT_FOUND) {
      dropSource(request.source, *source, DropReason::changed,
                 kj::str("answered ", codec::name(code)));
    } else {
      sourceFailed(request.source, *source, codec::name(code), now);
    }
  }
  checkSources(now);
  decideManifest(now);
  schedule(now);
}

// --- sources at fault --------------------------------------------------------------------------

void DownloadCore::dropSource(SourceKey key, Source& source, DropReason reason, kj::String detail) {
  if (!source.usable) return;
  source.usable = false;
  withdrawAll(key);
  events.add(event::SourceDropped{key, source.info.peer, reason, kj::mv(detail)});
}

void DownloadCore::strike(SourceKey key, kj::StringPtr why) {
  KJ_IF_MAYBE (source, sources.find(key)) {
    // Its answers still waiting for the writer when it was dropped may come back bad too: the
    // drop already said so.
    if (!source->usable) return;
    ++source->badChunks;
    events.add(event::BadChunk{key, source->info.peer, source->badChunks});
    if (source->badChunks >= limits.maxBadChunks && !isMutant(Mutant::noStrikes)) {
      dropSource(key, *source, DropReason::badChunks,
                 kj::str(source->badChunks, " bad chunks, the last: ", why));
    }
  }
}

void DownloadCore::sourceFailed(SourceKey key, Source& source, kj::StringPtr why,
                                kj::TimePoint now) {
  // Never earlier than a retry-after still running ([ERR-5]): a later failure must not shorten it.
  source.notBefore = kj::max(source.notBefore, now + limits.errorBackoff);
  if (++source.errorsInRow >= limits.maxSourceErrors) {
    dropSource(key, source, DropReason::errors,
               kj::str(source.errorsInRow, " failures in a row, the last: ", why));
  }
}

// No answer for the stall timeout: what it holds goes elsewhere, its window halves.
void DownloadCore::stalled(SourceKey key, Source& source, kj::TimePoint now) {
  withdrawAll(key);
  source.window.onStall();
  sourceFailed(key, source, "stalled", now);
  source.lastProgress = now;
}

}  // namespace shoal::peer::download
