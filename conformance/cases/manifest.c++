// §7 Manifests and paths: GetManifest answers, path and item-id rules (rejected, never
// normalised), regular files only, sorting, paging, digests.
#include "common.h"

#include <shoal/codec/manifest.h>

namespace shoal::conformance::cases {

namespace {

void manifestMatchesEntry(Trial& t) {
  KJ_IF_MAYBE (c, t.establish()) {
    KJ_IF_MAYBE (items, fetchItems(t, *c)) {
      for (auto& i : *items) {
        KJ_IF_MAYBE (m, fetchManifest(t, *c, i.itemId)) {
          if (!t.check(m->digest == i.manifestDigest, t.spec().requirement,
                       kj::str("the manifest digest of ", i.itemId, " = its ItemEntry's"),
                       kj::str(m->digest))) {
            return;
          }
        }
      }
    }
  }
}

void unknownItem(Trial& t) {
  KJ_IF_MAYBE (c, t.establish()) {
    KJ_IF_MAYBE (pages, t.request(*c, getManifestFrame(c->nextRequestId(), "no-such-item"))) {
      auto r = (*pages)[0].root();
      t.check(r.isError() && r.getError().getCode() == Code::NOT_FOUND, "MAN-2",
              "Error{id, notFound}", kj::str(r));
    }
  }
}

void invalidItemId(Trial& t, kj::ArrayPtr<const char> id) {
  KJ_IF_MAYBE (c, t.establish()) {
    auto frame = getManifestFrame(c->nextRequestId(), "x");
    codec::rootOf(*frame).getGetManifest().setItemId(rawText(id));
    c->sendBytes(encode(*frame), "GetManifest with an invalid item id");
    t.expectConnectionError(*c, Code::PROTOCOL);
  }
}

#define BAD_ID(fn, literal)                             \
  void fn(Trial& t) {                                   \
    static constexpr char id[] = literal;               \
    invalidItemId(t, kj::arrayPtr(id, sizeof(id) - 1)); \
  }
BAD_ID(idEmpty, "")
BAD_ID(idDot, ".")
BAD_ID(idDotDot, "..")
BAD_ID(idAbsolute, "/etc")
BAD_ID(idTrailingSlash, "alpha/")
BAD_ID(idDotSlash, "./alpha")
BAD_ID(idBackslash, "a\\b")
BAD_ID(idDrive, "C:\\x")
BAD_ID(idNul, "a\0b")
BAD_ID(idTab, "a\tb")
BAD_ID(idDel, "a\x7f")
BAD_ID(idC1, "a\xc2\x85")
BAD_ID(idOverlong, "\xc0\xaf")
BAD_ID(idSurrogate, "\xed\xa0\x80")
BAD_ID(idSlash, "gamma/readme.txt")

void idTooLong(Trial& t) {
  auto id = kj::str(kj::repeat('a', 256));
  invalidItemId(t, id.asArray());
}

void caseSensitive(Trial& t) {
  KJ_IF_MAYBE (c, t.establish()) {
    KJ_IF_MAYBE (upper, fetchManifest(t, *c, "Zeta")) {
      KJ_IF_MAYBE (lower, fetchManifest(t, *c, "zeta")) {
        t.check(upper->digest != lower->digest, "MAN-9", "Zeta and zeta are different items",
                kj::str("the same manifest"));
      }
    }
    KJ_IF_MAYBE (pages, t.request(*c, getManifestFrame(c->nextRequestId(), "ZETA"))) {
      auto r = (*pages)[0].root();
      t.check(r.isError() && r.getError().getCode() == Code::NOT_FOUND, "MAN-9",
              "notFound for ZETA (no case folding)", kj::str(r));
    }
  }
}

void pathCheckedBeforeDigest(Trial& t) {
  KJ_IF_MAYBE (c, t.establish()) {
    KJ_IF_MAYBE (m, fetchManifest(t, *c, "alpha")) {
      c->send(getChunkFrame(c->nextRequestId(), "alpha/../alpha", m->digest, 0, 0, 5));
      t.expectConnectionError(*c, Code::PROTOCOL);
    }
  }
}

void regularFilesOnly(Trial& t) {
  KJ_IF_MAYBE (c, t.establish()) {
    KJ_IF_MAYBE (m, fetchManifest(t, *c, "gamma")) {
      KJ_IF_MAYBE (fixture, t.fixture()) {
        auto& want = KJ_ASSERT_NONNULL(fixture->item("gamma"));
        kj::Vector<kj::String> got, expected;
        for (auto& f : m->files)
          got.add(kj::str(f.path));
        for (auto& f : want.files)
          expected.add(kj::str(f.path));
        t.check(kj::strArray(got, "|") == kj::strArray(expected, "|"), t.spec().requirement,
                kj::str("exactly the regular files ", kj::strArray(expected, ", ")),
                kj::str(kj::strArray(got, ", ")));
      }
    }
  }
}

void noPrefixConflict(Trial& t) {
  KJ_IF_MAYBE (c, t.establish()) {
    KJ_IF_MAYBE (m, fetchManifest(t, *c, "gamma")) {
      auto conflict = codec::findPrefixConflict(m->files);
      t.check(conflict == nullptr, "MAN-14", "no file that is also a folder",
              kj::str(conflict.orDefault("")));
    }
  }
}

void unlistableItemLeftOut(Trial& t) {
  KJ_IF_MAYBE (c, t.establish()) {
    KJ_IF_MAYBE (items, fetchItems(t, *c)) {
      for (auto& i : *items) {
        if (!t.check(i.itemId != "badpath", "MAN-15", "no item holding a path v1 cannot carry",
                     kj::str("badpath is listed"))) {
          return;
        }
      }
    }
  }
}

void chunkSizeInBounds(Trial& t) {
  KJ_IF_MAYBE (c, t.establish()) {
    KJ_IF_MAYBE (m, fetchManifest(t, *c, "gamma")) {
      uint32_t max = 4 << 20;
      KJ_IF_MAYBE (h, c->theirs()) {
        max = kj::min(max, h->maxChunkBytes);
      }
      t.check(m->chunkSize >= 4096 && m->chunkSize <= max, "MAN-16",
              kj::str("4096 <= chunkSize <= ", max), kj::str(m->chunkSize));
    }
  }
}

void chunkCountsAddUp(Trial& t) {
  KJ_IF_MAYBE (c, t.establish()) {
    KJ_IF_MAYBE (m, fetchManifest(t, *c, "gamma")) {
      uint64_t chunks = 0, bytes = 0;
      for (auto& f : m->files) {
        chunks += codec::chunkCountFor(f.size, m->chunkSize);
        bytes += f.size;
      }
      t.check(chunks == m->chunks.size() && bytes == m->totalBytes, "MAN-17",
              kj::str(chunks, " chunks, ", bytes, " bytes"),
              kj::str(m->chunks.size(), " chunks, ", m->totalBytes, " bytes"));
      // And the chunk hashes are those of the fixture's bytes.
      KJ_IF_MAYBE (fixture, t.fixture()) {
        auto& item = KJ_ASSERT_NONNULL(fixture->item("gamma"));
        for (auto i : kj::indices(m->files)) {
          auto& file = KJ_ASSERT_NONNULL(item.file(m->files[i].path));
          auto hashes = m->chunksOf(i);
          for (auto k : kj::indices(hashes)) {
            size_t at = k * m->chunkSize;
            auto part = file.content.slice(at, kj::min(file.content.size(), at + m->chunkSize));
            if (!t.check(codec::sha256(part) == hashes[k], "MAN-20",
                         kj::str("the SHA-256 of chunk ", k, " of ", file.path),
                         kj::str(hashes[k]))) {
              return;
            }
          }
        }
      }
    }
  }
}

void pagedManifest(Trial& t) {
  auto a = t.announce();
  a.maxFrameBytes = 65536;
  KJ_IF_MAYBE (c, t.establish(Trial::Open{nullptr, {}, a})) {
    KJ_IF_MAYBE (pages, t.request(*c, getManifestFrame(c->nextRequestId(), "many"))) {
      t.check(pages->size() >= 2, t.spec().requirement, "several Manifest pages",
              kj::str(pages->size()));
      codec::ManifestAssembler assembler("many");
      for (auto& p : *pages) {
        KJ_IF_MAYBE (problem, assembler.feed(p.root().getManifest())) {
          t.fail(t.spec().requirement, kj::str("contiguous pages repeating the shared fields"),
                 kj::str(problem->message));
          return;
        }
      }
      t.check(assembler.isComplete(), t.spec().requirement, "a complete manifest",
              kj::str("incomplete"));
    }
  }
}

Settings pagingFixture() {
  Settings s;
  s.fixture = FixtureKind::paging;
  return s;
}

void symlinkSwapNeverServed(Trial& t) {
  KJ_IF_MAYBE (c, t.establish()) {
    KJ_IF_MAYBE (m, fetchManifest(t, *c, "gamma")) {
      KJ_IF_MAYBE (fixture, t.fixture()) {
        auto secret = kj::str(fixture->dir(), "/../secret.txt");
        writeFile(secret, "TOP-SECRET-MARKER-TOP-SECRET-MARKER-TOP-SECRET-MARKER"_kj.asBytes());
        fixture->replaceWithSymlink("gamma", "readme.txt", secret);
        uint32_t index = KJ_ASSERT_NONNULL(m->fileIndex("readme.txt"));
        KJ_IF_MAYBE (pages, t.request(*c, getChunkFrame(c->nextRequestId(), "gamma", m->digest,
                                                        index, 0, 53))) {
          auto r = (*pages)[0].root();
          t.check(r.isError(), "MAN-11", "an Error (stale), never the bytes behind the symlink",
                  kj::str(r));
        }
      }
    }
  }
}

}  // namespace

void manifestCases(kj::Vector<CaseSpec>& out) {
  both(out, "man/MAN-1/1", "man/MAN-1/2", "MAN-1", "every item's manifest matches its entry",
       manifestMatchesEntry);
  both(out, "man/MAN-2/1", "man/MAN-2/2", "MAN-2", "an unknown item is notFound", unknownItem);
  struct Row {
    kj::StringPtr id, requirement, title;
    void (*run)(Trial&);
    kj::StringPtr bad;
  };
  Row rows[] = {
      {"man/MAN-4/1", "MAN-4", "item id ''", idEmpty, "9"},
      {"man/MAN-4/2", "MAN-4", "item id '.'", idDot, "9"},
      {"man/MAN-4/3", "MAN-4", "item id '..'", idDotDot, "9"},
      {"man/MAN-4/4", "MAN-4", "item id '/etc'", idAbsolute, "9"},
      {"man/MAN-5/1", "MAN-5", "item id with a backslash", idBackslash, "9"},
      {"man/MAN-5/2", "MAN-5", "item id 'C:\\x'", idDrive, "9"},
      {"man/MAN-5/3", "MAN-5", "item id with NUL", idNul, "10"},
      {"man/MAN-5/4", "MAN-5", "item id with TAB", idTab, "10"},
      {"man/MAN-5/5", "MAN-5", "item id with DEL", idDel, "10"},
      {"man/MAN-5/6", "MAN-5", "item id with a C1 control", idC1, "10"},
      {"man/MAN-5/7", "MAN-5", "item id with an overlong '/' (c0 af)", idOverlong, "10"},
      {"man/MAN-5/8", "MAN-5", "item id with a surrogate (ed a0 80)", idSurrogate, "10"},
      {"man/MAN-6/1", "MAN-6", "item id of 256 bytes", idTooLong, "10"},
      {"man/MAN-7/1", "MAN-7", "item id with a '/'", idSlash, "9"},
      {"man/MAN-8/1", "MAN-8", "'alpha/' is rejected, not normalised", idTrailingSlash, "9"},
      {"man/MAN-8/2", "MAN-8", "'./alpha' is rejected, not normalised", idDotSlash, "9"},
  };
  for (auto& r : rows) {
    out.add(withBadInputs(spec(r.id, r.requirement, Role::responder, r.title, r.run), r.bad));
  }
  out.add(spec("man/MAN-9/1", "MAN-9", Role::responder, "item ids compare bytewise", caseSensitive,
               need::launch));
  both(out, "man/MAN-10/1", "man/MAN-10/2", "MAN-10",
       "a bad item id with a valid digest is still refused", pathCheckedBeforeDigest);
  out.back().badInputs = "14";
  out[out.size() - 2].badInputs = "14";
  out.add(withBadInputs(spec("man/MAN-11/1", "MAN-11", Role::responder,
                             "a file swapped for a symlink after indexing is never served",
                             symlinkSwapNeverServed, need::launch),
                        "11"));
  out.add(withBadInputs(
      spec("man/MAN-12/1", "MAN-12", Role::responder, "symlinks, FIFOs and folders are not listed",
           regularFilesOnly, need::launch),
      "12"));
  out.add(spec("man/MAN-13/1", "MAN-13", Role::responder, "files sorted bytewise ('a-b' < 'a/b')",
               regularFilesOnly, need::launch));
  out.add(spec("man/MAN-14/1", "MAN-14", Role::responder, "no file path is a folder of another",
               noPrefixConflict));
  out.add(withBadInputs(spec("man/MAN-15/1", "MAN-15", Role::responder,
                             "an item with a path v1 cannot carry is not listed",
                             unlistableItemLeftOut, need::launch),
                        "10"));
  out.add(spec("man/MAN-16/1", "MAN-16", Role::responder, "chunkSize within bounds",
               chunkSizeInBounds));
  out.add(spec("man/MAN-17/1", "MAN-17", Role::responder, "chunk counts and sizes add up",
               chunkCountsAddUp, need::launch));
  out.add(spec("man/MAN-18/1", "MAN-18", Role::responder, "manifest pages are contiguous",
               pagedManifest, need::launch, pagingFixture()));
  out.add(spec("man/MAN-19/1", "MAN-19", Role::responder, "every page repeats the shared fields",
               pagedManifest, need::launch, pagingFixture()));
  out.add(spec("man/MAN-20/1", "MAN-20", Role::responder, "chunk hashes and the digest are right",
               chunkCountsAddUp, need::launch));
}

}  // namespace shoal::conformance::cases

namespace shoal::conformance {
void manifestCases(kj::Vector<CaseSpec>& out) {
  cases::manifestCases(out);
}
}  // namespace shoal::conformance
