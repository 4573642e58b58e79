#include <shoal/peer/runtime/config.h>

#include <arpa/inet.h>
#include <shoal/codec/limits.h>
#include <shoal/codec/text.h>

namespace shoal::peer {

namespace {

constexpr size_t kMaxHostNameBytes = 253;  // RFC 1035, without the trailing dot
constexpr size_t kMaxLabelBytes = 63;

bool isIp(kj::StringPtr host, int family) {
  unsigned char buffer[16];
  return inet_pton(family, host.cStr(), buffer) == 1;
}

kj::Maybe<kj::String> checkHostName(kj::StringPtr host) {
  if (host.size() > kMaxHostNameBytes) return kj::str("host name longer than 253 bytes");
  bool numeric = true;
  size_t label = 0;
  for (size_t i = 0; i <= host.size(); ++i) {
    char c = i < host.size() ? host[i] : '.';
    if (c == '.') {
      if (label == 0 || label > kMaxLabelBytes) return kj::str("not a host name or IP address");
      if (host[i - 1] == '-' || host[i - label] == '-') {
        return kj::str("not a host name or IP address");
      }
      label = 0;
      continue;
    }
    bool letter = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
    bool digit = c >= '0' && c <= '9';
    if (!letter && !digit && c != '-') return kj::str("not a host name or IP address");
    numeric = numeric && digit;
    ++label;
  }
  if (numeric) return kj::str("not an IPv4 address");  // e.g. 300.1.2.3, 10.0.1
  return nullptr;
}

kj::Maybe<kj::String> checkHost(kj::StringPtr host, AddressUse use) {
  if (host.size() == 0) {
    return kj::str("no host before the port (e.g. ",
                   use == AddressUse::listen ? "0.0.0.0:4747" : "192.168.1.20:4747", ")");
  }
  if (host == "*") {
    if (use == AddressUse::listen) return nullptr;
    return kj::str("'*' is for listening only");
  }
  if (host.startsWith("[")) {
    if (!host.endsWith("]") || !isIp(kj::str(host.slice(1, host.size() - 1)), AF_INET6)) {
      return kj::str("not an IPv6 address in brackets");
    }
    return nullptr;
  }
  if (host.findFirst(':') != nullptr)
    return kj::str("write an IPv6 address in brackets: [::1]:4747");
  if (isIp(host, AF_INET)) return nullptr;
  return checkHostName(host);
}

kj::Maybe<kj::String> checkPort(kj::StringPtr port, AddressUse use) {
  if (port.size() == 0) return kj::str("no port after ':'");
  if (port.size() > 5) return kj::str("port ", port, " is above 65535");
  uint32_t value = 0;
  for (char c : port) {
    if (c < '0' || c > '9') return kj::str("port ", port, " is not a number");
    value = value * 10 + uint32_t(c - '0');
  }
  if (value > 65535) return kj::str("port ", port, " is above 65535");
  if (value == 0 && use == AddressUse::dial) return kj::str("port 0 is for listening only");
  return nullptr;
}

}  // namespace

kj::Maybe<kj::String> checkAddress(kj::StringPtr address, AddressUse use) {
  KJ_IF_MAYBE (colon, address.findLast(':')) {
    auto host = kj::str(address.slice(0, *colon));
    KJ_IF_MAYBE (problem, checkHost(host, use)) {
      return kj::mv(*problem);
    }
    return checkPort(address.slice(*colon + 1), use);
  }
  return kj::str("expected host:port");
}

kj::String hostOf(kj::StringPtr address) {
  KJ_IF_MAYBE (colon, address.findLast(':')) {
    return kj::str(address.slice(0, *colon));
  }
  return kj::str(address);
}

kj::Maybe<kj::String> checkName(kj::StringPtr name) {
  return codec::checkText(name, codec::Limits().maxNameBytes, codec::TextRule::name);
}

}  // namespace shoal::peer
