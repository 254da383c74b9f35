#pragma once

// PidFile (--pid_file): the process id in a file, for init scripts and
// monitoring that predate systemd (which needs none for Type=notify).
//
// Thread-compatible. Written before anything listens, so a path that cannot
// be written is a startup error; removed by the destructor, but only if it
// still holds our pid (a successor may have replaced it).

#include <sys/types.h>

#include <memory>
#include <string>

#include "absl/status/statusor.h"

namespace memshard {

class PidFile {
 public:
  // Writes "<pid>\n" to `path` atomically (temporary file, then rename).
  static absl::StatusOr<std::unique_ptr<PidFile>> Create(std::string path,
                                                         pid_t pid);
  ~PidFile();
  PidFile(const PidFile&) = delete;
  PidFile& operator=(const PidFile&) = delete;

  // Removes the file now (also before an immediate exit).
  void Remove();
  const std::string& path() const { return path_; }

 private:
  PidFile(std::string path, pid_t pid);

  std::string path_;
  pid_t pid_;
  bool removed_ = false;
};

}  // namespace memshard
