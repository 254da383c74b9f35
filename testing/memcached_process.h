#pragma once

// Debian's memcached (/usr/bin/memcached) as a child process of a test: the
// reference peer and the backend of proxy tests.
//
// Thread-compatible, like ServerProcess (which it returns). memcached has no
// port-file flag, so Start() picks an unused port (PickUnusedPort), runs
// `memcached -p PORT -U 0 -l 127.0.0.1`, waits until a connect succeeds, and
// retries with another port if memcached fails to start (someone took the
// port in between).
//
// Tests skip rather than fail where memcached is not installed:
//   if (!MemcachedProcess::IsInstalled()) GTEST_SKIP() << "no memcached";

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "testing/server_process.h"

namespace memshard {

class MemcachedProcess {
 public:
  static constexpr char kBinary[] = "/usr/bin/memcached";

  static bool IsInstalled();
  // Starts memcached on a free port; `extra_args` are appended (e.g.
  // {"-m", "64"}). NotFound if memcached is not installed.
  static absl::StatusOr<std::unique_ptr<ServerProcess>> Start(
      const std::vector<std::string>& extra_args = {});
  // Starts memcached on `port` (e.g. a restart on the port it had before);
  // an error if the port is taken.
  static absl::StatusOr<std::unique_ptr<ServerProcess>> StartOnPort(
      int port, const std::vector<std::string>& extra_args = {});

  MemcachedProcess() = delete;
};

}  // namespace memshard
