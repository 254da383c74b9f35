#pragma once

// AdminHttpServer: a tiny HTTP/1.x server for the admin endpoint (/metrics,
// /healthz), off the request path: its own thread, its own blocking poll
// loop, one client at a time, every response closes its connection.
//
// Why this shape: scrapes come every few seconds from one or two clients,
// so serving them one by one is plenty, and keeping the endpoint off the
// workers' loops means a scrape never delays a cache request. A client that
// stalls is cut off after a deadline so it cannot wedge the endpoint.
//
// Thread-safety: Bind(), Start() and Stop() from one controlling thread.
// The handler runs on the admin thread and must be safe to call from it.

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace memshard {

class AdminHttpServer {
 public:
  struct Response {
    int status = 200;
    std::string content_type = "text/plain; charset=utf-8";
    std::string body;
  };
  // `method` is as sent ("GET", "HEAD", ...); `path` has any "?query"
  // removed. For HEAD the server sends the headers of the GET response.
  using Handler =
      std::function<Response(absl::string_view method, absl::string_view path)>;

  // Largest request head accepted (request line plus headers).
  static constexpr size_t kMaxRequestBytes = 16 * 1024;
  // A client must send its request and take its response within this.
  static constexpr absl::Duration kClientDeadline = absl::Seconds(5);

  // Listens on `address`:`port` (port 0: the kernel picks; see port()).
  // Nothing is served until Start().
  static absl::StatusOr<std::unique_ptr<AdminHttpServer>> Bind(
      absl::string_view address, uint16_t port);

  ~AdminHttpServer();
  AdminHttpServer(const AdminHttpServer&) = delete;
  AdminHttpServer& operator=(const AdminHttpServer&) = delete;

  // Starts the admin thread. Call once.
  void Start(Handler handler);
  // Stops serving and joins the thread (also done by the destructor).
  void Stop();

  uint16_t port() const { return port_; }

 private:
  AdminHttpServer(int listen_fd, int wake_fd, uint16_t port)
      : listen_fd_(listen_fd), wake_fd_(wake_fd), port_(port) {}

  void Run();
  void ServeOne(int fd);

  const int listen_fd_;
  const int wake_fd_;  // eventfd: Stop() wakes the poll loop
  const uint16_t port_;
  Handler handler_;
  std::thread thread_;
};

}  // namespace memshard
