// Results of a run and their four forms: a console table, JUnit XML, a JSON index (stable,
// machine-readable: what the mutation self-test reads), and one self-contained HTML file with a
// section per case — requirement, verdict, time, and the transcript of every frame, timer and
// close — and a summary per area.
#pragma once

#include <kj/io.h>
#include <kj/string.h>
#include <kj/vector.h>
#include <shoal/conformance/case.h>

namespace shoal::conformance {

struct CaseResult {
  const CaseSpec* spec = nullptr;
  Level level = Level::must;
  Verdict verdict = Verdict::ok;  // after the expected-failure list
  kj::String reason;              // failure, violation, UNIMPLEMENTED or ERROR reason; xfail reason
  kj::String expected;
  kj::String actual;
  kj::StringPtr brokenRequirement;  // the requirement the failure names (may differ from spec's)
  uint64_t micros = 0;
  kj::String close;  // how the target closed the first connection, if it did
  kj::Array<Entry> transcript;
  kj::String targetLog;  // the tail of the target's output, when something went wrong
};

struct RunReport {
  kj::String target;  // the command or address tested
  bool tls;
  kj::String started;  // ISO 8601, UTC
  uint64_t micros = 0;
  uint32_t jobs = 1;
  bool strict = false;
  kj::Vector<CaseResult> cases;
};

struct Tally {
  uint32_t ok = 0, fail = 0, nonStrict = 0, unimplemented = 0, error = 0, xfail = 0, xpass = 0;
  void add(Verdict v);
  uint32_t total() const { return ok + fail + nonStrict + unimplemented + error + xfail + xpass; }
};

// Text fit for a terminal: control and bidi characters shown as escapes.
kj::String forTerminal(kj::StringPtr text);

void writeConsole(const RunReport& report, kj::OutputStream& out, bool verbose);
kj::String junitXml(const RunReport& report);
kj::String jsonIndex(const RunReport& report);
kj::String htmlReport(const RunReport& report);

// Writes report.html, results.json and junit.xml into `dir` (created if needed).
void writeReports(const RunReport& report, kj::StringPtr dir);

}  // namespace shoal::conformance
