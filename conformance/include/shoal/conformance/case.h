// A conformance case and one run of it. CaseSpec is the static definition (id, requirement, role,
// what it needs from the target, its script); Trial is the context the script runs in: it opens
// connections in the target's role, offers the steps (send, expect a frame from an acceptance set,
// expect a close, expect silence, wait, trigger the control API), and keeps the first failure as
// a value. After a failure every later step returns at once, so scripts read straight down
// without a check after each line (the model is codec's Validator).
#pragma once

#include <kj/async-io.h>
#include <kj/function.h>
#include <kj/vector.h>
#include <shoal/conformance/connection.h>
#include <shoal/conformance/fixture.h>
#include <shoal/conformance/source.h>
#include <shoal/conformance/target.h>

namespace shoal::conformance {

enum class Verdict : uint8_t {
  ok,             // the target did what the requirement says
  fail,           // it broke a MUST (or a monitor caught a MUST broken on the way)
  nonStrict,      // it broke a SHOULD
  unimplemented,  // the case needs what this target does not offer (control API, launch, ...)
  error,          // the harness could not run the case (environment, launch failure)
  xfail,          // failed, as the expected-failure list says it would
  xpass,          // passed although listed as an expected failure: the list is stale
};
kj::StringPtr name(Verdict v);

enum class Level : uint8_t { must, should };

// What a case needs; a case whose needs are not met is UNIMPLEMENTED.
namespace need {
constexpr uint32_t launch = 1;   // a target launched for this case (fixture, settings)
constexpr uint32_t control = 2;  // the target's control API
constexpr uint32_t tlsOnly = 4;  // meaningless in plaintext mode (identity, TLS itself)
constexpr uint32_t plaintextOnly = 8;
constexpr uint32_t stopsTarget = 16;  // the case stops the target: no liveness probe after it
constexpr uint32_t discovery = 32;    // the interface the target announces on (--discovery)
}  // namespace need

// Launch settings of one case; they become the command's placeholders.
struct Settings {
  FixtureKind fixture = FixtureKind::standard;
  uint32_t handshakeMs = 5000;
  uint32_t idleMs = 60000;
  uint32_t deadMs = 120000;
  uint32_t drainMs = 1000;
  uint32_t maxInFlight = 64;
  uint32_t maxConnections = 64;
  uint32_t rescanMs = 600000;
  uint32_t chunkSize = 65536;
  bool discover = false;      // the target announces itself ({if:discover:...}, --discovery)
  uint32_t discoverMs = 300;  // its announce interval ({discover-ms})
  enum class Trust : uint8_t { open, pinnedHarness, pinnedOther, pinnedLowercase, pinnedBadCheck };
  Trust trust = Trust::open;
};

class Trial;

struct CaseSpec {
  kj::StringPtr id;           // "<area>/<requirement>/<n>"
  kj::StringPtr requirement;  // "HS-3"
  Role role;                  // the target's role
  kj::StringPtr title;        // what the case does, in a line
  void (*run)(Trial&);
  uint32_t needs = 0;
  Settings settings = {};
  kj::Maybe<Level> level = nullptr;   // overrides the requirement's level (a SHOULD part of a MUST)
  kj::StringPtr badInputs = nullptr;  // lines of docs/bad-inputs.md the case covers, e.g. "1, 2"
};

kj::String areaOf(const CaseSpec& spec);  // "hs" from "hs/HS-3/1"

// The environment a trial runs in, set up by the runner.
struct TrialEnv {
  kj::AsyncIoContext& io;
  bool tls;
  kj::String targetAddress;           // host:port the target accepts connections on
  kj::Maybe<PeerId> targetId;         // known beforehand (attached with --target-id)
  kj::Maybe<kj::String> controlPath;  // its control socket, if the adapter has one
  kj::Maybe<Process&> process;        // launched targets only
  kj::Maybe<Fixture&> fixture;        // launched targets only
  kj::Maybe<kj::ConnectionReceiver&> harnessListener;  // initiator cases: the target dials here
  const Identity& harnessIdentity;  // the key the target was told about (pinned, {harness-id})
  kj::Duration stepTimeout;         // for expectations
  kj::Duration quiet;               // "nothing happens within" windows
  kj::Maybe<kj::StringPtr> stateDir = nullptr;  // launched targets only: the `{state}` folder
  // --discovery / --discovery-other: the interface the target announces on, and one it must not.
  kj::Maybe<kj::StringPtr> discoveryInterface = nullptr;
  kj::Maybe<kj::StringPtr> otherInterface = nullptr;
};

struct Failure {
  kj::StringPtr requirement;
  kj::String expected;
  kj::String actual;
};

class Trial {
 public:
  Trial(const CaseSpec& spec, Level level, TrialEnv& env);
  ~Trial() noexcept(false);
  KJ_DISALLOW_COPY(Trial);

  // --- the environment -------------------------------------------------------------------------
  const CaseSpec& spec() const { return caseSpec; }
  Role role() const { return caseSpec.role; }
  bool tls() const { return env.tls; }
  kj::Timer& timer() { return env.io.provider->getTimer(); }
  kj::AsyncIoContext& io() { return env.io; }
  const Identity& identity() const { return env.harnessIdentity; }
  kj::Duration stepTimeout() const { return env.stepTimeout; }
  kj::Duration quiet() const { return env.quiet; }
  kj::Maybe<Fixture&> fixture() { return env.fixture; }
  kj::Maybe<PeerId> targetId() const;  // known, or learnt from TLS on a connection
  Transcript& transcript() { return log; }
  // A fresh announcement for the harness: its identity's id, a random instance id.
  Announce announce() const;

  // --- connections (null after a failure) ------------------------------------------------------
  struct Open {
    kj::Maybe<const Identity&> identity;  // default: the harness identity
    TlsProfile profile;
    kj::Maybe<Announce> announce;  // what this connection will say in Hello / HelloAck
    bool requestsToCase = false;   // the target's requests go to the case, not a source
    kj::Maybe<Source&> source =
        nullptr;  // serves the target's requests (default: an empty library)
  };
  // Opens a connection in the case's role: dials the target (responder) or accepts its next
  // connection (initiator). TLS per the run's mode.
  kj::Maybe<Connection&> open(Open options);
  kj::Maybe<Connection&> open() { return open(Open{}); }
  // Opens and completes the handshake: sends Hello and expects HelloAck, or expects Hello and
  // answers HelloAck. The connection then serves an empty library to the target's requests.
  kj::Maybe<Connection&> establish(Open options);
  kj::Maybe<Connection&> establish() { return establish(Open{}); }
  // A TLS handshake only, reporting a refusal as a value (TLS cases); null after a failure.
  kj::Maybe<kj::OneOf<kj::Own<Channel>, TlsRefused>> tlsHandshake(Open options);
  // The raw TCP stream of a new connection in the case's role, before any TLS.
  kj::Maybe<kj::Own<kj::AsyncIoStream>> rawStream();
  // Wraps an existing channel as a connection of this trial.
  Connection& adopt(kj::Own<Channel> channel, Announce announce);

  // --- expectations ----------------------------------------------------------------------------
  using Match = kj::Function<bool(wire::Frame::Reader)>;
  // The next frame that matches `match`, within the step timeout; frames of other kinds are
  // skipped but remembered. Fails on close or timeout.
  kj::Maybe<codec::InboundFrame> expectFrame(Connection& c, kj::StringPtr what, Match match,
                                             kj::StringPtr requirement = nullptr);
  // Like expectFrame, but the very next frame must match (no other frame first).
  kj::Maybe<codec::InboundFrame> expectNext(Connection& c, kj::StringPtr what, Match match,
                                            kj::StringPtr requirement = nullptr);
  // Error{0, code} and then the end of the connection ([FR-12] and friends).
  bool expectConnectionError(Connection& c, wire::ErrorCode code,
                             kj::StringPtr requirement = nullptr);
  // Reject{code} and then the end of the connection.
  bool expectReject(Connection& c, wire::ErrorCode code, kj::StringPtr requirement = nullptr);
  // The connection ends within `timeout` without another frame (anything but background).
  bool expectClose(Connection& c, kj::Duration timeout, kj::StringPtr requirement = nullptr);
  bool expectClose(Connection& c) { return expectClose(c, stepTimeout()); }
  // Nothing (no frame, no close) within `window`.
  bool expectSilence(Connection& c, kj::Duration window, kj::StringPtr requirement = nullptr);
  // Sends a request and collects every page of its answer up to the terminal one.
  kj::Maybe<kj::Array<codec::InboundFrame>> request(Connection& c, FrameBuilder frame);
  // The connection still works: Ping, then the matching Pong.
  bool expectAlive(Connection& c, kj::StringPtr requirement = nullptr);

  // --- judging ---------------------------------------------------------------------------------
  bool check(bool condition, kj::StringPtr requirement, kj::StringPtr expected, kj::String actual);
  void fail(kj::StringPtr requirement, kj::String expected, kj::String actual);
  void unimplemented(kj::String why);
  void harnessError(kj::String why);
  void violation(Violation v);
  void note(kj::String text);
  void step(kj::String text);
  void wait(kj::Duration d, kj::StringPtr why);
  bool failed() const { return firstFailure != nullptr || stopped; }

  // --- the target itself -----------------------------------------------------------------------
  // One control API client for the trial; UNIMPLEMENTED when the target has none.
  kj::Maybe<ControlClient&> control();
  // Stops the target: SIGTERM to a launched one (unless `viaControl`), else control stop(). Does
  // not wait for it to end.
  bool stopTarget(bool viaControl = false);
  kj::Maybe<Process&> process() { return env.process; }
  kj::Maybe<kj::StringPtr> stateDir() const { return env.stateDir; }
  kj::Maybe<kj::StringPtr> discoveryInterface() const { return env.discoveryInterface; }
  kj::Maybe<kj::StringPtr> otherInterface() const { return env.otherInterface; }
  uint16_t targetPort() const;  // the port of the target's address

  // --- the target's events (control API `subscribe`) -------------------------------------------
  // Subscribes on first use; UNIMPLEMENTED when the target has no control API.
  kj::Maybe<EventLog&> events();
  using EventMatch = kj::Function<bool(control::Event::Reader)>;
  // The index of the first event from `from` on that matches `match`, waiting up to `timeout`;
  // a failure of `requirement` when none comes. Every event is copied into the transcript.
  kj::Maybe<size_t> expectEvent(kj::StringPtr what, EventMatch match, kj::Duration timeout,
                                size_t from = 0, kj::StringPtr requirement = nullptr);

  // --- results ---------------------------------------------------------------------------------
  Verdict verdict() const;
  kj::Maybe<const Failure&> failure() const { return firstFailure; }
  kj::ArrayPtr<const Violation> violations() const { return seen; }
  kj::StringPtr unimplementedReason() const { return skipReason; }
  // How the target closed the case's first connection, if it did ("" otherwise).
  kj::String closeSummary() const;
  void closeAll();

 private:
  kj::Maybe<codec::InboundFrame> waitFor(Connection& c, kj::StringPtr what, Match& match,
                                         kj::StringPtr requirement, bool strict,
                                         kj::Duration timeout);
  kj::String describe(const Event& event, bool tls) const;
  kj::Maybe<kj::Own<kj::AsyncIoStream>> acceptStream();

  const CaseSpec& caseSpec;
  Level level;
  TrialEnv& env;
  Transcript log;
  ConnectionContext context;
  kj::Vector<kj::Own<Connection>> connections;
  kj::Maybe<Failure> firstFailure;
  kj::Vector<Violation> seen;
  kj::String skipReason;
  bool skipped = false;
  bool stopped = false;  // unimplemented or harness error: stop the script
  bool errored = false;
  kj::Maybe<kj::Own<ControlClient>> controlClient;
  kj::Maybe<EventLog&> eventLog;  // owned by `eventSink`'s capability
  kj::Maybe<control::EventSink::Client> eventSink;
  size_t eventsLogged = 0;
  void logEvents();
  ScriptedLibrary emptyLibrary;  // what the harness serves by default: nothing
  kj::Own<LibrarySource> emptySource;
};

// Every case of the suite, in a stable order.
kj::Array<CaseSpec> allCases();

// The cases of one area, added by cases/<area>.c++.
void transportCases(kj::Vector<CaseSpec>& out);
void framingCases(kj::Vector<CaseSpec>& out);
void handshakeCases(kj::Vector<CaseSpec>& out);
void requestCases(kj::Vector<CaseSpec>& out);
void libraryCases(kj::Vector<CaseSpec>& out);
void manifestCases(kj::Vector<CaseSpec>& out);
void chunkCases(kj::Vector<CaseSpec>& out);
void livenessCases(kj::Vector<CaseSpec>& out);
void goodbyeCases(kj::Vector<CaseSpec>& out);
void errorCases(kj::Vector<CaseSpec>& out);
void downloadCases(kj::Vector<CaseSpec>& out);   // the target as downloader
void discoveryCases(kj::Vector<CaseSpec>& out);  // inside a network namespace only

}  // namespace shoal::conformance
