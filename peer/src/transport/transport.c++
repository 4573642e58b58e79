#include <shoal/peer/transport/transport.h>

#include <string.h>

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

// A stream whose first reads return `replay` (bytes already read from `inner`) before `inner`'s.
class ReplayStream final : public kj::AsyncIoStream {
 public:
  ReplayStream(kj::Own<kj::AsyncIoStream> inner, kj::Array<kj::byte> replay)
      : inner(kj::mv(inner)), replay(kj::mv(replay)) {}

  kj::Promise<size_t> tryRead(void* buffer, size_t minBytes, size_t maxBytes) override {
    if (next == replay.size()) return inner->tryRead(buffer, minBytes, maxBytes);
    size_t n = kj::min(maxBytes, replay.size() - next);
    memcpy(buffer, replay.begin() + next, n);
    next += n;
    if (n >= minBytes) return n;
    return inner->tryRead(static_cast<kj::byte*>(buffer) + n, minBytes - n, maxBytes - n)
        .then([n](size_t more) { return n + more; });
  }
  kj::Promise<void> write(const void* buffer, size_t size) override {
    return inner->write(buffer, size);
  }
  kj::Promise<void> write(kj::ArrayPtr<const kj::ArrayPtr<const kj::byte>> pieces) override {
    return inner->write(pieces);
  }
  kj::Promise<void> whenWriteDisconnected() override { return inner->whenWriteDisconnected(); }
  void shutdownWrite() override { inner->shutdownWrite(); }
  void abortRead() override { inner->abortRead(); }
  void getsockopt(int level, int option, void* value, kj::uint* length) override {
    inner->getsockopt(level, option, value, length);
  }
  void setsockopt(int level, int option, const void* value, kj::uint length) override {
    inner->setsockopt(level, option, value, length);
  }
  void getsockname(struct sockaddr* addr, kj::uint* length) override {
    inner->getsockname(addr, length);
  }
  void getpeername(struct sockaddr* addr, kj::uint* length) override {
    inner->getpeername(addr, length);
  }

 private:
  kj::Own<kj::AsyncIoStream> inner;
  kj::Array<kj::byte> replay;
  size_t next = 0;
};

}  // namespace

kj::Promise<kj::Own<Transport>> sniffedTransport(
    kj::Own<kj::AsyncIoStream> stream,
    kj::Function<kj::Promise<kj::Own<Transport>>(kj::Own<kj::AsyncIoStream>)> tls) {
  auto first = kj::heapArray<kj::byte>(1);
  auto& ref = *stream;
  auto ptr = first.begin();
  return ref.read(ptr, 1).then([stream = kj::mv(stream), first = kj::mv(first),
                                tls = kj::mv(tls)]() mutable -> kj::Promise<kj::Own<Transport>> {
    bool handshakeRecord = first[0] == 22;
    auto replayed = kj::heap<ReplayStream>(kj::mv(stream), kj::mv(first));
    if (handshakeRecord) return tls(kj::mv(replayed));
    return plaintextTransport(kj::mv(replayed));
  });
}

kj::Own<Transport> plaintextTransport(kj::Own<kj::AsyncIoStream> stream) {
  return kj::heap<PlaintextTransport>(kj::mv(stream));
}

}  // namespace shoal::peer
