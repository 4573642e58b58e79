// A large library on the wire: a Library of N items (default 100,000) answers GetLibrary{0, 0}
// with a snapshot and, after one item changes, GetLibrary{epoch, rev - 1} with a delta; a
// LibraryView applies both from decoded frames, as a receiving session does. Prints one JSON
// object: bytes on the wire (frames, segment tables included), pages, and the median time of each
// step. No disk, no network: what the library layer itself costs.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <algorithm>

#include <kj/debug.h>
#include <kj/time.h>
#include <kj/vector.h>
#include <shoal/codec/frame.h>
#include <shoal/peer/library/library-view.h>
#include <shoal/peer/library/library.h>

namespace shoal::peer::library {
namespace {

// An item of one 3-chunk file whose digests depend on (index, version) only.
kj::Own<const Item> makeItem(uint32_t index, uint64_t version) {
  auto id = kj::str("item-", kj::hex(index + 0x100000u));
  auto files = kj::heapArrayBuilder<codec::FileInfo>(1);
  files.add(codec::FileInfo{kj::str("data.bin"), 3 * 4096 + version, 0644});
  auto chunks = kj::heapArrayBuilder<codec::Digest>(4);
  for (uint64_t c = 0; c < codec::chunkCountFor(3 * 4096 + version, 4096); ++c) {
    auto seed = kj::str(index, '/', version, '/', c);
    chunks.add(codec::sha256(seed.asBytes()));
  }
  return newItem(codec::makeManifest(kj::mv(id), 4096, files.finish(), chunks.finish()),
                 kj::heapArray<FileStat>(1));
}

kj::Array<kj::Own<const Item>> makeLibrary(uint32_t count, uint32_t changed, uint64_t version) {
  auto items = kj::heapArrayBuilder<kj::Own<const Item>>(count);
  for (uint32_t i = 0; i < count; ++i)
    items.add(makeItem(i, i == changed ? version : 0));
  return items.finish();
}

double msSince(kj::TimePoint start) {
  return double((kj::systemPreciseMonotonicClock().now() - start) / kj::NANOSECONDS) / 1e6;
}

double median(kj::Vector<double>& v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

struct Wire {
  kj::Vector<kj::Array<kj::byte>> frames;
  size_t bytes = 0;
};

// The answer's pages, encoded as they go on the wire.
Wire encode(const LibraryAnswer& answer) {
  Wire wire;
  for (auto& page : libraryPages(1, answer, codec::Limits().maxFrameBytes)) {
    auto bytes = codec::encodeFrame(*page);
    wire.bytes += bytes.size();
    wire.frames.add(kj::mv(bytes));
  }
  return wire;
}

// Decodes and applies every page; the outcome of the last.
ViewOutcome apply(LibraryView& view, const Wire& wire) {
  ViewOutcome outcome = ViewOutcome::protocolError;
  for (auto& bytes : wire.frames) {
    auto decoded = codec::decodeFrame(bytes);
    auto& frame = KJ_ASSERT_NONNULL(decoded.tryGet<codec::InboundFrame>(), "frame refused");
    auto root = frame.root();
    outcome = root.isLibrarySnapshot() ? view.onSnapshotPage(root.getLibrarySnapshot()).outcome
                                       : view.onDeltaPage(root.getLibraryDelta()).outcome;
  }
  return outcome;
}

void run(uint32_t count, uint32_t rounds) {
  kj::Vector<double> buildMs, snapshotEncodeMs, snapshotApplyMs, updateMs, deltaEncodeMs,
      deltaApplyMs;
  size_t snapshotBytes = 0, snapshotPages = 0, deltaBytes = 0, deltaPages = 0;
  for (uint32_t round = 0; round < rounds; ++round) {
    auto start = kj::systemPreciseMonotonicClock().now();
    Library library(7);
    library.update(makeLibrary(count, count, 0));
    buildMs.add(msSince(start));

    start = kj::systemPreciseMonotonicClock().now();
    auto snapshot = encode(library.answer(0, 0));
    snapshotEncodeMs.add(msSince(start));
    snapshotBytes = snapshot.bytes;
    snapshotPages = snapshot.frames.size();

    LibraryView view;
    start = kj::systemPreciseMonotonicClock().now();
    KJ_ASSERT(apply(view, snapshot) == ViewOutcome::applied);
    snapshotApplyMs.add(msSince(start));

    auto since = view.request();
    auto next = makeLibrary(count, count / 2, round + 1);
    start = kj::systemPreciseMonotonicClock().now();
    KJ_ASSERT(library.update(kj::mv(next)));
    updateMs.add(msSince(start));

    start = kj::systemPreciseMonotonicClock().now();
    auto answer = library.answer(since.epoch, since.rev);
    KJ_ASSERT(answer.kind == LibraryAnswer::Kind::delta);
    auto delta = encode(answer);
    deltaEncodeMs.add(msSince(start));
    deltaBytes = delta.bytes;
    deltaPages = delta.frames.size();

    start = kj::systemPreciseMonotonicClock().now();
    KJ_ASSERT(apply(view, delta) == ViewOutcome::applied);
    deltaApplyMs.add(msSince(start));
    KJ_ASSERT(KJ_ASSERT_NONNULL(view.summary()) == library.summary());
  }
  printf(
      "{\"items\": %u, \"rounds\": %u, \"snapshot_bytes\": %zu, \"snapshot_pages\": %zu, "
      "\"delta_bytes\": %zu, \"delta_pages\": %zu, \"scan_result_to_library_ms\": %.2f, "
      "\"snapshot_encode_ms\": %.2f, \"snapshot_apply_ms\": %.2f, \"update_ms\": %.2f, "
      "\"delta_encode_ms\": %.3f, \"delta_apply_ms\": %.2f}\n",
      count, rounds, snapshotBytes, snapshotPages, deltaBytes, deltaPages, median(buildMs),
      median(snapshotEncodeMs), median(snapshotApplyMs), median(updateMs), median(deltaEncodeMs),
      median(deltaApplyMs));
}

}  // namespace
}  // namespace shoal::peer::library

int main(int argc, char** argv) {
  uint32_t items = 100000, rounds = 3;
  for (int i = 1; i < argc; ++i) {
    if (strcmp(argv[i], "--items") == 0 && i + 1 < argc) {
      items = uint32_t(atoi(argv[++i]));
    } else if (strcmp(argv[i], "--rounds") == 0 && i + 1 < argc) {
      rounds = uint32_t(atoi(argv[++i]));
    } else {
      fprintf(stderr, "usage: %s [--items N] [--rounds N]\n", argv[0]);
      return 2;
    }
  }
  if (items < 2 || rounds < 1) {
    fprintf(stderr, "need at least 2 items and 1 round\n");
    return 2;
  }
  shoal::peer::library::run(items, rounds);
  return 0;
}
