// The download's disk side: how fast ChunkWriter verifies (SHA-256) and writes (pwrite) 1 MiB
// chunks into a preallocated partial file on tmpfs, with one and two writer threads. Baselines in
// the same run: SHA-256 alone and pwrite alone, one thread each, on the same chunks.
//
//   build/release/bench/shoal-bench-writer --benchmark_min_time=2
#include <benchmark/benchmark.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <kj/async-io.h>
#include <kj/debug.h>
#include <shoal/peer/download/chunk-writer.h>
#include <shoal/peer/download/partial-item.h>
#include <shoal/peer/library/beneath.h>

using namespace shoal;
using namespace shoal::peer::download;

namespace {

constexpr uint32_t kChunk = 1 << 20;
constexpr uint32_t kChunks = 256;  // 256 MiB per pass

// A 256 MiB item, its manifest, and a prepared partial folder on /dev/shm (tmpfs).
struct World {
  kj::Array<kj::byte> content = kj::heapArray<kj::byte>(uint64_t(kChunk) * kChunks);
  codec::Manifest manifest;
  kj::String base;
  kj::AutoCloseFd library, state;
  kj::Own<PartialItem> partial;

  World() {
    uint64_t x = 0x9e3779b97f4a7c15ull;
    for (auto& b : content) {
      x ^= x << 13, x ^= x >> 7, x ^= x << 17;
      b = kj::byte(x);
    }
    kj::Vector<codec::Digest> chunks;
    for (uint32_t c = 0; c < kChunks; ++c)
      chunks.add(codec::sha256(chunk(c)));
    auto files = kj::heapArray<codec::FileInfo>(1);
    files[0] = codec::FileInfo{kj::str("data.bin"), content.size(), 0644};
    manifest =
        codec::makeManifest(kj::str("bench"), kChunk, kj::mv(files), chunks.releaseAsArray());
    char name[] = "/dev/shm/shoal-bench-writer-XXXXXX";
    KJ_ASSERT(mkdtemp(name) != nullptr);
    base = kj::str(name);
    KJ_SYSCALL(mkdir(kj::str(base, "/library").cStr(), 0700));
    KJ_SYSCALL(mkdir(kj::str(base, "/library/.shoal").cStr(), 0700));
    library = open(kj::str(base, "/library"));
    state = open(kj::str(base, "/library/.shoal"));
    auto libraryDir = kj::str(base, "/library"), stateDir = kj::str(base, "/library/.shoal");
    auto prepared = PartialItem::prepare(Folders{state, stateDir, library, libraryDir}, manifest);
    partial = kj::mv(prepared.get<kj::Own<PartialItem>>());
  }
  ~World() noexcept(false) {
    partial = nullptr;
    (void)peer::library::removeBeneath(AT_FDCWD, base);
  }
  static kj::AutoCloseFd open(kj::StringPtr path) {
    int fd = ::open(path.cStr(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    KJ_ASSERT(fd >= 0, path);
    return kj::AutoCloseFd(fd);
  }
  kj::ArrayPtr<const kj::byte> chunk(uint32_t c) const {
    return content.slice(uint64_t(c) * kChunk, uint64_t(c + 1) * kChunk);
  }
};

World& world() {
  static World w;
  return w;
}

// Every chunk through a ChunkWriter of state.range(0) threads, at most 64 queued, as the driver
// submits them: verify, then write.
void verifyAndWrite(benchmark::State& state) {
  auto& w = world();
  auto io = kj::setupAsyncIo();
  ChunkWriter writer(uint32_t(state.range(0)), 64);
  for (auto _ : state) {
    uint32_t next = 0;
    auto submit = [&]() {
      uint32_t c = next++;
      return writer
          .run<kj::OneOf<PartialItem::Verdict, DiskFailure>>([&w, c]() {
            return w.partial->writeChunk({c, 0, uint64_t(c) * kChunk}, w.chunk(c));
          })
          .then([](auto result) {
            KJ_ASSERT(KJ_ASSERT_NONNULL(result).template get<PartialItem::Verdict>() ==
                      PartialItem::Verdict::written);
          });
    };
    // 32 in flight: enough to keep both threads fed, as the scheduler's budget would.
    kj::Vector<kj::Promise<void>> inFlight;
    while (next < kChunks) {
      while (next < kChunks && inFlight.size() < 32)
        inFlight.add(submit());
      kj::joinPromises(inFlight.releaseAsArray()).wait(io.waitScope);
    }
  }
  state.SetBytesProcessed(int64_t(state.iterations()) * kChunk * kChunks);
}
BENCHMARK(verifyAndWrite)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();

void sha256Only(benchmark::State& state) {
  auto& w = world();
  for (auto _ : state) {
    for (uint32_t c = 0; c < kChunks; ++c)
      benchmark::DoNotOptimize(codec::sha256(w.chunk(c)));
  }
  state.SetBytesProcessed(int64_t(state.iterations()) * kChunk * kChunks);
}
BENCHMARK(sha256Only)->Unit(benchmark::kMillisecond)->UseRealTime();

void pwriteOnly(benchmark::State& state) {
  auto& w = world();
  auto path = kj::str(w.partial->itemDir(), "/data.bin");
  int fd = open(path.cStr(), O_WRONLY | O_CLOEXEC);
  KJ_ASSERT(fd >= 0);
  kj::AutoCloseFd owned(fd);
  for (auto _ : state) {
    for (uint32_t c = 0; c < kChunks; ++c) {
      KJ_ASSERT(pwrite(fd, w.chunk(c).begin(), kChunk, off_t(c) * kChunk) == kChunk);
    }
  }
  state.SetBytesProcessed(int64_t(state.iterations()) * kChunk * kChunks);
}
BENCHMARK(pwriteOnly)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
