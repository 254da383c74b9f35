#include "tools/loadgen/loadgen.h"

#include <atomic>
#include <memory>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "tools/loadgen/client_thread.h"
#include "tools/loadgen/process_stats.h"
#include "tools/loadgen/protocol.h"

namespace memshard {
namespace loadgen {
namespace {

// File descriptors the run needs besides its connections: stdio, and an
// epoll fd, an eventfd and a timerfd per thread, plus slack.
constexpr uint64_t kSpareFds = 32;

enum class WaitResult { kDone, kInterrupted, kTimedOut };

// Polls `remaining` down to zero, sleeping in short steps so that a SIGINT
// is seen promptly.
WaitResult WaitForThreads(const std::atomic<int>& remaining,
                          absl::Duration timeout, InterruptibleSleep& sleep) {
  const absl::Time deadline = absl::Now() + timeout;
  while (remaining.load(std::memory_order_acquire) > 0) {
    if (sleep(absl::Milliseconds(5))) return WaitResult::kInterrupted;
    if (absl::Now() >= deadline) return WaitResult::kTimedOut;
  }
  return WaitResult::kDone;
}

int64_t RssOrUnknown(pid_t pid) {
  if (pid <= 0) return -1;
  absl::StatusOr<int64_t> rss = ReadProcessRssKb(pid);
  return rss.ok() ? *rss : -1;
}

int64_t CpuOrUnknown(pid_t pid) {
  if (pid <= 0) return -1;
  absl::StatusOr<int64_t> cpu = ReadProcessCpuMicros(pid);
  return cpu.ok() ? *cpu : -1;
}

// Splits `total` over `parts` as evenly as possible.
int Share(int total, int parts, int index) {
  return total / parts + (index < total % parts ? 1 : 0);
}

std::string LatencyJson(const LatencyHistogram& h) {
  auto us = [](int64_t ns) { return static_cast<double>(ns) / 1000.0; };
  return absl::StrFormat(
      "{\"count\":%d,\"mean\":%.3f,\"p50\":%.3f,\"p90\":%.3f,\"p99\":%.3f,"
      "\"p999\":%.3f,\"max\":%.3f}",
      h.count(), h.Mean() / 1000.0, us(h.Percentile(50)), us(h.Percentile(90)),
      us(h.Percentile(99)), us(h.Percentile(99.9)), us(h.max()));
}

std::string LatencyText(const LatencyHistogram& h) {
  auto us = [](int64_t ns) { return static_cast<double>(ns) / 1000.0; };
  return absl::StrFormat(
      "p50 %.1f  p90 %.1f  p99 %.1f  p99.9 %.1f  max %.1f  (mean %.1f, n=%d)",
      us(h.Percentile(50)), us(h.Percentile(90)), us(h.Percentile(99)),
      us(h.Percentile(99.9)), us(h.max()), h.Mean() / 1000.0, h.count());
}

std::string NumberOrNull(double value, bool known) {
  return known ? absl::StrFormat("%.3f", value) : "null";
}

const char* HitCheckName(LoadgenResult::HitCheck check) {
  switch (check) {
    case LoadgenResult::HitCheck::kPassed:
      return "pass";
    case LoadgenResult::HitCheck::kFailed:
      return "fail";
    default:
      return "not_checked";
  }
}

}  // namespace

double LoadgenResult::server_cpu_us_per_op() const {
  if (server_cpu_us < 0 || stats.ops == 0) return -1;
  return static_cast<double>(server_cpu_us) / static_cast<double>(stats.ops);
}

double LoadgenResult::loadgen_cpu_us_per_op() const {
  if (loadgen_cpu_us < 0 || stats.ops == 0) return -1;
  return static_cast<double>(loadgen_cpu_us) / static_cast<double>(stats.ops);
}

std::string LoadgenResult::ToText() const {
  const LoadgenOptions& o = options;
  std::string text = absl::StrFormat(
      "target %s (%s), %d connections over %d threads, %s, get:set %d:%d, "
      "%d keys of %d bytes, values %d-%d bytes\n",
      o.unix_socket.empty() ? absl::StrCat(o.host, ":", o.port) : o.unix_socket,
      o.protocol, o.connections, o.threads,
      o.rate > 0 ? absl::StrFormat("open loop %.0f req/s", o.rate)
                 : absl::StrFormat("closed loop, pipeline %d", o.pipeline),
      o.ratio.gets, o.ratio.sets, o.keys, o.key_size, o.value_size.min,
      o.value_size.max);
  if (o.multiget > 1)
    absl::StrAppend(&text, "multiget ", o.multiget, " keys\n");
  if (o.prefill) {
    absl::StrAppendFormat(&text, "prefill: %d stored, %d failed in %.2f s\n",
                          stats.prefill_stored, stats.prefill_errors,
                          prefill_s);
  }
  absl::StrAppendFormat(
      &text,
      "window %.2f s%s: %d ops, %.0f ops/s; gets %d (keys %d: hits %d, "
      "misses %d), sets %d\n",
      window_s, interrupted ? " (interrupted)" : "", stats.ops,
      ops_per_second(), stats.gets, stats.get_keys, stats.hits, stats.misses,
      stats.sets);
  absl::StrAppend(&text, "latency us: ", LatencyText(stats.latency), "\n");
  if (o.rate > 0) {
    absl::StrAppend(&text, "send lag us: ", LatencyText(stats.send_lag), "\n");
  }
  absl::StrAppendFormat(
      &text,
      "errors %d (server %d, not_stored %d, bad replies %d, protocol %d, "
      "disconnects %d, connect failures %d, prefill %d); outstanding %d\n",
      stats.errors(), stats.server_errors, stats.not_stored, stats.bad_replies,
      stats.protocol_errors, stats.disconnects, stats.connect_failures,
      stats.prefill_errors, stats.outstanding);
  absl::StrAppendFormat(&text,
                        "connections open: %d load, %d idle (%d closed by "
                        "server)\n",
                        stats.load_connections, stats.idle_connections,
                        stats.idle_closed);
  if (o.server_pid > 0) {
    absl::StrAppendFormat(
        &text,
        "server pid %d: cpu %.2f us/op; rss kB start %d, after prefill %d, "
        "end %d\n",
        o.server_pid, server_cpu_us_per_op(), server_rss_kb_start,
        server_rss_kb_after_prefill, server_rss_kb_end);
  }
  absl::StrAppendFormat(&text, "loadgen cpu %.2f us/op; hit check: %s\n",
                        loadgen_cpu_us_per_op(), HitCheckName(hit_check));
  return text;
}

std::string LoadgenResult::ToJson() const {
  const LoadgenOptions& o = options;
  const double hit_ratio = stats.get_keys == 0
                               ? 0
                               : static_cast<double>(stats.hits) /
                                     static_cast<double>(stats.get_keys);
  const double cpu_per_op = server_cpu_us_per_op();
  const double self_per_op = loadgen_cpu_us_per_op();
  std::string json = absl::StrFormat(
      "{\"protocol\":\"%s\",\"connections\":%d,\"threads\":%d,\"pipeline\":%d,"
      "\"multiget\":%d,\"rate\":%.1f,\"hold_idle\":%d,\"keys\":%d,",
      o.protocol, o.connections, o.threads, o.pipeline, o.multiget, o.rate,
      o.hold_idle, o.keys);
  absl::StrAppendFormat(
      &json,
      "\"window_s\":%.6f,\"interrupted\":%s,\"ops\":%d,\"ops_per_sec\":%.1f,"
      "\"gets\":%d,\"sets\":%d,\"get_keys\":%d,\"hits\":%d,\"misses\":%d,"
      "\"hit_ratio\":%.6f,",
      window_s, interrupted ? "true" : "false", stats.ops, ops_per_second(),
      stats.gets, stats.sets, stats.get_keys, stats.hits, stats.misses,
      hit_ratio);
  absl::StrAppendFormat(
      &json,
      "\"errors\":%d,\"server_errors\":%d,\"not_stored\":%d,"
      "\"bad_replies\":%d,\"protocol_errors\":%d,\"disconnects\":%d,"
      "\"connect_failures\":%d,\"outstanding\":%d,",
      stats.errors(), stats.server_errors, stats.not_stored, stats.bad_replies,
      stats.protocol_errors, stats.disconnects, stats.connect_failures,
      stats.outstanding);
  absl::StrAppendFormat(
      &json,
      "\"prefill_stored\":%d,\"prefill_errors\":%d,\"prefill_s\":%.3f,"
      "\"hit_check\":\"%s\",\"load_connections\":%d,\"idle_connections\":%d,"
      "\"idle_closed\":%d,",
      stats.prefill_stored, stats.prefill_errors, prefill_s,
      HitCheckName(hit_check), stats.load_connections, stats.idle_connections,
      stats.idle_closed);
  absl::StrAppend(&json, "\"latency_us\":", LatencyJson(stats.latency),
                  ",\"get_latency_us\":", LatencyJson(stats.get_latency),
                  ",\"set_latency_us\":", LatencyJson(stats.set_latency),
                  ",\"send_lag_us\":", LatencyJson(stats.send_lag), ",");
  absl::StrAppendFormat(
      &json,
      "\"server_pid\":%d,\"server_cpu_us\":%s,\"server_cpu_us_per_op\":%s,"
      "\"server_rss_kb_start\":%s,\"server_rss_kb_after_prefill\":%s,"
      "\"server_rss_kb_end\":%s,\"loadgen_cpu_us_per_op\":%s}",
      o.server_pid, NumberOrNull(server_cpu_us, server_cpu_us >= 0),
      NumberOrNull(cpu_per_op, cpu_per_op >= 0),
      NumberOrNull(server_rss_kb_start, server_rss_kb_start >= 0),
      NumberOrNull(server_rss_kb_after_prefill,
                   server_rss_kb_after_prefill >= 0),
      NumberOrNull(server_rss_kb_end, server_rss_kb_end >= 0),
      NumberOrNull(self_per_op, self_per_op >= 0));
  return json;
}

absl::StatusOr<LoadgenResult> RunLoadgen(const LoadgenOptions& options,
                                         InterruptibleSleep sleep) {
  if (absl::Status valid = ValidateOptions(options); !valid.ok()) return valid;
  absl::StatusOr<std::unique_ptr<Protocol>> protocol =
      MakeProtocol(options.protocol);
  if (!protocol.ok()) return protocol.status();
  absl::StatusOr<Target> target = ResolveTarget(options);
  if (!target.ok()) return target.status();

  absl::StatusOr<uint64_t> fd_limit = RaiseFdLimit();
  if (!fd_limit.ok()) return fd_limit.status();
  const uint64_t fds_needed =
      static_cast<uint64_t>(options.connections + options.hold_idle) +
      kSpareFds + 3 * static_cast<uint64_t>(options.threads);
  if (fds_needed > *fd_limit) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "need ", fds_needed, " file descriptors but RLIMIT_NOFILE is ",
        *fd_limit, "; lower --connections/--hold_idle or raise the limit"));
  }

  LoadgenResult result;
  result.options = options;
  const pid_t server = options.server_pid;
  result.server_rss_kb_start = RssOrUnknown(server);

  Window window;
  RunContext context;
  context.options = &result.options;
  context.protocol = protocol->get();
  context.target = *target;
  context.window = &window;

  std::vector<std::unique_ptr<ClientThread>> threads;
  int first_load = 0;
  for (int i = 0; i < options.threads; ++i) {
    const int load = Share(options.connections, options.threads, i);
    const int idle = Share(options.hold_idle, options.threads, i);
    threads.push_back(
        std::make_unique<ClientThread>(context, i, load, idle, first_load));
    first_load += load;
  }
  for (auto& thread : threads) thread->Start();

  auto finish = [&]() -> absl::StatusOr<LoadgenResult> {
    for (auto& thread : threads) thread->Stop();
    for (auto& thread : threads) result.stats.Merge(thread->stats());
    if (options.prefill || options.expect_all_hits) {
      const bool hit_all =
          result.stats.misses == 0 && result.stats.prefill_errors == 0 &&
          result.stats.bad_replies == 0 && result.stats.server_errors == 0;
      result.hit_check = result.stats.get_keys == 0 && !options.prefill
                             ? LoadgenResult::HitCheck::kNotChecked
                         : hit_all ? LoadgenResult::HitCheck::kPassed
                                   : LoadgenResult::HitCheck::kFailed;
    }
    return result;
  };

  // Connect.
  std::atomic<int> remaining{options.threads};
  for (auto& thread : threads) {
    thread->BeginConnect(
        [&remaining] { remaining.fetch_sub(1, std::memory_order_release); });
  }
  WaitResult waited = WaitForThreads(
      remaining, absl::Seconds(options.connect_timeout_s), sleep);
  if (waited == WaitResult::kTimedOut) {
    for (auto& thread : threads) thread->Stop();
    return absl::DeadlineExceededError(
        absl::StrCat("connections not established within ",
                     options.connect_timeout_s, " s"));
  }
  if (waited == WaitResult::kInterrupted) {
    result.interrupted = true;
    return finish();
  }

  // Prefill: each thread sets its own contiguous share of the key space.
  if (options.prefill) {
    const int64_t start = MonotonicNanos();
    remaining.store(options.threads);
    for (int i = 0; i < options.threads; ++i) {
      const uint64_t n = static_cast<uint64_t>(options.threads);
      const uint64_t i64 = static_cast<uint64_t>(i);
      threads[i]->BeginPrefill(
          options.keys * i64 / n, options.keys * (i64 + 1) / n,
          [&remaining] { remaining.fetch_sub(1, std::memory_order_release); });
    }
    waited = WaitForThreads(remaining, absl::InfiniteDuration(), sleep);
    result.prefill_s = static_cast<double>(MonotonicNanos() - start) / 1e9;
    result.server_rss_kb_after_prefill = RssOrUnknown(server);
    if (waited == WaitResult::kInterrupted) {
      result.interrupted = true;
      return finish();
    }
  }

  // Load: warm up, then measure.
  if (options.duration_s > 0) {
    if (options.connections > 0) {
      // A moment ahead, so every thread's first open-loop send is on time.
      const int64_t start = MonotonicNanos() + 2000000;
      for (auto& thread : threads) thread->BeginLoad(start);
    }
    if (sleep(absl::Seconds(options.warmup_s))) {
      result.interrupted = true;
      return finish();
    }
    const int64_t cpu_before = CpuOrUnknown(server);
    const int64_t self_before = SelfCpuMicros();
    const int64_t window_start = MonotonicNanos();
    window.start_ns.store(window_start);
    result.interrupted = sleep(absl::Seconds(options.duration_s));
    const int64_t window_end = MonotonicNanos();
    window.end_ns.store(window_end);
    const int64_t cpu_after = CpuOrUnknown(server);
    result.loadgen_cpu_us = SelfCpuMicros() - self_before;
    if (cpu_before >= 0 && cpu_after >= 0) {
      result.server_cpu_us = cpu_after - cpu_before;
    }
    result.window_s = static_cast<double>(window_end - window_start) / 1e9;
  }
  result.server_rss_kb_end = RssOrUnknown(server);
  return finish();
}

}  // namespace loadgen
}  // namespace memshard
