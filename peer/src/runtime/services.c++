// Runtime services, each run by the Supervisor under its policy: the listener (Required) and its
// admission timer (Restart), the static-peer dialler (Restart), liveness ticks (Restart) and the
// library watcher (BestEffort). LAN discovery (Restart) is in discovery-service.c++; it dials
// through dialAddress() here, like the static peers.
#include <arpa/inet.h>
#include <kj/debug.h>
#include <netinet/in.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include "progress-stream.h"
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

// Whether the other end's first bytes are already waiting: an honest peer sends its ClientHello
// with the connection, so it enters the admission as `receiving` rather than as a silent one.
bool bytesWaiting(kj::AsyncIoStream& stream) {
  KJ_IF_MAYBE (fd, stream.getFd()) {
    int n = 0;
    return ioctl(*fd, FIONREAD, &n) == 0 && n > 0;
  }
  return false;
}

kj::Maybe<kj::TimePoint> earliest(kj::Maybe<kj::TimePoint> a, kj::Maybe<kj::TimePoint> b) {
  KJ_IF_MAYBE (x, a) {
    KJ_IF_MAYBE (y, b) {
      return kj::min(*x, *y);
    }
    return *x;
  }
  return b;
}

}  // namespace

kj::Promise<void> Runtime::bind() {
  return io.provider->getNetwork()
      .parseAddress(config.listen)
      .then([this](kj::Own<kj::NetworkAddress> address) {
        auto listening = address->listen();
        bound = kj::str(hostOf(config.listen), ":", listening->getPort());
        receiver = listening.attach(kj::mv(address));
      });
}

// --- the listener and the admission -----------------------------------------------------------

kj::Promise<void> Runtime::acceptLoop(kj::ConnectionReceiver& listening) {
  return listening.accept().then([this, &listening](kj::Own<kj::AsyncIoStream> stream) {
    admit(kj::mv(stream));
    return acceptLoop(listening);
  });
}

// Every inbound connection is admitted; room is made by dropping the pending connection that
// got least far (admission.h).
void Runtime::admit(kj::Own<kj::AsyncIoStream> stream) {
  auto address = remoteAddress(*stream);
  auto generation = nextGeneration++;
  auto source = hostOf(address);
  auto progress = bytesWaiting(*stream) ? Progress::receiving : Progress::connected;
  KJ_IF_MAYBE (eviction, admission.admit(generation, source, timer.now(), progress)) {
    auto& limits = config.admission;
    auto why = eviction->cause == Admission::Cause::sourceFull
                   ? kj::str(limits.maxPendingPerSource, " handshakes were pending from ", source,
                             " (the per-address limit)")
                   : kj::str(limits.maxPending, " handshakes were pending (the limit)");
    dropPending(eviction->id, "evicted",
                kj::str("dropped while ", name(eviction->progress), ": ", why));
  }
  auto observed = kj::heap<ProgressStream>(
      kj::mv(stream), [this, generation](Progress p) { admission.advance(generation, p); });
  startConnection(Role::responder, kj::mv(observed), kj::mv(address), generation);
  rearmAdmissionTimer();
}

void Runtime::dropPending(uint64_t generation, kj::StringPtr code, kj::String reason) {
  KJ_IF_MAYBE (c, live.find(generation)) {
    auto& end = (*c)->end;
    end.stage = "admission";
    end.code = kj::str(code);
    end.message = kj::mv(reason);
    (*c)->handshake.cancel(end.message);
  }
}

// One timer for the admission's first-bytes deadlines and the handshake failure summaries.
kj::Promise<void> Runtime::admissionTimer() {
  auto wake = kj::newPromiseAndFulfiller<void>();
  admissionWake = kj::mv(wake.fulfiller);
  admissionArmed = earliest(admission.nextDeadline(), failureReports.nextFlush());
  kj::Promise<void> waiting = kj::mv(wake.promise);
  KJ_IF_MAYBE (at, admissionArmed) {
    waiting = waiting.exclusiveJoin(timer.atTime(*at));
  }
  return waiting.then([this]() {
    auto now = timer.now();
    for (auto id : admission.expire(now)) {
      dropPending(id, "silent",
                  kj::str("sent nothing within ",
                          config.admission.firstBytesTimeout / kj::MILLISECONDS, " ms"));
    }
    KJ_IF_MAYBE (report, failureReports.flush(now)) {
      emitHandshakeFailed(kj::mv(*report));
    }
    return admissionTimer();
  });
}

// Wakes the timer when something is due before what it waits for; a deadline that went away
// just finds nothing to do when it fires.
void Runtime::rearmAdmissionTimer() {
  KJ_IF_MAYBE (next, earliest(admission.nextDeadline(), failureReports.nextFlush())) {
    KJ_IF_MAYBE (armed, admissionArmed) {
      if (*next >= *armed) return;
    }
  } else {
    return;
  }
  KJ_IF_MAYBE (wake, admissionWake) {
    (*wake)->fulfill();
    admissionWake = nullptr;
  }
}

// --- static peers -------------------------------------------------------------------------

kj::Promise<void> Runtime::dialAll() {
  if (staticPeers.empty()) return kj::NEVER_DONE;
  auto loops = KJ_MAP(peer, staticPeers) {
    return dialLoop(*peer);
  };
  return kj::joinPromises(kj::mv(loops));
}

// Keeps one connection to a static peer: dial, run it until it ends, back off, dial again. While
// the peer is connected some other way (it dialled us), wait for that connection to end instead.
kj::Promise<void> Runtime::dialLoop(StaticPeer& peer) {
  KJ_IF_MAYBE (id, peer.knownId) {
    if (peers.find(*id) != nullptr) {
      return peers.whenGone(*id).then([this, &peer]() { return dialLoop(peer); });
    }
  }
  return dialOnce(peer).then(
      [this, &peer](ConnectionEnd end) { return afterDial(peer, kj::mv(end)); });
}

kj::Promise<Runtime::ConnectionEnd> Runtime::dialOnce(StaticPeer& peer) {
  return dialAddress(peer.address, control::FoundBy::STATIC, startedAt);
}

// One outbound connection, resolving with how it ended: the path every dial takes.
kj::Promise<Runtime::ConnectionEnd> Runtime::dialAddress(kj::StringPtr address,
                                                         control::FoundBy foundBy,
                                                         kj::TimePoint foundAt) {
  auto failed = [](kj::StringPtr code, kj::Exception&& e) {
    ConnectionEnd end;
    end.code = kj::str(code);
    end.message = kj::str(e.getDescription());
    return end;
  };
  return io.provider->getNetwork().parseAddress(address).then(
      [this, target = kj::str(address), foundBy, foundAt,
       failed](kj::Own<kj::NetworkAddress> resolved) mutable {
        auto connecting = resolved->connect().attach(kj::mv(resolved));
        return timer.timeoutAfter(config.session.handshakeTimeout, kj::mv(connecting))
            .then(
                [this, target = kj::mv(target), foundBy,
                 foundAt](kj::Own<kj::AsyncIoStream> stream) mutable {
                  return runDialled(kj::mv(stream), kj::mv(target), foundBy, foundAt);
                },
                [failed](kj::Exception&& e) { return failed("unreachable", kj::mv(e)); });
      },
      [failed](kj::Exception&& e) { return failed("unresolvable", kj::mv(e)); });
}

kj::Promise<Runtime::ConnectionEnd> Runtime::runDialled(kj::Own<kj::AsyncIoStream> stream,
                                                        kj::String address,
                                                        control::FoundBy foundBy,
                                                        kj::TimePoint foundAt) {
  // A discovery dial is not a supervised service: its connect can complete after the shutdown.
  if (stopping) {
    ConnectionEnd end;
    end.code = kj::str("stopping");
    end.message = kj::str("this peer is shutting down");
    return kj::mv(end);
  }
  auto paf = kj::newPromiseAndFulfiller<ConnectionEnd>();
  auto& c = startConnection(Role::initiator, kj::mv(stream), kj::mv(address), nextGeneration++);
  c.ended = kj::mv(paf.fulfiller);
  c.foundBy = foundBy;
  c.foundAt = foundAt;
  return kj::mv(paf.promise);
}

// Says what happened to a dial and waits before the next: every failure class backs off.
kj::Promise<void> Runtime::afterDial(StaticPeer& peer, ConnectionEnd end) {
  kj::Duration wait = 0 * kj::SECONDS;
  switch (end.kind) {
    case ConnectionEnd::Kind::established:
      peer.knownId = end.peer;
      wait = peer.backoff.afterSession();
      break;
    case ConnectionEnd::Kind::self:
      emit([&](control::Event::Builder e) {
        auto f = e.initDialFailed();
        f.setAddress(peer.address);
        f.setCode(end.code);
        f.setMessage(kj::str(end.message, ": not dialled again"));
        f.setRetryMs(0);
      });
      return kj::NEVER_DONE;
    case ConnectionEnd::Kind::failed:
      wait = peer.backoff.afterFailure();
      emit([&](control::Event::Builder e) {
        auto f = e.initDialFailed();
        f.setAddress(peer.address);
        f.setCode(end.code);
        f.setMessage(end.message);
        f.setRetryMs(wait / kj::MILLISECONDS);
      });
      break;
    case ConnectionEnd::Kind::refused:
      wait = peer.backoff.afterFailure();
      emit([&](control::Event::Builder e) {
        auto f = e.initPeerRefused();
        f.setAddress(peer.address);
        f.setCode(end.code);
        f.setMessage(end.message);
        f.setRetryMs(wait / kj::MILLISECONDS);
      });
      break;
  }
  return timer.afterDelay(wait).then([this, &peer]() { return dialLoop(peer); });
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
