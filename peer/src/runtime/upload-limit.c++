#include <shoal/peer/runtime/upload-limit.h>

#include <kj/debug.h>

namespace shoal::peer {

UploadLimit::UploadLimit(uint64_t bytesPerSecond, kj::TimePoint now)
    : bytesPerSecond(bytesPerSecond), tokens(double(bytesPerSecond)), last(now) {
  KJ_REQUIRE(bytesPerSecond > 0, "an upload limit of 0 bytes per second");
}

kj::Duration UploadLimit::reserve(uint64_t bytes, kj::TimePoint now) {
  if (now > last) {
    double refill = double((now - last) / kj::NANOSECONDS) * double(bytesPerSecond) / 1e9;
    tokens = kj::min(double(bytesPerSecond), tokens + refill);
    last = now;
  }
  tokens -= double(bytes);
  if (tokens >= 0) return 0 * kj::NANOSECONDS;
  return int64_t(-tokens * 1e9 / double(bytesPerSecond)) * kj::NANOSECONDS;
}

}  // namespace shoal::peer
