#include "testing/memcached_process.h"

#include <signal.h>
#include <unistd.h>

#include <utility>

#include "absl/strings/str_cat.h"

namespace memshard {

bool MemcachedProcess::IsInstalled() { return access(kBinary, X_OK) == 0; }

absl::StatusOr<std::unique_ptr<ServerProcess>> MemcachedProcess::Start(
    const std::vector<std::string>& extra_args) {
  if (!IsInstalled()) {
    return absl::NotFoundError(absl::StrCat(kBinary, " is not installed"));
  }
  constexpr int kAttempts = 5;
  absl::Status last_error;
  for (int attempt = 0; attempt < kAttempts; ++attempt) {
    absl::StatusOr<int> port = PickUnusedPort();
    if (!port.ok()) return port.status();
    absl::StatusOr<std::unique_ptr<ServerProcess>> process =
        StartOnPort(*port, extra_args);
    if (process.ok()) return process;
    last_error = process.status();
  }
  return absl::Status(last_error.code(),
                      absl::StrCat("memcached did not start in ", kAttempts,
                                   " attempts; last: ", last_error.message()));
}

absl::StatusOr<std::unique_ptr<ServerProcess>> MemcachedProcess::StartOnPort(
    int port, const std::vector<std::string>& extra_args) {
  if (!IsInstalled()) {
    return absl::NotFoundError(absl::StrCat(kBinary, " is not installed"));
  }
  ServerProcess::Options options;
  options.binary = kBinary;
  options.port = port;
  options.start_timeout = absl::Seconds(5);
  options.stop_signal = SIGKILL;
  options.args = {"-p", absl::StrCat(port), "-U", "0", "-l", "127.0.0.1"};
  // memcached refuses to run as root without naming the user.
  if (geteuid() == 0) {
    options.args.push_back("-u");
    options.args.push_back("root");
  }
  options.args.insert(options.args.end(), extra_args.begin(), extra_args.end());
  return ServerProcess::Start(std::move(options));
}

}  // namespace memshard
