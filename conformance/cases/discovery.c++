// §12 Discovery, for a target that announces itself. These cases run only where the harness was
// given the interface the target announces on (`--discovery IFACE`): inside a network namespace
// the test created (conformance/test/discovery.sh, CTest label `netns`), never on a real network.
// The harness joins the beacon group there and judges the target's Announce datagrams; it sends
// its own Announce from an ephemeral port to see that nothing answers it.
#include "common.h"

#include <shoal/codec/frame.h>
#include <shoal/codec/frames.h>
#include <shoal/codec/summary.h>
#include <shoal/conformance/beacon.h>

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
    auto frame = codec::newFrame();
    auto w = codec::rootOf(*frame).initAnnounce();
    w.setPeerId(a.peerId.asBytes());
    w.setInstanceId(a.instanceId);
    w.setPort(9);
    w.setName("shoal-conform");
    w.setVersionMin(1);
    w.setVersionMax(1);
    emptySummary().toWire(w.initSummary());
    auto bytes = codec::encodeFrame(*frame);
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
}

}  // namespace shoal::conformance::cases

namespace shoal::conformance {
void discoveryCases(kj::Vector<CaseSpec>& out) {
  cases::discoveryCases(out);
}
}  // namespace shoal::conformance
