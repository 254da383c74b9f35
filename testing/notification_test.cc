#include "testing/notification.h"

#include <thread>

#include "gtest/gtest.h"

namespace memshard {
namespace {

TEST(NotificationTest, WaiterSeesWhatTheNotifierWroteBefore) {
  Notification ready;
  int handed_over = 0;  // Plain int: TSan checks the hand-off.
  std::thread notifier([&] {
    handed_over = 42;
    ready.Notify();
  });
  ready.WaitForNotification();
  EXPECT_EQ(handed_over, 42);
  EXPECT_TRUE(ready.HasBeenNotified());
  notifier.join();
}

TEST(NotificationTest, TimeoutWithoutNotify) {
  Notification never;
  EXPECT_FALSE(never.WaitForNotificationWithTimeout(absl::Milliseconds(20)));
  EXPECT_FALSE(never.HasBeenNotified());
}

TEST(NotificationTest, AlreadyNotifiedReturnsAtOnce) {
  Notification done;
  done.Notify();
  EXPECT_TRUE(done.WaitForNotificationWithTimeout(absl::ZeroDuration()));
}

}  // namespace
}  // namespace memshard
