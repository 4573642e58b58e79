// link-emulator: a userspace stand-in for `tc netem` where the kernel has no netem (the CI
// machines' kernels do not). It creates two TAP devices and forwards every Ethernet frame read
// from one into the other after a fixed delay, dropping a random share of them — per direction,
// with a bounded queue like netem's `limit`. The netns harness bridges one TAP to the LAN's
// switch and the other to a host's own bridge (peer/test/netns/lib.sh, lossy_link), so the host
// sits behind a lossy link on the same Ethernet segment — multicast beacons (TTL 1) cross it
// like everything else. A bandwidth cap is the kernel's tbf on the TAP devices, as with netem.
//
//   link-emulator --tap-a NAME --tap-b NAME [--delay-ab MS] [--delay-ba MS]
//                 [--loss-ab PERCENT] [--loss-ba PERCENT] [--limit FRAMES] [--seed N]
//
// "ab" is what the kernel sends out of tap-a, written into tap-b. Prints "ready" on stdout once
// both devices exist, and its counts on stdout when SIGTERM or SIGINT ends it. Test tooling
// only: it runs inside namespaces the tests create.
#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include <kj/debug.h>
#include <kj/io.h>
#include <kj/main.h>
#include <kj/vector.h>
#include <deque>

namespace {

constexpr size_t kMaxPacket = 65536;

// A non-negative number, the whole text of `t`, or null.
kj::Maybe<double> number(kj::StringPtr t) {
  char* end = nullptr;
  double value = strtod(t.cStr(), &end);
  if (t.size() == 0 || end != t.cStr() + t.size() || !(value >= 0)) return nullptr;
  return value;
}

int64_t monotonicNs() {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

kj::AutoCloseFd openTap(kj::StringPtr name) {
  int fd;
  KJ_SYSCALL(fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC));
  kj::AutoCloseFd owned(fd);
  struct ifreq request = {};
  request.ifr_flags = IFF_TAP | IFF_NO_PI;
  KJ_REQUIRE(name.size() < IFNAMSIZ, "interface name too long", name);
  memcpy(request.ifr_name, name.cStr(), name.size());
  KJ_SYSCALL(ioctl(fd, TUNSETIFF, &request), name);
  return owned;
}

// One direction of the link: frames waiting for their release time, in arrival order (the
// delay is fixed, so release order is arrival order).
struct Direction {
  int64_t delayNs = 0;
  uint32_t lossPerMillion = 0;
  size_t limit = 1000;
  std::deque<std::pair<int64_t, kj::Array<kj::byte>>> queue;
  uint64_t forwarded = 0, lost = 0, overflow = 0;
};

class LinkEmulator {
 public:
  explicit LinkEmulator(kj::ProcessContext& context) : context(context) {}

  kj::MainFunc getMain() {
    return kj::MainBuilder(context, "link-emulator",
                           "Forwards Ethernet frames between two TAP devices with delay and loss.")
        .addOptionWithArg({"tap-a"}, KJ_BIND_METHOD(*this, setA), "<name>", "first TAP device")
        .addOptionWithArg({"tap-b"}, KJ_BIND_METHOD(*this, setB), "<name>", "second TAP device")
        .addOptionWithArg({"delay-ab"}, KJ_BIND_METHOD(*this, setDelayAb), "<ms>", "a->b delay")
        .addOptionWithArg({"delay-ba"}, KJ_BIND_METHOD(*this, setDelayBa), "<ms>", "b->a delay")
        .addOptionWithArg({"loss-ab"}, KJ_BIND_METHOD(*this, setLossAb), "<percent>", "a->b loss")
        .addOptionWithArg({"loss-ba"}, KJ_BIND_METHOD(*this, setLossBa), "<percent>", "b->a loss")
        .addOptionWithArg({"limit"}, KJ_BIND_METHOD(*this, setLimit), "<frames>",
                          "queue per direction (default 1000, like netem)")
        .addOptionWithArg({"seed"}, KJ_BIND_METHOD(*this, setSeed), "<n>", "loss pattern seed")
        .callAfterParsing(KJ_BIND_METHOD(*this, run))
        .build();
  }

 private:
  using Validity = kj::MainBuilder::Validity;
  kj::ProcessContext& context;
  kj::String nameA, nameB;
  Direction ab, ba;
  uint64_t random = 1;

  Validity setA(kj::StringPtr n) {
    nameA = kj::str(n);
    return true;
  }
  Validity setB(kj::StringPtr n) {
    nameB = kj::str(n);
    return true;
  }
  static Validity milliseconds(kj::StringPtr t, int64_t& out) {
    KJ_IF_MAYBE (v, number(t)) {
      if (*v <= 3600000) {
        out = int64_t(*v * 1000000);
        return true;
      }
    }
    return "expected milliseconds";
  }
  static Validity percent(kj::StringPtr t, uint32_t& out) {
    KJ_IF_MAYBE (v, number(t)) {
      if (*v <= 100) {
        out = uint32_t(*v * 10000);
        return true;
      }
    }
    return "expected a percentage from 0 to 100";
  }
  Validity setDelayAb(kj::StringPtr t) { return milliseconds(t, ab.delayNs); }
  Validity setDelayBa(kj::StringPtr t) { return milliseconds(t, ba.delayNs); }
  Validity setLossAb(kj::StringPtr t) { return percent(t, ab.lossPerMillion); }
  Validity setLossBa(kj::StringPtr t) { return percent(t, ba.lossPerMillion); }
  Validity setLimit(kj::StringPtr t) {
    KJ_IF_MAYBE (v, number(t)) {
      if (*v >= 1 && *v <= 1000000) {
        ab.limit = ba.limit = size_t(*v);
        return true;
      }
    }
    return "expected a frame count from 1 to 1000000";
  }
  Validity setSeed(kj::StringPtr t) {
    KJ_IF_MAYBE (v, number(t)) {
      random = uint64_t(*v);
      return true;
    }
    return "expected a number";
  }

  uint32_t nextMillionth() {
    // splitmix64: a reproducible loss pattern per seed.
    uint64_t z = (random += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return uint32_t((z ^ (z >> 31)) % 1000000);
  }

  // Everything readable from `from` joins `d`'s queue (or is lost, or overflows).
  void readAll(int from, Direction& d, int64_t now) {
    kj::byte buffer[kMaxPacket];
    for (;;) {
      ssize_t n = read(from, buffer, sizeof(buffer));
      if (n < 0) {
        KJ_ASSERT(errno == EAGAIN || errno == EINTR, "reading a TAP device", errno);
        return;
      }
      if (nextMillionth() < d.lossPerMillion) {
        ++d.lost;
      } else if (d.queue.size() >= d.limit) {
        ++d.overflow;
      } else {
        d.queue.emplace_back(now + d.delayNs, kj::heapArray<kj::byte>(buffer, size_t(n)));
      }
    }
  }

  void release(int to, Direction& d, int64_t now) {
    while (!d.queue.empty() && d.queue.front().first <= now) {
      auto& packet = d.queue.front().second;
      // A full TAP queue drops the frame, as a full device queue would.
      if (write(to, packet.begin(), packet.size()) == ssize_t(packet.size())) ++d.forwarded;
      d.queue.pop_front();
    }
  }

  static int timeoutMs(const Direction& d, int64_t now) {
    if (d.queue.empty()) return -1;
    return int(kj::max(int64_t(0), (d.queue.front().first - now + 999999) / 1000000));
  }

  Validity run() {
    if (nameA.size() == 0 || nameB.size() == 0) return "--tap-a and --tap-b are required";
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    KJ_SYSCALL(sigprocmask(SIG_BLOCK, &stop, nullptr));
    int signals;
    KJ_SYSCALL(signals = signalfd(-1, &stop, SFD_CLOEXEC));
    kj::AutoCloseFd signalFd(signals);
    auto a = openTap(nameA), b = openTap(nameB);
    printf("ready\n");
    fflush(stdout);
    for (;;) {
      auto now = monotonicNs();
      int wait = timeoutMs(ab, now), other = timeoutMs(ba, now);
      if (wait < 0 || (other >= 0 && other < wait)) wait = other;
      struct pollfd fds[3] = {{a.get(), POLLIN, 0}, {b.get(), POLLIN, 0}, {signals, POLLIN, 0}};
      int ready = poll(fds, 3, wait);
      if (ready < 0 && errno == EINTR) continue;
      KJ_ASSERT(ready >= 0, errno);
      if (fds[2].revents != 0) break;
      now = monotonicNs();
      if (fds[0].revents & POLLIN) readAll(a.get(), ab, now);
      if (fds[1].revents & POLLIN) readAll(b.get(), ba, now);
      release(b.get(), ab, now);
      release(a.get(), ba, now);
    }
    printf(
        "a->b forwarded %llu lost %llu overflow %llu; b->a forwarded %llu lost %llu overflow "
        "%llu\n",
        (unsigned long long)ab.forwarded, (unsigned long long)ab.lost,
        (unsigned long long)ab.overflow, (unsigned long long)ba.forwarded,
        (unsigned long long)ba.lost, (unsigned long long)ba.overflow);
    fflush(stdout);
    return true;
  }
};

}  // namespace

KJ_MAIN(LinkEmulator)
