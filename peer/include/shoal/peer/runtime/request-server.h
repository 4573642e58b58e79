// RequestServer: answers the peer's GetLibrary, GetManifest and GetChunk from our Library, with
// every check of docs/protocol.md §8 in the spec's order. Files are opened beneath the library
// root without following symlinks and re-checked after the read, so a changed file is answered
// `stale`, never served as the old content.
#pragma once

#include <shoal/codec/chunk-frame.h>
#include <shoal/codec/frames.h>
#include <shoal/peer/library/library.h>
#include <shoal/peer/session/session-core.h>

namespace shoal::peer {

// A GetChunk that passed every check against the library: what is left is the file's own (open,
// read, re-check), which may run on another thread (chunk-readers.h).
struct ChunkRead {
  uint64_t id;
  kj::Own<const library::Item> item;
  uint32_t index;
  uint64_t offset;
  uint32_t length;
  uint32_t maxFrameBytes;  // the requester's
};

// What reading a chunk brought: the answer (the Chunk, or one Error frame) and what the server's
// counters need.
struct ChunkAnswer {
  kj::Array<codec::FrameBuilder> frames;
  bool stale = false;   // the file changed since it was hashed
  uint32_t served = 0;  // chunk bytes in the answer
};

// Reads `read` from `fd` (file `read.index` of its item, opened beneath the library root) into a
// Chunk frame from `frames` and checks the file again. Thread-safe: touches nothing but its
// arguments (the pool is thread-safe).
ChunkAnswer readChunk(const ChunkRead& read, int fd, codec::ChunkFramePool& frames);

class RequestServer {
 public:
  // `rootFd` is the library root, opened O_DIRECTORY; it must outlive the server.
  RequestServer(const library::Library& library, int rootFd);

  // The answer to request `id`: its pages (the last terminal) or a single Error frame. Every
  // frame fits `peer.maxFrameBytes`.
  kj::Array<codec::FrameBuilder> serve(uint64_t id, wire::Frame::Reader request,
                                       const RemotePeer& peer);

  // GetChunk in two halves, for an owner that reads off the event loop: the checks against the
  // library (a refusal, or what to read), then — once the read is done — its counters.
  kj::OneOf<ChunkRead, kj::Array<codec::FrameBuilder>> checkChunk(uint64_t id,
                                                                  wire::GetChunk::Reader request,
                                                                  const RemotePeer& peer);
  void count(const ChunkAnswer& answer);

  // GetChunk answers that found a file changed since it was hashed: the owner should rescan.
  uint64_t staleFiles() const { return staleCount; }
  uint64_t bytesServed() const { return servedBytes; }
  // GetLibrary answers by kind: a peer that keeps up gets deltas, not snapshots.
  uint64_t snapshotsServed() const { return snapshotCount; }
  uint64_t deltasServed() const { return deltaCount; }

 private:
  kj::Array<codec::FrameBuilder> getLibrary(uint64_t id, wire::GetLibrary::Reader request,
                                            const RemotePeer& peer);
  kj::Array<codec::FrameBuilder> getManifest(uint64_t id, wire::GetManifest::Reader request,
                                             const RemotePeer& peer);
  kj::Array<codec::FrameBuilder> getChunk(uint64_t id, wire::GetChunk::Reader request,
                                          const RemotePeer& peer);
  kj::Maybe<kj::Own<const library::Item>> findItem(uint64_t id, kj::StringPtr itemId,
                                                   kj::Array<codec::FrameBuilder>& answer) const;

  const library::Library& library;
  int rootFd;
  kj::Own<codec::ChunkFramePool> frames = kj::atomicRefcounted<codec::ChunkFramePool>();
  uint64_t staleCount = 0;
  uint64_t servedBytes = 0;
  uint64_t snapshotCount = 0;
  uint64_t deltaCount = 0;
};

}  // namespace shoal::peer
