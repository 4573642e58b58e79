#include <shoal/conformance/target.h>

#include <arpa/inet.h>
#include <capnp/rpc-twoparty.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <kj/debug.h>
#include <kj/vector.h>

extern char** environ;

namespace shoal::conformance {

// --- placeholders ------------------------------------------------------------------------------

void Placeholders::set(kj::StringPtr name, kj::StringPtr value) {
  values.upsert(kj::str(name), kj::str(value),
                [](kj::String& old, kj::String&& v) { old = kj::mv(v); });
}

kj::Maybe<kj::StringPtr> Placeholders::get(kj::StringPtr name) const {
  KJ_IF_MAYBE (v, values.find(name)) {
    return v->asPtr();
  }
  return nullptr;
}

namespace {

// The index just past the '}' closing the brace at `open`, honouring nesting; null if none.
kj::Maybe<size_t> closingBrace(kj::StringPtr text, size_t open) {
  int depth = 0;
  for (size_t i = open; i < text.size(); ++i) {
    if (text[i] == '{') ++depth;
    if (text[i] == '}' && --depth == 0) return i + 1;
  }
  return nullptr;
}

}  // namespace

kj::OneOf<kj::String, Placeholders::Problem> Placeholders::expand(kj::StringPtr command) const {
  using Result = kj::OneOf<kj::String, Problem>;
  kj::Vector<char> out;
  size_t i = 0;
  while (i < command.size()) {
    if (command[i] != '{') {
      out.add(command[i++]);
      continue;
    }
    KJ_IF_MAYBE (end, closingBrace(command, i)) {
      auto inner = kj::str(command.slice(i + 1, *end - 1));
      i = *end;
      if (inner.startsWith("if:")) {
        auto rest = inner.slice(3);
        KJ_IF_MAYBE (colon, rest.findFirst(':')) {
          auto name = kj::str(rest.slice(0, *colon));
          auto body = rest.slice(*colon + 1);
          KJ_IF_MAYBE (v, get(name)) {
            if (*v == "true") {
              auto expanded = expand(body);
              if (expanded.is<Problem>()) return kj::mv(expanded);
              out.addAll(expanded.get<kj::String>());
            }
            continue;
          }
          return Result(Problem{kj::str("unknown placeholder {", name, "}")});
        }
        return Result(Problem{kj::str("expected {if:NAME:TEXT}, got {", inner, "}")});
      }
      KJ_IF_MAYBE (v, get(inner)) {
        out.addAll(*v);
        continue;
      }
      return Result(Problem{kj::str("unknown placeholder {", inner, "}")});
    }
    return Result(Problem{kj::str("unbalanced '{' in the command")});
  }
  out.add('\0');
  return Result(kj::String(out.releaseAsArray()));
}

// --- processes ---------------------------------------------------------------------------------

kj::Own<Process> Process::spawn(kj::StringPtr command, kj::StringPtr logPath) {
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  KJ_DEFER(posix_spawn_file_actions_destroy(&actions));
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, logPath.cStr(),
                                   O_WRONLY | O_CREAT | O_APPEND, 0600);
  posix_spawn_file_actions_adddup2(&actions, STDOUT_FILENO, STDERR_FILENO);
  posix_spawnattr_t attributes;
  posix_spawnattr_init(&attributes);
  KJ_DEFER(posix_spawnattr_destroy(&attributes));
  posix_spawnattr_setpgroup(&attributes, 0);
  sigset_t none;
  sigemptyset(&none);
  posix_spawnattr_setsigmask(&attributes, &none);
  sigset_t defaults;
  sigemptyset(&defaults);
  sigaddset(&defaults, SIGPIPE);
  sigaddset(&defaults, SIGTERM);
  sigaddset(&defaults, SIGINT);
  posix_spawnattr_setsigdefault(&attributes, &defaults);
  posix_spawnattr_setflags(&attributes,
                           POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  // `exec`: the shell becomes the target, so signals and the exit status are the target's own.
  auto script = kj::str("exec ", command);
  const char* argv[] = {"/bin/sh", "-c", script.cStr(), nullptr};
  pid_t pid;
  int rc = posix_spawn(&pid, "/bin/sh", &actions, &attributes, const_cast<char**>(argv), environ);
  KJ_REQUIRE(rc == 0, "cannot start the target", strerror(rc), command);
  return kj::heap<Process>(pid, kj::str(logPath));
}

Process::~Process() noexcept(false) {
  if (!reaped) kill();
}

bool Process::running() {
  if (reaped) return false;
  int status;
  pid_t r = waitpid(id, &status, WNOHANG);
  if (r == id) {
    reaped = true;
    waitStatus = status;
    ::kill(-id, SIGKILL);  // whatever the shell left in its group
    return false;
  }
  return true;
}

kj::String Process::status() const {
  if (!reaped) return kj::str("running");
  if (WIFEXITED(waitStatus)) return kj::str("exited with status ", WEXITSTATUS(waitStatus));
  if (WIFSIGNALED(waitStatus)) {
    return kj::str("killed by signal ", WTERMSIG(waitStatus), " (", strsignal(WTERMSIG(waitStatus)),
                   ")");
  }
  return kj::str("ended (status ", waitStatus, ")");
}

bool Process::exitedCleanly() const {
  return reaped && WIFEXITED(waitStatus) && WEXITSTATUS(waitStatus) == 0;
}

bool Process::stop(kj::Duration grace) {
  if (!running()) return true;
  ::kill(-id, SIGTERM);
  if (waitExit(grace)) return true;
  kill();
  return false;
}

bool Process::waitExit(kj::Duration limit) {
  // Bounded polling: the harness has no event for a child's exit on a worker thread.
  struct timespec pause = {0, 10 * 1000 * 1000};
  for (auto waited = 0 * kj::MILLISECONDS; waited < limit; waited += 10 * kj::MILLISECONDS) {
    if (!running()) return true;
    nanosleep(&pause, nullptr);
  }
  return !running();
}

void Process::terminate() {
  if (!reaped) ::kill(-id, SIGTERM);
}

void Process::kill() {
  if (reaped) return;
  ::kill(-id, SIGKILL);
  int status;
  if (waitpid(id, &status, 0) == id) waitStatus = status;
  reaped = true;
}

kj::String tailOf(kj::StringPtr path, size_t maxBytes) {
  int fd = open(path.cStr(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return kj::str();
  KJ_DEFER(close(fd));
  off_t size = lseek(fd, 0, SEEK_END);
  if (size < 0) return kj::str();
  off_t from = size > off_t(maxBytes) ? size - off_t(maxBytes) : 0;
  auto buffer = kj::heapArray<char>(size_t(size - from));
  ssize_t n = pread(fd, buffer.begin(), buffer.size(), from);
  if (n <= 0) return kj::str();
  return kj::str(buffer.slice(0, size_t(n)));
}

uint16_t reservePort() {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  KJ_REQUIRE(fd >= 0, "socket() failed");
  KJ_DEFER(close(fd));
  struct sockaddr_in addr = {};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  KJ_REQUIRE(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0, "bind() failed");
  socklen_t length = sizeof(addr);
  KJ_REQUIRE(getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &length) == 0);
  return ntohs(addr.sin_port);
}

// --- control API -------------------------------------------------------------------------------

kj::Promise<void> EventLog::push(PushContext context) {
  auto copy = kj::heap<capnp::MallocMessageBuilder>();
  copy->setRoot(context.getParams().getEvent());
  events.add(kj::mv(copy));
  wake();
  return kj::READY_NOW;
}

kj::Promise<void> EventLog::done(DoneContext) {
  finished = true;
  wake();
  return kj::READY_NOW;
}

control::Event::Reader EventLog::at(size_t index) {
  return events[index]->getRoot<control::Event>().asReader();
}

kj::Promise<void> EventLog::beyond(size_t seen) {
  if (events.size() > seen || finished) return kj::READY_NOW;
  auto paf = kj::newPromiseAndFulfiller<void>();
  waiting.add(kj::mv(paf.fulfiller));
  return kj::mv(paf.promise);
}

void EventLog::wake() {
  for (auto& w : waiting)
    w->fulfill();
  waiting.clear();
}

ControlClient::ControlClient(kj::Own<kj::AsyncIoStream> streamParam)
    : stream(kj::mv(streamParam)),
      rpc(kj::heap<capnp::TwoPartyClient>(*stream)),
      client(rpc->bootstrap().castAs<control::Control>()) {}

ControlClient::~ControlClient() noexcept(false) {}

kj::Promise<kj::Own<ControlClient>> ControlClient::connect(kj::AsyncIoContext& io,
                                                           kj::StringPtr path) {
  return io.provider->getNetwork()
      .parseAddress(kj::str("unix:", path))
      .then([](kj::Own<kj::NetworkAddress> address) { return address->connect(); })
      .then([](kj::Own<kj::AsyncIoStream> stream) {
        return kj::heap<ControlClient>(kj::mv(stream));
      });
}

namespace {

// Whether the target's control socket says it listens at `address` (false while it cannot say).
bool controlShowsListening(kj::AsyncIoContext& io, kj::StringPtr control, kj::StringPtr address) {
  auto asked = ControlClient::connect(io, control).then([](kj::Own<ControlClient> client) {
    auto request = client->api().statusRequest().send();
    return request.then(
        [client = kj::mv(client)](auto reply) { return kj::str(reply.getStatus().getListen()); });
  });
  auto listen = io.provider->getTimer()
                    .timeoutAfter(2 * kj::SECONDS, kj::mv(asked))
                    .catch_([](kj::Exception&&) { return kj::String(); })
                    .wait(io.waitScope);
  return listen == address;
}

}  // namespace

kj::Maybe<kj::String> waitReady(kj::AsyncIoContext& io, Process& process, kj::StringPtr address,
                                kj::Maybe<kj::StringPtr> control, kj::Duration timeout) {
  auto& timer = io.provider->getTimer();
  auto deadline = timer.now() + timeout;
  bool accepting = false;
  while (timer.now() < deadline) {
    if (!process.running()) return kj::str("the target ", process.status(), " while starting");
    if (!accepting) {
      auto attempt = io.provider->getNetwork()
                         .parseAddress(address)
                         .then([](kj::Own<kj::NetworkAddress> a) { return a->connect(); })
                         .then([](kj::Own<kj::AsyncIoStream>) { return true; },
                               [](kj::Exception&&) { return false; });
      accepting = timer.timeoutAfter(2 * kj::SECONDS, kj::mv(attempt))
                      .catch_([](kj::Exception&&) { return false; })
                      .wait(io.waitScope);
    }
    if (accepting) {
      KJ_IF_MAYBE (path, control) {
        if (controlShowsListening(io, *path, address)) return nullptr;
      } else {
        return nullptr;
      }
    }
    timer.afterDelay(20 * kj::MILLISECONDS).wait(io.waitScope);
  }
  return kj::str("the target did not accept connections at ", address, " within ",
                 timeout / kj::MILLISECONDS, " ms");
}

}  // namespace shoal::conformance
