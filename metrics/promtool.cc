#include "metrics/promtool.h"

#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>

#include "absl/strings/str_cat.h"

namespace memshard {

std::string PromtoolPath() {
  for (const char* path : {"/usr/bin/promtool", "/usr/local/bin/promtool"}) {
    if (access(path, X_OK) == 0) return path;
  }
  return "";
}

absl::Status PromtoolCheckMetrics(absl::string_view exposition) {
  const std::string promtool = PromtoolPath();
  if (promtool.empty()) return absl::UnavailableError("promtool not installed");
  const char* dir = getenv("TEST_TMPDIR");
  std::string input =
      absl::StrCat(dir != nullptr ? dir : "/tmp", "/promtool_in_XXXXXX");
  const int fd = mkstemp(input.data());
  if (fd < 0) return absl::UnavailableError("mkstemp");
  FILE* f = fdopen(fd, "w");
  fwrite(exposition.data(), 1, exposition.size(), f);
  fclose(f);
  // promtool reads the exposition on stdin; 2>&1 keeps its complaints.
  const std::string command =
      absl::StrCat(promtool, " check metrics < ", input, " 2>&1");
  FILE* p = popen(command.c_str(), "r");
  if (p == nullptr) {
    unlink(input.c_str());
    return absl::UnavailableError("popen promtool");
  }
  std::string output;
  char buffer[4096];
  size_t n;
  while ((n = fread(buffer, 1, sizeof(buffer), p)) > 0)
    output.append(buffer, n);
  const int status = pclose(p);
  unlink(input.c_str());
  if (status == 0 && output.empty()) return absl::OkStatus();
  return absl::FailedPreconditionError(
      absl::StrCat("promtool check metrics (status ", status, "): ", output));
}

}  // namespace memshard
