// ProgressStream: an inbound socket stream that tells the admission how far the other end got —
// its first bytes, then our first answer — without looking at the bytes. Below TLS, so the
// signal is the same for every transport; above, it forwards everything untouched.
#pragma once

#include <kj/async-io.h>
#include <kj/function.h>
#include <shoal/peer/runtime/admission.h>

namespace shoal::peer {

class ProgressStream final : public kj::AsyncIoStream {
 public:
  ProgressStream(kj::Own<kj::AsyncIoStream> inner, kj::Function<void(Progress)> onProgress)
      : inner(kj::mv(inner)), onProgress(kj::mv(onProgress)) {}

  kj::Promise<size_t> tryRead(void* buffer, size_t minBytes, size_t maxBytes) override {
    if (received) return inner->tryRead(buffer, minBytes, maxBytes);
    return inner->tryRead(buffer, minBytes, maxBytes).then([this](size_t n) {
      if (n > 0 && !received) {
        received = true;
        onProgress(Progress::receiving);
      }
      return n;
    });
  }
  kj::Promise<void> write(const void* buffer, size_t size) override {
    answered();
    return inner->write(buffer, size);
  }
  kj::Promise<void> write(kj::ArrayPtr<const kj::ArrayPtr<const kj::byte>> pieces) override {
    answered();
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
  kj::Maybe<int> getFd() const override { return inner->getFd(); }

 private:
  void answered() {
    if (!wrote) {
      wrote = true;
      onProgress(Progress::answered);
    }
  }

  kj::Own<kj::AsyncIoStream> inner;
  kj::Function<void(Progress)> onProgress;
  bool received = false;
  bool wrote = false;
};

}  // namespace shoal::peer
