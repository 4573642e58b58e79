// A library the harness itself serves: items and file contents in memory, their manifests and
// digests computed with the codec's normative functions, a revision history for deltas, and a
// Source that answers the target's GetLibrary / GetManifest / GetChunk from it — honestly, slowly,
// with lies (wrong digests, corrupt chunks) or by vanishing after a number of answers.
#pragma once

#include <kj/map.h>
#include <kj/vector.h>
#include <shoal/codec/manifest.h>
#include <shoal/conformance/connection.h>

namespace shoal::conformance {

struct FileSpec {
  kj::String path;
  kj::Array<kj::byte> content;
  uint32_t mode = 0644;
};

class ScriptedLibrary {
 public:
  explicit ScriptedLibrary(uint64_t epoch = 7, uint32_t chunkSize = 64 * 1024);

  // Adds or replaces an item (not yet published).
  void put(kj::StringPtr itemId, kj::Array<FileSpec> files);
  void remove(kj::StringPtr itemId);
  // Publishes the pending changes as the next revision.
  void publish();

  const codec::Summary& summary() const { return current; }
  // Items at the current revision, ascending by itemId.
  kj::Array<codec::ItemInfo> items() const;
  kj::Maybe<const codec::Manifest&> manifest(kj::StringPtr itemId) const;
  kj::Maybe<kj::ArrayPtr<const kj::byte>> content(kj::StringPtr itemId, uint32_t fileIndex) const;
  // Items at `rev` of this epoch, if the history still holds it.
  kj::Maybe<kj::ArrayPtr<const codec::ItemInfo>> itemsAt(uint64_t rev) const;
  uint32_t chunkSize() const { return chunk; }

 private:
  struct Item {
    codec::Manifest manifest;
    kj::Array<kj::Array<kj::byte>> contents;  // per file, manifest order
  };
  uint32_t chunk;
  kj::TreeMap<kj::String, Item> live;
  codec::Summary current;
  kj::Vector<kj::Array<codec::ItemInfo>> history;  // history[r - 1]: items at rev r
};

// How a LibrarySource misbehaves, one knob per way a real source can.
struct Behaviour {
  kj::Duration delay = 0 * kj::SECONDS;  // before every answer (slow)
  uint32_t pageItems = 100000;           // at most this many entries per library page
  bool wrongLibraryDigest = false;       // summaries carry a digest of something else (lying)
  bool corruptChunks = false;            // chunk data with one byte flipped (lying)
  bool wrongManifestDigest = false;      // manifests claim another digest (lying)
  kj::Maybe<uint32_t> vanishAfter;       // after this many answers, reset the connection
};

class LibrarySource final : public Source {
 public:
  LibrarySource(const ScriptedLibrary& library, Behaviour behaviour = {});

  void onRequest(Connection& connection, const codec::InboundFrame& request) override;
  uint32_t answered() const { return answers; }
  uint32_t requests() const { return received; }

  // The answer frames to one request, as this source would send them (also used by tests).
  kj::Array<FrameBuilder> answerTo(wire::Frame::Reader request, uint32_t requesterMaxFrameBytes);

 private:
  kj::Array<FrameBuilder> library(uint64_t id, wire::GetLibrary::Reader get, uint32_t maxFrame);
  kj::Array<FrameBuilder> manifest(uint64_t id, kj::StringPtr itemId, uint32_t maxFrame);
  kj::Array<FrameBuilder> chunk(wire::GetChunk::Reader get, uint32_t maxFrame);
  codec::Summary announced() const;

  const ScriptedLibrary& lib;
  Behaviour behaviour;
  uint32_t answers = 0;
  uint32_t received = 0;
};

// Deterministic pseudo-random bytes (xorshift) for file contents both sides can regenerate.
kj::Array<kj::byte> patternBytes(size_t size, uint64_t seed);

}  // namespace shoal::conformance
