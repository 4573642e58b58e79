// A hand-driven peer for wire tests: it connects over TLS with a key of its choosing (or in
// plaintext), sends exactly the frames or bytes a test gives it, and collects what comes back
// through a read loop that is never cancelled, so a timeout never loses half a frame.
#pragma once

#include <kj/async-io.h>
#include <kj/debug.h>
#include <shoal/codec/frame-reader.h>
#include <shoal/codec/frame-writer.h>
#include <shoal/codec/frames.h>
#include <shoal/codec/validate.h>
#include <shoal/peer/transport/tls.h>

namespace shoal::peer::test {

struct Closed {
  kj::String why;  // "eof" for a clean end, else the error
};
struct TimedOut {};
using Received = kj::OneOf<codec::InboundFrame, Closed, TimedOut>;

class ScriptedPeer {
 public:
  static kj::Own<ScriptedPeer> connect(kj::AsyncIoContext& io, kj::StringPtr address,
                                       kj::Maybe<const Identity&> identity) {
    auto& ws = io.waitScope;
    auto stream = io.provider->getNetwork().parseAddress(address).wait(ws)->connect().wait(ws);
    kj::Own<Transport> transport;
    KJ_IF_MAYBE (id, identity) {
      TlsContext tls(*id);
      transport = tls.connect(kj::mv(stream)).wait(ws);
    } else {
      transport = plaintextTransport(kj::mv(stream));
    }
    return kj::heap<ScriptedPeer>(io, kj::mv(transport));
  }

  ScriptedPeer(kj::AsyncIoContext& io, kj::Own<Transport> transport)
      : io(io),
        transport(kj::mv(transport)),
        reader(this->transport->stream(), codec::Limits()),
        writer(this->transport->stream(), 16 << 20),
        writing(writer.run().eagerlyEvaluate([](kj::Exception&&) {})),
        reading(readLoop().eagerlyEvaluate(nullptr)) {}

  void send(kj::Own<capnp::MessageBuilder> frame) {
    KJ_ASSERT(writer.queue(kj::mv(frame)) == nullptr);
  }

  void sendRaw(kj::ArrayPtr<const kj::byte> bytes) {
    transport->stream().write(bytes.begin(), bytes.size()).wait(io.waitScope);
  }

  // The next thing received within `timeout`.
  Received next(kj::Duration timeout = 10 * kj::SECONDS) {
    if (head == queue.size()) {
      auto paf = kj::newPromiseAndFulfiller<void>();
      arrived = kj::mv(paf.fulfiller);
      auto got = io.provider->getTimer()
                     .timeoutAfter(timeout, kj::mv(paf.promise))
                     .then([]() { return true; }, [](kj::Exception&&) { return false; })
                     .wait(io.waitScope);
      arrived = nullptr;
      if (!got) return TimedOut();
    }
    return kj::mv(queue[head++]);
  }

  // The next frame, failing the test if it is anything else.
  codec::InboundFrame frame(kj::Duration timeout = 10 * kj::SECONDS) {
    auto r = next(timeout);
    KJ_IF_MAYBE (f, r.tryGet<codec::InboundFrame>()) {
      return kj::mv(*f);
    }
    KJ_IF_MAYBE (c, r.tryGet<Closed>()) {
      KJ_FAIL_ASSERT("closed instead of a frame", c->why);
    }
    KJ_FAIL_ASSERT("no frame in time");
  }

  // True when the connection ends (after any frames) within `timeout`.
  bool closes(kj::Duration timeout = 10 * kj::SECONDS) {
    for (;;) {
      auto r = next(timeout);
      if (r.is<Closed>()) return true;
      if (r.is<TimedOut>()) return false;
    }
  }

  kj::Vector<Received> queue;
  size_t head = 0;

 private:
  kj::AsyncIoContext& io;
  kj::Own<Transport> transport;
  codec::FrameReader reader;
  codec::FrameWriter writer;
  kj::Promise<void> writing;
  kj::Maybe<kj::Own<kj::PromiseFulfiller<void>>> arrived;
  kj::Promise<void> reading;

  void push(Received item) {
    queue.add(kj::mv(item));
    KJ_IF_MAYBE (a, arrived) {
      (*a)->fulfill();
      arrived = nullptr;
    }
  }

  kj::Promise<void> readLoop() {
    return reader.read().then(
        [this](codec::ReadResult r) -> kj::Promise<void> {
          KJ_SWITCH_ONEOF(r) {
            KJ_CASE_ONEOF(frame, codec::InboundFrame) {
              push(kj::mv(frame));
              return readLoop();
            }
            KJ_CASE_ONEOF(end, codec::EndOfStream) {
              push(Closed{kj::str("eof")});
            }
            KJ_CASE_ONEOF(failure, codec::Failure) {
              push(Closed{kj::mv(failure.message)});
            }
          }
          return kj::READY_NOW;
        },
        [this](kj::Exception&& e) { push(Closed{kj::str(e.getDescription())}); });
  }
};

inline codec::FrameBuilder helloFrame(const PeerId& id, uint64_t instanceId = 4242,
                                      uint16_t versionMin = 1, uint16_t versionMax = 1,
                                      uint32_t maxFrameBytes = 16 << 20) {
  auto frame = codec::newFrame();
  auto h = codec::rootOf(*frame).initHello();
  h.setVersionMin(versionMin);
  h.setVersionMax(versionMax);
  h.setPeerId(id.asBytes());
  h.setName("scripted");
  auto summary = h.initLibrary();
  summary.setEpoch(1);
  summary.setRev(1);
  summary.setDigest(codec::libraryDigest(nullptr).asBytes());
  auto limits = h.initLimits();
  limits.setMaxFrameBytes(maxFrameBytes);
  limits.setMaxInFlight(64);
  // As large as the frames allow ([FR-19]).
  limits.setMaxChunkBytes(kj::min(uint32_t(4) << 20, maxFrameBytes - codec::kFrameOverheadBytes));
  h.setInstanceId(instanceId);
  return frame;
}

inline codec::FrameBuilder getManifestFrame(uint64_t id, kj::StringPtr itemId) {
  auto frame = codec::newFrame();
  auto g = codec::rootOf(*frame).initGetManifest();
  g.setId(id);
  g.setItemId(itemId);
  return frame;
}

inline codec::FrameBuilder getChunkFrame(uint64_t id, kj::StringPtr itemId,
                                         const codec::Digest& digest, uint32_t file,
                                         uint64_t offset, uint32_t length) {
  auto frame = codec::newFrame();
  auto g = codec::rootOf(*frame).initGetChunk();
  g.setId(id);
  g.setItemId(itemId);
  g.setManifestDigest(digest.asBytes());
  g.setFileIndex(file);
  g.setOffset(offset);
  g.setLength(length);
  return frame;
}

inline codec::FrameBuilder getLibraryFrame(uint64_t id) {
  auto frame = codec::newFrame();
  codec::rootOf(*frame).initGetLibrary().setId(id);
  return frame;
}

}  // namespace shoal::peer::test
