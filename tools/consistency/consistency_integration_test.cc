// The consistency checker against the real memshard binary (--workers=2):
// 200,000 random requests over 8 connections on 16 hot keys must give a
// linearizable history with no eviction. The real history is then corrupted
// in the ways the checker exists to catch (a lost write, a stale read, a
// wrong increment, a double CAS win), and each corruption must be flagged,
// which shows the run could have failed. Debian's memcached runs the same
// workload as the reference (see test.log for the figures).

#include <sys/wait.h>

#include <algorithm>
#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "testing/memcached_process.h"
#include "testing/server_process.h"
#include "tools/consistency/checker.h"
#include "tools/consistency/trial.h"

namespace memshard::consistency {
namespace {

// Two ops on one key, P then X, with nothing else on the key overlapping
// either, and nothing between them: P pins the key's state for X.
struct QuietPair {
  size_t p;
  size_t x;
};

std::vector<QuietPair> QuietPairs(const History& history) {
  std::vector<std::vector<size_t>> by_key(history.keys.size());
  for (size_t i = 0; i < history.ops.size(); ++i) {
    if (history.ops[i].respond_ns != Op::kNoResponse) {
      by_key[history.ops[i].key].push_back(i);
    }
  }
  std::vector<QuietPair> pairs;
  for (std::vector<size_t>& ops : by_key) {
    std::sort(ops.begin(), ops.end(), [&](size_t a, size_t b) {
      return history.ops[a].invoke_ns < history.ops[b].invoke_ns;
    });
    std::vector<bool> quiet(ops.size());
    int64_t max_respond = INT64_MIN;
    for (size_t i = 0; i < ops.size(); ++i) {
      const Op& op = history.ops[ops[i]];
      const bool after_all = op.invoke_ns > max_respond;
      const bool before_next =
          i + 1 == ops.size() ||
          op.respond_ns < history.ops[ops[i + 1]].invoke_ns;
      quiet[i] = after_all && before_next;
      max_respond = std::max(max_respond, op.respond_ns);
    }
    for (size_t i = 1; i < ops.size(); ++i) {
      if (quiet[i - 1] && quiet[i]) pairs.push_back({ops[i - 1], ops[i]});
    }
  }
  return pairs;
}

bool IsRead(const Op& op) {
  return op.type == OpType::kGet || op.type == OpType::kGets;
}

// Applies `mutate` to a copy of `history` at the first pair it accepts, and
// expects the checker to flag the copy.
template <typename Mutate>
void ExpectCaught(const History& history, const char* what, Mutate mutate) {
  History copy = history;
  bool mutated = false;
  for (const QuietPair& pair : QuietPairs(copy)) {
    if (mutate(copy.ops[pair.p], &copy.ops[pair.x])) {
      mutated = true;
      break;
    }
  }
  ASSERT_TRUE(mutated) << "no place to inject " << what;
  const CheckReport report = CheckHistory(copy);
  EXPECT_GE(report.violations, 1u) << what << " not caught";
  if (!report.reported.empty()) {
    std::printf("injected %s, caught:\n%s\n", what,
                report.reported[0].description.c_str());
  }
}

void ExpectCorruptionsCaught(const History& history) {
  ExpectCaught(history, "a lost write (hit -> miss)", [](const Op& p, Op* x) {
    if (!IsRead(p) || !IsRead(*x) || p.outcome != Outcome::kHit ||
        x->outcome != Outcome::kHit) {
      return false;
    }
    x->outcome = Outcome::kMiss;
    return true;
  });
  // A stale read: the read returns a value the key had long ago.
  std::map<uint32_t, std::string> first_value;
  ExpectCaught(history, "a stale read", [&](const Op& p, Op* x) {
    if (!IsRead(p) || p.outcome != Outcome::kHit) return false;
    auto [it, inserted] = first_value.emplace(p.key, p.value);
    if (inserted || !IsRead(*x) || x->outcome != Outcome::kHit ||
        x->value == it->second) {
      return false;
    }
    x->value = it->second;
    return true;
  });
  ExpectCaught(history, "a wrong increment", [](const Op& p, Op* x) {
    const bool pins = (IsRead(p) && p.outcome == Outcome::kHit) ||
                      p.outcome == Outcome::kNumber;
    if (!pins || x->outcome != Outcome::kNumber) return false;
    ++x->number;
    return true;
  });
  // A second win for a token that already won, by another client later.
  History copy = history;
  auto winner =
      std::find_if(copy.ops.begin(), copy.ops.end(), [](const Op& op) {
        return op.type == OpType::kCas && op.outcome == Outcome::kStored;
      });
  ASSERT_NE(winner, copy.ops.end());
  Op again = *winner;
  again.client = 99;
  again.value = "again";
  int64_t last = 0;
  for (const Op& op : copy.ops) last = std::max(last, op.respond_ns);
  again.invoke_ns = last + 1;
  again.respond_ns = last + 2;
  copy.ops.push_back(again);
  EXPECT_GE(CheckHistory(copy).violations, 1u) << "double CAS win not caught";
}

TEST(ConsistencyIntegrationTest, MemshardHistoryIsLinearizable) {
  auto server =
      ServerProcess::StartMemshard({"--workers=2", "--memory_limit_mb=256"});
  ASSERT_TRUE(server.ok()) << server.status();
  WorkloadOptions options;
  options.requests = 200000;
  options.connections = 8;
  options.keys = 16;
  options.query_worker_connections = true;
  absl::StatusOr<TrialReport> report = RunTrial((*server)->port(), options);
  ASSERT_TRUE(report.ok()) << report.status();
  std::printf("memshard: %s\n", report->Summary().c_str());
  std::fflush(stdout);
  EXPECT_TRUE(report->ok()) << report->Summary();
  EXPECT_GE(report->workload.requests, options.requests);
  EXPECT_EQ(report->evictions, 0);
  ExpectCorruptionsCaught(report->workload.history);
  const int status = (*server)->Stop(absl::Seconds(30));
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
      << DescribeWaitStatus(status);
}

TEST(ConsistencyIntegrationTest, MemcachedHistoryIsLinearizable) {
  if (!MemcachedProcess::IsInstalled()) GTEST_SKIP() << "no memcached";
  auto server = MemcachedProcess::Start({"-m", "256", "-t", "2"});
  ASSERT_TRUE(server.ok()) << server.status();
  WorkloadOptions options;
  options.requests = 50000;
  absl::StatusOr<TrialReport> report = RunTrial((*server)->port(), options);
  ASSERT_TRUE(report.ok()) << report.status();
  std::printf("memcached: %s\n", report->Summary().c_str());
  EXPECT_TRUE(report->ok()) << report->Summary();
}

}  // namespace
}  // namespace memshard::consistency
