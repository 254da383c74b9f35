#include "server/lifecycle/supervisor.h"

#include <sys/signalfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "glog/logging.h"

namespace memshard {
namespace {

sigset_t HandledSignals(const SupervisorOptions& options) {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGHUP);
  if (options.stall_on_sigusr2 > absl::ZeroDuration()) {
    sigaddset(&set, SIGUSR2);
  }
  return set;
}

}  // namespace

class Supervisor::SignalHandler : public EventHandler {
 public:
  explicit SignalHandler(Supervisor* supervisor) : supervisor_(supervisor) {}
  void OnEvents(uint32_t events) override {
    signalfd_siginfo info;
    while (read(supervisor_->signal_fd_, &info, sizeof(info)) == sizeof(info)) {
      supervisor_->OnSignal(static_cast<int>(info.ssi_signo));
    }
  }

 private:
  Supervisor* const supervisor_;
};

void Supervisor::BlockSignals(const SupervisorOptions& options) {
  sigset_t set = HandledSignals(options);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  signal(SIGPIPE, SIG_IGN);
}

Supervisor::Supervisor(Server* server, Notifier* notifier,
                       SupervisorOptions options)
    : server_(server), notifier_(notifier), options_(std::move(options)) {
  sigset_t set = HandledSignals(options_);
  signal_fd_ = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
  PCHECK(signal_fd_ >= 0) << "signalfd";
  signal_handler_ = std::make_unique<SignalHandler>(this);
  absl::Status added = loop_.Add(signal_fd_, EPOLLIN, signal_handler_.get());
  CHECK(added.ok()) << added;
}

Supervisor::~Supervisor() {
  loop_.Remove(signal_fd_);
  close(signal_fd_);
}

int Supervisor::Run() {
  last_status_time_ = absl::Now();
  last_operations_ = server_->operations();
  notifier_->Ready(StatusLine());
  loop_.AddTimer(options_.status_interval, [this] { ReportStatus(); });
  if (notifier_->watchdog_interval() > absl::ZeroDuration()) {
    LOG(INFO) << "systemd watchdog every "
              << absl::FormatDuration(notifier_->watchdog_interval());
    WatchdogTick();
  }
  loop_.Run();
  return 0;
}

void Supervisor::OnSignal(int signal) {
  switch (signal) {
    case SIGTERM:
    case SIGINT:
      if (draining_) Abort(signal);
      BeginShutdown(signal);
      break;
    case SIGHUP:
      Reload();
      break;
    case SIGUSR2:
      server_->StallWorkerForTest(0, options_.stall_on_sigusr2);
      break;
    default:
      break;
  }
}

void Supervisor::BeginShutdown(int signal) {
  draining_ = true;
  std::string status = absl::StrCat(
      "draining ", server_->connections(), " connections (", strsignal(signal),
      "; grace ", absl::FormatDuration(options_.shutdown_grace), ")");
  LOG(INFO) << status;
  notifier_->Stopping(status);
  server_->BeginDrain(
      [this] { loop_.Post([this] { FinishShutdown(false); }); });
  loop_.AddTimer(options_.shutdown_grace, [this] { FinishShutdown(true); });
}

void Supervisor::FinishShutdown(bool grace_expired) {
  if (finished_) return;
  finished_ = true;
  if (grace_expired) {
    LOG(WARNING) << "shutdown grace expired: closing " << server_->connections()
                 << " connections still open";
  }
  server_->Stop();
  LOG(INFO) << "stopped";
  loop_.Stop();
}

void Supervisor::Abort(int signal) {
  LOG(WARNING) << "second " << strsignal(signal) << ": exiting now with "
               << server_->connections() << " connections open";
  google::FlushLogFiles(google::GLOG_INFO);
  if (options_.before_abort) options_.before_abort();
  // Die by the signal itself, as if it had never been caught: systemd and
  // shells read that as "stopped by request".
  ::signal(signal, SIG_DFL);
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, signal);
  pthread_sigmask(SIG_UNBLOCK, &set, nullptr);
  raise(signal);
  _exit(128 + signal);  // not reached
}

void Supervisor::Reload() {
  if (draining_) {
    LOG(INFO) << "SIGHUP while shutting down: ignored";
    return;
  }
  LOG(INFO) << "SIGHUP: reloading";
  notifier_->Reloading();
  if (options_.reopen_logs) options_.reopen_logs();
  absl::Status reloaded = server_->Reload();
  if (reloaded.ok()) {
    LOG(INFO) << "reload complete";
    notifier_->Ready(StatusLine());
  } else {
    LOG(ERROR) << "reload failed: " << reloaded;
    notifier_->Ready(absl::StrCat("reload failed (", reloaded.message(), "); ",
                                  StatusLine()));
  }
}

std::string Supervisor::StatusLine() {
  absl::Time now = absl::Now();
  uint64_t operations = server_->operations();
  double seconds = absl::ToDoubleSeconds(now - last_status_time_);
  double rate = seconds > 0 ? (operations - last_operations_) / seconds : 0;
  last_operations_ = operations;
  last_status_time_ = now;
  return absl::StrFormat("%d connections, %.0f ops/s, port %d",
                         server_->connections(), rate, server_->port());
}

void Supervisor::ReportStatus() {
  if (!draining_) {
    if (stuck_worker_ >= 0) {
      notifier_->Status(absl::StrCat("worker ", stuck_worker_,
                                     " is not responding; ", StatusLine()));
    } else {
      notifier_->Status(StatusLine());
    }
  }
  loop_.AddTimer(options_.status_interval, [this] { ReportStatus(); });
}

void Supervisor::WatchdogTick() {
  absl::Duration interval = notifier_->watchdog_interval();
  if (!finished_) {
    absl::Time now = absl::Now();
    int stuck = server_->StuckWorker(now - interval / 2);
    if (stuck < 0) {
      if (stuck_worker_ >= 0) {
        LOG(WARNING) << "worker " << stuck_worker_
                     << " responds again: watchdog pings resume";
      }
      notifier_->Watchdog();
    } else if (stuck != stuck_worker_) {
      std::string why = absl::StrCat(
          "worker ", stuck, " has not run its loop for ",
          absl::FormatDuration(now - server_->last_check_in(stuck)));
      LOG(ERROR) << why << ": withholding the systemd watchdog ping";
      notifier_->Status(why);
    }
    stuck_worker_ = stuck;
    server_->RequestCheckIns();
  }
  loop_.AddTimer(interval / 4, [this] { WatchdogTick(); });
}

}  // namespace memshard
