#include "tools/consistency/checker.h"

#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace memshard::consistency {
namespace {

// Hand-made histories on one key; times are small integers (ns).

Op Base(int client, OpType type, int64_t invoke, int64_t respond,
        Outcome outcome) {
  Op op;
  op.client = client;
  op.type = type;
  op.invoke_ns = invoke;
  op.respond_ns = respond;
  op.outcome = outcome;
  return op;
}

Op Write(OpType type, int client, int64_t invoke, int64_t respond,
         std::string value, Outcome outcome = Outcome::kStored,
         uint32_t flags = 0) {
  Op op = Base(client, type, invoke, respond, outcome);
  op.value = std::move(value);
  op.flags = flags;
  return op;
}

Op Set(int client, int64_t invoke, int64_t respond, std::string value,
       uint32_t flags = 0) {
  return Write(OpType::kSet, client, invoke, respond, std::move(value),
               Outcome::kStored, flags);
}

Op Get(int client, int64_t invoke, int64_t respond, std::string value,
       uint32_t flags = 0) {
  Op op = Base(client, OpType::kGet, invoke, respond, Outcome::kHit);
  op.value = std::move(value);
  op.flags = flags;
  return op;
}

Op Miss(int client, int64_t invoke, int64_t respond) {
  return Base(client, OpType::kGet, invoke, respond, Outcome::kMiss);
}

Op Gets(int client, int64_t invoke, int64_t respond, std::string value,
        uint64_t token) {
  Op op = Base(client, OpType::kGets, invoke, respond, Outcome::kHit);
  op.value = std::move(value);
  op.cas = token;
  return op;
}

Op Cas(int client, int64_t invoke, int64_t respond, std::string value,
       uint64_t token, Outcome outcome) {
  Op op =
      Write(OpType::kCas, client, invoke, respond, std::move(value), outcome);
  op.cas = token;
  return op;
}

Op Delta(OpType type, int client, int64_t invoke, int64_t respond,
         uint64_t delta, uint64_t result) {
  Op op = Base(client, type, invoke, respond, Outcome::kNumber);
  op.delta = delta;
  op.number = result;
  return op;
}

Op Delete(int client, int64_t invoke, int64_t respond,
          Outcome outcome = Outcome::kDeleted) {
  return Base(client, OpType::kDelete, invoke, respond, outcome);
}

CheckReport Check(std::vector<Op> ops) {
  History history;
  history.keys = {"k"};
  history.ops = std::move(ops);
  return CheckHistory(history);
}

// Expects exactly `violations`; prints the report either way on failure.
void ExpectViolations(std::vector<Op> ops, uint64_t violations) {
  const CheckReport report = Check(std::move(ops));
  EXPECT_EQ(report.violations, violations) << report.Summary();
  EXPECT_TRUE(report.inconclusive.empty()) << report.Summary();
}

void ExpectValid(std::vector<Op> ops) { ExpectViolations(std::move(ops), 0); }

// --- Valid histories, sequential and concurrent ---

TEST(CheckerTest, EmptyAndSequentialHistoriesPass) {
  ExpectValid({});
  ExpectValid({Miss(0, 0, 1), Set(0, 2, 3, "a", 7), Get(1, 4, 5, "a", 7),
               Delete(1, 6, 7), Miss(0, 8, 9),
               Delete(0, 10, 11, Outcome::kNotFound)});
}

TEST(CheckerTest, ReadOverlappingAWriteMaySeeEitherValue) {
  ExpectValid({Set(0, 0, 1, "a"), Set(1, 2, 10, "b"), Get(2, 3, 4, "a"),
               Get(3, 3, 5, "b"), Get(2, 11, 12, "b")});
}

TEST(CheckerTest, ConcurrentWritesMayLandInEitherOrder) {
  // Both orders are seen by successive readers: only "b then a" explains
  // the later read of "a" after an earlier read of "b".
  ExpectValid({Set(0, 0, 10, "a"), Set(1, 0, 10, "b"), Get(2, 1, 2, "b"),
               Get(2, 3, 4, "a"), Get(3, 11, 12, "a")});
}

TEST(CheckerTest, ConcurrentIncrementsInSomeOrder) {
  // b returned 11, so it was applied first although a was invoked first;
  // a decrement then floors at 0, padded to the old length.
  ExpectValid({Set(0, 0, 1, "10"), Delta(OpType::kIncr, 1, 2, 6, 1, 12),
               Delta(OpType::kIncr, 2, 3, 5, 1, 11), Get(0, 7, 8, "12"),
               Delta(OpType::kDecr, 0, 9, 10, 20, 0), Get(0, 11, 12, "0 ")});
}

TEST(CheckerTest, ConcurrentAppendsInEitherOrder) {
  ExpectValid({Set(0, 0, 1, "x"), Write(OpType::kAppend, 1, 2, 5, "a"),
               Write(OpType::kAppend, 2, 3, 4, "b"),
               Write(OpType::kPrepend, 3, 2, 6, "p"), Get(0, 7, 8, "pxba")});
  ExpectValid({Set(0, 0, 1, "x"), Write(OpType::kAppend, 1, 2, 5, "a"),
               Write(OpType::kAppend, 2, 3, 4, "b"), Get(0, 7, 8, "xab")});
}

TEST(CheckerTest, CasContentionHasOneWinner) {
  ExpectValid(
      {Set(0, 0, 1, "a"), Gets(1, 2, 3, "a", 100), Gets(2, 2, 3, "a", 100),
       Cas(1, 4, 8, "b", 100, Outcome::kStored),
       Cas(2, 5, 7, "c", 100, Outcome::kExists), Get(0, 9, 10, "b"),
       Gets(0, 11, 12, "b", 101), Cas(0, 13, 14, "d", 101, Outcome::kStored)});
}

TEST(CheckerTest, AddsRaceForAnAbsentKey) {
  ExpectValid({Write(OpType::kAdd, 0, 0, 3, "a"),
               Write(OpType::kAdd, 1, 1, 2, "b", Outcome::kNotStored),
               Get(2, 4, 5, "a"), Write(OpType::kReplace, 2, 6, 7, "c"),
               Delete(1, 8, 9),
               Write(OpType::kReplace, 2, 10, 11, "d", Outcome::kNotStored),
               Write(OpType::kAppend, 2, 12, 13, "d", Outcome::kNotStored)});
}

TEST(CheckerTest, DeleteConcurrentWithReadExplainsAMiss) {
  ExpectValid(
      {Set(0, 0, 1, "a"), Delete(1, 2, 6), Miss(2, 3, 4), Miss(2, 7, 8)});
}

TEST(CheckerTest, NonNumericIncrementAfterAppend) {
  Op incr = Base(1, OpType::kIncr, 4, 5, Outcome::kNonNumeric);
  incr.delta = 1;
  ExpectValid({Set(0, 0, 1, "10"), Write(OpType::kAppend, 0, 2, 3, "a7."), incr,
               Get(0, 6, 7, "10a7.")});
}

TEST(CheckerTest, OperationWithoutReplyMayOrMayNotTakeEffect) {
  Op lost = Set(1, 2, Op::kNoResponse, "b");
  lost.outcome = Outcome::kUnknown;
  ExpectValid({Set(0, 0, 1, "a"), lost, Get(2, 3, 4, "a"), Get(2, 5, 6, "b")});
  ExpectValid({Set(0, 0, 1, "a"), lost, Get(2, 3, 4, "a"), Get(2, 5, 6, "a")});
  Op garbled = Set(1, 2, 3, "b");
  garbled.outcome = Outcome::kUnknown;
  ExpectValid({Set(0, 0, 1, "a"), garbled, Get(2, 4, 5, "a")});
}

TEST(CheckerTest, TiesInTimeCountAsOverlap) {
  // A read invoked at the instant a write responded may precede it.
  ExpectValid({Set(0, 0, 5, "a"), Miss(1, 5, 6)});
  ExpectValid({Set(0, 0, 1, "a"), Set(1, 2, 5, "b"), Get(2, 5, 6, "a")});
}

// --- Violations it must flag ---

TEST(CheckerTest, FlagsAStaleRead) {
  // b completed before the read began; the read still returned a.
  ExpectViolations({Set(0, 0, 1, "a"), Set(0, 2, 3, "b"), Get(1, 4, 5, "a")},
                   1);
}

TEST(CheckerTest, FlagsNewThenOldInversion) {
  // b is in flight; one reader saw b, a later reader saw a again.
  ExpectViolations({Set(0, 0, 1, "a"), Set(1, 2, 10, "b"), Get(2, 3, 4, "b"),
                    Get(3, 5, 6, "a")},
                   1);
}

TEST(CheckerTest, FlagsAReadOfTheFuture) {
  ExpectViolations({Get(0, 0, 1, "a"), Set(1, 2, 3, "a")}, 1);
}

TEST(CheckerTest, FlagsAValueNobodyWrote) {
  ExpectViolations({Set(0, 0, 1, "a"), Get(1, 2, 3, "z")}, 1);
  ExpectViolations({Set(0, 0, 1, "a", 5), Get(1, 2, 3, "a", 6)}, 1);
}

TEST(CheckerTest, FlagsADoubleCasWin) {
  // The search flags the second win, and the explicit token check too.
  ExpectViolations(
      {Set(0, 0, 1, "a"), Gets(1, 2, 3, "a", 100), Gets(2, 2, 3, "a", 100),
       Cas(1, 4, 5, "b", 100, Outcome::kStored),
       Cas(2, 4, 6, "c", 100, Outcome::kStored)},
      2);
}

TEST(CheckerTest, FlagsACasThatLostWithTheCurrentToken) {
  ExpectViolations({Set(0, 0, 1, "a"), Gets(1, 2, 3, "a", 100),
                    Cas(1, 4, 5, "b", 100, Outcome::kExists)},
                   1);
}

TEST(CheckerTest, FlagsATokenThatChangesWithoutAWrite) {
  ExpectViolations(
      {Set(0, 0, 1, "a"), Gets(1, 2, 3, "a", 100), Gets(2, 4, 5, "a", 101)}, 1);
  // One token, two values: the explicit check (the search accepts it, as
  // it cannot know tokens of different versions differ).
  ExpectViolations({Set(0, 0, 1, "a"), Gets(1, 2, 3, "a", 100),
                    Set(0, 4, 5, "b"), Gets(1, 6, 7, "b", 100)},
                   1);
}

TEST(CheckerTest, FlagsALostWrite) {
  ExpectViolations({Set(0, 0, 1, "a"), Miss(1, 2, 3)}, 1);
  // An append acknowledged but missing from a later read.
  ExpectViolations({Set(0, 0, 1, "x"), Write(OpType::kAppend, 1, 2, 3, "a"),
                    Get(2, 4, 5, "x")},
                   1);
}

TEST(CheckerTest, FlagsAWrongIncrement) {
  ExpectViolations({Set(0, 0, 1, "10"), Delta(OpType::kIncr, 1, 2, 3, 5, 16)},
                   1);
  // Two concurrent increments by 1 cannot both return 11.
  ExpectViolations({Set(0, 0, 1, "10"), Delta(OpType::kIncr, 1, 2, 6, 1, 11),
                    Delta(OpType::kIncr, 2, 3, 5, 1, 11)},
                   1);
  // The stored result is padded as memcached pads it.
  ExpectViolations({Set(0, 0, 1, "10"), Delta(OpType::kDecr, 0, 2, 3, 1, 9),
                    Get(0, 4, 5, "9")},
                   1);
}

TEST(CheckerTest, FlagsTwoAddsThatBothWon) {
  ExpectViolations(
      {Write(OpType::kAdd, 0, 0, 3, "a"), Write(OpType::kAdd, 1, 1, 2, "b")},
      1);
}

TEST(CheckerTest, KeepsCountingAfterAViolation) {
  // Resynchronised after the first stale read, the second is flagged too.
  ExpectViolations({Set(0, 0, 1, "a"), Set(0, 2, 3, "b"), Get(1, 4, 5, "a"),
                    Set(0, 6, 7, "c"), Get(1, 8, 9, "b"), Get(1, 10, 11, "c")},
                   2);
}

TEST(CheckerTest, KeysAreCheckedSeparately) {
  History history;
  history.keys = {"k0", "k1"};
  Op set = Set(0, 0, 1, "a");
  Op get = Get(1, 2, 3, "a");
  get.key = 1;
  history.ops = {set, get};
  const CheckReport report = CheckHistory(history);
  EXPECT_EQ(report.violations, 1u) << report.Summary();
  ASSERT_EQ(report.reported.size(), 1u);
  EXPECT_NE(report.reported[0].description.find("k1"), std::string::npos);
}

TEST(CheckerTest, ReportNamesTheOperationAndCandidates) {
  const CheckReport report =
      Check({Set(0, 0, 1, "a"), Set(0, 2, 3, "b"), Get(1, 4, 5, "a")});
  ASSERT_EQ(report.reported.size(), 1u);
  const std::string& d = report.reported[0].description;
  EXPECT_NE(d.find("client 1 get key 0"), std::string::npos) << d;
  EXPECT_NE(d.find("could be:  present 'b'"), std::string::npos) << d;
}

TEST(CheckerTest, ManyConcurrentReadersStayCheap) {
  std::vector<Op> ops = {Set(0, 0, 1, "a"), Set(0, 2, 100, "b")};
  for (int c = 1; c <= 40; ++c) {
    ops.push_back(Get(c, 3 + c, 200 + c, c % 2 ? "a" : "b"));
  }
  const CheckReport report = Check(ops);
  EXPECT_EQ(report.violations, 0u) << report.Summary();
  EXPECT_EQ(report.backtracks, 0u);
}

TEST(CheckerTest, BacktracksWhenTheLazyOrderIsWrong) {
  // At b's response the search first tries b alone ("xb"); the read of
  // "xab" forces it back to put a first.
  const CheckReport report =
      Check({Set(0, 0, 1, "x"), Write(OpType::kAppend, 1, 2, 5, "a"),
             Write(OpType::kAppend, 2, 3, 4, "b"), Get(0, 7, 8, "xab")});
  EXPECT_EQ(report.violations, 0u) << report.Summary();
  EXPECT_GE(report.backtracks, 1u);
}

TEST(CheckerTest, ViolationAfterALongConcurrentPastIsFoundQuickly) {
  // 2000 pairs of concurrent sets leave two possible states each time; the
  // memo keeps the search from trying 2^2000 orders before giving up.
  std::vector<Op> ops;
  for (int i = 0; i < 2000; ++i) {
    ops.push_back(Set(0, 10 * i, 10 * i + 5, absl::StrCat("a", i)));
    ops.push_back(Set(1, 10 * i + 1, 10 * i + 6, absl::StrCat("b", i)));
  }
  ops.push_back(Get(2, 30000, 30001, "a3"));
  const CheckReport report = Check(ops);
  EXPECT_EQ(report.violations, 1u) << report.Summary();
  EXPECT_TRUE(report.inconclusive.empty()) << report.Summary();
}

TEST(CheckerTest, ParsesNumbersLikeMemcached) {
  uint64_t n = 0;
  EXPECT_TRUE(ParseNumericValue("42", &n));
  EXPECT_EQ(n, 42u);
  EXPECT_TRUE(ParseNumericValue("  7 ", &n));
  EXPECT_EQ(n, 7u);
  EXPECT_TRUE(ParseNumericValue("18446744073709551615", &n));
  EXPECT_EQ(n, 18446744073709551615ull);
  EXPECT_TRUE(ParseNumericValue("-0", &n));
  EXPECT_EQ(n, 0u);
  EXPECT_FALSE(ParseNumericValue("18446744073709551616", &n));
  EXPECT_FALSE(ParseNumericValue("-5", &n));
  EXPECT_FALSE(ParseNumericValue("", &n));
  EXPECT_FALSE(ParseNumericValue(" ", &n));
  EXPECT_FALSE(ParseNumericValue("12a", &n));
  EXPECT_FALSE(ParseNumericValue("a12", &n));
}

}  // namespace
}  // namespace memshard::consistency
