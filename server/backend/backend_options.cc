#include "server/backend/backend_options.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/un.h>

#include <cstring>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace memshard {
namespace backend {
namespace {

constexpr uint16_t kDefaultPort = 11211;

absl::Status Bad(absl::string_view entry, absl::string_view why) {
  return absl::InvalidArgumentError(
      absl::StrCat("bad backend '", entry, "': ", why));
}

absl::Status ParseWeight(absl::string_view entry, absl::string_view text,
                         uint32_t* weight) {
  if (!absl::SimpleAtoi(text, weight) || *weight == 0) {
    return Bad(entry, "weight must be an integer >= 1");
  }
  return absl::OkStatus();
}

bool AllDigits(absl::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
  }
  return true;
}

absl::StatusOr<BackendAddress> ParseOne(absl::string_view entry) {
  BackendAddress a;
  if (absl::StartsWith(entry, "/")) {
    // A unix path, maybe with ":weight" (a trailing ":digits").
    size_t colon = entry.rfind(':');
    absl::string_view path = entry;
    if (colon != absl::string_view::npos &&
        AllDigits(entry.substr(colon + 1))) {
      absl::Status s = ParseWeight(entry, entry.substr(colon + 1), &a.weight);
      if (!s.ok()) return s;
      path = entry.substr(0, colon);
    }
    if (path.size() >= sizeof(sockaddr_un{}.sun_path)) {
      return Bad(entry, "unix socket path too long");
    }
    a.host = std::string(path);
    return a;
  }
  absl::string_view rest = entry;
  if (absl::ConsumePrefix(&rest, "[")) {
    size_t close = rest.find(']');
    if (close == absl::string_view::npos) return Bad(entry, "missing ']'");
    a.host = std::string(rest.substr(0, close));
    rest.remove_prefix(close + 1);
    if (!rest.empty() && !absl::ConsumePrefix(&rest, ":")) {
      return Bad(entry, "expected ':' after ']'");
    }
  } else {
    size_t colon = rest.find(':');
    a.host = std::string(rest.substr(0, colon));
    rest = colon == absl::string_view::npos ? absl::string_view()
                                            : rest.substr(colon + 1);
  }
  if (a.host.empty()) return Bad(entry, "empty host");
  std::vector<absl::string_view> parts = absl::StrSplit(rest, ':');
  if (rest.empty()) parts.clear();
  if (parts.size() > 2) return Bad(entry, "expected host:port[:weight]");
  a.port = kDefaultPort;
  if (!parts.empty()) {
    uint32_t port;
    if (!absl::SimpleAtoi(parts[0], &port) || port == 0 || port > 65535) {
      return Bad(entry, "port must be 1..65535");
    }
    a.port = static_cast<uint16_t>(port);
  }
  if (parts.size() == 2) {
    absl::Status s = ParseWeight(entry, parts[1], &a.weight);
    if (!s.ok()) return s;
  }
  return a;
}

}  // namespace

std::string BackendAddress::ToString() const {
  if (is_unix()) return host;
  if (host.find(':') != std::string::npos) {
    return absl::StrCat("[", host, "]:", port);
  }
  return absl::StrCat(host, ":", port);
}

absl::StatusOr<std::vector<BackendAddress>> ParseBackendList(
    absl::string_view spec) {
  std::vector<BackendAddress> out;
  for (absl::string_view entry : absl::StrSplit(spec, ',')) {
    entry = absl::StripAsciiWhitespace(entry);
    if (entry.empty()) continue;
    absl::StatusOr<BackendAddress> a = ParseOne(entry);
    if (!a.ok()) return a.status();
    out.push_back(std::move(*a));
  }
  if (out.empty()) {
    return absl::InvalidArgumentError("no backends given");
  }
  return out;
}

absl::StatusOr<std::vector<ResolvedAddress>> ResolveBackends(
    const std::vector<BackendAddress>& addresses) {
  std::vector<ResolvedAddress> out;
  for (const BackendAddress& a : addresses) {
    ResolvedAddress r;
    if (a.is_unix()) {
      auto* un = reinterpret_cast<sockaddr_un*>(&r.addr);
      un->sun_family = AF_UNIX;
      memcpy(un->sun_path, a.host.data(), a.host.size());
      r.len = sizeof(sockaddr_un);
      out.push_back(r);
      continue;
    }
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* list = nullptr;
    int rc = getaddrinfo(a.host.c_str(), absl::StrCat(a.port).c_str(), &hints,
                         &list);
    if (rc != 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "cannot resolve backend ", a.ToString(), ": ", gai_strerror(rc)));
    }
    const addrinfo* pick = list;
    for (const addrinfo* ai = list; ai != nullptr; ai = ai->ai_next) {
      if (ai->ai_family == AF_INET) {
        pick = ai;
        break;
      }
    }
    memcpy(&r.addr, pick->ai_addr, pick->ai_addrlen);
    r.len = pick->ai_addrlen;
    freeaddrinfo(list);
    out.push_back(r);
  }
  return out;
}

}  // namespace backend
}  // namespace memshard
