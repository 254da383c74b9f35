#include "tools/memshardctl/views.h"

#include <algorithm>
#include <cstdint>
#include <map>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"

namespace memshard::ctl {
namespace {

// Rows of cells rendered as left-aligned columns two spaces apart.
std::string Table(const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> widths;
  for (const auto& row : rows) {
    if (widths.size() < row.size()) widths.resize(row.size(), 0);
    for (size_t i = 0; i < row.size(); ++i) {
      widths[i] = std::max(widths[i], row[i].size());
    }
  }
  std::string out;
  for (const auto& row : rows) {
    std::string line;
    for (size_t i = 0; i < row.size(); ++i) {
      line += row[i];
      if (i + 1 < row.size()) line.append(widths[i] - row[i].size() + 2, ' ');
    }
    absl::StrAppend(&out, line, "\n");
  }
  return out;
}

// Splits "<prefix>:<field>" lines into groups keyed by prefix, in order of
// first appearance.
struct Grouped {
  std::vector<std::string> order;
  absl::flat_hash_map<std::string,
                      absl::flat_hash_map<std::string, std::string>>
      fields;
};

Grouped GroupByPrefix(const StatList& stats) {
  Grouped g;
  for (const auto& [name, value] : stats) {
    const size_t colon = name.find(':');
    if (colon == std::string::npos) continue;
    const std::string prefix = name.substr(0, colon);
    auto [it, inserted] = g.fields.try_emplace(prefix);
    if (inserted) g.order.push_back(prefix);
    it->second[name.substr(colon + 1)] = value;
  }
  return g;
}

std::string Field(const absl::flat_hash_map<std::string, std::string>& m,
                  const std::string& key) {
  auto it = m.find(key);
  return it == m.end() ? "-" : it->second;
}

bool Number(const absl::flat_hash_map<std::string, std::string>& m,
            const std::string& key, double* out) {
  auto it = m.find(key);
  return it != m.end() && absl::SimpleAtod(it->second, out);
}

std::string Bytes(double bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int unit = 0;
  while (bytes >= 1024 && unit < 4) {
    bytes /= 1024;
    ++unit;
  }
  return unit == 0 ? absl::StrFormat("%.0f %s", bytes, units[unit])
                   : absl::StrFormat("%.1f %s", bytes, units[unit]);
}

std::string Duration(int64_t seconds) {
  if (seconds < 60) return absl::StrCat(seconds, "s");
  if (seconds < 3600) {
    return absl::StrFormat("%dm%02ds", seconds / 60, seconds % 60);
  }
  if (seconds < 86400) {
    return absl::StrFormat("%dh%02dm", seconds / 3600, seconds / 60 % 60);
  }
  return absl::StrFormat("%dd%02dh", seconds / 86400, seconds / 3600 % 24);
}

}  // namespace

std::string FormatStats(const StatList& stats) {
  std::vector<std::vector<std::string>> rows;
  rows.reserve(stats.size());
  for (const auto& [name, value] : stats) rows.push_back({name, value});
  return Table(rows);
}

std::string FormatLatency(const StatList& latency) {
  Grouped g = GroupByPrefix(latency);
  std::vector<std::vector<std::string>> rows = {{"family", "count", "mean_us",
                                                 "p50_us", "p90_us", "p99_us",
                                                 "p99.9_us", "max_us"}};
  for (const std::string& family : g.order) {
    const auto& f = g.fields[family];
    rows.push_back({family, Field(f, "count"), Field(f, "mean_us"),
                    Field(f, "p50_us"), Field(f, "p90_us"), Field(f, "p99_us"),
                    Field(f, "p999_us"), Field(f, "max_us")});
  }
  return Table(rows);
}

std::string FormatWorkers(const StatList& workers) {
  Grouped g = GroupByPrefix(workers);
  std::vector<std::vector<std::string>> rows = {
      {"worker", "conns", "accepted", "ops", "cmd_get", "cmd_set", "read",
       "written", "buffers", "buffer_mem", "epochs"}};
  for (const std::string& w : g.order) {
    const auto& f = g.fields[w];
    double read = 0, written = 0, buffer_bytes = 0;
    rows.push_back(
        {w, Field(f, "curr_connections"), Field(f, "total_connections"),
         Field(f, "ops"), Field(f, "cmd_get"), Field(f, "cmd_set"),
         Number(f, "bytes_read", &read) ? Bytes(read) : "-",
         Number(f, "bytes_written", &written) ? Bytes(written) : "-",
         absl::StrCat(Field(f, "buffers_in_use"), "/",
                      Field(f, "buffers_free")),
         Number(f, "buffer_bytes", &buffer_bytes) ? Bytes(buffer_bytes) : "-",
         Field(f, "epochs")});
  }
  return absl::StrCat(Table(rows),
                      "(buffers: borrowed/cached; buffer_mem: both)\n");
}

std::string FormatConns(const StatList& conns) {
  Grouped g = GroupByPrefix(conns);
  std::vector<std::vector<std::string>> rows = {
      {"fd", "worker", "address", "state", "idle_s"}};
  for (const std::string& fd : g.order) {
    const auto& f = g.fields[fd];
    rows.push_back({fd, Field(f, "worker"), Field(f, "addr"), Field(f, "state"),
                    Field(f, "secs_since_last_cmd")});
  }
  return Table(rows);
}

std::string FormatWatch(const Sample* previous, const Sample& current,
                        const std::string& target) {
  const auto& s = current.stats;
  auto value = [&](const std::string& key) {
    double v = 0;
    Number(s, key, &v);
    return v;
  };
  const double elapsed = previous == nullptr
                             ? 0
                             : absl::ToDoubleSeconds(current.at - previous->at);
  // Per-second rate of a counter, or "-" on the first frame.
  auto rate = [&](const std::string& key) -> std::string {
    double now = 0, then = 0;
    if (previous == nullptr || elapsed <= 0 || !Number(s, key, &now) ||
        !Number(previous->stats, key, &then)) {
      return "-";
    }
    return absl::StrFormat("%.0f", std::max(0.0, now - then) / elapsed);
  };
  auto delta = [&](const std::string& key) {
    double now = 0, then = 0;
    if (previous == nullptr || !Number(s, key, &now) ||
        !Number(previous->stats, key, &then)) {
      return -1.0;
    }
    return now - then;
  };

  std::string out;
  absl::StrAppend(
      &out, "memshard ", target, "  version ", Field(s, "version"), "  uptime ",
      Duration(static_cast<int64_t>(value("uptime"))), "  workers ",
      Field(s, "threads"), "  ",
      absl::FormatTime("%Y-%m-%d %H:%M:%S", current.at, absl::LocalTimeZone()),
      "\n");
  absl::StrAppend(&out, "ops/s      get ", rate("cmd_get"), "  set ",
                  rate("cmd_set"), "  delete ", rate("delete_hits"), "+",
                  rate("delete_misses"), "  incr ", rate("incr_hits"), "+",
                  rate("incr_misses"), "  decr ", rate("decr_hits"), "+",
                  rate("decr_misses"), "  touch ", rate("cmd_touch"), "  meta ",
                  rate("cmd_meta"), "  flush ", rate("cmd_flush"), "\n");
  // Hit ratio over the interval when there were gets, else since start.
  double gets = delta("cmd_get");
  double hits = delta("get_hits");
  std::string window = "last interval";
  if (gets <= 0) {
    gets = value("cmd_get");
    hits = value("get_hits");
    window = "since start";
  }
  absl::StrAppend(
      &out, "hit ratio  ",
      gets > 0 ? absl::StrFormat("%.1f%%", 100.0 * hits / gets) : "-", " (",
      window, ")\n");
  absl::StrAppend(&out, "conns      ", Field(s, "curr_connections"), " open, ",
                  Field(s, "total_connections"), " accepted, ",
                  Field(s, "rejected_connections"), " rejected\n");
  const double limit = value("limit_maxbytes");
  absl::StrAppend(
      &out, "memory     ", Bytes(value("bytes")), " of ", Bytes(limit),
      limit > 0 ? absl::StrFormat(" (%.1f%%)", 100.0 * value("bytes") / limit)
                : "",
      "  items ", Field(s, "curr_items"), "\n");
  absl::StrAppend(&out, "evictions  ", rate("evictions"), "/s (total ",
                  Field(s, "evictions"), ")\n");
  if (current.latency.empty()) {
    absl::StrAppend(&out, "p99        - (no stats latency on this server)\n");
  } else {
    std::vector<std::string> parts;
    for (const char* family :
         {"get", "set", "delete", "incr_decr", "touch", "meta"}) {
      const std::string count =
          Field(current.latency, absl::StrCat(family, ":count"));
      if (count == "-" || count == "0") continue;
      parts.push_back(absl::StrCat(
          family, " ", Field(current.latency, absl::StrCat(family, ":p99_us")),
          "us"));
    }
    absl::StrAppend(
        &out, "p99        ",
        parts.empty() ? "- (no requests yet)" : absl::StrJoin(parts, "  "),
        "  (since start or stats reset)\n");
  }
  return out;
}

}  // namespace memshard::ctl
