// loadgen: a memcached-protocol load generator on memshard's own event loop.
// Flags are defined here only and turned into LoadgenOptions.
//
// Examples (port 11211 on 127.0.0.1 unless told otherwise):
//   loadgen --prefill --keys=1000000 --duration=10          closed loop, 9:1
//   loadgen --pipeline=16 --ratio=1:0 --expect_all_hits     16 gets a write
//   loadgen --multiget=16 --ratio=1:0                       16-key gets
//   loadgen --connections=8000 --rate=8000                  c10k open loop
//   loadgen --connections=0 --hold_idle=18000 --duration=5  idle memory
// Add --server_pid=PID for server CPU per op and RSS, --json for scripts.
//
// Exit status: 0 ok; 1 the run could not be set up; 2 bad flags; 3 the run
// finished but saw errors or failed its hit check (results still printed).

#include <signal.h>
#include <time.h>

#include <cstdio>
#include <iostream>

#include "absl/strings/str_cat.h"
#include "gflags/gflags.h"
#include "glog/logging.h"
#include "tools/loadgen/loadgen.h"

DEFINE_string(host, "127.0.0.1", "Server address or name.");
DEFINE_int32(port, 11211, "Server TCP port.");
DEFINE_string(unix_socket, "", "Connect to this unix socket instead of TCP.");
DEFINE_string(protocol, "text", "Wire protocol: text (meta, binary later).");
DEFINE_double(duration, 10, "Measured window, seconds (0: setup only).");
DEFINE_double(warmup, 1, "Load before the measured window, seconds.");
DEFINE_double(connect_timeout, 60, "Seconds to open all connections.");
DEFINE_int32(connections, 50, "Load connections, spread over --threads.");
DEFINE_int32(threads, 1, "Client threads (one event loop each).");
DEFINE_int32(pipeline, 1,
             "Closed loop: requests sent in one write per connection; the "
             "next batch leaves when all replies are in.");
DEFINE_int32(multiget, 1, "Keys per get request.");
DEFINE_double(rate, 0,
              "Open loop when > 0: requests per second over all "
              "connections; latency counts from the scheduled send time.");
DEFINE_string(arrival, "uniform", "Open-loop arrivals: uniform or poisson.");
DEFINE_string(ratio, "9:1", "get:set ratio.");
DEFINE_uint64(keys, 1000000, "Key-space size.");
DEFINE_int32(key_size, 32, "Key length in bytes.");
DEFINE_string(value_size, "100", "Value length: N or MIN-MAX.");
DEFINE_string(key_distribution, "uniform", "uniform or zipf.");
DEFINE_double(zipf_s, 0.99, "Zipf exponent.");
DEFINE_bool(prefill, false,
            "Set every key once before the load and require a 100% hit "
            "ratio afterwards.");
DEFINE_int32(prefill_pipeline, 64, "Sets per write while prefilling.");
DEFINE_bool(expect_all_hits, false,
            "Require a 100% hit ratio (keys loaded by an earlier --prefill).");
DEFINE_int32(hold_idle, 0, "Extra connections that stay silent.");
DEFINE_int32(server_pid, 0,
             "Server process: report its CPU per op and RSS from /proc.");
DEFINE_uint64(seed, 1, "Random seed (same seed, same request stream).");
DEFINE_int32(max_connects_in_flight, 256,
             "Per thread: connects pending at once (spares the accept queue).");
DEFINE_bool(json, false,
            "Print one JSON line on stdout (the text report goes to stderr).");

namespace memshard {
namespace loadgen {
namespace {

absl::StatusOr<LoadgenOptions> OptionsFromFlags() {
  LoadgenOptions o;
  o.host = FLAGS_host;
  o.port = FLAGS_port;
  o.unix_socket = FLAGS_unix_socket;
  o.protocol = FLAGS_protocol;
  o.duration_s = FLAGS_duration;
  o.warmup_s = FLAGS_warmup;
  o.connect_timeout_s = FLAGS_connect_timeout;
  o.connections = FLAGS_connections;
  o.threads = FLAGS_threads;
  o.pipeline = FLAGS_pipeline;
  o.multiget = FLAGS_multiget;
  o.rate = FLAGS_rate;
  absl::StatusOr<Arrival> arrival = ParseArrival(FLAGS_arrival);
  if (!arrival.ok()) return arrival.status();
  o.arrival = *arrival;
  absl::StatusOr<Ratio> ratio = ParseRatio(FLAGS_ratio);
  if (!ratio.ok()) return ratio.status();
  o.ratio = *ratio;
  o.keys = FLAGS_keys;
  o.key_size = FLAGS_key_size;
  absl::StatusOr<SizeRange> value_size = ParseSizeRange(FLAGS_value_size);
  if (!value_size.ok()) return value_size.status();
  o.value_size = *value_size;
  absl::StatusOr<KeyDistribution> distribution =
      ParseKeyDistribution(FLAGS_key_distribution);
  if (!distribution.ok()) return distribution.status();
  o.key_distribution = *distribution;
  o.zipf_s = FLAGS_zipf_s;
  o.prefill = FLAGS_prefill;
  o.prefill_pipeline = FLAGS_prefill_pipeline;
  o.expect_all_hits = FLAGS_expect_all_hits;
  o.hold_idle = FLAGS_hold_idle;
  o.server_pid = FLAGS_server_pid;
  o.seed = FLAGS_seed;
  o.max_connects_in_flight = FLAGS_max_connects_in_flight;
  if (absl::Status valid = ValidateOptions(o); !valid.ok()) return valid;
  return o;
}

int Main() {
  absl::StatusOr<LoadgenOptions> options = OptionsFromFlags();
  if (!options.ok()) {
    std::cerr << "loadgen: " << options.status().message() << "\n";
    return 2;
  }
  // SIGINT/SIGTERM are blocked in every thread (the client threads inherit
  // this mask) and taken synchronously by the controller's sleeps, so
  // Ctrl-C ends the measured window and the report still prints.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  signal(SIGPIPE, SIG_IGN);
  bool stop = false;
  auto sleep = [&](absl::Duration duration) {
    if (stop) return true;
    const absl::Time deadline = absl::Now() + duration;
    while (true) {
      const absl::Duration left = deadline - absl::Now();
      if (left <= absl::ZeroDuration()) return false;
      timespec timeout = absl::ToTimespec(left);
      int signal_number = sigtimedwait(&stop_signals, nullptr, &timeout);
      if (signal_number == SIGINT || signal_number == SIGTERM) {
        stop = true;
        return true;
      }
    }
  };

  absl::StatusOr<LoadgenResult> result = RunLoadgen(*options, sleep);
  if (!result.ok()) {
    std::cerr << "loadgen: " << result.status() << "\n";
    return 1;
  }
  if (FLAGS_json) {
    std::cerr << result->ToText();
    std::cout << result->ToJson() << std::endl;
  } else {
    std::cout << result->ToText() << std::flush;
  }
  const bool failed = result->stats.errors() > 0 ||
                      result->hit_check == LoadgenResult::HitCheck::kFailed;
  return failed ? 3 : 0;
}

}  // namespace
}  // namespace loadgen
}  // namespace memshard

int main(int argc, char** argv) {
  gflags::SetUsageMessage(
      "memcached-protocol load generator; see tools/loadgen/main.cc");
  gflags::ParseCommandLineFlags(&argc, &argv, true);
  FLAGS_logtostderr = true;
  google::InitGoogleLogging(argv[0]);
  return memshard::loadgen::Main();
}
