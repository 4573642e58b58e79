#include <shoal/conformance/tls-wire.h>

#include <errno.h>
#include <gnutls/abstract.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include <kj/debug.h>
#include <kj/vector.h>

namespace shoal::conformance {

namespace {

constexpr size_t kReadBytes = 64 * 1024;

gnutls_datum_t datumOf(kj::ArrayPtr<const kj::byte> bytes) {
  return {const_cast<kj::byte*>(bytes.begin()), unsigned(bytes.size())};
}

// GnuTLS failing on the harness's own valid arguments is a harness bug.
void check(int rc, const char* what) {
  KJ_ASSERT(rc >= 0, what, gnutls_strerror(rc));
}

StreamEnd endOf(kj::Exception&& e) {
  auto text = kj::str(e.getDescription());
  bool reset = e.getType() == kj::Exception::Type::DISCONNECTED &&
               (strstr(text.cStr(), "reset") != nullptr || strstr(text.cStr(), "RESET") != nullptr);
  return StreamEnd{reset ? StreamEnd::reset : StreamEnd::error, kj::mv(text)};
}

kj::Promise<StreamEnd> readToEnd(kj::AsyncIoStream& stream, kj::Array<kj::byte> buffer) {
  auto& ref = stream;
  auto ptr = buffer.begin();
  auto size = buffer.size();
  return kj::evalNow([&ref, ptr, size]() { return ref.tryRead(ptr, 1, size); })
      .then(
          [&ref, buffer = kj::mv(buffer)](size_t n) mutable -> kj::Promise<StreamEnd> {
            if (n == 0) return StreamEnd{StreamEnd::fin, kj::str("FIN")};
            return readToEnd(ref, kj::mv(buffer));  // bytes after the end of TLS: not ours
          },
          [](kj::Exception&& e) -> kj::Promise<StreamEnd> { return endOf(kj::mv(e)); });
}

// --- plaintext ---------------------------------------------------------------------------------

class PlainChannel final : public Channel {
 public:
  explicit PlainChannel(kj::Own<kj::AsyncIoStream> stream) : stream(kj::mv(stream)) {}

  kj::Promise<ReadEvent> read() override {
    auto buffer = kj::heapArray<kj::byte>(kReadBytes);
    auto ptr = buffer.begin();
    return kj::evalNow([this, ptr]() { return stream->tryRead(ptr, 1, kReadBytes); })
        .then(
            [buffer = kj::mv(buffer)](size_t n) mutable -> ReadEvent {
              if (n == 0) return StreamEnd{StreamEnd::fin, kj::str("FIN")};
              return Bytes{kj::heapArray(buffer.slice(0, n))};
            },
            [](kj::Exception&& e) -> ReadEvent { return endOf(kj::mv(e)); });
  }
  kj::Promise<void> write(kj::ArrayPtr<const kj::byte> bytes) override {
    // Writes queued before a reset find no stream: they fail like writes to a closed socket.
    if (stream.get() == nullptr) return KJ_EXCEPTION(DISCONNECTED, "the harness reset it");
    return stream->write(bytes.begin(), bytes.size());
  }
  kj::Promise<void> closeNotify() override { return kj::READY_NOW; }
  void fin() override {
    if (stream.get() != nullptr) stream->shutdownWrite();
  }
  void reset() override {
    struct linger hard = {1, 0};
    stream->setsockopt(SOL_SOCKET, SO_LINGER, &hard, sizeof(hard));
    stream = nullptr;
  }
  bool isTls() const override { return false; }
  kj::Maybe<const TlsFacts&> facts() const override { return nullptr; }
  bool sessionTicketReceived() const override { return false; }
  kj::Maybe<kj::Array<kj::byte>> sessionData() const override { return nullptr; }

 private:
  kj::Own<kj::AsyncIoStream> stream;
};

// --- TLS ---------------------------------------------------------------------------------------

// Credentials for one connection: a profile's key or certificate. Rebuilt per connection, which
// costs a key operation or two and keeps odd profiles from leaking into others.
struct Credentials {
  gnutls_certificate_credentials_t creds = nullptr;
  Credentials() { check(gnutls_certificate_allocate_credentials(&creds), "credentials"); }
  ~Credentials() { gnutls_certificate_free_credentials(creds); }
  KJ_DISALLOW_COPY(Credentials);
};

void loadRawKey(gnutls_certificate_credentials_t creds, kj::ArrayPtr<const kj::byte> spki,
                kj::ArrayPtr<const kj::byte> pkcs8) {
  auto s = datumOf(spki);
  auto k = datumOf(pkcs8);
  check(gnutls_certificate_set_rawpk_key_mem(creds, &s, &k, GNUTLS_X509_FMT_DER, nullptr, 0,
                                             nullptr, 0, 0),
        "loading a raw key");
}

void loadEcdsaKey(gnutls_certificate_credentials_t creds) {
  gnutls_x509_privkey_t x509;
  gnutls_privkey_t priv;
  gnutls_pubkey_t pub;
  check(gnutls_x509_privkey_init(&x509), "privkey init");
  KJ_DEFER(gnutls_x509_privkey_deinit(x509));
  check(gnutls_x509_privkey_generate(x509, GNUTLS_PK_ECDSA,
                                     GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1), 0),
        "ECDSA key");
  check(gnutls_privkey_init(&priv), "privkey");
  KJ_DEFER(gnutls_privkey_deinit(priv));
  check(gnutls_privkey_import_x509(priv, x509, GNUTLS_PRIVKEY_IMPORT_COPY), "import");
  check(gnutls_pubkey_init(&pub), "pubkey");
  KJ_DEFER(gnutls_pubkey_deinit(pub));
  check(gnutls_pubkey_import_privkey(pub, priv, 0, 0), "pubkey import");
  gnutls_datum_t spki, pkcs8;
  check(gnutls_pubkey_export2(pub, GNUTLS_X509_FMT_DER, &spki), "export SPKI");
  KJ_DEFER(gnutls_free(spki.data));
  check(gnutls_x509_privkey_export2_pkcs8(x509, GNUTLS_X509_FMT_DER, nullptr, GNUTLS_PKCS_PLAIN,
                                          &pkcs8),
        "export PKCS#8");
  KJ_DEFER(gnutls_free(pkcs8.data));
  loadRawKey(creds, kj::arrayPtr(spki.data, spki.size), kj::arrayPtr(pkcs8.data, pkcs8.size));
}

// A self-signed X.509 certificate for the identity's Ed25519 key.
void loadX509(gnutls_certificate_credentials_t creds, const Identity& identity) {
  gnutls_x509_privkey_t key;
  check(gnutls_x509_privkey_init(&key), "privkey init");
  KJ_DEFER(gnutls_x509_privkey_deinit(key));
  auto der = datumOf(identity.privateKeyPkcs8Der());
  check(
      gnutls_x509_privkey_import_pkcs8(key, &der, GNUTLS_X509_FMT_DER, nullptr, GNUTLS_PKCS_PLAIN),
      "import PKCS#8");
  gnutls_x509_crt_t crt;
  check(gnutls_x509_crt_init(&crt), "crt init");
  KJ_DEFER(gnutls_x509_crt_deinit(crt));
  check(gnutls_x509_crt_set_version(crt, 3), "crt version");
  kj::byte serial[8] = {1, 2, 3, 4, 5, 6, 7, 8};
  check(gnutls_x509_crt_set_serial(crt, serial, sizeof(serial)), "crt serial");
  time_t now = time(nullptr);
  check(gnutls_x509_crt_set_activation_time(crt, now - 3600), "crt activation");
  check(gnutls_x509_crt_set_expiration_time(crt, now + 86400), "crt expiration");
  check(gnutls_x509_crt_set_dn(crt, "CN=shoal-conform", nullptr), "crt dn");
  check(gnutls_x509_crt_set_key(crt, key), "crt key");
  check(gnutls_x509_crt_sign2(crt, crt, key, GNUTLS_DIG_SHA512, 0), "crt sign");
  check(gnutls_certificate_set_x509_key(creds, &crt, 1, key), "set x509 key");
}

class TlsChannel final : public Channel {
 public:
  TlsChannel(kj::Own<kj::AsyncIoStream> innerStream, bool server, const Identity& identity,
             const TlsProfile& profile)
      : inner(kj::mv(innerStream)) {
    switch (profile.credential) {
      case TlsProfile::Credential::rawEd25519:
        loadRawKey(credentials.creds, identity.publicKeyDer(), identity.privateKeyPkcs8Der());
        break;
      case TlsProfile::Credential::rawEcdsa: loadEcdsaKey(credentials.creds); break;
      case TlsProfile::Credential::x509: loadX509(credentials.creds, identity); break;
      case TlsProfile::Credential::none: break;
    }
    bool rawKeys = profile.credential != TlsProfile::Credential::x509;
    unsigned flags = GNUTLS_NONBLOCK | (server ? GNUTLS_SERVER : GNUTLS_CLIENT) |
                     (rawKeys ? GNUTLS_ENABLE_RAWPK : 0) |
                     (profile.inviteTickets || profile.sendTickets ? 0 : GNUTLS_NO_TICKETS);
    check(gnutls_init(&session, flags), "gnutls_init");
    const char* error = nullptr;
    int rc = gnutls_priority_set_direct(session, profile.priority.cStr(), &error);
    KJ_REQUIRE(rc >= 0, "bad priority string in a TLS profile", profile.priority, error);
    check(gnutls_credentials_set(session, GNUTLS_CRD_CERTIFICATE, credentials.creds), "creds");
    if (server && profile.sendTickets) {
      static const kj::byte key[64] = {};  // GnuTLS's ticket key size; nothing secret here
      auto datum = datumOf(key);
      check(gnutls_session_ticket_enable_server(session, &datum), "session tickets");
    }
    if (!server && profile.resume.size() > 0) {
      check(gnutls_session_set_data(session, profile.resume.begin(), profile.resume.size()),
            "session to resume");
    }
    if (server) {
      gnutls_certificate_server_set_request(session, GNUTLS_CERT_REQUEST);
      gnutls_handshake_set_hook_function(session, GNUTLS_HANDSHAKE_CLIENT_HELLO, GNUTLS_HOOK_PRE,
                                         &onClientHello);
    }
    KJ_IF_MAYBE (protocol, profile.alpn) {
      auto datum = datumOf(protocol->asBytes());
      check(gnutls_alpn_set_protocols(session, &datum, 1, 0), "alpn");
    }
    gnutls_handshake_set_timeout(session, 0);
    gnutls_session_set_ptr(session, this);
    gnutls_transport_set_ptr(session, this);
    gnutls_transport_set_push_function(session, &push);
    gnutls_transport_set_pull_function(session, &pull);
    gnutls_transport_set_pull_timeout_function(session, &pullTimeout);
  }
  ~TlsChannel() noexcept(false) {
    if (session != nullptr) gnutls_deinit(session);
  }

  kj::Promise<kj::Maybe<TlsRefused>> handshake() {
    for (;;) {
      size_t before = inStart;
      int rc = gnutls_handshake(session);
      if (rc == GNUTLS_E_SUCCESS) {
        learnFacts();
        return flush().then([]() -> kj::Maybe<TlsRefused> { return nullptr; });
      }
      if (rc == GNUTLS_E_AGAIN) {
        kick();
        if (inStart != before && inStart < inEnd) continue;
        return fillIn().then([this]() { return handshake(); });
      }
      if (!gnutls_error_is_fatal(rc)) continue;
      TlsRefused refused{kj::str(gnutls_strerror(rc)), nullptr, innerEnded};
      if (rc == GNUTLS_E_FATAL_ALERT_RECEIVED || rc == GNUTLS_E_WARNING_ALERT_RECEIVED) {
        refused.alert = kj::str(gnutls_alert_get_name(gnutls_alert_get(session)));
      }
      // Let the alert GnuTLS queued for the other side go out; a dead socket is fine.
      return flush().then([refused = kj::mv(refused)]() mutable -> kj::Maybe<TlsRefused> {
        return kj::mv(refused);
      });
    }
  }

  kj::Promise<ReadEvent> read() override {
    if (rawPhase) {
      KJ_IF_MAYBE (end, innerEnd) {
        return ReadEvent(StreamEnd{end->kind, kj::str(end->detail)});
      }
      return readToEnd(*inner, kj::heapArray<kj::byte>(kReadBytes)).then([](StreamEnd e) {
        return ReadEvent(kj::mv(e));
      });
    }
    for (;;) {
      size_t before = inStart;
      ssize_t n = gnutls_record_recv(session, buffer, sizeof(buffer));
      if (n > 0) return ReadEvent(Bytes{kj::heapArray(kj::arrayPtr(buffer, size_t(n)))});
      if (n == 0) {
        rawPhase = true;
        return ReadEvent(CloseNotify{});
      }
      if (n == GNUTLS_E_AGAIN) {
        kick();
        if (inStart != before && inStart < inEnd) continue;
        return fillIn().then([this]() { return read(); });
      }
      if (n == GNUTLS_E_FATAL_ALERT_RECEIVED || n == GNUTLS_E_WARNING_ALERT_RECEIVED) {
        bool fatal = n == GNUTLS_E_FATAL_ALERT_RECEIVED;
        if (fatal) rawPhase = true;
        return ReadEvent(
            AlertReceived{kj::str(gnutls_alert_get_name(gnutls_alert_get(session))), fatal});
      }
      if (!gnutls_error_is_fatal(int(n))) continue;
      rawPhase = true;
      KJ_IF_MAYBE (end, innerEnd) {
        return ReadEvent(StreamEnd{end->kind, kj::str(end->detail, " without close_notify")});
      }
      return ReadEvent(StreamEnd{StreamEnd::error, kj::str("TLS: ", gnutls_strerror(int(n)))});
    }
  }

  kj::Promise<void> write(kj::ArrayPtr<const kj::byte> bytes) override {
    while (bytes.size() > 0) {
      ssize_t n = gnutls_record_send(session, bytes.begin(), bytes.size());
      if (n > 0) {
        bytes = bytes.slice(size_t(n), bytes.size());
      } else if (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED) {
        kick();
        return flush().then([this, bytes]() { return write(bytes); });
      } else {
        return KJ_EXCEPTION(DISCONNECTED, "TLS write failed", gnutls_strerror(int(n)));
      }
    }
    return flush();
  }

  kj::Promise<void> closeNotify() override {
    int rc;
    do {
      rc = gnutls_bye(session, GNUTLS_SHUT_WR);
    } while (rc == GNUTLS_E_INTERRUPTED);
    return flush();
  }
  void fin() override {
    KJ_IF_MAYBE (s, innerRef()) {
      s->shutdownWrite();
    }
  }
  void reset() override {
    struct linger hard = {1, 0};
    inner->setsockopt(SOL_SOCKET, SO_LINGER, &hard, sizeof(hard));
    inner = nullptr;
  }
  bool isTls() const override { return true; }
  kj::Maybe<const TlsFacts&> facts() const override { return learnt; }
  bool sessionTicketReceived() const override {
    return (gnutls_session_get_flags(session) & GNUTLS_SFLAGS_SESSION_TICKET) != 0;
  }
  kj::Maybe<kj::Array<kj::byte>> sessionData() const override {
    gnutls_datum_t data;
    if (!sessionTicketReceived() || gnutls_session_get_data2(session, &data) < 0) return nullptr;
    KJ_DEFER(gnutls_free(data.data));
    return kj::heapArray(kj::arrayPtr(data.data, data.size));
  }

 private:
  kj::Maybe<kj::AsyncIoStream&> innerRef() {
    if (inner.get() == nullptr) return nullptr;
    return *inner;
  }

  static ssize_t push(gnutls_transport_ptr_t ptr, const void* data, size_t size) {
    auto& self = *static_cast<TlsChannel*>(ptr);
    auto bytes = static_cast<const kj::byte*>(data);
    self.out.addAll(bytes, bytes + size);
    return ssize_t(size);
  }
  static ssize_t pull(gnutls_transport_ptr_t ptr, void* data, size_t size) {
    auto& self = *static_cast<TlsChannel*>(ptr);
    size_t available = self.inEnd - self.inStart;
    if (available == 0) {
      if (self.innerEnded) return 0;
      gnutls_transport_set_errno(self.session, EAGAIN);
      return -1;
    }
    size_t n = kj::min(size, available);
    memcpy(data, self.in.begin() + self.inStart, n);
    self.inStart += n;
    return ssize_t(n);
  }
  static int pullTimeout(gnutls_transport_ptr_t ptr, unsigned int ms) {
    auto& self = *static_cast<TlsChannel*>(ptr);
    if (self.inEnd > self.inStart || self.innerEnded) return 1;
    if (ms == 0) return 0;
    gnutls_transport_set_errno(self.session, EAGAIN);
    return -1;
  }
  static int onClientHello(gnutls_session_t session, unsigned, unsigned, unsigned incoming,
                           const gnutls_datum_t* message) {
    auto& self = *static_cast<TlsChannel*>(gnutls_session_get_ptr(session));
    if (incoming && message != nullptr && message->size > 0) {
      self.clientHelloExtensions.clear();
      gnutls_ext_raw_parse(&self, &onExtension, message, GNUTLS_EXT_RAW_FLAG_TLS_CLIENT_HELLO);
    }
    return 0;
  }
  static int onExtension(void* ctx, unsigned type, const unsigned char*, unsigned) {
    static_cast<TlsChannel*>(ctx)->clientHelloExtensions.add(uint16_t(type));
    return 0;
  }

  // Appends ciphertext to the inner stream's write chain; never waits.
  void kick() {
    if (out.empty() || inner.get() == nullptr) return;
    auto data = out.releaseAsArray();
    auto& stream = *inner;
    writing = writing.addBranch()
                  .then([&stream, data = kj::mv(data)]() mutable {
                    auto ptr = data.begin();
                    auto size = data.size();
                    return stream.write(ptr, size).attach(kj::mv(data));
                  })
                  .catch_([this](kj::Exception&& e) {
                    if (writeError == nullptr) writeError = kj::mv(e);
                  })
                  .fork();
  }
  kj::Promise<void> flush() {
    kick();
    return writing.addBranch().then([this]() -> kj::Promise<void> {
      KJ_IF_MAYBE (e, writeError) {
        return kj::cp(*e);
      }
      return kj::READY_NOW;
    });
  }
  kj::Promise<void> fillIn() {
    if (innerEnded || inner.get() == nullptr) {
      innerEnded = true;
      return kj::READY_NOW;
    }
    if (inStart > 0) {
      memmove(in.begin(), in.begin() + inStart, inEnd - inStart);
      inEnd -= inStart;
      inStart = 0;
    }
    if (in.size() - inEnd < 4096) {
      auto bigger = kj::heapArray<kj::byte>(in.size() * 2);
      memcpy(bigger.begin(), in.begin(), inEnd);
      in = kj::mv(bigger);
    }
    return kj::evalNow(
               [this]() { return inner->tryRead(in.begin() + inEnd, 1, in.size() - inEnd); })
        .then(
            [this](size_t n) {
              inEnd += n;
              if (n == 0) {
                innerEnded = true;
                innerEnd = StreamEnd{StreamEnd::fin, kj::str("FIN")};
              }
            },
            [this](kj::Exception&& e) {
              innerEnded = true;
              innerEnd = endOf(kj::mv(e));
            });
  }

  void learnFacts() {
    TlsFacts f;
    auto version = gnutls_protocol_get_name(gnutls_protocol_get_version(session));
    f.version = kj::str(version == nullptr ? "?" : version);
    char* desc = gnutls_session_get_desc(session);
    f.description = kj::str(desc == nullptr ? "" : desc);
    gnutls_free(desc);
    gnutls_datum_t alpn;
    if (gnutls_alpn_get_selected_protocol(session, &alpn) == 0) {
      f.alpn = kj::str(kj::arrayPtr(reinterpret_cast<const char*>(alpn.data), alpn.size));
    }
    f.rawKey = gnutls_certificate_type_get2(session, GNUTLS_CTYPE_PEERS) == GNUTLS_CRT_RAWPK;
    unsigned count = 0;
    const gnutls_datum_t* keys = gnutls_certificate_get_peers(session, &count);
    if (f.rawKey && keys != nullptr && count == 1) {
      f.peerId = codec::sha256(kj::arrayPtr(keys->data, keys->size));
      gnutls_pubkey_t key;
      check(gnutls_pubkey_init(&key), "pubkey");
      KJ_DEFER(gnutls_pubkey_deinit(key));
      f.ed25519 = gnutls_pubkey_import(key, keys, GNUTLS_X509_FMT_DER) >= 0 &&
                  gnutls_pubkey_get_pk_algorithm(key, nullptr) == GNUTLS_PK_EDDSA_ED25519;
    }
    f.clientHelloExtensions = clientHelloExtensions.releaseAsArray();
    f.resumed = gnutls_session_is_resumed(session) != 0;
    learnt = kj::mv(f);
  }

  Credentials credentials;  // outlives the session that uses it
  kj::Own<kj::AsyncIoStream> inner;
  gnutls_session_t session = nullptr;
  kj::Array<kj::byte> in = kj::heapArray<kj::byte>(kReadBytes);
  size_t inStart = 0;
  size_t inEnd = 0;
  bool innerEnded = false;
  kj::Maybe<StreamEnd> innerEnd;
  kj::Vector<kj::byte> out;
  kj::ForkedPromise<void> writing = kj::Promise<void>(kj::READY_NOW).fork();
  kj::Maybe<kj::Exception> writeError;
  bool rawPhase = false;
  kj::Vector<uint16_t> clientHelloExtensions;
  kj::Maybe<TlsFacts> learnt;
  kj::byte buffer[kReadBytes];
};

kj::Promise<TlsResult> start(kj::Own<kj::AsyncIoStream> stream, bool server,
                             const Identity& identity, const TlsProfile& profile) {
  auto channel = kj::heap<TlsChannel>(kj::mv(stream), server, identity, profile);
  auto& ref = *channel;
  return ref.handshake().then(
      [channel = kj::mv(channel)](kj::Maybe<TlsRefused> refused) mutable -> TlsResult {
        KJ_IF_MAYBE (r, refused) {
          return kj::mv(*r);
        }
        return kj::Own<Channel>(kj::mv(channel));
      });
}

}  // namespace

kj::Own<Channel> plaintextChannel(kj::Own<kj::AsyncIoStream> stream) {
  return kj::heap<PlainChannel>(kj::mv(stream));
}

kj::Promise<TlsResult> tlsConnect(kj::Own<kj::AsyncIoStream> stream, const Identity& identity,
                                  const TlsProfile& profile) {
  return start(kj::mv(stream), false, identity, profile);
}

kj::Promise<TlsResult> tlsAccept(kj::Own<kj::AsyncIoStream> stream, const Identity& identity,
                                 const TlsProfile& profile) {
  return start(kj::mv(stream), true, identity, profile);
}

kj::String alertName(TlsAlert alert) {
  return kj::str(gnutls_alert_get_name(static_cast<gnutls_alert_description_t>(alert)));
}

void initTls() {
  // Reference counted; GnuTLS 3.7 also initializes itself when loaded. Never released: the
  // harness uses TLS until it exits.
  check(gnutls_global_init(), "gnutls_global_init");
}

}  // namespace shoal::conformance
