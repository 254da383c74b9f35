#include "testing/run_program.h"

#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "absl/time/clock.h"
#include "testing/server_process.h"

namespace memshard {
namespace {

std::string ReadAndRemove(const std::string& path) {
  std::string text = ReadWholeFile(path);
  unlink(path.c_str());
  return text;
}

}  // namespace

ProgramResult RunProgram(const std::vector<std::string>& argv,
                         absl::Duration timeout,
                         const ProgramOptions& options) {
  ProgramResult result;
  const std::string out = TestTempPath("program_out");
  const std::string err =
      options.stdout_first ? TestTempPath("program_err") : out;
  // Prepared before fork(): the child only opens, dups and execs.
  std::vector<char*> args;
  for (const std::string& arg : argv) {
    args.push_back(const_cast<char*>(arg.c_str()));
  }
  args.push_back(nullptr);
  const pid_t pid = fork();
  if (pid == 0) {
    const int out_fd = open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    const int err_fd =
        options.stdout_first
            ? open(err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600)
            : out_fd;
    if (out_fd < 0 || err_fd < 0) _exit(126);
    dup2(out_fd, STDOUT_FILENO);
    dup2(err_fd, STDERR_FILENO);
    for (const std::string& e : options.env) {
      putenv(const_cast<char*>(e.c_str()));
    }
    execvp(args[0], args.data());
    _exit(127);
  }
  const absl::Time deadline = absl::Now() + timeout;
  while (waitpid(pid, &result.status, WNOHANG) == 0) {
    if (absl::Now() > deadline) {
      kill(pid, SIGKILL);
      waitpid(pid, &result.status, 0);
      result.output = "<killed: timed out>\n";
      break;
    }
    absl::SleepFor(absl::Milliseconds(20));
  }
  result.output += ReadAndRemove(out);
  if (options.stdout_first) {
    result.output += "\n--- stderr ---\n" + ReadAndRemove(err);
  }
  return result;
}

int ExitCode(const ProgramResult& result) {
  return WIFEXITED(result.status) ? WEXITSTATUS(result.status) : -1;
}

}  // namespace memshard
