// Runs cases against a target: chooses them (filters), gives each launched case its own port,
// folders and process, runs them on N worker threads (each with its own event loop), probes the
// target after every case so a crash is charged to the case that caused it, applies the
// expected-failure list, and reports progress.
#pragma once

#include <kj/string.h>
#include <kj/vector.h>
#include <shoal/conformance/report.h>

namespace shoal::conformance {

struct RunOptions {
  kj::Maybe<kj::String> target;    // host:port of a running target
  kj::Maybe<kj::String> targetId;  // its peer id, text form
  kj::Maybe<kj::String> launch;    // command template
  kj::Maybe<kj::String> control;   // control socket path (template with --launch)
  bool plaintext = false;
  kj::Vector<kj::String> filters;  // globs over case ids; empty = all
  kj::Vector<kj::String> excludes;
  kj::Vector<kj::String> defines;  // NAME=VALUE placeholders
  kj::String xfail;                // the expected-failure list's text
  bool strict = false;
  bool failFast = false;
  bool keepGoing = false;  // run every case even when the first sanity case fails (mutants)
  bool keep = false;       // keep each case's folder
  bool progress = false;   // a progress line on stderr
  uint32_t jobs = 1;
  kj::Duration stepTimeout = 5 * kj::SECONDS;
  kj::Duration quiet = 300 * kj::MILLISECONDS;
  kj::String tempRoot = kj::str("/tmp");
  // The interface the target announces on ({iface}) and one it must stay off: the discovery
  // cases run only with these, inside a network namespace (conformance/test/discovery.sh).
  kj::Maybe<kj::String> discovery;
  kj::Maybe<kj::String> discoveryOther;
};

// The cases `options` selects, in run order (sanity cases first and last).
kj::Array<const CaseSpec*> selectCases(kj::ArrayPtr<const CaseSpec> all, const RunOptions& options);

RunReport runSuite(kj::ArrayPtr<const CaseSpec*> cases, const RunOptions& options);

// Exit status: 0 when nothing failed, errored or passed unexpectedly (and, with --strict, no
// NON-STRICT); 1 otherwise.
int exitStatus(const RunReport& report);

}  // namespace shoal::conformance
