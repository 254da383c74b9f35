#pragma once

// Runs a client program (memccapable, python3, node, ...) to completion as a
// child process of a test and captures what it printed.
//
// Thread-compatible: no shared state beyond the temporary files it makes
// (unique paths under TEST_TMPDIR, removed before returning).

#include <string>
#include <vector>

#include "absl/time/time.h"

namespace memshard {

struct ProgramResult {
  int status = -1;     // waitpid(2) status
  std::string output;  // what the program printed (see ProgramOptions)
};

struct ProgramOptions {
  // "NAME=value" entries added to the inherited environment.
  std::vector<std::string> env;
  // False: stdout and stderr interleaved as written. True: stdout, then
  // "\n--- stderr ---\n" and stderr, so a test can parse stdout's lines.
  bool stdout_first = false;
};

// Runs `argv` (no shell; argv[0] without a '/' is looked up in PATH). The
// program is killed (SIGKILL) after `timeout`; `output` then starts with
// "<killed: timed out>\n".
ProgramResult RunProgram(const std::vector<std::string>& argv,
                         absl::Duration timeout,
                         const ProgramOptions& options = {});

// The program's exit status, or -1 if it did not exit (a signal).
int ExitCode(const ProgramResult& result);

}  // namespace memshard
