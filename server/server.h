#pragma once

// Server: assembles memshard from its parts: the embedded store, the metrics
// registry, one Worker per CPU with its own SO_REUSEPORT listening socket(s)
// and ConnectionTable, and the optional shared unix socket.
//
// Thread-safety: Start() and Stop() from one controlling thread. Everything
// else runs on the workers.

#include <cstdint>
#include <memory>
#include <vector>

#include "absl/status/status.h"
#include "core/worker.h"
#include "metrics/worker_metrics.h"
#include "server/cache/store.h"
#include "server/connection_table.h"
#include "server/expiry_sweeper.h"
#include "server/listener.h"
#include "server/server_context.h"
#include "server/server_options.h"

namespace memshard {

class Server {
 public:
  explicit Server(const ServerOptions& options);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds every socket, then starts the workers; returns once every worker
  // is accepting (and the port file, if asked for, is written). Errors (bad
  // address, port in use) come back before anything listens.
  absl::Status Start();
  // Closes every connection and joins the workers.
  void Stop();

  uint16_t port() const { return port_; }
  int workers() const { return context_.workers; }

 private:
  struct Slot {
    std::unique_ptr<Worker> worker;
    std::vector<int> tcp_fds;  // this worker's own listening sockets
    std::unique_ptr<ConnectionTable> table;
    std::unique_ptr<ExpirySweeper> sweeper;
    std::vector<std::unique_ptr<Listener>> listeners;
  };

  absl::Status BindAll();
  absl::Status WritePortFile() const;

  ServerContext context_;
  std::unique_ptr<cache::Store> store_;
  std::unique_ptr<MetricsRegistry> metrics_;
  std::vector<Slot> slots_;
  int unix_fd_ = -1;
  uint16_t port_ = 0;
  bool started_ = false;
};

}  // namespace memshard
