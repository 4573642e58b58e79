#include <shoal/peer/runtime/supervisor.h>

#include <kj/debug.h>

namespace shoal::peer {

Supervisor::Supervisor(kj::Timer& timer, Observer& observer)
    : timer(timer), observer(observer), tasks(errors) {}

Supervisor::~Supervisor() noexcept(false) {
  stopAll();
}

void Supervisor::start(kj::StringPtr name, Policy policy, kj::Function<kj::Promise<void>()> body,
                       Stage stage) {
  KJ_ASSERT(!stopped, "service started after stop()", name);
  auto service = kj::heap<Service>(Service{kj::heapString(name), kj::mv(policy), kj::mv(body)});
  auto& ref = *service;
  services.add(kj::mv(service));
  ++runningCount;
  auto& canceler = stage == Stage::main ? mainStage : lastStage;
  tasks.add(canceler.wrap(supervise(ref))
                .then([this]() { --runningCount; },
                      [this](kj::Exception&&) {
                        // Cancelled by stop(): the normal way to end.
                        --runningCount;
                      }));
}

kj::Promise<void> Supervisor::supervise(Service& service) {
  // evalNow: a body that throws before returning a promise is a failure like any other.
  return kj::evalNow([&]() { return service.body(); })
      .then([]() -> kj::Maybe<kj::Exception> { return nullptr; },
            [](kj::Exception&& e) -> kj::Maybe<kj::Exception> { return kj::mv(e); })
      .then([this, &service](kj::Maybe<kj::Exception> failure) {
        return afterEnd(service, kj::mv(failure));
      });
}

kj::Promise<void> Supervisor::afterEnd(Service& service, kj::Maybe<kj::Exception> failure) {
  // A service of ours is meant to run until stop(): ending on its own means it stopped serving,
  // unless the shutdown has begun (a `last` service finishing its work, or failing: too late).
  if (stopped) return kj::READY_NOW;
  kj::String error;
  KJ_IF_MAYBE (e, failure) {
    error = kj::str(e->getDescription());
  } else {
    error = kj::str("the service ended on its own");
  }
  KJ_SWITCH_ONEOF(service.policy) {
    KJ_CASE_ONEOF(required, policy::Required) {
      observer.onRequiredFailed(service.name, error);
      return kj::READY_NOW;
    }
    KJ_CASE_ONEOF(restart, policy::Restart) {
      ++service.restarts;
      observer.onRestarting(service.name, error, restart.backoff);
      return timer.afterDelay(restart.backoff).then([this, &service]() {
        return supervise(service);
      });
    }
    KJ_CASE_ONEOF(bestEffort, policy::BestEffort) {
      if (failure != nullptr) observer.onGaveUp(service.name, error);
      return kj::READY_NOW;
    }
  }
  KJ_UNREACHABLE;
}

void Supervisor::stop() {
  stopped = true;
  if (!mainStage.isEmpty()) mainStage.cancel("the supervisor stopped");
}

void Supervisor::stopAll() {
  stop();
  if (!lastStage.isEmpty()) lastStage.cancel("the supervisor stopped");
}

kj::Promise<void> Supervisor::whenIdle() {
  if (runningCount == 0) return kj::READY_NOW;
  return tasks.onEmpty();
}

uint32_t Supervisor::restarts(kj::StringPtr name) const {
  for (auto& s : services) {
    if (s->name == name) return s->restarts;
  }
  return 0;
}

void Supervisor::Errors::taskFailed(kj::Exception&& exception) {
  // Every supervised task handles its own failure; reaching here is our bug.
  KJ_LOG(ERROR, "supervised task failed", exception);
}

}  // namespace shoal::peer
