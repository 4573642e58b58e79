// §6 Library: items, summaries, digests, snapshots, deltas, paging, applying, notifications.
#include "common.h"

namespace shoal::conformance::cases {

namespace {

Settings rescanning() {
  Settings s;
  s.rescanMs = 150;
  return s;
}

void listsExactlyTheFixture(Trial& t) {
  KJ_IF_MAYBE (fixture, t.fixture()) {
    KJ_IF_MAYBE (c, t.establish()) {
      KJ_IF_MAYBE (items, fetchItems(t, *c)) {
        kj::Vector<kj::String> got, want;
        for (auto& i : *items)
          got.add(kj::str(i.itemId));
        for (auto& i : fixture->items())
          want.add(kj::str(i.itemId));
        t.check(kj::strArray(got, ",") == kj::strArray(want, ","), t.spec().requirement,
                kj::str("exactly the items ", kj::strArray(want, ", ")),
                kj::str("items ", kj::strArray(got, ", ")));
      }
    }
  }
}

void entriesDescribeManifests(Trial& t) {
  KJ_IF_MAYBE (c, t.establish()) {
    KJ_IF_MAYBE (items, fetchItems(t, *c)) {
      for (auto& i : *items) {
        KJ_IF_MAYBE (m, fetchManifest(t, *c, i.itemId)) {
          auto expected = codec::itemInfoOf(*m);
          if (!t.check(expected.size == i.size && expected.fileCount == i.fileCount &&
                           expected.manifestDigest == i.manifestDigest,
                       "LIB-3", kj::str("an entry matching the manifest of ", i.itemId),
                       kj::str("size ", i.size, " files ", i.fileCount, " vs manifest size ",
                               expected.size, " files ", expected.fileCount))) {
            return;
          }
        }
      }
    }
  }
}

void epochNonZero(Trial& t) {
  KJ_IF_MAYBE (c, t.establish()) {
    KJ_IF_MAYBE (h, c->theirs()) {
      t.check(h->library.epoch != 0, "LIB-5", "a non-zero epoch", kj::str(h->library.epoch));
    }
  }
}

void digestMatches(Trial& t) {
  KJ_IF_MAYBE (c, t.establish()) {
    KJ_IF_MAYBE (pages, t.request(*c, getLibraryFrame(c->nextRequestId()))) {
      kj::Vector<codec::ItemInfo> items;
      for (auto& p : *pages)
        for (auto e : p.root().getLibrarySnapshot().getItems())
          items.add(codec::itemInfoOf(e));
      auto summary = codec::Summary::fromWire((*pages)[0].root().getLibrarySnapshot().getSummary());
      t.check(codec::libraryDigest(items) == summary.digest, "LIB-7",
              "summary.digest = the library digest of the items", kj::str(summary.digest));
    }
  }
}

kj::Maybe<codec::Summary> summaryOfTarget(Trial&, Connection& c) {
  KJ_IF_MAYBE (h, c.theirs()) {
    return h->library;
  }
  return nullptr;
}

void upToDateGetsEmptyDelta(Trial& t) {
  KJ_IF_MAYBE (c, t.establish()) {
    KJ_IF_MAYBE (s, summaryOfTarget(t, *c)) {
      KJ_IF_MAYBE (pages, t.request(*c, getLibraryFrame(c->nextRequestId(), s->epoch, s->rev))) {
        auto r = (*pages)[0].root();
        t.check(pages->size() == 1 && r.isLibraryDelta() &&
                    r.getLibraryDelta().getFromRev() == s->rev &&
                    r.getLibraryDelta().getUpserts().size() == 0 &&
                    r.getLibraryDelta().getRemovals().size() == 0,
                "LIB-8", "one empty delta page from the current rev", kj::str(r));
      }
    }
  }
}

void otherEpochGetsSnapshot(Trial& t, bool revAbove) {
  KJ_IF_MAYBE (c, t.establish()) {
    KJ_IF_MAYBE (s, summaryOfTarget(t, *c)) {
      uint64_t epoch = revAbove ? s->epoch : s->epoch + 1;
      uint64_t rev = revAbove ? s->rev + 5 : s->rev;
      KJ_IF_MAYBE (pages, t.request(*c, getLibraryFrame(c->nextRequestId(), epoch, rev))) {
        t.check((*pages)[0].root().isLibrarySnapshot(), "LIB-8", "a snapshot",
                kj::str((*pages)[0].root()));
      }
    }
  }
}
void otherEpoch(Trial& t) {
  otherEpochGetsSnapshot(t, false);
}
void revAbove(Trial& t) {
  otherEpochGetsSnapshot(t, true);
}

// Adds an item on disk and waits for the target's LibraryChanged.
kj::Maybe<codec::Summary> change(Trial& t, Connection& c, kj::StringPtr itemId) {
  KJ_IF_MAYBE (fixture, t.fixture()) {
    fixture->addItem(itemId, "new.txt", "new"_kj.asBytes());
    KJ_IF_MAYBE (f, t.expectFrame(
                        c, "LibraryChanged", [](Reader f) { return f.isLibraryChanged(); },
                        "LIB-15")) {
      return codec::Summary::fromWire(f->root().getLibraryChanged().getSummary());
    }
  }
  return nullptr;
}

void changeIsDeltaAndRevPlusOne(Trial& t) {
  KJ_IF_MAYBE (c, t.establish()) {
    c->deliver(Which::LIBRARY_CHANGED);
    KJ_IF_MAYBE (before, summaryOfTarget(t, *c)) {
      KJ_IF_MAYBE (after, change(t, *c, "omega")) {
        t.check(after->epoch == before->epoch && after->rev == before->rev + 1, "LIB-6",
                kj::str("rev ", before->rev + 1), kj::str("rev ", after->rev));
        KJ_IF_MAYBE (pages, t.request(*c, getLibraryFrame(c->nextRequestId(), before->epoch,
                                                          before->rev))) {
          auto r = (*pages)[0].root();
          bool ok = r.isLibraryDelta() && r.getLibraryDelta().getUpserts().size() == 1 &&
                    r.getLibraryDelta().getUpserts()[0].getItemId() == "omega";
          t.check(ok, t.spec().requirement, "a delta upserting omega", kj::str(r));
        }
      }
    }
  }
}

void historyKept(Trial& t) {
  KJ_IF_MAYBE (c, t.establish()) {
    c->deliver(Which::LIBRARY_CHANGED);
    KJ_IF_MAYBE (before, summaryOfTarget(t, *c)) {
      change(t, *c, "omega1");
      change(t, *c, "omega2");
      KJ_IF_MAYBE (pages,
                   t.request(*c, getLibraryFrame(c->nextRequestId(), before->epoch, before->rev))) {
        t.check((*pages)[0].root().isLibraryDelta(), "LIB-11", "a delta over two revisions",
                kj::str((*pages)[0].root()));
      }
    }
  }
}

void snapshotPagesConsistent(Trial& t) {
  auto a = t.announce();
  a.maxFrameBytes = 65536;
  KJ_IF_MAYBE (c, t.establish(Trial::Open{nullptr, {}, a})) {
    KJ_IF_MAYBE (pages, t.request(*c, getLibraryFrame(c->nextRequestId()))) {
      kj::String last;
      size_t count = 0;
      auto summary = codec::Summary::fromWire((*pages)[0].root().getLibrarySnapshot().getSummary());
      for (auto& p : *pages) {
        auto s = p.root().getLibrarySnapshot();
        if (!t.check(codec::Summary::fromWire(s.getSummary()) == summary, "LIB-9",
                     "the same summary on every page", kj::str("page ", s.getPage()))) {
          return;
        }
        for (auto e : s.getItems()) {
          kj::StringPtr id = e.getItemId();
          if (!t.check(count == 0 || last < id, "LIB-9", "items ascending across pages",
                       kj::str(id, " after ", last))) {
            return;
          }
          last = kj::str(id);
          ++count;
        }
      }
      KJ_IF_MAYBE (f, t.fixture()) {
        t.check(count == f->items().size(), "LIB-9", kj::str(f->items().size(), " items"),
                kj::str(count));
      }
    }
  }
}

void notifiesEverySession(Trial& t) {
  KJ_IF_MAYBE (a, t.establish()) {
    auto key = Identity::generate();
    auto ann = t.announce();
    ann.peerId = key->id();
    KJ_IF_MAYBE (b, t.establish(Trial::Open{*key, {}, ann})) {
      a->deliver(Which::LIBRARY_CHANGED);
      b->deliver(Which::LIBRARY_CHANGED);
      KJ_IF_MAYBE (s, change(t, *a, "omega")) {
        t.expectFrame(*b, "LibraryChanged on the second session too", [&](Reader f) {
          return f.isLibraryChanged() &&
                 codec::Summary::fromWire(f.getLibraryChanged().getSummary()) == *s;
        });
      }
    }
  }
}

void changedIsNotAnswered(Trial& t) {
  KJ_IF_MAYBE (c, t.establish(requester())) {
    KJ_IF_MAYBE (get, targetGetLibrary(t, *c)) {
      c->send(snapshotPage(get->root().getGetLibrary().getId(),
                           codec::Summary{3, 1, codec::libraryDigest(nullptr)}, 0, true, nullptr));
      c->send(libraryChangedFrame(codec::Summary{3, 2, codec::libraryDigest(nullptr)}));
      // The only frame that may follow is a new GetLibrary (SHOULD, with since = 3/1).
      KJ_IF_MAYBE (next, t.expectFrame(
                             *c, "GetLibrary{3, 1} (and no answer to LibraryChanged)",
                             [](Reader f) { return f.isGetLibrary(); }, "LIB-16")) {
        auto g = next->root().getGetLibrary();
        t.check(g.getSinceEpoch() == 3 && g.getSinceRev() == 1, "LIB-16",
                "GetLibrary{its epoch, its rev}", kj::str(next->root()));
      }
    }
  }
}

// The target as receiver: a snapshot with a wrong digest, then a delta that cannot apply.
void wrongDigestResyncs(Trial& t) {
  KJ_IF_MAYBE (c, t.establish(requester())) {
    KJ_IF_MAYBE (get, targetGetLibrary(t, *c)) {
      kj::StringPtr items[] = {"x-item"};
      auto wrong = codec::Summary{4, 1, codec::libraryDigest(nullptr)};  // not x-item's digest
      c->send(snapshotPage(get->root().getGetLibrary().getId(), wrong, 0, true, items));
      KJ_IF_MAYBE (again, targetGetLibrary(t, *c)) {
        auto g = again->root().getGetLibrary();
        t.check(g.getSinceEpoch() == 0 && g.getSinceRev() == 0, "LIB-14", "GetLibrary{0, 0}",
                kj::str(again->root()));
      }
    }
  }
}

void badDeltaResyncs(Trial& t, bool bothLists) {
  KJ_IF_MAYBE (c, t.establish(requester())) {
    kj::StringPtr items[] = {"x-item"};
    auto s1 = summaryOf(items, 4, 1);
    KJ_IF_MAYBE (get, targetGetLibrary(t, *c)) {
      c->send(snapshotPage(get->root().getGetLibrary().getId(), s1, 0, true, items));
      // The new summary is what applying the bad delta loosely would give (x-item kept), so
      // only the delta's own fault can make the target resync, not a digest mismatch ([LIB-14]).
      c->send(libraryChangedFrame(summaryOf(items, 4, 2)));
      KJ_IF_MAYBE (next, targetGetLibrary(t, *c)) {
        auto frame = codec::newFrame();
        auto d = codec::rootOf(*frame).initLibraryDelta();
        d.setId(next->root().getGetLibrary().getId());
        d.setFromRev(1);
        summaryOf(items, 4, 2).toWire(d.initSummary());
        d.setLast(true);
        if (bothLists) {
          codec::fillItemEntry(d.initUpserts(1)[0], emptyItem("x-item"));
          d.initRemovals(1).set(0, "x-item");
        } else {
          d.initRemovals(1).set(0, "never-had-it");
        }
        c->send(kj::mv(frame));
        KJ_IF_MAYBE (again, targetGetLibrary(t, *c)) {
          auto g = again->root().getGetLibrary();
          t.check(g.getSinceEpoch() == 0 && g.getSinceRev() == 0, "LIB-13", "GetLibrary{0, 0}",
                  kj::str(again->root()));
        }
      }
    }
  }
}
void removesUnknown(Trial& t) {
  badDeltaResyncs(t, false);
}
void upsertAndRemove(Trial& t) {
  badDeltaResyncs(t, true);
}

void summariesArePublished(Trial& t) {
  KJ_IF_MAYBE (c, t.establish()) {
    KJ_IF_MAYBE (h, summaryOfTarget(t, *c)) {
      KJ_IF_MAYBE (items, fetchItems(t, *c)) {
        t.check(h->epoch != 0 && h->rev >= 1 && codec::libraryDigest(*items) == h->digest, "LIB-17",
                "the handshake's summary names the published item list",
                kj::str("epoch ", h->epoch, " rev ", h->rev, " digest ", h->digest));
      }
    }
  }
}

void answersBeforeItsOwnAreAnswered(Trial& t) {
  KJ_IF_MAYBE (c, t.establish(requester())) {
    // Its own GetLibrary stays unanswered; ours must be answered all the same.
    KJ_IF_MAYBE (pages, t.request(*c, getLibraryFrame(c->nextRequestId()))) {
      t.check((*pages)[0].root().isLibrarySnapshot(), "LIB-18", "a snapshot",
              kj::str((*pages)[0].root()));
    }
  }
}

void viewOnlyAfterLastPage(Trial& t) {
  KJ_IF_MAYBE (c, t.establish(requester())) {
    KJ_IF_MAYBE (get, targetGetLibrary(t, *c)) {
      KJ_IF_MAYBE (api, t.control()) {
        kj::StringPtr items[] = {"p-item", "q-item"};
        auto s = summaryOf(items, 4, 1);
        uint64_t id = get->root().getGetLibrary().getId();
        c->send(snapshotPage(id, s, 0, false, kj::arrayPtr(items, 1)));
        t.wait(t.quiet(), "for the target to read page 0");
        auto before = api->api().itemsRequest().send().wait(t.io().waitScope);
        t.check(before.getItems().size() == 0, "LIB-12", "no items from a partial snapshot",
                kj::str(before.getItems().size(), " items"));
        c->send(snapshotPage(id, s, 1, true, kj::arrayPtr(items + 1, 1)));
        t.expectAlive(*c);
        auto after = api->api().itemsRequest().send().wait(t.io().waitScope);
        t.check(after.getItems().size() == 2, "LIB-12", "both items after the last page",
                kj::str(after.getItems().size(), " items"));
      }
    }
  }
}

}  // namespace

void libraryCases(kj::Vector<CaseSpec>& out) {
  both(out, "lib/LIB-1/1", "lib/LIB-1/2", "LIB-1",
       "exactly the top-level folders are items (no dot-folders, files, symlinks)",
       listsExactlyTheFixture, need::launch);
  out.add(spec("lib/LIB-2/1", "LIB-2", Role::responder,
               "a folder whose name is not a valid item id is not listed", listsExactlyTheFixture,
               need::launch));
  both(out, "lib/LIB-3/1", "lib/LIB-3/2", "LIB-3", "each entry matches its item's manifest",
       entriesDescribeManifests);
  out.add(spec("lib/LIB-5/1", "LIB-5", Role::responder, "the epoch is not 0", epochNonZero));
  out.add(spec("lib/LIB-6/1", "LIB-6", Role::responder, "a change moves rev by exactly 1",
               changeIsDeltaAndRevPlusOne, need::launch, rescanning()));
  both(out, "lib/LIB-7/1", "lib/LIB-7/2", "LIB-7", "the digest is the library digest of the items",
       digestMatches);
  out.add(spec("lib/LIB-8/1", "LIB-8", Role::responder, "up to date: one empty delta page",
               upToDateGetsEmptyDelta));
  out.add(spec("lib/LIB-8/2", "LIB-8", Role::responder, "another epoch: a snapshot", otherEpoch));
  out.add(spec("lib/LIB-8/3", "LIB-8", Role::responder, "a rev above the current one: a snapshot",
               revAbove));
  out.add(spec("lib/LIB-8/4", "LIB-8", Role::responder, "after a change: a delta",
               changeIsDeltaAndRevPlusOne, need::launch, rescanning()));
  out.add(spec("lib/LIB-9/1", "LIB-9", Role::responder,
               "snapshot pages: one summary, items ascending, complete", snapshotPagesConsistent,
               need::launch, [] {
                 Settings s;
                 s.fixture = FixtureKind::paging;
                 return s;
               }()));
  out.add(spec("lib/LIB-10/1", "LIB-10", Role::responder, "a delta upserts the new item",
               changeIsDeltaAndRevPlusOne, need::launch, rescanning()));
  out.add(spec("lib/LIB-11/1", "LIB-11", Role::responder, "a delta across two revisions",
               historyKept, need::launch, rescanning()));
  out.add(spec("lib/LIB-12/1", "LIB-12", Role::responder,
               "a partial snapshot does not replace the view", viewOnlyAfterLastPage,
               need::control));
  both(out, "lib/LIB-13/1", "lib/LIB-13/2", "LIB-13", "a delta removing an unknown item: resync",
       removesUnknown);
  both(out, "lib/LIB-13/3", "lib/LIB-13/4", "LIB-13",
       "a delta naming an item in both lists: resync", upsertAndRemove);
  both(out, "lib/LIB-14/1", "lib/LIB-14/2", "LIB-14", "a snapshot with a wrong digest: resync",
       wrongDigestResyncs);
  out.add(spec("lib/LIB-15/1", "LIB-15", Role::responder, "LibraryChanged reaches every session",
               notifiesEverySession, need::launch, rescanning()));
  both(out, "lib/LIB-17/1", "lib/LIB-17/2", "LIB-17",
       "the handshake's summary is a published revision of the listed items",
       summariesArePublished);
  both(out, "lib/LIB-18/1", "lib/LIB-18/2", "LIB-18",
       "a request right after the handshake is answered while the target's own waits",
       answersBeforeItsOwnAreAnswered);
  both(out, "lib/LIB-16/1", "lib/LIB-16/2", "LIB-16",
       "LibraryChanged is not answered; the receiver asks since its view", changedIsNotAnswered);
}

}  // namespace shoal::conformance::cases

namespace shoal::conformance {
void libraryCases(kj::Vector<CaseSpec>& out) {
  cases::libraryCases(out);
}
}  // namespace shoal::conformance
