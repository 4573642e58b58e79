// §2 Transport and identity: TLS 1.3 only, raw Ed25519 keys, ALPN, no resumption, peer ids,
// pinning, no plaintext fallback, clean closes.
#include "common.h"

#include <shoal/conformance/hello-bytes.h>

namespace shoal::conformance::cases {

namespace {

// The alert the target's refusal must carry (§2.6), one of `alerts` (none: not checked), against
// what the harness received.
void expectAlert(Trial& t, kj::ArrayPtr<const TlsAlert> alerts, kj::Maybe<kj::StringPtr> got) {
  if (alerts.size() == 0) return;
  bool ok = false;
  kj::Vector<kj::String> names;
  for (auto a : alerts) {
    names.add(kj::str(alertName(a), " (", uint32_t(a), ")"));
    KJ_IF_MAYBE (g, got) {
      ok = ok || *g == alertName(a);
    }
  }
  t.check(ok, t.spec().requirement, kj::str("the fatal alert ", kj::strArray(names, " or ")),
          got.map([](kj::StringPtr g) { return kj::str("the alert ", g); })
              .orDefault(kj::str("no alert")));
}

// The TLS handshake is refused, or completes only for the harness and the target then ends the
// connection without a frame: either way no session. With `alert`, the refusal must name it: in
// the handshake, or (the target checking our key after our Finished) as the first record.
void expectNoSession(Trial& t, TlsProfile profile, kj::ArrayPtr<const TlsAlert> alert = nullptr) {
  KJ_IF_MAYBE (result, t.tlsHandshake(Trial::Open{nullptr, kj::mv(profile), nullptr})) {
    KJ_SWITCH_ONEOF(*result) {
      KJ_CASE_ONEOF(channel, kj::Own<Channel>) {
        auto& c = t.adopt(kj::mv(channel), t.announce());
        if (t.role() == Role::responder) c.send(helloFrame(c.ours()));
        if (!t.expectClose(c)) return;
        KJ_IF_MAYBE (closed, c.closeEvent()) {
          expectAlert(t, alert,
                      closed->alert.map([](const kj::String& a) -> kj::StringPtr { return a; }));
        }
      }
      KJ_CASE_ONEOF(refused, TlsRefused) {
        expectAlert(t, alert,
                    refused.alert.map([](const kj::String& a) -> kj::StringPtr { return a; }));
      }
    }
  }
}

void tls12Client(Trial& t) {
  TlsProfile p;
  p.priority = TlsProfile::kTls12Priority;
  // As the server, the harness refuses TLS 1.2 itself: the target never gets to say anything.
  static constexpr TlsAlert kAlert[] = {TlsAlert::protocolVersion};
  expectNoSession(t, kj::mv(p),
                  t.role() == Role::responder ? kj::ArrayPtr<const TlsAlert>(kAlert) : nullptr);
}
void noClientKey(Trial& t) {
  TlsProfile p;
  p.credential = TlsProfile::Credential::none;
  static constexpr TlsAlert kAlert[] = {TlsAlert::certificateRequired};
  expectNoSession(t, kj::mv(p), kAlert);
}
void x509Client(Trial& t) {
  TlsProfile p;
  p.credential = TlsProfile::Credential::x509;
  p.priority = "NORMAL:-VERS-ALL:+VERS-TLS1.3";
  static constexpr TlsAlert kAlert[] = {TlsAlert::unsupportedCertificate};
  expectNoSession(t, kj::mv(p), kAlert);
}
void ecdsaKey(Trial& t) {
  TlsProfile p;
  p.credential = TlsProfile::Credential::rawEcdsa;
  p.priority = TlsProfile::kEcdsaPriority;
  // A client whose key cannot sign any algorithm the server asked for sends an empty Certificate
  // (certificate_required); a server with such a key fails its own handshake before the target
  // can refuse anything.
  static constexpr TlsAlert kAlert[] = {TlsAlert::unsupportedCertificate,
                                        TlsAlert::certificateRequired};
  expectNoSession(t, kj::mv(p),
                  t.role() == Role::responder ? kj::ArrayPtr<const TlsAlert>(kAlert) : nullptr);
}
void noAlpn(Trial& t) {
  TlsProfile p;
  p.alpn = nullptr;
  static constexpr TlsAlert kAlert[] = {TlsAlert::noApplicationProtocol};
  expectNoSession(t, kj::mv(p), kAlert);
}
void otherAlpn(Trial& t) {
  TlsProfile p;
  p.alpn = kj::StringPtr("h2");
  static constexpr TlsAlert kAlert[] = {TlsAlert::noApplicationProtocol};
  expectNoSession(t, kj::mv(p), kAlert);
}

void noTickets(Trial& t) {
  TlsProfile p;
  p.inviteTickets = true;
  KJ_IF_MAYBE (c, t.establish(Trial::Open{nullptr, kj::mv(p), nullptr})) {
    t.expectAlive(*c);
    KJ_IF_MAYBE (facts, c->tls()) {
      (void)facts;
    }
    t.check(!c->sessionTicketReceived(), "TR-5", "no NewSessionTicket",
            kj::str("the target sent a session ticket"));
  }
}

// The ClientHello the target sent on `c` offers neither pre_shared_key (41) nor early_data (42).
bool offersNoPsk(Trial& t, Connection& c) {
  KJ_IF_MAYBE (facts, c.tls()) {
    for (auto type : facts->clientHelloExtensions) {
      if (!t.check(type != 41 && type != 42, "TR-5", "no pre_shared_key or early_data extension",
                   kj::str("ClientHello extension ", type))) {
        return false;
      }
    }
    return t.check(facts->clientHelloExtensions.size() > 0, "TR-5", "a ClientHello was seen",
                   kj::str("no extensions recorded"));
  }
  return false;
}

// The harness hands the target a session ticket on its first connection; a client that kept it
// would offer it on the next one, after the harness closed the first.
void clientOffersNoPsk(Trial& t) {
  TlsProfile tickets;
  tickets.sendTickets = true;
  KJ_IF_MAYBE (first, t.establish(Trial::Open{nullptr, kj::mv(tickets), nullptr})) {
    // The ticket travels right behind the handshake: a Pong means the target read past it.
    if (!offersNoPsk(t, *first) || !t.expectAlive(*first)) return;
    first->closeNotify().wait(t.io().waitScope);
    first->fin();
    t.step(kj::str("closed the first connection; the target dials again"));
    KJ_IF_MAYBE (second, t.open()) {
      offersNoPsk(t, *second);
    }
  }
}

// A client that resumes with the ticket of its first connection (if the target sent one: the
// case tr/TR-5/1 judges that) gets a full handshake or a refusal, never a resumed session.
void serverNeverResumes(Trial& t) {
  TlsProfile invite;
  invite.inviteTickets = true;
  kj::Maybe<kj::Array<kj::byte>> session;
  KJ_IF_MAYBE (first, t.establish(Trial::Open{nullptr, kj::mv(invite), nullptr})) {
    if (!t.expectAlive(*first)) return;
    session = first->sessionData();
  }
  KJ_IF_MAYBE (data, session) {
    TlsProfile resume;
    resume.inviteTickets = true;
    resume.resume = *data;
    t.step(kj::str("a second connection offers the target's ticket as pre_shared_key"));
    KJ_IF_MAYBE (result, t.tlsHandshake(Trial::Open{nullptr, kj::mv(resume), nullptr})) {
      KJ_IF_MAYBE (channel, result->tryGet<kj::Own<Channel>>()) {
        auto& facts = KJ_ASSERT_NONNULL((*channel)->facts());
        t.check(!facts.resumed, "TR-5", "a full raw-key handshake (or a refusal)",
                kj::str("the target resumed the session: ", facts.description));
      }
    }
  } else if (!t.failed()) {
    t.note(kj::str("the target sent no session ticket: there is nothing to resume"));
  }
}

// The next ServerHello (or HelloRetryRequest) on a raw stream, skipping change_cipher_spec; null
// when the target aborted (an alert or the end of the stream: allowed) or a failure was recorded.
kj::Maybe<ServerHelloFacts> readServerHello(Trial& t, RecordReader& reader) {
  for (;;) {
    auto record = t.timer()
                      .timeoutAfter(t.stepTimeout(), reader.next())
                      .catch_([](kj::Exception&&) -> kj::Maybe<TlsRecord> { return nullptr; })
                      .wait(t.io().waitScope);
    KJ_IF_MAYBE (r, record) {
      if (r->type == 20) continue;  // middlebox compatibility
      if (r->type == 21 && r->payload.size() == 2) {
        t.note(kj::str("the target aborted with alert ", r->payload[1]));
        return nullptr;
      }
      KJ_IF_MAYBE (hello, r->type == 22 ? parseServerHello(r->payload) : nullptr) {
        t.step(kj::str(hello->retryRequest ? "HelloRetryRequest" : "ServerHello", ", extensions ",
                       kj::strArray(hello->extensions, " ")));
        return kj::mv(*hello);
      }
      t.fail("TR-5", kj::str("a ServerHello, a HelloRetryRequest or an alert"),
             kj::str("a record of type ", r->type));
      return nullptr;
    }
    t.note(kj::str("the target ended the connection (or sent nothing within the step timeout)"));
    return nullptr;
  }
}

void send(Trial& t, kj::AsyncIoStream& stream, kj::Array<kj::byte> bytes) {
  stream.write(bytes.begin(), bytes.size())
      .catch_([&t](kj::Exception&& e) { t.note(kj::str("write failed: ", e.getDescription())); })
      .wait(t.io().waitScope);
}

bool usesNoPsk(Trial& t, const ServerHelloFacts& hello) {
  for (auto type : hello.extensions) {
    if (!t.check(type != 41, "TR-5", "no pre_shared_key in the server's answer",
                 kj::str("extension 41 (pre_shared_key)"))) {
      return false;
    }
  }
  return true;
}

// ClientHello with a PSK no one issued and no key share → HelloRetryRequest → ClientHello without
// the PSK (the sequence of CVE-2025-6395): the target never takes the PSK up and survives.
void pskThenRetryWithout(Trial& t) {
  KJ_IF_MAYBE (stream, t.rawStream()) {
    RecordReader reader(**stream);
    auto hello = ClientHelloBytes::fresh();
    hello.keyShare = false;
    hello.psk = true;
    t.step(kj::str("ClientHello offering pre_shared_key, with an empty key_share"));
    send(t, **stream, clientHelloRecord(hello));
    KJ_IF_MAYBE (first, readServerHello(t, reader)) {
      if (usesNoPsk(t, *first) && first->retryRequest) {
        hello.keyShare = true;
        hello.psk = false;
        t.step(kj::str("the second ClientHello: an X25519 key share, no pre_shared_key"));
        send(t, **stream, clientHelloRecord(hello));
        KJ_IF_MAYBE (second, readServerHello(t, reader)) {
          usesNoPsk(t, *second);
        }
      }
    }
  }
  if (t.failed()) return;
  KJ_IF_MAYBE (process, t.process()) {
    if (!t.check(process->running(), "TR-5", "the target survives the sequence",
                 process->status())) {
      return;
    }
  }
  KJ_IF_MAYBE (c, t.establish()) {
    t.expectAlive(*c);
  }
}

void helloAckCarriesKeyId(Trial& t) {
  KJ_IF_MAYBE (c, t.establish()) {
    KJ_IF_MAYBE (facts, c->tls()) {
      KJ_IF_MAYBE (h, c->theirs()) {
        t.check(facts->ed25519, "TR-3", "an Ed25519 key", kj::str("another key type"));
        t.check(
            facts->peerId.map([&](const PeerId& id) { return id == h->peerId; }).orDefault(false),
            "TR-6", "the peerId is the SHA-256 of the TLS key's SPKI", kj::str(h->peerId));
      }
    }
  }
}

void controlShowsTextForm(Trial& t) {
  KJ_IF_MAYBE (c, t.establish()) {
    KJ_IF_MAYBE (api, t.control()) {
      auto status = api->api().statusRequest().send().wait(t.io().waitScope);
      auto shown = kj::str(status.getStatus().getPeerId());
      KJ_IF_MAYBE (id, targetIdOn(t, *c)) {
        t.check(shown == peer::formatPeerId(*id), "TR-7", kj::str(peer::formatPeerId(*id)),
                kj::str(shown));
      }
    }
  }
}

Settings pinned(Settings::Trust trust) {
  Settings s;
  s.trust = trust;
  return s;
}

void pinnedAdmitsListed(Trial& t) {
  KJ_IF_MAYBE (c, t.establish()) {
    t.expectAlive(*c);
  }
}

void pinnedRejectsStranger(Trial& t) {
  KJ_IF_MAYBE (c, t.open()) {
    c->send(helloFrame(c->ours()));
    t.expectReject(*c, Code::UNTRUSTED);
  }
}

void pinnedInitiatorSendsNoHello(Trial& t) {
  KJ_IF_MAYBE (c, t.open()) {
    t.expectClose(*c);
  }
}

void plaintextToTlsTarget(Trial& t) {
  KJ_IF_MAYBE (stream, t.rawStream()) {
    auto& c = t.adopt(plaintextChannel(kj::mv(*stream)), t.announce());
    c.tolerateBadBytes();
    c.send(helloFrame(c.ours()));
    t.expectClose(c);
  }
}

void tlsToPlaintextTarget(Trial& t) {
  KJ_IF_MAYBE (stream, t.rawStream()) {
    auto& c = t.adopt(plaintextChannel(kj::mv(*stream)), t.announce());
    c.sendBytes(fromHex("16030100 f4010000 f0030312 34567890"), "the start of a TLS ClientHello");
    expectRejectOrError(t, c, Code::PROTOCOL);
  }
}

void cleanCloseAfterError(Trial& t) {
  KJ_IF_MAYBE (c, t.establish()) {
    c->sendBytes(fromHex("ffffffff 00000000"), "a broken frame");
    if (!t.expectConnectionError(*c, Code::PROTOCOL, "FR-3")) return;
    KJ_IF_MAYBE (closed, c->closeEvent()) {
      t.check(closed->clean(c->isTls()), "TR-12",
              c->isTls() ? "close_notify, then FIN" : "FIN at a frame boundary",
              closed->describe(c->isTls()));
    }
  }
}

void cleanCloseAfterReject(Trial& t) {
  auto a = t.announce();
  a.versionMin = a.versionMax = 7;
  KJ_IF_MAYBE (c, t.open(Trial::Open{nullptr, {}, a})) {
    c->send(helloFrame(c->ours()));
    if (!t.expectReject(*c, Code::UNSUPPORTED_VERSION, "HS-15")) return;
    KJ_IF_MAYBE (closed, c->closeEvent()) {
      t.check(closed->clean(c->isTls()), "TR-12",
              c->isTls() ? "close_notify, then FIN" : "FIN at a frame boundary",
              closed->describe(c->isTls()));
    }
  }
}

void oneHandshakePerConnection(Trial& t) {
  KJ_IF_MAYBE (c, t.establish()) {
    auto again = t.announce();
    c->send(helloFrame(again));
    t.expectConnectionError(*c, Code::PROTOCOL);
  }
}

}  // namespace

void transportCases(kj::Vector<CaseSpec>& out) {
  both(out, "tr/TR-1/1", "tr/TR-1/2", "TR-1", "a second handshake on one connection is refused",
       oneHandshakePerConnection);
  auto tls = [&](CaseSpec s, kj::StringPtr bad) {
    s.needs |= need::tlsOnly;
    s.badInputs = bad;
    out.add(kj::mv(s));
  };
  tls(spec("tr/TR-2/1", "TR-2", Role::responder, "a client offering TLS 1.2 only", tls12Client),
      "21");
  tls(spec("tr/TR-2/2", "TR-2", Role::initiator, "a server speaking TLS 1.2 only", tls12Client),
      "21");
  tls(spec("tr/TR-3/1", "TR-3", Role::responder, "a client with no key", noClientKey), "21");
  tls(spec("tr/TR-3/2", "TR-3", Role::responder, "a client with an X.509 certificate", x509Client),
      "21");
  tls(spec("tr/TR-3/3", "TR-3", Role::responder, "a client with an ECDSA raw key", ecdsaKey), "21");
  tls(spec("tr/TR-3/4", "TR-3", Role::initiator, "a server with an X.509 certificate", x509Client),
      "21");
  tls(spec("tr/TR-3/5", "TR-3", Role::initiator, "a server with an ECDSA raw key", ecdsaKey), "21");
  tls(spec("tr/TR-4/1", "TR-4", Role::responder, "a client offering no ALPN", noAlpn), nullptr);
  tls(spec("tr/TR-4/2", "TR-4", Role::responder, "a client offering only ALPN h2", otherAlpn),
      nullptr);
  tls(spec("tr/TR-4/3", "TR-4", Role::initiator, "a server selecting no ALPN", noAlpn), nullptr);
  tls(spec("tr/TR-5/1", "TR-5", Role::responder, "no session ticket even when invited", noTickets),
      nullptr);
  tls(spec("tr/TR-5/2", "TR-5", Role::initiator, "the ClientHello offers no PSK or early data",
           clientOffersNoPsk),
      "22");
  tls(spec("tr/TR-5/3", "TR-5", Role::responder, "a session ticket offered back is not resumed",
           serverNeverResumes),
      "22");
  tls(spec("tr/TR-5/4", "TR-5", Role::responder,
           "ClientHello with PSK, HelloRetryRequest, ClientHello without PSK: no PSK taken",
           pskThenRetryWithout),
      "22");
  tls(spec("tr/TR-6/1", "TR-6", Role::responder, "HelloAck.peerId is the TLS key's id",
           helloAckCarriesKeyId),
      nullptr);
  tls(spec("tr/TR-6/2", "TR-6", Role::initiator, "Hello.peerId is the TLS key's id",
           helloAckCarriesKeyId),
      nullptr);
  tls(spec("tr/TR-7/1", "TR-7", Role::responder, "the control API shows the id in text form",
           controlShowsTextForm, need::control),
      nullptr);
  tls(spec("tr/TR-8/1", "TR-8", Role::responder,
           "a pinned id given in lower case with spaces is accepted", pinnedAdmitsListed,
           need::launch, pinned(Settings::Trust::pinnedLowercase)),
      nullptr);
  out.add(spec("tr/TR-8/2", "TR-8", Role::responder,
               "a pinned id with a wrong check character names nobody (or the target refuses it)",
               pinnedRejectsStranger, need::launch | need::tlsOnly,
               pinned(Settings::Trust::pinnedBadCheck)));
  out.add(spec("tr/TR-9/1", "TR-9", Role::responder, "pinned: a stranger's Hello is rejected",
               pinnedRejectsStranger, need::launch | need::tlsOnly,
               pinned(Settings::Trust::pinnedOther)));
  out.add(spec("tr/TR-9/2", "TR-9", Role::responder, "pinned: a listed peer is admitted",
               pinnedAdmitsListed, need::launch | need::tlsOnly,
               pinned(Settings::Trust::pinnedHarness)));
  tls(spec("tr/TR-10/1", "TR-10", Role::initiator, "pinned: no Hello to an unlisted responder",
           pinnedInitiatorSendsNoHello, need::launch, pinned(Settings::Trust::pinnedOther)),
      "20");
  tls(spec("tr/TR-11/1", "TR-11", Role::responder,
           "a plaintext Hello to a TLS target gets no plaintext frame", plaintextToTlsTarget),
      nullptr);
  out.add(spec("tr/TR-11/2", "TR-11", Role::responder,
               "a TLS ClientHello to a plaintext target is a bad frame", tlsToPlaintextTarget,
               need::plaintextOnly));
  both(out, "tr/TR-12/1", "tr/TR-12/2", "TR-12", "the close after Error{0} is clean",
       cleanCloseAfterError);
  out.add(spec("tr/TR-12/3", "TR-12", Role::responder, "the close after Reject is clean",
               cleanCloseAfterReject));
}

}  // namespace shoal::conformance::cases

namespace shoal::conformance {
void transportCases(kj::Vector<CaseSpec>& out) {
  cases::transportCases(out);
}
}  // namespace shoal::conformance
