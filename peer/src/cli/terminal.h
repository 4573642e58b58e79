// Terminal: the only way `shoal` writes for people, and the process context its command-line
// parser reports to. Every line — our own words, a peer's name or Goodbye message, an item name
// from the disk, an error from a peer — goes through codec::displayText(), so no printer can
// forget to escape a control character, a bidi override or a broken UTF-8 sequence; JSON keeps
// its exact values and shows the same characters as \u escapes. KJ's log lines (--verbose) get the
// same treatment from SafeLogs, on every thread.
#pragma once

#include <kj/exception.h>
#include <kj/main.h>

namespace shoal::peer::cli {

class Terminal final : public kj::ProcessContext {
 public:
  // `process` provides the program name; everything else is done here.
  explicit Terminal(kj::ProcessContext& process) : process(process) {}
  KJ_DISALLOW_COPY(Terminal);

  // One line on stdout, escaped.
  void line(kj::StringPtr text);
  // One JSON document on stdout, with display controls as \u escapes (the same JSON value).
  void json(kj::StringPtr text);
  // Aligned columns on stdout; the first row is the header. Cells are escaped before measuring.
  void table(kj::ArrayPtr<const kj::Array<kj::String>> rows);
  // One line on stderr, escaped.
  void note(kj::StringPtr text);
  // One line on stderr, then exit status 1.
  KJ_NORETURN(void fail(kj::StringPtr text));
  // Exit with `status` now (what was written is out: every write is unbuffered).
  KJ_NORETURN(void exitWith(int status));

  // A line that rewrites itself (progress) when stdout is a terminal; nothing otherwise.
  // `done()` ends it so the next line starts fresh.
  bool isInteractive() const;
  void progress(kj::StringPtr text);
  void progressDone();

  // When stdout's reader goes away (`shoal status | head`), a client command ends at once and
  // quietly (status 0); `shoal serve` asks for this to be off, stops printing and shuts down.
  void keepRunningWhenOutputCloses() { exitWhenOutputCloses = false; }
  bool outputClosed() const { return stdoutClosed; }

  // kj::ProcessContext, for kj::MainBuilder: a usage error (a bad flag or value) exits with 2.
  kj::StringPtr getProgramName() override { return process.getProgramName(); }
  KJ_NORETURN(void exit() override);
  void warning(kj::StringPtr message) override;
  void error(kj::StringPtr message) override;
  KJ_NORETURN(void exitError(kj::StringPtr message) override);
  KJ_NORETURN(void exitInfo(kj::StringPtr message) override);
  void increaseLoggingVerbosity() override;

 private:
  void write(int fd, kj::StringPtr text);

  kj::ProcessContext& process;
  bool hadErrors = false;
  bool stdoutClosed = false;
  bool exitWhenOutputCloses = true;
  bool progressShown = false;
};

// KJ's log output (KJ_LOG, --verbose) escaped like everything else: one log message is one line.
// Install one at the start of main(); threads started with kj::Thread get their own.
class SafeLogs final : public kj::ExceptionCallback {
 public:
  void logMessage(kj::LogSeverity severity, const char* file, int line, int contextDepth,
                  kj::String&& text) override;
  kj::Function<void(kj::Function<void()>)> getThreadInitializer() override;
};

// `--flag -1`: KJ's parser takes "-1" for an option and says "missing argument". A negative
// number after a long option is joined to it (`--flag=-1`) so the option's own check names the
// flag and the value.
kj::Array<kj::String> joinNegativeValues(kj::ArrayPtr<const kj::StringPtr> args);

// The first characters of a peer id, enough to tell peers apart in a listing.
kj::String shortId(kj::StringPtr id);

}  // namespace shoal::peer::cli
