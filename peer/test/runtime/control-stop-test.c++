// The control API's stop() through a real control socket: the answer reaches a client that does
// not subscribe to events, even when the shutdown is done before the answer could be written.
#include <capnp/rpc-twoparty.h>
#include <shoal/peer/control/control-server.h>
#include <sys/socket.h>

#include "runtime-fixture.h"

namespace shoal::peer::test {
namespace {

// A client's socket whose reads wait for `gate`: what the server writes stays in the socket
// buffer, so the server's later writes wait for room while the test decides when they get it.
class GatedReads final : public kj::AsyncIoStream {
 public:
  GatedReads(kj::AsyncIoStream& inner, kj::ForkedPromise<void>& gate) : inner(inner), gate(gate) {}

  kj::Promise<size_t> tryRead(void* buffer, size_t minBytes, size_t maxBytes) override {
    return gate.addBranch().then(
        [this, buffer, minBytes, maxBytes]() { return inner.tryRead(buffer, minBytes, maxBytes); });
  }
  kj::Promise<void> write(const void* buffer, size_t size) override {
    return inner.write(buffer, size);
  }
  kj::Promise<void> write(kj::ArrayPtr<const kj::ArrayPtr<const kj::byte>> pieces) override {
    return inner.write(pieces);
  }
  kj::Promise<void> whenWriteDisconnected() override { return inner.whenWriteDisconnected(); }
  void shutdownWrite() override { inner.shutdownWrite(); }

 private:
  kj::AsyncIoStream& inner;
  kj::ForkedPromise<void>& gate;
};

TEST(ControlStop, AnswersAClientThatDoesNotSubscribeWhenItsSocketIsFull) {
  TempTree tree;
  auto config = loopbackConfig(tree, "stopper");
  auto socketPath = controlSocketPath(config.stateDir);
  // The bound the control service may take after Stopped; the test ends well within it.
  config.lastServicesGrace = 20 * kj::SECONDS;

  auto io = kj::setupAsyncIo();
  auto stopped = kj::newPromiseAndCrossThreadFulfiller<void>();
  auto& stoppedFulfiller = *stopped.fulfiller;
  RuntimeHandle handle;
  handle.start(kj::mv(config), RuntimeHandle::Setup([&](Runtime& runtime, kj::AsyncIoContext& rio) {
                 serveControl(runtime, rio);
                 runtime.onEvent([&](const EventRecord& record) {
                   if (record.view()->get().isStopped()) stoppedFulfiller.fulfill();
                 });
               }));

  auto stream = io.provider->getNetwork()
                    .parseAddress(kj::str("unix:", socketPath))
                    .then([](kj::Own<kj::NetworkAddress> address) { return address->connect(); })
                    .wait(io.waitScope);
  auto gate = kj::newPromiseAndFulfiller<void>();
  auto opened = gate.promise.fork();
  GatedReads gated(*stream, opened);
  capnp::TwoPartyClient client(gated);
  auto control = client.bootstrap().castAs<control::Control>();

  // Enough status() answers to fill the server's send buffer (sized like ours: the same
  // defaults) many times over, each answer being well over 64 bytes: stop()'s answer, asked
  // last, is still to be written when the shutdown is done.
  int sendBuffer = 0;
  kj::uint length = sizeof(sendBuffer);
  stream->getsockopt(SOL_SOCKET, SO_SNDBUF, &sendBuffer, &length);
  ASSERT_GT(sendBuffer, 0);
  kj::Vector<kj::Promise<void>> statuses;
  for (int i = 0; i < 4 * sendBuffer / 64; ++i)
    statuses.add(control.statusRequest().send().ignoreResult());
  auto answer = control.stopRequest().send().then(
      [](auto&&) { return kj::str("answered"); },
      [](kj::Exception&& e) { return kj::str(e.getDescription()); });

  // The runtime has shut down (Stopped) with the answer not yet written; now let it through.
  stopped.promise.wait(io.waitScope);
  gate.fulfiller->fulfill();
  auto how = answer
                 .exclusiveJoin(io.provider->getTimer().afterDelay(20 * kj::SECONDS).then([]() {
                   return kj::str("no answer within 20 s");
                 }))
                 .wait(io.waitScope);
  EXPECT_STREQ(how.cStr(), "answered");
  EXPECT_TRUE(handle.waitStopped(20 * kj::SECONDS));
}

}  // namespace
}  // namespace shoal::peer::test
