#pragma once

// Reads another process's CPU time and resident memory from /proc, for
// "server CPU microseconds per operation" and RSS growth.
//
// Thread-safety: stateless functions; callable from any thread.

#include <sys/types.h>

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace memshard {
namespace loadgen {

// User plus system CPU time of all threads of `pid` (fields 14 and 15 of
// /proc/PID/stat), in microseconds. Resolution is one clock tick (10 ms).
absl::StatusOr<int64_t> ReadProcessCpuMicros(pid_t pid);
// The same from the text of a /proc/PID/stat file (for tests).
absl::StatusOr<int64_t> ParseProcStatCpuMicros(absl::string_view stat,
                                               int64_t ticks_per_second);

// VmRSS of `pid` from /proc/PID/status, in KiB.
absl::StatusOr<int64_t> ReadProcessRssKb(pid_t pid);

// CPU time this process has used (user + system), in microseconds.
int64_t SelfCpuMicros();

// Raises the soft RLIMIT_NOFILE to the hard limit; returns the new soft
// limit.
absl::StatusOr<uint64_t> RaiseFdLimit();

}  // namespace loadgen
}  // namespace memshard
