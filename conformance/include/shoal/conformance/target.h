// The implementation under test: attached at an address, or launched from a command template per
// case. A launched target gets a fresh port, state folder and library folder; its stdout/stderr
// go to a log in the case's folder, and its control API (schema/control.capnp) is reached through
// the socket path template, if the adapter named one.
#pragma once

#include <sys/types.h>

#include <capnp/rpc-twoparty.h>
#include <kj/async-io.h>
#include <kj/map.h>
#include <kj/one-of.h>
#include <kj/string.h>
#include <kj/vector.h>
#include <shoal/schema/control.capnp.h>

namespace shoal::conformance {

// Placeholder values for one launch. Every `{name}` in the command template is replaced by the
// value of `name`; `{if:name:text}` expands to `text` (itself expanded) when `name` is "true".
class Placeholders {
 public:
  void set(kj::StringPtr name, kj::StringPtr value);
  void flag(kj::StringPtr name, bool on) { set(name, on ? "true" : "false"); }
  kj::Maybe<kj::StringPtr> get(kj::StringPtr name) const;
  struct Problem {
    kj::String message;
  };
  // The expanded command, or the first problem (an unknown name, bad syntax).
  kj::OneOf<kj::String, Problem> expand(kj::StringPtr command) const;

 private:
  kj::TreeMap<kj::String, kj::String> values;
};

// A process started with `/bin/sh -c "exec COMMAND"` in its own process group.
class Process {
 public:
  // Starts it; output (stdout and stderr) is appended to `logPath`.
  static kj::Own<Process> spawn(kj::StringPtr command, kj::StringPtr logPath);
  ~Process() noexcept(false);
  KJ_DISALLOW_COPY(Process);

  pid_t pid() const { return id; }
  // Still running? (Reaps it when it has exited.)
  bool running();
  // "exited with status 3", "killed by signal 11", or "running".
  kj::String status() const;
  bool exitedCleanly() const;  // exit status 0
  // SIGTERM to the group, then waits up to `grace`; SIGKILL after that. Returns whether it ended
  // by itself within the grace time.
  bool stop(kj::Duration grace);
  // Waits up to `limit` for it to end by itself; whether it did.
  bool waitExit(kj::Duration limit);
  void kill();
  // SIGTERM to the group, without waiting.
  void terminate();
  kj::StringPtr log() const { return logFile; }

  Process(pid_t id, kj::String logFile) : id(id), logFile(kj::mv(logFile)) {}

 private:
  pid_t id;
  kj::String logFile;
  bool reaped = false;
  int waitStatus = 0;
};

// The last `maxBytes` of a file, or "" when it cannot be read.
kj::String tailOf(kj::StringPtr path, size_t maxBytes = 4096);

// A port free right now on 127.0.0.1 (the kernel's choice for port 0).
uint16_t reservePort();

// Waits (polling, up to `timeout`) until the launched target accepts TCP connections at
// `address`; null when it does, else why not. A port from reservePort() is free again once it
// returns, so another harness's target may take it before ours binds it: ours then fails to bind
// and exits while the other answers. With a control socket (in the case's own folder), the
// target must also say that it listens at `address` itself.
kj::Maybe<kj::String> waitReady(kj::AsyncIoContext& io, Process& process, kj::StringPtr address,
                                kj::Maybe<kj::StringPtr> control,
                                kj::Duration timeout = 15 * kj::SECONDS);

// The events a target pushes to a control subscriber (`subscribe`), kept in arrival order so that
// a case can wait for one and read what came before it.
class EventLog final : public control::EventSink::Server {
 public:
  kj::Promise<void> push(PushContext context) override;
  kj::Promise<void> done(DoneContext context) override;

  size_t size() const { return events.size(); }
  control::Event::Reader at(size_t index);
  bool ended() const { return finished; }
  // Resolves when there are more than `seen` events, or the stream ended.
  kj::Promise<void> beyond(size_t seen);

 private:
  void wake();
  kj::Vector<kj::Own<capnp::MallocMessageBuilder>> events;
  kj::Vector<kj::Own<kj::PromiseFulfiller<void>>> waiting;
  bool finished = false;
};

// The target's control API, over its Unix socket; one RPC connection per use.
class ControlClient {
 public:
  static kj::Promise<kj::Own<ControlClient>> connect(kj::AsyncIoContext& io, kj::StringPtr path);
  ~ControlClient() noexcept(false);

  control::Control::Client& api() { return client; }

  ControlClient(kj::Own<kj::AsyncIoStream> stream);

 private:
  kj::Own<kj::AsyncIoStream> stream;
  kj::Own<capnp::TwoPartyClient> rpc;
  control::Control::Client client;
};

}  // namespace shoal::conformance
