// Manifests: the two normative digests against an independent byte-by-byte encoding, paging
// round trips through decodeFrame() and the assembler, and every way an assembly is refused
// (docs/bad-inputs.md #13 and 14 at the protocol level).
#include <shoal/codec/manifest.h>

#include <algorithm>

#include <kj/function.h>
#include <shoal/codec/frame.h>

#include "test-util.h"

namespace shoal::codec {
namespace {

Digest seeded(uint64_t seed) {
  kj::byte raw[8];
  for (int i = 0; i < 8; ++i)
    raw[i] = kj::byte(seed >> (8 * i));
  return sha256(kj::arrayPtr(raw, 8));
}

// `fileCount` files spread over folders, some empty, with varied chunk counts.
Manifest bigManifest(uint32_t fileCount, uint32_t chunkSize = 4096) {
  auto files = kj::heapArrayBuilder<FileInfo>(fileCount);
  kj::Vector<Digest> chunks;
  for (uint32_t i = 0; i < fileCount; ++i) {
    uint64_t size = uint64_t(i % 5) * chunkSize + (i % 3) * 100;
    files.add(FileInfo{kj::str("dir", i / 100 + 100, "/file-", i + 10000, ".bin"), size,
                       i % 2 ? 0644u : 0755u});
    for (uint64_t c = 0; c < chunkCountFor(size, chunkSize); ++c)
      chunks.add(seeded(chunks.size()));
  }
  return makeManifest(kj::str("big-item"), chunkSize, files.finish(), chunks.releaseAsArray());
}

Manifest smallManifest() {
  auto files = kj::arr(FileInfo{kj::str("bin/game"), 5000, 0755},
                       FileInfo{kj::str("empty"), 0, 0644}, FileInfo{kj::str("z"), 4096, 0600});
  auto chunks = kj::heapArray<Digest>({seeded(1), seeded(2), seeded(3)});
  return makeManifest(kj::str("item"), 4096, kj::mv(files), kj::mv(chunks));
}

// The spec's byte layout, written out independently of manifestDigest().
struct Bytes {
  kj::Vector<kj::byte> out;
  void raw(kj::ArrayPtr<const kj::byte> b) { out.addAll(b); }
  void text(kj::StringPtr s) {
    u32(uint32_t(s.size()));
    raw(s.asBytes());
  }
  void u32(uint32_t v) {
    for (int i = 0; i < 4; ++i)
      out.add(kj::byte(v >> (8 * i)));
  }
  void u64(uint64_t v) {
    for (int i = 0; i < 8; ++i)
      out.add(kj::byte(v >> (8 * i)));
  }
  Digest digest() { return sha256(out); }
};

TEST(ManifestDigest, MatchesTheSpecLayout) {
  auto m = smallManifest();
  Bytes b;
  b.raw(kj::StringPtr("shoal-manifest-v1").asBytes());
  b.out.add(0);
  b.u32(4096);
  b.u32(3);
  b.text("bin/game");
  b.u64(5000);
  b.u32(0755);
  b.raw(seeded(1).asBytes());
  b.raw(seeded(2).asBytes());
  b.text("empty");
  b.u64(0);
  b.u32(0644);
  b.text("z");
  b.u64(4096);
  b.u32(0600);
  b.raw(seeded(3).asBytes());
  EXPECT_EQ(m.digest, b.digest());
  EXPECT_EQ(m.totalBytes, 5000u + 4096u);
  EXPECT_EQ(m.firstChunk[0], 0u);
  EXPECT_EQ(m.firstChunk[1], 2u);
  EXPECT_EQ(m.firstChunk[2], 2u);
  EXPECT_EQ(m.chunksOf(0).size(), 2u);
  EXPECT_EQ(m.chunksOf(1).size(), 0u);
  EXPECT_EQ(m.chunksOf(2)[0], seeded(3));
  EXPECT_EQ(m.chunkLength(0, 0), 4096u);
  EXPECT_EQ(m.chunkLength(0, 1), 5000u - 4096u);
  EXPECT_EQ(KJ_ASSERT_NONNULL(m.fileIndex("empty")), 1u);
  EXPECT_EQ(m.fileIndex("nope"), nullptr);

  // Deterministic: same parts, same digest.
  EXPECT_EQ(smallManifest().digest, m.digest);
}

TEST(ManifestDigest, KnownAnswersFromTheSpec) {
  // docs/protocol.md §7.5 and §6.3.
  auto hello = sha256(kj::StringPtr("hello").asBytes());
  EXPECT_EQ(toHex(hello), "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824");
  auto alpha = makeManifest(kj::str("alpha"), kDefaultChunkSize,
                            kj::arr(FileInfo{kj::str("a.txt"), 5, 0644}), kj::arr(hello));
  EXPECT_EQ(toHex(alpha.digest),
            "23189a4d1a7024bedfd866f583471068334ffb2a68c2e9197821018e47103347");
  auto beta = makeManifest(kj::str("beta"), kDefaultChunkSize, nullptr, nullptr);
  EXPECT_EQ(toHex(beta.digest), "13b8ef1b89558eeb0c9c5b5a86a600095cf451fee1da4c72e6ad8faf7c47a7b7");

  EXPECT_EQ(toHex(libraryDigest(nullptr)),
            "cad282924b012f391b980eee987cf6ad410e77f91354fcd1aa65993a82abe61c");
  auto items = kj::arr(itemInfoOf(alpha), itemInfoOf(beta));
  EXPECT_EQ(items[0].name, "alpha");
  EXPECT_EQ(items[0].size, 5u);
  EXPECT_EQ(items[0].fileCount, 1u);
  EXPECT_EQ(toHex(libraryDigest(items)),
            "698974059677854eeb52b65e0f3379377f9f645e0af48d83556c58f916487f22");
}

TEST(ManifestDigest, ChangesWhenAnyFieldChanges) {
  auto base = smallManifest();
  kj::Vector<Digest> seen;
  seen.add(base.digest);
  auto variant = [&](kj::Function<void(Manifest&)> change) {
    auto m = smallManifest();
    change(m);
    auto d = manifestDigest(m.chunkSize, m.files, m.chunks);
    for (auto& s : seen)
      EXPECT_NE(d, s);
    seen.add(d);
  };
  variant([](Manifest& m) {
    m.chunkSize = 8192, m.chunks = kj::heapArray<Digest>({seeded(1), seeded(3)});
  });
  variant([](Manifest& m) { m.files[0].path = kj::str("bin/gamf"); });
  variant([](Manifest& m) { m.files[1].path = kj::str("empty2"); });
  variant([](Manifest& m) { m.files[0].size = 5001; });
  variant([](Manifest& m) { m.files[1].mode = 0600; });
  variant([](Manifest& m) { m.chunks[2] = seeded(4); });
  variant([](Manifest& m) { std::swap(m.chunks[0], m.chunks[1]); });
  // An empty file moved from one name to another, or dropped, changes the count and layout.
  variant([](Manifest& m) { m.files = kj::arr(m.files[0].clone(), m.files[2].clone()); });
}

TEST(LibraryDigest, MatchesTheSpecLayoutAndChangesWithEveryField) {
  auto items = kj::arr(ItemInfo{kj::str("alpha"), kj::str("Alpha"), 10, 2, seeded(7)},
                       ItemInfo{kj::str("beta"), kj::str("beta"), 0, 0, seeded(8)});
  Bytes b;
  b.raw(kj::StringPtr("shoal-library-v1").asBytes());
  b.out.add(0);
  b.u32(2);
  for (auto& i : items) {
    b.text(i.itemId);
    b.text(i.name);
    b.u64(i.size);
    b.u32(i.fileCount);
    b.raw(i.manifestDigest.asBytes());
  }
  auto base = libraryDigest(items);
  EXPECT_EQ(base, b.digest());
  EXPECT_EQ(libraryDigest(items), base);
  EXPECT_NE(libraryDigest(nullptr), base);

  kj::Vector<Digest> seen;
  seen.add(base);
  auto variant = [&](kj::Function<void(ItemInfo&)> change) {
    auto copy = KJ_MAP(i, items) {
      return i.clone();
    };
    change(copy[1]);
    auto d = libraryDigest(copy);
    for (auto& s : seen)
      EXPECT_NE(d, s);
    seen.add(d);
  };
  variant([](ItemInfo& i) { i.itemId = kj::str("bets"); });
  variant([](ItemInfo& i) { i.name = kj::str("Beta"); });
  variant([](ItemInfo& i) { i.size = 1; });
  variant([](ItemInfo& i) { i.fileCount = 1; });
  variant([](ItemInfo& i) { i.manifestDigest = seeded(9); });
}

TEST(Manifest, ChunkCounts) {
  EXPECT_EQ(chunkCountFor(0, 4096), 0u);
  EXPECT_EQ(chunkCountFor(1, 4096), 1u);
  EXPECT_EQ(chunkCountFor(4096, 4096), 1u);
  EXPECT_EQ(chunkCountFor(4097, 4096), 2u);
  EXPECT_EQ(chunkCountFor(uint64_t(1) << 50, 1 << 20), uint64_t(1) << 30);
}

kj::Array<FileInfo> filesOf(std::initializer_list<kj::StringPtr> paths) {
  return KJ_MAP(p, paths) {
    return FileInfo{kj::str(p), 0, 0644};
  };
}

kj::StringPtr conflictOf(kj::ArrayPtr<const FileInfo> files) {
  KJ_IF_MAYBE (c, findPrefixConflict(files)) {
    return *c;
  }
  return "(none)";
}

TEST(Manifest, PrefixConflicts) {
  EXPECT_EQ(conflictOf(filesOf({"a", "a b", "a-c", "ab/c"})), "(none)");
  EXPECT_EQ(conflictOf(filesOf({"a", "a b", "a-c", "a.d", "a/b"})), "a");
  EXPECT_EQ(conflictOf(filesOf({"x/a", "x/a/b/c"})), "x/a");
  EXPECT_EQ(conflictOf(filesOf({"x/a", "x/ab", "x/b"})), "(none)");
  EXPECT_EQ(conflictOf(nullptr), "(none)");
}

// The failure's message, or "" when there is none: readable in test output.
kj::String problem(kj::Maybe<Failure> failure) {
  KJ_IF_MAYBE (f, failure) {
    return kj::str(f->error, ": ", f->message);
  }
  return kj::str();
}

// Encodes and decodes every page, as a receiver would see them; each must pass validate().
kj::Vector<InboundFrame> throughTheWire(
    kj::ArrayPtr<FrameBuilder> pages, uint32_t maxFrameBytes,
    kj::Function<void(size_t, wire::Manifest::Builder)> mutate = [](auto, auto) {}) {
  kj::Vector<InboundFrame> frames;
  for (size_t i = 0; i < pages.size(); ++i) {
    mutate(i, pages[i]->getRoot<wire::Frame>().getManifest());
    auto bytes = encodeFrame(*pages[i]);
    EXPECT_LE(bytes.size(), maxFrameBytes) << "page " << i;
    // The size estimate sized the first segment: one segment, no far pointers.
    EXPECT_EQ(pages[i]->getSegmentsForOutput().size(), 1u) << "page " << i;
    auto result = decodeFrame(bytes);
    KJ_IF_MAYBE (f, result.tryGet<Failure>()) {
      ADD_FAILURE() << "page " << i << ": " << f->message.cStr();
      continue;
    }
    frames.add(kj::mv(result.get<InboundFrame>()));
  }
  return frames;
}

TEST(ManifestPages, RoundTripThroughTheAssemblerAtManySizes) {
  auto m = bigManifest(2000);
  ASSERT_GT(m.chunks.size(), 5000u);
  for (uint32_t maxFrame : {2048u, 4096u, 65536u, 16u << 20}) {
    auto pages = manifestPages(42, m, maxFrame);
    if (maxFrame <= 4096) {
      EXPECT_GT(pages.size(), 50u) << maxFrame;
    }
    if (maxFrame == 16u << 20) {
      EXPECT_EQ(pages.size(), 1u);
    }
    auto frames = throughTheWire(pages, maxFrame);
    ManifestAssembler assembler("big-item");
    for (size_t i = 0; i < frames.size(); ++i) {
      auto page = frames[i].root().getManifest();
      EXPECT_EQ(page.getId(), 42u);
      EXPECT_EQ(page.getLast(), i + 1 == frames.size());
      EXPECT_EQ(problem(assembler.feed(page)), "") << maxFrame << " page " << i;
    }
    ASSERT_TRUE(assembler.isComplete()) << maxFrame;
    auto got = assembler.take();
    EXPECT_EQ(got.digest, m.digest);
    EXPECT_EQ(got.itemId, "big-item");
    EXPECT_EQ(got.chunkSize, m.chunkSize);
    EXPECT_EQ(got.totalBytes, m.totalBytes);
    ASSERT_EQ(got.files.size(), m.files.size());
    for (size_t i = 0; i < m.files.size(); ++i) {
      EXPECT_EQ(got.files[i].path, m.files[i].path);
      EXPECT_EQ(got.files[i].size, m.files[i].size);
      EXPECT_EQ(got.files[i].mode, m.files[i].mode);
      EXPECT_EQ(got.firstChunk[i], m.firstChunk[i]);
    }
    EXPECT_EQ(got.chunks.asPtr(), m.chunks.asPtr());
  }
}

TEST(ManifestPages, EmptyManifestIsOneLastPage) {
  auto m = makeManifest(kj::str("nothing"), kDefaultChunkSize, nullptr, nullptr);
  auto pages = manifestPages(1, m, kMinFrameBytes);
  ASSERT_EQ(pages.size(), 1u);
  auto frames = throughTheWire(pages, kMinFrameBytes);
  ManifestAssembler assembler("nothing");
  EXPECT_EQ(problem(assembler.feed(frames[0].root().getManifest())), "");
  ASSERT_TRUE(assembler.isComplete());
  EXPECT_EQ(assembler.take().digest, m.digest);
}

TEST(ManifestPages, LongPathsStillFit) {
  // Entries near the path limit at the smallest frame any peer may announce.
  auto files = kj::heapArrayBuilder<FileInfo>(40);
  for (int i = 0; i < 40; ++i) {
    auto component = kj::heapArray<char>(250);
    memset(component.begin(), 'a' + i % 26, component.size());
    kj::Vector<char> path;
    for (int depth = 0; depth < 16; ++depth) {
      if (depth) path.add('/');
      path.addAll(component);
    }
    path.addAll(kj::str("-", 100 + i));
    files.add(FileInfo{kj::heapString(path.begin(), path.size()), 0, 0644});
  }
  auto list = files.finish();
  std::sort(list.begin(), list.end(), [](auto& a, auto& b) { return a.path < b.path; });
  auto m = makeManifest(kj::str("deep"), 4096, kj::mv(list), nullptr);
  auto pages = manifestPages(3, m, kMinFrameBytes);
  EXPECT_GT(pages.size(), 1u);
  ManifestAssembler assembler("deep");
  for (auto& frame : throughTheWire(pages, kMinFrameBytes))
    EXPECT_EQ(problem(assembler.feed(frame.root().getManifest())), "");
  EXPECT_TRUE(assembler.isComplete());
}

// Feeds the pages of `m` (mutated on the way) and returns the first failure.
kj::Maybe<Failure> assemble(const Manifest& m,
                            kj::Function<void(size_t, wire::Manifest::Builder)> mutate,
                            uint32_t maxFrame = 2048, kj::StringPtr itemId = nullptr,
                            kj::Maybe<size_t> drop = nullptr) {
  auto pages = manifestPages(9, m, maxFrame);
  auto frames = throughTheWire(pages, maxFrame, kj::mv(mutate));
  ManifestAssembler assembler(itemId == nullptr ? m.itemId.asPtr() : itemId);
  for (size_t i = 0; i < frames.size(); ++i) {
    if (drop == kj::Maybe<size_t>(i)) continue;
    KJ_IF_MAYBE (f, assembler.feed(frames[i].root().getManifest())) {
      // Once failed, it stays failed.
      if (i + 1 < frames.size()) {
        EXPECT_NE(assembler.feed(frames[i + 1].root().getManifest()), nullptr);
      }
      EXPECT_FALSE(assembler.isComplete());
      return kj::mv(*f);
    }
  }
  EXPECT_TRUE(assembler.isComplete());
  return nullptr;
}

CodecError errorOf(const Manifest& m, kj::Function<void(size_t, wire::Manifest::Builder)> mutate,
                   kj::Maybe<size_t> drop = nullptr) {
  KJ_IF_MAYBE (f, assemble(m, kj::mv(mutate), 2048, nullptr, drop)) {
    return f->error;
  }
  ADD_FAILURE() << "assembly succeeded but should have failed";
  return CodecError::truncated;
}

// Index of the first page carrying files (hashes) past index `after`.
size_t pageWith(const Manifest& m, bool wantFiles, size_t after = 0) {
  auto pages = manifestPages(9, m, 2048);
  for (size_t i = after + 1; i < pages.size(); ++i) {
    auto p = pages[i]->getRoot<wire::Frame>().getManifest();
    if (wantFiles ? p.getFiles().size() > 0 : p.getHashes().size() > 0) return i;
  }
  KJ_FAIL_ASSERT("no such page");
}

TEST(ManifestAssembler, UntouchedPagesAssemble) {
  auto m = bigManifest(300);
  EXPECT_EQ(problem(assemble(m, [](auto, auto) {})), "");
}

TEST(ManifestAssembler, RefusesGapsAndOverlaps) {
  auto m = bigManifest(300);
  // Pages past the first of their kind, so that firstFile/firstChunk - 1 stays valid.
  size_t f = pageWith(m, true), h = pageWith(m, false, pageWith(m, false));
  auto at = [](size_t page, kj::Function<void(wire::Manifest::Builder)> change) {
    return [page, change = kj::mv(change)](size_t i, wire::Manifest::Builder b) mutable {
      if (i == page) change(b);
    };
  };
  EXPECT_EQ(errorOf(m, at(f, [](auto b) { b.setFirstFile(b.getFirstFile() + 1); })),
            CodecError::badCount);
  EXPECT_EQ(errorOf(m, at(f, [](auto b) { b.setFirstFile(b.getFirstFile() - 1); })),
            CodecError::badCount);
  EXPECT_EQ(errorOf(m, at(h, [](auto b) { b.setFirstChunk(b.getFirstChunk() + 1); })),
            CodecError::badCount);
  EXPECT_EQ(errorOf(m, at(h, [](auto b) { b.setFirstChunk(b.getFirstChunk() - 1); })),
            CodecError::badCount);
  // A page left out, the rest renumbered: the next page's files start too far on.
  EXPECT_EQ(errorOf(
                m,
                [f](size_t i, auto b) {
                  if (i > f) b.setPage(b.getPage() - 1);
                },
                f),
            CodecError::badCount);
}

TEST(ManifestAssembler, RefusesWrongPageNumbers) {
  auto m = bigManifest(300);
  EXPECT_EQ(errorOf(m,
                    [](size_t i, auto b) {
                      if (i == 1) b.setPage(2);
                    }),
            CodecError::badField);
  EXPECT_EQ(errorOf(m,
                    [](size_t i, auto b) {
                      if (i == 0) b.setPage(1);
                    }),
            CodecError::badField);
  // A page dropped without renumbering.
  EXPECT_EQ(errorOf(
                m, [](auto, auto) {}, size_t(3)),
            CodecError::badField);
}

TEST(ManifestAssembler, RefusesChangedHeaderFieldsMidAnswer) {
  // chunkSize 8192 so that 4096 mid-answer still passes validate().
  auto m = bigManifest(300, 8192);
  EXPECT_EQ(errorOf(m,
                    [](size_t i, auto b) {
                      if (i == 2) b.setChunkSize(4096);
                    }),
            CodecError::badField);
  EXPECT_EQ(errorOf(m,
                    [](size_t i, auto b) {
                      if (i == 2) b.setId(10);
                    }),
            CodecError::badField);
  EXPECT_EQ(errorOf(m,
                    [](size_t i, auto b) {
                      if (i == 2) b.setDigest(seeded(1).asBytes());
                    }),
            CodecError::badField);
  EXPECT_EQ(errorOf(m,
                    [](size_t i, auto b) {
                      if (i == 2) b.setTotalBytes(b.getTotalBytes() + 1);
                    }),
            CodecError::badField);
  EXPECT_EQ(errorOf(m,
                    [](size_t i, auto b) {
                      if (i == 2) b.setFileCount(b.getFileCount() + 1);
                    }),
            CodecError::badField);
  EXPECT_EQ(errorOf(m,
                    [](size_t i, auto b) {
                      if (i == 2) b.setChunkCount(b.getChunkCount() + 1);
                    }),
            CodecError::badField);
}

TEST(ManifestAssembler, RefusesCountsThatDoNotAddUp) {
  auto m = bigManifest(300);
  // One hash fewer, announced consistently on every page: the file sizes need one more.
  size_t lastHashes = 0;
  {
    auto pages = manifestPages(9, m, 2048);
    for (size_t i = 0; i < pages.size(); ++i) {
      if (pages[i]->getRoot<wire::Frame>().getManifest().getHashes().size() > 0) lastHashes = i;
    }
  }
  EXPECT_EQ(errorOf(m,
                    [&](size_t i, wire::Manifest::Builder b) {
                      b.setChunkCount(b.getChunkCount() - 1);
                      if (i == lastHashes) {
                        auto h = b.getHashes();
                        b.setHashes(kj::heapArray(h.slice(0, h.size() - kDigestBytes)));
                      }
                    }),
            CodecError::badCount);
  // Sizes that do not add up to totalBytes.
  EXPECT_EQ(errorOf(m, [](auto, auto b) { b.setTotalBytes(b.getTotalBytes() + 1); }),
            CodecError::badCount);
  // One file fewer than announced.
  EXPECT_EQ(errorOf(m, [](auto, auto b) { b.setFileCount(b.getFileCount() + 1); }),
            CodecError::badCount);
  // A file size changed: chunk counts then disagree with the hashes.
  EXPECT_EQ(errorOf(m,
                    [](size_t i, auto b) {
                      b.setTotalBytes(b.getTotalBytes() + 4096);
                      if (i == 0) b.getFiles()[1].setSize(b.getFiles()[1].getSize() + 4096);
                    }),
            CodecError::badCount);
}

TEST(ManifestAssembler, RefusesADigestThatDoesNotMatch) {
  auto m = bigManifest(300);
  EXPECT_EQ(errorOf(m, [](auto, auto b) { b.setDigest(seeded(99).asBytes()); }),
            CodecError::badDigest);
  // A mode changed on the way: the content no longer matches the announced digest.
  EXPECT_EQ(errorOf(m,
                    [](size_t i, auto b) {
                      if (i == 0) b.getFiles()[0].setMode(0600);
                    }),
            CodecError::badDigest);
}

TEST(ManifestAssembler, RefusesAFileThatIsAlsoADirectory) {
  // docs/bad-inputs.md #14: the hashes are consistent, the paths are hostile.
  auto files = kj::arr(FileInfo{kj::str("a"), 10, 0644}, FileInfo{kj::str("a-b"), 0, 0644},
                       FileInfo{kj::str("a/b"), 10, 0644});
  auto m = makeManifest(kj::str("x"), 4096, kj::mv(files),
                        kj::heapArray<Digest>({seeded(1), seeded(2)}));
  KJ_IF_MAYBE (f, assemble(
                      m, [](auto, auto) {}, kMinFrameBytes)) {
    EXPECT_EQ(f->error, CodecError::badPath);
    EXPECT_NE(strstr(f->message.cStr(), "\"a\""), nullptr) << f->message.cStr();
  } else {
    ADD_FAILURE() << "prefix conflict accepted";
  }
}

TEST(ManifestAssembler, RefusesAPathRepeatedOnALaterPage) {
  auto m = bigManifest(300);
  size_t f1 = pageWith(m, true), f2 = pageWith(m, true, f1);
  auto pages = manifestPages(9, m, 2048);
  auto previous = pages[f1]->getRoot<wire::Frame>().getManifest().getFiles();
  auto lastPath = kj::str(previous[previous.size() - 1].getPath().asReader());
  EXPECT_EQ(errorOf(m,
                    [&](size_t i, auto b) {
                      if (i == f2) b.getFiles()[0].setPath(lastPath);
                    }),
            CodecError::badField);
}

TEST(ManifestAssembler, RefusesOtherItemsAndTooManyChunks) {
  auto m = bigManifest(10);
  KJ_IF_MAYBE (f, assemble(
                      m, [](auto, auto) {}, 2048, "other-item")) {
    EXPECT_EQ(f->error, CodecError::badField);
  } else {
    ADD_FAILURE() << "page for another item accepted";
  }
  auto pages = manifestPages(9, m, kMinFrameBytes);
  auto frames = throughTheWire(pages, kMinFrameBytes);
  ManifestAssembler small("big-item", Limits(), m.chunks.size() - 1);
  KJ_IF_MAYBE (f, small.feed(frames[0].root().getManifest())) {
    EXPECT_EQ(f->error, CodecError::badCount);
  } else {
    ADD_FAILURE() << "chunkCount above the assembler's limit accepted";
  }
  // An empty page before the last ([RQ-5]).
  {
    capnp::MallocMessageBuilder empty;
    empty.setRoot(frames[0].root());
    auto page = empty.getRoot<wire::Frame>().getManifest();
    page.setLast(false);
    page.initFiles(0);
    page.initHashes(0);
    ManifestAssembler assembler("big-item");
    KJ_IF_MAYBE (f, assembler.feed(page.asReader())) {
      EXPECT_EQ(f->error, CodecError::badCount);
    } else {
      ADD_FAILURE() << "empty page before the last accepted";
    }
  }
  // A page after the last one.
  ManifestAssembler once("big-item");
  EXPECT_EQ(once.feed(frames[0].root().getManifest()), nullptr);
  ASSERT_TRUE(once.isComplete());
  EXPECT_NE(once.feed(frames[0].root().getManifest()), nullptr);
}

}  // namespace
}  // namespace shoal::codec
