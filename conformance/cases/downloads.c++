// The target as downloader (§5 requests, §7 manifests, §8 chunks, §11 errors): the harness plays
// one or more sources — honest, slow, lying, vanishing — that list one item, starts the download
// through the control API (`download`, `cancel`), and judges what the target asks on the wire,
// what its events say, and what its library folder holds ({library}, which the harness wrote).
#include "common.h"

#include <string.h>

namespace shoal::conformance::cases {

namespace {

constexpr kj::StringPtr kItem = "dl-item"_kj;
constexpr uint32_t kChunk = 65536;

// The item every case downloads: ten chunks over three files whose sizes appear nowhere else.
kj::Own<ScriptedLibrary> itemLibrary() {
  auto lib = kj::heap<ScriptedLibrary>(21, kChunk);
  lib->put(kItem, kj::arr(FileSpec{kj::str("data/part-1.bin"), patternBytes(5 * kChunk + 1234, 11)},
                          FileSpec{kj::str("data/part-2.bin"), patternBytes(3 * kChunk, 12)},
                          FileSpec{kj::str("readme.txt"), patternBytes(3001, 13)}));
  lib->publish();
  return lib;
}

// One source of the download: a peer of its own (own key), a LibrarySource over the item, and its
// connection.
struct Seeder {
  explicit Seeder(const ScriptedLibrary& lib, Behaviour how = {})
      : key(Identity::generate()), source(lib, how) {}
  kj::Own<Identity> key;
  LibrarySource source;
  kj::Maybe<Connection&> connection;

  kj::String idText() const { return peer::formatPeerId(key->id()); }
};

// Connects `s` to the target as a peer that lists the item.
bool join(Trial& t, Seeder& s, uint32_t maxChunkBytes = 4 << 20) {
  auto a = t.announce();
  a.peerId = s.key->id();
  a.library = s.source.announced();
  a.maxChunkBytes = maxChunkBytes;
  Trial::Open o;
  o.identity = *s.key;
  o.announce = kj::mv(a);
  o.source = s.source;
  s.connection = t.establish(kj::mv(o));
  return s.connection != nullptr;
}

// Polls `condition` every 20 ms until it holds or the step timeout passes.
bool pollUntil(Trial& t, kj::Function<bool()> condition) {
  auto deadline = t.timer().now() + t.stepTimeout();
  while (!condition()) {
    if (t.timer().now() >= deadline) return false;
    t.timer().afterDelay(20 * kj::MILLISECONDS).wait(t.io().waitScope);
  }
  return true;
}

bool listedByAll(Trial& t, size_t count) {
  KJ_IF_MAYBE (api, t.control()) {
    bool listed = pollUntil(t, [&]() {
      auto items = api->api().itemsRequest().send().wait(t.io().waitScope);
      for (auto item : items.getItems()) {
        if (item.getItemId() == kItem && item.getPeers().size() >= count) return true;
      }
      return false;
    });
    return t.check(
        listed, "LIB-1",
        kj::str("the target's view lists ", kItem, " from ", count, " source(s) (control items())"),
        kj::str("it does not within ", t.stepTimeout() / kj::MILLISECONDS, " ms"));
  }
  return false;
}

bool download(Trial& t) {
  if (t.events() == nullptr) return false;  // subscribe first: every event of the download
  KJ_IF_MAYBE (api, t.control()) {
    t.step(kj::str("control: download(", kItem, ")"));
    auto request = api->api().downloadRequest();
    request.setItemId(kItem);
    auto result = request.send().wait(t.io().waitScope);
    return t.check(
        result.getResult() == control::DownloadStart::STARTED, t.spec().requirement,
        "the download starts",
        kj::str("DownloadStart ", uint16_t(result.getResult()), ": ", result.getMessage()));
  }
  return false;
}

void cancelDownload(Trial& t) {
  KJ_IF_MAYBE (api, t.control()) {
    t.step(kj::str("control: cancel(", kItem, ")"));
    auto request = api->api().cancelRequest();
    request.setItemId(kItem);
    request.send().wait(t.io().waitScope);
  }
}

// Joins every source (with its maxChunkBytes from `limits`), waits until the target's view lists
// the item from all of them, subscribes to its events and starts the download.
bool begin(Trial& t, kj::ArrayPtr<Seeder*> sources, kj::ArrayPtr<const uint32_t> limits = {}) {
  for (auto i : kj::indices(sources)) {
    if (!join(t, *sources[i], i < limits.size() ? limits[i] : 4u << 20)) return false;
  }
  return listedByAll(t, sources.size()) && download(t);
}

bool isEnd(control::Event::Reader e) {
  return e.isDownloadEnded() && e.getDownloadEnded().getItemId() == kItem;
}

// The outcome of the download (downloadEnded), waiting up to three step timeouts: a source
// dropped for bad chunks ends it only after the target's grace for finding another.
kj::Maybe<kj::String> outcome(Trial& t, size_t from = 0) {
  KJ_IF_MAYBE (i, t.expectEvent(kj::str("downloadEnded for ", kItem), isEnd, 3 * t.stepTimeout(),
                                from)) {
    return kj::str(KJ_ASSERT_NONNULL(t.events()).at(*i).getDownloadEnded().getOutcome());
  }
  return nullptr;
}

kj::String itemPath(Trial& t) {
  return kj::str(KJ_ASSERT_NONNULL(t.fixture()).dir(), '/', kItem);
}

// The first difference between the item in the target's library folder and the source's, or
// null when every file is there byte for byte.
kj::Maybe<kj::String> difference(Trial& t, const ScriptedLibrary& lib) {
  auto& m = KJ_ASSERT_NONNULL(lib.manifest(kItem));
  for (auto i : kj::indices(m.files)) {
    auto path = kj::str(itemPath(t), '/', m.files[i].path);
    auto want = KJ_ASSERT_NONNULL(lib.content(kItem, uint32_t(i)));
    KJ_IF_MAYBE (got, readFile(path)) {
      if (got->size() != want.size()) {
        return kj::str(m.files[i].path, ": ", got->size(), " bytes instead of ", want.size());
      }
      for (size_t at = 0; at < want.size(); ++at) {
        if ((*got)[at] != want[at]) {
          return kj::str(m.files[i].path, ": byte ", at, " (chunk ", at / kChunk, ") differs");
        }
      }
    } else {
      return kj::str(m.files[i].path, " is missing");
    }
  }
  return nullptr;
}

// A finished download whose item is in the library byte for byte.
void expectExactItem(Trial& t, const ScriptedLibrary& lib, kj::StringPtr requirement,
                     size_t from = 0) {
  KJ_IF_MAYBE (o, outcome(t, from)) {
    if (!t.check(*o == "finished", requirement, "the download finishes", kj::str(*o))) return;
    auto diff = difference(t, lib);
    t.check(diff == nullptr, requirement, kj::str("the library holds ", kItem, " byte for byte"),
            kj::str(diff.orDefault(kj::str())));
  }
}

// A download that must not finish from what the sources sent: it ends otherwise and the library
// holds nothing under the item's name.
void expectNothingLanded(Trial& t, kj::StringPtr requirement) {
  KJ_IF_MAYBE (o, outcome(t)) {
    t.check(*o != "finished", requirement, "the download does not finish from bad data",
            kj::str(*o));
    t.check(!pathExists(itemPath(t)), requirement, kj::str("no ", kItem, " in the library"),
            kj::str(itemPath(t), " exists"));
  }
}

// The target has verified and written at least one chunk (control status()), or its download
// already ended.
bool someChunkDone(Trial& t) {
  KJ_IF_MAYBE (api, t.control()) {
    bool done = pollUntil(t, [&]() {
      auto status = api->api().statusRequest().send().wait(t.io().waitScope);
      for (auto d : status.getStatus().getDownloads()) {
        // Only "downloading" is mid-download: a target that moves on with chunks still missing
        // ("finishing") is waited for until it is done, so what it does then is judged, not
        // a moment on its way there.
        if (d.getItemId() == kItem) return d.getBytesDone() > 0 && d.getState() == "downloading";
      }
      return true;  // not downloading (any more)
    });
    if (!done) t.harnessError(kj::str("the target reports no progress on ", kItem));
    return done;
  }
  return false;
}

bool heldSome(Trial& t, Seeder& s) {
  bool held = pollUntil(t, [&]() { return s.source.heldIds().size() > 0; });
  return t.check(held, t.spec().requirement, "GetChunk requests while the source holds answers",
                 kj::str("none within ", t.stepTimeout() / kj::MILLISECONDS, " ms"));
}

// A source that has answered `answers` chunks and holds the rest: the target is mid-download.
Behaviour holding(uint32_t answers) {
  Behaviour how;
  how.holdChunksAfter = answers;
  return how;
}

// --- [CHK-7] [CHK-8] [CHK-6] [CHK-4] ---------------------------------------------------------

void liarBesideHonest(Trial& t) {
  auto lib = itemLibrary();
  Behaviour lying;
  lying.corruptChunks = true;
  Seeder liar(*lib, lying), honest(*lib);
  Seeder* sources[] = {&liar, &honest};
  if (!begin(t, sources)) return;
  expectExactItem(t, *lib, "CHK-7");
  if (!t.failed() && liar.source.chunkAsks().size() == 0) {
    t.harnessError(kj::str("the target never asked the lying source: nothing to judge"));
  }
}

void liarAlone(Trial& t) {
  auto lib = itemLibrary();
  Behaviour lying;
  lying.corruptChunks = true;
  Seeder liar(*lib, lying);
  Seeder* sources[] = {&liar};
  if (begin(t, sources)) expectNothingLanded(t, "CHK-7");
}

void liarIsDropped(Trial& t) {
  auto lib = itemLibrary();
  Behaviour lying;
  lying.corruptChunks = true;
  Seeder liar(*lib, lying);
  Seeder* sources[] = {&liar};
  if (!begin(t, sources)) return;
  KJ_IF_MAYBE (o, outcome(t)) {
    t.check(*o != "finished", "CHK-8", "the download ends without its only (lying) source",
            kj::str(*o));
    auto asked = liar.source.chunkAsks().size();
    t.check(asked >= 5, "CHK-8", "at least 5 chunks asked of the liar before it is dropped",
            kj::str(asked));
    t.wait(t.quiet(), "for further GetChunk to the dropped source");
    t.check(liar.source.chunkAsks().size() == asked, "CHK-8",
            "no GetChunk to the source once it sent 5 bad chunks and the download ended",
            kj::str(liar.source.chunkAsks().size() - asked, " more"));
  }
}

void wrongLengthIsBadChunk(Trial& t) {
  auto lib = itemLibrary();
  Behaviour longer;
  longer.extraByte = true;
  Seeder s(*lib, longer);
  Seeder* sources[] = {&s};
  if (!begin(t, sources)) return;
  auto id = s.idText();
  t.expectEvent(
      "downloadBadChunk naming the source whose Chunks are one byte too long",
      [&](control::Event::Reader e) {
        return e.isDownloadBadChunk() && e.getDownloadBadChunk().getPeerId() == id;
      },
      t.stepTimeout());
  expectNothingLanded(t, "CHK-6");
}

void sourceChunkLimitKept(Trial& t) {
  auto lib = itemLibrary();
  Seeder small(*lib), honest(*lib);
  Seeder* sources[] = {&small, &honest};
  const uint32_t limits[] = {16384, 4u << 20};
  if (!begin(t, sources, limits)) return;
  expectExactItem(t, *lib, "CHK-4");
  auto& m = KJ_ASSERT_NONNULL(lib->manifest(kItem));
  uint32_t own = 4u << 20;
  KJ_IF_MAYBE (theirs, KJ_ASSERT_NONNULL(honest.connection).theirs()) {
    own = theirs->maxChunkBytes;
  }
  for (auto* s : sources) {
    uint32_t limit = s == &small ? 16384 : 4u << 20;
    for (auto& ask : s->source.chunkAsks()) {
      bool inFile = ask.fileIndex < m.files.size() && ask.offset <= m.files[ask.fileIndex].size &&
                    ask.length <= m.files[ask.fileIndex].size - ask.offset;
      if (!t.check(ask.length <= limit && ask.length <= own && inFile, "CHK-4",
                   kj::str("GetChunk lengths within ", limit, " (the source's maxChunkBytes) and ",
                           own, " (the target's), ranges inside the file"),
                   kj::str("GetChunk{id ", ask.id, ", file ", ask.fileIndex, ", offset ",
                           ask.offset, ", length ", ask.length, "}"))) {
        return;
      }
    }
  }
}

// --- [MAN-21]
// -------------------------------------------------------------------------------------

void forgedManifestDiscarded(Trial& t) {
  auto lib = itemLibrary();
  Behaviour forged;
  forged.forgedManifestDigest = true;
  Seeder s(*lib, forged);
  Seeder* sources[] = {&s};
  if (!begin(t, sources)) return;
  expectNothingLanded(t, "MAN-21");
  t.check(s.source.chunkAsks().size() == 0, "MAN-21",
          "no GetChunk for a manifest whose recomputed digest differs (discarded)",
          kj::str(s.source.chunkAsks().size(), " GetChunk"));
}

// --- [CHK-9] [CHK-11] [LIB-4] [MAN-3]: the target caught mid-download ------------------------

// Starts a download from a source that answers 2 chunks and holds the rest, and returns once a
// chunk is written; `s` keeps holding.
bool midDownload(Trial& t, Seeder& s) {
  Seeder* sources[] = {&s};
  return begin(t, sources) && heldSome(t, s) && someChunkDone(t);
}

void partialOutsideFinalName(Trial& t) {
  auto lib = itemLibrary();
  Seeder s(*lib, holding(2));
  if (!midDownload(t, s)) return;
  t.check(!pathExists(itemPath(t)), "CHK-9",
          kj::str("partial data outside the item's final name: no ", kItem, " in the library"),
          kj::str(itemPath(t), " exists mid-download"));
}

void appearsOnlyComplete(Trial& t) {
  auto lib = itemLibrary();
  Seeder s(*lib, holding(3));
  if (!midDownload(t, s)) return;
  if (!t.check(!pathExists(itemPath(t)), "CHK-11",
               kj::str("no ", kItem, " in the library before its last chunk"),
               kj::str(itemPath(t), " exists mid-download"))) {
    return;
  }
  t.step(kj::str("the source answers what it held, and everything after"));
  s.source.behaviour().holdChunksAfter = nullptr;
  s.source.releaseHeld(KJ_ASSERT_NONNULL(s.connection));
  expectExactItem(t, *lib, "CHK-11");
}

// A second peer (empty library) asking the target about the item it is downloading.
kj::Maybe<Connection&> onlooker(Trial& t) {
  return t.establish();
}

void downloadingNotListed(Trial& t) {
  auto lib = itemLibrary();
  Seeder s(*lib, holding(2));
  if (!midDownload(t, s)) return;
  KJ_IF_MAYBE (c, onlooker(t)) {
    KJ_IF_MAYBE (items, fetchItems(t, *c)) {
      for (auto& item : *items) {
        if (!t.check(item.itemId != kItem, "LIB-4", kj::str("no ", kItem, " while downloading"),
                     kj::str(kItem, " is listed"))) {
          return;
        }
      }
    }
  }
}

void downloadingManifestUnavailable(Trial& t) {
  auto lib = itemLibrary();
  Seeder s(*lib, holding(2));
  if (!midDownload(t, s)) return;
  KJ_IF_MAYBE (c, onlooker(t)) {
    KJ_IF_MAYBE (pages, t.request(*c, getManifestFrame(c->nextRequestId(), kItem))) {
      auto r = (*pages)[0].root();
      t.check(r.isError() && r.getError().getCode() == Code::UNAVAILABLE, "MAN-3",
              "Error{id, unavailable} while the item is being downloaded", kj::str(r));
    }
  }
}

// --- [CHK-10]: resume ----------------------------------------------------------------------------

// Flips every byte of the files under {state} that hold a chunk of the item where the item's file
// would have it: the partial data an earlier run kept. How many files it damaged.
size_t damagePartialData(Trial& t, const ScriptedLibrary& lib, kj::StringPtr state) {
  auto& m = KJ_ASSERT_NONNULL(lib.manifest(kItem));
  size_t damaged = 0;
  for (auto& path : filesUnder(state)) {
    KJ_IF_MAYBE (bytes, readFile(path)) {
      for (auto i : kj::indices(m.files)) {
        auto want = KJ_ASSERT_NONNULL(lib.content(kItem, uint32_t(i)));
        if (bytes->size() != want.size() || want.size() < kChunk) continue;
        bool holdsChunk = false;
        for (size_t at = 0; at + kChunk <= want.size() && !holdsChunk; at += kChunk) {
          holdsChunk = memcmp(bytes->begin() + at, want.begin() + at, kChunk) == 0;
        }
        if (!holdsChunk) continue;
        for (auto& b : *bytes)
          b ^= 0xa5;
        writeFile(path, *bytes);
        t.step(kj::str("damaged the partial data in ", path));
        ++damaged;
        break;
      }
    }
  }
  return damaged;
}

void resumeReverifies(Trial& t) {
  auto lib = itemLibrary();
  Seeder s(*lib, holding(4));
  if (!midDownload(t, s)) return;
  cancelDownload(t);
  KJ_IF_MAYBE (o, outcome(t)) {
    if (!t.check(*o == "cancelled", "CHK-10", "the download ends cancelled", kj::str(*o))) return;
  }
  auto& c = KJ_ASSERT_NONNULL(s.connection);
  for (auto id : s.source.takeHeld())
    c.send(codec::errorFrame(id, Code::CANCELLED, "cancelled"));
  if (t.failed()) return;
  size_t damaged = 0;
  KJ_IF_MAYBE (dir, t.stateDir()) {
    damaged = damagePartialData(t, *lib, *dir);
  }
  if (damaged == 0) {
    t.unimplemented(kj::str("no partial data of ", kItem, " found under {state}"));
    return;
  }
  s.source.behaviour().holdChunksAfter = nullptr;
  size_t from = KJ_ASSERT_NONNULL(t.events()).size();
  if (download(t)) expectExactItem(t, *lib, "CHK-10", from);
}

// --- [RQ-10] [RQ-18] [RQ-19] [ERR-8] [ERR-9] -------------------------------------------------

void answersInAnyOrder(Trial& t) {
  auto lib = itemLibrary();
  Behaviour reversed;
  reversed.reversePairs = true;
  Seeder s(*lib, reversed);
  Seeder* sources[] = {&s};
  if (!begin(t, sources)) return;
  expectExactItem(t, *lib, "RQ-10");
  if (!t.failed() && s.source.reordered() == 0) {
    t.harnessError(kj::str("the target never had two chunk requests outstanding"));
  }
}

// Cancels the download while the source holds answers, and waits for the target's Cancel of one
// of them. Sending Cancel is optional ([BYE-*] drains aside): a target that sends none leaves
// nothing to judge.
bool cancelWhileHeld(Trial& t, Seeder& s) {
  if (!midDownload(t, s)) return false;
  auto& c = KJ_ASSERT_NONNULL(s.connection);
  auto held = s.source.heldIds();
  cancelDownload(t);
  auto deadline = t.timer().now() + t.stepTimeout();
  while (!t.failed()) {
    auto now = t.timer().now();
    auto got = c.next(deadline > now ? deadline - now : 0 * kj::SECONDS).wait(t.io().waitScope);
    KJ_IF_MAYBE (event, got) {
      KJ_IF_MAYBE (f, event->tryGet<FrameEvent>()) {
        auto root = f->frame.root();
        if (!root.isCancel()) continue;
        for (auto id : held) {
          if (root.getCancel().getId() == id) return true;
        }
        continue;
      }
      t.fail(t.spec().requirement, kj::str("the session goes on after the download's cancel"),
             kj::str("the connection ended"));
      return false;
    }
    t.unimplemented(
        kj::str("the target sent no Cancel for the held requests of its cancelled "
                "download (Cancel is optional)"));
  }
  return false;
}

// After its Cancel the target gets the answers the source had produced (or another Error): it
// takes them as the terminal answers and the session goes on.
void producedAnswerAfterCancel(Trial& t, bool asError) {
  auto lib = itemLibrary();
  Seeder s(*lib, holding(2));
  if (!cancelWhileHeld(t, s)) return;
  auto& c = KJ_ASSERT_NONNULL(s.connection);
  if (asError) {
    for (auto id : s.source.takeHeld())
      c.send(codec::errorFrame(id, Code::STALE, "the file changed"));
  } else {
    s.source.releaseHeld(c);
  }
  t.expectAlive(c, "RQ-19");
}
void chunkAfterCancel(Trial& t) {
  producedAnswerAfterCancel(t, false);
}
void errorAfterCancel(Trial& t) {
  producedAnswerAfterCancel(t, true);
}

void cancelledAnswersDiscarded(Trial& t) {
  auto lib = itemLibrary();
  Seeder s(*lib, holding(2));
  if (!cancelWhileHeld(t, s)) return;
  auto& c = KJ_ASSERT_NONNULL(s.connection);
  if (outcome(t) == nullptr) return;  // the cancelled download's end
  size_t from = KJ_ASSERT_NONNULL(t.events()).size();
  // Corrupt answers of the right length to the cancelled requests: acting on them would count
  // bad chunks.
  for (auto id : s.source.takeHeld()) {
    for (auto& ask : s.source.chunkAsks()) {
      if (ask.id == id) c.send(chunkFrame(id, patternBytes(ask.length, id)));
    }
  }
  s.source.behaviour().holdChunksAfter = nullptr;
  t.expectAlive(c, "RQ-18");
  auto& events = KJ_ASSERT_NONNULL(t.events());
  for (size_t i = from; i < events.size(); ++i) {
    if (!t.check(!events.at(i).isDownloadBadChunk(), "RQ-18",
                 "no bad chunk counted for answers to cancelled requests", kj::str(events.at(i)))) {
      return;
    }
  }
  if (download(t)) expectExactItem(t, *lib, "RQ-18", from);
}

// One of two sources resets with chunk requests outstanding; the other, slow but honest, stays.
// The lost requests fail ([ERR-8]) and go to the source left: the item lands byte-exact. (A
// target that kept them outstanding would still finish here, its endgame asking the honest source
// for every chunk on its way; err/ERR-8/2 judges that.)
void vanishedSourceRetriedElsewhere(Trial& t) {
  auto lib = itemLibrary();
  Behaviour vanishing;
  vanishing.vanishAfter = 3;  // its library, the manifest or a chunk, a chunk, then a reset
  Behaviour slow;
  slow.delay = 30 * kj::MILLISECONDS;
  Seeder gone(*lib, vanishing), honest(*lib, slow);
  Seeder* sources[] = {&gone, &honest};
  if (!begin(t, sources)) return;
  expectExactItem(t, *lib, "ERR-9");
  // The answer it vanished at was to a request then outstanding.
  if (!t.failed() && (gone.source.chunkAsks().size() == 0 || gone.source.answered() <= 3)) {
    t.harnessError(kj::str("the vanishing source never got to vanish mid-download"));
  }
}

// The source resets its connection while the target waits for the answers it holds: those
// requests are lost.
void vanish(Trial& t, Seeder& s) {
  t.step(kj::str("the source resets its connection with GetChunk requests outstanding"));
  s.source.takeHeld();
  KJ_ASSERT_NONNULL(s.connection).reset();
  s.connection = nullptr;
}

// The same peer connects again (a new session, a new instanceId). A target whose download ended
// meanwhile for want of a source (allowed: [ERR-8] asks only that the lost requests fail) gets
// it started again. Where the download's end is to be looked for from, null after a failure.
kj::Maybe<size_t> comeBack(Trial& t, Seeder& s, size_t since) {
  t.step(kj::str("the source connects again as the same peer"));
  if (!join(t, s) || !listedByAll(t, 1)) return nullptr;
  auto& events = KJ_ASSERT_NONNULL(t.events());
  for (size_t i = since; i < events.size(); ++i) {
    if (!isEnd(events.at(i))) continue;
    auto o = events.at(i).getDownloadEnded().getOutcome();
    if (!t.check(o != "finished", "ERR-8", "the download does not finish with chunks lost",
                 kj::str(o))) {
      return nullptr;
    }
    size_t from = events.size();
    t.step(kj::str("the download ended (", o, ") without its only source: started again"));
    if (!download(t)) return nullptr;
    return from;
  }
  return since;
}

// The only source resets with chunk requests outstanding, twice, and comes back each time. On
// its second session it holds every chunk asked before (the lost ones, asked again) and answers
// the rest; on its third it answers everything. A target that treats the lost requests as
// failed asks again for those chunks and finishes; one that keeps waiting for answers on a dead
// connection never does, even with an endgame that copies slow requests (each lost chunk then
// has two copies on dead connections).
void lostRequestsAskedAgain(Trial& t) {
  auto lib = itemLibrary();
  Seeder s(*lib, holding(2));
  if (!midDownload(t, s)) return;
  size_t from = 0;
  for (int round = 0; round < 2; ++round) {
    size_t since = KJ_ASSERT_NONNULL(t.events()).size();
    vanish(t, s);
    s.source.behaviour().holdChunksAfter = nullptr;
    s.source.behaviour().holdRepeats = round == 0;
    KJ_IF_MAYBE (f, comeBack(t, s, since)) {
      if (*f != since) from = *f;
    } else {
      return;
    }
    if (round == 0 && !heldSome(t, s)) return;
  }
  expectExactItem(t, *lib, "ERR-8", from);
}

}  // namespace

void downloadCases(kj::Vector<CaseSpec>& out) {
  struct Row {
    kj::StringPtr id, requirement, title;
    void (*run)(Trial&);
  };
  Row rows[] = {
      {"chk/CHK-7/1", "CHK-7", "a lying source beside an honest one: the item lands byte-exact",
       liarBesideHonest},
      {"chk/CHK-7/2", "CHK-7", "only a lying source: nothing lands in the library", liarAlone},
      {"chk/CHK-8/1", "CHK-8", "a source sending only bad chunks is dropped", liarIsDropped},
      {"chk/CHK-6/1", "CHK-6", "Chunks one byte longer than asked are bad chunks",
       wrongLengthIsBadChunk},
      {"chk/CHK-4/1", "CHK-4", "a source's maxChunkBytes below the chunk size is respected",
       sourceChunkLimitKept},
      {"chk/CHK-9/1", "CHK-9", "mid-download, nothing under the item's final name",
       partialOutsideFinalName},
      {"chk/CHK-11/1", "CHK-11", "the item appears only complete, byte-exact", appearsOnlyComplete},
      {"lib/LIB-4/1", "LIB-4", "an item being downloaded is not listed", downloadingNotListed},
      {"man/MAN-3/1", "MAN-3", "GetManifest for an item being downloaded: unavailable",
       downloadingManifestUnavailable},
      {"man/MAN-21/1", "MAN-21", "a manifest whose recomputed digest differs is discarded",
       forgedManifestDiscarded},
      {"chk/CHK-10/1", "CHK-10", "damaged partial data is re-verified on resume", resumeReverifies},
      {"rq/RQ-10/1", "RQ-10", "chunk answers in reverse order", answersInAnyOrder},
      {"rq/RQ-19/1", "RQ-19", "the Chunk already produced answers a cancelled request",
       chunkAfterCancel},
      {"rq/RQ-19/2", "RQ-19", "another Error already produced answers a cancelled request",
       errorAfterCancel},
      {"rq/RQ-18/1", "RQ-18", "corrupt answers to cancelled requests are discarded",
       cancelledAnswersDiscarded},
      {"err/ERR-8/2", "ERR-8",
       "the only source resets twice with requests outstanding and comes back: the lost chunks "
       "are asked again",
       lostRequestsAskedAgain},
      {"err/ERR-9/1", "ERR-9",
       "a source resets with requests outstanding beside an honest slow source: the item lands "
       "byte-exact",
       vanishedSourceRetriedElsewhere},
  };
  for (auto& r : rows) {
    out.add(
        spec(r.id, r.requirement, Role::responder, r.title, r.run, need::launch | need::control));
  }
}

}  // namespace shoal::conformance::cases

namespace shoal::conformance {
void downloadCases(kj::Vector<CaseSpec>& out) {
  cases::downloadCases(out);
}
}  // namespace shoal::conformance
