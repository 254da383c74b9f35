#pragma once

// Server: assembles memshard from its parts: the embedded store, the metrics
// registry, one Worker per CPU with its own SO_REUSEPORT listening socket(s)
// and ConnectionTable, and the optional shared unix socket.
//
// Thread-safety: the public methods are for one controlling thread (the
// supervisor), except where a comment says "any thread". Everything else
// runs on the workers, reached only through Worker::Post().
//
// Life: Bind() (optional; Start() binds if needed) -> Start() -> serving,
// with Reload() at will -> BeginDrain() (optional, graceful) -> Stop().

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/time/time.h"
#include "core/worker.h"
#include "metrics/worker_metrics.h"
#include "server/admin/http_server.h"
#include "server/auth/authenticator.h"
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

  // Binds every socket; no worker runs yet. Errors (bad address, port in
  // use) come back here, and nothing is left listening then. Separate from
  // Start() so a root-started server can drop privileges in between.
  absl::Status Bind();
  // Binds (unless Bind() was called), then starts the workers; returns once
  // every worker is accepting (and the port file, if asked for, is written).
  absl::Status Start();
  // Closes every connection and joins the workers.
  void Stop();

  // Graceful shutdown: every worker closes its listeners (the unix socket
  // path is removed at once) and drains its connections: answers every
  // request it has read, flushes, half-closes, closes. `on_drained` runs
  // once, on a worker thread, when the last connection has closed. Stop()
  // afterwards (or at the grace deadline) closes what is left and joins.
  void BeginDrain(absl::AnyInvocable<void()> on_drained);

  // SIGHUP. A reload hook runs on the controlling thread and re-reads what
  // the server loaded from files (e.g. Authenticator::Reload); a failing
  // hook keeps its old state and makes Reload() fail. A worker hook then
  // runs once on every worker's thread (concurrently on different workers),
  // e.g. to install a new snapshot in its ConnectionTable. Reload() returns
  // once every worker has run its hooks, or after `timeout`.
  using ReloadHook = absl::AnyInvocable<absl::Status()>;
  using WorkerReloadHook = std::function<void(ConnectionTable&)>;
  void AddReloadHook(std::string name, ReloadHook hook);
  void AddWorkerReloadHook(WorkerReloadHook hook);
  absl::Status Reload(absl::Duration timeout = absl::Seconds(5));

  // Liveness (the systemd watchdog): asks every worker's loop to check in;
  // StuckWorker() names one whose last check-in is older than `since`, or
  // returns -1 when all are newer.
  void RequestCheckIns();
  int StuckWorker(absl::Time since) const;
  absl::Time last_check_in(int worker) const;

  // Any thread, once started: open client connections, and requests
  // executed since start.
  int64_t connections() const;
  uint64_t operations() const;

  // Test only: blocks worker `index`'s loop for `duration` (a stuck worker).
  void StallWorkerForTest(int index, absl::Duration duration);

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

  // Loads --auth_file / --sasl_password_file into context_ and registers
  // their SIGHUP reloads.
  absl::Status LoadCredentials();
  // --mode=proxy|l1l2: resolves the backends and makes their statistics.
  absl::Status SetUpBackends();

  ServerContext context_;
  // Behind context_.ascii_auth and context_.sasl_auth; null when off.
  std::unique_ptr<Authenticator> ascii_auth_;
  std::unique_ptr<Authenticator> sasl_auth_;
  std::unique_ptr<cache::Store> store_;
  std::unique_ptr<MetricsRegistry> metrics_;
  // Behind context_.backend_stats (--mode=proxy|l1l2); null in cache mode.
  std::unique_ptr<backend::BackendStatsRegistry> backend_stats_;
  std::vector<Slot> slots_;
  // The admin HTTP endpoint; null when --admin_port=0.
  std::unique_ptr<AdminHttpServer> admin_;
  int unix_fd_ = -1;
  bool unix_unlinked_ = false;  // BeginDrain() removed the socket path
  uint16_t port_ = 0;
  bool bound_ = false;
  bool started_ = false;
  std::vector<std::pair<std::string, ReloadHook>> reload_hooks_;
  std::vector<WorkerReloadHook> worker_reload_hooks_;
};

}  // namespace memshard
