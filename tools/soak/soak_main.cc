// soak: starts memshard with a memory limit, churns it (soak.h) for
// --duration, samples its RSS every second against limit x 1.10 + 32 MiB,
// then stops it with SIGTERM and checks that it exited 0 with no sanitizer
// report in its log (with an ASan build of memshard that is the
// LeakSanitizer check at shutdown). Exits 0 only if all of that held.
//
//   bazel build -c opt //tools/soak
//   bazel-bin/tools/soak/soak --duration=10m
//   bazel build --config=asan //tools/soak    # RSS bound off, LSan on

#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "gflags/gflags.h"
#include "testing/memcached_process.h"
#include "testing/server_process.h"
#include "tools/soak/soak.h"

DEFINE_string(target, "memshard",
              "memshard | memcached (Debian's, -m and -t 2: reference "
              "figures; no bound or exit checks)");
DEFINE_string(memshard, "", "memshard binary (default: from runfiles)");
DEFINE_string(memshard_args, "--workers=2",
              "Comma-separated memshard flags (besides --memory_limit_mb)");
DEFINE_uint64(memory_limit_mb, 64, "memshard's --memory_limit_mb");
DEFINE_string(duration, "10m", "How long to churn (absl duration: 30s, 10m)");
DEFINE_string(phase, "30s", "How long each value-size distribution lasts");
DEFINE_double(working_set, 4, "Key space, in memory limits of values");
DEFINE_int32(connections, 4, "Client connections, one thread each");
DEFINE_double(rate_mb, 0, "Value MiB/s over all connections (0: unlimited)");
DEFINE_string(check_rss, "auto",
              "yes | no | auto (yes unless memshard is an ASan build)");
DEFINE_uint32(seed, 1, "Random seed");

namespace memshard::soak {
namespace {

std::string FindMemshard(const char* argv0) {
  if (!FLAGS_memshard.empty()) return FLAGS_memshard;
  const std::string beside =
      absl::StrCat(argv0, ".runfiles/memshard/server/memshard");
  if (access(beside.c_str(), X_OK) == 0) return beside;
  return ServerProcess::MemshardBinary();
}

// The same churn against Debian's memcached, for its RSS figures.
int RunMemcached(SoakOptions options) {
  options.check_rss = false;
  auto server = MemcachedProcess::Start(
      {"-m", absl::StrCat(options.memory_limit_mb), "-t", "2"});
  if (!server.ok()) {
    std::fprintf(stderr, "cannot start memcached: %s\n",
                 server.status().ToString().c_str());
    return 2;
  }
  std::printf("memcached -m %llu -t 2, pid %d, port %d; soak %s\n",
              static_cast<unsigned long long>(options.memory_limit_mb),
              (*server)->pid(), (*server)->port(), FLAGS_duration.c_str());
  std::fflush(stdout);
  absl::StatusOr<SoakResult> result =
      RunSoak((*server)->port(), (*server)->pid(), options, stdout);
  if (!result.ok()) {
    std::fprintf(stderr, "soak failed: %s\n",
                 result.status().ToString().c_str());
    return 2;
  }
  std::printf("%s\n", result->Summary().c_str());
  return result->errors.empty() ? 0 : 1;
}

int Main(const char* argv0) {
  SoakOptions options;
  if (!absl::ParseDuration(FLAGS_duration, &options.duration) ||
      !absl::ParseDuration(FLAGS_phase, &options.phase_length) ||
      options.phase_length <= absl::ZeroDuration()) {
    std::fprintf(stderr, "bad --duration or --phase\n");
    return 2;
  }
  options.memory_limit_mb = FLAGS_memory_limit_mb;
  options.working_set = FLAGS_working_set;
  options.connections = FLAGS_connections;
  options.rate_mb_per_s = FLAGS_rate_mb;
  options.seed = FLAGS_seed;
  if (FLAGS_target == "memcached") return RunMemcached(options);
  if (FLAGS_target != "memshard") {
    std::fprintf(stderr, "--target must be memshard or memcached\n");
    return 2;
  }

  const std::string binary = FindMemshard(argv0);
  const bool asan = IsAsanBinary(binary);
  if (FLAGS_check_rss == "auto") {
    options.check_rss = !asan;
  } else if (FLAGS_check_rss == "yes" || FLAGS_check_rss == "no") {
    options.check_rss = FLAGS_check_rss == "yes";
  } else {
    std::fprintf(stderr, "--check_rss must be yes, no or auto\n");
    return 2;
  }
  std::vector<std::string> args =
      absl::StrSplit(FLAGS_memshard_args, ',', absl::SkipEmpty());
  args.push_back(absl::StrCat("--memory_limit_mb=", FLAGS_memory_limit_mb));
  ServerProcess::Options server_options = ServerProcess::MemshardOptions(args);
  server_options.binary = binary;
  auto server = ServerProcess::Start(std::move(server_options));
  if (!server.ok()) {
    std::fprintf(stderr, "cannot start memshard: %s\n",
                 server.status().ToString().c_str());
    return 2;
  }
  std::printf(
      "memshard %s (%s build), pid %d, port %d, %s; soak %s, RSS "
      "bound %s\n",
      binary.c_str(), asan ? "ASan" : "plain", (*server)->pid(),
      (*server)->port(), absl::StrJoin(args, " ").c_str(),
      FLAGS_duration.c_str(), options.check_rss ? "on" : "off");
  std::fflush(stdout);

  absl::StatusOr<SoakResult> result =
      RunSoak((*server)->port(), (*server)->pid(), options, stdout);
  if (!result.ok()) {
    std::fprintf(stderr, "soak failed: %s\n",
                 result.status().ToString().c_str());
    return 2;
  }
  std::printf("%s\n", result->Summary().c_str());
  bool ok = result->errors.empty();
  if (options.check_rss && !result->rss_ok()) {
    std::printf("FAIL: RSS exceeded the bound\n");
    ok = false;
  }

  // SIGTERM: memshard drains and returns from main, so LeakSanitizer (in an
  // ASan build) runs its exit-time leak check and reports in the log.
  const int status = (*server)->Stop(absl::Seconds(60));
  std::printf("memshard stopped: %s\n", DescribeWaitStatus(status).c_str());
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) ok = false;
  const std::string report = FindSanitizerReport((*server)->ReadLog());
  if (!report.empty()) {
    std::printf("FAIL: sanitizer report in %s:\n%s\n",
                (*server)->log_path().c_str(), report.c_str());
    ok = false;
  } else if (asan) {
    std::printf("LeakSanitizer: no report at shutdown\n");
  }
  std::printf("RESULT: %s\n", ok ? "PASS" : "FAIL");
  return ok ? 0 : 1;
}

}  // namespace
}  // namespace memshard::soak

int main(int argc, char** argv) {
  gflags::ParseCommandLineFlags(&argc, &argv, true);
  return memshard::soak::Main(argv[0]);
}
