// `shoal get ITEM` and `shoal cancel ITEM`: start (or follow) a download in a running peer and
// follow its events to the end — a live progress line on a terminal, NDJSON with --json — and
// exit with a status that says how it ended; stop one between chunks.
#include <capnp/compat/json.h>
#include <stdio.h>

#include "client-command.h"

namespace shoal::peer::cli {

namespace {

// `shoal get` exit statuses (also in its --help, README.md and docs/downloads.md).
constexpr int kExitFinished = 0;      // complete, verified, in the library
constexpr int kExitFailed = 3;        // a local failure (disk, paths) or a refused item id
constexpr int kExitCancelled = 4;     // `shoal cancel`
constexpr int kExitAllPeersGone = 5;  // no peer with the item left; progress kept
constexpr int kExitStopped = 6;       // the peer shut down; progress kept

// How long `shoal cancel` waits for the download to report its end (it stops between chunks).
constexpr kj::Duration kCancelReportWait = 30 * kj::SECONDS;

// The item a download event is about, or null for every other event.
kj::Maybe<capnp::Text::Reader> downloadItemOf(control::Event::Reader e) {
  switch (e.which()) {
    case control::Event::DOWNLOAD_STARTED: return e.getDownloadStarted().getItemId();
    case control::Event::DOWNLOAD_MANIFEST: return e.getDownloadManifest().getItemId();
    case control::Event::DOWNLOAD_PROGRESS: return e.getDownloadProgress().getItemId();
    case control::Event::DOWNLOAD_BAD_CHUNK: return e.getDownloadBadChunk().getItemId();
    case control::Event::DOWNLOAD_SOURCE_DROPPED: return e.getDownloadSourceDropped().getItemId();
    case control::Event::DOWNLOAD_ALL_PEERS_GONE: return e.getDownloadAllPeersGone().getItemId();
    case control::Event::DOWNLOAD_ENDED: return e.getDownloadEnded().getItemId();
    default: return nullptr;
  }
}

int exitStatusOf(kj::StringPtr outcome) {
  if (outcome == "finished") return kExitFinished;
  if (outcome == "cancelled") return kExitCancelled;
  if (outcome == "allPeersGone") return kExitAllPeersGone;
  if (outcome == "stopped") return kExitStopped;
  return kExitFailed;
}

kj::String formatRate(double bytesPerSecond) {
  return kj::str(formatBytes(uint64_t(bytesPerSecond)), "/s");
}

kj::String formatSeconds(double seconds) {
  char text[32];
  if (seconds < 60) {
    snprintf(text, sizeof(text), "%.1f s", seconds);
  } else {
    snprintf(text, sizeof(text), "%dm%02ds", int(seconds) / 60, int(seconds) % 60);
  }
  return kj::str(text);
}

enum class Output : uint8_t { text, json, quiet };

// Follows one item's download events until its downloadEnded (or the runtime's end), and
// resolves `ended` with the exit status that says how it ended.
class DownloadFollower final : public control::EventSink::Server {
 public:
  DownloadFollower(Terminal& terminal, kj::StringPtr itemId, Output output,
                   kj::Own<kj::PromiseFulfiller<int>> ended)
      : terminal(terminal),
        itemId(kj::str(itemId)),
        json(output == Output::json),
        text(output == Output::text),
        ended(kj::mv(ended)) {}

  kj::Promise<void> push(PushContext context) override {
    auto event = context.getParams().getEvent();
    KJ_IF_MAYBE (item, downloadItemOf(event)) {
      if (*item == itemId && ended->isWaiting()) follow(event);
    } else if (event.isStopped() && ended->isWaiting()) {
      if (json) terminal.json(capnp::JsonCodec().encode(event));
      if (text)
        terminal.note(kj::str("shoal get: the peer stopped; the progress of '", itemId,
                              "' is kept for the next `shoal get`"));
      ended->fulfill(kj::cp(kExitStopped));
    }
    return kj::READY_NOW;
  }

  kj::Promise<void> done(DoneContext context) override {
    (void)context;
    if (ended->isWaiting()) ended->fulfill(kj::cp(kExitStopped));
    return kj::READY_NOW;
  }

 private:
  Terminal& terminal;
  kj::String itemId;
  bool json;
  bool text;
  kj::Own<kj::PromiseFulfiller<int>> ended;
  kj::Maybe<uint64_t> startMs;  // the first progress of this run: the rate excludes resumed bytes
  uint64_t startBytes = 0;
  kj::String shape;             // "in N files, M chunks", once the manifest is known
  kj::Maybe<uint64_t> firstMs;  // the first event of the download: the summary's time

  void follow(control::Event::Reader e) {
    if (firstMs == nullptr) firstMs = e.getTimeMs();
    if (json) terminal.json(capnp::JsonCodec().encode(e));
    switch (e.which()) {
      case control::Event::DOWNLOAD_PROGRESS: {
        auto p = e.getDownloadProgress();
        if (startMs == nullptr) {
          startMs = e.getTimeMs();
          startBytes = p.getBytesDone();
        }
        if (text) terminal.progress(progressLine(e.getTimeMs(), p));
        break;
      }
      case control::Event::DOWNLOAD_MANIFEST: {
        auto m = e.getDownloadManifest();
        shape = kj::str(" in ", m.getFiles(), " files, ", m.getChunks(), " chunks");
        if (text) terminal.note(describeEvent(e));
        break;
      }
      case control::Event::DOWNLOAD_ENDED: {
        auto d = e.getDownloadEnded();
        if (text) report(e.getTimeMs(), d);
        ended->fulfill(exitStatusOf(d.getOutcome()));
        break;
      }
      default:
        if (text) terminal.note(describeEvent(e));
        break;
    }
  }

  double rateAt(uint64_t nowMs, uint64_t bytesDone) const {
    KJ_IF_MAYBE (start, startMs) {
      if (nowMs > *start && bytesDone > startBytes) {
        return double(bytesDone - startBytes) * 1000 / double(nowMs - *start);
      }
    }
    return 0;
  }

  kj::String progressLine(uint64_t nowMs, control::Event::DownloadProgress::Reader p) {
    auto done = p.getBytesDone(), total = p.getBytesTotal();
    char percent[16];
    snprintf(percent, sizeof(percent), "%5.1f%%",
             total == 0 ? 0.0 : 100.0 * double(done) / double(total));
    double rate = rateAt(nowMs, done);
    auto eta = rate > 0 ? formatSeconds(double(total - done) / rate) : kj::str("?");
    return kj::str(itemId, "  ", percent, "  ", formatBytes(done), " / ", formatBytes(total), "  ",
                   formatRate(rate), "  ETA ", eta, "  ", p.getSourcesInUse(),
                   p.getSourcesInUse() == 1 ? " peer" : " peers");
  }

  void report(uint64_t nowMs, control::Event::DownloadEnded::Reader d) {
    auto outcome = d.getOutcome();
    if (outcome != "finished") {
      auto why = d.getMessage().size() > 0 ? kj::str(": ", d.getMessage()) : kj::str();
      terminal.note(kj::str("shoal get: '", itemId, "' ", describeOutcome(outcome), why));
      return;
    }
    uint64_t total = 0;
    for (auto s : d.getSources())
      total += s.getBytes();
    kj::Vector<kj::String> shares;
    for (auto s : d.getSources()) {
      if (s.getBytes() == 0) continue;
      shares.add(kj::str(shortId(s.getPeerId()), " ", s.getBytes() * 100 / kj::max(total, 1), "%"));
    }
    // `total` is what the sources delivered in this run (a resumed download fetched less).
    double seconds = double(nowMs - KJ_ASSERT_NONNULL(firstMs)) / 1000;
    auto rate = seconds > 0 ? formatRate(double(total) / seconds) : kj::str("-");
    terminal.line(kj::str("downloaded '", itemId, "': ", formatBytes(d.getBytesTotal()), shape,
                          ", every chunk verified (SHA-256) before it was written; ",
                          formatBytes(total), " fetched in ", formatSeconds(seconds), " at ", rate,
                          "; from ", kj::strArray(shares, ", ")));
  }

  static kj::StringPtr describeOutcome(kj::StringPtr outcome) {
    if (outcome == "cancelled") return "cancelled (progress kept)";
    if (outcome == "allPeersGone") return "stopped: no peer with the item is left (progress kept)";
    if (outcome == "stopped") return "stopped: the peer is shutting down (progress kept)";
    return "FAILED";
  }
};

// Subscribes `sink` to the runtime's events, before anything it should see happens.
void subscribe(control::Control::Client& control, kj::WaitScope& ws,
               control::EventSink::Client sink) {
  auto request = control.subscribeRequest();
  request.setSink(kj::mv(sink));
  request.send().wait(ws);
}

}  // namespace

kj::MainFunc getItemMain(Terminal& terminal) {
  return clientMain(
      terminal, "get",
      "Downloads ITEM into the library of a running peer from every connected peer that has it, "
      "and follows it: a progress line (percent, bytes, rate, ETA, peers in use), or with --json "
      "one JSON event per line. Every chunk is verified before it is written; the item appears in "
      "the library only complete. An interrupted download resumes where it stopped. Exit status: "
      "0 complete and verified in the library (or already there), 1 cannot talk to the peer, "
      "2 usage error, 3 failed (disk, paths, bad item id), 4 cancelled, 5 no peer with the item "
      "left, 6 the peer shut down.",
      [](ClientCommand& cmd, control::Control::Client& control, kj::WaitScope& ws,
         capnp::EzRpcClient&) {
        auto paf = kj::newPromiseAndFulfiller<int>();
        auto& itemId = cmd.argument;
        subscribe(control, ws,
                  kj::heap<DownloadFollower>(cmd.terminal, itemId,
                                             cmd.target.json ? Output::json : Output::text,
                                             kj::mv(paf.fulfiller)));
        auto request = control.downloadRequest();
        request.setItemId(itemId);
        auto reply = request.send().wait(ws);
        switch (reply.getResult()) {
          case control::DownloadStart::STARTED: break;
          case control::DownloadStart::ALREADY_RUNNING:
            if (!cmd.target.json) cmd.terminal.note(kj::str(reply.getMessage(), ": following it"));
            break;
          case control::DownloadStart::IN_LIBRARY:
            if (!cmd.target.json) cmd.terminal.line(reply.getMessage());
            cmd.terminal.exitWith(kExitFinished);
          case control::DownloadStart::STOPPING:
            cmd.terminal.note(kj::str("shoal get: ", reply.getMessage()));
            cmd.terminal.exitWith(kExitStopped);
          case control::DownloadStart::BAD_ID:
            cmd.terminal.note(kj::str("shoal get: ", reply.getMessage()));
            cmd.terminal.exitWith(kExitFailed);
        }
        cmd.terminal.exitWith(paf.promise.wait(ws));
      },
      kj::StringPtr("<item>"));
}

kj::MainFunc cancelMain(Terminal& terminal) {
  return clientMain(
      terminal, "cancel",
      "Stops the download of ITEM in a running peer between chunks and waits until it has "
      "stopped; its progress is kept, so `shoal get ITEM` resumes it.",
      [](ClientCommand& cmd, control::Control::Client& control, kj::WaitScope& ws,
         capnp::EzRpcClient& rpc) {
        auto paf = kj::newPromiseAndFulfiller<int>();
        auto& itemId = cmd.argument;
        subscribe(
            control, ws,
            kj::heap<DownloadFollower>(cmd.terminal, itemId, Output::quiet, kj::mv(paf.fulfiller)));
        auto request = control.cancelRequest();
        request.setItemId(itemId);
        if (!request.send().wait(ws).getCancelled()) {
          cmd.terminal.fail(kj::str("shoal cancel: no download of '", itemId, "' is running"));
        }
        bool seen = rpc.getIoProvider()
                        .getTimer()
                        .timeoutAfter(kCancelReportWait, kj::mv(paf.promise))
                        .then([](int) { return true; }, [](kj::Exception&&) { return false; })
                        .wait(ws);
        cmd.terminal.line(seen ? kj::str("cancelled '", itemId, "' (progress kept)")
                               : kj::str("cancelling '", itemId, "' (no end reported yet)"));
      },
      kj::StringPtr("<item>"));
}

}  // namespace shoal::peer::cli
