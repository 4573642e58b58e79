// §8 Chunks: Table 4's checks in order, exact bytes, stale files.
#include "common.h"

#include <shoal/codec/manifest.h>

namespace shoal::conformance::cases {

namespace {

struct Ask {
  kj::StringPtr item = "gamma";
  bool staleDigest = false;
  uint32_t file = 0;
  uint64_t offset = 0;
  uint32_t length = 1;
};

void expectCode(Trial& t, Ask ask, Code code, kj::StringPtr requirement = "CHK-1") {
  KJ_IF_MAYBE (c, t.establish()) {
    KJ_IF_MAYBE (m, fetchManifest(t, *c, "gamma")) {
      auto digest = ask.staleDigest ? codec::sha256("old"_kj.asBytes()) : m->digest;
      KJ_IF_MAYBE (pages, t.request(*c, getChunkFrame(c->nextRequestId(), ask.item, digest,
                                                      ask.file, ask.offset, ask.length))) {
        auto r = (*pages)[0].root();
        t.check(r.isError() && r.getError().getCode() == code, requirement,
                kj::str("Error{id, ", codec::name(code), "}"), kj::str(r));
      }
    }
  }
}

void unknownItem(Trial& t) {
  expectCode(t, {"nope", false, 0, 0, 1}, Code::NOT_FOUND);
}
void staleDigest(Trial& t) {
  expectCode(t, {"gamma", true, 0, 0, 1}, Code::STALE);
}
void fileIndexTooHigh(Trial& t) {
  expectCode(t, {"gamma", false, 99, 0, 1}, Code::NOT_FOUND);
}
void pastEndOfFile(Trial& t) {
  expectCode(t, {"gamma", false, 0, 1 << 30, 1}, Code::RANGE);
}
void unknownItemBeforeStale(Trial& t) {
  expectCode(t, {"nope", true, 0, 0, 1}, Code::NOT_FOUND);
}
void staleBeforeFileIndex(Trial& t) {
  expectCode(t, {"gamma", true, 99, 0, 1}, Code::STALE);
}
void fileIndexBeforeRange(Trial& t) {
  expectCode(t, {"gamma", false, 99, 1 << 30, 1}, Code::NOT_FOUND);
}

void tooLargeForRequester(Trial& t) {
  auto a = t.announce();
  a.maxFrameBytes = 65536;
  KJ_IF_MAYBE (c, t.establish(Trial::Open{nullptr, {}, a})) {
    KJ_IF_MAYBE (m, fetchManifest(t, *c, "gamma")) {
      uint32_t index = KJ_ASSERT_NONNULL(m->fileIndex("data/level 1/map.bin"));
      KJ_IF_MAYBE (pages, t.request(*c, getChunkFrame(c->nextRequestId(), "gamma", m->digest, index,
                                                      0, 200000))) {
        auto r = (*pages)[0].root();
        t.check(r.isError() && r.getError().getCode() == Code::RANGE, "CHK-1",
                "Error{id, range}: above the requester's own maxChunkBytes (61440)", kj::str(r));
      }
    }
  }
}

void exactBytes(Trial& t, kj::StringPtr path, uint64_t offset, uint32_t length) {
  KJ_IF_MAYBE (c, t.establish()) {
    KJ_IF_MAYBE (m, fetchManifest(t, *c, "gamma")) {
      KJ_IF_MAYBE (fixture, t.fixture()) {
        auto& file = KJ_ASSERT_NONNULL(KJ_ASSERT_NONNULL(fixture->item("gamma")).file(path));
        uint32_t index = KJ_ASSERT_NONNULL(m->fileIndex(path));
        if (length == 0) length = uint32_t(file.content.size() - offset);
        KJ_IF_MAYBE (pages, t.request(*c, getChunkFrame(c->nextRequestId(), "gamma", m->digest,
                                                        index, offset, length))) {
          auto r = (*pages)[0].root();
          if (!t.check(r.isChunk(), "CHK-2", "a Chunk", kj::str(r))) return;
          auto data = r.getChunk().getData();
          t.check(data == file.content.slice(offset, offset + length), "CHK-2",
                  kj::str(length, " bytes of ", path, " from ", offset),
                  kj::str(data.size(), " bytes that differ"));
        }
      }
    }
  }
}
void wholeSmallFile(Trial& t) {
  exactBytes(t, "readme.txt", 0, 0);
}
void secondChunk(Trial& t) {
  exactBytes(t, "data/level 1/map.bin", 65536, 65536);
}
void lastPartialChunk(Trial& t) {
  exactBytes(t, "data/level 1/map.bin", 4 * 65536, 0);
}
void unalignedRange(Trial& t) {
  exactBytes(t, "data/level 1/map.bin", 1000, 5000);
}

void changedFileIsStale(Trial& t) {
  KJ_IF_MAYBE (c, t.establish()) {
    KJ_IF_MAYBE (m, fetchManifest(t, *c, "gamma")) {
      KJ_IF_MAYBE (fixture, t.fixture()) {
        auto& file =
            KJ_ASSERT_NONNULL(KJ_ASSERT_NONNULL(fixture->item("gamma")).file("readme.txt"));
        auto changed = kj::heapArray(file.content.asPtr());
        changed[0] ^= 0xff;
        changed[999] ^= 0xff;
        fixture->overwrite("gamma", "readme.txt", changed);
        uint32_t index = KJ_ASSERT_NONNULL(m->fileIndex("readme.txt"));
        KJ_IF_MAYBE (pages, t.request(*c, getChunkFrame(c->nextRequestId(), "gamma", m->digest,
                                                        index, 0, 1000))) {
          auto r = (*pages)[0].root();
          t.check(r.isError() && r.getError().getCode() == Code::STALE, "CHK-3",
                  "Error{id, stale}, never the new bytes", kj::str(r));
        }
      }
    }
  }
}

}  // namespace

void chunkCases(kj::Vector<CaseSpec>& out) {
  struct Row {
    kj::StringPtr id, title;
    void (*run)(Trial&);
  };
  Row rows[] = {
      {"chk/CHK-1/1", "row 1: an unknown item is notFound", unknownItem},
      {"chk/CHK-1/2", "row 3: another manifest digest is stale", staleDigest},
      {"chk/CHK-1/3", "row 4: fileIndex past fileCount is notFound", fileIndexTooHigh},
      {"chk/CHK-1/4", "row 5: a range past the end of the file", pastEndOfFile},
      {"chk/CHK-1/5", "order: unknown item before stale digest", unknownItemBeforeStale},
      {"chk/CHK-1/6", "order: stale digest before fileIndex", staleBeforeFileIndex},
      {"chk/CHK-1/7", "order: fileIndex before range", fileIndexBeforeRange},
      {"chk/CHK-1/8", "row 5: a length above the requester's own maxChunkBytes",
       tooLargeForRequester},
  };
  for (auto& r : rows)
    out.add(spec(r.id, "CHK-1", Role::responder, r.title, r.run, need::launch));
  out[out.size() - 4].badInputs = "15";
  both(out, "chk/CHK-2/1", "chk/CHK-2/2", "CHK-2", "a whole small file", wholeSmallFile,
       need::launch);
  both(out, "chk/CHK-2/3", "chk/CHK-2/4", "CHK-2", "the second chunk of a file", secondChunk,
       need::launch);
  both(out, "chk/CHK-2/5", "chk/CHK-2/6", "CHK-2", "a file's short last chunk", lastPartialChunk,
       need::launch);
  both(out, "chk/CHK-2/7", "chk/CHK-2/8", "CHK-2", "an unaligned range", unalignedRange,
       need::launch);
  out.add(
      withBadInputs(spec("chk/CHK-3/1", "CHK-3", Role::responder,
                         "a file changed after hashing is stale", changedFileIsStale, need::launch),
                    "27"));
}

}  // namespace shoal::conformance::cases

namespace shoal::conformance {
void chunkCases(kj::Vector<CaseSpec>& out) {
  cases::chunkCases(out);
}
}  // namespace shoal::conformance
