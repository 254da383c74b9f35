#include "tools/consistency/text_client.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace memshard::consistency {
namespace {

absl::Status Errno(absl::string_view what) {
  return absl::UnavailableError(absl::StrCat(what, ": ", strerror(errno)));
}

constexpr size_t kReadChunk = 64 * 1024;

}  // namespace

absl::StatusOr<std::unique_ptr<TextConnection>> TextConnection::Connect(
    int port, absl::Duration timeout) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Errno("socket");
  sockaddr_in addr = {};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    absl::Status s = Errno(absl::StrCat("connect 127.0.0.1:", port));
    close(fd);
    return s;
  }
  const int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  return std::unique_ptr<TextConnection>(new TextConnection(fd, timeout));
}

TextConnection::~TextConnection() {
  if (fd_ >= 0) close(fd_);
}

absl::Status TextConnection::Poll(absl::Time deadline, bool want_write,
                                  bool* writable) {
  *writable = false;
  pollfd p = {fd_, static_cast<short>(POLLIN | (want_write ? POLLOUT : 0)), 0};
  for (;;) {
    const absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) {
      return absl::DeadlineExceededError("no reply from the server in time");
    }
    const int n =
        poll(&p, 1, static_cast<int>(absl::ToInt64Milliseconds(left)) + 1);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Errno("poll");
    if (n > 0) break;
  }
  if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
    if (start_ > 0 && start_ >= buffer_.size() / 2) {
      buffer_.erase(0, start_);
      start_ = 0;
    }
    const size_t old = buffer_.size();
    buffer_.resize(old + kReadChunk);
    const ssize_t got = recv(fd_, &buffer_[old], kReadChunk, 0);
    buffer_.resize(old + std::max<ssize_t>(got, 0));
    if (got == 0)
      return absl::UnavailableError("the server closed the connection");
    if (got < 0 && errno != EINTR && errno != EAGAIN) return Errno("recv");
  }
  *writable = (p.revents & POLLOUT) != 0;
  return absl::OkStatus();
}

void TextConnection::Consume(size_t n) {
  start_ += n;
  if (start_ == buffer_.size()) {
    buffer_.clear();
    start_ = 0;
  }
}

absl::Status TextConnection::Send(absl::string_view bytes) {
  const absl::Time deadline = absl::Now() + timeout_;
  while (!bytes.empty()) {
    const ssize_t n =
        send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      bytes.remove_prefix(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) return Errno("send");
    bool writable = false;
    absl::Status s = Poll(deadline, /*want_write=*/true, &writable);
    if (!s.ok()) return s;
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> TextConnection::ReadLine() {
  const absl::Time deadline = absl::Now() + timeout_;
  size_t searched = 0;
  for (;;) {
    absl::string_view data(buffer_.data() + start_, buffered());
    const size_t at = data.find("\r\n", searched);
    if (at != absl::string_view::npos) {
      std::string line(data.substr(0, at));
      Consume(at + 2);
      return line;
    }
    searched = data.empty() ? 0 : data.size() - 1;
    bool writable = false;
    absl::Status s = Poll(deadline, false, &writable);
    if (!s.ok()) return s;
  }
}

absl::StatusOr<std::string> TextConnection::ReadExactly(size_t n) {
  const absl::Time deadline = absl::Now() + timeout_;
  while (buffered() < n) {
    bool writable = false;
    absl::Status s = Poll(deadline, false, &writable);
    if (!s.ok()) return s;
  }
  std::string out(buffer_.data() + start_, n);
  Consume(n);
  return out;
}

absl::StatusOr<std::vector<TextValue>> TextConnection::ReadValues() {
  std::vector<TextValue> values;
  for (;;) {
    absl::StatusOr<std::string> line = ReadLine();
    if (!line.ok()) return line.status();
    if (*line == "END") return values;
    std::vector<absl::string_view> parts = absl::StrSplit(*line, ' ');
    TextValue v;
    uint64_t length = 0;
    if ((parts.size() != 4 && parts.size() != 5) || parts[0] != "VALUE" ||
        !absl::SimpleAtoi(parts[2], &v.flags) ||
        !absl::SimpleAtoi(parts[3], &length) ||
        (parts.size() == 5 && !absl::SimpleAtoi(parts[4], &v.cas))) {
      return absl::InternalError(absl::StrCat("unexpected reply: ", *line));
    }
    v.key = std::string(parts[1]);
    v.has_cas = parts.size() == 5;
    absl::StatusOr<std::string> data = ReadExactly(length + 2);
    if (!data.ok()) return data.status();
    if (data->substr(length) != "\r\n") {
      return absl::InternalError("a VALUE block not ended by CRLF");
    }
    data->resize(length);
    v.data = *std::move(data);
    values.push_back(std::move(v));
  }
}

absl::StatusOr<std::string> TextConnection::Command(absl::string_view line) {
  absl::Status s = Send(absl::StrCat(line, "\r\n"));
  if (!s.ok()) return s;
  return ReadLine();
}

absl::StatusOr<std::vector<std::pair<std::string, std::string>>>
TextConnection::Stats(absl::string_view group) {
  absl::Status s = Send(group.empty() ? std::string("stats\r\n")
                                      : absl::StrCat("stats ", group, "\r\n"));
  if (!s.ok()) return s;
  std::vector<std::pair<std::string, std::string>> stats;
  for (;;) {
    absl::StatusOr<std::string> line = ReadLine();
    if (!line.ok()) return line.status();
    if (*line == "END") return stats;
    std::vector<std::string> parts =
        absl::StrSplit(*line, absl::MaxSplits(' ', 2));
    if (parts.size() != 3 || parts[0] != "STAT") {
      return absl::InternalError(
          absl::StrCat("unexpected stats line: ", *line));
    }
    stats.emplace_back(std::move(parts[1]), std::move(parts[2]));
  }
}

}  // namespace memshard::consistency
