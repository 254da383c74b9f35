// store_bench: a fixed, deterministic sequence of Store calls for counting
// instructions per request with callgrind (wall-clock timings on a shared
// machine are noise; instruction counts are not).
//
//   bazel build //tools/memcheck:store_bench
//   valgrind --tool=callgrind --toggle-collect='*RunMeasured*'
//       bazel-bin/tools/memcheck/store_bench --op=get
//
// Ir / --ops is the cost of one request in the store. --op: get (hits on
// 32 B keys, 100 B values, no eviction), set (overwrites of existing keys),
// set_evict (new keys into a full 64 MiB store: every set evicts; measured
// after the CLOCK hand went round the store once).
//
// Cache misses, which callgrind does not time: --keys=1000000 --shuffle
// visits the keys in a random order, so each get finds its stripe, bucket
// and item cold, as bench.py's S4 does (its stripes stay in cache here,
// where S4's socket work evicts them); --copy_value copies each value out
// as a reply would. The run prints wall-clock ns per request: compare two
// builds alternately, several times each, on a quiet machine.

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gflags/gflags.h"
#include "server/cache/store.h"

DEFINE_string(op, "get", "get | set | set_evict");
DEFINE_uint64(ops, 200000, "Measured calls");
DEFINE_uint64(keys, 100000, "Distinct keys (get, set)");
DEFINE_bool(shuffle, false, "Visit the keys in a random order");
DEFINE_bool(copy_value, false, "Copy each value got, as a reply would");

namespace memshard::cache {
namespace {

constexpr int64_t kNow = 1700000000;

std::string Key(uint64_t i) { return absl::StrFormat("key:%027u", i); }

// Not inlined, so callgrind can collect exactly this call.
__attribute__((noinline)) uint64_t RunMeasured(
    Store& store, const std::vector<std::string>& keys,
    const std::vector<uint32_t>& order, const std::string& value, bool get) {
  uint64_t sum = 0;
  char reply[4096];
  for (uint64_t i = 0; i < FLAGS_ops; ++i) {
    const std::string& key = keys[order[i % order.size()]];
    if (get) {
      ItemRef ref = store.Get(key, kNow);
      if (!ref) continue;
      absl::string_view v = ref.value();
      if (FLAGS_copy_value) {
        const size_t n = std::min(v.size(), sizeof(reply));
        std::memcpy(reply, v.data(), n);
        sum += static_cast<unsigned char>(reply[n / 2]);
      }
      sum += v.size();
    } else {
      sum += static_cast<uint64_t>(
          store.Put(StoreMode::kSet, key, 0, 0, value, 0, kNow));
    }
  }
  return sum;
}

int Main() {
  const bool evict = FLAGS_op == "set_evict";
  StoreOptions options;
  options.memory_limit_bytes = evict ? (64ull << 20) : (1ull << 30);
  Store store(options);
  const std::string value(100, 'v');
  std::vector<std::string> keys;
  const uint64_t key_count = evict ? FLAGS_ops : FLAGS_keys;
  keys.reserve(key_count);
  for (uint64_t i = 0; i < key_count; ++i) keys.push_back(Key(i));
  if (evict) {
    // Fill to the limit with other keys, so every measured set evicts.
    for (uint64_t i = 0; store.GetStats().evictions == 0; ++i) {
      for (int j = 0; j < 1000; ++j, ++i) {
        store.Put(StoreMode::kSet, Key(1000000000 + i), 0, 0, value, 0, kNow);
      }
    }
    // Then as many evicting sets as the store holds items, so the CLOCK
    // hand has gone round once and the measured sets are its steady state:
    // its first round takes every fill item's count down, which plain CLOCK
    // does in one call and a bounded search (Store::kMaxClockVisits)
    // spreads over the round's evictions.
    const uint64_t items = store.GetStats().curr_items;
    for (uint64_t i = 0; i < items; ++i) {
      store.Put(StoreMode::kSet, Key(2000000000 + i), 0, 0, value, 0, kNow);
    }
  } else {
    for (const std::string& key : keys) {
      store.Put(StoreMode::kSet, key, 0, 0, value, 0, kNow);
    }
  }
  std::vector<uint32_t> order(keys.size());
  for (uint32_t i = 0; i < order.size(); ++i) order[i] = i;
  if (FLAGS_shuffle) std::shuffle(order.begin(), order.end(), std::mt19937(1));
  const StoreStats before = store.GetStats();
  const absl::Time start = absl::Now();
  const uint64_t sum =
      RunMeasured(store, keys, order, value, FLAGS_op == "get");
  const absl::Duration took = absl::Now() - start;
  std::printf("measured: evictions=%llu clock_visits=%llu\n",
              static_cast<unsigned long long>(store.GetStats().evictions -
                                              before.evictions),
              static_cast<unsigned long long>(store.GetStats().clock_visits -
                                              before.clock_visits));
  const StoreStats stats = store.GetStats();
  std::printf(
      "op=%s ops=%llu checksum=%llu curr_items=%llu evictions=%llu "
      "clock_visits=%llu ns_per_op=%.1f\n",
      FLAGS_op.c_str(), static_cast<unsigned long long>(FLAGS_ops),
      static_cast<unsigned long long>(sum),
      static_cast<unsigned long long>(stats.curr_items),
      static_cast<unsigned long long>(stats.evictions),
      static_cast<unsigned long long>(stats.clock_visits),
      absl::ToDoubleNanoseconds(took) / static_cast<double>(FLAGS_ops));
  return 0;
}

}  // namespace
}  // namespace memshard::cache

int main(int argc, char** argv) {
  gflags::ParseCommandLineFlags(&argc, &argv, true);
  return memshard::cache::Main();
}
