#include <shoal/conformance/connection.h>

#include <kj/debug.h>
#include <shoal/codec/validate.h>
#include <string.h>

namespace shoal::conformance {

bool Closed::clean(bool tls) const {
  return end == StreamEnd::fin && !midFrame && alert == nullptr && (closeNotify || !tls);
}

kj::String Closed::describe(bool tls) const {
  kj::String how = end == StreamEnd::fin     ? kj::str("FIN")
                   : end == StreamEnd::reset ? kj::str("RST")
                                             : kj::str("error (", detail, ")");
  kj::String before;
  KJ_IF_MAYBE (a, alert) {
    before = kj::str("TLS alert ", *a, ", then ");
  } else if (closeNotify) {
    before = kj::str("close_notify, then ");
  } else if (tls) {
    before = kj::str("no close_notify, ");
  } else {
    before = kj::str();
  }
  return kj::str(before, how, midFrame ? " inside a frame" : "");
}

Connection::Connection(ConnectionContext& context, uint32_t number, Role targetRole,
                       kj::Own<Channel> channel, Announce ours)
    : context(context),
      index(number),
      role(targetRole),
      channel(kj::mv(channel)),
      announce(kj::mv(ours)),
      checks(targetRole, codec::kMinFrameBytes),
      decoder([&]() {
        codec::Limits limits;
        limits.maxFrameBytes = kj::max(announce.maxFrameBytes, codec::kMinFrameBytes);
        limits.maxChunkBytes = announce.maxChunkBytes;
        return limits;
      }()) {
  reading = readLoop().eagerlyEvaluate([this](kj::Exception&& e) {
    push(Closed{false, StreamEnd::error, false, nullptr, kj::str(e.getDescription())});
  });
}

Connection::~Connection() noexcept(false) {}

void Connection::ErrorHandler::taskFailed(kj::Exception&& e) {
  // A background duty failed (a write to a closed connection, typically): note it; the case's
  // own expectations decide whether that matters.
  c.note(EntryKind::note, kj::str("background task ended: ", e.getDescription()));
}

void Connection::note(EntryKind kind, kj::String text) {
  context.transcript.add(context.timer.now(), index, kind, kj::mv(text));
}

// --- sending -------------------------------------------------------------------------------------

void Connection::enqueueWrite(kj::Array<kj::byte> bytes) {
  auto& ch = *channel;
  writes = writes.addBranch()
               .then([&ch, bytes = kj::mv(bytes)]() mutable {
                 auto view = bytes.asPtr();
                 return ch.write(view).attach(kj::mv(bytes));
               })
               .catch_([this](kj::Exception&& e) {
                 if (!writeFailed) {
                   writeFailed = true;
                   note(EntryKind::close, kj::str("write failed: ", e.getDescription()));
                 }
               })
               .fork();
}

void Connection::send(kj::Own<capnp::MessageBuilder> frame, bool background) {
  auto root = frame->getRoot<wire::Frame>().asReader();
  checks.onSent(root);
  auto bytes = encode(*frame);
  context.transcript.add(context.timer.now(), index, EntryKind::sent, frameText(kj::str(root)),
                         hex(bytes), background);
  enqueueWrite(kj::mv(bytes));
}

void Connection::sendTogether(kj::ArrayPtr<kj::Own<capnp::MessageBuilder>> frames) {
  kj::Vector<kj::byte> all;
  for (auto& frame : frames) {
    auto root = frame->getRoot<wire::Frame>().asReader();
    checks.onSent(root);
    auto bytes = encode(*frame);
    context.transcript.add(context.timer.now(), index, EntryKind::sent, frameText(kj::str(root)),
                           hex(bytes));
    all.addAll(bytes);
  }
  enqueueWrite(all.releaseAsArray());
}

void Connection::sendBytes(kj::ArrayPtr<const kj::byte> bytes, kj::StringPtr what) {
  context.transcript.add(context.timer.now(), index, EntryKind::rawSent, kj::str(what), hex(bytes));
  enqueueWrite(kj::heapArray(bytes));
}

void Connection::sendSplit(kj::ArrayPtr<const kj::byte> bytes, size_t pieces, kj::StringPtr what) {
  context.transcript.add(context.timer.now(), index, EntryKind::rawSent,
                         kj::str(what, " (in writes of ", pieces, " bytes)"), hex(bytes));
  for (size_t i = 0; i < bytes.size(); i += pieces) {
    enqueueWrite(kj::heapArray(bytes.slice(i, kj::min(bytes.size(), i + pieces))));
  }
}

kj::Promise<void> Connection::trickle(kj::Array<kj::byte> bytes, kj::Duration interval,
                                      kj::StringPtr what) {
  context.transcript.add(context.timer.now(), index, EntryKind::rawSent,
                         kj::str(what, " (one byte every ", interval / kj::MILLISECONDS, " ms)"),
                         hex(bytes));
  kj::Promise<void> chain = kj::READY_NOW;
  for (size_t i = 0; i < bytes.size(); ++i) {
    chain = chain.then([this, b = bytes[i], interval, first = i == 0]() -> kj::Promise<void> {
      if (writeFailed || sawClose) return kj::READY_NOW;
      enqueueWrite(kj::heapArray<kj::byte>({b}));
      if (first) return flushed();
      return context.timer.afterDelay(interval).then([this]() { return flushed(); });
    });
  }
  return chain;
}

kj::Promise<void> Connection::flushed() {
  return writes.addBranch();
}

kj::Promise<void> Connection::closeNotify() {
  return flushed().then([this]() {
    note(EntryKind::close,
         kj::str(channel->isTls() ? "harness sends close_notify" : "(plaintext: no close_notify)"));
    return channel->closeNotify();
  });
}

void Connection::fin() {
  note(EntryKind::close, kj::str("harness sends FIN"));
  channel->fin();
}

void Connection::reset() {
  note(EntryKind::close, kj::str("harness resets the connection (RST)"));
  reading = nullptr;  // nothing may read a stream that is about to go
  channel->reset();
  if (!sawClose)
    push(Closed{false, StreamEnd::reset, false, nullptr, kj::str("reset by the harness")});
}

// --- receiving -----------------------------------------------------------------------------------

kj::Promise<kj::Maybe<Event>> Connection::next(kj::Duration timeout) {
  if (head < inbox.size()) {
    return kj::Maybe<Event>(kj::mv(inbox[head++]));
  }
  auto paf = kj::newPromiseAndFulfiller<void>();
  arrived = kj::mv(paf.fulfiller);
  return context.timer.timeoutAfter(timeout, kj::mv(paf.promise))
      .then([]() { return true; }, [](kj::Exception&&) { return false; })
      .then([this](bool got) -> kj::Maybe<Event> {
        arrived = nullptr;
        if (!got || head == inbox.size()) return nullptr;
        return kj::mv(inbox[head++]);
      });
}

void Connection::push(Event event) {
  if (event.is<Closed>()) {
    if (sawClose) return;
    sawClose = true;
    auto& c = event.get<Closed>();
    closeSeen =
        Closed{c.closeNotify, c.end, c.midFrame,
               c.alert.map([](const kj::String& s) { return kj::str(s); }), kj::str(c.detail)};
  }
  inbox.add(kj::mv(event));
  KJ_IF_MAYBE (a, arrived) {
    (*a)->fulfill();
    arrived = nullptr;
  }
}

kj::Promise<void> Connection::readLoop() {
  return channel->read().then([this](ReadEvent event) -> kj::Promise<void> {
    KJ_SWITCH_ONEOF(event) {
      KJ_CASE_ONEOF(bytes, Bytes) {
        onBytes(bytes.data);
        return readLoop();
      }
      KJ_CASE_ONEOF(notify, CloseNotify) {
        closeNotifySeen = true;
        note(EntryKind::tls, kj::str("target sent close_notify"));
        return readLoop();
      }
      KJ_CASE_ONEOF(alert, AlertReceived) {
        note(EntryKind::tls, kj::str("target sent TLS alert ", alert.name,
                                     alert.fatal ? " (fatal)" : " (warning)"));
        if (alert.fatal) alertSeen = kj::mv(alert.name);
        return readLoop();
      }
      KJ_CASE_ONEOF(end, StreamEnd) {
        bool midFrame = !decoderFailed && decoder.pendingBytes() > 0;
        Closed closed{closeNotifySeen, end.kind, midFrame,
                      alertSeen.map([](const kj::String& s) { return kj::str(s); }),
                      kj::mv(end.detail)};
        note(EntryKind::close, kj::str("target closed: ", closed.describe(channel->isTls())));
        push(kj::mv(closed));
        return kj::READY_NOW;
      }
    }
    KJ_UNREACHABLE;
  });
}

void Connection::onBytes(kj::ArrayPtr<const kj::byte> bytes) {
  if (decoderFailed) {
    context.transcript.add(context.timer.now(), index, EntryKind::rawReceived,
                           kj::str("bytes after an invalid frame"), hex(bytes));
    return;
  }
  while (bytes.size() > 0) {
    auto space = decoder.writable();
    size_t n = kj::min(space.size(), bytes.size());
    memcpy(space.begin(), bytes.begin(), n);
    decoder.commit(n);
    bytes = bytes.slice(n, bytes.size());
    for (;;) {
      KJ_IF_MAYBE (result, decoder.next()) {
        KJ_SWITCH_ONEOF(*result) {
          KJ_CASE_ONEOF(frame, codec::InboundFrame) {
            onFrame(kj::mv(frame));
          }
          KJ_CASE_ONEOF(failure, codec::Failure) {
            decoderFailed = true;
            context.transcript.add(
                context.timer.now(), index, EntryKind::rawReceived,
                kj::str("not a valid frame: ", codec::name(failure.error), ": ", failure.message),
                hex(bytes));
            if (!badBytesExpected)
              context.onViolation(
                  Violation{"FR-1", kj::str("the target sent bytes that are not a valid frame: ",
                                            codec::name(failure.error), ": ", failure.message)});
            push(BadBytes{kj::mv(failure)});
            return;
          }
        }
      } else {
        break;
      }
    }
  }
}

void Connection::learnHello(const codec::InboundFrame& frame) {
  auto root = frame.root();
  if (root.isHello()) {
    auto h = root.getHello();
    their = TheirHello{KJ_ASSERT_NONNULL(codec::Digest::from(h.getPeerId())),
                       h.getInstanceId(),
                       h.getLimits().getMaxFrameBytes(),
                       h.getLimits().getMaxInFlight(),
                       h.getLimits().getMaxChunkBytes(),
                       codec::Summary::fromWire(h.getLibrary()),
                       h.getVersionMin(),
                       h.getVersionMax()};
  } else if (root.isHelloAck()) {
    auto h = root.getHelloAck();
    their = TheirHello{KJ_ASSERT_NONNULL(codec::Digest::from(h.getPeerId())),
                       h.getInstanceId(),
                       h.getLimits().getMaxFrameBytes(),
                       h.getLimits().getMaxInFlight(),
                       h.getLimits().getMaxChunkBytes(),
                       codec::Summary::fromWire(h.getLibrary()),
                       h.getVersion(),
                       h.getVersion()};
  }
}

void Connection::onFrame(codec::InboundFrame frame) {
  kj::Maybe<codec::Digest> tlsId;
  KJ_IF_MAYBE (facts, channel->facts()) {
    tlsId = facts->peerId;
  }
  auto violation = checks.onReceived(frame, tlsId);
  bool background = handledInBackground(frame);
  context.transcript.add(context.timer.now(), index, EntryKind::received,
                         frameText(kj::str(frame.root())), hex(frame.bytes()), background);
  KJ_IF_MAYBE (v, violation) {
    context.onViolation(kj::mv(*v));
  }
  if (frame.kind() == Which::HELLO || frame.kind() == Which::HELLO_ACK) learnHello(frame);
  if (background) {
    if (frame.kind() == Which::PING) {
      send(codec::pongFrame(frame.root().getPing().getNonce()), true);
    } else {
      KJ_IF_MAYBE (source, serving) {
        source->onRequest(*this, frame);
      }
    }
    return;
  }
  push(FrameEvent{kj::mv(frame)});
}

bool Connection::handledInBackground(const codec::InboundFrame& frame) {
  auto kind = frame.kind();
  for (auto k : delivered) {
    if (k == kind) return false;
  }
  if (!checks.established()) return false;
  if (kind == Which::PING) return pongs;
  if (codec::isRequest(kind)) return serving != nullptr;
  return false;
}

}  // namespace shoal::conformance
