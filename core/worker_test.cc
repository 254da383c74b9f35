#include "core/worker.h"

#include <sched.h>
#include <unistd.h>

#include <atomic>

#include "absl/synchronization/notification.h"
#include "core/socket.h"
#include "gtest/gtest.h"

namespace memshard {
namespace {

TEST(WorkerTest, RunsStartHookAndPostedTasksOnItsPinnedThread) {
  Worker worker(0, /*cpu=*/0);
  std::atomic<int> cpu_seen{-1};
  absl::Notification started, posted;
  worker.Start([&] { started.Notify(); });
  ASSERT_TRUE(started.WaitForNotificationWithTimeout(absl::Seconds(5)));
  worker.Post([&] {
    cpu_seen = sched_getcpu();
    posted.Notify();
  });
  ASSERT_TRUE(posted.WaitForNotificationWithTimeout(absl::Seconds(5)));
  EXPECT_EQ(cpu_seen.load(), 0);
  worker.Stop();
  worker.Join();
}

TEST(SocketTest, ReusePortLetsTwoSocketsShareAKernelChosenPort) {
  absl::StatusOr<int> first = ListenTcp("127.0.0.1", 0, true, 16);
  ASSERT_TRUE(first.ok()) << first.status();
  absl::StatusOr<uint16_t> port = BoundPort(*first);
  ASSERT_TRUE(port.ok());
  EXPECT_NE(*port, 0);
  absl::StatusOr<int> second = ListenTcp("127.0.0.1", *port, true, 16);
  ASSERT_TRUE(second.ok()) << second.status();
  close(*first);
  close(*second);
}

TEST(SocketTest, RejectsBadAddress) {
  EXPECT_FALSE(ListenTcp("not-an-address", 0, true, 16).ok());
}

TEST(SocketTest, ListensOnIpv6Loopback) {
  absl::StatusOr<int> fd = ListenTcp("[::1]", 0, true, 16);
  if (!fd.ok()) GTEST_SKIP() << "no IPv6 here: " << fd.status();
  close(*fd);
}

}  // namespace
}  // namespace memshard
