#include "server/admin/http_server.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "core/socket.h"
#include "glog/logging.h"

namespace memshard {
namespace {

absl::string_view Reason(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 400:
      return "Bad Request";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 408:
      return "Request Timeout";
    case 431:
      return "Request Header Fields Too Large";
    case 500:
      return "Internal Server Error";
    case 503:
      return "Service Unavailable";
    default:
      return "Unknown";
  }
}

// Waits until `fd` is ready for `events` or `deadline` passes.
bool WaitFor(int fd, short events, absl::Time deadline) {
  for (;;) {
    const int64_t ms = absl::ToInt64Milliseconds(deadline - absl::Now());
    if (ms <= 0) return false;
    pollfd p{fd, events, 0};
    const int n = poll(&p, 1, static_cast<int>(std::min<int64_t>(ms, 1000)));
    if (n > 0) return true;
    if (n < 0 && errno != EINTR) return false;
  }
}

bool SendAll(int fd, absl::string_view bytes, absl::Time deadline) {
  while (!bytes.empty()) {
    const ssize_t n =
        send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      bytes.remove_prefix(static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) &&
        WaitFor(fd, POLLOUT, deadline)) {
      continue;
    }
    return false;
  }
  return true;
}

void Respond(int fd, const AdminHttpServer::Response& response, bool head,
             absl::Time deadline) {
  std::string out =
      absl::StrCat("HTTP/1.1 ", response.status, " ", Reason(response.status),
                   "\r\nContent-Type: ", response.content_type,
                   "\r\nContent-Length: ", response.body.size(),
                   "\r\nConnection: close\r\n");
  if (response.status == 405) out += "Allow: GET, HEAD\r\n";
  out += "\r\n";
  if (!head) out += response.body;
  SendAll(fd, out, deadline);
}

AdminHttpServer::Response Error(int status) {
  AdminHttpServer::Response r;
  r.status = status;
  r.body = absl::StrCat(Reason(status), "\n");
  return r;
}

}  // namespace

absl::StatusOr<std::unique_ptr<AdminHttpServer>> AdminHttpServer::Bind(
    absl::string_view address, uint16_t port) {
  absl::StatusOr<int> fd = ListenTcp(address, port, /*reuse_port=*/false, 64);
  if (!fd.ok()) {
    return absl::Status(fd.status().code(),
                        absl::StrCat("admin endpoint ", address, ":", port,
                                     ": ", fd.status().message()));
  }
  absl::StatusOr<uint16_t> bound = BoundPort(*fd);
  if (!bound.ok()) {
    close(*fd);
    return bound.status();
  }
  const int wake = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (wake < 0) {
    close(*fd);
    return absl::InternalError("eventfd for the admin endpoint");
  }
  return std::unique_ptr<AdminHttpServer>(
      new AdminHttpServer(*fd, wake, *bound));
}

AdminHttpServer::~AdminHttpServer() {
  Stop();
  close(listen_fd_);
  close(wake_fd_);
}

void AdminHttpServer::Start(Handler handler) {
  CHECK(!thread_.joinable()) << "admin endpoint started twice";
  handler_ = std::move(handler);
  thread_ = std::thread([this] { Run(); });
}

void AdminHttpServer::Stop() {
  if (!thread_.joinable()) return;
  const uint64_t one = 1;
  ssize_t n = write(wake_fd_, &one, sizeof(one));
  (void)n;
  thread_.join();
}

void AdminHttpServer::Run() {
  for (;;) {
    pollfd fds[2] = {{listen_fd_, POLLIN, 0}, {wake_fd_, POLLIN, 0}};
    const int n = poll(fds, 2, -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      PLOG(ERROR) << "admin endpoint poll";
      return;
    }
    if (fds[1].revents != 0) return;
    if (fds[0].revents == 0) continue;
    const int fd =
        accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EMFILE || errno == ENFILE) {
        // Out of descriptors: back off instead of spinning on the event.
        pollfd wake{wake_fd_, POLLIN, 0};
        if (poll(&wake, 1, 100) > 0) return;
      }
      continue;  // EAGAIN, ECONNABORTED, ...
    }
    ServeOne(fd);
    close(fd);
  }
}

void AdminHttpServer::ServeOne(int fd) {
  const absl::Time deadline = absl::Now() + kClientDeadline;
  std::string request;
  size_t head_end = std::string::npos;
  char buffer[4096];
  while (head_end == std::string::npos) {
    if (request.size() > kMaxRequestBytes) {
      Respond(fd, Error(431), false, deadline);
      return;
    }
    const ssize_t n = recv(fd, buffer, sizeof(buffer), 0);
    if (n > 0) {
      request.append(buffer, static_cast<size_t>(n));
      head_end = request.find("\r\n\r\n");
      if (head_end == std::string::npos) head_end = request.find("\n\n");
      continue;
    }
    if (n == 0) return;  // the client gave up
    if (errno == EINTR) continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK) return;
    if (!WaitFor(fd, POLLIN, deadline)) {
      Respond(fd, Error(408), false, deadline);
      return;
    }
  }
  // Request line: METHOD SP TARGET SP HTTP/x.y
  absl::string_view line(request.data(), request.find('\n'));
  if (absl::EndsWith(line, "\r")) line.remove_suffix(1);
  std::vector<absl::string_view> parts = absl::StrSplit(line, ' ');
  if (parts.size() != 3 || !absl::StartsWith(parts[2], "HTTP/1.") ||
      parts[1].empty() || parts[1][0] != '/') {
    Respond(fd, Error(400), false, deadline);
    return;
  }
  const absl::string_view method = parts[0];
  absl::string_view path = parts[1];
  path = path.substr(0, path.find('?'));
  const bool head = method == "HEAD";
  Response response;
  if (method != "GET" && !head) {
    response = Error(405);
  } else {
    response = handler_(method, path);
  }
  Respond(fd, response, head, deadline);
}

}  // namespace memshard
