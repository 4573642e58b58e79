// Target `message`: a correctly framed Cap'n Proto message whose content is arbitrary, through
// decode + validate (paths, ranges, counts, texts, digests, union tags). Invariants: nothing but a
// typed result; a message that validates still validates, and reads the same, after Cap'n Proto
// copies it into a fresh canonical layout.
#include <capnp/message.h>
#include <capnp/pretty-print.h>
#include <kj/debug.h>
#include <shoal/codec/frame.h>
#include <string.h>

using namespace shoal::codec;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0 || size > 256 * 1024) return 0;
  // One segment holding the input, padded to whole words; a correct table in front of it.
  size_t words = (size + 7) / 8;
  auto frame = kj::heapArray<kj::byte>(8 + words * 8);
  memset(frame.begin(), 0, frame.size());
  frame[4] = kj::byte(words);
  frame[5] = kj::byte(words >> 8);
  frame[6] = kj::byte(words >> 16);
  memcpy(frame.begin() + 8, data, size);

  auto result = decodeFrame(frame);
  KJ_IF_MAYBE (decoded, result.tryGet<InboundFrame>()) {
    auto text = kj::str(capnp::prettyPrint(decoded->root()));
    capnp::MallocMessageBuilder copy;
    // Fields this version does not know may hold anything; copying them may fail, which is fine.
    bool copied = kj::runCatchingExceptions([&]() { copy.setRoot(decoded->root()); }) == nullptr;
    if (copied) {
      auto again = decodeFrame(encodeFrame(copy));
      KJ_IF_MAYBE (problem, again.tryGet<Failure>()) {
        KJ_FAIL_ASSERT("valid frame invalid after a canonical copy", problem->message);
      }
      KJ_ASSERT(kj::str(capnp::prettyPrint(again.get<InboundFrame>().root())) == text);
    }
  }
  return 0;
}
