#include "common.h"

#include <shoal/codec/manifest.h>

namespace shoal::conformance::cases {

void afterHandshakeExpectError(Trial& t, kj::ArrayPtr<const kj::byte> bytes, kj::StringPtr what,
                               Code code) {
  KJ_IF_MAYBE (c, t.establish()) {
    c->sendBytes(bytes, what);
    t.expectConnectionError(*c, code);
  }
}

void afterHandshakeExpectError(Trial& t, FrameBuilder frame, Code code) {
  KJ_IF_MAYBE (c, t.establish()) {
    c->send(kj::mv(frame));
    t.expectConnectionError(*c, code);
  }
}

kj::Maybe<PeerId> targetIdOn(Trial& t, Connection& c) {
  KJ_IF_MAYBE (facts, c.tls()) {
    return facts->peerId;
  }
  KJ_IF_MAYBE (h, c.theirs()) {
    return h->peerId;
  }
  return t.targetId();
}

bool expectRejectOrError(Trial& t, Connection& c, Code code) {
  auto what =
      kj::str("Reject{", codec::name(code), "} or Error{0, ", codec::name(code), "}, then close");
  KJ_IF_MAYBE (f, t.expectNext(c, what, [](Reader f) {
                 return f.isReject() || (f.isError() && f.getError().getId() == 0);
               })) {
    auto root = f->root();
    auto got = root.isReject() ? root.getReject().getCode() : root.getError().getCode();
    if (!t.check(got == code, t.spec().requirement, what,
                 kj::str(root.isReject() ? "Reject{" : "Error{0, ", codec::name(got), "}"))) {
      return false;
    }
    return t.expectClose(c);
  }
  return false;
}

}  // namespace shoal::conformance::cases

namespace shoal::conformance::cases {

codec::ItemInfo emptyItem(kj::StringPtr id) {
  codec::ItemInfo i;
  i.itemId = kj::str(id);
  i.name = kj::str(id);
  i.manifestDigest = codec::manifestDigest(codec::kDefaultChunkSize, nullptr, nullptr);
  return i;
}

codec::Summary summaryOf(kj::ArrayPtr<const kj::StringPtr> items, uint64_t epoch, uint64_t rev) {
  kj::Vector<codec::ItemInfo> list;
  for (auto i : items)
    list.add(emptyItem(i));
  return codec::Summary{epoch, rev, codec::libraryDigest(list)};
}

FrameBuilder snapshotPage(uint64_t id, const codec::Summary& summary, uint32_t page, bool last,
                          kj::ArrayPtr<const kj::StringPtr> items) {
  auto frame = codec::newFrame();
  auto s = codec::rootOf(*frame).initLibrarySnapshot();
  s.setId(id);
  summary.toWire(s.initSummary());
  s.setPage(page);
  s.setLast(last);
  auto list = s.initItems(items.size());
  for (auto i : kj::indices(items))
    codec::fillItemEntry(list[i], emptyItem(items[i]));
  return frame;
}

kj::Maybe<codec::InboundFrame> targetGetLibrary(Trial& t, Connection& c) {
  return t.expectFrame(
      c, "the target's GetLibrary", [](Reader f) { return f.isGetLibrary(); }, "LIB-8");
}

kj::Maybe<codec::Manifest> fetchManifest(Trial& t, Connection& c, kj::StringPtr itemId) {
  KJ_IF_MAYBE (pages, t.request(c, getManifestFrame(c.nextRequestId(), itemId))) {
    codec::ManifestAssembler assembler(itemId);
    for (auto& p : *pages) {
      if (!p.root().isManifest()) {
        t.fail("MAN-1", kj::str("Manifest pages for ", itemId), kj::str(p.root()));
        return nullptr;
      }
      KJ_IF_MAYBE (problem, assembler.feed(p.root().getManifest())) {
        t.fail("MAN-18", kj::str("a consistent manifest"), kj::str(problem->message));
        return nullptr;
      }
    }
    if (!t.check(assembler.isComplete(), "MAN-18", "a complete manifest", kj::str("incomplete"))) {
      return nullptr;
    }
    return assembler.take();
  }
  return nullptr;
}

kj::Maybe<kj::Array<codec::ItemInfo>> fetchItems(Trial& t, Connection& c) {
  KJ_IF_MAYBE (pages, t.request(c, getLibraryFrame(c.nextRequestId()))) {
    kj::Vector<codec::ItemInfo> items;
    for (auto& p : *pages) {
      if (!t.check(p.root().isLibrarySnapshot(), "LIB-8", "LibrarySnapshot pages",
                   kj::str(p.root()))) {
        return nullptr;
      }
      for (auto e : p.root().getLibrarySnapshot().getItems())
        items.add(codec::itemInfoOf(e));
    }
    return items.releaseAsArray();
  }
  return nullptr;
}

}  // namespace shoal::conformance::cases
