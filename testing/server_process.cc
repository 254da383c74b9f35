#include "testing/server_process.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "gtest/gtest.h"

extern char** environ;

namespace memshard {

std::string ReadWholeFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return "";
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

namespace {

// The last `max` bytes of `text`, for error messages.
std::string Tail(const std::string& text, size_t max = 4000) {
  if (text.size() <= max) return text;
  return absl::StrCat("...", text.substr(text.size() - max));
}

// Reads the port number the child wrote to `path`. The child may write it in
// more than one write(2), so a number is taken only once the file ends in a
// newline, or once a connect to that port succeeds ("123" of "12345" has no
// listener).
bool ReadPortFile(const std::string& path, int* port) {
  std::string text = ReadWholeFile(path);
  int value = 0;
  if (!absl::SimpleAtoi(absl::StripAsciiWhitespace(text), &value) ||
      value <= 0 || value > 65535) {
    return false;
  }
  if (!absl::EndsWith(text, "\n") &&
      !BlockingClient::ConnectTcp(value, absl::Milliseconds(200)).ok()) {
    return false;
  }
  *port = value;
  return true;
}

}  // namespace

namespace {

// Removes the files TestTempPath handed out (the directory holds nothing
// else) and the directory itself, unless a test failed: then its server
// logs stay for whoever looks.
void RemoveShortTempDir(const std::string& dir) {
  const ::testing::UnitTest* unit = ::testing::UnitTest::GetInstance();
  if (unit != nullptr && unit->Failed()) {
    fprintf(stderr, "test files kept in %s\n", dir.c_str());
    return;
  }
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) return;
  while (dirent* entry = readdir(d)) {
    const std::string name = entry->d_name;
    if (name != "." && name != "..") unlink((dir + "/" + name).c_str());
  }
  closedir(d);
  rmdir(dir.c_str());
}

// Where TestTempPath puts files: TEST_TMPDIR when Bazel set a short one
// (Bazel removes it), otherwise a directory of this process's own under
// /tmp, removed at exit, so that runs do not leave logs and port files
// behind in /tmp. sun_path holds 108 bytes and Bazel's TEST_TMPDIR is
// usually longer than the 70 left for a name.
const std::string& TestTempDir() {
  static const std::string* dir = [] {
    const char* env = getenv("TEST_TMPDIR");
    if (env != nullptr && *env != '\0' && strlen(env) <= 70) {
      return new std::string(env);
    }
    char pattern[] = "/tmp/memshard_test_XXXXXX";
    if (mkdtemp(pattern) == nullptr) return new std::string("/tmp");
    static pid_t owner = getpid();
    // A forked child that exits without exec must not remove it.
    atexit([] {
      if (getpid() == owner) RemoveShortTempDir(TestTempDir());
    });
    return new std::string(pattern);
  }();
  return *dir;
}

}  // namespace

std::string TestTempPath(absl::string_view prefix) {
  static std::atomic<int> counter{0};
  return absl::StrCat(TestTempDir(), "/", prefix, "_", getpid(), "_",
                      counter++);
}

absl::StatusOr<int> PickUnusedPort() {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return absl::InternalError(absl::StrCat("socket: ", strerror(errno)));
  sockaddr_in addr = {};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof(addr);
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    int err = errno;
    close(fd);
    return absl::InternalError(
        absl::StrCat("bind/getsockname: ", strerror(err)));
  }
  close(fd);
  return ntohs(addr.sin_port);
}

std::string DescribeWaitStatus(int status) {
  if (WIFEXITED(status)) {
    return absl::StrCat("exited with status ", WEXITSTATUS(status));
  }
  if (WIFSIGNALED(status)) {
    return absl::StrCat("killed by signal ", WTERMSIG(status), " (",
                        strsignal(WTERMSIG(status)), ")");
  }
  return absl::StrCat("wait status ", status);
}

absl::StatusOr<std::unique_ptr<ServerProcess>> ServerProcess::Start(
    Options options) {
  std::string log_path = TestTempPath("server_log");
  if (!options.port_file.empty()) unlink(options.port_file.c_str());

  // Everything the child needs is prepared before fork(): between fork and
  // exec only async-signal-safe calls are allowed (the test may have
  // threads).
  std::vector<std::string> argv_storage;
  argv_storage.push_back(options.binary);
  for (const std::string& arg : options.args) argv_storage.push_back(arg);
  std::vector<char*> argv;
  for (std::string& arg : argv_storage) argv.push_back(arg.data());
  argv.push_back(nullptr);

  // glog would otherwise log to files; the log file is where a failing test
  // looks.
  std::vector<std::string> env_storage;
  for (char** e = environ; *e != nullptr; ++e) {
    if (!absl::StartsWith(*e, "GLOG_logtostderr=")) env_storage.push_back(*e);
  }
  env_storage.push_back("GLOG_logtostderr=1");
  for (const std::string& extra : options.env) {
    std::string name = extra.substr(0, extra.find('=') + 1);
    env_storage.erase(std::remove_if(env_storage.begin(), env_storage.end(),
                                     [&name](const std::string& e) {
                                       return absl::StartsWith(e, name);
                                     }),
                      env_storage.end());
    env_storage.push_back(extra);
  }
  std::vector<char*> envp;
  for (std::string& e : env_storage) envp.push_back(e.data());
  envp.push_back(nullptr);

  int log_fd =
      open(log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (log_fd < 0) {
    return absl::InternalError(
        absl::StrCat("open ", log_path, ": ", strerror(errno)));
  }
  int null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
  const pid_t parent = getpid();
  const std::string exec_error =
      absl::StrCat("execve ", options.binary, " failed\n");

  pid_t pid = fork();
  if (pid < 0) {
    int err = errno;
    close(log_fd);
    if (null_fd >= 0) close(null_fd);
    return absl::InternalError(absl::StrCat("fork: ", strerror(err)));
  }
  if (pid == 0) {
    // Child. dup2 clears O_CLOEXEC on the new descriptors.
    if (null_fd >= 0) dup2(null_fd, STDIN_FILENO);
    dup2(log_fd, STDOUT_FILENO);
    dup2(log_fd, STDERR_FILENO);
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(126);  // The test died before prctl.
    execve(argv[0], argv.data(), envp.data());
    ssize_t ignored =
        write(STDERR_FILENO, exec_error.data(), exec_error.size());
    (void)ignored;
    _exit(127);
  }
  close(log_fd);
  if (null_fd >= 0) close(null_fd);

  std::unique_ptr<ServerProcess> process(
      new ServerProcess(pid, std::move(log_path), options.stop_signal));
  absl::Status ready = process->WaitUntilReady(options);
  if (!ready.ok()) {
    int status = process->Stop(absl::Seconds(1));
    return absl::Status(
        ready.code(),
        absl::StrCat(options.binary, " ", absl::StrJoin(options.args, " "),
                     ": ", ready.message(),
                     status == -1 ? ""
                                  : absl::StrCat("; stopped: ",
                                                 DescribeWaitStatus(status)),
                     "\n--- server log (", process->log_path(), ") ---\n",
                     Tail(process->ReadLog()), "\n--- end of server log ---"));
  }
  return process;
}

absl::Status ServerProcess::WaitUntilReady(const Options& options) {
  absl::Time deadline = absl::Now() + options.start_timeout;
  while (true) {
    int status = 0;
    pid_t r = waitpid(pid_, &status, WNOHANG);
    if (r == pid_) {
      pid_ = -1;
      return absl::UnavailableError(absl::StrCat(
          "server exited before it was ready: ", DescribeWaitStatus(status)));
    }
    if (!options.port_file.empty()) {
      if (ReadPortFile(options.port_file, &port_)) {
        return absl::OkStatus();
      }
    } else {
      absl::StatusOr<std::unique_ptr<BlockingClient>> client =
          BlockingClient::ConnectTcp(options.port, absl::Milliseconds(200));
      if (client.ok()) {
        if (!options.verify_stats_pid) {
          port_ = options.port;
          return absl::OkStatus();
        }
        // Between PickUnusedPort() and our child's bind(), another process
        // (a parallel test's server) may take the port: only a server
        // that reports our child's pid counts.
        (*client)->set_timeout(absl::Seconds(1));
        absl::StatusOr<std::string> stats;
        if ((*client)->TrySend("stats\r\n").ok()) {
          stats = (*client)->TryReadUntil("END\r\n");
        }
        if (stats.ok()) {
          if (absl::StrContains(*stats,
                                absl::StrCat("STAT pid ", pid_, "\r\n"))) {
            port_ = options.port;
            return absl::OkStatus();
          }
          if (absl::StrContains(*stats, "STAT pid ")) {
            return absl::UnavailableError(
                absl::StrCat("port ", options.port,
                             " is served by another process, not pid ", pid_));
          }
        }
      }
    }
    if (absl::Now() >= deadline) {
      return absl::DeadlineExceededError(absl::StrCat(
          "server not ready after ",
          absl::FormatDuration(options.start_timeout),
          options.port_file.empty()
              ? absl::StrCat(" (no connect to port ", options.port, ")")
              : absl::StrCat(" (port file ", options.port_file, " holds \"",
                             absl::CEscape(ReadWholeFile(options.port_file)),
                             "\")")));
    }
    absl::SleepFor(absl::Milliseconds(10));
  }
}

std::string ServerProcess::MemshardBinary() {
  // Bazel runs tests in the runfiles tree of the main repository.
  const std::string relative = "server/memshard";
  if (access(relative.c_str(), X_OK) == 0) return relative;
  const char* srcdir = getenv("TEST_SRCDIR");
  if (srcdir != nullptr) {
    std::string path = absl::StrCat(srcdir, "/memshard/", relative);
    if (access(path.c_str(), X_OK) == 0) return path;
  }
  return relative;
}

absl::StatusOr<std::unique_ptr<ServerProcess>> ServerProcess::StartMemshard(
    const std::vector<std::string>& args) {
  return Start(MemshardOptions(args));
}

ServerProcess::Options ServerProcess::MemshardOptions(
    const std::vector<std::string>& args) {
  Options options;
  options.binary = MemshardBinary();
  options.port_file = TestTempPath("memshard_port");
  // --admin_port=0: parallel tests must not fight over the default admin
  // port; a test that wants the endpoint passes --admin_port=-1 after it.
  options.args = {"--listen=127.0.0.1", "--port=0",
                  absl::StrCat("--port_file=", options.port_file),
                  "--admin_port=0"};
  options.args.insert(options.args.end(), args.begin(), args.end());
  return options;
}

ServerProcess::~ServerProcess() { Stop(); }

int ServerProcess::Stop(absl::Duration grace) {
  if (pid_ <= 0) return -1;
  int status = 0;
  kill(pid_, stop_signal_);
  absl::Time deadline = absl::Now() + grace;
  while (true) {
    pid_t r = waitpid(pid_, &status, WNOHANG);
    if (r == pid_ || (r < 0 && errno != EINTR)) break;
    if (absl::Now() >= deadline) {
      kill(pid_, SIGKILL);
      while (waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
      }
      break;
    }
    absl::SleepFor(absl::Milliseconds(5));
  }
  pid_ = -1;
  CheckLogForSanitizerReports();
  return status;
}

int ServerProcess::WaitForExit(absl::Duration timeout) {
  if (pid_ <= 0) return -1;
  absl::Time deadline = absl::Now() + timeout;
  int status = 0;
  while (true) {
    pid_t r = waitpid(pid_, &status, WNOHANG);
    if (r == pid_) break;
    if (r < 0 && errno != EINTR) return -1;
    if (absl::Now() >= deadline) return -1;
    absl::SleepFor(absl::Milliseconds(5));
  }
  pid_ = -1;
  CheckLogForSanitizerReports();
  return status;
}

void ServerProcess::CheckLogForSanitizerReports() const {
  // Under --config=asan/tsan the server is instrumented too; its reports
  // land in the log, where nobody would look if the test passed.
  std::string log = ReadLog();
  // TSan reports races as WARNING, crashes it caught (SEGV) as ERROR.
  for (const char* marker : {"ERROR: AddressSanitizer", "ERROR: LeakSanitizer",
                             "WARNING: ThreadSanitizer",
                             "ERROR: ThreadSanitizer", "runtime error:"}) {
    size_t at = log.find(marker);
    if (at != std::string::npos) {
      ADD_FAILURE() << "sanitizer report in the server log (" << log_path_
                    << "):\n"
                    << log.substr(at > 2000 ? at - 2000 : 0, 8000);
      break;
    }
  }
}

bool ServerProcess::Signal(int signal) {
  return pid_ > 0 && kill(pid_, signal) == 0;
}

namespace {

// True if every thread of `pid` is in state 'T' (stopped).
bool AllThreadsStopped(pid_t pid) {
  std::string task_dir = absl::StrCat("/proc/", pid, "/task");
  DIR* dir = opendir(task_dir.c_str());
  if (dir == nullptr) return false;
  bool all = true;
  int threads = 0;
  while (dirent* entry = readdir(dir)) {
    if (entry->d_name[0] == '.') continue;
    ++threads;
    std::string stat =
        ReadWholeFile(absl::StrCat(task_dir, "/", entry->d_name, "/stat"));
    // "tid (comm) S ...": the state follows the last ')'.
    size_t paren = stat.rfind(')');
    if (paren == std::string::npos || paren + 2 >= stat.size() ||
        stat[paren + 2] != 'T') {
      all = false;
      break;
    }
  }
  closedir(dir);
  return all && threads > 0;
}

}  // namespace

bool ServerProcess::Pause() {
  if (!Signal(SIGSTOP)) return false;
  absl::Time deadline = absl::Now() + absl::Seconds(5);
  while (!AllThreadsStopped(pid_)) {
    if (absl::Now() >= deadline) return false;
    absl::SleepFor(absl::Milliseconds(1));
  }
  return true;
}

bool ServerProcess::Resume() { return Signal(SIGCONT); }

bool ServerProcess::IsRunning() {
  if (pid_ <= 0) return false;
  int status = 0;
  if (waitpid(pid_, &status, WNOHANG) == pid_) {
    pid_ = -1;
    return false;
  }
  return true;
}

int64_t ServerProcess::RssBytes() const {
  std::string path = absl::StrCat("/proc/", pid_, "/status");
  std::string status = ReadWholeFile(path);
  for (absl::string_view line : absl::StrSplit(status, '\n')) {
    if (!absl::ConsumePrefix(&line, "VmRSS:")) continue;
    line = absl::StripAsciiWhitespace(line);
    int64_t kb = 0;
    if (absl::ConsumeSuffix(&line, "kB") &&
        absl::SimpleAtoi(absl::StripAsciiWhitespace(line), &kb)) {
      return kb * 1024;
    }
  }
  ADD_FAILURE() << "no VmRSS in " << path;
  return -1;
}

StatsMap ServerProcess::Stats(absl::string_view group) const {
  absl::StatusOr<std::unique_ptr<BlockingClient>> client = Connect();
  if (!client.ok()) {
    ADD_FAILURE() << "stats " << group << ": " << client.status();
    return {};
  }
  return (*client)->Stats(group);
}

absl::StatusOr<std::unique_ptr<BlockingClient>> ServerProcess::Connect(
    absl::Duration timeout) const {
  return BlockingClient::ConnectTcp(port_, timeout);
}

std::string ServerProcess::ReadLog() const { return ReadWholeFile(log_path_); }

}  // namespace memshard
