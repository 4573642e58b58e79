// RequestServer: answers the peer's GetLibrary, GetManifest and GetChunk from our Library, with
// every check of docs/protocol.md §8 in the spec's order. Files are opened beneath the library
// root without following symlinks and re-checked after the read, so a changed file is answered
// `stale`, never served as the old content.
#pragma once

#include <shoal/codec/frames.h>
#include <shoal/peer/library/library.h>
#include <shoal/peer/session/session-core.h>

namespace shoal::peer {

class RequestServer {
 public:
  // `rootFd` is the library root, opened O_DIRECTORY; it must outlive the server.
  RequestServer(const library::Library& library, int rootFd);

  // The answer to request `id`: its pages (the last terminal) or a single Error frame. Every
  // frame fits `peer.maxFrameBytes`.
  kj::Array<codec::FrameBuilder> serve(uint64_t id, wire::Frame::Reader request,
                                       const RemotePeer& peer);

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
                                                   kj::Array<codec::FrameBuilder>& error) const;

  const library::Library& library;
  int rootFd;
  uint64_t staleCount = 0;
  uint64_t servedBytes = 0;
  uint64_t snapshotCount = 0;
  uint64_t deltaCount = 0;
};

}  // namespace shoal::peer
