#include <shoal/peer/discovery/mdns.h>

#include <avahi-client/client.h>
#include <avahi-client/lookup.h>
#include <avahi-client/publish.h>
#include <avahi-common/alternative.h>
#include <avahi-common/error.h>
#include <avahi-common/malloc.h>
#include <avahi-common/simple-watch.h>
#include <avahi-common/strlst.h>
#include <kj/debug.h>
#include <kj/map.h>
#include <net/if.h>
#include <poll.h>
#include <shoal/codec/frames.h>
#include <sys/eventfd.h>
#include <unistd.h>

namespace shoal::peer::discovery {

namespace {

constexpr const char* kServiceType = "_shoal._tcp";
constexpr size_t kMaxServiceNameBytes = 63;  // one DNS label
constexpr size_t kMaxEntries = 256;          // services tracked, resolvers at once: a LAN flood
constexpr size_t kMaxResolvers = 32;

void signal(int fd) {
  uint64_t one = 1;
  // Only EAGAIN can fail here (the counter is near 2^64): the other side is signalled already.
  (void)!write(fd, &one, sizeof(one));
}

// The Avahi side: runs on its own thread, makes every Avahi call, talks to the event loop only
// through the mailbox and the two eventfds.
class AvahiWorker {
 public:
  AvahiWorker(kj::MutexGuarded<MdnsAgent::Mailbox>& mailbox, int wakeFd, int toLoopFd)
      : mailbox(mailbox), wakeFd(wakeFd), toLoopFd(toLoopFd) {}

  ~AvahiWorker() {
    for (auto* r : resolvers)
      avahi_service_resolver_free(r);
    for (auto& entry : browsers)
      avahi_service_browser_free(entry.value);
    if (group != nullptr) avahi_entry_group_free(group);
    if (client != nullptr) avahi_client_free(client);
    if (poll != nullptr) avahi_simple_poll_free(poll);
  }

  void run() {
    poll = avahi_simple_poll_new();
    KJ_ASSERT(poll != nullptr);
    avahi_simple_poll_set_func(poll, &AvahiWorker::pollWith, this);
    int error = 0;
    client = avahi_client_new(avahi_simple_poll_get(poll), AvahiClientFlags(0),
                              &AvahiWorker::onClient, this, &error);
    if (client == nullptr) {
      end(kj::str("no Avahi daemon reachable (", avahi_strerror(error), ")"));
      return;
    }
    while (!stopping()) {
      if (avahi_simple_poll_iterate(poll, -1) != 0) break;
      if (wakeSeen) {
        wakeSeen = false;
        apply();
      }
    }
  }

 private:
  kj::MutexGuarded<MdnsAgent::Mailbox>& mailbox;
  int wakeFd;
  int toLoopFd;
  AvahiSimplePoll* poll = nullptr;
  AvahiClient* client = nullptr;
  AvahiEntryGroup* group = nullptr;
  kj::HashMap<uint32_t, AvahiServiceBrowser*> browsers;
  kj::HashSet<AvahiServiceResolver*> resolvers;
  kj::HashMap<kj::String, kj::String> entries;  // "iface/proto/name" -> the id it resolved to
  kj::Maybe<MdnsWish> wish;
  kj::Maybe<MdnsWish> published;
  kj::String wishedName;
  kj::String serviceName;
  bool wakeSeen = true;  // apply the first wish as soon as the client runs
  bool running = false;

  bool stopping() { return mailbox.lockExclusive()->stop; }

  // Avahi's own poll, plus our wake eventfd: one blocking poll() for both.
  static int pollWith(struct pollfd* fds, unsigned int count, int timeout, void* self) {
    auto& worker = *reinterpret_cast<AvahiWorker*>(self);
    kj::Vector<struct pollfd> all(count + 1);
    all.addAll(kj::arrayPtr(fds, count));
    all.add(pollfd{worker.wakeFd, POLLIN, 0});
    int ready = ::poll(all.begin(), all.size(), timeout);
    if (ready < 0) return ready;
    for (unsigned int i = 0; i < count; ++i)
      fds[i].revents = all[i].revents;
    if (all[count].revents != 0) {
      uint64_t value;
      (void)!read(worker.wakeFd, &value, sizeof(value));
      worker.wakeSeen = true;
      --ready;
    }
    return ready;
  }

  void end(kj::String why) {
    {
      auto box = mailbox.lockExclusive();
      if (box->ended == nullptr) box->ended = kj::mv(why);
    }
    signal(toLoopFd);
  }

  void post(MdnsFinding finding) {
    {
      auto box = mailbox.lockExclusive();
      if (box->findings.size() >= MdnsAgent::kMaxPendingFindings) {
        ++box->findingsDropped;
        return;
      }
      box->findings.add(kj::mv(finding));
    }
    signal(toLoopFd);
  }

  void apply() {
    {
      auto box = mailbox.lockExclusive();
      KJ_IF_MAYBE (w, box->wish) {
        wish = kj::mv(*w);
        box->wish = nullptr;
      }
    }
    if (!running) return;
    KJ_IF_MAYBE (w, wish) {
      browse(*w);
      bool same = false;
      KJ_IF_MAYBE (p, published) {
        same = *p == *w;
      }
      if (!same) publish(*w);
    }
  }

  void browse(const MdnsWish& w) {
    kj::Vector<uint32_t> gone;
    for (auto& entry : browsers) {
      bool wanted = false;
      for (auto index : w.interfaces)
        wanted = wanted || index == entry.key;
      if (!wanted) gone.add(entry.key);
    }
    for (auto index : gone) {
      avahi_service_browser_free(KJ_ASSERT_NONNULL(browsers.find(index)));
      browsers.erase(index);
    }
    for (auto index : w.interfaces) {
      if (browsers.find(index) != nullptr) continue;
      auto* b =
          avahi_service_browser_new(client, AvahiIfIndex(index), AVAHI_PROTO_UNSPEC, kServiceType,
                                    nullptr, AvahiLookupFlags(0), &AvahiWorker::onBrowse, this);
      if (b == nullptr) {
        KJ_LOG(WARNING, "mDNS: cannot browse", index, avahi_strerror(avahi_client_errno(client)));
      } else {
        browsers.insert(index, b);
      }
    }
  }

  void publish(const MdnsWish& w) {
    // A collision renames us (rename()); a new wished name starts over from it.
    if (wishedName != w.serviceName) {
      wishedName = kj::str(w.serviceName);
      serviceName = kj::str(w.serviceName);
    }
    if (group == nullptr) {
      group = avahi_entry_group_new(client, &AvahiWorker::onGroup, this);
      if (group == nullptr) {
        KJ_LOG(WARNING, "mDNS: cannot publish", avahi_strerror(avahi_client_errno(client)));
        return;
      }
    } else {
      avahi_entry_group_reset(group);
    }
    published = nullptr;
    auto id = kj::str("id=", w.peerId);
    auto instance = kj::str("instance=", kj::hex(w.instanceId));
    auto versions = kj::str("v=", w.versionMin, "-", w.versionMax);
    AvahiStringList* txt = avahi_string_list_new(id.cStr(), instance.cStr(), versions.cStr(),
                                                 static_cast<const char*>(nullptr));
    KJ_DEFER(avahi_string_list_free(txt));
    for (int attempt = 0; attempt < 16; ++attempt) {
      int error = 0;
      for (auto index : w.interfaces) {
        error = avahi_entry_group_add_service_strlst(group, AvahiIfIndex(index), AVAHI_PROTO_UNSPEC,
                                                     AvahiPublishFlags(0), serviceName.cStr(),
                                                     kServiceType, nullptr, nullptr, w.port, txt);
        if (error < 0) break;
      }
      if (error == AVAHI_ERR_COLLISION) {
        rename();
        avahi_entry_group_reset(group);
        continue;
      }
      if (error < 0) {
        KJ_LOG(WARNING, "mDNS: cannot publish", avahi_strerror(error));
        return;
      }
      if (w.interfaces.size() > 0) avahi_entry_group_commit(group);
      published = w.clone();
      return;
    }
    KJ_LOG(WARNING, "mDNS: no free service name", serviceName);
  }

  void rename() {
    char* other = avahi_alternative_service_name(serviceName.cStr());
    serviceName = kj::str(other);
    avahi_free(other);
  }

  kj::String ifName(AvahiIfIndex index) {
    char name[IF_NAMESIZE] = {};
    if (if_indextoname(unsigned(index), name) == nullptr) return kj::str(index);
    return kj::str(name);
  }

  static void onClient(AvahiClient* c, AvahiClientState state, void* self) {
    auto& worker = *reinterpret_cast<AvahiWorker*>(self);
    switch (state) {
      case AVAHI_CLIENT_S_RUNNING:
        worker.client = c;  // also called from inside avahi_client_new()
        worker.running = true;
        worker.published = nullptr;
        worker.wakeSeen = true;
        break;
      case AVAHI_CLIENT_S_COLLISION:
      case AVAHI_CLIENT_S_REGISTERING:
        // The host name is being (re)registered: publish again once it runs.
        worker.running = false;
        if (worker.group != nullptr) avahi_entry_group_reset(worker.group);
        worker.published = nullptr;
        break;
      case AVAHI_CLIENT_FAILURE:
        worker.end(
            kj::str("the Avahi daemon went away (", avahi_strerror(avahi_client_errno(c)), ")"));
        avahi_simple_poll_quit(worker.poll);
        break;
      case AVAHI_CLIENT_CONNECTING: break;
    }
  }

  static void onGroup(AvahiEntryGroup* g, AvahiEntryGroupState state, void* self) {
    auto& worker = *reinterpret_cast<AvahiWorker*>(self);
    if (state == AVAHI_ENTRY_GROUP_COLLISION) {
      // Someone else on the link has our service name: take the next one and publish again.
      worker.rename();
      worker.published = nullptr;
      worker.wakeSeen = true;
    } else if (state == AVAHI_ENTRY_GROUP_FAILURE) {
      KJ_LOG(WARNING, "mDNS: publishing failed",
             avahi_strerror(avahi_client_errno(avahi_entry_group_get_client(g))));
    }
  }

  static kj::String entryKey(AvahiIfIndex interface, AvahiProtocol protocol, const char* name) {
    return kj::str(interface, "/", protocol, "/", name);
  }

  static void onBrowse(AvahiServiceBrowser*, AvahiIfIndex interface, AvahiProtocol protocol,
                       AvahiBrowserEvent event, const char* name, const char* type,
                       const char* domain, AvahiLookupResultFlags, void* self) {
    auto& worker = *reinterpret_cast<AvahiWorker*>(self);
    switch (event) {
      case AVAHI_BROWSER_NEW: {
        if (worker.resolvers.size() >= kMaxResolvers) return;  // resolved when it re-announces
        // IPv4: a host's mDNS records list all its addresses, not the families shoal listens
        // on, and the default listener (0.0.0.0) serves IPv4 only.
        auto* r = avahi_service_resolver_new(worker.client, interface, protocol, name, type, domain,
                                             AVAHI_PROTO_INET, AvahiLookupFlags(0),
                                             &AvahiWorker::onResolve, self);
        if (r != nullptr) worker.resolvers.insert(r);
        break;
      }
      case AVAHI_BROWSER_REMOVE: {
        auto key = entryKey(interface, protocol, name);
        KJ_IF_MAYBE (id, worker.entries.find(key)) {
          auto peerId = kj::mv(*id);
          worker.entries.erase(key);
          bool elsewhere = false;
          for (auto& entry : worker.entries)
            elsewhere = elsewhere || entry.value == peerId;
          if (!elsewhere) worker.post(MdnsFinding{false, kj::mv(peerId), 0, kj::str()});
        }
        break;
      }
      case AVAHI_BROWSER_FAILURE:
        KJ_LOG(WARNING, "mDNS: browsing failed", avahi_strerror(avahi_client_errno(worker.client)));
        break;
      case AVAHI_BROWSER_ALL_FOR_NOW:
      case AVAHI_BROWSER_CACHE_EXHAUSTED: break;
    }
  }

  static void onResolve(AvahiServiceResolver* r, AvahiIfIndex interface, AvahiProtocol protocol,
                        AvahiResolverEvent event, const char* name, const char*, const char*,
                        const char*, const AvahiAddress* address, uint16_t port,
                        AvahiStringList* txt, AvahiLookupResultFlags, void* self) {
    auto& worker = *reinterpret_cast<AvahiWorker*>(self);
    worker.resolvers.eraseMatch(r);  // erase(r) would take `r` for a row of the table
    KJ_DEFER(avahi_service_resolver_free(r));
    if (event != AVAHI_RESOLVER_FOUND || address == nullptr) return;
    auto id = txtValue(txt, "id");
    if (id == nullptr) return;  // not a shoal peer we can name
    uint64_t instance = 0;
    KJ_IF_MAYBE (hex, txtValue(txt, "instance")) {
      instance = parseHex(*hex);
    }
    char text[AVAHI_ADDRESS_STR_MAX] = {};
    avahi_address_snprint(text, sizeof(text), address);
    kj::String host;
    if (address->proto == AVAHI_PROTO_INET6) {
      bool linkLocal =
          address->data.ipv6.address[0] == 0xfe && (address->data.ipv6.address[1] & 0xc0) == 0x80;
      host = linkLocal ? kj::str("[", text, "%", worker.ifName(interface), "]")
                       : kj::str("[", text, "]");
    } else {
      host = kj::str(text);
    }
    auto key = entryKey(interface, protocol, name);
    if (worker.entries.find(key) == nullptr && worker.entries.size() >= kMaxEntries) return;
    auto peerId = kj::mv(KJ_ASSERT_NONNULL(id));
    worker.entries.upsert(kj::mv(key), kj::str(peerId),
                          [](kj::String& old, kj::String&& fresh) { old = kj::mv(fresh); });
    worker.post(MdnsFinding{true, kj::mv(peerId), instance, kj::str(host, ":", port)});
  }

  // 0 ("not told") unless exactly 1..16 hex digits: text from the network.
  static uint64_t parseHex(kj::StringPtr text) {
    if (text.size() == 0 || text.size() > 16) return 0;
    uint64_t value = 0;
    for (char c : text) {
      int digit = c >= '0' && c <= '9'   ? c - '0'
                  : c >= 'a' && c <= 'f' ? c - 'a' + 10
                  : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                         : -1;
      if (digit < 0) return 0;
      value = value << 4 | uint64_t(digit);
    }
    return value;
  }

  static kj::Maybe<kj::String> txtValue(AvahiStringList* txt, const char* key) {
    auto* item = avahi_string_list_find(txt, key);
    if (item == nullptr) return nullptr;
    char* k = nullptr;
    char* value = nullptr;
    if (avahi_string_list_get_pair(item, &k, &value, nullptr) < 0) return nullptr;
    KJ_DEFER({
      avahi_free(k);
      avahi_free(value);
    });
    if (value == nullptr) return nullptr;
    return kj::str(value);
  }
};

int makeEventFd() {
  int fd;
  KJ_SYSCALL(fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  return fd;
}

}  // namespace

MdnsWish MdnsWish::clone() const {
  MdnsWish copy;
  copy.serviceName = kj::str(serviceName);
  copy.port = port;
  copy.peerId = kj::str(peerId);
  copy.instanceId = instanceId;
  copy.versionMin = versionMin;
  copy.versionMax = versionMax;
  copy.interfaces.addAll(interfaces);
  for (auto& n : names)
    copy.names.add(kj::str(n));
  return copy;
}

bool MdnsWish::operator==(const MdnsWish& other) const {
  if (serviceName != other.serviceName || port != other.port || peerId != other.peerId ||
      instanceId != other.instanceId || versionMin != other.versionMin ||
      versionMax != other.versionMax || interfaces.size() != other.interfaces.size()) {
    return false;
  }
  for (auto i : kj::indices(interfaces)) {
    if (interfaces[i] != other.interfaces[i]) return false;
  }
  return true;
}

MdnsAgent::MdnsAgent(kj::AsyncIoContext& io, Listener& listener)
    : listener(listener),
      toWorker(makeEventFd()),
      toLoopFd(makeEventFd()),
      toLoop(io.lowLevelProvider->wrapInputFd(toLoopFd,
                                              kj::LowLevelAsyncIoProvider::TAKE_OWNERSHIP |
                                                  kj::LowLevelAsyncIoProvider::ALREADY_CLOEXEC |
                                                  kj::LowLevelAsyncIoProvider::ALREADY_NONBLOCK)) {
  worker = kj::heap<kj::Thread>([this]() {
    // Nothing may escape the thread: kj::Thread would rethrow it from our destructor.
    KJ_IF_MAYBE (exception, kj::runCatchingExceptions([this]() {
                   AvahiWorker avahi(mailbox, toWorker.get(), toLoopFd);
                   avahi.run();
                 })) {
      auto box = mailbox.lockExclusive();
      if (box->ended == nullptr) box->ended = kj::str("mDNS failed: ", exception->getDescription());
    }
    signal(toLoopFd);
  });
}

MdnsAgent::~MdnsAgent() noexcept(false) {
  mailbox.lockExclusive()->stop = true;
  signal(toWorker.get());
  // `worker` is destroyed first and joins the thread.
}

bool MdnsAgent::hasEnded() const {
  return mailbox.lockShared()->ended != nullptr;
}

void MdnsAgent::publish(const Announce& local, kj::ArrayPtr<const NetworkInterface> interfaces) {
  auto name = codec::sanitizeText(local.name, kMaxServiceNameBytes);
  MdnsWish wish;
  wish.serviceName = name.size() > 0 ? kj::mv(name) : kj::str("shoal");
  wish.port = local.port;
  wish.peerId = formatPeerId(local.peerId);
  wish.instanceId = local.instanceId;
  wish.versionMin = local.versionMin;
  wish.versionMax = local.versionMax;
  for (auto& i : interfaces) {
    wish.interfaces.add(i.index);
    wish.names.add(kj::str(i.name));
  }
  KJ_IF_MAYBE (last, lastWish) {
    if (*last == wish) return;  // the summary changes often; nothing mDNS carries did
  }
  lastWish = wish.clone();
  mailbox.lockExclusive()->wish = kj::mv(wish);
  signal(toWorker.get());
}

kj::Promise<void> MdnsAgent::deliver() {
  take();
  if (hasEnded()) return kj::READY_NOW;
  return deliverLoop();
}

kj::Promise<void> MdnsAgent::deliverLoop() {
  return toLoop->read(counter, sizeof(counter)).then([this]() -> kj::Promise<void> {
    take();
    if (hasEnded()) return kj::READY_NOW;
    return deliverLoop();
  });
}

void MdnsAgent::take() {
  kj::Vector<MdnsFinding> findings;
  kj::Maybe<kj::String> ended;
  uint64_t dropped = 0;
  {
    auto box = mailbox.lockExclusive();
    findings = kj::mv(box->findings);
    dropped = box->findingsDropped;
    KJ_IF_MAYBE (why, box->ended) {
      ended = kj::str(*why);
    }
  }
  for (auto& f : findings) {
    // TXT records are anyone's words: an id that does not parse names nobody.
    KJ_IF_MAYBE (id, parsePeerId(f.peerId)) {
      if (f.present) {
        listener.sighted(Sighting{FoundBy::mdns, *id, f.instanceId, kj::mv(f.address)});
      } else {
        listener.withdrawn(*id);
      }
    } else if (++badFindings, (badFindings & (badFindings - 1)) == 0) {
      KJ_LOG(INFO, "mDNS: a _shoal._tcp service without a valid id", badFindings);
    }
  }
  if (dropped > droppedReported) {
    droppedReported = dropped;
    KJ_LOG(WARNING, "mDNS: findings dropped, the event loop fell behind", dropped);
  }
  KJ_IF_MAYBE (why, ended) {
    if (!endedLogged) {
      endedLogged = true;
      KJ_LOG(WARNING, "mDNS off, beacon only", *why);
    }
  }
}

}  // namespace shoal::peer::discovery
