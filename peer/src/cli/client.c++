// Client commands: `shoal id`, `peers`, `ls`, `status`, `stop`. All but `id` talk to a running
// peer over its control socket; every failure is one line on stderr and a non-zero exit.
#include <capnp/compat/json.h>
#include <capnp/ez-rpc.h>
#include <kj/async-io.h>
#include <kj/debug.h>
#include <kj/io.h>
#include <shoal/peer/transport/identity.h>
#include <shoal/schema/control.capnp.h>
#include <unistd.h>

#include "cli.h"

namespace shoal::peer::cli {

namespace {

using Validity = kj::MainBuilder::Validity;

void print(kj::StringPtr text) {
  kj::FdOutputStream out(STDOUT_FILENO);
  auto line = kj::str(text, "\n");
  out.write(line.begin(), line.size());
}

template <typename... Cells>
kj::Array<kj::String> row(Cells&&... cells) {
  auto builder = kj::heapArrayBuilder<kj::String>(sizeof...(cells));
  (builder.add(kj::str(kj::fwd<Cells>(cells))), ...);
  return builder.finish();
}

// Display width of UTF-8 text: code points (every byte but continuation bytes).
size_t widthOf(kj::StringPtr text) {
  size_t width = 0;
  for (char c : text)
    width += (kj::byte(c) & 0xC0) != 0x80;
  return width;
}

// A column-aligned table: the first row is the header.
void printTable(kj::ArrayPtr<const kj::Array<kj::String>> rows) {
  if (rows.size() == 0) return;
  auto widths = kj::heapArray<size_t>(rows[0].size());
  for (auto& w : widths)
    w = 0;
  for (auto& row : rows) {
    for (auto i : kj::indices(row))
      widths[i] = kj::max(widths[i], widthOf(row[i]));
  }
  for (auto& row : rows) {
    kj::Vector<char> line;
    for (auto i : kj::indices(row)) {
      line.addAll(row[i]);
      if (i + 1 < row.size()) {
        for (size_t pad = widthOf(row[i]); pad < widths[i] + 2; ++pad)
          line.add(' ');
      }
    }
    line.add('\0');
    print(kj::StringPtr(line.begin(), line.size() - 1));
  }
}

kj::String shortId(kj::StringPtr id) {
  return kj::str(id.slice(0, kj::min(id.size(), size_t(15))), "…");
}

// One command against a running peer: options, connection, error reporting.
class ClientCommand {
 public:
  using Body = kj::Function<void(ClientCommand&, control::Control::Client&, kj::WaitScope&,
                                 capnp::EzRpcClient&)>;

  ClientCommand(kj::ProcessContext& context, kj::StringPtr name, kj::StringPtr help, Body body)
      : context(context), name(name), help(help), body(kj::mv(body)) {}

  kj::MainFunc getMain() {
    kj::MainBuilder builder(context, kj::str("shoal ", name), help);
    target.addOptions(builder);
    return builder.callAfterParsing(KJ_BIND_METHOD(*this, run)).build();
  }

  Target target;
  kj::ProcessContext& context;

 private:
  kj::StringPtr name;
  kj::StringPtr help;
  Body body;

  Validity run() {
    KJ_IF_MAYBE (path, target.socketPath()) {
      if (access(path->cStr(), F_OK) != 0) {
        context.exitError(
            kj::str("shoal ", name, ": no peer is running here (", *path, " does not exist)"));
      }
      KJ_IF_MAYBE (exception, kj::runCatchingExceptions([&]() {
                     capnp::EzRpcClient rpc(kj::str("unix:", *path));
                     auto control = rpc.getMain<control::Control>();
                     body(*this, control, rpc.getWaitScope(), rpc);
                   })) {
        context.exitError(kj::str("shoal ", name, ": cannot talk to the peer at ", *path, ": ",
                                  exception->getDescription()));
      }
      context.exit();
      KJ_UNREACHABLE;
    }
    return "give --state, --library or --control";
  }
};

kj::MainFunc clientMain(kj::ProcessContext& context, kj::StringPtr name, kj::StringPtr help,
                        ClientCommand::Body body) {
  auto command = kj::heap<ClientCommand>(context, name, help, kj::mv(body));
  auto main = command->getMain();
  return [command = kj::mv(command), main = kj::mv(main)](
             kj::StringPtr program, kj::ArrayPtr<const kj::StringPtr> params) mutable {
    main(program, params);
  };
}

// Receives the runtime's events during `shoal stop`, until Stopped.
class StopWatcher final : public control::EventSink::Server {
 public:
  explicit StopWatcher(kj::Own<kj::PromiseFulfiller<kj::Maybe<kj::String>>> finished)
      : finished(kj::mv(finished)) {}

  kj::Promise<void> push(PushContext context) override {
    auto event = context.getParams().getEvent();
    if (event.isStopped() && finished->isWaiting()) {
      auto s = event.getStopped();
      capnp::JsonCodec json;
      lastJson = json.encode(event);
      finished->fulfill(kj::str(s.getClean() ? "stopped cleanly" : "stopped, NOT cleanly", " in ",
                                s.getElapsedMs(), " ms; Goodbye sent to ", s.getGoodbyes(),
                                " peers"));
    }
    return kj::READY_NOW;
  }

  kj::Promise<void> done(DoneContext context) override {
    (void)context;
    if (finished->isWaiting()) finished->fulfill(nullptr);
    return kj::READY_NOW;
  }

  kj::String lastJson;

 private:
  kj::Own<kj::PromiseFulfiller<kj::Maybe<kj::String>>> finished;
};

}  // namespace

kj::MainFunc idMain(kj::ProcessContext& context) {
  struct IdCommand {
    kj::ProcessContext& context;
    Target target;
    Validity run() {
      KJ_IF_MAYBE (state, target.stateDir()) {
        KJ_IF_MAYBE (exception, kj::runCatchingExceptions([&]() {
                       auto identity = Identity::loadOrCreate(*state);
                       auto id = formatPeerId(identity->id());
                       print(target.json ? kj::str("{\"peerId\":\"", id, "\"}") : kj::mv(id));
                     })) {
          context.exitError(kj::str("shoal id: ", exception->getDescription()));
        }
        context.exit();
        KJ_UNREACHABLE;
      }
      return "give --state or --library";
    }
  };
  auto command = kj::heap<IdCommand>(IdCommand{context, {}});
  kj::MainBuilder builder(context, "shoal id",
                          "Prints this peer's id (SHA-256 of its key), creating the key on first "
                          "use. Give it to others for their --allow.");
  command->target.addOptions(builder);
  auto main = builder.callAfterParsing(KJ_BIND_METHOD(*command, run)).build();
  return [command = kj::mv(command), main = kj::mv(main)](
             kj::StringPtr program, kj::ArrayPtr<const kj::StringPtr> params) mutable {
    main(program, params);
  };
}

kj::MainFunc peersMain(kj::ProcessContext& context) {
  return clientMain(
      context, "peers", "Lists the peers a running peer is connected to.",
      [](ClientCommand& cmd, control::Control::Client& control, kj::WaitScope& ws,
         capnp::EzRpcClient&) {
        auto response = control.peersRequest().send().wait(ws);
        if (cmd.target.json) {
          print(capnp::JsonCodec().encode(response));
          return;
        }
        kj::Vector<kj::Array<kj::String>> rows;
        rows.add(row(kj::str("PEER"), kj::str("NAME"), kj::str("ADDRESS"), kj::str("DIAL"),
                     kj::str("STATE"), kj::str("REV"), kj::str("ITEMS"), kj::str("TLS")));
        for (auto p : response.getPeers()) {
          rows.add(
              row(shortId(p.getPeerId()), kj::str(p.getName()), kj::str(p.getAddress()),
                  kj::str(p.getDirection() == control::Direction::OUTBOUND ? "out" : "in"),
                  kj::str(p.getState() == control::PeerState::LEAVING ? "leaving" : "established"),
                  kj::str(p.getLibrary().getRev()), kj::str(p.getItems()),
                  kj::str(p.getAuthenticated() ? "yes" : "NO")));
        }
        printTable(rows);
        if (response.getPeers().size() == 0) print("(no peers connected)");
      });
}

kj::MainFunc lsMain(kj::ProcessContext& context) {
  return clientMain(context, "ls",
                    "Lists the items of every connected peer: id, name, size, files, peers.",
                    [](ClientCommand& cmd, control::Control::Client& control, kj::WaitScope& ws,
                       capnp::EzRpcClient&) {
                      auto response = control.itemsRequest().send().wait(ws);
                      if (cmd.target.json) {
                        print(capnp::JsonCodec().encode(response));
                        return;
                      }
                      kj::Vector<kj::Array<kj::String>> rows;
                      rows.add(row(kj::str("ITEM"), kj::str("NAME"), kj::str("SIZE"),
                                   kj::str("FILES"), kj::str("PEERS")));
                      for (auto item : response.getItems()) {
                        kj::Vector<kj::String> ids;
                        for (auto id : item.getPeers())
                          ids.add(shortId(id));
                        rows.add(row(kj::str(item.getItemId()), kj::str(item.getName()),
                                     formatBytes(item.getSize()), kj::str(item.getFileCount()),
                                     kj::strArray(ids, ",")));
                      }
                      printTable(rows);
                      if (response.getItems().size() == 0) print("(no remote items)");
                    });
}

kj::MainFunc statusMain(kj::ProcessContext& context) {
  return clientMain(
      context, "status", "Shows a running peer's id, address, library and peers.",
      [](ClientCommand& cmd, control::Control::Client& control, kj::WaitScope& ws,
         capnp::EzRpcClient&) {
        auto response = control.statusRequest().send().wait(ws);
        if (cmd.target.json) {
          print(capnp::JsonCodec().encode(response));
          return;
        }
        auto s = response.getStatus();
        print(kj::str("peer     ", s.getPeerId(), " (", s.getName(), ")"));
        print(kj::str("listen   ", s.getListen(), s.getPlaintext() ? "  PLAINTEXT" : "  TLS 1.3",
                      ", trust ", s.getTrust()));
        print(kj::str("library  ", s.getLibraryDir(), ": ", s.getItems(), " items, ",
                      formatBytes(s.getBytes()), ", rev ", s.getLibrary().getRev()));
        print(kj::str("peers    ", s.getPeers()));
        print(kj::str("uptime   ", s.getUptimeMs() / 1000, " s"));
      });
}

kj::MainFunc stopMain(kj::ProcessContext& context) {
  return clientMain(context, "stop",
                    "Stops a running peer cleanly and reports how long the shutdown took.",
                    [](ClientCommand& cmd, control::Control::Client& control, kj::WaitScope& ws,
                       capnp::EzRpcClient& rpc) {
                      auto paf = kj::newPromiseAndFulfiller<kj::Maybe<kj::String>>();
                      auto watcher = kj::heap<StopWatcher>(kj::mv(paf.fulfiller));
                      auto& watcherRef = *watcher;
                      auto subscribe = control.subscribeRequest();
                      subscribe.setSink(kj::mv(watcher));
                      subscribe.send().wait(ws);
                      control.stopRequest().send().wait(ws);
                      auto outcome = rpc.getIoProvider()
                                         .getTimer()
                                         .timeoutAfter(10 * kj::SECONDS, kj::mv(paf.promise))
                                         .wait(ws);
                      KJ_IF_MAYBE (line, outcome) {
                        print(cmd.target.json ? kj::str(watcherRef.lastJson) : kj::mv(*line));
                      } else {
                        print("stopped (no shutdown report received)");
                      }
                    });
}

}  // namespace shoal::peer::cli
