#include "server/admin/prefix_stats.h"

#include <algorithm>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"

namespace memshard {

PrefixStats::Counts* PrefixStats::Find(absl::string_view key) {
  const size_t end = key.find(kDelimiter);
  if (end == absl::string_view::npos) return nullptr;
  const absl::string_view prefix = key.substr(0, end);
  // Binary keys may hold any byte; a prefix with a space or control byte
  // would break the dump's lines, so it is not counted.
  for (const char c : prefix) {
    const unsigned char u = static_cast<unsigned char>(c);
    if (u <= ' ' || u == 0x7f) return nullptr;
  }
  auto it = counts_.find(prefix);
  if (it == counts_.end()) it = counts_.emplace(prefix, Counts()).first;
  return &it->second;
}

void PrefixStats::RecordGet(absl::string_view key, bool hit) {
  std::lock_guard<std::mutex> lock(mu_);
  if (Counts* c = Find(key)) {
    ++c->gets;
    if (hit) ++c->hits;
  }
}

void PrefixStats::RecordSet(absl::string_view key) {
  std::lock_guard<std::mutex> lock(mu_);
  if (Counts* c = Find(key)) ++c->sets;
}

void PrefixStats::RecordDelete(absl::string_view key) {
  std::lock_guard<std::mutex> lock(mu_);
  if (Counts* c = Find(key)) ++c->deletes;
}

std::string PrefixStats::Dump() const {
  std::vector<std::pair<std::string, Counts>> rows;
  {
    std::lock_guard<std::mutex> lock(mu_);
    rows.assign(counts_.begin(), counts_.end());
  }
  std::sort(rows.begin(), rows.end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });
  std::string out;
  for (const auto& [prefix, c] : rows) {
    absl::StrAppend(&out, "PREFIX ", prefix, " get ", c.gets, " hit ", c.hits,
                    " set ", c.sets, " del ", c.deletes, "\r\n");
  }
  out.append("END\r\n");
  return out;
}

void PrefixStats::Clear() {
  std::lock_guard<std::mutex> lock(mu_);
  counts_.clear();
}

}  // namespace memshard
