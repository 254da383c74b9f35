#include "testing/blocking_client.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <utility>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "gtest/gtest.h"

namespace memshard {
namespace {

absl::Status ErrnoStatus(absl::string_view what, int err) {
  return absl::UnavailableError(absl::StrCat(what, ": ", strerror(err)));
}

// Milliseconds left until `deadline`, for poll(2); never negative.
int PollMillis(absl::Time deadline) {
  absl::Duration left = deadline - absl::Now();
  if (left <= absl::ZeroDuration()) return 0;
  return static_cast<int>(
      std::min<int64_t>(absl::ToInt64Milliseconds(left) + 1, 1 << 30));
}

// Waits for `events` on `fd` until `deadline`. OK when ready.
absl::Status WaitFor(int fd, int16_t events, absl::Time deadline,
                     absl::string_view what) {
  while (true) {
    pollfd p = {fd, events, 0};
    int n = poll(&p, 1, PollMillis(deadline));
    if (n > 0) return absl::OkStatus();
    if (n < 0 && errno != EINTR) return ErrnoStatus("poll", errno);
    if (n == 0 && absl::Now() >= deadline) {
      return absl::DeadlineExceededError(
          absl::StrCat("timed out waiting for ", what));
    }
  }
}

// Non-blocking connect with a deadline; returns the connected socket, left
// non-blocking (all I/O below goes through poll).
absl::StatusOr<int> ConnectWithDeadline(int domain, const sockaddr* addr,
                                        socklen_t len, absl::Time deadline) {
  int fd = socket(domain, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return ErrnoStatus("socket", errno);
  if (connect(fd, addr, len) != 0) {
    if (errno != EINPROGRESS && errno != EAGAIN) {
      int err = errno;
      close(fd);
      return ErrnoStatus("connect", err);
    }
    absl::Status s = WaitFor(fd, POLLOUT, deadline, "connect");
    if (!s.ok()) {
      close(fd);
      return s;
    }
    int err = 0;
    socklen_t err_len = sizeof(err);
    getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &err_len);
    if (err != 0) {
      close(fd);
      return ErrnoStatus("connect", err);
    }
  }
  if (domain == AF_INET) {
    // Tests send small requests and wait for each reply; don't let Nagle
    // hold the second half of a split write behind a delayed ACK.
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  }
  return fd;
}

}  // namespace

absl::StatusOr<std::unique_ptr<BlockingClient>> BlockingClient::ConnectTcp(
    int port, absl::Duration timeout) {
  sockaddr_in addr = {};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  absl::StatusOr<int> fd =
      ConnectWithDeadline(AF_INET, reinterpret_cast<const sockaddr*>(&addr),
                          sizeof(addr), absl::Now() + timeout);
  std::string peer = absl::StrCat("127.0.0.1:", port);
  if (!fd.ok()) {
    return absl::Status(fd.status().code(),
                        absl::StrCat(peer, ": ", fd.status().message()));
  }
  return std::unique_ptr<BlockingClient>(
      new BlockingClient(*fd, std::move(peer), timeout));
}

absl::StatusOr<std::unique_ptr<BlockingClient>> BlockingClient::ConnectUnix(
    const std::string& path, absl::Duration timeout) {
  sockaddr_un addr = {};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof(addr.sun_path)) {
    return absl::InvalidArgumentError(
        absl::StrCat("unix socket path too long: ", path));
  }
  memcpy(addr.sun_path, path.data(), path.size());
  absl::StatusOr<int> fd =
      ConnectWithDeadline(AF_UNIX, reinterpret_cast<const sockaddr*>(&addr),
                          sizeof(addr), absl::Now() + timeout);
  if (!fd.ok()) {
    return absl::Status(fd.status().code(),
                        absl::StrCat(path, ": ", fd.status().message()));
  }
  return std::unique_ptr<BlockingClient>(
      new BlockingClient(*fd, path, timeout));
}

BlockingClient::BlockingClient(int fd, std::string peer, absl::Duration timeout)
    : fd_(fd), peer_(std::move(peer)), timeout_(timeout) {}

BlockingClient::~BlockingClient() { Close(); }

void BlockingClient::Close() {
  if (fd_ >= 0) close(fd_);
  fd_ = -1;
}

void BlockingClient::ShutdownWrite() {
  if (fd_ >= 0) shutdown(fd_, SHUT_WR);
}

void BlockingClient::Fail(absl::string_view what,
                          const absl::Status& status) const {
  ADD_FAILURE() << "BlockingClient(" << peer_ << ") " << what << ": " << status;
}

absl::Status BlockingClient::TrySend(absl::string_view bytes) {
  if (fd_ < 0) return absl::FailedPreconditionError("client is closed");
  absl::Time deadline = absl::Now() + timeout_;
  while (!bytes.empty()) {
    ssize_t n = send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n > 0) {
      bytes.remove_prefix(static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno != EAGAIN) return ErrnoStatus("send", errno);
    absl::Status s = WaitFor(fd_, POLLOUT, deadline, "socket writable");
    if (!s.ok()) {
      return absl::Status(
          s.code(),
          absl::StrCat(s.message(), " (", bytes.size(), " bytes unsent)"));
    }
  }
  return absl::OkStatus();
}

bool BlockingClient::Send(absl::string_view bytes) {
  absl::Status s = TrySend(bytes);
  if (!s.ok()) Fail("send", s);
  return s.ok();
}

absl::Status BlockingClient::Fill(absl::Time deadline) {
  if (fd_ < 0) return absl::FailedPreconditionError("client is closed");
  char chunk[16384];
  while (true) {
    ssize_t n = recv(fd_, chunk, sizeof(chunk), 0);
    if (n > 0) {
      buffer_.append(chunk, static_cast<size_t>(n));
      return absl::OkStatus();
    }
    if (n == 0) return absl::UnavailableError("connection closed by peer");
    if (errno == EINTR) continue;
    if (errno != EAGAIN) return ErrnoStatus("recv", errno);
    absl::Status s = WaitFor(fd_, POLLIN, deadline, "reply bytes");
    if (!s.ok()) return s;
  }
}

absl::StatusOr<std::string> BlockingClient::TryReadUntil(
    absl::string_view terminator) {
  absl::Time deadline = absl::Now() + timeout_;
  size_t searched = 0;
  while (true) {
    size_t pos = buffer_.find(terminator.data(), searched, terminator.size());
    if (pos != std::string::npos) {
      std::string out = buffer_.substr(0, pos + terminator.size());
      buffer_.erase(0, pos + terminator.size());
      return out;
    }
    if (buffer_.size() >= terminator.size()) {
      searched = buffer_.size() - terminator.size() + 1;
    }
    absl::Status s = Fill(deadline);
    if (!s.ok()) {
      return absl::Status(
          s.code(), absl::StrCat(s.message(), " (waiting for ",
                                 absl::CEscape(terminator), "; have \"",
                                 absl::CEscape(buffer_.substr(0, 200)), "\")"));
    }
  }
}

absl::StatusOr<std::string> BlockingClient::TryReadLine() {
  absl::StatusOr<std::string> line = TryReadUntil("\n");
  if (!line.ok()) return line;
  if (line->size() < 2 || (*line)[line->size() - 2] != '\r') {
    return absl::DataLossError(absl::StrCat("line not terminated by \\r\\n: \"",
                                            absl::CEscape(*line), "\""));
  }
  line->resize(line->size() - 2);
  return line;
}

absl::StatusOr<std::string> BlockingClient::TryReadExactly(size_t n) {
  absl::Time deadline = absl::Now() + timeout_;
  while (buffer_.size() < n) {
    absl::Status s = Fill(deadline);
    if (!s.ok()) {
      return absl::Status(
          s.code(), absl::StrCat(s.message(), " (have ", buffer_.size(), " of ",
                                 n, " bytes)"));
    }
  }
  std::string out = buffer_.substr(0, n);
  buffer_.erase(0, n);
  return out;
}

std::string BlockingClient::ReadLine() {
  absl::StatusOr<std::string> line = TryReadLine();
  if (!line.ok()) {
    Fail("ReadLine", line.status());
    return "";
  }
  return *std::move(line);
}

std::string BlockingClient::ReadExactly(size_t n) {
  absl::StatusOr<std::string> out = TryReadExactly(n);
  if (!out.ok()) {
    Fail(absl::StrCat("ReadExactly(", n, ")"), out.status());
    return "";
  }
  return *std::move(out);
}

std::string BlockingClient::ReadUntil(absl::string_view terminator) {
  absl::StatusOr<std::string> out = TryReadUntil(terminator);
  if (!out.ok()) {
    Fail("ReadUntil", out.status());
    return "";
  }
  return *std::move(out);
}

bool BlockingClient::PeerClosed(absl::Duration timeout) {
  if (!buffer_.empty()) return false;
  absl::Status s = Fill(absl::Now() + timeout);
  return absl::IsUnavailable(s);
}

bool BlockingClient::HasData(absl::Duration timeout) {
  if (!buffer_.empty()) return true;
  return Fill(absl::Now() + timeout).ok();
}

std::string BlockingClient::Set(absl::string_view key, absl::string_view value,
                                uint32_t flags, int64_t exptime) {
  if (!Send(absl::StrCat("set ", key, " ", flags, " ", exptime, " ",
                         value.size(), "\r\n", value, "\r\n"))) {
    return "";
  }
  return ReadLine();
}

std::optional<std::string> BlockingClient::Get(absl::string_view key) {
  if (!Send(absl::StrCat("get ", key, "\r\n"))) return std::nullopt;
  std::string line = ReadLine();
  if (line == "END") return std::nullopt;
  // "VALUE <key> <flags> <bytes>"
  std::vector<absl::string_view> parts = absl::StrSplit(line, ' ');
  size_t bytes = 0;
  if (parts.size() != 4 || parts[0] != "VALUE" || parts[1] != key ||
      !absl::SimpleAtoi(parts[3], &bytes)) {
    ADD_FAILURE() << "BlockingClient(" << peer_ << ") get " << key
                  << ": unexpected reply line \"" << absl::CEscape(line)
                  << "\"";
    return std::nullopt;
  }
  std::string data = ReadExactly(bytes + 2);
  if (data.size() != bytes + 2 || data.substr(bytes) != "\r\n") {
    ADD_FAILURE() << "BlockingClient(" << peer_ << ") get " << key
                  << ": bad data block \"" << absl::CEscape(data) << "\"";
    return std::nullopt;
  }
  std::string end = ReadLine();
  EXPECT_EQ(end, "END") << "BlockingClient(" << peer_ << ") get " << key;
  data.resize(bytes);
  return data;
}

std::string BlockingClient::Delete(absl::string_view key) {
  return Command(absl::StrCat("delete ", key));
}

std::string BlockingClient::Command(absl::string_view line) {
  if (!Send(absl::StrCat(line, "\r\n"))) return "";
  return ReadLine();
}

StatsMap BlockingClient::Stats(absl::string_view group) {
  StatsMap stats;
  if (!Send(group.empty() ? std::string("stats\r\n")
                          : absl::StrCat("stats ", group, "\r\n"))) {
    return stats;
  }
  while (true) {
    absl::StatusOr<std::string> line = TryReadLine();
    if (!line.ok()) {
      Fail(absl::StrCat("stats ", group), line.status());
      return stats;
    }
    if (*line == "END") return stats;
    std::vector<std::string> parts =
        absl::StrSplit(*line, absl::MaxSplits(' ', 2));
    if (parts.size() != 3 || parts[0] != "STAT") {
      ADD_FAILURE() << "BlockingClient(" << peer_ << ") stats " << group
                    << ": unexpected line \"" << absl::CEscape(*line) << "\"";
      return stats;
    }
    stats[parts[1]] = parts[2];
  }
}

int64_t StatInt(const StatsMap& stats, absl::string_view name) {
  auto it = stats.find(name);
  int64_t value = 0;
  if (it == stats.end() || !absl::SimpleAtoi(it->second, &value)) {
    ADD_FAILURE() << "stat \"" << name << "\" missing or not a number"
                  << (it == stats.end() ? "" : ": " + it->second);
    return -1;
  }
  return value;
}

uint64_t RaiseOpenFileLimit() {
  rlimit limit = {};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0) return 0;
  if (limit.rlim_cur < limit.rlim_max) {
    limit.rlim_cur = limit.rlim_max;
    setrlimit(RLIMIT_NOFILE, &limit);
    getrlimit(RLIMIT_NOFILE, &limit);
  }
  return limit.rlim_cur;
}

std::vector<std::unique_ptr<BlockingClient>> ConnectMany(int port, int n,
                                                         bool round_trip) {
  std::vector<std::unique_ptr<BlockingClient>> clients;
  clients.reserve(n);
  for (int i = 0; i < n; ++i) {
    absl::StatusOr<std::unique_ptr<BlockingClient>> client =
        BlockingClient::ConnectTcp(port);
    if (!client.ok()) {
      ADD_FAILURE() << "connection " << i << " of " << n << ": "
                    << client.status();
      break;
    }
    if (round_trip) {
      std::string reply = (*client)->Command("version");
      if (!absl::StartsWith(reply, "VERSION ")) {
        ADD_FAILURE() << "connection " << i << " of " << n
                      << ": version replied \"" << absl::CEscape(reply) << "\"";
        break;
      }
    }
    clients.push_back(*std::move(client));
  }
  return clients;
}

}  // namespace memshard
