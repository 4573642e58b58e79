// The library scan on a real folder (docs/benchmarks.md): the first scan (empty index cache, every
// file hashed on `--threads` threads, 0 = every core) and a rescan of the unchanged library with
// the cache the first scan filled (nothing hashed: a walk and a stat per file). Prints one JSON
// object: files, bytes, and the time of each, one sample per round.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <kj/debug.h>
#include <kj/time.h>
#include <kj/vector.h>
#include <shoal/peer/library/scanner.h>

namespace shoal::peer::library {
namespace {

double secondsSince(kj::TimePoint start) {
  return double((kj::systemPreciseMonotonicClock().now() - start) / kj::NANOSECONDS) / 1e9;
}

int run(kj::StringPtr dir, uint32_t threads, uint32_t rounds) {
  ScanOptions options;
  options.hashThreads = threads;
  options.racyWindowNs = 0;  // files generated just before the benchmark may be cached
  kj::Vector<double> first, again;
  uint64_t files = 0, bytes = 0, items = 0;
  for (uint32_t r = 0; r < rounds; ++r) {
    IndexCache cache;
    auto start = kj::systemPreciseMonotonicClock().now();
    auto a = scanLibrary(dir, cache, options);
    first.add(secondsSince(start));
    KJ_REQUIRE(a.complete && a.skipped.size() == 0, "the scan left something out",
               kj::strArray(a.skipped, "; "));
    files = a.stats.filesHashed;
    bytes = a.stats.bytesHashed;
    items = a.items.size();
    start = kj::systemPreciseMonotonicClock().now();
    auto b = scanLibrary(dir, cache, options);
    again.add(secondsSince(start));
    KJ_REQUIRE(b.stats.filesHashed == 0 && b.stats.cacheHits == files, "the rescan hashed");
  }
  auto list = [](kj::Vector<double>& v, double scale) {
    kj::Vector<kj::String> parts;
    for (auto x : v)
      parts.add(kj::str(x * scale));
    return kj::strArray(parts, ", ");
  };
  printf(
      "{\"items\": %llu, \"files\": %llu, \"bytes\": %llu, \"threads\": %u, "
      "\"first_scan_s\": [%s], \"rescan_ms\": [%s]}\n",
      (unsigned long long)items, (unsigned long long)files, (unsigned long long)bytes, threads,
      list(first, 1).cStr(), list(again, 1e3).cStr());
  return 0;
}

}  // namespace
}  // namespace shoal::peer::library

int main(int argc, char** argv) {
  uint32_t threads = 0, rounds = 3;
  const char* dir = nullptr;
  for (int i = 1; i < argc; ++i) {
    if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc) {
      threads = uint32_t(atoi(argv[++i]));
    } else if (strcmp(argv[i], "--rounds") == 0 && i + 1 < argc) {
      rounds = uint32_t(atoi(argv[++i]));
    } else if (argv[i][0] != '-' && dir == nullptr) {
      dir = argv[i];
    } else {
      dir = nullptr;
      break;
    }
  }
  if (dir == nullptr || rounds == 0) {
    fprintf(stderr, "usage: %s LIBRARY [--threads N (0: every core)] [--rounds N]\n", argv[0]);
    return 2;
  }
  KJ_IF_MAYBE (e, kj::runCatchingExceptions(
                      [&]() { shoal::peer::library::run(dir, threads, rounds); })) {
    fprintf(stderr, "%s\n", e->getDescription().cStr());
    return 1;
  }
  return 0;
}
