// memshard as a service, over the real binary: sd_notify messages to a fake
// $NOTIFY_SOCKET, the watchdog withheld while a worker is stuck, graceful
// drain of a pipelining client on SIGTERM, a second SIGTERM, the grace
// deadline, SIGHUP reloading the auth file under load, --pid_file, --user,
// flagfiles and one-line startup errors.

#include <errno.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "testing/blocking_client.h"
#include "testing/server_process.h"

namespace memshard {
namespace {

void WriteFile(const std::string& path, const std::string& text) {
  std::ofstream(path) << text;
}

bool ExitedZero(int status) {
  return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

// A unix datagram socket standing in for systemd's notification socket.
class FakeNotifySocket {
 public:
  FakeNotifySocket() : path_(TestTempPath("notify")) {
    fd_ = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    strncpy(addr.sun_path, path_.c_str(), sizeof(addr.sun_path) - 1);
    EXPECT_EQ(bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0)
        << strerror(errno);
  }
  ~FakeNotifySocket() {
    close(fd_);
    unlink(path_.c_str());
  }
  std::string env() const { return absl::StrCat("NOTIFY_SOCKET=", path_); }

  // The next message, or "" if none arrives within `timeout`.
  std::string Receive(absl::Duration timeout) {
    pollfd p{fd_, POLLIN, 0};
    if (poll(&p, 1, static_cast<int>(absl::ToInt64Milliseconds(timeout))) <=
        0) {
      return "";
    }
    char buffer[4096];
    ssize_t n = recv(fd_, buffer, sizeof(buffer), 0);
    return n > 0 ? std::string(buffer, n) : "";
  }
  // Every message that arrives within `window`.
  std::vector<std::string> ReceiveFor(absl::Duration window) {
    std::vector<std::string> messages;
    absl::Time end = absl::Now() + window;
    for (absl::Time now = absl::Now(); now < end; now = absl::Now()) {
      std::string m = Receive(end - now);
      if (!m.empty()) messages.push_back(m);
    }
    return messages;
  }
  // Receives until a message starting with `prefix` (which is returned) or
  // `timeout`; the messages before it are appended to `skipped`.
  std::string ReceiveUntil(absl::string_view prefix, absl::Duration timeout,
                           std::vector<std::string>* skipped = nullptr) {
    absl::Time end = absl::Now() + timeout;
    for (absl::Time now = absl::Now(); now < end; now = absl::Now()) {
      std::string m = Receive(end - now);
      if (absl::StartsWith(m, prefix)) return m;
      if (!m.empty() && skipped != nullptr) skipped->push_back(m);
    }
    return "";
  }

 private:
  std::string path_;
  int fd_ = -1;
};

int Count(const std::vector<std::string>& messages, absl::string_view prefix) {
  int n = 0;
  for (const std::string& m : messages) n += absl::StartsWith(m, prefix);
  return n;
}

absl::StatusOr<std::unique_ptr<ServerProcess>> StartWithNotify(
    const FakeNotifySocket& notify, std::vector<std::string> args,
    std::vector<std::string> env = {}) {
  ServerProcess::Options options = ServerProcess::MemshardOptions(args);
  options.env = std::move(env);
  options.env.push_back(notify.env());
  return ServerProcess::Start(std::move(options));
}

TEST(NotifyTest, ReadyStatusWatchdogReloadingStoppingInOrder) {
  FakeNotifySocket notify;
  // Pings every 250 ms while every worker checked in within 500 ms: a
  // shorter watchdog flags a worker merely descheduled on a loaded 2-core
  // CI machine (or slowed by TSan) as stuck, and the STATUS lines below
  // then say so.
  auto server =
      StartWithNotify(notify, {"--workers=2", "--status_interval=0.2"},
                      {"WATCHDOG_USEC=1000000"});
  ASSERT_TRUE(server.ok()) << server.status();

  std::string ready = notify.ReceiveUntil("READY=1", absl::Seconds(5));
  EXPECT_TRUE(absl::StrContains(ready, "\nSTATUS=0 connections, ")) << ready;
  std::vector<std::string> running = notify.ReceiveFor(absl::Seconds(1.6));
  EXPECT_GE(Count(running, "WATCHDOG=1"), 4) << absl::StrJoin(running, " | ");
  EXPECT_GE(Count(running, "STATUS="), 3) << absl::StrJoin(running, " | ");
  for (const std::string& m : running) {
    if (!absl::StartsWith(m, "STATUS=")) continue;
    EXPECT_TRUE(absl::StrContains(m, " connections, ")) << m;
    EXPECT_TRUE(absl::StrContains(m, " ops/s")) << m;
  }

  ASSERT_TRUE((*server)->Signal(SIGHUP));
  std::string reloading = notify.ReceiveUntil("RELOADING=1", absl::Seconds(5));
  EXPECT_FALSE(reloading.empty());
  EXPECT_TRUE(absl::StrContains(reloading, "MONOTONIC_USEC=")) << reloading;
  EXPECT_FALSE(notify.ReceiveUntil("READY=1", absl::Seconds(5)).empty());

  ASSERT_TRUE((*server)->Signal(SIGTERM));
  std::string stopping = notify.ReceiveUntil("STOPPING=1", absl::Seconds(5));
  EXPECT_TRUE(absl::StrContains(stopping, "STATUS=draining")) << stopping;
  int status = (*server)->WaitForExit(absl::Seconds(5));
  EXPECT_TRUE(ExitedZero(status)) << DescribeWaitStatus(status);
}

TEST(NotifyTest, NoWatchdogPingsWithoutWatchdogUsec) {
  FakeNotifySocket notify;
  auto server = StartWithNotify(notify, {"--workers=1"});
  ASSERT_TRUE(server.ok()) << server.status();
  EXPECT_FALSE(notify.ReceiveUntil("READY=1", absl::Seconds(5)).empty());
  std::vector<std::string> later = notify.ReceiveFor(absl::Milliseconds(300));
  EXPECT_EQ(Count(later, "WATCHDOG=1"), 0);
}

TEST(WatchdogTest, AStalledWorkerStopsThePingsUntilItRecovers) {
  FakeNotifySocket notify;
  // Pings every 250 ms while every worker checked in within 500 ms.
  auto server =
      StartWithNotify(notify, {"--workers=2", "--testonly_stall_on_sigusr2=3"},
                      {"WATCHDOG_USEC=1000000"});
  ASSERT_TRUE(server.ok()) << server.status();
  ASSERT_FALSE(notify.ReceiveUntil("READY=1", absl::Seconds(5)).empty());
  std::vector<std::string> healthy = notify.ReceiveFor(absl::Seconds(1));
  EXPECT_GE(Count(healthy, "WATCHDOG=1"), 2);

  absl::Time stalled = absl::Now();
  ASSERT_TRUE((*server)->Signal(SIGUSR2));
  // Pings may go on until the stall is noticed (within 750 ms) ...
  notify.ReceiveFor(stalled + absl::Seconds(1) - absl::Now());
  // ... then none while worker 0 is stuck.
  std::vector<std::string> stuck =
      notify.ReceiveFor(stalled + absl::Milliseconds(2700) - absl::Now());
  EXPECT_EQ(Count(stuck, "WATCHDOG=1"), 0) << absl::StrJoin(stuck, " | ");
  // Serving goes on meanwhile on the other worker (or queues on worker 0).
  EXPECT_TRUE(absl::StrContains((*server)->ReadLog(),
                                "withholding the systemd watchdog ping"));
  // Once the worker runs again, so do the pings.
  EXPECT_FALSE(notify.ReceiveUntil("WATCHDOG=1", absl::Seconds(3)).empty());
  EXPECT_GE(absl::Now() - stalled, absl::Seconds(3));
}

// The expected reply stream of DrainTest: request 2i sets key i, request
// 2i+1 gets it back.
std::string Key(int i) { return absl::StrCat("drain:", i); }
std::string Value(int i) { return absl::StrCat("value-", i, "-", i * 7919); }
std::string Request(int n) {
  int i = n / 2;
  if (n % 2 == 0) {
    return absl::StrCat("set ", Key(i), " 0 0 ", Value(i).size(), "\r\n",
                        Value(i), "\r\n");
  }
  return absl::StrCat("get ", Key(i), "\r\n");
}
std::string Reply(int n) {
  int i = n / 2;
  if (n % 2 == 0) return "STORED\r\n";
  return absl::StrCat("VALUE ", Key(i), " 0 ", Value(i).size(), "\r\n",
                      Value(i), "\r\nEND\r\n");
}

TEST(DrainTest, APipeliningClientGetsWholeRepliesThenEofAndTheServerExitsZero) {
  constexpr int kRequests = 10000;
  auto server =
      ServerProcess::StartMemshard({"--workers=2", "--shutdown_grace=10"});
  ASSERT_TRUE(server.ok()) << server.status();
  auto client = (*server)->Connect();
  ASSERT_TRUE(client.ok()) << client.status();
  const int fd = (*client)->fd();

  // The writer paces itself so SIGTERM lands mid-pipeline; it stops at the
  // first error (the server closed).
  std::atomic<int> sent{0};
  std::thread writer([fd, &sent] {
    std::string batch;
    for (int n = 0; n < kRequests; ++n) {
      batch += Request(n);
      if (n % 50 != 49 && n != kRequests - 1) continue;
      size_t off = 0;
      while (off < batch.size()) {
        ssize_t w =
            send(fd, batch.data() + off, batch.size() - off, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return;
        off += w;
      }
      batch.clear();
      sent = n + 1;
      absl::SleepFor(absl::Microseconds(500));
    }
  });
  std::string received;
  std::atomic<size_t> received_size{0};
  int read_errno = 0;
  std::thread reader([fd, &received, &received_size, &read_errno] {
    char buffer[65536];
    for (;;) {
      pollfd p{fd, POLLIN, 0};
      if (poll(&p, 1, 15000) <= 0) {
        read_errno = ETIMEDOUT;
        return;
      }
      ssize_t n = recv(fd, buffer, sizeof(buffer), 0);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) read_errno = errno;
      if (n <= 0) return;
      received.append(buffer, n);
      received_size = received.size();
    }
  });

  // Mid-pipeline: some replies are in, most requests are not yet sent.
  absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (sent.load() < 2000 && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(1));
  }
  EXPECT_GT(received_size.load(), 0u);
  absl::Time signalled = absl::Now();
  ASSERT_TRUE((*server)->Signal(SIGTERM));
  int status = (*server)->WaitForExit(absl::Seconds(12));
  absl::Duration took = absl::Now() - signalled;
  reader.join();
  writer.join();

  EXPECT_TRUE(ExitedZero(status)) << DescribeWaitStatus(status);
  EXPECT_LT(took, absl::Seconds(5));
  EXPECT_EQ(read_errno, 0) << "the stream ended with " << strerror(read_errno)
                           << ", not EOF";
  // Whole replies, in order, each the right one, and nothing after the last.
  size_t at = 0;
  int replies = 0;
  while (at < received.size() && replies < kRequests) {
    std::string expected = Reply(replies);
    ASSERT_EQ(received.compare(at, expected.size(), expected), 0)
        << "reply " << replies << " is torn or wrong at byte " << at << ": \""
        << received.substr(at, 80) << "\"";
    at += expected.size();
    ++replies;
  }
  EXPECT_EQ(at, received.size());
  EXPECT_LE(replies, sent.load());
  std::cout << "drain: " << sent.load() << " requests sent, " << replies
            << " whole replies, server exited " << absl::FormatDuration(took)
            << " after SIGTERM\n";
}

// A client that asks for far more than the socket buffers hold and reads
// nothing: its replies can never be flushed, so its drain never ends.
std::unique_ptr<BlockingClient> StuckReader(ServerProcess& server) {
  auto client = server.Connect();
  EXPECT_TRUE(client.ok()) << client.status();
  if (!client.ok()) return nullptr;
  std::string big(512 * 1024, 'x');
  EXPECT_EQ((*client)->Set("big", big), "STORED");
  std::string gets;
  for (int i = 0; i < 200; ++i) gets += "get big\r\n";
  EXPECT_TRUE((*client)->Send(gets));
  absl::SleepFor(absl::Milliseconds(200));
  return *std::move(client);
}

TEST(DrainTest, TheGraceDeadlineClosesWhatIsLeftAndStillExitsZero) {
  auto server = ServerProcess::StartMemshard(
      {"--workers=1", "--shutdown_grace=0.5", "--max_item_size=1048576"});
  ASSERT_TRUE(server.ok()) << server.status();
  std::unique_ptr<BlockingClient> stuck = StuckReader(**server);
  ASSERT_NE(stuck, nullptr);
  absl::Time signalled = absl::Now();
  ASSERT_TRUE((*server)->Signal(SIGTERM));
  absl::SleepFor(absl::Milliseconds(200));
  EXPECT_TRUE((*server)->IsRunning()) << "exited before the grace ran out";
  int status = (*server)->WaitForExit(absl::Seconds(5));
  EXPECT_TRUE(ExitedZero(status)) << DescribeWaitStatus(status);
  EXPECT_GE(absl::Now() - signalled, absl::Milliseconds(450));
  EXPECT_TRUE(absl::StrContains((*server)->ReadLog(), "grace expired"));
}

TEST(DrainTest, ASecondSigtermExitsAtOnce) {
  auto server = ServerProcess::StartMemshard(
      {"--workers=1", "--shutdown_grace=60",
       "--pid_file=" + TestTempPath("second.pid")});
  ASSERT_TRUE(server.ok()) << server.status();
  std::unique_ptr<BlockingClient> stuck = StuckReader(**server);
  ASSERT_NE(stuck, nullptr);
  ASSERT_TRUE((*server)->Signal(SIGTERM));
  absl::SleepFor(absl::Milliseconds(300));
  ASSERT_TRUE((*server)->IsRunning()) << "the first SIGTERM did not drain";
  ASSERT_TRUE((*server)->Signal(SIGTERM));
  int status = (*server)->WaitForExit(absl::Seconds(2));
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGTERM)
      << DescribeWaitStatus(status);
  EXPECT_TRUE(absl::StrContains((*server)->ReadLog(), "exiting now"));
}

TEST(DrainTest, IdleConnectionsSeeEofAndDoNotDelayTheExit) {
  auto server = ServerProcess::StartMemshard({"--workers=2"});
  ASSERT_TRUE(server.ok()) << server.status();
  std::vector<std::unique_ptr<BlockingClient>> idle =
      ConnectMany((*server)->port(), 50, /*round_trip=*/true);
  absl::Time signalled = absl::Now();
  ASSERT_TRUE((*server)->Signal(SIGTERM));
  for (auto& client : idle) EXPECT_TRUE(client->PeerClosed(absl::Seconds(3)));
  int status = (*server)->WaitForExit(absl::Seconds(5));
  EXPECT_TRUE(ExitedZero(status)) << DescribeWaitStatus(status);
  EXPECT_LT(absl::Now() - signalled, absl::Seconds(2));
  // And nothing listens any more.
  EXPECT_FALSE(
      BlockingClient::ConnectTcp((*server)->port(), absl::Milliseconds(200))
          .ok());
}

// Authenticates a fresh connection with memcached's ascii handshake.
bool Authenticate(BlockingClient& client, const std::string& user,
                  const std::string& password) {
  std::string token = absl::StrCat(user, " ", password);
  client.Send(
      absl::StrCat("set auth 0 0 ", token.size(), "\r\n", token, "\r\n"));
  return client.ReadLine() == "STORED";
}

TEST(ReloadTest, SighupUnderLoadDropsNoConnectionAndLoadsTheNewAuthFile) {
  std::string auth_file = TestTempPath("auth");
  WriteFile(auth_file, "alice:one\n");
  FakeNotifySocket notify;
  auto server =
      StartWithNotify(notify, {"--workers=2", "--auth_file=" + auth_file});
  ASSERT_TRUE(server.ok()) << server.status();
  ASSERT_FALSE(notify.ReceiveUntil("READY=1", absl::Seconds(5)).empty());

  constexpr int kClients = 4;
  std::atomic<bool> stop{false};
  std::atomic<int> failures{0};
  std::atomic<int> ops{0};
  std::vector<std::thread> load;
  for (int c = 0; c < kClients; ++c) {
    auto client = (*server)->Connect();
    ASSERT_TRUE(client.ok()) << client.status();
    ASSERT_TRUE(Authenticate(**client, "alice", "one"));
    load.emplace_back([c, &stop, &failures, &ops,
                       client = std::shared_ptr<BlockingClient>(
                           std::move(*client))] {
      for (int i = 0; !stop.load(); ++i) {
        std::string key = absl::StrCat("load:", c, ":", i % 100);
        std::string value = absl::StrCat("v", i);
        if (client->Set(key, value) != "STORED" || client->Get(key) != value) {
          ++failures;
          return;
        }
        ++ops;
      }
    });
  }
  absl::SleepFor(absl::Milliseconds(200));
  WriteFile(auth_file, "bob:two\n");
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE((*server)->Signal(SIGHUP));
    EXPECT_FALSE(notify.ReceiveUntil("RELOADING=1", absl::Seconds(5)).empty());
    EXPECT_FALSE(notify.ReceiveUntil("READY=1", absl::Seconds(5)).empty());
  }
  int ops_at_reload = ops.load();
  absl::SleepFor(absl::Milliseconds(200));
  stop = true;
  for (std::thread& t : load) t.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_GT(ops.load(), ops_at_reload) << "load stalled after the reload";

  auto old_user = (*server)->Connect();
  ASSERT_TRUE(old_user.ok());
  EXPECT_FALSE(Authenticate(**old_user, "alice", "one"));
  auto new_user = (*server)->Connect();
  ASSERT_TRUE(new_user.ok());
  EXPECT_TRUE(Authenticate(**new_user, "bob", "two"));
  EXPECT_TRUE((*server)->IsRunning());
}

TEST(ReloadTest, ABrokenAuthFileKeepsTheOldOneAndTheServerUp) {
  std::string auth_file = TestTempPath("auth_broken");
  WriteFile(auth_file, "alice:one\n");
  auto server = ServerProcess::StartMemshard({"--auth_file=" + auth_file});
  ASSERT_TRUE(server.ok()) << server.status();
  WriteFile(auth_file, "no colon here\n");
  ASSERT_TRUE((*server)->Signal(SIGHUP));
  absl::Time deadline = absl::Now() + absl::Seconds(5);
  while (!absl::StrContains((*server)->ReadLog(), "reload failed") &&
         absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(10));
  }
  EXPECT_TRUE(absl::StrContains((*server)->ReadLog(), "reload failed"));
  auto client = (*server)->Connect();
  ASSERT_TRUE(client.ok());
  EXPECT_TRUE(Authenticate(**client, "alice", "one"));
}

TEST(LifecycleTest, PidFileHoldsThePidWhileRunningAndGoesAtExit) {
  std::string pid_file = TestTempPath("memshard.pid");
  auto server = ServerProcess::StartMemshard({"--pid_file=" + pid_file});
  ASSERT_TRUE(server.ok()) << server.status();
  EXPECT_EQ(ReadWholeFile(pid_file), absl::StrCat((*server)->pid(), "\n"));
  EXPECT_TRUE(ExitedZero((*server)->Stop()));
  EXPECT_NE(access(pid_file.c_str(), F_OK), 0);
}

TEST(LifecycleTest, RunsFromAFlagfile) {
  std::string flags = TestTempPath("memshard.flags");
  WriteFile(flags,
            "# a comment\n--workers=3\n\n--memory_limit_mb=32\n"
            "--shutdown_grace=2\n");
  auto server = ServerProcess::StartMemshard({"--flagfile=" + flags});
  ASSERT_TRUE(server.ok()) << server.status();
  StatsMap stats = (*server)->Stats();
  EXPECT_EQ(stats["threads"], "3");
  EXPECT_EQ(stats["limit_maxbytes"], absl::StrCat(32 << 20));
}

TEST(LifecycleTest, TheShippedFlagfileStarts) {
  const std::string flags = "tools/systemd/memshard.flags";
  ASSERT_EQ(access(flags.c_str(), R_OK), 0) << flags;
  // Later flags win: keep the flagfile's settings but not its ports.
  auto server = ServerProcess::StartMemshard(
      {"--flagfile=" + flags, "--port=0", "--admin_port=0", "--workers=2"});
  ASSERT_TRUE(server.ok()) << server.status();
  StatsMap stats = (*server)->Stats();
  EXPECT_EQ(stats["threads"], "2");
  EXPECT_EQ(stats["limit_maxbytes"], absl::StrCat(64 << 20));
  EXPECT_TRUE(ExitedZero((*server)->Stop()));
}

// Runs memshard to completion with `args`; returns its exit status and
// output.
int RunToExit(const std::vector<std::string>& args, std::string* output) {
  std::string log = TestTempPath("startup_log");
  std::vector<std::string> quoted;
  for (const std::string& a : args) quoted.push_back("'" + a + "'");
  std::string command =
      absl::StrCat("timeout 10 ", ServerProcess::MemshardBinary(), " ",
                   absl::StrJoin(quoted, " "), " >", log, " 2>&1");
  int status = system(command.c_str());
  *output = ReadWholeFile(log);
  return status;
}

TEST(LifecycleTest, StartupErrorsAreOneLineAndNonZeroBeforeListening) {
  auto busy = ServerProcess::StartMemshard({"--workers=1"});
  ASSERT_TRUE(busy.ok()) << busy.status();
  std::string bad_flags = TestTempPath("bad.flags");
  WriteFile(bad_flags, "--workers=2\n--max_conections=10\n");
  std::string pid_file = TestTempPath("never.pid");
  struct Case {
    std::vector<std::string> args;
    std::string message;
  };
  std::vector<Case> cases = {
      {{"--listen=127.0.0.1", absl::StrCat("--port=", (*busy)->port()),
        "--admin_port=0", "--pid_file=" + pid_file},
       "Address already in use"},
      {{"--port=70000"}, "memshard: --port out of range"},
      {{"--workers=abc"}, "illegal value 'abc'"},
      {{"--flagfile=/nonexistent/memshard.flags"},
       "memshard: cannot read --flagfile=/nonexistent/memshard.flags: No such "
       "file or directory"},
      {{"--flagfile=" + bad_flags},
       absl::StrCat("memshard: ", bad_flags,
                    " line 2: unknown flag --max_conections")},
      {{"--user=no-such-user-memshard", "--port=0"},
       "memshard: --user=no-such-user-memshard: no such user"},
      {{"--pid_file=/nonexistent/memshard.pid", "--port=0"},
       "memshard: --pid_file=/nonexistent/memshard.pid: "},
      {{"--shutdown_grace=-1", "--port=0"}, "memshard: --shutdown_grace"},
      {{"--memory_limit_mb=1000000", "--port=0"},
       "memshard: --memory_limit_mb must be at most 12288"},
  };
  for (const Case& c : cases) {
    std::string output;
    int status = RunToExit(c.args, &output);
    SCOPED_TRACE(absl::StrJoin(c.args, " "));
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 1)
        << DescribeWaitStatus(status) << "\n"
        << output;
    std::string last(absl::StripTrailingAsciiWhitespace(output));
    std::vector<std::string> lines = absl::StrSplit(last, '\n');
    EXPECT_TRUE(absl::StrContains(lines.back(), c.message)) << output;
  }
  // The failed start removed its pid file.
  EXPECT_NE(access(pid_file.c_str(), F_OK), 0);
}

TEST(LifecycleTest, UserDropsRootAfterBinding) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root";
  // Everything the unprivileged server writes lives in a directory it may
  // write (the test's own temporary directory may not be).
  char dir_template[] = "/tmp/memshard_user_XXXXXX";
  ASSERT_NE(mkdtemp(dir_template), nullptr);
  std::string dir = dir_template;
  chmod(dir.c_str(), 0777);
  ServerProcess::Options options =
      ServerProcess::MemshardOptions({"--user=nobody", "--workers=1"});
  options.port_file = dir + "/port";
  for (std::string& arg : options.args) {
    if (absl::StartsWith(arg, "--port_file="))
      arg = "--port_file=" + dir + "/port";
  }
  auto server = ServerProcess::Start(std::move(options));
  ASSERT_TRUE(server.ok()) << server.status();
  std::string status =
      ReadWholeFile(absl::StrCat("/proc/", (*server)->pid(), "/status"));
  std::string uid_line;
  for (absl::string_view line : absl::StrSplit(status, '\n')) {
    if (absl::StartsWith(line, "Uid:")) uid_line = std::string(line);
  }
  std::vector<std::string> uids =
      absl::StrSplit(uid_line, absl::ByAnyChar(" \t"), absl::SkipEmpty());
  ASSERT_EQ(uids.size(), 5u) << uid_line;
  for (int i = 1; i < 5; ++i) EXPECT_NE(uids[i], "0") << uid_line;
  auto client = (*server)->Connect();
  ASSERT_TRUE(client.ok());
  EXPECT_EQ((*client)->Set("k", "v"), "STORED");
  EXPECT_TRUE(ExitedZero((*server)->Stop()));
  unlink((dir + "/port").c_str());
  rmdir(dir.c_str());
}

}  // namespace
}  // namespace memshard
