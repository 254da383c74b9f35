#pragma once

// Notifier: tells systemd (Type=notify units) how the service is doing,
// through libsystemd's sd_notify(3): READY=1, STATUS=..., WATCHDOG=1,
// RELOADING=1 and STOPPING=1.
//
// Thread-compatible: one thread (the supervisor) uses it. Without
// $NOTIFY_SOCKET (not started by systemd) every call is a cheap no-op. The
// environment is left in place, so the watchdog settings stay readable.

#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace memshard {

class Notifier {
 public:
  // Reads $NOTIFY_SOCKET and $WATCHDOG_USEC (and $WATCHDOG_PID) once.
  Notifier();
  Notifier(const Notifier&) = delete;
  Notifier& operator=(const Notifier&) = delete;

  bool enabled() const { return enabled_; }
  // The service's WatchdogSec=; zero when systemd watches nothing. Pings
  // are due at least this often (systemd recommends every half of it).
  absl::Duration watchdog_interval() const { return watchdog_interval_; }

  // Startup (or a reload) is complete; `status` is shown by
  // `systemctl status`.
  void Ready(absl::string_view status);
  void Status(absl::string_view status);
  void Watchdog();
  // A reload (SIGHUP) begins; Ready() ends it.
  void Reloading();
  // Shutdown begins.
  void Stopping(absl::string_view status);

 private:
  void Send(const char* message);

  bool enabled_ = false;
  bool warned_ = false;
  absl::Duration watchdog_interval_ = absl::ZeroDuration();
};

}  // namespace memshard
