#pragma once

// Paths of a test's data files (Bazel `data = [...]`) in its runfiles tree.
//
// Thread-safe: reads the environment and the file system only.

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace memshard {

// $TEST_SRCDIR/$TEST_WORKSPACE/<path> ("./memshard/<path>" outside Bazel),
// for a workspace-relative `path` such as "testing/golden".
std::string RunfilePath(absl::string_view path);

// The whole of the runfile `path` (as RunfilePath); NotFound if it cannot
// be read.
absl::StatusOr<std::string> ReadRunfile(absl::string_view path);

// The names (not paths) of the files in the runfiles directory `dir` that
// end with `suffix`, sorted; empty if `dir` cannot be read.
std::vector<std::string> RunfileNames(absl::string_view dir,
                                      absl::string_view suffix);

}  // namespace memshard
