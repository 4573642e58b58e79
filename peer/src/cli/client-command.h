// ClientCommand: one `shoal` command against a running peer — its options (--library, --state,
// --control, --json, and an optional positional argument), the connection to the control socket,
// and its error reporting (one line on stderr, exit 1). client.c++ and download.c++ use it.
#pragma once

#include <capnp/ez-rpc.h>
#include <kj/async-io.h>
#include <kj/debug.h>
#include <unistd.h>

#include "cli.h"

namespace shoal::peer::cli {

using Validity = kj::MainBuilder::Validity;

// One command against a running peer: options, connection, error reporting.
class ClientCommand {
 public:
  using Body = kj::Function<void(ClientCommand&, control::Control::Client&, kj::WaitScope&,
                                 capnp::EzRpcClient&)>;

  ClientCommand(Terminal& terminal, kj::StringPtr name, kj::StringPtr help, Body body,
                kj::Maybe<kj::StringPtr> argumentName = nullptr)
      : terminal(terminal),
        name(name),
        help(help),
        body(kj::mv(body)),
        argumentName(argumentName) {}

  kj::MainFunc getMain() {
    kj::MainBuilder builder(terminal, kj::str("shoal ", name), help);
    target.addOptions(builder);
    KJ_IF_MAYBE (title, argumentName) {
      builder.expectArg(*title, [this](kj::StringPtr arg) -> Validity {
        argument = kj::str(arg);
        return true;
      });
    }
    return builder.callAfterParsing(KJ_BIND_METHOD(*this, run)).build();
  }

  Target target;
  Terminal& terminal;
  kj::String argument;  // the positional argument, when the command takes one

 private:
  kj::StringPtr name;
  kj::StringPtr help;
  Body body;
  kj::Maybe<kj::StringPtr> argumentName;

  Validity run() {
    KJ_IF_MAYBE (path, target.socketPath()) {
      if (access(path->cStr(), F_OK) != 0) {
        terminal.fail(
            kj::str("shoal ", name, ": no peer is running here (", *path, " does not exist)"));
      }
      KJ_IF_MAYBE (exception, kj::runCatchingExceptions([&]() {
                     capnp::EzRpcClient rpc(kj::str("unix:", *path));
                     auto control = rpc.getMain<control::Control>();
                     body(*this, control, rpc.getWaitScope(), rpc);
                   })) {
        terminal.fail(kj::str("shoal ", name, ": cannot talk to the peer at ", *path, ": ",
                              exception->getDescription()));
      }
      terminal.exit();
      KJ_UNREACHABLE;
    }
    return "give --state, --library or --control";
  }
};

inline kj::MainFunc clientMain(Terminal& terminal, kj::StringPtr name, kj::StringPtr help,
                               ClientCommand::Body body,
                               kj::Maybe<kj::StringPtr> argumentName = nullptr) {
  auto command = kj::heap<ClientCommand>(terminal, name, help, kj::mv(body), argumentName);
  auto main = command->getMain();
  return [command = kj::mv(command), main = kj::mv(main)](
             kj::StringPtr program, kj::ArrayPtr<const kj::StringPtr> params) mutable {
    main(program, params);
  };
}

}  // namespace shoal::peer::cli
