#include "server/lifecycle/flagfile_check.h"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"
#include "gflags/gflags.h"

namespace memshard {
namespace {

// gflags stops at nested flagfiles this deep, which also ends cycles.
constexpr int kMaxDepth = 10;

bool IsDefinedFlag(absl::string_view name) {
  gflags::CommandLineFlagInfo info;
  if (gflags::GetCommandLineFlagInfo(std::string(name).c_str(), &info)) {
    return true;
  }
  // --noflag for a boolean --flag.
  return absl::ConsumePrefix(&name, "no") &&
         gflags::GetCommandLineFlagInfo(std::string(name).c_str(), &info) &&
         info.type == "bool";
}

absl::Status CheckFile(const std::string& path, int depth);

// `argument` is "--name=value", "-name=value", "--name" or "-name".
absl::Status CheckFlag(absl::string_view argument, const std::string& where,
                       int depth) {
  absl::string_view flag = argument;
  if (!absl::ConsumePrefix(&flag, "--")) absl::ConsumePrefix(&flag, "-");
  std::vector<absl::string_view> parts =
      absl::StrSplit(flag, absl::MaxSplits('=', 1));
  absl::string_view name = parts[0];
  if (name == "flagfile") {
    if (parts.size() < 2 || parts[1].empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, ": --flagfile needs a path"));
    }
    for (absl::string_view file : absl::StrSplit(parts[1], ',')) {
      absl::Status s = CheckFile(std::string(file), depth + 1);
      if (!s.ok()) return s;
    }
    return absl::OkStatus();
  }
  if (!IsDefinedFlag(name)) {
    return absl::InvalidArgumentError(
        absl::StrCat(where, ": unknown flag --", name));
  }
  return absl::OkStatus();
}

absl::Status CheckFile(const std::string& path, int depth) {
  if (depth > kMaxDepth) {
    return absl::InvalidArgumentError(
        absl::StrCat("--flagfile=", path, ": flagfiles nested more than ",
                     kMaxDepth, " deep (a cycle?)"));
  }
  std::ifstream in(path);
  if (!in) {
    return absl::NotFoundError(
        absl::StrCat("cannot read --flagfile=", path, ": ", strerror(errno)));
  }
  std::string line;
  int number = 0;
  while (std::getline(in, line)) {
    ++number;
    absl::string_view text = absl::StripAsciiWhitespace(line);
    if (text.empty() || text[0] == '#') continue;
    std::string where = absl::StrCat(path, " line ", number);
    if (text[0] != '-') {
      return absl::InvalidArgumentError(absl::StrCat(
          where, ": expected --name=value or a # comment, got \"", text, "\""));
    }
    absl::Status s = CheckFlag(text, where, depth);
    if (!s.ok()) return s;
  }
  if (in.bad()) {
    return absl::DataLossError(
        absl::StrCat("reading --flagfile=", path, ": ", strerror(errno)));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status CheckFlagfiles(int argc, const char* const* argv) {
  for (int i = 1; i < argc; ++i) {
    absl::string_view arg = argv[i];
    if (arg == "--") break;
    absl::string_view flag = arg;
    if (!absl::ConsumePrefix(&flag, "--") && !absl::ConsumePrefix(&flag, "-")) {
      continue;
    }
    if (flag == "flagfile") {
      // "--flagfile PATH": the value is the next argument.
      if (i + 1 >= argc) {
        return absl::InvalidArgumentError("--flagfile needs a path");
      }
      absl::Status s =
          CheckFlag(absl::StrCat("--flagfile=", argv[++i]), "command line", 0);
      if (!s.ok()) return s;
    } else if (absl::StartsWith(flag, "flagfile=")) {
      absl::Status s = CheckFlag(arg, "command line", 0);
      if (!s.ok()) return s;
    }
  }
  return absl::OkStatus();
}

}  // namespace memshard
