// consistency: runs the consistency workload against memshard (started
// here, --workers=2 by default), Debian's memcached (--target=memcached) or
// a server already listening on 127.0.0.1:--port (--target=port), checks the
// history for linearizability per key and the server's evictions, prints the
// figures and exits 0 only if everything passed. See checker.h for the rules.
//
//   bazel build -c opt //tools/consistency:consistency
//   bazel-bin/tools/consistency/consistency --requests=1000000

#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gflags/gflags.h"
#include "testing/memcached_process.h"
#include "testing/server_process.h"
#include "tools/consistency/trial.h"

DEFINE_string(target, "memshard", "memshard | memcached | port");
DEFINE_int32(port, 0, "--target=port: the server's port on 127.0.0.1");
DEFINE_string(memshard, "", "memshard binary (default: from runfiles)");
DEFINE_string(memshard_args, "--workers=2,--memory_limit_mb=256",
              "Comma-separated memshard flags");
DEFINE_int32(memcached_threads, 2, "--target=memcached: -t");
DEFINE_uint64(requests, 200000, "Requests in total");
DEFINE_int32(keys, 16, "Hot keys");
DEFINE_int32(connections, 8, "Client connections, one thread each (<= 63)");
DEFINE_uint32(seed, 1, "Random seed (also names the keys)");
DEFINE_uint32(max_padding, 64, "Padding bytes of most string values");
DEFINE_uint32(large_value_size, 4096, "Padding of 1% of string values");
DEFINE_uint64(max_configurations, 1 << 20,
              "Checker budget per key while backtracking");
DEFINE_string(save_history, "", "Write the recorded history to this file");
DEFINE_string(check_history, "",
              "Only check a history saved by --save_history (no server)");

namespace memshard::consistency {
namespace {

std::string FindMemshard(const char* argv0) {
  if (!FLAGS_memshard.empty()) return FLAGS_memshard;
  const std::string beside =
      absl::StrCat(argv0, ".runfiles/memshard/server/memshard");
  if (access(beside.c_str(), X_OK) == 0) return beside;
  return ServerProcess::MemshardBinary();
}

int CheckSaved() {
  absl::StatusOr<History> history = ReadHistory(FLAGS_check_history);
  if (!history.ok()) {
    std::fprintf(stderr, "%s\n", history.status().ToString().c_str());
    return 2;
  }
  CheckOptions options;
  options.max_configurations = FLAGS_max_configurations;
  const absl::Time start = absl::Now();
  const CheckReport report = CheckHistory(*history, options);
  std::printf("%s\ncheck %.1f s\n", report.Summary().c_str(),
              absl::ToDoubleSeconds(absl::Now() - start));
  return report.ok() ? 0 : 1;
}

int Main(const char* argv0) {
  if (!FLAGS_check_history.empty()) return CheckSaved();
  std::unique_ptr<ServerProcess> server;
  int port = FLAGS_port;
  if (FLAGS_target == "memshard") {
    std::vector<std::string> args =
        absl::StrSplit(FLAGS_memshard_args, ',', absl::SkipEmpty());
    ServerProcess::Options options = ServerProcess::MemshardOptions(args);
    options.binary = FindMemshard(argv0);
    auto started = ServerProcess::Start(std::move(options));
    if (!started.ok()) {
      std::fprintf(stderr, "cannot start memshard: %s\n",
                   started.status().ToString().c_str());
      return 2;
    }
    server = *std::move(started);
  } else if (FLAGS_target == "memcached") {
    auto started = MemcachedProcess::Start(
        {"-m", "256", "-t", absl::StrCat(FLAGS_memcached_threads)});
    if (!started.ok()) {
      std::fprintf(stderr, "cannot start memcached: %s\n",
                   started.status().ToString().c_str());
      return 2;
    }
    server = *std::move(started);
  } else if (FLAGS_target != "port" || FLAGS_port <= 0) {
    std::fprintf(stderr,
                 "--target must be memshard, memcached or port "
                 "(with --port)\n");
    return 2;
  }
  if (server != nullptr) port = server->port();

  WorkloadOptions options;
  options.connections = FLAGS_connections;
  options.keys = FLAGS_keys;
  options.requests = FLAGS_requests;
  options.seed = FLAGS_seed;
  options.max_padding = FLAGS_max_padding;
  options.large_value_size = FLAGS_large_value_size;
  options.query_worker_connections = FLAGS_target == "memshard";
  std::printf("target %s, port %d\n", FLAGS_target.c_str(), port);
  std::fflush(stdout);
  CheckOptions check;
  check.max_configurations = FLAGS_max_configurations;
  absl::StatusOr<TrialReport> report = RunTrial(port, options, check);
  if (!report.ok()) {
    std::fprintf(stderr, "trial failed: %s\n",
                 report.status().ToString().c_str());
    return 2;
  }
  std::printf("%s\n", report->Summary().c_str());
  if (!FLAGS_save_history.empty()) {
    absl::Status saved =
        WriteHistory(report->workload.history, FLAGS_save_history);
    std::printf("history: %s\n", saved.ok() ? FLAGS_save_history.c_str()
                                            : saved.ToString().c_str());
  }
  bool ok = report->ok();
  if (server != nullptr && FLAGS_target == "memshard") {
    const int status = server->Stop(absl::Seconds(30));
    std::printf("memshard stopped: %s\n", DescribeWaitStatus(status).c_str());
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) ok = false;
  }
  return ok ? 0 : 1;
}

}  // namespace
}  // namespace memshard::consistency

int main(int argc, char** argv) {
  gflags::ParseCommandLineFlags(&argc, &argv, true);
  return memshard::consistency::Main(argv[0]);
}
