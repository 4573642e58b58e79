// TLS bulk through shoal's transport alone: TlsContext over loopback TCP, one side writing 1 MiB
// gather writes shaped like FrameWriter's (an 8-byte segment table, then the segment), the other
// reading them with large reads, both ends on one thread — beside the same bytes over plaintext
// loopback TCP (the kernel's share). CPU time per byte is the figure to compare: on a shared
// machine it moves far less than the wall clock. docs/benchmarks.md, "TLS and handshake: where
// the time goes", has the figures and the commands.
#include <benchmark/benchmark.h>

#include <kj/async-io.h>
#include <kj/debug.h>
#include <shoal/peer/transport/tls.h>

namespace shoal::peer {
namespace {

constexpr size_t kWriteBytes = size_t(1) << 20;
constexpr size_t kReadBytes = size_t(1) << 20;
constexpr size_t kWritesPerIteration = 64;  // 64 MiB per iteration

kj::Promise<void> writeAll(kj::AsyncOutputStream& out, kj::ArrayPtr<const kj::byte> table,
                           kj::ArrayPtr<const kj::byte> body, size_t left) {
  if (left == 0) return kj::READY_NOW;
  auto pieces = kj::heapArray<kj::ArrayPtr<const kj::byte>>({table, body});
  auto ptr = pieces.asPtr();
  return out.write(ptr).attach(kj::mv(pieces)).then([&out, table, body, left]() {
    return writeAll(out, table, body, left - 1);
  });
}

kj::Promise<void> readAll(kj::AsyncInputStream& in, kj::ArrayPtr<kj::byte> buffer, size_t left) {
  if (left == 0) return kj::READY_NOW;
  return in.tryRead(buffer.begin(), 1, kj::min(buffer.size(), left))
      .then([&in, buffer, left](size_t n) {
        KJ_ASSERT(n > 0, "premature end of stream");
        return readAll(in, buffer, left - n);
      });
}

void stream(benchmark::State& state) {
  bool tls = state.range(0) == 1;
  auto io = kj::setupAsyncIo();
  auto& ws = io.waitScope;
  auto& network = io.provider->getNetwork();
  auto alice = Identity::generate();
  auto bob = Identity::generate();
  TlsOptions options;
  if (state.range(1) > 0) options.writeBatchBytes = size_t(state.range(1)) << 10;
  if (state.range(2) > 0) options.readBufferBytes = size_t(state.range(2)) << 10;
  TlsContext aliceTls(*alice, options), bobTls(*bob, options);
  auto listener = network.parseAddress("127.0.0.1", 0).wait(ws)->listen();
  auto address = network.parseAddress("127.0.0.1", listener->getPort()).wait(ws);
  auto accepted = listener->accept();
  auto dialled = address->connect().wait(ws);
  auto server = accepted.wait(ws);
  kj::Own<Transport> sender, receiver;
  if (tls) {
    auto client = aliceTls.connect(kj::mv(dialled));
    auto secured = bobTls.accept(kj::mv(server));
    sender = client.wait(ws);
    receiver = secured.wait(ws);
  } else {
    sender = plaintextTransport(kj::mv(dialled));
    receiver = plaintextTransport(kj::mv(server));
  }
  kj::byte table[8] = {0, 0, 0, 0, 0, 0, 2, 0};
  auto body = kj::heapArray<kj::byte>(kWriteBytes);
  for (size_t i = 0; i < body.size(); ++i)
    body[i] = kj::byte(i * 131);
  auto buffer = kj::heapArray<kj::byte>(kReadBytes);
  size_t bytes = kWritesPerIteration * (sizeof(table) + body.size());
  for (auto _ : state) {
    auto written = writeAll(sender->stream(), table, body, kWritesPerIteration);
    readAll(receiver->stream(), buffer, bytes).wait(ws);
    written.wait(ws);
  }
  state.SetBytesProcessed(int64_t(state.iterations() * bytes));
  state.SetLabel(tls ? "tls1.3 (TlsContext), loopback" : "plaintext, loopback");
}

// CPU: the whole process (both ends, the kernel's TCP work included).
// Args: TLS (0/1), TlsOptions::writeBatchBytes and readBufferBytes in KiB (0: the default).
BENCHMARK(stream)
    ->Args({0, 0, 0})
    ->Args({1, 0, 0})
    ->Args({1, 512, 0})
    ->Args({1, 256, 0})
    ->Args({1, 128, 0})
    ->Args({1, 64, 0})
    ->Args({1, 0, 64})
    ->Args({1, 256, 64})
    ->MeasureProcessCPUTime()
    ->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace shoal::peer

BENCHMARK_MAIN();
