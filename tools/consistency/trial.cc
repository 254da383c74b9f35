#include "tools/consistency/trial.h"

#include <map>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "tools/consistency/text_client.h"

namespace memshard::consistency {

std::string TrialReport::Summary() const {
  const double seconds = absl::ToDoubleSeconds(workload.elapsed);
  std::string out = absl::StrFormat(
      "requests %u (%u recorded ops) on %d keys over %d connections in "
      "%.1f s (%.0f req/s); check %.1f s\n",
      workload.requests, workload.history.ops.size(), options.keys,
      options.connections, seconds,
      seconds > 0 ? workload.requests / seconds : 0.0,
      absl::ToDoubleSeconds(check_time));
  if (!workload.worker_connections.empty()) {
    absl::StrAppend(&out,
                    "connections per worker (incl. the final reader and the "
                    "stats connection): ",
                    workload.worker_connections, "\n");
  }
  // How often each reply came, so a run shows it exercised the races.
  std::map<std::pair<OpType, Outcome>, uint64_t> counts;
  for (const Op& op : workload.history.ops) ++counts[{op.type, op.outcome}];
  std::string line = "replies:";
  OpType last = OpType::kGet;
  bool first = true;
  for (const auto& [kind, n] : counts) {
    if (first || kind.first != last) {
      absl::StrAppend(&line, first ? " " : "; ", OpTypeName(kind.first));
    }
    absl::StrAppend(&line, " ", OutcomeName(kind.second), " ", n);
    last = kind.first;
    first = false;
  }
  absl::StrAppend(&out, line, "\n");
  absl::StrAppend(&out, "evictions ", evictions, "; client errors ",
                  workload.errors, "\n");
  for (const std::string& e : workload.error_samples) {
    absl::StrAppend(&out, "client error: ", e, "\n");
  }
  absl::StrAppend(&out, check.Summary(), "\n",
                  ok() ? "RESULT: PASS" : "RESULT: FAIL");
  return out;
}

absl::StatusOr<TrialReport> RunTrial(int port, const WorkloadOptions& options,
                                     const CheckOptions& check_options) {
  TrialReport report;
  report.options = options;
  absl::StatusOr<WorkloadResult> workload = RunWorkload(port, options);
  if (!workload.ok()) return workload.status();
  report.workload = *std::move(workload);

  absl::StatusOr<std::unique_ptr<TextConnection>> c =
      TextConnection::Connect(port, options.timeout);
  if (!c.ok()) return c.status();
  auto stats = (*c)->Stats();
  if (!stats.ok()) return stats.status();
  for (const auto& [name, value] : *stats) {
    if (name == "evictions" && !absl::SimpleAtoi(value, &report.evictions)) {
      report.evictions = -1;
    }
  }

  const absl::Time start = absl::Now();
  report.check = CheckHistory(report.workload.history, check_options);
  report.check_time = absl::Now() - start;
  return report;
}

}  // namespace memshard::consistency
