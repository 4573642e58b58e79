// Appendix A of docs/protocol.md is this recording: two real Sessions over TLS 1.3 (in-memory
// pipes, a virtual timer) with fixed keys, epochs, instance ids and libraries, each serving its
// library through RequestServer and following the other's library as the reference runtime does.
// Every frame either side writes is printed as Cap'n Proto text in the order it was written, and
// the result must equal the block between the transcript markers of the appendix, so the two cannot
// drift apart. After a deliberate change, regenerate the block and review the diff:
//   SHOAL_UPDATE_TRANSCRIPT=1 build/asan/peer/transcript-test
#include <fcntl.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <sys/stat.h>
#include <string>

#include <capnp/dynamic.h>
#include <capnp/schema.h>
#include <capnp/serialize-text.h>
#include <kj/async-io.h>
#include <kj/debug.h>
#include <kj/encoding.h>
#include <kj/io.h>
#include <kj/timer.h>
#include <shoal/codec/frame.h>
#include <shoal/codec/manifest.h>
#include <shoal/peer/library/library-view.h>
#include <shoal/peer/library/scanner.h>
#include <shoal/peer/runtime/request-server.h>
#include <shoal/peer/session/session.h>
#include <shoal/peer/transport/tls.h>

#include "../library/temp-tree.h"

namespace shoal::peer {
namespace {

using library::test::TempTree;
using Which = wire::Frame::Which;

constexpr size_t kWidth = 100;  // columns of docs/protocol.md
constexpr kj::StringPtr kBegin =
    "<!-- begin transcript: peer/test/session/transcript-test.c++ -->"_kj;
constexpr kj::StringPtr kEnd = "<!-- end transcript -->"_kj;

// --- Cap'n Proto text, laid out to the page width ----------------------------------------------

// A value as text: an atom ("name = 5"), or a group ("name = (" children ")").
struct Node {
  kj::String head;
  kj::Vector<Node> children;
  kj::StringPtr close;
  bool group = false;
};

size_t columns(kj::StringPtr text) {
  size_t n = 0;
  for (char c : text)
    n += (uint8_t(c) & 0xC0) != 0x80;  // one per UTF-8 character
  return n;
}

kj::String flat(const Node& node) {
  if (!node.group) return kj::str(node.head);
  auto parts = KJ_MAP(child, node.children) {
    return flat(child);
  };
  return kj::str(node.head, kj::strArray(parts, ", "), node.close);
}

Node render(kj::String label, capnp::DynamicValue::Reader value);

Node group(kj::String head, kj::StringPtr close, kj::Vector<Node> children) {
  Node node;
  node.head = kj::mv(head);
  node.close = close;
  node.children = kj::mv(children);
  node.group = true;
  return node;
}

Node atom(kj::StringPtr label, kj::StringPtr text) {
  Node node;
  node.head = kj::str(label, text);
  return node;
}

Node render(kj::String label, capnp::DynamicValue::Reader value) {
  switch (value.getType()) {
    case capnp::DynamicValue::VOID: return atom(label, "void");
    case capnp::DynamicValue::BOOL: return atom(label, value.as<bool>() ? "true" : "false");
    case capnp::DynamicValue::INT: return atom(label, kj::str(value.as<int64_t>()));
    case capnp::DynamicValue::UINT: return atom(label, kj::str(value.as<uint64_t>()));
    case capnp::DynamicValue::FLOAT: return atom(label, kj::str(value.as<double>()));
    case capnp::DynamicValue::TEXT:
      return atom(label, kj::str('"', kj::encodeCEscape(value.as<capnp::Text>()), '"'));
    case capnp::DynamicValue::DATA:
      return atom(label, kj::str("0x\"", kj::encodeHex(value.as<capnp::Data>()), '"'));
    case capnp::DynamicValue::ENUM: {
      auto e = value.as<capnp::DynamicEnum>();
      KJ_IF_MAYBE (enumerant, e.getEnumerant()) {
        return atom(label, enumerant->getProto().getName());
      }
      return atom(label, kj::str(e.getRaw()));
    }
    case capnp::DynamicValue::LIST: {
      kj::Vector<Node> children;
      for (auto element : value.as<capnp::DynamicList>())
        children.add(render(kj::str(), element));
      return group(kj::str(label, '['), "]", kj::mv(children));
    }
    case capnp::DynamicValue::STRUCT: {
      auto s = value.as<capnp::DynamicStruct>();
      kj::Vector<Node> children;
      for (auto field : s.getSchema().getFields()) {
        // Every data field, the pointers that are set, the union member in use: as `capnp` does.
        if (s.has(field))
          children.add(render(kj::str(field.getProto().getName(), " = "), s.get(field)));
      }
      return group(kj::str(label, '('), ")", kj::mv(children));
    }
    default: KJ_FAIL_ASSERT("a value our schema does not have", uint(value.getType()));
  }
}

// Appends `node` starting at column `column`; continuation lines are indented by `indent` + 2.
void layout(const Node& node, size_t column, size_t indent, kj::Vector<char>& out) {
  auto whole = flat(node);
  if (!node.group || column + columns(whole) <= kWidth) {
    out.addAll(whole);
    return;
  }
  if (node.children.size() == 1) {  // "(hello = (" on one line, "))" together
    out.addAll(node.head);
    layout(node.children[0], column + columns(node.head), indent, out);
    out.addAll(node.close);
    return;
  }
  // Fill: as many children per line as fit; one that fits no line is laid out on its own.
  out.addAll(node.head);
  size_t inner = indent + 2;
  kj::Vector<char> line;
  size_t used = 0;  // columns of `line`
  auto flush = [&]() {
    if (line.size() == 0) return;
    out.add('\n');
    for (size_t i = 0; i < inner; ++i)
      out.add(' ');
    out.addAll(line);
    line.clear();
    used = 0;
  };
  for (auto i : kj::indices(node.children)) {
    auto text = kj::str(flat(node.children[i]), i + 1 < node.children.size() ? "," : "");
    if (line.size() > 0 && inner + used + 1 + columns(text) <= kWidth) {
      line.add(' ');
      line.addAll(text);
      used += 1 + columns(text);
    } else if (inner + columns(text) <= kWidth) {
      flush();
      line.addAll(text);
      used = columns(text);
    } else {
      flush();
      layout(node.children[i], inner, inner, line);
      if (i + 1 < node.children.size()) line.add(',');
      flush();
    }
  }
  flush();
  out.add('\n');
  for (size_t i = 0; i < indent; ++i)
    out.add(' ');
  out.addAll(node.close);
}

kj::String capnpText(wire::Frame::Reader frame, kj::StringPtr prefix) {
  kj::Vector<char> out;
  out.addAll(prefix);
  layout(render(kj::str(), frame), columns(prefix), columns(prefix), out);
  return kj::heapString(out.begin(), out.size());
}

// --- the recording --------------------------------------------------------------------------

// What the two sides wrote, in the order they wrote it.
class Recorder {
 public:
  void wrote(bool byInitiator, kj::ArrayPtr<const kj::byte> bytes) {
    auto& decoder = byInitiator ? fromInitiator : fromResponder;
    for (size_t at = 0; at < bytes.size();) {
      auto space = decoder.writable();
      size_t n = kj::min(space.size(), bytes.size() - at);
      memcpy(space.begin(), bytes.begin() + at, n);
      decoder.commit(n);
      at += n;
      for (;;) {
        auto next = decoder.next();
        if (next == nullptr) break;
        KJ_SWITCH_ONEOF(KJ_ASSERT_NONNULL(next)) {
          KJ_CASE_ONEOF(frame, codec::InboundFrame) {
            kj::StringPtr prefix = byInitiator ? "I→R  " : "R→I  ";
            auto line = capnpText(frame.root(), prefix);
            // The text is Cap'n Proto's own: `capnp encode` (TextCodec) reads it back as the
            // same frame.
            capnp::MallocMessageBuilder parsed;
            textCodec.decode(line.slice(prefix.size()),
                             capnp::toDynamic(parsed.initRoot<wire::Frame>()));
            KJ_ASSERT(capnpText(parsed.getRoot<wire::Frame>().asReader(), prefix) == line, line);
            lines.add(kj::mv(line));
          }
          KJ_CASE_ONEOF(failure, codec::Failure) {
            KJ_FAIL_ASSERT("a side wrote an invalid frame", failure.message);
          }
        }
      }
    }
  }
  void ended(bool byInitiator) {
    lines.add(kj::str(byInitiator ? "I→R  " : "R→I  ", "close_notify, FIN: the end of ",
                      byInitiator ? "I" : "R", "'s writes"));
  }
  void note(kj::StringPtr text) { lines.add(kj::str("# ", text)); }

  kj::String text() const {
    kj::Vector<char> out;
    for (auto& line : lines) {
      out.addAll(line);
      out.add('\n');
    }
    return kj::heapString(out.begin(), out.size());
  }

 private:
  capnp::TextCodec textCodec;
  codec::FrameDecoder fromInitiator{codec::Limits()};
  codec::FrameDecoder fromResponder{codec::Limits()};
  kj::Vector<kj::String> lines;
};

// The application side of a connection, with every write and the end of writes recorded.
class RecordingTransport final : public Transport, private kj::AsyncIoStream {
 public:
  RecordingTransport(kj::Own<Transport> inner, Recorder& recorder, bool initiator)
      : inner(kj::mv(inner)), recorder(recorder), initiator(initiator) {}

  kj::AsyncIoStream& stream() override { return *this; }
  kj::Maybe<PeerId> peerId() const override { return inner->peerId(); }
  kj::Promise<void> end() override {
    recorder.ended(initiator);
    return inner->end();
  }

 private:
  kj::Promise<size_t> tryRead(void* buffer, size_t minBytes, size_t maxBytes) override {
    return inner->stream().tryRead(buffer, minBytes, maxBytes);
  }
  kj::Promise<void> write(const void* buffer, size_t size) override {
    recorder.wrote(initiator, kj::arrayPtr(reinterpret_cast<const kj::byte*>(buffer), size));
    return inner->stream().write(buffer, size);
  }
  kj::Promise<void> write(kj::ArrayPtr<const kj::ArrayPtr<const kj::byte>> pieces) override {
    for (auto piece : pieces)
      recorder.wrote(initiator, piece);
    return inner->stream().write(pieces);
  }
  kj::Promise<void> whenWriteDisconnected() override {
    return inner->stream().whenWriteDisconnected();
  }
  void shutdownWrite() override { inner->stream().shutdownWrite(); }
  void abortRead() override { inner->stream().abortRead(); }

  kj::Own<Transport> inner;
  Recorder& recorder;
  bool initiator;
};

// --- the peers ------------------------------------------------------------------------------

// An Ed25519 identity from a fixed RFC 8032 secret key, as the PKCS#8 key file would hold it.
kj::Own<Identity> fixedIdentity(kj::StringPtr seedHex) {
  auto der = kj::heapArrayBuilder<kj::byte>(48);
  der.addAll(kj::decodeHex("302e020100300506032b657004220420"_kj.asArray()));
  der.addAll(kj::decodeHex(seedHex.asArray()));
  auto pem = kj::str("-----BEGIN PRIVATE KEY-----\n", kj::encodeBase64(der.finish()),
                     "\n-----END PRIVATE KEY-----\n");
  return Identity::fromPem(pem.asBytes(), "a fixed test key");
}

// A peer as the reference runtime behaves on a session: serves its library through RequestServer
// and follows the other side's library with GetLibrary, from the moment the handshake completes
// ([LIB-18]) and on every LibraryChanged.
class TranscriptPeer final : public SessionHandler {
 public:
  TranscriptPeer(kj::StringPtr name, uint64_t epoch, uint64_t instanceId)
      : name(name), instanceId(instanceId), lib(epoch), server(lib, tree.fd()) {}

  void scan() {
    library::ScanOptions options;
    options.chunkSize = 1 << 20;  // the reference peer's
    library::IndexCache cache;
    auto scanned = library::scanLibrary(tree.path(), cache, options);
    KJ_ASSERT(scanned.complete);
    lib.update(kj::mv(scanned.items));
  }

  LocalPeer local(const Identity& identity) const {
    return LocalPeer{identity.id(), kj::str(name), nullptr, lib.summary(), instanceId};
  }

  kj::Maybe<Rejection> onHello(Session&, const RemotePeer&) override { return nullptr; }
  void onEstablished(Session& session) override { follow(session); }
  kj::Promise<kj::Array<codec::FrameBuilder>> serve(Session& session, uint64_t id,
                                                    codec::InboundFrame request) override {
    return server.serve(id, request.root(), KJ_ASSERT_NONNULL(session.remote()));
  }
  void onLibraryChanged(Session& session, const codec::Summary& summary) override {
    KJ_IF_MAYBE (held, view.summary()) {
      if (*held == summary) return;
    }
    follow(session);
  }
  void onGoodbye(Session&, const event::GoodbyeReceived&) override {}
  void onWriterDone(Session&) override {}
  void onClosed(Session&, const event::Closed& closed) override { closedWith = closed.reason; }

  TempTree tree;
  kj::StringPtr name;
  uint64_t instanceId;
  library::Library lib;
  RequestServer server;
  library::LibraryView view;
  kj::Maybe<CloseReason> closedWith;
  kj::Maybe<kj::Own<kj::TaskSet>> following;  // dropped before the session: cancels the requests

 private:
  void follow(Session& session) {
    auto since = view.request();
    auto frame = codec::newFrame();
    auto get = codec::rootOf(*frame).initGetLibrary();
    get.setSinceEpoch(since.epoch);
    get.setSinceRev(since.rev);
    kj::Function<void(const codec::InboundFrame&)> onPage =
        [this](const codec::InboundFrame& page) {
          apply(page);
        };
    KJ_ASSERT_NONNULL(following)->add(
        session.request(kj::mv(frame), kj::mv(onPage)).then([this](Reply reply) {
          apply(KJ_ASSERT_NONNULL(reply.tryGet<codec::InboundFrame>(), "GetLibrary failed"));
        }));
  }
  void apply(const codec::InboundFrame& page) {
    auto root = page.root();
    auto result = root.which() == Which::LIBRARY_SNAPSHOT
                      ? view.onSnapshotPage(root.getLibrarySnapshot())
                      : view.onDeltaPage(root.getLibraryDelta());
    KJ_ASSERT(result.outcome == library::ViewOutcome::applied ||
                  result.outcome == library::ViewOutcome::morePages,
              result.message);
  }
};

class Errors final : public kj::TaskSet::ErrorHandler {
 public:
  void taskFailed(kj::Exception&& exception) override {
    ADD_FAILURE() << exception.getDescription().cStr();
  }
};

struct Recording {
  kj::String text;
  kj::String librarySeenByI;  // hex digest of R's library as I holds it at the end
  uint64_t itemsSeenByI;
  codec::Summary summarySeenByR;
  bool chunkVerified;
  kj::Maybe<CloseReason> closedI, closedR;
};

// The session of Appendix A, step by step. Member order is construction order: the event loop
// first, the sessions (which use everything above them) last.
class Conversation {
 public:
  Conversation() {
    // R holds §6.3's library: alpha (a.txt, "hello", 0o644) and beta (no files). I holds nothing.
    peerR.tree.write("alpha/a.txt", "hello");
    KJ_SYSCALL(chmod(peerR.tree.at("alpha/a.txt").cStr(), 0644));
    peerR.tree.mkdir("beta");
    peerR.scan();
    peerI.scan();
    peerI.following = kj::heap<kj::TaskSet>(errors);
    peerR.following = kj::heap<kj::TaskSet>(errors);
  }
  ~Conversation() noexcept(false) {
    peerI.following = nullptr;
    peerR.following = nullptr;
    runI = nullptr;
    runR = nullptr;
    sessionI = nullptr;
    sessionR = nullptr;
  }

  // TLS, then both sessions: the handshake and each side's GetLibrary.
  void connect() {
    auto pipe = kj::newTwoWayPipe();
    auto both = kj::heapArrayBuilder<kj::Promise<kj::Own<Transport>>>(2);
    both.add(tlsI.connect(kj::mv(pipe.ends[0])));
    both.add(tlsR.accept(kj::mv(pipe.ends[1])));
    auto transports = kj::joinPromises(both.finish()).wait(ws);
    recorder.note("TLS 1.3 is established (raw Ed25519 keys, ALPN shoal/1); what follows is the");
    recorder.note("plaintext each side writes into it. Both run the reference peer's session.");
    sessionI =
        kj::heap<Session>(kj::heap<RecordingTransport>(kj::mv(transports[0]), recorder, true),
                          Role::initiator, config, peerI.local(*idI), timer, peerI, timer.now(), 1);
    sessionR =
        kj::heap<Session>(kj::heap<RecordingTransport>(kj::mv(transports[1]), recorder, false),
                          Role::responder, config, peerR.local(*idR), timer, peerR, timer.now(), 1);
    runI = sessionI->run().eagerlyEvaluate(nullptr);
    runR = sessionR->run().eagerlyEvaluate(nullptr);
    ws.poll();
  }

  // I's download of alpha; whether its one chunk matched the manifest.
  bool fetchAlpha() {
    recorder.note("I fetches item alpha: its manifest, then its one chunk.");
    auto getManifest = codec::newFrame();
    codec::rootOf(*getManifest).initGetManifest().setItemId("alpha");
    auto manifestAnswer = ask(kj::mv(getManifest));
    auto& page = KJ_ASSERT_NONNULL(manifestAnswer.tryGet<codec::InboundFrame>());
    codec::ManifestAssembler assembler("alpha");
    KJ_ASSERT(assembler.feed(page.root().getManifest()) == nullptr);
    auto manifest = assembler.take();

    auto getChunk = codec::newFrame();
    auto g = codec::rootOf(*getChunk).initGetChunk();
    g.setItemId("alpha");
    g.setManifestDigest(manifest.digest.asBytes());
    g.setLength(uint32_t(manifest.files[0].size));
    auto chunkAnswer = ask(kj::mv(getChunk));
    auto& chunk = KJ_ASSERT_NONNULL(chunkAnswer.tryGet<codec::InboundFrame>());
    return codec::sha256(chunk.root().getChunk().getData()) == manifest.chunksOf(0)[0];
  }

  void removeBeta() {
    recorder.note("beta is deleted on R: R publishes rev 2; I asks for what changed since rev 1.");
    KJ_SYSCALL(rmdir(peerR.tree.at("beta").cStr()));
    peerR.scan();
    sessionR->notifyLibraryChanged(peerR.lib.summary());
    ws.poll();
  }

  void idle() {
    recorder.note("15 s without a frame either way: each side pings once ([LIV-1], [LIV-7]).");
    timer.advanceTo(timer.now() + config.idleTimeout);
    sessionI->tick();  // what the runtime's liveness service does
    sessionR->tick();
    ws.poll();
  }

  void leave() {
    recorder.note("I leaves. It has received request 1 from R, answered long ago ([BYE-2]).");
    sessionI->goodbye(wire::GoodbyeReason::IDLE, "done");
    ws.poll();
    KJ_ASSERT(runI.poll(ws) && runR.poll(ws), "a session did not end");
    runI.wait(ws);
    runR.wait(ws);
  }

  Recording result(bool chunkVerified) {
    Recording r{recorder.text(),
                kj::str(),
                peerI.view.items().size(),
                KJ_ASSERT_NONNULL(peerR.view.summary()),
                chunkVerified,
                peerI.closedWith,
                peerR.closedWith};
    KJ_IF_MAYBE (summary, peerI.view.summary()) {
      r.librarySeenByI = codec::toHex(summary->digest);
    }
    return r;
  }

 private:
  Reply ask(codec::FrameBuilder frame) {
    auto reply = sessionI->request(kj::mv(frame));
    ws.poll();
    return reply.wait(ws);
  }

  kj::EventLoop loop;
  kj::WaitScope ws{loop};
  kj::TimerImpl timer{kj::origin<kj::TimePoint>()};
  Recorder recorder;
  Errors errors;
  // RFC 8032 test keys 1 and 2; I's peer id is the worked example of §2.2.
  kj::Own<Identity> idI =
      fixedIdentity("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60");
  kj::Own<Identity> idR =
      fixedIdentity("4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb");
  TranscriptPeer peerI{"desk", 17, 0x0123456789abcdef};
  TranscriptPeer peerR{"nas", 6840227781351331448ull, 0x0fedcba987654321};
  SessionConfig config;
  TlsContext tlsI{*idI};
  TlsContext tlsR{*idR};
  kj::Own<Session> sessionI, sessionR;
  kj::Promise<void> runI = nullptr, runR = nullptr;
};

Recording record() {
  Conversation c;
  c.connect();
  bool verified = c.fetchAlpha();
  c.removeBeta();
  c.idle();
  c.leave();
  return c.result(verified);
}

// --- the appendix ---------------------------------------------------------------------------

kj::String protocolPath() {
  return kj::str(SHOAL_SOURCE_DIR, "/docs/protocol.md");
}

kj::String readText(kj::StringPtr path) {
  int fd;
  KJ_SYSCALL(fd = open(path.cStr(), O_RDONLY | O_CLOEXEC), path);
  return kj::heapString(kj::FdInputStream(kj::AutoCloseFd(fd)).readAllText());
}

struct Block {
  size_t begin, end;  // the text between the marker lines
};

Block findBlock(kj::StringPtr doc) {
  const char* b = strstr(doc.cStr(), kBegin.cStr());
  KJ_REQUIRE(b != nullptr ? true : false, "no begin marker in docs/protocol.md", kBegin);
  const char* e = strstr(b, kEnd.cStr());
  KJ_REQUIRE(e != nullptr ? true : false, "no end marker in docs/protocol.md", kEnd);
  size_t from = b - doc.begin() + kBegin.size() + 1;  // after the marker's newline
  return {from, size_t(e - doc.begin())};
}

// "line N: document `…`, recorded `…`" for the first line that differs, or "".
std::string firstDifference(kj::StringPtr document, kj::StringPtr recorded) {
  auto a = kj::str(document), b = kj::str(recorded);
  size_t line = 1, start = 0;
  for (size_t i = 0;; ++i) {
    char x = i < a.size() ? a[i] : '\0', y = i < b.size() ? b[i] : '\0';
    if (x != y) {
      auto rest = [&](kj::StringPtr s) {
        size_t end = start;
        while (end < s.size() && s[end] != '\n')
          ++end;
        return std::string(s.begin() + kj::min(start, s.size()), s.begin() + end);
      };
      return "line " + std::to_string(line) + ": document `" + rest(a) + "`, recorded `" + rest(b) +
             "`";
    }
    if (x == '\0') return "";
    if (x == '\n') {
      ++line;
      start = i + 1;
    }
  }
}

kj::String fenced(kj::StringPtr text) {
  return kj::str("```\n", text, "```\n");
}

TEST(Transcript, AppendixAIsARecordedSessionOfTheReferencePeer) {
  auto recording = record();

  // What the session must have done, whatever the text says.
  EXPECT_TRUE(recording.chunkVerified);
  EXPECT_EQ(recording.itemsSeenByI, 1u);  // alpha, after the delta removed beta
  EXPECT_EQ(recording.librarySeenByI,
            "6a2ad3ac04ce5480d4bfa8d3d1d86b85fe169e75ec99cd617be453fbecf93616");  // §6.3
  // [LIB-17]: I's empty library.
  EXPECT_EQ(recording.summarySeenByR.epoch, 17u);
  EXPECT_EQ(recording.summarySeenByR.rev, 1u);
  EXPECT_EQ(codec::toHex(recording.summarySeenByR.digest),
            "cad282924b012f391b980eee987cf6ad410e77f91354fcd1aa65993a82abe61c");
  EXPECT_EQ(KJ_ASSERT_NONNULL(recording.closedI), CloseReason::goodbye);
  EXPECT_EQ(KJ_ASSERT_NONNULL(recording.closedR), CloseReason::goodbye);

  // Deterministic: a second recording is the same, byte for byte.
  EXPECT_EQ(record().text, recording.text);

  auto path = protocolPath();
  auto doc = readText(path);
  auto block = findBlock(doc);
  auto expected = fenced(recording.text);
  auto current = kj::heapString(doc.slice(block.begin, block.end));
  if (getenv("SHOAL_UPDATE_TRANSCRIPT") != nullptr) {
    auto updated = kj::str(doc.slice(0, block.begin), expected, doc.slice(block.end));
    auto tmp = kj::str(path, ".tmp");
    int fd;
    KJ_SYSCALL(fd = open(tmp.cStr(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
    kj::FdOutputStream(kj::AutoCloseFd(fd)).write(updated.begin(), updated.size());
    KJ_SYSCALL(rename(tmp.cStr(), path.cStr()));
    return;
  }
  EXPECT_EQ(firstDifference(current, expected), "")
      << "Appendix A of docs/protocol.md differs from the recorded session. If the change is "
         "deliberate, run with SHOAL_UPDATE_TRANSCRIPT=1 and review the diff.";
}

}  // namespace
}  // namespace shoal::peer
