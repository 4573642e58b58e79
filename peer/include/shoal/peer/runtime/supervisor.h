// Supervisor: runs long-lived services under a policy (lanspread's supervision, in KJ). A service
// is a promise that should run until stop(); failing — or ending on its own — is handled by its
// policy. Every service lives in the supervisor's TaskSet and is cancelled through the Canceler of
// its stage: `main` services stop when the shutdown begins, `last` ones after Stopped.
#pragma once

#include <kj/async.h>
#include <kj/function.h>
#include <kj/one-of.h>
#include <kj/timer.h>
#include <kj/vector.h>

namespace shoal::peer {

namespace policy {
struct Required {};  // failure is fatal: the runtime reports RuntimeFailed and shuts down cleanly
struct Restart {     // failure is logged; the service starts again after `backoff`, until stop()
  kj::Duration backoff;
};
struct BestEffort {};  // failure is logged and the service stays down
}  // namespace policy
using Policy = kj::OneOf<policy::Required, policy::Restart, policy::BestEffort>;

enum class Stage : uint8_t {
  main,  // stopped as the shutdown begins: listener, dialler, timers
  last,  // runs through the shutdown until after Stopped: the control socket tells its clients
};

class Supervisor {
 public:
  class Observer {
   public:
    virtual ~Observer() noexcept(false) = default;
    virtual void onRequiredFailed(kj::StringPtr service, kj::StringPtr error) = 0;
    virtual void onRestarting(kj::StringPtr service, kj::StringPtr error, kj::Duration backoff) = 0;
    virtual void onGaveUp(kj::StringPtr service, kj::StringPtr error) = 0;  // BestEffort
  };

  Supervisor(kj::Timer& timer, Observer& observer);
  ~Supervisor() noexcept(false);
  KJ_DISALLOW_COPY(Supervisor);

  // Starts `body` under `policy`. `body` is called again for each restart.
  void start(kj::StringPtr name, Policy policy, kj::Function<kj::Promise<void>()> body,
             Stage stage = Stage::main);

  // Cancels every `main` service wherever it waits; services own no state that needs a graceful
  // end (sessions and downloads belong to the runtime). After stop(), start() is refused and a
  // service that ends on its own is not restarted nor reported.
  void stop();
  // stop(), and cancels the `last` services too.
  void stopAll();

  // Resolves once every service has ended (after stop(), or when all ended on their own).
  kj::Promise<void> whenIdle();

  size_t running() const { return runningCount; }
  uint32_t restarts(kj::StringPtr name) const;

 private:
  struct Service {
    kj::String name;
    Policy policy;
    kj::Function<kj::Promise<void>()> body;
    uint32_t restarts = 0;
  };
  class Errors final : public kj::TaskSet::ErrorHandler {
   public:
    void taskFailed(kj::Exception&& exception) override;
  };

  kj::Promise<void> supervise(Service& service);
  kj::Promise<void> afterEnd(Service& service, kj::Maybe<kj::Exception> failure);

  kj::Timer& timer;
  Observer& observer;
  kj::Vector<kj::Own<Service>> services;
  kj::Canceler mainStage;
  kj::Canceler lastStage;
  Errors errors;
  kj::TaskSet tasks;
  size_t runningCount = 0;
  bool stopped = false;
};

}  // namespace shoal::peer
