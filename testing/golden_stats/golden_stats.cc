#include "testing/golden_stats/golden_stats.h"

#include <cctype>
#include <memory>
#include <optional>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "testing/blocking_client.h"

namespace memshard::golden_stats {
namespace {

constexpr const char* kWatched[] = {
    "cmd_get",
    "cmd_set",
    "cmd_flush",
    "cmd_touch",
    "get_hits",
    "get_misses",
    "get_expired",
    "get_flushed",
    "delete_misses",
    "delete_hits",
    "incr_misses",
    "incr_hits",
    "decr_misses",
    "decr_hits",
    "cas_misses",
    "cas_hits",
    "cas_badval",
    "touch_hits",
    "touch_misses",
    "store_too_large",
    "store_no_memory",
    "auth_cmds",
    "auth_errors",
    "evictions",
    "rejected_connections",
    "cmd_delete",
    "protocol_errors",
};

using Vars = absl::flat_hash_map<std::string, std::string>;
using Stats = absl::flat_hash_map<std::string, std::string>;

absl::Status ScriptError(absl::string_view script, int line,
                         absl::string_view message) {
  return absl::InvalidArgumentError(
      absl::StrCat(script, ":", line, ": ", message));
}

// Expands "{$name}" (a captured variable) and "{N*c}" (N copies of c).
absl::StatusOr<std::string> ExpandSend(absl::string_view text,
                                       const Vars& vars) {
  std::string out;
  while (!text.empty()) {
    const size_t open = text.find('{');
    if (open == absl::string_view::npos) {
      out.append(text.data(), text.size());
      break;
    }
    out.append(text.data(), open);
    const size_t close = text.find('}', open);
    if (close == absl::string_view::npos) {
      return absl::InvalidArgumentError("unclosed {");
    }
    absl::string_view inner = text.substr(open + 1, close - open - 1);
    if (absl::ConsumePrefix(&inner, "$")) {
      auto it = vars.find(inner);
      if (it == vars.end()) {
        return absl::InvalidArgumentError(
            absl::StrCat("variable ", inner, " was never captured"));
      }
      out += it->second;
    } else {
      std::vector<absl::string_view> parts = absl::StrSplit(inner, '*');
      size_t count = 0;
      if (parts.size() != 2 || parts[1].size() != 1 ||
          !absl::SimpleAtoi(parts[0], &count)) {
        return absl::InvalidArgumentError(
            absl::StrCat("bad repetition {", inner, "}"));
      }
      out.append(count, parts[1][0]);
    }
    text.remove_prefix(close + 1);
  }
  return out;
}

// Matches one reply line against an expect text with "{$name}" captures
// (one or more digits). Binds captures into `vars` on success.
bool MatchExpect(absl::string_view expected, absl::string_view actual,
                 Vars* vars) {
  Vars bound;
  while (!expected.empty()) {
    const size_t open = expected.find("{$");
    const absl::string_view literal = expected.substr(0, open);
    if (!absl::ConsumePrefix(&actual, literal)) return false;
    if (open == absl::string_view::npos) break;
    expected.remove_prefix(open + 2);
    const size_t close = expected.find('}');
    if (close == absl::string_view::npos) return false;
    const std::string name(expected.substr(0, close));
    expected.remove_prefix(close + 1);
    size_t digits = 0;
    while (digits < actual.size() && absl::ascii_isdigit(actual[digits])) {
      ++digits;
    }
    if (digits == 0) return false;
    bound[name] = std::string(actual.substr(0, digits));
    actual.remove_prefix(digits);
  }
  if (!actual.empty()) return false;
  for (auto& [k, v] : bound) (*vars)[k] = v;
  return true;
}

// `stats` or `stats <group>`; nullopt when the server answers ERROR (it has
// no such group, e.g. memcached and "latency").
absl::StatusOr<std::optional<Stats>> FetchStats(BlockingClient& client,
                                                absl::string_view group) {
  absl::Status sent = client.TrySend(
      group.empty() ? "stats\r\n" : absl::StrCat("stats ", group, "\r\n"));
  if (!sent.ok()) return sent;
  Stats stats;
  for (;;) {
    absl::StatusOr<std::string> line = client.TryReadLine();
    if (!line.ok()) return line.status();
    if (*line == "END") return stats;
    if (*line == "ERROR") return std::nullopt;
    std::vector<std::string> parts =
        absl::StrSplit(*line, absl::MaxSplits(' ', 2));
    if (parts.size() != 3 || parts[0] != "STAT") {
      return absl::DataLossError(absl::StrCat("bad stats line: ", *line));
    }
    stats[parts[1]] = parts[2];
  }
}

struct Snapshot {
  // group -> stats; a group the server lacks is absent.
  absl::flat_hash_map<std::string, Stats> groups;
};

absl::StatusOr<Snapshot> Take(BlockingClient& client,
                              const absl::flat_hash_set<std::string>& groups) {
  Snapshot s;
  for (const std::string& group : groups) {
    absl::StatusOr<std::optional<Stats>> stats = FetchStats(client, group);
    if (!stats.ok()) return stats.status();
    if (stats->has_value()) s.groups[group] = **stats;
  }
  return s;
}

std::optional<int64_t> Lookup(const Snapshot& s, const std::string& group,
                              const std::string& name) {
  auto g = s.groups.find(group);
  if (g == s.groups.end()) return std::nullopt;
  auto it = g->second.find(name);
  int64_t value = 0;
  if (it == g->second.end() || !absl::SimpleAtoi(it->second, &value)) {
    return std::nullopt;
  }
  return value;
}

// Every problem with `after` relative to `before` for case `c`.
std::vector<std::string> Check(const Case& c, const Snapshot& before,
                               const Snapshot& after, bool memshard) {
  std::vector<std::string> problems;
  absl::flat_hash_set<std::string> mentioned;
  for (const Expectation& e : c.expectations) {
    const std::string label =
        e.group.empty() ? e.name : absl::StrCat(e.group, ":", e.name);
    if (e.group.empty()) mentioned.insert(e.name);
    if (e.memshard_only && !memshard) continue;
    const std::optional<int64_t> then = Lookup(before, e.group, e.name);
    const std::optional<int64_t> now = Lookup(after, e.group, e.name);
    if (!then.has_value() || !now.has_value()) {
      // memcached lacks memshard's groups and extra stats.
      if (memshard) {
        problems.push_back(absl::StrCat("line ", e.line, ": no stat ", label));
      }
      continue;
    }
    const int64_t got = e.exact ? *now : *now - *then;
    if (got != e.value) {
      problems.push_back(absl::StrCat(
          "line ", e.line, ": ", label, e.exact ? " is " : " changed by ", got,
          ", expected ", e.value, " (", *then, " -> ", *now, ")"));
    }
  }
  for (const char* name : WatchedStats()) {
    if (mentioned.contains(name)) continue;
    const std::optional<int64_t> then = Lookup(before, "", name);
    const std::optional<int64_t> now = Lookup(after, "", name);
    if (then.has_value() && now.has_value() && *then != *now) {
      problems.push_back(absl::StrCat("unexpected change of ", name, ": ",
                                      *then, " -> ", *now));
    }
  }
  return problems;
}

}  // namespace

absl::Span<const char* const> WatchedStats() { return kWatched; }

absl::StatusOr<Script> ParseScript(absl::string_view name,
                                   absl::string_view text) {
  Script script;
  script.name = std::string(name);
  int number = 0;
  for (absl::string_view raw : absl::StrSplit(text, '\n')) {
    ++number;
    absl::string_view line = absl::StripTrailingAsciiWhitespace(raw);
    if (line.empty() || absl::StartsWith(line, "#")) continue;
    if (absl::ConsumePrefix(&line, "@memshard-only")) {
      script.memshard_only = std::string(absl::StripAsciiWhitespace(line));
      if (script.memshard_only.empty()) script.memshard_only = "memshard-only";
      continue;
    }
    if (absl::ConsumePrefix(&line, "@memshard-args ")) {
      for (absl::string_view a : absl::StrSplit(line, ' ', absl::SkipEmpty())) {
        script.memshard_args.emplace_back(a);
      }
      continue;
    }
    if (absl::ConsumePrefix(&line, "@memcached-args ")) {
      for (absl::string_view a : absl::StrSplit(line, ' ', absl::SkipEmpty())) {
        script.memcached_args.emplace_back(a);
      }
      continue;
    }
    if (absl::ConsumePrefix(&line, "== ")) {
      script.cases.push_back(Case{std::string(line), number, {}, {}});
      continue;
    }
    if (script.cases.empty()) {
      return ScriptError(name, number, "expected \"== <case name>\" first");
    }
    Case& c = script.cases.back();
    Step step;
    step.line = number;
    if (absl::ConsumePrefix(&line, "<~ ")) {
      step.kind = Step::Kind::kExpectPrefix;
    } else if (absl::ConsumePrefix(&line, "<* ")) {
      step.kind = Step::Kind::kSkipTo;
    } else if (absl::ConsumePrefix(&line, "< ")) {
      step.kind = Step::Kind::kExpect;
    } else if (absl::ConsumePrefix(&line, "> ")) {
      step.kind = Step::Kind::kSend;
    } else if (line == "! reconnect") {
      step.kind = Step::Kind::kReconnect;
      c.steps.push_back(step);
      continue;
    } else if (absl::ConsumePrefix(&line, "! sleep ")) {
      double seconds = 0;
      if (!absl::SimpleAtod(line, &seconds) || seconds < 0 || seconds > 10) {
        return ScriptError(name, number, "bad sleep");
      }
      step.kind = Step::Kind::kSleep;
      step.sleep = absl::Seconds(seconds);
      c.steps.push_back(step);
      continue;
    } else if (absl::ConsumePrefix(&line, "=")) {
      // "= [group:]name +N|-N|=N", "=! ..." for memshard-only stats.
      Expectation e;
      e.line = number;
      e.memshard_only = absl::ConsumePrefix(&line, "!");
      std::vector<absl::string_view> parts =
          absl::StrSplit(line, ' ', absl::SkipEmpty());
      if (parts.size() != 2 || parts[1].size() < 2) {
        return ScriptError(name, number, "expected \"= <stat> +N\"");
      }
      absl::string_view stat = parts[0];
      if (absl::ConsumePrefix(&stat, "latency:")) e.group = "latency";
      e.name = std::string(stat);
      absl::string_view value = parts[1];
      const char op = value[0];
      value.remove_prefix(1);
      if ((op != '+' && op != '-' && op != '=') ||
          !absl::SimpleAtoi(value, &e.value)) {
        return ScriptError(name, number, "expected +N, -N or =N");
      }
      if (op == '-') e.value = -e.value;
      e.exact = op == '=';
      c.expectations.push_back(e);
      continue;
    } else {
      return ScriptError(name, number, absl::StrCat("cannot parse: ", line));
    }
    std::string unescaped;
    std::string error;
    if (!absl::CUnescape(line, &unescaped, &error)) {
      return ScriptError(name, number, error);
    }
    step.text = std::move(unescaped);
    c.steps.push_back(std::move(step));
  }
  if (script.cases.empty()) return ScriptError(name, number, "no cases");
  return script;
}

absl::Status PlayScript(const Script& script, int port,
                        const PlayOptions& options) {
  auto connect = [&]() {
    return BlockingClient::ConnectTcp(port, options.reply_timeout);
  };
  absl::StatusOr<std::unique_ptr<BlockingClient>> observer = connect();
  if (!observer.ok()) return observer.status();
  absl::StatusOr<std::unique_ptr<BlockingClient>> client = connect();
  if (!client.ok()) return client.status();
  Vars vars;

  for (const Case& c : script.cases) {
    auto fail = [&](int line, absl::string_view what) {
      return absl::FailedPreconditionError(absl::StrCat(
          script.name, ":", line, " (case \"", c.name, "\"): ", what));
    };
    absl::flat_hash_set<std::string> groups = {""};
    for (const Expectation& e : c.expectations) groups.insert(e.group);
    absl::StatusOr<Snapshot> before = Take(**observer, groups);
    if (!before.ok()) return fail(c.line, before.status().ToString());

    for (const Step& step : c.steps) {
      switch (step.kind) {
        case Step::Kind::kSend: {
          absl::StatusOr<std::string> bytes = ExpandSend(step.text, vars);
          if (!bytes.ok()) return fail(step.line, bytes.status().ToString());
          absl::Status sent = (*client)->TrySend(absl::StrCat(*bytes, "\r\n"));
          if (!sent.ok()) return fail(step.line, sent.ToString());
          break;
        }
        case Step::Kind::kExpect:
        case Step::Kind::kExpectPrefix: {
          absl::StatusOr<std::string> line = (*client)->TryReadLine();
          if (!line.ok()) {
            return fail(step.line,
                        absl::StrCat("expected \"", step.text,
                                     "\": ", line.status().ToString()));
          }
          const bool ok = step.kind == Step::Kind::kExpect
                              ? MatchExpect(step.text, *line, &vars)
                              : absl::StartsWith(*line, step.text);
          if (!ok) {
            return fail(step.line, absl::StrCat("expected \"", step.text,
                                                "\", got \"", *line, "\""));
          }
          break;
        }
        case Step::Kind::kSkipTo: {
          absl::StatusOr<std::string> line;
          do {
            line = (*client)->TryReadLine();
          } while (line.ok() && *line != step.text);
          if (!line.ok()) {
            return fail(step.line,
                        absl::StrCat("expected \"", step.text,
                                     "\": ", line.status().ToString()));
          }
          break;
        }
        case Step::Kind::kReconnect:
          (*client)->Close();
          client = connect();
          if (!client.ok()) return fail(step.line, client.status().ToString());
          break;
        case Step::Kind::kSleep:
          absl::SleepFor(step.sleep);
          break;
      }
    }
    if ((*client)->HasData(absl::Milliseconds(30))) {
      absl::StatusOr<std::string> extra = (*client)->TryReadLine();
      return fail(c.line, absl::StrCat("unexpected reply: \"",
                                       extra.ok() ? *extra : "?", "\""));
    }

    // Some effects land after the reply (a close is processed later):
    // retry until the expectations hold or `settle` runs out.
    const absl::Time deadline = absl::Now() + options.settle;
    std::vector<std::string> problems;
    for (;;) {
      absl::StatusOr<Snapshot> after = Take(**observer, groups);
      if (!after.ok()) return fail(c.line, after.status().ToString());
      problems = Check(c, *before, *after, options.memshard);
      if (problems.empty() || absl::Now() >= deadline) break;
      absl::SleepFor(absl::Milliseconds(20));
    }
    if (!problems.empty()) {
      return fail(c.line, absl::StrJoin(problems, "; "));
    }
  }
  return absl::OkStatus();
}

}  // namespace memshard::golden_stats
