// The control API (schema/control.capnp) over a Unix socket in the state folder, mode 0600:
// `shoal ls | peers | status | stop` and the conformance runner drive a running peer through it.
// Local only — Cap'n Proto RPC is not hardened against resource exhaustion (docs/dependencies.md).
#pragma once

#include <kj/async-io.h>
#include <shoal/peer/runtime/runtime.h>

namespace shoal::peer {

// The socket's path for a state folder.
kj::String controlSocketPath(kj::StringPtr stateDir);

// Binds <stateDir>/control.sock (replacing a stale one: the runtime already holds the state
// folder's lock, so no live daemon owns it) and serves the control API. The promise resolves once
// the runtime has stopped and every subscriber received Stopped, or never if the runtime keeps
// running; dropping it closes the socket. Throws if the socket cannot be bound.
kj::Promise<void> serveControl(Runtime& runtime, kj::AsyncIoContext& io);

}  // namespace shoal::peer
