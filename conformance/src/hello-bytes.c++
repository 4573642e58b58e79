#include <shoal/conformance/hello-bytes.h>

#include <string.h>
#include <sys/random.h>

#include <kj/debug.h>
#include <kj/function.h>
#include <kj/vector.h>

namespace shoal::conformance {

namespace {

// RFC 8446 §4.1.3: the random of a HelloRetryRequest, SHA-256("HelloRetryRequest").
constexpr kj::byte kRetryRandom[32] = {
    0xcf, 0x21, 0xad, 0x74, 0xe5, 0x9a, 0x61, 0x11, 0xbe, 0x1d, 0x8c, 0x02, 0x1e, 0x65, 0xb8, 0x91,
    0xc2, 0xa2, 0x11, 0x16, 0x7a, 0xbb, 0x8c, 0x5e, 0x07, 0x9e, 0x09, 0xe2, 0xc8, 0xa8, 0x33, 0x9c};

void randomBytes(kj::ArrayPtr<kj::byte> out) {
  KJ_ASSERT(getrandom(out.begin(), out.size(), 0) == ssize_t(out.size()));
}

// Big-endian writer with length prefixes filled in when their body is done.
class Writer {
 public:
  void u8(uint8_t v) { bytes.add(v); }
  void u16(uint16_t v) {
    u8(v >> 8);
    u8(v & 0xff);
  }
  void u32(uint32_t v) {
    u16(v >> 16);
    u16(v & 0xffff);
  }
  void raw(kj::ArrayPtr<const kj::byte> b) { bytes.addAll(b); }
  // Opens a length prefix of `width` bytes; close() fills it in.
  size_t open(size_t width) {
    size_t at = bytes.size();
    for (size_t i = 0; i < width; ++i)
      u8(0);
    widths.add(width);
    starts.add(at);
    return at;
  }
  void close() {
    size_t at = starts.back(), width = widths.back();
    starts.removeLast();
    widths.removeLast();
    size_t n = bytes.size() - at - width;
    for (size_t i = 0; i < width; ++i)
      bytes[at + i] = kj::byte(n >> (8 * (width - 1 - i)));
  }
  kj::Array<kj::byte> finish() { return bytes.releaseAsArray(); }

 private:
  kj::Vector<kj::byte> bytes;
  kj::Vector<size_t> starts;
  kj::Vector<size_t> widths;
};

void extension(Writer& w, uint16_t type, kj::Function<void(Writer&)> body) {
  w.u16(type);
  w.open(2);
  body(w);
  w.close();
}

}  // namespace

ClientHelloBytes ClientHelloBytes::fresh() {
  ClientHelloBytes h;
  randomBytes(h.random);
  randomBytes(h.sessionId);
  return h;
}

kj::Array<kj::byte> clientHelloRecord(const ClientHelloBytes& hello) {
  Writer w;
  w.u8(22);  // handshake
  w.u16(0x0301);
  w.open(2);
  w.u8(1);  // client_hello
  w.open(3);
  w.u16(0x0303);
  w.raw(hello.random);
  w.u8(32);
  w.raw(hello.sessionId);
  w.open(2);
  for (uint16_t suite : {0x1301, 0x1302, 0x1303})
    w.u16(suite);
  w.close();
  w.u8(1);
  w.u8(0);  // no compression
  w.open(2);
  extension(w, 43, [](Writer& e) {  // supported_versions: TLS 1.3
    e.u8(2);
    e.u16(0x0304);
  });
  extension(w, 10, [](Writer& e) {  // supported_groups: X25519
    e.u16(2);
    e.u16(0x001d);
  });
  extension(w, 13, [](Writer& e) {  // signature_algorithms: ed25519
    e.u16(2);
    e.u16(0x0807);
  });
  extension(w, 51, [&](Writer& e) {  // key_share
    e.open(2);
    if (hello.keyShare) {
      kj::byte share[32];
      randomBytes(share);
      e.u16(0x001d);
      e.u16(32);
      e.raw(share);
    }
    e.close();
  });
  extension(w, 16, [](Writer& e) {  // ALPN shoal/1
    e.open(2);
    e.u8(7);
    e.raw("shoal/1"_kj.asBytes());
    e.close();
  });
  for (uint16_t type : {19, 20}) {  // client_ and server_certificate_type: RawPublicKey
    extension(w, type, [](Writer& e) {
      e.u8(1);
      e.u8(2);
    });
  }
  if (hello.psk) {
    extension(w, 45, [](Writer& e) {  // psk_key_exchange_modes: psk_dhe_ke
      e.u8(1);
      e.u8(1);
    });
    extension(w, 41, [](Writer& e) {  // pre_shared_key, last: a ticket nobody issued
      kj::byte identity[16], binder[32];
      randomBytes(identity);
      randomBytes(binder);
      e.open(2);
      e.u16(sizeof(identity));
      e.raw(identity);
      e.u32(0);  // obfuscated_ticket_age
      e.close();
      e.open(2);
      e.u8(sizeof(binder));
      e.raw(binder);
      e.close();
    });
  }
  w.close();  // extensions
  w.close();  // handshake message
  w.close();  // record
  return w.finish();
}

kj::Promise<kj::Maybe<TlsRecord>> RecordReader::next() {
  if (buffered.size() >= 5) {
    size_t length = size_t(buffered[3]) << 8 | buffered[4];
    if (buffered.size() >= 5 + length) {
      TlsRecord r{buffered[0], kj::heapArray(buffered.asPtr().slice(5, 5 + length))};
      kj::Vector<kj::byte> rest;
      rest.addAll(buffered.asPtr().slice(5 + length, buffered.size()));
      buffered = kj::mv(rest);
      return kj::Maybe<TlsRecord>(kj::mv(r));
    }
  }
  auto chunk = kj::heapArray<kj::byte>(16384);
  auto ptr = chunk.begin();
  return kj::evalNow([this, ptr]() { return stream.tryRead(ptr, 1, 16384); })
      .then(
          [this, chunk = kj::mv(chunk)](size_t n) mutable -> kj::Promise<kj::Maybe<TlsRecord>> {
            if (n == 0) return kj::Maybe<TlsRecord>(nullptr);
            buffered.addAll(chunk.slice(0, n));
            return next();
          },
          [](kj::Exception&&) -> kj::Promise<kj::Maybe<TlsRecord>> {
            return kj::Maybe<TlsRecord>(nullptr);  // a reset ends the stream like a FIN here
          });
}

kj::Maybe<ServerHelloFacts> parseServerHello(kj::ArrayPtr<const kj::byte> p) {
  // type(1) length(3) version(2) random(32) session id(1+n) suite(2) compression(1) exts(2+m)
  if (p.size() < 4 + 2 + 32 + 1 || p[0] != 2) return nullptr;
  ServerHelloFacts f;
  f.retryRequest = memcmp(p.begin() + 6, kRetryRandom, 32) == 0;
  size_t at = 4 + 2 + 32;
  at += 1 + p[at];
  at += 2 + 1;
  if (at + 2 > p.size()) return nullptr;
  size_t end = at + 2 + (size_t(p[at]) << 8 | p[at + 1]);
  if (end > p.size()) return nullptr;
  kj::Vector<uint16_t> types;
  for (at += 2; at + 4 <= end;) {
    types.add(uint16_t(p[at] << 8 | p[at + 1]));
    at += 4 + (size_t(p[at + 2]) << 8 | p[at + 3]);
  }
  if (at != end) return nullptr;
  f.extensions = types.releaseAsArray();
  return kj::mv(f);
}

}  // namespace shoal::conformance
