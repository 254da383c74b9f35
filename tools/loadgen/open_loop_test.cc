#include "tools/loadgen/open_loop.h"

#include <cstdint>
#include <vector>

#include "gtest/gtest.h"

namespace memshard {
namespace loadgen {
namespace {

constexpr int64_t kSecond = 1000000000;

TEST(OpenLoopScheduleTest, UniformIsEvenlySpacedAndDoesNotDrift) {
  // 3 requests/s: a period of 333333333.33 ns that does not divide evenly.
  const int64_t start = 5 * kSecond;
  OpenLoopSchedule schedule(start, 3.0, 0.0, Arrival::kUniform, 1);
  std::vector<int64_t> times;
  for (int i = 0; i < 3 * 3600; ++i) {
    times.push_back(schedule.next_ns());
    schedule.Advance();
  }
  EXPECT_EQ(times.front(), start);
  for (size_t i = 1; i < times.size(); ++i) {
    ASSERT_NEAR(times[i] - times[i - 1], kSecond / 3.0, 1.0);
  }
  // After an hour the schedule is still on the exact grid.
  EXPECT_NEAR(schedule.next_ns(), start + 3600 * kSecond, 1.0);
}

TEST(OpenLoopScheduleTest, PhaseOffsetsTheFirstSend) {
  OpenLoopSchedule schedule(0, 1.0, 0.25, Arrival::kUniform, 1);
  EXPECT_EQ(schedule.next_ns(), kSecond / 4);
  schedule.Advance();
  EXPECT_EQ(schedule.next_ns(), kSecond + kSecond / 4);
}

// Connections that share a total rate and get phases i/N send in an evenly
// interleaved stream: N connections at 1/s look like one at N/s.
TEST(OpenLoopScheduleTest, PhasesInterleaveConnections) {
  const int connections = 8000;
  SendQueue queue;
  std::vector<OpenLoopSchedule> schedules;
  for (int i = 0; i < connections; ++i) {
    schedules.emplace_back(0, 1.0, static_cast<double>(i) / connections,
                           Arrival::kUniform, i);
    queue.Push(schedules.back().next_ns(), i);
  }
  int64_t due, previous = -1;
  uint32_t connection;
  int sent = 0;
  while (queue.PopDue(2 * kSecond - 1, &due, &connection)) {
    if (previous >= 0) {
      ASSERT_NEAR(due - previous, kSecond / connections, 1) << sent;
    }
    ASSERT_EQ(connection, static_cast<uint32_t>(sent % connections));
    previous = due;
    ++sent;
    schedules[connection].Advance();
    queue.Push(schedules[connection].next_ns(), connection);
  }
  EXPECT_EQ(sent, 2 * connections);
  EXPECT_FALSE(queue.PopDue(2 * kSecond - 1, &due, &connection));
  EXPECT_EQ(queue.next_due_ns(), 2 * kSecond);
}

TEST(OpenLoopScheduleTest, PoissonHasTheRequestedMeanRate) {
  OpenLoopSchedule schedule(0, 1000.0, 0.0, Arrival::kPoisson, 17);
  int sent = 0;
  int64_t previous = 0;
  bool monotonic = true;
  while (schedule.next_ns() < 100 * kSecond) {
    monotonic = monotonic && schedule.next_ns() >= previous;
    previous = schedule.next_ns();
    schedule.Advance();
    ++sent;
  }
  EXPECT_TRUE(monotonic);
  EXPECT_NEAR(sent, 100000, 1500);  // about 5 standard deviations
}

TEST(OpenLoopScheduleTest, SendQueuePopsOnlyDueEntriesInOrder) {
  SendQueue queue;
  queue.Push(30, 3);
  queue.Push(10, 1);
  queue.Push(20, 2);
  queue.Push(10, 0);
  int64_t due;
  uint32_t connection;
  ASSERT_TRUE(queue.PopDue(15, &due, &connection));
  EXPECT_EQ(connection, 0u);
  ASSERT_TRUE(queue.PopDue(15, &due, &connection));
  EXPECT_EQ(connection, 1u);
  EXPECT_EQ(due, 10);
  EXPECT_FALSE(queue.PopDue(15, &due, &connection));
  EXPECT_EQ(queue.next_due_ns(), 20);
  EXPECT_FALSE(ParseArrival("bursty").ok());
}

}  // namespace
}  // namespace loadgen
}  // namespace memshard
