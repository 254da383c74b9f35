// memshardctl: the admin CLI. Talks the memcached text protocol to a
// memshard (or memcached) server: flags in, one view out.
//
//   memshardctl [--host=H --port=P | --unix_socket=PATH] COMMAND
//   COMMAND: stats | settings | latency | workers | conns | version | flush
//            | watch
//
// Exit status: 0 on success, 1 when the server is unreachable or answers
// badly, 2 on a usage error.

#include <unistd.h>

#include <cstdio>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gflags/gflags.h"
#include "tools/memshardctl/admin_client.h"
#include "tools/memshardctl/views.h"

DEFINE_string(host, "127.0.0.1", "Server host name or address");
DEFINE_int32(port, 11211, "Server TCP port");
DEFINE_string(unix_socket, "",
              "Server unix socket path (instead of --host/--port)");
DEFINE_int32(timeout_ms, 2000, "Connect and reply timeout");
DEFINE_int32(interval_ms, 1000, "watch: refresh period");
DEFINE_int32(iterations, 0, "watch: stop after this many frames (0: never)");

namespace memshard::ctl {
namespace {

constexpr char kUsage[] =
    "usage: memshardctl [--host=H --port=P | --unix_socket=PATH] COMMAND\n"
    "  stats     every general statistic\n"
    "  settings  the server's settings\n"
    "  latency   request latency per command family (memshard)\n"
    "  workers   per-worker connections, ops, bytes, buffers (memshard)\n"
    "  conns     open connections\n"
    "  version   the server's version\n"
    "  flush     flush_all: invalidate every item\n"
    "  watch     live view, refreshed every --interval_ms\n";

int Fail(const absl::Status& status) {
  fprintf(stderr, "memshardctl: %s\n", std::string(status.message()).c_str());
  return 1;
}

int Print(const std::string& text) {
  fputs(text.c_str(), stdout);
  fflush(stdout);
  return 0;
}

int ShowStats(AdminClient& client, const std::string& group,
              std::string (*format)(const StatList&)) {
  absl::StatusOr<StatList> stats = client.Stats(group);
  if (!stats.ok()) return Fail(stats.status());
  return Print(format(*stats));
}

absl::StatusOr<Sample> Observe(AdminClient& client) {
  Sample sample;
  sample.at = absl::Now();
  absl::StatusOr<StatList> stats = client.Stats();
  if (!stats.ok()) return stats.status();
  for (auto& [k, v] : *stats) sample.stats[k] = v;
  absl::StatusOr<StatList> latency = client.Stats("latency");
  if (latency.ok()) {
    for (auto& [k, v] : *latency) sample.latency[k] = v;
  } else if (latency.status().code() != absl::StatusCode::kNotFound) {
    return latency.status();  // NotFound: a server without it (memcached)
  }
  return sample;
}

int Watch(AdminClient& client, const Target& target) {
  const bool tty = isatty(STDOUT_FILENO);
  std::unique_ptr<Sample> previous;
  for (int frame = 0; FLAGS_iterations == 0 || frame < FLAGS_iterations;
       ++frame) {
    if (frame > 0) absl::SleepFor(absl::Milliseconds(FLAGS_interval_ms));
    absl::StatusOr<Sample> sample = Observe(client);
    if (!sample.ok()) return Fail(sample.status());
    std::string text = FormatWatch(previous.get(), *sample, target.ToString());
    // On a terminal, redraw in place like top; otherwise one frame after
    // another (logs, pipes, tests).
    Print(tty ? absl::StrCat("\x1b[H\x1b[2J", text) : absl::StrCat(text, "\n"));
    previous = std::make_unique<Sample>(*std::move(sample));
  }
  return 0;
}

int Run(int argc, char** argv) {
  if (argc != 2) {
    fputs(kUsage, stderr);
    return 2;
  }
  const std::string command = argv[1];
  if (command != "stats" && command != "settings" && command != "latency" &&
      command != "workers" && command != "conns" && command != "version" &&
      command != "flush" && command != "watch") {
    fprintf(stderr, "memshardctl: unknown command \"%s\"\n%s", argv[1], kUsage);
    return 2;
  }
  if (FLAGS_timeout_ms <= 0 || FLAGS_interval_ms <= 0 || FLAGS_iterations < 0) {
    fputs(
        "memshardctl: --timeout_ms and --interval_ms must be positive, "
        "--iterations >= 0\n",
        stderr);
    return 2;
  }
  Target target;
  target.host = FLAGS_host;
  target.port = FLAGS_port;
  target.unix_socket = FLAGS_unix_socket;
  absl::StatusOr<std::unique_ptr<AdminClient>> client =
      AdminClient::Connect(target, absl::Milliseconds(FLAGS_timeout_ms));
  if (!client.ok()) return Fail(client.status());
  AdminClient& c = **client;

  if (command == "stats") return ShowStats(c, "", FormatStats);
  if (command == "settings") return ShowStats(c, "settings", FormatStats);
  if (command == "latency") return ShowStats(c, "latency", FormatLatency);
  if (command == "workers") return ShowStats(c, "workers", FormatWorkers);
  if (command == "conns") return ShowStats(c, "conns", FormatConns);
  if (command == "watch") return Watch(c, target);
  if (command == "version") {
    absl::StatusOr<std::string> reply = c.Command("version");
    if (!reply.ok()) return Fail(reply.status());
    if (reply->rfind("VERSION ", 0) != 0) {
      return Fail(absl::DataLossError(
          absl::StrCat("unexpected reply to version: \"", *reply, "\"")));
    }
    return Print(absl::StrCat(reply->substr(8), "\n"));
  }
  // flush
  absl::StatusOr<std::string> reply = c.Command("flush_all");
  if (!reply.ok()) return Fail(reply.status());
  if (*reply != "OK") {
    return Fail(absl::FailedPreconditionError(
        absl::StrCat("flush_all answered \"", *reply, "\"")));
  }
  return Print("OK\n");
}

}  // namespace
}  // namespace memshard::ctl

int main(int argc, char** argv) {
  gflags::SetUsageMessage(memshard::ctl::kUsage);
  gflags::ParseCommandLineFlags(&argc, &argv, true);
  return memshard::ctl::Run(argc, argv);
}
