#include "server/lifecycle/log_files.h"

#include <cstdlib>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "glog/logging.h"

namespace memshard {
namespace {

absl::Mutex mu;
std::string log_dir ABSL_GUARDED_BY(mu);
bool alternate ABSL_GUARDED_BY(mu) = false;

void SetDestinations(bool use_alternate) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
  for (int severity = 0; severity < google::NUM_SEVERITIES; ++severity) {
    // glog closes a severity's file only when its base name changes, so a
    // reopen alternates between two spellings of the same directory.
    std::string base =
        absl::StrCat(log_dir, use_alternate ? "/./" : "/", "memshard.",
                     google::GetLogSeverityName(severity), ".");
    google::SetLogDestination(severity, base.c_str());
    google::SetLogSymlink(severity, "memshard");
  }
}

}  // namespace

bool UnderSystemd() {
  const char* invocation = getenv("INVOCATION_ID");
  const char* journal = getenv("JOURNAL_STREAM");
  return (invocation != nullptr && *invocation != '\0') ||
         (journal != nullptr && *journal != '\0');
}

void UseLogDir(const std::string& dir) {
  absl::MutexLock lock(&mu);
  log_dir = dir;
  while (log_dir.size() > 1 && log_dir.back() == '/') log_dir.pop_back();
  SetDestinations(alternate);
}

void ReopenLogFiles() {
  absl::MutexLock lock(&mu);
  if (log_dir.empty()) return;
  alternate = !alternate;
  SetDestinations(alternate);
  LOG(INFO) << "log files reopened";
}

}  // namespace memshard
