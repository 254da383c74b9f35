#pragma once

// Golden stat-delta scripts: request lines, the exact replies expected, and
// the change every command must make to `stats` (and to memshard's
// `stats latency`). README.md in this directory has the grammar.
//
// Each script is played against memshard and against Debian's memcached by
// //server/integration:golden_stats_integration_test, so an expected delta
// that passes on memcached is memcached's behaviour; `=!` marks memshard's
// own stats, which memcached lacks.
//
// After each case, every watched stat (WatchedStats()) the case does not
// mention must be unchanged, so a command that counts something extra
// fails too.
//
// Thread-compatible: a Script is immutable once parsed; PlayScript uses its
// own connections.

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "absl/types/span.h"

namespace memshard::golden_stats {

struct Step {
  enum class Kind {
    kSend,          // "> text": text + "\r\n"
    kExpect,        // "< text": one reply line, exactly (with captures)
    kExpectPrefix,  // "<~ text": one reply line starting with text
    kSkipTo,        // "<* text": reply lines up to one that is exactly text
    kReconnect,     // "! reconnect": close the connection, open a new one
    kSleep,         // "! sleep <seconds>"
  };
  Kind kind = Kind::kSend;
  int line = 0;
  std::string text;  // C escapes already decoded
  absl::Duration sleep;
};

struct Expectation {
  int line = 0;
  std::string group;  // "" for plain stats, "latency" for `stats latency`
  std::string name;
  bool exact = false;  // "=N" instead of "+N"/"-N"
  int64_t value = 0;
  bool memshard_only = false;  // "=!": skipped against memcached
};

struct Case {
  std::string name;
  int line = 0;
  std::vector<Step> steps;
  std::vector<Expectation> expectations;
};

struct Script {
  std::string name;
  // "@memshard-only <reason>": not played against memcached.
  std::string memshard_only;
  // "@memshard-args ...": extra memshard flags; "@memcached-args ...".
  std::vector<std::string> memshard_args;
  std::vector<std::string> memcached_args;
  std::vector<Case> cases;
};

// Stats that must not change unless a case says so.
absl::Span<const char* const> WatchedStats();

absl::StatusOr<Script> ParseScript(absl::string_view name,
                                   absl::string_view text);

struct PlayOptions {
  bool memshard = true;  // false: memcached (skip "=!" expectations)
  // How long a case's expectations may take to hold (closes and other
  // effects the server applies asynchronously).
  absl::Duration settle = absl::Seconds(2);
  absl::Duration reply_timeout = absl::Seconds(3);
};

// OK if every case's replies and stat changes held; otherwise the first
// failure, naming script, case and line.
absl::Status PlayScript(const Script& script, int port,
                        const PlayOptions& options);

}  // namespace memshard::golden_stats
