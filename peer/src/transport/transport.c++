#include <shoal/peer/transport/transport.h>

namespace shoal::peer {

namespace {

class PlaintextTransport final : public Transport {
 public:
  explicit PlaintextTransport(kj::Own<kj::AsyncIoStream> inner) : inner(kj::mv(inner)) {}

  kj::AsyncIoStream& stream() override { return *inner; }
  kj::Maybe<PeerId> peerId() const override { return nullptr; }

  kj::Promise<void> end() override {
    if (ended) return kj::READY_NOW;
    ended = true;
    // shutdownWrite() reports failure by throwing; callers of end() expect a rejected promise.
    KJ_IF_MAYBE (e, kj::runCatchingExceptions([this]() { inner->shutdownWrite(); })) {
      return kj::mv(*e);
    }
    return kj::READY_NOW;
  }

 private:
  kj::Own<kj::AsyncIoStream> inner;
  bool ended = false;
};

}  // namespace

kj::Own<Transport> plaintextTransport(kj::Own<kj::AsyncIoStream> stream) {
  return kj::heap<PlaintextTransport>(kj::mv(stream));
}

}  // namespace shoal::peer
