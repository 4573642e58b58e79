#include <shoal/conformance/transcript.h>

namespace shoal::conformance {

kj::StringPtr name(EntryKind kind) {
  switch (kind) {
    case EntryKind::sent: return "sent";
    case EntryKind::received: return "received";
    case EntryKind::rawSent: return "raw sent";
    case EntryKind::rawReceived: return "raw received";
    case EntryKind::tls: return "tls";
    case EntryKind::close: return "close";
    case EntryKind::timer: return "timer";
    case EntryKind::step: return "step";
    case EntryKind::control: return "control";
    case EntryKind::violation: return "violation";
    case EntryKind::note: return "note";
  }
  return "?";
}

void Transcript::add(kj::TimePoint now, uint32_t connection, EntryKind kind, kj::String text,
                     kj::String hex, bool background) {
  uint64_t micros = now > start ? uint64_t((now - start) / kj::MICROSECONDS) : 0;
  list.add(Entry{micros, connection, kind, background, kj::mv(text),
                 hex == nullptr ? kj::str() : kj::mv(hex)});
}

kj::String frameText(kj::StringPtr full, size_t limit) {
  if (full.size() <= limit) return kj::str(full);
  // Cut on a UTF-8 boundary.
  size_t cut = limit;
  while (cut > 0 && (kj::byte(full[cut]) & 0xc0) == 0x80)
    --cut;
  return kj::str(full.slice(0, cut), "…(", full.size(), " characters)");
}

}  // namespace shoal::conformance
