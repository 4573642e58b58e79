#include <shoal/codec/validate.h>

#include <capnp/dynamic.h>
#include <shoal/codec/path.h>
#include <shoal/codec/text.h>
#include <shoal/mutant.h>

namespace shoal::codec {

namespace {

using Which = wire::Frame::Which;

kj::ArrayPtr<const char> chars(capnp::Text::Reader text) {
  return {text.begin(), text.size()};
}

// Checks one frame, remembering the first failure. Every check returns whether it passed so that
// a caller can stop before iterating a list whose length already failed.
class Validator {
 public:
  explicit Validator(const Limits& limits) : limits(limits) {}

  kj::Maybe<Failure> frame(wire::Frame::Reader f);

 private:
  const Limits& limits;
  kj::Maybe<Failure> failure;

  bool bad(CodecError error, kj::String message) {
    if (failure == nullptr) failure = fail(error, kj::mv(message));
    return false;
  }

  // Mutant strictStructSizes: the Frame and its member struct no larger than this build's schema
  // has them, i.e. fields a newer schema added are refused rather than skipped ([FR-16]).
  bool schemaSizes(wire::Frame::Reader f) {
    auto fits = [&](capnp::AnyStruct::Reader s, capnp::StructSchema schema) {
      auto known = schema.getProto().getStruct();
      return (s.getDataSection().size() <= known.getDataWordCount() * 8u &&
              s.getPointerSection().size() <= known.getPointerCount()) ||
             bad(CodecError::malformed,
                 kj::str(schema.getShortDisplayName(), " is larger than its schema"));
    };
    auto frame = capnp::Schema::from<wire::Frame>();
    if (!fits(capnp::AnyStruct::Reader(f), frame)) return false;
    KJ_IF_MAYBE (member, frame.getFieldByDiscriminant(uint16_t(f.which()))) {
      if (member->getType().isStruct()) {
        auto value = capnp::toDynamic(f).get(*member).as<capnp::DynamicStruct>();
        return fits(value.as<capnp::AnyStruct>(), member->getType().asStruct());
      }
    }
    return true;
  }

  bool requestId(uint64_t id) {
    return id != 0 || bad(CodecError::badField, kj::str("request id 0 is reserved"));
  }

  bool nonZero(uint64_t value, kj::StringPtr field) {
    return value != 0 || bad(CodecError::badField, kj::str(field, " must not be 0"));
  }

  bool digest(capnp::Data::Reader d, kj::StringPtr field) {
    return d.size() == kDigestBytes ||
           bad(CodecError::badDigest,
               kj::str(field, " is ", d.size(), " bytes, must be ", kDigestBytes));
  }

  bool text(capnp::Text::Reader t, uint32_t maxBytes, TextRule rule, kj::StringPtr field) {
    KJ_IF_MAYBE (problem, checkText(chars(t), maxBytes, rule)) {
      return bad(CodecError::badText, kj::str(field, ": ", *problem));
    }
    return true;
  }

  bool count(uint64_t n, uint64_t max, kj::StringPtr field) {
    return n <= max || bad(CodecError::badCount, kj::str(field, " has ", n, ", limit ", max));
  }

  bool path(capnp::Text::Reader p, kj::StringPtr field) {
    KJ_IF_MAYBE (e, checkPath(chars(p), limits)) {
      return bad(CodecError::badPath, kj::str(field, " is not a valid path: ", *e));
    }
    return true;
  }

  bool itemId(capnp::Text::Reader id, kj::StringPtr field) {
    KJ_IF_MAYBE (e, checkComponent(chars(id), limits)) {
      return bad(CodecError::badPath, kj::str(field, " is not a valid item id: ", *e));
    }
    return true;
  }

  bool versions(uint16_t min, uint16_t max) {
    if (min == 0) return bad(CodecError::badField, kj::str("versionMin 0: versions start at 1"));
    return min <= max ||
           bad(CodecError::badField, kj::str("versionMin ", min, " above versionMax ", max));
  }

  bool features(capnp::List<capnp::Text>::Reader list) {
    if (!count(list.size(), limits.maxFeatures, "features")) return false;
    for (auto f : list) {
      if (f.size() == 0 || f.size() > limits.maxFeatureBytes) {
        return bad(CodecError::badText, kj::str("feature token of ", f.size(), " bytes"));
      }
      for (char c : f) {
        bool token = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.';
        if (!token) return bad(CodecError::badText, kj::str("feature token with a bad character"));
      }
    }
    return true;
  }

  bool summary(wire::LibrarySummary::Reader s) {
    return nonZero(s.getEpoch(), "summary.epoch") && nonZero(s.getRev(), "summary.rev") &&
           digest(s.getDigest(), "summary.digest");
  }

  bool peerLimits(wire::PeerLimits::Reader l) {
    if (l.getMaxFrameBytes() < kMinFrameBytes) {
      return bad(CodecError::badField,
                 kj::str("limits.maxFrameBytes ", l.getMaxFrameBytes(), " below ", kMinFrameBytes));
    }
    if (!nonZero(l.getMaxInFlight(), "limits.maxInFlight") ||
        !nonZero(l.getMaxChunkBytes(), "limits.maxChunkBytes")) {
      return false;
    }
    // [FR-19]: a Chunk of maxChunkBytes must fit in one of the announcer's own frames.
    if (uint64_t(l.getMaxChunkBytes()) + kFrameOverheadBytes > l.getMaxFrameBytes()) {
      return bad(CodecError::badField,
                 kj::str("limits.maxChunkBytes ", l.getMaxChunkBytes(), " does not fit frames of ",
                         l.getMaxFrameBytes(), " bytes"));
    }
    return true;
  }

  bool item(wire::ItemEntry::Reader e) {
    return itemId(e.getItemId(), "itemId") &&
           text(e.getName(), limits.maxNameBytes, TextRule::name, "item name") &&
           count(e.getFileCount(), limits.maxFilesPerManifest, "item fileCount") &&
           digest(e.getManifestDigest(), "manifestDigest");
  }

  // Entries sorted strictly ascending by item id, so a page never names an item twice.
  bool items(capnp::List<wire::ItemEntry>::Reader list, kj::StringPtr field) {
    if (!count(list.size(), limits.maxItemsPerPage, field)) return false;
    capnp::Text::Reader previous;
    for (kj::uint i = 0; i < list.size(); ++i) {
      auto e = list[i];
      if (!item(e)) return false;
      if (i > 0 && !(previous < e.getItemId())) {
        return bad(CodecError::badField, kj::str(field, " not strictly sorted by itemId"));
      }
      previous = e.getItemId();
    }
    return true;
  }

  bool removals(capnp::List<capnp::Text>::Reader list) {
    if (!count(list.size(), limits.maxItemsPerPage, "removals")) return false;
    for (kj::uint i = 0; i < list.size(); ++i) {
      if (!itemId(list[i], "removal")) return false;
      if (i > 0 && !(list[i - 1] < list[i])) {
        return bad(CodecError::badField, kj::str("removals not strictly sorted"));
      }
    }
    return true;
  }

  bool hello(wire::Hello::Reader h) {
    return versions(h.getVersionMin(), h.getVersionMax()) && digest(h.getPeerId(), "peerId") &&
           text(h.getName(), limits.maxNameBytes, TextRule::name, "name") &&
           features(h.getFeatures()) && summary(h.getLibrary()) && peerLimits(h.getLimits()) &&
           nonZero(h.getInstanceId(), "instanceId");
  }

  bool helloAck(wire::HelloAck::Reader h) {
    return nonZero(h.getVersion(), "version") && digest(h.getPeerId(), "peerId") &&
           text(h.getName(), limits.maxNameBytes, TextRule::name, "name") &&
           features(h.getFeatures()) && summary(h.getLibrary()) && peerLimits(h.getLimits()) &&
           nonZero(h.getInstanceId(), "instanceId");
  }

  bool snapshot(wire::LibrarySnapshot::Reader s) {
    return requestId(s.getId()) && summary(s.getSummary()) && items(s.getItems(), "items");
  }

  bool delta(wire::LibraryDelta::Reader d) {
    if (!requestId(d.getId()) || !summary(d.getSummary())) return false;
    // fromRev == rev is the empty delta of a requester that is already up to date.
    if (d.getFromRev() == 0 || d.getFromRev() > d.getSummary().getRev()) {
      return bad(CodecError::badField, kj::str("delta fromRev ", d.getFromRev(), " not in [1, ",
                                               d.getSummary().getRev(), "]"));
    }
    return items(d.getUpserts(), "upserts") && removals(d.getRemovals());
  }

  bool getLibrary(wire::GetLibrary::Reader g) {
    if (!requestId(g.getId())) return false;
    return (g.getSinceEpoch() == 0) == (g.getSinceRev() == 0) ||
           bad(CodecError::badField, kj::str("sinceEpoch and sinceRev must be both 0 or both set"));
  }

  bool file(wire::FileEntry::Reader f) {
    if (!path(f.getPath(), "file path")) return false;
    if (f.getSize() > limits.maxFileBytes) {
      return bad(CodecError::badField, kj::str("file size ", f.getSize(), " above the limit"));
    }
    return (f.getMode() & ~0777u) == 0 ||
           bad(CodecError::badField, kj::str("file mode ", f.getMode(), " beyond 0777"));
  }

  bool manifest(wire::Manifest::Reader m) {
    if (!requestId(m.getId()) || !itemId(m.getItemId(), "itemId") ||
        !digest(m.getDigest(), "digest")) {
      return false;
    }
    uint32_t chunkSize = m.getChunkSize();
    // Any chunk size up to the protocol maximum, whatever our own maxChunkBytes ([MAN-16]).
    if (chunkSize < limits.minChunkSize || chunkSize > kMaxChunkSize) {
      return bad(CodecError::badField, kj::str("chunkSize ", chunkSize, " outside [",
                                               limits.minChunkSize, ", ", kMaxChunkSize, "]"));
    }
    if (!count(m.getFileCount(), limits.maxFilesPerManifest, "manifest fileCount")) return false;
    // Each file has ceil(size / chunkSize) chunks, so the whole cannot exceed this bound.
    uint64_t files = m.getFileCount();
    if (m.getTotalBytes() / kj::max(files, uint64_t(1)) > limits.maxFileBytes ||
        m.getChunkCount() > m.getTotalBytes() / chunkSize + files) {
      return bad(CodecError::badCount, kj::str("chunkCount ", m.getChunkCount(), " or totalBytes ",
                                               m.getTotalBytes(), " impossible"));
    }
    auto list = m.getFiles();
    if (!count(list.size(), limits.maxFilesPerPage, "files") ||
        !count(uint64_t(m.getFirstFile()) + list.size(), files, "firstFile + files")) {
      return false;
    }
    for (kj::uint i = 0; i < list.size(); ++i) {
      if (!file(list[i])) return false;
      if (i > 0 && !(list[i - 1].getPath() < list[i].getPath())) {
        return bad(CodecError::badField, kj::str("files not strictly sorted by path"));
      }
    }
    auto hashes = m.getHashes();
    if (hashes.size() % kDigestBytes != 0) {
      return bad(CodecError::badDigest, kj::str("hashes of ", hashes.size(), " bytes"));
    }
    // firstChunk is bounded by chunkCount first so the sum cannot overflow.
    return count(m.getFirstChunk(), m.getChunkCount(), "firstChunk") &&
           count(m.getFirstChunk() + hashes.size() / kDigestBytes, m.getChunkCount(),
                 "firstChunk + hashes");
  }

  bool getManifest(wire::GetManifest::Reader g) {
    return requestId(g.getId()) && itemId(g.getItemId(), "itemId");
  }

  bool chunk(wire::Chunk::Reader c) {
    return requestId(c.getId()) && count(c.getData().size(), limits.maxChunkBytes, "chunk data");
  }

  bool getChunk(wire::GetChunk::Reader g) {
    if (!requestId(g.getId()) || !itemId(g.getItemId(), "itemId") ||
        !digest(g.getManifestDigest(), "manifestDigest")) {
      return false;
    }
    uint32_t length = g.getLength();
    if (length == 0 || length > limits.maxChunkBytes ||
        g.getOffset() > limits.maxFileBytes - length) {
      bad(CodecError::badRange, kj::str("range offset ", g.getOffset(), " length ", length,
                                        " (length 1..", limits.maxChunkBytes, ")"));
      // The request is well formed otherwise: it is answered with Error{id, range}.
      KJ_IF_MAYBE (f, failure) {
        f->requestId = g.getId();
      }
      return false;
    }
    return true;
  }

  bool announce(wire::Announce::Reader a) {
    return digest(a.getPeerId(), "peerId") && nonZero(a.getInstanceId(), "instanceId") &&
           nonZero(a.getPort(), "port") &&
           text(a.getName(), limits.maxNameBytes, TextRule::name, "name") &&
           versions(a.getVersionMin(), a.getVersionMax()) && summary(a.getSummary());
  }
};

kj::Maybe<Failure> Validator::frame(wire::Frame::Reader f) {
  auto message = [&](capnp::Text::Reader t) {
    return text(t, limits.maxMessageBytes, TextRule::message, "message");
  };
  if (isMutant(Mutant::strictStructSizes) && !schemaSizes(f)) return kj::mv(failure);
  switch (f.which()) {
    case Which::HELLO: hello(f.getHello()); break;
    case Which::HELLO_ACK: helloAck(f.getHelloAck()); break;
    case Which::REJECT: message(f.getReject().getMessage()); break;
    case Which::ERROR: message(f.getError().getMessage()); break;
    case Which::CANCEL: requestId(f.getCancel().getId()); break;
    // Reading the nonce bounds-checks the struct pointer: a valid frame must be readable.
    case Which::PING: (void)f.getPing().getNonce(); break;
    case Which::PONG: (void)f.getPong().getNonce(); break;
    case Which::GET_LIBRARY: getLibrary(f.getGetLibrary()); break;
    case Which::LIBRARY_SNAPSHOT: snapshot(f.getLibrarySnapshot()); break;
    case Which::LIBRARY_DELTA: delta(f.getLibraryDelta()); break;
    case Which::LIBRARY_CHANGED: summary(f.getLibraryChanged().getSummary()); break;
    case Which::GET_MANIFEST: getManifest(f.getGetManifest()); break;
    case Which::MANIFEST: manifest(f.getManifest()); break;
    case Which::GET_CHUNK: getChunk(f.getGetChunk()); break;
    case Which::CHUNK: chunk(f.getChunk()); break;
    case Which::GOODBYE: message(f.getGoodbye().getMessage()); break;
    case Which::ANNOUNCE: announce(f.getAnnounce()); break;
    default:
      bad(CodecError::unknownMessage, kj::str("unknown message kind ", kj::uint(f.which())));
      break;
  }
  return kj::mv(failure);
}

}  // namespace

kj::Maybe<Failure> validate(wire::Frame::Reader frame, const Limits& limits) {
  return Validator(limits).frame(frame);
}

bool isRequest(wire::Frame::Which kind) {
  return kind == Which::GET_LIBRARY || kind == Which::GET_MANIFEST || kind == Which::GET_CHUNK;
}

uint64_t requestIdOf(wire::Frame::Reader f) {
  switch (f.which()) {
    case Which::ERROR: return f.getError().getId();
    case Which::CANCEL: return f.getCancel().getId();
    case Which::GET_LIBRARY: return f.getGetLibrary().getId();
    case Which::LIBRARY_SNAPSHOT: return f.getLibrarySnapshot().getId();
    case Which::LIBRARY_DELTA: return f.getLibraryDelta().getId();
    case Which::GET_MANIFEST: return f.getGetManifest().getId();
    case Which::MANIFEST: return f.getManifest().getId();
    case Which::GET_CHUNK: return f.getGetChunk().getId();
    case Which::CHUNK: return f.getChunk().getId();
    default: return 0;
  }
}

kj::StringPtr name(wire::Frame::Which kind) {
  switch (kind) {
    case Which::HELLO: return "Hello";
    case Which::HELLO_ACK: return "HelloAck";
    case Which::REJECT: return "Reject";
    case Which::ERROR: return "Error";
    case Which::CANCEL: return "Cancel";
    case Which::PING: return "Ping";
    case Which::PONG: return "Pong";
    case Which::GET_LIBRARY: return "GetLibrary";
    case Which::LIBRARY_SNAPSHOT: return "LibrarySnapshot";
    case Which::LIBRARY_DELTA: return "LibraryDelta";
    case Which::LIBRARY_CHANGED: return "LibraryChanged";
    case Which::GET_MANIFEST: return "GetManifest";
    case Which::MANIFEST: return "Manifest";
    case Which::GET_CHUNK: return "GetChunk";
    case Which::CHUNK: return "Chunk";
    case Which::GOODBYE: return "Goodbye";
    case Which::ANNOUNCE: return "Announce";
  }
  return "Unknown";
}

}  // namespace shoal::codec
