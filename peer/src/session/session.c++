#include <shoal/peer/session/session.h>

#include <kj/debug.h>
#include <shoal/codec/validate.h>
#include <shoal/mutant.h>

namespace shoal::peer {

namespace {

// Read-ahead for small frames. A connection spends most of its life idle, holding this buffer
// (RSS per idle connection is a target, docs/benchmarks.md); 16 KiB still takes a hundred
// requests per read, and larger frames (chunks, pages) are read into their own buffers anyway.
constexpr size_t kReadStagingBytes = 16 * 1024;

bool sameDeadline(kj::Maybe<kj::TimePoint> a, kj::Maybe<kj::TimePoint> b) {
  KJ_IF_MAYBE (x, a) {
    KJ_IF_MAYBE (y, b) {
      return *x == *y;
    }
    return false;
  }
  return b == nullptr;
}

// What we read: our limits, unless a mutant loosens them.
codec::Limits readLimits(codec::Limits limits) {
  if (isMutant(Mutant::segmentsUnbounded)) limits.maxSegments = codec::kMaxSegmentsCeiling;
  return limits;
}
uint32_t readLimit(uint32_t maxFrameBytes) {
  return isMutant(Mutant::frameLimitSlack) ? 2 * maxFrameBytes : maxFrameBytes;
}

}  // namespace

// The promise side of one of our requests. Dropping the promise destroys the adapter, which
// withdraws the request; settling it first detaches it from the session.
class Session::ReplyAdapter {
 public:
  ReplyAdapter(kj::PromiseFulfiller<Reply>& fulfiller, Session& session, codec::FrameBuilder frame,
               kj::Maybe<kj::Function<void(const codec::InboundFrame&)>> onPage)
      : fulfiller(fulfiller), session(session), onPage(kj::mv(onPage)) {
    id = session.core.request(kj::mv(frame));
    session.pending.insert(id, Pending{this});
    session.pump();  // sends it, or settles it at once if the connection is closing
  }

  ~ReplyAdapter() noexcept(false) {
    KJ_IF_MAYBE (s, session) {
      s->pending.erase(id);
      s->core.cancel(id);
      s->pump();
    }
  }

  void page(const codec::InboundFrame& frame) {
    KJ_IF_MAYBE (callback, onPage) {
      (*callback)(frame);
    }
  }

  void settle(Reply reply) {
    session = nullptr;
    fulfiller.fulfill(kj::mv(reply));
  }

 private:
  kj::PromiseFulfiller<Reply>& fulfiller;
  kj::Maybe<Session&> session;
  kj::Maybe<kj::Function<void(const codec::InboundFrame&)>> onPage;
  uint64_t id = 0;
};

Session::Session(kj::Own<Transport> transportParam, Role role, const SessionConfig& config,
                 LocalPeer local, kj::Timer& timer, SessionHandler& handler,
                 kj::TimePoint startedAt, uint64_t generation)
    : transport(kj::mv(transportParam)),
      sessionRole(role),
      config(config),
      timer(timer),
      handler(handler),
      sessionGeneration(generation),
      core(role, config, kj::mv(local), transport->peerId(), startedAt),
      reader(transport->stream(), readLimits(config.limits), kReadStagingBytes),
      // Until the peer announces its limit, frames stay within the protocol minimum.
      writer(transport->stream(), codec::kMinFrameBytes) {
  // [FR-9]: until the handshake completes nothing larger is read either, so a 4 MiB "Hello" is
  // refused from its segment table instead of being read in full.
  reader.setMaxFrameBytes(readLimit(
      isMutant(Mutant::bigHandshakeFrames) ? config.limits.maxFrameBytes : codec::kMinFrameBytes));
}

Session::~Session() noexcept(false) {
  serving = nullptr;
  for (auto& entry : pending) {
    entry.value.adapter->settle(
        RequestError{wire::ErrorCode::UNAVAILABLE, kj::str("the session ended"), 0, true});
  }
}

kj::Promise<void> Session::run() {
  serving = kj::heap<kj::TaskSet>(serveErrors);
  writerDone = writeLoop().fork();
  pump();  // the initiator's Hello
  return readLoop()
      .exclusiveJoin(deadlineLoop())
      .catch_([this](kj::Exception&& exception) {
        // Only a bug of ours reaches here (handlers and I/O errors are handled in the loops);
        // end the connection rather than leave it half alive.
        KJ_LOG(ERROR, "session failed", exception);
        core.abort(wire::ErrorCode::INTERNAL, "internal error");
      })
      .then([this]() { return finish(); });
}

kj::Promise<Reply> Session::request(
    codec::FrameBuilder frame, kj::Maybe<kj::Function<void(const codec::InboundFrame&)>> onPage) {
  return kj::newAdaptedPromise<Reply, ReplyAdapter>(*this, kj::mv(frame), kj::mv(onPage));
}

void Session::goodbye(wire::GoodbyeReason reason, kj::StringPtr message) {
  core.goodbye(reason, message, timer.now());
  pump();
}

void Session::notifyLibraryChanged(const codec::Summary& summary) {
  core.notifyLibraryChanged(summary);
  pump();
}

void Session::abort(wire::ErrorCode code, kj::StringPtr message) {
  core.abort(code, message);
  pump();
}

void Session::tick() {
  core.onTick(timer.now());
  pump();
}

// Runs the core's consequences: events to the handler and pending replies, frames to the writer,
// the write side closed when the core is done with it, deadlines re-armed.
void Session::pump() {
  for (;;) {
    auto events = core.takeEvents();
    auto frames = core.takeOutgoing();
    if (events.empty() && frames.empty()) break;
    for (auto& frame : frames) {
      if (writer.isClosed()) break;  // e.g. a Pong after our drain finished: nobody needs it
      KJ_IF_MAYBE (failure, writer.queue(kj::mv(frame))) {
        // A frame of ours above the peer's limit is our bug: the answer is lost, so end cleanly.
        KJ_LOG(ERROR, "refused to send our own frame", failure->message);
        core.abort(wire::ErrorCode::INTERNAL, "internal error: oversize frame");
      }
    }
    for (auto& event : events)
      dispatch(event);
  }
  if (core.wantsWriteClose() && !writer.isClosed()) writer.close();
  // A moved deadline re-arms the deadline loop; a close ends it, and with it run(): the read
  // loop may be waiting for a backlog the peer will never drain (a peer gone mid-upload, closed
  // by the dead timeout while no hard deadline was armed).
  if (core.isClosed() || !sameDeadline(core.nextHardDeadline(), armedDeadline)) {
    KJ_IF_MAYBE (wake, deadlineChanged) {
      (*wake)->fulfill();
      deadlineChanged = nullptr;
    }
  }
}

void Session::dispatch(SessionEvent& event) {
  KJ_SWITCH_ONEOF(event) {
    KJ_CASE_ONEOF(hello, event::HelloReceived) {
      KJ_IF_MAYBE (refusal, handler.onHello(*this, hello.peer)) {
        core.rejectHello(refusal->code, refusal->message);
      } else {
        core.acceptHello(timer.now());
      }
    }
    KJ_CASE_ONEOF(established, event::Established) {
      writer.setMaxFrameBytes(established.peer.maxFrameBytes);
      reader.setMaxFrameBytes(readLimit(config.limits.maxFrameBytes));
      handler.onEstablished(*this);
    }
    KJ_CASE_ONEOF(rejected, event::Rejected) {
      rejectedWith = Rejection{rejected.code, kj::mv(rejected.message)};
    }
    KJ_CASE_ONEOF(request, event::IncomingRequest) {
      startServing(request.id, kj::mv(request.frame));
    }
    KJ_CASE_ONEOF(cancelled, event::RequestCancelled) {
      handler.onRequestCancelled(*this, cancelled.id);
    }
    KJ_CASE_ONEOF(response, event::Response) {
      KJ_IF_MAYBE (p, pending.find(response.id)) {
        if (response.terminal) {
          auto* adapter = p->adapter;
          pending.erase(response.id);
          adapter->settle(kj::mv(response.frame));
        } else {
          p->adapter->page(response.frame);
        }
      }
    }
    KJ_CASE_ONEOF(failed, event::RequestFailed) {
      settle(failed.id,
             RequestError{failed.code, kj::mv(failed.message), failed.retryAfterMs, failed.local});
    }
    KJ_CASE_ONEOF(changed, event::LibraryChanged) {
      handler.onLibraryChanged(*this, changed.summary);
    }
    KJ_CASE_ONEOF(goodbye, event::GoodbyeReceived) {
      handler.onGoodbye(*this, goodbye);
    }
    KJ_CASE_ONEOF(closedNow, event::Closed) {
      closed = event::Closed{closedNow.reason, kj::heapString(closedNow.detail)};
      handler.onClosed(*this, closedNow);
    }
  }
}

void Session::settle(uint64_t id, Reply reply) {
  KJ_IF_MAYBE (p, pending.find(id)) {
    auto* adapter = p->adapter;
    pending.erase(id);
    adapter->settle(kj::mv(reply));
  }
}

void Session::startServing(uint64_t id, codec::InboundFrame frame) {
  auto& tasks = *KJ_ASSERT_NONNULL(serving);
  auto answering = kj::evalNow([&]() { return handler.serve(*this, id, kj::mv(frame)); });
  tasks.add(answering.then(
      [this, id](kj::Array<codec::FrameBuilder> pages) {
        KJ_ASSERT(pages.size() > 0, "a request was served with no answer");
        for (auto i : kj::indices(pages)) {
          if (!core.answer(id, kj::mv(pages[i]), i + 1 == pages.size())) break;
        }
        pump();
      },
      [this, id](kj::Exception&& exception) {
        // The serving side failed (I/O error, bug): the request still gets its one answer.
        KJ_LOG(WARNING, "serving a request failed", id, exception);
        core.answerError(id, wire::ErrorCode::INTERNAL, "internal error while serving");
        pump();
      }));
}

kj::Promise<void> Session::readLoop() {
  // The backlog is checked once the answers already produced have been queued (they are, in the
  // turns the last batch of frames scheduled), so a peer that does not read stalls itself.
  return kj::evalLater([this]() { return writer.whenQueuedBelow(config.maxWriteBacklogBytes); })
      .then([this]() { return reader.read(); })
      .then(
          [this](codec::ReadResult result) -> kj::Promise<void> {
            // Every frame already read is handled in this turn, before any answer is: requests
            // that arrive together are in flight together (maxInFlight and busy apply to them),
            // and a Cancel right behind its request finds it still being served.
            kj::Maybe<codec::ReadResult> next = kj::mv(result);
            while (next != nullptr) {
              if (!onRead(kj::mv(KJ_ASSERT_NONNULL(next))) || core.isClosed()) {
                return kj::READY_NOW;
              }
              if (writer.queuedBytes() >= config.maxWriteBacklogBytes) break;
              next = reader.poll();
            }
            return readLoop();
          },
          [this](kj::Exception&& exception) {
            // The stream itself failed (reset, unclean TLS close): KJ reports that by rejecting.
            core.onTransportError(exception.getDescription());
            pump();
          });
}

// One result of the reader into the core; false once nothing more can be read.
bool Session::onRead(codec::ReadResult result) {
  auto now = timer.now();
  bool more = true;
  KJ_SWITCH_ONEOF(result) {
    KJ_CASE_ONEOF(frame, codec::InboundFrame) {
      core.onFrame(kj::mv(frame), now);
    }
    KJ_CASE_ONEOF(failure, codec::Failure) {
      more = failure.requestId != nullptr;  // framing is intact only for a request fault
      core.onDecodeFailure(kj::mv(failure), now);
    }
    KJ_CASE_ONEOF(end, codec::EndOfStream) {
      more = false;
      core.onEndOfStream(now);
    }
  }
  pump();
  return more;
}

kj::Promise<void> Session::deadlineLoop() {
  if (core.isClosed()) return kj::READY_NOW;
  auto wake = kj::newPromiseAndFulfiller<void>();
  deadlineChanged = kj::mv(wake.fulfiller);
  armedDeadline = core.nextHardDeadline();
  kj::Promise<void> waiting = kj::mv(wake.promise);
  KJ_IF_MAYBE (deadline, armedDeadline) {
    waiting = waiting.exclusiveJoin(timer.atTime(*deadline).then([this]() { tick(); }));
  }
  return waiting.then([this]() { return deadlineLoop(); });
}

kj::Promise<void> Session::writeLoop() {
  return writer.run()
      .then([this]() { return transport->end(); })
      .then([this]() { handler.onWriterDone(*this); },
            [this](kj::Exception&& exception) {
              // A reset or a peer that stopped reading: nothing more can be sent either way.
              core.onTransportError(exception.getDescription());
              handler.onWriterDone(*this);
              pump();
            });
}

kj::Promise<void> Session::finish() {
  pump();  // queue the last frames (an Error, a Reject) and close the writer
  auto& done = KJ_ASSERT_NONNULL(writerDone);
  // A peer that stopped reading must not hold the session open past the drain deadline.
  return timer.timeoutAfter(config.drainTimeout, done.addBranch())
      .then([]() { return true; }, [](kj::Exception&&) { return false; })
      .then([this](bool flushed) {
        if (!flushed) {
          writerDone = nullptr;  // cancels the stuck write
          handler.onWriterDone(*this);
        }
        serving = nullptr;  // answers can no longer be sent: stop producing them
        for (auto& entry : pending) {
          entry.value.adapter->settle(
              RequestError{wire::ErrorCode::UNAVAILABLE, kj::str("the session ended"), 0, true});
        }
        if (pending.size() > 0) pending.clear();
      });
}

void Session::ServeErrors::taskFailed(kj::Exception&& exception) {
  // Serving tasks handle their own failures; reaching here means pump() itself threw.
  KJ_LOG(ERROR, "serving task failed", exception);
}

}  // namespace shoal::peer
