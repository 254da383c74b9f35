// memcheck: memory figures of memshard and memcached, side by side, same
// items, same limit.
//
//   bazel run //tools/memcheck -- --mode=metadata
//     1M items (32 B keys, 100 B values) into an empty server: RSS growth per
//     item minus the 132 bytes of key + value = metadata bytes per item.
//   bazel run //tools/memcheck -- --mode=overfill --limit_mb=64
//     4x the limit in values of 10 B..100 KB (log-uniform): peak and final RSS
//     against the bound limit x 1.10 + 32 MiB.
//
// --env=LD_PRELOAD=/usr/lib/x86_64-linux-gnu/libjemalloc.so.2 runs memshard
// with another allocator (the allocator experiment); --servers=memshard
// skips memcached.

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "gflags/gflags.h"
#include "testing/memcached_process.h"
#include "testing/server_process.h"
#include "tools/memcheck/fill.h"

DEFINE_string(mode, "metadata", "metadata | overfill");
DEFINE_string(servers, "memshard,memcached", "Which servers to measure");
DEFINE_string(memshard, "", "memshard binary (default: from runfiles)");
DEFINE_string(env, "",
              "Environment for memshard, space-separated K=V (allocator "
              "experiments: LD_PRELOAD=/usr/lib/x86_64-linux-gnu/"
              "libjemalloc.so.2, MALLOC_CONF=..., GLIBC_TUNABLES=...)");
DEFINE_string(memshard_args, "--workers=2",
              "Extra memshard flags, comma-separated");
DEFINE_uint64(items, 1000000, "metadata: items to insert");
DEFINE_uint32(key_size, 32, "metadata: key bytes");
DEFINE_uint32(value_size, 100, "metadata: value bytes");
DEFINE_uint64(limit_mb, 64, "Memory limit of both servers (metadata: 1024)");
DEFINE_double(overfill, 4, "overfill: value bytes sent, in limits");
DEFINE_string(phases, "10-102400",
              "overfill: value size ranges MIN-MAX, comma-separated, sent one "
              "after another (each an equal share of the bytes)");

namespace memshard::memcheck {
namespace {

std::string DefaultMemshard(const char* argv0) {
  for (const std::string& candidate :
       {absl::StrCat(argv0, ".runfiles/memshard/server/memshard"),
        std::string("bazel-bin/server/memshard")}) {
    if (access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return "server/memshard";
}

absl::StatusOr<std::unique_ptr<ServerProcess>> StartServer(
    const std::string& name, const std::string& memshard, uint64_t limit_mb) {
  if (name == "memcached") {
    return MemcachedProcess::Start({"-m", absl::StrCat(limit_mb)});
  }
  std::vector<std::string> args =
      absl::StrSplit(FLAGS_memshard_args, ',', absl::SkipEmpty());
  args.push_back(absl::StrCat("--memory_limit_mb=", limit_mb));
  const std::vector<std::string> env =
      absl::StrSplit(FLAGS_env, ' ', absl::SkipEmpty());
  return StartMemshardAt(memshard, args, env);
}

int Metadata(const std::string& name, const std::string& memshard) {
  const uint64_t limit_mb = FLAGS_limit_mb < 1024 ? 1024 : FLAGS_limit_mb;
  auto server = StartServer(name, memshard, limit_mb);
  if (!server.ok()) {
    std::fprintf(stderr, "%s: %s\n", name.c_str(),
                 std::string(server.status().message()).c_str());
    return 1;
  }
  absl::SleepFor(absl::Milliseconds(300));
  absl::StatusOr<int64_t> before = SettledRss(**server);
  FillOptions options;
  options.items = FLAGS_items;
  options.key_size = FLAGS_key_size;
  options.min_value_size = options.max_value_size = FLAGS_value_size;
  options.sample_every_bytes = ~0ull;
  absl::StatusOr<FillResult> filled = Fill(**server, options);
  if (!before.ok() || !filled.ok()) {
    std::fprintf(stderr, "%s: fill failed\n", name.c_str());
    return 1;
  }
  const StatsMap stats = (*server)->Stats();
  const auto stat = [&](const char* key) {
    auto it = stats.find(key);
    return it == stats.end() ? std::string("?") : it->second;
  };
  const double growth = static_cast<double>(filled->final_rss - *before);
  const double per_item = growth / static_cast<double>(filled->items);
  const double payload = FLAGS_key_size + FLAGS_value_size;
  std::printf(
      "%-9s metadata: %.1f bytes/item (RSS %lld -> %lld, +%.1f bytes/item for "
      "%llu items of %u B key + %u B value; curr_items=%s evictions=%s, "
      "limit %llu MB%s%s)\n",
      name.c_str(), per_item - payload, static_cast<long long>(*before),
      static_cast<long long>(filled->final_rss), per_item,
      static_cast<unsigned long long>(filled->items), FLAGS_key_size,
      FLAGS_value_size, stat("curr_items").c_str(), stat("evictions").c_str(),
      static_cast<unsigned long long>(limit_mb),
      name == "memshard" && !FLAGS_env.empty() ? ", env " : "",
      name == "memshard" ? FLAGS_env.c_str() : "");
  return 0;
}

int Overfill(const std::string& name, const std::string& memshard) {
  auto server = StartServer(name, memshard, FLAGS_limit_mb);
  if (!server.ok()) {
    std::fprintf(stderr, "%s: %s\n", name.c_str(),
                 std::string(server.status().message()).c_str());
    return 1;
  }
  const uint64_t limit = FLAGS_limit_mb << 20;
  const std::vector<std::string> phases =
      absl::StrSplit(FLAGS_phases, ',', absl::SkipEmpty());
  FillResult total;
  const absl::Time start = absl::Now();
  for (const std::string& phase : phases) {
    std::pair<std::string, std::string> range = absl::StrSplit(phase, '-');
    FillOptions options;
    options.value_bytes =
        static_cast<uint64_t>(FLAGS_overfill * limit / phases.size());
    if (!absl::SimpleAtoi(range.first, &options.min_value_size) ||
        !absl::SimpleAtoi(range.second, &options.max_value_size)) {
      std::fprintf(stderr, "bad --phases entry %s\n", phase.c_str());
      return 2;
    }
    options.key_size = 16;
    options.first_key = total.items;
    options.seed = static_cast<uint32_t>(total.items + 1);
    absl::StatusOr<FillResult> filled = Fill(**server, options);
    if (!filled.ok()) {
      std::fprintf(stderr, "%s: %s\n", name.c_str(),
                   std::string(filled.status().message()).c_str());
      return 1;
    }
    total.items += filled->items;
    total.value_bytes += filled->value_bytes;
    total.peak_rss = std::max(total.peak_rss, filled->peak_rss);
    total.final_rss = filled->final_rss;
  }
  const FillResult* filled = &total;
  const double seconds = absl::ToDoubleSeconds(absl::Now() - start);
  const StatsMap stats = (*server)->Stats();
  const auto stat = [&](const char* key) {
    auto it = stats.find(key);
    return it == stats.end() ? std::string("?") : it->second;
  };
  const double bound = limit * 1.10 + (32 << 20);
  std::printf(
      "%-9s overfill: peak RSS %.1f MiB, final %.1f MiB, bound %.1f MiB "
      "(%s; limit %llu MiB, %.0fx = %llu items / %.1f MiB of values sized %s "
      "in %.1f s; bytes=%s curr_items=%s evictions=%s%s%s)\n",
      name.c_str(), filled->peak_rss / 1048576.0, filled->final_rss / 1048576.0,
      bound / 1048576.0, filled->peak_rss <= bound ? "within" : "OVER",
      static_cast<unsigned long long>(FLAGS_limit_mb), FLAGS_overfill,
      static_cast<unsigned long long>(filled->items),
      filled->value_bytes / 1048576.0, FLAGS_phases.c_str(), seconds,
      stat("bytes").c_str(), stat("curr_items").c_str(),
      stat("evictions").c_str(),
      name == "memshard" && !FLAGS_env.empty() ? ", env " : "",
      name == "memshard" ? FLAGS_env.c_str() : "");
  return 0;
}

}  // namespace
}  // namespace memshard::memcheck

int main(int argc, char** argv) {
  gflags::SetUsageMessage("memory figures of memshard and memcached");
  gflags::ParseCommandLineFlags(&argc, &argv, true);
  const std::string memshard =
      FLAGS_memshard.empty() ? memshard::memcheck::DefaultMemshard(argv[0])
                             : FLAGS_memshard;
  int status = 0;
  const std::vector<std::string> servers =
      absl::StrSplit(FLAGS_servers, ',', absl::SkipEmpty());
  for (const std::string& name : servers) {
    if (FLAGS_mode == "metadata") {
      status |= memshard::memcheck::Metadata(name, memshard);
    } else if (FLAGS_mode == "overfill") {
      status |= memshard::memcheck::Overfill(name, memshard);
    } else {
      std::fprintf(stderr, "unknown --mode=%s\n", FLAGS_mode.c_str());
      return 2;
    }
  }
  return status;
}
