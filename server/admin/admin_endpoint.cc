#include "server/admin/admin_endpoint.h"

#include <cstdio>
#include <memory>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "glog/logging.h"
#include "metrics/prometheus.h"
#include "server/admin/stats.h"
#include "server/backend/backend_stats.h"

namespace memshard {
namespace {

constexpr char kAdminAddress[] = "127.0.0.1";
constexpr char kContentType[] = "text/plain; version=0.0.4; charset=utf-8";

// Families fed by several table entries get their own HELP.
constexpr struct {
  absl::string_view family;
  absl::string_view help;
} kFamilyHelp[] = {
    {"memcached_commands_total",
     "Requests by command and status, as memcached_exporter reports them"},
};

absl::string_view HelpFor(absl::string_view family, absl::string_view help) {
  for (const auto& entry : kFamilyHelp) {
    if (entry.family == family) return entry.help;
  }
  return help;
}

PrometheusText::Type TypeFor(absl::string_view family) {
  return absl::EndsWith(family, "_total") ? PrometheusText::Type::kCounter
                                          : PrometheusText::Type::kGauge;
}

void AddTableSeries(const ServerContext& context, PrometheusText& out) {
  const StatValues values = ComputeStatValues(context);
  auto number = [&](Stat s) { return values[static_cast<size_t>(s)].number; };
  for (size_t i = 0; i < kNumStats; ++i) {
    const auto stat = static_cast<Stat>(i);
    const StatInfo& info = GetStatInfo(stat);
    if (info.prometheus.empty()) continue;
    absl::string_view family = info.prometheus;
    absl::string_view labels;
    const size_t brace = family.find('{');
    if (brace != absl::string_view::npos) {
      labels = family.substr(brace + 1, family.size() - brace - 2);
      family = family.substr(0, brace);
    }
    const absl::string_view help = HelpFor(family, info.help);
    const StatValue& v = values[i];
    if (!v.numeric) {
      // Text (the version): an info-style gauge carrying it as a label.
      out.Add(family, PrometheusText::Type::kGauge, help,
              absl::StrCat(info.name, "=", PrometheusText::LabelValue(v.text)),
              uint64_t{1});
      continue;
    }
    double value = v.number;
    if (stat == Stat::cmd_set) {
      // memcached counts cas in cmd_set; memcached_exporter reports
      // set/hit without them.
      value -= number(Stat::cas_hits) + number(Stat::cas_misses) +
               number(Stat::cas_badval);
      if (value < 0) value = 0;
    }
    out.Add(family, TypeFor(family), help, labels, value);
  }
}

void AddWorkerSeries(const ServerContext& context, PrometheusText& out) {
  const MetricsRegistry& m = *context.metrics;
  for (size_t w = 0; w < m.workers(); ++w) {
    const std::string labels =
        absl::StrCat("worker=", PrometheusText::LabelValue(absl::StrCat(w)));
    for (size_t s = 0; s < kNumStats; ++s) {
      const StatInfo& info = GetStatInfo(static_cast<Stat>(s));
      if (info.source != StatSource::kWorker) continue;
      if (info.kind == StatKind::kCounter) {
        out.Add(absl::StrCat("memshard_worker_", info.name, "_total"),
                PrometheusText::Type::kCounter, info.help, labels,
                m.Get(w, static_cast<Counter>(info.slot)));
      } else {
        out.Add(absl::StrCat("memshard_worker_", info.name),
                PrometheusText::Type::kGauge, info.help, labels,
                m.worker(w).Get(static_cast<Gauge>(info.slot)));
      }
    }
    out.Add("memshard_worker_requests_total", PrometheusText::Type::kCounter,
            "Requests executed by the worker", labels, m.WorkerOps(w));
  }
}

void AddLatency(const ServerContext& context, PrometheusText& out) {
  for (size_t f = 0; f < kNumLatencyFamilies; ++f) {
    const auto family = static_cast<LatencyFamily>(f);
    std::unique_ptr<LatencyHistogram> h = context.metrics->Latency(family);
    out.AddHistogram(
        "memshard_request_duration_seconds",
        "Time from the event-loop wakeup that read a request to its reply "
        "being composed, by command family, all workers",
        absl::StrCat("family=", PrometheusText::LabelValue(
                                    LatencyFamilyInfo(family).name)),
        *h, PrometheusText::LatencyBoundsSeconds());
  }
}

// --mode=proxy|l1l2: one series per backend and measure, summed over
// workers.
void AddBackendSeries(const ServerContext& context, PrometheusText& out) {
  if (context.backend_stats == nullptr) return;
  const backend::BackendStatsRegistry& registry = *context.backend_stats;
  for (int i = 0; i < registry.backends(); ++i) {
    const backend::BackendSummary s = registry.Summarize(i);
    const std::string labels = absl::StrCat(
        "backend=", PrometheusText::LabelValue(
                        context.options.backend.backends[static_cast<size_t>(i)]
                            .ToString()));
    auto counter = [&](absl::string_view name, absl::string_view help,
                       uint64_t v) {
      out.Add(name, PrometheusText::Type::kCounter, help, labels, v);
    };
    auto gauge = [&](absl::string_view name, absl::string_view help,
                     int64_t v) {
      out.Add(name, PrometheusText::Type::kGauge, help, labels, v);
    };
    gauge("memshard_backend_up",
          "1 if every worker sees the backend up, 0 if down or ejected",
          s.state == backend::BackendState::kUp ? 1 : 0);
    gauge("memshard_backend_ejected", "1 if some worker ejected the backend",
          s.state == backend::BackendState::kEjected ? 1 : 0);
    counter("memshard_backend_requests_total",
            "Requests sent (or refused) to the backend", s.requests);
    counter("memshard_backend_errors_total",
            "Requests answered unavailable or busy", s.errors);
    counter("memshard_backend_timeouts_total", "Requests that timed out",
            s.timeouts);
    counter("memshard_backend_ejections_total",
            "Times the backend left the ring", s.ejections);
    gauge("memshard_backend_in_flight", "Requests awaiting the backend",
          s.in_flight);
    out.Add("memshard_backend_rtt_p50_seconds", PrometheusText::Type::kGauge,
            "Median backend round trip", labels, s.rtt_p50_us / 1e6);
    out.Add("memshard_backend_rtt_p99_seconds", PrometheusText::Type::kGauge,
            "99th percentile backend round trip", labels, s.rtt_p99_us / 1e6);
  }
}

absl::Status WritePortFile(const std::string& path, uint16_t port) {
  // Write then rename, so a reader never sees a half-written file.
  const std::string tmp = absl::StrCat(path, ".tmp");
  FILE* f = fopen(tmp.c_str(), "w");
  if (f == nullptr) return absl::UnavailableError(absl::StrCat("open ", tmp));
  fprintf(f, "%u\n", port);
  fclose(f);
  if (rename(tmp.c_str(), path.c_str()) != 0) {
    return absl::UnavailableError(absl::StrCat("rename to ", path));
  }
  return absl::OkStatus();
}

}  // namespace

std::string RenderPrometheus(const ServerContext& context) {
  PrometheusText out;
  out.Add("memcached_up", PrometheusText::Type::kGauge,
          "Could the memcached server be reached (always 1 when served)", "",
          uint64_t{1});
  AddTableSeries(context, out);
  AddWorkerSeries(context, out);
  AddLatency(context, out);
  AddBackendSeries(context, out);
  return out.Finish();
}

AdminHttpServer::Response HandleAdminRequest(const ServerContext& context,
                                             absl::string_view method,
                                             absl::string_view path) {
  AdminHttpServer::Response response;
  if (path == "/metrics") {
    response.content_type = kContentType;
    response.body = RenderPrometheus(context);
  } else if (path == "/healthz") {
    response.body = "ok\n";
  } else {
    response.status = 404;
    response.body = "not found: try /metrics or /healthz\n";
  }
  return response;
}

absl::StatusOr<std::unique_ptr<AdminHttpServer>> BindAdminEndpoint(
    const ServerOptions& options) {
  if (options.admin_port == 0) return nullptr;
  if (options.admin_port < -1 || options.admin_port > 65535) {
    return absl::InvalidArgumentError("--admin_port out of range");
  }
  const uint16_t port =
      options.admin_port < 0 ? 0 : static_cast<uint16_t>(options.admin_port);
  return AdminHttpServer::Bind(kAdminAddress, port);
}

absl::Status StartAdminEndpoint(AdminHttpServer* server,
                                const ServerContext* context) {
  server->Start([context](absl::string_view method, absl::string_view path) {
    return HandleAdminRequest(*context, method, path);
  });
  LOG(INFO) << "admin endpoint on http://" << kAdminAddress << ":"
            << server->port() << "/metrics";
  const std::string& path = context->options.admin_port_file;
  if (path.empty()) return absl::OkStatus();
  return WritePortFile(path, server->port());
}

}  // namespace memshard
