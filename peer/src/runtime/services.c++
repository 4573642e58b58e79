// Runtime services, each run by the Supervisor under its policy: the listener (Required), the
// static-peer dialler (Restart), liveness ticks (Restart) and the library watcher (BestEffort).
#include <arpa/inet.h>
#include <kj/debug.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "runtime-internal.h"

namespace shoal::peer {

namespace {

// "host:port" of the other end of an accepted stream, for logs and `shoal peers`.
kj::String remoteAddress(kj::AsyncIoStream& stream) {
  struct sockaddr_storage addr;
  kj::uint length = sizeof(addr);
  KJ_IF_MAYBE (exception, kj::runCatchingExceptions([&]() {
                 stream.getpeername(reinterpret_cast<struct sockaddr*>(&addr), &length);
               })) {
    return kj::str("unknown");  // not a socket (tests over pipes)
  }
  char host[INET6_ADDRSTRLEN] = {};
  if (addr.ss_family == AF_INET) {
    auto* in = reinterpret_cast<struct sockaddr_in*>(&addr);
    inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
    return kj::str(host, ":", ntohs(in->sin_port));
  }
  if (addr.ss_family == AF_INET6) {
    auto* in6 = reinterpret_cast<struct sockaddr_in6*>(&addr);
    inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
    return kj::str("[", host, "]:", ntohs(in6->sin6_port));
  }
  return kj::str("unknown");
}

// The host part of "host:port" (brackets kept for IPv6).
kj::StringPtr hostOf(kj::StringPtr address, kj::String& storage) {
  KJ_IF_MAYBE (colon, address.findLast(':')) {
    storage = kj::heapString(address.slice(0, *colon));
    return storage;
  }
  return address;
}

}  // namespace

kj::Promise<void> Runtime::listen() {
  return io.provider->getNetwork()
      .parseAddress(config.listen)
      .then([this](kj::Own<kj::NetworkAddress> address) {
        auto receiver = address->listen();  // a bind failure fails the service: Required
        kj::String storage;
        bound = kj::str(hostOf(config.listen, storage), ":", receiver->getPort());
        if (!startedReported) {
          startedReported = true;
          emit([&](control::Event::Builder e) {
            auto s = e.initStarted();
            s.setPeerId(formatPeerId(identity->id()));
            s.setListen(KJ_ASSERT_NONNULL(bound));
            s.setItems(library.items().size());
          });
        }
        auto& ref = *receiver;
        return acceptLoop(ref).attach(kj::mv(receiver), kj::mv(address));
      });
}

kj::Promise<void> Runtime::acceptLoop(kj::ConnectionReceiver& receiver) {
  return receiver.accept().then([this, &receiver](kj::Own<kj::AsyncIoStream> stream) {
    if (handshaking >= config.maxHandshakes) {
      // Unauthenticated connections are capped so a flood cannot exhaust us; drop at once.
      KJ_LOG(WARNING, "too many handshakes in progress; connection dropped");
    } else {
      auto address = remoteAddress(*stream);
      startConnection(Role::responder, kj::mv(stream), kj::mv(address));
    }
    return acceptLoop(receiver);
  });
}

kj::Promise<void> Runtime::dialAll() {
  if (config.peers.empty()) return kj::NEVER_DONE;
  auto loops = KJ_MAP(address, config.peers) {
    return dialLoop(address, nullptr, config.reconnectMin);
  };
  return kj::joinPromises(kj::mv(loops));
}

// Keeps one connection to a static peer: dial, run it until it ends, back off, dial again. While
// the peer is connected some other way (it dialled us), wait for that connection to end instead.
kj::Promise<void> Runtime::dialLoop(kj::StringPtr address, kj::Maybe<PeerId> knownId,
                                    kj::Duration backoff) {
  KJ_IF_MAYBE (id, knownId) {
    if (peers.find(*id) != nullptr) {
      return peers.whenGone(*id).then(
          [this, address, knownId]() { return dialLoop(address, knownId, config.reconnectMin); });
    }
  }
  return io.provider->getNetwork()
      .parseAddress(address)
      .then([](kj::Own<kj::NetworkAddress> addr) { return addr->connect().attach(kj::mv(addr)); })
      .then(
          [this, address](kj::Own<kj::AsyncIoStream> stream) {
            auto paf = kj::newPromiseAndFulfiller<kj::Maybe<PeerId>>();
            auto& c = startConnection(Role::initiator, kj::mv(stream), kj::str(address));
            c.ended = kj::mv(paf.fulfiller);
            return kj::mv(paf.promise);
          },
          [address](kj::Exception&& exception) -> kj::Maybe<PeerId> {
            KJ_LOG(INFO, "cannot reach static peer", address, exception.getDescription());
            return nullptr;
          })
      .then([this, address, knownId, backoff](kj::Maybe<PeerId> id) {
        // A connection that reached the peer resets the backoff; a failed dial doubles it.
        auto next = id != nullptr ? config.reconnectMin : kj::min(backoff * 2, config.reconnectMax);
        auto learned = id != nullptr ? id : knownId;
        return timer.afterDelay(id != nullptr ? config.reconnectMin : backoff)
            .then([this, address, learned, next]() { return dialLoop(address, learned, next); });
      });
}

kj::Promise<void> Runtime::liveness() {
  return timer.afterDelay(config.livenessInterval).then([this]() {
    kj::Vector<Connection*> all;
    for (auto& entry : live)
      all.add(entry.value);
    for (auto* c : all) {
      KJ_IF_MAYBE (session, c->session) {
        (*session)->tick();
      }
    }
    return liveness();
  });
}

kj::Promise<void> Runtime::watchLibrary() {
  return timer.afterDelay(config.rescanInterval).then([this]() {
    return rescan().then([this](bool) { return watchLibrary(); });
  });
}

}  // namespace shoal::peer
