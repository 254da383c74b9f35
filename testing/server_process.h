#pragma once

// A server binary (memshard, memcached, ...) running as a child process of a
// test, listening on 127.0.0.1.
//
// Thread-compatible: start, query and stop one ServerProcess from one thread
// at a time. Start() returns only once the server accepts connections, so a
// test never races the server's startup. The child's stdout and stderr go to a
// log file under TEST_TMPDIR, quoted in every start failure. The child gets
// PR_SET_PDEATHSIG(SIGKILL), so a test that crashes or is killed by its
// timeout does not leave servers behind. The destructor stops the child.
//
// Invariant: while `pid_ > 0` the child has not been reaped; Stop() reaps it
// and sets `pid_` to -1.

#include <signal.h>
#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "testing/blocking_client.h"

namespace memshard {

// A fresh path under TEST_TMPDIR (when short) or a directory of this
// process's own under /tmp that is removed at exit unless a test failed;
// its last component starts with `prefix`. Nothing is created. Short enough
// for a unix socket path.
std::string TestTempPath(absl::string_view prefix);

// The bytes of the file at `path`; empty if it cannot be read.
std::string ReadWholeFile(const std::string& path);

// Binds 127.0.0.1:0 without SO_REUSEADDR, reads the port the kernel picked
// and closes the socket. Racy by nature (someone may take the port before
// the caller binds it); callers retry with a new port on failure.
absl::StatusOr<int> PickUnusedPort();

class ServerProcess {
 public:
  struct Options {
    // Path of the executable (execv, no PATH search, no shell).
    std::string binary;
    // argv[1..].
    std::vector<std::string> args;
    // How readiness is detected: if `port_file` is set, the child writes
    // its TCP port there once it accepts connections; otherwise the child
    // listens on `port` and is ready when a connect succeeds.
    std::string port_file;
    int port = 0;
    // In connect mode, also require `stats` on that port to report the
    // child's pid (the port may have been taken by another process).
    bool verify_stats_pid = true;
    absl::Duration start_timeout = absl::Seconds(20);
    // What Stop() sends first. memcached takes ~0.7 s to shut down on
    // SIGTERM; its fixture uses SIGKILL to keep tests fast.
    int stop_signal = SIGTERM;
    // Extra "NAME=value" environment entries for the child; they replace
    // inherited ones of the same name (e.g. NOTIFY_SOCKET).
    std::vector<std::string> env;
  };

  // Forks and execs `options.binary` and waits until it is ready. Fails,
  // quoting the child's log, if it exits or is not ready in time (the child
  // is then killed).
  static absl::StatusOr<std::unique_ptr<ServerProcess>> Start(Options options);

  // The memshard binary in the test's runfiles (tests declare
  // data = ["//server:memshard"]).
  static std::string MemshardBinary();
  // Starts memshard with --listen=127.0.0.1 --port=0 --port_file=<tmp>
  // --admin_port=0 followed by `args` (e.g. {"--workers=2"}; later flags
  // win, so {"--admin_port=-1", "--admin_port_file=..."} enables the admin
  // endpoint).
  static absl::StatusOr<std::unique_ptr<ServerProcess>> StartMemshard(
      const std::vector<std::string>& args = {});
  // The Options StartMemshard(args) uses, for callers that adjust them
  // (environment, readiness) before Start().
  static Options MemshardOptions(const std::vector<std::string>& args = {});

  ServerProcess(const ServerProcess&) = delete;
  ServerProcess& operator=(const ServerProcess&) = delete;
  ~ServerProcess();

  // -1 once stopped.
  pid_t pid() const { return pid_; }
  int port() const { return port_; }
  const std::string& log_path() const { return log_path_; }

  // Sends the stop signal (SIGTERM by default), waits up to `grace` for the
  // child to exit, then sends SIGKILL and reaps it. Returns the waitpid(2)
  // status, or -1 if the child was already stopped. A sanitizer report in
  // the child's log (asan, tsan, ubsan builds) is a test failure.
  int Stop(absl::Duration grace = absl::Seconds(5));
  // Sends `signal` to the child (e.g. SIGSTOP to simulate a hung server,
  // SIGCONT to resume it). False if the child is stopped or gone.
  bool Signal(int signal);
  // Freezes the child (SIGSTOP) and returns once every one of its threads
  // is stopped, so no reply can slip out afterwards: a hung server. False
  // if that does not happen within 5 s.
  bool Pause();
  // Undoes Pause() (SIGCONT).
  bool Resume();
  // True while the child has not exited (reaps it if it has).
  bool IsRunning();
  // Waits up to `timeout` for the child to exit on its own (after a signal
  // the test sent with Signal()), reaps it and checks its log as Stop()
  // does. Returns the waitpid(2) status, or -1 if it is still running (or
  // was already stopped).
  int WaitForExit(absl::Duration timeout);

  // VmRSS of the child from /proc/<pid>/status, in bytes; -1 (and a test
  // failure) if it cannot be read.
  int64_t RssBytes() const;
  // "stats" / "stats <group>" over a fresh connection (which itself counts
  // in the server's connection stats). Test failure and an empty map on
  // error.
  StatsMap Stats(absl::string_view group = "") const;
  // A new client connection to 127.0.0.1:port().
  absl::StatusOr<std::unique_ptr<BlockingClient>> Connect(
      absl::Duration timeout = BlockingClient::kDefaultTimeout) const;
  // The child's stdout+stderr so far.
  std::string ReadLog() const;

 private:
  ServerProcess(pid_t pid, std::string log_path, int stop_signal)
      : pid_(pid), log_path_(std::move(log_path)), stop_signal_(stop_signal) {}

  // Waits until the child is ready per `options`; sets `port_`.
  absl::Status WaitUntilReady(const Options& options);
  // A sanitizer report in the child's log is a test failure.
  void CheckLogForSanitizerReports() const;

  pid_t pid_;
  int port_ = 0;
  std::string log_path_;
  int stop_signal_;
};

// Describes a waitpid(2) status: "exited with status 1", "killed by signal 9".
std::string DescribeWaitStatus(int status);

}  // namespace memshard
