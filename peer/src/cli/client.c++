// Client commands: `shoal id`, `peers`, `ls`, `status`, `stop` (`get` and `cancel`: get.c++). All
// but `id` talk to a running peer over its control socket; every failure is one line on stderr and
// a non-zero exit.
#include <capnp/compat/json.h>
#include <capnp/ez-rpc.h>
#include <kj/async-io.h>
#include <kj/debug.h>
#include <kj/io.h>
#include <shoal/peer/transport/identity.h>
#include <shoal/schema/control.capnp.h>
#include <sys/stat.h>
#include <unistd.h>

#include "client-command.h"

namespace shoal::peer::cli {

namespace {

// How long `shoal stop` waits for the Stopped event: the runtime's own deadline (2 s by default)
// plus room for a slow machine.
constexpr kj::Duration kStopReportWait = 10 * kj::SECONDS;

template <typename... Cells>
kj::Array<kj::String> row(Cells&&... cells) {
  auto builder = kj::heapArrayBuilder<kj::String>(sizeof...(cells));
  (builder.add(kj::str(kj::fwd<Cells>(cells))), ...);
  return builder.finish();
}

// "beacon, 12 s ago", "static, 3 h ago".
kj::String foundBy(control::FoundBy by, uint64_t agoMs) {
  kj::StringPtr how = by == control::FoundBy::STATIC   ? "static"
                      : by == control::FoundBy::BEACON ? "beacon"
                      : by == control::FoundBy::MDNS   ? "mdns"
                                                       : "dialled us";
  uint64_t s = agoMs / 1000;
  auto ago = s < 120      ? kj::str(s, " s")
             : s < 7200   ? kj::str(s / 60, " min")
             : s < 172800 ? kj::str(s / 3600, " h")
                          : kj::str(s / 86400, " d");
  return kj::str(how, ", ", ago, " ago");
}

// What we have of a remote item: "-", "yes", or the download's progress.
kj::String localText(control::RemoteItem::Reader item) {
  switch (item.getLocal()) {
    case control::LocalState::ABSENT: return kj::str("-");
    case control::LocalState::IN_LIBRARY: return kj::str("yes");
    case control::LocalState::DOWNLOADING:
      return kj::str("downloading ",
                     item.getSize() == 0 ? 0 : item.getBytesDone() * 100 / item.getSize(), "%");
  }
  return kj::str("?");
}

// Receives the runtime's events during `shoal stop`, until Stopped.
class StopWatcher final : public control::EventSink::Server {
 public:
  explicit StopWatcher(kj::Own<kj::PromiseFulfiller<bool>> finished) : finished(kj::mv(finished)) {}

  kj::Promise<void> push(PushContext context) override {
    auto event = context.getParams().getEvent();
    if (event.isStopped() && finished->isWaiting()) {
      text = describeEvent(event);
      json = capnp::JsonCodec().encode(event);
      finished->fulfill(true);
    }
    return kj::READY_NOW;
  }

  kj::Promise<void> done(DoneContext context) override {
    (void)context;
    if (finished->isWaiting()) finished->fulfill(false);
    return kj::READY_NOW;
  }

  kj::String text;  // the Stopped event, once seen
  kj::String json;

 private:
  kj::Own<kj::PromiseFulfiller<bool>> finished;
};

}  // namespace

kj::MainFunc idMain(Terminal& terminal) {
  struct IdCommand {
    Terminal& terminal;
    Target target;
    Validity run() {
      KJ_IF_MAYBE (state, target.stateDir()) {
        // The key is created on first use, but only for a library that exists: a typo must not
        // leave a new folder and a new identity behind.
        KJ_IF_MAYBE (library, target.library) {
          struct stat st;
          if (stat(library->cStr(), &st) != 0 || !S_ISDIR(st.st_mode)) {
            terminal.fail(kj::str("shoal id: no library folder at ", *library));
          }
        }
        KJ_IF_MAYBE (exception, kj::runCatchingExceptions([&]() {
                       auto identity = Identity::loadOrCreate(*state);
                       auto id = formatPeerId(identity->id());
                       if (target.json) {
                         terminal.json(kj::str("{\"peerId\":\"", id, "\"}"));
                       } else {
                         terminal.line(id);
                       }
                     })) {
          terminal.fail(kj::str("shoal id: ", exception->getDescription()));
        }
        terminal.exit();
      }
      return "give --state or --library";
    }
  };
  auto command = kj::heap<IdCommand>(IdCommand{terminal, {}});
  kj::MainBuilder builder(terminal, "shoal id",
                          "Prints this peer's id (SHA-256 of its key), creating the key on first "
                          "use. Give it to others for their --allow.");
  command->target.addOptions(builder);
  auto main = builder.callAfterParsing(KJ_BIND_METHOD(*command, run)).build();
  return [command = kj::mv(command), main = kj::mv(main)](
             kj::StringPtr program, kj::ArrayPtr<const kj::StringPtr> params) mutable {
    main(program, params);
  };
}

kj::MainFunc peersMain(Terminal& terminal) {
  return clientMain(
      terminal, "peers", "Lists the peers a running peer is connected to.",
      [](ClientCommand& cmd, control::Control::Client& control, kj::WaitScope& ws,
         capnp::EzRpcClient&) {
        auto response = control.peersRequest().send().wait(ws);
        if (cmd.target.json) {
          cmd.terminal.json(capnp::JsonCodec().encode(response));
          return;
        }
        // "since" is on the runtime's clock: its uptime says how long ago that was.
        auto uptimeMs = control.statusRequest().send().wait(ws).getStatus().getUptimeMs();
        kj::Vector<kj::Array<kj::String>> rows;
        rows.add(row(kj::str("PEER"), kj::str("NAME"), kj::str("ADDRESS"), kj::str("DIAL"),
                     kj::str("STATE"), kj::str("REV"), kj::str("ITEMS"), kj::str("TLS"),
                     kj::str("FOUND BY")));
        for (auto p : response.getPeers()) {
          rows.add(
              row(shortId(p.getPeerId()), kj::str(p.getName()), kj::str(p.getAddress()),
                  kj::str(p.getDirection() == control::Direction::OUTBOUND ? "out" : "in"),
                  kj::str(p.getState() == control::PeerState::LEAVING ? "leaving" : "established"),
                  kj::str(p.getLibrary().getRev()), kj::str(p.getItems()),
                  kj::str(p.getAuthenticated() ? "yes" : "NO"),
                  foundBy(p.getFoundBy(), uptimeMs - kj::min(uptimeMs, p.getFoundMs()))));
        }
        cmd.terminal.table(rows);
        if (response.getPeers().size() == 0) cmd.terminal.line("(no peers connected)");
      });
}

kj::MainFunc lsMain(Terminal& terminal) {
  return clientMain(
      terminal, "ls",
      "Lists the items of every connected peer: id, name, size, files, whether this peer has it "
      "(yes, downloading N%, -), peers.",
      [](ClientCommand& cmd, control::Control::Client& control, kj::WaitScope& ws,
         capnp::EzRpcClient&) {
        auto response = control.itemsRequest().send().wait(ws);
        if (cmd.target.json) {
          cmd.terminal.json(capnp::JsonCodec().encode(response));
          return;
        }
        kj::Vector<kj::Array<kj::String>> rows;
        rows.add(row(kj::str("ITEM"), kj::str("NAME"), kj::str("SIZE"), kj::str("FILES"),
                     kj::str("HERE"), kj::str("PEERS")));
        for (auto item : response.getItems()) {
          kj::Vector<kj::String> ids;
          for (auto id : item.getPeers())
            ids.add(shortId(id));
          rows.add(row(kj::str(item.getItemId()), kj::str(item.getName()),
                       formatBytes(item.getSize()), kj::str(item.getFileCount()), localText(item),
                       kj::strArray(ids, ",")));
        }
        cmd.terminal.table(rows);
        if (response.getItems().size() == 0) cmd.terminal.line("(no remote items)");
      });
}

kj::MainFunc statusMain(Terminal& terminal) {
  return clientMain(
      terminal, "status", "Shows a running peer's id, address, library and peers.",
      [](ClientCommand& cmd, control::Control::Client& control, kj::WaitScope& ws,
         capnp::EzRpcClient&) {
        auto response = control.statusRequest().send().wait(ws);
        if (cmd.target.json) {
          cmd.terminal.json(capnp::JsonCodec().encode(response));
          return;
        }
        auto s = response.getStatus();
        auto& out = cmd.terminal;
        out.line(kj::str("peer        ", s.getPeerId(), " (", s.getName(), ")"));
        out.line(kj::str("listen      ", s.getListen(),
                         s.getPlaintext() ? "  PLAINTEXT" : "  TLS 1.3", ", trust ", s.getTrust()));
        out.line(kj::str("library     ", s.getLibraryDir(), ": ", s.getItems(), " items, ",
                         formatBytes(s.getBytes()), ", rev ", s.getLibrary().getRev(), ", ",
                         s.getLeftOutPaths(), " paths left out"));
        if (s.getScanning()) out.line(kj::str("scan        ", describeScan(s.getScan())));
        out.line(kj::str("peers       ", s.getPeers()));
        out.line(kj::str("handshakes  ", s.getHandshakesPending(), " in progress, ",
                         s.getHandshakeFailures(), " failed (", s.getAdmissionDrops(),
                         " dropped by the admission)"));
        out.line(kj::str("uptime      ", s.getUptimeMs() / 1000, " s"));
        out.line(kj::str("downloads   ", s.getDownloads().size()));
        for (auto d : s.getDownloads()) {
          auto total = d.getBytesTotal();
          out.line(kj::str("  ", d.getItemId(), "  ", d.getState(), "  ",
                           formatBytes(d.getBytesDone()), " / ", formatBytes(total), "  ",
                           d.getSourcesInUse(), " peers"));
        }
      });
}

kj::MainFunc stopMain(Terminal& terminal) {
  return clientMain(terminal, "stop",
                    "Stops a running peer cleanly and reports how long the shutdown took.",
                    [](ClientCommand& cmd, control::Control::Client& control, kj::WaitScope& ws,
                       capnp::EzRpcClient& rpc) {
                      auto paf = kj::newPromiseAndFulfiller<bool>();
                      auto watcher = kj::heap<StopWatcher>(kj::mv(paf.fulfiller));
                      auto& watcherRef = *watcher;
                      auto subscribe = control.subscribeRequest();
                      subscribe.setSink(kj::mv(watcher));
                      subscribe.send().wait(ws);
                      control.stopRequest().send().wait(ws);
                      bool seen = rpc.getIoProvider()
                                      .getTimer()
                                      .timeoutAfter(kStopReportWait, kj::mv(paf.promise))
                                      .wait(ws);
                      if (!seen) {
                        cmd.terminal.line("stopped (no shutdown report received)");
                      } else if (cmd.target.json) {
                        cmd.terminal.json(watcherRef.json);
                      } else {
                        cmd.terminal.line(watcherRef.text);
                      }
                    });
}

}  // namespace shoal::peer::cli
