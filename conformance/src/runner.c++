#include <shoal/conformance/runner.h>

#include <fnmatch.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <mutex>
#include <thread>

#include <kj/debug.h>
#include <shoal/conformance/requirements.h>
#include <shoal/peer/transport/identity.h>

namespace shoal::conformance {

namespace {

bool matchesAny(kj::StringPtr id, kj::ArrayPtr<const kj::String> globs) {
  for (auto& g : globs) {
    if (fnmatch(g.cStr(), id.cStr(), 0) == 0) return true;
  }
  return false;
}

// The sanity case: a handshake and a Ping round trip, run first and last, and the liveness probe
// after every case.
void sanity(Trial& t) {
  KJ_IF_MAYBE (c, t.establish()) {
    t.expectAlive(*c, "-");
  }
}

const CaseSpec kSanityFirst{"sanity/first", "-", Role::responder,
                            "the target accepts a connection, completes a handshake, answers Ping",
                            sanity};
const CaseSpec kSanityLast{"sanity/last", "-", Role::responder,
                           "the target accepts a connection, completes a handshake, answers Ping",
                           sanity};
// The liveness probe: any answer to a Hello (HelloAck, or a Reject from a pinned target) shows
// the target is up and serving.
void probe(Trial& t) {
  KJ_IF_MAYBE (c, t.open()) {
    c->send(helloFrame(c->ours()));
    t.expectNext(
        *c, "HelloAck or Reject",
        [](wire::Frame::Reader f) { return f.isHelloAck() || f.isReject(); }, "-");
  }
}

const CaseSpec kProbe{"probe", "-", Role::responder, "liveness probe", probe};

kj::String nowIso() {
  time_t now = time(nullptr);
  struct tm utc;
  gmtime_r(&now, &utc);
  char text[32];
  strftime(text, sizeof(text), "%Y-%m-%dT%H:%M:%SZ", &utc);
  return kj::str(text);
}

struct ExpectedFailure {
  kj::String glob;
  kj::String reason;
};

kj::Array<ExpectedFailure> parseXfail(kj::StringPtr text) {
  kj::Vector<ExpectedFailure> out;
  size_t start = 0;
  for (size_t i = 0; i <= text.size(); ++i) {
    if (i < text.size() && text[i] != '\n') continue;
    auto line = text.slice(start, i);
    start = i + 1;
    if (line.size() == 0 || line[0] == '#') continue;
    size_t end = 0;
    while (end < line.size() && line[end] != ' ' && line[end] != '\t')
      ++end;
    size_t reason = end;
    while (reason < line.size() && (line[reason] == ' ' || line[reason] == '\t'))
      ++reason;
    out.add(ExpectedFailure{kj::str(line.slice(0, end)), kj::str(line.slice(reason, line.size()))});
  }
  return out.releaseAsArray();
}

kj::StringPtr trustAllow(Settings::Trust trust) {
  switch (trust) {
    case Settings::Trust::open: return "";
    default: return "pinned";
  }
}

class Worker {
 public:
  Worker(const RunOptions& options, kj::ArrayPtr<const ExpectedFailure> xfails)
      : options(options), xfails(xfails) {}

  CaseResult run(const CaseSpec& spec) {
    auto level = spec.level.orDefault(
        findRequirement(spec.requirement)
            .map([](const Requirement& r) { return r.level.orDefault(Level::must); })
            .orDefault(Level::must));
    auto start = io.provider->getTimer().now();
    CaseResult result = options.launch == nullptr ? attached(spec, level) : launched(spec, level);
    result.micros = uint64_t((io.provider->getTimer().now() - start) / kj::MICROSECONDS);
    applyXfail(result);
    return result;
  }

 private:
  void applyXfail(CaseResult& r) {
    for (auto& x : xfails) {
      if (fnmatch(x.glob.cStr(), r.spec->id.cStr(), 0) != 0) continue;
      if (r.verdict == Verdict::fail || r.verdict == Verdict::nonStrict ||
          r.verdict == Verdict::error) {
        r.verdict = Verdict::xfail;
        r.reason =
            kj::str("expected failure: ", x.reason, r.reason.size() > 0 ? " — " : "", r.reason);
      } else if (r.verdict == Verdict::ok) {
        r.verdict = Verdict::xpass;
        r.reason = kj::str("listed as an expected failure (", x.reason, ") but passed");
      }
      return;
    }
  }

  // Runs the script in `env`, then the liveness probe; fills the result.
  CaseResult execute(const CaseSpec& spec, Level level, TrialEnv& env, bool probe) {
    CaseResult result;
    result.spec = &spec;
    result.level = level;
    Trial trial(spec, level, env);
    bool modeOk = !((spec.needs & need::tlsOnly) && !env.tls) &&
                  !((spec.needs & need::plaintextOnly) && env.tls);
    if (!modeOk) {
      trial.unimplemented(kj::str("not applicable in ", env.tls ? "TLS" : "plaintext", " mode"));
    } else if ((spec.needs & need::launch) && env.process == nullptr) {
      trial.unimplemented(kj::str("needs a launched target (--launch)"));
    } else if ((spec.needs & need::discovery) && env.discoveryInterface == nullptr) {
      trial.unimplemented(
          kj::str("needs --discovery IFACE, inside a network namespace "
                  "(conformance/test/discovery.sh)"));
    } else if (spec.role == Role::initiator && env.harnessListener == nullptr) {
      trial.unimplemented(kj::str("the target as initiator needs --launch"));
    } else {
      // The one boundary where a harness bug (an exception in a script) becomes a verdict.
      KJ_IF_MAYBE (e, kj::runCatchingExceptions([&]() { spec.run(trial); })) {
        trial.harnessError(kj::str("harness exception: ", e->getDescription()));
      }
    }
    trial.closeAll();
    result.verdict = trial.verdict();
    KJ_IF_MAYBE (f, trial.failure()) {
      result.brokenRequirement = f->requirement;
      result.expected = kj::str(f->expected);
      result.actual = kj::str(f->actual);
    }
    if (trial.violations().size() > 0) {
      auto& v = trial.violations()[0];
      result.brokenRequirement = v.requirement;
      result.reason = kj::str("monitor: ", v.message);
    }
    if (result.verdict == Verdict::unimplemented || result.verdict == Verdict::error) {
      result.reason = kj::str(trial.unimplementedReason());
    }
    result.close = trial.closeSummary();
    bool ran = result.verdict != Verdict::unimplemented && result.verdict != Verdict::error;
    if (probe && ran && !(spec.needs & need::stopsTarget)) {
      KJ_IF_MAYBE (problem, liveness(env)) {
        trial.note(kj::str("liveness probe failed: ", *problem));
        result.verdict = Verdict::fail;
        result.brokenRequirement = "-";
        result.reason = kj::str("the target did not survive this case: ", *problem);
      }
    }
    result.transcript = trial.transcript().take();
    return result;
  }

  // A fresh connection's Hello must be answered. Up to kProbeAttempts connections, each bounded
  // by the step timeout: a target that is up but slow under load (its dial-backs to a harness that
  // no longer accepts, a machine running other suites) gets another chance, a dead or hung one
  // fails them all.
  kj::Maybe<kj::String> liveness(TrialEnv& env) {
    static constexpr int kProbeAttempts = 3;
    kj::Maybe<kj::String> problem;
    for (int attempt = 0; attempt < kProbeAttempts; ++attempt) {
      KJ_IF_MAYBE (p, env.process) {
        if (!p->running()) return kj::str("it ", p->status());
      }
      problem = probeOnce(env);
      if (problem == nullptr) return nullptr;
    }
    return problem;
  }

  kj::Maybe<kj::String> probeOnce(TrialEnv& env) {
    auto listener = env.harnessListener;
    env.harnessListener = nullptr;
    Trial check(kProbe, Level::must, env);
    probe(check);
    env.harnessListener = listener;
    if (check.verdict() == Verdict::ok) return nullptr;
    KJ_IF_MAYBE (f, check.failure()) {
      return kj::str("handshake probe: expected ", f->expected, "; actual: ", f->actual);
    }
    return kj::str("handshake probe: ", check.unimplementedReason());
  }

  CaseResult attached(const CaseSpec& spec, Level level) {
    auto identity = Identity::generate();
    TrialEnv env{io,
                 !options.plaintext,
                 kj::str(KJ_ASSERT_NONNULL(options.target)),
                 nullptr,
                 options.control.map([](const kj::String& s) { return kj::str(s); }),
                 nullptr,
                 nullptr,
                 nullptr,
                 *identity,
                 options.stepTimeout,
                 options.quiet};
    KJ_IF_MAYBE (text, options.targetId) {
      env.targetId = peer::parsePeerId(*text);
    }
    return execute(spec, level, env, true);
  }

  CaseResult launched(const CaseSpec& spec, Level level) {
    auto dir = makeTempDir(options.tempRoot, "shoal-conform-");
    KJ_DEFER(if (!options.keep) removeTree(dir));
    auto library = kj::str(dir, "/library");
    auto state = kj::str(dir, "/state");
    KJ_SYSCALL(mkdir(library.cStr(), 0755));
    auto fixture = Fixture::write(library, spec.settings.fixture);
    auto identity = Identity::generate();
    auto listener =
        io.provider->getNetwork().parseAddress("127.0.0.1:0").wait(io.waitScope)->listen();
    auto other = Identity::generate();

    Placeholders p;
    p.set("state", state);
    p.set("library", library);
    p.set("harness", kj::str("127.0.0.1:", listener->getPort()));
    p.set("harness-id", peer::formatPeerId(identity->id()));
    p.flag("plaintext", options.plaintext);
    p.flag("tls", !options.plaintext);
    p.flag("initiator", spec.role == Role::initiator);
    p.flag("pinned", spec.settings.trust != Settings::Trust::open);
    auto harnessText = peer::formatPeerId(identity->id());
    switch (spec.settings.trust) {
      case Settings::Trust::open:
      case Settings::Trust::pinnedHarness: p.set("allow", harnessText); break;
      case Settings::Trust::pinnedOther: p.set("allow", peer::formatPeerId(other->id())); break;
      case Settings::Trust::pinnedLowercase: {
        // [TR-8]: lower case, and spaces instead of dashes.
        auto text = kj::heapString(harnessText);
        for (auto& c : text) {
          if (c >= 'A' && c <= 'Z') c = char(c - 'A' + 'a');
          if (c == '-') c = ' ';
        }
        p.set("allow", text);
        break;
      }
      case Settings::Trust::pinnedBadCheck: {
        auto text = kj::heapString(harnessText);
        // The first group's check character: the 14th of the 56, after one dash.
        text[14] = text[14] == 'A' ? 'B' : 'A';
        p.set("allow", text);
        break;
      }
    }
    (void)trustAllow;
    auto& s = spec.settings;
    p.set("handshake-ms", kj::str(s.handshakeMs));
    p.set("idle-ms", kj::str(s.idleMs));
    p.set("dead-ms", kj::str(s.deadMs));
    p.set("drain-ms", kj::str(s.drainMs));
    p.set("max-in-flight", kj::str(s.maxInFlight));
    p.set("max-connections", kj::str(s.maxConnections));
    p.set("rescan-ms", kj::str(s.rescanMs));
    p.set("chunk-size", kj::str(s.chunkSize));
    p.flag("discover", s.discover);
    p.set("discover-ms", kj::str(s.discoverMs));
    p.set("iface", options.discovery.map([](const kj::String& i) { return kj::str(i); })
                       .orDefault(kj::str("none")));
    for (auto& d : options.defines) {
      KJ_IF_MAYBE (eq, d.findFirst('=')) {
        p.set(kj::str(d.slice(0, *eq)), kj::str(d.slice(*eq + 1)));
      }
    }

    kj::Maybe<kj::String> startProblem;
    for (int attempt = 0; attempt < 3; ++attempt) {
      auto port = reservePort();
      p.set("port", kj::str(port));
      auto command = p.expand(KJ_ASSERT_NONNULL(options.launch));
      KJ_IF_MAYBE (problem, command.tryGet<Placeholders::Problem>()) {
        return errorResult(spec, level, kj::str("--launch: ", problem->message));
      }
      auto address = kj::str("127.0.0.1:", port);
      auto process = Process::spawn(command.get<kj::String>(), kj::str(dir, "/target.log"));
      kj::Maybe<kj::String> control;
      KJ_IF_MAYBE (c, options.control) {
        auto expanded = p.expand(*c);
        KJ_IF_MAYBE (path, expanded.tryGet<kj::String>()) {
          control = kj::mv(*path);
        }
      }
      startProblem =
          waitReady(io, *process, address, control.map([](kj::String& c) { return c.asPtr(); }));
      if (startProblem != nullptr && !process->running()) {
        KJ_IF_MAYBE (r, verdictOfRefusedStart(spec, level, *process)) {
          return kj::mv(*r);
        }
      }
      if (startProblem != nullptr) continue;  // a port taken meanwhile, or a broken command
      TrialEnv env{io,
                   !options.plaintext,
                   kj::mv(address),
                   nullptr,
                   options.control.map([&](const kj::String& c) {
                     auto expanded = p.expand(c);
                     return expanded.is<kj::String>() ? kj::mv(expanded.get<kj::String>())
                                                      : kj::str(c);
                   }),
                   *process,
                   fixture,
                   *listener,
                   *identity,
                   options.stepTimeout,
                   options.quiet};
      env.stateDir = state;
      env.discoveryInterface =
          options.discovery.map([](const kj::String& i) -> kj::StringPtr { return i; });
      env.otherInterface =
          options.discoveryOther.map([](const kj::String& i) -> kj::StringPtr { return i; });
      auto result = execute(spec, level, env, true);
      // The target must stop cleanly on SIGTERM: anything else (a crash, a sanitizer report, a
      // hang) is charged to this case.
      bool byItself = process->stop(5 * kj::SECONDS);
      bool ran = result.verdict != Verdict::unimplemented && result.verdict != Verdict::error;
      if (ran && (!byItself || !process->exitedCleanly())) {
        if (result.verdict == Verdict::ok || result.verdict == Verdict::nonStrict) {
          result.verdict = Verdict::fail;
          result.brokenRequirement = "-";
          result.reason = kj::str("after this case the target ",
                                  byItself ? process->status() : kj::str("ignored SIGTERM for 5 s"),
                                  " instead of stopping cleanly");
        }
      }
      if (result.verdict != Verdict::ok) result.targetLog = tailOf(process->log());
      return result;
    }
    auto log = tailOf(kj::str(dir, "/target.log"));
    auto r = errorResult(spec, level, KJ_ASSERT_NONNULL(kj::mv(startProblem)));
    r.targetLog = kj::mv(log);
    return r;
  }

  // A target that exits at start is an ERROR, except where the allow list it was given decides
  // ([TR-8]): a wrong check character may be refused right there, lower case with spaces not.
  kj::Maybe<CaseResult> verdictOfRefusedStart(const CaseSpec& spec, Level level, Process& process) {
    auto trust = spec.settings.trust;
    if (trust != Settings::Trust::pinnedBadCheck && trust != Settings::Trust::pinnedLowercase) {
      return nullptr;
    }
    CaseResult r;
    r.spec = &spec;
    r.level = level;
    r.targetLog = tailOf(process.log());
    if (trust == Settings::Trust::pinnedBadCheck) {
      r.reason = kj::str("the target refused the allow list at start (", process.status(), ")");
    } else {
      r.verdict = Verdict::fail;
      r.brokenRequirement = "TR-8";
      r.expected = kj::str("the target starts with the allow list in lower case with spaces");
      r.actual = kj::str("it ", process.status(), " while starting");
    }
    return kj::mv(r);
  }

  CaseResult errorResult(const CaseSpec& spec, Level level, kj::String why) {
    CaseResult r;
    r.spec = &spec;
    r.level = level;
    r.verdict = Verdict::error;
    r.reason = kj::mv(why);
    return r;
  }

  const RunOptions& options;
  kj::ArrayPtr<const ExpectedFailure> xfails;
  kj::AsyncIoContext io = kj::setupAsyncIo();
};

}  // namespace

kj::Array<const CaseSpec*> selectCases(kj::ArrayPtr<const CaseSpec> all,
                                       const RunOptions& options) {
  kj::Vector<const CaseSpec*> out;
  out.add(&kSanityFirst);
  for (auto& c : all) {
    if (options.filters.size() > 0 && !matchesAny(c.id, options.filters)) continue;
    if (matchesAny(c.id, options.excludes)) continue;
    out.add(&c);
  }
  out.add(&kSanityLast);
  return out.releaseAsArray();
}

RunReport runSuite(kj::ArrayPtr<const CaseSpec*> cases, const RunOptions& options) {
  RunReport report;
  report.target = kj::str(options.launch.orDefault(options.target.orDefault(kj::str("?"))));
  report.tls = !options.plaintext;
  report.started = nowIso();
  report.jobs = options.jobs;
  report.strict = options.strict;
  auto xfails = parseXfail(options.xfail);
  auto results = kj::heapArray<kj::Maybe<CaseResult>>(cases.size());
  struct timespec begin;
  clock_gettime(CLOCK_MONOTONIC, &begin);

  std::mutex lock;
  std::atomic<size_t> next{1};
  std::atomic<bool> stop{false};
  size_t done = 0;
  auto record = [&](size_t index, CaseResult r) {
    std::lock_guard<std::mutex> guard(lock);
    ++done;
    if (options.progress) {
      auto line =
          kj::str("\r\x1b[K[", done, "/", cases.size(), "] ", name(r.verdict), " ", r.spec->id);
      KJ_UNUSED auto n = write(STDERR_FILENO, line.begin(), line.size());
    }
    if (options.failFast && (r.verdict == Verdict::fail || r.verdict == Verdict::xpass))
      stop = true;
    results[index] = kj::mv(r);
  };

  // The sanity case first, alone: nothing else runs against a target that cannot pass it.
  {
    Worker w(options, xfails);
    auto first = w.run(*cases[0]);
    bool usable = first.verdict == Verdict::ok;
    record(0, kj::mv(first));
    if (!usable && !options.keepGoing) stop = true;
  }
  size_t last = cases.size() - 1;
  auto body = [&]() {
    Worker w(options, xfails);
    for (;;) {
      size_t i = next++;
      if (i >= last || stop) return;
      auto r = w.run(*cases[i]);
      record(i, kj::mv(r));
    }
  };
  kj::Vector<std::thread> threads;
  for (uint32_t j = 0; j < kj::max(options.jobs, 1u); ++j)
    threads.add(std::thread(body));
  for (auto& t : threads)
    t.join();
  if (!stop) {
    Worker w(options, xfails);
    record(last, w.run(*cases[last]));
  }
  if (options.progress) {
    KJ_UNUSED auto n = write(STDERR_FILENO, "\r\x1b[K", 4);
  }
  for (auto& r : results) {
    KJ_IF_MAYBE (result, r) {
      report.cases.add(kj::mv(*result));
    }
  }
  struct timespec end;
  clock_gettime(CLOCK_MONOTONIC, &end);
  report.micros = uint64_t(end.tv_sec - begin.tv_sec) * 1000000 +
                  uint64_t((end.tv_nsec - begin.tv_nsec) / 1000);
  return report;
}

int exitStatus(const RunReport& report) {
  for (auto& r : report.cases) {
    switch (r.verdict) {
      case Verdict::fail:
      case Verdict::error:
      case Verdict::xpass: return 1;
      case Verdict::nonStrict:
        if (report.strict) return 1;
        break;
      default: break;
    }
  }
  return 0;
}

}  // namespace shoal::conformance
