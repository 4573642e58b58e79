// The `shoal` command line: `serve` runs a peer; `id`, `peers`, `ls`, `status`, `stop`, `get` and
// `cancel` talk to a running one over its control socket. Each command is a kj::MainBuilder of its
// own.
#pragma once

#include <kj/main.h>
#include <shoal/peer/runtime/config.h>
#include <shoal/schema/control.capnp.h>

#include "terminal.h"

namespace shoal::peer::cli {

// Where a client command finds the daemon: --control PATH, else --state DIR, else --library DIR.
struct Target {
  kj::Maybe<kj::String> library;
  kj::Maybe<kj::String> state;
  kj::Maybe<kj::String> control;
  bool json = false;

  kj::Maybe<kj::String> stateDir() const;
  kj::Maybe<kj::String> socketPath() const;
  // Adds --library, --state, --control and --json to `builder`.
  kj::MainBuilder& addOptions(kj::MainBuilder& builder);
};

kj::MainFunc serveMain(Terminal& terminal);
kj::MainFunc idMain(Terminal& terminal);
kj::MainFunc peersMain(Terminal& terminal);
kj::MainFunc lsMain(Terminal& terminal);
kj::MainFunc statusMain(Terminal& terminal);
kj::MainFunc stopMain(Terminal& terminal);
kj::MainFunc getItemMain(Terminal& terminal);
kj::MainFunc cancelMain(Terminal& terminal);

// One line of text for an event: `shoal serve` prints every event this way, `shoal stop` its
// Stopped. Peer text in it is escaped by the Terminal that prints it.
kj::String describeEvent(control::Event::Reader event);

// "1.5 GiB", "300 KiB", "17 B".
kj::String formatBytes(uint64_t bytes);
// "hashed 1.2 GiB of 4.0 GiB (30 %), 812 of 2000 files, 850 MiB/s, about 4 s left": a scan's
// progress, for the scanProgress event and `shoal status`.
kj::String describeScan(control::ScanProgress::Reader scan);
// Whole numbers only; null on anything else (sign, junk, overflow, above `max`).
kj::Maybe<uint64_t> parseCount(kj::StringPtr text, uint64_t max);

}  // namespace shoal::peer::cli
