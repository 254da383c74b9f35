#include "testing/runfiles.h"

#include <dirent.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "testing/server_process.h"

namespace memshard {

std::string RunfilePath(absl::string_view path) {
  const char* srcdir = std::getenv("TEST_SRCDIR");
  const char* workspace = std::getenv("TEST_WORKSPACE");
  return absl::StrCat(srcdir != nullptr ? srcdir : ".", "/",
                      workspace != nullptr ? workspace : "memshard", "/", path);
}

absl::StatusOr<std::string> ReadRunfile(absl::string_view path) {
  const std::string full = RunfilePath(path);
  if (access(full.c_str(), R_OK) != 0) {
    return absl::NotFoundError(absl::StrCat("cannot read ", full));
  }
  return ReadWholeFile(full);
}

std::vector<std::string> RunfileNames(absl::string_view dir,
                                      absl::string_view suffix) {
  std::vector<std::string> names;
  DIR* d = opendir(RunfilePath(dir).c_str());
  if (d == nullptr) return names;
  while (dirent* entry = readdir(d)) {
    std::string name = entry->d_name;
    if (absl::EndsWith(name, suffix)) names.push_back(std::move(name));
  }
  closedir(d);
  std::sort(names.begin(), names.end());
  return names;
}

}  // namespace memshard
