#pragma once

// Test helper: validates Prometheus text with `promtool check metrics`
// (Debian package prometheus), the format's reference linter.
//
// Thread-compatible; runs one promtool process per call.

#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace memshard {

// Path of promtool, or "" when it is not installed (tests then skip).
std::string PromtoolPath();

// OK when promtool accepts `exposition` (parses and lints clean);
// otherwise FailedPrecondition carrying promtool's complaints, or
// Unavailable when promtool is missing or cannot be run.
absl::Status PromtoolCheckMetrics(absl::string_view exposition);

}  // namespace memshard
