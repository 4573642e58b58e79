// The scripted peer of the reference peer's wire tests (peer/test/runtime/wire-test.c++), as a
// thin face over the conformance engine: one Connection to a runtime on loopback, TLS with a key of
// the test's choosing or plaintext, every frame and close delivered to the test (no background
// duties), nothing judged — the wire tests assert themselves.
#pragma once

#include <kj/async-io.h>
#include <kj/debug.h>
#include <shoal/codec/validate.h>
#include <shoal/conformance/connection.h>
#include <shoal/conformance/frames.h>

namespace shoal::peer::test {

struct Closed {
  kj::String why;  // "eof" for a clean end, else how it ended
};
struct TimedOut {};
using Received = kj::OneOf<codec::InboundFrame, Closed, TimedOut>;

class ScriptedPeer {
 public:
  static kj::Own<ScriptedPeer> connect(kj::AsyncIoContext& io, kj::StringPtr address,
                                       kj::Maybe<const Identity&> identity) {
    auto& ws = io.waitScope;
    auto stream = io.provider->getNetwork().parseAddress(address).wait(ws)->connect().wait(ws);
    kj::Own<conformance::Channel> channel;
    KJ_IF_MAYBE (id, identity) {
      auto result = conformance::tlsConnect(kj::mv(stream), *id, {}).wait(ws);
      KJ_IF_MAYBE (refused, result.tryGet<conformance::TlsRefused>()) {
        KJ_FAIL_ASSERT("TLS handshake refused", refused->reason);
      }
      channel = kj::mv(result.get<kj::Own<conformance::Channel>>());
    } else {
      channel = conformance::plaintextChannel(kj::mv(stream));
    }
    return kj::heap<ScriptedPeer>(io, kj::mv(channel));
  }

  ScriptedPeer(kj::AsyncIoContext& io, kj::Own<conformance::Channel> channel)
      : io(io),
        transcript(io.provider->getTimer().now()),
        context{io.provider->getTimer(), transcript,
                [](conformance::Violation) {
                }},
        connection(context, 1, conformance::Role::responder, kj::mv(channel), {}) {
    connection.answerPings(false);
    connection.setSource(nullptr);
  }

  void send(kj::Own<capnp::MessageBuilder> frame) { connection.send(kj::mv(frame)); }

  void sendRaw(kj::ArrayPtr<const kj::byte> bytes) {
    connection.sendBytes(bytes, "raw bytes");
    connection.flushed().wait(io.waitScope);
  }

  // The next thing received within `timeout`.
  Received next(kj::Duration timeout = 10 * kj::SECONDS) {
    auto got = connection.next(timeout).wait(io.waitScope);
    KJ_IF_MAYBE (event, got) {
      KJ_SWITCH_ONEOF(*event) {
        KJ_CASE_ONEOF(f, conformance::FrameEvent) {
          return kj::mv(f.frame);
        }
        KJ_CASE_ONEOF(b, conformance::BadBytes) {
          return Closed{kj::str("invalid frame: ", b.failure.message)};
        }
        KJ_CASE_ONEOF(c, conformance::Closed) {
          return Closed{c.clean(connection.isTls()) ? kj::str("eof")
                                                    : c.describe(connection.isTls())};
        }
      }
    }
    return TimedOut();
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

 private:
  kj::AsyncIoContext& io;
  conformance::Transcript transcript;
  conformance::ConnectionContext context;
  conformance::Connection connection;
};

inline codec::FrameBuilder helloFrame(const PeerId& id, uint64_t instanceId = 4242,
                                      uint16_t versionMin = 1, uint16_t versionMax = 1,
                                      uint32_t maxFrameBytes = 16 << 20) {
  conformance::Announce a;
  a.peerId = id;
  a.instanceId = instanceId;
  a.versionMin = versionMin;
  a.versionMax = versionMax;
  a.name = "scripted";
  a.maxFrameBytes = maxFrameBytes;
  return conformance::helloFrame(a);
}

using conformance::getChunkFrame;
using conformance::getLibraryFrame;
using conformance::getManifestFrame;

}  // namespace shoal::peer::test
