#include "server/lifecycle/pid_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

namespace memshard {

PidFile::PidFile(std::string path, pid_t pid)
    : path_(std::move(path)), pid_(pid) {}

absl::StatusOr<std::unique_ptr<PidFile>> PidFile::Create(std::string path,
                                                         pid_t pid) {
  std::string tmp = absl::StrCat(path, ".tmp.", pid);
  int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    return absl::PermissionDeniedError(absl::StrCat(
        "--pid_file=", path, ": cannot create ", tmp, ": ", strerror(errno)));
  }
  std::string text = absl::StrCat(pid, "\n");
  bool ok =
      write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  ok = close(fd) == 0 && ok;
  if (!ok || rename(tmp.c_str(), path.c_str()) != 0) {
    int err = errno;
    unlink(tmp.c_str());
    return absl::PermissionDeniedError(
        absl::StrCat("--pid_file=", path, ": cannot write: ", strerror(err)));
  }
  return std::unique_ptr<PidFile>(new PidFile(std::move(path), pid));
}

PidFile::~PidFile() { Remove(); }

void PidFile::Remove() {
  if (removed_) return;
  removed_ = true;
  char buffer[32] = {};
  int fd = open(path_.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return;
  ssize_t n = read(fd, buffer, sizeof(buffer) - 1);
  close(fd);
  pid_t written = 0;
  if (n > 0 && absl::SimpleAtoi(absl::StripAsciiWhitespace(buffer), &written) &&
      written == pid_) {
    // May fail once privileges are dropped; the next start overwrites it.
    unlink(path_.c_str());
  }
}

}  // namespace memshard
