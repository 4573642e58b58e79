// The oracle of the `session` fuzz target: a model of the protocol, written from
// docs/protocol.md, that replays every byte the script sends through its own copy of the
// session's frame reader, predicts every answer the session owes and how the session must end, and
// checks every frame the session sends against that. It owns no I/O: the driver (session.c++)
// hands it bytes, frames and the virtual time.
#pragma once

#include <shoal/codec/frame.h>
#include <shoal/codec/manifest.h>
#include <shoal/peer/session/session.h>
#include <stdlib.h>

#include "targets/session-fixture.h"

namespace shoal::fuzz {

using Which = wire::Frame::Which;

// SHOAL_FUZZ_TRACE: print the conversation (to read a crash).
inline bool tracing() {
  static const bool on = getenv("SHOAL_FUZZ_TRACE") != nullptr;
  return on;
}

// How the model says the session must end.
enum class Ending : uint8_t {
  errorZero,  // it sends Error{0, code} and closes
  reject,     // it sends Reject{code} and closes
  peerError,  // we sent Error{0}: it closes without a word
  handshakeTimeout,
  deadTimeout,
  drainTimeout,
  peerClosed,  // our end of stream
  goodbye,     // our end of stream after our Goodbye
};

struct Expected {
  Ending ending;
  kj::Maybe<wire::ErrorCode> code;
  kj::String why;
};

// One request the session received, and what its answer must be.
struct Request {
  Request(Which kind, bool guaranteed) : kind(kind), guaranteed(guaranteed) {}
  Which kind;
  bool guaranteed;  // must get its terminal answer while the session stays open
  bool cancelled = false;
  bool done = false;  // terminal answer seen
  uint32_t nextPage = 0;
  kj::Maybe<Which> answerKind;
  kj::Maybe<wire::ErrorCode> expectedError;  // null: the answer itself is due
  bool tooLargeOrChunk = false;              // at the frame limit: either is right
  // GetChunk
  kj::String itemId;
  uint32_t fileIndex = 0;
  uint64_t offset = 0;
  uint32_t length = 0;
  // GetManifest
  kj::Maybe<kj::Own<codec::ManifestAssembler>> manifest;
  // GetLibrary: the answer the library gives, and what the pages carried so far
  kj::Maybe<peer::library::LibraryAnswer> library;
  kj::Vector<kj::String> items;
  kj::Vector<kj::String> removals;
};

// Size on the wire of the Chunk RequestServer builds for `length` bytes.
size_t chunkFrameBytes(uint32_t length);

// For failure messages: KJ cannot print a Maybe.
kj::StringPtr nameOf(kj::Maybe<wire::ErrorCode> code);
kj::StringPtr nameOf(kj::Maybe<peer::CloseReason> reason);

class SessionModel {
 public:
  // The session under test serves `world`, with `config`, from `start`; `refuse`: its owner
  // refuses every Hello.
  SessionModel(const LibraryFixture& world, const peer::SessionConfig& config, bool refuse,
               kj::TimePoint start);

  // --- what the script sends, as the session will process it at `now` -------------------------
  void replay(kj::ArrayPtr<const kj::byte> bytes, kj::TimePoint now);
  // Deadlines that pass by `now`. With `timingUnknown`, after the handshake they are the
  // session's call (the driver adopts what it chose).
  void predictTime(kj::TimePoint now, bool timingUnknown);
  // The first ending predicted is the one that counts.
  void expect(Ending ending, kj::Maybe<wire::ErrorCode> code, kj::StringPtr why);

  // Request ids for the script: `step` picks the next, a skip, a reuse, or one far ahead.
  uint64_t nextId(uint8_t step) const;
  uint64_t lastIncoming() const { return lastIncomingId; }
  // The oldest request still owed an answer (the last one when none is).
  uint64_t oldestOpenRequest() const;

  // --- what the session sends -----------------------------------------------------------------
  void check(const codec::InboundFrame& frame, bool timingUnknown);

  // --- the end --------------------------------------------------------------------------------
  // [RQ-4]: every request guaranteed an answer got its terminal one.
  void checkAllAnswered() const;
  // Our end of stream cuts a frame the session was reading.
  bool streamEndsInsideFrame() { return !shadowFailed && shadow.finish() != nullptr; }
  // How it closed against the prediction. `stalled`: we stopped reading while time passed, so
  // only the reason is checked.
  void checkEnding(peer::CloseReason reason, kj::StringPtr detail, bool stalled,
                   bool timingUnknown) const;

  kj::Maybe<const Expected&> expectation() const { return expected; }
  bool ended() const { return expected != nullptr; }
  bool isEstablished() const { return established; }
  bool sentGoodbye() const { return goodbyeSent; }

 private:
  const LibraryFixture& world;
  const peer::SessionConfig& config;
  bool refuse;
  kj::TimePoint start;

  // The session's reader, replayed: kMinFrameBytes until the handshake completes ([FR-9]).
  codec::FrameDecoder shadow;
  bool shadowFailed = false;
  bool established = false;
  kj::Maybe<Expected> expected;  // set once the session must end
  uint64_t lastIncomingId = 0;
  kj::TimePoint lastReceived = kj::origin<kj::TimePoint>();
  bool pingDue = false;
  size_t pingsPredicted = 0;
  bool goodbyeSent = false;
  kj::TimePoint goodbyeAt = kj::origin<kj::TimePoint>();
  uint32_t maxFrameBytes = codec::kMinFrameBytes;  // ours, as our Hello announced it
  uint32_t maxChunkBytes = 1;                      // ours, likewise
  kj::HashMap<uint64_t, Request> requests;
  kj::Vector<uint64_t> pingNonces;

  // What the session sent so far.
  size_t framesIn = 0;
  bool finalSeen = false;  // Reject or Error{0} received
  kj::Maybe<wire::ErrorCode> errorZeroSeen;
  kj::Maybe<wire::ErrorCode> rejectSeen;
  size_t pingsIn = 0;

  void received(const codec::InboundFrame& frame, kj::TimePoint now);
  void receivedHello(wire::Hello::Reader hello, kj::TimePoint now);
  void received(const codec::Failure& failure, kj::TimePoint now);
  void request(wire::Frame::Reader root);
  kj::Maybe<wire::ErrorCode> chunkVerdict(Request& r, const codec::Digest& digest);

  void checkFirst(wire::Frame::Reader root, size_t bytes);
  void checkPong(uint64_t nonce);
  void answer(wire::Frame::Reader root);
  void checkError(uint64_t id, Request& r, wire::ErrorCode code);
  void checkChunk(Request& r, wire::Chunk::Reader chunk);
  void checkManifest(uint64_t id, Request& r, uint32_t page, wire::Manifest::Reader m);
  void checkSnapshot(Request& r, uint32_t page, wire::LibrarySnapshot::Reader s);
  void checkDelta(Request& r, uint32_t page, wire::LibraryDelta::Reader d);
};

}  // namespace shoal::fuzz
