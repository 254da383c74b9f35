#pragma once

// Golden wire scripts: request bytes and the exact reply bytes expected, in a
// small line-oriented text format (testing/golden/README.md has the full
// grammar and examples). A script is parsed once and may be played against
// any server speaking the memcached text protocol on 127.0.0.1; the golden
// test plays every script against memshard and against Debian's memcached,
// so an expectation that passes on memcached is memcached's behaviour.
//
// Thread-compatible: a Script is immutable after parsing and may be played
// from any thread; PlayScript uses its own connections and keeps no globals.
//
// Invariants of a parsed Script: every Step's pieces are non-empty for
// kSend/kExpect; kCapture and kAnyText pieces occur only in kExpect steps;
// every variable a piece reads is "now" or is captured by an earlier step.

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace memshard::golden {

// One element of a send or expect line, after escapes and repetitions.
struct Piece {
  enum class Kind {
    kLiteral,   // `text`, byte for byte.
    kVariable,  // The value of variable `text`, plus `offset` ("{now+60}").
    kCapture,   // Expect only: one or more decimal digits, bound to `text`.
    kAnyText,   // Expect only: zero or more bytes other than CR and LF.
    kRange,  // Expect only: decimal digits, from `low` to `high` ("{59~60}").
  };
  Kind kind = Kind::kLiteral;
  std::string text;
  int64_t offset = 0;
  uint64_t low = 0;
  uint64_t high = 0;
};

struct Step {
  enum class Kind {
    kSend,        // Write `pieces` (consecutive "> " lines, one write).
    kExpect,      // Read exactly `pieces` (consecutive "< " lines).
    kClosed,      // "! closed": the server closes the connection next.
    kSleep,       // "! sleep <seconds>".
    kConnection,  // "! conn <name>": switch to (or open) connection `name`.
    kStats,       // "! stats name=value ...": "stats" on this connection.
  };
  Kind kind = Kind::kSend;
  int line = 0;  // 1-based line of the script where the step starts.
  std::vector<Piece> pieces;
  absl::Duration sleep;
  std::string connection;
  // kStats: stat name and expected value (pieces of a send-style line).
  std::vector<std::pair<std::string, std::vector<Piece>>> stats;
};

struct Script {
  std::string name;
  // "@memshard-only <reason>": memcached does not pass this script.
  std::string memshard_only;
  // "@memcached-only <reason>": a behaviour of memcached that memshard does
  // not match (a deliberate difference or a known bug): memshard skips it.
  std::string memcached_only;
  // "@memshard-args ..." / "@memcached-args ...": extra server flags.
  std::vector<std::string> memshard_args;
  std::vector<std::string> memcached_args;
  std::vector<Step> steps;
};

// Parses `text`; `name` appears in error messages ("<name>:<line>: ...").
absl::StatusOr<Script> ParseScript(absl::string_view name,
                                   absl::string_view text);

struct PlayOptions {
  // Longest wait for one expected reply, or for a close.
  absl::Duration timeout = absl::Seconds(3);
  // How long the end-of-script check waits for unexpected extra bytes.
  absl::Duration quiet_period = absl::Milliseconds(50);
};

namespace internal {
// The connection a script starts on.
inline constexpr char kMainConnection[] = "main";
// `status` with "name:line: " before its message.
absl::Status AtLine(absl::string_view name, int line,
                    const absl::Status& status);
}  // namespace internal

// Plays `script` against the server on 127.0.0.1:`port`. OK if every
// expectation held and no connection received bytes the script did not
// expect; otherwise the first failure, naming the script line, what was
// expected and what arrived.
absl::Status PlayScript(const Script& script, int port,
                        const PlayOptions& options = {});

}  // namespace memshard::golden
