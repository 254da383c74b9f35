#include "tools/soak/soak.h"

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cmath>
#include <fstream>
#include <memory>
#include <mutex>
#include <random>
#include <thread>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/strip.h"
#include "tools/consistency/text_client.h"

namespace memshard::soak {
namespace {

using consistency::TextConnection;
using consistency::TextValue;

constexpr size_t kBatchBytes = 256 * 1024;
constexpr absl::Duration kTimeout = absl::Seconds(60);
constexpr double kMiB = 1024.0 * 1024.0;

// Mean of a log-uniform distribution on [min, max].
double LogUniformMean(uint32_t min, uint32_t max) {
  if (max <= min) return min;
  return (max - min) / std::log(static_cast<double>(max) / min);
}

double MeanSize(const Phase& p) {
  return (1 - p.rare_fraction) * LogUniformMean(p.min, p.max) +
         p.rare_fraction * LogUniformMean(p.rare_min, p.rare_max);
}

uint32_t LogUniform(std::mt19937_64& random, uint32_t min, uint32_t max) {
  if (max <= min) return min;
  std::uniform_real_distribution<double> log_size(std::log(min), std::log(max));
  const auto size =
      static_cast<uint32_t>(std::lround(std::exp(log_size(random))));
  return std::clamp(size, min, max);
}

// Shared between the client threads, the sampler and RunSoak.
struct Shared {
  Shared(const SoakOptions& options, int port, absl::Time start)
      : options(options),
        port(port),
        start(start),
        end(start + options.duration) {}

  const SoakOptions& options;
  const int port;
  const absl::Time start;
  const absl::Time end;
  std::atomic<uint64_t> sets{0}, gets{0}, hits{0}, deletes{0}, value_bytes{0};
  // std::mutex, not absl::Mutex: TSan builds see through it (Debian's absl
  // is not TSan-instrumented).
  std::mutex mu;
  std::vector<std::string> errors;  // guarded by mu

  size_t PhaseAt(absl::Time t) const {
    const int64_t n = (t - start) / options.phase_length;
    return static_cast<size_t>(std::max<int64_t>(n, 0)) % Phases().size();
  }
  void Error(std::string e) {
    std::lock_guard<std::mutex> lock(mu);
    if (errors.size() < 10) errors.push_back(std::move(e));
  }
};

void ClientLoop(int index, Shared* shared) {
  absl::StatusOr<std::unique_ptr<TextConnection>> connection =
      TextConnection::Connect(shared->port, kTimeout);
  if (!connection.ok()) {
    shared->Error(std::string(connection.status().message()));
    return;
  }
  const SoakOptions& options = shared->options;
  std::mt19937_64 random(options.seed * 7919ull + index);
  const double limit = options.memory_limit_mb * kMiB;
  // Value bytes this thread may have sent by a given time.
  const double bytes_per_second =
      options.rate_mb_per_s * kMiB / std::max(1, options.connections);
  uint32_t largest = 0;
  for (const Phase& p : Phases())
    largest = std::max({largest, p.max, p.rare_max});
  const std::string filler(largest, 'v');
  std::string batch;
  uint64_t sent = 0;
  for (;;) {
    const absl::Time now = absl::Now();
    if (now >= shared->end) return;
    const Phase& phase = Phases()[shared->PhaseAt(now)];
    const auto keys = static_cast<uint64_t>(
        std::max(1.0, options.working_set * limit / MeanSize(phase)));
    std::uniform_int_distribution<uint64_t> key(0, keys - 1);
    std::uniform_int_distribution<int> percent(0, 99);
    std::uniform_real_distribution<double> unit(0, 1);
    batch.clear();
    int replies = 0;
    uint64_t batch_values = 0;
    while (batch.size() < kBatchBytes) {
      const int r = percent(random);
      const uint64_t k = key(random);
      if (r < 85) {
        const uint32_t size =
            unit(random) < phase.rare_fraction
                ? LogUniform(random, phase.rare_min, phase.rare_max)
                : LogUniform(random, phase.min, phase.max);
        absl::StrAppend(&batch, "set soak:", k, " 0 0 ", size, " noreply\r\n");
        batch.append(filler.data(), size);
        batch.append("\r\n");
        batch_values += size;
        shared->sets.fetch_add(1, std::memory_order_relaxed);
      } else if (r < 95) {
        absl::StrAppend(&batch, "get soak:", k, "\r\n");
        ++replies;
        shared->gets.fetch_add(1, std::memory_order_relaxed);
      } else {
        absl::StrAppend(&batch, "delete soak:", k, " noreply\r\n");
        shared->deletes.fetch_add(1, std::memory_order_relaxed);
      }
    }
    absl::Status s = (*connection)->Send(batch);
    for (int i = 0; s.ok() && i < replies; ++i) {
      absl::StatusOr<std::vector<TextValue>> values =
          (*connection)->ReadValues();
      if (!values.ok()) {
        s = values.status();
      } else if (!values->empty()) {
        shared->hits.fetch_add(1, std::memory_order_relaxed);
      }
    }
    if (!s.ok()) {
      shared->Error(absl::StrCat("connection ", index, ": ", s.message()));
      return;
    }
    shared->value_bytes.fetch_add(batch_values, std::memory_order_relaxed);
    sent += batch_values;
    if (bytes_per_second > 0) {
      const absl::Time due =
          shared->start + absl::Seconds(sent / bytes_per_second);
      const absl::Time until = std::min(due, shared->end);
      if (until > absl::Now()) absl::SleepFor(until - absl::Now());
    }
  }
}

// The resident size of the process's largest mappings (smaps), one a line.
std::string LargestMappings(pid_t pid) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/smaps"));
  std::vector<std::pair<int64_t, std::string>> mappings;
  std::string line, name;
  while (std::getline(in, line)) {
    absl::string_view rest = line;
    int64_t kb = 0;
    if (absl::ConsumePrefix(&rest, "Rss:")) {
      rest = absl::StripAsciiWhitespace(rest);
      if (absl::ConsumeSuffix(&rest, " kB") && absl::SimpleAtoi(rest, &kb)) {
        mappings.emplace_back(kb, name);
      }
    } else if (!line.empty() && line.find('-') < line.find(' ') &&
               std::isxdigit(static_cast<unsigned char>(line[0]))) {
      name = line;
    }
  }
  std::sort(mappings.rbegin(), mappings.rend());
  std::string out;
  for (size_t i = 0; i < mappings.size() && i < 5; ++i) {
    absl::StrAppend(&out, "          ", mappings[i].first / 1024,
                    " MiB resident: ", mappings[i].second, "\n");
  }
  return out;
}

int64_t StatOf(const std::vector<std::pair<std::string, std::string>>& stats,
               absl::string_view name) {
  for (const auto& [n, v] : stats) {
    int64_t value = 0;
    if (n == name && absl::SimpleAtoi(v, &value)) return value;
  }
  return -1;
}

}  // namespace

const std::vector<Phase>& Phases() {
  static const std::vector<Phase>* phases = new std::vector<Phase>{
      {"mixed 10B-100KB", 10, 100 * 1024, 0, 0, 0},
      {"small 10B-1KB", 10, 1024, 0, 0, 0},
      {"large 10KB-100KB", 10 * 1024, 100 * 1024, 0, 0, 0},
      {"bimodal 90% 10-100B, 10% 50-100KB", 10, 100, 0.1, 50 * 1024,
       100 * 1024},
      {"medium 1KB-10KB", 1024, 10 * 1024, 0, 0, 0},
  };
  return *phases;
}

int64_t ReadRss(pid_t pid) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/status"));
  std::string line;
  while (std::getline(in, line)) {
    absl::string_view rest = line;
    if (!absl::ConsumePrefix(&rest, "VmRSS:")) continue;
    rest = absl::StripAsciiWhitespace(rest);
    int64_t kb = 0;
    if (absl::ConsumeSuffix(&rest, " kB") &&
        absl::SimpleAtoi(absl::StripAsciiWhitespace(rest), &kb)) {
      return kb * 1024;
    }
  }
  return -1;
}

bool IsAsanBinary(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  const std::string kSymbol = "__asan_init";
  std::string window;
  char chunk[1 << 16];
  while (in.read(chunk, sizeof(chunk)) || in.gcount() > 0) {
    // Keep a symbol's worth of the previous chunk: it may straddle two.
    window.erase(
        0, window.size() > kSymbol.size() ? window.size() - kSymbol.size() : 0);
    window.append(chunk, in.gcount());
    if (window.find(kSymbol) != std::string::npos) return true;
  }
  return false;
}

std::string FindSanitizerReport(const std::string& log) {
  size_t first = std::string::npos;
  for (const char* marker :
       {"ERROR: LeakSanitizer", "LeakSanitizer has encountered",
        "ERROR: AddressSanitizer",
        "runtime error:", "WARNING: ThreadSanitizer"}) {
    first = std::min(first, log.find(marker));
  }
  if (first == std::string::npos) return "";
  return log.substr(first, 4000);
}

std::string SoakResult::Summary() const {
  std::string out = absl::StrFormat(
      "peak RSS %.1f MiB at %.0f s (%s) against a bound of %.1f MiB; final "
      "RSS %.1f MiB; %d samples, %d over the bound\n"
      "%.0f s: %u sets (%.1f GiB of values), %u gets (%u hits), %u deletes\n"
      "server: evictions %d, curr_items %d, bytes %.1f MiB of "
      "limit_maxbytes %.1f MiB",
      peak_rss / kMiB, absl::ToDoubleSeconds(peak_at), peak_phase,
      bound_bytes / kMiB, final_rss / kMiB, samples, samples_over_bound,
      absl::ToDoubleSeconds(elapsed), sets, value_bytes_sent / (kMiB * 1024),
      gets, hits, deletes, evictions, curr_items, bytes / kMiB,
      limit_maxbytes / kMiB);
  for (const std::string& e : errors) absl::StrAppend(&out, "\nerror: ", e);
  return out;
}

absl::StatusOr<SoakResult> RunSoak(int port, pid_t pid,
                                   const SoakOptions& options, std::FILE* log) {
  absl::StatusOr<std::unique_ptr<TextConnection>> stats_connection =
      TextConnection::Connect(port, kTimeout);
  if (!stats_connection.ok()) return stats_connection.status();
  if (ReadRss(pid) < 0) {
    return absl::NotFoundError(absl::StrCat("no VmRSS for pid ", pid));
  }

  SoakResult result;
  result.bound_bytes = options.memory_limit_mb * kMiB * options.rss_factor +
                       options.rss_slack_mb * kMiB;
  const absl::Time start = absl::Now();
  Shared shared(options, port, start);

  std::vector<std::thread> clients;
  for (int i = 0; i < options.connections; ++i) {
    clients.emplace_back(ClientLoop, i, &shared);
  }

  // The sampler runs here: one RSS sample per period, a progress line now
  // and then.
  auto sample = [&](absl::Time now) {
    const int64_t rss = ReadRss(pid);
    if (rss < 0) {
      shared.Error("the server's VmRSS became unreadable (did it exit?)");
      return false;
    }
    ++result.samples;
    result.final_rss = rss;
    if (rss > result.peak_rss) {
      result.peak_rss = rss;
      result.peak_at = now - start;
      result.peak_phase = Phases()[shared.PhaseAt(now)].name;
    }
    if (rss > result.bound_bytes) {
      ++result.samples_over_bound;
      if (log != nullptr && options.check_rss) {
        std::fprintf(log, "%6.0f s  RSS %.1f MiB is over the bound %.1f MiB\n",
                     absl::ToDoubleSeconds(now - start), rss / kMiB,
                     result.bound_bytes / kMiB);
        // Where the memory is, once: the largest mappings.
        if (result.samples_over_bound == 1) {
          std::fprintf(log, "%s", LargestMappings(pid).c_str());
        }
      }
    }
    return true;
  };
  absl::Time next_sample = start + options.sample_every;
  absl::Time next_report = start + options.report_every;
  for (;;) {
    const absl::Time wake = std::min(next_sample, shared.end);
    if (wake > absl::Now()) absl::SleepFor(wake - absl::Now());
    const absl::Time now = absl::Now();
    if (now >= shared.end) break;
    if (!sample(now)) break;
    next_sample += options.sample_every;
    if (now >= next_report && log != nullptr) {
      next_report += options.report_every;
      auto stats = (*stats_connection)->Stats();
      const int64_t evictions = stats.ok() ? StatOf(*stats, "evictions") : -1;
      const int64_t bytes = stats.ok() ? StatOf(*stats, "bytes") : -1;
      std::fprintf(
          log,
          "%6.0f s  %-34s RSS %6.1f MiB  peak %6.1f MiB  bound %.1f MiB  "
          "sent %.1f GiB  bytes %.1f MiB  evictions %lld\n",
          absl::ToDoubleSeconds(now - start),
          Phases()[shared.PhaseAt(now)].name, result.final_rss / kMiB,
          result.peak_rss / kMiB, result.bound_bytes / kMiB,
          shared.value_bytes.load() / (kMiB * 1024), bytes / kMiB,
          static_cast<long long>(evictions));
      std::fflush(log);
    }
  }
  for (std::thread& t : clients) t.join();
  result.elapsed = absl::Now() - start;
  sample(absl::Now());  // after the last batch

  result.sets = shared.sets.load();
  result.gets = shared.gets.load();
  result.hits = shared.hits.load();
  result.deletes = shared.deletes.load();
  result.value_bytes_sent = shared.value_bytes.load();
  auto stats = (*stats_connection)->Stats();
  if (stats.ok()) {
    result.evictions = StatOf(*stats, "evictions");
    result.curr_items = StatOf(*stats, "curr_items");
    result.bytes = StatOf(*stats, "bytes");
    result.limit_maxbytes = StatOf(*stats, "limit_maxbytes");
  } else {
    shared.Error(absl::StrCat("final stats: ", stats.status().message()));
  }
  std::lock_guard<std::mutex> lock(shared.mu);
  result.errors = shared.errors;
  return result;
}

}  // namespace memshard::soak
