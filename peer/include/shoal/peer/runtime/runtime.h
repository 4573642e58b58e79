// Runtime: one reference peer on one event-loop thread. It owns the identity, the library, the
// peer table, every connection and every supervised service, and stops them in the order of
// DESIGN.md: stop accepting and dialling → Goodbye to every session → drain → join → Stopped.
// Nothing it starts outlives it; RuntimeHandle is its only thread-safe surface.
#pragma once

#include <kj/async-io.h>
#include <kj/function.h>
#include <kj/thread.h>
#include <shoal/peer/discovery/discovery.h>
#include <shoal/peer/library/index-cache.h>
#include <shoal/peer/library/library-sync.h>
#include <shoal/peer/library/library.h>
#include <shoal/peer/library/scanner.h>
#include <shoal/peer/runtime/admission.h>
#include <shoal/peer/runtime/chunk-readers.h>
#include <shoal/peer/runtime/config.h>
#include <shoal/peer/runtime/download-service.h>
#include <shoal/peer/runtime/event-bus.h>
#include <shoal/peer/runtime/peer-table.h>
#include <shoal/peer/runtime/redial-backoff.h>
#include <shoal/peer/runtime/report-throttle.h>
#include <shoal/peer/runtime/request-server.h>
#include <shoal/peer/runtime/supervisor.h>
#include <shoal/peer/runtime/upload-limit.h>
#include <shoal/peer/session/session.h>
#include <shoal/peer/transport/identity.h>
#include <shoal/peer/transport/tls.h>
#include <atomic>

namespace shoal::peer {

// What the runtime shows of one established peer: `shoal peers`, PeerFound events, tests.
struct PeerFacts {
  const RemotePeer& remote;
  kj::StringPtr address;
  Role role;
  bool leaving;                         // it said Goodbye
  const library::LibraryView& library;  // its library as we follow it
  bool authenticated;                   // false only in plaintext mode
  uint64_t bytesIn;
  uint64_t bytesOut;
  control::FoundBy foundBy;  // how we came to know it
  kj::Duration foundSince;   // since when, from the runtime's start
  // When the GetLibrary it refused (busy, unavailable) is asked again, by the runtime's timer.
  kj::Maybe<kj::TimePoint> libraryRetryAt;
};

// The runtime's own counters and state, for `shoal status`.
struct RuntimeFacts {
  kj::Maybe<kj::StringPtr> listen;  // once bound
  kj::Duration uptime;
  size_t peers;
  uint64_t handshakeFailures;
  uint64_t admissionDrops;  // of those: evicted, or silent past the first-bytes deadline
  size_t leftOutPaths;
  size_t handshakesPending;
  size_t downloadTasks;  // promises the download service owns: 0 when no download runs
  kj::Maybe<library::ScanReport> scan;  // while a library scan runs
};

// What came of asking for a download (the control API's DownloadStart).
enum class DownloadStart : uint8_t { started, alreadyRunning, inLibrary, stopping, badId };

class Runtime final : private Supervisor::Observer,
                      private discovery::Discovery::Host,
                      private download::DownloadSources {
 public:
  // Loads (or creates) the identity and opens the library root: a bad key file, a missing
  // library folder or a TLS set-up failure throws here, before anything runs.
  Runtime(RuntimeConfig config, kj::AsyncIoContext& io, EventBus& bus);
  ~Runtime() noexcept(false);
  KJ_DISALLOW_COPY(Runtime);

  // Starts everything and resolves once the runtime has stopped (after shutdown(), or after a
  // Required service failed) with every connection, service and scan joined. Never rejects: a
  // failure to start is a RuntimeFailed event followed by Stopped.
  kj::Promise<void> run();

  // Begins the clean shutdown; idempotent.
  void shutdown(kj::StringPtr why);
  bool isStopping() const { return stopping; }

  // A supervised service of the embedder's (the control socket, signals, tests). Before or
  // during run(). A `last` service keeps running through the shutdown until after Stopped.
  void addService(kj::StringPtr name, Policy policy, kj::Function<kj::Promise<void>()> body,
                  Stage stage = Stage::main);
  // Called on the event loop for every event, after it went to the EventBus.
  void onEvent(kj::Function<void(const EventRecord&)> listener);

  const RuntimeConfig& configuration() const { return config; }
  const PeerId& id() const { return identity->id(); }
  kj::Maybe<kj::StringPtr> boundAddress() const { return bound; }
  const library::Library& localLibrary() const { return library; }
  const RequestServer& requestServer() const { return KJ_ASSERT_NONNULL(server); }
  const ChunkReaders& chunkReaders() const { return *KJ_ASSERT_NONNULL(readers); }

  // Rescans the library now (coalesced with a scan in progress); resolves to whether it changed.
  kj::Promise<bool> rescan();

  // For the control API (control/control-replies.h builds its replies from these) and tests.
  RuntimeFacts facts() const;
  // Every established peer the peer table holds, in peer-id order.
  void forEachPeer(kj::FunctionParam<void(const PeerFacts&)> func) const;

  // Downloads (downloads.c++): start one (events follow: downloadStarted ... downloadEnded, with
  // `message` saying why when it did not start), cancel one, and what runs.
  DownloadStart startDownload(kj::StringPtr itemId, kj::String& message);
  bool cancelDownload(kj::StringPtr itemId);
  void forEachDownload(kj::FunctionParam<void(kj::StringPtr, download::DownloadStatus)> func) const;
  bool isDownloading(kj::StringPtr itemId) const;

 private:
  struct Connection;
  struct ConnectionEnd;
  struct StaticPeer;
  class TaskErrors final : public kj::TaskSet::ErrorHandler {
   public:
    void taskFailed(kj::Exception&& exception) override;
  };
  struct HandshakeFailure {
    kj::String address;
    kj::StringPtr stage;
    kj::String reason;
  };

  RuntimeConfig config;
  kj::AsyncIoContext& io;
  kj::Timer& timer;
  const kj::MonotonicClock& clock;  // when answers arrive (the timer lags behind it in a busy turn)
  EventBus& bus;
  kj::TimePoint startedAt;
  uint64_t instanceId;
  kj::TimePoint stopStartedAt;

  kj::AutoCloseFd rootFd;  // first: a missing library is an error, never created by accident
  kj::Own<Identity> identity;
  kj::AutoCloseFd stateLock;
  kj::AutoCloseFd stateFd;  // the state folder, for the downloads' partial folders
  kj::Maybe<kj::Own<TlsContext>> tls;
  library::IndexCache cache;  // loaded from the state folder: a restart re-hashes only what changed
  library::Library library;
  kj::Maybe<RequestServer> server;
  kj::Maybe<UploadLimit> uploadLimit;  // --max-upload-rate
  // GetChunk's disk work; after the connections that wait for its answers (~Runtime).
  kj::Maybe<kj::Own<ChunkReaders>> readers;
  PeerTable peers;

  kj::HashMap<uint64_t, Connection*> live;  // by generation
  uint64_t nextGeneration = 1;
  kj::Maybe<kj::String> bound;
  kj::Maybe<kj::Own<kj::ConnectionReceiver>> receiver;  // bound before the first scan

  Admission admission;  // inbound connections before their session
  ReportThrottle<HandshakeFailure> failureReports;
  kj::Maybe<kj::Own<kj::PromiseFulfiller<void>>> admissionWake;
  kj::Maybe<kj::TimePoint> admissionArmed;
  uint64_t handshakeFailures = 0;
  uint64_t admissionDrops = 0;
  kj::Vector<kj::Own<StaticPeer>> staticPeers;

  std::atomic<bool> stopScan{false};
  bool scanInProgress = false;
  kj::Vector<kj::Own<kj::PromiseFulfiller<bool>>> scanWaiters;
  kj::Maybe<kj::Own<kj::Thread>> scanThread;
  // Items downloads finished, for the index cache when the next scan starts (not hashed again).
  kj::Vector<kj::Own<const library::Item>> verifiedItems;
  bool cacheGrew = false;  // by verified items: save the cache even if the scan hashed nothing
  library::ScanProgress scanProgress;  // written by the scan's threads while scanInProgress
  kj::TimePoint scanStartedAt = kj::origin<kj::TimePoint>();
  kj::HashSet<kj::String> leftOut;  // what the last scan left out, each said once until it changes

  kj::Vector<kj::Function<void(const EventRecord&)>> listeners;

  // Before the supervisor and the connections, so it outlives what runs it and what it dials.
  kj::Maybe<kj::Own<discovery::Discovery>> discovery;

  bool stopping = false;
  bool failed = false;
  kj::Own<kj::PromiseFulfiller<void>> stopRequested;
  kj::Maybe<kj::Promise<void>> stopSignal;

  Supervisor supervisor;
  // Its downloads mark their items in the library and send their requests through the sessions:
  // destroyed before the connections (~Runtime, stop()).
  kj::Maybe<kj::Own<DownloadService>> downloads;
  TaskErrors taskErrors;
  kj::Maybe<kj::Own<kj::TaskSet>> tasks;        // runtime-scope work: scans, rescans
  kj::Maybe<kj::Own<kj::TaskSet>> connections;  // every connection, until it has ended

  // Lifecycle (runtime.c++).
  kj::Promise<void> start();
  kj::Promise<void> stop();
  kj::Promise<void> joinScan();
  void startScan();
  bool applyScan(library::ScanResult result);
  kj::Promise<void> reportScanProgress();
  void emitScanProgress(bool done);
  void reportLeftOut(kj::ArrayPtr<const kj::String> skipped);
  LocalPeer localPeer() const;
  void emit(kj::FunctionParam<void(control::Event::Builder)> fill);
  PeerFacts factsOf(const Connection& connection) const;

  // Services (services.c++).
  kj::Promise<void> bind();
  kj::Promise<void> acceptLoop(kj::ConnectionReceiver& listening);
  void admit(kj::Own<kj::AsyncIoStream> stream);
  kj::Promise<void> admissionTimer();
  void rearmAdmissionTimer();
  void dropPending(uint64_t generation, kj::StringPtr code, kj::String reason);
  kj::Promise<void> dialAll();
  kj::Promise<void> dialLoop(StaticPeer& peer);
  kj::Promise<ConnectionEnd> dialOnce(StaticPeer& peer);
  kj::Promise<ConnectionEnd> dialAddress(kj::StringPtr address, control::FoundBy foundBy,
                                         kj::TimePoint foundAt);
  kj::Promise<ConnectionEnd> runDialled(kj::Own<kj::AsyncIoStream> stream, kj::String address,
                                        control::FoundBy foundBy, kj::TimePoint foundAt);
  kj::Promise<void> afterDial(StaticPeer& peer, ConnectionEnd end);
  kj::Promise<void> liveness();
  kj::Promise<void> watchLibrary();

  // Discovery (discovery-service.c++): the service, the dial it asks for, what it is told.
  kj::Promise<void> discover();
  void discoveryPeerUp(const PeerId& id, uint64_t instanceId);
  void discoveryPeerDown(const PeerId& id);
  void settleDiscoveryDial(Connection& connection);  // its handshake is done: who answered is known
  // How we came to know the peer of `connection`, and since when (from the runtime's start).
  kj::Tuple<control::FoundBy, kj::Duration> foundOf(const Connection& connection) const;
  discovery::Announce localAnnounce() override;
  bool accepts(discovery::BeaconSocket::Family family) override;
  kj::Promise<discovery::DialOutcome> dial(const PeerId& claimedId, kj::StringPtr address,
                                           discovery::FoundBy by) override;

  // Connections (connections.c++).
  Connection& startConnection(Role role, kj::Own<kj::AsyncIoStream> stream, kj::String address,
                              uint64_t generation);
  kj::Promise<void> runConnection(Connection& connection, kj::Own<kj::AsyncIoStream> stream);
  kj::Promise<void> startSession(Connection& connection, kj::Own<Transport> transport);
  void connectionEnded(Connection& connection);
  void reportHandshakeFailure(HandshakeFailure failure);
  void emitHandshakeFailed(ReportThrottle<HandshakeFailure>::Report report);
  void pumpSync(Connection& connection);
  void sendGetLibrary(Connection& connection, library::LibraryView::Since since);
  bool isAllowed(const PeerId& peer) const;

  // What each connection's session reports (Connection is its SessionHandler).
  kj::Maybe<Rejection> onHello(const RemotePeer& peer);
  void onEstablished(Connection& connection);
  kj::Promise<kj::Array<codec::FrameBuilder>> serve(Connection& connection, uint64_t id,
                                                    codec::InboundFrame request);
  void onGoodbye(Connection& connection, const event::GoodbyeReceived& goodbye);
  void onWriterDone(Connection& connection);
  void onClosed(Connection& connection, const event::Closed& closed);

  // Downloads (downloads.c++).
  download::Folders folders() const;
  void publishLibrary();
  void emitDownloadEvent(kj::StringPtr itemId, const download::DownloadEvent& event);
  void downloadEnded(kj::StringPtr itemId, DownloadService::Ending ending);
  kj::Array<download::Source> sources(kj::StringPtr itemId) override;
  kj::Promise<Reply> request(
      download::SourceKey source, codec::FrameBuilder frame,
      kj::Maybe<kj::Function<void(const codec::InboundFrame&)>> onPage) override;
  void misbehaved(download::SourceKey source, kj::StringPtr message) override;

  // Supervisor::Observer.
  void onRequiredFailed(kj::StringPtr service, kj::StringPtr error) override;
  void onRestarting(kj::StringPtr service, kj::StringPtr error, kj::Duration backoff) override;
  void onGaveUp(kj::StringPtr service, kj::StringPtr error) override;
};

}  // namespace shoal::peer
