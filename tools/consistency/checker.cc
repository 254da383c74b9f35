#include "tools/consistency/checker.h"

#include <algorithm>
#include <array>
#include <optional>
#include <tuple>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/hash/hash.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace memshard::consistency {
namespace {

constexpr int kMaxInFlight = 64;  // bits of Config::linearized
constexpr size_t kRecentOps = 8;  // past ops quoted in a violation
constexpr size_t kQuotedStates = 4;

// One memcached item as the model sees it.
struct ItemState {
  bool present = false;
  std::string value;
  uint32_t flags = 0;
  // The current version's token, once a gets has shown it.
  bool token_known = false;
  uint64_t token = 0;

  bool operator==(const ItemState& o) const {
    return present == o.present && value == o.value && flags == o.flags &&
           token_known == o.token_known && token == o.token;
  }
  template <typename H>
  friend H AbslHashValue(H h, const ItemState& s) {
    return H::combine(std::move(h), s.present, s.value, s.flags, s.token_known,
                      s.token);
  }
};

// A candidate: the state after some order of the completed operations and
// of the in-flight ones whose slot bits are set in `linearized`.
struct Config {
  ItemState state;
  uint64_t linearized = 0;

  bool operator==(const Config& o) const {
    return linearized == o.linearized && state == o.state;
  }
  template <typename H>
  friend H AbslHashValue(H h, const Config& c) {
    return H::combine(std::move(h), c.state, c.linearized);
  }
};

using ConfigSet = absl::flat_hash_set<Config>;

std::string DescribeState(const ItemState& s) {
  if (!s.present) return "absent";
  std::string out =
      absl::StrCat("present ", QuoteValue(s.value), " flags ", s.flags);
  if (s.token_known) absl::StrAppend(&out, " token ", s.token);
  return out;
}

// A new version: the token is not known until a gets shows it.
ItemState Stored(std::string value, uint32_t flags) {
  ItemState s;
  s.present = true;
  s.value = std::move(value);
  s.flags = flags;
  return s;
}

// The value incr/decr store: decimal, padded with spaces to the old length
// when shorter (memcached rewrites the item in place).
std::string DeltaValue(uint64_t number, size_t old_length) {
  std::string digits = absl::StrCat(number);
  if (digits.size() < old_length)
    digits.append(old_length - digits.size(), ' ');
  return digits;
}

uint64_t ApplyDelta(OpType type, uint64_t old, uint64_t delta) {
  if (type == OpType::kIncr) return old + delta;  // wraps, as memcached
  return old < delta ? 0 : old - delta;
}

// The sequential model: applies `op` to `s`. Returns false if `outcome`
// (op's recorded one, or kUnknown for an excused op) is impossible from `s`;
// else stores the next state in *next. An unknown outcome takes the op's
// natural effect.
bool Apply(const ItemState& s, const Op& op, Outcome outcome, ItemState* next) {
  const bool unknown = outcome == Outcome::kUnknown;
  auto expect = [&](Outcome o) { return unknown || outcome == o; };
  *next = s;
  switch (op.type) {
    case OpType::kGet:
    case OpType::kGets:
      if (unknown) return true;
      if (!s.present) return outcome == Outcome::kMiss;
      if (outcome != Outcome::kHit || op.value != s.value ||
          op.flags != s.flags) {
        return false;
      }
      if (op.type == OpType::kGets) {
        if (s.token_known) return op.cas == s.token;
        next->token_known = true;
        next->token = op.cas;
      }
      return true;
    case OpType::kSet:
      if (!expect(Outcome::kStored)) return false;
      *next = Stored(op.value, op.flags);
      return true;
    case OpType::kAdd:
      if (s.present) return expect(Outcome::kNotStored);
      if (!expect(Outcome::kStored)) return false;
      *next = Stored(op.value, op.flags);
      return true;
    case OpType::kReplace:
      if (!s.present) return expect(Outcome::kNotStored);
      if (!expect(Outcome::kStored)) return false;
      *next = Stored(op.value, op.flags);
      return true;
    case OpType::kAppend:
    case OpType::kPrepend:
      if (!s.present) return expect(Outcome::kNotStored);
      if (!expect(Outcome::kStored)) return false;
      *next = Stored(
          op.type == OpType::kAppend ? s.value + op.value : op.value + s.value,
          s.flags);
      return true;
    case OpType::kCas:
      if (!s.present) return expect(Outcome::kNotFound);
      // An unknown token belongs to no gets linearized so far, hence not to
      // the cas's own (see checker.h).
      if (!s.token_known || s.token != op.cas) return expect(Outcome::kExists);
      if (!expect(Outcome::kStored)) return false;
      *next = Stored(op.value, op.flags);
      return true;
    case OpType::kIncr:
    case OpType::kDecr: {
      if (!s.present) return expect(Outcome::kNotFound);
      uint64_t old = 0;
      if (!ParseNumericValue(s.value, &old)) {
        return expect(Outcome::kNonNumeric);
      }
      const uint64_t number = ApplyDelta(op.type, old, op.delta);
      if (!unknown && (outcome != Outcome::kNumber || op.number != number)) {
        return false;
      }
      *next = Stored(DeltaValue(number, s.value.size()), s.flags);
      return true;
    }
    case OpType::kDelete:
      if (!s.present) return expect(Outcome::kNotFound);
      if (!expect(Outcome::kDeleted)) return false;
      *next = ItemState();
      return true;
  }
  return false;
}

// Searches one key's operations for a linearization; adds violations to
// *report.
//
// The search is depth-first over configurations (see checker.h), events in
// time order. At an invocation the op joins the in-flight set; at a response
// of an op not yet linearized the search branches over the ways to
// linearize it: the op alone first, then after one other in-flight op, then
// after two, ... (generated lazily, level by level), so a valid history is
// usually followed without backtracking. Branch points with more than one
// way are kept on a stack; a dead end backtracks to the newest one with ways
// left, and a branch point found to lead nowhere is remembered (memo), as in
// Wing & Gong / Lowe. When the stack empties the history is not
// linearizable: the dead end reached furthest in time is reported, that op
// is excused (its reply treated as unknown) and the key is searched again,
// so several independent violations are all reported.
class KeyChecker {
 public:
  KeyChecker(const History& history, uint32_t key,
             const std::vector<size_t>& op_indices, int64_t origin_ns,
             const CheckOptions& options, CheckReport* report)
      : history_(history),
        key_(key),
        op_indices_(op_indices),
        origin_ns_(origin_ns),
        options_(options),
        report_(report) {}

  void Run() {
    if (!BuildEvents()) return;
    for (;;) {
      switch (Search()) {
        case Result::kLinearizable:
          return;
        case Result::kGaveUp:
          GiveUp(absl::StrCat(
              "more than ", options_.max_configurations,
              " configurations explored, stuck behind ",
              DescribeOp(op(events_[furthest_].op), origin_ns_), " with ",
              __builtin_popcountll(in_flight_[furthest_]), " ops in flight"));
          return;
        case Result::kViolation:
          Report();
          excused_.insert(events_[deepest_].op);
          if (excused_.size() > options_.max_reported) {
            GiveUp("too many violations to go on");
            return;
          }
          break;
      }
    }
  }

 private:
  enum class Result { kLinearizable, kViolation, kGaveUp };

  struct Event {
    int64_t time;
    bool response;  // invocations sort first at equal times: overlap
    size_t op;
    bool operator<(const Event& o) const {
      return std::tie(time, response, op) < std::tie(o.time, o.response, o.op);
    }
  };

  using SlotTable = std::array<uint32_t, kMaxInFlight>;  // slot -> op

  // A branch point: the response event `event` of an op that `base` has
  // not linearized, and the generator of the ways to linearize it.
  struct Frame {
    size_t event;
    Config base;
    SlotTable slot_op;
    std::vector<Config> level;  // configs after `depth` other ops
    bool level_yielded = false;
    ConfigSet seen;     // every config generated into a level
    ConfigSet yielded;  // successors returned (or queued in `ready`)
    std::vector<Config> ready;
  };

  const Op& op(size_t index) const { return history_.ops[index]; }
  Outcome OutcomeOf(size_t index) const {
    return excused_.contains(index) ? Outcome::kUnknown : op(index).outcome;
  }
  bool ApplyOp(const ItemState& s, size_t index, ItemState* next) const {
    return Apply(s, op(index), OutcomeOf(index), next);
  }

  // Sorts the events and assigns each op a slot (a bit of
  // Config::linearized) for the time it is in flight.
  bool BuildEvents() {
    for (size_t i : op_indices_) {
      events_.push_back({op(i).invoke_ns, false, i});
      if (op(i).respond_ns != Op::kNoResponse) {
        events_.push_back({op(i).respond_ns, true, i});
      }
    }
    std::sort(events_.begin(), events_.end());
    absl::flat_hash_map<size_t, int> slot_of;
    absl::flat_hash_map<size_t, size_t> alone_since;  // op -> invocations
    uint64_t in_flight = 0;
    size_t invocations = 0;
    slot_.resize(events_.size());
    in_flight_.resize(events_.size());
    alone_.resize(events_.size());
    for (size_t e = 0; e < events_.size(); ++e) {
      if (!events_[e].response) {
        if (in_flight == 0) alone_since[events_[e].op] = invocations;
        ++invocations;
        if (in_flight == ~0ull) {
          GiveUp(absl::StrCat("more than ", kMaxInFlight,
                              " operations in flight at once"));
          return false;
        }
        const int slot = __builtin_ctzll(~in_flight);
        in_flight |= 1ull << slot;
        slot_of[events_[e].op] = slot;
        slot_[e] = slot;
        in_flight_[e] = in_flight;
      } else {
        auto it = slot_of.find(events_[e].op);
        slot_[e] = it->second;
        in_flight_[e] = in_flight;
        auto alone = alone_since.find(events_[e].op);
        if (alone != alone_since.end()) {
          alone_[e] = alone->second + 1 == invocations &&
                      in_flight == 1ull << it->second;
          alone_since.erase(alone);
        }
        in_flight &= ~(1ull << it->second);
        slot_of.erase(it);
      }
    }
    return true;
  }

  // True if after response event `e` every path has the same
  // configuration: its op overlapped nothing (so it is linearized last) and
  // its reply fixes the whole state (a store, a delete, a miss, a gets hit).
  bool Pins(size_t e) const {
    if (!alone_[e]) return false;
    const size_t x = events_[e].op;
    switch (OutcomeOf(x)) {
      case Outcome::kStored:
        return op(x).type != OpType::kAppend && op(x).type != OpType::kPrepend;
      case Outcome::kDeleted:
      case Outcome::kMiss:
        return true;
      case Outcome::kHit:
        return op(x).type == OpType::kGets;
      default:
        return false;
    }
  }

  // Linearizes every in-flight op that `c` explains without a change of
  // state (reads that match, failed writes). This loses no order: such an
  // op was invoked, all its real-time predecessors are linearized already,
  // and moving it to the front of any valid completion keeps it valid. It
  // keeps concurrent readers from multiplying the configurations.
  void Saturate(Config* c, uint64_t in_flight, const SlotTable& slot_op) const {
    uint64_t pending = in_flight & ~c->linearized;
    ItemState after;
    while (pending != 0) {
      const int slot = __builtin_ctzll(pending);
      pending &= pending - 1;
      if (ApplyOp(c->state, slot_op[slot], &after) && after == c->state) {
        c->linearized |= 1ull << slot;
      }
    }
  }

  // The next way to linearize the frame's op (its bit cleared), or nullopt.
  std::optional<Config> Next(Frame& f) {
    const size_t x = events_[f.event].op;
    const uint64_t bit = 1ull << slot_[f.event];
    const uint64_t in_flight = in_flight_[f.event];
    for (;;) {
      if (!f.ready.empty()) {
        Config c = std::move(f.ready.back());
        f.ready.pop_back();
        return c;
      }
      if (f.level.empty()) return std::nullopt;
      ItemState after;
      if (!f.level_yielded) {
        f.level_yielded = true;
        for (const Config& c : f.level) {
          if (!ApplyOp(c.state, x, &after)) continue;
          Config done{std::move(after), c.linearized | bit};
          Saturate(&done, in_flight, f.slot_op);
          done.linearized &= ~bit;
          if (f.yielded.insert(done).second) f.ready.push_back(std::move(done));
        }
        continue;
      }
      std::vector<Config> next_level;
      for (const Config& c : f.level) {
        uint64_t others = in_flight & ~c.linearized & ~bit;
        while (others != 0) {
          const int slot = __builtin_ctzll(others);
          others &= others - 1;
          if (!ApplyOp(c.state, f.slot_op[slot], &after)) continue;
          Config n{std::move(after), c.linearized | (1ull << slot)};
          Saturate(&n, in_flight, f.slot_op);
          if (n.linearized & bit) {  // x fits without a change of state
            n.linearized &= ~bit;
            if (f.yielded.insert(n).second) f.ready.push_back(std::move(n));
            continue;
          }
          if (f.seen.insert(n).second) next_level.push_back(std::move(n));
        }
      }
      explored_ += next_level.size();
      f.level = std::move(next_level);
      f.level_yielded = false;
    }
  }

  Result Search() {
    std::vector<Frame> stack;
    absl::flat_hash_set<std::pair<size_t, Config>> failed;
    explored_ = 0;
    furthest_ = 0;
    deepest_ = 0;
    deepest_states_.clear();
    Config c;
    size_t e = 0;
    SlotTable slot_op{};
    for (;;) {
      // Forward: follow the events until a dead end.
      bool dead = false;
      while (!dead && e < events_.size()) {
        const Event& ev = events_[e];
        const uint64_t bit = 1ull << slot_[e];
        if (!ev.response) {
          slot_op[slot_[e]] = ev.op;
          Saturate(&c, in_flight_[e], slot_op);
          ++e;
          continue;
        }
        if (c.linearized & bit) {
          c.linearized &= ~bit;
          Passed(e, &stack, &failed);
          ++e;
          continue;
        }
        if (failed.contains(std::make_pair(e, c))) {
          dead = true;
          break;
        }
        Frame f{e, c, slot_op, {c}, false, {}, {}, {}};
        f.seen.insert(c);
        // An op with no known outcome may also never take effect.
        if (OutcomeOf(ev.op) == Outcome::kUnknown) {
          f.yielded.insert(c);
          f.ready.push_back(c);
        }
        // Forward steps cost at most two levels; only backtracking, which
        // can grow exponentially, counts against the budget.
        const size_t budget_before = explored_;
        std::optional<Config> first = Next(f);
        if (!first.has_value()) {
          NoteDeadEnd(e, c);
          failed.insert({e, c});
          dead = true;
          break;
        }
        // Keep the branch point only if there is another way.
        std::optional<Config> second = Next(f);
        explored_ = budget_before;
        if (second.has_value()) {
          f.ready.push_back(*std::move(second));
          stack.push_back(std::move(f));
          report_->peak_branch_points =
              std::max(report_->peak_branch_points, stack.size());
        }
        c = *std::move(first);
        Passed(e, &stack, &failed);
        ++e;
        if (e > furthest_) {  // progress: a fresh budget
          furthest_ = e;
          explored_ = 0;
        }
      }
      if (!dead) return Result::kLinearizable;
      // Backtrack to the newest branch point with a way left.
      ++report_->backtracks;
      for (;;) {
        if (stack.empty()) return Result::kViolation;
        Frame& f = stack.back();
        std::optional<Config> next = Next(f);
        if (next.has_value()) {
          c = *std::move(next);
          e = f.event + 1;
          slot_op = f.slot_op;
          break;
        }
        failed.insert({f.event, std::move(f.base)});
        stack.pop_back();
      }
      // The budget bounds the effort spent stuck behind one point in time;
      // the memo is bounded separately, for memory.
      if (explored_ > options_.max_configurations ||
          failed.size() > 4 * options_.max_configurations) {
        return Result::kGaveUp;
      }
    }
  }

  // After the search passed response event `e`: at a pin no earlier
  // choice matters any more, so its branch points and memo are dropped
  // (this bounds memory, and a violation need not unwind the whole past).
  void Passed(size_t e, std::vector<Frame>* stack,
              absl::flat_hash_set<std::pair<size_t, Config>>* failed) const {
    if (!Pins(e)) return;
    stack->clear();
    failed->clear();
  }

  void NoteDeadEnd(size_t e, const Config& c) {
    if (e > deepest_ || deepest_states_.empty()) {
      deepest_ = e;
      deepest_states_.clear();
    }
    if (e == deepest_ && deepest_states_.size() < kQuotedStates &&
        std::find(deepest_states_.begin(), deepest_states_.end(), c.state) ==
            deepest_states_.end()) {
      deepest_states_.push_back(c.state);
    }
  }

  void GiveUp(const std::string& why) {
    report_->inconclusive.push_back(
        absl::StrCat("key ", key_, " (", history_.keys[key_], "): ", why));
  }

  // Describes the dead end reached furthest: its op, the states the key
  // could have had, the ops in flight and the key's recent past.
  void Report() {
    ++report_->violations;
    if (report_->reported.size() >= options_.max_reported) return;
    const size_t x = events_[deepest_].op;
    std::string d =
        absl::StrCat("key ", key_, " (", history_.keys[key_],
                     "): no order of the operations explains this reply (not "
                     "linearizable)\n  op:        ",
                     DescribeOp(op(x), origin_ns_));
    for (const ItemState& s : deepest_states_) {
      absl::StrAppend(&d, "\n  could be:  ", DescribeState(s));
    }
    std::vector<size_t> in_flight, recent;
    absl::flat_hash_set<size_t> responded;
    for (size_t e = deepest_; e-- > 0;) {
      const size_t i = events_[e].op;
      if (events_[e].response) {
        responded.insert(i);
        if (recent.size() < kRecentOps) recent.push_back(i);
      } else if (!responded.contains(i) && i != x &&
                 in_flight.size() < kRecentOps) {
        in_flight.push_back(i);
      }
      if (recent.size() >= kRecentOps && in_flight.size() >= kRecentOps) break;
    }
    for (size_t i : in_flight) {
      absl::StrAppend(&d, "\n  in flight: ", DescribeOp(op(i), origin_ns_));
    }
    for (auto it = recent.rbegin(); it != recent.rend(); ++it) {
      absl::StrAppend(&d, "\n  before:    ", DescribeOp(op(*it), origin_ns_));
    }
    report_->reported.push_back({key_, std::move(d)});
  }

  const History& history_;
  const uint32_t key_;
  const std::vector<size_t>& op_indices_;
  const int64_t origin_ns_;
  const CheckOptions& options_;
  CheckReport* report_;

  std::vector<Event> events_;
  std::vector<int> slot_;            // per event: its op's slot
  std::vector<uint64_t> in_flight_;  // per event: slots in flight, its own too
  std::vector<bool> alone_;  // per response event: its op overlapped nothing
  absl::flat_hash_set<size_t> excused_;  // ops whose reply counts as unknown
  size_t explored_ = 0;  // configurations generated since the last progress
  size_t furthest_ = 0;  // the furthest event the search has passed
  size_t deepest_ = 0;   // event of the furthest dead end
  std::vector<ItemState> deepest_states_;
};

void AddExplicitViolation(const History& history, uint32_t key,
                          const std::string& rule,
                          const std::vector<size_t>& ops, int64_t origin_ns,
                          const CheckOptions& options, CheckReport* report) {
  ++report->violations;
  if (report->reported.size() >= options.max_reported) return;
  std::string d =
      absl::StrCat("key ", key, " (", history.keys[key], "): ", rule);
  for (size_t i : ops) {
    absl::StrAppend(&d,
                    "\n  op:       ", DescribeOp(history.ops[i], origin_ns));
  }
  report->reported.push_back({key, std::move(d)});
}

// A token wins at most once; a token names one (value, flags) of a key.
void CheckTokens(const History& history, uint32_t key,
                 const std::vector<size_t>& op_indices, int64_t origin_ns,
                 const CheckOptions& options, CheckReport* report) {
  absl::flat_hash_map<uint64_t, size_t> winner;
  absl::flat_hash_map<uint64_t, size_t> shown_by;
  for (size_t i : op_indices) {
    const Op& op = history.ops[i];
    if (op.type == OpType::kCas && op.outcome == Outcome::kStored) {
      auto [it, inserted] = winner.emplace(op.cas, i);
      if (!inserted) {
        AddExplicitViolation(history, key,
                             absl::StrCat("CAS token ", op.cas, " won twice"),
                             {it->second, i}, origin_ns, options, report);
      }
    }
    if (op.type == OpType::kGets && op.outcome == Outcome::kHit) {
      auto [it, inserted] = shown_by.emplace(op.cas, i);
      const Op& first = history.ops[it->second];
      if (!inserted && (first.value != op.value || first.flags != op.flags)) {
        AddExplicitViolation(
            history, key,
            absl::StrCat("CAS token ", op.cas, " names two different values"),
            {it->second, i}, origin_ns, options, report);
      }
    }
  }
}

}  // namespace

bool ParseNumericValue(const std::string& value, uint64_t* out) {
  auto is_space = [](char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' ||
           c == '\r';
  };
  size_t i = 0;
  while (i < value.size() && is_space(value[i])) ++i;
  bool negative = false;
  if (i < value.size() && (value[i] == '+' || value[i] == '-')) {
    negative = value[i] == '-';
    ++i;
  }
  const size_t first_digit = i;
  uint64_t n = 0;
  for (; i < value.size() && value[i] >= '0' && value[i] <= '9'; ++i) {
    const uint64_t digit = value[i] - '0';
    if (n > (UINT64_MAX - digit) / 10) return false;  // ERANGE
    n = n * 10 + digit;
  }
  if (i == first_digit) return false;
  if (i < value.size() && !is_space(value[i])) return false;
  if (negative) {
    n = 0 - n;  // strtoull negates in unsigned arithmetic
    if (static_cast<int64_t>(n) < 0) return false;
  }
  *out = n;
  return true;
}

std::string CheckReport::Summary() const {
  std::string out = absl::StrFormat(
      "%u ops on %u keys: %u violations (search: %u backtracks, at most %u "
      "open branch points)",
      ops, keys, violations, backtracks, peak_branch_points);
  for (const std::string& why : inconclusive) {
    absl::StrAppend(&out, "\ninconclusive: ", why);
  }
  for (const Violation& v : reported) {
    absl::StrAppend(&out, "\nVIOLATION ", v.description);
  }
  if (violations > reported.size()) {
    absl::StrAppend(&out, "\n... and ", violations - reported.size(),
                    " more violations");
  }
  return out;
}

CheckReport CheckHistory(const History& history, const CheckOptions& options) {
  CheckReport report;
  report.ops = history.ops.size();
  report.keys = history.keys.size();
  std::vector<std::vector<size_t>> by_key(history.keys.size());
  int64_t origin_ns = history.ops.empty() ? 0 : history.ops[0].invoke_ns;
  for (size_t i = 0; i < history.ops.size(); ++i) {
    const Op& op = history.ops[i];
    if (op.key >= by_key.size()) {
      report.inconclusive.push_back(absl::StrCat(
          "op ", i, " names key ", op.key, " of ", history.keys.size()));
      continue;
    }
    by_key[op.key].push_back(i);
    origin_ns = std::min(origin_ns, op.invoke_ns);
  }
  for (uint32_t key = 0; key < by_key.size(); ++key) {
    CheckTokens(history, key, by_key[key], origin_ns, options, &report);
    KeyChecker(history, key, by_key[key], origin_ns, options, &report).Run();
  }
  return report;
}

}  // namespace memshard::consistency
