#pragma once

// Supervisor: the main thread's life after startup. It owns the process's
// signals and talks to systemd; the server's workers never see either.
//
//   SIGTERM, SIGINT  graceful shutdown: STOPPING=1, stop accepting, drain
//                    every connection (answer what was read, flush, close),
//                    stop, exit 0. Whatever is still open when
//                    `shutdown_grace` runs out is closed, and the exit is
//                    still 0. A second SIGTERM/SIGINT exits at once (killed
//                    by that signal, which systemd counts as a clean stop).
//   SIGHUP           RELOADING=1, reopen log files, Server::Reload(), READY=1.
//                    Never exits, never touches a connection.
//   SIGUSR2          test only (`stall_on_sigusr2`): blocks worker 0.
//
// Every few seconds STATUS= says how many connections are open and the
// request rate. With a systemd watchdog (WatchdogSec=), WATCHDOG=1 is sent
// every quarter interval, but only while every worker's loop has checked in
// within half of it: a stuck worker stops the pings and systemd restarts the
// service.
//
// Thread-safety: BlockSignals() first thing in main(); then construct the
// supervisor and Run() it on the main thread. Workers reach it only through
// its own EventLoop's Post().

#include <csignal>
#include <functional>
#include <memory>
#include <string>

#include "absl/time/time.h"
#include "core/event_loop.h"
#include "server/lifecycle/notifier.h"
#include "server/server.h"

namespace memshard {

struct SupervisorOptions {
  absl::Duration shutdown_grace = absl::Seconds(10);
  absl::Duration status_interval = absl::Seconds(5);
  // Test only: SIGUSR2 blocks worker 0 for this long. Zero leaves SIGUSR2
  // alone.
  absl::Duration stall_on_sigusr2 = absl::ZeroDuration();
  // SIGHUP, before the server reloads.
  std::function<void()> reopen_logs;
  // Right before an immediate exit (second signal): e.g. remove the pid
  // file. Must not block.
  std::function<void()> before_abort;
};

class Supervisor {
 public:
  // Blocks the signals the supervisor takes in the calling thread. Call
  // before any other thread starts, so every thread inherits the mask and
  // only the supervisor's signalfd sees them.
  static void BlockSignals(const SupervisorOptions& options);

  // `server` is started; `notifier` outlives the supervisor.
  Supervisor(Server* server, Notifier* notifier, SupervisorOptions options);
  ~Supervisor();
  Supervisor(const Supervisor&) = delete;
  Supervisor& operator=(const Supervisor&) = delete;

  // Sends READY=1, then serves signals and timers until the server has
  // stopped. Returns the process exit code.
  int Run();

 private:
  class SignalHandler;

  void OnSignal(int signal);
  void BeginShutdown(int signal);
  void FinishShutdown(bool grace_expired);
  [[noreturn]] void Abort(int signal);
  void Reload();
  void ReportStatus();
  void WatchdogTick();
  std::string StatusLine();

  Server* const server_;
  Notifier* const notifier_;
  const SupervisorOptions options_;
  EventLoop loop_;
  int signal_fd_ = -1;
  std::unique_ptr<SignalHandler> signal_handler_;
  bool draining_ = false;
  bool finished_ = false;
  int stuck_worker_ = -1;  // the one withholding watchdog pings, or -1
  // For the request rate in STATUS=.
  uint64_t last_operations_ = 0;
  absl::Time last_status_time_;
};

}  // namespace memshard
