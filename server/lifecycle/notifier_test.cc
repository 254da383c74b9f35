#include "server/lifecycle/notifier.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace memshard {
namespace {

// A unix datagram socket standing in for systemd's notification socket.
class FakeNotifySocket {
 public:
  FakeNotifySocket() {
    const char* tmp = getenv("TEST_TMPDIR");
    std::string dir = tmp != nullptr && strlen(tmp) < 80 ? tmp : "/tmp";
    path_ = absl::StrCat(dir, "/notify_", getpid());
    unlink(path_.c_str());
    fd_ = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    strncpy(addr.sun_path, path_.c_str(), sizeof(addr.sun_path) - 1);
    EXPECT_EQ(bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
    timeval timeout{1, 0};
    setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  }
  ~FakeNotifySocket() {
    close(fd_);
    unlink(path_.c_str());
  }
  const std::string& path() const { return path_; }
  // The next datagram, or "" after a second.
  std::string Receive() {
    char buffer[4096];
    ssize_t n = recv(fd_, buffer, sizeof(buffer), 0);
    return n > 0 ? std::string(buffer, n) : "";
  }

 private:
  std::string path_;
  int fd_ = -1;
};

TEST(NotifierTest, DisabledWithoutNotifySocket) {
  unsetenv("NOTIFY_SOCKET");
  Notifier notifier;
  EXPECT_FALSE(notifier.enabled());
  EXPECT_EQ(notifier.watchdog_interval(), absl::ZeroDuration());
  notifier.Ready("ignored");  // must not crash or block
}

TEST(NotifierTest, SendsEachMessageToTheSocket) {
  FakeNotifySocket fake;
  setenv("NOTIFY_SOCKET", fake.path().c_str(), 1);
  setenv("WATCHDOG_USEC", "2000000", 1);
  unsetenv("WATCHDOG_PID");
  Notifier notifier;
  EXPECT_TRUE(notifier.enabled());
  EXPECT_EQ(notifier.watchdog_interval(), absl::Seconds(2));

  notifier.Ready("3 connections\nand a newline");
  EXPECT_EQ(fake.Receive(), "READY=1\nSTATUS=3 connections and a newline");
  notifier.Status("busy");
  EXPECT_EQ(fake.Receive(), "STATUS=busy");
  notifier.Watchdog();
  EXPECT_EQ(fake.Receive(), "WATCHDOG=1");
  notifier.Reloading();
  std::string reloading = fake.Receive();
  EXPECT_TRUE(absl::StartsWith(reloading, "RELOADING=1\n")) << reloading;
  EXPECT_TRUE(absl::StrContains(reloading, "\nMONOTONIC_USEC=")) << reloading;
  notifier.Stopping("draining");
  EXPECT_EQ(fake.Receive(), "STOPPING=1\nSTATUS=draining");
  unsetenv("NOTIFY_SOCKET");
  unsetenv("WATCHDOG_USEC");
}

TEST(NotifierTest, WatchdogForAnotherPidIsNotOurs) {
  FakeNotifySocket fake;
  setenv("NOTIFY_SOCKET", fake.path().c_str(), 1);
  setenv("WATCHDOG_USEC", "2000000", 1);
  setenv("WATCHDOG_PID", "1", 1);
  Notifier notifier;
  EXPECT_EQ(notifier.watchdog_interval(), absl::ZeroDuration());
  unsetenv("NOTIFY_SOCKET");
  unsetenv("WATCHDOG_USEC");
  unsetenv("WATCHDOG_PID");
}

}  // namespace
}  // namespace memshard
