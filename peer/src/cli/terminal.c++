#include "terminal.h"

#include <errno.h>
#include <kj/debug.h>
#include <kj/vector.h>
#include <shoal/codec/text.h>
#include <unistd.h>

namespace shoal::peer::cli {

namespace {

constexpr int kUsageErrorStatus = 2;  // as getopt-based tools do
constexpr size_t kShortIdChars = 15;  // two groups of the text form and a bit

// Escapes each line of `text` on its own: for messages made of several lines of ours (KJ's usage
// errors end with a "Try --help" line). Peer text never reaches these.
kj::String displayLines(kj::StringPtr text) {
  kj::Vector<kj::String> lines;
  size_t start = 0;
  for (;;) {
    KJ_IF_MAYBE (newline, text.slice(start).findFirst('\n')) {
      lines.add(codec::displayText(text.slice(start, start + *newline)));
      start += *newline + 1;
    } else {
      lines.add(codec::displayText(text.slice(start)));
      break;
    }
  }
  return kj::strArray(lines, "\n");
}

// JSON with every display control (and every invalid byte) as a \u escape: the same JSON value
// for valid text, and nothing a terminal would act on when the JSON is shown raw.
kj::String safeJson(kj::StringPtr text) {
  static constexpr char kHex[] = "0123456789abcdef";
  kj::Vector<char> out(text.size());
  bool inString = false;
  size_t i = 0;
  while (i < text.size()) {
    char c = text[i];
    if (inString && c == '\\' && i + 1 < text.size()) {
      out.add(c);
      out.add(text[i + 1]);
      i += 2;
      continue;
    }
    if (c == '"') inString = !inString;
    bool whitespace = !inString && (c == ' ' || c == '\n' || c == '\r' || c == '\t');
    auto decoded = codec::decodeUtf8At(text, i);
    KJ_IF_MAYBE (ch, decoded) {
      if (whitespace || !codec::isDisplayControl(ch->codePoint)) {
        out.addAll(text.slice(i, i + ch->bytes));
        i += ch->bytes;
        continue;
      }
    }
    uint32_t codePoint = 0xFFFD;  // an invalid byte becomes the replacement character
    size_t length = 1;
    KJ_IF_MAYBE (ch, decoded) {
      codePoint = ch->codePoint;
      length = ch->bytes;
    }
    out.addAll(kj::StringPtr("\\u"));
    for (int shift = 12; shift >= 0; shift -= 4)
      out.add(kHex[(codePoint >> shift) & 15]);
    i += length;
  }
  return kj::heapString(out.begin(), out.size());
}

// Display width of escaped text: code points (every byte but continuation bytes).
size_t widthOf(kj::StringPtr text) {
  size_t width = 0;
  for (char c : text)
    width += (kj::byte(c) & 0xC0) != 0x80;
  return width;
}

}  // namespace

void Terminal::write(int fd, kj::StringPtr text) {
  if (fd == STDOUT_FILENO && stdoutClosed) return;
  const char* p = text.begin();
  size_t left = text.size();
  while (left > 0) {
    ssize_t n = ::write(fd, p, left);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      if (fd != STDOUT_FILENO) return;  // stderr is gone: nothing left to tell anyone
      // stdout's reader went away (EPIPE with SIGPIPE ignored) or stdout failed: stop printing.
      stdoutClosed = true;
      if (exitWhenOutputCloses) _exit(hadErrors ? 1 : 0);
      return;
    }
    p += n;
    left -= size_t(n);
  }
}

void Terminal::line(kj::StringPtr text) {
  progressDone();
  write(STDOUT_FILENO, kj::str(codec::displayText(text), "\n"));
}

void Terminal::json(kj::StringPtr text) {
  write(STDOUT_FILENO, kj::str(safeJson(text), "\n"));
}

void Terminal::table(kj::ArrayPtr<const kj::Array<kj::String>> rows) {
  if (rows.size() == 0) return;
  auto cells = KJ_MAP(row, rows) {
    return KJ_MAP(cell, row) {
      return codec::displayText(cell);
    };
  };
  auto widths = kj::heapArray<size_t>(cells[0].size());
  for (auto& w : widths)
    w = 0;
  for (auto& row : cells) {
    for (auto i : kj::indices(row))
      widths[i] = kj::max(widths[i], widthOf(row[i]));
  }
  for (auto& row : cells) {
    kj::Vector<char> out;
    for (auto i : kj::indices(row)) {
      out.addAll(row[i]);
      if (i + 1 < row.size()) {
        for (size_t pad = widthOf(row[i]); pad < widths[i] + 2; ++pad)
          out.add(' ');
      }
    }
    out.add('\n');
    write(STDOUT_FILENO, kj::heapString(out.begin(), out.size()));
  }
}

void Terminal::note(kj::StringPtr text) {
  write(STDERR_FILENO, kj::str(codec::displayText(text), "\n"));
}

void Terminal::fail(kj::StringPtr text) {
  hadErrors = true;
  note(text);
  exit();
}

void Terminal::exitWith(int status) {
  progressDone();
  _exit(status);
}

bool Terminal::isInteractive() const {
  return isatty(STDOUT_FILENO) == 1;
}

void Terminal::progress(kj::StringPtr text) {
  if (!isInteractive()) return;
  // \r back to the line's start, the text, then erase what a longer earlier text left.
  write(STDOUT_FILENO, kj::str("\r", codec::displayText(text), "\x1b[K"));
  progressShown = true;
}

void Terminal::progressDone() {
  if (!progressShown) return;
  progressShown = false;
  write(STDOUT_FILENO, "\n");
}

void Terminal::exit() {
  _exit(hadErrors ? 1 : 0);
}

void Terminal::warning(kj::StringPtr message) {
  write(STDERR_FILENO, kj::str(displayLines(message), "\n"));
}

void Terminal::error(kj::StringPtr message) {
  hadErrors = true;
  warning(message);
}

void Terminal::exitError(kj::StringPtr message) {
  // kj::MainBuilder calls this only for usage errors.
  warning(message);
  _exit(kUsageErrorStatus);
}

void Terminal::exitInfo(kj::StringPtr message) {
  write(STDOUT_FILENO, kj::str(displayLines(message), "\n"));
  exit();
}

void Terminal::increaseLoggingVerbosity() {
  kj::_::Debug::setLogLevel(kj::LogSeverity::INFO);
}

void SafeLogs::logMessage(kj::LogSeverity severity, const char* file, int line, int contextDepth,
                          kj::String&& text) {
  (void)contextDepth;
  size_t length = text.size();
  while (length > 0 && text[length - 1] == '\n')
    --length;
  auto body = text.slice(0, length);
  auto out =
      kj::str(codec::displayText(kj::str(file, ":", line, ": ", severity, ": ", body)), "\n");
  const char* p = out.begin();
  size_t left = out.size();
  while (left > 0) {
    ssize_t n = ::write(STDERR_FILENO, p, left);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;  // stderr is gone
    p += n;
    left -= size_t(n);
  }
}

kj::Function<void(kj::Function<void()>)> SafeLogs::getThreadInitializer() {
  return [](kj::Function<void()> func) {
    SafeLogs logs;
    func();
  };
}

kj::Array<kj::String> joinNegativeValues(kj::ArrayPtr<const kj::StringPtr> args) {
  kj::Vector<kj::String> out;
  for (size_t i = 0; i < args.size(); ++i) {
    auto arg = args[i];
    bool longOption = arg.startsWith("--") && arg.size() > 2 && arg.findFirst('=') == nullptr;
    if (longOption && i + 1 < args.size()) {
      auto next = args[i + 1];
      if (next.size() >= 2 && next[0] == '-' && next[1] >= '0' && next[1] <= '9') {
        out.add(kj::str(arg, "=", next));
        ++i;
        continue;
      }
    }
    out.add(kj::str(arg));
  }
  return out.releaseAsArray();
}

kj::String shortId(kj::StringPtr id) {
  return kj::str(id.slice(0, kj::min(id.size(), kShortIdChars)), "…");
}

}  // namespace shoal::peer::cli
