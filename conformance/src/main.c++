// shoal-conform: runs the conformance suite against any shoal implementation (docs/conformance.md).
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include <kj/debug.h>
#include <kj/io.h>
#include <kj/main.h>
#include <shoal/conformance/requirements.h>
#include <shoal/conformance/runner.h>
#include <shoal/conformance/tls-wire.h>
#include <shoal/peer/transport/identity.h>

namespace shoal::conformance {

namespace {

using Validity = kj::MainBuilder::Validity;

kj::Maybe<kj::String> readText(kj::StringPtr path) {
  int fd = open(path.cStr(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return nullptr;
  kj::FdInputStream in{kj::AutoCloseFd(fd)};
  return kj::str(in.readAllText());
}

class Conform {
 public:
  explicit Conform(kj::ProcessContext& context) : context(context) {}

  kj::MainFunc getMain() {
    return kj::MainBuilder(
               context, "shoal-conform 0.1.0",
               "Runs the shoal conformance suite against an implementation: each case plays one or "
               "more scripted peers over real connections and judges the target against one "
               "requirement of docs/protocol.md. Give either --target or --launch. "
               "See docs/conformance.md for the adapter contract and the placeholders.")
        .addOptionWithArg({"target"}, KJ_BIND_METHOD(*this, setTarget), "<host:port>",
                          "a running target (cases that need a launch are UNIMPLEMENTED)")
        .addOptionWithArg({"target-id"}, KJ_BIND_METHOD(*this, setTargetId), "<peer-id>",
                          "the running target's peer id (text form), checked against its TLS key")
        .addOptionWithArg({"launch"}, KJ_BIND_METHOD(*this, setLaunch), "<command>",
                          "start a fresh target per case: a /bin/sh command with placeholders "
                          "{port} {state} {library} {harness} {harness-id} {allow} {handshake-ms} "
                          "{idle-ms} {dead-ms} {drain-ms} {max-in-flight} {max-connections} "
                          "{rescan-ms} {chunk-size} and {if:NAME:TEXT} for the flags plaintext, "
                          "tls, initiator, pinned")
        .addOptionWithArg(
            {"control"}, KJ_BIND_METHOD(*this, setControl), "<path>",
            "the target's control socket (schema/control.capnp); placeholders allowed "
            "with --launch, e.g. '{state}/control.sock'")
        .addOptionWithArg({"define"}, KJ_BIND_METHOD(*this, addDefine), "<name=value>",
                          "an extra placeholder for --launch (repeatable)")
        .addOption({"plaintext"}, KJ_BIND_METHOD(*this, setPlaintext),
                   "speak plaintext frames instead of TLS (the target must be in plaintext mode)")
        .addOption({"list"}, KJ_BIND_METHOD(*this, setList),
                   "print the selected cases (id, role, level, requirement, title) and exit")
        .addOptionWithArg({"filter"}, KJ_BIND_METHOD(*this, addFilter), "<glob>",
                          "run only cases whose id matches (repeatable), e.g. 'hs/*'")
        .addOptionWithArg({"exclude"}, KJ_BIND_METHOD(*this, addExclude), "<glob>",
                          "skip cases whose id matches (repeatable)")
        .addOption({"strict"}, KJ_BIND_METHOD(*this, setStrict),
                   "NON-STRICT (a SHOULD broken) fails the run too")
        .addOptionWithArg({"xfail"}, KJ_BIND_METHOD(*this, setXfail), "<file>",
                          "expected failures: lines of '<id-glob> <reason>'; an expected failure "
                          "that passes fails the run")
        .addOptionWithArg({'j', "jobs"}, KJ_BIND_METHOD(*this, setJobs), "<n>",
                          "cases run in parallel (each launched case has its own port and folders)")
        .addOptionWithArg({"step-timeout"}, KJ_BIND_METHOD(*this, setStepTimeout), "<ms>",
                          "how long one expectation waits (default 5000)")
        .addOptionWithArg({"quiet-ms"}, KJ_BIND_METHOD(*this, setQuiet), "<ms>",
                          "the window of 'nothing happens' expectations (default 300)")
        .addOptionWithArg({"discovery"}, KJ_BIND_METHOD(*this, setDiscovery), "<iface>",
                          "run the discovery cases: the target announces on this interface "
                          "({iface}); only inside a network namespace of the test's own")
        .addOptionWithArg({"discovery-other"}, KJ_BIND_METHOD(*this, setDiscoveryOther), "<iface>",
                          "an interface the target must not announce on ([DSC-3])")
        .addOptionWithArg({"report"}, KJ_BIND_METHOD(*this, setReport), "<dir>",
                          "write report.html, results.json and junit.xml there")
        .addOption({"fail-fast"}, KJ_BIND_METHOD(*this, setFailFast),
                   "stop after the first FAIL (mutation runs)")
        .addOption({"keep-going"}, KJ_BIND_METHOD(*this, setKeepGoing),
                   "run every case even when the first sanity case fails (mutation runs: a "
                   "mutant that breaks every handshake still gets a verdict per case)")
        .addOption({"keep"}, KJ_BIND_METHOD(*this, setKeep),
                   "keep each case's folder (library, state, target.log) under --temp")
        .addOptionWithArg({"temp"}, KJ_BIND_METHOD(*this, setTemp), "<dir>",
                          "where case folders go (default /tmp)")
        .addOption({"all"}, KJ_BIND_METHOD(*this, setVerbose),
                   "list every case in the console table, not only the failures")
        .addOptionWithArg({"check-coverage"}, KJ_BIND_METHOD(*this, setCoverage), "<awaiting.txt>",
                          "check that every MUST id of docs/protocol.md has a case or an entry in "
                          "the awaiting list; print the problems and exit")
        .callAfterParsing(KJ_BIND_METHOD(*this, run))
        .build();
  }

 private:
  kj::ProcessContext& context;
  RunOptions options;
  bool list = false;
  bool verbose = false;
  kj::Maybe<kj::String> reportDir;
  kj::Maybe<kj::String> coverage;

  Validity setTarget(kj::StringPtr a) {
    if (a.findLast(':') == nullptr) return "expected host:port";
    options.target = kj::str(a);
    return true;
  }
  Validity setTargetId(kj::StringPtr id) {
    if (peer::parsePeerId(id) == nullptr) return "not a peer id in text form";
    options.targetId = kj::str(id);
    return true;
  }
  Validity setLaunch(kj::StringPtr c) {
    options.launch = kj::str(c);
    return true;
  }
  Validity setControl(kj::StringPtr c) {
    options.control = kj::str(c);
    return true;
  }
  Validity addDefine(kj::StringPtr d) {
    if (d.findFirst('=') == nullptr) return "expected NAME=VALUE";
    options.defines.add(kj::str(d));
    return true;
  }
  Validity setPlaintext() {
    options.plaintext = true;
    return true;
  }
  Validity setList() {
    list = true;
    return true;
  }
  Validity addFilter(kj::StringPtr g) {
    options.filters.add(kj::str(g));
    return true;
  }
  Validity addExclude(kj::StringPtr g) {
    options.excludes.add(kj::str(g));
    return true;
  }
  Validity setStrict() {
    options.strict = true;
    return true;
  }
  Validity setXfail(kj::StringPtr path) {
    KJ_IF_MAYBE (text, readText(path)) {
      options.xfail = kj::mv(*text);
      return true;
    }
    return "cannot read that file";
  }
  Validity number(kj::StringPtr text, uint32_t min, uint32_t max, uint32_t& out) {
    char* end = nullptr;
    unsigned long v = strtoul(text.cStr(), &end, 10);
    if (text.size() == 0 || *end != '\0' || v < min || v > max) {
      return kj::str("expected a whole number from ", min, " to ", max);
    }
    out = uint32_t(v);
    return true;
  }
  Validity setJobs(kj::StringPtr t) { return number(t, 1, 64, options.jobs); }
  Validity setStepTimeout(kj::StringPtr t) {
    uint32_t ms = 0;  // stays 0 (below the minimum) when `t` is refused
    auto v = number(t, 10, 600000, ms);
    if (ms > 0) options.stepTimeout = ms * kj::MILLISECONDS;
    return v;
  }
  Validity setQuiet(kj::StringPtr t) {
    uint32_t ms = 0;
    auto v = number(t, 10, 60000, ms);
    if (ms > 0) options.quiet = ms * kj::MILLISECONDS;
    return v;
  }
  Validity setReport(kj::StringPtr d) {
    reportDir = kj::str(d);
    return true;
  }
  Validity setFailFast() {
    options.failFast = true;
    return true;
  }
  Validity setKeepGoing() {
    options.keepGoing = true;
    return true;
  }
  Validity setKeep() {
    options.keep = true;
    return true;
  }
  Validity setDiscovery(kj::StringPtr i) {
    options.discovery = kj::str(i);
    return true;
  }
  Validity setDiscoveryOther(kj::StringPtr i) {
    options.discoveryOther = kj::str(i);
    return true;
  }
  Validity setTemp(kj::StringPtr d) {
    options.tempRoot = kj::str(d);
    return true;
  }
  Validity setVerbose() {
    verbose = true;
    return true;
  }
  Validity setCoverage(kj::StringPtr path) {
    KJ_IF_MAYBE (text, readText(path)) {
      coverage = kj::mv(*text);
      return true;
    }
    return "cannot read that file";
  }

  void print(kj::StringPtr text) {
    kj::FdOutputStream out(STDOUT_FILENO);
    out.write(text.begin(), text.size());
  }

  Validity run() {
    auto all = allCases();
    KJ_IF_MAYBE (awaiting, coverage) {
      auto problems = coverageProblems(all, *awaiting);
      for (auto& p : problems)
        print(kj::str(p, "\n"));
      size_t musts = 0;
      for (auto& r : requirements())
        if (r.level == Level::must) ++musts;
      print(kj::str(all.size(), " cases, ", requirements().size(), " requirements (", musts,
                    " MUST), ", problems.size(), " coverage problems\n"));
      if (problems.size() > 0) context.exitError("coverage check failed");
      context.exit();
    }
    auto selected = selectCases(all, options);
    if (list) {
      for (auto c : selected) {
        auto level = findRequirement(c->requirement)
                         .map([](const Requirement& r) {
                           return r.level == Level::should ? "SHOULD"_kj : "MUST"_kj;
                         })
                         .orDefault("-"_kj);
        print(kj::str(c->id, "\t", name(c->role), "\t", level, "\t", c->title, "\n"));
      }
      print(kj::str(selected.size(), " cases\n"));
      context.exit();
    }
    if ((options.target == nullptr) == (options.launch == nullptr)) {
      return "give exactly one of --target and --launch";
    }
    initTls();
    options.progress = isatty(STDERR_FILENO);
    auto report = runSuite(selected, options);
    kj::FdOutputStream out(STDOUT_FILENO);
    writeConsole(report, out, verbose);
    KJ_IF_MAYBE (dir, reportDir) {
      writeReports(report, *dir);
      print(kj::str("reports: ", *dir, "/report.html, results.json, junit.xml\n"));
    }
    int status = exitStatus(report);
    if (status != 0) context.exitError("conformance failures (see above)");
    context.exit();
    KJ_UNREACHABLE;
  }
};

}  // namespace
}  // namespace shoal::conformance

KJ_MAIN(shoal::conformance::Conform)
