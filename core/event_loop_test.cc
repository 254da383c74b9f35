#include "core/event_loop.h"

#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"

namespace memshard {
namespace {

TEST(EventLoopTest, TimersFireInDeadlineOrder) {
  EventLoop loop;
  std::vector<int> order;
  absl::Time start = absl::Now();
  loop.AddTimer(absl::Milliseconds(30), [&] {
    order.push_back(2);
    loop.Stop();
  });
  loop.AddTimer(absl::Milliseconds(10), [&] { order.push_back(1); });
  loop.Run();
  EXPECT_EQ(order, (std::vector<int>{1, 2}));
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(30));
}

TEST(EventLoopTest, AnEarlierTimerAddedWhileWaitingFiresOnTime) {
  EventLoop loop;
  absl::Time start = absl::Now();
  absl::Time fired = absl::InfiniteFuture();
  // The loop sleeps toward the 10 s timer; a timer added from a callback
  // for 20 ms later must wake it then.
  loop.AddTimer(absl::Seconds(10), [&] { loop.Stop(); });
  loop.AddTimer(absl::Milliseconds(1), [&] {
    loop.AddTimer(absl::Milliseconds(20), [&] {
      fired = absl::Now();
      loop.Stop();
    });
  });
  loop.Run();
  EXPECT_GE(fired - start, absl::Milliseconds(21));
  EXPECT_LT(fired - start, absl::Seconds(5));
}

TEST(EventLoopTest, CancelledTimerDoesNotFire) {
  EventLoop loop;
  bool fired = false;
  EventLoop::TimerId id =
      loop.AddTimer(absl::Milliseconds(5), [&] { fired = true; });
  loop.CancelTimer(id);
  loop.AddTimer(absl::Milliseconds(20), [&] { loop.Stop(); });
  loop.Run();
  EXPECT_FALSE(fired);
}

TEST(EventLoopTest, PostFromAnotherThreadWakesTheLoop) {
  EventLoop loop;
  std::atomic<std::thread::id> ran_on{};
  std::thread runner([&] { loop.Run(); });
  // No timers, no fds: only the eventfd can wake it.
  absl::SleepFor(absl::Milliseconds(20));
  absl::Notification done;
  loop.Post([&] {
    ran_on = std::this_thread::get_id();
    done.Notify();
  });
  EXPECT_TRUE(done.WaitForNotificationWithTimeout(absl::Seconds(5)));
  EXPECT_EQ(ran_on.load(), runner.get_id());
  loop.Stop();
  runner.join();
}

TEST(EventLoopTest, TasksPostedBeforeStopStillRun) {
  EventLoop loop;
  int ran = 0;
  for (int i = 0; i < 100; ++i) loop.Post([&] { ++ran; });
  loop.Stop();
  loop.Run();
  EXPECT_EQ(ran, 100);
}

struct Tracked : Deletable {
  explicit Tracked(bool* deleted) : deleted(deleted) {}
  ~Tracked() override { *deleted = true; }
  bool* deleted;
};

class ReadHandler : public EventHandler {
 public:
  ReadHandler(EventLoop* loop, int fd, bool* deleted)
      : loop_(loop), fd_(fd), deleted_(deleted) {}
  void OnEvents(uint32_t events) override {
    char buf[16];
    ssize_t n = read(fd_, buf, sizeof(buf));
    EXPECT_EQ(n, 1);
    // Schedule deletion of something from inside a callback: it must stay
    // alive until the iteration ends.
    loop_->DeleteLater(std::make_unique<Tracked>(deleted_));
    EXPECT_FALSE(*deleted_);
    loop_->Stop();
  }

 private:
  EventLoop* loop_;
  int fd_;
  bool* deleted_;
};

TEST(EventLoopTest, DispatchesReadinessAndDefersDeletion) {
  int fds[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, fds), 0);
  EventLoop loop;
  bool deleted = false;
  ReadHandler handler(&loop, fds[0], &deleted);
  ASSERT_TRUE(loop.Add(fds[0], EPOLLIN | EPOLLET, &handler).ok());
  ASSERT_EQ(write(fds[1], "x", 1), 1);
  loop.Run();
  EXPECT_TRUE(deleted);
  close(fds[0]);
  close(fds[1]);
}

TEST(EventLoopTest, RunSoonRunsInTheNextIterationWithoutBlocking) {
  EventLoop loop;
  int ran = 0;
  uint64_t ran_in_epoch = 0;
  // A far timer keeps epoll_wait from returning on its own.
  loop.AddTimer(absl::Seconds(30), [] {});
  loop.Post([&] {
    loop.RunSoon([&] {
      ++ran;
      ran_in_epoch = loop.epoch();
      loop.Stop();
    });
  });
  absl::Time start = absl::Now();
  loop.Run();
  EXPECT_EQ(ran, 1);
  EXPECT_EQ(ran_in_epoch, 2u);
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
}

TEST(EventLoopTest, FreshNanosIsTheWallClock) {
  EventLoop loop;
  for (int i = 0; i < 3; ++i) {
    const int64_t before = absl::ToUnixNanos(absl::Now());
    const int64_t fresh = loop.FreshNanos();
    const int64_t after = absl::ToUnixNanos(absl::Now());
    // absl::Now() interpolates the TSC between kernel readings: allow it a
    // little disagreement with the kernel's clock.
    EXPECT_GE(fresh, before - 1000000);
    EXPECT_LE(fresh, after + 1000000);
    absl::SleepFor(absl::Milliseconds(15));
  }
}

TEST(EventLoopTest, NowInNanosecondsIsTheIterationsTime) {
  EventLoop loop;
  EXPECT_EQ(loop.now_unix_ns(), absl::ToUnixNanos(loop.now()));
  const absl::Time before = absl::Now();
  int64_t seen_ns = 0;
  absl::Time seen;
  loop.Post([&] {
    seen_ns = loop.now_unix_ns();
    seen = loop.now();
    loop.Stop();
  });
  loop.Run();
  EXPECT_EQ(seen_ns, absl::ToUnixNanos(seen));
  EXPECT_GE(seen, before);
  EXPECT_LE(seen, absl::Now());
}

TEST(EventLoopTest, EpochHooksRunOncePerIteration) {
  EventLoop loop;
  int hooks = 0;
  loop.AddEpochHook([&] { ++hooks; });
  int ticks = 0;
  std::function<void()> tick = [&] {
    if (++ticks == 3) {
      loop.Stop();
    } else {
      loop.AddTimer(absl::Milliseconds(1), tick);
    }
  };
  loop.AddTimer(absl::Milliseconds(1), tick);
  loop.Run();
  EXPECT_EQ(ticks, 3);
  EXPECT_GE(hooks, 3);
  EXPECT_EQ(static_cast<uint64_t>(hooks), loop.epoch());
}

// Counts events; the test fails if one arrives after the fd was closed.
class CountingHandler : public EventHandler {
 public:
  void OnEvents(uint32_t events) override { ++calls; }
  int calls = 0;
};

TEST(EventLoopTest, RemoveBeforeCloseLeavesNoRegistration) {
  EventLoop loop;
  int fds[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, fds), 0);
  CountingHandler first;
  ASSERT_TRUE(loop.Add(fds[0], EPOLLIN | EPOLLET, &first).ok());
  loop.RemoveBeforeClose(fds[0]);
  close(fds[0]);
  // The fd number comes back from the next socket, and registers afresh:
  // nothing of the old registration is left to collide with it.
  int again[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, again), 0);
  CountingHandler second;
  ASSERT_TRUE(loop.Add(again[0], EPOLLIN | EPOLLET, &second).ok());
  ASSERT_EQ(write(again[1], "x", 1), 1);
  loop.AddTimer(absl::Milliseconds(20), [&] { loop.Stop(); });
  loop.Run();
  EXPECT_EQ(first.calls, 0);
  EXPECT_EQ(second.calls, 1);
  close(fds[1]);
  close(again[0]);
  close(again[1]);
}

// Logs PrepareEvents and OnEvents calls, as "p<id>" and "e<id>"; OnEvents
// reads what `fd` holds.
class PreparingHandler : public EventHandler {
 public:
  PreparingHandler(int id, int fd, std::vector<std::string>* log)
      : id_(id), fd_(fd), log_(log) {}
  void PrepareEvents(uint32_t events) override {
    log_->push_back("p" + std::to_string(id_));
  }
  void OnEvents(uint32_t events) override {
    log_->push_back("e" + std::to_string(id_));
    char buf[16];
    while (read(fd_, buf, sizeof(buf)) > 0) {
    }
  }

 private:
  const int id_;
  const int fd_;
  std::vector<std::string>* const log_;
};

TEST(EventLoopTest, ABatchIsPreparedBeforeAnyOfItsEventsRun) {
  EventLoop loop;
  std::vector<std::string> log;
  int a[2], b[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, a), 0);
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, b), 0);
  PreparingHandler first(1, a[0], &log), second(2, b[0], &log);
  ASSERT_TRUE(loop.Add(a[0], EPOLLIN | EPOLLET, &first).ok());
  ASSERT_TRUE(loop.Add(b[0], EPOLLIN | EPOLLET, &second).ok());
  // Both ready before the loop waits: one batch of two.
  ASSERT_EQ(write(a[1], "x", 1), 1);
  ASSERT_EQ(write(b[1], "x", 1), 1);
  loop.AddTimer(absl::Milliseconds(20), [&] { loop.Stop(); });
  loop.Run();
  ASSERT_EQ(log.size(), 4u);
  EXPECT_EQ(log[0][0], 'p');
  EXPECT_EQ(log[1][0], 'p');
  EXPECT_EQ(log[2][0], 'e');
  EXPECT_EQ(log[3][0], 'e');
  // Same order in both passes.
  EXPECT_EQ(log[0].substr(1), log[2].substr(1));
  EXPECT_EQ(log[1].substr(1), log[3].substr(1));
  // A batch of one is not prepared.
  log.clear();
  EventLoop alone;
  ASSERT_TRUE(alone.Add(a[0], EPOLLIN | EPOLLET, &first).ok());
  ASSERT_EQ(write(a[1], "x", 1), 1);
  alone.AddTimer(absl::Milliseconds(20), [&] { alone.Stop(); });
  alone.Run();
  EXPECT_EQ(log, (std::vector<std::string>{"e1"}));
  for (int fd : {a[0], a[1], b[0], b[1]}) close(fd);
}

TEST(EventLoopTest, ForkedEverTurnsOnAtTheFirstFork) {
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) _exit(0);
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  // From now on RemoveBeforeClose() removes explicitly: a child may hold
  // a copy of any descriptor.
  EXPECT_TRUE(EventLoop::ForkedEver());
}

}  // namespace
}  // namespace memshard
