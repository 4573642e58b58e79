// §12 Discovery, for a target that announces itself. These cases run only where the harness was
// given the interface the target announces on (`--discovery IFACE`): inside a network namespace
// the test created (conformance/test/discovery.sh, CTest label `netns`), never on a real network.
// The harness joins the beacon group there and judges the target's Announce datagrams; it sends
// its own Announce from an ephemeral port to see that nothing answers it. For [DSC-7] and [DSC-8]
// it announces peers of its own and listens where the target may, and must not, dial them.
#include "common.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <shoal/codec/frame.h>
#include <shoal/codec/frames.h>
#include <shoal/codec/summary.h>
#include <shoal/conformance/beacon.h>
#include <shoal/conformance/tls-wire.h>

namespace shoal::conformance::cases {

namespace {

// The announce interval the cases launch the target with ({discover-ms}), and the longest wait
// for its next Announce: the interval with its jitter, twice.
constexpr uint32_t kIntervalMs = 300;
constexpr kj::Duration kAnnounceWait = 3 * kIntervalMs * kj::MILLISECONDS;
// The longest announce interval a target may use by default ([DSC-5]: 5 s ± 1 s).
constexpr kj::Duration kDefaultIntervalMax = 6 * kj::SECONDS;

Settings discovering(bool on = true, uint32_t intervalMs = kIntervalMs) {
  Settings s;
  s.discover = on;
  s.discoverMs = intervalMs;
  return s;
}

kj::Own<BeaconSocket> groupSocket(Trial& t, kj::StringPtr interface) {
  return kj::heap<BeaconSocket>(t.io().unixEventPort, interface, true);
}

// The next datagram on `s` from anyone but `except` (the harness's own sender), before `deadline`.
kj::Maybe<Datagram> nextFrom(Trial& t, BeaconSocket& s, kj::TimePoint deadline,
                             kj::StringPtr except = nullptr) {
  for (;;) {
    auto got = s.next(t.timer(), deadline).wait(t.io().waitScope);
    KJ_IF_MAYBE (d, got) {
      if (except != nullptr && d->source == except) continue;  // our own, looped back
      auto decoded = codec::decodeFrame(d->bytes);
      kj::String what;
      KJ_IF_MAYBE (f, decoded.tryGet<codec::InboundFrame>()) {
        what = frameText(kj::str(f->root()), 300);
      } else {
        what = kj::str("not one valid frame: ", decoded.get<codec::Failure>().message);
      }
      t.note(kj::str("datagram from ", d->source, " on interface ", d->interface, ", ",
                     d->bytes.size(), " bytes, TTL ", d->ttl, ": ", what));
      return kj::mv(*d);
    }
    return nullptr;
  }
}

kj::Maybe<Datagram> expectAnnounce(Trial& t, BeaconSocket& s, kj::StringPtr requirement,
                                   kj::Duration wait = kAnnounceWait) {
  auto got = nextFrom(t, s, t.timer().now() + wait);
  if (got == nullptr) {
    t.fail(requirement, kj::str("an Announce datagram to 239.255.77.47:4747"),
           kj::str("none within ", wait / kj::MILLISECONDS, " ms"));
  }
  return got;
}

// [DSC-9]: a slower interval, so that the window after the harness's Announce is far from the
// target's next periodic one (at least 4/5 of the interval away).
constexpr uint32_t kSlowIntervalMs = 3000;

// --- the target dialling the harness ([DSC-7], [DSC-8]) ------------------------------------------
//
// The harness announces peers of its own from addresses of the discovery interface and listens for
// the target's dials on every address of the namespace: which address and port a dial reached
// says what the target made of the datagram. Each round of a case sends from an address of its
// own (discovery.sh gives the interface 16 more), so that a per-source rate limit ([DSC-10]) never
// hides a datagram, and so that a dial tells which round caused it.

// What an Announce of the harness claims.
struct Claim {
  PeerId peerId;
  uint64_t instanceId;
  uint16_t port;
  kj::StringPtr name = "shoal-conform";
};

// A claim of a fresh peer whose id sorts above any other (first byte 0xff): a target that lets
// the lower id dial first ([DSC-13]) dials it at once.
Claim freshPeerAt(uint16_t port) {
  uint64_t seed = codec::randomNonZero();
  auto id = codec::sha256(kj::arrayPtr(reinterpret_cast<const kj::byte*>(&seed), sizeof(seed)));
  id.bytes[0] = 0xff;
  return Claim{id, codec::randomNonZero(), port};
}

FrameBuilder announceFrame(const Claim& c) {
  auto frame = codec::newFrame();
  auto w = codec::rootOf(*frame).initAnnounce();
  w.setPeerId(c.peerId.asBytes());
  w.setInstanceId(c.instanceId);
  w.setPort(c.port);
  w.setName(c.name);
  w.setVersionMin(1);
  w.setVersionMax(1);
  emptySummary().toWire(w.initSummary());
  return frame;
}

kj::Array<kj::byte> announceBytes(const Claim& c) {
  auto frame = announceFrame(c);
  return codec::encodeFrame(*frame);
}

// A valid Announce frame of exactly `size` bytes (a multiple of 8): unknown data words appended to
// its root, as a newer schema might send them. Re-encoding lays the frame out afresh, so the
// count of words is corrected from what one try gave.
kj::Array<kj::byte> announceOfSize(const Claim& c, size_t size) {
  auto frame = announceFrame(c);
  int64_t extra = int64_t(size - codec::encodedSize(*frame)) / int64_t(sizeof(capnp::word));
  for (int tries = 0; tries < 4 && extra >= 0; ++tries) {
    auto bytes = withExtraFields(*frame, uint16_t(extra), 0);
    if (bytes.size() == size) return bytes;
    extra -= (int64_t(bytes.size()) - int64_t(size)) / int64_t(sizeof(capnp::word));
  }
  KJ_FAIL_ASSERT("no Announce frame of this size", size);
}

kj::Array<kj::byte> concat(kj::ArrayPtr<const kj::byte> a, kj::ArrayPtr<const kj::byte> b) {
  auto out = kj::heapArray<kj::byte>(a.size() + b.size());
  memcpy(out.begin(), a.begin(), a.size());
  memcpy(out.begin() + a.size(), b.begin(), b.size());
  return out;
}

// A TCP listener on every address of the namespace at one port (0: a fresh one).
kj::Own<kj::ConnectionReceiver> listenEverywhere(Trial& t) {
  return t.io().provider->getNetwork().parseAddress("0.0.0.0:0").wait(t.io().waitScope)->listen();
}

uint16_t portOf(kj::ConnectionReceiver& l) {
  return uint16_t(l.getPort());
}

// One connection the target opened to the harness, and the address it dialled ("a.b.c.d:port").
struct Dial {
  kj::Own<kj::AsyncIoStream> stream;
  kj::String to;
  size_t on;  // which of the listeners it reached
};

kj::String localAddress(kj::AsyncIoStream& s) {
  struct sockaddr_in at = {};
  kj::uint length = sizeof(at);
  s.getsockname(reinterpret_cast<struct sockaddr*>(&at), &length);
  char text[INET_ADDRSTRLEN] = "?";
  inet_ntop(AF_INET, &at.sin_addr, text, sizeof(text));
  return kj::str(text, ':', ntohs(at.sin_port));
}

// The next dial that reaches any of `listeners` within `wait`; null when none does.
kj::Maybe<Dial> nextDial(Trial& t, kj::ArrayPtr<kj::ConnectionReceiver* const> listeners,
                         kj::Duration wait) {
  using Got = kj::Maybe<Dial>;
  kj::Promise<Got> first = t.timer().afterDelay(wait).then([]() -> Got { return nullptr; });
  for (size_t i = 0; i < listeners.size(); ++i) {
    first = listeners[i]
                ->accept()
                .then([i](kj::Own<kj::AsyncIoStream> s) -> Got {
                  auto to = localAddress(*s);
                  return Dial{kj::mv(s), kj::mv(to), i};
                })
                .exclusiveJoin(kj::mv(first));
  }
  auto got = first.wait(t.io().waitScope);
  KJ_IF_MAYBE (d, got) {
    t.note(kj::str("the target dialled ", d->to));
  }
  return got;
}

kj::Maybe<Dial> nextDial(Trial& t, kj::ConnectionReceiver& listener, kj::Duration wait) {
  kj::ConnectionReceiver* one[] = {&listener};
  return nextDial(t, one, wait);
}

// A dial of exactly `to` on `listener` within the step timeout; dials of other addresses (a
// target's redials of an earlier round) are passed over.
kj::Maybe<Dial> dialOf(Trial& t, kj::ConnectionReceiver& listener, kj::StringPtr to) {
  auto deadline = t.timer().now() + t.stepTimeout();
  while (t.timer().now() < deadline) {
    KJ_IF_MAYBE (d, nextDial(t, listener, deadline - t.timer().now())) {
      if (d->to == to) return kj::mv(*d);
    } else {
      break;
    }
  }
  return nullptr;
}

void announceFrom(Trial& t, kj::StringPtr iface, kj::StringPtr from, uint16_t port,
                  kj::ArrayPtr<const kj::byte> datagram) {
  BeaconSocket sender(t.io().unixEventPort, iface, from, port);
  sender.sendToGroup(datagram);
}

// Waits for an Announce of the target: it has joined the group by then, so datagrams sent from
// now on reach it (one sent before it joined would be lost, and read as "it did not dial").
void awaitTargetListening(Trial& t, kj::StringPtr iface) {
  auto group = groupSocket(t, iface);
  t.step(kj::str("waiting for the target's Announce: it hears the group from then on"));
  nextFrom(t, *group, t.timer().now() + kAnnounceWait);
}

// The interface's addresses other than its first (where the target's own Announce comes from);
// null, with a harness error, when there are fewer than `needed`.
kj::Maybe<kj::Array<kj::String>> roundSources(Trial& t, kj::StringPtr iface, size_t needed) {
  auto all = ipv4Addresses(iface);
  if (all.size() < needed + 1) {
    t.harnessError(kj::str("the discovery interface ", iface, " needs ", needed + 1,
                           " IPv4 addresses (one per round), it has ", all.size()));
    return nullptr;
  }
  kj::Vector<kj::String> rest;
  for (size_t i = 1; i < all.size(); ++i)
    rest.add(kj::mv(all[i]));
  return rest.releaseAsArray();
}

// One round of a [DSC-7] case: a datagram the target must act on (`valid`: it dials the port the
// round's claim names), or one it must drop silently (then a valid Announce, which it must dial).
struct Round {
  kj::StringPtr what;
  kj::Array<kj::byte> datagram;
  bool valid = false;
  // Sent right after one of the target's own Announces: a claim of its own id is then not
  // overwritten by its next one before a (wrong) dial of it would happen.
  bool afterTargetAnnounce = false;
};
using RoundMaker = kj::Function<Round(uint16_t goodPort, uint16_t badPort)>;

const char* const kNoDialler =
    "the target does not dial an announced peer ([DSC-8]: it MAY): what it makes of a datagram "
    "cannot be seen";

// Plays `makers` (the first must make a valid datagram: it shows the target dials at all), then
// looks for any dial of a dropped datagram's port: a dial may come late (a target may let a lower
// id dial first), so they are gathered at the end, where a whole quiet window has passed.
void playRounds(Trial& t, kj::StringPtr iface, kj::ArrayPtr<RoundMaker> makers) {
  KJ_IF_MAYBE (sources, roundSources(t, iface, makers.size())) {
    awaitTargetListening(t, iface);
    auto bad = listenEverywhere(t);
    kj::Vector<kj::StringPtr> whats;
    for (size_t i = 0; i < makers.size(); ++i) {
      auto good = listenEverywhere(t);
      auto round = makers[i](portOf(*good), portOf(*bad));
      auto& from = (*sources)[i];
      whats.add(round.what);
      if (round.afterTargetAnnounce) {
        auto group = groupSocket(t, iface);
        if (expectAnnounce(t, *group, "DSC-6") == nullptr) return;
      }
      t.step(kj::str("from ", from, ": ", round.what, " (", round.datagram.size(), " bytes)"));
      announceFrom(t, iface, from, 0, round.datagram);
      if (!round.valid) announceFrom(t, iface, from, 0, announceBytes(freshPeerAt(portOf(*good))));
      auto want = kj::str(from, ':', portOf(*good));
      if (dialOf(t, *good, want) == nullptr) {
        if (i == 0) {
          t.unimplemented(kj::str(kNoDialler));
        } else {
          t.fail("DSC-7",
                 kj::str("a dial to ", want,
                         round.valid ? ": the datagram is valid"
                                     : ", announced right after the invalid datagram"),
                 kj::str("none within ", t.stepTimeout() / kj::MILLISECONDS, " ms"));
        }
        return;
      }
    }
    t.step(kj::str("any dial of a dropped datagram's port ", portOf(*bad), "?"));
    KJ_IF_MAYBE (d, nextDial(t, *bad, t.quiet())) {
      auto host = kj::str(d->to.slice(0, KJ_ASSERT_NONNULL(d->to.findLast(':'))));
      kj::StringPtr what = "?";
      for (size_t i = 0; i < whats.size(); ++i)
        if ((*sources)[i] == host) what = whats[i];
      t.fail("DSC-7", kj::str("no dial to the port of a datagram it must drop"),
             kj::str("a dial to ", d->to, " after ", what));
    }
  }
}

// --- the cases -----------------------------------------------------------------------------------

void offByDefault(Trial& t) {
  KJ_IF_MAYBE (iface, t.discoveryInterface()) {
    auto group = groupSocket(t, *iface);
    t.step(kj::str("listening on the beacon group for the longest default interval"));
    auto got = nextFrom(t, *group, t.timer().now() + kDefaultIntervalMax);
    t.check(got == nullptr, "DSC-1", "no discovery datagram from a target launched without it",
            kj::str("a datagram from ",
                    got.map([](Datagram& d) { return kj::str(d.source); }).orDefault(kj::str())));
  }
}

void groupPortTtl(Trial& t) {
  KJ_IF_MAYBE (iface, t.discoveryInterface()) {
    auto group = groupSocket(t, *iface);
    KJ_IF_MAYBE (d, expectAnnounce(t, *group, "DSC-2")) {
      t.check(d->ttl == 1, "DSC-2", "TTL 1", kj::str("TTL ", d->ttl));
    }
  }
}

void oneFrameAtMost1200(Trial& t) {
  KJ_IF_MAYBE (iface, t.discoveryInterface()) {
    auto group = groupSocket(t, *iface);
    KJ_IF_MAYBE (d, expectAnnounce(t, *group, "DSC-4")) {
      if (!t.check(d->bytes.size() <= 1200, "DSC-4", "at most 1200 bytes",
                   kj::str(d->bytes.size(), " bytes"))) {
        return;
      }
      auto decoded = codec::decodeFrame(d->bytes);
      KJ_IF_MAYBE (failure, decoded.tryGet<codec::Failure>()) {
        t.fail("DSC-4", kj::str("exactly one valid frame"), kj::str(failure->message));
        return;
      }
      auto root = decoded.get<codec::InboundFrame>().root();
      t.check(root.isAnnounce(), "DSC-4", "an Announce", kj::str(root));
    }
  }
}

void announceCarriesItself(Trial& t) {
  KJ_IF_MAYBE (iface, t.discoveryInterface()) {
    auto group = groupSocket(t, *iface);
    KJ_IF_MAYBE (c, t.establish()) {
      auto& h = KJ_ASSERT_NONNULL(c->theirs());
      KJ_IF_MAYBE (d, expectAnnounce(t, *group, "DSC-6")) {
        auto decoded = codec::decodeFrame(d->bytes);
        KJ_IF_MAYBE (f, decoded.tryGet<codec::InboundFrame>()) {
          if (!t.check(f->root().isAnnounce(), "DSC-6", "an Announce", kj::str(f->root()))) return;
          auto a = f->root().getAnnounce();
          auto port = t.targetPort();
          auto id = targetIdOn(t, *c).orDefault(h.peerId);
          t.check(a.getPeerId() == id.asBytes() && a.getInstanceId() == h.instanceId &&
                      a.getPort() == port && a.getVersionMin() <= 1 && a.getVersionMax() >= 1 &&
                      codec::Summary::fromWire(a.getSummary()) == h.library,
                  "DSC-6",
                  kj::str("its own peerId and instanceId (as in HelloAck), TCP port ", port,
                          ", its version range, its library summary"),
                  kj::str(f->root()));
        } else {
          t.fail("DSC-6", kj::str("an Announce frame"),
                 kj::str(decoded.get<codec::Failure>().message));
        }
      }
    }
  }
}

void onlyTheChosenInterface(Trial& t) {
  KJ_IF_MAYBE (iface, t.discoveryInterface()) {
    KJ_IF_MAYBE (other, t.otherInterface()) {
      auto chosen = groupSocket(t, *iface);
      auto elsewhere = groupSocket(t, *other);
      // It announces on the chosen one (so it is running discovery at all) ...
      if (expectAnnounce(t, *chosen, "DSC-3") == nullptr) return;
      // ... and over several intervals nothing on the other.
      auto got = nextFrom(t, *elsewhere, t.timer().now() + 2 * kAnnounceWait);
      t.check(got == nullptr, "DSC-3",
              kj::str("no discovery datagram on ", *other, " (the target was given ", *iface, ")"),
              kj::str("a datagram on ", *other));
    } else {
      t.unimplemented(kj::str("needs a second interface (--discovery-other IFACE)"));
    }
  }
}

void noReplyToAnnounce(Trial& t) {
  KJ_IF_MAYBE (iface, t.discoveryInterface()) {
    auto group = groupSocket(t, *iface);
    // Right after one of its Announces; its next is 2.4 s away at the soonest.
    if (expectAnnounce(t, *group, "DSC-9", 2 * kSlowIntervalMs * kj::MILLISECONDS) == nullptr) {
      return;
    }
    BeaconSocket sender(t.io().unixEventPort, *iface, false);
    auto a = t.announce();
    auto bytes = announceBytes(Claim{a.peerId, a.instanceId, 9});
    t.step(kj::str("the harness announces itself from ", sender.localAddress()));
    sender.sendToGroup(bytes);
    auto deadline = t.timer().now() + kAnnounceWait;
    auto onGroup = nextFrom(t, *group, deadline, sender.localAddress());
    t.check(onGroup == nullptr, "DSC-9", "no datagram after the harness's Announce (on the group)",
            kj::str("a datagram"));
    auto direct = nextFrom(t, sender, t.timer().now() + t.quiet());
    t.check(direct == nullptr, "DSC-9", "no datagram to the harness's Announce's source",
            kj::str("a datagram"));
  }
}

// --- [DSC-7] and [DSC-8] -------------------------------------------------------------------------

Round validRound(kj::StringPtr what, uint16_t port) {
  return Round{what, announceBytes(freshPeerAt(port)), true};
}

// An Announce of a fresh peer at `port`, bent by `bend` before it is encoded.
kj::Array<kj::byte> bentAnnounce(uint16_t port, kj::Function<void(wire::Announce::Builder)> bend) {
  auto frame = announceFrame(freshPeerAt(port));
  bend(codec::rootOf(*frame).getAnnounce());
  return codec::encodeFrame(*frame);
}

// The datagrams of dsc/DSC-7/1, each announcing the port the target must never dial.
kj::Vector<RoundMaker> malformedRounds(PeerId own) {
  kj::Vector<RoundMaker> r;
  r.add([](uint16_t good, uint16_t) { return validRound("a valid Announce", good); });
  r.add([](uint16_t, uint16_t) { return Round{"an empty datagram", kj::heapArray<kj::byte>(0)}; });
  r.add([](uint16_t, uint16_t) {
    auto noise = kj::heapArray<kj::byte>(64);
    for (size_t i = 0; i < noise.size(); ++i)
      noise[i] = kj::byte(i * 151 + 7);
    return Round{"64 bytes of noise", kj::mv(noise)};
  });
  r.add([](uint16_t, uint16_t bad) {
    auto a = announceBytes(freshPeerAt(bad));
    return Round{"an Announce cut short by 8 bytes", kj::heapArray(a.slice(0, a.size() - 8))};
  });
  r.add([](uint16_t, uint16_t bad) {
    kj::byte zeros[8] = {};
    return Round{"an Announce followed by 8 more bytes",
                 concat(announceBytes(freshPeerAt(bad)), zeros)};
  });
  r.add([](uint16_t, uint16_t bad) {
    auto a = announceBytes(freshPeerAt(bad));
    auto body = a.slice(8, a.size());  // one segment: its table is one word
    uint32_t sizes[] = {uint32_t(body.size() / sizeof(capnp::word)), 4};
    return Round{"an Announce whose segment table promises a second segment that is not there",
                 concat(segmentTable(sizes), body)};
  });
  r.add([](uint16_t, uint16_t) {
    uint64_t words[] = {(uint64_t(1000) << 2) | (uint64_t(1) << 32)};
    return Round{"a root pointer 1000 words beyond the segment", rawFrame(words)};
  });
  r.add([](uint16_t, uint16_t bad) {
    return Round{"an Announce whose peerId is 31 bytes", bentAnnounce(bad, [](auto a) {
                   auto id = kj::heapArray(a.getPeerId().slice(0, 31));
                   a.setPeerId(id);
                 })};
  });
  r.add([](uint16_t, uint16_t bad) {
    return Round{"an Announce whose versionMin 2 is above its versionMax 1",
                 bentAnnounce(bad, [](auto a) { a.setVersionMin(2); })};
  });
  r.add([](uint16_t, uint16_t bad) {
    return Round{"an Announce with instanceId 0",
                 bentAnnounce(bad, [](auto a) { a.setInstanceId(0); })};
  });
  r.add([](uint16_t, uint16_t bad) {
    return Round{"an Announce whose name holds an escape character (U+001B)",
                 bentAnnounce(bad, [](auto a) { a.setName("shoal\x1b[31m"); })};
  });
  r.add([](uint16_t, uint16_t) {
    Announce hello;
    hello.peerId = freshPeerAt(0).peerId;
    return Round{"a Hello frame (not an Announce)", encode(*helloFrame(hello))};
  });
  r.add([](uint16_t, uint16_t) {
    return Round{"a frame of an unknown member (ordinal 99)", unionOnlyFrame(99)};
  });
  r.add([own](uint16_t, uint16_t bad) {
    auto claim = freshPeerAt(bad);
    claim.peerId = own;
    return Round{"an Announce carrying the target's own peerId", announceBytes(claim), false, true};
  });
  return r;
}

void malformedDatagramsDropped(Trial& t) {
  KJ_IF_MAYBE (iface, t.discoveryInterface()) {
    // A session first: the target's own id, and a connection that must outlive every datagram.
    KJ_IF_MAYBE (c, t.establish()) {
      KJ_IF_MAYBE (own, targetIdOn(t, *c)) {
        auto rounds = malformedRounds(*own);
        playRounds(t, *iface, rounds);
        t.expectAlive(*c, "DSC-7");
      }
    }
  }
}

void datagramSizeLimit(Trial& t) {
  KJ_IF_MAYBE (iface, t.discoveryInterface()) {
    kj::Vector<RoundMaker> r;
    r.add([](uint16_t good, uint16_t) { return validRound("a valid Announce", good); });
    r.add([](uint16_t good, uint16_t) {
      return Round{"a valid Announce of exactly 1200 bytes",
                   announceOfSize(freshPeerAt(good), 1200), true};
    });
    r.add([](uint16_t, uint16_t bad) {
      return Round{"a valid Announce frame of 1208 bytes", announceOfSize(freshPeerAt(bad), 1208)};
    });
    r.add([](uint16_t, uint16_t bad) {
      kj::byte more[8] = {};
      return Round{"a 1200-byte Announce frame and 8 more bytes (1208: its first 1200 are a frame)",
                   concat(announceOfSize(freshPeerAt(bad), 1200), more)};
    });
    playRounds(t, *iface, r);
  }
}

void dialsTheSourceAtThePort(Trial& t) {
  KJ_IF_MAYBE (iface, t.discoveryInterface()) {
    KJ_IF_MAYBE (sources, roundSources(t, *iface, 1)) {
      awaitTargetListening(t, *iface);
      auto& from = (*sources)[0];
      auto announced = listenEverywhere(t);
      auto udp = listenEverywhere(t);  // the datagram's UDP source port, as a TCP port too
      auto claim = freshPeerAt(portOf(*announced));
      // The name reads as another address at the announced port: nothing but `port` may be used.
      auto primary = kj::str(ipv4Addresses(*iface)[0], ':', portOf(*announced));
      claim.name = primary;
      auto want = kj::str(from, ':', portOf(*announced));
      t.step(kj::str("from ", from, ':', portOf(*udp), ": an Announce of port ", portOf(*announced),
                     " named \"", primary, "\""));
      announceFrom(t, *iface, from, portOf(*udp), announceBytes(claim));
      kj::ConnectionReceiver* both[] = {announced.get(), udp.get()};
      auto first = nextDial(t, both, t.stepTimeout());
      if (first == nullptr) {
        t.unimplemented(kj::str(kNoDialler));
        return;
      }
      // Its first dial and any other within the quiet window (redials) go to `want` only.
      for (auto d = kj::mv(first); d != nullptr; d = nextDial(t, both, t.quiet())) {
        auto& dial = KJ_ASSERT_NONNULL(d);
        if (!t.check(
                dial.to == want, "DSC-8",
                kj::str("a dial of the datagram's source address at the announced port, ", want),
                kj::str("a dial of ", dial.to))) {
          return;
        }
      }
    }
  }
}

// Accepts `dial` as TLS server with `key`, and plays the responder's side of the handshake saying
// `claimedId` in HelloAck. Null after a failure.
kj::Maybe<Connection&> answerDial(Trial& t, Dial dial, const Identity& key, PeerId claimedId) {
  auto handshake = tlsAccept(kj::mv(dial.stream), key, TlsProfile{});
  auto result =
      handshake
          .exclusiveJoin(t.timer().afterDelay(t.stepTimeout()).then([]() {
            return TlsResult(TlsRefused{kj::str("no TLS handshake in time"), nullptr, false});
          }))
          .wait(t.io().waitScope);
  KJ_IF_MAYBE (refused, result.tryGet<TlsRefused>()) {
    t.fail("DSC-8", kj::str("a TLS handshake on the dialled connection"), kj::mv(refused->reason));
    return nullptr;
  }
  auto says = t.announce();
  says.peerId = claimedId;
  auto& c = t.adopt(kj::mv(result.get<kj::Own<Channel>>()), says);
  if (t.expectNext(
          c, "Hello", [](auto f) { return f.isHello(); }, "HS-1") == nullptr) {
    return nullptr;
  }
  c.send(helloAckFrame(c.ours()));
  return c;
}

bool listsPeer(Trial& t, const PeerId& id) {
  KJ_IF_MAYBE (api, t.control()) {
    auto response = api->api().peersRequest().send().wait(t.io().waitScope);
    auto text = peer::formatPeerId(id);
    for (auto p : response.getPeers())
      if (p.getPeerId() == text) return true;
  }
  return false;
}

void identityOnlyFromTls(Trial& t) {
  KJ_IF_MAYBE (iface, t.discoveryInterface()) {
    KJ_IF_MAYBE (sources, roundSources(t, *iface, 2)) {
      awaitTargetListening(t, *iface);
      auto real = Identity::generate();  // the key of the peer the Announces name
      auto named = real->id();
      auto other = t.identity().id();  // the harness's key: what answers at the first address
      auto instance = codec::randomNonZero();
      auto first = listenEverywhere(t);
      auto at = kj::str((*sources)[0], ':', portOf(*first));
      auto claim = Claim{named, instance, portOf(*first)};
      t.step(kj::str("an Announce of ", peer::formatPeerId(named), " from ", (*sources)[0]));
      announceFrom(t, *iface, (*sources)[0], 0, announceBytes(claim));
      KJ_IF_MAYBE (d, dialOf(t, *first, at)) {
        t.step(kj::str("another key answers; its HelloAck claims the announced id"));
        KJ_IF_MAYBE (c, answerDial(t, kj::mv(*d), t.identity(), named)) {
          if (!t.expectClose(*c, t.stepTimeout(), "DSC-8")) return;
        } else {
          return;
        }
      } else {
        t.unimplemented(kj::str(kNoDialler));
        return;
      }
      t.step(kj::str("announced again; now the other key answers as itself"));
      announceFrom(t, *iface, (*sources)[0], 0, announceBytes(claim));
      KJ_IF_MAYBE (d, dialOf(t, *first, at)) {
        if (answerDial(t, kj::mv(*d), t.identity(), other) == nullptr) return;
      } else {
        t.fail("DSC-8", kj::str("another dial of ", at), kj::str("none"));
        return;
      }
      first = nullptr;  // its redials there are refused from now on
      // Wait for the session: the control API lists the key that answered, never the claim.
      auto deadline = t.timer().now() + t.stepTimeout();
      while (!listsPeer(t, other) && t.timer().now() < deadline && !t.failed())
        t.timer().afterDelay(20 * kj::MILLISECONDS).wait(t.io().waitScope);
      if (!t.check(listsPeer(t, other) && !listsPeer(t, named), "DSC-8",
                   kj::str("its peers: ", peer::formatPeerId(other), " (the TLS key), not ",
                           peer::formatPeerId(named), " (the Announce's claim)"),
                   kj::str("otherwise"))) {
        return;
      }
      // The named peer, heard at another address with the same instance: nothing proved it
      // connected, so the target dials it.
      auto second = listenEverywhere(t);
      auto there = kj::str((*sources)[1], ':', portOf(*second));
      t.step(kj::str("the same Announce of ", peer::formatPeerId(named), " from ", (*sources)[1]));
      announceFrom(t, *iface, (*sources)[1], 0,
                   announceBytes(Claim{named, instance, portOf(*second)}));
      KJ_IF_MAYBE (d, dialOf(t, *second, there)) {
        answerDial(t, kj::mv(*d), *real, named);
      } else {
        t.fail("DSC-8",
               kj::str("a dial of ", there, ": its session with another key says nothing about ",
                       peer::formatPeerId(named)),
               kj::str("none within ", t.stepTimeout() / kj::MILLISECONDS, " ms"));
      }
    }
  }
}

}  // namespace

void discoveryCases(kj::Vector<CaseSpec>& out) {
  constexpr uint32_t needs = need::launch | need::discovery;
  out.add(spec("dsc/DSC-1/1", "DSC-1", Role::responder, "launched without discovery: no datagram",
               offByDefault, needs, discovering(false)));
  out.add(spec("dsc/DSC-2/1", "DSC-2", Role::responder,
               "Announce datagrams go to 239.255.77.47:4747 with TTL 1", groupPortTtl, needs,
               discovering()));
  out.add(spec("dsc/DSC-4/1", "DSC-4", Role::responder,
               "a datagram is exactly one Announce frame, at most 1200 bytes", oneFrameAtMost1200,
               needs, discovering()));
  out.add(spec("dsc/DSC-6/1", "DSC-6", Role::responder,
               "the Announce carries its own id, instance, port, versions and summary",
               announceCarriesItself, needs, discovering()));
  out.add(spec("dsc/DSC-3/1", "DSC-3", Role::responder,
               "nothing on an interface the target was not given", onlyTheChosenInterface, needs,
               discovering()));
  out.add(spec("dsc/DSC-9/1", "DSC-9", Role::responder, "no datagram in reply to an Announce",
               noReplyToAnnounce, needs, discovering(true, kSlowIntervalMs)));
  out.add(spec("dsc/DSC-7/1", "DSC-7", Role::responder,
               "13 invalid datagrams: none dialled, each followed by a valid Announce that is; the "
               "session stays up",
               malformedDatagramsDropped, needs, discovering()));
  out.add(spec("dsc/DSC-7/2", "DSC-7", Role::responder,
               "1200 bytes is the datagram limit: an Announce of 1200 bytes is dialled, 1208 not",
               datagramSizeLimit, needs, discovering()));
  out.add(spec("dsc/DSC-8/1", "DSC-8", Role::responder,
               "it dials the datagram's source address at the announced port, nothing else",
               dialsTheSourceAtThePort, needs, discovering()));
  out.add(spec("dsc/DSC-8/2", "DSC-8", Role::initiator,
               "the peer is who TLS proves, not who the Announce names: a false HelloAck ends the "
               "dial, another key is listed as itself, the named peer is still dialled",
               identityOnlyFromTls, needs | need::tlsOnly | need::control, discovering()));
}

}  // namespace shoal::conformance::cases

namespace shoal::conformance {
void discoveryCases(kj::Vector<CaseSpec>& out) {
  cases::discoveryCases(out);
}
}  // namespace shoal::conformance
