#include <shoal/peer/runtime/request-server.h>

#include <errno.h>
#include <kj/debug.h>
#include <shoal/mutant.h>
#include <string.h>
#include <unistd.h>

namespace shoal::peer {

namespace {

using codec::FrameBuilder;

kj::Array<FrameBuilder> single(FrameBuilder frame) {
  auto out = kj::heapArrayBuilder<FrameBuilder>(1);
  out.add(kj::mv(frame));
  return out.finish();
}

kj::Array<FrameBuilder> error(uint64_t id, wire::ErrorCode code, kj::StringPtr message) {
  return single(codec::errorFrame(id, code, message));
}

}  // namespace

RequestServer::RequestServer(const library::Library& library, int rootFd)
    : library(library), rootFd(rootFd) {}

kj::Array<FrameBuilder> RequestServer::serve(uint64_t id, wire::Frame::Reader request,
                                             const RemotePeer& peer) {
  using Which = wire::Frame::Which;
  switch (request.which()) {
    case Which::GET_LIBRARY: return getLibrary(id, request.getGetLibrary(), peer);
    case Which::GET_MANIFEST: return getManifest(id, request.getGetManifest(), peer);
    case Which::GET_CHUNK: return getChunk(id, request.getGetChunk(), peer);
    default: KJ_FAIL_ASSERT("not a request", kj::uint(request.which()));
  }
}

kj::Array<FrameBuilder> RequestServer::getLibrary(uint64_t id, wire::GetLibrary::Reader request,
                                                  const RemotePeer& peer) {
  if (!library.isPublished()) {
    return error(id, wire::ErrorCode::UNAVAILABLE, "the library is still being indexed");
  }
  auto answer = library.answer(request.getSinceEpoch(), request.getSinceRev());
  ++(answer.kind == library::LibraryAnswer::Kind::delta ? deltaCount : snapshotCount);
  return library::libraryPages(id, answer, peer.maxFrameBytes);
}

kj::Maybe<kj::Own<const library::Item>> RequestServer::findItem(
    uint64_t id, kj::StringPtr itemId, kj::Array<FrameBuilder>& answer) const {
  KJ_IF_MAYBE (item, library.find(itemId)) {
    return kj::mv(*item);
  }
  if (library.isDownloading(itemId) && !isMutant(Mutant::downloadingNotFound)) {
    answer = error(id, wire::ErrorCode::UNAVAILABLE, "the item is being downloaded here");
  } else {
    answer = error(id,
                   isMutant(Mutant::unknownItemUnavailable) ? wire::ErrorCode::UNAVAILABLE
                                                            : wire::ErrorCode::NOT_FOUND,
                   "no such item");
  }
  return nullptr;
}

kj::Array<FrameBuilder> RequestServer::getManifest(uint64_t id, wire::GetManifest::Reader request,
                                                   const RemotePeer& peer) {
  kj::Array<FrameBuilder> refusal;
  KJ_IF_MAYBE (item, findItem(id, request.getItemId(), refusal)) {
    return codec::manifestPages(id, (*item)->manifest, peer.maxFrameBytes);
  }
  return refusal;
}

kj::OneOf<ChunkRead, kj::Array<FrameBuilder>> RequestServer::checkChunk(
    uint64_t id, wire::GetChunk::Reader request, const RemotePeer& peer) {
  kj::Array<FrameBuilder> refusal;
  auto found = findItem(id, request.getItemId(), refusal);
  if (found == nullptr) return kj::mv(refusal);
  auto item = kj::mv(KJ_ASSERT_NONNULL(found));
  auto& manifest = item->manifest;
  if (KJ_ASSERT_NONNULL(codec::Digest::from(request.getManifestDigest())) != manifest.digest &&
      !isMutant(Mutant::staleUnchecked)) {
    return error(id, wire::ErrorCode::STALE, "the item's manifest has changed");
  }
  uint32_t index = request.getFileIndex();
  if (index >= manifest.files.size()) return error(id, wire::ErrorCode::NOT_FOUND, "no such file");
  uint64_t size = manifest.files[index].size;
  uint64_t offset = request.getOffset();
  uint32_t length = request.getLength();
  // Table 4 #5. The codec already bounded length by our maxChunkBytes and offset + length by 2^50;
  // the size compared is the manifest's, a file changed on disk is check 6 ([CHK-12]).
  if (length > peer.maxChunkBytes) {
    return error(id, wire::ErrorCode::RANGE,
                 kj::str("length ", length, " above your maxChunkBytes of ", peer.maxChunkBytes));
  }
  if ((offset > size || length > size - offset) && !isMutant(Mutant::rangeUnchecked)) {
    return error(id, wire::ErrorCode::RANGE,
                 kj::str("range ", offset, "+", length, " beyond the file's ", size, " bytes"));
  }
  return ChunkRead{id, kj::mv(item), index, offset, length, peer.maxFrameBytes};
}

void RequestServer::count(const ChunkAnswer& answer) {
  if (answer.stale) ++staleCount;
  servedBytes += answer.served;
}

kj::Array<FrameBuilder> RequestServer::getChunk(uint64_t id, wire::GetChunk::Reader request,
                                                const RemotePeer& peer) {
  KJ_SWITCH_ONEOF(checkChunk(id, request, peer)) {
    KJ_CASE_ONEOF(refusal, kj::Array<FrameBuilder>) {
      return kj::mv(refusal);
    }
    KJ_CASE_ONEOF(read, ChunkRead) {
      KJ_SWITCH_ONEOF(read.item->openFile(rootFd, read.index)) {
        KJ_CASE_ONEOF(refused, library::FileRefusal) {
          if (refused.code == wire::ErrorCode::STALE) ++staleCount;
          return error(id, refused.code, refused.message);
        }
        KJ_CASE_ONEOF(fd, kj::AutoCloseFd) {
          auto answer = readChunk(read, fd.get(), *frames);
          count(answer);
          return kj::mv(answer.frames);
        }
      }
    }
  }
  KJ_UNREACHABLE;
}

ChunkAnswer readChunk(const ChunkRead& read, int fd, codec::ChunkFramePool& frames) {
  auto id = read.id;
  auto length = read.length;
  kj::Maybe<ChunkAnswer> failed;
  auto fail = [&](wire::ErrorCode code, kj::StringPtr message, bool stale = false) {
    failed = ChunkAnswer{error(id, code, message), stale, 0};
    return false;
  };
  // The answer must fit the requester's frame limit, not only ours ([CHK-1], Table 4 row 7; found
  // by fuzz_session: a peer announcing 64 KiB frames asked for 1 MiB). The exact encoded size.
  if (codec::chunkFrameBytes(length) > read.maxFrameBytes) {
    fail(wire::ErrorCode::TOO_LARGE,
         kj::str("a chunk of ", length, " bytes does not fit your frame limit of ",
                 read.maxFrameBytes));
    return kj::mv(KJ_ASSERT_NONNULL(failed));
  }
  // The Chunk frame's data is read straight from the file into a pooled frame: one copy, from
  // the page cache, and no fresh chunk-sized segment to zero and fault in.
  auto frame = frames.build(id, length, [&](kj::ArrayPtr<kj::byte> data) {
    size_t done = 0;
    while (done < length) {
      ssize_t n = pread(fd, data.begin() + done, length - done, off_t(read.offset + done));
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return fail(wire::ErrorCode::INTERNAL, kj::str("read failed: ", strerror(errno)));
      if (n == 0) break;
      done += n;
    }
    // Short, or changed while we read: the bytes may not be what the manifest hashed.
    if (done < length) {
      return fail(wire::ErrorCode::STALE, "the file is shorter than when it was hashed", true);
    }
    KJ_IF_MAYBE (why, read.item->checkUnchanged(read.index, fd)) {
      return fail(wire::ErrorCode::STALE, *why, true);
    }
    if (isMutant(Mutant::corruptChunks) && length > 0) data[length / 2] ^= 0x01;
    return true;
  });
  KJ_IF_MAYBE (f, frame) {
    return ChunkAnswer{single(kj::mv(*f)), false, length};
  }
  return kj::mv(KJ_ASSERT_NONNULL(failed));
}

}  // namespace shoal::peer
