// ManifestAssembler's own checks on hand-built pages that never went through validate(): its
// limits, counts and sizes that do not add up (overflow included), hash lists of the wrong length;
// also Manifest::fileIndex() misses and ItemInfo equality.
#include <shoal/codec/manifest.h>

#include <gtest/gtest.h>
#include <kj/function.h>

namespace shoal::codec {
namespace {

Digest seeded(uint8_t seed) {
  return sha256(kj::arrayPtr(&seed, 1));
}

// Files "a" (5000 bytes, two chunks) and "b" (4096 bytes, one chunk) at 4 KiB chunks.
Manifest twoFiles() {
  auto files = kj::arr(FileInfo{kj::str("a"), 5000, 0644}, FileInfo{kj::str("b"), 4096, 0755});
  return makeManifest(kj::str("item"), 4096, kj::mv(files),
                      kj::heapArray<Digest>({seeded(1), seeded(2), seeded(3)}));
}

// The one-page answer for `m`, as a builder the tests change before the assembler reads it.
// Nothing here goes through decodeFrame(): the assembler is the only check.
class HandPage {
 public:
  explicit HandPage(const Manifest& m = twoFiles()) {
    auto pages = manifestPages(7, m, 16 << 20);
    KJ_ASSERT(pages.size() == 1);
    message = kj::mv(pages[0]);
  }

  wire::Manifest::Builder get() { return message->getRoot<wire::Frame>().getManifest(); }

  // Replaces the file list with `files` (path, size), mode 0644.
  void setFiles(std::initializer_list<std::pair<kj::StringPtr, uint64_t>> files) {
    auto list = get().initFiles(kj::uint(files.size()));
    kj::uint i = 0;
    for (auto& f : files) {
      list[i].setPath(f.first);
      list[i].setSize(f.second);
      list[i++].setMode(0644);
    }
  }
  // Replaces the hashes with `bytes` bytes of a pattern.
  void setHashBytes(size_t bytes) {
    auto hashes = get().initHashes(kj::uint(bytes));
    for (size_t i = 0; i < bytes; ++i)
      hashes[i] = kj::byte(i);
  }

  // The assembler's failure for this page, or null.
  kj::Maybe<Failure> feedTo(ManifestAssembler& assembler) { return assembler.feed(get()); }

 private:
  FrameBuilder message;
};

struct Refusal {
  CodecError error;
  kj::String message;
};

// Feeds `page` to a fresh assembler with `limits` and `maxChunks`; the refusal, which must leave
// the assembler failed for good.
Refusal refusalOf(HandPage& page, const Limits& limits = Limits(),
                  uint64_t maxChunks = kDefaultMaxManifestChunks) {
  ManifestAssembler assembler("item", limits, maxChunks);
  KJ_IF_MAYBE (f, page.feedTo(assembler)) {
    EXPECT_FALSE(assembler.isComplete());
    // Failed for good: even the untouched answer is refused now.
    HandPage good;
    EXPECT_NE(good.feedTo(assembler), nullptr);
    return {f->error, kj::mv(f->message)};
  }
  ADD_FAILURE() << "page accepted";
  return {CodecError::truncated, kj::str()};
}

bool mentions(const Refusal& r, kj::StringPtr fragment) {
  return strstr(r.message.cStr(), fragment.cStr()) != nullptr;
}

TEST(HandBuiltPages, TheUntouchedPageAssembles) {
  // The control: every refusal below comes from the one change each test makes.
  HandPage page;
  ManifestAssembler assembler("item");
  EXPECT_EQ(page.feedTo(assembler), nullptr);
  ASSERT_TRUE(assembler.isComplete());
  auto m = assembler.take();
  EXPECT_EQ(m.digest, twoFiles().digest);
  EXPECT_EQ(m.totalBytes, 9096u);
}

TEST(HandBuiltPages, ChunkSizeOutsideTheAssemblersLimits) {
  // validate() allows any chunk size up to 4 MiB; our own maxChunkBytes may be smaller.
  auto big = twoFiles();
  big.chunkSize = 128 * 1024;
  HandPage page(big);
  Limits limits;
  limits.maxChunkBytes = 64 * 1024;
  auto r = refusalOf(page, limits);
  EXPECT_EQ(r.error, CodecError::badField);
  EXPECT_TRUE(mentions(r, "chunkSize 131072 out of range")) << r.message.cStr();

  HandPage small;
  small.get().setChunkSize(1024);  // below minChunkSize 4096
  auto s = refusalOf(small);
  EXPECT_EQ(s.error, CodecError::badField);
  EXPECT_TRUE(mentions(s, "chunkSize 1024 out of range")) << s.message.cStr();
}

TEST(HandBuiltPages, FileCountAboveTheAssemblersLimit) {
  HandPage page;
  Limits limits;
  limits.maxFilesPerManifest = 1;
  auto r = refusalOf(page, limits);
  EXPECT_EQ(r.error, CodecError::badCount);
  EXPECT_TRUE(mentions(r, "fileCount 2 above the limit")) << r.message.cStr();
  // At the limit it is fine.
  limits.maxFilesPerManifest = 2;
  ManifestAssembler assembler("item", limits);
  EXPECT_EQ(page.feedTo(assembler), nullptr);
}

TEST(HandBuiltPages, MoreFilesThanFileCount) {
  HandPage page;
  page.setFiles({{"a", 5000}, {"b", 4096}, {"c", 0}});
  auto r = refusalOf(page);
  EXPECT_EQ(r.error, CodecError::badCount);
  EXPECT_TRUE(mentions(r, "more files than fileCount 2")) << r.message.cStr();
}

TEST(HandBuiltPages, FileAboveMaxFileBytes) {
  HandPage page;
  Limits limits;
  limits.maxFileBytes = 4999;
  auto r = refusalOf(page, limits);
  EXPECT_EQ(r.error, CodecError::badCount);
  EXPECT_TRUE(mentions(r, " at a")) << r.message.cStr();  // file "a", the first, is refused
}

TEST(HandBuiltPages, FileSizesAboveTotalBytes) {
  HandPage page;
  page.get().setTotalBytes(9095);  // one byte short of 5000 + 4096
  auto r = refusalOf(page);
  EXPECT_EQ(r.error, CodecError::badCount);
  EXPECT_TRUE(mentions(r, "exceed totalBytes 9095 at b")) << r.message.cStr();
}

TEST(HandBuiltPages, FileSizesThatOverflowTheSum) {
  // Two files of 2^63 bytes: their sum wraps to 0. With every limit at its maximum only the
  // overflow check stands in the way.
  HandPage page;
  auto m = page.get();
  m.setChunkSize(4 << 20);
  m.setChunkCount(UINT64_MAX);
  m.setTotalBytes(UINT64_MAX);
  page.setFiles({{"a", uint64_t(1) << 63}, {"b", uint64_t(1) << 63}});
  Limits limits;
  limits.maxFileBytes = UINT64_MAX;
  auto r = refusalOf(page, limits, UINT64_MAX);
  EXPECT_EQ(r.error, CodecError::badCount);
  EXPECT_TRUE(mentions(r, "exceed totalBytes 18446744073709551615 at b")) << r.message.cStr();
}

TEST(HandBuiltPages, HashesNotAMultipleOfTheDigestSize) {
  HandPage page;
  page.setHashBytes(3 * kDigestBytes + 1);
  auto r = refusalOf(page);
  EXPECT_EQ(r.error, CodecError::badDigest);
  EXPECT_TRUE(mentions(r, "hashes of 97 bytes")) << r.message.cStr();
}

TEST(HandBuiltPages, HashesPastChunkCount) {
  HandPage page;
  page.setHashBytes(4 * kDigestBytes);  // chunkCount is 3
  auto r = refusalOf(page);
  EXPECT_EQ(r.error, CodecError::badCount);
  EXPECT_TRUE(mentions(r, "more hashes than chunkCount 3")) << r.message.cStr();
}

TEST(HandBuiltPages, FewerHashesThanChunkCountOnTheLastPage) {
  HandPage page;
  page.setHashBytes(2 * kDigestBytes);
  auto r = refusalOf(page);
  EXPECT_EQ(r.error, CodecError::badCount);
  EXPECT_TRUE(mentions(r, "last page after 2 of 3 hashes")) << r.message.cStr();
}

TEST(HandBuiltPages, ChunkCountTheFileSizesDoNotNeed) {
  // Four hashes announced and sent, but the files need three.
  HandPage page;
  page.get().setChunkCount(4);
  page.setHashBytes(4 * kDigestBytes);
  auto r = refusalOf(page);
  EXPECT_EQ(r.error, CodecError::badCount);
  EXPECT_TRUE(mentions(r, "file sizes need 3 chunks, chunkCount is 4")) << r.message.cStr();
}

TEST(ManifestLookup, FileIndexFindsEveryPathAndNothingElse) {
  auto files = kj::arr(FileInfo{kj::str("bin/game"), 1, 0755}, FileInfo{kj::str("data/x"), 1, 0644},
                       FileInfo{kj::str("readme"), 1, 0644});
  auto m = makeManifest(kj::str("item"), 4096, kj::mv(files),
                        kj::heapArray<Digest>({seeded(1), seeded(2), seeded(3)}));
  for (uint32_t i = 0; i < m.files.size(); ++i)
    EXPECT_EQ(KJ_ASSERT_NONNULL(m.fileIndex(m.files[i].path)), i) << m.files[i].path.cStr();
  EXPECT_EQ(m.fileIndex("a"), nullptr);       // before the first
  EXPECT_EQ(m.fileIndex("bin"), nullptr);     // a folder, not a file
  EXPECT_EQ(m.fileIndex("data/y"), nullptr);  // between two
  EXPECT_EQ(m.fileIndex("zzz"), nullptr);     // past the last
  EXPECT_EQ(m.fileIndex(""), nullptr);
  auto empty = makeManifest(kj::str("empty"), 4096, nullptr, nullptr);
  EXPECT_EQ(empty.fileIndex("readme"), nullptr);
}

TEST(ItemInfoEquality, EveryFieldCounts) {
  ItemInfo base{kj::str("game"), kj::str("Game"), 100, 3, seeded(1)};
  EXPECT_TRUE(base == base.clone());
  EXPECT_FALSE(base != base.clone());
  auto variant = [&](kj::Function<void(ItemInfo&)> change) {
    auto other = base.clone();
    change(other);
    return other;
  };
  EXPECT_NE(base, variant([](ItemInfo& i) { i.itemId = kj::str("gamf"); }));
  EXPECT_NE(base, variant([](ItemInfo& i) { i.name = kj::str("game"); }));
  EXPECT_NE(base, variant([](ItemInfo& i) { i.size = 101; }));
  EXPECT_NE(base, variant([](ItemInfo& i) { i.fileCount = 4; }));
  EXPECT_NE(base, variant([](ItemInfo& i) { i.manifestDigest = seeded(2); }));
}

}  // namespace
}  // namespace shoal::codec
