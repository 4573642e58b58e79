// The record of one case: every frame both ways (decoded as Cap'n Proto text, plus hex), raw
// bytes, TLS events, closes, timers, control calls and the harness's own steps, each stamped with
// the time since the case started. Reports render it; nothing here formats for a medium.
#pragma once

#include <kj/string.h>
#include <kj/time.h>
#include <kj/vector.h>

namespace shoal::conformance {

enum class EntryKind : uint8_t {
  sent,         // a frame the harness sent
  received,     // a frame the target sent
  rawSent,      // bytes the harness sent that are not (only) a well-formed frame
  rawReceived,  // bytes from the target that do not decode as a frame
  tls,          // a TLS handshake result, alert or close_notify
  close,        // FIN, RST, the end of a connection (either side)
  timer,        // the harness waited: for what, and how long
  step,         // what the case does next, in words
  control,      // a call to the target's control API, or a process action
  violation,    // a requirement the target broke
  note,         // anything else worth reading
};

kj::StringPtr name(EntryKind kind);

struct Entry {
  uint64_t atMicros;    // since the case started
  uint32_t connection;  // 0 = the case itself; connections count from 1
  EntryKind kind;
  bool background;  // traffic no step asked for (pings, the target's own library sync)
  kj::String text;  // decoded frame or description
  kj::String hex;   // the bytes, possibly cut; empty when there are none
};

class Transcript {
 public:
  explicit Transcript(kj::TimePoint start) : start(start) {}

  void add(kj::TimePoint now, uint32_t connection, EntryKind kind, kj::String text,
           kj::String hex = nullptr, bool background = false);
  kj::ArrayPtr<const Entry> entries() const { return list; }
  kj::Array<Entry> take() { return list.releaseAsArray(); }

 private:
  kj::TimePoint start;
  kj::Vector<Entry> list;
};

// Cap'n Proto text of a frame, cut to `limit` bytes (chunks can be megabytes).
kj::String frameText(kj::StringPtr full, size_t limit = 4096);

}  // namespace shoal::conformance
