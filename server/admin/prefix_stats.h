#pragma once

// PrefixStats: memcached's `stats detail` — per key prefix, how many gets,
// get hits, sets and deletes, while an operator has it on.
//
// A key's prefix is its bytes before the first delimiter (':', memcached's
// default -D); a key without the delimiter is not counted, and ":x" counts
// under the empty prefix. A prefix with a space or control byte (binary keys
// may hold any) is not counted either, so the dump stays one line per
// prefix. As in memcached 1.6, the text and binary get
// family (get, gets, gat, gats; binary Get*, GAT*) count a get per key and a
// hit when found, every text or binary storage command counts a set, and
// delete counts whether or not it found the key. Meta commands, incr/decr
// and touch count nothing, and neither do proxy and l1l2 modes (their keys
// go to the backends).
//
// Thread-safety: any thread. Off (the default) it costs the request path one
// relaxed load. On, every counted key takes one server-wide mutex, as
// memcached's own prefix table does: a diagnostic mode, not for a busy
// production box. The table is not bounded (memcached's neither): each
// distinct prefix holds its bytes and four counters until `stats reset`.

#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/strings/string_view.h"

namespace memshard {

class PrefixStats {
 public:
  static constexpr char kDelimiter = ':';

  bool enabled() const { return enabled_.load(std::memory_order_relaxed); }
  void set_enabled(bool on) { enabled_.store(on, std::memory_order_relaxed); }

  void RecordGet(absl::string_view key, bool hit);
  void RecordSet(absl::string_view key);
  void RecordDelete(absl::string_view key);

  // `stats detail dump`: "PREFIX <prefix> get <n> hit <n> set <n> del <n>"
  // lines, each ending "\r\n", in prefix order, then "END\r\n". What was
  // counted stays after `stats detail off`.
  std::string Dump() const;
  // `stats reset`: forgets every prefix.
  void Clear();

 private:
  struct Counts {
    uint64_t gets = 0;
    uint64_t hits = 0;
    uint64_t sets = 0;
    uint64_t deletes = 0;
  };
  // The counters of `key`'s prefix, created on first use; null if the key
  // has no delimiter.
  Counts* Find(absl::string_view key) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  std::atomic<bool> enabled_{false};
  mutable std::mutex mu_;
  absl::flat_hash_map<std::string, Counts> counts_ ABSL_GUARDED_BY(mu_);
};

}  // namespace memshard
