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
  // The item list and the manifests agree on a digest that is not the manifest's (lying: only
  // recomputing the digest shows it, [MAN-21]).
  bool forgedManifestDigest = false;
  bool extraByte = false;           // chunk data one byte longer than asked (lying, [CHK-6])
  kj::Maybe<uint32_t> vanishAfter;  // after this many answers, reset the connection
  // After this many Chunk answers, GetChunk answers are held until the case releases them (a
  // download caught in the middle).
  kj::Maybe<uint32_t> holdChunksAfter;
  // GetChunk answers for a range asked before (a request retried, or copied, after a loss) are
  // held too; the others are answered.
  bool holdRepeats = false;
  // GetChunk answers go out in pairs, the later request's first ([RQ-10]); a request alone for
  // `pairWait` is answered alone.
  bool reversePairs = false;
  kj::Duration pairWait = 200 * kj::MILLISECONDS;
};

// A GetChunk as the target asked it.
struct ChunkAsk {
  uint64_t id;
  kj::String itemId;
  uint32_t fileIndex;
  uint64_t offset;
  uint32_t length;
};

class LibrarySource final : public Source {
 public:
  LibrarySource(const ScriptedLibrary& library, Behaviour behaviour = {});

  void onRequest(Connection& connection, const codec::InboundFrame& request) override;
  uint32_t answered() const { return answers; }
  uint32_t requests() const { return received; }
  kj::ArrayPtr<const ChunkAsk> chunkAsks() const { return asks; }
  uint32_t reordered() const { return reorders; }  // pairs answered later request first
  Behaviour& behaviour() { return how; }

  // The GetChunk answers held back (holdChunksAfter), oldest first.
  kj::Array<uint64_t> heldIds() const;
  // Sends the held answers as this source produced them (honest or lying); the hold stays for
  // later requests unless lifted (behaviour().holdChunksAfter).
  void releaseHeld(Connection& connection);
  // Forgets the held answers: the case answers those ids itself.
  kj::Array<uint64_t> takeHeld();
  // The library summary this source announces (Hello, pages).
  codec::Summary announced() const;

  // The answer frames to one request, as this source would send them (also used by tests).
  kj::Array<FrameBuilder> answerTo(wire::Frame::Reader request, uint32_t requesterMaxFrameBytes);

 private:
  kj::Array<FrameBuilder> library(uint64_t id, wire::GetLibrary::Reader get, uint32_t maxFrame);
  kj::Array<FrameBuilder> manifest(uint64_t id, kj::StringPtr itemId, uint32_t maxFrame);
  kj::Array<FrameBuilder> chunk(wire::GetChunk::Reader get, uint32_t maxFrame);
  kj::Array<codec::ItemInfo> listed() const;  // the items as this source lists them

  void sendLater(Connection& connection, kj::Array<FrameBuilder> frames);
  void answerInPairs(Connection& connection, uint64_t id, kj::Array<FrameBuilder> frames);

  struct Held {
    uint64_t id;
    kj::Array<FrameBuilder> answer;
  };
  const ScriptedLibrary& lib;
  Behaviour how;
  uint32_t answers = 0;
  uint32_t received = 0;
  uint32_t chunkAnswers = 0;
  uint32_t reorders = 0;
  kj::Vector<ChunkAsk> asks;
  kj::Vector<Held> held;
  kj::Maybe<Held> pairFirst;  // reversePairs: the request waiting for a partner
};

// Deterministic pseudo-random bytes (xorshift) for file contents both sides can regenerate.
kj::Array<kj::byte> patternBytes(size_t size, uint64_t seed);

}  // namespace shoal::conformance
