#pragma once

// A parsed client request, independent of the wire protocol it came in.
//
// Lifetime: every string_view in a Request points into the input bytes the
// parser was given. They stay valid only until the caller discards those
// bytes (i.e. until the connection compacts or releases its input buffer),
// so a Request is executed before more input is read.
//
// A Request is meant to be reused (Clear() keeps the capacity of `keys`), so
// a multiget with many keys does not allocate per request.

#include <cstdint>
#include <vector>

#include "absl/strings/string_view.h"

namespace memshard {

// The single list of text-protocol commands: X(enum name, wire name).
#define MEMSHARD_TEXT_COMMANDS(X) \
  X(kGet, "get")                  \
  X(kGets, "gets")                \
  X(kGat, "gat")                  \
  X(kGats, "gats")                \
  X(kSet, "set")                  \
  X(kAdd, "add")                  \
  X(kReplace, "replace")          \
  X(kAppend, "append")            \
  X(kPrepend, "prepend")          \
  X(kCas, "cas")                  \
  X(kDelete, "delete")            \
  X(kIncr, "incr")                \
  X(kDecr, "decr")                \
  X(kTouch, "touch")              \
  X(kFlushAll, "flush_all")       \
  X(kVersion, "version")          \
  X(kVerbosity, "verbosity")      \
  X(kQuit, "quit")                \
  X(kStats, "stats")              \
  X(kCacheMemlimit, "cache_memlimit")

enum class Command : uint8_t {
#define MEMSHARD_COMMAND_ENUM(name, wire) name,
  MEMSHARD_TEXT_COMMANDS(MEMSHARD_COMMAND_ENUM)
#undef MEMSHARD_COMMAND_ENUM
      kNone,
};

// The command's wire name ("get", "flush_all", ...); "" for kNone.
absl::string_view CommandName(Command command);

struct Request {
  Command command = Command::kNone;

  // Retrieval commands: every key, in request order (gat/gats may have
  // none: memcached answers a bare "END"). Other keyed commands: exactly one
  // key. stats: the arguments after the group ("on" in "stats detail on").
  std::vector<absl::string_view> keys;

  // Storage commands: the data block without its trailing "\r\n".
  absl::string_view value;
  uint32_t flags = 0;

  // Raw exptime as sent (0 = never, <= 30 days relative, larger = absolute
  // unix time, negative = already expired). Also the touch/gat exptime.
  // Any int64 is accepted (memcached silently truncates to int32).
  int64_t exptime = 0;

  uint64_t cas_unique = 0;        // cas
  uint64_t delta = 0;             // incr/decr
  int64_t delay = 0;              // flush_all [delay]
  uint32_t verbosity = 0;         // verbosity <level>
  uint64_t memlimit_mb = 0;       // cache_memlimit <megabytes> (< 2^32)
  absl::string_view stats_group;  // stats [group]: "" for plain stats

  bool noreply = false;

  void Clear() {
    command = Command::kNone;
    keys.clear();
    value = {};
    flags = 0;
    exptime = 0;
    cas_unique = 0;
    delta = 0;
    delay = 0;
    verbosity = 0;
    memlimit_mb = 0;
    stats_group = {};
    noreply = false;
  }
};

}  // namespace memshard
