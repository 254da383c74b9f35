// The loadgen binary against real servers: Debian's memcached and
// //server:memshard, each started as a child process on a free port.

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "testing/memcached_process.h"
#include "testing/server_process.h"

namespace memshard {
namespace {

struct LoadgenRun {
  int exit_status = -1;  // the process's exit code, or -1
  std::string json;      // the last stdout line
};

// Starts the loadgen binary with `args`; if `interrupt_after` is set, sends
// SIGINT after that long. Waits for it to exit and returns its JSON line.
LoadgenRun RunLoadgen(
    const std::vector<std::string>& args,
    absl::Duration interrupt_after = absl::InfiniteDuration()) {
  const std::string binary = "tools/loadgen/loadgen";
  std::vector<std::string> argv_strings = {binary, "--json"};
  argv_strings.insert(argv_strings.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (std::string& arg : argv_strings) argv.push_back(arg.data());
  argv.push_back(nullptr);

  int out[2];
  EXPECT_EQ(pipe2(out, O_CLOEXEC), 0);
  pid_t pid = fork();
  if (pid == 0) {
    dup2(out[1], STDOUT_FILENO);
    execv(binary.c_str(), argv.data());
    _exit(127);
  }
  close(out[1]);
  if (interrupt_after != absl::InfiniteDuration()) {
    absl::SleepFor(interrupt_after);
    kill(pid, SIGINT);
  }
  std::string output;
  char buffer[4096];
  ssize_t n;
  while ((n = read(out[0], buffer, sizeof(buffer))) > 0)
    output.append(buffer, n);
  close(out[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  LoadgenRun run;
  if (WIFEXITED(status)) run.exit_status = WEXITSTATUS(status);
  while (!output.empty() && output.back() == '\n') output.pop_back();
  size_t last = output.rfind('\n');
  run.json = last == std::string::npos ? output : output.substr(last + 1);
  return run;
}

// The number after "name": in a flat JSON line; NaN when absent or null.
double Number(const std::string& json, const std::string& name) {
  const std::string needle = absl::StrCat("\"", name, "\":");
  size_t pos = json.find(needle);
  if (pos == std::string::npos) return std::nan("");
  pos += needle.size();
  size_t end = json.find_first_of(",}", pos);
  double value;
  if (!absl::SimpleAtod(json.substr(pos, end - pos), &value)) {
    return std::nan("");
  }
  return value;
}

bool Contains(const std::string& json, const std::string& fragment) {
  return json.find(fragment) != std::string::npos;
}

// Closed loop with prefill, pipelining and multigets: everything hits, no
// errors, and the server's CPU and RSS are reported.
void ExpectCleanClosedLoopRun(const ServerProcess& server) {
  LoadgenRun run = RunLoadgen({absl::StrCat("--port=", server.port()),
                               absl::StrCat("--server_pid=", server.pid()),
                               "--connections=20", "--threads=2",
                               "--pipeline=4", "--multiget=3", "--ratio=4:1",
                               "--keys=20000", "--value_size=50-150",
                               "--prefill", "--duration=1", "--warmup=0.3"});
  SCOPED_TRACE(run.json);
  EXPECT_EQ(run.exit_status, 0);
  EXPECT_TRUE(Contains(run.json, "\"hit_check\":\"pass\""));
  EXPECT_EQ(Number(run.json, "errors"), 0);
  EXPECT_EQ(Number(run.json, "prefill_stored"), 20000);
  EXPECT_GT(Number(run.json, "ops"), 100);
  EXPECT_EQ(Number(run.json, "hits"), Number(run.json, "get_keys"));
  EXPECT_GT(Number(run.json, "server_cpu_us_per_op"), 0);
  EXPECT_GT(Number(run.json, "server_rss_kb_after_prefill"),
            Number(run.json, "server_rss_kb_start"));
}

// Many connections at a low rate each (the c10k shape, scaled down), plus
// silent connections.
void ExpectOpenLoopRun(const ServerProcess& server) {
  LoadgenRun run = RunLoadgen({absl::StrCat("--port=", server.port()),
                               absl::StrCat("--server_pid=", server.pid()),
                               "--connections=1500", "--rate=1500",
                               "--threads=2", "--hold_idle=500", "--keys=1000",
                               "--duration=2", "--warmup=0.5"});
  SCOPED_TRACE(run.json);
  EXPECT_EQ(run.exit_status, 0);
  EXPECT_EQ(Number(run.json, "load_connections"), 1500);
  EXPECT_EQ(Number(run.json, "idle_connections"), 500);
  EXPECT_EQ(Number(run.json, "errors"), 0);
  EXPECT_NEAR(Number(run.json, "ops"), 3000, 300);
}

TEST(LoadgenIntegrationTest, ClosedLoopAgainstMemcached) {
  if (!MemcachedProcess::IsInstalled()) GTEST_SKIP() << "no memcached";
  absl::StatusOr<std::unique_ptr<ServerProcess>> server =
      MemcachedProcess::Start({"-t", "1"});
  ASSERT_TRUE(server.ok()) << server.status();
  ExpectCleanClosedLoopRun(**server);
}

TEST(LoadgenIntegrationTest, OpenLoopAgainstMemcached) {
  if (!MemcachedProcess::IsInstalled()) GTEST_SKIP() << "no memcached";
  absl::StatusOr<std::unique_ptr<ServerProcess>> server =
      MemcachedProcess::Start({"-t", "1", "-c", "4096"});
  ASSERT_TRUE(server.ok()) << server.status();
  ExpectOpenLoopRun(**server);
}

TEST(LoadgenIntegrationTest, ClosedLoopAgainstMemshard) {
  absl::StatusOr<std::unique_ptr<ServerProcess>> server =
      ServerProcess::StartMemshard({"--workers=1"});
  ASSERT_TRUE(server.ok()) << server.status();
  ExpectCleanClosedLoopRun(**server);
}

TEST(LoadgenIntegrationTest, OpenLoopAgainstMemshard) {
  absl::StatusOr<std::unique_ptr<ServerProcess>> server =
      ServerProcess::StartMemshard({"--workers=1", "--max_connections=4096"});
  ASSERT_TRUE(server.ok()) << server.status();
  ExpectOpenLoopRun(**server);
}

// Ctrl-C ends the window early and the report still prints.
TEST(LoadgenIntegrationTest, SigintPrintsWhatItHas) {
  if (!MemcachedProcess::IsInstalled()) GTEST_SKIP() << "no memcached";
  absl::StatusOr<std::unique_ptr<ServerProcess>> server =
      MemcachedProcess::Start();
  ASSERT_TRUE(server.ok()) << server.status();
  const absl::Time start = absl::Now();
  LoadgenRun run =
      RunLoadgen({absl::StrCat("--port=", (*server)->port()), "--connections=4",
                  "--duration=60", "--warmup=0.2"},
                 absl::Seconds(1.5));
  SCOPED_TRACE(run.json);
  EXPECT_LT(absl::Now() - start, absl::Seconds(20));
  EXPECT_EQ(run.exit_status, 0);
  EXPECT_TRUE(Contains(run.json, "\"interrupted\":true"));
  EXPECT_GT(Number(run.json, "ops"), 0);
  EXPECT_LT(Number(run.json, "window_s"), 10);
}

TEST(LoadgenIntegrationTest, BadFlagsExitWithStatus2) {
  LoadgenRun run = RunLoadgen({"--rate=10", "--pipeline=2"});
  EXPECT_EQ(run.exit_status, 2);
}

}  // namespace
}  // namespace memshard
