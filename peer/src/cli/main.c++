// shoal: entry point; dispatches to the subcommands in serve.c++ and client.c++.
#include <kj/debug.h>
#include <shoal/peer/control/control-server.h>
#include <signal.h>
#include <stdio.h>

#include "cli.h"

namespace shoal::peer::cli {

kj::Maybe<kj::String> Target::stateDir() const {
  KJ_IF_MAYBE (s, state) {
    return kj::str(*s);
  }
  KJ_IF_MAYBE (l, library) {
    return kj::str(*l, "/.shoal");
  }
  return nullptr;
}

kj::Maybe<kj::String> Target::socketPath() const {
  KJ_IF_MAYBE (c, control) {
    return kj::str(*c);
  }
  KJ_IF_MAYBE (s, stateDir()) {
    return controlSocketPath(*s);
  }
  return nullptr;
}

kj::MainBuilder& Target::addOptions(kj::MainBuilder& builder) {
  return builder
      .addOptionWithArg(
          {'s', "state"},
          [this](kj::StringPtr dir) -> kj::MainBuilder::Validity {
            state = kj::str(dir);
            return true;
          },
          "<dir>", "the peer's state folder (default: <library>/.shoal)")
      .addOptionWithArg(
          {'l', "library"},
          [this](kj::StringPtr dir) -> kj::MainBuilder::Validity {
            library = kj::str(dir);
            return true;
          },
          "<dir>", "the peer's library folder, to find its state folder")
      .addOptionWithArg(
          {"control"},
          [this](kj::StringPtr path) -> kj::MainBuilder::Validity {
            control = kj::str(path);
            return true;
          },
          "<path>", "the control socket (default: <state>/control.sock)")
      .addOption(
          {"json"},
          [this]() -> kj::MainBuilder::Validity {
            json = true;
            return true;
          },
          "print JSON for machines instead of text");
}

kj::String formatBytes(uint64_t bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
  if (bytes < 1024) return kj::str(bytes, " B");
  auto value = static_cast<double>(bytes);
  int unit = 0;
  while (value >= 1024 && unit < 5) {
    value /= 1024;
    ++unit;
  }
  char text[32];
  snprintf(text, sizeof(text), "%.1f %s", value, units[unit]);
  return kj::str(text);
}

kj::Maybe<uint64_t> parseCount(kj::StringPtr text, uint64_t max) {
  if (text.size() == 0 || text.size() > 19) return nullptr;
  uint64_t value = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return nullptr;
    value = value * 10 + uint64_t(c - '0');
  }
  if (value > max) return nullptr;
  return value;
}

class Shoal {
 public:
  explicit Shoal(Terminal& terminal) : terminal(terminal) {}

  kj::MainFunc getMain() {
    return kj::MainBuilder(terminal, "shoal 0.1.0",
                           "Share libraries of large items (game folders, datasets) between peers "
                           "on a LAN. `shoal serve` runs a peer; the other commands talk to a "
                           "running one through its control socket.")
        .addSubCommand(
            "serve", [this]() { return serveMain(terminal); },
            "run a peer: serve a library, dial static peers, list theirs")
        .addSubCommand(
            "id", [this]() { return idMain(terminal); }, "print this peer's id")
        .addSubCommand(
            "peers", [this]() { return peersMain(terminal); },
            "list the peers a running peer is connected to")
        .addSubCommand(
            "ls", [this]() { return lsMain(terminal); },
            "list the items of connected peers (id, name, size, peers)")
        .addSubCommand(
            "status", [this]() { return statusMain(terminal); },
            "show a running peer's id, address, library and peers")
        .addSubCommand(
            "stop", [this]() { return stopMain(terminal); },
            "stop a running peer cleanly and report how long it took")
        .addSubCommand(
            "get", [this]() { return getItemMain(terminal); },
            "download an item from every peer that has it, verified, resumable")
        .addSubCommand(
            "cancel", [this]() { return cancelMain(terminal); },
            "stop a download between chunks (its progress is kept)")
        .build();
  }

 private:
  Terminal& terminal;
};

}  // namespace shoal::peer::cli

int main(int argc, char* argv[]) {
  using namespace shoal::peer::cli;
  // A closed stdout is an EPIPE the Terminal handles, never a silent death by signal.
  signal(SIGPIPE, SIG_IGN);
  // A file size limit (RLIMIT_FSIZE) is an EFBIG write failure a download reports, not a kill.
  signal(SIGXFSZ, SIG_IGN);
  SafeLogs logs;
  kj::TopLevelProcessContext process(argv[0]);
  Terminal terminal(process);
  kj::Vector<kj::StringPtr> given;
  for (int i = 1; i < argc; ++i)
    given.add(argv[i]);
  auto joined = joinNegativeValues(given);
  kj::Vector<char*> args;
  args.add(argv[0]);
  for (auto& arg : joined)
    args.add(arg.begin());
  args.add(nullptr);
  Shoal shoal(terminal);
  return kj::runMainAndExit(terminal, shoal.getMain(), int(args.size() - 1), args.begin());
}
