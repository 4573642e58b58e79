// The control API (schema/control.capnp) over a Unix socket in the state folder, mode 0600:
// `shoal ls | peers | status | stop` and the conformance runner drive a running peer through it.
// Local only — Cap'n Proto RPC is not hardened against resource exhaustion (docs/dependencies.md).
#pragma once

#include <kj/async-io.h>
#include <shoal/peer/runtime/runtime.h>

namespace shoal::peer {

// The socket's path for a state folder.
kj::String controlSocketPath(kj::StringPtr stateDir);

struct ControlOptions {
  // A subscriber this many events behind is dropped: a local client that stops reading must not
  // make the daemon's memory grow without bound.
  uint32_t maxPendingEvents = 1024;
  uint32_t listenBacklog = 16;  // local clients connecting at once
};

// Binds <stateDir>/control.sock (replacing a stale one: the runtime already holds the state
// folder's lock, so no live daemon owns it) and serves the control API as the runtime's `last`
// service "control": it keeps serving through the shutdown, ends once every subscriber has
// received Stopped and every answer given has been written (a client that asked stop() gets its
// answer), and its socket is removed with the runtime. Throws if the socket cannot be
// bound.
void serveControl(Runtime& runtime, kj::AsyncIoContext& io, ControlOptions options = {});

}  // namespace shoal::peer
