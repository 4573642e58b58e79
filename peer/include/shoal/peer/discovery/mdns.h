// MdnsAgent: DNS-SD over mDNS ([DSC-15]) through the host's Avahi daemon, so that `avahi-browse -r
// _shoal._tcp` lists shoal peers and shoal peers find each other where multicast beacons are
// filtered but mDNS is not. It publishes our `_shoal._tcp` service on each chosen interface (TXT
// id=<peer id>, instance=<hex>, v=<versions>) and browses the same type there; every resolved
// service becomes a Sighting (FoundBy::mdns), every removed one a withdrawal.
//
// Avahi's client library makes blocking D-Bus round trips to the daemon, so it runs on a thread
// of its own that this object owns and joins: the event loop never waits for the daemon. The two
// sides talk through an eventfd each way and a mutex-guarded mailbox; the Avahi thread makes
// every Avahi call, the event loop thread none. No daemon → one log line, and discovery goes on
// with the beacon alone.
#pragma once

#include <kj/async-io.h>
#include <kj/io.h>
#include <kj/mutex.h>
#include <kj/thread.h>
#include <shoal/peer/discovery/announce.h>
#include <shoal/peer/discovery/candidates.h>
#include <shoal/peer/discovery/interfaces.h>

namespace shoal::peer::discovery {

// What the Avahi thread found, before the event loop checks it.
struct MdnsFinding {
  bool present;       // resolved (true) or removed (false)
  kj::String peerId;  // TXT id=, unchecked text
  uint64_t instanceId = 0;
  kj::String address;  // "host:port" of the resolved service
};

// What the event loop wants published and browsed.
struct MdnsWish {
  kj::String serviceName;
  uint16_t port = 0;
  kj::String peerId;
  uint64_t instanceId = 0;
  uint16_t versionMin = 1;
  uint16_t versionMax = 1;
  kj::Vector<uint32_t> interfaces;  // indexes
  kj::Vector<kj::String> names;     // their names, for link-local addresses

  bool operator==(const MdnsWish& other) const;
  MdnsWish clone() const;
};

class MdnsAgent {
 public:
  class Listener {
   public:
    virtual ~Listener() noexcept(false) = default;
    virtual void sighted(Sighting sighting) = 0;
    virtual void withdrawn(const PeerId& claimedId) = 0;
  };

  // Starts the Avahi thread; whether a daemon answers is known later, through deliver().
  MdnsAgent(kj::AsyncIoContext& io, Listener& listener);
  ~MdnsAgent() noexcept(false);  // stops and joins the Avahi thread
  KJ_DISALLOW_COPY(MdnsAgent);

  // What to publish, and where to publish and browse; the Avahi thread catches up.
  void publish(const Announce& local, kj::ArrayPtr<const NetworkInterface> interfaces);

  // Hands the Avahi thread's findings to the listener until cancelled. Resolves once mDNS has
  // ended for good (no daemon, or the daemon went away), after logging why once.
  kj::Promise<void> deliver();

  bool hasEnded() const;

  struct Mailbox {
    kj::Maybe<MdnsWish> wish;  // latest, replacing any not yet taken
    bool stop = false;
    kj::Vector<MdnsFinding> findings;
    kj::Maybe<kj::String> ended;   // why mDNS ended
    uint64_t findingsDropped = 0;  // over kMaxPendingFindings before the loop took them
  };
  static constexpr size_t kMaxPendingFindings = 1024;

 private:
  kj::Promise<void> deliverLoop();
  void take();

  Listener& listener;
  kj::AutoCloseFd toWorker;  // eventfd: the loop's wishes and the stop request
  int toLoopFd;              // eventfd: findings (owned by `toLoop`)
  kj::Own<kj::AsyncInputStream> toLoop;
  kj::MutexGuarded<Mailbox> mailbox;
  kj::Maybe<MdnsWish> lastWish;
  bool endedLogged = false;
  uint64_t badFindings = 0;
  uint64_t droppedReported = 0;
  kj::byte counter[8];
  // Declared last: joined first, while everything it uses is still there.
  kj::Own<kj::Thread> worker;
};

}  // namespace shoal::peer::discovery
