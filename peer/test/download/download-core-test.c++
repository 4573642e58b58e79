// DownloadCore on a virtual clock: the manifest, every source used, windows, faster sources first,
// re-requests on error, stall and disconnect, retry-after, endgame with Cancel of the losers,
// answers that must be dropped, bad chunks and strikes, AllPeersGone exactly once, stopping
// between chunks, resume with re-verification, periodic saves, the memory budget.
#include <shoal/peer/download/download-core.h>

#include "core-harness.h"

namespace shoal::peer::download::test {
namespace {

constexpr uint64_t kOneFile[] = {10 * 4096};
constexpr uint64_t kBig[] = {200 * 4096};

// --- the whole way through ---------------------------------------------------------------------

TEST(DownloadCore, FetchesTheManifestThenEveryChunkOnceThenFinishes) {
  const uint64_t sizes[] = {3 * 4096 + 100, 0, 4096, 5000};  // an empty file, a short last chunk
  CoreHarness h(sizes);
  h.addSource(1);
  h.startDownloading();
  EXPECT_EQ(h.core.state(), DownloadCore::State::downloading);
  EXPECT_EQ(h.prepares, 1u);
  EXPECT_EQ(h.count<event::ManifestReady>(), 1u);
  h.answerAll();
  for (auto w : h.writes)
    EXPECT_EQ(w, 1u);
  EXPECT_EQ(h.core.state(), DownloadCore::State::finishing);
  h.finish();
  auto& ended = KJ_ASSERT_NONNULL(h.ended());
  EXPECT_EQ(ended.outcome, Outcome::finished);
  EXPECT_EQ(h.core.bytesDone(), 3 * 4096 + 100 + 4096 + 5000u);
  // Every request ended: answered or cancelled.
  EXPECT_TRUE(h.inFlight.empty());
  EXPECT_EQ(h.core.outstanding(), 0u);
  // Whole chunks, within the file ([CHK-4], [CHK-5]).
  for (auto& s : h.sent) {
    EXPECT_EQ(s.offset % 4096, 0u);
    EXPECT_LE(s.offset + s.length, h.item.manifest.files[s.file].size);
  }
}

TEST(DownloadCore, AnItemWithoutChunksFinishesOncePrepared) {
  const uint64_t sizes[] = {0, 0};
  CoreHarness h(sizes);
  h.addSource(1);
  h.startDownloading();
  EXPECT_EQ(h.finishes, 1u);
  EXPECT_TRUE(h.sent.empty());
}

TEST(DownloadCore, UsesEverySourceListingTheManifestAndNoOther) {
  CoreHarness h(kBig);
  h.addSource(1);
  h.addSource(2);
  auto other = h.info(3);
  other.listed = codec::sha256(kj::str("another version").asBytes());
  h.core.addSource(3, kj::mv(other), h.now);
  h.drain();
  h.startDownloading();
  h.simulate(60 * SECONDS);
  EXPECT_EQ(KJ_ASSERT_NONNULL(h.ended()).outcome, Outcome::finished);
  EXPECT_GT(h.bytesFrom[1], 0u);
  EXPECT_GT(h.bytesFrom[2], 0u);
  EXPECT_EQ(h.bytesFrom.count(3), 0u);
  for (auto& s : h.sent)
    EXPECT_NE(s.source, 3u);
}

TEST(DownloadCore, AManifestFromASourceWhoseLibraryChangedIsNotUsed) {
  CoreHarness h(kOneFile);
  h.addSource(1);
  h.addSource(2);
  h.core.onLoaded(nullptr, ChunkSet(), h.now);
  h.drain();
  ASSERT_EQ(h.manifestRequests.size(), 1u);
  // The asked source answers with a different (valid) manifest.
  TestItem changed(kBig);
  auto frames = manifestFrames(changed.manifest);
  for (auto i : kj::indices(frames)) {
    h.core.onManifestPage(h.manifestRequests[0], frames[i].root().getManifest(),
                          i + 1 == frames.size(), h.now);
  }
  h.drain();
  EXPECT_EQ(h.count<event::SourceDropped>(), 1u);
  ASSERT_EQ(h.manifestRequests.size(), 2u);
  EXPECT_NE(h.manifestSources[1], h.manifestSources[0]);
  h.deliverManifest(h.manifestRequests[1]);
  EXPECT_EQ(h.core.state(), DownloadCore::State::preparing);
  EXPECT_EQ(h.core.manifest().digest, h.item.manifest.digest);
}

TEST(DownloadCore, PagesOutOfOrderEndTheSessionOfTheirSource) {
  const uint64_t sizes[] = {3000 * 4096};  // 96 KB of hashes: two pages of 64 KiB
  CoreHarness h(sizes);
  h.addSource(1);
  h.addSource(2);
  h.core.onLoaded(nullptr, ChunkSet(), h.now);
  h.drain();
  auto frames = manifestFrames(h.item.manifest, 65536);
  ASSERT_GT(frames.size(), 1u);
  h.core.onManifestPage(h.manifestRequests[0], frames[1].root().getManifest(), false, h.now);
  h.drain();
  ASSERT_EQ(h.misbehaved.size(), 1u);
  EXPECT_EQ(h.count<event::SourceDropped>(), 1u);
  ASSERT_EQ(h.manifestRequests.size(), 2u);
  // The other source's pages, in order, are accepted.
  for (auto i : kj::indices(frames)) {
    h.core.onManifestPage(h.manifestRequests[1], frames[i].root().getManifest(),
                          i + 1 == frames.size(), h.now);
  }
  h.drain();
  EXPECT_EQ(h.core.state(), DownloadCore::State::preparing);
}

// --- windows and speed ---------------------------------------------------------------------------

TEST(DownloadCore, FasterSourcesGetMoreOfTheItem) {
  CoreHarness h(kBig);
  h.addSource(1);
  h.addSource(2);
  h.behaviour[1] = {200e6, 1 * MILLISECONDS};
  h.behaviour[2] = {20e6, 1 * MILLISECONDS};
  h.startDownloading();
  h.simulate(60 * SECONDS);
  EXPECT_EQ(KJ_ASSERT_NONNULL(h.ended()).outcome, Outcome::finished);
  EXPECT_GT(h.bytesFrom[1], 4 * h.bytesFrom[2]);
  EXPECT_GT(h.bytesFrom[2], 0u);
  EXPECT_GT(KJ_ASSERT_NONNULL(h.core.windowOf(1)).rate(),
            KJ_ASSERT_NONNULL(h.core.windowOf(2)).rate());
}

TEST(DownloadCore, TheWindowGrowsWithTheRoundTripTime) {
  auto windowAt = [](kj::Duration latency) {
    const uint64_t sizes[] = {2000 * 4096};
    DownloadLimits limits;
    limits.minWindowBytes = 0;  // the product alone (the floor: AWindowHoldsAtLeastItsMinimumBytes)
    CoreHarness h(sizes, limits);
    h.addSource(1);
    h.behaviour[1] = {50e6, latency};
    h.startDownloading();
    h.simulate(2 * SECONDS);
    return KJ_ASSERT_NONNULL(h.core.windowOf(1)).size();
  };
  // 50 MB/s, 4 KiB chunks: ~2 chunks in flight fill a 0.1 ms path, ~25 a 2 ms one.
  uint32_t nearby = windowAt(100 * kj::MICROSECONDS);
  uint32_t far = windowAt(2 * MILLISECONDS);
  EXPECT_LE(nearby, 8u);
  EXPECT_GE(far, 30u);
  EXPECT_LE(far, 64u);
}

TEST(DownloadCore, TheWindowNeverExceedsTheSourcesMaxInFlight) {
  CoreHarness h(kBig);
  h.addSource(1, 3);
  h.behaviour[1] = {50e6, 50 * MILLISECONDS};
  h.startDownloading();
  size_t most = 0;
  for (int i = 0; i < 200 && !h.core.isEnded(); ++i) {
    most = kj::max(most, h.inFlightAt(1).size());
    h.simulate(5 * MILLISECONDS, 1 * MILLISECONDS);
  }
  EXPECT_EQ(most, 3u);
}

TEST(DownloadCore, TheMemoryBudgetBoundsRequestedAndUnwrittenBytes) {
  DownloadLimits limits;
  limits.maxBufferedBytes = 5 * 4096;
  CoreHarness h(kBig, limits);
  h.addSource(1);
  h.addSource(2);
  h.startDownloading();
  for (int round = 0; round < 400 && !h.core.isEnded(); ++round) {
    EXPECT_LE(h.core.bufferedBytes(), 5 * 4096u);
    size_t unwritten = h.pendingWrites.size();
    EXPECT_LE(h.inFlight.size() + unwritten, 5u);
    // Answer one and hold its write, then let the writer catch up every other round.
    if (!h.inFlight.empty()) h.answer(h.inFlight.begin()->first, false, true);
    if (round % 2 == 1) {
      for (auto w : h.pendingWrites)
        h.completeWrite(w);
      h.pendingWrites.clear();
    }
    if (h.finishes > 0) h.finish();
  }
  EXPECT_EQ(KJ_ASSERT_NONNULL(h.ended()).outcome, Outcome::finished);
}

// --- re-requests ---------------------------------------------------------------------------------

TEST(DownloadCore, AStalledSourceLosesItsChunksAndHalfItsWindow) {
  CoreHarness h(kBig);
  h.addSource(1);
  h.addSource(2);
  h.behaviour[2] = {100e6, 20 * MILLISECONDS};
  h.startDownloading();
  h.simulate(200 * MILLISECONDS, 1 * MILLISECONDS);  // both windows open up
  uint32_t before = KJ_ASSERT_NONNULL(h.core.windowOf(2)).size();
  ASSERT_GE(before, 2u);
  h.behaviour[2].silent = true;
  // Everything source 2 holds from now on is never answered.
  h.simulate(h.core.isEnded() ? 0 * SECONDS : 5500 * MILLISECONDS);
  if (!h.core.isEnded()) {
    EXPECT_LT(KJ_ASSERT_NONNULL(h.core.windowOf(2)).size(), before);
  }
  h.behaviour[2].silent = false;
  h.simulate(60 * SECONDS);
  EXPECT_EQ(KJ_ASSERT_NONNULL(h.ended()).outcome, Outcome::finished);
  EXPECT_GT(h.cancelled.size(), 0u);
  for (auto w : h.writes)
    EXPECT_EQ(w, 1u);
}

TEST(DownloadCore, StalledChunksAreCancelledAndAskedElsewhere) {
  CoreHarness h(kOneFile);
  h.addSource(1);
  h.startDownloading();
  auto stuck = h.inFlightAt(1);
  ASSERT_GT(stuck.size(), 0u);
  h.addSource(2);
  // Source 2 answers everything at once; source 1 never answers.
  bool askedElsewhere = false;
  for (int i = 0; i < 60 && !h.core.isEnded(); ++i) {
    for (auto& s : h.inFlightAt(2)) {
      askedElsewhere = askedElsewhere || s.chunk == stuck[0].chunk;
      h.answer(s.ticket);
    }
    if (h.finishes > 0) h.finish();
    h.advance(100 * MILLISECONDS);
  }
  for (auto& s : stuck) {
    EXPECT_NE(std::find(h.cancelled.begin(), h.cancelled.end(), s.ticket), h.cancelled.end());
  }
  EXPECT_TRUE(askedElsewhere);
  EXPECT_EQ(KJ_ASSERT_NONNULL(h.ended()).outcome, Outcome::finished);
  for (auto w : h.writes)
    EXPECT_EQ(w, 1u);
}

TEST(DownloadCore, ErrorsSendTheChunkElsewhereAndFiveInARowDropTheSource) {
  CoreHarness h(kOneFile);
  h.addSource(1);
  h.addSource(2);
  h.startDownloading();
  auto at1 = h.inFlightAt(1);
  ASSERT_GT(at1.size(), 0u);
  h.fail(at1[0].ticket, wire::ErrorCode::INTERNAL);
  // Source 1 waits out its error backoff; source 2's next request is the failed chunk.
  size_t before = h.sent.size();
  h.answer(h.inFlightAt(2)[0].ticket);
  ASSERT_GT(h.sent.size(), before);
  EXPECT_EQ(h.sent[before].chunk, at1[0].chunk);
  EXPECT_EQ(h.sent[before].source, 2u);
  for (int i = 0; i < 10 && h.count<event::SourceDropped>() == 0; ++i) {
    h.advance(1 * SECONDS);
    auto again = h.inFlightAt(1);
    if (!again.empty()) h.fail(again[0].ticket, wire::ErrorCode::INTERNAL);
  }
  ASSERT_EQ(h.count<event::SourceDropped>(), 1u);
  for (auto& e : h.events) {
    KJ_IF_MAYBE (dropped, e.tryGet<event::SourceDropped>()) {
      EXPECT_EQ(dropped->reason, DropReason::errors);
    }
  }
  EXPECT_TRUE(h.inFlightAt(1).empty());
}

TEST(DownloadCore, ADisconnectedSourcesChunksAreAskedElsewhere) {
  CoreHarness h(kOneFile);
  h.addSource(1);
  h.addSource(2);
  h.startDownloading();
  auto lost = h.inFlightAt(1);
  ASSERT_GT(lost.size(), 0u);
  h.core.removeSource(1, h.now);
  h.drain();
  for (auto& s : lost) {
    EXPECT_EQ(h.inFlight.count(s.ticket), 0u);  // the core let go of them
  }
  h.answerAll();
  h.finish();
  EXPECT_EQ(KJ_ASSERT_NONNULL(h.ended()).outcome, Outcome::finished);
  for (auto w : h.writes)
    EXPECT_EQ(w, 1u);
}

TEST(DownloadCore, RetryAfterIsHonoured) {
  CoreHarness h(kOneFile);
  h.addSource(1);
  h.startDownloading();
  auto first = h.inFlightAt(1);
  ASSERT_GT(first.size(), 0u);
  // Every outstanding request is answered busy with 500 ms.
  for (auto& s : first)
    h.fail(s.ticket, wire::ErrorCode::BUSY, 500);
  size_t sentBefore = h.sent.size();
  h.advance(499 * MILLISECONDS);
  EXPECT_EQ(h.sent.size(), sentBefore);
  h.advance(1 * MILLISECONDS);
  EXPECT_GT(h.sent.size(), sentBefore);
}

TEST(DownloadCore, UnavailableWithoutRetryAfterWaitsTheMinimum) {
  CoreHarness h(kOneFile);
  h.addSource(1);
  h.startDownloading();
  for (auto& s : h.inFlightAt(1))
    h.fail(s.ticket, wire::ErrorCode::UNAVAILABLE, 0);
  size_t sentBefore = h.sent.size();
  h.advance(99 * MILLISECONDS);
  EXPECT_EQ(h.sent.size(), sentBefore);
  h.advance(1 * MILLISECONDS);
  EXPECT_GT(h.sent.size(), sentBefore);
}

TEST(DownloadCore, StaleMeansTheSourceChanged) {
  CoreHarness h(kOneFile);
  h.addSource(1);
  h.addSource(2);
  h.startDownloading();
  auto at1 = h.inFlightAt(1);
  ASSERT_GT(at1.size(), 0u);
  h.fail(at1[0].ticket, wire::ErrorCode::STALE);
  ASSERT_EQ(h.count<event::SourceDropped>(), 1u);
  EXPECT_TRUE(h.inFlightAt(1).empty());
  h.answerAll();
  h.finish();
  EXPECT_EQ(KJ_ASSERT_NONNULL(h.ended()).outcome, Outcome::finished);
}

// --- endgame and answers to drop ----------------------------------------------------------------

TEST(DownloadCore, TheEndgameDuplicatesTheLastChunksAndCancelsTheLosers) {
  const uint64_t sizes[] = {4 * 4096};
  CoreHarness h(sizes);
  h.addSource(1, 1);  // one request at a time: source 2 gets the rest
  h.startDownloading();
  h.addSource(2, 8);
  // Let source 2 finish everything but the chunk held by source 1.
  auto slow = h.inFlightAt(1);
  ASSERT_EQ(slow.size(), 1u);
  for (int i = 0; i < 10; ++i) {
    auto at2 = h.inFlightAt(2);
    bool progressed = false;
    for (auto& s : at2) {
      if (s.chunk != slow[0].chunk) {
        h.answer(s.ticket);
        progressed = true;
        break;
      }
    }
    if (!progressed) break;
  }
  // Nothing is missing any more: source 2 has been given a copy of source 1's chunk.
  auto copies = h.inFlightAt(2);
  ASSERT_EQ(copies.size(), 1u);
  EXPECT_EQ(copies[0].chunk, slow[0].chunk);
  h.answer(copies[0].ticket);
  // The loser is cancelled; its late answer is dropped.
  EXPECT_NE(std::find(h.cancelled.begin(), h.cancelled.end(), slow[0].ticket), h.cancelled.end());
  EXPECT_TRUE(h.core.onChunk(slow[0].ticket, slow[0].length, h.now) == nullptr);
  h.finish();
  for (auto w : h.writes)
    EXPECT_EQ(w, 1u);
}

TEST(DownloadCore, UnrequestedDuplicateAndLateChunksAreDropped) {
  CoreHarness h(kOneFile);
  h.addSource(1);
  h.startDownloading();
  EXPECT_TRUE(h.core.onChunk(9999, 4096, h.now) == nullptr);  // never sent
  auto s = h.inFlightAt(1)[0];
  EXPECT_TRUE(h.answer(s.ticket) != nullptr);
  EXPECT_TRUE(h.core.onChunk(s.ticket, s.length, h.now) == nullptr);  // twice
  h.core.removeSource(1, h.now);
  h.drain();
  for (auto& t : h.cancelled) {
    EXPECT_TRUE(h.core.onChunk(t, 4096, h.now) == nullptr);  // after its Cancel
  }
  EXPECT_EQ(h.writes[s.chunk], 1u);
}

// --- lies
// -----------------------------------------------------------------------------------------

TEST(DownloadCore, ACorruptChunkIsRefetchedFromAnotherSource) {
  CoreHarness h(kOneFile);
  h.addSource(1);
  h.addSource(2);
  h.startDownloading();
  auto at1 = h.inFlightAt(1);
  ASSERT_GT(at1.size(), 0u);
  uint64_t chunk = at1[0].chunk;
  h.answer(at1[0].ticket, true);  // fails verification: nothing written
  EXPECT_EQ(h.writes[chunk], 0u);
  // Re-requested, and not from source 1 while source 2 can serve it.
  for (int i = 0; i < 50 && h.writes[chunk] == 0; ++i) {
    for (auto& s : h.inFlightAt(1))
      EXPECT_NE(s.chunk, chunk);
    h.answer(h.inFlight.begin()->first);
  }
  EXPECT_EQ(h.writes[chunk], 1u);
}

TEST(DownloadCore, FiveBadChunksDropTheSourceAndTheDownloadCompletesFromTheHonestOne) {
  CoreHarness h(kBig);
  h.addSource(1);
  h.addSource(2);
  h.behaviour[1].corrupt = true;
  h.startDownloading();
  h.simulate(60 * SECONDS);
  EXPECT_EQ(KJ_ASSERT_NONNULL(h.ended()).outcome, Outcome::finished);
  ASSERT_EQ(h.count<event::SourceDropped>(), 1u);
  for (auto& e : h.events) {
    KJ_IF_MAYBE (d, e.tryGet<event::SourceDropped>()) {
      EXPECT_EQ(d->reason, DropReason::badChunks);
      EXPECT_EQ(d->source, 1u);
      EXPECT_EQ(d->peer, peerId(1));
    }
  }
  for (auto w : h.writes)
    EXPECT_EQ(w, 1u);
}

// Found by cli-download-liar: a liar's answers already waiting for the writer when the fifth bad
// one dropped it came back bad too, and each was reported (bad chunk 6, 7, ... 20 of a source the
// download no longer used). [CHK-8] reports at most 5.
TEST(DownloadCore, BadChunksVerifiedAfterTheDropAreNotReportedAgain) {
  CoreHarness h(kBig);
  h.addSource(1);
  h.addSource(2);
  h.startDownloading();
  for (int i = 0; i < 12; ++i) {
    auto at1 = h.inFlightAt(1);
    if (at1.size() == 0) break;
    h.answer(at1[0].ticket, false, true);  // held: the writer has not verified it yet
  }
  auto held = kj::mv(h.pendingWrites);
  ASSERT_GE(held.size(), 6u);
  for (auto& w : held)
    h.completeWrite(w, true);
  EXPECT_EQ(h.count<event::BadChunk>(), 5u);
  EXPECT_EQ(h.count<event::SourceDropped>(), 1u);
  for (auto& e : h.events) {
    KJ_IF_MAYBE (bad, e.tryGet<event::BadChunk>()) {
      EXPECT_LE(bad->count, 5u);
    }
  }
  h.simulate(60 * SECONDS);
  EXPECT_EQ(KJ_ASSERT_NONNULL(h.ended()).outcome, Outcome::finished);
}

TEST(DownloadCore, AChunkOfTheWrongLengthIsABadChunk) {
  CoreHarness h(kOneFile);
  h.addSource(1);
  h.startDownloading();
  for (int i = 0; i < 5; ++i) {
    auto s = h.inFlightAt(1);
    ASSERT_GT(s.size(), 0u);
    h.inFlight.erase(s[0].ticket);
    EXPECT_TRUE(h.core.onChunk(s[0].ticket, s[0].length - 1, h.now) == nullptr);
    h.drain();
  }
  EXPECT_EQ(h.count<event::SourceDropped>(), 1u);
  // Source 1 was the only one: after the grace, all peers are gone.
  h.advance(2 * SECONDS);
  EXPECT_EQ(h.count<event::AllPeersGone>(), 1u);
}

TEST(DownloadCore, StrikesFromEarlierDownloadsCount) {
  CoreHarness h(kOneFile);
  auto struckOut = h.info(1);
  struckOut.badChunks = 5;
  h.core.addSource(1, kj::mv(struckOut), h.now);
  auto almost = h.info(2);
  almost.badChunks = 4;
  h.core.addSource(2, kj::mv(almost), h.now);
  h.addSource(3);
  h.startDownloading();
  EXPECT_TRUE(h.inFlightAt(1).empty());  // never asked: it is out for this session ([CHK-8])
  auto at2 = h.inFlightAt(2);
  ASSERT_GT(at2.size(), 0u);
  h.answer(at2[0].ticket, true);  // its fifth
  EXPECT_EQ(h.count<event::BadChunk>(), 1u);
  for (auto& e : h.events) {
    KJ_IF_MAYBE (bad, e.tryGet<event::BadChunk>()) {
      EXPECT_EQ(bad->source, 2u);
      EXPECT_EQ(bad->count, 5u);
    }
  }
  EXPECT_EQ(h.count<event::SourceDropped>(), 2u);
  EXPECT_TRUE(h.inFlightAt(2).empty());
}

TEST(DownloadCore, SourcesThatCannotServeAWholeChunkAreNotUsed) {
  CoreHarness h(kOneFile);
  auto small = h.info(1);
  small.maxChunkBytes = 1024;
  h.core.addSource(1, kj::mv(small), h.now);
  h.addSource(2);
  h.startDownloading();
  EXPECT_EQ(h.count<event::SourceDropped>(), 1u);
  EXPECT_TRUE(h.inFlightAt(1).empty());
  EXPECT_FALSE(h.inFlightAt(2).empty());
}

// --- all peers gone, stopping -------------------------------------------------------------------

TEST(DownloadCore, AllPeersGoneExactlyOnceAndNoFailure) {
  CoreHarness h(kOneFile);
  h.addSource(1);
  h.addSource(2);
  h.startDownloading();
  h.answer(h.inFlight.begin()->first);
  h.core.removeSource(1, h.now);
  h.core.removeSource(2, h.now);
  h.drain();
  EXPECT_EQ(h.count<event::AllPeersGone>(), 0u);  // within the grace
  h.advance(1 * SECONDS);
  EXPECT_EQ(h.count<event::AllPeersGone>(), 0u);
  h.advance(1 * SECONDS);
  EXPECT_EQ(h.count<event::AllPeersGone>(), 1u);
  // The progress is saved before the end, with the chunk written.
  ASSERT_EQ(h.saves.size(), 1u);
  EXPECT_EQ(h.saves.back().count(), 1u);
  EXPECT_TRUE(h.ended() == nullptr);
  h.core.onSaved(h.now);
  h.drain();
  h.advance(10 * SECONDS);
  EXPECT_EQ(h.count<event::AllPeersGone>(), 1u);
  auto& ended = KJ_ASSERT_NONNULL(h.ended());
  EXPECT_EQ(ended.outcome, Outcome::allPeersGone);
  EXPECT_EQ(h.count<event::Ended>(), 1u);
  EXPECT_TRUE(h.inFlight.empty());
}

TEST(DownloadCore, ASourceBackWithinTheGraceCarriesOn) {
  CoreHarness h(kOneFile);
  h.addSource(1);
  h.startDownloading();
  h.core.removeSource(1, h.now);
  h.drain();
  h.advance(1 * SECONDS);
  h.addSource(7);  // reconnected: a new session
  h.advance(1500 * MILLISECONDS);
  EXPECT_EQ(h.count<event::AllPeersGone>(), 0u);
  h.answerAll();
  h.finish();
  EXPECT_EQ(KJ_ASSERT_NONNULL(h.ended()).outcome, Outcome::finished);
}

TEST(DownloadCore, NoSourceAtAllEndsAfterTheGrace) {
  CoreHarness h(kOneFile);
  h.core.onLoaded(nullptr, ChunkSet(), h.now);
  h.drain();
  h.advance(2 * SECONDS);
  EXPECT_EQ(h.count<event::AllPeersGone>(), 1u);
  EXPECT_EQ(KJ_ASSERT_NONNULL(h.ended()).outcome, Outcome::allPeersGone);
  EXPECT_TRUE(h.saves.empty());  // nothing prepared, nothing to save
}

TEST(DownloadCore, CancelStopsBetweenChunksThenSaves) {
  CoreHarness h(kOneFile);
  h.addSource(1);
  h.startDownloading();
  auto held = h.answer(h.inFlight.begin()->first, false, true);  // a write under way
  ASSERT_TRUE(held != nullptr);
  h.core.cancel(h.now);
  h.drain();
  EXPECT_TRUE(h.inFlight.empty());  // every request cancelled
  EXPECT_EQ(h.stopWrites, 1u);
  EXPECT_TRUE(h.ended() == nullptr);  // the write is not cut
  EXPECT_TRUE(h.saves.empty());
  h.completeWrite(h.pendingWrites[0]);
  ASSERT_EQ(h.saves.size(), 1u);
  EXPECT_TRUE(h.saves[0].has(KJ_ASSERT_NONNULL(held).chunk));
  EXPECT_TRUE(h.ended() == nullptr);
  h.core.onSaved(h.now);
  h.drain();
  EXPECT_EQ(KJ_ASSERT_NONNULL(h.ended()).outcome, Outcome::cancelled);
  EXPECT_EQ(h.count<event::AllPeersGone>(), 0u);
}

TEST(DownloadCore, AWriteDroppedAtTheStopIsNotCounted) {
  CoreHarness h(kOneFile);
  h.addSource(1);
  h.startDownloading();
  auto held = KJ_ASSERT_NONNULL(h.answer(h.inFlight.begin()->first, false, true));
  h.core.shutdown(h.now);
  h.drain();
  h.core.onJobDropped(held.chunk, h.now);
  h.drain();
  EXPECT_FALSE(h.core.verified().has(held.chunk));
  EXPECT_TRUE(h.saves.empty());  // nothing new to save
  EXPECT_EQ(KJ_ASSERT_NONNULL(h.ended()).outcome, Outcome::stopped);
}

TEST(DownloadCore, ADiskFailureFailsOnceAndKeepsTheProgress) {
  CoreHarness h(kOneFile);
  h.addSource(1);
  h.startDownloading();
  h.answer(h.inFlight.begin()->first);
  auto w = KJ_ASSERT_NONNULL(h.answer(h.inFlight.begin()->first, false, true));
  h.core.onChunkFailed(w.chunk, "file-100: write: No space left on device", h.now);
  h.drain();
  ASSERT_EQ(h.saves.size(), 1u);
  EXPECT_EQ(h.saves[0].count(), 1u);
  h.core.onSaved(h.now);
  h.drain();
  auto& ended = KJ_ASSERT_NONNULL(h.ended());
  EXPECT_EQ(ended.outcome, Outcome::failed);
  EXPECT_EQ(ended.message, "file-100: write: No space left on device");
  EXPECT_EQ(h.count<event::Ended>(), 1u);
  EXPECT_EQ(h.count<event::AllPeersGone>(), 0u);
}

// Found by fuzz_download: a write failing after the stop began left its chunk "writing" for ever.
TEST(DownloadCore, AWriteFailingWhileStoppingStillLetsItEnd) {
  CoreHarness h(kOneFile);
  h.addSource(1);
  h.startDownloading();
  auto w = KJ_ASSERT_NONNULL(h.answer(h.inFlight.begin()->first, false, true));
  h.core.cancel(h.now);
  h.drain();
  EXPECT_TRUE(h.ended() == nullptr);
  h.core.onChunkFailed(w.chunk, "file-100: write: Input/output error", h.now);
  h.drain();
  auto& ended = KJ_ASSERT_NONNULL(h.ended());
  EXPECT_EQ(ended.outcome, Outcome::cancelled);
  EXPECT_EQ(ended.message, "file-100: write: Input/output error");
}

TEST(DownloadCore, APrepareFailureEndsWithoutSaving) {
  CoreHarness h(kOneFile);
  h.addSource(1);
  h.core.onLoaded(nullptr, ChunkSet(), h.now);
  h.drain();
  h.deliverManifest(h.manifestRequests[0]);
  h.core.onDiskFailed("a/b: collides with A/b on this filesystem", h.now);
  h.drain();
  EXPECT_TRUE(h.saves.empty());
  EXPECT_EQ(KJ_ASSERT_NONNULL(h.ended()).outcome, Outcome::failed);
  EXPECT_TRUE(h.sent.empty());
}

// --- saving and resuming -------------------------------------------------------------------------

TEST(DownloadCore, ProgressIsSavedAtLeastEverySaveInterval) {
  CoreHarness h(kBig);
  h.addSource(1);
  h.behaviour[1] = {100e3, 1 * MILLISECONDS};  // 800 KB in 8 s: slow enough to need saves
  h.startDownloading();
  h.simulate(2100 * MILLISECONDS);
  ASSERT_EQ(h.saves.size(), 1u);
  EXPECT_GT(h.saves[0].count(), 0u);
  h.core.onSaved(h.now);
  h.drain();
  h.simulate(2 * SECONDS);
  ASSERT_EQ(h.saves.size(), 2u);
  EXPECT_GT(h.saves[1].count(), h.saves[0].count());
}

TEST(DownloadCore, ResumedChunksAreVerifiedBeforeTheyCount) {
  CoreHarness h(kOneFile);
  h.addSource(1);
  ChunkSet claimed(h.item.chunkCount());
  claimed.add(0);
  claimed.add(3);
  h.core.onLoaded(h.item.manifest.clone(), kj::mv(claimed), h.now);
  h.drain();
  EXPECT_TRUE(h.manifestRequests.empty());  // the earlier run's manifest is still listed
  EXPECT_EQ(h.prepares, 1u);
  h.core.onPrepared(h.now);
  h.drain();
  ASSERT_EQ(h.checks.size(), 2u);
  for (auto& s : h.sent) {
    EXPECT_NE(s.chunk, 0u);
    EXPECT_NE(s.chunk, 3u);
  }
  EXPECT_EQ(h.core.verified().count(), 0u);
  h.core.onChunkChecked(0, true, h.now);
  h.core.onChunkChecked(3, false, h.now);  // corrupt on disk: fetched again
  h.drain();
  EXPECT_TRUE(h.core.verified().has(0));
  EXPECT_FALSE(h.core.verified().has(3));
  h.answerAll();
  h.finish();
  EXPECT_EQ(h.writes[0], 0u);
  EXPECT_EQ(h.writes[3], 1u);
  EXPECT_EQ(KJ_ASSERT_NONNULL(h.ended()).outcome, Outcome::finished);
}

TEST(DownloadCore, UncheckedClaimsStayClaimedWhenStopped) {
  DownloadLimits limits;
  limits.maxChecksInFlight = 1;
  CoreHarness h(kOneFile, limits);
  h.addSource(1);
  ChunkSet claimed(h.item.chunkCount());
  for (uint64_t c : {1, 2, 5})
    claimed.add(c);
  h.core.onLoaded(h.item.manifest.clone(), kj::mv(claimed), h.now);
  h.drain();
  h.core.onPrepared(h.now);
  h.drain();
  ASSERT_EQ(h.checks.size(), 1u);
  h.core.shutdown(h.now);
  h.drain();
  h.core.onJobDropped(h.checks[0], h.now);
  h.drain();
  // Nothing changed since the earlier run saved its claims: they stay on disk as they were.
  EXPECT_TRUE(h.saves.empty());
  EXPECT_EQ(KJ_ASSERT_NONNULL(h.ended()).outcome, Outcome::stopped);
}

TEST(DownloadCore, SavesKeepClaimsNotCheckedYet) {
  DownloadLimits limits;
  limits.maxChecksInFlight = 1;
  CoreHarness h(kOneFile, limits);
  h.addSource(1);
  ChunkSet claimed(h.item.chunkCount());
  for (uint64_t c : {1, 2, 5})
    claimed.add(c);
  h.core.onLoaded(h.item.manifest.clone(), kj::mv(claimed), h.now);
  h.drain();
  h.core.onPrepared(h.now);
  h.drain();
  h.answer(h.inFlight.begin()->first);  // one new chunk: the progress changed
  h.core.shutdown(h.now);
  h.drain();
  h.core.onJobDropped(h.checks[0], h.now);
  h.drain();
  ASSERT_EQ(h.saves.size(), 1u);
  EXPECT_EQ(h.saves[0].count(), 4u);  // the new chunk, and the three claims not checked
}

TEST(DownloadCore, AResumedManifestNoLongerListedIsReplacedByTheListedOne) {
  CoreHarness h(kOneFile);
  TestItem old(kBig);
  h.addSource(1);
  ChunkSet claimed(old.chunkCount());
  claimed.add(0);
  h.core.onLoaded(old.manifest.clone(), kj::mv(claimed), h.now);
  h.drain();
  ASSERT_EQ(h.manifestRequests.size(), 1u);
  h.deliverManifest(h.manifestRequests[0]);
  EXPECT_EQ(h.prepares, 1u);
  EXPECT_EQ(h.core.manifest().digest, h.item.manifest.digest);
  h.core.onPrepared(h.now);
  h.drain();
  EXPECT_TRUE(h.checks.empty());  // the earlier run's claims were of the other manifest
}

}  // namespace
}  // namespace shoal::peer::download::test
