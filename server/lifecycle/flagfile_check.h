#pragma once

// CheckFlagfiles: a strict look at every --flagfile before gflags reads it.
//
// gflags reads --flagfile itself, but forgivingly: a flag name it does not
// know inside a flagfile is skipped without a word, and a line that does not
// start with '-' is taken as a program-name filter that silently disables
// the lines after it. For a server configured from a file that means a typo
// runs with defaults. So before gflags parses, every flagfile named on the
// command line (and, recursively, in flagfiles) must be readable, and every
// line must be blank, a '#' comment, or "--name[=value]" naming a defined
// flag. Values stay gflags' business (it rejects bad ones clearly).
//
// Thread-compatible; reads gflags' registry, never flag values.

#include "absl/status/status.h"

namespace memshard {

// The first problem found, as one line naming the file and line.
absl::Status CheckFlagfiles(int argc, const char* const* argv);

}  // namespace memshard
