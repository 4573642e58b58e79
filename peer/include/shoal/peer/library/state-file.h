// Files the peer keeps for itself in its state folder and reads back without trusting them (the
// index cache, a download's manifest and progress): an 8-byte magic, a u32le version, a u32le
// zero, the SHA-256 of the body, then the body. Written atomically (temporary file, fsync, rename,
// fsync of the folder), so a reader finds the old file or the new one, never a torn mix; the
// checksum catches truncation and flipped bytes before a single field is trusted.
#pragma once

#include <stdint.h>

#include <kj/array.h>
#include <kj/one-of.h>
#include <kj/string.h>

namespace shoal::peer::library {

struct StateFileFormat {
  kj::StringPtr magic;  // exactly 8 bytes
  uint32_t version;
  uint64_t maxBytes;  // a larger file is not ours
};

// Null on success, else what failed (the temporary file is removed).
kj::Maybe<kj::String> saveStateFile(int dirFd, kj::StringPtr name, const StateFileFormat& format,
                                    kj::ArrayPtr<const kj::byte> body);

struct StateFileMissing {};
// Why a file was refused: not a regular file, too large, wrong magic or version, bad checksum.
struct StateFileRefused {
  kj::String why;
};
using StateFileRead = kj::OneOf<kj::Array<kj::byte>, StateFileMissing, StateFileRefused>;

// The body of `name` beneath `dirFd`, checked against `format`.
StateFileRead loadStateFile(int dirFd, kj::StringPtr name, const StateFileFormat& format);

}  // namespace shoal::peer::library
