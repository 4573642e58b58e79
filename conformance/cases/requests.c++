// §5 Requests: ids, one terminal answer, paging, request-level errors, ranges, in-flight limit,
// Cancel; and the target as requester (its GetLibrary answered badly on purpose).
#include "common.h"

namespace shoal::conformance::cases {

namespace {

// The target as requester: its first GetLibrary is answered by `answer`; it must then send
// Error{0, protocol} and close (or, with `expectError` false, keep the session).
void answerTargetsRequest(Trial& t, kj::Function<void(Connection&, uint64_t id)> answer,
                          bool expectError, kj::StringPtr requirement) {
  KJ_IF_MAYBE (c, t.establish(requester())) {
    KJ_IF_MAYBE (get, targetGetLibrary(t, *c)) {
      answer(*c, get->root().getGetLibrary().getId());
      if (expectError) {
        t.expectConnectionError(*c, Code::PROTOCOL, requirement);
      } else {
        t.expectAlive(*c, requirement);
      }
    }
  }
}

const kj::StringPtr kTwo[] = {"a-item", "b-item"};

void pageOneFirst(Trial& t) {
  auto s = summaryOf(kTwo, 5, 1);
  answerTargetsRequest(
      t,
      [&](Connection& c, uint64_t id) {
        c.send(snapshotPage(id, s, 1, true, kj::arrayPtr(kTwo, 1)));
      },
      true, "RQ-6");
}
void pageRepeated(Trial& t) {
  auto s = summaryOf(kTwo, 5, 1);
  answerTargetsRequest(
      t,
      [&](Connection& c, uint64_t id) {
        c.send(snapshotPage(id, s, 0, false, kj::arrayPtr(kTwo, 1)));
        c.send(snapshotPage(id, s, 0, true, kj::arrayPtr(kTwo + 1, 1)));
      },
      true, "RQ-6");
}
void summaryChanges(Trial& t) {
  auto s = summaryOf(kTwo, 5, 1);
  auto other = summaryOf(kTwo, 5, 2);
  answerTargetsRequest(
      t,
      [&](Connection& c, uint64_t id) {
        c.send(snapshotPage(id, s, 0, false, kj::arrayPtr(kTwo, 1)));
        c.send(snapshotPage(id, other, 1, true, kj::arrayPtr(kTwo + 1, 1)));
      },
      true, "RQ-6");
}
void itemsNotAfterPrevious(Trial& t) {
  auto s = summaryOf(kTwo, 5, 1);
  answerTargetsRequest(
      t,
      [&](Connection& c, uint64_t id) {
        c.send(snapshotPage(id, s, 0, false, kj::arrayPtr(kTwo + 1, 1)));
        c.send(snapshotPage(id, s, 1, true, kj::arrayPtr(kTwo, 1)));
      },
      true, "RQ-6");
}
void deltaAfterSnapshot(Trial& t) {
  auto s = summaryOf(kTwo, 5, 1);
  answerTargetsRequest(
      t,
      [&](Connection& c, uint64_t id) {
        c.send(snapshotPage(id, s, 0, false, kj::arrayPtr(kTwo, 1)));
        auto frame = codec::newFrame();
        auto d = codec::rootOf(*frame).initLibraryDelta();
        d.setId(id);
        d.setFromRev(1);
        s.toWire(d.initSummary());
        d.setPage(1);
        d.setLast(true);
        c.send(kj::mv(frame));
      },
      true, "RQ-13");
}
void chunkForGetLibrary(Trial& t) {
  answerTargetsRequest(
      t,
      [&](Connection& c, uint64_t id) {
        kj::byte data[3] = {1, 2, 3};
        c.send(chunkFrame(id, data));
      },
      true, "RQ-13");
}
void answerAboveHighestId(Trial& t) {
  answerTargetsRequest(
      t,
      [&](Connection& c, uint64_t id) {
        c.send(snapshotPage(id + 1000, emptySummary(), 0, true, nullptr));
      },
      true, "RQ-11");
}
void requestErrorKeepsSession(Trial& t) {
  answerTargetsRequest(
      t,
      [&](Connection& c, uint64_t id) {
        c.send(codec::errorFrame(id, Code::INTERNAL, "the harness fails this request"));
      },
      false, "RQ-7");
}
void staleAnswerIgnored(Trial& t) {
  answerTargetsRequest(
      t,
      [&](Connection& c, uint64_t id) {
        c.send(snapshotPage(id, emptySummary(), 0, true, nullptr));
        c.send(snapshotPage(id, emptySummary(), 0, true, nullptr));  // again: no longer outstanding
      },
      false, "RQ-12");
}

// --- the target as responder ---------------------------------------------------------------------

void requestIdsIncrease(Trial& t) {
  KJ_IF_MAYBE (c, t.establish(requester())) {
    uint64_t last = 0;
    for (uint64_t rev = 2; rev <= 4; ++rev) {
      KJ_IF_MAYBE (get, targetGetLibrary(t, *c)) {
        uint64_t id = get->root().getGetLibrary().getId();
        if (!t.check(id > last, "RQ-2", "request ids above every earlier one",
                     kj::str(id, " after ", last))) {
          return;
        }
        last = id;
        c->send(snapshotPage(id, codec::Summary{3, rev - 1, codec::libraryDigest(nullptr)}, 0, true,
                             nullptr));
        c->send(libraryChangedFrame(codec::Summary{3, rev, codec::libraryDigest(nullptr)}));
      }
    }
  }
}

void duplicateRequestId(Trial& t) {
  KJ_IF_MAYBE (c, t.establish()) {
    c->send(getManifestFrame(5, "alpha"));
    c->send(getManifestFrame(5, "alpha"));
    t.expectConnectionError(*c, Code::PROTOCOL);
  }
}
void decreasingRequestId(Trial& t) {
  KJ_IF_MAYBE (c, t.establish()) {
    c->send(getManifestFrame(5, "alpha"));
    c->send(getManifestFrame(3, "alpha"));
    t.expectConnectionError(*c, Code::PROTOCOL);
  }
}

void oneAnswerEach(Trial& t) {
  KJ_IF_MAYBE (c, t.establish()) {
    kj::StringPtr items[] = {"alpha", "beta", "gamma", "nope", "zeta"};
    kj::Vector<uint64_t> ids;
    for (int round = 0; round < 2; ++round) {
      for (auto i : items) {
        ids.add(c->nextRequestId());
        c->send(getManifestFrame(ids.back(), i));
      }
    }
    for (auto id : ids) {
      t.expectFrame(
          *c, kj::str("the terminal answer to ", id),
          [id](Reader f) {
            return codec::requestIdOf(f) == id &&
                   (f.isError() || (f.isManifest() && f.getManifest().getLast()));
          },
          "RQ-4");
    }
    t.expectAlive(*c);  // the monitor has checked nothing came twice
  }
}

Settings paging() {
  Settings s;
  s.fixture = FixtureKind::paging;
  return s;
}

Announce smallFrames(Trial& t) {
  auto a = t.announce();
  a.maxFrameBytes = 65536;
  return a;
}

void pagesInOrder(Trial& t) {
  KJ_IF_MAYBE (c, t.establish(Trial::Open{nullptr, {}, smallFrames(t)})) {
    KJ_IF_MAYBE (pages, t.request(*c, getLibraryFrame(c->nextRequestId()))) {
      t.check(pages->size() >= 2, "RQ-5", "several pages for 1500 long item ids in 64 KiB frames",
              kj::str(pages->size(), " page(s)"));
    }
  }
}

void pagesFitFrames(Trial& t) {
  KJ_IF_MAYBE (c, t.establish(Trial::Open{nullptr, {}, smallFrames(t)})) {
    // The monitor fails any frame above 65536 bytes ([FR-8]); both answers are paged.
    t.request(*c, getLibraryFrame(c->nextRequestId()));
    fetchManifest(t, *c, "many");
  }
}

void unknownItemKeepsSession(Trial& t) {
  KJ_IF_MAYBE (c, t.establish()) {
    KJ_IF_MAYBE (pages, t.request(*c, getManifestFrame(c->nextRequestId(), "no-such-item"))) {
      t.check((*pages)[0].root().isError(), "MAN-2", "Error{id, notFound}",
              kj::str((*pages)[0].root()));
    }
    t.expectAlive(*c);
  }
}

void rangeError(Trial& t, uint64_t offset, uint32_t length, bool aboveMax) {
  KJ_IF_MAYBE (c, t.establish()) {
    KJ_IF_MAYBE (m, fetchManifest(t, *c, "alpha")) {
      if (aboveMax) {
        KJ_IF_MAYBE (h, c->theirs()) {
          length = h->maxChunkBytes + 1;
        }
      }
      KJ_IF_MAYBE (pages, t.request(*c, getChunkFrame(c->nextRequestId(), "alpha", m->digest, 0,
                                                      offset, length))) {
        auto r = (*pages)[0].root();
        t.check(r.isError() && r.getError().getCode() == Code::RANGE, "RQ-8", "Error{id, range}",
                kj::str(r));
      }
      t.expectAlive(*c);
    }
  }
}
void lengthZero(Trial& t) {
  rangeError(t, 0, 0, false);
}
void lengthAboveMax(Trial& t) {
  rangeError(t, 0, 0, true);
}
void beyond2to50(Trial& t) {
  rangeError(t, (uint64_t(1) << 50) - 1, 2, false);
}
void offsetOverflows(Trial& t) {
  rangeError(t, ~uint64_t(0), 16, false);
}

Settings inFlight2() {
  Settings s;
  s.maxInFlight = 2;
  return s;
}

void busyBeyondLimit(Trial& t) {
  KJ_IF_MAYBE (c, t.establish()) {
    KJ_IF_MAYBE (m, fetchManifest(t, *c, "gamma")) {
      KJ_IF_MAYBE (map, m->fileIndex("data/level 1/map.bin")) {
        kj::Vector<uint64_t> ids;
        kj::Vector<kj::byte> burst;
        for (int i = 0; i < 12; ++i) {
          ids.add(c->nextRequestId());
          auto f = getChunkFrame(ids.back(), "gamma", m->digest, *map, 0, m->chunkSize);
          c->monitor().onSent(codec::rootOf(*f).asReader());
          burst.addAll(encode(*f));
        }
        c->sendBytes(burst, "12 GetChunk requests in one write");
        // Answers to different requests may come in any order (busy ones typically first).
        kj::HashSet<uint64_t> waiting;
        for (auto id : ids)
          waiting.insert(id);
        uint32_t busy = 0;
        while (waiting.size() > 0) {
          KJ_IF_MAYBE (f, t.expectFrame(
                              *c, kj::str("the answers to ", waiting.size(), " more requests"),
                              [&waiting](Reader f) {
                                return waiting.contains(codec::requestIdOf(f));
                              })) {
            auto r = f->root();
            waiting.eraseMatch(codec::requestIdOf(r));
            if (r.isError()) {
              if (!t.check(r.getError().getCode() == Code::BUSY, "RQ-15", "Chunk or Error{busy}",
                           kj::str(r))) {
                return;
              }
              ++busy;
            }
          } else {
            return;
          }
        }
        // Whether any request found 2 in progress depends on how the target schedules its work
        // (§1: in progress = received, terminal answer not yet produced); what it may never do
        // is answer with anything but a Chunk or busy, or close.
        t.note(kj::str(busy, " of 12 answered busy"));
        t.expectAlive(*c);
      }
    }
  }
}

bool terminalFor(Reader f, uint64_t id) {
  if (codec::requestIdOf(f) != id) return false;
  if (f.isError() || f.isChunk()) return true;
  if (f.isLibrarySnapshot()) return f.getLibrarySnapshot().getLast();
  if (f.isLibraryDelta()) return f.getLibraryDelta().getLast();
  if (f.isManifest()) return f.getManifest().getLast();
  return false;
}

void cancelGivesOneTerminal(Trial& t) {
  KJ_IF_MAYBE (c, t.establish()) {
    uint64_t id = c->nextRequestId();
    // In one write: a target that reads both at once finds the request still in progress, and
    // then Error{cancelled} is the one answer it may give.
    kj::Own<capnp::MessageBuilder> frames[] = {getLibraryFrame(id), codec::cancelFrame(id)};
    c->sendTogether(frames);
    KJ_IF_MAYBE (f, t.expectFrame(
                        *c, "one terminal answer: the snapshot's last page or Error{cancelled}",
                        [id](Reader f) { return terminalFor(f, id); })) {
      auto r = f->root();
      if (r.isError()) {
        t.check(r.getError().getCode() == Code::CANCELLED, "RQ-16", "Error{id, cancelled}",
                kj::str(r));
      }
    }
    t.expectAlive(*c);  // and nothing more for that id (the monitor)
  }
}

void cancelUnknown(Trial& t) {
  KJ_IF_MAYBE (c, t.establish()) {
    c->send(codec::cancelFrame(999));
    t.expectSilence(*c, t.quiet());
    t.expectAlive(*c);
  }
}

void noRequestBeforeHandshake(Trial& t) {
  KJ_IF_MAYBE (c, t.open()) {
    if (t.expectNext(
            *c, "Hello", [](Reader f) { return f.isHello(); }, "HS-1") == nullptr)
      return;
    t.expectSilence(*c, t.quiet());
    c->send(helloAckFrame(c->ours()));
    t.expectAlive(*c);
  }
}

void requesterRespectsInFlight(Trial& t) {
  auto a = t.announce();
  a.maxInFlight = 1;
  KJ_IF_MAYBE (c, t.establish(requester(a))) {
    KJ_IF_MAYBE (get, targetGetLibrary(t, *c)) {
      // Two changes announced while its request is unanswered: no second request may come.
      c->send(libraryChangedFrame(codec::Summary{3, 2, codec::libraryDigest(nullptr)}));
      c->send(libraryChangedFrame(codec::Summary{3, 3, codec::libraryDigest(nullptr)}));
      t.expectSilence(*c, t.quiet());
      c->send(snapshotPage(get->root().getGetLibrary().getId(),
                           codec::Summary{3, 3, codec::libraryDigest(nullptr)}, 0, true, nullptr));
      t.expectAlive(*c);
    }
  }
}

}  // namespace

void requestCases(kj::Vector<CaseSpec>& out) {
  out.add(spec("rq/RQ-1/1", "RQ-1", Role::initiator, "no request before HelloAck",
               noRequestBeforeHandshake));
  both(out, "rq/RQ-2/1", "rq/RQ-2/2", "RQ-2", "the target's request ids grow", requestIdsIncrease);
  both(out, "rq/RQ-3/1", "rq/RQ-3/2", "RQ-3", "a request id used twice", duplicateRequestId);
  both(out, "rq/RQ-3/3", "rq/RQ-3/4", "RQ-3", "a request id below an earlier one",
       decreasingRequestId);
  out.back().badInputs = "16";
  out[out.size() - 2].badInputs = "16";
  both(out, "rq/RQ-4/1", "rq/RQ-4/2", "RQ-4", "ten pipelined requests, one terminal answer each",
       oneAnswerEach);
  out.add(spec("rq/RQ-5/1", "RQ-5", Role::responder, "snapshot pages numbered 0, 1, 2, ...",
               pagesInOrder, need::launch, paging()));
  both(out, "rq/RQ-6/1", "rq/RQ-6/2", "RQ-6", "an answer starting at page 1", pageOneFirst);
  both(out, "rq/RQ-6/3", "rq/RQ-6/4", "RQ-6", "page 0 twice", pageRepeated);
  both(out, "rq/RQ-6/5", "rq/RQ-6/6", "RQ-6", "the summary changes between pages", summaryChanges);
  both(out, "rq/RQ-6/7", "rq/RQ-6/8", "RQ-6", "page 1's items sort before page 0's",
       itemsNotAfterPrevious);
  both(out, "rq/RQ-7/1", "rq/RQ-7/2", "RQ-7", "notFound does not end the session",
       unknownItemKeepsSession);
  both(out, "rq/RQ-7/3", "rq/RQ-7/4", "RQ-7",
       "an Error{id} to the target's request does not end it", requestErrorKeepsSession);
  auto range = [&](kj::StringPtr r, kj::StringPtr i, kj::StringPtr title, void (*run)(Trial&)) {
    both(out, r, i, "RQ-8", title, run);
    out.back().badInputs = "15";
    out[out.size() - 2].badInputs = "15";
  };
  range("rq/RQ-8/1", "rq/RQ-8/2", "GetChunk length 0", lengthZero);
  range("rq/RQ-8/3", "rq/RQ-8/4", "GetChunk length above maxChunkBytes", lengthAboveMax);
  range("rq/RQ-8/5", "rq/RQ-8/6", "GetChunk ending past 2^50", beyond2to50);
  range("rq/RQ-8/7", "rq/RQ-8/8", "GetChunk offset + length overflowing", offsetOverflows);
  out.add(spec("rq/RQ-9/1", "RQ-9", Role::responder, "every page fits 64 KiB frames",
               pagesFitFrames, need::launch, paging()));
  both(out, "rq/RQ-11/1", "rq/RQ-11/2", "RQ-11", "an answer to an id the target never used",
       answerAboveHighestId);
  both(out, "rq/RQ-12/1", "rq/RQ-12/2", "RQ-12", "an answer repeated after the terminal one",
       staleAnswerIgnored);
  both(out, "rq/RQ-13/1", "rq/RQ-13/2", "RQ-13", "a Chunk answering GetLibrary",
       chunkForGetLibrary);
  both(out, "rq/RQ-13/3", "rq/RQ-13/4", "RQ-13", "a delta page after snapshot pages",
       deltaAfterSnapshot);
  both(out, "rq/RQ-14/1", "rq/RQ-14/2", "RQ-14", "maxInFlight 1: one request at a time",
       requesterRespectsInFlight);
  out.add(withBadInputs(
      spec("rq/RQ-15/1", "RQ-15", Role::responder, "12 requests at once with maxInFlight 2",
           busyBeyondLimit, need::launch, inFlight2()),
      "16"));
  both(out, "rq/RQ-16/1", "rq/RQ-16/2", "RQ-16", "GetLibrary then Cancel: one terminal answer",
       cancelGivesOneTerminal);
  both(out, "rq/RQ-17/1", "rq/RQ-17/2", "RQ-17", "Cancel of an unknown id", cancelUnknown);
  out.back().badInputs = "16";
  out[out.size() - 2].badInputs = "16";
}

}  // namespace shoal::conformance::cases

namespace shoal::conformance {
void requestCases(kj::Vector<CaseSpec>& out) {
  cases::requestCases(out);
}
}  // namespace shoal::conformance
