// The TLS ceiling: GnuTLS alone streaming files over loopback TCP, with no protocol on top — the
// baseline for shoal's TLS bulk transfer (docs/benchmarks.md). A sender thread reads the files and
// sends them through one TLS 1.3 session (GnuTLS's NORMAL order: AES-256-GCM, as shoal
// negotiates; the server's certificate --cert/--key is not checked, trust is not measured); a
// receiver thread decrypts them and writes them into --out (the same tmpfs as the transfers it is
// compared with) or drops them (--sink). Prints one JSON object with the time from the end of the
// handshake until the receiver holds every byte.
#include <arpa/inet.h>
#include <fcntl.h>
#include <gnutls/gnutls.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <kj/array.h>
#include <kj/debug.h>
#include <kj/io.h>
#include <kj/main.h>
#include <kj/thread.h>
#include <kj/time.h>
#include <kj/vector.h>

namespace shoal::bench {
namespace {

constexpr kj::StringPtr kPriority = "NORMAL:-VERS-ALL:+VERS-TLS1.3"_kj;
constexpr size_t kBlock = 1 << 20;  // bytes read and handed to GnuTLS at a time

void check(int rc, const char* what) {
  KJ_REQUIRE(rc >= 0, what, gnutls_strerror(rc));
}

struct Input {
  kj::String path;
  kj::String name;  // the basename, for the output file
  uint64_t size;
};

class Session {
 public:
  Session(int fd, gnutls_certificate_credentials_t credentials, bool server) {
    check(gnutls_init(&session, server ? GNUTLS_SERVER : GNUTLS_CLIENT), "gnutls_init");
    check(gnutls_priority_set_direct(session, kPriority.cStr(), nullptr), "priority");
    check(gnutls_credentials_set(session, GNUTLS_CRD_CERTIFICATE, credentials), "credentials");
    gnutls_transport_set_int(session, fd);
    int rc;
    do {
      rc = gnutls_handshake(session);
    } while (rc < 0 && !gnutls_error_is_fatal(rc));
    check(rc, "handshake");
  }
  ~Session() { gnutls_deinit(session); }
  KJ_DISALLOW_COPY(Session);

  void send(const kj::byte* data, size_t size) {
    gnutls_record_cork(session);
    while (size > 0) {
      ssize_t n = gnutls_record_send(session, data, size);
      if (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED) continue;
      check(int(n), "record_send");
      data += n;
      size -= size_t(n);
    }
    int rc;
    do {
      rc = gnutls_record_uncork(session, GNUTLS_RECORD_WAIT);
    } while (rc == GNUTLS_E_AGAIN || rc == GNUTLS_E_INTERRUPTED);
    check(rc, "uncork");
  }
  size_t receive(kj::byte* data, size_t size) {
    for (;;) {
      ssize_t n = gnutls_record_recv(session, data, size);
      if (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED) continue;
      check(int(n), "record_recv");
      KJ_REQUIRE(n > 0, "the sender closed early");
      return size_t(n);
    }
  }
  kj::String cipher() { return kj::str(gnutls_cipher_get_name(gnutls_cipher_get(session))); }

 private:
  gnutls_session_t session;
};

struct Credentials {
  gnutls_certificate_credentials_t server, client;
  Credentials(kj::StringPtr cert, kj::StringPtr key) {
    check(gnutls_certificate_allocate_credentials(&server), "credentials");
    check(gnutls_certificate_allocate_credentials(&client), "credentials");
    check(
        gnutls_certificate_set_x509_key_file(server, cert.cStr(), key.cStr(), GNUTLS_X509_FMT_PEM),
        "certificate");
  }
  ~Credentials() {
    gnutls_certificate_free_credentials(server);
    gnutls_certificate_free_credentials(client);
  }
  KJ_DISALLOW_COPY(Credentials);
};

void sendAll(Session& tls, kj::ArrayPtr<const Input> inputs) {
  auto buffer = kj::heapArray<kj::byte>(kBlock);
  for (auto& input : inputs) {
    int fd;
    KJ_SYSCALL(fd = open(input.path.cStr(), O_RDONLY | O_CLOEXEC), input.path);
    kj::AutoCloseFd file(fd);
    for (uint64_t at = 0; at < input.size;) {
      ssize_t n;
      KJ_SYSCALL(n = pread(fd, buffer.begin(), kBlock, off_t(at)));
      KJ_REQUIRE(n > 0, "file shrank", input.path);
      tls.send(buffer.begin(), size_t(n));
      at += uint64_t(n);
    }
  }
}

void receiveAll(Session& tls, kj::ArrayPtr<const Input> inputs, kj::Maybe<kj::StringPtr> out) {
  auto buffer = kj::heapArray<kj::byte>(kBlock);
  for (auto& input : inputs) {
    kj::AutoCloseFd file;
    KJ_IF_MAYBE (dir, out) {
      auto path = kj::str(*dir, '/', input.name);
      int fd;
      KJ_SYSCALL(fd = open(path.cStr(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644), path);
      file = kj::AutoCloseFd(fd);
    }
    for (uint64_t left = input.size; left > 0;) {
      // Fill the block from records, then one write, as a receiver writing 1 MiB chunks would.
      size_t want = size_t(kj::min(uint64_t(kBlock), left)), got = 0;
      while (got < want)
        got += tls.receive(buffer.begin() + got, want - got);
      if (file != nullptr) {
        KJ_SYSCALL(write(file, buffer.begin(), got));
      }
      left -= got;
    }
  }
}

int main(kj::ArrayPtr<const kj::StringPtr> args) {
  kj::Maybe<kj::StringPtr> out;
  kj::StringPtr cert, key;
  kj::Vector<Input> inputs;
  uint64_t total = 0;
  for (size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--out" && i + 1 < args.size()) {
      out = args[++i];
    } else if (args[i] == "--cert" && i + 1 < args.size()) {
      cert = args[++i];
    } else if (args[i] == "--key" && i + 1 < args.size()) {
      key = args[++i];
    } else if (args[i] == "--sink") {
      out = nullptr;
    } else {
      struct stat st;
      KJ_SYSCALL(stat(args[i].cStr(), &st), args[i]);
      kj::String name = kj::str(args[i]);
      KJ_IF_MAYBE (slash, args[i].findLast('/')) {
        name = kj::str(args[i].slice(*slash + 1));
      }
      inputs.add(Input{kj::str(args[i]), kj::mv(name), uint64_t(st.st_size)});
      total += uint64_t(st.st_size);
    }
  }
  KJ_REQUIRE(inputs.size() > 0 && cert.size() > 0 && key.size() > 0,
             "usage: shoal-bench-tls-stream --cert PEM --key PEM [--out DIR | --sink] FILE...");
  check(gnutls_global_init(), "global_init");
  Credentials credentials(cert, key);

  int listener;
  KJ_SYSCALL(listener = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  kj::AutoCloseFd listenFd(listener);
  struct sockaddr_in addr = {};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  KJ_SYSCALL(bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)));
  KJ_SYSCALL(listen(listener, 1));
  socklen_t len = sizeof(addr);
  KJ_SYSCALL(getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len));

  // Both ends start timing when their handshake is done; the receiver's clock decides.
  kj::TimePoint start = kj::origin<kj::TimePoint>(), end = start;
  kj::String cipher;
  {
    kj::Thread receiver([&]() {
      int fd;
      KJ_SYSCALL(fd = accept4(listener, nullptr, nullptr, SOCK_CLOEXEC));
      kj::AutoCloseFd conn(fd);
      Session tls(fd, credentials.server, true);
      start = kj::systemPreciseMonotonicClock().now();
      receiveAll(tls, inputs, out);
      end = kj::systemPreciseMonotonicClock().now();
      cipher = tls.cipher();
    });
    int fd;
    KJ_SYSCALL(fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    kj::AutoCloseFd conn(fd);
    KJ_SYSCALL(connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)));
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    Session tls(fd, credentials.client, false);
    sendAll(tls, inputs);
  }
  double seconds = double((end - start) / kj::NANOSECONDS) / 1e9;
  printf("{\"bytes\": %llu, \"seconds\": %.4f, \"gbps\": %.3f, \"cipher\": \"%s\"}\n",
         (unsigned long long)total, seconds, double(total) / seconds / 1e9, cipher.cStr());
  gnutls_global_deinit();
  return 0;
}

}  // namespace
}  // namespace shoal::bench

int main(int argc, char** argv) {
  kj::Vector<kj::StringPtr> args;
  for (int i = 1; i < argc; ++i)
    args.add(argv[i]);
  return shoal::bench::main(args);
}
