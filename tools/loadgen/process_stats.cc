#include "tools/loadgen/process_stats.h"

#include <sys/resource.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace memshard {
namespace loadgen {
namespace {

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) {
    return absl::NotFoundError(
        absl::StrCat("cannot read ", path, ": ", strerror(errno)));
  }
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

}  // namespace

absl::StatusOr<int64_t> ParseProcStatCpuMicros(absl::string_view stat,
                                               int64_t ticks_per_second) {
  // The command name (field 2) is in parentheses and may contain spaces or
  // ')' itself; fields after the last ')' are plain.
  size_t close = stat.rfind(')');
  if (close == absl::string_view::npos || ticks_per_second <= 0) {
    return absl::InvalidArgumentError("malformed /proc/PID/stat");
  }
  std::vector<absl::string_view> fields =
      absl::StrSplit(stat.substr(close + 1), ' ', absl::SkipEmpty());
  // fields[0] is field 3 (state), so utime (14) is fields[11].
  int64_t utime, stime;
  if (fields.size() < 13 || !absl::SimpleAtoi(fields[11], &utime) ||
      !absl::SimpleAtoi(fields[12], &stime)) {
    return absl::InvalidArgumentError("malformed /proc/PID/stat");
  }
  return (utime + stime) * 1000000 / ticks_per_second;
}

absl::StatusOr<int64_t> ReadProcessCpuMicros(pid_t pid) {
  absl::StatusOr<std::string> stat =
      ReadFile(absl::StrCat("/proc/", pid, "/stat"));
  if (!stat.ok()) return stat.status();
  return ParseProcStatCpuMicros(*stat, sysconf(_SC_CLK_TCK));
}

absl::StatusOr<int64_t> ReadProcessRssKb(pid_t pid) {
  absl::StatusOr<std::string> status =
      ReadFile(absl::StrCat("/proc/", pid, "/status"));
  if (!status.ok()) return status.status();
  for (absl::string_view line : absl::StrSplit(*status, '\n')) {
    if (absl::ConsumePrefix(&line, "VmRSS:")) {
      line = absl::StripAsciiWhitespace(line);
      absl::ConsumeSuffix(&line, "kB");
      int64_t kb;
      if (absl::SimpleAtoi(absl::StripAsciiWhitespace(line), &kb)) return kb;
    }
  }
  return absl::NotFoundError(absl::StrCat("no VmRSS for pid ", pid));
}

int64_t SelfCpuMicros() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  auto micros = [](const timeval& tv) {
    return static_cast<int64_t>(tv.tv_sec) * 1000000 + tv.tv_usec;
  };
  return micros(usage.ru_utime) + micros(usage.ru_stime);
}

absl::StatusOr<uint64_t> RaiseFdLimit() {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0) {
    return absl::InternalError(absl::StrCat("getrlimit: ", strerror(errno)));
  }
  if (limit.rlim_cur < limit.rlim_max) {
    limit.rlim_cur = limit.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &limit) != 0) {
      return absl::InternalError(absl::StrCat("setrlimit: ", strerror(errno)));
    }
  }
  return static_cast<uint64_t>(limit.rlim_cur);
}

}  // namespace loadgen
}  // namespace memshard
