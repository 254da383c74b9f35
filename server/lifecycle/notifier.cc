#include "server/lifecycle/notifier.h"

#include <systemd/sd-daemon.h>
#include <time.h>

#include <cstdlib>
#include <cstring>
#include <string>

#include "absl/strings/str_cat.h"
#include "glog/logging.h"

namespace memshard {
namespace {

// A STATUS= value is one line.
std::string OneLine(absl::string_view text) {
  std::string line(text);
  for (char& c : line) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  return line;
}

uint64_t MonotonicMicros() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000 + ts.tv_nsec / 1000;
}

}  // namespace

Notifier::Notifier() {
  const char* socket = getenv("NOTIFY_SOCKET");
  enabled_ = socket != nullptr && *socket != '\0';
  uint64_t usec = 0;
  // > 0 only if $WATCHDOG_USEC is set (and $WATCHDOG_PID, if set, is us).
  if (enabled_ && sd_watchdog_enabled(0, &usec) > 0 && usec > 0) {
    watchdog_interval_ = absl::Microseconds(usec);
  }
}

void Notifier::Send(const char* message) {
  if (!enabled_) return;
  int rc = sd_notify(0, message);
  if (rc < 0 && !warned_) {
    warned_ = true;
    LOG(WARNING) << "sd_notify: " << strerror(-rc);
  }
}

void Notifier::Ready(absl::string_view status) {
  Send(absl::StrCat("READY=1\nSTATUS=", OneLine(status)).c_str());
}

void Notifier::Status(absl::string_view status) {
  Send(absl::StrCat("STATUS=", OneLine(status)).c_str());
}

void Notifier::Watchdog() { Send("WATCHDOG=1"); }

void Notifier::Reloading() {
  // MONOTONIC_USEC is what Type=notify-reload (systemd 253+) requires;
  // older systemd ignores it.
  Send(absl::StrCat("RELOADING=1\nSTATUS=reloading\nMONOTONIC_USEC=",
                    MonotonicMicros())
           .c_str());
}

void Notifier::Stopping(absl::string_view status) {
  Send(absl::StrCat("STOPPING=1\nSTATUS=", OneLine(status)).c_str());
}

}  // namespace memshard
