// The protocol's own cost on the wire, with nothing after it (docs/benchmarks.md): a client that
// fetches one item's manifest from a running `shoal serve --plaintext`, then pulls every chunk with
// a fixed window of pipelined GetChunk requests and drops the bytes — no hashing, no writing. Set
// beside a raw TCP copy into a sink of the same size, it measures framing, request handling and the
// event loops on both ends.
//   shoal-bench-sink ADDRESS ITEM [WINDOW]
// Output: one JSON object, {"bytes", "chunks", "seconds"}, the clock running from the first
// GetChunk to the last Chunk.
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include <kj/async-io.h>
#include <kj/debug.h>
#include <kj/main.h>
#include <shoal/codec/frames.h>
#include <shoal/codec/manifest.h>
#include <shoal/peer/library/library.h>
#include <shoal/peer/session/session.h>
#include <shoal/peer/transport/identity.h>

namespace shoal::peer {
namespace {

class Sink final : public SessionHandler {
 public:
  Sink(kj::AsyncIoContext& io, kj::StringPtr item, uint32_t window)
      : io(io), item(kj::str(item)), window(window), assembler(item), tasks(errors) {
    library.update(nullptr);
  }

  kj::Promise<void> run(kj::StringPtr address) {
    auto& timer = io.provider->getTimer();
    auto started = timer.now();
    return io.provider->getNetwork()
        .parseAddress(address)
        .then([](kj::Own<kj::NetworkAddress> a) { return a->connect(); })
        .then([this, &timer, started](kj::Own<kj::AsyncIoStream> stream) {
          LocalPeer local{identity->id(), kj::str("sink"), nullptr, library.summary(), 1};
          session = kj::heap<Session>(plaintextTransport(kj::mv(stream)), Role::initiator, config,
                                      kj::mv(local), timer, *this, started, 1);
          tasks.add(session->run());
          auto paf = kj::newPromiseAndFulfiller<void>();
          done = kj::mv(paf.fulfiller);
          return kj::mv(paf.promise);
        });
  }

  uint64_t bytes = 0, chunks = 0;
  kj::TimePoint firstRequest = kj::origin<kj::TimePoint>(), lastAnswer = firstRequest;

 private:
  struct Errors final : public kj::TaskSet::ErrorHandler {
    explicit Errors(Sink& sink) : sink(sink) {}
    Sink& sink;
    void taskFailed(kj::Exception&& e) override {
      KJ_IF_MAYBE (f, sink.done) {
        (*f)->reject(kj::mv(e));
      }
    }
  };

  void onEstablished(Session&) override {
    auto frame = codec::newFrame(32);
    codec::rootOf(*frame).initGetManifest().setItemId(item);
    tasks.add(
        session
            ->request(kj::mv(frame), kj::Function<void(const codec::InboundFrame&)>(
                                         [this](const codec::InboundFrame& page) { feed(page); }))
            .then([this](Reply reply) {
              feed(answer(kj::mv(reply), "GetManifest"));
              KJ_REQUIRE(assembler.isComplete(), "the manifest's last page is missing");
              manifest = assembler.take();
              firstRequest = io.provider->getTimer().now();
              pump();
            }));
  }

  void feed(const codec::InboundFrame& page) {
    KJ_REQUIRE(page.root().isManifest(), "not a Manifest page");
    KJ_IF_MAYBE (failure, assembler.feed(page.root().getManifest())) {
      KJ_FAIL_REQUIRE("bad manifest", failure->message);
    }
  }

  static codec::InboundFrame answer(Reply reply, kj::StringPtr what) {
    KJ_IF_MAYBE (error, reply.tryGet<RequestError>()) {
      KJ_FAIL_REQUIRE("request failed", what, error->message);
    }
    return kj::mv(reply.get<codec::InboundFrame>());
  }

  // Keeps `window` GetChunk requests outstanding, file by file, chunk by chunk.
  void pump() {
    while (inFlight < window && file < manifest.files.size()) {
      if (chunk == manifest.chunkRange(file).count) {
        ++file;
        chunk = 0;
        continue;
      }
      auto length = manifest.chunkLength(file, chunk);
      auto frame = codec::newFrame(32);
      auto request = codec::rootOf(*frame).initGetChunk();
      request.setItemId(item);
      request.setManifestDigest(manifest.digest.asBytes());
      request.setFileIndex(file);
      request.setOffset(manifest.chunkOffset(chunk));
      request.setLength(length);
      ++chunk;
      ++inFlight;
      tasks.add(session->request(kj::mv(frame)).then([this, length](Reply reply) {
        auto frame = answer(kj::mv(reply), "GetChunk");
        KJ_REQUIRE(frame.root().isChunk() && frame.root().getChunk().getData().size() == length,
                   "not the chunk asked for");
        bytes += length;
        ++chunks;
        --inFlight;
        pump();
      }));
    }
    if (inFlight == 0 && file == manifest.files.size()) {
      lastAnswer = io.provider->getTimer().now();
      KJ_IF_MAYBE (f, done) {
        (*f)->fulfill();
      }
    }
  }

  kj::Maybe<Rejection> onHello(Session&, const RemotePeer&) override { return nullptr; }
  // The source may ask for our (empty) library.
  kj::Promise<kj::Array<codec::FrameBuilder>> serve(Session& session, uint64_t id,
                                                    codec::InboundFrame request) override {
    auto root = request.root();
    KJ_REQUIRE(root.isGetLibrary(), "the sink serves only its (empty) library");
    auto frameLimit = KJ_ASSERT_NONNULL(session.remote()).maxFrameBytes;
    auto answer =
        library.answer(root.getGetLibrary().getSinceEpoch(), root.getGetLibrary().getSinceRev());
    return KJ_MAP(p, library::libraryPages(id, answer, frameLimit))->codec::FrameBuilder {
      return kj::mv(p);
    };
  }
  void onLibraryChanged(Session&, const codec::Summary&) override {}
  void onGoodbye(Session&, const event::GoodbyeReceived&) override {}
  void onWriterDone(Session&) override {}
  void onClosed(Session&, const event::Closed& closed) override {
    KJ_IF_MAYBE (f, done) {
      (*f)->reject(KJ_EXCEPTION(DISCONNECTED, "the session closed", closed.detail));
    }
  }

  kj::AsyncIoContext& io;
  kj::String item;
  uint32_t window;
  kj::Own<Identity> identity = Identity::generate();
  SessionConfig config;
  library::Library library{1};
  codec::ManifestAssembler assembler;
  codec::Manifest manifest;
  uint32_t file = 0;
  uint64_t chunk = 0;  // next chunk of `file`
  uint32_t inFlight = 0;
  kj::Maybe<kj::Own<kj::PromiseFulfiller<void>>> done;
  Errors errors{*this};
  kj::Own<Session> session;
  kj::TaskSet tasks;  // last: cancelled before the session goes
};

int run(kj::StringPtr address, kj::StringPtr item, uint32_t window) {
  auto io = kj::setupAsyncIo();
  Sink sink(io, item, window);
  sink.run(address).wait(io.waitScope);
  double seconds = double((sink.lastAnswer - sink.firstRequest) / kj::NANOSECONDS) / 1e9;
  printf("{\"bytes\": %llu, \"chunks\": %llu, \"seconds\": %.6f}\n", (unsigned long long)sink.bytes,
         (unsigned long long)sink.chunks, seconds);
  return 0;
}

}  // namespace
}  // namespace shoal::peer

int main(int argc, char** argv) {
  kj::TopLevelProcessContext context(argv[0]);
  if (argc != 3 && argc != 4) {
    fprintf(stderr, "usage: %s ADDRESS ITEM [WINDOW]\n", argv[0]);
    return 2;
  }
  uint32_t window = argc == 4 ? uint32_t(strtoul(argv[3], nullptr, 10)) : 8;
  if (window == 0 || window > 64) {
    fprintf(stderr, "WINDOW must be 1..64\n");
    return 2;
  }
  int status = 1;
  KJ_IF_MAYBE (e, kj::runCatchingExceptions(
                      [&]() { status = shoal::peer::run(argv[1], argv[2], window); })) {
    fprintf(stderr, "%s\n", e->getDescription().cStr());
    return 1;
  }
  return status;
}
