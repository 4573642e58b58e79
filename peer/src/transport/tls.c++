#include <shoal/peer/transport/tls.h>

#include <errno.h>
#include <gnutls/abstract.h>
#include <gnutls/gnutls.h>
#include <stdlib.h>
#include <string.h>

#include <kj/debug.h>
#include <kj/mutex.h>
#include <kj/refcount.h>
#include <kj/vector.h>
#include <shoal/mutant.h>
#include <shoal/peer/transport/client-hello.h>

namespace shoal::peer {

using tls::ClientHelloOffer;
using tls::Refusal;
using tls::refusalOf;

namespace {

constexpr kj::StringPtr kHandshakeFailed = "TLS handshake failed: "_kj;
constexpr size_t kMinReadBuffer = 4096;
// The read buffer starts this large and doubles, up to TlsOptions::readBufferBytes, each time a
// read fills it: an idle connection (most of them) holds a few KiB, a bulk transfer reaches the
// full size after a few reads.
constexpr size_t kInitialReadBuffer = 16384;

gnutls_datum_t datumOf(kj::ArrayPtr<const kj::byte> bytes) {
  return {const_cast<kj::byte*>(bytes.begin()), static_cast<unsigned>(bytes.size())};
}

// GnuTLS failing on our own valid arguments: a bug or a broken library, not a peer fault.
void check(int rc, const char* what) {
  KJ_ASSERT(rc >= 0, what, gnutls_strerror(rc));
}

// The mutant sends-tickets: a server that hands out TLS 1.3 session tickets, which [TR-5] forbids.
void enableTicketsForMutant(gnutls_session_t session) {
  static const kj::byte key[64] = {};  // GnuTLS's ticket key size; need not be secret here
  auto datum = datumOf(key);
  check(gnutls_session_ticket_enable_server(session, &datum), "enabling session tickets");
}

// GnuTLS's reason for `rc`, with the alert's name when the peer sent one.
kj::String reasonFor(gnutls_session_t session, int rc) {
  if (rc == GNUTLS_E_FATAL_ALERT_RECEIVED || rc == GNUTLS_E_WARNING_ALERT_RECEIVED) {
    return kj::str(gnutls_strerror(rc), " (", gnutls_alert_get_name(gnutls_alert_get(session)),
                   ")");
  }
  return kj::str(gnutls_strerror(rc));
}

// A connection lost under TLS (reset, inner stream gone) is an unclean close like a bare EOF:
// callers tell clean from unclean by "tryRead() == 0" versus DISCONNECTED.
kj::Exception uncleanIfDisconnected(kj::Exception&& e) {
  if (e.getType() != kj::Exception::Type::DISCONNECTED) return kj::mv(e);
  return kj::Exception(e.getType(), kj::str(e.getFile()), e.getLine(),
                       kj::str("unclean TLS close: ", e.getDescription()));
}

kj::Exception withHandshakePrefix(kj::Exception&& e) {
  if (e.getDescription().startsWith(kHandshakeFailed)) return kj::mv(e);
  return kj::Exception(e.getType(), kj::str(e.getFile()), e.getLine(),
                       kj::str(kHandshakeFailed, e.getDescription()));
}

// The credentials' certificate verify function (TlsConnection::verifyCallback).
int verifyPeerKey(gnutls_session_t session);

// gnutls_global_init() is reference counted and GnuTLS 3.7 also initializes itself when loaded:
// each reference taken here is released exactly once, so the count stays balanced and the
// library's own final deinit still happens at exit.
struct GnutlsLibrary {
  GnutlsLibrary() { check(gnutls_global_init(), "gnutls_global_init"); }
  ~GnutlsLibrary() { gnutls_global_deinit(); }
  KJ_DISALLOW_COPY(GnutlsLibrary);
};

}  // namespace

// ---------------------------------------------------------------------------------------------
// Shared credentials

struct TlsContext::Shared final : public kj::AtomicRefcounted {
  explicit Shared(const Identity& identity) {
    KJ_ON_SCOPE_FAILURE(release());
    check(gnutls_certificate_allocate_credentials(&credentials), "allocating credentials");
    auto spki = datumOf(identity.publicKeyDer());
    auto key = datumOf(identity.privateKeyPkcs8Der());
    check(gnutls_certificate_set_rawpk_key_mem(credentials, &spki, &key, GNUTLS_X509_FMT_DER,
                                               nullptr, 0, nullptr, 0, 0),
          "loading the raw key pair");
    gnutls_certificate_set_verify_function(credentials, &verifyPeerKey);
    const char* error = nullptr;
    auto text = isMutant(Mutant::tls12Allowed) ? kj::str(kTlsPriority, ":+VERS-TLS1.2")
                : isMutant(Mutant::anyKeyType) ? kj::str(kTlsPriority, ":+SIGN-ALL")
                                               : kj::str(kTlsPriority);
    int rc = gnutls_priority_init2(&priority, text.cStr(), &error, 0);
    KJ_ASSERT(rc >= 0, "bad GnuTLS priority string", gnutls_strerror(rc), error);
  }
  ~Shared() noexcept(false) { release(); }
  KJ_DISALLOW_COPY(Shared);

  void release() {
    if (priority != nullptr) gnutls_priority_deinit(priority);
    if (credentials != nullptr) gnutls_certificate_free_credentials(credentials);
    priority = nullptr;
    credentials = nullptr;
  }

  GnutlsLibrary library;  // first: initialized before and released after the rest
  gnutls_certificate_credentials_t credentials = nullptr;
  gnutls_priority_t priority = nullptr;
  // The mutant client-resumes: the last session ticket a client connection received.
  kj::MutexGuarded<kj::Maybe<kj::Array<kj::byte>>> ticketForMutant;
};

namespace {

// ---------------------------------------------------------------------------------------------
// Outbox: ciphertext on its way to the inner stream

// GnuTLS's push function appends records to `filling`. One pump, owned here, moves `filling` to
// `sending` and writes it, so exactly one write is in flight on the inner stream and the next
// batch is encrypted while the previous one is written. Nothing is ever written by anyone else.
class Outbox {
 public:
  explicit Outbox(kj::AsyncIoStream& inner)
      : inner(inner),
        task(pump().eagerlyEvaluate([this](kj::Exception&& e) { fail(kj::mv(e)); })) {}
  KJ_DISALLOW_COPY(Outbox);

  void append(const void* data, size_t size) {
    auto bytes = static_cast<const kj::byte*>(data);
    filling.addAll(bytes, bytes + size);
  }
  size_t pendingBytes() const { return filling.size(); }
  kj::Maybe<const kj::Exception&> failure() const { return error; }

  // Starts writing what was appended, without waiting for it.
  void kick() {
    KJ_IF_MAYBE (f, wakeUp) {
      (*f)->fulfill();
      wakeUp = nullptr;
    }
  }

  // Resolves once everything appended is written (and, after shutdownAfterFlush(), the inner
  // stream's write side is shut down); rejects with the inner stream's write error.
  kj::Promise<void> flush() {
    KJ_IF_MAYBE (e, error) {
      return kj::cp(*e);
    }
    if (filling.empty() && !writing && shutdownDone == shutdownRequested) return kj::READY_NOW;
    auto paf = kj::newPromiseAndFulfiller<void>();
    flushWaiters.add(kj::mv(paf.fulfiller));
    kick();
    return kj::mv(paf.promise);
  }

  // Resolves once the pump has taken `filling`, i.e. there is room for the next batch.
  kj::Promise<void> whenTaken() {
    KJ_IF_MAYBE (e, error) {
      return kj::cp(*e);
    }
    KJ_REQUIRE(takenWaiter == nullptr, "concurrent write() calls on one TLS stream");
    auto paf = kj::newPromiseAndFulfiller<void>();
    takenWaiter = kj::mv(paf.fulfiller);
    kick();
    return kj::mv(paf.promise);
  }

  // Once everything appended so far is written, shut down the inner stream's write side.
  void shutdownAfterFlush() {
    shutdownRequested = true;
    kick();
  }

 private:
  kj::Promise<void> pump() {
    if (filling.empty()) {
      if (shutdownRequested && !shutdownDone) {
        shutdownDone = true;
        inner.shutdownWrite();
      }
      auto waiters = kj::mv(flushWaiters);
      for (auto& waiter : waiters)
        waiter->fulfill();
      auto paf = kj::newPromiseAndFulfiller<void>();
      wakeUp = kj::mv(paf.fulfiller);
      return paf.promise.then([this]() { return pump(); });
    }
    // Swap the buffers: both keep their capacity, so steady streaming allocates nothing.
    auto empty = kj::mv(sending);
    sending = kj::mv(filling);
    filling = kj::mv(empty);
    writing = true;
    KJ_IF_MAYBE (f, takenWaiter) {
      (*f)->fulfill();
      takenWaiter = nullptr;
    }
    return inner.write(sending.begin(), sending.size()).then([this]() {
      writing = false;
      sending.clear();
      return pump();
    });
  }

  void fail(kj::Exception&& e) {
    for (auto& waiter : flushWaiters)
      waiter->reject(kj::cp(e));
    flushWaiters.clear();
    KJ_IF_MAYBE (f, takenWaiter) {
      (*f)->reject(kj::cp(e));
      takenWaiter = nullptr;
    }
    error = kj::mv(e);
  }

  kj::AsyncIoStream& inner;
  kj::Vector<kj::byte> filling;
  kj::Vector<kj::byte> sending;
  bool writing = false;
  bool shutdownRequested = false;
  bool shutdownDone = false;
  kj::Maybe<kj::Exception> error;
  kj::Maybe<kj::Own<kj::PromiseFulfiller<void>>> wakeUp;
  kj::Maybe<kj::Own<kj::PromiseFulfiller<void>>> takenWaiter;
  kj::Vector<kj::Own<kj::PromiseFulfiller<void>>> flushWaiters;
  kj::Promise<void> task;  // last: destroyed first, cancelling a write in flight
};

// ---------------------------------------------------------------------------------------------
// Gather-write cursor

// Walks the pieces of one write() and cuts them into record-sized plaintext: a slice of a piece
// when it holds a whole record (no copy), else small pieces gathered into one record, so that a
// FrameWriter batch (8-byte segment table, then segments) does not become tiny records.
struct WriteCursor {
  kj::ArrayPtr<const kj::ArrayPtr<const kj::byte>> pieces;
  size_t index = 0;
  size_t offset = 0;

  bool done() {
    while (index < pieces.size() && offset == pieces[index].size()) {
      ++index;
      offset = 0;
    }
    return index == pieces.size();
  }

  // The next record's plaintext (at most `staging.size()` bytes). Call only when !done().
  kj::ArrayPtr<const kj::byte> peek(kj::ArrayPtr<kj::byte> staging) {
    auto rest = pieces[index].slice(offset, pieces[index].size());
    if (rest.size() >= staging.size()) return rest.slice(0, staging.size());
    if (index + 1 == pieces.size()) return rest;
    size_t n = 0;
    for (size_t i = index; i < pieces.size() && n < staging.size(); ++i) {
      auto piece = pieces[i].slice(i == index ? offset : 0, pieces[i].size());
      size_t take = kj::min(piece.size(), staging.size() - n);
      memcpy(staging.begin() + n, piece.begin(), take);
      n += take;
    }
    return staging.slice(0, n);
  }

  void advance(size_t n) {
    while (n > 0) {
      KJ_ASSERT(!done(), "advanced past the end of the write");
      size_t take = kj::min(n, pieces[index].size() - offset);
      offset += take;
      n -= take;
    }
  }
};

// ---------------------------------------------------------------------------------------------
// The connection

// Owns the gnutls_session_t of one connection.
struct GnutlsSession {
  gnutls_session_t session = nullptr;
  ~GnutlsSession() {
    if (session != nullptr) gnutls_deinit(session);
  }
};

class TlsConnection final : public kj::AsyncIoStream, public Transport {
 public:
  TlsConnection(kj::Own<const TlsContext::Shared> shared, bool server,
                kj::Own<kj::AsyncIoStream> innerStream, const TlsOptions& options)
      : shared(kj::mv(shared)),
        inner(kj::mv(innerStream)),
        maxCipherIn(kj::max(options.readBufferBytes, kMinReadBuffer)),
        cipherIn(kj::heapArray<kj::byte>(kj::min(kInitialReadBuffer, maxCipherIn))),
        batchBytes(kj::max(options.writeBatchBytes, size_t(1))),
        server(server),
        outbox(*inner) {
    // GNUTLS_KEY_SHARE_TOP: a client offers a key share for X25519 alone. GnuTLS's default
    // (TOP2) also generates a SECP256R1 key pair for every connection, which only a server
    // without X25519 would use; such a server asks for it with a HelloRetryRequest instead.
    unsigned flags =
        GNUTLS_NONBLOCK | GNUTLS_ENABLE_RAWPK | GNUTLS_NO_TICKETS | GNUTLS_KEY_SHARE_TOP;
    if (server && isMutant(Mutant::sendsTickets)) flags &= ~GNUTLS_NO_TICKETS;
    if (!server && isMutant(Mutant::clientResumes)) flags &= ~GNUTLS_NO_TICKETS;
    check(gnutls_init(&s.session, flags | (server ? GNUTLS_SERVER : GNUTLS_CLIENT)), "gnutls_init");
    auto session = s.session;
    check(gnutls_priority_set(session, this->shared->priority), "gnutls_priority_set");
    check(gnutls_credentials_set(session, GNUTLS_CRD_CERTIFICATE, this->shared->credentials),
          "gnutls_credentials_set");
    if (server) gnutls_certificate_server_set_request(session, GNUTLS_CERT_REQUIRE);
    if (server && isMutant(Mutant::sendsTickets)) enableTicketsForMutant(session);
    if (!server && isMutant(Mutant::clientResumes)) offerTicketForMutant();
    auto alpn = datumOf(kAlpnProtocol.asBytes());
    check(gnutls_alpn_set_protocols(session, &alpn, 1, GNUTLS_ALPN_MANDATORY), "setting ALPN");
    gnutls_handshake_set_timeout(session, 0);  // the caller bounds the handshake with its timer
    // Refusals happen during the handshake, with the alert they call for (docs/protocol.md
    // §2.6): a server checks what the ClientHello offers before GnuTLS reads it
    // (clientHelloHook()); both sides check the key when its Certificate arrives (the
    // credentials' verify function, verifyCallback(), where a client also checks the server's
    // ALPN choice).
    gnutls_session_set_ptr(session, this);
    if (server) {
      gnutls_handshake_set_hook_function(session, GNUTLS_HANDSHAKE_CLIENT_HELLO, GNUTLS_HOOK_PRE,
                                         &clientHelloHook);
    }
    gnutls_transport_set_ptr(session, this);
    gnutls_transport_set_push_function(session, &push);
    gnutls_transport_set_pull_function(session, &pull);
    gnutls_transport_set_pull_timeout_function(session, &pullTimeout);
  }

  ~TlsConnection() noexcept(false) {
    if (!server && isMutant(Mutant::clientResumes)) keepTicketForMutant();
  }

  kj::Promise<void> handshake() {
    return handshakeStep().then([this]() { return verifyPeer(); }).then([this]() {
      return outbox.flush();  // our last flight (the client's Finished)
    });
  }

  // The credentials' verify function: runs when the other side's Certificate (and its
  // CertificateVerify) arrived, before our Finished, so a refusal is an alert in the handshake.
  static int verifyCallback(gnutls_session_t session) {
    auto& self = *static_cast<TlsConnection*>(gnutls_session_get_ptr(session));
    if (!negotiatedAlpn(session)) {
      self.refusal =
          Refusal{"the peer did not negotiate ALPN shoal/1", GNUTLS_A_NO_APPLICATION_PROTOCOL};
      return -1;
    }
    KJ_IF_MAYBE (refusal, self.checkPeerKey()) {
      self.refusal = *refusal;
      return -1;  // GnuTLS fails the handshake with GNUTLS_E_CERTIFICATE_ERROR
    }
    return 0;
  }

  // Transport

  kj::AsyncIoStream& stream() override { return *this; }
  kj::Maybe<PeerId> peerId() const override { return peer; }

  kj::Promise<void> end() override {
    KJ_IF_MAYBE (e, sendCloseNotify()) {
      return kj::mv(*e);
    }
    return outbox.flush();
  }

  // kj::AsyncIoStream

  kj::Promise<size_t> tryRead(void* buffer, size_t minBytes, size_t maxBytes) override {
    return readStep(static_cast<kj::byte*>(buffer), minBytes, maxBytes, 0);
  }

  kj::Promise<void> write(const void* buffer, size_t size) override {
    auto piece = kj::heap<kj::ArrayPtr<const kj::byte>>(static_cast<const kj::byte*>(buffer), size);
    auto pieces = kj::arrayPtr(piece.get(), 1);
    return write(pieces).attach(kj::mv(piece));
  }

  kj::Promise<void> write(kj::ArrayPtr<const kj::ArrayPtr<const kj::byte>> pieces) override {
    if (ended) return KJ_EXCEPTION(FAILED, "write() after end() or shutdownWrite()");
    KJ_IF_MAYBE (e, outbox.failure()) {
      return kj::cp(*e);
    }
    return writeStep(WriteCursor{pieces});
  }

  kj::Promise<void> whenWriteDisconnected() override { return inner->whenWriteDisconnected(); }

  // Queues close_notify; the outbox writes it and then shuts the inner stream's write side.
  void shutdownWrite() override {
    KJ_IF_MAYBE (e, sendCloseNotify()) {
      kj::throwFatalException(kj::mv(*e));
    }
  }

  void abortRead() override { inner->abortRead(); }
  void getsockopt(int level, int option, void* value, kj::uint* length) override {
    inner->getsockopt(level, option, value, length);
  }
  void setsockopt(int level, int option, const void* value, kj::uint length) override {
    inner->setsockopt(level, option, value, length);
  }
  void getsockname(struct sockaddr* addr, kj::uint* length) override {
    inner->getsockname(addr, length);
  }
  void getpeername(struct sockaddr* addr, kj::uint* length) override {
    inner->getpeername(addr, length);
  }
  // getFd() stays null: bytes written to the fd would bypass TLS.

 private:
  // --- GnuTLS transport callbacks: memory only, never blocking ---

  static ssize_t push(gnutls_transport_ptr_t ptr, const void* data, size_t size) {
    auto& self = *static_cast<TlsConnection*>(ptr);
    if (self.outbox.failure() != nullptr) {
      gnutls_transport_set_errno(self.s.session, EPIPE);
      return -1;
    }
    self.outbox.append(data, size);
    return ssize_t(size);
  }

  static ssize_t pull(gnutls_transport_ptr_t ptr, void* data, size_t size) {
    auto& self = *static_cast<TlsConnection*>(ptr);
    size_t available = self.inEnd - self.inStart;
    if (available == 0) {
      if (self.innerEof) return 0;
      gnutls_transport_set_errno(self.s.session, EAGAIN);
      return -1;
    }
    size_t n = kj::min(size, available);
    memcpy(data, self.cipherIn.begin() + self.inStart, n);
    self.inStart += n;
    return ssize_t(n);
  }

  // Must be set whenever pull is. We cannot block: "nothing yet" is a timeout when GnuTLS asked
  // for none, else EAGAIN.
  static int pullTimeout(gnutls_transport_ptr_t ptr, unsigned int ms) {
    auto& self = *static_cast<TlsConnection*>(ptr);
    if (self.inEnd > self.inStart || self.innerEof) return 1;
    if (ms == 0) return 0;
    gnutls_transport_set_errno(self.s.session, EAGAIN);
    return -1;
  }

  // Reads more ciphertext from the inner stream, in one large read. The read is owned by the
  // connection, not by the caller's promise: a tryRead() cancelled after the inner stream handed
  // over bytes but before this continuation ran would otherwise lose them, and with them the
  // TLS stream. The next caller waits for the same read instead.
  kj::Promise<void> fillCipherIn() {
    KJ_IF_MAYBE (f, fill) {
      if (fillInFlight) return f->addBranch();
    }
    if (innerEof) return KJ_EXCEPTION(DISCONNECTED, "TLS stream ended");
    if (inStart > 0) {
      memmove(cipherIn.begin(), cipherIn.begin() + inStart, inEnd - inStart);
      inEnd -= inStart;
      inStart = 0;
    }
    KJ_ASSERT(inEnd < cipherIn.size(), "GnuTLS stalled with a full ciphertext buffer");
    fillInFlight = true;
    // evalNow: a KJ socket throws a reset from tryRead() itself rather than rejecting.
    auto read = kj::evalNow(
        [this]() { return inner->tryRead(cipherIn.begin() + inEnd, 1, cipherIn.size() - inEnd); });
    auto forked = read.then(
                          [this](size_t n) -> kj::Promise<void> {
                            fillInFlight = false;
                            inEnd += n;
                            if (n == 0) innerEof = true;
                            if (inEnd == cipherIn.size()) growCipherIn();
                            return kj::READY_NOW;
                          },
                          [this](kj::Exception&& e) -> kj::Promise<void> {
                            fillInFlight = false;
                            return kj::mv(e);
                          })
                      .fork();
    auto branch = forked.addBranch();
    fill = kj::mv(forked);  // replaces a finished read, never one in flight
    return branch;
  }

  // A read filled the buffer: the next one may take twice as much.
  void growCipherIn() {
    if (cipherIn.size() >= maxCipherIn) return;
    auto bigger = kj::heapArray<kj::byte>(kj::min(cipherIn.size() * 2, maxCipherIn));
    memcpy(bigger.begin(), cipherIn.begin() + inStart, inEnd - inStart);
    inEnd -= inStart;
    inStart = 0;
    cipherIn = kj::mv(bigger);
  }

  // GnuTLS returns GNUTLS_E_AGAIN both when its pull ran dry and after handling a post-handshake
  // message with more input at hand: retry at once in the second case, else read more.
  bool shouldRetryNow(size_t inStartBefore) const {
    return inStart != inStartBefore && inStart < inEnd;
  }

  // --- handshake ---

  kj::Promise<void> handshakeStep() {
    for (;;) {
      size_t before = inStart;
      int rc = gnutls_handshake(s.session);
      if (rc == GNUTLS_E_SUCCESS) return kj::READY_NOW;
      if (rc == GNUTLS_E_AGAIN) {
        outbox.kick();
        if (shouldRetryNow(before)) continue;
        return fillCipherIn().then([this]() { return handshakeStep(); });
      }
      if (!gnutls_error_is_fatal(rc)) continue;  // e.g. a warning alert
      bool gone = innerEof || rc == GNUTLS_E_PREMATURE_TERMINATION;
      auto reason = reasonFor(s.session, rc);
      if (!gone && rc != GNUTLS_E_FATAL_ALERT_RECEIVED && !isMutant(Mutant::noTlsAlert)) {
        KJ_IF_MAYBE (r, refusal) {
          reason = kj::str(r->why);
          gnutls_alert_send(s.session, GNUTLS_AL_FATAL, r->alert);
        } else {
          // GnuTLS does not alert on its own: protocol_version, no_application_protocol,
          // certificate_required, handshake_failure... as gnutls_error_to_alert() maps them.
          gnutls_alert_send_appropriate(s.session, rc);
        }
      }
      auto type = gone ? kj::Exception::Type::DISCONNECTED : kj::Exception::Type::FAILED;
      return failAfterAlert(
          kj::Exception(type, __FILE__, __LINE__, kj::str(kHandshakeFailed, reason)));
    }
  }

  // Server, before GnuTLS reads a ClientHello: refuse one that cannot lead to a shoal session
  // with the alert naming why (GnuTLS would fail later, or not at all — it lets a client that
  // offers no ALPN through — and says handshake_failure or nothing).
  static int clientHelloHook(gnutls_session_t session, unsigned int type, unsigned when,
                             unsigned int incoming, const gnutls_datum_t* message) {
    (void)type;
    (void)when;
    (void)incoming;
    auto& self = *static_cast<TlsConnection*>(gnutls_session_get_ptr(session));
    auto offer = ClientHelloOffer::parse(*message);
    if (isMutant(Mutant::pskRetryCrash) && self.pskOffered && !offer.psk) {
      // CVE-2025-6395: GnuTLS kept using the PSK of the first ClientHello after a
      // HelloRetryRequest whose answer dropped it, and dereferenced null. The same death here.
      KJ_LOG(ERROR, "mutant psk-retry-crash: the PSK of the first ClientHello is gone");
      abort();
    }
    self.pskOffered = self.pskOffered || offer.psk;
    KJ_IF_MAYBE (r, refusalOf(offer)) {
      self.refusal = *r;
      return GNUTLS_E_USER_ERROR;  // handshakeStep sends the refusal's alert
    }
    return 0;
  }

  static bool negotiatedAlpn(gnutls_session_t session) {
    gnutls_datum_t alpn;
    if (isMutant(Mutant::alpnOptional)) return true;
    return gnutls_alpn_get_selected_protocol(session, &alpn) >= 0 &&
           alpn.size == kAlpnProtocol.size() &&
           memcmp(alpn.data, kAlpnProtocol.begin(), alpn.size) == 0;
  }

  // The raw Ed25519 key the other side proved, or why it is refused and with which alert. Sets
  // `peer` on success.
  kj::Maybe<Refusal> checkPeerKey() {
    auto session = s.session;
    if (gnutls_certificate_type_get2(session, GNUTLS_CTYPE_PEERS) != GNUTLS_CRT_RAWPK) {
      return Refusal{"the peer did not present a raw public key", GNUTLS_A_UNSUPPORTED_CERTIFICATE};
    }
    unsigned count = 0;
    const gnutls_datum_t* keys = gnutls_certificate_get_peers(session, &count);
    if (keys == nullptr || count != 1) {
      return Refusal{"the peer presented no key", GNUTLS_A_CERTIFICATE_REQUIRED};
    }
    gnutls_pubkey_t key;
    check(gnutls_pubkey_init(&key), "gnutls_pubkey_init");
    KJ_DEFER(gnutls_pubkey_deinit(key));
    if (gnutls_pubkey_import(key, keys, GNUTLS_X509_FMT_DER) < 0) {
      return Refusal{"the peer's key cannot be parsed", GNUTLS_A_BAD_CERTIFICATE};
    }
    if (gnutls_pubkey_get_pk_algorithm(key, nullptr) != GNUTLS_PK_EDDSA_ED25519 &&
        !isMutant(Mutant::anyKeyType)) {
      return Refusal{"the peer's key is not Ed25519", GNUTLS_A_UNSUPPORTED_CERTIFICATE};
    }
    peer = peerIdOf(kj::arrayPtr(keys->data, keys->size));
    return nullptr;
  }

  // After the handshake: what the callbacks above decided must hold. A failure here is a
  // GnuTLS path that skipped them; refuse all the same.
  kj::Maybe<Refusal> checkNegotiated() {
    if (gnutls_protocol_get_version(s.session) != GNUTLS_TLS1_3 &&
        !isMutant(Mutant::tls12Allowed)) {
      return Refusal{"negotiated a version other than TLS 1.3", GNUTLS_A_PROTOCOL_VERSION};
    }
    if (!negotiatedAlpn(s.session)) {
      return Refusal{"the peer did not negotiate ALPN shoal/1", GNUTLS_A_NO_APPLICATION_PROTOCOL};
    }
    if (peer == nullptr) return checkPeerKey();
    return nullptr;
  }

  kj::Promise<void> verifyPeer() {
    KJ_IF_MAYBE (r, checkNegotiated()) {
      if (!isMutant(Mutant::noTlsAlert)) gnutls_alert_send(s.session, GNUTLS_AL_FATAL, r->alert);
      return failAfterAlert(KJ_EXCEPTION(FAILED, kj::str(kHandshakeFailed, r->why)));
    }
    return kj::READY_NOW;
  }

  // Rejects with `e` after giving the alert GnuTLS (or we) queued a chance to leave: it is
  // written if the inner stream takes it without waiting, else dropped with the connection.
  kj::Promise<void> failAfterAlert(kj::Exception&& e) {
    return outbox.flush()
        .exclusiveJoin(kj::evalLast([]() {}))
        .then([]() {}, [](kj::Exception&&) {})
        .then([e = kj::mv(e)]() mutable -> kj::Promise<void> { return kj::mv(e); });
  }

  // --- reading ---

  kj::Promise<size_t> readStep(kj::byte* buffer, size_t minBytes, size_t maxBytes, size_t done) {
    while (done < maxBytes && !closeNotifyReceived) {
      size_t before = inStart;
      ssize_t n = gnutls_record_recv(s.session, buffer + done, maxBytes - done);
      if (n > 0) {
        done += size_t(n);
        continue;
      }
      if (n == 0) {
        closeNotifyReceived = true;
        break;
      }
      if (n == GNUTLS_E_AGAIN) {
        outbox.kick();  // TLS 1.3 may have queued a reply (KeyUpdate) while reading
        if (done >= minBytes) break;
        if (shouldRetryNow(before)) continue;
        return fillCipherIn().then([this, buffer, minBytes, maxBytes,
                                    done]() { return readStep(buffer, minBytes, maxBytes, done); },
                                   [](kj::Exception&& e) -> kj::Promise<size_t> {
                                     return uncleanIfDisconnected(kj::mv(e));
                                   });
      }
      if (n == GNUTLS_E_PREMATURE_TERMINATION || (innerEof && gnutls_error_is_fatal(int(n)))) {
        return KJ_EXCEPTION(DISCONNECTED, kj::str("unclean TLS close: the peer ended the "
                                                  "connection without close_notify (",
                                                  reasonFor(s.session, int(n)), ")"));
      }
      if (!gnutls_error_is_fatal(int(n))) continue;
      return KJ_EXCEPTION(FAILED, kj::str("TLS read failed: ", reasonFor(s.session, int(n))));
    }
    return done;
  }

  // --- the mutant client-resumes: a client-side session cache, which [TR-5] forbids ---

  void offerTicketForMutant() {
    auto ticket = shared->ticketForMutant.lockExclusive();
    KJ_IF_MAYBE (data, *ticket) {
      auto datum = datumOf(*data);
      check(gnutls_session_set_data(s.session, datum.data, datum.size), "resuming a session");
    }
  }

  void keepTicketForMutant() {
    if ((gnutls_session_get_flags(s.session) & GNUTLS_SFLAGS_SESSION_TICKET) == 0) return;
    gnutls_datum_t data;
    if (gnutls_session_get_data2(s.session, &data) < 0) return;
    KJ_DEFER(gnutls_free(data.data));
    *shared->ticketForMutant.lockExclusive() = kj::heapArray(kj::arrayPtr(data.data, data.size));
  }

  // --- writing ---

  kj::Promise<void> writeStep(WriteCursor cursor) {
    size_t maxRecord = gnutls_record_get_max_size(s.session);
    if (staging.size() != maxRecord) staging = kj::heapArray<kj::byte>(maxRecord);
    while (!cursor.done()) {
      if (outbox.pendingBytes() >= batchBytes) {
        return outbox.whenTaken().then([this, cursor]() { return writeStep(cursor); });
      }
      auto record = cursor.peek(staging);
      ssize_t n = gnutls_record_send(s.session, record.begin(), record.size());
      if (n > 0) {
        cursor.advance(size_t(n));
      } else if (!gnutls_error_is_fatal(int(n))) {
        // GNUTLS_E_AGAIN or INTERRUPTED: let the outbox drain, then offer the same record again.
        return outbox.flush().then([this, cursor]() { return writeStep(cursor); });
      } else {
        KJ_IF_MAYBE (e, outbox.failure()) {
          return kj::cp(*e);
        }
        return KJ_EXCEPTION(FAILED, kj::str("TLS write failed: ", reasonFor(s.session, int(n))));
      }
    }
    return outbox.flush();
  }

  // --- closing ---

  kj::Maybe<kj::Exception> sendCloseNotify() {
    if (ended) return nullptr;
    ended = true;
    int rc;
    do {
      // Our push never blocks, so GnuTLS queues the alert at once.
      rc = isMutant(Mutant::noCloseNotify) ? 0 : gnutls_bye(s.session, GNUTLS_SHUT_WR);
    } while (rc == GNUTLS_E_INTERRUPTED);
    if (rc < 0 && rc != GNUTLS_E_AGAIN) {
      KJ_IF_MAYBE (e, outbox.failure()) {
        return kj::cp(*e);
      }
      return KJ_EXCEPTION(FAILED, kj::str("TLS close failed: ", reasonFor(s.session, rc)));
    }
    outbox.shutdownAfterFlush();
    return nullptr;
  }

  // Destroyed in reverse order: the outbox (and its write in flight) first, then the session,
  // then the inner stream, then the credentials the session used.
  kj::Own<const TlsContext::Shared> shared;
  kj::Own<kj::AsyncIoStream> inner;
  GnutlsSession s;

  size_t maxCipherIn;
  kj::Array<kj::byte> cipherIn;  // ciphertext read, [inStart, inEnd) not yet given to GnuTLS
  size_t inStart = 0;
  size_t inEnd = 0;
  bool innerEof = false;
  bool closeNotifyReceived = false;
  kj::Maybe<kj::ForkedPromise<void>> fill;  // the inner read, see fillCipherIn()
  bool fillInFlight = false;

  size_t batchBytes;
  kj::Array<kj::byte> staging;  // one record gathered from small pieces
  bool ended = false;
  kj::Maybe<PeerId> peer;
  kj::Maybe<Refusal> refusal;  // set by a callback that failed the handshake
  bool server;
  bool pskOffered = false;  // a ClientHello of this handshake offered pre_shared_key
  Outbox outbox;
};

int verifyPeerKey(gnutls_session_t session) {
  return TlsConnection::verifyCallback(session);
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// TlsContext

TlsContext::TlsContext(const Identity& identity, TlsOptions options)
    : shared(kj::atomicRefcounted<Shared>(identity)), options(options) {}

TlsContext::~TlsContext() noexcept(false) {}

kj::Promise<kj::Own<Transport>> TlsContext::connect(kj::Own<kj::AsyncIoStream> inner) {
  return start(false, kj::mv(inner));
}

kj::Promise<kj::Own<Transport>> TlsContext::accept(kj::Own<kj::AsyncIoStream> inner) {
  return start(true, kj::mv(inner));
}

kj::Promise<kj::Own<Transport>> TlsContext::start(bool server, kj::Own<kj::AsyncIoStream> inner) {
  return kj::evalNow([&]() {
           auto connection =
               kj::heap<TlsConnection>(kj::atomicAddRef(*shared), server, kj::mv(inner), options);
           auto& ref = *connection;
           // The continuation owns the connection; KJ drops the handshake (which uses it) first.
           return ref.handshake().then([connection = kj::mv(connection)]() mutable {
             return kj::Own<Transport>(kj::mv(connection));
           });
         })
      .catch_([](kj::Exception&& e) -> kj::Promise<kj::Own<Transport>> {
        return withHandshakePrefix(kj::mv(e));
      });
}

}  // namespace shoal::peer
