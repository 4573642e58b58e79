// UploadLimit: how many chunk bytes per second this peer sends, over all its sessions, so sharing
// a library does not take the whole LAN (`shoal serve --max-upload-rate`). A token bucket,
// sans-I/O: the bytes about to be sent and `now` go in, how long to wait before sending them comes
// out. The bucket holds at most one second of bytes; a reservation beyond it is a debt the next
// ones wait for, so the long-run rate is the limit whatever the chunk size.
#pragma once

#include <stdint.h>

#include <kj/time.h>

namespace shoal::peer {

class UploadLimit {
 public:
  // `bytesPerSecond` > 0; starts with a full bucket.
  UploadLimit(uint64_t bytesPerSecond, kj::TimePoint now);

  // Takes `bytes` from the bucket; the wait before sending them (0 while the bucket had them).
  kj::Duration reserve(uint64_t bytes, kj::TimePoint now);

  uint64_t rate() const { return bytesPerSecond; }

 private:
  uint64_t bytesPerSecond;
  double tokens;  // may go negative: the debt of reservations not yet covered
  kj::TimePoint last;
};

}  // namespace shoal::peer
