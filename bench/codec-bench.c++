// Codec microbenchmarks: encode and decode of Ping, Hello, a 1 MiB Chunk and a 10,000-item
// snapshot page, in bytes/s. Baselines in the same run: memcpy of the same bytes (the floor of
// any decoder that copies into aligned memory) and Cap'n Proto's reader without our validation.
#include <benchmark/benchmark.h>
#include <capnp/serialize.h>
#include <shoal/codec/frame.h>
#include <shoal/codec/validate.h>
#include <string.h>

#include "samples.h"

namespace shoal::codec {
namespace {

using Which = wire::Frame::Which;

enum Subject { PING, HELLO, CHUNK_1MIB, SNAPSHOT_10K };
const char* const kSubjectNames[] = {"ping", "hello", "chunk-1MiB", "snapshot-10k"};

// A Chunk answer the way a responder builds one: one segment sized for the data, filled by one
// copy (a responder's read() into initData() does the same amount of work).
kj::Own<capnp::MallocMessageBuilder> chunkFrame() {
  static const auto payload = kj::heapArray<kj::byte>(1024 * 1024);
  auto message = kj::heap<capnp::MallocMessageBuilder>(payload.size() / sizeof(capnp::word) + 16);
  auto chunk = message->initRoot<wire::Frame>().initChunk();
  chunk.setId(7);
  auto data = chunk.initData(payload.size());
  memcpy(data.begin(), payload.begin(), payload.size());
  return message;
}

kj::Own<capnp::MallocMessageBuilder> build(Subject s) {
  switch (s) {
    case PING: return samples::make(Which::PING);
    case HELLO: return samples::make(Which::HELLO);
    case CHUNK_1MIB: return chunkFrame();
    case SNAPSHOT_10K: return samples::snapshot(7, 10000);
  }
  KJ_UNREACHABLE;
}

// Building the message from scratch and serialising it to one flat buffer.
void encode(benchmark::State& state) {
  auto subject = Subject(state.range(0));
  size_t bytes = 0;
  for (auto _ : state) {
    auto message = build(subject);
    auto flat = capnp::messageToFlatArray(*message);
    bytes = flat.asBytes().size();
    benchmark::DoNotOptimize(flat.begin());
  }
  state.SetBytesProcessed(int64_t(state.iterations()) * int64_t(bytes));
  state.SetLabel(kSubjectNames[subject]);
}

// Building the message and preparing the gather write FrameWriter sends: the segment table plus
// the segments in place, no copy.
void encodeGather(benchmark::State& state) {
  auto subject = Subject(state.range(0));
  size_t bytes = 0;
  for (auto _ : state) {
    auto message = build(subject);
    auto segments = message->getSegmentsForOutput();
    auto table = segmentTable(segments);
    bytes = table.asBytes().size();
    for (auto segment : segments)
      bytes += segment.asBytes().size();
    benchmark::DoNotOptimize(table.begin());
  }
  state.SetBytesProcessed(int64_t(state.iterations()) * int64_t(bytes));
  state.SetLabel(kSubjectNames[subject]);
}

// decodeFrame(): segment-table checks, copy into aligned words, full validation.
void decode(benchmark::State& state) {
  auto subject = Subject(state.range(0));
  auto bytes = encodeFrame(*build(subject));
  for (auto _ : state) {
    auto result = decodeFrame(bytes);
    if (!result.is<InboundFrame>()) state.SkipWithError("decode failed");
    benchmark::DoNotOptimize(result);
  }
  state.SetBytesProcessed(int64_t(state.iterations()) * int64_t(bytes.size()));
  state.SetLabel(kSubjectNames[subject]);
}

// Baseline: the same copy into aligned words and Cap'n Proto's own reader, no validation.
void decodeUnvalidated(benchmark::State& state) {
  auto subject = Subject(state.range(0));
  auto bytes = encodeFrame(*build(subject));
  for (auto _ : state) {
    auto words = kj::heapArray<capnp::word>(bytes.size() / sizeof(capnp::word));
    memcpy(words.begin(), bytes.begin(), bytes.size());
    capnp::FlatArrayMessageReader reader(words);
    auto root = reader.getRoot<wire::Frame>();
    benchmark::DoNotOptimize(root.which());
  }
  state.SetBytesProcessed(int64_t(state.iterations()) * int64_t(bytes.size()));
  state.SetLabel(kSubjectNames[subject]);
}

// Baseline: copying the frame's bytes once.
void memcpyBaseline(benchmark::State& state) {
  auto subject = Subject(state.range(0));
  auto bytes = encodeFrame(*build(subject));
  auto target = kj::heapArray<kj::byte>(bytes.size());
  for (auto _ : state) {
    memcpy(target.begin(), bytes.begin(), bytes.size());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(int64_t(state.iterations()) * int64_t(bytes.size()));
  state.SetLabel(kSubjectNames[subject]);
}

// FrameDecoder over a stream of 1,000 back-to-back frames delivered in 64 KiB reads: the path
// FrameReader takes, without the socket.
void streamDecode(benchmark::State& state) {
  auto subject = Subject(state.range(0));
  auto one = encodeFrame(*build(subject));
  size_t count = subject == CHUNK_1MIB || subject == SNAPSHOT_10K ? 16 : 1000;
  auto stream = kj::heapArray<kj::byte>(one.size() * count);
  for (size_t i = 0; i < count; ++i)
    memcpy(stream.begin() + i * one.size(), one.begin(), one.size());
  Limits limits;
  for (auto _ : state) {
    FrameDecoder decoder(limits);
    size_t at = 0, frames = 0;
    while (at < stream.size()) {
      auto space = decoder.writable();
      size_t n = kj::min(kj::min(space.size(), stream.size() - at), size_t(65536));
      memcpy(space.begin(), stream.begin() + at, n);
      decoder.commit(n);
      at += n;
      for (;;) {
        auto r = decoder.next();
        if (r == nullptr) break;
        benchmark::DoNotOptimize(r);
        ++frames;
      }
    }
    if (frames != count) state.SkipWithError("wrong frame count");
  }
  state.SetBytesProcessed(int64_t(state.iterations()) * int64_t(stream.size()));
  state.SetItemsProcessed(int64_t(state.iterations()) * int64_t(count));
  state.SetLabel(kSubjectNames[subject]);
}

#define SUBJECTS ->DenseRange(PING, SNAPSHOT_10K)
BENCHMARK(encode) SUBJECTS;
BENCHMARK(encodeGather) SUBJECTS;
BENCHMARK(decode) SUBJECTS;
BENCHMARK(decodeUnvalidated) SUBJECTS;
BENCHMARK(memcpyBaseline) SUBJECTS;
BENCHMARK(streamDecode) SUBJECTS;

}  // namespace
}  // namespace shoal::codec

BENCHMARK_MAIN();
