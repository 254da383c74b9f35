#include "core/worker.h"

#include <sched.h>
#include <unistd.h>

#include <atomic>

#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
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

TEST(WorkerTest, CheckInShowsTheLoopRunsAndGoesStaleWhenItIsStuck) {
  Worker worker(0, /*cpu=*/-1);
  absl::Notification started, release, stuck;
  worker.Start([&] { started.Notify(); });
  ASSERT_TRUE(started.WaitForNotificationWithTimeout(absl::Seconds(5)));
  absl::Time asked = absl::Now();
  worker.RequestCheckIn();
  absl::Time deadline = asked + absl::Seconds(5);
  while (worker.last_check_in() < asked && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(1));
  }
  EXPECT_GE(worker.last_check_in(), asked);

  // A callback that blocks keeps the next check-in from being stamped.
  worker.Post([&] {
    stuck.Notify();
    release.WaitForNotification();
  });
  ASSERT_TRUE(stuck.WaitForNotificationWithTimeout(absl::Seconds(5)));
  absl::Time before = worker.last_check_in();
  worker.RequestCheckIn();
  absl::SleepFor(absl::Milliseconds(50));
  EXPECT_EQ(worker.last_check_in(), before);
  release.Notify();
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
