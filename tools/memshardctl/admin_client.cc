#include "tools/memshardctl/admin_client.h"

#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"

namespace memshard::ctl {
namespace {

absl::Status Errno(absl::string_view what, int error) {
  return absl::UnavailableError(absl::StrCat(what, ": ", strerror(error)));
}

// Waits for `events` on `fd` until `deadline`; false on timeout or error.
bool WaitFor(int fd, short events, absl::Time deadline) {
  for (;;) {
    const int64_t ms = absl::ToInt64Milliseconds(deadline - absl::Now());
    if (ms <= 0) return false;
    pollfd p{fd, events, 0};
    const int n = poll(&p, 1, static_cast<int>(ms));
    if (n > 0) return true;
    if (n == 0) return false;
    if (errno != EINTR) return false;
  }
}

// A non-blocking connect bounded by `deadline`; returns the connected fd.
absl::StatusOr<int> ConnectAddress(const sockaddr* addr, socklen_t length,
                                   absl::Time deadline) {
  const int fd =
      socket(addr->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return Errno("socket", errno);
  if (connect(fd, addr, length) != 0) {
    if (errno != EINPROGRESS) {
      const int error = errno;
      close(fd);
      return Errno("connect", error);
    }
    if (!WaitFor(fd, POLLOUT, deadline)) {
      close(fd);
      return absl::UnavailableError("connect: timed out");
    }
    int error = 0;
    socklen_t size = sizeof(error);
    getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &size);
    if (error != 0) {
      close(fd);
      return Errno("connect", error);
    }
  }
  if (addr->sa_family != AF_UNIX) {
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  }
  return fd;
}

}  // namespace

std::string Target::ToString() const {
  if (!unix_socket.empty()) return absl::StrCat("unix:", unix_socket);
  return absl::StrCat(host, ":", port);
}

absl::StatusOr<std::unique_ptr<AdminClient>> AdminClient::Connect(
    const Target& target, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  const std::string peer = target.ToString();
  auto fail = [&](const absl::Status& s) {
    return absl::UnavailableError(
        absl::StrCat("cannot connect to ", peer, ": ", s.message()));
  };
  if (!target.unix_socket.empty()) {
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (target.unix_socket.size() >= sizeof(addr.sun_path)) {
      return absl::InvalidArgumentError("unix socket path too long");
    }
    std::memcpy(addr.sun_path, target.unix_socket.data(),
                target.unix_socket.size());
    absl::StatusOr<int> fd = ConnectAddress(
        reinterpret_cast<const sockaddr*>(&addr), sizeof(addr), deadline);
    if (!fd.ok()) return fail(fd.status());
    return std::unique_ptr<AdminClient>(new AdminClient(*fd, peer, timeout));
  }
  if (target.port <= 0 || target.port > 65535) {
    return absl::InvalidArgumentError("--port must be between 1 and 65535");
  }
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_family = AF_UNSPEC;
  addrinfo* results = nullptr;
  const std::string port = absl::StrCat(target.port);
  const int rc =
      getaddrinfo(target.host.c_str(), port.c_str(), &hints, &results);
  if (rc != 0) {
    return fail(absl::UnavailableError(gai_strerror(rc)));
  }
  absl::Status last = absl::UnavailableError("no address");
  for (addrinfo* a = results; a != nullptr; a = a->ai_next) {
    absl::StatusOr<int> fd =
        ConnectAddress(a->ai_addr, a->ai_addrlen, deadline);
    if (fd.ok()) {
      freeaddrinfo(results);
      return std::unique_ptr<AdminClient>(new AdminClient(*fd, peer, timeout));
    }
    last = fd.status();
  }
  freeaddrinfo(results);
  return fail(last);
}

AdminClient::~AdminClient() { close(fd_); }

absl::Status AdminClient::Send(absl::string_view bytes) {
  const absl::Time deadline = absl::Now() + timeout_;
  while (!bytes.empty()) {
    const ssize_t n = send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n > 0) {
      bytes.remove_prefix(static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) &&
        WaitFor(fd_, POLLOUT, deadline)) {
      continue;
    }
    return absl::UnavailableError(absl::StrCat(
        "sending to ", peer_, ": ", n < 0 ? strerror(errno) : "timed out"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> AdminClient::ReadLine() {
  const absl::Time deadline = absl::Now() + timeout_;
  for (;;) {
    const size_t end = buffer_.find("\r\n");
    if (end != std::string::npos) {
      std::string line = buffer_.substr(0, end);
      buffer_.erase(0, end + 2);
      return line;
    }
    char chunk[16384];
    const ssize_t n = recv(fd_, chunk, sizeof(chunk), 0);
    if (n > 0) {
      buffer_.append(chunk, static_cast<size_t>(n));
      continue;
    }
    if (n == 0) {
      return absl::UnavailableError(
          absl::StrCat(peer_, " closed the connection"));
    }
    if (errno == EINTR) continue;
    if ((errno == EAGAIN || errno == EWOULDBLOCK) &&
        WaitFor(fd_, POLLIN, deadline)) {
      continue;
    }
    return absl::UnavailableError(absl::StrCat(
        "no reply from ", peer_, " within ", absl::FormatDuration(timeout_)));
  }
}

absl::StatusOr<StatList> AdminClient::Stats(absl::string_view group) {
  const std::string command =
      group.empty() ? "stats\r\n" : absl::StrCat("stats ", group, "\r\n");
  absl::Status sent = Send(command);
  if (!sent.ok()) return sent;
  StatList stats;
  for (;;) {
    absl::StatusOr<std::string> line = ReadLine();
    if (!line.ok()) return line.status();
    if (*line == "END") return stats;
    if (*line == "ERROR" || absl::StartsWith(*line, "CLIENT_ERROR") ||
        absl::StartsWith(*line, "SERVER_ERROR")) {
      return absl::NotFoundError(absl::StrCat(peer_, " answered \"", *line,
                                              "\" to \"stats ", group, "\""));
    }
    std::vector<std::string> parts =
        absl::StrSplit(*line, absl::MaxSplits(' ', 2));
    if (parts.size() != 3 || parts[0] != "STAT") {
      return absl::DataLossError(
          absl::StrCat("unexpected line from ", peer_, ": \"", *line, "\""));
    }
    stats.emplace_back(std::move(parts[1]), std::move(parts[2]));
  }
}

absl::StatusOr<std::string> AdminClient::Command(absl::string_view line) {
  absl::Status sent = Send(absl::StrCat(line, "\r\n"));
  if (!sent.ok()) return sent;
  return ReadLine();
}

}  // namespace memshard::ctl
